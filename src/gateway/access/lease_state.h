// Leases over a remote SharedState (Redis): an instance takes a slice of a rate bucket or of a
// budget in one round trip and hands it out to its own requests locally, going back to the
// remote state only when the slice is used up, has aged, or the counter is near its limit.
//
//   far from a limit   a request that misses asks for itself plus a slice (1/64 of a bucket's
//                      limit; 1/16 of a budget's room, at most 256 of the request's worst
//                      case) in the same script run; later requests take from the slice with no
//                      round trip, and settle into it
//   near a limit       (a bucket below half full after the slice, a budget with less than 128
//                      worst cases of room) every request goes to the remote state, exactly
//                      as without leases
//   after lease_ms     a slice hands out nothing more: unused bucket tokens go back, and a
//                      budget slice is settled to the real cost of its requests once the last
//                      of them settled
//
// Nothing is ever overspent: a slice is taken from the remote counter before it is handed out
// (a budget slice is one reservation, released like any other if its instance dies). What a
// slice costs is exactness on the other side: a request may be refused while other instances
// still hold unused slices of the same counter, at most one slice per instance, for at most
// lease_ms. Every other operation goes straight to the remote state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gateway/access/state.h"

namespace iris::gateway::access {

struct LeaseOptions {
  // How long a slice hands out tokens or budget after it was taken.
  int64_t lease_ms = 500;
  // Spend the remote state could not take when a slice was settled (unreachable, or a period
  // it no longer knows): the caller retries it (Access's settle queue).
  std::function<void(Settlement)> unsettled;
  // Runs Tick on a thread of its own every lease_ms / 4 (at most 100 ms); tests tick by hand.
  bool tick_thread = true;
};

class LeasedState final : public SharedState {
 public:
  LeasedState(std::unique_ptr<SharedState> remote, LeaseOptions options);
  ~LeasedState() override;  // Close()

  // Ends every slice now (the tick thread first): unused tokens back, budget slices settled
  // to what their settled calls cost, a call still in flight at its worst case (its own
  // settlement later finds no reservation of its id and counts nothing). Idempotent.
  // `now_ms`: the time the tokens go back at (0: now).
  void Close(int64_t now_ms = 0);
  // Ends the slices that aged past lease_ms at `now_ms`, settles finished budget slices,
  // shrinks ended ones with calls in flight to those calls' worst cases, stops handing out of a
  // period the remote state no longer knows, and sends the batched spend of keys without a
  // budget.
  void Tick(int64_t now_ms);
  void SetLeaseMs(int64_t lease_ms) { lease_ms_.store(lease_ms); }

  struct Stats {
    int64_t local_admits = 0;   // answered from slices
    int64_t remote_admits = 0;  // remote script runs asked by Admit (with or without a slice)
    int64_t slices = 0;         // slices taken
  };
  Stats stats() const;

  // SharedState. Admit (blocking) and the operations below it go to the remote state as they
  // are; AdmitAsync, SettleAsync and SettleAll use the slices.
  Result<AdmitResult> Admit(const std::vector<BucketSpec>& buckets,
                            const std::vector<int64_t>& want,
                            const std::optional<AdmitBudget>& budget, int64_t now_ms) override;
  boost::asio::awaitable<Result<AdmitResult>> AdmitAsync(std::vector<BucketSpec> buckets,
                                                         std::vector<int64_t> want,
                                                         std::optional<AdmitBudget> budget,
                                                         int64_t now_ms) override;
  void SettleAsync(const boost::asio::any_io_executor& ex, Settlement s,
                   std::function<void(Status)> done) override;
  std::vector<Status> SettleAll(const std::vector<Settlement>& settlements) override;
  Result<TakeResult> Take(const std::vector<BucketSpec>& buckets, const std::vector<int64_t>& want,
                          int64_t now_ms) override;
  Status Give(const BucketSpec& bucket, int64_t n, int64_t now_ms) override;
  Result<ReserveResult> Reserve(const BudgetRef& ref, double budget, double amount,
                                const std::string& reservation_id, int64_t now_ms,
                                int64_t ttl_ms) override;
  Status Settle(const BudgetRef& ref, const std::string& reservation_id, double cost) override;
  Status SeedSpend(const BudgetRef& ref, double spent) override;
  Result<bool> Knows(const BudgetRef& ref) override;
  // The remote state's settled spend plus what this instance's slices settled and not sent.
  Result<double> Spent(const BudgetRef& ref) override;
  Status PublishOpenBreaker(const std::string& target, int64_t until_unix_ms) override;
  Result<std::vector<std::pair<std::string, int64_t>>> OpenBreakers(int64_t now_ms) override;
  Status PutValue(const std::string& key, const std::string& value, int64_t ttl_ms,
                  int64_t now_ms) override;
  Result<std::optional<std::string>> GetValue(const std::string& key, int64_t now_ms) override;
  std::string_view kind() const override { return remote_->kind(); }

  // The sizes of slices and the margins that keep a counter exact near its limit.
  static constexpr int64_t kBucketSliceDivisor = 64;   // a slice: limit / 64 tokens
  static constexpr int64_t kBucketSliceMinWants = 4;   // ... and at least 4 requests' worth
  static constexpr double kBudgetSliceDivisor = 16;    // a slice: room / 16
  static constexpr double kBudgetSliceMaxWants = 256;  // ... at most 256 worst cases
  static constexpr double kBudgetRoomMinWants = 128;   // no slice with less room than this

 private:
  struct BucketLease {
    int64_t limit = 0;
    int64_t tokens = 0;            // left to hand out (negative: requests used more than taken)
    int64_t remote_remaining = 0;  // the remote bucket right after the slice was taken
    int64_t until_ms = 0;
  };
  struct BudgetLease {
    BudgetRef ref;
    double budget = 0;
    std::string id;     // its reservation in the remote state
    double amount = 0;  // reserved there
    double used = 0;    // worst cases in flight + costs settled
    double spent = 0;   // costs settled
    int in_flight = 0;
    int64_t until_ms = 0;
    int64_t taken_ms = 0;
    int64_t ttl_ms = 0;      // its reservation's in the remote state
    bool shrinking = false;  // Shrink is at work on it (mu_ not held meanwhile)
    bool shrink_tried = false;
    double remote_spent = 0;  // when it was taken
    double remote_reserved = 0;
  };
  struct Seen {  // a counter's last remote answer
    int64_t limit = 0;
    int64_t remaining = 0;
    double committed = 0;  // budgets: spent + reserved
    int64_t at_ms = 0;
  };
  struct InFlight {
    std::shared_ptr<BudgetLease> lease;
    double amount = 0;
  };
  // What a request that missed asks for beyond itself.
  struct Plan {
    std::vector<int64_t> chunk;  // per bucket, 0: none
    double budget_chunk = 0;     // 0: none
    std::vector<std::string> marks;
    bool any() const { return !marks.empty(); }
  };

  static std::string RefKey(const BudgetRef& ref);
  bool TryLocal(const std::vector<BucketSpec>& buckets, const std::vector<int64_t>& want,
                const std::optional<AdmitBudget>& budget, int64_t now_ms, AdmitResult& out);
  Plan MakePlan(const std::vector<BucketSpec>& buckets, const std::vector<int64_t>& want,
                const std::optional<AdmitBudget>& budget, int64_t now_ms);
  // Takes the slices of a request the remote state let through with them.
  void Install(const std::vector<BucketSpec>& buckets, const Plan& plan,
               const std::optional<AdmitBudget>& budget, const std::string& lease_id,
               int64_t now_ms, AdmitResult& r);
  void Observe(const std::vector<BucketSpec>& buckets, const std::optional<AdmitBudget>& budget,
               const AdmitResult& r);
  // Takes the local parts of a settlement (mu_ held); what is left for the remote state, if
  // anything. `batch_spend`: the spend of a key without a budget waits for the next Tick.
  std::optional<Settlement> SettleLocal(Settlement s, bool batch_spend);
  // Ends `lease` (mu_ held): settled by the next Tick when nothing is in flight, else once the
  // last request settled.
  void Retire(std::shared_ptr<BudgetLease> lease);
  // Sends settlements to the remote state (mu_ not held); spend it refuses goes to
  // options_.unsettled.
  void Send(std::vector<Settlement> batch);
  // Moves the ended slices' settlements and the summed spend of keys without a budget into
  // `batch` (mu_ held).
  void DrainInto(std::vector<Settlement>& batch, int64_t now_ms);
  // Trades an ended slice's reservation for one of its calls in flight (mu_ not held).
  void Shrink(const std::shared_ptr<BudgetLease>& lease, int64_t now_ms);
  void TickLoop();

  std::unique_ptr<SharedState> remote_;
  LeaseOptions options_;
  std::atomic<int64_t> lease_ms_;
  std::string nonce_;  // names this instance's slices in the remote state

  mutable std::mutex mu_;
  std::unordered_map<std::string, BucketLease> buckets_;                // by bucket name
  std::unordered_map<std::string, std::shared_ptr<BudgetLease>> live_;  // by RefKey
  std::vector<std::shared_ptr<BudgetLease>> retiring_;  // ended, requests still in flight
  std::unordered_map<std::string, InFlight> requests_;  // by the request's reservation id
  std::unordered_map<std::string, Seen> seen_;          // by bucket name or RefKey
  std::unordered_set<std::string> acquiring_;           // slices being asked for
  std::unordered_map<std::string, std::pair<BudgetRef, double>> spend_;  // keys without budget
  std::vector<Settlement> outbox_;  // settlements of ended slices, sent by the next Tick
  uint64_t next_id_ = 0;
  Stats stats_;
  bool closed_ = false;

  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool tick_stop_ = false;
  std::thread ticker_;
};

}  // namespace iris::gateway::access
