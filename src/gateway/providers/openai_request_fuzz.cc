// Fuzz harness: bytes as a POST /v1/chat/completions body through ParseOpenAIChatRequest;
// a request that decodes is encoded for every upstream (request_fuzz.h). Seeds in
// tests/data/fuzz/openai_request_corpus/; ctest fuzz_openai_request, or libFuzzer with
// -DIRIS_BUILD_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/api/openai.h"
#include "gateway/providers/request_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris::gateway;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  iris::Result<ChatRequest> request = api::ParseOpenAIChatRequest(body);
  if (!request.ok()) {
    providers::fuzz::Check(!request.status().message().empty());
    return 0;
  }
  providers::fuzz::Check(request->dialect == Dialect::kOpenAI);
  providers::fuzz::EncodeForEveryProvider(*request);
  return 0;
}
