// URLs for every outbound connection (the gateway's upstreams and image fetches, the hub
// download, proxies), parsed once and strictly with Boost.URL so that each part can go on the
// wire as it is; plus the few URL operations both clients need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace iris::net {

// An absolute http:// or https:// URL split into parts.
struct Url {
  std::string scheme;    // "http" or "https"
  std::string host;      // lower case; without brackets for IPv6
  uint16_t port = 0;     // explicit or the scheme's default
  std::string target;    // path?query (percent-encoded as given), at least "/"
  std::string userinfo;  // percent-encoded "user:pass" before '@' (proxy auth), usually empty
};

// The longest URL iris parses, connects to or sends on a request line (browsers and servers
// commonly stop at 8 KiB; an accepted URL's target and absolute form stay far below the
// request-line bound).
inline constexpr size_t kMaxUrlBytes = 8192;

// Parses an absolute http(s) URL (RFC 3986, through Boost.URL). A URL over kMaxUrlBytes,
// whitespace, control bytes, bytes >= 0x80, bad percent-encoding, an IP-future or
// percent-encoded host, port 0 or > 65535 are refused (kInvalidArgument). The fragment is dropped.
// Errors never quote the text: it may come from a caller, and a proxy URL may hold a password.
Result<Url> ParseUrl(std::string_view text);

// "host:port", with brackets around an IPv6 host.
std::string HostPort(std::string_view host, uint16_t port);
// The Host header for `url`: the host (bracketed for IPv6), with ":port" unless it is the
// scheme's default.
std::string HostHeader(const Url& url);
// The absolute-form request target ("http://host:port/path?query") a proxy is sent.
std::string AbsoluteTarget(const Url& url);
// True when `a` and `b` have the same scheme, host and port.
bool SameOrigin(const Url& a, const Url& b);

// Resolves `reference` (a Location header: absolute, "//host/..", "/path" or relative)
// against the absolute URL `base` (RFC 3986 section 5). kInvalidArgument when either does
// not parse. The result still has to pass ParseUrl before it is used.
Result<std::string> ResolveReference(std::string_view base, std::string_view reference);

// Percent-encodes every byte except RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~)
// and, when `keep_slash`, '/': one path segment, or a path of segments.
std::string PercentEncode(std::string_view text, bool keep_slash = false);

// The decoded value of the first `key` parameter of a query string (without the '?'), '+'
// read as a space; "" when the key is absent or has no value. kInvalidArgument when the query
// is not valid (bad percent-encoding, bytes outside RFC 3986's query characters).
Result<std::string> QueryParam(std::string_view query, std::string_view key);

}  // namespace iris::net
