// The shared TLS client contexts and the per-connection checks, against a TLS server on
// loopback with a certificate made at test time (for localhost and 127.0.0.1).
#include "net/tls.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <string>
#include <thread>

#include "net/test_util.h"

namespace iris::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(certificate_.ok()); }

  // One handshake against a loopback server presenting the test certificate, the client
  // checking for `host`; returns the client's error ("" on success) and CertificateError.
  std::pair<std::string, std::string> Handshake(const std::string& host, bool verify,
                                                const std::string& ca_file) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::thread server([&] {
      ssl::context ctx(ssl::context::tls_server);
      ctx.use_certificate_chain_file(certificate_.cert());
      ctx.use_private_key_file(certificate_.key(), ssl::context::pem);
      asio::io_context io;
      tcp::socket sock(io);
      error_code ec;
      acceptor.accept(sock, ec);
      if (ec) return;
      ssl::stream<tcp::socket> tls(std::move(sock), ctx);
      tls.handshake(ssl::stream_base::server, ec);
    });
    auto ctx = ClientTlsContext(verify, ca_file);
    EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
    ssl::stream<tcp::socket> client(ioc, **ctx);
    client.next_layer().connect(acceptor.local_endpoint());
    Status prepared = PrepareTlsClient(client.native_handle(), host, verify);
    EXPECT_TRUE(prepared.ok()) << prepared.ToString();
    error_code ec;
    client.handshake(ssl::stream_base::client, ec);
    std::string refused = CertificateError(client.native_handle());
    client.next_layer().close();
    server.join();
    return {ec ? ec.message() : "", refused};
  }

  testing::TempCertificate certificate_;
};

TEST_F(TlsTest, ContextsAreSharedPerTrustSetting) {
  auto a = ClientTlsContext(true, certificate_.cert());
  auto b = ClientTlsContext(true, certificate_.cert());
  auto c = ClientTlsContext(false, certificate_.cert());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*a)->native_handle()), TLS1_2_VERSION);
}

TEST_F(TlsTest, MissingCaFileIsAnErrorNamingIt) {
  const std::string missing = (certificate_.dir() / "missing.pem").string();
  for (int i = 0; i < 2; ++i) {  // remembered, not retried silently
    auto ctx = ClientTlsContext(true, missing);
    ASSERT_FALSE(ctx.ok());
    EXPECT_EQ(ctx.status().code(), ErrorCode::kUnavailable);
    EXPECT_NE(ctx.status().message().find(missing), std::string::npos);
  }
}

TEST_F(TlsTest, VerifiesTheChainAndTheName) {
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    auto [error, refused] = Handshake(host, true, certificate_.cert());
    EXPECT_EQ(error, "") << host;
    EXPECT_EQ(refused, "") << host;
  }
  auto [error, refused] = Handshake("example.com", true, certificate_.cert());
  EXPECT_NE(error, "");
  EXPECT_EQ(refused, "hostname mismatch");
  auto [ip_error, ip_refused] = Handshake("127.0.0.2", true, certificate_.cert());
  EXPECT_NE(ip_error, "");
  EXPECT_EQ(ip_refused, "IP address mismatch");
  // The system store does not know the test certificate.
  auto [system_error, system_refused] = Handshake("localhost", true, "");
  EXPECT_NE(system_error, "");
  EXPECT_NE(system_refused, "");
  // Without verification anything goes (iris only does this when configured to).
  EXPECT_EQ(Handshake("example.com", false, "").first, "");
}

}  // namespace
}  // namespace iris::net
