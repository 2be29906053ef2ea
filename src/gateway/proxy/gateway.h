// The gateway's request pipeline: decode the caller's dialect, plan the route, try each
// target (cloud through its translator and the upstream client, or the local engine) with
// retries, fallback and a circuit breaker, stream the answer back, and say what happened.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gateway/api/chat.h"
#include "gateway/config/config.h"
#include "gateway/http/server.h"
#include "gateway/observe/pricing.h"
#include "gateway/providers/translator.h"
#include "gateway/routing/breaker.h"
#include "gateway/upstream/client.h"

namespace iris::gateway::providers {
class LocalProvider;
}

namespace iris::gateway::proxy {

// One try of one target, as the caller's `iris.attempts` and the request log see it.
struct AttemptRecord {
  std::string provider;
  std::string model;
  std::string outcome;  // "ok", "error", "skipped"
  int status = 0;       // upstream HTTP status (0: none, e.g. a connect error or local)
  std::string error;    // empty when ok
  std::string error_class;
  double latency_ms = 0;
  double ttft_ms = -1;  // -1: no token arrived
};

// What a finished request reports, in its final body/chunk and to observers.
struct RequestSummary {
  std::string request_id;
  Dialect dialect = Dialect::kOpenAI;
  std::string requested_model;
  std::string alias;
  std::string provider;  // the target that answered (empty when none did)
  std::string model;
  bool stream = false;
  int http_status = 200;
  std::string error_class;  // empty on success
  std::string error;
  std::vector<AttemptRecord> attempts;
  double latency_ms = 0;
  double ttft_ms = -1;
  double overhead_ms = 0;  // latency minus time spent waiting on upstreams or the engine
  Usage usage;
  std::optional<double> cost_usd;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
};

struct GatewayOptions {
  std::shared_ptr<const config::Config> config;
  providers::LocalProvider* local = nullptr;  // not owned; null when there is no local model
  upstream::ClientOptions client;
  // Limits for image URLs fetched for providers that need bytes (local, Gemini).
  size_t max_image_bytes = 20 << 20;
  std::chrono::milliseconds image_fetch_timeout{10000};
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
  routing::BreakerRegistry& breakers() { return *breakers_; }

 private:
  friend class Call;
  upstream::Client& ClientFor(boost::asio::io_context& io);
  const providers::Translator& TranslatorFor(config::ProviderKind kind) const;

  boost::asio::awaitable<void> Models(http::ResponseWriter& writer);

  GatewayOptions options_;
  std::shared_ptr<const config::Config> config_;
  observe::PriceTable prices_;
  std::unique_ptr<routing::BreakerRegistry> breakers_;
  std::unique_ptr<providers::Translator> openai_, mistral_, compat_, anthropic_, gemini_;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace iris::gateway::proxy
