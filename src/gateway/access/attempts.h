// Failed master-key attempts, counted per client address, so that the admin API and the
// dashboard login cannot be used to guess the master key: after kMaxFailures failures within
// kWindowMs an address is refused (even with the right key) until that window is over. At
// most kMaxAddresses addresses are remembered; when full, the one whose window started first
// is forgotten. Thread-safe; the clock is the caller's (tests pass their own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace iris::gateway::access {

class AttemptLimiter {
 public:
  static constexpr int kMaxFailures = 10;
  static constexpr int64_t kWindowMs = 60'000;
  static constexpr size_t kMaxAddresses = 4096;

  // Seconds until `address` may try again; 0 when it may now.
  double WaitFor(std::string_view address, int64_t now_ms);
  void Failed(std::string_view address, int64_t now_ms);
  // A success forgets the address's failures.
  void Succeeded(std::string_view address);

  size_t tracked() const;

 private:
  struct Failures {
    int64_t window_start_ms = 0;
    int count = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Failures> by_address_;
};

// The address part of a peer "ip:port" or "[ipv6]:port".
std::string_view ClientAddress(std::string_view remote);

}  // namespace iris::gateway::access
