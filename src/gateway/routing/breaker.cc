// The breaker state machine; see breaker.h.
#include "gateway/routing/breaker.h"

#include <algorithm>

namespace iris::gateway::routing {

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(int failure_threshold, std::chrono::milliseconds cooldown)
    : failure_threshold_(std::max(1, failure_threshold)), cooldown_(cooldown) {}

bool CircuitBreaker::Allow(TimePoint now) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (now < open_until_) return false;
      state_ = BreakerState::kHalfOpen;
      probe_started_ = now;
      return true;
    case BreakerState::kHalfOpen:
      if (now - probe_started_ < cooldown_) return false;
      probe_started_ = now;  // the last probe never reported back
      return true;
  }
  return false;
}

void CircuitBreaker::OnSuccess(TimePoint /*now*/) {
  std::lock_guard lock(mu_);
  // A success while open comes from a request admitted before the breaker opened; it does not
  // prove the target recovered, the probe will.
  if (state_ == BreakerState::kOpen) return;
  state_ = BreakerState::kClosed;
  consecutive_failures_ = 0;
}

void CircuitBreaker::OnFailure(TimePoint now) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      if (++consecutive_failures_ >= failure_threshold_) {
        state_ = BreakerState::kOpen;
        open_until_ = now + cooldown_;
      }
      return;
    case BreakerState::kHalfOpen:
      ++consecutive_failures_;
      state_ = BreakerState::kOpen;
      open_until_ = now + cooldown_;
      return;
    case BreakerState::kOpen:
      return;  // late failures of requests admitted before opening: the cooldown stands
  }
}

void CircuitBreaker::ForceOpen(TimePoint until) {
  std::lock_guard lock(mu_);
  if (state_ == BreakerState::kOpen && open_until_ >= until) return;
  if (state_ == BreakerState::kHalfOpen) return;
  state_ = BreakerState::kOpen;
  open_until_ = until;
}

BreakerState CircuitBreaker::State() const {
  std::lock_guard lock(mu_);
  return state_;
}

int CircuitBreaker::consecutive_failures() const {
  std::lock_guard lock(mu_);
  return consecutive_failures_;
}

TimePoint CircuitBreaker::open_until() const {
  std::lock_guard lock(mu_);
  return open_until_;
}

std::shared_ptr<CircuitBreaker> BreakerRegistry::Get(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = breakers_.find(key);
  if (it != breakers_.end()) return it->second;
  auto breaker = std::make_shared<CircuitBreaker>(config_.failure_threshold, config_.cooldown);
  if (breakers_.size() >= max_entries_) {
    auto idle = std::find_if(breakers_.begin(), breakers_.end(), [](const auto& entry) {
      return entry.second->State() == BreakerState::kClosed &&
             entry.second->consecutive_failures() == 0;
    });
    if (idle == breakers_.end()) return breaker;  // untracked
    breakers_.erase(idle);
  }
  breakers_.emplace(std::string(key), breaker);
  return breaker;
}

std::map<std::string, BreakerState> BreakerRegistry::Snapshot() const {
  std::lock_guard lock(mu_);
  std::map<std::string, BreakerState> out;
  for (const auto& [key, breaker] : breakers_) out.emplace(key, breaker->State());
  return out;
}

std::vector<std::pair<std::string, TimePoint>> BreakerRegistry::OpenUntil(TimePoint now) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, TimePoint>> out;
  for (const auto& [key, breaker] : breakers_) {
    if (breaker->State() == BreakerState::kOpen && breaker->open_until() > now) {
      out.emplace_back(key, breaker->open_until());
    }
  }
  return out;
}

}  // namespace iris::gateway::routing
