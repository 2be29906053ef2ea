#include "gateway/access/attempts.h"

namespace iris::gateway::access {

double AttemptLimiter::WaitFor(std::string_view address, int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = by_address_.find(std::string(address));
  if (it == by_address_.end()) return 0;
  const int64_t window_end = it->second.window_start_ms + kWindowMs;
  if (now_ms >= window_end) {
    by_address_.erase(it);
    return 0;
  }
  if (it->second.count < kMaxFailures) return 0;
  return static_cast<double>(window_end - now_ms) / 1000.0;
}

void AttemptLimiter::Failed(std::string_view address, int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = by_address_.find(std::string(address));
  if (it == by_address_.end()) {
    if (by_address_.size() >= kMaxAddresses) {
      auto oldest = by_address_.begin();
      for (auto i = by_address_.begin(); i != by_address_.end(); ++i) {
        if (i->second.window_start_ms < oldest->second.window_start_ms) oldest = i;
      }
      by_address_.erase(oldest);
    }
    it = by_address_.emplace(std::string(address), Failures{now_ms, 0}).first;
  } else if (now_ms >= it->second.window_start_ms + kWindowMs) {
    it->second = Failures{now_ms, 0};
  }
  ++it->second.count;
}

void AttemptLimiter::Succeeded(std::string_view address) {
  std::lock_guard lock(mu_);
  by_address_.erase(std::string(address));
}

size_t AttemptLimiter::tracked() const {
  std::lock_guard lock(mu_);
  return by_address_.size();
}

std::string_view ClientAddress(std::string_view remote) {
  if (remote.starts_with('[')) {
    const size_t end = remote.find(']');
    return end == std::string_view::npos ? remote : remote.substr(1, end - 1);
  }
  const size_t colon = remote.rfind(':');
  return colon == std::string_view::npos ? remote : remote.substr(0, colon);
}

}  // namespace iris::gateway::access
