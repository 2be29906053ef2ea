// The request pipeline. A Call reads top to bottom: decode -> plan -> for each target and
// retry: attempt -> deliver or fall over -> summary. Streams are committed to the caller only
// when the first token is in hand, so any failure before it falls over invisibly.
#include "gateway/proxy/gateway.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <charconv>
#include <chrono>
#include <map>
#include <random>

#include "base/base64.h"
#include "base/json.h"
#include "gateway/api/anthropic.h"
#include "gateway/api/errors.h"
#include "gateway/api/openai.h"
#include "gateway/http/sse.h"
#include "gateway/observe/web_assets.h"
#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/gemini/gemini_translator.h"
#include "gateway/providers/local/local_provider.h"
#include "gateway/providers/openai/openai_translator.h"
#include "gateway/proxy/image_fetch.h"
#include "gateway/proxy/request_checks.h"
#include "gateway/routing/plan.h"
#include "gateway/routing/retry.h"
#include "gateway/upstream/address_policy.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;

namespace {

GatewayError Err(ErrorClass error_class, std::string message) {
  GatewayError e;
  e.error_class = error_class;
  e.message = std::move(message);
  return e;
}

AttemptRecord Attempt(const std::string& provider, const std::string& model, std::string outcome) {
  AttemptRecord a;
  a.provider = provider;
  a.model = model;
  a.outcome = std::move(outcome);
  return a;
}

// Cuts `s` to at most `max` bytes at a UTF-8 character boundary, marking the cut.
void Truncate(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  s += "...";
}
constexpr size_t kMaxStoredError = 2048;  // per request and per attempt, in the request log

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Built outside the coroutines: GCC 12 miscompiles braced lists of string literals held in a
// coroutine frame ("array used as initializer").
http::Headers JsonHeaders() { return http::Headers{{"content-type", "application/json"}}; }
http::Headers MetricsHeaders() {
  http::Headers h;
  h.Add("content-type", std::string(observe::GatewayMetrics::kContentType));
  return h;
}
http::Headers AssetHeaders(std::string_view content_type) {
  http::Headers h;
  h.Add("content-type", std::string(content_type));
  h.Add("cache-control", "no-cache");
  return h;
}
http::Headers SseHeaders() {
  return http::Headers{{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}};
}

// The dialect's encoders behind one face.
class Encoder {
 public:
  // `created`: the Unix seconds a stream reports when its source gives none.
  Encoder(Dialect dialect, const ChatRequest& req, int64_t created)
      : dialect_(dialect), openai_(req.include_usage, created), anthropic_() {}
  std::string Response(const ChatResponse& r, const json::object& iris,
                       std::optional<double> cost) const {
    return dialect_ == Dialect::kOpenAI ? api::EncodeOpenAIChatResponse(r, &iris, cost)
                                        : api::EncodeAnthropicResponse(r, &iris, cost);
  }
  std::string Event(const StreamEvent& e) {
    return dialect_ == Dialect::kOpenAI ? openai_.Encode(e) : anthropic_.Encode(e);
  }
  std::string Finish(const json::object& iris, std::optional<double> cost) {
    return dialect_ == Dialect::kOpenAI ? openai_.Finish(&iris, cost)
                                        : anthropic_.Finish(&iris, cost);
  }
  std::string StreamError(const GatewayError& e) {
    return dialect_ == Dialect::kOpenAI ? openai_.Error(e) : anthropic_.Error(e);
  }

 private:
  Dialect dialect_;
  api::OpenAIStreamEncoder openai_;
  api::AnthropicStreamEncoder anthropic_;
};

std::string ErrorBody(Dialect dialect, const GatewayError& e) {
  return dialect == Dialect::kOpenAI ? api::OpenAIErrorBody(e) : api::AnthropicErrorBody(e);
}

// Folds neutral stream events into one response (for non-streaming calls to a source that
// only streams, such as the local engine).
class Aggregator {
 public:
  void Add(const StreamEvent& e) {
    switch (e.type) {
      case StreamEvent::Type::kStart:
        if (!e.id.empty()) r_.id = e.id;
        if (!e.model.empty()) r_.model = e.model;
        if (e.created != 0) r_.created = e.created;
        break;
      case StreamEvent::Type::kTextDelta:
        r_.text += e.text;
        break;
      case StreamEvent::Type::kToolCallStart:
        if (r_.tool_calls.size() <= static_cast<size_t>(e.index)) r_.tool_calls.resize(e.index + 1);
        r_.tool_calls[e.index].id = e.id;
        r_.tool_calls[e.index].name = e.name;
        break;
      case StreamEvent::Type::kToolCallDelta:
        if (r_.tool_calls.size() <= static_cast<size_t>(e.index)) r_.tool_calls.resize(e.index + 1);
        r_.tool_calls[e.index].arguments += e.text;
        break;
      case StreamEvent::Type::kFinish:
        r_.finish_reason = e.finish_reason;
        break;
      case StreamEvent::Type::kUsage:
        r_.usage = e.usage;
        break;
    }
  }
  ChatResponse& response() { return r_; }

 private:
  ChatResponse r_;
};

// A message from the engine thread to the waiting request coroutine.
struct LocalMsg {
  bool has_event = false;
  StreamEvent event;
  std::optional<Status> done;  // set on the last message
};
using LocalChannel =
    asio::experimental::concurrent_channel<void(boost::system::error_code, LocalMsg)>;

bool IsContent(const StreamEvent& e) {
  return e.type == StreamEvent::Type::kTextDelta || e.type == StreamEvent::Type::kToolCallStart ||
         e.type == StreamEvent::Type::kToolCallDelta;
}

// "req_" + a ULID: 48 bits of Unix milliseconds and 80 random bits in Crockford base32. Ids
// sort by time and never repeat, however long the process runs (the request log's primary
// key relies on it).
std::string NewRequestId() {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  const uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  // 10 digits of time (50 bits, the top 2 zero), then 16 digits of randomness (80 bits).
  std::string out = "req_";
  out.reserve(4 + 26);
  for (int shift = 45; shift >= 0; shift -= 5) out.push_back(kAlphabet[(ms >> shift) & 31]);
  const uint64_t hi = rng() & 0xffffffffffULL;  // 40 bits
  const uint64_t lo = rng() & 0xffffffffffULL;  // 40 bits
  for (int shift = 35; shift >= 0; shift -= 5) out.push_back(kAlphabet[(hi >> shift) & 31]);
  for (int shift = 35; shift >= 0; shift -= 5) out.push_back(kAlphabet[(lo >> shift) & 31]);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// One chat request from decode to summary.
class Call {
 public:
  Call(Gateway& gw, http::Request& req, http::ResponseWriter& w, Dialect dialect)
      : gw_(gw),
        http_req_(req),
        w_(w),
        snap_(gw.snapshot()),
        config_(snap_->config),
        start_(Clock::now()) {
    summary_.dialect = dialect;
    summary_.request_id = NewRequestId();
    summary_.bytes_in = static_cast<int64_t>(req.body.size());
    summary_.start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  }

  awaitable<void> Run();

 private:
  // How one attempt ended.
  struct Outcome {
    enum class Kind { kDelivered, kFailed, kFailedAfterCommit } kind = Kind::kFailed;
    GatewayError error;
    bool retryable = false;  // worth another try of the same target
    bool fallback = true;    // worth trying the next target
    bool breaker = false;    // counts against the target's circuit breaker
  };

  awaitable<Outcome> TryCloud(const routing::Target& t);
  awaitable<Outcome> TryLocal(const routing::Target& t);
  // Reads events from `next` until the end; commits the stream on the first content event.
  awaitable<Outcome> DeliverEvents(
      const routing::Target& t,
      const std::function<awaitable<Result<std::vector<StreamEvent>>>(bool& end)>& next);
  awaitable<Outcome> DeliverResponse(const routing::Target& t, ChatResponse response);
  // `log_detail`, when set, goes to the request log instead of the caller-facing message.
  awaitable<void> SendError(const GatewayError& e, std::string log_detail = {});
  awaitable<Status> FetchImageUrls();
  std::optional<double> Cost(const routing::Target& t, const Usage& u) const;
  json::object IrisObject() const;
  http::Headers IrisHeaders(http::Headers h) const;
  // An attempt's failure, classified by routing's table (retry.h).
  Outcome Fail(GatewayError e, routing::Failure::Kind kind) const;
  Outcome FailStatus(GatewayError e, int pseudo_status) const;
  // The caller's request cannot be served by any target (a bad or oversized image): 400 or
  // 413, no retry, no fallback, no breaker.
  Outcome CallerFault(const Status& s) const;
  // Image URLs this target needs fetched: when iris does not fetch them (image_fetch off, or
  // too many), another target that takes URLs itself may (kUnsupported); a URL that could not
  // be fetched as an image is the caller's fault.
  Outcome ImageFetchFailure(const Status& s, const routing::Target& t) const;
  void Finish();

  Gateway& gw_;
  http::Request& http_req_;
  http::ResponseWriter& w_;
  std::shared_ptr<const Gateway::Snapshot> snap_;  // the configuration this request runs under
  std::shared_ptr<const config::Config> config_;
  Clock::time_point start_;
  ChatRequest req_;
  routing::Plan plan_;
  RequestSummary summary_;
  Clock::duration waiting_{};  // time spent awaiting upstreams / the engine
  std::optional<Encoder> encoder_;
  bool committed_ = false;
  bool images_fetched_ = false;
  std::string image_fetch_detail_;  // why an image URL could not be fetched (operator's eyes only)
  Clock::time_point deadline_;      // the route's total deadline, image fetches included
  AttemptRecord* current_ = nullptr;
  Clock::time_point attempt_start_;
};

awaitable<void> Call::Run() {
  // 1. Decode the caller's dialect.
  auto parsed = summary_.dialect == Dialect::kOpenAI ? api::ParseOpenAIChatRequest(http_req_.body)
                                                     : api::ParseAnthropicRequest(http_req_.body);
  if (!parsed.ok()) {
    co_await SendError(api::FromStatus(parsed.status()));
    co_return;
  }
  req_ = std::move(parsed).value();
  req_.dialect = summary_.dialect;
  // Bounds and names before any work: nothing a caller sent reaches a route, a path, a
  // header, a metric or a log row unchecked.
  if (Status checked = CheckRequest(req_, *config_); !checked.ok()) {
    GatewayError e = api::FromStatus(checked);
    if (checked.code() == ErrorCode::kOutOfRange) e.error_class = ErrorClass::kPayloadTooLarge;
    co_await SendError(e);
    co_return;
  }
  summary_.requested_model = req_.model;
  summary_.stream = req_.stream;
  encoder_.emplace(summary_.dialect, req_, summary_.start_unix_ms / 1000);

  // 2. Plan the route.
  thread_local routing::Rng rng{std::random_device{}()};
  auto plan = routing::PlanRoute(*config_, req_, rng);
  if (!plan.ok()) {
    co_await SendError(api::FromStatus(plan.status()));
    co_return;
  }
  plan_ = std::move(plan).value();
  summary_.alias = plan_.alias;
  const Clock::time_point deadline = start_ + plan_.timeouts.total;
  deadline_ = deadline;
  const routing::RetryPolicy policy(config_->routing);
  int attempts_made = 0;  // bounded by limits.max_attempts across every target

  // 3. Try each target, retrying retryable failures with backoff.
  std::optional<GatewayError> last_error;
  for (const routing::Target& t : plan_.targets) {
    // (Checked before the breaker: Allow() on an open breaker past its cooldown makes this
    // request its probe, which must then really be sent.)
    if (attempts_made >= config_->limits.max_attempts) break;
    const std::shared_ptr<routing::CircuitBreaker> held = snap_->breakers->Get(t.Key());
    routing::CircuitBreaker& breaker = *held;
    if (!breaker.Allow(Clock::now())) {
      AttemptRecord skipped = Attempt(t.provider, t.model, "skipped");
      skipped.error = "circuit breaker open";
      skipped.error_class = "overloaded";
      summary_.attempts.push_back(skipped);
      if (!last_error) {
        last_error = Err(ErrorClass::kOverloaded,
                         t.Key() + " is paused after repeated failures (circuit open)");
      }
      continue;
    }
    bool next_target = false;
    for (int attempt = 0; attempt <= plan_.retries_per_target && !next_target; ++attempt) {
      if (Clock::now() >= deadline) break;
      if (attempts_made >= config_->limits.max_attempts) break;
      ++attempts_made;
      summary_.attempts.push_back(Attempt(t.provider, t.model, "error"));
      current_ = &summary_.attempts.back();
      attempt_start_ = Clock::now();
      // (Not a conditional expression: GCC 12 destroys a co_await temporary twice in one.)
      Outcome o;
      if (t.kind == config::ProviderKind::kLocal) {
        o = co_await TryLocal(t);
      } else {
        o = co_await TryCloud(t);
      }
      current_ = &summary_.attempts.back();  // (push_back above may not move it again)
      current_->latency_ms = Ms(Clock::now() - attempt_start_);
      if (o.kind == Outcome::Kind::kDelivered) {
        current_->outcome = "ok";
        breaker.OnSuccess(Clock::now());
        summary_.provider = t.provider;
        summary_.model = t.model;
        Finish();
        co_return;
      }
      current_->error = o.error.message;
      current_->error_class = std::string(api::ErrorClassName(o.error.error_class));
      current_->status = o.error.upstream_status;
      // Only the provider's own failures count against its breaker: not the caller's invalid
      // or unsupported request, not a full local queue, not a caller who left.
      if (o.breaker && !w_.client_gone()) breaker.OnFailure(Clock::now());
      if (w_.client_gone()) {  // the caller left: nothing more to try or to say
        summary_.provider = t.provider;
        summary_.model = t.model;
        summary_.error_class = "client_gone";
        summary_.error = "the client disconnected";
        if (!committed_) summary_.http_status = 499;
        Finish();
        co_return;
      }
      if (o.kind == Outcome::Kind::kFailedAfterCommit) {
        summary_.provider = t.provider;
        summary_.model = t.model;
        summary_.error_class = current_->error_class;
        summary_.error = o.error.message;
        Finish();
        co_return;
      }
      last_error = o.error;
      if (!o.retryable) {
        if (!o.fallback) {
          co_await SendError(o.error, std::exchange(image_fetch_detail_, {}));
          co_return;
        }
        next_target = true;
        break;
      }
      if (attempt == plan_.retries_per_target) break;
      // Back off, unless the wait would outlast the request or the upstream asks for too long.
      const auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto decision = policy.Decide(attempt, o.error.retry_after_s, remaining, rng);
      if (decision.action == routing::RetryPolicy::Decision::Action::kFallOver) break;
      asio::steady_timer timer(co_await asio::this_coro::executor, decision.delay);
      co_await timer.async_wait(asio::as_tuple(use_awaitable));
    }
  }
  // 4. Nothing answered.
  GatewayError e =
      last_error.value_or(Err(ErrorClass::kOverloaded, "no target could take the request"));
  if (summary_.attempts.size() > 1) {
    std::string detail;
    for (const AttemptRecord& a : summary_.attempts) {
      if (!detail.empty()) detail += "; ";
      detail += a.provider + "/" + a.model + ": " + (a.error.empty() ? a.outcome : a.error);
    }
    e.message =
        "all " + std::to_string(summary_.attempts.size()) + " attempts failed (" + detail + ")";
  }
  if (attempts_made >= config_->limits.max_attempts &&
      e.error_class != ErrorClass::kInvalidRequest) {
    e.message += " (stopped after " + std::to_string(attempts_made) +
                 " attempts: limits.max_attempts in iris.yaml)";
  }
  if (Clock::now() >= deadline && e.error_class != ErrorClass::kInvalidRequest) {
    e.error_class = ErrorClass::kUpstreamTimeout;
    e.message = "no answer within the route's total timeout of " +
                std::to_string(plan_.timeouts.total.count()) + " ms: " + e.message;
  }
  co_await SendError(e);
}

Call::Outcome Call::Fail(GatewayError e, routing::Failure::Kind kind) const {
  routing::Failure f;
  f.kind = kind;
  f.http_status = e.upstream_status;
  f.committed = committed_;
  if (kind == routing::Failure::Kind::kHttpStatus && f.http_status == 0) f.http_status = 500;
  Outcome o;
  o.kind = committed_ ? Outcome::Kind::kFailedAfterCommit : Outcome::Kind::kFailed;
  o.retryable = routing::IsRetryable(f);
  o.fallback = routing::ShouldFallback(f);
  o.breaker = routing::CountsAgainstBreaker(f);
  o.error = std::move(e);
  return o;
}

// Failures that are not an upstream's HTTP answer (the local engine, a request a translator
// cannot express) are classified as the HTTP status that means the same: 400 the caller's
// fault, 501 "this target cannot do it" (fall over, no retry), 503 busy (retry, fall over).
Call::Outcome Call::FailStatus(GatewayError e, int pseudo_status) const {
  routing::Failure f;
  f.kind = routing::Failure::Kind::kHttpStatus;
  f.http_status = pseudo_status;
  f.committed = committed_;
  Outcome o;
  o.kind = committed_ ? Outcome::Kind::kFailedAfterCommit : Outcome::Kind::kFailed;
  o.retryable = routing::IsRetryable(f);
  o.fallback = routing::ShouldFallback(f);
  o.breaker = routing::CountsAgainstBreaker(f) && pseudo_status >= 500;
  o.error = std::move(e);
  return o;
}

Call::Outcome Call::CallerFault(const Status& s) const {
  GatewayError e = api::FromStatus(s);
  if (s.code() == ErrorCode::kOutOfRange) e.error_class = ErrorClass::kPayloadTooLarge;
  Outcome o = FailStatus(std::move(e), 400);
  o.fallback = false;
  o.breaker = false;
  return o;
}

Call::Outcome Call::ImageFetchFailure(const Status& s, const routing::Target& t) const {
  if (s.code() != ErrorCode::kUnimplemented) return CallerFault(s);
  GatewayError e = api::FromStatus(s);
  e.provider = t.provider;
  return Fail(std::move(e), routing::Failure::Kind::kUnsupported);
}

namespace {
// The routing failure kind of a transport or decode error.
routing::Failure::Kind KindOf(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kDeadlineExceeded:
      return routing::Failure::Kind::kTimeout;
    case ErrorCode::kDataLoss:
      return routing::Failure::Kind::kMalformed;
    default:
      return routing::Failure::Kind::kConnect;
  }
}
// Local engine failures as the HTTP status that means the same.
int PseudoStatus(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kUnimplemented:
      return 501;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kInternal:
      return 500;
    default:
      return 400;
  }
}
}  // namespace

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
          "messages[" + std::to_string(mi) + "].content[" + std::to_string(ci) + "]";
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

awaitable<Call::Outcome> Call::TryCloud(const routing::Target& t) {
  const config::ProviderConfig& pc = *t.provider_config;
  if (t.kind == config::ProviderKind::kGemini) {
    Status fetched = co_await FetchImageUrls();
    if (!fetched.ok()) co_return ImageFetchFailure(fetched, t);
  }
  providers::TargetInfo info{t.provider, t.model, pc.api_key, pc.base_url};
  const providers::Translator& tr = gw_.TranslatorFor(t.kind);
  auto up = tr.EncodeRequest(req_, info);
  if (!up.ok()) {
    // Another provider may take what this one cannot express; not this provider's failure.
    GatewayError e = api::FromStatus(up.status());
    e.provider = t.provider;
    co_return Fail(e, routing::Failure::Kind::kUnsupported);
  }
  upstream::OutboundRequest out;
  out.method = up->method;
  out.url = std::move(up->url);
  out.headers = std::move(up->headers);
  for (const auto& [k, v] : pc.headers) out.headers.emplace_back(k, v);
  out.body = std::move(up->body);
  upstream::Deadlines d;
  d.connect = plan_.timeouts.connect;
  d.first_byte = plan_.timeouts.first_token;
  d.idle = plan_.timeouts.idle;
  const auto remaining = start_ + plan_.timeouts.total - Clock::now();
  d.total = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(remaining), 1ms);

  // The host errors may name, hidden from callers (the client parses the URL the same way).
  const std::string upstream_host = [&out] {
    auto url = upstream::ParseUrl(out.url);
    return url.ok() ? url->host : std::string();
  }();
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
    e.message = t.provider + ": " + api::HidePeer(e.message, upstream_host, t.provider);
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
    e.message = api::RedactSecrets(e.message);
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
      e.message = api::HidePeer(e.message, upstream_host, t.provider);
      co_return Fail(e, KindOf(body.status()));
    }
    auto resp = tr.DecodeResponse(*body);
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
  auto stream = tr.NewStreamTranslator();
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
        co_return Status(s.code(), api::HidePeer(s.message(), upstream_host, t.provider));
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

awaitable<Call::Outcome> Call::TryLocal(const routing::Target& t) {
  providers::LocalProvider* local = gw_.options_.local;
  if (local == nullptr) {
    co_return Fail(Err(ErrorClass::kOverloaded,
                       "the local model is not loaded (start iris serve with "
                       "--model, or run `iris pull smolvlm2-256m`)"),
                   routing::Failure::Kind::kUnsupported);
  }
  Status fetched = co_await FetchImageUrls();
  if (!fetched.ok()) co_return ImageFetchFailure(fetched, t);
  auto executor = co_await asio::this_coro::executor;
  auto channel = std::make_shared<LocalChannel>(executor, 4096);
  auto stop = std::make_shared<std::atomic<bool>>(false);
  auto on_cancel = w_.cancel().OnCancel([stop] { stop->store(true); });
  providers::LocalSink sink;
  sink.on_event = [channel, stop](const StreamEvent& e) {
    if (stop->load()) return false;
    // The buffer is large; a full one means the request coroutine stalled: wait for it.
    while (!channel->try_send(boost::system::error_code{}, LocalMsg{true, e, std::nullopt})) {
      if (stop->load() || !channel->is_open()) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  };
  sink.on_done = [channel, stop](const Status& s) {
    while (!channel->try_send(boost::system::error_code{}, LocalMsg{false, StreamEvent{}, s})) {
      if (!channel->is_open()) return;
      std::this_thread::sleep_for(1ms);
    }
  };
  Status submitted = local->Submit(req_, sink);
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
  // Closing the channel on the way out tells the engine thread nobody listens any more.
  struct Closer {
    std::shared_ptr<LocalChannel> ch;
    std::shared_ptr<std::atomic<bool>> stop;
    ~Closer() {
      stop->store(true);
      ch->close();
    }
  } closer{channel, stop};
  Outcome o =
      co_await DeliverEvents(t, [&](bool& end) -> awaitable<Result<std::vector<StreamEvent>>> {
        using namespace asio::experimental::awaitable_operators;
        std::vector<StreamEvent> events;
        // Before the first token the engine may be queued or prefilling: first_token_ms.
        const auto limit = current_->ttft_ms < 0 ? plan_.timeouts.first_token : plan_.timeouts.idle;
        asio::steady_timer timer(executor, limit);
        auto t1 = Clock::now();
        auto r = co_await (channel->async_receive(asio::as_tuple(use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(use_awaitable)));
        waiting_ += Clock::now() - t1;
        if (r.index() == 1) {
          co_return Status(ErrorCode::kDeadlineExceeded, "the local model produced nothing for " +
                                                             std::to_string(limit.count()) + " ms");
        }
        auto [ec, msg] = std::get<0>(std::move(r));
        if (ec)
          co_return Status(ErrorCode::kUnavailable, "the local model stopped: " + ec.message());
        if (msg.has_event) events.push_back(std::move(msg.event));
        if (msg.done) {
          end = true;
          if (!msg.done->ok()) co_return *msg.done;
        }
        co_return events;
      });
  co_return o;
}

awaitable<Call::Outcome> Call::DeliverEvents(
    const routing::Target& t,
    const std::function<awaitable<Result<std::vector<StreamEvent>>>(bool& end)>& next) {
  std::vector<StreamEvent> held;  // events before the first token
  Aggregator agg;
  Usage usage;
  bool end = false;
  bool finished = false;
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
      if (committed_) {
        co_await w_.Write(encoder_->StreamError(o.error));
        co_await w_.Finish();
      }
      co_return o;
    }
    for (StreamEvent& e : *events) {
      if (e.type == StreamEvent::Type::kUsage) usage = e.usage;
      if (e.type == StreamEvent::Type::kFinish) finished = true;
      if (!req_.stream) {
        if (IsContent(e) && current_->ttft_ms < 0) {
          current_->ttft_ms = Ms(Clock::now() - attempt_start_);
        }
        agg.Add(e);
        continue;
      }
      if (!committed_) {
        held.push_back(std::move(e));
        if (!IsContent(held.back()) && held.back().type != StreamEvent::Type::kFinish) continue;
        // First token (or an empty but complete answer): commit to this target.
        current_->ttft_ms = Ms(Clock::now() - attempt_start_);
        summary_.ttft_ms = Ms(Clock::now() - start_);
        summary_.provider = t.provider;
        summary_.model = t.model;
        Status s = co_await w_.StartStream(200, IrisHeaders(SseHeaders()));
        committed_ = true;
        std::string bytes;
        for (const StreamEvent& he : held) bytes += encoder_->Event(he);
        held.clear();
        summary_.bytes_out += static_cast<int64_t>(bytes.size());
        if (s.ok()) s = co_await w_.Write(bytes);
        if (!s.ok()) {
          co_return FailStatus(Err(ErrorClass::kInvalidRequest, "the client went away"), 400);
        }
        continue;
      }
      std::string bytes = encoder_->Event(e);
      summary_.bytes_out += static_cast<int64_t>(bytes.size());
      if (!bytes.empty()) {
        Status s = co_await w_.Write(bytes);
        if (!s.ok()) {
          co_return FailStatus(Err(ErrorClass::kInvalidRequest, "the client went away"), 400);
        }
      }
    }
  }
  if (!finished) {
    // The translators already refuse a stream without its terminator; this guards sources
    // (the local engine) that end without a finish event.
    GatewayError e =
        Err(ErrorClass::kUpstream, t.provider + "/" + t.model + ": the answer ended early");
    e.provider = t.provider;
    Outcome o = Fail(e, routing::Failure::Kind::kStreamBroken);
    if (committed_) {
      co_await w_.Write(encoder_->StreamError(o.error));
      co_await w_.Finish();
    }
    co_return o;
  }
  if (!req_.stream) {
    ChatResponse& r = agg.response();
    if (r.model.empty()) r.model = t.model;
    if (r.id.empty()) r.id = summary_.request_id;
    r.usage = usage;
    co_return co_await DeliverResponse(t, std::move(r));
  }
  if (!committed_) {  // only kStart/kUsage arrived and then a clean end: commit an empty answer
    Status s = co_await w_.StartStream(200, IrisHeaders(SseHeaders()));
    committed_ = true;
    std::string bytes;
    for (const StreamEvent& he : held) bytes += encoder_->Event(he);
    if (s.ok()) co_await w_.Write(bytes);
  }
  summary_.usage = usage;
  summary_.cost_usd = Cost(t, usage);
  summary_.provider = t.provider;
  summary_.model = t.model;
  summary_.latency_ms = Ms(Clock::now() - start_);
  summary_.overhead_ms = std::max(0.0, summary_.latency_ms - Ms(waiting_));
  current_->outcome = "ok";
  current_->latency_ms = Ms(Clock::now() - attempt_start_);
  std::string tail = encoder_->Finish(IrisObject(), summary_.cost_usd);
  summary_.bytes_out += static_cast<int64_t>(tail.size());
  co_await w_.Write(tail);
  co_await w_.Finish();
  Outcome o;
  o.kind = Outcome::Kind::kDelivered;
  co_return o;
}

awaitable<Call::Outcome> Call::DeliverResponse(const routing::Target& t, ChatResponse r) {
  summary_.usage = r.usage;
  summary_.cost_usd = Cost(t, r.usage);
  summary_.provider = t.provider;
  summary_.model = t.model;
  if (r.model.empty()) r.model = t.model;
  if (r.created == 0) r.created = summary_.start_unix_ms / 1000;  // a real time, never 0
  current_->outcome = "ok";
  current_->latency_ms = Ms(Clock::now() - attempt_start_);
  summary_.latency_ms = Ms(Clock::now() - start_);
  summary_.ttft_ms = summary_.latency_ms;
  summary_.overhead_ms = std::max(0.0, summary_.latency_ms - Ms(waiting_));
  std::string body = encoder_->Response(r, IrisObject(), summary_.cost_usd);
  summary_.bytes_out = static_cast<int64_t>(body.size());
  http::Headers h = IrisHeaders(JsonHeaders());
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", summary_.overhead_ms);
  h.Add("x-iris-overhead-ms", buf);
  if (summary_.cost_usd) {
    std::snprintf(buf, sizeof(buf), "%.6f", *summary_.cost_usd);
    h.Add("x-iris-cost-usd", buf);
  }
  committed_ = true;
  co_await w_.Send(200, std::move(h), std::move(body));
  Outcome o;
  o.kind = Outcome::Kind::kDelivered;
  co_return o;
}

std::optional<double> Call::Cost(const routing::Target& t, const Usage& u) const {
  if (!u.reported) return std::nullopt;
  if (t.kind == config::ProviderKind::kLocal) {
    auto p = snap_->prices.Find("local/" + t.model);
    if (!p) return 0.0;
    return observe::CostUsd(*p, u);
  }
  auto p = snap_->prices.Find(t.model);
  if (!p) return std::nullopt;
  return observe::CostUsd(*p, u);
}

json::object Call::IrisObject() const {
  json::object o;
  o["request_id"] = summary_.request_id;
  if (!summary_.alias.empty()) o["route"] = summary_.alias;
  o["provider"] = summary_.provider;
  o["model"] = summary_.model;
  json::array attempts;
  for (const AttemptRecord& a : summary_.attempts) {
    json::object j{{"provider", a.provider},
                   {"model", a.model},
                   {"outcome", a.outcome},
                   {"latency_ms", std::round(a.latency_ms * 1000) / 1000}};
    if (a.status) j["status"] = a.status;
    if (!a.error.empty()) j["error"] = a.error;
    if (!a.error_class.empty() && a.outcome != "ok") j["error_class"] = a.error_class;
    attempts.push_back(std::move(j));
  }
  o["attempts"] = std::move(attempts);
  o["latency_ms"] = std::round(Ms(Clock::now() - start_) * 1000) / 1000;
  if (summary_.ttft_ms >= 0) o["ttft_ms"] = std::round(summary_.ttft_ms * 1000) / 1000;
  o["overhead_ms"] = std::round(summary_.overhead_ms * 1000) / 1000;
  if (summary_.cost_usd) {
    o["cost_usd"] = *summary_.cost_usd;
  } else {
    o["cost_usd"] = nullptr;  // unknown price: said, not guessed
  }
  return o;
}

http::Headers Call::IrisHeaders(http::Headers h) const {
  h.Add("x-iris-request-id", summary_.request_id);
  if (!summary_.provider.empty()) h.Add("x-iris-provider", summary_.provider);
  if (!summary_.model.empty()) h.Add("x-iris-model", summary_.model);
  if (!summary_.alias.empty()) h.Add("x-iris-route", summary_.alias);
  h.Add("x-iris-attempts", std::to_string(summary_.attempts.size()));
  return h;
}

awaitable<void> Call::SendError(const GatewayError& e, std::string log_detail) {
  // A request that failed after trying targets is attributed to the last one it tried.
  for (auto it = summary_.attempts.rbegin(); it != summary_.attempts.rend(); ++it) {
    if (summary_.provider.empty() && it->outcome != "skipped") {
      summary_.provider = it->provider;
      summary_.model = it->model;
    }
  }
  summary_.http_status = api::HttpStatusFor(e, summary_.dialect);
  summary_.error_class = std::string(api::ErrorClassName(e.error_class));
  summary_.error = log_detail.empty() ? e.message : e.message + " [" + log_detail + "]";
  summary_.latency_ms = Ms(Clock::now() - start_);
  summary_.overhead_ms = std::max(0.0, summary_.latency_ms - Ms(waiting_));
  http::Headers h = IrisHeaders(JsonHeaders());
  if (e.retry_after_s && e.error_class == ErrorClass::kRateLimited) {
    h.Add("retry-after", std::to_string(static_cast<int64_t>(std::ceil(*e.retry_after_s))));
  }
  GatewayError shown = e;
  Truncate(shown.message, 4 * kMaxStoredError);
  std::string body = ErrorBody(summary_.dialect, shown);
  summary_.bytes_out = static_cast<int64_t>(body.size());
  const int status = summary_.http_status;
  Finish();  // hands the summary over: not used after this
  co_await w_.Send(status, std::move(h), std::move(body));
}

void Call::Finish() {
  if (summary_.latency_ms == 0) summary_.latency_ms = Ms(Clock::now() - start_);
  // Stored fields are bounded whatever an upstream or a caller sent.
  Truncate(summary_.error, kMaxStoredError);
  for (AttemptRecord& a : summary_.attempts) Truncate(a.error, kMaxStoredError);
  gw_.metrics_.Record(summary_);
  if (gw_.options_.on_request) gw_.options_.on_request(summary_);
  // Last use of the summary: the log takes it without a copy.
  if (gw_.options_.request_log != nullptr) gw_.options_.request_log->Submit(std::move(summary_));
}

// ---------------------------------------------------------------------------------------

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)) {
  openai_ = providers::MakeOpenAITranslator(providers::OpenAIFlavor::kOpenAI);
  mistral_ = providers::MakeOpenAITranslator(providers::OpenAIFlavor::kMistral);
  compat_ = providers::MakeOpenAITranslator(providers::OpenAIFlavor::kCompatible);
  anthropic_ = providers::MakeAnthropicTranslator();
  gemini_ = providers::MakeGeminiTranslator();
  Reload(options_.config);
}

void Gateway::Reload(std::shared_ptr<const config::Config> config) {
  std::lock_guard lock(reload_mu_);
  std::shared_ptr<const Snapshot> old = snapshot_.load();
  auto next = std::make_shared<Snapshot>();
  next->config = config;
  std::vector<observe::PriceEntry> overrides;
  for (const auto& [model, p] : config->pricing) {
    observe::PriceEntry e;
    e.model = model;
    e.price.input_per_mtok = p.input_per_mtok;
    e.price.output_per_mtok = p.output_per_mtok;
    e.price.cached_input_per_mtok = p.cached_input_per_mtok;
    e.price.cache_write_per_mtok = p.cache_write_per_mtok;
    overrides.push_back(std::move(e));
  }
  next->prices = observe::PriceTable(overrides);
  next->guard.emplace(config->server);
  next->fetch_client = ImageFetchClientOptions(config->image_fetch, options_.client);
  const config::BreakerConfig& b = config->routing.breaker;
  if (old && old->config->routing.breaker.failure_threshold == b.failure_threshold &&
      old->config->routing.breaker.cooldown == b.cooldown &&
      old->config->limits.max_metric_models == config->limits.max_metric_models) {
    next->breakers = old->breakers;  // the targets' health carries over
  } else {
    next->breakers = std::make_shared<routing::BreakerRegistry>(
        b, static_cast<size_t>(config->limits.max_metric_models));
  }
  next->generation = old ? old->generation + 1 : 0;
  metrics_.SetMaxModelLabels(config->limits.max_metric_models);
  snapshot_.store(std::move(next));
}

Gateway::~Gateway() { query_pool_.join(); }

namespace {
// The decoded value of `key` in a query string ("a=1&b=%2F+x", Boost.URL's decoding, '+' as a
// space); "" when absent. A query that is not valid RFC 3986 is the caller's error.
Result<std::string> QueryParam(std::string_view query, std::string_view key) {
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return InvalidArgument("the query string is not valid (bad percent-encoding?)");
  boost::urls::encoding_opts opt;
  opt.space_as_plus = true;
  const boost::urls::params_view params(*parsed, opt);
  auto it = params.find(key);
  if (it == params.end()) return std::string();
  return std::string((*it).value);
}

Result<int64_t> IntParam(std::string_view query, std::string_view key, int64_t fallback) {
  IRIS_ASSIGN_OR_RETURN(std::string v, QueryParam(query, key));
  if (v.empty()) return fallback;
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) {
    return InvalidArgument(std::string(key) + ": expected an integer, got '" + v + "'");
  }
  return out;
}

int64_t NowUnixMs();

// Runs one /api query against the request log (blocking) and encodes its JSON.
Result<std::string> ApiQuery(observe::RequestLog& log, bool usage, const std::string& query) {
  if (usage) {
    observe::UsageQuery q;
    IRIS_ASSIGN_OR_RETURN(q.since_unix_ms,
                          IntParam(query, "since", NowUnixMs() - 24 * 3600 * 1000LL));
    IRIS_ASSIGN_OR_RETURN(q.until_unix_ms, IntParam(query, "until", 0));
    q.by_day = q.by_model = q.by_provider = true;
    IRIS_ASSIGN_OR_RETURN(observe::UsageReport r, log.Usage(q));
    return observe::UsageJson(r);
  }
  observe::RequestsQuery q;
  IRIS_ASSIGN_OR_RETURN(int64_t limit, IntParam(query, "limit", 50));
  q.limit = static_cast<int>(std::clamp<int64_t>(limit, 1, 500));
  IRIS_ASSIGN_OR_RETURN(q.before_unix_ms, IntParam(query, "before", 0));
  IRIS_ASSIGN_OR_RETURN(int64_t status, IntParam(query, "status", 0));
  q.http_status = static_cast<int>(status);
  IRIS_ASSIGN_OR_RETURN(q.provider, QueryParam(query, "provider"));
  IRIS_ASSIGN_OR_RETURN(q.model, QueryParam(query, "model"));
  IRIS_ASSIGN_OR_RETURN(observe::RequestsPage page, log.Requests(q));
  return observe::RequestsJson(page);
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

awaitable<void> Gateway::Api(const http::Request& req, http::ResponseWriter& w) {
  if (options_.request_log == nullptr) {
    co_await w.Send(503, JsonHeaders(),
                    api::OpenAIErrorBody(Err(ErrorClass::kOverloaded, "the request log is off")));
    co_return;
  }
  const std::string query = req.query;
  const bool usage = req.path == "/api/usage";
  // The query runs on the query thread; this coroutine resumes on its worker afterwards.
  // Hop to the query thread for the blocking store query, then back to this worker.
  auto worker = co_await asio::this_coro::executor;
  co_await asio::post(query_pool_, use_awaitable);
  Result<std::string> body = ApiQuery(*options_.request_log, usage, query);
  co_await asio::post(worker, use_awaitable);
  if (!body.ok()) {
    GatewayError e = api::FromStatus(body.status());
    co_await w.Send(api::HttpStatus(e.error_class), JsonHeaders(), api::OpenAIErrorBody(e));
    co_return;
  }
  co_await w.Send(200, JsonHeaders(), std::move(body).value());
}

const providers::Translator& Gateway::TranslatorFor(config::ProviderKind kind) const {
  switch (kind) {
    case config::ProviderKind::kOpenAI:
      return *openai_;
    case config::ProviderKind::kMistral:
      return *mistral_;
    case config::ProviderKind::kAnthropic:
      return *anthropic_;
    case config::ProviderKind::kGemini:
      return *gemini_;
    case config::ProviderKind::kOpenAICompatible:
    case config::ProviderKind::kLocal:
      return *compat_;
  }
  return *compat_;
}

namespace {
// Each worker's upstream client lives as a service of that worker's io_context, so the
// io_context decides when it goes: after the coroutines still suspended at shutdown (and the
// exchanges they hold) are destroyed, and before the timers and sockets it owns lose their
// services.
class ClientService : public asio::execution_context::service {
 public:
  using key_type = ClientService;
  static inline asio::execution_context::id id;
  explicit ClientService(asio::execution_context& context) : service(context) {}
  std::unique_ptr<upstream::Client> client;  // touched only on the io_context's thread

 private:
  void shutdown() override {}
};

// The same for the clients of caller-supplied image URLs, one per configuration generation.
class FetchClientService : public asio::execution_context::service {
 public:
  using key_type = FetchClientService;
  static inline asio::execution_context::id id;
  explicit FetchClientService(asio::execution_context& context) : service(context) {}
  std::map<uint64_t, std::unique_ptr<upstream::Client>> clients;  // the io_context's thread only

 private:
  void shutdown() override {}
};
}  // namespace

upstream::Client& Gateway::ClientFor(asio::io_context& io) {
  auto& service = asio::use_service<ClientService>(io);
  if (!service.client) service.client = std::make_unique<upstream::Client>(io, options_.client);
  return *service.client;
}

upstream::Client& Gateway::FetchClientFor(asio::io_context& io, const Snapshot& snapshot) {
  // One client per configuration generation: a reload that changes image_fetch gets a fresh
  // client, while fetches in flight keep the one they started on (kept until shutdown;
  // reloads are rare).
  auto& service = asio::use_service<FetchClientService>(io);
  std::unique_ptr<upstream::Client>& client = service.clients[snapshot.generation];
  if (!client) client = std::make_unique<upstream::Client>(io, snapshot.fetch_client);
  return *client;
}

namespace {
// The Anthropic shape of a model list (GET /v1/models with an anthropic-version header).
std::string AnthropicModelList(const std::vector<api::ModelInfo>& models) {
  json::array data;
  for (const api::ModelInfo& m : models) {
    data.push_back(json::object{{"type", "model"},
                                {"id", m.id},
                                {"display_name", m.id},
                                {"created_at", "1970-01-01T00:00:00Z"}});
  }
  json::object out{{"data", std::move(data)}, {"has_more", false}};
  out["first_id"] = models.empty() ? json::value(nullptr) : json::value(models.front().id);
  out["last_id"] = models.empty() ? json::value(nullptr) : json::value(models.back().id);
  return SerializeJson(out);
}
}  // namespace

awaitable<void> Gateway::Models(const http::Request& req, http::ResponseWriter& w) {
  std::vector<api::ModelInfo> models;
  const std::shared_ptr<const Snapshot> snap = snapshot();
  for (const config::ModelAlias& a : snap->config->models) models.push_back({a.name, 0, "iris"});
  for (const config::ProviderConfig& p : snap->config->providers) {
    if (!p.enabled) continue;
    if (p.kind == config::ProviderKind::kLocal && options_.local != nullptr) {
      models.push_back({p.name + "/" + options_.local->model_name(), 0, p.name});
    }
    for (const std::string& m : p.models) models.push_back({p.name + "/" + m, 0, p.name});
  }
  // (Not a conditional expression inside co_await: GCC 12 destroys its temporary twice.)
  std::string body;
  if (req.headers.Has("anthropic-version")) {
    body = AnthropicModelList(models);
  } else {
    body = api::EncodeOpenAIModelList(models);
  }
  co_await w.Send(200, JsonHeaders(), std::move(body));
}

namespace {
bool IsApiPost(const http::Request& req) {
  return req.method == "POST" &&
         (req.path == "/v1/chat/completions" || req.path == "/chat/completions" ||
          req.path == "/v1/messages" || req.path == "/messages");
}
http::Headers PreflightHeaders(const http::Request& req) {
  http::Headers h;
  h.Add("access-control-allow-methods", "GET, POST, OPTIONS");
  std::string asked(req.headers.Get("access-control-request-headers"));
  // Echo the asked headers only when they are a plain token list.
  bool plain = asked.size() <= 1024;
  for (char c : asked) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                      c == ',' || c == ' ');
  }
  h.Add("access-control-allow-headers",
        plain && !asked.empty() ? asked
                                : "authorization, content-type, x-api-key, anthropic-version");
  h.Add("access-control-max-age", "600");
  return h;
}
}  // namespace

awaitable<void> Gateway::Handle(http::Request& req, http::ResponseWriter& w) {
  const std::string& path = req.path;
  // Browser defences first, for every path: a rebinding name or a foreign page gets nothing.
  const bool anthropic_caller =
      req.headers.Has("anthropic-version") || req.headers.Has("x-api-key");
  const Dialect caller = anthropic_caller ? Dialect::kAnthropic : Dialect::kOpenAI;
  const std::shared_ptr<const Snapshot> snap = snapshot();
  const BrowserGuard& guard = *snap->guard;
  if (Status host = guard.CheckHost(req.headers); !host.ok()) {
    GatewayError e = api::FromStatus(host);
    co_await w.Send(api::HttpStatus(e.error_class), JsonHeaders(), ErrorBody(caller, e));
    co_return;
  }
  const BrowserGuard::OriginDecision origin = guard.CheckOrigin(req.headers);
  if (!origin.allowed) {
    GatewayError e = Err(ErrorClass::kPermission,
                         "cross-origin requests from this origin are not allowed (list it in "
                         "server.cors.allow_origins in iris.yaml to allow a browser app)");
    co_await w.Send(403, JsonHeaders(), ErrorBody(caller, e));
    co_return;
  }
  if (!origin.allow_origin.empty()) {
    w.AddDefaultHeader("access-control-allow-origin", origin.allow_origin);
    w.AddDefaultHeader("vary", "origin");
  }
  if (req.method == "OPTIONS") {
    co_await w.Send(204, PreflightHeaders(req), "");
    co_return;
  }
  if (IsApiPost(req)) {
    if (Status ct = BrowserGuard::CheckJsonContentType(req.headers); !ct.ok()) {
      GatewayError e = api::FromStatus(ct);
      co_await w.Send(400, JsonHeaders(), ErrorBody(caller, e));
      co_return;
    }
  }
  if (req.method == "POST" && (path == "/v1/chat/completions" || path == "/chat/completions")) {
    Call call(*this, req, w, Dialect::kOpenAI);
    co_await call.Run();
    co_return;
  }
  if (req.method == "POST" && (path == "/v1/messages" || path == "/messages")) {
    Call call(*this, req, w, Dialect::kAnthropic);
    co_await call.Run();
    co_return;
  }
  if (req.method == "GET" && (path == "/v1/models" || path == "/models")) {
    co_await Models(req, w);
    co_return;
  }
  if (req.method == "GET" && path == "/healthz") {
    co_await w.Send(200, JsonHeaders(), R"({"status":"ok"})");
    co_return;
  }
  if (req.method == "GET" && path == "/readyz") {
    if (draining_.load()) {
      co_await w.Send(503, JsonHeaders(), R"({"status":"draining"})");
    } else {
      co_await w.Send(200, JsonHeaders(), R"({"status":"ready"})");
    }
    co_return;
  }
  if (req.method == "GET" && (path == "/api/usage" || path == "/api/requests")) {
    co_await Api(req, w);
    co_return;
  }
  if (req.method == "GET" && path == "/metrics") {
    co_await w.Send(200, MetricsHeaders(), metrics_.Exposition());
    co_return;
  }
  if (req.method == "GET") {
    if (const observe::Asset* asset = observe::FindAsset(path)) {
      co_await w.Send(
          200, AssetHeaders(asset->content_type),
          std::string(reinterpret_cast<const char*>(asset->bytes.data()), asset->bytes.size()));
      co_return;
    }
  }
  GatewayError e =
      Err(ErrorClass::kNotFound, "no route for " + req.method + " " + path +
                                     " (try POST /v1/chat/completions, POST /v1/messages "
                                     "or GET /v1/models)");
  const bool anthropic = req.headers.Has("anthropic-version") || req.headers.Has("x-api-key");
  std::string body = ErrorBody(anthropic ? Dialect::kAnthropic : Dialect::kOpenAI, e);
  co_await w.Send(api::HttpStatus(e.error_class), JsonHeaders(), std::move(body));
}

}  // namespace iris::gateway::proxy
