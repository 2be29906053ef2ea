// The inbound HTTP/1.1 server: Beast parses requests, responses are serialized by hand (a
// head string plus the body as gather buffers), timeouts are one timer per connection that
// cancels the socket, and a pending wait on the socket detects a client that went away.
#include "gateway/http/server.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <future>
#include <list>
#include <optional>
#include <thread>
#include <tuple>

#include "base/check.h"
#include "base/time.h"
#include "gateway/http/lazy_deadline.h"
#include "gateway/http/socket_io.h"

namespace iris::gateway::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

void Log(const std::string& message) { std::fprintf(stderr, "iris http: %s\n", message.c_str()); }

// At most one line per second for errors a flood can repeat (accept failures, refused
// connections); the lines in between are counted and reported with the next one.
void LogRateLimited(const std::string& message) {
  static std::atomic<int64_t> last_ms{0};
  static std::atomic<int64_t> suppressed{0};
  const int64_t now = SteadyNowMs();
  int64_t last = last_ms.load(std::memory_order_relaxed);
  if (now - last < 1000 || !last_ms.compare_exchange_strong(last, now)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const int64_t n = suppressed.exchange(0, std::memory_order_relaxed);
  Log(n > 0 ? message + " (and " + std::to_string(n) + " more like it in the last second)"
            : message);
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  std::string addr = ep.address().to_string();
  if (ep.address().is_v6()) addr = "[" + addr + "]";
  return addr + ":" + std::to_string(ep.port());
}

// Built outside coroutines: GCC 12 rejects braced string-literal initializers in their frames.
Headers JsonHeaders() { return Headers{{"Content-Type", "application/json"}}; }

}  // namespace

std::string ErrorBody(std::string_view message, std::string_view type) {
  std::string out = R"({"error":{"message":")";
  for (char c : message) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += R"(","type":")";
  out += type;
  out += R"("}})";
  return out;
}

// How long a request is handled before the server starts watching for its client to leave.
// Most answers are out before then, and a watch costs a system call to start.
constexpr std::chrono::milliseconds kWatchAfter{10};

struct Server::Worker {
  // Connections still listed when the worker goes (a handler that ignored its CancelToken past
  // the shutdown deadline) are released while the io_context, whose services their sockets
  // and timers use, still exists; those a pending coroutine still holds go when the
  // io_context destroys its handlers, also before its services.
  ~Worker() { conns.clear(); }

  // A request starts being handled / has been handled (this worker's thread only).
  void StartHandling(internal::Connection* c);
  void StopHandling(internal::Connection* c);
  void OnWatchTick();

  std::list<std::shared_ptr<internal::Connection>> conns;  // this worker's thread only
  std::atomic<int64_t> open{0};                            // accepted, not yet closed
  // Connections whose request is being handled, for the watch ticker: one timer per worker,
  // pending only while requests are, that starts the disconnect watch of each request handled
  // for kWatchAfter (10 to 20 ms after it started). A timer per request re-armed the kernel's
  // timer twice per request and woke the thread once more after most answers had gone.
  // (Declared before ioc: connections that the io_context's destruction releases leave it.)
  std::vector<internal::Connection*> handling;
  asio::io_context ioc{1};
  asio::steady_timer watch_ticker{ioc};
  bool ticking = false;
  std::optional<tcp::acceptor> acceptor;  // worker 0 only
  asio::steady_timer deadline_timer{ioc};
  asio::steady_timer stop_timer{ioc};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
};

namespace internal {

// One accepted connection. Lives on its worker's thread; shared_ptr so timer and watcher
// handlers can outlive the serving coroutine.
struct Connection : std::enable_shared_from_this<Connection> {
  Connection(Server* s, Server::Worker* w, tcp::socket sock)
      : server(s), worker(w), socket(std::move(sock)), deadline(socket.get_executor(), [this] {
          timed_out = true;
          error_code ignored;
          socket.cancel(ignored);
        }) {
    error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (!ec) remote = FormatEndpoint(ep);
    socket.non_blocking(true, ec);  // WriteAllNowOrLater's first send must not block
  }
  ~Connection() { worker->StopHandling(this); }

  const ServerOptions& options() const { return server->options_; }

  // The deadline of the current read or write (lazy_deadline.h): on expiry it cancels the
  // socket's pending operations.
  void ArmAt(SteadyClock::time_point when) {
    timed_out = false;
    deadline.Arm(when);
  }
  void ArmFor(std::chrono::milliseconds d) { ArmAt(SteadyClock::now() + d); }
  void Disarm() { deadline.Disarm(); }
  void StopTimer() { deadline.Stop(); }

  // Client-disconnect detection while the handler runs: a pending one-byte peek. It ends with
  // EOF (or an error) when the client is gone, and with a byte when a pipelined request
  // arrives (which it leaves in the socket). A read operation rather than a readiness wait:
  // the reactor queues it without an epoll_ctl, where each readiness wait costs one.
  void StartWatch() {
    watching = true;
    uint64_t gen = ++watch_gen;
    socket.async_receive(
        asio::buffer(&peek_byte, 1), tcp::socket::message_peek,
        asio::bind_cancellation_slot(watch_signal.slot(),
                                     [self = shared_from_this(), gen](error_code ec, size_t n) {
                                       self->OnPeek(ec, n, gen);
                                     }));
  }
  void OnPeek(error_code ec, size_t n, uint64_t gen) {
    if (gen != watch_gen) return;
    watching = false;
    if (ec == asio::error::operation_aborted) return;
    // Bytes of a pipelined request: the client is still there; stop watching (its later
    // disconnect shows up as a write error instead).
    if (!ec && n > 0) return;
    MarkGone();
  }
  void StopWatch() {
    ++watch_gen;
    if (watching) {
      watching = false;
      watch_signal.emit(asio::cancellation_type::terminal);
    }
  }

  void MarkGone() {
    if (gone) return;
    gone = true;
    if (writer != nullptr) writer->cancel_.Cancel();
  }

  void CloseSocket() {
    error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  // Shutdown past its deadline: cancel the work of the request, then drop the connection.
  void ForceClose() {
    MarkGone();
    StopTimer();
    CloseSocket();
  }

  template <typename Buffers>
  asio::awaitable<Status> WriteAll(const Buffers& buffers) {
    if (gone) co_return Status(ErrorCode::kUnavailable, "client gone");
    ArmFor(options().body_timeout);
    error_code ec = co_await WriteAllNowOrLater(socket, buffers);
    Disarm();
    if (ec) {
      bool was_timeout = timed_out;
      MarkGone();
      co_return Status(ErrorCode::kUnavailable,
                       was_timeout ? "write to client " + remote + " timed out"
                                   : "write to client " + remote + " failed: " + ec.message());
    }
    co_return OkStatus();
  }

  // Answers a limit or parse error and closes: stop sending, read what the client still
  // sends for a moment (so the kernel does not reset the connection before the client read
  // the answer), then close.
  asio::awaitable<void> SendErrorAndClose(int status, std::string message) {
    ResponseWriter error_writer(this);
    error_writer.keep_alive_ = false;
    (void)co_await error_writer.Send(status, JsonHeaders(), ErrorBody(message));
    if (gone) co_return;
    error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    ArmFor(std::chrono::milliseconds(500));
    std::string sink(4096, '\0');  // not a char array: GCC 12 miscompiles those in coroutines
    size_t drained = 0;
    while (drained < (1 << 20)) {
      auto [rec, n] = co_await socket.async_read_some(asio::buffer(sink), kNoThrow);
      if (rec) break;
      drained += n;
    }
    Disarm();
  }

  asio::awaitable<void> Run() {
    try {
      co_await Serve();
    } catch (const std::exception& e) {
      Log("connection " + remote + " failed: " + e.what());
    } catch (...) {
      Log("connection " + remote + " failed: unknown exception");
    }
    StopTimer();
    worker->StopHandling(this);
    StopWatch();
    CloseSocket();
  }

  asio::awaitable<void> Serve();

  Server* server;
  Server::Worker* worker;
  tcp::socket socket;
  LazyDeadline deadline;
  // While a request is handled: when it started, and this connection's place in the worker's
  // `handling` (the watch ticker's list).
  static constexpr size_t kNotHandling = ~size_t{0};
  SteadyClock::time_point handling_since;
  size_t handling_index = kNotHandling;
  bool watch_started = false;  // by the ticker, once per request
  beast::flat_buffer buffer;
  std::string remote;
  bool timed_out = false;
  bool idle = false;  // waiting for the first byte of a request
  bool gone = false;
  bool watching = false;
  char peek_byte = 0;  // the watch's one-byte peek lands here
  uint64_t watch_gen = 0;
  asio::cancellation_signal watch_signal;
  ResponseWriter* writer = nullptr;  // the request being handled, if any
  std::list<std::shared_ptr<Connection>>::iterator self_it;
};

asio::awaitable<void> Connection::Serve() {
  const ServerOptions& opts = options();
  bool first = true;
  for (;;) {
    // Wait for the request to start: quietly closed on the keep-alive idle timeout, 408 when
    // a fresh connection never sends a head.
    SteadyClock::time_point head_deadline = SteadyClock::now() + opts.header_timeout;
    if (buffer.size() > 0 && !first) {
      // A pipelined request, already read: reads and sends that finish at once never
      // suspend, so without this one client's pipeline would hold the worker's thread.
      co_await asio::post(socket.get_executor(), asio::use_awaitable);
    }
    if (buffer.size() == 0) {
      error_code aec;
      if (server->shutting_down_ && socket.available(aec) == 0) co_return;
      idle = true;
      ArmFor(first ? opts.header_timeout : opts.idle_timeout);
      error_code ec;
      if (first) {
        // A fresh connection waits without a buffer: one that never sends costs no memory.
        std::tie(ec) = co_await socket.async_wait(tcp::socket::wait_read, kNoThrow);
      } else {
        // A kept-alive one reads straight into the buffer it already has: no readiness wait
        // (an epoll_ctl per request), and the head is often complete in this one read.
        size_t n = 0;
        std::tie(ec, n) = co_await socket.async_read_some(
            buffer.prepare(std::max<size_t>(buffer.capacity(), 4096)), kNoThrow);
        buffer.commit(n);
      }
      Disarm();
      idle = false;
      if (ec) {
        if (timed_out && first)
          co_await SendErrorAndClose(408, "timed out waiting for the request");
        co_return;
      }
      if (!first) head_deadline = SteadyClock::now() + opts.header_timeout;
    }
    first = false;

    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(opts.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(opts.max_body_bytes);
    ArmAt(head_deadline);
    error_code hec = co_await ReadUntil(
        socket, buffer, parser, [&] { return parser.is_header_done(); }, &timed_out);
    Disarm();
    if (hec) {
      if (timed_out) {
        co_await SendErrorAndClose(408, "timed out reading the request head");
      } else if (hec == bhttp::error::header_limit) {
        co_await SendErrorAndClose(
            431, "request head larger than " + std::to_string(opts.max_header_bytes) + " bytes");
      } else if (hec == bhttp::error::body_limit) {
        co_await SendErrorAndClose(
            413, "request body larger than " + std::to_string(opts.max_body_bytes) + " bytes");
      } else if (hec == bhttp::error::end_of_stream || hec == bhttp::error::partial_message ||
                 hec == asio::error::eof || hec == asio::error::connection_reset ||
                 hec == asio::error::operation_aborted) {
        // The client went away.
      } else {
        co_await SendErrorAndClose(400, "malformed request: " + hec.message());
      }
      co_return;
    }
    auto& msg = parser.get();
    if (auto length = parser.content_length(); length && *length > opts.max_body_bytes) {
      co_await SendErrorAndClose(
          413, "request body larger than " + std::to_string(opts.max_body_bytes) + " bytes");
      co_return;
    }
    if (!parser.is_done()) {
      if (msg.version() >= 11 && EqualsIgnoreCase(msg[bhttp::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!(co_await WriteAll(asio::buffer(kContinue.data(), kContinue.size()))).ok()) {
          co_return;
        }
      }
      ArmFor(opts.body_timeout);
      parser.eager(true);
      error_code bec = co_await ReadUntil(
          socket, buffer, parser, [&] { return parser.is_done(); }, &timed_out);
      Disarm();
      if (bec) {
        if (timed_out) {
          co_await SendErrorAndClose(408, "timed out reading the request body");
        } else if (bec == bhttp::error::body_limit) {
          co_await SendErrorAndClose(
              413, "request body larger than " + std::to_string(opts.max_body_bytes) + " bytes");
        } else if (bec == bhttp::error::partial_message || bec == asio::error::eof ||
                   bec == asio::error::connection_reset || bec == bhttp::error::end_of_stream) {
          // The client went away mid-body.
        } else {
          co_await SendErrorAndClose(400, "malformed request body: " + bec.message());
        }
        co_return;
      }
      // A large body grew the buffer; a kept-alive connection goes back to a small one.
      if (buffer.size() == 0 && buffer.capacity() > (16 << 10)) buffer.shrink_to_fit();
    }

    Request request;
    request.method.assign(msg.method_string());
    request.target.assign(msg.target());
    if (size_t q = request.target.find('?'); q != std::string::npos) {
      request.path = request.target.substr(0, q);
      request.query = request.target.substr(q + 1);
    } else {
      request.path = request.target;
    }
    request.version = static_cast<int>(msg.version());
    request.headers.reserve(16);
    for (const auto& field : msg) {
      request.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(msg.body());
    request.remote = remote;

    ResponseWriter response(this);
    response.head_only_ = msg.method() == bhttp::verb::head;
    response.http10_ = msg.version() < 11;
    response.keep_alive_ = msg.keep_alive();
    writer = &response;
    ++server->requests_in_flight_;
    ++server->requests_total_;
    worker->StartHandling(this);
    bool threw = false;
    try {
      co_await server->handler_(request, response);
    } catch (const std::exception& e) {
      threw = true;
      Log("handler for " + request.method + " " + request.path + " threw: " + e.what());
    } catch (...) {
      threw = true;
      Log("handler for " + request.method + " " + request.path + " threw a non-exception");
    }
    worker->StopHandling(this);
    StopWatch();
    --server->requests_in_flight_;
    if (gone) {
      writer = nullptr;
      co_return;
    }
    if (!response.started_) {
      ++server->handler_errors_;
      if (!threw) Log("handler for " + request.method + " " + request.path + " sent nothing");
      (void)co_await response.Send(
          500, JsonHeaders(),
          ErrorBody(threw ? "internal error" : "the handler sent no response", "server_error"));
    } else if (!response.finished_) {
      if (threw) {  // a stream cut by a bug: close so the client sees it truncated
        writer = nullptr;
        co_return;
      }
      (void)co_await response.Finish();
    }
    writer = nullptr;
    if (gone || response.close_after_ || server->shutting_down_) co_return;
  }
}

}  // namespace internal

bool ResponseWriter::client_gone() const { return conn_->gone; }

std::string ResponseWriter::Head(int status, const Headers& headers, bool chunked,
                                 size_t content_length) {
  bool close = !keep_alive_ || conn_->server->shutting_down() || (chunked && http10_);
  std::string out;
  out.reserve(160 + headers.size() * 48);
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  std::string_view reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  out += reason.empty() ? std::string_view("Unknown") : reason;
  out += "\r\n";
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding")) {
      continue;
    }
    if (EqualsIgnoreCase(name, "connection")) {
      if (EqualsIgnoreCase(value, "close")) close = true;
      continue;
    }
    // A field that could end the line early never reaches the wire (handlers validate or
    // encode what they reflect; this is the last line of defence).
    if (!IsValidFieldName(name) || !IsValidFieldValue(value)) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  for (const auto& [name, value] : default_headers_) {
    if (!IsValidFieldName(name) || !IsValidFieldValue(value)) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!chunked) {
    out += "Content-Length: ";
    out += std::to_string(content_length);
    out += "\r\n";
  } else if (!http10_) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  } else if (http10_) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  close_after_ = close;
  return out;
}

asio::awaitable<Status> ResponseWriter::Send(int status, Headers headers, std::string body) {
  if (started_) co_return FailedPrecondition("response already started");
  started_ = true;
  finished_ = true;
  std::string head = Head(status, headers, /*chunked=*/false, body.size());
  if (head_only_) co_return co_await conn_->WriteAll(asio::buffer(head));
  std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(body)};
  co_return co_await conn_->WriteAll(buffers);
}

namespace {
// "<size in hex>\r\n" of a chunk.
struct ChunkSize {
  std::array<char, 24> text;  // std::array, not char[]: GCC 12 coroutine frames
  size_t length = 0;
  explicit ChunkSize(size_t size) {
    length = static_cast<size_t>(std::snprintf(text.data(), text.size(), "%zx\r\n", size));
  }
  asio::const_buffer buffer() const { return asio::buffer(text.data(), length); }
};
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
}  // namespace

asio::awaitable<Status> ResponseWriter::StartStream(int status, Headers headers,
                                                    std::string_view first_chunk) {
  if (started_) co_return FailedPrecondition("response already started");
  started_ = true;
  chunked_ = !http10_;
  std::string head = Head(status, headers, /*chunked=*/true, 0);
  if (first_chunk.empty() || head_only_) co_return co_await conn_->WriteAll(asio::buffer(head));
  if (!chunked_) {
    std::array<asio::const_buffer, 2> buffers = {
        asio::buffer(head), asio::buffer(first_chunk.data(), first_chunk.size())};
    co_return co_await conn_->WriteAll(buffers);
  }
  const ChunkSize size(first_chunk.size());
  std::array<asio::const_buffer, 4> buffers = {asio::buffer(head), size.buffer(),
                                               asio::buffer(first_chunk.data(), first_chunk.size()),
                                               asio::buffer(kCrlf.data(), kCrlf.size())};
  co_return co_await conn_->WriteAll(buffers);
}

asio::awaitable<Status> ResponseWriter::Write(std::string_view chunk) {
  if (!started_ || finished_) co_return FailedPrecondition("Write outside a started stream");
  if (conn_->gone) co_return Status(ErrorCode::kUnavailable, "client gone");
  if (chunk.empty() || head_only_) co_return OkStatus();
  if (!chunked_) co_return co_await conn_->WriteAll(asio::buffer(chunk.data(), chunk.size()));
  const ChunkSize size(chunk.size());
  std::array<asio::const_buffer, 3> buffers = {size.buffer(),
                                               asio::buffer(chunk.data(), chunk.size()),
                                               asio::buffer(kCrlf.data(), kCrlf.size())};
  co_return co_await conn_->WriteAll(buffers);
}

asio::awaitable<Status> ResponseWriter::Finish(std::string_view last_chunk) {
  if (!started_ || finished_) co_return FailedPrecondition("Finish outside a started stream");
  finished_ = true;
  if (head_only_ || (!chunked_ && last_chunk.empty())) co_return OkStatus();
  if (!chunked_) {
    co_return co_await conn_->WriteAll(asio::buffer(last_chunk.data(), last_chunk.size()));
  }
  if (last_chunk.empty()) {
    co_return co_await conn_->WriteAll(asio::buffer(kLastChunk.data(), kLastChunk.size()));
  }
  const ChunkSize size(last_chunk.size());
  std::array<asio::const_buffer, 4> buffers = {
      size.buffer(), asio::buffer(last_chunk.data(), last_chunk.size()),
      asio::buffer(kCrlf.data(), kCrlf.size()), asio::buffer(kLastChunk.data(), kLastChunk.size())};
  co_return co_await conn_->WriteAll(buffers);
}

namespace {

asio::awaitable<void> RunConnection(Server* server, Server::Worker* worker, tcp::socket socket) {
  if (!server->AdmitConnection(*worker)) {
    error_code ignored;
    socket.close(ignored);
    --worker->open;
    co_return;
  }
  auto conn = std::make_shared<internal::Connection>(server, worker, std::move(socket));
  worker->conns.push_front(conn);
  conn->self_it = worker->conns.begin();
  co_await conn->Run();
  worker->conns.erase(conn->self_it);
  --worker->open;
  if (worker->conns.empty()) {
    // During shutdown the last connection releases the worker at once.
    worker->deadline_timer.cancel();
    worker->stop_timer.cancel();
  }
}

void LogIfThrew(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    Log(std::string("coroutine failed: ") + ex.what());
  } catch (...) {
    Log("coroutine failed");
  }
}

}  // namespace

Server::Server(ServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

Server::~Server() {
  if (started_) {
    Shutdown(std::chrono::milliseconds(0));
    Wait();
  }
}

void Server::Worker::StartHandling(internal::Connection* c) {
  c->handling_since = SteadyClock::now();
  c->watch_started = false;
  c->handling_index = handling.size();
  handling.push_back(c);
  if (ticking) return;
  ticking = true;
  watch_ticker.expires_at(c->handling_since + kWatchAfter);
  watch_ticker.async_wait([this](error_code ec) {
    ticking = false;
    if (!ec) OnWatchTick();
  });
}

void Server::Worker::StopHandling(internal::Connection* c) {
  const size_t i = c->handling_index;
  if (i == internal::Connection::kNotHandling) return;
  handling[i] = handling.back();
  handling[i]->handling_index = i;
  handling.pop_back();
  c->handling_index = internal::Connection::kNotHandling;
}

void Server::Worker::OnWatchTick() {
  const SteadyClock::time_point now = SteadyClock::now();
  bool waiting = false;  // a request not yet due
  for (internal::Connection* c : handling) {
    if (c->watch_started) continue;
    if (now - c->handling_since < kWatchAfter) {
      waiting = true;
    } else {
      c->watch_started = true;
      if (c->writer != nullptr && !c->watching && !c->gone) c->StartWatch();
    }
  }
  if (!waiting) return;
  // The next tick a whole period on: a request started since waits 10 to 20 ms for its watch,
  // and a worker under load ticks at most every kWatchAfter.
  ticking = true;
  watch_ticker.expires_at(now + kWatchAfter);
  watch_ticker.async_wait([this](error_code ec) {
    ticking = false;
    if (!ec) OnWatchTick();
  });
}

Status Server::Start() {
  IRIS_CHECK_MSG(!started_, "Server::Start called twice");
  int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
  Worker& w0 = *workers_[0];
  std::string where = options_.host + ":" + std::to_string(options_.port);

  error_code ec;
  tcp::endpoint endpoint;
  asio::ip::address address = asio::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(w0.ioc);
    auto results =
        resolver.resolve(options_.host, std::to_string(options_.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      workers_.clear();
      return Status(ErrorCode::kUnavailable,
                    "bind " + where + " failed: cannot resolve host: " + ec.message());
    }
    endpoint = *results.begin();
  }
  tcp::acceptor& acceptor = w0.acceptor.emplace(w0.ioc);
  auto fail = [&](const char* step) {
    std::string message = std::string(step) + " " + where + " failed: " + ec.message();
    workers_.clear();
    return Status(ErrorCode::kUnavailable, message);
  };
  if (acceptor.open(endpoint.protocol(), ec)) return fail("open socket for");
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return fail("configure");
  if (acceptor.bind(endpoint, ec)) return fail("bind");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen on");
  port_ = acceptor.local_endpoint(ec).port();

  for (auto& w : workers_) w->guard.emplace(w->ioc.get_executor());
  asio::co_spawn(
      w0.ioc,
      [this]() -> asio::awaitable<void> {
        Worker& home = *workers_[0];
        asio::steady_timer backoff(home.ioc);
        for (;;) {
          Worker* target = workers_[0].get();
          for (auto& w : workers_) {
            if (w->open.load(std::memory_order_relaxed) <
                target->open.load(std::memory_order_relaxed)) {
              target = w.get();
            }
          }
          auto [aec, socket] = co_await home.acceptor->async_accept(target->ioc, kNoThrow);
          if (aec) {
            if (aec == asio::error::operation_aborted || !home.acceptor->is_open()) co_return;
            // Out of descriptors or a transient error: back off instead of spinning.
            LogRateLimited("accept failed: " + aec.message());
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(kNoThrow);
            continue;
          }
          error_code nec;
          socket.set_option(tcp::no_delay(true), nec);
          ++target->open;
          asio::co_spawn(target->ioc, RunConnection(this, target, tcp::socket(std::move(socket))),
                         LogIfThrew);
        }
      },
      LogIfThrew);
  for (auto& w : workers_) {
    w->thread = std::thread([w = w.get()] { w->ioc.run(); });
  }
  started_ = true;
  return OkStatus();
}

void Server::Shutdown(std::chrono::milliseconds deadline) {
  if (!started_ || shutting_down_.exchange(true)) return;
  Worker* w0 = workers_[0].get();
  auto close_acceptor = [w0] {
    error_code ec;
    w0->acceptor->close(ec);
  };
  if (w0->ioc.get_executor().running_in_this_thread()) {
    close_acceptor();
  } else {
    std::promise<void> closed;
    asio::post(w0->ioc, [&] {
      close_acceptor();
      closed.set_value();
    });
    closed.get_future().wait();
  }
  for (auto& worker : workers_) {
    asio::post(worker->ioc, [w = worker.get(), deadline] {
      std::vector<std::shared_ptr<internal::Connection>> conns(w->conns.begin(), w->conns.end());
      for (auto& c : conns) {
        if (c->idle) c->CloseSocket();
      }
      w->guard.reset();
      if (w->conns.empty()) return;
      w->deadline_timer.expires_after(deadline);
      w->deadline_timer.async_wait([w](error_code ec) {
        if (ec) return;
        std::vector<std::shared_ptr<internal::Connection>> left(w->conns.begin(), w->conns.end());
        for (auto& c : left) c->ForceClose();
      });
      // Handlers that ignore their CancelToken must not hold the process forever.
      w->stop_timer.expires_after(deadline + std::chrono::milliseconds(1000));
      w->stop_timer.async_wait([w](error_code ec) {
        if (!ec) w->ioc.stop();
      });
    });
  }
}

void Server::Wait() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

bool Server::AdmitConnection(Worker& worker) {
  const int max = options_.max_connections;
  if (max <= 0 || stats().connections_open <= max) return true;
  // Over the cap: the oldest idle keep-alive connection of this worker makes room (the list
  // is newest first); with none idle, the new connection is refused.
  for (auto it = worker.conns.rbegin(); it != worker.conns.rend(); ++it) {
    if ((*it)->idle) {
      (*it)->CloseSocket();
      idle_closed_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  connections_refused_.fetch_add(1, std::memory_order_relaxed);
  LogRateLimited("connection limit of " + std::to_string(max) +
                 " reached with no idle connection to close: refusing a new one "
                 "(server.max_connections)");
  return false;
}

ServerStats Server::stats() const {
  ServerStats s;
  for (const auto& w : workers_) s.connections_open += w->open.load(std::memory_order_relaxed);
  s.requests_in_flight = requests_in_flight_.load(std::memory_order_relaxed);
  s.requests_total = requests_total_.load(std::memory_order_relaxed);
  s.handler_errors = handler_errors_.load(std::memory_order_relaxed);
  s.connections_refused = connections_refused_.load(std::memory_order_relaxed);
  s.idle_connections_closed = idle_closed_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace iris::gateway::http
