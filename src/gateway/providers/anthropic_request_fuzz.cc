// Fuzz harness: bytes as a POST /v1/messages body through ParseAnthropicRequest;
// a request that decodes is encoded for every upstream (request_fuzz.h). Seeds in
// tests/data/fuzz/anthropic_request_corpus/; ctest fuzz_anthropic_request, or libFuzzer with
// -DIRIS_BUILD_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/api/anthropic.h"
#include "gateway/providers/request_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris::gateway;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  iris::Result<ChatRequest> request = api::ParseAnthropicRequest(body);
  if (!request.ok()) {
    providers::fuzz::Check(!request.status().message().empty());
    return 0;
  }
  providers::fuzz::Check(request->dialect == Dialect::kAnthropic);
  providers::fuzz::EncodeForEveryProvider(*request);
  return 0;
}
