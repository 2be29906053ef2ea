// TLS for outbound connections (OpenSSL through Boost.Asio): one verified client context per
// trust configuration for the whole process, and the per-connection settings (SNI, the check
// that the certificate names the host) both HTTP clients apply before a handshake.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "base/status.h"

namespace iris::net {

// The process-wide TLS client context for (`verify`, `ca_file`), built on first use and
// shared afterwards: loading the system CA store takes tens of milliseconds, which no request
// should pay, and an SSL_CTX may be shared by every thread once configured. TLS 1.2 at least.
// `verify` checks the peer's chain against `ca_file` (a PEM bundle) or, when it is empty, the
// system store (OpenSSL's default paths, which honour SSL_CERT_FILE and SSL_CERT_DIR).
// kUnavailable, naming the file, when `ca_file` cannot be loaded. Thread-safe.
Result<std::shared_ptr<boost::asio::ssl::context>> ClientTlsContext(bool verify,
                                                                    const std::string& ca_file);

// Prepares one connection's `ssl` for a handshake with `host` (a name, or an IP literal
// without brackets): SNI for a name (never for an IP address), and, when `verify`, OpenSSL's
// check that the certificate names the host (DNS name without partial wildcards, or IP
// address). kUnavailable when OpenSSL refuses a setting.
Status PrepareTlsClient(SSL* ssl, const std::string& host, bool verify);

// After a failed handshake: why the peer's certificate was refused (OpenSSL's words, e.g.
// "self-signed certificate", "hostname mismatch"), or "" when it was not refused.
std::string CertificateError(const SSL* ssl);

}  // namespace iris::net
