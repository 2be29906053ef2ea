// Fuzz harness: bytes as a POST .../language-model body (AI SDK gateway protocol) through
// ParseAiGatewayLanguageRequest; a request that decodes is encoded for every upstream
// (request_fuzz.h), and what it dropped is bounded. Seeds in
// tests/data/fuzz/ai_gateway_request_corpus/; ctest fuzz_ai_gateway_request, or libFuzzer with
// -DIRIS_BUILD_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/api/ai_gateway.h"
#include "gateway/providers/request_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris::gateway;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  api::AiGatewayHeaders headers;
  headers.model_id = "m";
  iris::Result<api::AiGatewayRequest> request = api::ParseAiGatewayLanguageRequest(body, headers);
  if (!request.ok()) {
    providers::fuzz::Check(!request.status().message().empty());
    return 0;
  }
  providers::fuzz::Check(request->chat.dialect == Dialect::kAiGateway);
  providers::fuzz::Check(request->dropped.size() <= 33);
  if (!request->chat.messages.empty()) providers::fuzz::EncodeForEveryProvider(request->chat);
  return 0;
}
