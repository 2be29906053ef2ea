// SHA-256 (OpenSSL's), over one buffer or fed in pieces: the one home for digests of API keys,
// downloaded files and image pixels.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace iris {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& Update(const void* data, size_t n);
  Sha256& Update(std::string_view bytes) { return Update(bytes.data(), bytes.size()); }
  Sha256Digest Finish();  // once

  static Sha256Digest Of(std::string_view bytes) { return Sha256().Update(bytes).Finish(); }
  static std::string HexOf(std::string_view bytes);

 private:
  evp_md_ctx_st* ctx_;
};

std::string HexDigest(const Sha256Digest& digest);

}  // namespace iris
