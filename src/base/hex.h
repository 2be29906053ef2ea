// Bytes as lowercase hexadecimal (digests, MACs). Header-only.
#pragma once

#include <cstddef>
#include <string>

namespace iris {

inline std::string HexEncode(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 15]);
  }
  return out;
}

}  // namespace iris
