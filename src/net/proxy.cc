// ProxySettings from the environment, NO_PROXY matching, and the proxy request bits.
#include "net/proxy.h"

#include <algorithm>
#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/pct_string_view.hpp>

#include "base/base64.h"

namespace iris::net {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = boost::urls::grammar::to_lower(c);
  return s;
}

// Decodes a percent-encoded part of a parsed URL (valid by construction; "" otherwise).
std::string Decode(std::string_view encoded) {
  auto pct = boost::urls::make_pct_string_view(encoded);
  return pct ? pct->decode() : std::string();
}

Result<std::optional<Url>> ParseProxy(std::string value, const char* name) {
  if (value.empty()) return std::optional<Url>();
  const size_t sep = value.find("://");
  if (sep == std::string::npos) {
    value = "http://" + value;
  } else if (Lower(value.substr(0, sep)) != "http") {
    return InvalidArgument(std::string(name) + ": only http:// proxies are supported, not " +
                           value.substr(0, std::min<size_t>(sep, 16)) + "://");
  }
  Result<Url> url = ParseUrl(value);
  if (!url.ok()) return url.status().WithContext(name);
  return std::optional<Url>(std::move(*url));
}

}  // namespace

Result<ProxySettings> ProxySettings::FromEnv(
    const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* lower, const char* upper) -> std::string {
    const char* v = getenv(lower);
    if (v == nullptr || *v == '\0') v = getenv(upper);
    return v == nullptr ? std::string() : std::string(v);
  };
  ProxySettings settings;
  IRIS_ASSIGN_OR_RETURN(settings.https_proxy,
                        ParseProxy(get("https_proxy", "HTTPS_PROXY"), "HTTPS_PROXY"));
  IRIS_ASSIGN_OR_RETURN(settings.http_proxy,
                        ParseProxy(get("http_proxy", "HTTP_PROXY"), "HTTP_PROXY"));
  const std::string no_proxy = get("no_proxy", "NO_PROXY");
  size_t start = 0;
  while (start <= no_proxy.size()) {
    const size_t comma = no_proxy.find(',', start);
    std::string entry = no_proxy.substr(start, comma - start);
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (!entry.empty()) settings.no_proxy.push_back(Lower(std::move(entry)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return settings;
}

const Url* ProxySettings::ProxyFor(std::string_view scheme, std::string_view host) const {
  const std::optional<Url>& proxy = scheme == "https" ? https_proxy : http_proxy;
  if (!proxy) return nullptr;
  const std::string h = Lower(std::string(host));
  for (std::string entry : no_proxy) {
    if (entry == "*") return nullptr;
    if (entry.starts_with("*.")) entry.erase(0, 2);
    if (entry.starts_with(".")) entry.erase(0, 1);
    if (entry.starts_with("[")) {  // [v6]:port
      entry = entry.substr(1, entry.find(']') - 1);
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
      entry.erase(entry.find(':'));  // host:port
    }
    if (entry.empty()) continue;
    if (h == entry) return nullptr;
    if (h.size() > entry.size() && h.ends_with(entry) && h[h.size() - entry.size() - 1] == '.') {
      return nullptr;
    }
  }
  return &*proxy;
}

std::string ProxyAuthorization(const Url& proxy) {
  if (proxy.userinfo.empty()) return "";
  // userinfo = user [":" password], each percent-encoded (a ':' in the user is encoded).
  const std::string_view info = proxy.userinfo;
  const size_t colon = info.find(':');
  std::string credentials = Decode(info.substr(0, colon));
  if (colon != std::string_view::npos)
    credentials.append(":").append(Decode(info.substr(colon + 1)));
  return "Basic " + Base64Encode(credentials);
}

std::string ConnectRequest(const Url& target, const Url& proxy) {
  const std::string authority = HostPort(target.host, target.port);
  std::string head = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (std::string auth = ProxyAuthorization(proxy); !auth.empty()) {
    head += "Proxy-Authorization: " + auth + "\r\n";
  }
  return head + "\r\n";
}

}  // namespace iris::net
