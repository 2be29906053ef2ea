// The interface every cloud provider's translator implements: ChatRequest -> upstream HTTP
// request bytes, upstream response bytes -> ChatResponse / StreamEvents / GatewayError.
// Translators are pure: no I/O, no clocks, no globals; the proxy does the I/O.
#pragma once

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/api/json_fields.h"
#include "gateway/http/sse.h"

namespace iris::gateway::providers {

// The seconds of a Retry-After header value ("2", " 1.5 "); nullopt when absent, negative or
// an HTTP-date (turning a date into seconds needs a clock, and translators have none).
inline std::optional<double> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  double seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(seconds) ||
      seconds < 0) {
    return std::nullopt;
  }
  return seconds;
}

// An upstream's body or event that must be a JSON object. Anything else is the upstream's
// fault (DataLoss): "<provider>: <what> is not a JSON object".
inline Result<boost::json::object> ParseUpstreamObject(std::string_view provider,
                                                       std::string_view text,
                                                       std::string_view what) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) {
    return DataLoss(std::string(provider) + ": " + std::string(what) + " is not a JSON object");
  }
  return std::move(v.get_object());
}

// The arguments of tool call `call` of message `message` as a JSON object (empty reads as {}),
// for the upstreams that take them as an object (Anthropic, Gemini). Anything else fails with
// the call's path: "messages[2].tool_calls[0].arguments: expected a JSON object, got an array".
inline Result<boost::json::object> ToolCallArgumentsObject(const ToolCall& tool_call,
                                                           size_t message, size_t call) {
  return api::ParseObjectText(
      tool_call.arguments.empty() ? "{}" : tool_call.arguments,
      api::MemberPath(
          api::ElementPath(api::MemberPath(api::ElementPath("messages", message), "tool_calls"),
                           call),
          "arguments"));
}

// ---- Reasoning: one table between OpenAI's effort names and thinking budgets -----------------

// The thinking budget (tokens) that stands for an effort: none 0, minimal 1024, low 2048,
// medium 8192, high 16384, xhigh 32768.
inline int64_t ThinkingBudgetForEffort(std::string_view effort) {
  if (effort == "none") return 0;
  if (effort == "minimal") return 1024;
  if (effort == "low") return 2048;
  if (effort == "medium") return 8192;
  if (effort == "high") return 16384;
  return 32768;  // xhigh
}
// The effort that stands for a budget: the least effort whose budget covers it (0 is "none").
inline std::string_view EffortForThinkingBudget(int64_t budget) {
  if (budget <= 0) return "none";
  for (std::string_view effort : {"minimal", "low", "medium", "high"}) {
    if (budget <= ThinkingBudgetForEffort(effort)) return effort;
  }
  return "xhigh";
}
// The budget a request asks for: thinking_budget, else its reasoning effort's; nullopt for
// neither (and 0 for "none").
inline std::optional<int64_t> RequestedThinkingBudget(const ChatRequest& r) {
  if (r.thinking_budget) return r.thinking_budget;
  if (r.reasoning_effort) return ThinkingBudgetForEffort(*r.reasoning_effort);
  return std::nullopt;
}

// Whether the caller set a cache breakpoint anywhere (ChatRequest::cache, ContentPart::cache,
// Tool::cache): only
// Anthropic takes them; other providers name "cache_control" as dropped.
inline bool HasCacheMarks(const ChatRequest& r) {
  if (r.cache) return true;
  for (const Tool& t : r.tools) {
    if (t.cache) return true;
  }
  for (const Message& m : r.messages) {
    for (const ContentPart& p : m.content) {
      if (p.cache) return true;
    }
  }
  return false;
}

// What the proxy knows about the target when it encodes a request.
struct TargetInfo {
  std::string provider;  // configured provider name ("openai", "groq", ...)
  std::string model;     // upstream model id ("gpt-4o-mini")
  std::string api_key;   // resolved secret; empty when the provider needs none
  std::string base_url;  // e.g. "https://api.openai.com/v1" (no trailing slash)
};

struct UpstreamRequest {
  std::string method = "POST";
  std::string url;                                           // absolute: base_url + path (+ query)
  std::vector<std::pair<std::string, std::string>> headers;  // auth + content-type + version
  std::string body;
  // What of the caller's request this provider could not take (ChatRequest::extra_fields when
  // its wire format is not the caller's, and what a model's rules removed), for the report.
  std::vector<std::string> dropped;
  // The caller's own body went on (ChatRequest::caller_body), so what only a provider taking it
  // as is can honour (ChatRequest::as_is_only) reaches this one.
  bool as_is = false;
};

// The caller's own body (ChatRequest::caller_body) for a provider that speaks the caller's wire
// format: a copy without iris's routing hints (`models`, `provider`, `providerOptions`), with
// the upstream's model id, in `storage`. Precondition: r.caller_body.
inline boost::json::object CallerBodyFor(const ChatRequest& r, std::string_view model,
                                         boost::json::storage_ptr storage = {}) {
  boost::json::object body(*r.caller_body, std::move(storage));
  for (std::string_view key : {"models", "provider", "providerOptions"}) body.erase(key);
  body["model"] = model;
  return body;
}

// Decodes one upstream stream. Feed it the parsed SSE events in order; it returns the
// neutral events each one produces. An error (malformed JSON, an upstream `error` event,
// an impossible sequence) comes back as a Status (kDataLoss for garbage, kUnavailable for
// an error the upstream reported mid-stream) whose message names the provider.
class StreamTranslator {
 public:
  virtual ~StreamTranslator() = default;
  virtual Result<std::vector<StreamEvent>> OnEvent(const http::SseEvent& event) = 0;
  // The upstream closed the stream. Returns the trailing events, or an error when the
  // stream ended before its terminal marker ([DONE], message_stop, a finishReason) —
  // a truncated answer must never look complete.
  virtual Result<std::vector<StreamEvent>> OnEnd() = 0;
};

class Translator {
 public:
  virtual ~Translator() = default;
  // The request to send. Fails (kInvalidArgument) when the request uses something the
  // provider cannot take; the message says what and which provider.
  virtual Result<UpstreamRequest> EncodeRequest(const ChatRequest& request,
                                                const TargetInfo& target) const = 0;
  // A 2xx non-streaming body.
  virtual Result<ChatResponse> DecodeResponse(std::string_view body) const = 0;
  virtual std::unique_ptr<StreamTranslator> NewStreamTranslator() const = 0;
  // The same for a request sent as is (UpstreamRequest::as_is): a provider whose answers hold
  // more than iris's neutral answer can (Anthropic's server tools' blocks, citations) keeps its
  // own object whole (ChatResponse::as_is) and relays its own stream events
  // (StreamEvent::kAsIs) for the caller of its wire format.
  virtual Result<ChatResponse> DecodeAsIsResponse(std::string_view body) const {
    return DecodeResponse(body);
  }
  virtual std::unique_ptr<StreamTranslator> NewAsIsStreamTranslator() const {
    return NewStreamTranslator();
  }
  // A non-2xx answer: the provider's error body mapped to whose fault it is.
  // `retry_after` is the Retry-After header's value (empty when absent).
  virtual GatewayError DecodeError(int status, std::string_view body,
                                   std::string_view retry_after) const = 0;

  // Embeddings, for the providers that make them: the request to send (always asking for
  // floats), and the 2xx body's vectors in input order. A provider without an embeddings API
  // refuses (kInvalidArgument, naming the provider), which falls over to the next target.
  virtual Result<UpstreamRequest> EncodeEmbeddings(const EmbeddingRequest& request,
                                                   const TargetInfo& target) const {
    (void)request;
    return InvalidArgument(target.provider + " does not make embeddings");
  }
  virtual Result<EmbeddingResponse> DecodeEmbeddings(std::string_view body) const {
    (void)body;
    return InvalidArgument("this provider does not make embeddings");
  }
};

}  // namespace iris::gateway::providers
