// What every SharedState shares: Admit as Take, then Reserve (a state may do both in one step);
// AdmitAsync as Admit; SettleAll as Give and Settle, one settlement after another.
#include "gateway/access/state.h"

namespace iris::gateway::access {

Result<AdmitResult> SharedState::Admit(const std::vector<BucketSpec>& buckets,
                                       const std::vector<int64_t>& want,
                                       const std::optional<AdmitBudget>& budget, int64_t now_ms) {
  AdmitResult r;
  r.take.allowed = true;
  if (!buckets.empty()) {
    IRIS_ASSIGN_OR_RETURN(r.take, Take(buckets, want, now_ms));
    if (!r.take.allowed) return r;
  }
  if (!budget) return r;
  Result<ReserveResult> reserved = Reserve(budget->ref, budget->budget, budget->amount,
                                           budget->reservation_id, now_ms, budget->ttl_ms);
  if (!reserved.ok() || !reserved->allowed) {
    for (size_t i = 0; i < buckets.size(); ++i) (void)Give(buckets[i], want[i], now_ms);
  }
  if (!reserved.ok()) return reserved.status();
  r.budget = *reserved;
  return r;
}

boost::asio::awaitable<Result<AdmitResult>> SharedState::AdmitAsync(
    std::vector<BucketSpec> buckets, std::vector<int64_t> want, std::optional<AdmitBudget> budget,
    int64_t now_ms) {
  co_return Admit(buckets, want, budget, now_ms);
}

void SharedState::SettleAsync(const boost::asio::any_io_executor& /*ex*/, Settlement s,
                              std::function<void(Status)> done) {
  std::vector<Settlement> one;
  one.push_back(std::move(s));
  done(SettleAll(one).front());
}

std::vector<Status> SharedState::SettleAll(const std::vector<Settlement>& settlements) {
  std::vector<Status> out;
  out.reserve(settlements.size());
  for (const Settlement& s : settlements) {
    if (s.give != 0) {
      for (const BucketSpec& b : s.give_buckets) (void)Give(b, s.give, s.at_ms);
    }
    out.push_back(s.spend ? Settle(*s.spend, s.reservation_id, s.cost) : OkStatus());
  }
  return out;
}

}  // namespace iris::gateway::access
