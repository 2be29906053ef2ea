// Per-target circuit breakers: after N consecutive failures a target is skipped for a cooldown
// instead of costing every request a timeout, then one probe request tests it. Shared by all
// worker threads; the clock is passed in so tests step time by hand.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/time.h"
#include "gateway/config/config.h"

namespace iris::gateway::routing {

// Callers pass the time in, so tests step it by hand.
using TimePoint = SteadyClock::time_point;

enum class BreakerState { kClosed, kOpen, kHalfOpen };
std::string_view BreakerStateName(BreakerState state);

// closed --N consecutive failures--> open --cooldown passed, Allow()--> half-open (one probe)
// half-open --probe succeeds--> closed;  half-open --probe fails--> open (a fresh cooldown).
// Thread-safe: one mutex per breaker, held for a few comparisons.
class CircuitBreaker {
 public:
  CircuitBreaker(int failure_threshold, std::chrono::milliseconds cooldown);

  // Whether a request may go to this target now. Closed: yes. Open: no, until the cooldown has
  // passed; then the breaker turns half-open and this call is the probe (true). Half-open: no
  // while the probe is out — unless the probe has been out for a whole cooldown without a
  // verdict (its request was cancelled), in which case this call becomes the new probe.
  bool Allow(TimePoint now);
  // Report the outcome of a request Allow() let through. Only failures that say the target is
  // unhealthy should be reported (CountsAgainstBreaker); others report nothing.
  void OnSuccess(TimePoint now);
  void OnFailure(TimePoint now);

  // The state as of the last call; an open breaker whose cooldown has passed still reads kOpen
  // until the next Allow().
  BreakerState State() const;
  int consecutive_failures() const;
  // When an open breaker lets its probe through (meaningless unless State() is kOpen).
  TimePoint open_until() const;
  // Another instance opened this target's breaker (shared state): open until `until`, unless
  // it is open longer already. A probe in flight keeps its verdict.
  void ForceOpen(TimePoint until);

 private:
  const int failure_threshold_;
  const std::chrono::milliseconds cooldown_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  int consecutive_failures_ = 0;
  TimePoint open_until_{};
  TimePoint probe_started_{};
};

// One breaker per target key ("provider/model"), created on first use with the configured
// threshold and cooldown, for at most `max_entries` keys: callers can name any model of a
// provider, and each name must not cost memory and a metric series forever. When full, a
// closed breaker with no failures is evicted to make room; when none can be, the new key gets
// an untracked breaker (no protection, no growth). Thread-safe.
class BreakerRegistry {
 public:
  explicit BreakerRegistry(const config::BreakerConfig& config, size_t max_entries = 1024)
      : config_(config), max_entries_(std::max<size_t>(max_entries, 1)) {}

  // Shared: a breaker evicted while a request holds it stays alive for that request.
  std::shared_ptr<CircuitBreaker> Get(std::string_view key);
  // Every tracked key's current state, for /metrics and the dashboard.
  std::map<std::string, BreakerState> Snapshot() const;
  // The keys whose breaker is open now, with when each lets its probe through (to share them).
  std::vector<std::pair<std::string, TimePoint>> OpenUntil(TimePoint now) const;

 private:
  const config::BreakerConfig config_;
  const size_t max_entries_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<CircuitBreaker>, std::less<>> breakers_;
};

}  // namespace iris::gateway::routing
