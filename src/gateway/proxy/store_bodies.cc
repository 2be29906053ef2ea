// A store_bodies route's prompt and answer, kept for the request log after the answer went
// out (the caller never waits on it): both in OpenAI's chat shape whatever API the caller
// used, so that `iris dataset export` reads one format. Image URLs are fetched under the
// image_fetch policy when it is on, so the exported data holds the pixels the model saw.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "gateway/api/openai.h"
#include "gateway/providers/openai/openai_translator.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {

bool HasImageUrls(const ChatRequest& r) {
  for (const Message& m : r.messages) {
    for (const ContentPart& p : m.content) {
      if (p.type == ContentPart::Type::kImage && !p.url.empty()) return true;
    }
  }
  return false;
}

// The request as an OpenAI chat body: the translator's own rendering (never the caller's body
// as it came, which may be another dialect or hold URLs fetched since), without the stream
// fields. Empty when the request holds something that shape cannot (it is then not stored).
std::string StoredRequest(const ChatRequest& req) {
  static const std::unique_ptr<providers::Translator> kOpenAI =
      providers::MakeOpenAITranslator(providers::OpenAIFlavor::kCompatible, "request log");
  ChatRequest copy = req;
  copy.caller_body.reset();
  copy.dialect = Dialect::kOpenAI;
  copy.stream = false;
  copy.include_usage = false;
  providers::TargetInfo target;
  target.provider = "request log";
  target.model = req.model;
  target.base_url = "http://stored";
  Result<providers::UpstreamRequest> encoded = kOpenAI->EncodeRequest(copy, target);
  if (!encoded.ok()) return {};
  return std::move(encoded->body);
}

}  // namespace

awaitable<void> Call::KeepBodies() {
  // Fetched only when the policy allows it; a URL that cannot be fetched stays a URL (the
  // export reports such lines).
  if (config_->image_fetch.enabled && !images_fetched_ && HasImageUrls(req_)) {
    Status fetched = co_await FetchImageUrls();
    (void)fetched;
    image_fetch_detail_.clear();
  }
  std::string request = StoredRequest(req_);
  std::string response = api::EncodeOpenAIChatResponse(*kept_answer_, nullptr, summary_.cost_usd);
  kept_answer_.reset();
  if (request.empty()) {
    summary_.bodies_not_kept = true;
    co_return;
  }
  if (static_cast<int64_t>(request.size() + response.size()) >
      config_->limits.max_stored_body_bytes) {
    summary_.bodies_not_kept = true;
    co_return;
  }
  summary_.request_body = std::move(request);
  summary_.response_body = std::move(response);
}

}  // namespace iris::gateway::proxy
