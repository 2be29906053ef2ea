// Image URL fetching under the image_fetch policy.
#include "gateway/proxy/image_fetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>

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
  o.remember_urls = false;  // (nor its URL)
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

// A cache entry's file: the URL's SHA-256, and which address policy fetched it. An entry
// fetched where private addresses were allowed is never handed to a public-only policy.
std::string EntryPath(const std::string& dir, const std::string& url, bool private_allowed) {
  return (std::filesystem::path(dir) /
          Sha256::HexOf(std::string(private_allowed ? "private\n" : "public\n") + url))
      .string();
}

// The cache directory, created 0700 and used only when it is this user's own real directory
// (not a link, not another user's).
bool UsableCacheDir(const std::string& dir) {
  if (dir.empty()) return false;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  struct stat st {};
  return ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
         (st.st_mode & 0022) == 0;
}

// At most max_bytes, through no symbolic link, and only an image.
std::optional<std::string> ReadCached(const std::string& path, int64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string b;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= max_bytes) {
    b.resize(static_cast<size_t>(max_bytes) + 1);
    size_t got = 0;
    for (ssize_t n; got < b.size() && (n = ::read(fd, b.data() + got, b.size() - got)) > 0;) {
      got += static_cast<size_t>(n);
    }
    b.resize(got);
  }
  ::close(fd);
  if (b.empty() || b.size() > static_cast<size_t>(max_bytes) || SniffImageType(b).empty()) {
    return std::nullopt;
  }
  return b;
}

// Written under a fresh random name (created exclusively, 0600, through no link) and renamed,
// so a reader never sees half a file; a cache that cannot be written costs a later fetch.
void WriteCached(const std::string& path, const std::string& bytes) {
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".partial.%08x%08x", rd(), rd());
  const std::string tmp = path + suffix;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t put = 0;
  for (ssize_t n;
       put < bytes.size() && (n = ::write(fd, bytes.data() + put, bytes.size() - put)) > 0;) {
    put += static_cast<size_t>(n);
  }
  const bool ok = ::close(fd) == 0 && put == bytes.size();
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace

Result<std::string> FetchImageCached(const config::ImageFetchConfig& policy,
                                     const upstream::ClientOptions& fetch_client,
                                     const std::string& cache_dir, const std::string& url,
                                     bool offline) {
  if (url.size() > net::kMaxUrlBytes) {
    return InvalidArgument("an image URL of " + std::to_string(url.size()) + " bytes (at most " +
                           std::to_string(net::kMaxUrlBytes) + ")");
  }
  IRIS_ASSIGN_OR_RETURN(net::Url parsed, upstream::ParseUrl(url));
  // The policy's hosts hold for cached images too.
  if (!HostAllowed(parsed.host, policy.allow_hosts)) {
    return Status(ErrorCode::kPermissionDenied,
                  "fetching the image at " + parsed.host + ": not in image_fetch.allow_hosts");
  }
  const bool cache = UsableCacheDir(cache_dir);
  if (cache) {
    for (const bool private_allowed : {false, true}) {
      if (private_allowed && !policy.allow_private) break;
      if (auto cached = ReadCached(EntryPath(cache_dir, url, private_allowed), policy.max_bytes)) {
        return *cached;
      }
    }
  }
  if (offline) {
    return NotFound("the image at " + parsed.host + " is not in " +
                    (cache ? cache_dir : std::string("the image cache")) +
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
  if (cache) WriteCached(EntryPath(cache_dir, url, policy.allow_private), image.bytes);
  return std::move(image.bytes);
}

std::string DefaultImageCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
    return (std::filesystem::path(x) / "iris" / "images").string();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return (std::filesystem::path(home) / ".cache" / "iris" / "images").string();
  }
  return "";  // no home of its own: nothing is cached
}

}  // namespace iris::gateway::proxy
