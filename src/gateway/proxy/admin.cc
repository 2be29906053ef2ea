// The read-only admin endpoints: GET /v1/models in either dialect (and the AI SDK gateway
// protocol's GET .../config), GET /api/usage and
// /api/requests (the dashboard's data), answered from the request log on a query thread, and
// GET /api/local (the local engine's live counters).
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <tuple>

#include "base/json.h"
#include "gateway/api/ai_gateway.h"
#include "gateway/api/anthropic.h"
#include "gateway/api/errors.h"
#include "gateway/api/openai.h"
#include "gateway/providers/local/local_provider.h"
#include "gateway/proxy/call.h"
#include "net/url.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace {
Result<int64_t> IntParam(std::string_view query, std::string_view key, int64_t fallback) {
  IRIS_ASSIGN_OR_RETURN(std::string v, net::QueryParam(query, key));
  if (v.empty()) return fallback;
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) {
    return InvalidArgument(std::string(key) + ": expected an integer, got '" + v + "'");
  }
  return out;
}

// Runs one /api query against the request log (blocking) and encodes its JSON. `access`
// (may be null) names the API keys.
Result<std::string> ApiQuery(observe::RequestLog& log, const access::Access* access, bool usage,
                             const std::string& query) {
  if (usage) {
    observe::UsageQuery q;
    IRIS_ASSIGN_OR_RETURN(q.since_unix_ms,
                          IntParam(query, "since", NowUnixMs() - 24 * 3600 * 1000LL));
    IRIS_ASSIGN_OR_RETURN(q.until_unix_ms, IntParam(query, "until", 0));
    IRIS_ASSIGN_OR_RETURN(q.caller_key, net::QueryParam(query, "key"));
    q.by_day = q.by_model = q.by_provider = q.by_key = true;
    IRIS_ASSIGN_OR_RETURN(observe::UsageReport r, log.Usage(q));
    if (access != nullptr) {
      for (const auto& k : access->Keys()) {
        for (observe::UsageStats& g : r.by_key) {
          if (g.key == k->id) g.label = k->name;
        }
      }
    }
    return observe::UsageJson(r);
  }
  observe::RequestsQuery q;
  IRIS_ASSIGN_OR_RETURN(int64_t limit, IntParam(query, "limit", 50));
  q.limit = static_cast<int>(std::clamp<int64_t>(limit, 1, 500));
  IRIS_ASSIGN_OR_RETURN(q.before_unix_ms, IntParam(query, "before", 0));
  IRIS_ASSIGN_OR_RETURN(int64_t status, IntParam(query, "status", 0));
  q.http_status = static_cast<int>(status);
  IRIS_ASSIGN_OR_RETURN(q.provider, net::QueryParam(query, "provider"));
  IRIS_ASSIGN_OR_RETURN(q.model, net::QueryParam(query, "model"));
  IRIS_ASSIGN_OR_RETURN(q.caller_key, net::QueryParam(query, "key"));
  IRIS_ASSIGN_OR_RETURN(observe::RequestsPage page, log.Requests(q));
  return observe::RequestsJson(page);
}

// The local engine's step times since start: {"p50", "p99"} in whole milliseconds, rounded up
// (1001: over a second), and the exact "mean"; null before the first step.
boost::json::value StepTimes(const providers::LocalStats& s) {
  std::array<uint64_t, std::tuple_size_v<decltype(s.steps_by_ms)>> counts{};
  uint64_t total = 0;
  for (size_t ms = 0; ms < counts.size(); ++ms) total += counts[ms] = s.steps_by_ms[ms].load();
  if (total == 0) return nullptr;
  auto at = [&](double q) {  // the least time that q of the steps took at most
    const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
    uint64_t seen = 0;
    for (size_t ms = 0; ms < counts.size(); ++ms) {
      if ((seen += counts[ms]) >= rank) return ms;
    }
    return counts.size() - 1;
  };
  return boost::json::object{{"p50", at(0.5)},
                             {"p99", at(0.99)},
                             {"mean", s.step_seconds.load() * 1e3 / static_cast<double>(total)}};
}

// The local engine's counters as the dashboard reads them; {"enabled": false} without one.
std::string LocalJson(const providers::LocalProvider* local) {
  boost::json::object o;
  o["enabled"] = local != nullptr;
  if (local == nullptr) return SerializeJson(o);
  const providers::LocalStats& s = local->stats();
  const providers::LocalOptions& opt = local->options();
  o["model"] = "local/" + local->model_name();
  boost::json::array adapters;
  for (const auto& [name, adapter] : opt.adapters) {
    adapters.push_back(boost::json::string("local/" + local->model_name() + ":" + name));
  }
  o["adapters"] = std::move(adapters);
  o["max_batch"] = opt.max_batch;
  o["max_queue"] = opt.max_queue;
  o["running"] = s.running.load();
  o["queued"] = s.queued.load();
  o["completed"] = s.completed.load();
  o["output_tokens"] = s.output_tokens.load();
  o["decode_tokens_per_s"] = s.last_decode_tokens_per_s.load();
  o["kv_blocks_in_use"] = s.kv_blocks_in_use.load();
  o["kv_blocks_total"] = s.kv_blocks_total.load();
  o["kv_block_bytes"] = s.kv_block_bytes.load();
  o["prefix_hit_tokens"] = s.prefix_hit_tokens.load();
  o["image_cache_hits"] = s.image_cache_hits.load();
  o["image_cache_misses"] = s.image_cache_misses.load();
  o["steps"] = s.steps.load();
  // Steps by the number of sequences in them, only sizes that occurred.
  boost::json::array batches;
  for (size_t n = 1; n < s.steps_by_sequences.size(); ++n) {
    const uint64_t c = s.steps_by_sequences[n].load();
    if (c != 0) batches.push_back(boost::json::object{{"sequences", n}, {"steps", c}});
  }
  o["steps_by_sequences"] = std::move(batches);
  o["step_ms"] = StepTimes(s);
  return SerializeJson(o);
}

}  // namespace

GatewayError Gateway::TooManyWrongKeys(double retry_after_s) {
  const double wait = std::max(1.0, std::ceil(retry_after_s));
  GatewayError e =
      Err(ErrorClass::kRateLimited, "too many wrong master keys from this address; try again in " +
                                        std::to_string(static_cast<int64_t>(wait)) + " s");
  e.retry_after_s = wait;
  return e;
}

std::optional<GatewayError> Gateway::CheckAdmin(const http::Request& req) const {
  const bool keys_api = req.path.starts_with("/admin/");
  access::Access* access = options_.access;
  if (access != nullptr) {
    double retry_after_s = 0;
    switch (access->CheckAdmin(req.headers, req.remote, retry_after_s)) {
      case access::Access::AdminVerdict::kAdmin:
        return std::nullopt;
      case access::Access::AdminVerdict::kThrottled:
        return TooManyWrongKeys(retry_after_s);
      case access::Access::AdminVerdict::kNoKey:
      case access::Access::AdminVerdict::kWrongKey:
        break;
    }
  }
  // Open as before when nobody needs a key (a loopback address without keys); the key API
  // never is.
  if (!keys_api && (access == nullptr || !access->Required())) return std::nullopt;
  if (access == nullptr || !access->HasMasterKey()) {
    return Err(ErrorClass::kPermission,
               "this endpoint needs the master key, and none is set: put a long random value in "
               "IRIS_MASTER_KEY (or the variable auth.master_key_env names) and restart");
  }
  GatewayError e = Err(ErrorClass::kAuthentication,
                       "this endpoint needs the master key: send \"Authorization: Bearer "
                       "<master key>\", or log in to the dashboard");
  e.code = "invalid_api_key";
  return e;
}

awaitable<void> Gateway::Api(const http::Request& req, http::ResponseWriter& w) {
  if (req.path == "/api/local") {
    co_await w.Send(200, JsonHeaders(), LocalJson(options_.local));
    co_return;
  }
  if (options_.request_log == nullptr) {
    co_await w.Send(503, JsonHeaders(),
                    api::OpenAIErrorBody(Err(ErrorClass::kOverloaded, "the request log is off")));
    co_return;
  }
  const std::string query = req.query;
  const bool usage = req.path == "/api/usage";
  // The query runs on the query thread; this coroutine resumes on its worker afterwards.
  // Hop to the query thread for the blocking store query, then back to this worker.
  auto worker = co_await asio::this_coro::executor;
  co_await asio::post(query_pool_, use_awaitable);
  Result<std::string> body = ApiQuery(*options_.request_log, options_.access, usage, query);
  co_await asio::post(worker, use_awaitable);
  if (!body.ok()) {
    GatewayError e = api::FromStatus(body.status());
    co_await w.Send(api::HttpStatus(e.error_class), JsonHeaders(), api::OpenAIErrorBody(e));
    co_return;
  }
  co_await w.Send(200, JsonHeaders(), std::move(body).value());
}

awaitable<void> Gateway::Models(const http::Request& req, http::ResponseWriter& w,
                                const access::Caller& caller) {
  struct Entry {
    ModelInfo info;
    std::string provider;
    std::string description;
    std::optional<observe::Price> price;
  };
  std::vector<Entry> models;
  const std::shared_ptr<const Snapshot> snap = snapshot();
  auto price_of = [&](std::string_view provider, std::string_view model) {
    const config::ProviderConfig* p = snap->config->FindProvider(provider);
    return TargetPrice(snap->prices, p != nullptr && p->kind == config::ProviderKind::kLocal,
                       model);
  };
  for (const config::ModelAlias& a : snap->config->models) {
    std::string targets;
    for (const config::AliasTarget& t : a.targets) {
      targets += (targets.empty() ? "" : ", ") + t.provider + "/" + t.model;
    }
    models.push_back({{a.name, 0, "iris"},
                      "iris",
                      "alias for " + targets,
                      price_of(a.targets.front().provider, a.targets.front().model)});
  }
  for (const config::ProviderConfig& p : snap->config->providers) {
    if (!p.enabled) continue;
    std::vector<std::string> names = p.models;
    if (p.kind == config::ProviderKind::kLocal && options_.local != nullptr) {
      names.insert(names.begin(), options_.local->model_name());
      size_t at = 1;
      for (const auto& [name, adapter] : options_.local->options().adapters) {
        names.insert(names.begin() + static_cast<ptrdiff_t>(at++),
                     options_.local->model_name() + ":" + name);
      }
    }
    for (const std::string& m : names) {
      models.push_back({{p.name + "/" + m, 0, p.name}, p.name, {}, price_of(p.name, m)});
    }
  }
  if (caller.key && !caller.key->models.empty()) {
    std::erase_if(models,
                  [&](const Entry& m) { return !access::AllowsModel(*caller.key, m.info.id); });
  }
  // (Not a conditional expression inside co_await: GCC 12 destroys its temporary twice.)
  std::string body;
  if (req.path.ends_with("/config")) {
    std::vector<api::AiGatewayModel> list;
    for (const Entry& m : models) {
      api::AiGatewayModel g;
      g.id = m.info.id;
      g.provider = m.provider;
      g.description = m.description;
      if (m.price) {
        g.input_per_mtok = m.price->input_per_mtok;
        g.output_per_mtok = m.price->output_per_mtok;
        g.cached_input_per_mtok = m.price->cached_input_per_mtok;
        g.cache_write_per_mtok = m.price->cache_write_per_mtok;
      }
      list.push_back(std::move(g));
    }
    body = api::EncodeAiGatewayConfig(list);
  } else {
    std::vector<ModelInfo> list;
    for (const Entry& m : models) list.push_back(m.info);
    if (req.headers.Has("anthropic-version")) {
      body = api::EncodeAnthropicModelList(list);
    } else {
      body = api::EncodeOpenAIModelList(list);
    }
  }
  co_await w.Send(200, JsonHeaders(), std::move(body));
}

}  // namespace iris::gateway::proxy
