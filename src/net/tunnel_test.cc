// AsyncOpenTunnel and TunnelStatus against real loopback peers: the test proxy (a tunnel that
// carries bytes, a refusal) and raw servers that answer CONNECT badly.
#include "net/tunnel.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <string>
#include <thread>

#include "net/test_util.h"

namespace iris::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Accepts one connection on 127.0.0.1, reads a request head (or, with `expect`, that many
// bytes), then writes `answer` and closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string answer, size_t expect = 0)
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this, answer = std::move(answer), expect] {
      error_code ec;
      tcp::socket sock(ioc_);
      acceptor_.accept(sock, ec);
      if (ec) return;
      std::string in;
      char buf[4096];
      while (expect > 0 ? in.size() < expect : in.find("\r\n\r\n") == std::string::npos) {
        const size_t n = sock.read_some(asio::buffer(buf), ec);
        if (ec) return;
        in.append(buf, n);
      }
      asio::write(sock, asio::buffer(answer), ec);
      sock.shutdown(tcp::socket::shutdown_both, ec);
    });
  }
  ~OneShotServer() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // ends an accept still waiting
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

Url Target(uint16_t port) { return *ParseUrl("https://localhost:" + std::to_string(port) + "/"); }
Url Proxy(uint16_t port) { return *ParseUrl("http://127.0.0.1:" + std::to_string(port)); }

// Connects `socket` to the proxy and runs AsyncOpenTunnel to completion.
Status OpenTunnel(asio::io_context& ioc, tcp::socket& socket, const Url& target, const Url& proxy) {
  error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.port), ec);
  if (ec) return Status(ErrorCode::kUnavailable, "connect: " + ec.message());
  boost::beast::flat_buffer buffer;
  error_code result = asio::error::would_block;
  int status = -1;
  AsyncOpenTunnel(socket, buffer, target, proxy, [&](error_code e, int s) {
    result = e;
    status = s;
  });
  ioc.run();
  EXPECT_NE(result, asio::error::would_block);
  if (!result && status == 200) {
    EXPECT_EQ(buffer.size(), 0u);  // nothing of the tunnel was swallowed
  }
  return TunnelStatus(result, status, target, proxy);
}

TEST(TunnelTest, CarriesBytesToTheTarget) {
  OneShotServer target("pong", /*expect=*/4);
  testing::LoopbackProxy proxy;
  asio::io_context ioc;
  tcp::socket socket(ioc);
  Status s = OpenTunnel(ioc, socket, Target(target.port()), Proxy(proxy.port()));
  ASSERT_TRUE(s.ok()) << s.ToString();
  asio::write(socket, asio::buffer(std::string("ping")));
  std::string answer(4, '\0');
  asio::read(socket, asio::buffer(answer));
  EXPECT_EQ(answer, "pong");
  ASSERT_EQ(proxy.request_lines().size(), 1u);
  EXPECT_EQ(proxy.request_lines()[0],
            "CONNECT localhost:" + std::to_string(target.port()) + " HTTP/1.1");
}

TEST(TunnelTest, RefusalNamesTheProxyAndTheStatus) {
  testing::LoopbackProxy proxy(/*refuse_status=*/407);
  asio::io_context ioc;
  tcp::socket socket(ioc);
  Status s = OpenTunnel(ioc, socket, Target(443), Proxy(proxy.port()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(s.message().rfind("proxy 127.0.0.1:" + std::to_string(proxy.port()) +
                                  " refused CONNECT to localhost:443: HTTP 407",
                              0),
            0u)
      << s.message();
  EXPECT_NE(s.message().find("proxy authentication required"), std::string::npos);
}

TEST(TunnelTest, BadAnswersAreErrors) {
  struct Case {
    std::string answer;
    std::string expected;
  };
  for (const Case& c : {Case{"garbage\r\n\r\n", "malformed answer to CONNECT"},
                        Case{"", "closed the connection before answering CONNECT"},
                        Case{"HTTP/1.1 200 OK\r\n" + std::string(20000, 'X') + ": y\r\n\r\n",
                             "head over 16384 bytes"}}) {
    OneShotServer bad(c.answer);
    asio::io_context ioc;
    tcp::socket socket(ioc);
    Status s = OpenTunnel(ioc, socket, Target(443), Proxy(bad.port()));
    ASSERT_FALSE(s.ok()) << c.expected;
    EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
    EXPECT_NE(s.message().find(c.expected), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace iris::net
