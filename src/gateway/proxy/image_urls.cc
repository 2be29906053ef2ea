// Caller-supplied image URLs, fetched for targets that need the bytes (the local engine,
// Gemini), once per request, under the image_fetch policy and within the route's deadline.
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include "base/base64.h"
#include "gateway/api/json_fields.h"
#include "gateway/proxy/call.h"
#include "gateway/proxy/image_fetch.h"
#include "gateway/proxy/request_checks.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
using asio::awaitable;

// Images given as http(s) URLs, fetched once per request for targets that need the bytes,
// under the image_fetch policy and within the route's total deadline. A caller learns only
// that the URL could not be fetched as an image; why (a refused address, a closed port) goes
// to the request log, never to the caller.
awaitable<Status> Call::FetchImageUrls() {
  if (images_fetched_) co_return OkStatus();
  const config::ImageFetchConfig& policy = config_->image_fetch;
  auto& io = static_cast<asio::io_context&>((co_await asio::this_coro::executor).context());
  int fetched = 0;
  int64_t total_bytes = 0;
  for (const Message& m : req_.messages) {
    for (const ContentPart& p : m.content) {
      if (p.type == ContentPart::Type::kImage && !p.data_base64.empty()) {
        total_bytes += Base64DecodedBytes(p.data_base64.size());
      }
    }
  }
  for (size_t mi = 0; mi < req_.messages.size(); ++mi) {
    Message& m = req_.messages[mi];
    for (size_t ci = 0; ci < m.content.size(); ++ci) {
      ContentPart& p = m.content[ci];
      if (p.type != ContentPart::Type::kImage || p.url.empty()) continue;
      const std::string field =
          api::ElementPath(api::MemberPath(api::ElementPath("messages", mi), "content"), ci);
      if (!policy.enabled) {
        co_return Unimplemented(field +
                                ": this gateway does not fetch image URLs (image_fetch.enabled "
                                "is off in its iris.yaml); send the image inline as a data: URL");
      }
      if (++fetched > policy.max_per_request) {
        co_return Unimplemented(field + ": at most " + std::to_string(policy.max_per_request) +
                                " image URLs are fetched per request "
                                "(image_fetch.max_per_request); send the rest inline");
      }
      const auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      FetchedImage image;
      Status got = co_await FetchImage(gw_.FetchClientFor(io, *snap_), policy, p.url,
                                       std::min(remaining, policy.timeout), &w_.cancel(), image);
      if (!got.ok()) {
        image_fetch_detail_ = field + ": " + got.message();
        co_return InvalidArgument(field + ": " + std::string(kImageFetchFailed));
      }
      total_bytes += static_cast<int64_t>(image.bytes.size());
      if (total_bytes > config_->limits.max_total_image_bytes) {
        co_return OutOfRange(field + ": the request's images exceed " +
                             std::to_string(config_->limits.max_total_image_bytes) +
                             " bytes in all (limits.max_total_image_bytes in iris.yaml)");
      }
      p.media_type = std::move(image.media_type);
      p.data_base64 = Base64Encode(image.bytes);
      p.url.clear();
    }
  }
  images_fetched_ = true;  // (only on success: a later target may need to try again)
  co_return OkStatus();
}

}  // namespace iris::gateway::proxy
