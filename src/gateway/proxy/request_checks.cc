// One pass over a decoded request against the configured limits.
#include "gateway/proxy/request_checks.h"

#include <string>

#include "gateway/api/identifiers.h"
#include "gateway/api/json_fields.h"
#include "gateway/upstream/client.h"
#include "net/url.h"

namespace iris::gateway::proxy {
namespace {

Status CheckList(const std::vector<std::string>& list, std::string_view field, int max,
                 std::string_view limit_key) {
  if (list.size() > static_cast<size_t>(max)) {
    return InvalidArgument(std::string(field) + ": at most " + std::to_string(max) +
                           " entries, got " + std::to_string(list.size()) + " (limits." +
                           std::string(limit_key) + " in iris.yaml)");
  }
  return OkStatus();
}

}  // namespace

Status CheckRequest(const ChatRequest& request, const config::Config& config) {
  const config::LimitsConfig& limits = config.limits;
  IRIS_RETURN_IF_ERROR(api::CheckModelId(request.model, "model"));
  const RoutingHints& hints = request.routing;
  IRIS_RETURN_IF_ERROR(
      CheckList(hints.models, "models", limits.max_fallback_models, "max_fallback_models"));
  IRIS_RETURN_IF_ERROR(
      CheckList(hints.order, "provider.order", limits.max_provider_hints, "max_provider_hints"));
  IRIS_RETURN_IF_ERROR(
      CheckList(hints.only, "provider.only", limits.max_provider_hints, "max_provider_hints"));
  for (size_t i = 0; i < hints.models.size(); ++i) {
    IRIS_RETURN_IF_ERROR(api::CheckModelId(hints.models[i], api::ElementPath("models", i)));
  }
  for (size_t i = 0; i < hints.order.size(); ++i) {
    IRIS_RETURN_IF_ERROR(
        api::CheckProviderName(hints.order[i], api::ElementPath("provider.order", i)));
  }
  for (size_t i = 0; i < hints.only.size(); ++i) {
    IRIS_RETURN_IF_ERROR(
        api::CheckProviderName(hints.only[i], api::ElementPath("provider.only", i)));
  }

  int images = 0;
  int64_t inline_bytes = 0;
  for (size_t m = 0; m < request.messages.size(); ++m) {
    const Message& message = request.messages[m];
    for (size_t c = 0; c < message.content.size(); ++c) {
      const ContentPart& part = message.content[c];
      if (part.type != ContentPart::Type::kImage) continue;
      const std::string field =
          api::ElementPath(api::MemberPath(api::ElementPath("messages", m), "content"), c);
      if (++images > limits.max_images) {
        return InvalidArgument(field + ": at most " + std::to_string(limits.max_images) +
                               " images per request (limits.max_images in iris.yaml)");
      }
      if (!part.data_base64.empty()) {
        const int64_t bytes = Base64DecodedBytes(part.data_base64.size());
        if (bytes > limits.max_image_bytes) {
          return OutOfRange(field + ": the image is " + std::to_string(bytes) +
                            " bytes; the limit is " + std::to_string(limits.max_image_bytes) +
                            " (limits.max_image_bytes in iris.yaml)");
        }
        inline_bytes += bytes;
        if (inline_bytes > limits.max_total_image_bytes) {
          return OutOfRange(field + ": the request's images exceed " +
                            std::to_string(limits.max_total_image_bytes) +
                            " bytes in all (limits.max_total_image_bytes in iris.yaml)");
        }
        continue;
      }
      if (part.url.empty()) continue;
      if (part.url.size() > net::kMaxUrlBytes) {
        return InvalidArgument(field + ": an image URL is at most " +
                               std::to_string(net::kMaxUrlBytes) + " bytes");
      }
      // Only http(s) URLs reach this point (data: URLs are decoded inline); one that is not a
      // clean RFC 3986 URL is refused here, whichever provider would have received it.
      if (auto parsed = upstream::ParseUrl(part.url); !parsed.ok()) {
        return InvalidArgument(field + ": invalid image URL: " + parsed.status().message());
      }
    }
  }
  return OkStatus();
}

}  // namespace iris::gateway::proxy
