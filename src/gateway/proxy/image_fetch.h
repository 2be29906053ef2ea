// Fetching a caller's image URL for a target that needs the bytes (the local model, Gemini):
// the image_fetch policy of iris.yaml (allowed hosts, internal addresses, size, time), a
// client of its own that never carries provider credentials or traffic, and a check that the
// answer is an image. Errors here are detailed for the operator's log; callers get only
// kImageFetchFailed.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "base/status.h"
#include "gateway/config/config.h"
#include "gateway/http/cancel.h"
#include "gateway/upstream/client.h"

namespace iris::gateway::proxy {

// The one message a caller sees, whatever went wrong: it reveals nothing of the network the
// gateway runs in (which hosts exist, which ports are open).
inline constexpr std::string_view kImageFetchFailed =
    "the image URL could not be fetched as an image (the host is not allowed or not "
    "reachable, the answer was not an image, or it was too large or too slow); send the image "
    "inline as a data: URL";

// The client options for image fetches: no proxy unless policy.use_proxy, public addresses
// only unless policy.allow_private, no pooling (every fetch on a fresh connection).
upstream::ClientOptions ImageFetchClientOptions(const config::ImageFetchConfig& policy,
                                                const upstream::ClientOptions& provider_client);

// True when `host` (lower case) may be fetched under `allow_hosts` ("a.com", "*.a.com"; an
// empty list allows every host).
bool HostAllowed(std::string_view host, const std::vector<std::string>& allow_hosts);

// The image type of `bytes` from their signature (JPEG, PNG, GIF, WebP, BMP); "" otherwise.
std::string_view SniffImageType(std::string_view bytes);

struct FetchedImage {
  std::string media_type;  // from the bytes' signature, not the server's word
  std::string bytes;
};

// GETs `url` with `client` (made with ImageFetchClientOptions) within `timeout`; fails unless
// the host is allowed, the answer is 200 with an image/* content type, at most
// policy.max_bytes, and its bytes carry an image signature.
boost::asio::awaitable<Status> FetchImage(upstream::Client& client,
                                          const config::ImageFetchConfig& policy,
                                          const std::string& url, std::chrono::milliseconds timeout,
                                          http::CancelToken* cancel, FetchedImage& out);

// Images that training data (`iris finetune`, a server job) gives as http(s) URLs: fetched once
// under `policy` (its hosts, addresses, proxy, size and time; whether URLs are fetched at all
// is the caller's decision) and kept in `cache_dir` under the SHA-256 of the URL and of the
// address policy that fetched it (an image fetched from a private address is never served to
// a public-only policy; allow_hosts is checked before the cache), so later epochs, resumed
// runs and reruns read the same bytes. The directory is used only when it is the user's own
// (created 0700); "" caches nothing. `fetch_client` is made with ImageFetchClientOptions.
// `offline`: the cache only. Returns the image's bytes; an error names the URL's host and why.
// Blocks: runs its own event loop.
Result<std::string> FetchImageCached(const config::ImageFetchConfig& policy,
                                     const upstream::ClientOptions& fetch_client,
                                     const std::string& cache_dir, const std::string& url,
                                     bool offline);

// $XDG_CACHE_HOME/iris/images, else ~/.cache/iris/images; "" without either (no cache).
std::string DefaultImageCacheDir();

}  // namespace iris::gateway::proxy
