// Fuzz harness: bytes as a POST /v1/responses body through ParseResponsesRequest; a request
// that decodes is encoded for every upstream (request_fuzz.h), and its messages survive the
// round trip through the kept-thread form (InputItemsOf -> ParseConversationItems). Seeds in
// tests/data/fuzz/responses_request_corpus/; ctest fuzz_responses_request, or libFuzzer with
// -DIRIS_BUILD_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/api/json_fields.h"
#include "gateway/api/responses.h"
#include "gateway/providers/request_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris::gateway;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  iris::Result<api::ResponsesRequest> request = api::ParseResponsesRequest(body);
  if (!request.ok()) {
    providers::fuzz::Check(!request.status().message().empty());
    return 0;
  }
  providers::fuzz::Check(request->chat.dialect == Dialect::kResponses);
  // What only OpenAI takes is noted within its bound, each note one line of plain text (notes
  // go into error messages).
  providers::fuzz::Check(request->chat.as_is_only.size() <= api::kMaxFieldNames + 1);
  for (const std::string& note : request->chat.as_is_only) {
    providers::fuzz::Check(note.size() < 256 && note.find_first_of("\r\n\"") == std::string::npos);
  }
  providers::fuzz::Check(request->chat.account_refs.size() <= api::kMaxFieldNames + 1);
  for (const std::string& note : request->chat.account_refs) {
    providers::fuzz::Check(note.size() < 256 && note.find_first_of("\r\n\"") == std::string::npos);
  }
  for (const std::string& id : request->item_ids) providers::fuzz::Check(api::IsItemId(id));
  providers::fuzz::Check(request->chat.caller_body != nullptr);
  auto kept = api::ParseConversationItems(api::InputItemsOf(request->chat.messages));
  providers::fuzz::Check(kept.ok());
  api::MergeToolCallTurns(*kept);
  std::vector<Message> merged = request->chat.messages;
  api::MergeToolCallTurns(merged);
  providers::fuzz::Check(kept->size() == merged.size());
  if (!request->chat.messages.empty()) providers::fuzz::EncodeForEveryProvider(request->chat);
  return 0;
}
