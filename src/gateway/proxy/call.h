// One chat request from decode to report: the gateway's request pipeline (internal to proxy/).
//
//   Run():  Decode -> Authorize -> LoadThread -> Plan -> Admit -> TryTargets -> (GiveUp)
//   TryTargets: for each target and retry: TryCloud | TryLocal -> Deliver* or fall over
//   (a store_bodies route: KeepBodies after delivery)
//   every path ends in Finish (report): metrics, the on_request hook, the request log.
//
// Each stage lives in a file of its own: decode.cc (Decode, Plan), authorize.cc (Authorize,
// Admit, and settling in Finish), responses_thread.cc (LoadThread, KeepThread),
// tool_signatures.cc (KeepSignatures, LoadSignatures), call.cc (Run,
// TryTargets, GiveUp), attempt_cloud.cc, attempt_local.cc, image_urls.cc, deliver.cc,
// report.cc, store_bodies.cc; how an attempt's failure is classified is outcome.h. Streams are
// committed to the caller only when the first token is in hand, so any failure before it falls over
// invisibly.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/time.h"
#include "gateway/access/access.h"
#include "gateway/api/ai_gateway.h"
#include "gateway/api/chat.h"
#include "gateway/api/responses.h"
#include "gateway/proxy/encoder.h"
#include "gateway/proxy/gateway.h"
#include "gateway/proxy/outcome.h"
#include "gateway/routing/plan.h"

namespace iris::gateway::proxy {

using Clock = SteadyClock;

class Call {
 public:
  Call(Gateway& gw, http::Request& req, http::ResponseWriter& w, Dialect dialect);

  boost::asio::awaitable<void> Run();

 private:
  // Stages before any attempt. Each returns an error the caller gets as it is.
  Status Decode();  // decode.cc: the caller's dialect, bounds and names
  // authorize.cc: the caller's key (401) and the models it may use (403).
  std::optional<GatewayError> Authorize();
  // responses_thread.cc (Responses API only): the kept conversation that previous_response_id
  // continues and the earlier items the input names, put in place (404 when gone).
  boost::asio::awaitable<Status> LoadThread();
  // Keeps this response's conversation (input and answer) for previous_response_id; called
  // before the answer's last bytes go out, so a caller's next turn always finds it.
  // `as_is_provider`: the provider that answered in the caller's own wire format (OpenAI's
  // Responses API, which keeps the response too), empty when iris made the response.
  // `as_is_output`: that response's output items (kept for item references).
  boost::asio::awaitable<void> KeepThread(const ChatResponse& answer,
                                          const std::string& as_is_provider,
                                          const boost::json::array* as_is_output);
  // tool_signatures.cc: the signatures providers gave tool calls (Gemini's thoughtSignature),
  // kept by call id under the caller's key before the answer's last bytes go out, and put back
  // on the history's calls before a provider that wants them is tried.
  boost::asio::awaitable<void> KeepSignatures(const std::vector<ToolCall>& calls);
  boost::asio::awaitable<void> LoadSignatures();
  Status Plan();  // decode.cc: the route's targets, timeouts and retries
  // authorize.cc: rate limits and the budget's worst-case reservation (429).
  boost::asio::awaitable<std::optional<GatewayError>> Admit();
  // authorize.cc, from Finish: the real cost and tokens replace the reservation.
  void Settle();

  // Tries the plan's targets in order with retries, backoff and breakers; true when the
  // request was answered (delivered, failed after commit, or the caller left).
  boost::asio::awaitable<bool> TryTargets();
  // Nothing answered: the error that says why, with every attempt.
  boost::asio::awaitable<void> GiveUp();

  boost::asio::awaitable<Outcome> TryCloud(const routing::Target& t);  // attempt_cloud.cc
  boost::asio::awaitable<Outcome> TryLocal(const routing::Target& t);  // attempt_local.cc
  boost::asio::awaitable<Status> FetchImageUrls();                     // image_urls.cc
  // store_bodies.cc (a store_bodies route, after the answer went out): the prompt and the
  // answer into the summary for the request log, in OpenAI's chat shape, image URLs fetched
  // under the image_fetch policy when it is on (so that exported training data has the pixels).
  boost::asio::awaitable<void> KeepBodies();

  // deliver.cc. Reads events from `next` until the end; commits the stream on the first
  // content event.
  using NextEvents =
      std::function<boost::asio::awaitable<Result<std::vector<StreamEvent>>>(bool& end)>;
  boost::asio::awaitable<Outcome> DeliverEvents(const routing::Target& t, const NextEvents& next);
  boost::asio::awaitable<Outcome> DeliverResponse(const routing::Target& t, ChatResponse response);
  boost::asio::awaitable<Outcome> DeliverEmbeddings(const routing::Target& t,
                                                    EmbeddingResponse response);
  // A whole (non-streamed) answer from `t`: the summary learns its usage, cost and latencies;
  // then its body goes out with the iris headers, overhead and cost.
  void RecordWholeAnswer(const routing::Target& t, const Usage& usage);
  // An answer the provider made (and billed) that the caller does not get (it broke the
  // response schema): its usage and cost still count, in the answer that follows or the error.
  void AddDiscarded(const routing::Target& t, const Usage& usage);
  // The answer's usage and cost, with those of answers discarded on the way.
  void CountAnswer(const routing::Target& t, const Usage& usage);
  // The failure of an answer that breaks the caller's response schema (`broken` says how),
  // its `usage` counted as discarded.
  GatewayError SchemaBroken(const routing::Target& t, const std::string& broken,
                            const Usage& usage);
  boost::asio::awaitable<Outcome> SendWholeAnswer(std::string body);

  // report.cc. `log_detail`, when set, goes to the request log instead of the caller-facing
  // message.
  boost::asio::awaitable<void> SendError(const GatewayError& e, std::string log_detail = {});
  // The cost of `t`'s answer (nullopt: no price); web searches its price cannot count are noted
  // for a warning. ListCost: the same figure, noting nothing (a worst case, not an answer).
  std::optional<double> Cost(const routing::Target& t, const Usage& u);
  std::optional<double> ListCost(const routing::Target& t, const Usage& u) const;
  // The `iris` object of an answer, in `storage`.
  boost::json::object IrisObject(boost::json::storage_ptr storage = {}) const;
  // The whole answer's body / a stream's last events, each with the iris object (built in
  // scratch storage: these are plain functions, so it sits on the thread's stack, not in a
  // coroutine's frame).
  std::string AnswerBody(const ChatResponse& r);
  std::string StreamFinish();
  // The warnings of the answer: the request's own, then what the answering provider could not
  // take, then web searches no price counted.
  std::vector<std::string> Warnings() const;
  http::Headers IrisHeaders(http::Headers h) const;
  // Account (the budget settled, metrics, the on_request hook), then Log (the summary to the
  // request log); a store_bodies answer keeps its bodies between the two.
  void Finish();
  void Account();
  void Log();

  // The failure of the attempt in progress (outcome.h), given whether the stream is committed.
  Outcome Fail(GatewayError e, routing::Failure::Kind kind) const {
    return ClassifyFailure(std::move(e), kind, committed_);
  }
  // attempt_cloud.cc: the refusal of a target that would translate a request holding what only
  // a provider taking the caller's body as is can honour (ChatRequest::as_is_only).
  Outcome RefuseAsIsOnly(const routing::Target& t) const;
  Outcome FailStatus(GatewayError e, int pseudo_status) const {
    return ClassifyPseudoStatus(std::move(e), pseudo_status, committed_);
  }

  Gateway& gw_;
  http::Request& http_req_;
  http::ResponseWriter& w_;
  std::shared_ptr<const Gateway::Snapshot> snap_;  // the configuration this request runs under
  std::shared_ptr<const config::Config> config_;
  Clock::time_point start_;
  ChatRequest req_;
  std::optional<api::ResponsesRequest> responses_;  // Responses API: what only it has
  std::optional<EmbeddingRequest> embed_;           // embeddings: the request (req_ routes it)
  int ai_gateway_spec_ = 3;                         // AI SDK gateway protocol: spec version
  std::vector<api::DroppedField> dropped_;  // what the caller asked for that was not applied
  // What the last attempt's provider could not take (UpstreamRequest::dropped).
  std::vector<std::string> target_dropped_;
  std::vector<ToolCall> streamed_signatures_;  // the streamed answer's signed calls
  Usage discarded_usage_;                      // AddDiscarded
  double discarded_cost_usd_ = 0;
  // Web searches of answers (the one sent and those discarded) whose price has no rate for them,
  // by "provider/model", in order: a warning each.
  std::vector<std::pair<std::string, int64_t>> unpriced_searches_;
  bool signatures_loaded_ = false;
  routing::Plan plan_;
  RequestSummary summary_;
  Clock::duration waiting_{};  // time spent awaiting upstreams / the engine
  std::optional<Encoder> encoder_;
  bool committed_ = false;
  bool images_fetched_ = false;
  bool store_bodies_ = false;                // the route keeps prompts and answers
  std::optional<ChatResponse> kept_answer_;  // store_bodies_: the answer delivered
  std::string image_fetch_detail_;  // why an image URL could not be fetched (operator's eyes only)
  Clock::time_point deadline_;      // the route's total deadline, image fetches included
  int attempts_made_ = 0;           // bounded by limits.max_attempts across every target
  std::optional<GatewayError> last_error_;
  AttemptRecord* current_ = nullptr;
  Clock::time_point attempt_start_;
  access::Caller caller_;
  access::Admission admission_;
  boost::asio::any_io_executor executor_;  // the worker this call runs on (set by Admit)
  bool admitted_ = false;
};

// Runs `fn` (a call on the shared state) where it may block: a remote state answers on the
// query pool, never on a worker; memory answers in place.
template <typename F>
boost::asio::awaitable<std::invoke_result_t<F>> OnStateThread(access::SharedState& state,
                                                              boost::asio::thread_pool& pool,
                                                              F fn) {
  if (state.kind() == "memory") co_return fn();
  auto worker = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(pool, boost::asio::use_awaitable);
  auto result = fn();
  co_await boost::asio::post(worker, boost::asio::use_awaitable);
  co_return result;
}

// Milliseconds as a double, for latencies.
inline double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Built outside the coroutines: GCC 12 miscompiles braced lists of string literals held in a
// coroutine frame ("array used as initializer").
http::Headers JsonHeaders();
http::Headers SseHeaders();

// The price of a target's model: the table's entry, or for the local model its "local/<model>"
// entry and free without one; nullopt for a cloud model the table does not price.
std::optional<observe::Price> TargetPrice(const observe::PriceTable& prices, bool local,
                                          std::string_view model);

// This thread's random source for routing (weights, jitter).
routing::Rng& ThreadRng();

// An error of a class with a message.
GatewayError Err(ErrorClass error_class, std::string message);

// The error body of a dialect; `model` (the requested model) is named by the AI SDK gateway
// protocol's model_not_found.
std::string ErrorBody(Dialect dialect, const GatewayError& e, std::string_view model = {});

}  // namespace iris::gateway::proxy
