// Image URL fetching under the image_fetch policy.
#include "gateway/proxy/image_fetch.h"

#include "gateway/upstream/address_policy.h"

namespace iris::gateway::proxy {

upstream::ClientOptions ImageFetchClientOptions(const config::ImageFetchConfig& policy,
                                                const upstream::ClientOptions& provider_client) {
  upstream::ClientOptions o;
  o.verify_tls = provider_client.verify_tls;
  o.ca_file = provider_client.ca_file;
  if (policy.use_proxy) o.proxy = provider_client.proxy;
  o.max_idle_per_host = 0;  // nothing a caller planted can outlive its own fetch
  if (!policy.allow_private) o.allow_address = upstream::IsPublicUnicast;
  return o;
}

bool HostAllowed(std::string_view host, const std::vector<std::string>& allow_hosts) {
  if (allow_hosts.empty()) return true;
  for (std::string_view entry : allow_hosts) {
    if (http::HostMatches(host, entry)) return true;
  }
  return false;
}

std::string_view SniffImageType(std::string_view b) {
  if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") return "image/jpeg";
  if (b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1A\n") return "image/png";
  if (b.size() >= 6 && (b.substr(0, 6) == "GIF87a" || b.substr(0, 6) == "GIF89a")) {
    return "image/gif";
  }
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return "image/webp";
  if (b.size() >= 14 && b.substr(0, 2) == "BM") return "image/bmp";
  return {};
}

boost::asio::awaitable<Status> FetchImage(upstream::Client& client,
                                          const config::ImageFetchConfig& policy,
                                          const std::string& url, std::chrono::milliseconds timeout,
                                          http::CancelToken* cancel, FetchedImage& out) {
  auto parsed = upstream::ParseUrl(url);
  if (!parsed.ok()) co_return parsed.status();
  if (!HostAllowed(parsed->host, policy.allow_hosts)) {
    co_return Status(ErrorCode::kPermissionDenied,
                     "host " + parsed->host + " is not in image_fetch.allow_hosts");
  }
  if (timeout <= std::chrono::milliseconds(0)) {
    co_return Status(ErrorCode::kDeadlineExceeded, "no time left in the route's total timeout");
  }
  upstream::OutboundRequest get;
  get.method = "GET";
  get.url = url;
  get.headers = {{"accept", "image/*"}, {"user-agent", "iris"}};
  upstream::Deadlines d;
  d.connect = d.first_byte = d.idle = d.total = timeout;
  auto ex = co_await client.Start(get, d, cancel);
  if (!ex.ok()) co_return ex.status();
  if (ex->status() != 200) {
    co_return Status(ErrorCode::kFailedPrecondition,
                     "HTTP " + std::to_string(ex->status()) + " from " + parsed->host);
  }
  const std::string type = http::ToLower(ex->headers().Get("content-type"));
  if (!type.starts_with("image/")) {
    co_return Status(ErrorCode::kFailedPrecondition,
                     "content-type \"" + type.substr(0, 64) + "\" is not an image");
  }
  auto body = co_await ex->ReadAll(static_cast<size_t>(policy.max_bytes));
  if (!body.ok()) co_return body.status();
  std::string_view sniffed = SniffImageType(*body);
  if (sniffed.empty()) {
    co_return Status(ErrorCode::kFailedPrecondition,
                     "the bytes are not a JPEG, PNG, GIF, WebP or BMP");
  }
  out.media_type = std::string(sniffed);
  out.bytes = std::move(body).value();
  co_return OkStatus();
}

}  // namespace iris::gateway::proxy
