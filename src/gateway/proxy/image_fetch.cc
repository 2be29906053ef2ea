// Image URL fetching under the image_fetch policy.
#include "gateway/proxy/image_fetch.h"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "base/sha256.h"
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

namespace {

constexpr size_t kMaxUrlBytes = 8192;

std::optional<std::string> ReadCached(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0 || size > static_cast<uint64_t>(max_bytes)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::string b = std::move(bytes).str();
  if (!in || b.size() != size || SniffImageType(b).empty()) return std::nullopt;
  return b;
}

// Written beside and renamed, so a reader never sees half a file; a cache that cannot be
// written costs a later fetch, nothing else.
void WriteCached(const std::string& dir, const std::string& path, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string tmp = path + ".partial." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace

Result<std::string> FetchImageCached(const config::ImageFetchConfig& policy,
                                     const upstream::ClientOptions& fetch_client,
                                     const std::string& cache_dir, const std::string& url,
                                     bool offline) {
  if (url.size() > kMaxUrlBytes) {
    return InvalidArgument("an image URL of " + std::to_string(url.size()) + " bytes (at most " +
                           std::to_string(kMaxUrlBytes) + ")");
  }
  IRIS_ASSIGN_OR_RETURN(net::Url parsed, upstream::ParseUrl(url));
  const std::string path = (std::filesystem::path(cache_dir) / Sha256::HexOf(url)).string();
  if (std::optional<std::string> cached = ReadCached(path, policy.max_bytes)) return *cached;
  if (offline) {
    return NotFound("the image at " + parsed.host + " is not in " + cache_dir +
                    " and the network is off (--offline)");
  }
  boost::asio::io_context io;
  upstream::Client client(io, fetch_client);
  FetchedImage image;
  Status got = Internal("the fetch did not run");
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        got = co_await FetchImage(client, policy, url, policy.timeout, nullptr, image);
      },
      boost::asio::detached);
  io.run();
  if (!got.ok()) {
    return Status(got.code(), "fetching the image at " + parsed.host + ": " + got.message());
  }
  WriteCached(cache_dir, path, image.bytes);
  return std::move(image.bytes);
}

std::string DefaultImageCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return (std::filesystem::path(x) / "iris" / "images").string();
  }
  const char* home = std::getenv("HOME");
  return (std::filesystem::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" /
          "iris" / "images")
      .string();
}

}  // namespace iris::gateway::proxy
