// The retry and fallback tables and the backoff arithmetic; see retry.h for the reasoning.
#include "gateway/routing/retry.h"

#include <algorithm>
#include <cmath>

namespace iris::gateway::routing {

using std::chrono::milliseconds;

bool IsRetryable(int http_status) {
  switch (http_status) {
    case 408:
    case 409:
    case 425:
    case 429:
      return true;
    case 501:
    case 505:
      return false;
    default:
      return http_status >= 500 && http_status <= 599;
  }
}

bool IsRetryable(const Failure& failure) {
  if (failure.committed) return false;
  switch (failure.kind) {
    case Failure::Kind::kHttpStatus:
      return IsRetryable(failure.http_status);
    case Failure::Kind::kConnect:
    case Failure::Kind::kTimeout:
    case Failure::Kind::kStreamBroken:
    case Failure::Kind::kOffSchema:
      return true;
    case Failure::Kind::kMalformed:
    case Failure::Kind::kUnsupported:
    case Failure::Kind::kBusy:
      return false;
  }
  return false;
}

bool ShouldFallback(const Failure& failure) {
  if (failure.committed) return false;
  if (IsRetryable(failure)) return true;
  switch (failure.kind) {
    case Failure::Kind::kHttpStatus:
      switch (failure.http_status) {
        case 401:
        case 402:
        case 403:
        case 404:
        case 413:
        case 501:
        case 505:
          return true;
        default:
          return false;
      }
    case Failure::Kind::kMalformed:
    case Failure::Kind::kUnsupported:
    case Failure::Kind::kBusy:
      return true;
    default:
      return false;
  }
}

bool CountsAgainstBreaker(const Failure& failure) {
  if (failure.kind == Failure::Kind::kHttpStatus && failure.http_status == 413) return false;
  if (failure.kind == Failure::Kind::kUnsupported || failure.kind == Failure::Kind::kBusy ||
      failure.kind == Failure::Kind::kOffSchema) {
    return false;
  }
  return ShouldFallback(failure);
}

milliseconds RetryPolicy::Backoff(int attempt, std::optional<double> retry_after_s,
                                  Rng& rng) const {
  if (retry_after_s && *retry_after_s >= 0 && std::isfinite(*retry_after_s)) {
    const double ms = std::ceil(*retry_after_s * 1000.0);
    if (ms >= static_cast<double>(max_retry_after_.count())) return max_retry_after_;
    return milliseconds(static_cast<int64_t>(ms));
  }
  // base * 2^attempt without overflow: stop doubling once past the cap.
  int64_t ceiling = base_.count();
  for (int i = 0; i < std::max(attempt, 0) && ceiling < max_.count(); ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max_.count());
  // Full jitter (uniform over [0, ceiling]): spreads the retries of many callers that failed
  // together instead of having them hit the recovering upstream in lockstep.
  return milliseconds(static_cast<int64_t>(UniformUnit(rng) * static_cast<double>(ceiling + 1)));
}

RetryPolicy::Decision RetryPolicy::Decide(int attempt, std::optional<double> retry_after_s,
                                          milliseconds remaining, Rng& rng) const {
  Decision d;
  if (retry_after_s && std::isfinite(*retry_after_s) &&
      *retry_after_s * 1000.0 > static_cast<double>(max_retry_after_.count())) {
    d.action = Decision::Action::kFallOver;
    return d;
  }
  d.delay = Backoff(attempt, retry_after_s, rng);
  if (d.delay >= remaining) {
    d.action = Decision::Action::kFallOver;
    d.delay = milliseconds(0);
  }
  return d;
}

}  // namespace iris::gateway::routing
