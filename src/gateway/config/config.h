// The gateway's configuration: iris.yaml (or the environment alone) turned into one validated,
// immutable snapshot that every worker reads through a shared_ptr<const Config>. Every mistake in
// the file is reported at once, with its key path and line, before the server starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/providers/provider_table.h"

namespace iris::gateway::config {

// Looks up an environment variable; nullopt when unset. Injected so tests never touch the real
// environment. ProcessEnvironment() reads the process's own.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup ProcessEnvironment();

// Provider kinds and their facts (names, default base URL, key variables) live in the one
// provider table.
using providers::ParseProviderKind;
using providers::ProviderKind;
using providers::ProviderKindName;

struct ListenAddress {
  std::string host;   // "127.0.0.1", "::1" (no brackets), "localhost"; "0.0.0.0" for ":port"
  uint16_t port = 0;  // 0 asks the OS for a free port (tests)
};
// Parses "host:port", "[v6]:port" or ":port" (all IPv4 interfaces).
Result<ListenAddress> ParseListenAddress(std::string_view text);
// "localhost", 127.0.0.0/8 or ::1: only this machine can connect.
bool IsLoopbackHost(std::string_view host);

// Which browsers may call the API (CORS). Off by default: a request with an Origin header that
// is not the gateway's own is refused, so a web page cannot spend the operator's keys.
struct CorsConfig {
  std::vector<std::string> allow_origins;  // "https://app.example.com", or "*" for any
};

struct ServerConfig {
  ListenAddress listen{"127.0.0.1", 8080};
  // Host header values served besides the listen address itself (names, with or without a
  // port). On a loopback listen address only loopback names are served unless listed here
  // (DNS rebinding); on a wildcard address every Host is served unless this list is set.
  std::vector<std::string> allowed_hosts;
  CorsConfig cors;
  // Open client connections at most; past it the oldest idle keep-alive connection is closed,
  // and a new connection is refused when none is idle. 0: derived from the descriptor limit.
  int max_connections = 0;
  int threads = 1;                                   // workers; default: hardware threads
  int64_t max_body_bytes = 32 << 20;                 // request bodies carry base64 images
  std::chrono::milliseconds header_timeout{10'000};  // first request line + headers
  std::chrono::milliseconds body_timeout{60'000};    // the rest of the request body
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive between requests
  std::chrono::milliseconds shutdown_grace{30'000};  // in-flight streams get this long
};

struct ProviderConfig {
  std::string name;  // as written under providers:, unique, no '/'
  ProviderKind kind = ProviderKind::kOpenAI;
  std::string base_url;                        // without a trailing '/'; empty for local
  std::string api_key_env;                     // the variable the key was read from; may be empty
  std::string api_key;                         // resolved at load time; empty when none
  std::map<std::string, std::string> headers;  // extra request headers, sent as is
  std::vector<std::string> models;  // model ids offered (for /v1/models and bare-id routing)
  // The kinds that take callers' bodies as written (ProviderFacts::as_is_dialect: openai,
  // anthropic): callers may name what lives in this provider's account (uploaded files, vector
  // stores, containers, skills, stored prompts) in bodies sent as is. Off by default: every key
  // shares the account, so one key could reach what another put there.
  bool account_resources = false;
  // kLocal only.
  std::string model;    // checkpoint directory or Hugging Face repo id
  int threads = 0;      // 0: the engine decides
  std::string compute;  // "" / "exact", or "bf16" (runtime::EngineOptions::compute)
  int max_queue = 64;   // requests waiting for the engine (beyond max_batch running) before 429
  int max_batch = 8;    // generations the engine steps together
  // Rows of a step while generations decode: their tokens plus a chunk of a new prompt (a
  // quarter of step_tokens at least, and from 8 to 16 rows, so more decoders than step_tokens
  // minus that take a step past it). Fewer keep the gaps between tokens short; more bring new
  // prompts to their first token sooner (runtime::SchedulerOptions::step_tokens).
  int step_tokens = 64;
  int64_t kv_cache_mb = 2048;  // the KV cache's budget, taken as it is needed
  // "" / "f32", or "f16" (runtime::EngineOptions::kv_cache_dtype): twice the positions in
  // kv_cache_mb.
  std::string kv_cache_dtype;
  // Bounds checked before the engine works on a request (docs/security.md).
  int max_images = 8;                               // images in one request
  int64_t max_image_pixels = int64_t{4096} * 4096;  // one decoded image
  int64_t max_request_pixels = int64_t{32} << 20;   // all decoded images of one request
  // LoRA adapters of the local model: name -> adapter directory or Hugging Face repo id.
  // Callers pick one with the model id local/<model>:<name>.
  std::map<std::string, std::string> adapters;
  // A provider whose key variable is unset is kept but disabled: routes skip it and the
  // server prints `disabled_reason` ("OPENAI_API_KEY not set").
  bool enabled = true;
  std::string disabled_reason;
};

// Image URLs a caller sends are fetched by iris only for targets that need the bytes (the
// local model, Gemini), only when enabled, and never from internal addresses unless allowed.
struct ImageFetchConfig {
  bool enabled = false;
  // Hosts that may be fetched from: "images.example.com", "*.example.com" (subdomains), or
  // empty for any public host.
  std::vector<std::string> allow_hosts;
  // Fetch from loopback, private, link-local, unique-local ... addresses too (an intranet
  // image server, tests). Off: only public unicast addresses are connected to.
  bool allow_private = false;
  // Go through HTTPS_PROXY/HTTP_PROXY like provider calls; off: always direct, so the
  // address check sees the real destination.
  bool use_proxy = false;
  int64_t max_bytes = 10 << 20;               // one fetched image
  int max_per_request = 8;                    // URLs fetched for one request
  std::chrono::milliseconds timeout{10'000};  // one fetch, connect to last byte
};

// What one request may make iris do. Every bound a caller can push on lives here, with a
// default a real client never reaches.
struct LimitsConfig {
  int max_images = 100;                      // image parts in one request (Anthropic's cap)
  int64_t max_image_bytes = 20 << 20;        // one inline image, decoded
  int64_t max_total_image_bytes = 40 << 20;  // all images of one request, inline and fetched
  int max_fallback_models = 8;               // entries of models / routing.models
  int max_provider_hints = 16;               // entries of provider.order / provider.only
  int max_attempts = 10;                     // upstream attempts per request, retries included
  int64_t max_stream_event_bytes = 4 << 20;  // one upstream SSE line or event
  int max_metric_models = 256;  // distinct model labels on /metrics; more fold into "other"
  // Responses API: how long the conversation of a returned response is kept for
  // previous_response_id (0: not kept), and the most one conversation may hold.
  int64_t response_ttl_s = 30 * 24 * 3600;
  int64_t max_conversation_bytes = 16 << 20;
  // store_bodies routes: the most one request's stored prompt and answer may hold together
  // (a larger exchange is answered but not stored, with a warning).
  int64_t max_stored_body_bytes = 16 << 20;
};

// Deadlines of one attempt (connect, first token, gap between chunks) and of the whole request
// across retries and fallbacks (total).
struct Timeouts {
  std::chrono::milliseconds connect{5'000};
  std::chrono::milliseconds first_token{60'000};
  std::chrono::milliseconds idle{60'000};
  std::chrono::milliseconds total{600'000};
};

enum class Strategy { kFallback, kWeighted };
std::string_view StrategyName(Strategy strategy);

struct AliasTarget {
  std::string provider;  // a configured provider's name
  std::string model;     // the upstream model id (may contain '/')
  double weight = 1.0;   // > 0; only meaningful for Strategy::kWeighted
};

// A public model name that stands for an ordered list of upstream targets.
struct ModelAlias {
  std::string name;
  Strategy strategy = Strategy::kFallback;
  std::vector<AliasTarget> targets;  // non-empty, in file order
  int retries = 2;                   // retries of one target before falling over
  Timeouts timeouts;
  // Keep each answered request's prompt and answer in the request log (off by default: they
  // hold what callers wrote). `iris dataset export` turns them into training data.
  bool store_bodies = false;
};

struct BreakerConfig {
  int failure_threshold = 5;  // consecutive failures that open a target's breaker
  std::chrono::milliseconds cooldown{30'000};
};

struct RoutingConfig {
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{8'000};
  // An upstream retry-after longer than this is not slept through: the request falls over to
  // its next target instead.
  std::chrono::milliseconds max_retry_after{10'000};
  BreakerConfig breaker;
};

// USD per million tokens (web searches: per thousand). The prices past input and output are
// optional because the providers price them differently; the cost code decides the fallback.
struct ModelPrice {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
  std::optional<double> cached_input_per_mtok;
  std::optional<double> cache_write_per_mtok;
  std::optional<double> cache_write_1h_per_mtok;  // Anthropic's one-hour cache writes
  std::optional<double> web_search_per_1k;        // USD per 1,000 web searches
};

// Requests and tokens per minute for everyone calling one model name (per-key limits live
// with the keys). 0: no limit.
struct ModelRateLimit {
  int64_t rpm = 0;
  int64_t tpm = 0;
};

// Who may call (docs/http-api.md, "Keys, budgets and limits").
//   auto: keys are required once any key exists, or when the listen address is not loopback;
//         with no keys on a loopback address, calls are open (a developer's own machine).
//   keys: a key is always required.
//   none: nobody is asked for a key; on a non-loopback address serve warns at start.
enum class AuthMode { kAuto, kKeys, kNone };
std::string_view AuthModeName(AuthMode mode);

struct AuthConfig {
  AuthMode mode = AuthMode::kAuto;
  // The variable holding the master key (admin API, /api/*, the dashboard, and every model);
  // resolved at load. Empty master_key: no master key, so the admin API is refused.
  std::string master_key_env = "IRIS_MASTER_KEY";
  std::string master_key;
  // The output a request without max_tokens is budgeted for (its worst case).
  int64_t default_max_tokens = 4096;
  // How often every instance re-reads the key table (a revoked key is refused within this).
  std::chrono::milliseconds key_refresh{500};
  // A budget reservation not settled within this (its instance died) is released.
  std::chrono::milliseconds reservation_ttl{900'000};
  // With a shared state (Redis): how long an instance hands out a slice of a counter far from
  // its limit without asking the state (access/lease_state.h); 0: every request asks.
  std::chrono::milliseconds lease{500};
  // Per requested model name, for all callers together.
  std::map<std::string, ModelRateLimit, std::less<>> model_limits;
};

// What iris does when the shared state (Redis) cannot be reached: refuse calls that need it
// with 503 (closed), or serve them and reconcile spend when it is back (open).
enum class StateFailure { kClosed, kOpen };

// Immutable after load. Pointers into `providers` / `models` stay valid as long as the Config.
struct Config {
  ServerConfig server;
  std::vector<ProviderConfig> providers;  // in file order
  std::vector<ModelAlias> models;         // in file order
  int default_retries = 2;                // `defaults:`; aliases inherit them
  Timeouts default_timeouts;
  RoutingConfig routing;
  ImageFetchConfig image_fetch;
  LimitsConfig limits;
  std::string store;  // a SQLite path or a postgres:// URL; empty = the default location
  AuthConfig auth;
  // redis://HOST:PORT/DB: budgets, reservations, rate buckets and breakers shared by every
  // instance pointing at it. Empty: this instance keeps them in memory.
  std::string state;
  StateFailure state_failure = StateFailure::kClosed;
  std::map<std::string, ModelPrice, std::less<>> pricing;  // model id -> price

  const ProviderConfig* FindProvider(std::string_view name) const;
  const ModelAlias* FindAlias(std::string_view name) const;
  // The local model's provider entry (the first of kind local), or null.
  const ProviderConfig* FindLocal() const;
};

// Parses and validates YAML text. On failure the status is kInvalidArgument and its message
// holds one line per problem, "<source>:<line>: <key path>: <what is wrong>", all of them, sorted
// by line. `source_name` only labels the messages.
Result<std::shared_ptr<const Config>> LoadConfigString(std::string_view yaml, const EnvLookup& env,
                                                       std::string_view source_name = "iris.yaml");
// Reads `path` and calls LoadConfigString (kNotFound when it cannot be read).
// The operator's secrets a Config holds (provider keys, the values of provider headers whose
// names speak of keys, tokens, auth, secrets, passwords, cookies, credentials or signatures,
// the master key), non-empty, for redaction wherever a caller may have pasted them.
std::vector<std::string> OperatorSecrets(const Config& config);

Result<std::shared_ptr<const Config>> LoadConfigFile(const std::string& path, const EnvLookup& env);

// The configuration when there is no file: every cloud provider whose key is in the environment
// (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or GOOGLE_API_KEY, MISTRAL_API_KEY), plus
// `local` when `local_model` is not empty. No aliases; server defaults.
Result<std::shared_ptr<const Config>> ConfigFromEnvironment(const EnvLookup& env,
                                                            std::string local_model);

}  // namespace iris::gateway::config
