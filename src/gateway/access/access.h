// Who may call, and how much: the gateway's keys, budgets and rate limits, enforced before the
// first upstream attempt and settled after the last.
//
//   Identify  the key in Authorization: Bearer / x-api-key  -> 401 when missing or not usable
//   Permit    the model names the request may route to      -> 403 naming the allowed ones
//   Admit     RPM and TPM buckets, then the budget's worst-case reservation -> 429
//   Settle    the real cost and tokens replace the reservation and the estimate
//
// The key table is read from the store (every instance sees a change within
// auth.key_refresh_ms); counters live in a SharedState (memory, or Redis across instances).
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/published.h"
#include "base/status.h"
#include "gateway/access/attempts.h"
#include "gateway/access/keys.h"
#include "gateway/access/lease_state.h"
#include "gateway/access/state.h"
#include "gateway/api/chat.h"
#include "gateway/config/config.h"
#include "gateway/http/headers.h"
#include "gateway/observe/metrics.h"
#include "gateway/observe/store.h"

namespace iris::gateway::access {

// Who is calling.
struct Caller {
  std::shared_ptr<const KeyRecord> key;  // null: the master key, or no key (auth off)
  bool master = false;
  const std::string& key_id() const;
};

// What one request is about to ask for, for its limits and its budget.
struct AdmitRequest {
  std::string model;             // as the caller named it
  int64_t estimated_tokens = 0;  // prompt estimate + the output it may produce
  double worst_cost_usd = 0;     // those tokens at the most expensive target's price
  std::string request_id;        // names the budget reservation
};

// A request let through: what to settle afterwards and the headers to send.
struct Admission {
  std::vector<std::pair<std::string, std::string>> headers;  // x-ratelimit-*
  std::vector<BucketSpec> token_buckets;                     // TPM buckets taken from
  int64_t tokens_taken = 0;
  std::optional<BudgetRef> budget;  // set when a reservation was made
  std::string reservation_id;
  double reserved_usd = 0;
  bool settled = false;
};

// The x-ratelimit-* values OpenAI clients read, from a bucket: "6m0s", "1s", "120ms".
std::string ResetDuration(double seconds);

// The prompt-token estimate of a request: text at 3 characters a token (more than any
// tokenizer's average, so budgets err on the safe side), 4 a message, 1,600 an image.
int64_t EstimatePromptTokens(const ChatRequest& request);
// The same for embeddings: text at 3 characters a token, token arrays as they are.
int64_t EstimateEmbeddingTokens(const EmbeddingRequest& request);

class Access {
 public:
  struct Options {
    std::shared_ptr<const config::Config> config;
    // The store holding the key table (ParseStoreSpec syntax); Access opens its own
    // connection for the refresher.
    std::string store;
    // Where counters live; null: Redis when config->state names it, else this process's
    // memory.
    std::unique_ptr<SharedState> state;
  };

  // Opens the store, reads the key table, seeds this period's spend of every budgeted key
  // from the request log, and starts the refresher thread.
  static Result<std::unique_ptr<Access>> Start(Options options);
  ~Access();

  // Applies a reloaded configuration's auth settings.
  void Reload(std::shared_ptr<const config::Config> config);

  // Whether a caller must present a key right now (auth.mode, the listen address, and whether
  // any key exists).
  bool Required() const;
  // The master key is set (the admin API is available).
  bool HasMasterKey() const;

  // The caller of a request into `caller`; a refusal is a 401.
  std::optional<GatewayError> Identify(const http::Headers& headers, Caller& caller) const;
  // Whether the caller may use every model the request may route to; a 403 otherwise.
  std::optional<GatewayError> Permit(const Caller& caller,
                                     const std::vector<std::string>& models) const;
  // Rate limits and the budget's reservation, without blocking the calling coroutine's
  // thread on a remote state. On refusal the admission's headers still describe the buckets.
  boost::asio::awaitable<std::optional<GatewayError>> Admit(const Caller& caller,
                                                            const AdmitRequest& request,
                                                            Admission& admission);
  // After the call: its real cost and tokens. An answered call whose cost or tokens are
  // unknown (the provider reported no usage) keeps its reservation and estimate: a budget
  // errs on the side of the operator. A call that was not answered costs nothing.
  // `ex`: the calling server worker's executor (a remote state is then told without a thread
  // hop), or null.
  void Settle(const Caller& caller, Admission& admission, bool answered,
              std::optional<double> cost_usd, std::optional<int64_t> tokens_used,
              const boost::asio::any_io_executor* ex = nullptr);

  // The admin API, /api/* and the dashboard: the master key as a bearer token or x-api-key,
  // or a dashboard session cookie made from it. A wrong key counts against the client's
  // address (peer "ip:port"); an address over the limit (attempts.h) is refused whatever it
  // presents, for `retry_after_s`.
  enum class AdminVerdict { kAdmin, kNoKey, kWrongKey, kThrottled };
  AdminVerdict CheckAdmin(const http::Headers& headers, std::string_view remote,
                          double& retry_after_s);
  // A Set-Cookie value for a dashboard session of `ttl_s` seconds; empty without a master key.
  std::string SessionCookie(int64_t now_unix_ms, int64_t ttl_s = 12 * 3600) const;

  // Re-reads the key table now (after a change made through this instance).
  Status RefreshNow();

  // Called on the refresher thread after each refresh, with the shared state (the gateway
  // shares its circuit breakers through it). Set once, before serving; `fn` must stay valid
  // until this Access is destroyed or SetTick({}) returns.
  void SetTick(std::function<void(SharedState&)> fn);

  // Each live key's spend in its current period (for /metrics).
  std::vector<observe::KeySpendGauge> SpendGauges();
  // Whether the shared state answered its last operation (1) or not (0).
  bool StateUp() const { return state_up_.load(); }
  // Where counters live (memory or Redis); also keeps the Responses API's conversations.
  SharedState& state() { return *state_; }
  // Costs not yet settled in the shared state: queued for the settlers, being sent, or waiting
  // for the state to come back (state_failure: open, or a settle that failed).
  size_t PendingSettles() const;

  // The current table (for /metrics and tests).
  std::vector<std::shared_ptr<const KeyRecord>> Keys() const;

 private:
  explicit Access(Options options);
  struct Table {
    std::unordered_map<std::string, std::shared_ptr<const KeyRecord>> by_hash;
    std::vector<std::shared_ptr<const KeyRecord>> all;
    bool any_live = false;
  };
  static bool RequiredBy(const config::Config& cfg, const Table& table);
  struct Asked;
  // Admit's two ends: what the request asks of the state (or a refusal before asking), and
  // the answer to it.
  std::optional<GatewayError> Ask(const config::Config& cfg, const Caller& caller,
                                  const AdmitRequest& request, int64_t now, Asked& asked) const;
  std::optional<GatewayError> Answer(const config::Config& cfg, const Caller& caller,
                                     const AdmitRequest& request, const Asked& asked,
                                     const Result<AdmitResult>& admitted, Admission& admission);
  Status Refresh();
  void RefreshLoop();
  // Seeds a period the state does not know from the request log (blocking).
  Status SeedPeriod(const BudgetRef& ref);
  // Notes the outcome of a state operation: a change is logged once.
  void NoteState(const Status& st);
  // Retries the settles the state could not take.
  void FlushPending();
  // A place among the calls of `key_id` that wait for holds to settle (Admit); false when
  // that key has as many waiting as it may.
  bool EnterHoldWait(const std::string& key_id);
  void LeaveHoldWait(const std::string& key_id);
  std::mutex hold_waiters_mu_;
  std::unordered_map<std::string, int> hold_waiters_;  // key id -> calls waiting
  bool ValidSession(std::string_view cookie, int64_t now_unix_ms) const;
  bool IsAdmin(const http::Headers& headers) const;
  AttemptLimiter admin_attempts_;

  std::shared_ptr<const config::Config> config() const { return config_.load(); }

  Published<const config::Config> config_;
  std::string store_spec_;
  std::unique_ptr<observe::Store> store_;  // the refresher's connection
  std::mutex store_mu_;                    // one user of store_ (and checked_periods_) at a time
  std::unordered_set<std::string> checked_periods_;  // "key_id:period_start" asked of the state
  std::unique_ptr<SharedState> state_;
  LeasedState* leases_ = nullptr;  // state_, when the counters are remote
  Published<const Table> table_;
  std::atomic<bool> state_up_{true};
  mutable std::mutex pending_mu_;
  std::vector<Settlement> pending_;  // spend the state has not taken yet (gives dropped)

  // With a remote state (Redis), a worker hands its settlements to the state without waiting
  // (SettleAsync); what the state could not take is queued for these threads, which seed an
  // unknown period from the request log and retry, each sending what has queued up as one
  // batch.
  void RunSettles(std::vector<Settlement>& batch);
  void SettleLoop();
  std::condition_variable settle_cv_;     // under pending_mu_
  std::vector<Settlement> settle_queue_;  // under pending_mu_
  bool settle_stop_ = false;              // under pending_mu_
  size_t settling_ = 0;                   // under pending_mu_: taken by a settler, not done
  std::array<std::thread, 2> settlers_;   // one can wait on a seed while the other settles

  // Settle's callbacks hold it weakly: one that runs after this Access is gone does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  std::mutex tick_mu_;
  std::function<void(SharedState&)> tick_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread refresher_;
};

}  // namespace iris::gateway::access
