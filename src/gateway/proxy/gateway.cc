// The gateway's front door: browser defences for every path, then the route table (chat
// calls go to the pipeline in call.h, the rest to admin.cc and the built-in endpoints), and
// the per-configuration snapshot that Reload() swaps.
#include "gateway/proxy/gateway.h"

#include <boost/asio/io_context.hpp>
#include <map>

#include "gateway/api/errors.h"
#include "gateway/observe/web_assets.h"
#include "gateway/providers/provider_table.h"
#include "gateway/proxy/call.h"
#include "gateway/proxy/image_fetch.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
using asio::awaitable;

namespace {
http::Headers MetricsHeaders() {
  http::Headers h;
  h.Add("content-type", std::string(observe::GatewayMetrics::kContentType));
  return h;
}
http::Headers AssetHeaders(std::string_view content_type) {
  http::Headers h;
  h.Add("content-type", std::string(content_type));
  h.Add("cache-control", "no-cache");
  return h;
}
}  // namespace

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)) { Reload(options_.config); }

void Gateway::Reload(std::shared_ptr<const config::Config> config) {
  std::lock_guard lock(reload_mu_);
  std::shared_ptr<const Snapshot> old = snapshot_.load();
  auto next = std::make_shared<Snapshot>();
  next->config = config;
  std::vector<observe::PriceEntry> overrides;
  for (const auto& [model, p] : config->pricing) {
    observe::PriceEntry e;
    e.model = model;
    e.price.input_per_mtok = p.input_per_mtok;
    e.price.output_per_mtok = p.output_per_mtok;
    e.price.cached_input_per_mtok = p.cached_input_per_mtok;
    e.price.cache_write_per_mtok = p.cache_write_per_mtok;
    e.price.cache_write_1h_per_mtok = p.cache_write_1h_per_mtok;
    e.price.web_search_per_1k = p.web_search_per_1k;
    overrides.push_back(std::move(e));
  }
  next->prices = observe::PriceTable(overrides);
  next->guard.emplace(config->server);
  next->fetch_client = ImageFetchClientOptions(config->image_fetch, options_.client);
  const config::BreakerConfig& b = config->routing.breaker;
  if (old && old->config->routing.breaker.failure_threshold == b.failure_threshold &&
      old->config->routing.breaker.cooldown == b.cooldown &&
      old->config->limits.max_metric_models == config->limits.max_metric_models) {
    next->breakers = old->breakers;  // the targets' health carries over
  } else {
    next->breakers = std::make_shared<routing::BreakerRegistry>(
        b, static_cast<size_t>(config->limits.max_metric_models));
  }
  for (const config::ProviderConfig& p : config->providers) {
    const auto make = providers::FactsOf(p.kind).make_translator;
    if (p.enabled && make != nullptr) next->translators[p.name] = make(p.name);
  }
  next->generation = old ? old->generation + 1 : 0;
  metrics_.SetMaxModelLabels(config->limits.max_metric_models);
  if (options_.access != nullptr) options_.access->Reload(config);
  snapshot_.store(std::move(next));
}

Gateway::~Gateway() { query_pool_.join(); }

namespace {
// Each worker's upstream client lives as a service of that worker's io_context, so the
// io_context decides when it goes: after the coroutines still suspended at shutdown (and the
// exchanges they hold) are destroyed, and before the timers and sockets it owns lose their
// services.
class ClientService : public asio::execution_context::service {
 public:
  using key_type = ClientService;
  static inline asio::execution_context::id id;
  explicit ClientService(asio::execution_context& context) : service(context) {}
  std::unique_ptr<upstream::Client> client;  // touched only on the io_context's thread

 private:
  void shutdown() override {}
};

// The same for the clients of caller-supplied image URLs, one per configuration generation.
class FetchClientService : public asio::execution_context::service {
 public:
  using key_type = FetchClientService;
  static inline asio::execution_context::id id;
  explicit FetchClientService(asio::execution_context& context) : service(context) {}
  std::map<uint64_t, std::unique_ptr<upstream::Client>> clients;  // the io_context's thread only

 private:
  void shutdown() override {}
};
}  // namespace

upstream::Client& Gateway::ClientFor(asio::io_context& io) {
  auto& service = asio::use_service<ClientService>(io);
  if (!service.client) service.client = std::make_unique<upstream::Client>(io, options_.client);
  return *service.client;
}

upstream::Client& Gateway::FetchClientFor(asio::io_context& io, const Snapshot& snapshot) {
  // One client per configuration generation: a reload that changes image_fetch gets a fresh
  // client, while fetches in flight keep the one they started on (kept until shutdown;
  // reloads are rare).
  auto& service = asio::use_service<FetchClientService>(io);
  std::unique_ptr<upstream::Client>& client = service.clients[snapshot.generation];
  if (!client) client = std::make_unique<upstream::Client>(io, snapshot.fetch_client);
  return *client;
}

namespace {
// The AI SDK gateway protocol's paths, under the base URL a caller gives createGateway:
// /v4/ai (the protocol's current version) or /v3/ai (the client's default). The rest of the
// path ("/language-model", "/config", ...), or nullopt for another path.
std::optional<std::string_view> AiGatewayPath(std::string_view path) {
  for (std::string_view base : {"/v4/ai/", "/v3/ai/"}) {
    if (path.starts_with(base)) return path.substr(base.size() - 1);
  }
  return std::nullopt;
}

// The model calls: POST to a path (with or without the /v1 prefix) in a dialect.
std::optional<Dialect> CallDialect(const http::Request& req) {
  if (req.method != "POST") return std::nullopt;
  if (const std::optional<std::string_view> ai = AiGatewayPath(req.path)) {
    if (*ai == "/language-model") return Dialect::kAiGateway;
    if (*ai == "/embedding-model") return Dialect::kAiGatewayEmbeddings;
    return std::nullopt;
  }
  std::string_view path = req.path;
  if (path.starts_with("/v1/")) path.remove_prefix(3);
  if (path == "/chat/completions") return Dialect::kOpenAI;
  if (path == "/messages") return Dialect::kAnthropic;
  if (path == "/responses") return Dialect::kResponses;
  if (path == "/embeddings") return Dialect::kEmbeddings;
  return std::nullopt;
}

// Requests whose JSON body changes something: a page elsewhere may not send them as a form.
bool IsApiPost(const http::Request& req) {
  if (req.method == "PATCH" || (req.method == "POST" && req.path.starts_with("/admin/"))) {
    return !req.body.empty() || req.method == "PATCH";
  }
  return CallDialect(req).has_value();
}
http::Headers PreflightHeaders(const http::Request& req) {
  http::Headers h;
  h.Add("access-control-allow-methods", "GET, POST, OPTIONS");
  std::string asked(req.headers.Get("access-control-request-headers"));
  // Echo the asked headers only when they are a plain token list.
  bool plain = asked.size() <= 1024;
  for (char c : asked) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                      c == ',' || c == ' ');
  }
  h.Add("access-control-allow-headers",
        plain && !asked.empty() ? asked
                                : "authorization, content-type, x-api-key, anthropic-version");
  h.Add("access-control-max-age", "600");
  return h;
}
}  // namespace

awaitable<void> Gateway::Handle(http::Request& req, http::ResponseWriter& w) {
  const std::string& path = req.path;
  // Browser defences first, for every path: a rebinding name or a foreign page gets nothing.
  const bool anthropic_caller =
      req.headers.Has("anthropic-version") || req.headers.Has("x-api-key");
  const Dialect caller = AiGatewayPath(path) ? Dialect::kAiGateway
                         : anthropic_caller  ? Dialect::kAnthropic
                                             : Dialect::kOpenAI;
  const std::shared_ptr<const Snapshot> snap = snapshot();
  const BrowserGuard& guard = *snap->guard;
  if (Status host = guard.CheckHost(req.headers); !host.ok()) {
    GatewayError e = api::FromStatus(host);
    co_await w.Send(api::HttpStatus(e.error_class), JsonHeaders(), ErrorBody(caller, e));
    co_return;
  }
  const BrowserGuard::OriginDecision origin = guard.CheckOrigin(req.headers);
  if (!origin.allowed) {
    GatewayError e = Err(ErrorClass::kPermission,
                         "cross-origin requests from this origin are not allowed (list it in "
                         "server.cors.allow_origins in iris.yaml to allow a browser app)");
    co_await w.Send(403, JsonHeaders(), ErrorBody(caller, e));
    co_return;
  }
  if (!origin.allow_origin.empty()) {
    w.AddDefaultHeader("access-control-allow-origin", origin.allow_origin);
    w.AddDefaultHeader("vary", "origin");
  }
  if (req.method == "OPTIONS") {
    co_await w.Send(204, PreflightHeaders(req), "");
    co_return;
  }
  if (IsApiPost(req)) {
    if (Status ct = BrowserGuard::CheckJsonContentType(req.headers); !ct.ok()) {
      GatewayError e = api::FromStatus(ct);
      co_await w.Send(400, JsonHeaders(), ErrorBody(caller, e));
      co_return;
    }
  }
  if (const std::optional<Dialect> dialect = CallDialect(req)) {
    Call call(*this, req, w, *dialect);
    co_await call.Run();
    co_return;
  }
  if (req.method == "GET" &&
      (path == "/v1/models" || path == "/models" || AiGatewayPath(path) == "/config")) {
    access::Caller who;
    if (options_.access != nullptr) {
      if (auto refused = options_.access->Identify(req.headers, who)) {
        co_await w.Send(api::HttpStatus(refused->error_class), JsonHeaders(),
                        ErrorBody(caller, *refused));
        co_return;
      }
    }
    co_await Models(req, w, who);
    co_return;
  }
  if (path == "/admin/login" || path == "/admin/logout") {
    if (req.method != "POST") {
      co_await w.Send(405, JsonHeaders(),
                      api::OpenAIErrorBody(Err(ErrorClass::kInvalidRequest, "use POST")));
      co_return;
    }
    co_await AdminLogin(req, w);
    co_return;
  }
  if (path.starts_with("/admin/") || path.starts_with("/api/") || path == "/metrics") {
    if (auto refused = CheckAdmin(req)) {
      http::Headers h = JsonHeaders();
      if (refused->retry_after_s) {
        h.Add("retry-after", std::to_string(static_cast<int64_t>(*refused->retry_after_s)));
      }
      co_await w.Send(api::HttpStatus(refused->error_class), std::move(h),
                      ErrorBody(caller, *refused));
      co_return;
    }
  }
  if (path == "/admin/keys" || path.starts_with("/admin/keys/")) {
    if (options_.store == "none") {
      co_await w.Send(
          503, JsonHeaders(),
          api::OpenAIErrorBody(
              Err(ErrorClass::kOverloaded, "keys live in the store, which is off (--db none)")));
      co_return;
    }
    co_await AdminKeys(req, w);
    co_return;
  }
  if (path == "/admin/finetune" || path.starts_with("/admin/finetune/") ||
      (req.method == "GET" && path == "/api/finetune")) {
    co_await AdminFinetune(req, w);
    co_return;
  }
  if (req.method == "GET" && path == "/healthz") {
    co_await w.Send(200, JsonHeaders(), R"({"status":"ok"})");
    co_return;
  }
  if (req.method == "GET" && path == "/readyz") {
    if (draining_.load()) {
      co_await w.Send(503, JsonHeaders(), R"({"status":"draining"})");
    } else {
      co_await w.Send(200, JsonHeaders(), R"({"status":"ready"})");
    }
    co_return;
  }
  if (req.method == "GET" &&
      (path == "/api/usage" || path == "/api/requests" || path == "/api/local")) {
    co_await Api(req, w);
    co_return;
  }
  if (req.method == "GET" && path == "/metrics") {
    co_await w.Send(200, MetricsHeaders(), metrics_.Exposition());
    co_return;
  }
  if (req.method == "GET") {
    if (const observe::Asset* asset = observe::FindAsset(path)) {
      co_await w.Send(
          200, AssetHeaders(asset->content_type),
          std::string(reinterpret_cast<const char*>(asset->bytes.data()), asset->bytes.size()));
      co_return;
    }
  }
  GatewayError e = Err(ErrorClass::kNotFound,
                       "no route for " + req.method + " " + path.substr(0, 200) +
                           " (try POST /v1/chat/completions, POST /v1/responses, "
                           "POST /v1/messages, POST /v1/embeddings, GET /v1/models, or the AI "
                           "SDK gateway protocol under /v4/ai)");
  std::string body = ErrorBody(caller, e);
  co_await w.Send(api::HttpStatus(e.error_class), JsonHeaders(), std::move(body));
}

}  // namespace iris::gateway::proxy
