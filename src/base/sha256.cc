#include "base/sha256.h"

#include <openssl/evp.h>

#include "base/check.h"
#include "base/hex.h"

namespace iris {
namespace {

// The digest, fetched from OpenSSL's provider once: EVP_sha256() makes every init look the
// algorithm up again (a lock and a provider query), which showed on the gateway's per-request
// path where each caller key is hashed.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  IRIS_CHECK(md != nullptr);
  return md;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  IRIS_CHECK(ctx_ != nullptr);
  IRIS_CHECK(EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256& Sha256::Update(const void* data, size_t n) {
  IRIS_CHECK(EVP_DigestUpdate(ctx_, data, n) == 1);
  return *this;
}

Sha256Digest Sha256::Finish() {
  Sha256Digest d{};
  unsigned int len = 0;
  IRIS_CHECK(EVP_DigestFinal_ex(ctx_, d.data(), &len) == 1 && len == d.size());
  return d;
}

std::string Sha256::HexOf(std::string_view bytes) { return HexDigest(Of(bytes)); }

std::string HexDigest(const Sha256Digest& digest) {
  return HexEncode(digest.data(), digest.size());
}

}  // namespace iris
