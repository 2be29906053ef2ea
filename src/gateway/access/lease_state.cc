// Slices of remote counters handed out locally (lease_state.h).
#include "gateway/access/lease_state.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>

#include "base/time.h"
#include "gateway/access/keys.h"

namespace iris::gateway::access {
namespace {

// Seen answers unused this long are forgotten (old budget periods, deleted keys).
constexpr int64_t kSeenKeptMs = 600'000;

// Names this instance's slices in the remote state (unique, not secret).
std::string Nonce() {
  std::random_device rd;
  std::array<unsigned char, 12> b{};
  for (unsigned char& c : b) c = static_cast<unsigned char>(rd());
  return Base62(b.data(), b.size());
}

// A cost for the remote state: `cost` replaces reservation `id` (empty: adds to the spend).
Settlement SpendOf(const BudgetRef& ref, std::string id, double cost, int64_t at_ms) {
  Settlement s;
  s.at_ms = at_ms;
  s.spend = ref;
  s.reservation_id = std::move(id);
  s.cost = cost;
  return s;
}

}  // namespace

LeasedState::LeasedState(std::unique_ptr<SharedState> remote, LeaseOptions options)
    : remote_(std::move(remote)),
      options_(std::move(options)),
      lease_ms_(options_.lease_ms),
      nonce_(Nonce()) {
  if (options_.tick_thread) ticker_ = std::thread([this] { TickLoop(); });
}

LeasedState::~LeasedState() { Close(); }

std::string LeasedState::RefKey(const BudgetRef& ref) {
  std::string k = "budget:";
  k.append(ref.key_id).append(":").append(std::to_string(ref.period_start_ms));
  return k;
}

LeasedState::Stats LeasedState::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void LeasedState::TickLoop() {
  std::unique_lock lock(tick_mu_);
  while (!tick_stop_) {
    const int64_t lease = lease_ms_.load();
    const int64_t every = lease > 0 ? std::clamp<int64_t>(lease / 4, 5, 100) : 100;
    tick_cv_.wait_for(lock, std::chrono::milliseconds(every), [this] { return tick_stop_; });
    if (tick_stop_) break;
    lock.unlock();
    Tick(NowUnixMs());
    lock.lock();
  }
}

void LeasedState::Close(int64_t now_ms) {
  {
    std::lock_guard lock(tick_mu_);
    tick_stop_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::vector<Settlement> batch;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    const int64_t now = now_ms != 0 ? now_ms : NowUnixMs();
    for (auto& [name, l] : buckets_) {
      if (l.tokens != 0) batch.push_back(Settlement{{BucketSpec{name, l.limit}}, l.tokens, now});
    }
    buckets_.clear();
    for (auto& [key, lease] : live_) Retire(lease);
    live_.clear();
    // A request still in flight is charged its worst case: the slice is settled now, and the
    // request's own settlement later finds no reservation of its id and counts nothing.
    for (const auto& lease : retiring_) {
      outbox_.push_back(SpendOf(lease->ref, lease->id, lease->used, now));
    }
    retiring_.clear();
    requests_.clear();
    DrainInto(batch, now);
  }
  Send(std::move(batch));
}

void LeasedState::Tick(int64_t now_ms) {
  std::vector<Settlement> batch;
  std::vector<std::shared_ptr<BudgetLease>> shrink;  // ended with calls in flight
  std::vector<std::shared_ptr<BudgetLease>> live;    // budget slices being handed out
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      if (now_ms < it->second.until_ms) {
        ++it;
        continue;
      }
      if (it->second.tokens != 0) {
        batch.push_back(
            Settlement{{BucketSpec{it->first, it->second.limit}}, it->second.tokens, now_ms});
      }
      it = buckets_.erase(it);
    }
    for (auto it = live_.begin(); it != live_.end();) {
      if (now_ms < it->second->until_ms) {
        ++it;
        continue;
      }
      Retire(it->second);
      it = live_.erase(it);
    }
    // A slice whose calls have not all settled by half its reservation's ttl is settled now,
    // those calls at their worst case (a call that never settles must not hold the others'
    // spend until the remote state drops the reservation); their own settlements later find
    // no reservation of their ids and count nothing.
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      const std::shared_ptr<BudgetLease>& lease = *it;
      if (lease->shrinking || now_ms - lease->taken_ms < lease->ttl_ms / 2) {
        ++it;
        continue;
      }
      std::erase_if(requests_, [&](const auto& e) { return e.second.lease == lease; });
      outbox_.push_back(SpendOf(lease->ref, lease->id, lease->used, now_ms));
      it = retiring_.erase(it);
    }
    for (const auto& lease : retiring_) {
      if (!lease->shrink_tried && lease->amount > lease->used) {
        lease->shrink_tried = true;
        lease->shrinking = true;
        shrink.push_back(lease);
      }
    }
    for (const auto& [key, lease] : live_) live.push_back(lease);
    DrainInto(batch, now_ms);
    for (auto it = seen_.begin(); it != seen_.end();) {
      it = now_ms - it->second.at_ms > kSeenKeptMs ? seen_.erase(it) : std::next(it);
    }
  }
  Send(std::move(batch));
  for (auto& lease : shrink) Shrink(lease, now_ms);
  // A period the remote state no longer knows (it lost its data) is handed out of no more:
  // the next request asks, and the period is seeded from the request log.
  // (An unreachable state ends the checks of this tick: each would wait out its timeout.)
  for (const auto& lease : live) {
    Result<bool> known = remote_->Knows(lease->ref);
    if (!known.ok()) break;
    if (*known) continue;
    std::lock_guard lock(mu_);
    if (auto it = live_.find(RefKey(lease->ref)); it != live_.end() && it->second == lease) {
      Retire(it->second);
      live_.erase(it);
    }
  }
}

void LeasedState::Shrink(const std::shared_ptr<BudgetLease>& lease, int64_t now_ms) {
  // What the slice holds beyond its calls in flight goes back: their worst cases are reserved
  // on their own (a new reservation), then the slice is settled at what its settled calls
  // cost. When the budget has no room for the new reservation the slice stays whole until its
  // last call settles.
  double spent = 0, tail = 0, budget = 0;
  std::string id;
  BudgetRef ref;
  int64_t ttl = 0;
  {
    std::lock_guard lock(mu_);
    spent = lease->spent;
    tail = lease->used - lease->spent;
    budget = lease->budget;
    id = lease->id;
    ref = lease->ref;
    ttl = lease->ttl_ms;
  }
  const std::string tail_id = id + "-t";
  Result<ReserveResult> reserved = remote_->Reserve(ref, budget, tail, tail_id, now_ms, ttl);
  bool moved = false;
  if (reserved.ok() && reserved->allowed) {
    moved = true;
    if (Status st = remote_->Settle(ref, id, spent); !st.ok() && options_.unsettled) {
      options_.unsettled(SpendOf(ref, id, spent, now_ms));
    }
  }
  std::lock_guard lock(mu_);
  lease->shrinking = false;
  if (moved) {
    // Calls that settled meanwhile count in the new reservation's books.
    lease->id = tail_id;
    lease->amount = tail;
    lease->spent -= spent;
    lease->used -= spent;
    lease->taken_ms = now_ms;
  }
  if (lease->in_flight == 0 && !closed_) {
    std::erase(retiring_, lease);
    Retire(lease);
  }
}

void LeasedState::Send(std::vector<Settlement> batch) {
  if (batch.empty()) return;
  std::vector<Status> done = remote_->SettleAll(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    const Status st = i < done.size() ? done[i] : Status(ErrorCode::kInternal, "no status");
    if (st.ok() || !batch[i].spend) continue;  // a give that fails is dropped (tighter bucket)
    Settlement s = std::move(batch[i]);
    s.give_buckets.clear();
    s.give = 0;
    if (options_.unsettled) {
      options_.unsettled(std::move(s));
    } else {
      std::fprintf(stderr, "iris: keys: a settled cost of %.6f USD could not reach the state: %s\n",
                   s.cost, st.message().c_str());
    }
  }
}

void LeasedState::Retire(std::shared_ptr<BudgetLease> lease) {
  lease->until_ms = 0;  // hands out nothing more
  if (lease->in_flight > 0) {
    retiring_.push_back(std::move(lease));
    return;
  }
  outbox_.push_back(SpendOf(lease->ref, lease->id, lease->spent, NowUnixMs()));
}

void LeasedState::DrainInto(std::vector<Settlement>& batch, int64_t now_ms) {
  batch.insert(batch.end(), std::make_move_iterator(outbox_.begin()),
               std::make_move_iterator(outbox_.end()));
  outbox_.clear();
  for (auto& [key, e] : spend_) batch.push_back(SpendOf(e.first, "", e.second, now_ms));
  spend_.clear();
}

bool LeasedState::TryLocal(const std::vector<BucketSpec>& buckets, const std::vector<int64_t>& want,
                           const std::optional<AdmitBudget>& budget, int64_t now_ms,
                           AdmitResult& out) {
  if (buckets.empty() && !budget) return false;
  std::vector<BucketLease*> leases;
  leases.reserve(buckets.size());
  for (size_t i = 0; i < buckets.size(); ++i) {
    auto it = buckets_.find(buckets[i].name);
    if (it == buckets_.end()) return false;
    BucketLease& l = it->second;
    if (l.limit != buckets[i].limit || now_ms >= l.until_ms || l.tokens < want[i]) return false;
    leases.push_back(&l);
  }
  std::shared_ptr<BudgetLease> bl;
  if (budget) {
    auto it = live_.find(RefKey(budget->ref));
    if (it == live_.end()) return false;
    bl = it->second;
    if (bl->budget != budget->budget || now_ms >= bl->until_ms ||
        bl->amount - bl->used < budget->amount || requests_.contains(budget->reservation_id)) {
      return false;
    }
  }
  out.take.allowed = true;
  out.take.buckets.clear();
  for (size_t i = 0; i < leases.size(); ++i) {
    BucketLease& l = *leases[i];
    l.tokens -= want[i];
    BucketState b;
    b.limit = l.limit;
    b.remaining = std::clamp<int64_t>(l.remote_remaining + l.tokens, 0, l.limit);
    b.reset_s = static_cast<double>(l.limit - b.remaining) * 60.0 / static_cast<double>(l.limit);
    out.take.buckets.push_back(b);
  }
  if (bl) {
    bl->used += budget->amount;
    ++bl->in_flight;
    requests_[budget->reservation_id] = InFlight{bl, budget->amount};
    ReserveResult r;
    r.allowed = true;
    r.spent = bl->remote_spent + bl->spent;
    r.reserved = bl->remote_reserved;
    out.budget = r;
  }
  ++stats_.local_admits;
  return true;
}

LeasedState::Plan LeasedState::MakePlan(const std::vector<BucketSpec>& buckets,
                                        const std::vector<int64_t>& want,
                                        const std::optional<AdmitBudget>& budget, int64_t now_ms) {
  Plan p;
  p.chunk.assign(buckets.size(), 0);
  if (closed_ || lease_ms_.load() <= 0) return p;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const BucketSpec& b = buckets[i];
    if (acquiring_.contains(b.name)) continue;
    if (auto l = buckets_.find(b.name); l != buckets_.end() && l->second.limit == b.limit &&
                                        now_ms < l->second.until_ms &&
                                        l->second.tokens >= want[i]) {
      continue;  // its slice has room: the request missed for another counter
    }
    auto seen = seen_.find(b.name);
    if (seen == seen_.end() || seen->second.limit != b.limit) continue;
    const int64_t chunk = b.limit / kBucketSliceDivisor;
    if (chunk < kBucketSliceMinWants * std::max<int64_t>(want[i], 1)) continue;
    // Far from the limit only: the bucket stays at least half full after the slice.
    if (seen->second.remaining - want[i] - chunk < b.limit / 2) continue;
    p.chunk[i] = chunk;
    p.marks.push_back(b.name);
  }
  if (budget && budget->amount > 0) {
    const std::string key = RefKey(budget->ref);
    auto seen = seen_.find(key);
    auto live = live_.find(key);
    const bool has_room = live != live_.end() && live->second->budget == budget->budget &&
                          now_ms < live->second->until_ms &&
                          live->second->amount - live->second->used >= budget->amount;
    const double room = seen == seen_.end() ? 0 : budget->budget - seen->second.committed;
    if (!has_room && !acquiring_.contains(key) && room >= kBudgetRoomMinWants * budget->amount) {
      p.budget_chunk = std::min(room / kBudgetSliceDivisor, kBudgetSliceMaxWants * budget->amount);
      p.marks.push_back(key);
    }
  }
  for (const std::string& m : p.marks) acquiring_.insert(m);
  return p;
}

void LeasedState::Observe(const std::vector<BucketSpec>& buckets,
                          const std::optional<AdmitBudget>& budget, const AdmitResult& r) {
  const int64_t now = NowUnixMs();
  for (size_t i = 0; i < buckets.size() && i < r.take.buckets.size(); ++i) {
    Seen& s = seen_[buckets[i].name];
    s.limit = buckets[i].limit;
    s.remaining = r.take.buckets[i].remaining;
    s.at_ms = now;
  }
  if (budget && r.budget) {
    Seen& s = seen_[RefKey(budget->ref)];
    s.committed = r.budget->spent + r.budget->reserved;
    s.at_ms = now;
  }
}

void LeasedState::Install(const std::vector<BucketSpec>& buckets, const Plan& plan,
                          const std::optional<AdmitBudget>& budget, const std::string& lease_id,
                          int64_t now_ms, AdmitResult& r) {
  const int64_t lease_ms = lease_ms_.load();
  bool installed = false;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (plan.chunk[i] == 0) continue;
    if (i >= r.take.buckets.size() || r.take.buckets[i].remaining < buckets[i].limit / 2) {
      // The bucket was nearer its limit than last seen: the slice goes straight back.
      outbox_.push_back(Settlement{{buckets[i]}, plan.chunk[i], now_ms});
      continue;
    }
    BucketLease& l = buckets_[buckets[i].name];
    installed = true;
    // What an earlier slice has left is kept (a limit that changed starts over: the old
    // slice's tokens are the new one's all the same, and the remote bucket is capped).
    l.tokens = (l.limit == buckets[i].limit ? l.tokens : 0) + plan.chunk[i];
    l.limit = buckets[i].limit;
    l.remote_remaining = r.take.buckets[i].remaining;
    l.until_ms = now_ms + lease_ms;
    BucketState& b = r.take.buckets[i];
    b.remaining = std::clamp<int64_t>(b.remaining + l.tokens, 0, b.limit);
    b.reset_s = static_cast<double>(b.limit - b.remaining) * 60.0 / static_cast<double>(b.limit);
  }
  if (plan.budget_chunk > 0 && budget && r.budget && r.budget->allowed) {
    auto lease = std::make_shared<BudgetLease>();
    lease->ref = budget->ref;
    lease->budget = budget->budget;
    lease->id = lease_id;
    lease->amount = budget->amount + plan.budget_chunk;
    lease->used = budget->amount;
    lease->in_flight = 1;
    // It hands out nothing past half its reservation's ttl, whatever lease_ms says.
    lease->until_ms = now_ms + std::min(lease_ms, budget->ttl_ms / 2);
    lease->taken_ms = now_ms;
    lease->ttl_ms = budget->ttl_ms;
    lease->remote_spent = r.budget->spent;
    lease->remote_reserved = r.budget->reserved;
    auto& slot = live_[RefKey(budget->ref)];
    if (slot) Retire(std::move(slot));
    slot = lease;
    requests_[budget->reservation_id] = InFlight{lease, budget->amount};
    installed = true;
  }
  if (installed) ++stats_.slices;
}

Result<AdmitResult> LeasedState::Admit(const std::vector<BucketSpec>& buckets,
                                       const std::vector<int64_t>& want,
                                       const std::optional<AdmitBudget>& budget, int64_t now_ms) {
  return remote_->Admit(buckets, want, budget, now_ms);
}

boost::asio::awaitable<Result<AdmitResult>> LeasedState::AdmitAsync(
    std::vector<BucketSpec> buckets, std::vector<int64_t> want, std::optional<AdmitBudget> budget,
    int64_t now_ms) {
  Plan plan;
  std::string lease_id;
  {
    std::lock_guard lock(mu_);
    AdmitResult local;
    if (TryLocal(buckets, want, budget, now_ms, local)) co_return local;
    plan = MakePlan(buckets, want, budget, now_ms);
    if (plan.any()) lease_id = "lease-" + nonce_ + "-" + std::to_string(++next_id_);
  }
  if (plan.any()) {
    // The marks go when this frame does, however it ends (a coroutine destroyed at shutdown
    // while it waits included).
    struct Unmark {
      Unmark(LeasedState* s, const std::vector<std::string>* m) : self(s), marks(m) {}
      Unmark(const Unmark&) = delete;
      Unmark& operator=(const Unmark&) = delete;
      LeasedState* self;
      const std::vector<std::string>* marks;
      ~Unmark() {
        std::lock_guard lock(self->mu_);
        for (const std::string& m : *marks) self->acquiring_.erase(m);
      }
    };
    // The request and the slices in one script run.
    std::vector<BucketSpec> b = buckets;
    std::vector<int64_t> w = want;
    for (size_t i = 0; i < w.size(); ++i) w[i] += plan.chunk[i];
    std::optional<AdmitBudget> g = budget;
    if (plan.budget_chunk > 0) {
      g->amount += plan.budget_chunk;
      g->reservation_id = lease_id;
    }
    std::optional<Unmark> unmark;
    unmark.emplace(this, &plan.marks);
    Result<AdmitResult> r =
        co_await remote_->AdmitAsync(std::move(b), std::move(w), std::move(g), now_ms);
    unmark.reset();
    std::vector<Settlement> back;  // slices taken after Close: returned at once
    bool let_through = false;
    {
      std::lock_guard lock(mu_);
      ++stats_.remote_admits;
      if (!r.ok()) co_return r;
      Observe(buckets, budget, *r);
      let_through = r->take.allowed && (!budget || (r->budget.has_value() && r->budget->allowed));
      if (let_through) {
        if (!closed_) {
          Install(buckets, plan, budget, lease_id, now_ms, *r);
          co_return r;
        }
        for (size_t i = 0; i < buckets.size(); ++i) {
          if (plan.chunk[i] != 0) back.push_back(Settlement{{buckets[i]}, plan.chunk[i], now_ms});
        }
        if (plan.budget_chunk > 0) {
          // The reservation holds the request's worst case and the slice: settled at the
          // request's worst case (its own settlement then finds no reservation of its id).
          back.push_back(SpendOf(budget->ref, lease_id, budget->amount, now_ms));
        }
      }
    }
    if (let_through) {
      Send(std::move(back));
      co_return r;
    }
    // Refused with the slices: the request alone may still fit.
  }
  std::vector<BucketSpec> b = buckets;
  std::vector<int64_t> w = want;
  std::optional<AdmitBudget> g = budget;
  Result<AdmitResult> r =
      co_await remote_->AdmitAsync(std::move(b), std::move(w), std::move(g), now_ms);
  std::lock_guard lock(mu_);
  ++stats_.remote_admits;
  if (r.ok()) Observe(buckets, budget, *r);
  co_return r;
}

std::optional<Settlement> LeasedState::SettleLocal(Settlement s, bool batch_spend) {
  if (s.spend && !s.reservation_id.empty()) {
    if (auto it = requests_.find(s.reservation_id); it != requests_.end()) {
      std::shared_ptr<BudgetLease> lease = it->second.lease;
      lease->used += s.cost - it->second.amount;
      lease->spent += s.cost;
      --lease->in_flight;
      requests_.erase(it);
      if (lease->until_ms == 0 && lease->in_flight == 0 && !lease->shrinking) {
        std::erase(retiring_, lease);
        Retire(std::move(lease));
      }
      s.spend.reset();
      s.reservation_id.clear();
      s.cost = 0;
    }
  } else if (s.spend && batch_spend && !closed_ && lease_ms_.load() > 0) {
    auto& e = spend_[RefKey(*s.spend)];
    e.first = *s.spend;
    e.second += s.cost;
    s.spend.reset();
    s.cost = 0;
  }
  if (s.give != 0 && !s.give_buckets.empty()) {
    std::vector<BucketSpec> rest;
    for (BucketSpec& b : s.give_buckets) {
      auto it = buckets_.find(b.name);
      if (it != buckets_.end() && it->second.limit == b.limit) {
        it->second.tokens += s.give;
      } else {
        rest.push_back(std::move(b));
      }
    }
    s.give_buckets = std::move(rest);
  }
  if (s.give_buckets.empty()) s.give = 0;
  if (!s.spend && s.give == 0) return std::nullopt;
  return s;
}

void LeasedState::SettleAsync(const boost::asio::any_io_executor& ex, Settlement s,
                              std::function<void(Status)> done) {
  std::optional<Settlement> rest;
  {
    std::lock_guard lock(mu_);
    rest = SettleLocal(std::move(s), /*batch_spend=*/true);
  }
  if (!rest) {
    done(OkStatus());
    return;
  }
  if (!rest->spend) {
    // Only tokens back, and a give that fails is dropped: nothing for the caller to retry.
    remote_->SettleAsync(ex, std::move(*rest),
                         [done = std::move(done)](Status) { done(OkStatus()); });
    return;
  }
  remote_->SettleAsync(ex, std::move(*rest), std::move(done));
}

std::vector<Status> LeasedState::SettleAll(const std::vector<Settlement>& settlements) {
  std::vector<Status> out(settlements.size(), OkStatus());
  std::vector<Settlement> rest;
  std::vector<size_t> at;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < settlements.size(); ++i) {
      if (std::optional<Settlement> r = SettleLocal(settlements[i], /*batch_spend=*/false)) {
        rest.push_back(std::move(*r));
        at.push_back(i);
      }
    }
  }
  if (rest.empty()) return out;
  std::vector<Status> done = remote_->SettleAll(rest);
  for (size_t j = 0; j < at.size(); ++j) {
    out[at[j]] = j < done.size() ? done[j] : Status(ErrorCode::kInternal, "no status");
  }
  return out;
}

Result<TakeResult> LeasedState::Take(const std::vector<BucketSpec>& buckets,
                                     const std::vector<int64_t>& want, int64_t now_ms) {
  return remote_->Take(buckets, want, now_ms);
}

Status LeasedState::Give(const BucketSpec& bucket, int64_t n, int64_t now_ms) {
  return remote_->Give(bucket, n, now_ms);
}

Result<ReserveResult> LeasedState::Reserve(const BudgetRef& ref, double budget, double amount,
                                           const std::string& reservation_id, int64_t now_ms,
                                           int64_t ttl_ms) {
  return remote_->Reserve(ref, budget, amount, reservation_id, now_ms, ttl_ms);
}

Status LeasedState::Settle(const BudgetRef& ref, const std::string& reservation_id, double cost) {
  return remote_->Settle(ref, reservation_id, cost);
}

Status LeasedState::SeedSpend(const BudgetRef& ref, double spent) {
  return remote_->SeedSpend(ref, spent);
}

Result<bool> LeasedState::Knows(const BudgetRef& ref) { return remote_->Knows(ref); }

Result<double> LeasedState::Spent(const BudgetRef& ref) {
  IRIS_ASSIGN_OR_RETURN(double spent, remote_->Spent(ref));
  const std::string key = RefKey(ref);
  std::lock_guard lock(mu_);
  if (auto it = live_.find(key); it != live_.end()) spent += it->second->spent;
  for (const auto& lease : retiring_) {
    if (RefKey(lease->ref) == key) spent += lease->spent;
  }
  for (const Settlement& s : outbox_) {
    if (s.spend && RefKey(*s.spend) == key) spent += s.cost;
  }
  if (auto it = spend_.find(key); it != spend_.end()) spent += it->second.second;
  return spent;
}

Status LeasedState::PublishOpenBreaker(const std::string& target, int64_t until_unix_ms) {
  return remote_->PublishOpenBreaker(target, until_unix_ms);
}

Result<std::vector<std::pair<std::string, int64_t>>> LeasedState::OpenBreakers(int64_t now_ms) {
  return remote_->OpenBreakers(now_ms);
}

Status LeasedState::PutValue(const std::string& key, const std::string& value, int64_t ttl_ms,
                             int64_t now_ms) {
  return remote_->PutValue(key, value, ttl_ms, now_ms);
}

Result<std::optional<std::string>> LeasedState::GetValue(const std::string& key, int64_t now_ms) {
  return remote_->GetValue(key, now_ms);
}

}  // namespace iris::gateway::access
