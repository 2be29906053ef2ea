// An attempt at a cloud target: its translator encodes the request, the worker's upstream
// client sends it, and the answer comes back as a body or as stream events for deliver.cc.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "gateway/api/errors.h"
#include "gateway/http/headers.h"
#include "gateway/http/sse.h"
#include "gateway/providers/provider_table.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;

Outcome Call::RefuseAsIsOnly(const routing::Target& t) const {
  std::string what;
  for (const std::string& name : req_.as_is_only) what += (what.empty() ? "" : ", ") + name;
  // (as_is_only is noted only for a caller whose wire format a kind takes as written)
  const std::optional<providers::ProviderKind> kind = providers::AsIsKindOf(req_.dialect);
  const providers::ProviderFacts& facts = providers::FactsOf(kind.value_or(t.kind));
  GatewayError e = Err(ErrorClass::kInvalidRequest,
                       t.provider + "/" + t.model + " cannot take " + what + ": only " +
                           std::string(facts.as_is_api) +
                           " can, given the request as written (route this model to an " +
                           std::string(facts.name) + " provider, or leave them out)");
  e.provider = t.provider;
  return Fail(e, routing::Failure::Kind::kUnsupported);
}

awaitable<Outcome> Call::TryCloud(const routing::Target& t) {
  const config::ProviderConfig& pc = *t.provider_config;
  // (Only the API of the caller's own wire format can take what only it takes: no work for
  // another kind.)
  if (!req_.as_is_only.empty() && providers::AsIsKindOf(req_.dialect) != t.kind) {
    co_return RefuseAsIsOnly(t);
  }
  if (!providers::FactsOf(t.kind).takes_image_urls) {
    Status fetched = co_await FetchImageUrls();
    if (!fetched.ok()) co_return ImageFetchFailure(fetched, t.provider, committed_);
  }
  if (providers::FactsOf(t.kind).signs_tool_calls && !signatures_loaded_) {
    co_await LoadSignatures();
  }
  providers::TargetInfo info{t.provider, t.model, pc.api_key, pc.base_url};
  const providers::Translator* translator = snap_->TranslatorFor(t.provider);
  if (translator == nullptr) {  // (a plan names only enabled providers: a bug if reached)
    co_return Fail(Err(ErrorClass::kInternal, t.provider + " has no translator"),
                   routing::Failure::Kind::kUnsupported);
  }
  const providers::Translator& tr = *translator;
  auto up = embed_ ? tr.EncodeEmbeddings(*embed_, info) : tr.EncodeRequest(req_, info);
  // (What only a provider taking the body as is can honour was left out of the translation:
  // that, rather than what the translator then found missing, is why this target cannot.)
  if (!req_.as_is_only.empty() && !(up.ok() && up->as_is)) co_return RefuseAsIsOnly(t);
  if (!req_.account_refs.empty() && up.ok() && up->as_is && !pc.account_resources) {
    // (Every key shares the provider's account: what is in it is the operator's to share.)
    std::string what;
    for (const std::string& name : req_.account_refs) what += (what.empty() ? "" : ", ") + name;
    GatewayError e = Err(ErrorClass::kPermission,
                         t.provider + " does not let callers name what is in its account (" + what +
                             "): set account_resources: true on provider " + t.provider +
                             " in iris.yaml to allow it");
    e.provider = t.provider;
    co_return Fail(e, routing::Failure::Kind::kUnsupported);
  }
  if (!up.ok()) {
    // Another provider may take what this one cannot express; not this provider's failure.
    GatewayError e = api::FromStatus(up.status());
    e.provider = t.provider;
    co_return Fail(e, routing::Failure::Kind::kUnsupported);
  }
  target_dropped_ = std::move(up->dropped);
  const bool as_is = up->as_is;  // (the answer comes in the caller's own wire format)
  upstream::OutboundRequest out;
  out.method = up->method;
  out.url = std::move(up->url);
  out.headers = std::move(up->headers);
  const std::string_view list_header = providers::FactsOf(t.kind).list_header;
  for (const auto& [k, v] : pc.headers) {
    if (!list_header.empty() && http::EqualsIgnoreCase(k, list_header)) {
      auto same = std::find_if(out.headers.begin(), out.headers.end(),
                               [&k](const auto& h) { return http::EqualsIgnoreCase(h.first, k); });
      if (same != out.headers.end()) {
        same->second = v + "," + same->second;  // (the operator's, then the caller's)
        continue;
      }
    }
    out.headers.emplace_back(k, v);
  }
  out.body = std::move(up->body);
  upstream::Deadlines d;
  d.connect = plan_.timeouts.connect;
  d.first_byte = plan_.timeouts.first_token;
  d.idle = plan_.timeouts.idle;
  const auto remaining = start_ + plan_.timeouts.total - Clock::now();
  d.total = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(remaining), 1ms);

  // Errors name the upstream's host; callers see the provider's name instead (the URL is
  // parsed, the same way the client parses it, only when an error needs it).
  auto hide_peer = [&out, &t](const std::string& message) {
    auto url = upstream::ParseUrl(out.url);
    return api::HidePeer(message, url.ok() ? url->host : std::string(), t.provider);
  };
  auto& io = static_cast<asio::io_context&>((co_await asio::this_coro::executor).context());
  upstream::Client& client = gw_.ClientFor(io);
  // This attempt's own token: the caller going away cancels it, and so does a stream whose
  // first token does not arrive within first_token_ms (the upstream may send its headers, and
  // even a role chunk, long before any content).
  http::CancelToken attempt_cancel;
  auto linked = w_.cancel().OnCancel([&attempt_cancel] { attempt_cancel.Cancel(); });
  bool first_token_expired = false;
  asio::steady_timer first_token_timer(co_await asio::this_coro::executor,
                                       plan_.timeouts.first_token);
  if (req_.stream) {
    first_token_timer.async_wait(
        [this, &attempt_cancel, &first_token_expired](const boost::system::error_code& ec) {
          if (ec || current_->ttft_ms >= 0) return;  // cancelled, or the token came in time
          first_token_expired = true;
          attempt_cancel.Cancel();
        });
  }
  // A cancelled attempt reads as the deadline that cancelled it, when that is what happened.
  auto deadline_status = [&](const Status& s) {
    if (first_token_expired && upstream::IsCancelled(s)) {
      return Status(
          ErrorCode::kDeadlineExceeded,
          "no first token within " + std::to_string(plan_.timeouts.first_token.count()) + " ms");
    }
    return s;
  };
  auto t0 = Clock::now();
  auto ex = co_await client.Start(out, d, &attempt_cancel);
  waiting_ += Clock::now() - t0;
  if (!ex.ok()) {
    GatewayError e = api::FromStatus(deadline_status(ex.status()));
    e.provider = t.provider;
    e.message = t.provider + ": " + hide_peer(e.message);
    co_return Fail(e, KindOf(deadline_status(ex.status())));
  }
  const int status = ex->status();
  if (status < 200 || status > 299) {
    t0 = Clock::now();
    auto body = co_await ex->ReadAll(1 << 20);
    waiting_ += Clock::now() - t0;
    std::string retry_after(ex->headers().Get("retry-after"));
    GatewayError e = tr.DecodeError(status, body.ok() ? *body : "", retry_after);
    e.provider = t.provider;
    e.upstream_status = status;
    // A proxy's error page quoted in it may name the upstream's host.
    e.message = hide_peer(e.message);
    co_return Fail(e, routing::Failure::Kind::kHttpStatus);
  }
  if (!req_.stream) {
    t0 = Clock::now();
    auto body = co_await ex->ReadAll(64 << 20);
    waiting_ += Clock::now() - t0;
    if (!body.ok()) {
      if (body.status().code() == ErrorCode::kResourceExhausted) {
        // An answer too large to relay is the provider's fault (502), never a 429 that SDKs
        // would retry on their own.
        co_return Fail(Err(ErrorClass::kUpstream, t.provider + " answered with more than 64 MiB"),
                       routing::Failure::Kind::kMalformed);
      }
      GatewayError e = api::FromStatus(body.status());
      e.provider = t.provider;
      e.message = hide_peer(e.message);
      co_return Fail(e, KindOf(body.status()));
    }
    if (embed_) {
      auto vectors = tr.DecodeEmbeddings(*body);
      if (!vectors.ok() || vectors->vectors.size() != embed_->size()) {
        co_return Fail(
            Err(ErrorClass::kUpstream,
                t.provider + " answered embeddings iris cannot read: " +
                    (vectors.ok() ? std::to_string(vectors->vectors.size()) + " vectors for " +
                                        std::to_string(embed_->size()) + " inputs"
                                  : vectors.status().message())),
            routing::Failure::Kind::kMalformed);
      }
      current_->ttft_ms = Ms(Clock::now() - attempt_start_);
      co_return co_await DeliverEmbeddings(t, std::move(vectors).value());
    }
    auto resp = as_is ? tr.DecodeAsIsResponse(*body) : tr.DecodeResponse(*body);
    if (!resp.ok()) {
      GatewayError e = api::FromStatus(resp.status());
      e.error_class = ErrorClass::kUpstream;
      e.provider = t.provider;
      e.message = t.provider + " answered something iris cannot read: " + e.message;
      co_return Fail(e, routing::Failure::Kind::kMalformed);
    }
    current_->ttft_ms = Ms(Clock::now() - attempt_start_);
    co_return co_await DeliverResponse(t, std::move(resp).value());
  }
  // Streaming: SSE bytes -> events. Before the first token the wait is bounded by
  // first_token_ms; after it, by idle_ms between chunks (the client enforces idle too).
  auto stream = as_is ? tr.NewAsIsStreamTranslator() : tr.NewStreamTranslator();
  http::SseParser parser(static_cast<size_t>(config_->limits.max_stream_event_bytes));
  std::vector<http::SseEvent> sse;
  auto& exchange = *ex;
  auto next = [&](bool& end) -> awaitable<Result<std::vector<StreamEvent>>> {
    std::vector<StreamEvent> events;
    while (events.empty() && !end) {
      auto t1 = Clock::now();
      auto chunk = co_await exchange.ReadSome();
      waiting_ += Clock::now() - t1;
      if (!chunk.ok()) {
        Status s = deadline_status(chunk.status());
        co_return Status(s.code(), hide_peer(s.message()));
      }
      if (chunk->empty()) {
        end = true;
        auto tail = stream->OnEnd();
        if (!tail.ok()) co_return tail.status();
        for (auto& e : *tail) events.push_back(std::move(e));
        break;
      }
      sse.clear();
      parser.Feed(*chunk, sse);
      if (parser.overflowed()) {
        co_return DataLoss("an event of the stream is larger than " +
                           std::to_string(parser.max_event_bytes()) +
                           " bytes (limits.max_stream_event_bytes)");
      }
      for (const http::SseEvent& s : sse) {
        auto evs = stream->OnEvent(s);
        if (!evs.ok()) co_return evs.status();
        for (auto& e : *evs) events.push_back(std::move(e));
      }
    }
    co_return events;
  };
  co_return co_await DeliverEvents(t, next);
}

}  // namespace iris::gateway::proxy
