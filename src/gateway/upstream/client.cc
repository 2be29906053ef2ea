// The outbound HTTP(S) client: raw bytes are read into a flat buffer and fed to Beast's
// response parser; one timer per connection enforces the current deadline by cancelling the
// socket; a CancelToken does the same. Idle connections wait in per-key LIFO pools.
#include "gateway/upstream/client.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <optional>

#include "base/time.h"
#include "gateway/http/lazy_deadline.h"
#include "gateway/http/socket_io.h"
#include "net/tls.h"
#include "net/tunnel.h"

namespace iris::gateway::upstream {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kCancelledPrefix = "cancelled";
// An idle pooled connection released this recently is reused without checking it is open.
constexpr std::chrono::milliseconds kTrustedIdle{250};

}  // namespace

bool IsCancelled(const Status& status) {
  return status.code() == ErrorCode::kUnavailable &&
         std::string_view(status.message()).substr(0, kCancelledPrefix.size()) == kCancelledPrefix;
}

namespace {
// Nothing that could end a line early is written: the URL parts were parsed strictly, and
// every method, target and header is checked here again, whoever built it.
Status CheckWire(const OutboundRequest& request, const Url& url) {
  if (!http::IsValidMethod(request.method) || !http::IsValidRequestTarget(url.target)) {
    return InvalidArgument("refusing to send a request line that is not valid HTTP");
  }
  for (const auto& [name, value] : request.headers) {
    if (!http::IsValidFieldName(name) || !http::IsValidFieldValue(value)) {
      return InvalidArgument("refusing to send header '" +
                             (http::IsValidFieldName(name) ? name : std::string("?")) +
                             "': it is not valid HTTP (CR, LF, NUL or another control byte)");
    }
  }
  return OkStatus();
}
}  // namespace

namespace internal {

// One outbound connection (plain or TLS). Shared so timer and cancel handlers can outlive
// the coroutine that armed them.
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(const asio::any_io_executor& ex)
      : socket(ex), deadline(ex, [this] {
          timed_out = true;
          Interrupt();
        }) {}

  tcp::socket& lowest() { return tls ? tls->next_layer() : socket; }

  // Cancels whatever the connection is waiting on (socket or resolver).
  void Interrupt() {
    error_code ec;
    lowest().cancel(ec);
    if (resolver != nullptr) resolver->cancel();
  }

  // The deadlines a wait can be armed with; each names itself in the error its expiry makes.
  enum class Stage { kConnect, kFirstByte, kIdle, kTotal };

  // Arms the deadline `stage_ms` from now, capped by `total` (lazy_deadline.h), which was
  // `total_ms` from the request's start. What an expiry says is made only when one is told
  // (TimeoutMessage): most waits end in time, and a request arms one or two.
  void Arm(Stage stage, milliseconds stage_ms, SteadyClock::time_point total,
           milliseconds total_ms) {
    timed_out = false;
    SteadyClock::time_point when = SteadyClock::now() + stage_ms;
    armed = stage;
    armed_ms = stage_ms;
    if (when >= total) {
      when = total;
      armed = Stage::kTotal;
      armed_ms = total_ms;
    }
    deadline.Arm(when);
  }

  // The error of the last expiry: the deadline that passed, the peer, and the setting.
  std::string TimeoutMessage() const {
    const std::string ms = std::to_string(armed_ms.count()) + " ms";
    switch (armed) {
      case Stage::kConnect:
        return "connect to " + dial + " did not complete within " + ms + " (connect deadline)";
      case Stage::kFirstByte:
        return "no response headers from " + peer + " within " + ms + " (first_byte deadline)";
      case Stage::kIdle:
        return "no body bytes from " + peer + " for " + ms + " (idle deadline)";
      case Stage::kTotal:
        break;
    }
    return TotalDeadlineMessage(armed_ms);
  }
  // The error of a request past its total deadline of `total_ms`.
  std::string TotalDeadlineMessage(milliseconds total_ms) const {
    return "request to " + peer + " exceeded the total deadline of " +
           std::to_string(total_ms.count()) + " ms";
  }
  void Disarm() { deadline.Disarm(); }
  void StopTimer() { deadline.Stop(); }

  asio::awaitable<std::pair<error_code, size_t>> ReadSome(asio::mutable_buffer into) {
    if (tls) {
      auto [ec, n] = co_await tls->async_read_some(into, kNoThrow);
      co_return std::pair(ec, n);
    }
    auto [ec, n] = co_await socket.async_read_some(into, kNoThrow);
    co_return std::pair(ec, n);
  }

  template <typename Buffers>
  asio::awaitable<error_code> WriteAll(const Buffers& buffers) {
    if (tls) {
      auto [ec, n] = co_await asio::async_write(*tls, buffers, kNoThrow);
      co_return ec;
    }
    co_return co_await http::WriteAllNowOrLater(socket, buffers);
  }

  // Reads more bytes into `buffer`.
  asio::awaitable<error_code> Fill() {
    auto [ec, n] = co_await ReadSome(buffer.prepare(16 << 10));
    buffer.commit(n);
    co_return ec;
  }

  void Close() {
    StopTimer();
    error_code ec;
    lowest().close(ec);
  }

  tcp::socket socket;                             // plain connections and until TLS starts
  std::unique_ptr<ssl::stream<tcp::socket>> tls;  // owns the socket once TLS is on
  http::LazyDeadline deadline;
  tcp::resolver* resolver = nullptr;  // while resolving
  beast::flat_buffer buffer;          // bytes read but not parsed yet
  std::string key;                    // pool key
  std::string dial;                   // "host:port" connected to (the proxy's, through one)
  std::string peer;                   // target, and "(via proxy dial)" through one
  SteadyClock::time_point idle_since;
  bool timed_out = false;
  Stage armed = Stage::kTotal;  // what the deadline was last armed for
  milliseconds armed_ms{0};
  bool interrupted_by_cancel = false;
};

}  // namespace internal

void PrepareTls(const ClientOptions& options) {
  (void)net::ClientTlsContext(options.verify_tls, options.ca_file);
}

struct Client::Impl {
  Impl(asio::io_context& io, ClientOptions opts)
      : ioc(io),
        options(std::move(opts)),
        tls_context(net::ClientTlsContext(options.verify_tls, options.ca_file)) {}

  // A live idle connection for `key`, or nullptr.
  std::shared_ptr<internal::Connection> TakeIdle(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    auto& conns = it->second;
    SteadyClock::time_point oldest = SteadyClock::now() - options.idle_keepalive;
    while (!conns.empty()) {
      std::shared_ptr<internal::Connection> conn = std::move(conns.back());
      conns.pop_back();
      if (conn->idle_since < oldest) {
        conn->Close();
        continue;
      }
      // A closed (or, for plain HTTP, chattering) idle connection is useless. One released
      // moments ago is trusted without the system call: servers close idle connections after
      // seconds, and a stale one is detected and retried once anyway (Start).
      if (conn->idle_since < SteadyClock::now() - kTrustedIdle) {
        char byte;
        ssize_t n = ::recv(conn->lowest().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        bool alive = (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) || (n > 0 && conn->tls);
        if (!alive) {
          conn->Close();
          continue;
        }
      }
      return conn;
    }
    return nullptr;
  }

  void Release(std::shared_ptr<internal::Connection> conn) {
    conn->StopTimer();  // an idle pooled connection keeps no wait pending
    conn->idle_since = SteadyClock::now();
    auto& conns = idle[conn->key];
    conns.push_back(std::move(conn));
    if (conns.size() > options.max_idle_per_host) {
      conns.front()->Close();
      conns.erase(conns.begin());
    }
  }

  asio::awaitable<Result<std::shared_ptr<internal::Connection>>> Connect(
      const Url& url, const Url* proxy, const std::string& key, const Deadlines& deadlines,
      SteadyClock::time_point total, CancelToken* cancel, Stats& stats);

  // Where a URL goes: the URL parsed, the proxy that takes it (or nullptr) and the key of its
  // pool of idle connections.
  struct Destination {
    Url url;
    const Url* proxy = nullptr;  // (into options, which outlive every exchange)
    std::string key;
  };
  // Shared: an exchange keeps its destination even when the set starts over under it.
  Result<std::shared_ptr<const Destination>> DestinationOf(const std::string& text, Stats& stats) {
    if (auto it = destinations.find(text); it != destinations.end()) return it->second;
    Result<Url> parsed = ParseUrl(text);
    ++stats.urls_parsed;
    if (!parsed.ok()) return parsed.status();
    auto d = std::make_shared<Destination>();
    d->url = std::move(*parsed);
    d->proxy = options.proxy.ProxyFor(d->url.scheme, d->url.host);
    d->key = (d->proxy != nullptr && d->url.scheme == "http")
                 ? "proxy://" + net::HostPort(d->proxy->host, d->proxy->port)
                 : d->url.scheme + "://" + net::HostPort(d->url.host, d->url.port);
    if (options.remember_urls && text.size() <= kMaxRememberedUrlBytes) {
      if (destinations.size() >= kRememberedUrls) destinations.clear();
      destinations.emplace(text, d);
    }
    return std::shared_ptr<const Destination>(std::move(d));
  }

  asio::io_context& ioc;
  ClientOptions options;
  // Shared by every client of the process; an error (CA file) fails each https connection.
  Result<std::shared_ptr<ssl::context>> tls_context;
  std::unordered_map<std::string, std::vector<std::shared_ptr<internal::Connection>>> idle;
  std::unordered_map<std::string, std::shared_ptr<const Destination>> destinations;
};

namespace internal {

struct ExchangeState {
  Client::Impl* impl = nullptr;
  std::shared_ptr<Connection> conn;
  bhttp::response_parser<bhttp::string_body> parser;
  Headers headers;
  int status = 0;
  Deadlines deadlines;
  SteadyClock::time_point total;
  CancelToken* cancel = nullptr;
  CancelToken::Registration registration;
  bool done = false;
  bool stale = false;  // failed the way a connection the server closed while idle fails

  ~ExchangeState() {
    if (conn) conn->Close();
  }

  // The status for a failed wait.
  Status WaitError(const std::string& what, error_code ec) const {
    if ((cancel != nullptr && cancel->cancelled()) || conn->interrupted_by_cancel) {
      return Status(ErrorCode::kUnavailable, "cancelled: request to " + conn->peer);
    }
    if (conn->timed_out) return Status(ErrorCode::kDeadlineExceeded, conn->TimeoutMessage());
    return Status(ErrorCode::kUnavailable, what + " " + conn->peer + " failed: " + ec.message());
  }
  // Checked before each wait: a cancel or expiry that fired while nothing was pending.
  std::optional<Status> Interrupted() const {
    if (cancel != nullptr && cancel->cancelled()) {
      return Status(ErrorCode::kUnavailable, "cancelled: request to " + conn->peer);
    }
    if (SteadyClock::now() >= total) {
      return Status(ErrorCode::kDeadlineExceeded, conn->TotalDeadlineMessage(deadlines.total));
    }
    return std::nullopt;
  }

  void Watch() {
    if (cancel == nullptr) return;
    registration = cancel->OnCancel([c = std::weak_ptr<Connection>(conn)] {
      if (auto locked = c.lock()) {
        locked->interrupted_by_cancel = true;
        locked->Interrupt();
      }
    });
  }

  // Feeds buffered bytes to the parser.
  error_code Feed() {
    error_code ec;
    while (conn->buffer.size() > 0 && !parser.is_done()) {
      size_t n = parser.put(conn->buffer.data(), ec);
      conn->buffer.consume(n);
      if (ec == bhttp::error::need_more) return {};
      if (ec) return ec;
      if (n == 0) break;
    }
    return {};
  }

  // The body is complete: the connection goes back to the pool if it can be reused.
  void Complete() {
    done = true;
    registration.Reset();
    if (parser.keep_alive() && conn->buffer.size() == 0 && !conn->timed_out) {
      impl->Release(std::move(conn));
    } else {
      conn->Close();
      conn.reset();
    }
  }

  asio::awaitable<Status> SendAndReadHead(const OutboundRequest& request, const Url& url,
                                          const Url* proxy);
  asio::awaitable<Result<std::string>> ReadSome();
};

asio::awaitable<Status> ExchangeState::SendAndReadHead(const OutboundRequest& request,
                                                       const Url& url, const Url* proxy) {
  Watch();
  if (auto s = Interrupted()) co_return *s;
  bool absolute_form = proxy != nullptr && url.scheme == "http";
  std::string head;
  head.reserve(256 + request.body.size() / 1024);
  head += request.method;
  head += ' ';
  head += absolute_form ? net::AbsoluteTarget(url) : url.target;
  head += " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    if (http::EqualsIgnoreCase(name, "content-length") ||
        http::EqualsIgnoreCase(name, "transfer-encoding")) {
      continue;
    }
    if (http::EqualsIgnoreCase(name, "host")) has_host = true;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!has_host) head += "Host: " + net::HostHeader(url) + "\r\n";
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  if (absolute_form && !proxy->userinfo.empty()) {
    head += "Proxy-Authorization: " + net::ProxyAuthorization(*proxy) + "\r\n";
  }
  head += "\r\n";

  conn->Arm(Connection::Stage::kFirstByte, deadlines.first_byte, total, deadlines.total);
  std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(request.body)};
  error_code ec = co_await conn->WriteAll(buffers);
  if (ec) {
    conn->Disarm();
    stale = !conn->timed_out && !conn->interrupted_by_cancel;
    co_return WaitError("send request to", ec);
  }
  if (request.method == "HEAD") parser.skip(true);
  parser.body_limit(boost::none);
  parser.header_limit(256 << 10);
  parser.eager(true);
  bool got_bytes = conn->buffer.size() > 0;
  while (!parser.is_header_done()) {
    if (error_code pec = Feed()) {
      conn->Disarm();
      co_return Status(ErrorCode::kUnavailable,
                       "malformed response from " + conn->peer + ": " + pec.message());
    }
    if (parser.is_header_done()) break;
    ec = co_await conn->Fill();
    if (ec) {
      conn->Disarm();
      bool closed = ec == asio::error::eof || ec == asio::error::connection_reset ||
                    ec == ssl::error::stream_truncated;
      stale = closed && !got_bytes && conn->buffer.size() == 0;
      if (closed && !conn->timed_out && !conn->interrupted_by_cancel) {
        co_return Status(ErrorCode::kUnavailable,
                         "connection to " + conn->peer + " closed before the response headers");
      }
      co_return WaitError("read response from", ec);
    }
    got_bytes = true;
  }
  conn->Disarm();
  auto& msg = parser.get();
  status = static_cast<int>(msg.result_int());
  headers.reserve(16);
  for (const auto& field : msg) {
    headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  if (parser.is_done()) Complete();
  co_return OkStatus();
}

asio::awaitable<Result<std::string>> ExchangeState::ReadSome() {
  for (;;) {
    if (!done) {
      if (error_code ec = Feed()) {
        co_return Status(ErrorCode::kUnavailable,
                         "malformed response body from " + conn->peer + ": " + ec.message());
      }
    }
    // Bytes decoded so far (possibly with the head, before any read here) go out first.
    std::string& body = parser.get().body();
    if (!body.empty()) {
      std::string out = std::move(body);
      body.clear();
      if (!done && parser.is_done()) Complete();
      co_return out;
    }
    if (done) co_return std::string();
    if (parser.is_done()) {
      Complete();
      co_return std::string();
    }
    if (auto s = Interrupted()) co_return *s;
    conn->Arm(Connection::Stage::kIdle, deadlines.idle, total, deadlines.total);
    error_code ec = co_await conn->Fill();
    conn->Disarm();
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      error_code eof_ec;
      parser.put_eof(eof_ec);  // completes a body delimited by close; else partial_message
      if (!eof_ec) continue;
      co_return Status(ErrorCode::kUnavailable, "connection to " + conn->peer + " closed mid-body");
    }
    if (ec) co_return WaitError("read body from", ec);
  }
}

}  // namespace internal

asio::awaitable<Result<std::shared_ptr<internal::Connection>>> Client::Impl::Connect(
    const Url& url, const Url* proxy, const std::string& key, const Deadlines& deadlines,
    SteadyClock::time_point total, CancelToken* cancel, Stats& stats) {
  using Conn = internal::Connection;
  auto conn = std::make_shared<Conn>(ioc.get_executor());
  conn->key = key;
  std::string target = net::HostPort(url.host, url.port);
  const std::string& dial_host = proxy ? proxy->host : url.host;
  uint16_t dial_port = proxy ? proxy->port : url.port;
  std::string dial = net::HostPort(dial_host, dial_port);
  conn->peer = proxy ? target + " (via proxy " + dial + ")" : target;
  conn->dial = dial;
  CancelToken::Registration registration;
  if (cancel != nullptr) {
    registration = cancel->OnCancel([c = std::weak_ptr<Conn>(conn)] {
      if (auto locked = c.lock()) {
        locked->interrupted_by_cancel = true;
        locked->Interrupt();
      }
    });
  }
  auto failed = [&](std::string what, error_code ec) -> Status {
    conn->Disarm();
    if (conn->interrupted_by_cancel || (cancel != nullptr && cancel->cancelled())) {
      return Status(ErrorCode::kUnavailable, "cancelled: connecting to " + conn->peer);
    }
    if (conn->timed_out) return Status(ErrorCode::kDeadlineExceeded, conn->TimeoutMessage());
    return Status(ErrorCode::kUnavailable, what + " failed: " + ec.message());
  };
  if (cancel != nullptr && cancel->cancelled()) {
    co_return Status(ErrorCode::kUnavailable, "cancelled: connecting to " + conn->peer);
  }
  conn->Arm(Conn::Stage::kConnect, deadlines.connect, total, deadlines.total);

  tcp::resolver::results_type endpoints;
  error_code ec;
  asio::ip::address address = asio::ip::make_address(dial_host, ec);
  if (!ec) {
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, dial_port), dial_host,
                                                    std::to_string(dial_port));
  } else {
    tcp::resolver resolver(ioc);
    conn->resolver = &resolver;
    auto [rec, results] =
        co_await resolver.async_resolve(dial_host, std::to_string(dial_port), kNoThrow);
    conn->resolver = nullptr;
    if (rec) co_return failed("resolve " + dial_host, rec);
    endpoints = std::move(results);
  }
  if (options.allow_address && proxy == nullptr) {
    // Connect only to addresses from this one answer that the filter accepts.
    std::vector<tcp::endpoint> accepted;
    for (const auto& entry : endpoints) {
      if (options.allow_address(entry.endpoint().address())) accepted.push_back(entry.endpoint());
    }
    if (accepted.empty()) {
      conn->Disarm();
      co_return Status(ErrorCode::kPermissionDenied,
                       "refusing to connect to " + target + ": its address is not allowed");
    }
    endpoints = tcp::resolver::results_type::create(accepted.begin(), accepted.end(), dial_host,
                                                    std::to_string(dial_port));
  }
  auto [cec, endpoint] = co_await asio::async_connect(conn->socket, endpoints, kNoThrow);
  if (cec) co_return failed("connect to " + dial, cec);
  conn->socket.set_option(tcp::no_delay(true), ec);
  conn->socket.non_blocking(true, ec);  // WriteAllNowOrLater's first send must not block
  ++stats.connections_opened;

  if (proxy != nullptr && url.scheme == "https") {
    auto [tec, code] =
        co_await net::AsyncOpenTunnel(conn->socket, conn->buffer, url, *proxy, kNoThrow);
    if (tec && (conn->timed_out || conn->interrupted_by_cancel)) {
      co_return failed("CONNECT through proxy " + dial, tec);
    }
    if (Status tunnel = net::TunnelStatus(tec, code, url, *proxy); !tunnel.ok()) {
      conn->Disarm();
      co_return tunnel;
    }
  }

  if (url.scheme == "https") {
    if (!tls_context.ok()) {
      conn->Disarm();
      co_return tls_context.status();
    }
    conn->tls = std::make_unique<ssl::stream<tcp::socket>>(std::move(conn->socket), **tls_context);
    if (Status s = net::PrepareTlsClient(conn->tls->native_handle(), url.host, options.verify_tls);
        !s.ok()) {
      conn->Disarm();
      co_return s;
    }
    auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kNoThrow);
    if (hec) {
      std::string refused = net::CertificateError(conn->tls->native_handle());
      if (!conn->timed_out && !conn->interrupted_by_cancel && !refused.empty()) {
        conn->Disarm();
        co_return Status(ErrorCode::kUnavailable,
                         "TLS certificate of " + target + " not trusted: " + refused);
      }
      co_return failed("TLS handshake with " + target, hec);
    }
  }
  conn->Disarm();
  co_return conn;
}

// Exchange ---------------------------------------------------------------------------------

Exchange::Exchange(std::unique_ptr<internal::ExchangeState> state) : state_(std::move(state)) {}
Exchange::Exchange(Exchange&&) noexcept = default;
Exchange& Exchange::operator=(Exchange&&) noexcept = default;
Exchange::~Exchange() = default;

int Exchange::status() const { return state_->status; }
const Headers& Exchange::headers() const { return state_->headers; }
bool Exchange::done() const { return state_->done && state_->parser.get().body().empty(); }

asio::awaitable<Result<std::string>> Exchange::ReadSome() { return state_->ReadSome(); }

asio::awaitable<Result<std::string>> Exchange::ReadAll(size_t max_bytes) {
  auto too_large = [&] {
    return Status(ErrorCode::kResourceExhausted,
                  "response body from " +
                      (state_->conn ? state_->conn->peer : std::string("upstream")) +
                      " larger than " + std::to_string(max_bytes) + " bytes");
  };
  if (auto length = state_->parser.content_length(); length && *length > max_bytes) {
    co_return too_large();
  }
  std::string all;
  for (;;) {
    Result<std::string> piece = co_await state_->ReadSome();
    if (!piece.ok()) co_return piece.status();
    if (piece->empty()) co_return all;
    if (all.size() + piece->size() > max_bytes) co_return too_large();
    if (all.empty()) {
      all = std::move(*piece);
    } else {
      all += *piece;
    }
  }
}

// Client -----------------------------------------------------------------------------------

Client::Client(asio::io_context& ioc, ClientOptions options)
    : impl_(std::make_unique<Impl>(ioc, std::move(options))) {}

Client::~Client() {
  for (auto& [key, conns] : impl_->idle) {
    for (auto& c : conns) c->Close();
  }
}

size_t Client::remembered_urls() const { return impl_->destinations.size(); }

size_t Client::idle_connections() const {
  size_t n = 0;
  for (const auto& [key, conns] : impl_->idle) n += conns.size();
  return n;
}

asio::awaitable<Result<Exchange>> Client::Start(const OutboundRequest& request,
                                                const Deadlines& deadlines, CancelToken* cancel) {
  auto destination = impl_->DestinationOf(request.url, stats_);
  if (!destination.ok()) co_return destination.status();
  const std::shared_ptr<const Impl::Destination> dest = std::move(*destination);
  const Url& url = dest->url;
  const Url* proxy = dest->proxy;
  const std::string& key = dest->key;
  if (Status wire = CheckWire(request, url); !wire.ok()) co_return wire;
  SteadyClock::time_point total = SteadyClock::now() + deadlines.total;
  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<internal::Connection> conn = impl_->TakeIdle(key);
    bool reused = conn != nullptr;
    if (reused) {
      ++stats_.connections_reused;
    } else {
      auto connected = co_await impl_->Connect(url, proxy, key, deadlines, total, cancel, stats_);
      if (!connected.ok()) co_return connected.status();
      conn = std::move(*connected);
    }
    auto state = std::make_unique<internal::ExchangeState>();
    state->impl = impl_.get();
    state->conn = std::move(conn);
    state->deadlines = deadlines;
    state->total = total;
    state->cancel = cancel;
    Status s = co_await state->SendAndReadHead(request, url, proxy);
    if (s.ok()) co_return Exchange(std::move(state));
    if (reused && state->stale && attempt == 0) {
      ++stats_.stale_retries;
      continue;
    }
    co_return s;
  }
}

}  // namespace iris::gateway::upstream
