// Messages for the outcomes of a CONNECT handshake.
#include "net/tunnel.h"

#include <boost/beast/http/error.hpp>

namespace iris::net {

Status TunnelStatus(const boost::system::error_code& ec, int status, const Url& target,
                    const Url& proxy) {
  namespace bhttp = boost::beast::http;
  const std::string via = "proxy " + HostPort(proxy.host, proxy.port);
  const std::string to = HostPort(target.host, target.port);
  if (ec == bhttp::error::end_of_stream) {
    return Status(ErrorCode::kUnavailable,
                  via + " closed the connection before answering CONNECT to " + to);
  }
  if (ec == bhttp::error::header_limit) {
    return Status(ErrorCode::kUnavailable, via + " answered CONNECT with a head over " +
                                               std::to_string(kMaxTunnelAnswerHead) + " bytes");
  }
  if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    return Status(ErrorCode::kUnavailable,
                  via + " sent a malformed answer to CONNECT: " + ec.message());
  }
  if (ec) {
    return Status(ErrorCode::kUnavailable, "CONNECT through " + via + " failed: " + ec.message());
  }
  if (status < 200 || status > 299) {
    std::string message = via + " refused CONNECT to " + to + ": HTTP " + std::to_string(status);
    if (status == 407) {
      message += " (proxy authentication required: put user:password@ in the proxy URL)";
    }
    return Status(ErrorCode::kUnavailable, std::move(message));
  }
  return OkStatus();
}

}  // namespace iris::net
