// Beast/Asio implementation of HttpFetch. Every socket operation is asynchronous on a private
// io_context so that beast::tcp_stream's expiry gives connect and idle timeouts; URLs, proxies,
// TLS settings and the CONNECT tunnel come from src/net, as for the gateway's client.
#include "engine/hub/http_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <memory>
#include <vector>

#include "net/tls.h"
#include "net/tunnel.h"
#include "net/url.h"

namespace iris::hub {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Starts `start(handler)` and runs the io_context until the operation completes.
template <typename Start>
error_code RunOp(asio::io_context& ioc, Start&& start) {
  error_code result = asio::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// `peer` names the other end in messages: "https://host:port" [" (via proxy host:port)"].
Status OpError(const error_code& ec, const std::string& peer, std::string_view doing) {
  const ErrorCode code =
      ec == beast::error::timeout ? ErrorCode::kDeadlineExceeded : ErrorCode::kUnavailable;
  return Status(code, std::string(doing) + " " + peer + ": " +
                          (ec == beast::error::timeout ? "timed out" : ec.message()));
}

constexpr size_t kMaxErrorBody = 64 * 1024;

// Writes the request and reads the response on an established (and, for TLS, handshaken)
// stream; `lowest` is the tcp_stream whose expiry bounds each operation.
template <typename Stream>
Result<HttpResponse> Exchange(asio::io_context& ioc, Stream& stream, beast::tcp_stream& lowest,
                              const http::request<http::empty_body>& req, const std::string& peer,
                              const HttpOptions& options, const BodySink& sink) {
  lowest.expires_after(options.idle_timeout);
  error_code ec = RunOp(ioc, [&](auto handler) { http::async_write(stream, req, handler); });
  if (ec) return OpError(ec, peer, "sending to");

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  if (req.method() == http::verb::head) parser.skip(true);
  lowest.expires_after(options.idle_timeout);
  ec = RunOp(ioc, [&](auto handler) { http::async_read_header(stream, buffer, parser, handler); });
  if (ec) return OpError(ec, peer, "reading the answer of");

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
      if (ec == beast::error::timeout) return OpError(ec, peer, "reading the body from");
      return Status(ErrorCode::kUnavailable, "connection to " + peer + " dropped after " +
                                                 std::to_string(received) +
                                                 " bytes of the body: " + ec.message());
    }
  }
  return response;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return "";
}

Result<HttpResponse> HttpFetch(std::string_view method, const std::string& url,
                               const HttpHeaders& headers, const HttpOptions& options,
                               const BodySink& sink) {
  IRIS_ASSIGN_OR_RETURN(net::Url u, net::ParseUrl(url));
  const net::Url* proxy = options.proxy.ProxyFor(u.scheme, u.host);
  const bool https = u.scheme == "https";
  std::string peer = u.scheme + "://" + net::HostPort(u.host, u.port);
  if (proxy != nullptr) peer += " (via proxy " + net::HostPort(proxy->host, proxy->port) + ")";

  http::request<http::empty_body> req;
  req.method_string(method);
  // Plain http through a proxy goes to the proxy in absolute form; https goes in a tunnel.
  req.target(proxy != nullptr && !https ? net::AbsoluteTarget(u) : u.target);
  req.version(11);
  req.set(http::field::host, net::HostHeader(u));
  req.set(http::field::user_agent, "iris/0.1");
  req.set(http::field::connection, "close");
  if (proxy != nullptr && !https && !proxy->userinfo.empty()) {
    req.set(http::field::proxy_authorization, net::ProxyAuthorization(*proxy));
  }
  for (const auto& [key, value] : headers) req.set(key, value);

  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    error_code ec;
    const std::string& dial_host = proxy != nullptr ? proxy->host : u.host;
    const uint16_t dial_port = proxy != nullptr ? proxy->port : u.port;
    const auto endpoints = resolver.resolve(dial_host, std::to_string(dial_port), ec);
    if (ec) return OpError(ec, peer, "resolving");
    beast::tcp_stream tcp_stream(ioc);
    tcp_stream.expires_after(options.connect_timeout);
    ec = RunOp(ioc, [&](auto handler) { tcp_stream.async_connect(endpoints, handler); });
    if (ec) return OpError(ec, peer, "connecting to");
    if (!https) {
      auto response = Exchange(ioc, tcp_stream, tcp_stream, req, peer, options, sink);
      tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      return response;
    }
    if (proxy != nullptr) {  // the connect timeout still runs: it covers the CONNECT too
      beast::flat_buffer buffer;
      int status = 0;
      error_code tec = asio::error::would_block;
      net::AsyncOpenTunnel(tcp_stream, buffer, u, *proxy, [&](error_code e, int s) {
        tec = e;
        status = s;
      });
      ioc.restart();
      ioc.run();
      if (tec == beast::error::timeout) return OpError(tec, peer, "opening a tunnel to");
      IRIS_RETURN_IF_ERROR(net::TunnelStatus(tec, status, u, *proxy));
    }
    IRIS_ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> ctx,
                          net::ClientTlsContext(/*verify=*/true, options.ca_file));
    ssl::stream<beast::tcp_stream> tls(std::move(tcp_stream), *ctx);
    IRIS_RETURN_IF_ERROR(net::PrepareTlsClient(tls.native_handle(), u.host, /*verify=*/true));
    beast::tcp_stream& lowest = beast::get_lowest_layer(tls);
    lowest.expires_after(options.connect_timeout);
    ec = RunOp(ioc, [&](auto handler) { tls.async_handshake(ssl::stream_base::client, handler); });
    if (ec) {
      if (std::string refused = net::CertificateError(tls.native_handle()); !refused.empty()) {
        return Status(ErrorCode::kUnavailable, "TLS certificate of " + peer +
                                                   " not trusted: " + refused +
                                                   " (SSL_CERT_FILE names a CA bundle to trust)");
      }
      return OpError(ec, peer, "TLS handshake with");
    }
    auto response = Exchange(ioc, tls, lowest, req, peer, options, sink);
    lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
    return response;
  } catch (const std::exception& e) {  // Asio/OpenSSL allocation or context errors.
    return Status(ErrorCode::kUnavailable,
                  "HTTP " + std::string(method) + " " + peer + ": " + e.what());
  }
}

}  // namespace iris::hub
