// Forward proxies as curl and most HTTP tools configure them (HTTPS_PROXY, HTTP_PROXY,
// NO_PROXY), for every outbound client: what proxy a target goes through, and the bytes that
// ask a proxy for a tunnel.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/url.h"

namespace iris::net {

// Proxy settings, normally from the environment (curl's conventions).
struct ProxySettings {
  std::optional<Url> http_proxy;   // for http:// targets (absolute-form requests)
  std::optional<Url> https_proxy;  // for https:// targets (CONNECT tunnel)
  // NO_PROXY entries: "*" (everything), a host name matching itself and its subdomains
  // (a leading "." or "*." is allowed), or an exact IP address. Ports are ignored.
  std::vector<std::string> no_proxy;

  // Reads https_proxy/HTTPS_PROXY, http_proxy/HTTP_PROXY and no_proxy/NO_PROXY (lower case
  // wins; an empty value counts as unset) through `getenv`, which returns nullptr when unset.
  // A proxy URL without a scheme is taken as http://; only http:// proxies are supported, and
  // an unparsable proxy URL is kInvalidArgument naming the variable (never its value, which
  // may hold a password). Pass ::getenv for the real environment.
  static Result<ProxySettings> FromEnv(const std::function<const char*(const char*)>& getenv);
  // The proxy for a target, or nullptr when it is reached directly. Pointer into *this.
  const Url* ProxyFor(std::string_view scheme, std::string_view host) const;
};

// The Proxy-Authorization value for `proxy`'s userinfo ("Basic " + base64 of the decoded
// "user:password"), or "" when the proxy URL has none.
std::string ProxyAuthorization(const Url& proxy);

// The CONNECT request head that asks `proxy` for a tunnel to `target`'s host and port.
std::string ConnectRequest(const Url& target, const Url& proxy);

}  // namespace iris::net
