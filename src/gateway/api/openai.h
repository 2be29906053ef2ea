// The inbound OpenAI dialect: POST /v1/chat/completions bodies into ChatRequest, and
// ChatResponse / StreamEvents back into chat.completion objects and SSE chunks, plus
// GET /v1/models. Wire format: protocols.md §1 (and §6.3 for routing hints).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::gateway::api {

// Parses and validates a chat completions request. Errors are kInvalidArgument whose
// message starts with the offending field's path ("messages[2].content[0].image_url.url:
// expected a string"). Accepted: roles system/developer (-> kSystem)/user/assistant/tool;
// string or part-array content with `text`, `image_url` (object or bare string; data: URLs
// are split into media type + base64 and validated, http(s) URLs kept) and, for assistants,
// `refusal` parts (kept as text); assistant `tool_calls`; `tool_call_id`; function `tools`;
// `tool_choice`; `parallel_tool_calls`; `response_format`; `stop`; sampling parameters;
// `max_completion_tokens` (wins over the legacy `max_tokens` when both are set); `stream`
// and `stream_options.include_usage` (ignored when not streaming); `user`;
// `reasoning_effort` (checked against OpenAI's names); and routing
// hints: OpenRouter's top-level `models` and `provider.{order,only}`, Vercel's
// `providerOptions.gateway.{order,only,models}` (model lists are concatenated, top-level
// first, duplicates dropped). Refused with a 400: `n` > 1, non-function tools, audio/file
// parts, the legacy `function` role. Unknown top-level fields (`logprobs`, `metadata`,
// `store`, ...) are ignored, as OpenAI-compatible servers do; a known
// field with the wrong type is an error. JSON null counts as absent.
Result<ChatRequest> ParseOpenAIChatRequest(std::string_view body);

// An image reference as OpenAI's APIs spell it: an http(s) URL or a base64 data URL, as a
// bare string or an {"url","detail"} object. Fills `part` (type kImage) or names `path`.
Status ParseOpenAIImageUrl(const boost::json::value& v, std::string_view path, ContentPart& part);
// The routing hints of an OpenAI-shaped body (OpenRouter's `models` and `provider`, Vercel's
// `providerOptions.gateway`), shared by chat completions and responses.
Status ParseOpenAIRoutingHints(const boost::json::object& body, RoutingHints& routing);

// OpenAI's reasoning effort names (none, minimal, low, medium, high, xhigh); a 400 naming
// `path` otherwise.
Result<std::string> ParseReasoningEffort(const boost::json::value& v, std::string_view path);
// A function tool's fields (`name`, non-empty; `description`; `parameters`, a JSON Schema
// object; `strict`) from the object at `path`: chat nests them under `function`, the Responses
// API puts them on the tool itself.
Result<Tool> ParseFunctionFields(const boost::json::object& fields, std::string_view path);
// A tool_choice given as a word: "auto", "none" or "required".
Result<ToolChoice> ParseToolChoiceMode(std::string_view mode, std::string_view path);

// OpenAI's finish_reason for ours. kError has no OpenAI value and becomes "stop"; the
// translators turn an upstream "error" finish into an error instead, so it is not seen here.
std::string_view OpenAIFinishReason(FinishReason reason);
// The reverse, for upstream OpenAI-shaped answers: stop, length, tool_calls, content_filter,
// function_call (-> kToolCalls), Mistral's model_length (-> kLength) and error (-> kError);
// anything else is kStop.
// A cache breakpoint as callers write it ({"type":"ephemeral"} with an optional "ttl" of "5m"
// or "1h"); errors name `path`.
Result<CacheMark> ParseCacheControl(const boost::json::value& v, std::string_view path);

FinishReason ParseOpenAIFinishReason(std::string_view reason);

// {"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details":{
// "cached_tokens"[, "cache_write_tokens" when non-zero]},"completion_tokens_details":{
// "reasoning_tokens"}[, "cost" when cost_usd is set]}, in `storage`.
boost::json::object EncodeOpenAIUsage(const Usage& usage, std::optional<double> cost_usd,
                                      boost::json::storage_ptr storage = {});
// Reads an OpenAI/Mistral/compatible usage object; missing counts are 0. Understands
// prompt_tokens_details.{cached_tokens,cache_write_tokens}, Mistral's legacy
// prompt_token_details / num_cached_tokens and completion_tokens_details.reasoning_tokens.
Usage DecodeOpenAIUsage(const boost::json::object& usage);
// Takes a provider's own price out of its usage object (`cost` and `cost_details`, OpenRouter's
// say), keeping the rest in its order: the only usage.cost a caller sees is iris's. True when
// there was one.
bool ErasePriceOf(boost::json::object& usage);

// A `chat.completion` object: one choice, content null when there is no text and there are
// tool calls, `usage` (with usage.cost when `cost_usd` is set), the provider's own members
// (response.openai_extras: logprobs, system_fingerprint, ...; iris's counts written over its
// usage object), and `iris` (a copy of *iris, when non-null) as an extra top-level key, which
// OpenAI SDKs ignore.
std::string EncodeOpenAIChatResponse(const ChatResponse& response, const boost::json::object* iris,
                                     std::optional<double> cost_usd);

// Turns one response's StreamEvents into `chat.completion.chunk` SSE bytes, in the shape
// real OpenAI emits (protocols.md §1.6): a role chunk, content (or refusal) deltas, tool-call
// deltas (index/id/type/name first, then argument fragments), the finish chunk, the usage chunk
// (`choices: []`) when the caller asked for include_usage, then `data: [DONE]`. Every chunk
// carries `"usage": null` when include_usage is on, as OpenAI's do. A provider's own members
// of a chunk (StreamEvent::openai_extras) go on the chunk made of their event, or, when that
// event makes none (a finish, say), on the next chunk made.
//
// The finish chunk is held until Finish() so that the last chunk can carry what is only
// known at the end (the `iris` object, usage.cost). Not thread-safe; one per response.
class OpenAIStreamEncoder {
 public:
  // `include_usage`: the caller's stream_options.include_usage. `created` is used when the
  // kStart event carries none (0).
  explicit OpenAIStreamEncoder(bool include_usage, int64_t created = 0)
      : include_usage_(include_usage), created_(created) {}

  // The bytes for one event (often one chunk; empty for kFinish/kUsage, which are held).
  std::string Encode(const StreamEvent& event);
  // The end of a complete answer: the finish chunk, the usage chunk when include_usage and
  // there is usage or a cost to report (usage.cost set from cost_usd), the `iris` object on
  // the last chunk, and `[DONE]`. A finish reason never seen counts as "stop".
  std::string Finish(const boost::json::object* iris, std::optional<double> cost_usd);
  // A failure after the 200 was sent: one `data: {"error":{...}}` event (errors.h's
  // OpenAIErrorObject), and deliberately no `[DONE]`. OpenAI does the same, and its SDKs
  // throw on an `error` chunk; a stream that ends with [DONE] would tell the client a
  // truncated answer was complete.
  std::string Error(const GatewayError& error);

  bool started() const { return started_; }

 private:
  boost::json::object Chunk(boost::json::storage_ptr storage) const;
  std::string Emit(boost::json::object chunk) const;
  // The role chunk, once; with the held members and `extras` (may be null).
  std::string EnsureStarted(const OpenAIExtras* extras);
  // Keeps a provider's members that came on an event that makes no chunk in `held` (held_
  // for the next chunk, finish_extras_ for the finish chunk).
  static void Hold(const OpenAIExtras* extras, std::optional<OpenAIExtras>& held);
  // Adds the held members, then `extras` (may be null), to `chunk`.
  void AddHeldAnd(boost::json::object& chunk, const OpenAIExtras* extras);

  bool include_usage_;
  int64_t created_;
  bool started_ = false;
  std::string id_;
  std::string model_;
  std::optional<FinishReason> finish_;
  Usage usage_;
  // The provider's own members (OpenAIExtras): held for the next chunk, those of its finish
  // chunk and of its usage chunk, and its usage object (iris's counts are written over it).
  std::optional<OpenAIExtras> held_;
  std::optional<OpenAIExtras> finish_extras_;
  std::shared_ptr<const OpenAIExtras> usage_extras_;
  boost::json::value provider_usage_;
};

// The GET /v1/models body: {"object":"list","data":[{"id","object":"model","created",
// "owned_by"}, ...]} in the given order.
std::string EncodeOpenAIModelList(const std::vector<ModelInfo>& models);

}  // namespace iris::gateway::api
