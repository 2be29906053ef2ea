// Tests for the HTTP server over real loopback sockets: keep-alive, limits, timeouts,
// streaming, handler failures, client-disconnect cancellation and graceful shutdown.
#include "gateway/http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gateway/http/test_util.h"

namespace iris::gateway::http {
namespace {

using std::chrono::milliseconds;
using testing::RawClient;
using testing::RawResponse;
using testing::WaitUntil;

// GCC 12 rejects braced string-literal initializers inside coroutines; build headers here.
Headers OneHeader(std::string name, std::string value) {
  Headers h;
  h.Add(std::move(name), std::move(value));
  return h;
}

// Sleeps for `d` unless the request's CancelToken fires first; true when cancelled.
asio::awaitable<bool> SleepUnlessCancelled(ResponseWriter& w, milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  auto registration = w.cancel().OnCancel([&timer] { timer.cancel(); });
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return w.cancel().cancelled();
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<Server>(
        options, [this](Request& req, ResponseWriter& w) { return Handle(req, w); });
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(milliseconds(100));
      server_->Wait();
    }
  }

  asio::awaitable<void> Handle(Request& req, ResponseWriter& w) {
    if (req.path == "/echo") {
      std::string body = req.method + " " + req.target + " q=" + req.query + " " + req.body +
                         " h=" + std::string(req.headers.Get("x-test"));
      (void)co_await w.Send(200, OneHeader("Content-Type", "text/plain"), body);
    } else if (req.path == "/size") {
      // The body's length and a checksum of it; ?big=N answers N bytes.
      uint64_t sum = 0;
      for (unsigned char ch : req.body) sum = sum * 31 + ch;
      std::string out = std::to_string(req.body.size()) + " " + std::to_string(sum);
      if (req.query.rfind("big=", 0) == 0) out = std::string(std::stoul(req.query.substr(4)), 'z');
      (void)co_await w.Send(200, {}, out);
    } else if (req.path == "/throw") {
      throw std::runtime_error("boom");
    } else if (req.path == "/nothing") {
      co_return;
    } else if (req.path == "/stream") {
      (void)co_await w.StartStream(200, OneHeader("Content-Type", "text/event-stream"));
      (void)co_await w.Write("a");
      (void)co_await w.Write("");
      (void)co_await w.Write("bb");
      (void)co_await w.Write("ccc");
      (void)co_await w.Finish();
    } else if (req.path == "/wait-cancel") {
      handler_waiting_ = true;
      if (co_await SleepUnlessCancelled(w, milliseconds(10000))) cancelled_ = true;
    } else if (req.path == "/wait-cancel-count") {
      waiting_count_.fetch_add(1);
      if (co_await SleepUnlessCancelled(w, milliseconds(10000))) cancelled_count_.fetch_add(1);
    } else if (req.path == "/stream-cancel") {
      (void)co_await w.StartStream(200, {});
      (void)co_await w.Write("first");
      handler_waiting_ = true;
      if (co_await SleepUnlessCancelled(w, milliseconds(10000))) {
        cancelled_ = true;
        write_after_cancel_failed_ = !(co_await w.Write("late")).ok() && w.client_gone();
      }
    } else if (req.path == "/slow") {
      handler_waiting_ = true;
      bool cancelled = co_await SleepUnlessCancelled(w, milliseconds(300));
      (void)co_await w.Send(cancelled ? 499 : 200, {}, "slow done");
    } else {
      (void)co_await w.Send(404, {}, "not found");
    }
  }

  std::unique_ptr<Server> server_;
  std::atomic<bool> handler_waiting_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> write_after_cancel_failed_{false};
  std::atomic<int> waiting_count_{0};
  std::atomic<int> cancelled_count_{0};
};

TEST_F(ServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  ASSERT_TRUE(c.Send("GET /echo?x=1 HTTP/1.1\r\nHost: a\r\nX-Test: v\r\n\r\n"));
  RawResponse r1 = c.ReadResponse();
  ASSERT_TRUE(r1.ok);
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r1.body, "GET /echo?x=1 q=x=1  h=v");
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"));
  RawResponse r2 = c.ReadResponse();
  ASSERT_TRUE(r2.ok);
  EXPECT_EQ(r2.body, "POST /echo q= hello h=");
  EXPECT_EQ(r2.head.find("Connection: close"), std::string::npos);
  EXPECT_EQ(server_->stats().requests_total, 2);
  EXPECT_EQ(server_->stats().connections_open, 1);
}

TEST_F(ServerTest, PipelinedRequestsAnsweredInOrder) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  ASSERT_TRUE(
      c.Send("GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\n"
             "POST /echo?n=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
             "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
             "GET /echo?n=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "GET /echo?n=1 q=n=1  h=");
  EXPECT_EQ(c.ReadResponse().body, "POST /echo?n=2 q=n=2 abc h=");
  RawResponse r3 = c.ReadResponse();
  EXPECT_EQ(r3.body, "GET /echo?n=3 q=n=3  h=");
  EXPECT_NE(r3.head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.SeesClose());
}

// The head and body parsed from bytes that come in pieces: a head cut mid-line, a body cut
// in three, each piece its own read.
TEST_F(ServerTest, RequestArrivingInPiecesIsParsedWhole) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  const std::string pieces[] = {"POST /ech",
                                "o?p=1 HTTP/1.1\r\nHost: a\r\nX-Te",
                                "st: v\r\nContent-Length: 11\r\n\r",
                                "\nhel",
                                "lo wo",
                                "rld"};
  for (const std::string& piece : pieces) {
    ASSERT_TRUE(c.Send(piece));
    std::this_thread::sleep_for(milliseconds(20));
  }
  RawResponse r = c.ReadResponse();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body, "POST /echo?p=1 q=p=1 hello world h=v");
  // And the connection is still good for the next request, sent whole.
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "GET /echo q=  h=");
}

// A body far larger than one read arrives exactly, and an answer far larger than the socket
// takes at once reaches a client that reads it slowly.
TEST_F(ServerTest, LargeBodiesArriveWholeBothWays) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  std::string body(3 << 20, 'x');
  for (size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  uint64_t sum = 0;
  for (unsigned char ch : body) sum = sum * 31 + ch;
  ASSERT_TRUE(c.Send("POST /size HTTP/1.1\r\nHost: a\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
  RawResponse r = c.ReadResponse();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body, std::to_string(body.size()) + " " + std::to_string(sum));

  const size_t big = 16 << 20;
  ASSERT_TRUE(c.Send("GET /size?big=" + std::to_string(big) + " HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(200));  // the server fills the socket and waits
  RawResponse r2 = c.ReadResponse();
  ASSERT_TRUE(r2.ok);
  EXPECT_EQ(r2.body.size(), big);
  EXPECT_EQ(r2.body.find_first_not_of('z'), std::string::npos);
}

TEST_F(ServerTest, Http10ClosesAfterResponse) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.0\r\n\r\n"));
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(c.SeesClose());
  // An HTTP/1.0 stream has no chunked encoding: the body ends at close.
  ASSERT_TRUE(c.Connect(server_->port()));
  ASSERT_TRUE(c.Send("GET /stream HTTP/1.0\r\n\r\n"));
  std::string all = c.ReadToClose();
  EXPECT_EQ(all.find("chunked"), std::string::npos);
  EXPECT_EQ(all.substr(all.size() - 6), "abbccc");
}

TEST_F(ServerTest, HeadTooLargeIs431) {
  ServerOptions o;
  o.max_header_bytes = 8 << 10;
  StartServer(o);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20000, 'x') + "\r\n\r\n");
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 431);
  EXPECT_NE(r.body.find("\"type\":\"invalid_request_error\""), std::string::npos);
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos);
}

TEST_F(ServerTest, BodyTooLargeIs413WithoutReadingIt) {
  ServerOptions o;
  o.max_body_bytes = 1 << 20;
  StartServer(o);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n");
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("larger than 1048576"), std::string::npos) << r.body;
  // A chunked body that grows past the limit is cut off too.
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk(64 << 10, 'z');
  char line[32];
  std::snprintf(line, sizeof(line), "%zx\r\n", chunk.size());
  for (int i = 0; i < 20; ++i) {
    if (!c.Send(line + chunk + "\r\n")) break;
  }
  EXPECT_EQ(c.ReadResponse().status, 413);
}

TEST_F(ServerTest, GarbageIs400) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("THIS IS NOT HTTP\r\n\r\n");
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("\"error\""), std::string::npos);
  EXPECT_TRUE(c.SeesClose());
}

TEST_F(ServerTest, SlowHeadIs408) {
  ServerOptions o;
  o.header_timeout = milliseconds(200);
  StartServer(o);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("GET /echo HTTP/1.1\r\nHost: a\r\n");  // never finished
  auto start = std::chrono::steady_clock::now();
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 408);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
  EXPECT_TRUE(c.SeesClose());
}

TEST_F(ServerTest, SlowBodyIs408) {
  ServerOptions o;
  o.body_timeout = milliseconds(200);
  StartServer(o);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_EQ(c.ReadResponse().status, 408);
}

TEST_F(ServerTest, IdleKeepAliveClosesQuietly) {
  ServerOptions o;
  o.idle_timeout = milliseconds(200);
  StartServer(o);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(c.ReadResponse().status, 200);
  EXPECT_TRUE(c.SeesClose());
  EXPECT_TRUE(c.buffered().empty());  // no 408 on an idle connection
}

TEST_F(ServerTest, StreamingResponseIsChunked) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
  RawResponse r = c.ReadResponse();
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.head.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(r.head.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(r.body, "abbccc");
  // Still keep-alive after the stream.
  c.Send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(c.ReadResponse().status, 200);
}

TEST_F(ServerTest, HandlerThrowIs500AndServerKeepsServing) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("GET /throw HTTP/1.1\r\nHost: a\r\n\r\n");
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("server_error"), std::string::npos);
  c.Send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(c.ReadResponse().status, 200);
  RawClient c2;
  ASSERT_TRUE(c2.Connect(server_->port()));
  c2.Send("GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(c2.ReadResponse().status, 500);
  EXPECT_EQ(server_->stats().handler_errors, 2);
}

TEST_F(ServerTest, DisconnectBeforeResponseFiresCancel) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("POST /wait-cancel HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_TRUE(WaitUntil([&] { return handler_waiting_.load(); }));
  EXPECT_FALSE(cancelled_);
  c.Close();
  EXPECT_TRUE(WaitUntil([&] { return cancelled_.load(); }));
  EXPECT_TRUE(WaitUntil([&] { return server_->stats().requests_in_flight == 0; }));
}

// One worker handling several requests (the disconnect watch starts for each 10 to 20 ms
// after its start, from one ticker per worker): each client that leaves cancels its own
// request and no other. The first request arms the ticker; the others start just after it,
// so they are not yet due at its first tick and need the next one.
TEST_F(ServerTest, EachOfManyRequestsOnOneWorkerIsCancelledWhenItsClientLeaves) {
  ServerOptions options;
  options.threads = 1;
  StartServer(options);
  constexpr int kClients = 5;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(clients.back()->Connect(server_->port()));
  }
  for (int i = 0; i < kClients; ++i) {
    clients[i]->Send("GET /wait-cancel-count HTTP/1.1\r\nHost: a\r\n\r\n");
    if (i == 0) {
      ASSERT_TRUE(WaitUntil([&] { return waiting_count_.load() == 1; }));
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return waiting_count_.load() == kClients; }));
  for (int i = kClients - 1; i >= 1; --i) {
    clients[i]->Close();
    ASSERT_TRUE(WaitUntil([&] { return cancelled_count_.load() == kClients - i; }))
        << "client " << i;
  }
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(cancelled_count_.load(), kClients - 1);  // the first client is still there
  EXPECT_EQ(server_->stats().requests_in_flight, 1);
  clients[0]->Close();
  EXPECT_TRUE(WaitUntil([&] { return cancelled_count_.load() == kClients; }));
  EXPECT_TRUE(WaitUntil([&] { return server_->stats().requests_in_flight == 0; }));
}

TEST_F(ServerTest, ResetMidStreamFiresCancel) {
  StartServer();
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->port()));
  c.Send("GET /stream-cancel HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(c.ReadUntil("first"));
  ASSERT_TRUE(WaitUntil([&] { return handler_waiting_.load(); }));
  c.Reset();
  EXPECT_TRUE(WaitUntil([&] { return cancelled_.load(); }));
  EXPECT_TRUE(WaitUntil([&] { return write_after_cancel_failed_.load(); }));
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightAndRefusesNew) {
  StartServer();
  RawClient idle;
  ASSERT_TRUE(idle.Connect(server_->port()));
  idle.Send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(idle.ReadResponse().status, 200);

  RawClient busy;
  ASSERT_TRUE(busy.Connect(server_->port()));
  busy.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(WaitUntil([&] { return handler_waiting_.load(); }));
  server_->Shutdown(milliseconds(5000));

  RawClient late;
  EXPECT_FALSE(late.Connect(server_->port()));
  EXPECT_TRUE(idle.SeesClose());  // the idle keep-alive connection closes at once
  RawResponse r = busy.ReadResponse();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow done");
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(busy.SeesClose());
  server_->Wait();
  EXPECT_EQ(server_->stats().connections_open, 0);
}

TEST_F(ServerTest, ShutdownDeadlineCancelsStragglers) {
  StartServer();
  RawClient busy;
  ASSERT_TRUE(busy.Connect(server_->port()));
  busy.Send("GET /wait-cancel HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(WaitUntil([&] { return handler_waiting_.load(); }));
  auto start = std::chrono::steady_clock::now();
  server_->Shutdown(milliseconds(100));
  server_->Wait();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
  EXPECT_TRUE(cancelled_);
  EXPECT_TRUE(busy.SeesClose());
}

TEST_F(ServerTest, BindFailureNamesTheAddress) {
  StartServer();
  ServerOptions o;
  o.port = server_->port();
  Server second(o, [](Request&, ResponseWriter&) -> asio::awaitable<void> { co_return; });
  Status s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(server_->port())), std::string::npos)
      << s.message();
}

TEST(CancelTokenTest, CallbacksRunOnceAndLateRegistrationRunsAtOnce) {
  CancelToken token;
  int a = 0, b = 0, late = 0;
  auto ra = token.OnCancel([&] { ++a; });
  {
    auto rb = token.OnCancel([&] { ++b; });
  }  // unregistered
  EXPECT_FALSE(token.cancelled());
  token.Cancel();
  token.Cancel();
  EXPECT_TRUE(token.cancelled());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
  auto rl = token.OnCancel([&] { ++late; });
  EXPECT_EQ(late, 1);
  // A registration may outlive its token.
  CancelToken::Registration outlives;
  {
    CancelToken t2;
    outlives = t2.OnCancel([] {});
  }
  outlives.Reset();
}

TEST(HeadersTest, CaseInsensitiveLookup) {
  Headers h{{"Content-Type", "a"}, {"X-Dup", "1"}};
  h.Add("x-dup", "2");
  EXPECT_EQ(h.Get("content-type"), "a");
  EXPECT_EQ(h.Get("X-DUP"), "1");
  EXPECT_EQ(h.Get("missing"), "");
  EXPECT_FALSE(h.Has("missing"));
  h.Set("X-Dup", "3");
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.Get("x-dup"), "3");
  h.Remove("CONTENT-TYPE");
  EXPECT_FALSE(h.Has("content-type"));
}

}  // namespace
}  // namespace iris::gateway::http
