#include "gateway/proxy/request_id.h"

#include <random>

#include "base/time.h"

namespace iris::gateway::proxy {

std::string NewRequestId() {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  const uint64_t ms = static_cast<uint64_t>(NowUnixMs());
  // 10 digits of time (50 bits, the top 2 zero), then 16 digits of randomness (80 bits).
  std::string out = "req_";
  out.reserve(4 + 26);
  for (int shift = 45; shift >= 0; shift -= 5) out.push_back(kAlphabet[(ms >> shift) & 31]);
  const uint64_t hi = rng() & 0xffffffffffULL;  // 40 bits
  const uint64_t lo = rng() & 0xffffffffffULL;  // 40 bits
  for (int shift = 35; shift >= 0; shift -= 5) out.push_back(kAlphabet[(hi >> shift) & 31]);
  for (int shift = 35; shift >= 0; shift -= 5) out.push_back(kAlphabet[(lo >> shift) & 31]);
  return out;
}

std::string NewResponseId() {
  thread_local std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "resp_";
  for (int i = 0; i < 4; ++i) {
    uint32_t word = device();
    for (int k = 0; k < 8; ++k, word >>= 4) out.push_back(kHex[word & 15]);
  }
  return out;
}

}  // namespace iris::gateway::proxy
