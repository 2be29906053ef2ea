// A store_bodies route's prompt and answer, kept for the request log after the answer went
// out (the caller never waits on it): both in OpenAI's chat shape whatever API the caller
// used, so that `iris dataset export` reads one format. Image URLs are fetched under the
// image_fetch policy when it is on, so the exported data holds the pixels the model saw.
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/api/openai.h"
#include "gateway/providers/openai/openai_translator.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {

// The bytes the request's text and inline images hold (what its stored body at least takes).
int64_t RequestBytes(const ChatRequest& r) {
  int64_t n = 0;
  for (const Message& m : r.messages) {
    for (const ContentPart& p : m.content) {
      n += static_cast<int64_t>(p.text.size() + p.data_base64.size() + p.url.size());
    }
  }
  return n;
}

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
  const int64_t limit = config_->limits.max_stored_body_bytes;
  // What iris cannot see whole is not stored: a Responses request answered in the caller's own
  // body (hosted tools, files by id, account resources), whose prompt req_ holds only in part,
  // would teach answers without the context that made them.
  if (!req_.as_is_only.empty() || !req_.account_refs.empty() ||
      RequestBytes(req_) + static_cast<int64_t>(kept_answer_->text.size()) > limit) {
    kept_answer_.reset();
    summary_.bodies_not_kept = true;
    co_return;
  }
  // Fetched only when the policy allows it; a URL that cannot be fetched stays a URL (the
  // export reports such lines).
  if (config_->image_fetch.enabled && !images_fetched_ && HasImageUrls(req_)) {
    Status fetched = co_await FetchImageUrls();
    (void)fetched;
    image_fetch_detail_.clear();
  }
  if (RequestBytes(req_) + static_cast<int64_t>(kept_answer_->text.size()) > limit) {
    kept_answer_.reset();
    summary_.bodies_not_kept = true;
    co_return;
  }
  // Rendering up to max_stored_body_bytes of JSON happens on the query thread, never on the
  // worker that serves other callers.
  auto worker = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(gw_.query_pool_, boost::asio::use_awaitable);
  std::string request = StoredRequest(req_);
  // (The answer iris read, without the provider's own members: logprobs and the like are not
  // what a stored exchange teaches, and the size checks above did not count them.)
  kept_answer_->openai_extras.reset();
  std::string response = api::EncodeOpenAIChatResponse(*kept_answer_, nullptr, summary_.cost_usd);
  co_await boost::asio::post(worker, boost::asio::use_awaitable);
  kept_answer_.reset();
  if (request.empty() || static_cast<int64_t>(request.size() + response.size()) > limit) {
    summary_.bodies_not_kept = true;
    co_return;
  }
  summary_.request_body = std::move(request);
  summary_.response_body = std::move(response);
}

}  // namespace iris::gateway::proxy
