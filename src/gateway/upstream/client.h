// The outbound HTTP(S) client the providers call: per-worker keep-alive pools, TLS with
// verification, HTTP(S)_PROXY/NO_PROXY, a deadline on every wait, cancellation, and
// streamed bodies. It knows nothing about providers: bytes in, status + headers + bytes out.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "gateway/http/cancel.h"
#include "gateway/http/headers.h"
#include "net/proxy.h"
#include "net/url.h"

namespace iris::gateway::upstream {

namespace asio = boost::asio;
using http::CancelToken;
using http::Headers;

// Every wait of one exchange has a limit; each expiry is a kDeadlineExceeded naming it.
struct Deadlines {
  std::chrono::milliseconds connect{2000};      // DNS + TCP connect (+ proxy CONNECT) + TLS
  std::chrono::milliseconds first_byte{60000};  // request write start -> response headers
  std::chrono::milliseconds idle{60000};        // between body reads
  std::chrono::milliseconds total{600000};      // Start() -> last body byte
};

// URLs and proxy settings are the network layer's (src/net); these names stay for the
// gateway code that spells them upstream::.
using ::iris::net::ParseUrl;
using ::iris::net::ProxySettings;
using ::iris::net::Url;

struct ClientOptions {
  bool verify_tls = true;
  std::string ca_file;  // PEM bundle to trust instead of the system store (tests, private CAs)
  ProxySettings proxy;  // empty = direct; fill with ProxySettings::FromEnv(::getenv)
  size_t max_idle_per_host = 16;
  std::chrono::seconds idle_keepalive{30};  // idle pooled connections older than this close
  // When set, only addresses it accepts are connected to: the name is resolved once and the
  // connection goes to an accepted address from that answer (no second lookup, so a DNS
  // answer that changes between check and connect cannot steer it). A name with no accepted
  // address fails with kPermissionDenied. Applies to direct connections, not to a proxy.
  std::function<bool(const asio::ip::address&)> allow_address;
  // Parse each URL once and remember it (Client::kRememberedUrls): for the operator's few
  // upstream URLs. Off for callers' URLs (image fetches): many, used once, and they may carry
  // credentials, which nothing should keep longer than its request.
  bool remember_urls = true;
};

struct OutboundRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // Host/Content-Length are set
  std::string body;
};

// Cancellation (CancelToken fired) fails with kUnavailable and a message starting with
// "cancelled"; IsCancelled() tells it apart from a network failure.
bool IsCancelled(const Status& status);

// Builds the process-wide TLS context for `options` now (loading the system CA store takes
// tens of milliseconds) so that the first request does not pay for it. Thread-safe; optional.
void PrepareTls(const ClientOptions& options);

class Client;
namespace internal {
struct Connection;
struct ExchangeState;
}  // namespace internal

// One request/response on one connection. Move-only; not thread-safe (its Client's thread).
// When the body has been read to the end the connection returns to the pool at once (if
// the server allows keep-alive); destroying an Exchange earlier closes the connection.
// The Client must outlive its Exchanges.
class Exchange {
 public:
  Exchange(Exchange&&) noexcept;
  Exchange& operator=(Exchange&&) noexcept;
  ~Exchange();

  int status() const;
  const Headers& headers() const;
  // The next decoded body bytes (chunked, Content-Length or until close): never empty
  // before the end; "" once the body is complete. Each wait is bounded by the idle and
  // total deadlines and the CancelToken given to Start().
  asio::awaitable<Result<std::string>> ReadSome();
  // The whole (rest of the) body; kResourceExhausted when it exceeds `max_bytes`.
  asio::awaitable<Result<std::string>> ReadAll(size_t max_bytes);
  // True once the body has been read to its end.
  bool done() const;

 private:
  friend class Client;
  explicit Exchange(std::unique_ptr<internal::ExchangeState> state);
  std::unique_ptr<internal::ExchangeState> state_;
};

// The client of one worker: keeps per-(scheme, host, port) keep-alive pools (per proxy for
// plain http through a proxy). NOT thread-safe: use it only from its io_context's thread.
class Client {
 public:
  Client(asio::io_context& ioc, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects (or reuses a pooled connection), sends the request and waits for the response
  // head. Errors: kInvalidArgument (bad URL, or a method, target or header that is not valid
  // HTTP: CR, LF, NUL, ... are never written), kPermissionDenied (allow_address refused every
  // address), kUnavailable (DNS, connect, reset, TLS
  // verification, proxy refusal, cancellation), kDeadlineExceeded (which deadline, to whom).
  // A pooled connection that turns out closed is retried once on a fresh one. `cancel`, if
  // given, must outlive the Exchange's use.
  asio::awaitable<Result<Exchange>> Start(const OutboundRequest& request,
                                          const Deadlines& deadlines,
                                          CancelToken* cancel = nullptr);

  // Counters for metrics and tests.
  struct Stats {
    int64_t connections_opened = 0;  // fresh TCP connections
    int64_t connections_reused = 0;  // exchanges served from the pool
    int64_t stale_retries = 0;       // pooled connections found dead and retried
    int64_t urls_parsed = 0;         // URLs parsed (each distinct URL once while remembered)
  };
  const Stats& stats() const { return stats_; }
  // Idle pooled connections over all hosts.
  size_t idle_connections() const;
  // URLs whose parse is remembered (at most kRememberedUrls).
  size_t remembered_urls() const;

  // A worker sends to a handful of URLs (the configured providers' endpoints), so each is
  // parsed once and remembered, with the proxy that takes it and its pool's key. The set is
  // bounded: past this many, or for a URL longer than kMaxRememberedUrlBytes, it starts over.
  static constexpr size_t kRememberedUrls = 256;
  static constexpr size_t kMaxRememberedUrlBytes = 1024;

 private:
  friend struct internal::ExchangeState;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Stats stats_;
};

}  // namespace iris::gateway::upstream
