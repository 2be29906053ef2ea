// Boost.URL does the parsing; this file only decides what iris accepts of what it parsed.
#include "net/url.h"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <exception>
#include <string>

namespace iris::net {
namespace {

namespace urls = boost::urls;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = urls::grammar::to_lower(c);
  return out;
}

bool IsDefaultPort(const Url& url) {
  return (url.scheme == "https" && url.port == 443) || (url.scheme == "http" && url.port == 80);
}

}  // namespace

Result<Url> ParseUrl(std::string_view text) {
  if (text.size() > kMaxUrlBytes) {
    return InvalidArgument("a URL of " + std::to_string(text.size()) + " bytes (at most " +
                           std::to_string(kMaxUrlBytes) + ")");
  }
  auto parsed = urls::parse_uri(text);
  if (!parsed) return InvalidArgument("not a valid absolute URL (RFC 3986)");
  const urls::url_view& u = *parsed;
  Url out;
  if (u.scheme_id() == urls::scheme::https) {
    out.scheme = "https";
    out.port = 443;
  } else if (u.scheme_id() == urls::scheme::http) {
    out.scheme = "http";
    out.port = 80;
  } else {
    return InvalidArgument("URL must start with http:// or https://");
  }
  if (!u.has_authority()) return InvalidArgument("URL has no host");
  switch (u.host_type()) {
    case urls::host_type::ipv4:
    case urls::host_type::ipv6:
      out.host = std::string(u.encoded_host_address());
      break;
    case urls::host_type::name: {
      std::string_view host = u.encoded_host();
      if (host.find('%') != std::string_view::npos) {
        return InvalidArgument("URL host must not be percent-encoded");
      }
      out.host = Lower(host);
      break;
    }
    default:
      return InvalidArgument("URL host is not a name or an IP address");
  }
  if (out.host.empty()) return InvalidArgument("URL has no host");
  if (u.has_port()) {
    std::string_view port = u.port();  // digits only (the grammar says so)
    uint32_t p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() ||
        p == 0 || p > 65535) {
      return InvalidArgument("bad port in URL");
    }
    out.port = static_cast<uint16_t>(p);
  }
  if (u.has_userinfo()) out.userinfo = std::string(u.encoded_userinfo());
  // Boost.URL takes "http://a@b@c/" as host "b" and path "@c/"; RFC 3986 allows no path
  // after an authority that does not start with '/' (and other parsers take host "c").
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    return InvalidArgument("URL authority is malformed (a second '@'?)");
  }
  out.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) out.target.append("?").append(u.encoded_query());
  return out;
}

std::string HostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out + ":" + std::to_string(port);
}

std::string HostHeader(const Url& url) {
  if (!IsDefaultPort(url)) return HostPort(url.host, url.port);
  return url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
}

std::string AbsoluteTarget(const Url& url) {
  return url.scheme + "://" + HostPort(url.host, url.port) + url.target;
}

bool SameOrigin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

Result<std::string> ResolveReference(std::string_view base, std::string_view reference) {
  auto b = urls::parse_uri(base);
  if (!b) return InvalidArgument("the base URL is not a valid absolute URL");
  auto ref = urls::parse_uri_reference(reference);
  if (!ref) return InvalidArgument("not a valid URL reference (RFC 3986)");
  try {
    urls::url dest;
    if (auto r = urls::resolve(*b, *ref, dest); !r) {
      return InvalidArgument("cannot resolve the URL reference: " + r.error().message());
    }
    return std::string(dest.buffer());
  } catch (const std::exception& e) {  // allocation (Boost.URL's size limit)
    return InvalidArgument(std::string("cannot resolve the URL reference: ") + e.what());
  }
}

std::string PercentEncode(std::string_view text, bool keep_slash) {
  if (keep_slash) return urls::encode(text, urls::unreserved_chars + '/');
  return urls::encode(text, urls::unreserved_chars);
}

Result<std::string> QueryParam(std::string_view query, std::string_view key) {
  // parse_query of Boost 1.81 validates its argument but then measures it again with strlen:
  // it is given a terminated copy, so that a view into a longer buffer is not read past its
  // end. (The grammar refuses NUL, so strlen stops at the copy's end.)
  const std::string terminated(query);
  auto parsed = urls::parse_query(terminated);
  if (!parsed) return InvalidArgument("the query string is not valid (bad percent-encoding?)");
  urls::encoding_opts opt;
  opt.space_as_plus = true;
  const urls::params_view params(*parsed, opt);
  auto it = params.find(key);
  if (it == params.end()) return std::string();
  return std::string((*it).value);
}

}  // namespace iris::net
