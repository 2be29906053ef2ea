// The CONNECT handshake with an HTTP proxy, as one Asio operation over any stream, so the
// gateway's coroutine client and the hub's blocking one open tunnels the same way. The
// stream's owner bounds it (a deadline that cancels the socket, or tcp_stream's expiry).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/coroutine.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "net/proxy.h"
#include "net/url.h"

namespace iris::net {

// The most bytes of a proxy's answer head to CONNECT that are read before giving up.
inline constexpr uint32_t kMaxTunnelAnswerHead = 16 << 10;

// Writes ConnectRequest(target, proxy) to `stream` (connected to the proxy) and reads the
// proxy's answer head into `buffer`. Completes with (error_code, HTTP status): a write or
// read error, a malformed or oversized answer (Beast's http errors), or the status the proxy
// answered; on a 2xx status the stream is a tunnel to `target`. `stream`, `buffer`, `target`
// and `proxy` must outlive the operation.
template <typename AsyncStream, typename CompletionToken>
auto AsyncOpenTunnel(AsyncStream& stream, boost::beast::flat_buffer& buffer, const Url& target,
                     const Url& proxy, CompletionToken&& token) {
  namespace bhttp = boost::beast::http;
  using boost::system::error_code;
  struct State {
    std::string request;
    bhttp::response_parser<bhttp::empty_body> parser;
  };
  auto state = std::make_unique<State>();
  state->request = ConnectRequest(target, proxy);
  state->parser.skip(true);  // a 2xx answer to CONNECT has no body; the tunnel starts after it
  state->parser.header_limit(kMaxTunnelAnswerHead);
  return boost::asio::async_compose<CompletionToken, void(error_code, int)>(
      [&stream, &buffer, state = std::move(state), coro = boost::asio::coroutine()](
          auto& self, error_code ec = {}, std::size_t = 0) mutable {
        BOOST_ASIO_CORO_REENTER(coro) {
          BOOST_ASIO_CORO_YIELD boost::asio::async_write(
              stream, boost::asio::buffer(state->request), std::move(self));
          if (ec) return self.complete(ec, 0);
          BOOST_ASIO_CORO_YIELD bhttp::async_read_header(stream, buffer, state->parser,
                                                         std::move(self));
          if (ec) return self.complete(ec, 0);
          const int status = static_cast<int>(state->parser.get().result_int());
          self.complete(error_code(), status);
        }
      },
      token, stream);
}

// AsyncOpenTunnel's outcome as a Status: OK for a 2xx answer; otherwise kUnavailable naming
// the proxy and the target: the proxy's refusal (with a hint for 407), a malformed answer, or
// `ec`'s message. Callers tell their own timeouts and cancellations apart first.
Status TunnelStatus(const boost::system::error_code& ec, int status, const Url& target,
                    const Url& proxy);

}  // namespace iris::net
