// The shared client contexts live in a map guarded by a mutex; each is configured once and
// never changed afterwards, so connections use it without a lock.
#include "net/tls.h"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <map>
#include <mutex>
#include <utility>

namespace iris::net {

namespace ssl = boost::asio::ssl;

Result<std::shared_ptr<ssl::context>> ClientTlsContext(bool verify, const std::string& ca_file) {
  struct Entry {
    std::shared_ptr<ssl::context> ctx;
    std::string error;
  };
  static std::mutex mu;
  static std::map<std::pair<bool, std::string>, Entry> cache;
  std::lock_guard lock(mu);
  Entry& e = cache[{verify, ca_file}];
  if (!e.ctx && e.error.empty()) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    if (!ca_file.empty()) {
      ctx->load_verify_file(ca_file, ec);
      if (ec) e.error = "cannot load CA file " + ca_file + ": " + ec.message();
    } else {
      ctx->set_default_verify_paths(ec);  // an empty system store fails each handshake instead
    }
    ctx->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
    if (e.error.empty()) e.ctx = std::move(ctx);
  }
  if (!e.error.empty()) return Status(ErrorCode::kUnavailable, e.error);
  return e.ctx;
}

Status PrepareTlsClient(SSL* ssl, const std::string& host, bool verify) {
  boost::system::error_code ec;
  const bool is_ip = (boost::asio::ip::make_address(host, ec), !ec);
  if (!is_ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
    return Status(ErrorCode::kUnavailable, "TLS: cannot set the server name " + host);
  }
  if (!verify) return OkStatus();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                       : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (ok != 1) return Status(ErrorCode::kUnavailable, "TLS: cannot verify against host " + host);
  return OkStatus();
}

std::string CertificateError(const SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  return result == X509_V_OK ? std::string() : X509_verify_cert_error_string(result);
}

}  // namespace iris::net
