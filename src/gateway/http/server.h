// The inbound HTTP/1.1 server: N worker threads with one io_context each, keep-alive,
// request limits and timeouts, chunked streaming, client-disconnect detection and graceful
// shutdown. It knows nothing about LLMs: a Handler turns a Request into a response.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/http/cancel.h"
#include "gateway/http/headers.h"

namespace iris::gateway::http {

namespace asio = boost::asio;

struct ServerOptions {
  std::string host = "127.0.0.1";      // an IP address or a name the resolver knows
  uint16_t port = 8080;                // 0 = an ephemeral port; read it back with Server::port()
  int threads = 2;                     // workers, one io_context each; a connection stays on one
  size_t max_header_bytes = 64 << 10;  // larger request heads get 431
  size_t max_body_bytes = 32 << 20;    // larger bodies get 413
  std::chrono::milliseconds header_timeout{10000};  // connection/first byte -> end of head: 408
  std::chrono::milliseconds body_timeout{30000};    // reading the body; also each response write
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive wait for the next request
  // Open connections at most (0: no cap). A connection past the cap closes its worker's
  // oldest idle keep-alive connection to make room, or is closed at once when none is idle,
  // so idle clients can never lock new ones out.
  int max_connections = 0;
};

// One parsed request. Owned by the connection; valid for the duration of the handler call.
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path?query
  std::string path;    // target before '?'
  std::string query;   // target after '?', without it; may be empty
  int version = 11;    // 10 or 11
  Headers headers;
  std::string body;
  std::string remote;  // peer "ip:port"
};

namespace internal {
struct Connection;
}

// Writes the response of one request; handed to the handler by reference and valid only
// during that call. Either Send() once, or StartStream(), Write()* and Finish(). Methods must
// be called from the handler's coroutine (the connection's worker thread); not thread-safe.
// Every method returns an error (kUnavailable) once the client is gone or a write timed out
// (ServerOptions::body_timeout per write).
class ResponseWriter {
 public:
  // Sends a whole response with Content-Length. Content-Length, Transfer-Encoding and
  // Connection fields in `headers` are replaced by the server's own.
  asio::awaitable<Status> Send(int status, Headers headers, std::string body);
  // Sends the head of a chunked response (for HTTP/1.0 clients: a body delimited by close),
  // and `first_chunk` with it in one write when there is one.
  asio::awaitable<Status> StartStream(int status, Headers headers,
                                      std::string_view first_chunk = {});
  // Sends one chunk and flushes it. An empty chunk is skipped (it would end the stream).
  asio::awaitable<Status> Write(std::string_view chunk);
  // Sends `last_chunk` (when not empty) and the terminating chunk, in one write. If the
  // handler returns without it, the server sends the terminating chunk.
  asio::awaitable<Status> Finish(std::string_view last_chunk = {});

  // A header every response head of this request carries (CORS headers set before the
  // handler decides what to answer). Invalid fields are dropped when the head is written.
  void AddDefaultHeader(std::string name, std::string value) {
    default_headers_.emplace_back(std::move(name), std::move(value));
  }

  // True once the peer closed or reset the connection, or a write failed.
  bool client_gone() const;
  // True once the response head went out.
  bool started() const { return started_; }
  // Fires when the client disconnects while the request is being handled (also during
  // shutdown past its deadline). Register upstream/generation cancellation here.
  CancelToken& cancel() { return cancel_; }

 private:
  friend struct internal::Connection;
  explicit ResponseWriter(internal::Connection* conn) : conn_(conn) {}
  std::string Head(int status, const Headers& headers, bool chunked, size_t content_length);

  internal::Connection* conn_;
  CancelToken cancel_;
  std::vector<std::pair<std::string, std::string>> default_headers_;
  bool started_ = false;
  bool finished_ = false;
  bool chunked_ = false;
  bool close_after_ = false;  // the head said Connection: close (or HTTP/1.0 stream)
  bool head_only_ = false;    // a HEAD request: heads only, no body bytes
  bool http10_ = false;
  bool keep_alive_ = true;  // what the request asked for
};

// The request handler. It runs on the connection's worker; a throw is answered with 500 (if
// nothing was sent yet), logged, and the server keeps serving.
using Handler = std::function<asio::awaitable<void>(Request&, ResponseWriter&)>;

struct ServerStats {
  int64_t connections_open = 0;
  int64_t requests_in_flight = 0;
  int64_t requests_total = 0;           // requests handed to the handler, ever
  int64_t handler_errors = 0;           // handler throws and handlers that sent nothing (500s)
  int64_t connections_refused = 0;      // closed at once: the cap was reached, none idle
  int64_t idle_connections_closed = 0;  // idle keep-alive connections closed to make room
};

// The server. One listening socket, accepted on worker 0 and handed to the least-loaded
// worker's io_context (rather than one SO_REUSEPORT socket per worker: a port another process
// already holds with SO_REUSEPORT would silently be shared instead of failing the bind, and
// shutdown has one socket to close). Start/Shutdown/Wait/stats may be called from any thread.
class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();  // Shutdown(0) and Wait() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens, then starts the worker threads. Errors name the address
  // ("bind 127.0.0.1:8080 failed: Address already in use"). Call once.
  Status Start();
  // The bound port, valid after a successful Start().
  uint16_t port() const { return port_; }
  // Graceful stop: the listening socket closes before this returns (new connections are
  // refused), idle keep-alive connections close at once, requests in flight may finish until
  // `deadline` (their responses carry Connection: close); then every connection is closed and
  // its CancelToken fired, and workers stop shortly after. Does not block for the deadline.
  void Shutdown(std::chrono::milliseconds deadline);
  // Blocks until every worker thread has exited (after Shutdown).
  void Wait();

  ServerStats stats() const;
  // True once Shutdown() was called.
  bool shutting_down() const { return shutting_down_.load(std::memory_order_relaxed); }

  struct Worker;  // internal
  // Internal (the accept path): whether a connection just accepted on `worker` may be served
  // under max_connections, closing an idle one to make room when needed.
  bool AdmitConnection(Worker& worker);

 private:
  ServerOptions options_;
  Handler handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint16_t port_ = 0;
  bool started_ = false;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> requests_in_flight_{0};
  std::atomic<int64_t> requests_total_{0};
  std::atomic<int64_t> handler_errors_{0};
  std::atomic<int64_t> connections_refused_{0};
  std::atomic<int64_t> idle_closed_{0};

  friend struct internal::Connection;
};

// The small JSON error body every limit/parse error carries:
// {"error":{"message":"...","type":"invalid_request_error"}} (message JSON-escaped).
std::string ErrorBody(std::string_view message, std::string_view type = "invalid_request_error");

}  // namespace iris::gateway::http
