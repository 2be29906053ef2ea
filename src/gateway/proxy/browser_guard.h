// Defences against browsers: a web page the operator visits must not be able to spend the
// operator's keys through a gateway on 127.0.0.1 (cross-origin "simple" POSTs) or read it
// through DNS rebinding (a hostile name that resolves to 127.0.0.1). Host is checked against
// the listen address and server.allowed_hosts, Origin against server.cors.allow_origins, and
// API POSTs must say content-type: application/json (which no simple cross-origin request can).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/config/config.h"
#include "gateway/http/headers.h"

namespace iris::gateway::proxy {

class BrowserGuard {
 public:
  explicit BrowserGuard(const config::ServerConfig& server);

  // kPermissionDenied when the Host header names a host this gateway does not serve. A
  // loopback listen address serves only loopback names (localhost, 127.x.x.x, [::1]); a
  // wildcard address serves every host unless server.allowed_hosts is set; a specific address
  // serves itself. server.allowed_hosts adds names ("gw.example.com", "gw.example.com:8080",
  // "*.example.com"). A missing Host (HTTP/1.0) passes.
  Status CheckHost(const http::Headers& headers) const;

  // What to do with the request's Origin header.
  struct OriginDecision {
    bool allowed = true;
    std::string allow_origin;  // when set: the access-control-allow-origin value to send
  };
  // No Origin: allowed. The gateway's own origin (Origin's host equals Host): allowed. Else
  // allowed only when server.cors.allow_origins lists it (or "*").
  OriginDecision CheckOrigin(const http::Headers& headers) const;

  // InvalidArgument unless the content-type is application/json (parameters allowed).
  static Status CheckJsonContentType(const http::Headers& headers);

 private:
  enum class ListenKind { kLoopback, kWildcard, kSpecific };
  ListenKind listen_kind_;
  std::string listen_host_;
  std::vector<std::string> allowed_hosts_;  // lower case
  std::vector<std::string> allow_origins_;  // lower case, no trailing '/'
  bool any_origin_ = false;
};

// The host part of a Host header value or authority ("a.com:80" -> "a.com", "[::1]:8" ->
// "::1"), lower case.
std::string HostOnly(std::string_view authority);

}  // namespace iris::gateway::proxy
