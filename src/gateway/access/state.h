// The counters access control shares: per-minute token buckets (RPM, TPM) and budget spend
// with reservations. One interface, two homes: this process's memory (one instance) or Redis
// (every instance pointing at it, atomic Lua scripts; redis_state.cc). Both give the same
// answers for the same sequence of calls; state_test.cc runs one suite over both.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace iris::gateway::access {

// One token bucket: `limit` tokens a minute, refilled continuously, holding at most `limit`.
struct BucketSpec {
  std::string name;  // "rpm:key_...", "tpm:key_...", "model-rpm:gpt-4o", ...
  int64_t limit = 0;
};

// A bucket after a take.
struct BucketState {
  int64_t limit = 0;
  int64_t remaining = 0;  // whole tokens left (never negative in headers)
  double reset_s = 0;     // until the bucket is full again
};

struct TakeResult {
  bool allowed = false;
  std::vector<BucketState> buckets;  // in the order asked
  double retry_after_s = 0;          // when refused: until every bucket holds what was asked
};

// One key's budget in one period.
struct BudgetRef {
  std::string key_id;
  int64_t period_start_ms = 0;  // 0 for a total budget
};

struct ReserveResult {
  bool allowed = false;
  double spent = 0;     // settled, this period
  double reserved = 0;  // in flight (this request's reservation included when allowed)
};

// A request's budget reservation, asked for together with its buckets (SharedState::Admit).
struct AdmitBudget {
  BudgetRef ref;
  double budget = 0;
  double amount = 0;
  std::string reservation_id;
  int64_t ttl_ms = 0;
};

struct AdmitResult {
  TakeResult take;                      // take.allowed: the buckets had room
  std::optional<ReserveResult> budget;  // set when a budget was asked for and the buckets had room
};

// What one request gives back and costs once it ran: the difference between its token
// estimate and what it used goes back to its TPM buckets, and its cost replaces its budget
// reservation (or adds to the spend of a key without a budget).
struct Settlement {
  std::vector<BucketSpec> give_buckets{};
  int64_t give = 0;  // negative: it used more than estimated
  int64_t at_ms = 0;
  std::optional<BudgetRef> spend{};
  std::string reservation_id{};  // empty: nothing was reserved
  double cost = 0;
};

class SharedState {
 public:
  virtual ~SharedState() = default;

  // Take (the buckets) and Reserve (the budget) as one step: nothing is taken when either
  // refuses. NotFound (nothing taken) when the budget's period is not known. The default runs
  // Take, then Reserve, giving the tokens back when the budget refuses; Redis does it in one
  // script (one round trip).
  virtual Result<AdmitResult> Admit(const std::vector<BucketSpec>& buckets,
                                    const std::vector<int64_t>& want,
                                    const std::optional<AdmitBudget>& budget, int64_t now_ms);

  // Admit without blocking the calling coroutine's thread (Redis: a pipelined connection per
  // io_context). The default runs Admit.
  virtual boost::asio::awaitable<Result<AdmitResult>> AdmitAsync(std::vector<BucketSpec> buckets,
                                                                 std::vector<int64_t> want,
                                                                 std::optional<AdmitBudget> budget,
                                                                 int64_t now_ms);

  // Settles one request without blocking `ex`'s thread; `done` gets its status (on that
  // thread, or at once). Redis: batched with the other settlements of the same turn, on the
  // io_context's pipelined connection. The default runs SettleAll.
  virtual void SettleAsync(const boost::asio::any_io_executor& ex, Settlement s,
                           std::function<void(Status)> done);

  // Settles many requests: one status each, for its spend (a give that fails is dropped: the
  // bucket stays tighter than it need be). The default runs Give and Settle for each; Redis
  // runs its batch script once for them all.
  virtual std::vector<Status> SettleAll(const std::vector<Settlement>& settlements);

  // Takes want[i] tokens from buckets[i], all or none: a request refused by its TPM bucket
  // spends none of its RPM. A bucket never seen starts full.
  virtual Result<TakeResult> Take(const std::vector<BucketSpec>& buckets,
                                  const std::vector<int64_t>& want, int64_t now_ms) = 0;
  // Gives `n` tokens back to a bucket (negative: takes more, and the bucket may go below
  // zero): the difference between a request's estimate and what it used.
  virtual Status Give(const BucketSpec& bucket, int64_t n, int64_t now_ms) = 0;

  // Reserves `amount` of `budget` for one request: refused when spent + reserved + amount
  // would pass the budget (or the budget is spent already). Reservations older than `ttl_ms`
  // (their instance died) no longer count.
  virtual Result<ReserveResult> Reserve(const BudgetRef& ref, double budget, double amount,
                                        const std::string& reservation_id, int64_t now_ms,
                                        int64_t ttl_ms) = 0;
  // Replaces the reservation with what the request really cost.
  virtual Status Settle(const BudgetRef& ref, const std::string& reservation_id, double cost) = 0;
  // Sets the settled spend of a period that the state has not seen (after a restart, from
  // the request log); a period already known is left alone.
  virtual Status SeedSpend(const BudgetRef& ref, double spent) = 0;
  // Whether the period is known (seeded or spent on).
  virtual Result<bool> Knows(const BudgetRef& ref) = 0;
  // The settled spend of a period (0 when unknown).
  virtual Result<double> Spent(const BudgetRef& ref) = 0;

  // Circuit breakers any instance opened ("provider/model" -> until, Unix ms): publish one
  // (a later `until` wins), and read those still open at `now` (stale ones are dropped).
  virtual Status PublishOpenBreaker(const std::string& target, int64_t until_unix_ms) = 0;
  virtual Result<std::vector<std::pair<std::string, int64_t>>> OpenBreakers(int64_t now_ms) = 0;

  // Values kept for a while (the Responses API's conversations, by response id): `value` under
  // `key` for `ttl_ms`, replacing what was there; Get answers nullopt when absent or expired.
  // Memory holds at most kMaxMemoryValueBytes in all (NewMemoryState), dropping the oldest
  // values first; Redis as much as it is given room for.
  static constexpr size_t kMaxMemoryValueBytes = size_t{256} << 20;
  virtual Status PutValue(const std::string& key, const std::string& value, int64_t ttl_ms,
                          int64_t now_ms) = 0;
  virtual Result<std::optional<std::string>> GetValue(const std::string& key, int64_t now_ms) = 0;

  virtual std::string_view kind() const = 0;  // "memory" or "redis"
};

// This process's memory; thread-safe. Kept values hold at most `max_value_bytes` (keys
// included), the oldest dropped first.
std::unique_ptr<SharedState> NewMemoryState(
    size_t max_value_bytes = SharedState::kMaxMemoryValueBytes);

// Redis at redis://[user:password@]HOST:PORT/DB (redis_state.cc); thread-safe (a pool of
// connections). Connects lazily: an unreachable Redis is an error of each operation, not of
// this call. Reserve and Settle answer NotFound for a period Redis does not know (seed it).
Result<std::unique_ptr<SharedState>> NewRedisState(const std::string& url);

}  // namespace iris::gateway::access
