// The pipeline's spine: the stages in order, and the loop over the plan's targets with
// retries, backoff, circuit breakers and the attempt budget (routing/retry.h decides).
#include "gateway/proxy/call.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "gateway/api/errors.h"
#include "gateway/proxy/request_checks.h"
#include "gateway/proxy/request_id.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
using asio::awaitable;

namespace {
AttemptRecord Attempt(const std::string& provider, const std::string& model, std::string outcome) {
  AttemptRecord a;
  a.provider = provider;
  a.model = model;
  a.outcome = std::move(outcome);
  return a;
}
}  // namespace

routing::Rng& ThreadRng() {
  thread_local routing::Rng rng{std::random_device{}()};
  return rng;
}

Call::Call(Gateway& gw, http::Request& req, http::ResponseWriter& w, Dialect dialect)
    : gw_(gw),
      http_req_(req),
      w_(w),
      snap_(gw.snapshot()),
      config_(snap_->config),
      start_(Clock::now()) {
  summary_.dialect = dialect;
  summary_.request_id = NewRequestId();
  summary_.bytes_in = static_cast<int64_t>(req.body.size());
  summary_.start_unix_ms = NowUnixMs();
}

awaitable<void> Call::Run() {
  Status s = Decode();
  std::optional<GatewayError> refused;
  if (s.ok()) refused = Authorize();
  if (s.ok() && !refused) s = co_await LoadThread();
  // (The items a thread brought in are bounded like the caller's own.)
  if (s.ok() && !refused && responses_) s = CheckRequest(req_, *config_);
  if (s.ok() && !refused) s = Plan();
  if (s.ok() && !refused) refused = co_await Admit();
  if (refused) {
    co_await SendError(*refused);
    co_return;
  }
  if (!s.ok()) {
    GatewayError e = api::FromStatus(s);
    // (Only the request checks' size limits are kOutOfRange.)
    if (s.code() == ErrorCode::kOutOfRange) e.error_class = ErrorClass::kPayloadTooLarge;
    co_await SendError(e);
    co_return;
  }
  if (co_await TryTargets()) co_return;
  co_await GiveUp();
}

awaitable<bool> Call::TryTargets() {
  const routing::RetryPolicy policy(config_->routing);
  for (const routing::Target& t : plan_.targets) {
    // (Checked before the breaker: Allow() on an open breaker past its cooldown makes this
    // request its probe, which must then really be sent.)
    if (attempts_made_ >= config_->limits.max_attempts) break;
    const std::shared_ptr<routing::CircuitBreaker> held = snap_->breakers->Get(t.Key());
    routing::CircuitBreaker& breaker = *held;
    if (!breaker.Allow(Clock::now())) {
      AttemptRecord skipped = Attempt(t.provider, t.model, "skipped");
      skipped.error = "circuit breaker open";
      skipped.error_class = "overloaded";
      summary_.attempts.push_back(skipped);
      if (!last_error_) {
        last_error_ = Err(ErrorClass::kOverloaded,
                          t.Key() + " is paused after repeated failures (circuit open)");
      }
      continue;
    }
    for (int attempt = 0; attempt <= plan_.retries_per_target; ++attempt) {
      if (Clock::now() >= deadline_) break;
      if (attempts_made_ >= config_->limits.max_attempts) break;
      ++attempts_made_;
      summary_.attempts.push_back(Attempt(t.provider, t.model, "error"));
      current_ = &summary_.attempts.back();
      attempt_start_ = Clock::now();
      // (Not a conditional expression: GCC 12 destroys a co_await temporary twice in one.)
      Outcome o;
      if (t.kind == config::ProviderKind::kLocal) {
        o = co_await TryLocal(t);
      } else {
        o = co_await TryCloud(t);
      }
      current_->latency_ms = Ms(Clock::now() - attempt_start_);
      if (o.kind == Outcome::Kind::kDelivered) {  // (deliver.cc filled the summary)
        breaker.OnSuccess(Clock::now());
        if (store_bodies_ && kept_answer_) {
          // The caller has the answer and its budget is settled before the bodies are made.
          Account();
          co_await KeepBodies();
          Log();
        } else {
          Finish();
        }
        co_return true;
      }
      current_->error = o.error.message;
      current_->error_class = std::string(api::ErrorClassName(o.error.error_class));
      current_->status = o.error.upstream_status;
      // Only the provider's own failures count against its breaker: not the caller's invalid
      // or unsupported request, not a full local queue, not a caller who left.
      if (o.breaker && !w_.client_gone()) breaker.OnFailure(Clock::now());
      if (w_.client_gone()) {  // the caller left: nothing more to try or to say
        summary_.provider = t.provider;
        summary_.model = t.model;
        summary_.error_class = "client_gone";
        summary_.error = "the client disconnected";
        if (!committed_) summary_.http_status = 499;
        Finish();
        co_return true;
      }
      if (o.kind == Outcome::Kind::kFailedAfterCommit) {
        summary_.provider = t.provider;
        summary_.model = t.model;
        summary_.error_class = current_->error_class;
        summary_.error = o.error.message;
        Finish();
        co_return true;
      }
      last_error_ = o.error;
      if (!o.retryable) {
        if (!o.fallback) {
          co_await SendError(o.error, std::exchange(image_fetch_detail_, {}));
          co_return true;
        }
        break;  // the next target
      }
      if (attempt == plan_.retries_per_target) break;
      // Back off, unless the wait would outlast the request or the upstream asks for too long.
      const auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      auto decision = policy.Decide(attempt, o.error.retry_after_s, remaining, ThreadRng());
      if (decision.action == routing::RetryPolicy::Decision::Action::kFallOver) break;
      asio::steady_timer timer(co_await asio::this_coro::executor, decision.delay);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  co_return false;
}

awaitable<void> Call::GiveUp() {
  GatewayError e =
      last_error_.value_or(Err(ErrorClass::kOverloaded, "no target could take the request"));
  if (summary_.attempts.size() > 1) {
    std::string detail;
    for (const AttemptRecord& a : summary_.attempts) {
      if (!detail.empty()) detail += "; ";
      detail += a.provider + "/" + a.model + ": " + (a.error.empty() ? a.outcome : a.error);
    }
    e.message =
        "all " + std::to_string(summary_.attempts.size()) + " attempts failed (" + detail + ")";
  }
  if (attempts_made_ >= config_->limits.max_attempts &&
      e.error_class != ErrorClass::kInvalidRequest) {
    e.message += " (stopped after " + std::to_string(attempts_made_) +
                 " attempts: limits.max_attempts in iris.yaml)";
  }
  if (Clock::now() >= deadline_ && e.error_class != ErrorClass::kInvalidRequest) {
    e.error_class = ErrorClass::kUpstreamTimeout;
    e.message = "no answer within the route's total timeout of " +
                std::to_string(plan_.timeouts.total.count()) + " ms: " + e.message;
  }
  co_await SendError(e);
}

}  // namespace iris::gateway::proxy
