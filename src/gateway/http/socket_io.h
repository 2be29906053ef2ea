// Socket reads and writes that finish in place when they can: asio posts even an operation
// that completes at once, and each posted completion costs the worker a pass of its event loop.
#pragma once

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>

namespace iris::gateway::http {

// Sends all of `buffers`: first as much as the socket takes now (one send, no waiting), then
// the rest, if any, asynchronously. The first send is made only on a socket in non-blocking
// mode (`socket.non_blocking(true)`), where it cannot block the thread.
template <typename Buffers>
boost::asio::awaitable<boost::system::error_code> WriteAllNowOrLater(
    boost::asio::ip::tcp::socket& socket, const Buffers& buffers) {
  const size_t total = boost::asio::buffer_size(buffers);
  boost::system::error_code ec;
  size_t sent = total == 0 || !socket.non_blocking() ? 0 : socket.write_some(buffers, ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again ||
      ec == boost::asio::error::interrupted) {
    ec = {};
    sent = 0;
  }
  if (ec || sent == total) co_return ec;
  boost::beast::buffers_suffix<Buffers> rest(buffers);
  rest.consume(sent);
  auto [wec, n] = co_await boost::asio::async_write(
      socket, rest, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return wec;
}

// Reads into `buffer` and feeds `parser` (a Beast HTTP parser) until `done()` holds, parsing
// what the buffer already holds before reading from the socket: a request or response that
// arrived whole in an earlier read is parsed with no read at all. Reads fill the buffer's
// free capacity (4 KiB at least) and double while they come back full, up to `max_read`
// bytes at a time, so a large body arrives in large reads (the caller may shrink the buffer
// afterwards). Errors are Beast's, as its async_read gives them:
// end_of_stream when the peer closed before sending anything, partial_message when it closed
// mid-message, the parser's own (header_limit, body_limit, bad_…) and the socket's.
// `expired`, when given, is the caller's deadline flag: once it is set no further read
// starts (operation_aborted), so a deadline that fired between two reads, when no read was
// there to cancel, still ends the wait.
template <typename Parser, typename Done>
boost::asio::awaitable<boost::system::error_code> ReadUntil(boost::asio::ip::tcp::socket& socket,
                                                            boost::beast::flat_buffer& buffer,
                                                            Parser& parser, Done done,
                                                            const bool* expired = nullptr,
                                                            size_t max_read = 64 << 10) {
  namespace bhttp = boost::beast::http;
  size_t want = 0;
  for (;;) {
    while (buffer.size() > 0 && !done()) {
      boost::system::error_code ec;
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec) co_return ec;
      if (used == 0) break;
    }
    if (done()) co_return boost::system::error_code{};
    if (expired != nullptr && *expired) co_return boost::asio::error::operation_aborted;
    want = std::min(std::max({want, buffer.capacity() - buffer.size(), size_t{4096}}), max_read);
    if (want > buffer.max_size() - buffer.size()) co_return bhttp::error::buffer_overflow;
    auto [ec, n] = co_await socket.async_read_some(
        buffer.prepare(want), boost::asio::as_tuple(boost::asio::use_awaitable));
    buffer.commit(n);
    if (n == want) want *= 2;
    if (ec == boost::asio::error::eof) {
      if (!parser.got_some()) co_return bhttp::error::end_of_stream;
      boost::system::error_code pec;
      parser.put_eof(pec);
      if (pec) co_return pec;
      if (done()) co_return boost::system::error_code{};
      co_return bhttp::error::partial_message;
    }
    if (ec) co_return ec;
  }
}

}  // namespace iris::gateway::http
