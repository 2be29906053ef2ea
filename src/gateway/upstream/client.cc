// The outbound HTTP(S) client: raw bytes are read into a flat buffer and fed to Beast's
// response parser; one timer per connection enforces the current deadline by cancelling the
// socket; a CancelToken does the same. Idle connections wait in per-key LIFO pools.
#include "gateway/upstream/client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
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
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cerrno>
#include <map>
#include <mutex>

#include "base/time.h"
#include "gateway/http/lazy_deadline.h"

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

std::string HostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out + ":" + std::to_string(port);
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out += "=";
  }
  return out;
}

bool IsIpAddress(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

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

Result<Url> ParseUrl(std::string_view text) {
  // The text itself is never echoed into errors: it may come from a caller, and a proxy URL
  // may hold a password.
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return InvalidArgument("not a valid absolute URL (RFC 3986)");
  const boost::urls::url_view& u = *parsed;
  Url out;
  if (u.scheme_id() == boost::urls::scheme::https) {
    out.scheme = "https";
    out.port = 443;
  } else if (u.scheme_id() == boost::urls::scheme::http) {
    out.scheme = "http";
    out.port = 80;
  } else {
    return InvalidArgument("URL must start with http:// or https://");
  }
  if (!u.has_authority()) return InvalidArgument("URL has no host");
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6:
      out.host = std::string(u.encoded_host_address());
      break;
    case boost::urls::host_type::name: {
      std::string_view host = u.encoded_host();
      if (host.find('%') != std::string_view::npos) {
        return InvalidArgument("URL host must not be percent-encoded");
      }
      out.host = http::ToLower(host);
      break;
    }
    default:
      return InvalidArgument("URL host is not a name or an IP address");
  }
  if (out.host.empty()) return InvalidArgument("URL has no host");
  if (u.has_port()) {
    std::string_view port = u.port();
    uint32_t p = 0;
    for (char c : port) {
      if (p > 65535) break;
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port.empty() || port.size() > 5 || p == 0 || p > 65535) {
      return InvalidArgument("bad port in URL");
    }
    out.port = static_cast<uint16_t>(p);
  }
  if (u.has_userinfo()) out.userinfo = std::string(u.encoded_userinfo());
  // Boost.URL takes "http://a@b@c/" as host "b" and path "@c/"; RFC 3986 allows no path
  // after an authority that does not start with '/' (and other parsers take host "c").
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    return InvalidArgument("URL authority is malformed (a second '@'?)");
  }
  out.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) out.target += "?" + std::string(u.encoded_query());
  return out;
}

Result<ProxySettings> ProxySettings::FromEnv(
    const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* lower, const char* upper) -> std::string {
    const char* v = getenv(lower);
    if (v == nullptr || *v == '\0') v = getenv(upper);
    return v == nullptr ? std::string() : std::string(v);
  };
  auto parse_proxy = [](std::string value, const char* name) -> Result<std::optional<Url>> {
    if (value.empty()) return std::optional<Url>();
    if (value.find("://") == std::string::npos) value = "http://" + value;
    if (!http::ToLower(value).starts_with("http://")) {
      return InvalidArgument(std::string(name) + ": only http:// proxies are supported: " + value);
    }
    Result<Url> url = ParseUrl(value);
    if (!url.ok()) return url.status().WithContext(name);
    return std::optional<Url>(std::move(*url));
  };
  ProxySettings settings;
  auto https = parse_proxy(get("https_proxy", "HTTPS_PROXY"), "HTTPS_PROXY");
  if (!https.ok()) return https.status();
  settings.https_proxy = std::move(*https);
  auto plain = parse_proxy(get("http_proxy", "HTTP_PROXY"), "HTTP_PROXY");
  if (!plain.ok()) return plain.status();
  settings.http_proxy = std::move(*plain);
  std::string no_proxy = get("no_proxy", "NO_PROXY");
  size_t start = 0;
  while (start <= no_proxy.size()) {
    size_t comma = no_proxy.find(',', start);
    std::string entry = no_proxy.substr(start, comma - start);
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (!entry.empty()) settings.no_proxy.push_back(http::ToLower(entry));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return settings;
}

const Url* ProxySettings::ProxyFor(std::string_view scheme, std::string_view host) const {
  const std::optional<Url>& proxy = scheme == "https" ? https_proxy : http_proxy;
  if (!proxy) return nullptr;
  std::string h = http::ToLower(host);
  for (std::string entry : no_proxy) {
    if (entry == "*") return nullptr;
    if (entry.starts_with("*.")) entry.erase(0, 2);
    if (entry.starts_with(".")) entry.erase(0, 1);
    if (entry.starts_with("[")) {  // [v6]:port
      entry = entry.substr(1, entry.find(']') - 1);
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
      entry.erase(entry.find(':'));  // host:port
    }
    if (h == entry) return nullptr;
    if (h.size() > entry.size() && h.ends_with(entry) && h[h.size() - entry.size() - 1] == '.') {
      return nullptr;
    }
  }
  return &*proxy;
}

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

  // Arms the deadline `stage` from now, capped by `total` (lazy_deadline.h); the message is
  // the error an expiry produces.
  void Arm(milliseconds stage, SteadyClock::time_point total, std::string stage_message,
           std::string total_message) {
    timed_out = false;
    SteadyClock::time_point when = SteadyClock::now() + stage;
    if (when >= total) {
      when = total;
      timeout_message = std::move(total_message);
    } else {
      timeout_message = std::move(stage_message);
    }
    deadline.Arm(when);
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
    auto [ec, n] = co_await asio::async_write(socket, buffers, kNoThrow);
    co_return ec;
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
  std::string peer;                   // "host:port" for messages
  SteadyClock::time_point idle_since;
  bool timed_out = false;
  std::string timeout_message;
  bool interrupted_by_cancel = false;
};

}  // namespace internal

namespace {

struct TlsContext {
  std::shared_ptr<ssl::context> ctx;
  std::string ca_error;
};

// One TLS client context per (verify, CA file) for the whole process, built on first use:
// loading the system CA store takes tens of milliseconds, which no request should pay, and an
// SSL_CTX may be shared by every thread once configured.
const TlsContext& SharedTlsContext(bool verify, const std::string& ca_file) {
  static std::mutex mu;
  static std::map<std::pair<bool, std::string>, TlsContext> cache;
  std::lock_guard lock(mu);
  TlsContext& t = cache[{verify, ca_file}];
  if (t.ctx) return t;
  t.ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  t.ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3);
  error_code ec;
  if (!ca_file.empty()) {
    t.ctx->load_verify_file(ca_file, ec);
    if (ec) t.ca_error = "cannot load CA file " + ca_file + ": " + ec.message();
  } else {
    t.ctx->set_default_verify_paths(ec);
  }
  t.ctx->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
  return t;
}

}  // namespace

void PrepareTls(const ClientOptions& options) {
  (void)SharedTlsContext(options.verify_tls, options.ca_file);
}

struct Client::Impl {
  Impl(asio::io_context& io, ClientOptions opts) : ioc(io), options(std::move(opts)) {
    const TlsContext& tls = SharedTlsContext(options.verify_tls, options.ca_file);
    ssl_ctx_ptr = tls.ctx;
    ca_error = tls.ca_error;
  }

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
      // A closed (or, for plain HTTP, chattering) idle connection is useless.
      char byte;
      ssize_t n = ::recv(conn->lowest().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      bool alive = (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) || (n > 0 && conn->tls);
      if (!alive) {
        conn->Close();
        continue;
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

  asio::io_context& ioc;
  ClientOptions options;
  std::shared_ptr<ssl::context> ssl_ctx_ptr;  // shared by every client of the process
  std::string ca_error;
  std::unordered_map<std::string, std::vector<std::shared_ptr<internal::Connection>>> idle;
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

  std::string TotalMessage() const {
    return "request to " + conn->peer + " exceeded the total deadline of " +
           std::to_string(deadlines.total.count()) + " ms";
  }

  // The status for a failed wait.
  Status WaitError(const std::string& what, error_code ec) const {
    if ((cancel != nullptr && cancel->cancelled()) || conn->interrupted_by_cancel) {
      return Status(ErrorCode::kUnavailable, "cancelled: request to " + conn->peer);
    }
    if (conn->timed_out) return Status(ErrorCode::kDeadlineExceeded, conn->timeout_message);
    return Status(ErrorCode::kUnavailable, what + " " + conn->peer + " failed: " + ec.message());
  }
  // Checked before each wait: a cancel or expiry that fired while nothing was pending.
  std::optional<Status> Interrupted() const {
    if (cancel != nullptr && cancel->cancelled()) {
      return Status(ErrorCode::kUnavailable, "cancelled: request to " + conn->peer);
    }
    if (SteadyClock::now() >= total) return Status(ErrorCode::kDeadlineExceeded, TotalMessage());
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
  if (absolute_form) head += url.scheme + "://" + HostPort(url.host, url.port);
  head += url.target;
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
  if (!has_host) {
    head += "Host: ";
    bool default_port =
        (url.scheme == "https" && url.port == 443) || (url.scheme == "http" && url.port == 80);
    head += default_port
                ? (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host)
                : HostPort(url.host, url.port);
    head += "\r\n";
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  if (absolute_form && !proxy->userinfo.empty()) {
    head += "Proxy-Authorization: Basic " + Base64(proxy->userinfo) + "\r\n";
  }
  head += "\r\n";

  conn->Arm(deadlines.first_byte, total,
            "no response headers from " + conn->peer + " within " +
                std::to_string(deadlines.first_byte.count()) + " ms (first_byte deadline)",
            TotalMessage());
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
    conn->Arm(deadlines.idle, total,
              "no body bytes from " + conn->peer + " for " +
                  std::to_string(deadlines.idle.count()) + " ms (idle deadline)",
              TotalMessage());
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
  std::string target = HostPort(url.host, url.port);
  const std::string& dial_host = proxy ? proxy->host : url.host;
  uint16_t dial_port = proxy ? proxy->port : url.port;
  std::string dial = HostPort(dial_host, dial_port);
  conn->peer = proxy ? target + " (via proxy " + dial + ")" : target;
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
    if (conn->timed_out) return Status(ErrorCode::kDeadlineExceeded, conn->timeout_message);
    return Status(ErrorCode::kUnavailable, what + " failed: " + ec.message());
  };
  if (cancel != nullptr && cancel->cancelled()) {
    co_return Status(ErrorCode::kUnavailable, "cancelled: connecting to " + conn->peer);
  }
  conn->Arm(deadlines.connect, total,
            "connect to " + dial + " did not complete within " +
                std::to_string(deadlines.connect.count()) + " ms (connect deadline)",
            "request to " + target + " exceeded the total deadline of " +
                std::to_string(deadlines.total.count()) + " ms");

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
  ++stats.connections_opened;

  if (proxy != nullptr && url.scheme == "https") {
    std::string connect = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n";
    if (!proxy->userinfo.empty()) {
      connect += "Proxy-Authorization: Basic " + Base64(proxy->userinfo) + "\r\n";
    }
    connect += "\r\n";
    if (error_code wec = co_await conn->WriteAll(asio::buffer(connect))) {
      co_return failed("CONNECT through proxy " + dial, wec);
    }
    bhttp::response_parser<bhttp::empty_body> parser;
    parser.skip(true);  // a 2xx answer to CONNECT has no body; the tunnel starts after it
    while (!parser.is_header_done()) {
      error_code pec;
      size_t n = parser.put(conn->buffer.data(), pec);
      conn->buffer.consume(n);
      if (pec && pec != bhttp::error::need_more) {
        conn->Disarm();
        co_return Status(ErrorCode::kUnavailable,
                         "proxy " + dial + " sent a malformed CONNECT answer: " + pec.message());
      }
      if (parser.is_header_done()) break;
      if (error_code rec = co_await conn->Fill()) {
        co_return failed("CONNECT through proxy " + dial, rec);
      }
    }
    int code = static_cast<int>(parser.get().result_int());
    if (code < 200 || code > 299) {
      conn->Disarm();
      co_return Status(ErrorCode::kUnavailable, "proxy " + dial + " refused CONNECT to " + target +
                                                    ": HTTP " + std::to_string(code));
    }
  }

  if (url.scheme == "https") {
    if (!ca_error.empty()) {
      conn->Disarm();
      co_return Status(ErrorCode::kUnavailable, ca_error);
    }
    conn->tls = std::make_unique<ssl::stream<tcp::socket>>(std::move(conn->socket), *ssl_ctx_ptr);
    if (!IsIpAddress(url.host)) {
      SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str());
    }
    if (options.verify_tls) {
      conn->tls->set_verify_callback(ssl::host_name_verification(url.host));
    }
    auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kNoThrow);
    if (hec) {
      long verify = SSL_get_verify_result(conn->tls->native_handle());
      if (!conn->timed_out && !conn->interrupted_by_cancel && verify != X509_V_OK) {
        conn->Disarm();
        co_return Status(ErrorCode::kUnavailable,
                         "TLS certificate of " + target +
                             " not trusted: " + X509_verify_cert_error_string(verify));
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

size_t Client::idle_connections() const {
  size_t n = 0;
  for (const auto& [key, conns] : impl_->idle) n += conns.size();
  return n;
}

asio::awaitable<Result<Exchange>> Client::Start(const OutboundRequest& request,
                                                const Deadlines& deadlines, CancelToken* cancel) {
  Result<Url> parsed = ParseUrl(request.url);
  if (!parsed.ok()) co_return parsed.status();
  const Url& url = *parsed;
  if (Status wire = CheckWire(request, url); !wire.ok()) co_return wire;
  SteadyClock::time_point total = SteadyClock::now() + deadlines.total;
  const Url* proxy = impl_->options.proxy.ProxyFor(url.scheme, url.host);
  std::string key = (proxy != nullptr && url.scheme == "http")
                        ? "proxy://" + HostPort(proxy->host, proxy->port)
                        : url.scheme + "://" + HostPort(url.host, url.port);
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
