// What every SharedState shares: Admit as Take, then Reserve (a state may do both in one step).
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

}  // namespace iris::gateway::access
