// Fuzz harness: bytes as a URL through net::ParseUrl (every upstream URL, proxy URL, image URL
// and hub URL goes through it). An accepted URL must be http or https with a host, a port in
// 1..65535, and parts free of bytes <= 0x20, 0x7f and >= 0x80, so each can go on the wire as
// it is; its target must pass the request-line check. The same bytes also go through
// QueryParam and, as a Location, ResolveReference. Seeds in tests/data/fuzz/url_corpus/;
// ctest fuzz_url, or libFuzzer with -DIRIS_BUILD_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/http/headers.h"
#include "net/url.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Clean(std::string_view part) {
  for (unsigned char c : part) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The same bytes as a query string and as a redirect's Location: no crash, no hang.
  (void)net::QueryParam(text, "key");
  if (Result<std::string> resolved = net::ResolveReference("https://hub.test/a/b?c", text);
      resolved.ok()) {
    Check(!resolved->empty());
  }
  Result<net::Url> url = net::ParseUrl(text);
  if (!url.ok()) {
    Check(!url.status().message().empty());
    return 0;
  }
  Check(url->scheme == "http" || url->scheme == "https");
  Check(!url->host.empty() && url->port >= 1);
  Check(url->target.starts_with("/"));
  Check(Clean(url->scheme) && Clean(url->host) && Clean(url->target) && Clean(url->userinfo));
  Check(gateway::http::IsValidRequestTarget(url->target));
  Check(gateway::http::IsValidRequestTarget(net::AbsoluteTarget(*url)));
  Check(gateway::http::IsValidFieldValue(net::HostHeader(*url)));
  // The host is a name (no '/', '@', '?', '#'), or an IP address without brackets.
  Check(url->host.find_first_of("/@?#[]") == std::string_view::npos);
  return 0;
}
