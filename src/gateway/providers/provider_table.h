// Every provider kind iris speaks, in one table: its names in iris.yaml and in model ids, its
// default base URL and key variables, its translator, and the error codes its bodies use that
// refine an HTTP status. Config parsing, routing, /v1/models and the proxy read this table;
// nothing else spells these facts.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gateway/api/chat.h"
#include "gateway/providers/translator.h"

namespace iris::gateway::providers {

enum class ProviderKind { kOpenAI, kAnthropic, kGemini, kMistral, kOpenAICompatible, kLocal };

// What a provider's error body says beyond its HTTP status (see ClassifyUpstreamStatus).
enum class ErrorSignal {
  kNone,
  kKeyRejected,  // the configured key is invalid or lacks access
  kBilling,      // the operator's account is out of credit or quota
  kRateLimited,  // slow down and retry
  kOverloaded,   // the provider is overloaded
  kTimeout,      // the provider timed out
};

// One error code of a provider's bodies (`error.type`, `error.code`, `error.status`, a
// details `reason`) and what it signals.
struct StatusHint {
  std::string_view code;
  ErrorSignal signal;
};

struct ProviderFacts {
  ProviderKind kind = ProviderKind::kOpenAI;
  std::string_view name = {};  // the `kind:` of iris.yaml, and the provider's name by default
  // Other spellings accepted as `kind:` (and as the first segment of "kind/model").
  std::span<const std::string_view> kind_aliases = {};
  // First segments of "segment/model" ids that mean this kind ("google/gemini-2.5-flash").
  std::span<const std::string_view> model_segments = {};
  // Bare model ids that mean this kind: ids starting with a prefix, equal to a family name or
  // starting with family + "-", or containing a substring (all compared lower-case).
  std::span<const std::string_view> model_prefixes = {};
  std::span<const std::string_view> model_families = {};
  std::span<const std::string_view> model_substrings = {};
  std::string_view example_model = {};     // a cheap current model, for examples ("" when none)
  std::string_view default_base_url = {};  // "" when iris.yaml must give one
  // Environment variables holding the key, first found wins; empty when none is needed.
  std::span<const std::string_view> key_env = {};
  std::span<const StatusHint> status_hints = {};
  // The provider fetches http(s) image URLs itself; otherwise iris fetches them and sends the
  // bytes (under image_fetch in iris.yaml).
  bool takes_image_urls = false;
  // The provider signs the tool calls it makes and wants the signature back with them in the
  // next turn (Gemini's thoughtSignature): iris keeps signatures by call id for it.
  bool signs_tool_calls = false;
  // The inbound API whose bodies may hold what only this kind can honour (ChatRequest::
  // as_is_only), which it takes as written (UpstreamRequest::as_is), and its name in messages;
  // none for most.
  std::optional<Dialect> as_is_dialect = std::nullopt;
  std::string_view as_is_api = {};
  // A request header whose value is a list (Anthropic's anthropic-beta): the operator's value
  // (iris.yaml `headers`) and the one the translator set from the caller's are sent joined, as
  // one field; "" for none.
  std::string_view list_header = {};
  // The translator of a cloud kind (`provider_name` appears in its messages); null for local.
  std::unique_ptr<Translator> (*make_translator)(std::string provider_name) = nullptr;
};

// Every kind, in ProviderKind's order.
std::span<const ProviderFacts> AllProviderKinds();
const ProviderFacts& FactsOf(ProviderKind kind);
// The kind named `name` in iris.yaml (a name or one of its aliases).
std::optional<ProviderKind> ParseProviderKind(std::string_view name);
std::string_view ProviderKindName(ProviderKind kind);
// The kind a "segment/model" id's first segment stands for ("google", "openai", ...); never
// openai-compatible, which is not one provider.
std::optional<ProviderKind> KindForSegment(std::string_view segment);
// The kind a bare model id belongs to by its well-known prefix ("gpt-4o" -> openai).
std::optional<ProviderKind> KindForModelId(std::string_view model);
// The kind that takes a body of `dialect` as written (ProviderFacts::as_is_dialect), if any.
std::optional<ProviderKind> AsIsKindOf(Dialect dialect);
// The signal of an error code in `kind`'s bodies; kNone when it has none.
ErrorSignal SignalOf(ProviderKind kind, std::string_view code);

// The one map from an upstream's error status (and what its body signalled) to whose fault it
// is, for every provider alike:
//   401, 403 or kKeyRejected  kUpstream (the operator's key; the caller can do nothing)
//   402 or kBilling           kUpstream (the operator's account)
//   429 or kRateLimited       kRateLimited
//   408, 504 or kTimeout      kUpstreamTimeout
//   503, 529 or kOverloaded   kOverloaded
//   other 5xx                 kUpstream
//   404, 410                  kNotFound
//   413                       kPayloadTooLarge
//   409, 425                  kUpstream (a transient conflict, retried by routing/retry.h)
//   other 4xx                 kInvalidRequest (the request itself is wrong: retry.h neither
//                             retries nor falls over)
//   anything else             kUpstream
// A signal wins over the status.
ErrorClass ClassifyUpstreamStatus(int status, ErrorSignal signal = ErrorSignal::kNone);

// The parts of a provider's error body the gateway reports.
struct UpstreamErrorBody {
  std::string message;  // the provider's own words ("" when it gave none)
  std::string code;     // its error code or type, reported as the error's `code`
  std::string param;    // the offending parameter, when named
  ErrorSignal signal = ErrorSignal::kNone;
  // The body as it came. When no message could be read from it (a proxy's HTML page, plain
  // text, JSON of another shape), its first kMaxQuotedBodyBytes are the message.
  std::string_view text;
};

// The longest wait an upstream's retry-after can ask for: a day (longer ones are read as a day).
inline constexpr double kMaxUpstreamRetryAfterS = 86400;
// How much of what an upstream wrote iris repeats to callers and keeps in its request log: a
// provider's message, a body quoted in its place, and its error code or parameter.
inline constexpr size_t kMaxUpstreamMessageBytes = 1000;
inline constexpr size_t kMaxQuotedBodyBytes = 300;
inline constexpr size_t kMaxUpstreamCodeBytes = 100;

// The GatewayError of a non-2xx answer: class from ClassifyUpstreamStatus, retry-after from
// the header (or the body's hint when the header has none; not finite or negative: none; at
// most kMaxUpstreamRetryAfterS), and one message shape for every provider: "<provider> <what
// happened> (<status>): <message>". The message is the provider's, else the body quoted
// ("(empty body)" for none); what the provider wrote is cut at the bounds above ("..." marks
// a cut) and made UTF-8.
GatewayError MakeUpstreamError(std::string_view provider, int status, UpstreamErrorBody body,
                               std::string_view retry_after_header,
                               std::optional<double> body_retry_after_s = std::nullopt);

}  // namespace iris::gateway::providers
