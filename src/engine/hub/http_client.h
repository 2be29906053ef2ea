// A small blocking HTTP/1.1 client (Boost.Beast over Asio, OpenSSL for https) for the hub
// download: one request per connection, streamed bodies, connect/idle timeouts, forward
// proxies (src/net: CONNECT tunnels for https, absolute-form requests for http).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "net/proxy.h"

namespace iris::hub {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{30000};  // DNS + TCP (+ proxy CONNECT) + TLS
  std::chrono::milliseconds idle_timeout{30000};     // per read or write
  net::ProxySettings proxy;  // empty = direct; PullOptionsFromEnv reads the environment's
  std::string ca_file;       // PEM bundle to trust instead of the system store (tests)
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // only when the body did not go to a sink (capped at 64 KiB)
  // The value of a header (case-insensitive name), or "" when absent.
  std::string Header(std::string_view name) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;
// Receives the body of a 2xx response in chunks; `head` is the response's status and headers.
using BodySink = std::function<Status(const HttpResponse& head, std::string_view chunk)>;

// Sends one request to `url` (through options.proxy when it applies to the URL's scheme and
// host) and reads the answer; redirects are not followed. The body of a 2xx answer goes to
// `sink` when one is given, otherwise into HttpResponse::body. A URL net::ParseUrl refuses
// is kInvalidArgument; failing to connect, a proxy refusing the tunnel, a certificate that
// is not trusted or a connection dropped mid-body is kUnavailable; a stall is
// kDeadlineExceeded.
// Blocking; safe to call from several threads at once (each call owns its connection).
Result<HttpResponse> HttpFetch(std::string_view method, const std::string& url,
                               const HttpHeaders& headers, const HttpOptions& options,
                               const BodySink& sink = nullptr);

}  // namespace iris::hub
