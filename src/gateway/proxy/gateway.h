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
#include <string>
#include <unordered_map>

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

  const config::Config& config() const { return *config_; }
  // Prometheus metrics of every finished request; gauges are added by the owner.
  observe::GatewayMetrics& metrics() { return metrics_; }
  routing::BreakerRegistry& breakers() { return *breakers_; }

 private:
  friend class Call;
  upstream::Client& ClientFor(boost::asio::io_context& io);
  // The worker's client for caller-supplied image URLs: its own pool (none), no provider
  // credentials or traffic ever pass through it.
  upstream::Client& FetchClientFor(boost::asio::io_context& io);
  const providers::Translator& TranslatorFor(config::ProviderKind kind) const;

  // GET /v1/models, in the OpenAI shape or, for Anthropic SDK callers, Anthropic's.
  boost::asio::awaitable<void> Models(const http::Request& request, http::ResponseWriter& writer);
  // GET /api/usage and /api/requests, answered from the request log on a query thread.
  boost::asio::awaitable<void> Api(const http::Request& request, http::ResponseWriter& writer);

  GatewayOptions options_;
  std::shared_ptr<const config::Config> config_;
  observe::PriceTable prices_;
  observe::GatewayMetrics metrics_;
  std::unique_ptr<routing::BreakerRegistry> breakers_;
  std::unique_ptr<providers::Translator> openai_, mistral_, compat_, anthropic_, gemini_;
  std::atomic<bool> draining_{false};
  boost::asio::thread_pool query_pool_{1};  // store queries block: never on a worker
  upstream::ClientOptions fetch_client_options_;
  BrowserGuard guard_;
};

}  // namespace iris::gateway::proxy
