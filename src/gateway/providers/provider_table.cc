#include "gateway/providers/provider_table.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "base/utf8.h"
#include "gateway/api/errors.h"
#include "gateway/http/headers.h"
#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/gemini/gemini_translator.h"
#include "gateway/providers/openai/openai_translator.h"

namespace iris::gateway::providers {

namespace {

using Names = std::string_view;

// Names of the kinds.
constexpr Names kCompatAliases[] = {"openai_compatible"};
constexpr Names kGoogleSegments[] = {"google"};
constexpr Names kMistralSegments[] = {"mistralai"};

// Model id families (protocols.md and each provider's model list).
constexpr Names kOpenAIPrefixes[] = {"gpt-", "chatgpt-"};
constexpr Names kOpenAIFamilies[] = {"o1", "o3", "o4"};
constexpr Names kAnthropicPrefixes[] = {"claude-"};
constexpr Names kGeminiPrefixes[] = {"gemini-", "gemma-"};
constexpr Names kMistralPrefixes[] = {"mistral-",   "ministral-", "codestral-",   "pixtral-",
                                      "magistral-", "devstral-",  "open-mistral-"};
constexpr Names kLocalSubstrings[] = {"smolvlm"};

// Key variables.
constexpr Names kOpenAIKeys[] = {"OPENAI_API_KEY"};
constexpr Names kAnthropicKeys[] = {"ANTHROPIC_API_KEY"};
constexpr Names kGeminiKeys[] = {"GEMINI_API_KEY", "GOOGLE_API_KEY"};
constexpr Names kMistralKeys[] = {"MISTRAL_API_KEY"};

// Error codes that refine a status (each provider's error reference).
constexpr StatusHint kOpenAIHints[] = {
    {"insufficient_quota", ErrorSignal::kBilling},
    {"invalid_api_key", ErrorSignal::kKeyRejected},
};
constexpr StatusHint kAnthropicHints[] = {
    {"authentication_error", ErrorSignal::kKeyRejected},
    {"permission_error", ErrorSignal::kKeyRejected},
    {"billing_error", ErrorSignal::kBilling},
    {"rate_limit_error", ErrorSignal::kRateLimited},
    {"overloaded_error", ErrorSignal::kOverloaded},
    {"timeout_error", ErrorSignal::kTimeout},
};
constexpr StatusHint kGeminiHints[] = {
    {"API_KEY_INVALID", ErrorSignal::kKeyRejected},
    {"UNAUTHENTICATED", ErrorSignal::kKeyRejected},
    {"PERMISSION_DENIED", ErrorSignal::kKeyRejected},
    {"FAILED_PRECONDITION", ErrorSignal::kBilling},  // billing or region: the operator's account
    {"RESOURCE_EXHAUSTED", ErrorSignal::kRateLimited},
    {"UNAVAILABLE", ErrorSignal::kOverloaded},
    {"DEADLINE_EXCEEDED", ErrorSignal::kTimeout},
};

std::unique_ptr<Translator> OpenAI(std::string name) {
  return MakeOpenAITranslator(OpenAIFlavor::kOpenAI, std::move(name));
}
std::unique_ptr<Translator> Mistral(std::string name) {
  return MakeOpenAITranslator(OpenAIFlavor::kMistral, std::move(name));
}
std::unique_ptr<Translator> Compatible(std::string name) {
  return MakeOpenAITranslator(OpenAIFlavor::kCompatible, std::move(name));
}
std::unique_ptr<Translator> Anthropic(std::string name) {
  return MakeAnthropicTranslator(std::move(name));
}
std::unique_ptr<Translator> Gemini(std::string name) {
  return MakeGeminiTranslator(std::move(name));
}

const std::array<ProviderFacts, 6> kTable = {{
    {.kind = ProviderKind::kOpenAI,
     .name = "openai",
     .model_prefixes = kOpenAIPrefixes,
     .model_families = kOpenAIFamilies,
     .example_model = "gpt-4o-mini",
     .default_base_url = "https://api.openai.com/v1",
     .key_env = kOpenAIKeys,
     .status_hints = kOpenAIHints,
     .takes_image_urls = true,
     .as_is_dialect = Dialect::kResponses,
     .as_is_api = "OpenAI's Responses API",
     .make_translator = &OpenAI},
    {.kind = ProviderKind::kAnthropic,
     .name = "anthropic",
     .model_prefixes = kAnthropicPrefixes,
     .example_model = "claude-haiku-4-5",
     .default_base_url = "https://api.anthropic.com/v1",
     .key_env = kAnthropicKeys,
     .status_hints = kAnthropicHints,
     .takes_image_urls = true,
     .as_is_dialect = Dialect::kAnthropic,
     .as_is_api = "Anthropic's Messages API",
     .list_header = "anthropic-beta",
     .make_translator = &Anthropic},
    {.kind = ProviderKind::kGemini,
     .name = "gemini",
     .model_segments = kGoogleSegments,
     .model_prefixes = kGeminiPrefixes,
     .example_model = "gemini-2.5-flash",
     .default_base_url = "https://generativelanguage.googleapis.com/v1beta",
     .key_env = kGeminiKeys,
     .status_hints = kGeminiHints,
     .takes_image_urls = false,  // inline bytes only
     .signs_tool_calls = true,
     .make_translator = &Gemini},
    {.kind = ProviderKind::kMistral,
     .name = "mistral",
     .model_segments = kMistralSegments,
     .model_prefixes = kMistralPrefixes,
     .example_model = "mistral-small-latest",
     .default_base_url = "https://api.mistral.ai/v1",
     .key_env = kMistralKeys,
     .takes_image_urls = true,
     .make_translator = &Mistral},
    {.kind = ProviderKind::kOpenAICompatible,
     .name = "openai-compatible",
     .kind_aliases = kCompatAliases,
     .status_hints = kOpenAIHints,
     .takes_image_urls = true,
     .make_translator = &Compatible},
    {.kind = ProviderKind::kLocal,
     .name = "local",
     .model_substrings = kLocalSubstrings,
     .takes_image_urls = false,  // the engine decodes bytes
     .make_translator = nullptr},
}};

bool Contains(std::span<const std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::span<const ProviderFacts> AllProviderKinds() { return kTable; }

const ProviderFacts& FactsOf(ProviderKind kind) { return kTable[static_cast<size_t>(kind)]; }

std::string_view ProviderKindName(ProviderKind kind) { return FactsOf(kind).name; }

std::optional<ProviderKind> ParseProviderKind(std::string_view name) {
  for (const ProviderFacts& f : kTable) {
    if (f.name == name || Contains(f.kind_aliases, name)) return f.kind;
  }
  return std::nullopt;
}

std::optional<ProviderKind> KindForSegment(std::string_view segment) {
  for (const ProviderFacts& f : kTable) {
    if (f.kind == ProviderKind::kOpenAICompatible) continue;
    if (f.name == segment || Contains(f.model_segments, segment)) return f.kind;
  }
  return std::nullopt;
}

std::optional<ProviderKind> AsIsKindOf(Dialect dialect) {
  for (const ProviderFacts& f : kTable) {
    if (f.as_is_dialect == dialect) return f.kind;
  }
  return std::nullopt;
}

std::optional<ProviderKind> KindForModelId(std::string_view model) {
  const std::string id = http::ToLower(model);
  for (const ProviderFacts& f : kTable) {
    for (std::string_view s : f.model_substrings) {
      if (id.find(s) != std::string::npos) return f.kind;
    }
    for (std::string_view p : f.model_prefixes) {
      if (id.starts_with(p)) return f.kind;
    }
    for (std::string_view p : f.model_families) {
      if (id.starts_with(p) && (id.size() == p.size() || id[p.size()] == '-')) return f.kind;
    }
  }
  return std::nullopt;
}

ErrorSignal SignalOf(ProviderKind kind, std::string_view code) {
  if (code.empty()) return ErrorSignal::kNone;
  for (const StatusHint& h : FactsOf(kind).status_hints) {
    if (h.code == code) return h.signal;
  }
  return ErrorSignal::kNone;
}

ErrorClass ClassifyUpstreamStatus(int status, ErrorSignal signal) {
  switch (signal) {
    case ErrorSignal::kKeyRejected:
    case ErrorSignal::kBilling:
      return ErrorClass::kUpstream;
    case ErrorSignal::kRateLimited:
      return ErrorClass::kRateLimited;
    case ErrorSignal::kOverloaded:
      return ErrorClass::kOverloaded;
    case ErrorSignal::kTimeout:
      return ErrorClass::kUpstreamTimeout;
    case ErrorSignal::kNone:
      break;
  }
  switch (status) {
    case 401:
    case 402:
    case 403:
    case 409:
    case 425:
      return ErrorClass::kUpstream;
    case 404:
    case 410:
      return ErrorClass::kNotFound;
    case 408:
    case 504:
      return ErrorClass::kUpstreamTimeout;
    case 413:
      return ErrorClass::kPayloadTooLarge;
    case 429:
      return ErrorClass::kRateLimited;
    case 503:
    case 529:
      return ErrorClass::kOverloaded;
    default:
      break;
  }
  if (status >= 400 && status <= 499) return ErrorClass::kInvalidRequest;
  return ErrorClass::kUpstream;
}

namespace {

// What an upstream wrote, as iris repeats it: without its surrounding white space, credentials
// redacted (before the cut, so that no cut leaves part of one), as CutUtf8 cuts it. `collapse`
// makes each run of white space one space (a page's indentation and line breaks).
std::string Quote(std::string_view text, size_t max, bool collapse = false) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return "";
  text = text.substr(first, text.find_last_not_of(kSpace) - first + 1);
  std::string out;
  if (collapse) {
    out.reserve(std::min(text.size(), 4 * max));
    for (size_t i = 0; i < text.size() && out.size() < 4 * max; ++i) {
      const bool space = kSpace.find(text[i]) != std::string_view::npos;
      if (!space) {
        out.push_back(text[i]);
      } else if (out.back() != ' ') {
        out.push_back(' ');
      }
    }
  } else {
    out.assign(text);
  }
  return CutUtf8(api::RedactSecrets(std::move(out)), max);
}

}  // namespace

GatewayError MakeUpstreamError(std::string_view provider, int status, UpstreamErrorBody body,
                               std::string_view retry_after_header,
                               std::optional<double> body_retry_after_s) {
  GatewayError e;
  e.provider = std::string(provider);
  e.upstream_status = status;
  e.error_class = ClassifyUpstreamStatus(status, body.signal);
  e.retry_after_s = ParseRetryAfter(retry_after_header);
  if (!e.retry_after_s) e.retry_after_s = body_retry_after_s;
  // A wait is a number of seconds iris can act on and write back in a header: "infs" or 1e300
  // (a body's hint reads as either) would overflow the whole seconds a Retry-After carries.
  if (e.retry_after_s && (!std::isfinite(*e.retry_after_s) || *e.retry_after_s < 0)) {
    e.retry_after_s.reset();
  } else if (e.retry_after_s) {
    e.retry_after_s = std::min(*e.retry_after_s, kMaxUpstreamRetryAfterS);
  }
  // What the upstream wrote goes to callers inside JSON: valid UTF-8 only (a text body, or
  // one cut at a length, may hold anything).
  e.code = Quote(body.code, kMaxUpstreamCodeBytes);
  e.param = Quote(body.param, kMaxUpstreamCodeBytes);
  const bool key = body.signal == ErrorSignal::kKeyRejected ||
                   (body.signal == ErrorSignal::kNone && (status == 401 || status == 403));
  const bool billing =
      body.signal == ErrorSignal::kBilling || (body.signal == ErrorSignal::kNone && status == 402);
  std::string_view what;
  if (key) {
    // The key is the gateway operator's, not the caller's: not an authentication error of
    // the client, who could do nothing about it.
    e.code = "upstream_authentication";
    e.param.clear();
    what = status == 403 ? "refused the configured API key" : "rejected the API key";
  } else if (billing) {
    what = "quota or credit exhausted";
  } else {
    switch (e.error_class) {
      case ErrorClass::kRateLimited:
        what = "rate limit";
        break;
      case ErrorClass::kInvalidRequest:
        what = "rejected the request";
        break;
      case ErrorClass::kNotFound:
        what = "did not find it";
        break;
      case ErrorClass::kPayloadTooLarge:
        what = "says the request is too large";
        break;
      case ErrorClass::kUpstreamTimeout:
        what = "timed out";
        break;
      case ErrorClass::kOverloaded:
        what = "is overloaded";
        break;
      default:
        what = status >= 500 ? "failed" : "answered";
        break;
    }
  }
  e.message = std::string(provider);
  e.message += ' ';
  e.message += what;
  e.message += " (";
  e.message += std::to_string(status);
  e.message += "): ";
  std::string quoted = Quote(body.message, kMaxUpstreamMessageBytes);
  if (quoted.empty()) quoted = Quote(body.text, kMaxQuotedBodyBytes, /*collapse=*/true);
  e.message += quoted.empty() ? "(empty body)" : quoted;
  return e;
}

}  // namespace iris::gateway::providers
