// The one internal request/response vocabulary of the gateway. Every inbound dialect
// (OpenAI chat, Anthropic messages) decodes into ChatRequest and encodes from ChatResponse /
// StreamEvent; every provider translator encodes from ChatRequest and decodes into them.
// Adding a dialect or a provider never changes this file's users, only adds one codec.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace iris::gateway {

enum class Role { kSystem, kUser, kAssistant, kTool };

// A prompt-cache breakpoint the caller set on a block (Anthropic's cache_control, which the AI
// SDK spells providerOptions.anthropic.cacheControl and OpenAI-shaped clients put on content
// parts): the prompt up to and including the block may be cached. Anthropic takes it; OpenAI
// and Gemini cache prompts by themselves, and the others not at all.
struct CacheMark {
  std::string ttl;  // "" (the provider's default, 5 minutes), "5m" or "1h"
};

// One piece of a message's content.
struct ContentPart {
  enum class Type { kText, kImage };
  Type type = Type::kText;
  std::string text;  // kText
  // kImage: exactly one of `url` (an http(s) URL) or `data_base64` (inline bytes) is set.
  std::string url;
  std::string media_type;          // "image/png", ... for inline data (may be empty for a URL)
  std::string data_base64;         // base64 without the "data:...;base64," prefix
  std::string detail;              // OpenAI's "low" / "high" / "auto"; empty when not given
  std::optional<CacheMark> cache;  // a cache breakpoint after this part

  static ContentPart Text(std::string t) {
    ContentPart p;
    p.text = std::move(t);
    return p;
  }
};

struct ToolCall {
  std::string id;  // as the producing side spelled it (call_..., toolu_..., 9 chars)
  std::string name;
  std::string arguments;  // JSON text exactly as the model produced it ("{}" when none)
  // The provider's signature of the call (Gemini's thoughtSignature), which it wants back with
  // the call in the next turn. Callers' SDKs cannot carry it: iris keeps it by call id
  // (proxy/tool_signatures.cc) and puts it back.
  std::string signature;
};

struct Message {
  Role role = Role::kUser;
  std::vector<ContentPart> content;  // may be empty for an assistant turn with tool calls
  std::vector<ToolCall> tool_calls;  // kAssistant only
  std::string tool_call_id;          // kTool only: the call this result answers
  std::string name;                  // optional participant name (OpenAI `name`)
  bool is_error = false;             // kTool: Anthropic tool_result is_error
};

struct Tool {
  std::string name;
  std::string description;
  boost::json::value parameters;  // JSON Schema object (null when the tool takes none)
  bool strict = false;
  std::optional<CacheMark> cache;  // a cache breakpoint after this tool (and those before it)
};

struct ToolChoice {
  enum class Mode { kAuto, kNone, kRequired, kTool };
  Mode mode = Mode::kAuto;
  std::string name;  // kTool
};

struct ResponseFormat {
  enum class Type { kText, kJsonObject, kJsonSchema };
  Type type = Type::kText;
  std::string name;           // kJsonSchema
  boost::json::value schema;  // kJsonSchema
  bool strict = false;
};

// Per-request routing, as Vercel AI Gateway and OpenRouter accept it in the body.
struct RoutingHints {
  std::vector<std::string> models;  // fallback model list, tried after `model`
  std::vector<std::string> order;   // provider names to try first, in this order
  std::vector<std::string> only;    // provider names allowed (empty: all)
};

// The inbound API a request came through: chat completions, Anthropic messages, OpenAI
// responses, embeddings, and the AI SDK gateway protocol's language and embedding models.
enum class Dialect {
  kOpenAI,
  kAnthropic,
  kResponses,
  kEmbeddings,
  kAiGateway,
  kAiGatewayEmbeddings
};

struct ChatRequest {
  std::string model;              // as the caller named it: alias, provider/model or bare id
  std::vector<Message> messages;  // system messages included, in order
  std::vector<Tool> tools;
  std::optional<ToolChoice> tool_choice;
  std::optional<bool> parallel_tool_calls;
  std::optional<ResponseFormat> response_format;
  std::vector<std::string> stop;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<int64_t> max_tokens;  // max_tokens / max_completion_tokens / Anthropic max_tokens
  std::optional<int64_t> seed;
  std::optional<double> frequency_penalty;
  std::optional<double> presence_penalty;
  // OpenAI's reasoning effort ("minimal", "low", "medium", "high", ...), for the upstreams
  // that take it; the others refuse a request that sets it.
  std::optional<std::string> reasoning_effort;
  // Extended thinking with this budget of tokens (Anthropic's thinking.budget_tokens, Gemini's
  // thinkingBudget). Each provider takes whichever of this and reasoning_effort the caller set,
  // mapped by one table (providers/translator.h).
  std::optional<int64_t> thinking_budget;  // 1..kMaxThinkingBudget
  // A cache breakpoint for the whole prompt, wherever it ends (Anthropic's top-level
  // cache_control); breakpoints on blocks are ContentPart::cache and Tool::cache.
  std::optional<CacheMark> cache;
  bool stream = false;
  bool include_usage = false;  // OpenAI stream_options.include_usage
  std::string user;            // end-user id (OpenAI user / Anthropic metadata.user_id)
  RoutingHints routing;
  Dialect dialect = Dialect::kOpenAI;  // which inbound API it came through
  // The caller's own body (OpenAI chat, Anthropic messages, OpenAI responses), for a provider
  // that speaks the same wire format: it is sent on as the caller wrote it, model and iris's own
  // fields aside, so every field iris does not interpret (cache_control, thinking, metadata,
  // service_tier, hosted tools, future ones) reaches the provider.
  std::shared_ptr<const boost::json::object> caller_body;
  // What of caller_body only a provider taking it as is can honour, one name each
  // ("tools[1] (web_search)", "input[3] (file_search_call)"; at most 33, json_fields.h
  // AddFieldName). A target that would translate the request refuses it, naming them, and the
  // next target is tried.
  std::vector<std::string> as_is_only;
  // The most web searches caller_body's search tools may run, which a budget reserves
  // (Anthropic's web search tools' max_uses, summed; the Responses API's max_tool_calls beside
  // a web_search tool); at most kMaxReservedWebSearches. 0: no search tool, or none bounded.
  int64_t max_web_searches = 0;
  // What of caller_body names something in the provider's account that every caller shares
  // (an uploaded file, a vector store, a container, a stored prompt), one name each; only a
  // provider whose iris.yaml allows it (account_resources) takes the body.
  std::vector<std::string> account_refs;
  // kAnthropic: the caller's `anthropic-beta` header, checked (ParseAnthropicBeta), for
  // Anthropic when it takes the body as is; empty when none.
  std::string anthropic_beta;
  // kResponses: the thread iris resolved into `messages` (previous_response_id, item
  // references), which caller_body alone does not carry.
  struct Thread {
    bool continues = false;
    // The provider that answered the previous response in this wire format itself and keeps
    // it: caller_body goes to it as is, previous_response_id and all. Empty when none did.
    std::string provider;
    // The kept conversation as input items, to put before caller_body's input for a provider
    // that takes the body as is; null when item references were resolved (their ids are
    // iris's own).
    std::shared_ptr<const boost::json::array> items;
  };
  Thread thread;
  // What of the caller's body iris did not interpret: top-level keys, and "cache_control" or
  // "thinking_blocks" found inside. A provider of another wire format cannot take them; they
  // are reported as dropped (x-iris-dropped-fields, iris.warnings). At most 33 names
  // (json_fields.h AddFieldName).
  std::vector<std::string> extra_fields;
};

// The largest thinking budget a caller may ask for (tokens; above any model's output limit).
inline constexpr int64_t kMaxThinkingBudget = 1'000'000;

// The most web searches one request's budget reservation counts (ChatRequest::max_web_searches).
inline constexpr int64_t kMaxReservedWebSearches = 100'000;

enum class FinishReason { kStop, kLength, kToolCalls, kContentFilter, kError };

// Token counts as the provider reported them, normalised: input_tokens includes cached ones.
struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;        // includes reasoning tokens
  int64_t cached_input_tokens = 0;  // read from a prompt cache (subset of input_tokens)
  int64_t cache_write_tokens = 0;   // written to a prompt cache (subset of input_tokens)
  // Written to Anthropic's one-hour cache, billed above its five-minute one (subset of
  // cache_write_tokens).
  int64_t cache_write_1h_tokens = 0;
  int64_t reasoning_tokens = 0;  // subset of output_tokens
  // Web searches the provider ran for the answer and bills by the search, beyond the tokens
  // (Anthropic's web search tool, OpenAI's hosted web_search).
  int64_t web_searches = 0;
  bool reported = false;  // the provider said anything at all

  // Adds another answer's counts (reported when either is).
  Usage& operator+=(const Usage& o) {
    input_tokens += o.input_tokens;
    output_tokens += o.output_tokens;
    cached_input_tokens += o.cached_input_tokens;
    cache_write_tokens += o.cache_write_tokens;
    cache_write_1h_tokens += o.cache_write_1h_tokens;
    reasoning_tokens += o.reasoning_tokens;
    web_searches += o.web_searches;
    reported = reported || o.reported;
    return *this;
  }
};

// A model's reasoning as its provider returned it: Anthropic's thinking blocks (the text and
// the signature that lets a caller send it back) or redacted ones (opaque data). Answers in
// Anthropic's shape carry them back; the AI SDK gateway protocol carries the text as reasoning.
struct ReasoningBlock {
  std::string text;
  std::string signature;
  std::string redacted_data;  // a redacted_thinking block (text and signature empty)
};

// What an OpenAI-shaped provider's chat answer (or one chunk of its stream) held beyond what
// iris reads, by where it sat: OpenAI's `system_fingerprint` and `service_tier`,
// `choices[].logprobs`, `message.annotations`, a compatible server's own members. A caller in
// OpenAI's chat format gets them back as they came; the other wire formats have no place for
// them. Copied out of the provider's JSON (values as they came, `null`s included).
struct OpenAIExtras {
  boost::json::object top;      // beside id, object, created, model, choices, usage
  boost::json::object choice;   // of choices[0], beside index, message or delta, finish_reason
  boost::json::object message;  // of its message (a chunk's delta), beside what iris reads
  // The provider's usage object whole, when it held more than the three counts (OpenAI's
  // token details, say): iris's own counts and cost are written over it. Null otherwise.
  boost::json::value usage;

  bool empty() const { return top.empty() && choice.empty() && message.empty() && usage.is_null(); }
  // Whether a member of the message (a delta) holds something: not null, not "". A chunk of
  // such members alone is answer content (a server's reasoning text, say); one of nulls is not.
  bool MessageHoldsSomething() const {
    for (const auto& kv : message) {
      const boost::json::value& v = kv.value();
      if (!v.is_null() && !(v.is_string() && v.get_string().empty())) return true;
    }
    return false;
  }
};

struct ChatResponse {
  std::string id;
  std::string model;  // the upstream model that answered
  int64_t created = 0;
  std::vector<ReasoningBlock> reasoning;  // before the text, in the order the model gave them
  std::string text;
  std::vector<ToolCall> tool_calls;
  FinishReason finish_reason = FinishReason::kStop;
  std::string stop_sequence;  // the caller's stop string that ended the answer, when known
  Usage usage;
  // The model declined (OpenAI's refusal, in `text`): an answer, though no response schema's.
  bool refused = false;
  // The provider's own answer object when it is in a caller's wire format (as_is_dialect: a
  // Responses API caller answered by OpenAI's Responses API, an Anthropic caller by Anthropic):
  // a caller of that format gets it as it came, with iris's report added; the fields above are
  // what iris read from it (usage, the text logged, the conversation kept).
  std::shared_ptr<const boost::json::object> as_is;
  std::optional<Dialect> as_is_dialect;  // set with as_is
  // An OpenAI-shaped provider's own members beyond these fields; null when there were none.
  std::shared_ptr<const OpenAIExtras> openai_extras;
};

// One step of a streamed answer, provider-neutral. A well-formed stream is:
// kStart, then any mix of kReasoning* / kTextDelta / kToolCallStart / kToolCallDelta, then
// kFinish, optionally kUsage (before or after kFinish), and nothing after the stream's end.
struct StreamEvent {
  enum class Type {
    kStart,
    kTextDelta,
    kToolCallStart,
    kToolCallDelta,
    kFinish,
    kUsage,
    kReasoningDelta,      // text: a piece of reasoning block `index`
    kReasoningSignature,  // text: the signature of reasoning block `index` (ends it)
    kRedactedReasoning,   // text: the data of redacted reasoning block `index`
    // name, text: one event of a stream in a caller's own wire format (as_is_dialect: an
    // OpenAI Responses stream to a Responses caller, an Anthropic stream to an Anthropic
    // caller), its SSE event name and data, relayed as it came to a caller of that format; the
    // neutral events decoded from it follow it, for accounting.
    kAsIs,
    // An OpenAI-shaped chunk that held only members iris does not read (a compatible server's
    // `delta.reasoning_content`, say): `openai_extras` carries them; nothing else does.
    kExtras,
  };
  Type type = Type::kTextDelta;
  std::string text;  // kTextDelta; kToolCallDelta: a fragment of the arguments JSON
  int index = 0;     // kToolCall* : 0-based tool call index; kReasoning*: reasoning block
  std::string id;    // kStart: response id; kToolCallStart: tool call id
  std::string name;  // kToolCallStart: function name; kAsIs: the SSE event name
  std::optional<Dialect> as_is_dialect;  // kAsIs: the wire format of the event
  // kAsIs: answer content that no neutral event after it stands for (a hosted or server tool at
  // work shows the upstream answering as surely as a token does): it commits the stream.
  bool as_is_content = false;
  std::string model;                                 // kStart: upstream model
  FinishReason finish_reason = FinishReason::kStop;  // kFinish
  std::string stop_sequence;  // kFinish: the stop string that fired, when the upstream said
  Usage usage;                // kUsage
  int64_t created = 0;        // kStart: the upstream's creation time (unix seconds); 0 unknown
  std::string signature;      // kToolCallStart: the provider's signature of the call
  bool refusal = false;       // kTextDelta: the text is the model's refusal (OpenAI's)
  // The members of the provider's chunk iris does not read, on the first event made of the
  // chunk that carries answer content (else its first event, else a kExtras event).
  std::shared_ptr<const OpenAIExtras> openai_extras;
};

// Adds one neutral stream event to the answer it belongs to (kAsIs events add nothing: the
// neutral events read from them follow them).
inline void FoldStreamEvent(ChatResponse& r, const StreamEvent& e) {
  if (e.index < 0) return;  // (no translator makes one)
  const auto at = static_cast<size_t>(e.index);
  switch (e.type) {
    case StreamEvent::Type::kStart:
      if (!e.id.empty()) r.id = e.id;
      if (!e.model.empty()) r.model = e.model;
      if (e.created != 0) r.created = e.created;
      break;
    case StreamEvent::Type::kTextDelta:
      r.text += e.text;
      if (e.refusal) r.refused = true;
      break;
    case StreamEvent::Type::kToolCallStart:
      if (r.tool_calls.size() <= at) r.tool_calls.resize(at + 1);
      r.tool_calls[at].id = e.id;
      r.tool_calls[at].name = e.name;
      r.tool_calls[at].signature = e.signature;
      break;
    case StreamEvent::Type::kToolCallDelta:
      if (r.tool_calls.size() <= at) r.tool_calls.resize(at + 1);
      r.tool_calls[at].arguments += e.text;
      break;
    case StreamEvent::Type::kFinish:
      r.finish_reason = e.finish_reason;
      break;
    case StreamEvent::Type::kUsage:
      r.usage = e.usage;
      break;
    case StreamEvent::Type::kAsIs:
    case StreamEvent::Type::kExtras:  // (a chunk's own members are not folded into an answer)
      break;
    case StreamEvent::Type::kReasoningDelta:
    case StreamEvent::Type::kReasoningSignature:
    case StreamEvent::Type::kRedactedReasoning: {
      if (r.reasoning.size() <= at) r.reasoning.resize(at + 1);
      ReasoningBlock& b = r.reasoning[at];
      (e.type == StreamEvent::Type::kReasoningDelta       ? b.text
       : e.type == StreamEvent::Type::kReasoningSignature ? b.signature
                                                          : b.redacted_data) += e.text;
      break;
    }
  }
}

// Whose fault a failure was; decides the HTTP status and the error body in each dialect
// (api/errors.h holds the one map).
enum class ErrorClass {
  kInvalidRequest,   // 400: the caller's request is malformed or unsupported
  kAuthentication,   // 401: missing or wrong gateway key
  kPermission,       // 403: the key may not do this (policy)
  kNotFound,         // 404: unknown model / route / path
  kPayloadTooLarge,  // 413
  kRateLimited,      // 429: a gateway limit or budget (policy)
  kUpstream,         // 502: the provider failed or answered garbage
  kUpstreamTimeout,  // 504: the provider did not answer in time
  kOverloaded,       // 503/529: every target is unavailable or the gateway is shutting down
  kInternal,         // 500: a bug in iris
};

struct GatewayError {
  ErrorClass error_class = ErrorClass::kInternal;
  std::string message;      // a sentence a person can act on
  std::string code;         // optional machine code ("model_not_found", "context_length", ...)
  std::string param;        // optional offending request field
  int upstream_status = 0;  // when an upstream answered: its status
  std::string provider;     // when an upstream is at fault: its name
  std::optional<double> retry_after_s;  // from a 429/503 upstream or a local limit
};

// POST /v1/embeddings: texts (or token arrays, which only OpenAI-shaped upstreams take) to
// vectors. Routed like a chat request: aliases, fallback, usage and cost.
struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> texts;                  // string inputs, in order
  std::vector<std::vector<int64_t>> token_inputs;  // token-array inputs (exclusive with texts)
  bool base64 = false;                             // encoding_format: base64 (float32 LE)
  std::optional<int64_t> dimensions;
  std::string user;
  RoutingHints routing;
  size_t size() const { return texts.empty() ? token_inputs.size() : texts.size(); }
};

struct EmbeddingResponse {
  std::string model;                        // the upstream model that answered
  std::vector<std::vector<float>> vectors;  // one per input, in input order
  Usage usage;
};

// One entry of a model list (GET /v1/models), in either dialect.
struct ModelInfo {
  std::string id;
  int64_t created = 0;  // unix seconds
  std::string owned_by;
};

}  // namespace iris::gateway
