// The inbound Anthropic Messages dialect (`POST /v1/messages`): Claude SDK and Claude Code
// users point at iris unchanged. Decodes their request into ChatRequest and encodes
// ChatResponse / StreamEvents back into Anthropic's message object and SSE events.
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::gateway::api {

// Parses a Messages request body. Strict about the fields it knows (types, required
// `model`, `max_tokens`, `messages`); unknown top-level fields (`thinking`,
// `output_config`, `cache_control`, ...) are ignored so newer clients keep working.
// Errors are kInvalidArgument and start with the field path, written as for the OpenAI
// dialect (api/json_fields.h): "messages[1].content[0].source.type: ...".
//
// Mapping: `system` (string or text blocks) becomes one leading kSystem message; a user
// turn's `tool_result` blocks become kTool messages and its other blocks kUser messages,
// in their original order; `tool_use` blocks become the assistant's tool_calls (input
// serialized as the arguments text); `thinking` / `redacted_thinking` blocks are dropped.
// `tool_choice.disable_parallel_tool_use: true` sets parallel_tool_calls = false.
// What only Anthropic's own API can take is noted in as_is_only and left out of the messages:
// server tools and Anthropic's own client tools (any `type` but "custom"), blocks of other
// types (documents, search results, server tools' calls and results, types iris does not know
// yet), images from uploaded files, `mcp_servers` and `container`; a file or a container named
// by id is also noted in account_refs. The body is kept as caller_body for Anthropic, which
// takes it as written; another provider refuses the request, naming them.
Result<ChatRequest> ParseAnthropicRequest(std::string_view body);

// The `anthropic-beta` header of an Anthropic caller (the SDKs' `betas`), which Anthropic needs
// for its beta features (the Files API, the MCP connector, ...) and gets when it takes the body
// as is: comma-separated names of 1 to 64 bytes of A-Z a-z 0-9 . _ -, at most 16, written back
// joined by ",". Anything else is kInvalidArgument naming the header.
inline constexpr size_t kMaxAnthropicBetas = 16;
Result<std::string> ParseAnthropicBeta(std::string_view header);

// Anthropic's stop_reason for a finish reason ("end_turn", "max_tokens", "tool_use",
// "refusal"); kStop with a known stop string is "stop_sequence".
std::string_view AnthropicStopReason(FinishReason reason, std::string_view stop_sequence);

// The non-streaming answer: {"id","type":"message","role":"assistant","model","content",
// "stop_reason","stop_sequence","usage"}. `content` is one text block (when there is text)
// followed by one tool_use block per call (arguments parsed back to an object; arguments
// that are not a JSON object are wrapped as {"rawInvalidInput": "<text>"}).
// Usage has Anthropic semantics: input_tokens excludes cache reads and cache writes.
// iris's extras go in one top-level `"iris"` object that Anthropic SDKs ignore: a copy of
// `*iris` (when non-null) plus `"cost_usd"` (when `cost_usd` has a value); the key is
// absent when both are.
std::string EncodeAnthropicResponse(const ChatResponse& response, const boost::json::object* iris,
                                    std::optional<double> cost_usd);
// Anthropic's own message (ChatResponse::as_is, the answer to a body sent as is) as it came,
// with iris's extras object added as in EncodeAnthropicResponse.
std::string EncodeAnthropicAsIsResponse(boost::json::object message,
                                        const boost::json::object* iris,
                                        std::optional<double> cost_usd);

// StreamEvents -> Anthropic SSE bytes ("event: <type>\ndata: <json>\n\n"), the sequence
// the real API sends: message_start, per content block content_block_start / *_delta /
// content_block_stop (text blocks and tool_use blocks with input_json_delta), then at
// Finish() message_delta (stop_reason + cumulative usage) and message_stop.
//
// message_start is held back until the first content or finish event so that a kUsage
// arriving right after kStart (an upstream that reports input tokens up front) fills its
// usage. kUsage events are cumulative snapshots: the last one wins. kFinish closes the open
// block; the message_delta waits for Finish() because usage may still arrive.
//
// An Anthropic stream's own events (StreamEvent::kAsIs of kAnthropic, the answer to a body sent
// as is) are relayed as they came instead, server tools' blocks and citations included; its
// message_delta and message_stop wait for Finish(), which adds iris's extras to the
// message_delta. The neutral events read from them then send nothing.
// Not thread-safe; one per response.
class AnthropicStreamEncoder {
 public:
  // The bytes to send for one event (often empty).
  std::string Encode(const StreamEvent& event);
  // The end of a complete stream: closes any open block, then message_delta (with the
  // `"iris"` extras object beside `delta` and `usage`, built as in EncodeAnthropicResponse)
  // and message_stop. Call once, after the upstream stream ended cleanly.
  std::string Finish(const boost::json::object* iris, std::optional<double> cost_usd);
  // An in-band failure after the 200 was sent: `event: error` with Anthropic's error body.
  // Nothing may be sent after it (no message_stop); Finish() then returns "".
  std::string Error(const GatewayError& error);

 private:
  std::string MaybeStart();
  std::string CloseBlock();
  // Closes the open block and opens `block` (a content_block_start); the next index.
  std::string OpenBlock(boost::json::object block);
  // A content_block_delta of the open block.
  std::string Delta(boost::json::object delta) const;

  std::string id_;
  std::string model_;
  Usage usage_;
  bool started_ = false;  // message_start sent
  bool done_ = false;     // message_stop or error sent
  int next_block_ = 0;    // index of the next content block
  int open_block_ = -1;   // index of the open block, -1 when none
  bool open_is_text_ = false;
  int open_tool_ = -1;              // StreamEvent tool index of the open tool_use block
  int open_reasoning_ = -1;         // StreamEvent reasoning index of the open thinking block
  std::map<int, int> tool_blocks_;  // StreamEvent tool index -> content block index
  FinishReason finish_reason_ = FinishReason::kStop;
  std::string stop_sequence_;
  bool relay_ = false;      // the upstream's own events are relayed
  std::string held_delta_;  // relay_: the data of its message_delta, for Finish
};

// The Anthropic shape of a model list (GET /v1/models from an Anthropic SDK):
// {"data":[{"type":"model","id","display_name","created_at"}],"has_more":false,"first_id",
// "last_id"} in the given order (first_id/last_id null when the list is empty).
std::string EncodeAnthropicModelList(const std::vector<ModelInfo>& models);

}  // namespace iris::gateway::api
