// SharedState in this process's memory: one mutex (every operation is a few map lookups).
#include <algorithm>
#include <cmath>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "gateway/access/state.h"

namespace iris::gateway::access {
namespace {

struct Bucket {
  double tokens = 0;
  int64_t updated_ms = 0;
  int64_t limit = 0;
};

struct Reservation {
  double amount = 0;
  int64_t made_ms = 0;
};

struct Period {
  double spent = 0;
  std::unordered_map<std::string, Reservation> reservations;
  std::unordered_map<std::string, int64_t> dropped;  // for their age: id -> made (ms)
};

// How long a reservation dropped for its age can still be settled (as in Redis).
constexpr int64_t kDroppedKeptMs = 3'600'000;

// Tokens per millisecond of a bucket of `limit` a minute.
double Rate(int64_t limit) { return static_cast<double>(limit) / 60'000.0; }

class MemoryState final : public SharedState {
 public:
  explicit MemoryState(size_t max_value_bytes) : max_value_bytes_(max_value_bytes) {}

  Result<TakeResult> Take(const std::vector<BucketSpec>& specs, const std::vector<int64_t>& want,
                          int64_t now_ms) override {
    std::lock_guard lock(mu_);
    TakeResult r;
    r.allowed = true;
    std::vector<Bucket*> buckets;
    for (size_t i = 0; i < specs.size(); ++i) {
      Bucket& b = Refill(specs[i], now_ms);
      buckets.push_back(&b);
      const double need = static_cast<double>(want[i]);
      if (b.tokens < need) {
        r.allowed = false;
        r.retry_after_s = std::max(r.retry_after_s, (need - b.tokens) / Rate(b.limit) / 1000.0);
      }
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      Bucket& b = *buckets[i];
      if (r.allowed) b.tokens -= static_cast<double>(want[i]);
      r.buckets.push_back(StateOf(b));
    }
    return r;
  }

  Status Give(const BucketSpec& spec, int64_t n, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    Bucket& b = Refill(spec, now_ms);
    b.tokens = std::min(static_cast<double>(b.limit), b.tokens + static_cast<double>(n));
    return OkStatus();
  }

  Result<ReserveResult> Reserve(const BudgetRef& ref, double budget, double amount,
                                const std::string& id, int64_t now_ms, int64_t ttl_ms) override {
    std::lock_guard lock(mu_);
    Period& p = periods_[Key(ref)];
    double reserved = 0;
    for (auto it = p.dropped.begin(); it != p.dropped.end();) {
      it = now_ms - it->second > ttl_ms + kDroppedKeptMs ? p.dropped.erase(it) : std::next(it);
    }
    for (auto it = p.reservations.begin(); it != p.reservations.end();) {
      if (now_ms - it->second.made_ms > ttl_ms) {
        p.dropped[it->first] = it->second.made_ms;  // still settled if its call ends
        it = p.reservations.erase(it);
      } else {
        reserved += it->second.amount;
        ++it;
      }
    }
    ReserveResult r;
    r.spent = p.spent;
    r.reserved = reserved;
    if (p.spent >= budget || p.spent + reserved + amount > budget) return r;
    p.reservations[id] = {amount, now_ms};
    r.allowed = true;
    r.reserved = reserved + amount;
    return r;
  }

  Status Settle(const BudgetRef& ref, const std::string& id, double cost) override {
    std::lock_guard lock(mu_);
    Period& p = periods_[Key(ref)];
    // A cost with a reservation counts when it removes it (as in Redis): one sent again finds
    // nothing and counts nothing.
    if (!id.empty() && p.reservations.erase(id) == 0 && p.dropped.erase(id) == 0) {
      return OkStatus();
    }
    p.spent += cost;
    return OkStatus();
  }

  Status SeedSpend(const BudgetRef& ref, double spent) override {
    std::lock_guard lock(mu_);
    auto [it, fresh] = periods_.try_emplace(Key(ref));
    if (fresh) it->second.spent = spent;
    return OkStatus();
  }

  Result<bool> Knows(const BudgetRef& ref) override {
    std::lock_guard lock(mu_);
    return periods_.contains(Key(ref));
  }

  Result<double> Spent(const BudgetRef& ref) override {
    std::lock_guard lock(mu_);
    auto it = periods_.find(Key(ref));
    return it == periods_.end() ? 0.0 : it->second.spent;
  }

  Status PublishOpenBreaker(const std::string& target, int64_t until_unix_ms) override {
    std::lock_guard lock(mu_);
    int64_t& until = breakers_[target];
    until = std::max(until, until_unix_ms);
    return OkStatus();
  }

  Result<std::vector<std::pair<std::string, int64_t>>> OpenBreakers(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, int64_t>> out;
    for (auto it = breakers_.begin(); it != breakers_.end();) {
      if (it->second <= now_ms) {
        it = breakers_.erase(it);
      } else {
        out.emplace_back(it->first, it->second);
        ++it;
      }
    }
    return out;
  }

  Status PutValue(const std::string& key, const std::string& value, int64_t ttl_ms,
                  int64_t now_ms) override {
    std::lock_guard lock(mu_);
    EraseValue(key);
    const size_t bytes = key.size() + value.size();
    if (bytes > max_value_bytes_) {
      return Status(ErrorCode::kResourceExhausted, "a value of " + std::to_string(value.size()) +
                                                       " bytes is over the memory state's limit");
    }
    while (value_bytes_ + bytes > max_value_bytes_ && !value_order_.empty()) {
      EraseValue(value_order_.front());
    }
    values_[key] = StoredValue{value, now_ms + ttl_ms, next_value_seq_};
    value_order_.push_back(key);  // oldest first; entries of replaced keys are skipped lazily
    value_seqs_.push_back(next_value_seq_++);
    value_bytes_ += bytes;
    return OkStatus();
  }

  Result<std::optional<std::string>> GetValue(const std::string& key, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    auto it = values_.find(key);
    if (it == values_.end()) return std::optional<std::string>();
    if (it->second.expires_ms <= now_ms) {
      EraseValue(key);
      return std::optional<std::string>();
    }
    return std::optional<std::string>(it->second.value);
  }

  std::string_view kind() const override { return "memory"; }

 private:
  struct StoredValue {
    std::string value;
    int64_t expires_ms = 0;
    uint64_t seq = 0;  // which entry of value_order_ is this value's
  };

  // Removes `key`'s value (when any) and the stale heads of the age order. mu_ held.
  void EraseValue(const std::string& key) {
    if (auto it = values_.find(key); it != values_.end()) {
      value_bytes_ -= it->second.value.size() + key.size();
      values_.erase(it);
    }
    while (!value_order_.empty()) {
      auto it = values_.find(value_order_.front());
      if (it != values_.end() && it->second.seq == value_seqs_.front()) break;
      value_order_.pop_front();
      value_seqs_.pop_front();
    }
  }

  static std::string Key(const BudgetRef& ref) {
    std::string k = ref.key_id;
    k.append(":").append(std::to_string(ref.period_start_ms));
    return k;
  }

  Bucket& Refill(const BucketSpec& spec, int64_t now_ms) {
    auto [it, fresh] = buckets_.try_emplace(spec.name);
    Bucket& b = it->second;
    if (fresh) {
      b.tokens = static_cast<double>(spec.limit);
      b.updated_ms = now_ms;
    }
    b.limit = spec.limit;
    if (now_ms > b.updated_ms) {
      b.tokens += static_cast<double>(now_ms - b.updated_ms) * Rate(b.limit);
      b.updated_ms = now_ms;
    }
    b.tokens = std::min(b.tokens, static_cast<double>(b.limit));
    return b;
  }

  static BucketState StateOf(const Bucket& b) {
    BucketState s;
    s.limit = b.limit;
    s.remaining = std::max<int64_t>(0, static_cast<int64_t>(std::floor(b.tokens)));
    s.reset_s =
        b.limit > 0
            ? std::max(0.0, (static_cast<double>(b.limit) - b.tokens) / Rate(b.limit) / 1000.0)
            : 0;
    return s;
  }

  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::unordered_map<std::string, Period> periods_;    // by "key_id:period_start"
  std::unordered_map<std::string, int64_t> breakers_;  // target -> open until (Unix ms)
  std::unordered_map<std::string, StoredValue> values_;
  std::deque<std::string> value_order_;  // keys, oldest first (with stale entries)
  std::deque<uint64_t> value_seqs_;      // the seq of each entry of value_order_
  uint64_t next_value_seq_ = 0;
  size_t value_bytes_ = 0;
  const size_t max_value_bytes_;
};

}  // namespace

std::unique_ptr<SharedState> NewMemoryState(size_t max_value_bytes) {
  return std::make_unique<MemoryState>(max_value_bytes);
}

}  // namespace iris::gateway::access
