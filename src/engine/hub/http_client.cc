// Beast/Asio implementation of HttpFetch. Every socket operation is asynchronous on a private
// io_context so that beast::tcp_stream's expiry gives connect and idle timeouts.
#include "engine/hub/http_client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <memory>
#include <optional>

namespace iris::hub {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Starts `start(handler)` and runs the io_context until the operation completes.
template <typename Start>
error_code RunOp(net::io_context& ioc, Start&& start) {
  error_code result = net::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

Status NetError(ErrorCode code, std::string message) { return {code, std::move(message)}; }

Status OpError(const error_code& ec, const Url& url, std::string_view doing) {
  const ErrorCode code =
      ec == beast::error::timeout ? ErrorCode::kDeadlineExceeded : ErrorCode::kUnavailable;
  return NetError(code, std::string(doing) + " " + url.scheme + "://" + url.host + ":" + url.port +
                            ": " + (ec == beast::error::timeout ? "timed out" : ec.message()));
}

constexpr size_t kMaxErrorBody = 64 * 1024;

// Writes the request and reads the response on an established (and, for TLS, handshaken)
// stream; `lowest` is the tcp_stream whose expiry bounds each operation.
template <typename Stream>
Result<HttpResponse> Exchange(net::io_context& ioc, Stream& stream, beast::tcp_stream& lowest,
                              const http::request<http::empty_body>& req, const Url& url,
                              const HttpOptions& options, const BodySink& sink) {
  lowest.expires_after(options.idle_timeout);
  error_code ec = RunOp(ioc, [&](auto handler) { http::async_write(stream, req, handler); });
  if (ec) return OpError(ec, url, "sending to");

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  if (req.method() == http::verb::head) parser.skip(true);
  lowest.expires_after(options.idle_timeout);
  ec = RunOp(ioc, [&](auto handler) { http::async_read_header(stream, buffer, parser, handler); });
  if (ec) return OpError(ec, url, "reading the answer of");

  HttpResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  const bool to_sink = sink && response.status >= 200 && response.status < 300;
  std::vector<char> chunk(256 * 1024);
  uint64_t received = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    lowest.expires_after(options.idle_timeout);
    ec = RunOp(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = chunk.size() - parser.get().body().size;
    received += n;
    if (n > 0) {
      if (to_sink) {
        IRIS_RETURN_IF_ERROR(sink(response, std::string_view(chunk.data(), n)));
      } else if (response.body.size() < kMaxErrorBody) {
        response.body.append(chunk.data(), std::min(n, kMaxErrorBody - response.body.size()));
      }
    }
    if (ec) {
      if (ec == beast::error::timeout) return OpError(ec, url, "reading the body from");
      return NetError(ErrorCode::kUnavailable, "connection to " + url.host + ":" + url.port +
                                                   " dropped after " + std::to_string(received) +
                                                   " bytes of the body: " + ec.message());
    }
  }
  return response;
}

}  // namespace

Result<Url> ParseUrl(std::string_view url) {
  Url u;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    return InvalidArgument("not an absolute URL: " + std::string(url));
  u.scheme = std::string(url.substr(0, sep));
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (u.scheme != "http" && u.scheme != "https") {
    return InvalidArgument("unsupported URL scheme (http or https only): " + std::string(url));
  }
  std::string_view rest = url.substr(sep + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  if (!authority.empty() && authority.front() == '[') {  // IPv6 literal
    const size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return InvalidArgument("bad URL host: " + std::string(url));
    u.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority.front() == ':') u.port = std::string(authority.substr(1));
  } else if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    u.port = std::string(authority.substr(colon + 1));
  } else {
    u.host = std::string(authority);
  }
  if (u.host.empty()) return InvalidArgument("URL has no host: " + std::string(url));
  if (u.port.empty()) u.port = u.scheme == "https" ? "443" : "80";
  return u;
}

std::string ResolveLocation(std::string_view base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return std::string(location);
  auto b = ParseUrl(base);
  if (!b.ok()) return std::string(location);
  std::string origin = b->scheme + "://" + b->host + ":" + b->port;
  if (location.substr(0, 2) == "//") return b->scheme + ":" + std::string(location);
  if (!location.empty() && location.front() == '/') return origin + std::string(location);
  // Relative to the directory of the base path.
  std::string path = b->target.substr(0, b->target.find('?'));
  path = path.substr(0, path.rfind('/') + 1);
  return origin + path + std::string(location);
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

Result<HttpResponse> HttpFetch(std::string_view method, const std::string& url,
                               const HttpHeaders& headers, const HttpOptions& options,
                               const BodySink& sink) {
  IRIS_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  http::request<http::empty_body> req;
  req.method(http::string_to_verb(method));
  req.target(u.target);
  req.version(11);
  const bool default_port =
      (u.scheme == "https" && u.port == "443") || (u.scheme == "http" && u.port == "80");
  req.set(http::field::host, default_port ? u.host : u.host + ":" + u.port);
  req.set(http::field::user_agent, "iris/0.1");
  req.set(http::field::connection, "close");
  for (const auto& [key, value] : headers) req.set(key, value);

  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    error_code ec;
    const auto endpoints = resolver.resolve(u.host, u.port, ec);
    if (ec) return OpError(ec, u, "resolving");
    beast::tcp_stream tcp_stream(ioc);
    tcp_stream.expires_after(options.connect_timeout);
    ec = RunOp(ioc, [&](auto handler) { tcp_stream.async_connect(endpoints, handler); });
    if (ec) return OpError(ec, u, "connecting to");
    if (u.scheme == "http") {
      auto response = Exchange(ioc, tcp_stream, tcp_stream, req, u, options, sink);
      tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      return response;
    }
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<beast::tcp_stream> tls(std::move(tcp_stream), ctx);
    if (!SSL_set_tlsext_host_name(tls.native_handle(), u.host.c_str())) {
      return NetError(ErrorCode::kUnavailable, "TLS: cannot set the server name " + u.host);
    }
    tls.set_verify_callback(ssl::host_name_verification(u.host));
    beast::tcp_stream& lowest = beast::get_lowest_layer(tls);
    lowest.expires_after(options.connect_timeout);
    ec = RunOp(ioc, [&](auto handler) { tls.async_handshake(ssl::stream_base::client, handler); });
    if (ec) return OpError(ec, u, "TLS handshake with");
    auto response = Exchange(ioc, tls, lowest, req, u, options, sink);
    lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
    return response;
  } catch (const std::exception& e) {  // Asio/OpenSSL allocation or context errors.
    return NetError(ErrorCode::kUnavailable,
                    "HTTP " + std::string(method) + " " + url + ": " + e.what());
  }
}

}  // namespace iris::hub
