// A small blocking HTTP/1.1 client (Boost.Beast over Asio, OpenSSL for https) for the hub
// download: one request per connection, streamed bodies, connect/idle timeouts.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace iris::hub {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::string port;
  std::string target;  // path and query, starting with '/'
};

// Parses an absolute http:// or https:// URL.
Result<Url> ParseUrl(std::string_view url);
// The absolute URL a Location header points to, relative to `base` when it is relative.
std::string ResolveLocation(std::string_view base, std::string_view location);

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds idle_timeout{30000};  // per read or write
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

// Sends one request to `url` and reads the answer; redirects are not followed. The body of a
// 2xx answer goes to `sink` when one is given, otherwise into HttpResponse::body. Failing to
// connect or a connection dropped mid-body is kUnavailable; a stall is kDeadlineExceeded.
// Blocking; safe to call from several threads at once (each call owns its connection).
Result<HttpResponse> HttpFetch(std::string_view method, const std::string& url,
                               const HttpHeaders& headers, const HttpOptions& options,
                               const BodySink& sink = nullptr);

}  // namespace iris::hub
