// The gateway's request pipeline: decode the caller's dialect, plan the route, try each
// target (cloud through its translator and the upstream client, or the local engine) with
// retries, fallback and a circuit breaker, stream the answer back, and say what happened.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/published.h"
#include "gateway/access/access.h"
#include "gateway/api/chat.h"
#include "gateway/config/config.h"
#include "gateway/http/server.h"
#include "gateway/observe/metrics.h"
#include "gateway/observe/pricing.h"
#include "gateway/observe/record.h"
#include "gateway/observe/request_log.h"
#include "gateway/providers/translator.h"
#include "gateway/proxy/browser_guard.h"
#include "gateway/routing/breaker.h"
#include "gateway/tuning/jobs.h"
#include "gateway/upstream/client.h"

namespace iris::gateway::providers {
class LocalProvider;
}

namespace iris::gateway::proxy {

using observe::AttemptRecord;
using observe::RequestSummary;

struct GatewayOptions {
  std::shared_ptr<const config::Config> config;
  providers::LocalProvider* local = nullptr;   // not owned; null when there is no local model
  observe::RequestLog* request_log = nullptr;  // not owned; every finished request goes to it
  access::Access* access = nullptr;            // not owned; null: no keys, no limits
  tuning::Jobs* finetune = nullptr;            // not owned; null: no local model to fine-tune
  std::string store = "none";  // the store's spec (ParseStoreSpec) for the admin API
  upstream::ClientOptions client;
  // Called once per finished request (on a worker thread; must not block).
  std::function<void(const RequestSummary&)> on_request;
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();

  // The server's handler.
  boost::asio::awaitable<void> Handle(http::Request& request, http::ResponseWriter& writer);

  // From now on /readyz answers 503 (the server is draining).
  void SetDraining() { draining_.store(true); }

  // Everything derived from one configuration, swapped whole by Reload(). A request keeps the
  // snapshot it started with to its end.
  struct Snapshot {
    std::shared_ptr<const config::Config> config;
    observe::PriceTable prices;
    std::optional<BrowserGuard> guard;
    upstream::ClientOptions fetch_client;  // for caller-supplied image URLs
    std::shared_ptr<routing::BreakerRegistry> breakers;
    // Each enabled cloud provider's translator, by its configured name (from the provider
    // table; the local provider has none).
    std::unordered_map<std::string, std::unique_ptr<providers::Translator>> translators;
    uint64_t generation = 0;

    const providers::Translator* TranslatorFor(const std::string& provider) const {
      auto it = translators.find(provider);
      return it == translators.end() ? nullptr : it->second.get();
    }
  };
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.load(); }

  // Switches to `config` for every request that starts from now on; requests in flight finish
  // with the configuration they started with. Breaker state is kept unless the breaker
  // settings changed. The server's own settings (listen address, threads, timeouts) and the
  // local model are not reloaded: the caller says so. Thread-safe.
  void Reload(std::shared_ptr<const config::Config> config);

  // Prometheus metrics of every finished request; gauges are added by the owner.
  observe::GatewayMetrics& metrics() { return metrics_; }
  routing::BreakerRegistry& breakers() { return *snapshot()->breakers; }

 private:
  friend class Call;
  upstream::Client& ClientFor(boost::asio::io_context& io);
  // The worker's client for caller-supplied image URLs: its own pool (none), no provider
  // credentials or traffic ever pass through it.
  upstream::Client& FetchClientFor(boost::asio::io_context& io, const Snapshot& snapshot);

  // GET /v1/models, in the OpenAI shape or, for Anthropic SDK callers, Anthropic's, and the AI
  // SDK gateway protocol's GET .../config (the same models with their prices); only the models
  // the caller's key may use.
  boost::asio::awaitable<void> Models(const http::Request& request, http::ResponseWriter& writer,
                                      const access::Caller& caller);
  // admin_keys.cc: /admin/keys (master key) and the dashboard's /admin/login, /admin/logout.
  boost::asio::awaitable<void> AdminKeys(const http::Request& request,
                                         http::ResponseWriter& writer);
  boost::asio::awaitable<void> AdminLogin(const http::Request& request,
                                          http::ResponseWriter& writer);
  // admin_finetune.cc: /admin/finetune (start, list, follow, stop fine-tuning jobs; master
  // key) and the dashboard's read-only GET /api/finetune.
  boost::asio::awaitable<void> AdminFinetune(const http::Request& request,
                                             http::ResponseWriter& writer);
  // Whether `request` may read the operator's pages (/api/*, /metrics) or change keys
  // (/admin/*); the refusal to send when not.
  std::optional<GatewayError> CheckAdmin(const http::Request& request) const;
  // The 429 for an address that sent too many wrong master keys (access/attempts.h).
  static GatewayError TooManyWrongKeys(double retry_after_s);
  // GET /api/usage and /api/requests, answered from the request log on a query thread.
  boost::asio::awaitable<void> Api(const http::Request& request, http::ResponseWriter& writer);

  GatewayOptions options_;
  Published<const Snapshot> snapshot_{nullptr};
  std::mutex reload_mu_;  // one Reload at a time
  observe::GatewayMetrics metrics_;
  std::atomic<bool> draining_{false};
  boost::asio::thread_pool query_pool_{1};  // store queries block: never on a worker
};

}  // namespace iris::gateway::proxy
