// Host, Origin and content-type checks for browser-borne attacks.
#include "gateway/proxy/browser_guard.h"

#include "gateway/config/config.h"

namespace iris::gateway::proxy {
namespace {

bool IsLoopbackName(std::string_view host) {
  return host.ends_with(".localhost") || config::IsLoopbackHost(host);
}

bool IsWildcard(std::string_view host) { return host == "0.0.0.0" || host == "::" || host.empty(); }

// An allowed_hosts entry names a host ("a.com", "*.a.com") or a host with its port.
bool MatchesEntry(std::string_view host, std::string_view authority, std::string_view entry) {
  return http::HostMatches(host, entry) || entry == authority;
}

}  // namespace

std::string HostOnly(std::string_view authority) {
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
  } else if (size_t colon = host.rfind(':');
             colon != std::string_view::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  return http::ToLower(host);
}

BrowserGuard::BrowserGuard(const config::ServerConfig& server) {
  listen_host_ = http::ToLower(server.listen.host);
  if (IsWildcard(listen_host_)) {
    listen_kind_ = ListenKind::kWildcard;
  } else if (IsLoopbackName(listen_host_)) {
    listen_kind_ = ListenKind::kLoopback;
  } else {
    listen_kind_ = ListenKind::kSpecific;
  }
  for (const std::string& h : server.allowed_hosts) allowed_hosts_.push_back(http::ToLower(h));
  for (const std::string& o : server.cors.allow_origins) {
    std::string origin = http::ToLower(o);
    while (origin.ends_with("/")) origin.pop_back();
    if (origin == "*") any_origin_ = true;
    allow_origins_.push_back(std::move(origin));
  }
}

Status BrowserGuard::CheckHost(const http::Headers& headers) const {
  const std::string* value = headers.Find("host");
  if (value == nullptr) return OkStatus();
  const std::string authority = http::ToLower(*value);
  const std::string host = HostOnly(authority);
  for (const std::string& entry : allowed_hosts_) {
    if (MatchesEntry(host, authority, entry)) return OkStatus();
  }
  bool ok = false;
  switch (listen_kind_) {
    case ListenKind::kLoopback:
      ok = IsLoopbackName(host);
      break;
    case ListenKind::kWildcard:
      ok = allowed_hosts_.empty() || IsLoopbackName(host);
      break;
    case ListenKind::kSpecific:
      ok = host == listen_host_ || IsLoopbackName(host);
      break;
  }
  if (ok) return OkStatus();
  std::string shown = authority.substr(0, 100);
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"') c = '?';
  }
  return Status(ErrorCode::kPermissionDenied,
                "this gateway does not serve Host \"" + shown +
                    "\" (add it to server.allowed_hosts in iris.yaml if it should)");
}

BrowserGuard::OriginDecision BrowserGuard::CheckOrigin(const http::Headers& headers) const {
  OriginDecision d;
  const std::string* value = headers.Find("origin");
  if (value == nullptr) return d;
  std::string origin = http::ToLower(*value);
  while (origin.ends_with("/")) origin.pop_back();
  // The gateway's own pages (the dashboard) call it from its own origin.
  if (const std::string* host = headers.Find("host")) {
    const std::string own = http::ToLower(*host);
    if (origin == "http://" + own || origin == "https://" + own) return d;
  }
  for (const std::string& allowed : allow_origins_) {
    if (allowed == origin || allowed == "*") {
      if (http::IsValidFieldValue(*value)) d.allow_origin = any_origin_ ? "*" : *value;
      return d;
    }
  }
  d.allowed = false;
  return d;
}

Status BrowserGuard::CheckJsonContentType(const http::Headers& headers) {
  std::string type = http::ToLower(headers.Get("content-type"));
  if (size_t semi = type.find(';'); semi != std::string::npos) type.resize(semi);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.erase(0, 1);
  if (type == "application/json") return OkStatus();
  return InvalidArgument(
      "content-type must be application/json" +
      (type.empty() ? std::string(" (none was sent)") : " (got \"" + type.substr(0, 64) + "\")"));
}

}  // namespace iris::gateway::proxy
