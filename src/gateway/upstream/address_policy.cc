// The special-purpose ranges of the IANA IPv4 and IPv6 registries (RFC 6890 and successors),
// refused for caller-steered fetches.
#include "gateway/upstream/address_policy.h"

#include <array>
#include <cstdint>

namespace iris::gateway::upstream {
namespace {

struct V4Range {
  uint32_t base;
  int bits;
};

bool InV4(uint32_t a, V4Range r) {
  const uint32_t mask = r.bits == 0 ? 0 : ~uint32_t{0} << (32 - r.bits);
  return (a & mask) == (r.base & mask);
}

constexpr uint32_t V4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

bool IsPublicV4(uint32_t a) {
  static constexpr std::array<V4Range, 16> kRefused = {{
      {V4(0, 0, 0, 0), 8},        // "this network", 0.0.0.0 included
      {V4(10, 0, 0, 0), 8},       // private
      {V4(100, 64, 0, 0), 10},    // shared address space (carrier-grade NAT)
      {V4(127, 0, 0, 0), 8},      // loopback
      {V4(169, 254, 0, 0), 16},   // link-local, cloud metadata
      {V4(172, 16, 0, 0), 12},    // private
      {V4(192, 0, 0, 0), 24},     // IETF protocol assignments
      {V4(192, 0, 2, 0), 24},     // documentation
      {V4(192, 88, 99, 0), 24},   // 6to4 relay anycast
      {V4(192, 168, 0, 0), 16},   // private
      {V4(198, 18, 0, 0), 15},    // benchmarking
      {V4(198, 51, 100, 0), 24},  // documentation
      {V4(203, 0, 113, 0), 24},   // documentation
      {V4(224, 0, 0, 0), 4},      // multicast
      {V4(240, 0, 0, 0), 4},      // reserved, broadcast included
      {V4(255, 255, 255, 255), 32},
  }};
  for (const V4Range& r : kRefused) {
    if (InV4(a, r)) return false;
  }
  return true;
}

uint32_t V4At(const std::array<unsigned char, 16>& b, int offset) {
  return (uint32_t{b[offset]} << 24) | (uint32_t{b[offset + 1]} << 16) |
         (uint32_t{b[offset + 2]} << 8) | uint32_t{b[offset + 3]};
}

bool IsPublicV6(const boost::asio::ip::address_v6& v6) {
  const std::array<unsigned char, 16> b = v6.to_bytes();
  auto zero = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      if (b[i] != 0) return false;
    }
    return true;
  };
  // ::/96 holds :: (unspecified), ::1 (loopback) and the deprecated IPv4-compatible form.
  if (zero(0, 12)) return false;
  // ::ffff:a.b.c.d (mapped): the IPv4 rules decide.
  if (zero(0, 10) && b[10] == 0xff && b[11] == 0xff) return IsPublicV4(V4At(b, 12));
  // 64:ff9b::/96 (NAT64): the embedded IPv4 address decides; 64:ff9b:1::/48 is local-use.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    if (zero(4, 12)) return IsPublicV4(V4At(b, 12));
    return false;
  }
  // 2002::/16 (6to4): the IPv4 address in bits 16-47 decides.
  if (b[0] == 0x20 && b[1] == 0x02) return IsPublicV4(V4At(b, 2));
  // 2001::/23 (IETF protocol assignments, Teredo 2001::/32 included) and 2001:db8::/32
  // (documentation).
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02) return false;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;
  // 100::/64 discard-only.
  if (b[0] == 0x01 && b[1] == 0x00 && zero(2, 8)) return false;
  if ((b[0] & 0xfe) == 0xfc) return false;                  // fc00::/7 unique-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10 link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;  // fec0::/10 site-local (old)
  if (b[0] == 0xff) return false;                           // ff00::/8 multicast
  // Only 2000::/3 is allocated global unicast.
  return (b[0] & 0xe0) == 0x20;
}

}  // namespace

bool IsPublicUnicast(const boost::asio::ip::address& address) {
  if (address.is_v4()) return IsPublicV4(address.to_v4().to_uint());
  return IsPublicV6(address.to_v6());
}

}  // namespace iris::gateway::upstream
