// Delivering an attempt's answer: stream events go to the caller once the first token is in
// hand (the commit point), a body goes at once; either way the summary learns the usage, the
// cost and the latencies.
#include <charconv>

#include "base/json.h"
#include "gateway/api/ai_gateway.h"
#include "gateway/api/embeddings.h"
#include "gateway/api/errors.h"
#include "gateway/api/json_schema.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

using boost::asio::awaitable;

namespace {
// `v` with `digits` decimals, as printf's "%.*f" writes it (without the locale's machinery).
std::string Fixed(double v, int digits) {
  char buf[400];  // (room for any double in fixed notation)
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, digits);
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

// What makes the first token (the commit point): any answer content, and of a provider's own
// stream what its translator marks as such (StreamEvent::as_is_content).
bool IsContent(const StreamEvent& e) {
  if (e.type == StreamEvent::Type::kAsIs) return e.as_is_content;
  if (e.type == StreamEvent::Type::kExtras) {  // a delta of members iris does not read
    return e.openai_extras != nullptr && e.openai_extras->MessageHoldsSomething();
  }
  return e.type != StreamEvent::Type::kStart && e.type != StreamEvent::Type::kFinish &&
         e.type != StreamEvent::Type::kUsage;
}

// How an answer breaks the caller's response schema, if it does: not JSON, or the first
// violation of the caller's own schema (which the provider may have received without the
// limits it refuses, as Anthropic does).
bool ChecksSchema(const ChatRequest& req) {
  return req.response_format && req.response_format->type == ResponseFormat::Type::kJsonSchema &&
         req.response_format->schema.is_object();
}
std::optional<std::string> OffSchema(const ChatRequest& req, const ChatResponse& r) {
  if (!ChecksSchema(req) || !r.tool_calls.empty() || r.finish_reason == FinishReason::kLength ||
      r.refused) {
    return std::nullopt;  // (an answer cut short by max_tokens, or refused, goes as such)
  }
  boost::system::error_code ec;
  const boost::json::value answer = boost::json::parse(r.text, ec);
  if (ec) return std::string("the answer is not JSON");
  return api::SchemaViolation(answer, req.response_format->schema);
}
}  // namespace

awaitable<Outcome> Call::DeliverEvents(const routing::Target& t, const NextEvents& next) {
  std::vector<StreamEvent> held;  // events before the first token
  streamed_signatures_.clear();   // (only this attempt's calls are answered)
  // The answer, folded from the events, for a non-streaming caller (of a source that only
  // streams, such as the local engine) or a streamed schema check.
  ChatResponse answer;
  const bool check_schema = req_.stream && ChecksSchema(req_);
  // A store_bodies answer is folded too, up to what may be stored.
  bool keep_answer = store_bodies_;
  Usage usage;
  bool end = false;
  bool finished = false;
  // A streamed answer goes out one write per batch of events (what one upstream read or one
  // engine wake produced), the head with the first batch, the last batch with the tail.
  std::string batch;
  bool commit_with_batch = false;
  while (!end) {
    auto events = co_await next(end);
    if (!events.ok()) {
      GatewayError e = api::FromStatus(events.status());
      e.provider = t.provider;
      if (e.message.find(t.provider) == std::string::npos) {
        e.message = t.provider + "/" + t.model + ": " + e.message;
      }
      Outcome o;
      if (t.kind != config::ProviderKind::kLocal) {
        o = Fail(e, events.status().code() == ErrorCode::kUnavailable
                        ? routing::Failure::Kind::kStreamBroken
                        : KindOf(events.status()));
      } else if (events.status().code() == ErrorCode::kUnimplemented) {
        o = Fail(e, routing::Failure::Kind::kUnsupported);
      } else {
        o = FailStatus(e, PseudoStatus(events.status()));
      }
      if (committed_) co_await w_.Finish(encoder_->StreamError(o.error));
      co_return o;
    }
    batch.clear();
    commit_with_batch = false;
    for (StreamEvent& e : *events) {
      if (e.type == StreamEvent::Type::kUsage) usage = e.usage;
      if (e.type == StreamEvent::Type::kToolCallStart && !e.signature.empty()) {
        streamed_signatures_.push_back({e.id, e.name, {}, e.signature});
      }
      if (e.type == StreamEvent::Type::kFinish) finished = true;
      if (!req_.stream) {
        if (IsContent(e) && current_->ttft_ms < 0) {
          current_->ttft_ms = Ms(Clock::now() - attempt_start_);
        }
        FoldStreamEvent(answer, e);
        continue;
      }
      if (keep_answer &&
          static_cast<int64_t>(answer.text.size()) > config_->limits.max_stored_body_bytes) {
        keep_answer = false;
        summary_.bodies_not_kept = true;
      }
      if (check_schema || keep_answer) FoldStreamEvent(answer, e);
      if (!committed_ && !commit_with_batch) {
        held.push_back(std::move(e));
        if (!IsContent(held.back()) && held.back().type != StreamEvent::Type::kFinish) continue;
        // First token (or an empty but complete answer): commit to this target.
        current_->ttft_ms = Ms(Clock::now() - attempt_start_);
        summary_.ttft_ms = Ms(Clock::now() - start_);
        summary_.provider = t.provider;
        summary_.model = t.model;
        commit_with_batch = true;
        for (const StreamEvent& he : held) batch += encoder_->Event(he);
        held.clear();
        continue;
      }
      batch += encoder_->Event(e);
    }
    if (!req_.stream || (end && finished)) continue;  // a clean end sends its batch with the tail
    summary_.bytes_out += static_cast<int64_t>(batch.size());
    Status s = OkStatus();
    if (commit_with_batch) {
      committed_ = true;
      s = co_await w_.StartStream(200, IrisHeaders(SseHeaders()), batch);
    } else if (!batch.empty()) {
      s = co_await w_.Write(batch);
    }
    if (!s.ok()) {
      co_return FailStatus(Err(ErrorClass::kInvalidRequest, "the client went away"), 400);
    }
  }
  if (!finished) {
    // The translators already refuse a stream without its terminator; this guards sources
    // (the local engine) that end without a finish event.
    GatewayError e =
        Err(ErrorClass::kUpstream, t.provider + "/" + t.model + ": the answer ended early");
    e.provider = t.provider;
    Outcome o = Fail(e, routing::Failure::Kind::kStreamBroken);
    if (committed_) co_await w_.Finish(encoder_->StreamError(o.error));
    co_return o;
  }
  if (!req_.stream) {
    if (answer.model.empty()) answer.model = t.model;
    if (answer.id.empty()) answer.id = summary_.request_id;
    answer.usage = usage;
    co_return co_await DeliverResponse(t, std::move(answer));
  }
  if (std::optional<std::string> broken = check_schema ? OffSchema(req_, answer) : std::nullopt) {
    // Its bytes are out (once committed), so it ends with an error event instead of its normal
    // end. Not yet committed (no content came), it may be tried again.
    GatewayError e = SchemaBroken(t, *broken, usage);
    if (!committed_ && !commit_with_batch) {
      co_return Fail(e, routing::Failure::Kind::kOffSchema);  // (nothing encoded yet)
    }
    // The encoder has the answer (even when its first batch has not gone out yet): it ends.
    summary_.usage = discarded_usage_;
    summary_.cost_usd = discarded_cost_usd_;
    const bool started = committed_;
    committed_ = true;
    Outcome o = Fail(e, routing::Failure::Kind::kOffSchema);
    std::string tail = std::move(batch) + encoder_->StreamError(o.error);
    summary_.bytes_out += static_cast<int64_t>(tail.size());
    if (started) {
      co_await w_.Finish(tail);
    } else {
      Status s = co_await w_.StartStream(200, IrisHeaders(SseHeaders()), tail);
      if (s.ok()) co_await w_.Finish();
    }
    co_return o;
  }
  CountAnswer(t, usage);
  summary_.provider = t.provider;
  summary_.model = t.model;
  summary_.latency_ms = Ms(Clock::now() - start_);
  summary_.overhead_ms = std::max(0.0, summary_.latency_ms - Ms(waiting_));
  current_->outcome = "ok";
  current_->latency_ms = Ms(Clock::now() - attempt_start_);
  // The last batch, then (for an answer that never committed: only kStart/kUsage and a clean
  // end) the held events, then the stream's end.
  if (keep_answer) {
    answer.usage = usage;
    if (answer.model.empty()) answer.model = t.model;
    if (answer.id.empty()) answer.id = summary_.request_id;
    kept_answer_ = std::move(answer);
  }
  std::string tail = std::move(batch);
  for (const StreamEvent& he : held) tail += encoder_->Event(he);
  if (responses_) {
    // (A local: GCC 12 mishandles temporaries with destructors in a co_await.)
    std::string as_is_provider = encoder_->responses_as_is() ? t.provider : std::string();
    co_await KeepThread(encoder_->streamed_answer(), as_is_provider,
                        encoder_->responses_as_is_output());
  }
  co_await KeepSignatures(streamed_signatures_);
  tail += StreamFinish();
  summary_.bytes_out += static_cast<int64_t>(tail.size());
  if (!committed_) {
    committed_ = true;
    Status s = co_await w_.StartStream(200, IrisHeaders(SseHeaders()), tail);
    if (s.ok()) co_await w_.Finish();
  } else {
    co_await w_.Finish(tail);
  }
  co_return Outcome::Delivered();
}

awaitable<Outcome> Call::DeliverResponse(const routing::Target& t, ChatResponse r) {
  if (std::optional<std::string> broken = OffSchema(req_, r)) {
    co_return Fail(SchemaBroken(t, *broken, r.usage), routing::Failure::Kind::kOffSchema);
  }
  if (r.model.empty()) r.model = t.model;
  if (r.created == 0) r.created = summary_.start_unix_ms / 1000;  // a real time, never 0
  RecordWholeAnswer(t, r.usage);
  if (store_bodies_) kept_answer_ = r;
  if (responses_) {
    const bool as_is = r.as_is && r.as_is_dialect == Dialect::kResponses;
    std::string as_is_provider = as_is ? t.provider : std::string();  // (GCC 12: see above)
    const boost::json::array* output = as_is ? api::ArrayField(*r.as_is, "output") : nullptr;
    co_await KeepThread(r, as_is_provider, output);
  }
  co_await KeepSignatures(r.tool_calls);
  // (The body is a local: GCC 12 mishandles temporaries with destructors in a co_await.)
  std::string body = AnswerBody(r);
  co_return co_await SendWholeAnswer(std::move(body));
}

std::string Call::AnswerBody(const ChatResponse& r) {
  JsonScratch scratch;
  return encoder_->Response(r, IrisObject(scratch.storage()), summary_.cost_usd);
}

std::string Call::StreamFinish() {
  JsonScratch scratch;
  return encoder_->Finish(IrisObject(scratch.storage()), summary_.cost_usd);
}

awaitable<Outcome> Call::DeliverEmbeddings(const routing::Target& t, EmbeddingResponse r) {
  if (r.model.empty()) r.model = t.model;
  RecordWholeAnswer(t, r.usage);
  const boost::json::object iris = IrisObject();
  std::string body =
      summary_.dialect == Dialect::kAiGatewayEmbeddings
          ? api::EncodeAiGatewayEmbeddings(r, dropped_, &iris, summary_.cost_usd)
          : api::EncodeEmbeddingResponse(r, embed_->base64, &iris, summary_.cost_usd);
  co_return co_await SendWholeAnswer(std::move(body));
}

GatewayError Call::SchemaBroken(const routing::Target& t, const std::string& broken,
                                const Usage& usage) {
  // The provider billed the answer even though the caller does not get it whole: it counts.
  AddDiscarded(t, usage);
  GatewayError e = Err(ErrorClass::kUpstream, t.provider + "/" + t.model +
                                                  ": the answer does not keep the response "
                                                  "schema (" +
                                                  broken + ")");
  e.provider = t.provider;
  return e;
}

void Call::AddDiscarded(const routing::Target& t, const Usage& usage) {
  if (!usage.reported) return;
  discarded_usage_ += usage;
  if (std::optional<double> cost = Cost(t, usage)) discarded_cost_usd_ += *cost;
}

void Call::CountAnswer(const routing::Target& t, const Usage& usage) {
  summary_.usage = usage;
  summary_.cost_usd = Cost(t, usage);
  if (discarded_usage_.reported) {  // (answers discarded on the way count too)
    summary_.usage += discarded_usage_;
    // (The answer's own cost unknown, the whole is: a budget keeps its worst case.)
    if (summary_.cost_usd) *summary_.cost_usd += discarded_cost_usd_;
  }
}

void Call::RecordWholeAnswer(const routing::Target& t, const Usage& usage) {
  CountAnswer(t, usage);
  summary_.provider = t.provider;
  summary_.model = t.model;
  current_->outcome = "ok";
  const Clock::time_point now = Clock::now();
  current_->latency_ms = Ms(now - attempt_start_);
  summary_.latency_ms = Ms(now - start_);
  summary_.ttft_ms = summary_.latency_ms;
  summary_.overhead_ms = std::max(0.0, summary_.latency_ms - Ms(waiting_));
}

awaitable<Outcome> Call::SendWholeAnswer(std::string body) {
  summary_.bytes_out = static_cast<int64_t>(body.size());
  http::Headers h = IrisHeaders(JsonHeaders());
  h.Add("x-iris-overhead-ms", Fixed(summary_.overhead_ms, 3));
  if (summary_.cost_usd) h.Add("x-iris-cost-usd", Fixed(*summary_.cost_usd, 6));
  committed_ = true;
  co_await w_.Send(200, std::move(h), std::move(body));
  co_return Outcome::Delivered();
}
}  // namespace iris::gateway::proxy
