// The inbound OpenAI Responses dialect: POST /v1/responses bodies into ChatRequest (plus what
// only this API has: instructions, previous_response_id, store, metadata), and ChatResponse /
// StreamEvents back into `response` objects and the typed `response.*` SSE events.
// Wire format: protocols.md §1.11. Every provider answers it: the proxy routes the ChatRequest
// as it routes chat completions, and the conversation of a response iris returned is kept
// (proxy/responses_store) so that `previous_response_id` continues it on any provider.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/api/identifiers.h"

namespace iris::gateway::api {

// An input item that names an earlier output item instead of repeating it
// ({"type":"item_reference","id":"msg_..."}, or a function_call / message item that carries
// only its id). Resolved by the proxy from the stored response the id belongs to.
struct ItemReference {
  std::string id;
  size_t before_message = 0;  // its place: before chat.messages[before_message]
};

// The longest response id previous_response_id may name (and a conversation is kept under).
inline constexpr size_t kMaxResponseId = kMaxItemIdBytes;

struct ResponsesRequest {
  ChatRequest chat;  // `instructions` first (a system message), then the input in order
  bool has_instructions = false;  // chat.messages[0] is `instructions`
  std::string instructions;
  std::string previous_response_id;  // empty when not continuing
  bool store = true;
  boost::json::object metadata;  // echoed on the response (at most 16 string values)
  std::vector<ItemReference> references;
  // The ids of the other input items that carry one (a reasoning item, a message or a call
  // replayed whole with its id): OpenAI may look them up in the account, so each must be an
  // item iris returned to this key (proxy/responses_thread.cc). iris's own ids are not listed.
  std::vector<std::string> item_ids;
};

// The most input items that may name an earlier item by id (references and items carrying an
// id together).
inline constexpr size_t kMaxNamedItems = 256;
// (Which ids a caller may name items by: identifiers.h IsItemId.)

// Parses and validates a responses request. Errors are kInvalidArgument naming the field
// ("input[2].content[0].image_url: expected an http(s) URL or a base64 data URL").
// Accepted: `input` as a string or items (messages with role user/assistant/system/developer
// and content as a string or input_text / input_image / output_text / refusal parts;
// function_call and function_call_output items; item_reference), `instructions`, function
// `tools` (flat), `tool_choice`, `parallel_tool_calls`, `text.format` (text, json_object,
// json_schema), `max_output_tokens`, `temperature`, `top_p`, `reasoning.effort`, `metadata`,
// `store`, `previous_response_id`, `stream`, `user`, and the routing hints of chat requests.
// The body is kept as chat.caller_body: OpenAI's Responses API takes it as is. What only that
// API can honour (hosted tools and a tool_choice naming one, input items of other types such
// as web_search_call, input_file / input_audio parts, `prompt` templates) is noted in
// chat.as_is_only; reasoning items and fields iris does not interpret in chat.extra_fields
// (dropped where the request is translated). Refused with a 400 naming the field:
// `background: true`, `conversation`. JSON null counts as absent.
Result<ResponsesRequest> ParseResponsesRequest(std::string_view body);

// Folds an assistant turn made only of tool calls into the assistant turn before it, so that a
// model's text and the calls it made (separate items in this API) are one chat message.
void MergeToolCallTurns(std::vector<Message>& messages);
// Messages as input items (the form conversations are kept in): message items with
// input_text / input_image / output_text parts, function_call and function_call_output items.
boost::json::array InputItemsOf(const std::vector<Message>& messages);
// The reverse: kept input items back into messages (not merged).
Result<std::vector<Message>> ParseConversationItems(const boost::json::array& items);

// What a response object says about itself besides the answer.
struct ResponseMeta {
  std::string id;  // resp_...
  int64_t created_at = 0;
  std::string model;  // as the caller will see it (the answering upstream model)
  const ResponsesRequest* request = nullptr;  // echoed fields (instructions, tools, metadata...)
};

// The id prefix of every item of response `response_id`, so that an item id names its response:
// "resp_X" -> "X". Item ids are "msg_X_0", "fc_X_1", ...
std::string ResponseItemId(std::string_view prefix, std::string_view response_id, size_t index);
// The response id an item id of ours belongs to, and the item's index; nullopt for an id iris
// did not make.
struct ItemOwner {
  std::string response_id;
  size_t index = 0;
};
std::optional<ItemOwner> ItemOwnerOf(std::string_view item_id);

// The output items of an answer (a message item when there is text, then one function_call
// item per tool call), with ids made by ResponseItemId.
boost::json::array ResponseOutputItems(const ChatResponse& response, std::string_view response_id);
// The messages an output item stands for in a conversation: a message item is an assistant
// message, a function_call item an assistant message with one tool call. nullopt for an item
// of another kind.
std::optional<Message> MessageOfOutputItem(const boost::json::object& item);

// A complete `response` object (status completed, or incomplete with its reason when the
// answer hit max_output_tokens or a content filter), with `usage` (usage.cost when set) and
// `iris` (when non-null) as an extra key.
std::string EncodeResponsesResponse(const ChatResponse& response, const ResponseMeta& meta,
                                    const boost::json::object* iris,
                                    std::optional<double> cost_usd);

// A provider's own response object (ChatResponse::as_is) as the caller gets it: with
// usage.cost (when set) and `iris` (when non-null) added.
std::string EncodeAsIsResponse(boost::json::object response, const boost::json::object* iris,
                               std::optional<double> cost_usd);

// Turns one answer's StreamEvents into the Responses API's typed SSE events, in the order
// OpenAI sends them: response.created, response.in_progress, then per output item
// output_item.added (+ content_part.added), output_text.delta / function_call_arguments.delta,
// the matching .done events, and response.completed (or response.incomplete) carrying the whole
// response. Every event is `event: <type>` + `data: {"type":<type>,"sequence_number":n,...}`,
// with no [DONE]. A stream from OpenAI's own Responses API (StreamEvent::kAsIs) is relayed as
// it came instead, its id and sequence numbers kept, the terminal event held back for Finish to
// add iris's report to. Not thread-safe; one per response.
class ResponsesStreamEncoder {
 public:
  explicit ResponsesStreamEncoder(ResponseMeta meta) : meta_(std::move(meta)) {}

  std::string Encode(const StreamEvent& event);
  // Closes the open items and sends the terminal event with the whole response.
  std::string Finish(const boost::json::object* iris, std::optional<double> cost_usd);
  // A failure after the stream began: an `error` event, then response.failed.
  std::string Error(const GatewayError& error);
  // The answer as it was streamed (for the conversation store).
  const ChatResponse& answer() const { return answer_; }
  const ResponseMeta& meta() const { return meta_; }
  // The stream is the provider's own, relayed as is.
  bool as_is() const { return as_is_; }
  // (as is) The output items of the upstream's terminal event; null before it (or after
  // Finish).
  const boost::json::array* as_is_output() const;

 private:
  std::string Relay(const StreamEvent& event);
  std::string Emit(std::string_view type, boost::json::object data);
  std::string EnsureStarted();
  std::string OpenMessage();
  std::string CloseMessage();
  boost::json::object Snapshot(std::string_view status) const;

  ResponseMeta meta_;
  ChatResponse answer_;
  bool started_ = false;
  int64_t sequence_ = 0;
  // The output items so far, in order (message items for text, one function_call item per tool
  // call).
  boost::json::array items_;
  std::optional<size_t> message_item_;  // the message item last opened
  bool message_open_ = false;
  std::string message_text_;                        // the open message item's text
  std::vector<std::pair<int, size_t>> tool_items_;  // stream tool index -> items_ index
  bool as_is_ = false;
  // (as is) The upstream's terminal event (response.completed / response.incomplete), held.
  std::string terminal_name_;
  boost::json::object terminal_;
};

}  // namespace iris::gateway::api
