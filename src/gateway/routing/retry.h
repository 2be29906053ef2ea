// Which upstream failures are retried on the same target, which move the request on to the next
// target, which count against a target's circuit breaker, and how long to wait in between.
// One documented table instead of per-provider guesses (gateways.md §2(c), §3(c), §14).
#pragma once

#include <chrono>
#include <optional>

#include "gateway/config/config.h"
#include "gateway/routing/plan.h"

namespace iris::gateway::routing {

// How one attempt at one target failed.
struct Failure {
  enum class Kind {
    kHttpStatus,    // the upstream answered `http_status` (>= 400)
    kConnect,       // DNS, TCP or TLS failed, or the connection was refused/reset before a reply
    kTimeout,       // connect, first-token or idle deadline passed
    kStreamBroken,  // the stream ended early (no terminal event) or the connection dropped
    kMalformed,     // the upstream answered with a body or SSE we could not decode
    // Not the provider's failures; never counted against its breaker:
    kOffSchema,    // the answer broke the caller's response schema: another sample may keep it
    kUnsupported,  // the target cannot do what this request asks (tools to the local model,
                   // a field its translator cannot express): the next target may
    kBusy,         // iris's own admission refused it (the local engine's queue is full)
  };
  Kind kind = Kind::kHttpStatus;
  int http_status = 0;  // kHttpStatus
  // Bytes of this answer already went to the client. Nothing is retried or failed over then: the
  // client would see two answers spliced together; the stream ends with an error event instead.
  bool committed = false;
};

// The status table, for the same target after a backoff.
//  retried:     408 (request timeout), 409 (OpenAI's "conflict, try again"; the official SDKs
//               retry it too), 425, 429, 500, 502, 503, 504, 529 (Anthropic overloaded) and every
//               other 5xx except 501 and 505, which will not change on a retry.
//  not retried: every other 4xx: 400, 401, 403, 404, 413, 422, ... (the same request gets the
//               same answer) and anything below 400.
bool IsRetryable(int http_status);

// For a whole failure: retryable statuses as above; connect errors, timeouts and broken streams
// are retried; malformed answers are not (the same bytes would come back). Never when committed.
bool IsRetryable(const Failure& failure);

// Whether to move on to the next target once this one's retries are spent (or at once, when the
// failure is not retryable). Every retryable failure, plus failures that are about this provider
// and not the request, so another provider may well succeed:
//  401, 403  this provider's key is wrong, revoked or lacks access to the model (a gateway
//            misconfiguration; the caller cannot fix it, the next provider may answer);
//  402       the provider account is out of credit;
//  404       this provider does not have the model (ids differ between providers);
//  413       the body exceeds this provider's size limit (limits differ: 20 MB, 32 MB, ...);
//  501, 505  this provider does not implement what was asked;
//  kMalformed the provider (or our translation for it) produced garbage.
// Not for 400 and 422 (and other 4xx): the request itself is invalid and would fail, and cost
// money, everywhere; the caller gets the first provider's error. Never when committed.
bool ShouldFallback(const Failure& failure);

// Whether the failure is evidence the target is unhealthy (its breaker counts it): everything
// ShouldFallback accepts except 413, which is about one request's size, and kUnsupported and
// kBusy, which are about the request or iris's own load. A caller must not be able to open a
// breaker for everyone by sending requests a target cannot serve.
bool CountsAgainstBreaker(const Failure& failure);

// Backoff between retries of one target, from config.routing.
class RetryPolicy {
 public:
  explicit RetryPolicy(const config::RoutingConfig& routing)
      : base_(routing.backoff_base),
        max_(routing.backoff_max),
        max_retry_after_(routing.max_retry_after) {}

  // The wait before retry number `attempt` (0 for the first retry). Without retry_after: full
  // jitter, uniform in [0, min(backoff_max, backoff_base * 2^attempt)]. With an upstream
  // retry-after (seconds, >= 0): exactly that, capped at max_retry_after.
  std::chrono::milliseconds Backoff(int attempt, std::optional<double> retry_after_s,
                                    Rng& rng) const;

  struct Decision {
    enum class Action {
      kRetry,     // sleep `delay`, then retry the same target
      kFallOver,  // do not sleep: go to the next target now
    };
    Action action = Action::kRetry;
    std::chrono::milliseconds delay{0};
  };
  // Backoff(), plus the choice the caller must make when the wait is not worth it: an upstream
  // retry-after longer than max_retry_after, or a delay that would use up the `remaining` total
  // budget of the request, means falling over instead of sleeping.
  Decision Decide(int attempt, std::optional<double> retry_after_s,
                  std::chrono::milliseconds remaining, Rng& rng) const;

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds max_retry_after_;
};

}  // namespace iris::gateway::routing
