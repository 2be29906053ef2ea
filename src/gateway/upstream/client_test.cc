// Tests for the upstream client against real loopback peers: the iris Server for well-behaved
// upstreams, raw-socket fakes for misbehaving ones, an asio::ssl server with a certificate
// made at test time, and the loopback proxy of net/test_util.h. URL and proxy-setting parsing
// are tested in src/net.
#include "gateway/upstream/client.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/check.h"
#include "gateway/http/server.h"
#include "gateway/http/test_util.h"
#include "net/test_util.h"

namespace iris::gateway::upstream {
namespace {

using std::chrono::milliseconds;
using tcp = asio::ip::tcp;

// Runs `aw` on `ioc` to completion and returns its value.
void Rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}
template <typename T>
T RunCo(asio::io_context& ioc, asio::awaitable<T> aw) {
  std::optional<T> out;
  asio::co_spawn(
      ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(aw)); }, Rethrow);
  ioc.restart();
  ioc.run();
  return std::move(*out);
}
void RunCo(asio::io_context& ioc, asio::awaitable<void> aw) {
  asio::co_spawn(ioc, std::move(aw), Rethrow);
  ioc.restart();
  ioc.run();
}

// A raw TCP peer on 127.0.0.1: each accepted connection runs `serve(fd, index)` on its own
// thread. Stalls inside `serve` should use Sleep() so the destructor can end them.
using FakeServer = net::testing::LoopbackServer;

Headers OneHeader(std::string name, std::string value) {
  Headers h;
  h.Add(std::move(name), std::move(value));
  return h;
}

// A well-behaved upstream: the iris Server with a few routes.
class UpstreamServer {
 public:
  UpstreamServer() {
    http::ServerOptions o;
    o.port = 0;
    o.threads = 1;
    server_ = std::make_unique<http::Server>(
        o, [this](http::Request& r, http::ResponseWriter& w) { return Handle(r, w); });
    IRIS_CHECK(server_->Start().ok());
  }
  ~UpstreamServer() {
    server_->Shutdown(milliseconds(100));
    server_->Wait();
  }
  uint16_t port() const { return server_->port(); }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
  }
  size_t distinct_peers() {
    std::lock_guard lock(mu_);
    return peers_.size();
  }

 private:
  asio::awaitable<void> Handle(http::Request& r, http::ResponseWriter& w) {
    {
      std::lock_guard lock(mu_);
      peers_.insert(r.remote);
    }
    if (r.path == "/big") {
      (void)co_await w.Send(200, OneHeader("X-Kind", "big"), std::string(100000, 'b'));
    } else if (r.path == "/chunked") {
      (void)co_await w.StartStream(200, OneHeader("Content-Type", "text/event-stream"));
      asio::steady_timer t(co_await asio::this_coro::executor);
      for (int i = 0; i < 5; ++i) {
        (void)co_await w.Write("data: " + std::to_string(i) + "\n\n");
        t.expires_after(milliseconds(20));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      (void)co_await w.Finish();
    } else {
      (void)co_await w.Send(200, {}, r.method + " " + r.target + " " + r.body);
    }
  }

  std::unique_ptr<http::Server> server_;
  std::mutex mu_;
  std::set<std::string> peers_;
};

OutboundRequest Get(std::string url) {
  OutboundRequest r;
  r.method = "GET";
  r.url = std::move(url);
  return r;
}

// Start + ReadAll in one coroutine: {status, body} or the error.
asio::awaitable<Result<std::pair<int, std::string>>> Fetch(Client& client, OutboundRequest req,
                                                           Deadlines d = {},
                                                           CancelToken* cancel = nullptr,
                                                           size_t max = 1 << 20) {
  auto ex = co_await client.Start(req, d, cancel);
  if (!ex.ok()) co_return ex.status();
  auto body = co_await ex->ReadAll(max);
  if (!body.ok()) co_return body.status();
  co_return std::pair(ex->status(), std::move(*body));
}

TEST(ClientTest, ContentLengthChunkedAndStreaming) {
  UpstreamServer upstream;
  asio::io_context ioc;
  Client client(ioc, {});
  OutboundRequest post;
  post.url = upstream.url("/echo?x=1");
  post.body = "payload";
  auto r = RunCo(ioc, Fetch(client, post));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first, 200);
  EXPECT_EQ(r->second, "POST /echo?x=1 payload");

  auto big = RunCo(ioc, Fetch(client, Get(upstream.url("/big"))));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->second, std::string(100000, 'b'));

  // ReadSome yields the chunks as they arrive.
  auto pieces = RunCo(ioc, [&]() -> asio::awaitable<Result<std::vector<std::string>>> {
    auto ex = co_await client.Start(Get(upstream.url("/chunked")), {});
    if (!ex.ok()) co_return ex.status();
    EXPECT_EQ(ex->headers().Get("content-type"), "text/event-stream");
    std::vector<std::string> out;
    for (;;) {
      auto piece = co_await ex->ReadSome();
      if (!piece.ok()) co_return piece.status();
      if (piece->empty()) break;
      out.push_back(std::move(*piece));
    }
    EXPECT_TRUE(ex->done());
    co_return out;
  }());
  ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
  std::string joined;
  for (auto& p : *pieces) joined += p;
  EXPECT_EQ(joined, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
  EXPECT_GE(pieces->size(), 3u);  // 20 ms apart: not one lump
}

// A request body larger than the socket takes in one send goes out whole (the first send
// takes part of it, the rest follows when the peer reads).
TEST(ClientTest, LargeRequestBodyArrivesWhole) {
  UpstreamServer up;
  asio::io_context ioc;
  Client client(ioc, {});
  OutboundRequest req;
  req.method = "POST";
  req.url = up.url("/echo");
  req.body.resize(12 << 20);
  for (size_t i = 0; i < req.body.size(); ++i) req.body[i] = static_cast<char>('a' + i % 23);
  const std::string expected = "POST /echo " + req.body;
  auto r = RunCo(ioc, Fetch(client, req, {}, nullptr, 16 << 20));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first, 200);
  EXPECT_TRUE(r->second == expected) << "got " << r->second.size() << " bytes";
}

TEST(ClientTest, ReusesPooledConnection) {
  UpstreamServer upstream;
  asio::io_context ioc;
  Client client(ioc, {});
  for (int i = 0; i < 5; ++i) {
    auto r = RunCo(ioc, Fetch(client, Get(upstream.url("/echo"))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(client.stats().connections_opened, 1);
  EXPECT_EQ(client.stats().connections_reused, 4);
  EXPECT_EQ(upstream.distinct_peers(), 1u);
  EXPECT_EQ(client.idle_connections(), 1u);
}

// Each URL is parsed once while remembered; the set stays bounded whatever the URLs are, and
// a URL that fails to parse is refused every time.
TEST(ClientTest, ParsesEachUrlOnceAndBoundsWhatItRemembers) {
  UpstreamServer upstream;
  asio::io_context ioc;
  Client client(ioc, {});
  for (int i = 0; i < 3; ++i) {
    auto r = RunCo(ioc, Fetch(client, Get(upstream.url("/echo"))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->second, "GET /echo ");
  }
  EXPECT_EQ(client.stats().urls_parsed, 1);
  EXPECT_EQ(client.remembered_urls(), 1u);

  // Many distinct URLs: each still goes where it says, and the set starts over when full.
  const int distinct = static_cast<int>(Client::kRememberedUrls) + 44;
  for (int i = 0; i < distinct; ++i) {
    const std::string path = "/echo?n=" + std::to_string(i);
    auto r = RunCo(ioc, Fetch(client, Get(upstream.url(path))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->second, "GET " + path + " ");
    ASSERT_LE(client.remembered_urls(), Client::kRememberedUrls);
  }
  EXPECT_EQ(client.stats().urls_parsed, 1 + distinct);
  EXPECT_EQ(client.stats().connections_opened, 1);  // (one pool: one origin)

  // A long URL is parsed every time rather than remembered.
  const std::string long_path = "/echo?q=" + std::string(Client::kMaxRememberedUrlBytes, 'a');
  const size_t before = client.remembered_urls();
  for (int i = 0; i < 2; ++i) {
    auto r = RunCo(ioc, Fetch(client, Get(upstream.url(long_path))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(client.stats().urls_parsed, 3 + distinct);
  EXPECT_EQ(client.remembered_urls(), before);

  // A bad URL is refused each time, never remembered.
  for (int i = 0; i < 2; ++i) {
    auto r = RunCo(ioc, Fetch(client, Get("http://127.0.0.1:0/echo")));
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  }
  EXPECT_EQ(client.stats().urls_parsed, 5 + distinct);
  EXPECT_EQ(client.remembered_urls(), before);

  // A client for callers' URLs remembers none.
  ClientOptions forgetful;
  forgetful.remember_urls = false;
  Client once(ioc, forgetful);
  for (int i = 0; i < 2; ++i) {
    auto r = RunCo(ioc, Fetch(once, Get(upstream.url("/echo"))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(once.stats().urls_parsed, 2);
  EXPECT_EQ(once.remembered_urls(), 0u);
}

TEST(ClientTest, UnreadBodyClosesInsteadOfPooling) {
  UpstreamServer upstream;
  asio::io_context ioc;
  Client client(ioc, {});
  RunCo(ioc, [&]() -> asio::awaitable<void> {
    auto ex = co_await client.Start(Get(upstream.url("/big")), {});
    EXPECT_TRUE(ex.ok());
  }());
  EXPECT_EQ(client.idle_connections(), 0u);
  auto r = RunCo(ioc, Fetch(client, Get(upstream.url("/echo"))));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(client.stats().connections_opened, 2);
}

TEST(ClientTest, StalePooledConnectionIsRetriedOnce) {
  // Connection 0 answers one request, then reads the next and closes without answering.
  FakeServer fake([](FakeServer&, int fd, int index) {
    FakeServer::ReadRequest(fd);
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
    if (index == 0) {
      FakeServer::ReadRequest(fd);
      return;  // closed
    }
  });
  asio::io_context ioc;
  Client client(ioc, {});
  std::string url = "http://127.0.0.1:" + std::to_string(fake.port()) + "/";
  auto r1 = RunCo(ioc, Fetch(client, Get(url)));
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  auto r2 = RunCo(ioc, Fetch(client, Get(url)));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->second, "first");
  EXPECT_EQ(client.stats().stale_retries, 1);
  EXPECT_EQ(fake.accepts(), 2);
}

TEST(ClientTest, ClosedIdleConnectionIsSkipped) {
  FakeServer fake([](FakeServer&, int fd, int) {
    FakeServer::ReadRequest(fd);
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });  // closes right after answering
  asio::io_context ioc;
  Client client(ioc, {});
  std::string url = "http://127.0.0.1:" + std::to_string(fake.port()) + "/";
  ASSERT_TRUE(RunCo(ioc, Fetch(client, Get(url))).ok());
  ASSERT_TRUE(http::testing::WaitUntil([&] { return fake.accepts() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  auto r2 = RunCo(ioc, Fetch(client, Get(url)));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(client.stats().connections_opened, 2);
}

TEST(ClientTest, ConnectionRefusedIsUnavailableAndNamed) {
  uint16_t port;
  {
    FakeServer fake([](FakeServer&, int, int) {});
    port = fake.port();
  }
  asio::io_context ioc;
  Client client(ioc, {});
  auto r = RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(port) + "/")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("connect to 127.0.0.1:" + std::to_string(port) + " failed"),
            std::string::npos)
      << r.status().message();
}

TEST(ClientTest, ConnectDeadline) {
  // A listener that never accepts, with its accept queue filled: Linux drops further SYNs, so
  // a connect neither succeeds nor fails until the deadline.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  uint16_t port = ntohs(addr.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {  // non-blocking: the later ones stay in SYN_SENT
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(milliseconds(20));
  asio::io_context ioc;
  Client client(ioc, {});
  Deadlines d;
  d.connect = milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto r = RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(port) + "/"), d));
  ::close(listener);
  for (int fd : fillers) ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded) << r.status().message();
  EXPECT_EQ(r.status().message(), "connect to 127.0.0.1:" + std::to_string(port) +
                                      " did not complete within 200 ms (connect deadline)");
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
}

TEST(ClientTest, FirstByteDeadline) {
  FakeServer fake([](FakeServer& self, int fd, int) {
    FakeServer::ReadRequest(fd);
    self.Sleep(milliseconds(10000));
  });
  asio::io_context ioc;
  Client client(ioc, {});
  Deadlines d;
  d.first_byte = milliseconds(200);
  std::string peer = "127.0.0.1:" + std::to_string(fake.port());
  auto r = RunCo(ioc, Fetch(client, Get("http://" + peer + "/"), d));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(),
            "no response headers from " + peer + " within 200 ms (first_byte deadline)");
}

TEST(ClientTest, IdleDeadlineMidBody) {
  FakeServer fake([](FakeServer& self, int fd, int) {
    FakeServer::ReadRequest(fd);
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
    self.Sleep(milliseconds(10000));
  });
  asio::io_context ioc;
  Client client(ioc, {});
  Deadlines d;
  d.idle = milliseconds(200);
  auto r = RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(fake.port())), d));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("idle deadline"), std::string::npos) << r.status().message();
}

TEST(ClientTest, TotalDeadlineOnATrickle) {
  FakeServer fake([](FakeServer& self, int fd, int) {
    FakeServer::ReadRequest(fd);
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    for (int i = 0; i < 200; ++i) {
      FakeServer::Send(fd, "x");
      self.Sleep(milliseconds(30));
    }
  });
  asio::io_context ioc;
  Client client(ioc, {});
  Deadlines d;
  d.idle = milliseconds(2000);
  d.total = milliseconds(300);
  auto r = RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(fake.port())), d));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("total deadline of 300 ms"), std::string::npos)
      << r.status().message();
}

TEST(ClientTest, CancelTokenAbortsAWait) {
  FakeServer fake([](FakeServer& self, int fd, int) {
    FakeServer::ReadRequest(fd);
    self.Sleep(milliseconds(10000));
  });
  asio::io_context ioc;
  Client client(ioc, {});
  CancelToken token;
  asio::steady_timer timer(ioc, milliseconds(100));
  timer.async_wait([&](boost::system::error_code) { token.Cancel(); });
  auto start = std::chrono::steady_clock::now();
  auto r =
      RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(fake.port())), {}, &token));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsCancelled(r.status())) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
  // Already cancelled: fails at once.
  auto again =
      RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(fake.port())), {}, &token));
  EXPECT_TRUE(IsCancelled(again.status()));
}

TEST(ClientTest, ReadAllLimit) {
  UpstreamServer upstream;
  asio::io_context ioc;
  Client client(ioc, {});
  auto r = RunCo(ioc, Fetch(client, Get(upstream.url("/big")), {}, nullptr, 1000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
  auto chunked = RunCo(ioc, Fetch(client, Get(upstream.url("/chunked")), {}, nullptr, 20));
  EXPECT_EQ(chunked.status().code(), ErrorCode::kResourceExhausted);
}

TEST(ClientTest, BodyUntilClose) {
  FakeServer fake([](FakeServer&, int fd, int) {
    FakeServer::ReadRequest(fd);
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
  });
  asio::io_context ioc;
  Client client(ioc, {});
  auto r = RunCo(ioc, Fetch(client, Get("http://127.0.0.1:" + std::to_string(fake.port()))));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->second, "until the end");
  EXPECT_EQ(client.idle_connections(), 0u);
}

// TLS ------------------------------------------------------------------------------------

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(certificate_.ok());
    // The TLS upstream: one handshake + one fixed answer per connection.
    server_ = std::make_unique<FakeServer>([this](FakeServer&, int fd, int) {
      asio::io_context io;
      asio::ssl::context ctx(asio::ssl::context::tls_server);
      ctx.use_certificate_chain_file(certificate_.cert());
      ctx.use_private_key_file(certificate_.key(), asio::ssl::context::pem);
      tcp::socket sock(io);
      sock.assign(tcp::v4(), ::dup(fd));
      asio::ssl::stream<tcp::socket> tls(std::move(sock), ctx);
      boost::system::error_code ec;
      tls.handshake(asio::ssl::stream_base::server, ec);
      if (ec) return;
      std::string in;
      asio::read_until(tls, asio::dynamic_buffer(in), "\r\n\r\n", ec);
      if (ec) return;
      std::string out = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure";
      asio::write(tls, asio::buffer(out), ec);
      tls.shutdown(ec);
    });
  }
  void TearDown() override { server_.reset(); }
  std::string url(std::string_view host) const {
    return "https://" + std::string(host) + ":" + std::to_string(server_->port()) + "/";
  }

  net::testing::TempCertificate certificate_;
  std::unique_ptr<FakeServer> server_;
};

TEST_F(TlsTest, VerificationFailsWithoutTheCa) {
  asio::io_context ioc;
  Client client(ioc, {});
  auto r = RunCo(ioc, Fetch(client, Get(url("127.0.0.1"))));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("not trusted"), std::string::npos) << r.status().message();
}

TEST_F(TlsTest, VerificationSucceedsWithCaFile) {
  asio::io_context ioc;
  ClientOptions o;
  o.ca_file = certificate_.cert();
  Client client(ioc, o);
  for (std::string host : {"127.0.0.1", "localhost"}) {
    auto r = RunCo(ioc, Fetch(client, Get(url(host))));
    ASSERT_TRUE(r.ok()) << host << ": " << r.status().ToString();
    EXPECT_EQ(r->second, "secure");
  }
}

TEST_F(TlsTest, HostnameMismatchFails) {
  // The certificate names localhost and 127.0.0.1, not 127.0.0.2 (also loopback on Linux).
  asio::io_context ioc;
  ClientOptions o;
  o.ca_file = certificate_.cert();
  Client client(ioc, o);
  auto r = RunCo(ioc, Fetch(client, Get(url("127.0.0.2"))));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().message();
}

TEST_F(TlsTest, HttpsThroughConnectProxy) {
  net::testing::LoopbackProxy proxy;
  const std::string proxy_url = proxy.url();
  auto env = [&](const char* name) -> const char* {
    return std::string_view(name) == "HTTPS_PROXY" ? proxy_url.c_str() : nullptr;
  };
  auto settings = ProxySettings::FromEnv(env);
  ASSERT_TRUE(settings.ok());
  ClientOptions o;
  o.ca_file = certificate_.cert();
  o.proxy = *settings;
  asio::io_context ioc;
  Client client(ioc, o);
  auto r = RunCo(ioc, Fetch(client, Get(url("localhost"))));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->second, "secure");
  ASSERT_EQ(proxy.request_lines().size(), 1u);
  EXPECT_EQ(proxy.request_lines()[0],
            "CONNECT localhost:" + std::to_string(server_->port()) + " HTTP/1.1");
}

TEST_F(TlsTest, ProxyRefusingConnectIsUnavailable) {
  net::testing::LoopbackProxy proxy(/*refuse_status=*/403);
  ClientOptions o;
  o.ca_file = certificate_.cert();
  o.proxy.https_proxy = *ParseUrl(proxy.url());
  asio::io_context ioc;
  Client client(ioc, o);
  auto r = RunCo(ioc, Fetch(client, Get(url("localhost"))));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find(
                "refused CONNECT to localhost:" + std::to_string(server_->port()) + ": HTTP 403"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(server_->accepts(), 0);
}

TEST(ClientTest, HttpThroughProxyUsesAbsoluteForm) {
  std::mutex mu;
  std::string request_line, auth;
  FakeServer proxy([&](FakeServer&, int fd, int) {
    std::string head = FakeServer::ReadRequest(fd);
    {
      std::lock_guard lock(mu);
      request_line = head.substr(0, head.find("\r\n"));
      size_t a = head.find("Proxy-Authorization: ");
      if (a != std::string::npos) auth = head.substr(a, head.find("\r\n", a) - a);
    }
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied");
  });
  std::string proxy_url = "user:pass@127.0.0.1:" + std::to_string(proxy.port());
  auto settings = ProxySettings::FromEnv([&](const char* name) -> const char* {
    return std::string_view(name) == "http_proxy" ? proxy_url.c_str() : nullptr;
  });
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  ClientOptions o;
  o.proxy = *settings;
  asio::io_context ioc;
  Client client(ioc, o);
  auto r = RunCo(ioc, Fetch(client, Get("http://example.invalid:8000/v1/models?a=b")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->second, "proxied");
  std::lock_guard lock(mu);
  EXPECT_EQ(request_line, "GET http://example.invalid:8000/v1/models?a=b HTTP/1.1");
  EXPECT_EQ(auth, "Proxy-Authorization: Basic dXNlcjpwYXNz");
}

// Whoever builds a request, no header value or target with a line break reaches the socket.
TEST(ClientTest, RefusesRequestLinesAndHeadersThatAreNotValidHttp) {
  UpstreamServer upstream;
  asio::io_context ioc;
  Client client(ioc, {});
  OutboundRequest bad_header = Get(upstream.url("/echo"));
  bad_header.headers = {{"authorization", "Bearer key\r\nX-Planted: 1"}};
  OutboundRequest bad_name = Get(upstream.url("/echo"));
  bad_name.headers = {{"x: y\r\nz", "1"}};
  OutboundRequest bad_method = Get(upstream.url("/echo"));
  bad_method.method = "GET /planted HTTP/1.1\r\n";
  OutboundRequest nul = Get(upstream.url("/echo"));
  nul.headers = {{"x-a", std::string("a\0b", 3)}};
  for (const OutboundRequest& r : {bad_header, bad_name, bad_method, nul}) {
    auto got = RunCo(ioc, Fetch(client, r));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), ErrorCode::kInvalidArgument) << got.status().ToString();
    EXPECT_EQ(got.status().message().find("key"), std::string::npos);
  }
  EXPECT_EQ(upstream.distinct_peers(), 0u);
  EXPECT_EQ(client.stats().connections_opened, 0);
}

TEST(ClientTest, AllowAddressRefusesBeforeConnecting) {
  UpstreamServer upstream;
  asio::io_context ioc;
  ClientOptions o;
  o.allow_address = [](const asio::ip::address& a) { return !a.is_loopback(); };
  Client client(ioc, o);
  const std::string port = std::to_string(upstream.port());
  for (std::string url : {"http://127.0.0.1:" + port + "/x", "http://localhost:" + port + "/x",
                          "http://[::1]:" + port + "/x"}) {
    auto got = RunCo(ioc, Fetch(client, Get(url)));
    ASSERT_FALSE(got.ok()) << url;
    EXPECT_EQ(got.status().code(), ErrorCode::kPermissionDenied) << got.status().ToString();
  }
  EXPECT_EQ(upstream.distinct_peers(), 0u);
  Client open(ioc, {});
  EXPECT_TRUE(RunCo(ioc, Fetch(open, Get(upstream.url("/x")))).ok());
}

}  // namespace
}  // namespace iris::gateway::upstream
