// An attempt at the built-in engine: the request queues for the engine thread, whose events
// come back through a LocalStream to deliver.cc. A full queue is load, never the engine's fault.
#include <boost/asio/this_coro.hpp>

#include "gateway/api/errors.h"
#include "gateway/providers/local/local_stream.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

using boost::asio::awaitable;

awaitable<Outcome> Call::TryLocal(const routing::Target& t) {
  if (embed_) {
    GatewayError e = Err(ErrorClass::kInvalidRequest, "the local model does not make embeddings");
    e.provider = t.provider;
    co_return Fail(e, routing::Failure::Kind::kUnsupported);
  }
  if (!req_.as_is_only.empty()) co_return RefuseAsIsOnly(t);
  providers::LocalProvider* local = gw_.options_.local;
  if (local == nullptr) {
    co_return Fail(Err(ErrorClass::kOverloaded,
                       "the local model is not loaded (start iris serve with "
                       "--model, or run `iris pull smolvlm2-256m`)"),
                   routing::Failure::Kind::kUnsupported);
  }
  Status fetched = co_await FetchImageUrls();
  if (!fetched.ok()) co_return ImageFetchFailure(fetched, t.provider, committed_);
  target_dropped_ = req_.extra_fields;  // (the engine takes none of them)
  if (providers::HasCacheMarks(req_)) api::AddFieldName(target_dropped_, "cache_control");
  providers::LocalStream stream(co_await boost::asio::this_coro::executor);
  auto on_cancel = w_.cancel().OnCancel([&stream] { stream.Close(); });
  ChatRequest local_req = req_;
  local_req.model = t.model;  // "smolvlm2" or "smolvlm2:<adapter>"
  Status submitted = local->Submit(std::move(local_req), stream.Sink());
  if (!submitted.ok()) {
    GatewayError e = api::FromStatus(submitted);
    e.provider = t.provider;
    if (submitted.code() == ErrorCode::kResourceExhausted) {
      // A full queue is load, not a fault of the engine: fall over, never open its breaker.
      e.error_class = ErrorClass::kOverloaded;
      e.retry_after_s = 1;
      co_return Fail(e, routing::Failure::Kind::kBusy);
    }
    if (submitted.code() == ErrorCode::kUnimplemented) {
      co_return Fail(e, routing::Failure::Kind::kUnsupported);
    }
    co_return FailStatus(e, PseudoStatus(submitted));
  }
  auto next = [&](bool& end) -> awaitable<Result<std::vector<StreamEvent>>> {
    // Before the first token the engine may be queued or prefilling: first_token_ms.
    const auto limit = current_->ttft_ms < 0 ? plan_.timeouts.first_token : plan_.timeouts.idle;
    const auto t1 = Clock::now();
    auto events = co_await stream.Next(limit, end);
    waiting_ += Clock::now() - t1;
    co_return events;
  };
  co_return co_await DeliverEvents(t, next);
}

}  // namespace iris::gateway::proxy
