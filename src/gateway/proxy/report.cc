// The end of every request: what the caller sees about it (the iris extras object and
// x-iris-* headers, error bodies) and what is recorded (metrics, the request log).
#include <algorithm>
#include <cmath>

#include "base/utf8.h"
#include "gateway/api/errors.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {

constexpr size_t kMaxStoredError = 2048;  // per request and per attempt, in the request log
}  // namespace

GatewayError Err(ErrorClass error_class, std::string message) {
  GatewayError e;
  e.error_class = error_class;
  e.message = std::move(message);
  return e;
}

http::Headers JsonHeaders() { return http::Headers{{"content-type", "application/json"}}; }
http::Headers SseHeaders() {
  return http::Headers{{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}};
}

std::string ErrorBody(Dialect dialect, const GatewayError& e, std::string_view model) {
  switch (dialect) {
    case Dialect::kAnthropic:
      return api::AnthropicErrorBody(e);
    case Dialect::kAiGateway:
    case Dialect::kAiGatewayEmbeddings:
      return api::AiGatewayErrorBody(e, model);
    case Dialect::kOpenAI:
    case Dialect::kResponses:
    case Dialect::kEmbeddings:
      break;
  }
  return api::OpenAIErrorBody(e);
}

std::optional<observe::Price> TargetPrice(const observe::PriceTable& prices, bool local,
                                          std::string_view model) {
  if (local) {
    // The local model is free unless iris.yaml prices it (as "local/<model>"; a cloud model's
    // price of the same name is not its).
    return prices.FindExact("local/" + std::string(model)).value_or(observe::Price{});
  }
  return prices.Find(model);
}

std::optional<double> Call::ListCost(const routing::Target& t, const Usage& u) const {
  if (!u.reported) return std::nullopt;
  auto p = TargetPrice(snap_->prices, t.kind == config::ProviderKind::kLocal, t.model);
  if (!p) return std::nullopt;
  return observe::CostUsd(*p, u);
}

std::optional<double> Call::Cost(const routing::Target& t, const Usage& u) {
  std::optional<double> cost = ListCost(t, u);
  if (cost && u.web_searches > 0 &&
      !observe::PricesWebSearches(
          *TargetPrice(snap_->prices, t.kind == config::ProviderKind::kLocal, t.model), u)) {
    const std::string target = t.provider + "/" + t.model;
    auto it = std::find_if(unpriced_searches_.begin(), unpriced_searches_.end(),
                           [&](const auto& e) { return e.first == target; });
    if (it == unpriced_searches_.end()) {
      unpriced_searches_.emplace_back(target, u.web_searches);
    } else {
      it->second += u.web_searches;
    }
  }
  return cost;
}

json::object Call::IrisObject(json::storage_ptr storage) const {
  json::object o(10, storage);
  o["request_id"] = summary_.request_id;
  if (!summary_.alias.empty()) o["route"] = summary_.alias;
  o["provider"] = summary_.provider;
  o["model"] = summary_.model;
  json::array attempts(storage);
  for (const AttemptRecord& a : summary_.attempts) {
    json::object j(7, storage);
    j["provider"] = a.provider;
    j["model"] = a.model;
    j["outcome"] = a.outcome;
    j["latency_ms"] = std::round(a.latency_ms * 1000) / 1000;
    if (a.status) j["status"] = a.status;
    if (!a.error.empty()) j["error"] = a.error;
    if (!a.error_class.empty() && a.outcome != "ok") j["error_class"] = a.error_class;
    attempts.push_back(std::move(j));
  }
  o["attempts"] = std::move(attempts);
  o["latency_ms"] = std::round(Ms(Clock::now() - start_) * 1000) / 1000;
  if (summary_.ttft_ms >= 0) o["ttft_ms"] = std::round(summary_.ttft_ms * 1000) / 1000;
  o["overhead_ms"] = std::round(summary_.overhead_ms * 1000) / 1000;
  if (summary_.cost_usd) {
    o["cost_usd"] = *summary_.cost_usd;
  } else {
    o["cost_usd"] = nullptr;  // unknown price: said, not guessed
  }
  if (std::vector<std::string> all = Warnings(); !all.empty()) {
    json::array warnings(storage);
    for (const std::string& w : all) warnings.emplace_back(w);
    o["warnings"] = std::move(warnings);
  }
  return o;
}

std::vector<std::string> Call::Warnings() const {
  std::vector<std::string> out = summary_.warnings;
  for (const std::string& field : target_dropped_) {
    out.push_back(field + " was not passed to " + summary_.provider + "/" + summary_.model +
                  ", which does not take it");
  }
  for (const auto& [target, n] : unpriced_searches_) {
    out.push_back(std::to_string(n) + " web search" + (n == 1 ? " by " : "es by ") + target +
                  (n == 1 ? " is" : " are") +
                  " not in cost_usd: its price has no web_search_per_1k (pricing in iris.yaml)");
  }
  return out;
}

http::Headers Call::IrisHeaders(http::Headers h) const {
  h.Add("x-iris-request-id", summary_.request_id);
  if (!summary_.provider.empty()) h.Add("x-iris-provider", summary_.provider);
  if (!summary_.model.empty()) h.Add("x-iris-model", summary_.model);
  if (!summary_.alias.empty()) h.Add("x-iris-route", summary_.alias);
  h.Add("x-iris-attempts", std::to_string(summary_.attempts.size()));
  if (!dropped_.empty() || !target_dropped_.empty()) {
    // (Names only: each was checked to be a plain field, provider or option name.)
    std::string names;
    for (const api::DroppedField& d : dropped_) names += (names.empty() ? "" : ", ") + d.feature;
    for (const std::string& f : target_dropped_) names += (names.empty() ? "" : ", ") + f;
    h.Add("x-iris-dropped-fields", names);
  }
  return h;
}

awaitable<void> Call::SendError(const GatewayError& e, std::string log_detail) {
  // A request that failed after trying targets is attributed to the last one it tried.
  for (auto it = summary_.attempts.rbegin(); it != summary_.attempts.rend(); ++it) {
    if (summary_.provider.empty() && it->outcome != "skipped") {
      summary_.provider = it->provider;
      summary_.model = it->model;
    }
  }
  summary_.http_status = api::HttpStatusFor(e, summary_.dialect);
  if (discarded_usage_.reported) {  // answers made and billed, then discarded
    summary_.usage = discarded_usage_;
    summary_.cost_usd = discarded_cost_usd_;
  }
  summary_.error_class = std::string(api::ErrorClassName(e.error_class));
  summary_.error = log_detail.empty() ? e.message : e.message + " [" + log_detail + "]";
  summary_.latency_ms = Ms(Clock::now() - start_);
  summary_.overhead_ms = std::max(0.0, summary_.latency_ms - Ms(waiting_));
  http::Headers h = IrisHeaders(JsonHeaders());
  if (e.retry_after_s && e.error_class == ErrorClass::kRateLimited) {
    h.Add("retry-after", std::to_string(static_cast<int64_t>(std::ceil(*e.retry_after_s))));
  }
  GatewayError shown = e;
  CutAtCharacter(shown.message, 4 * kMaxStoredError);
  std::string body = ErrorBody(summary_.dialect, shown, req_.model);
  summary_.bytes_out = static_cast<int64_t>(body.size());
  const int status = summary_.http_status;
  Finish();  // hands the summary over: not used after this
  co_await w_.Send(status, std::move(h), std::move(body));
}

void Call::Finish() {
  Account();
  Log();
}

void Call::Account() {
  if (summary_.latency_ms == 0) summary_.latency_ms = Ms(Clock::now() - start_);
  if (summary_.error.empty()) summary_.warnings = Warnings();
  Settle();
  // Stored fields are bounded whatever an upstream or a caller sent.
  CutAtCharacter(summary_.error, kMaxStoredError);
  for (AttemptRecord& a : summary_.attempts) CutAtCharacter(a.error, kMaxStoredError);
  gw_.metrics_.Record(summary_);
  if (gw_.options_.on_request) gw_.options_.on_request(summary_);
}

void Call::Log() {
  // Last use of the summary: the log takes it without a copy.
  if (gw_.options_.request_log != nullptr) gw_.options_.request_log->Submit(std::move(summary_));
}
}  // namespace iris::gateway::proxy
