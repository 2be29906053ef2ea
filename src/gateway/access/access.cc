// Keys, limits and budgets enforced (access.h); the counters themselves are a SharedState.
#include "gateway/access/access.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "base/hex.h"
#include "base/time.h"
#include "gateway/api/errors.h"

namespace iris::gateway::access {

namespace {

constexpr size_t kMaxPresentedKey = 512;
constexpr std::string_view kSessionCookie = "iris_session";

GatewayError Refuse(ErrorClass error_class, std::string message, std::string code = {}) {
  GatewayError e;
  e.error_class = error_class;
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

// The key a caller presents: "Authorization: Bearer KEY" (OpenAI SDKs) or "x-api-key: KEY"
// (Anthropic SDKs); empty when neither.
std::string_view PresentedKey(const http::Headers& headers) {
  std::string_view auth = headers.Get("authorization");
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    std::string_view k = auth.substr(7);
    while (!k.empty() && k.front() == ' ') k.remove_prefix(1);
    while (!k.empty() && k.back() == ' ') k.remove_suffix(1);
    return k;
  }
  return headers.Get("x-api-key");
}

// A budget refused only for what is reserved (calls in flight, a slice another instance holds,
// the reservations of an instance that died): what is settled leaves room for this call's
// worst case.
bool RefusedForHolds(const std::optional<AdmitBudget>& asked, const Result<AdmitResult>& r) {
  if (!asked || !r.ok() || !r->take.allowed || !r->budget || r->budget->allowed) return false;
  return r->budget->reserved > 0 && r->budget->spent < asked->budget &&
         r->budget->spent + asked->amount <= asked->budget;
}

// How long Admit waits, and how often it asks again, before refusing for holds alone; and how
// many of one key's calls may wait so at once (the others are refused without waiting).
constexpr std::array<int, 5> kHoldWaitsMs{5, 10, 20, 40, 80};
constexpr int kMaxHoldWaitersPerKey = 8;

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string SessionMac(std::string_view master_key, int64_t expires_unix_ms) {
  const std::string msg = "iris-dashboard-session:" + std::to_string(expires_unix_ms);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), master_key.data(), static_cast<int>(master_key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return HexEncode(mac, len);
}

// The budget period of `key` that holds `now`.
BudgetRef RefFor(const KeyRecord& key, int64_t now) {
  Result<BudgetPeriod> period = ParseBudgetPeriod(key.budget_period);
  return BudgetRef{key.id, PeriodStart(period.ok() ? *period : BudgetPeriod::kTotal, now)};
}

std::string Dollars(double usd) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "$%.4f", usd);
  return buf;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace

const std::string& Caller::key_id() const {
  static const std::string kMaster = "master";
  static const std::string kNone;
  if (key) return key->id;
  return master ? kMaster : kNone;
}

std::string ResetDuration(double seconds) {
  if (!(seconds > 0)) return "0s";
  if (seconds < 1) return std::to_string(static_cast<int64_t>(std::ceil(seconds * 1000))) + "ms";
  const int64_t s = static_cast<int64_t>(std::ceil(seconds));
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s >= 60) out += std::to_string((s / 60) % 60) + "m";
  out += std::to_string(s % 60) + "s";
  return out;
}

int64_t EstimateEmbeddingTokens(const EmbeddingRequest& request) {
  int64_t chars = 0;
  int64_t tokens = 0;
  for (const std::string& t : request.texts) chars += static_cast<int64_t>(t.size());
  for (const auto& input : request.token_inputs) tokens += static_cast<int64_t>(input.size());
  return tokens + (chars + 2) / 3;
}

int64_t EstimatePromptTokens(const ChatRequest& request) {
  int64_t chars = 0;
  int64_t tokens = 0;
  for (const Message& m : request.messages) {
    tokens += 4;
    for (const ContentPart& p : m.content) {
      if (p.type == ContentPart::Type::kImage) {
        tokens += 1600;
      } else {
        chars += static_cast<int64_t>(p.text.size());
      }
    }
    for (const ToolCall& c : m.tool_calls) {
      chars += static_cast<int64_t>(c.name.size() + c.arguments.size());
    }
  }
  for (const Tool& t : request.tools) {
    chars += static_cast<int64_t>(t.name.size() + t.description.size()) + 256;
  }
  return tokens + (chars + 2) / 3;
}

Access::Access(Options options)
    : config_(std::move(options.config)),
      store_spec_(std::move(options.store)),
      state_(options.state ? std::move(options.state) : NewMemoryState()),
      table_(std::make_shared<const Table>()) {}

Result<std::unique_ptr<Access>> Access::Start(Options options) {
  if (!options.state && !options.config->state.empty()) {
    IRIS_ASSIGN_OR_RETURN(options.state, NewRedisState(options.config->state));
  }
  std::unique_ptr<Access> a(new Access(std::move(options)));
  if (a->state_->kind() != "memory") {
    // Counters far from their limits are handed out in slices (one round trip per slice);
    // what the remote state cannot take of a slice's spend goes to the settlers' queue.
    LeaseOptions lo;
    lo.lease_ms = a->config()->auth.lease.count();
    lo.unsettled = [p = a.get()](Settlement s) {
      {
        std::lock_guard lock(p->pending_mu_);
        p->settle_queue_.push_back(std::move(s));
      }
      p->settle_cv_.notify_one();
    };
    auto leased = std::make_unique<LeasedState>(std::move(a->state_), std::move(lo));
    a->leases_ = leased.get();
    a->state_ = std::move(leased);
  }
  if (a->store_spec_ != "none") {
    auto store = observe::OpenStore(a->store_spec_);
    if (!store.ok()) {
      return Status(store.status().code(), "the key table: " + store.status().message());
    }
    a->store_ = std::move(store).value();
  }
  IRIS_RETURN_IF_ERROR(a->Refresh());
  a->refresher_ = std::thread([p = a.get()] { p->RefreshLoop(); });
  if (a->state_->kind() != "memory") {
    for (auto& t : a->settlers_) t = std::thread([p = a.get()] { p->SettleLoop(); });
  }
  return a;
}

Access::~Access() {
  alive_.reset();  // Settle callbacks still to come do nothing
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  // The slices end while the settlers still run (what the state refuses is queued for them).
  if (leases_ != nullptr) leases_->Close();
  {
    std::lock_guard lock(pending_mu_);
    settle_stop_ = true;
  }
  settle_cv_.notify_all();
  for (auto& t : settlers_) {
    if (t.joinable()) t.join();  // the queue is drained first
  }
  // A last try for the costs the shared state has not taken; what remains is said (it is in
  // the request log, not in the state's counters).
  FlushPending();
  std::lock_guard lock(pending_mu_);
  if (!pending_.empty()) {
    double total = 0;
    for (const Settlement& p : pending_) total += p.cost;
    std::fprintf(stderr,
                 "iris: keys: %zu settled costs (%s in all) could not reach the shared state "
                 "before exit; they are in the request log only\n",
                 pending_.size(), Dollars(total).c_str());
  }
}

void Access::Reload(std::shared_ptr<const config::Config> config) {
  if (leases_ != nullptr) leases_->SetLeaseMs(config->auth.lease.count());
  config_.store(std::move(config));
}

Status Access::RefreshNow() { return Refresh(); }

void Access::SetTick(std::function<void(SharedState&)> fn) {
  std::lock_guard lock(tick_mu_);
  tick_ = std::move(fn);
}

Status Access::Refresh() {
  std::lock_guard lock(store_mu_);
  if (!store_) return OkStatus();  // no store (--db none): the master key only
  IRIS_ASSIGN_OR_RETURN(std::vector<KeyRecord> keys, store_->FetchKeys());
  auto table = std::make_shared<Table>();
  const int64_t now = NowUnixMs();
  // This period's spend, from the request log, for each key whose period the counters have
  // not seen (at start, after the shared state lost it, when a period begins): one query per
  // distinct period start, not one per key.
  std::map<int64_t, std::vector<BudgetRef>> unseen;
  for (KeyRecord& k : keys) {
    auto shared = std::make_shared<const KeyRecord>(std::move(k));
    table->by_hash[shared->key_hash] = shared;
    table->all.push_back(shared);
    if (Unusable(*shared, now)) continue;
    const BudgetRef ref = RefFor(*shared, now);
    // Asked once per key and period (a state that loses a period later answers NotFound to
    // Reserve and Settle, which seed it then).
    const std::string id = ref.key_id + ":" + std::to_string(ref.period_start_ms);
    if (checked_periods_.contains(id)) continue;
    Result<bool> known = state_->Knows(ref);
    if (!known.ok()) continue;
    if (!*known) unseen[ref.period_start_ms].push_back(ref);
    checked_periods_.insert(id);
  }
  for (const auto& [since, refs] : unseen) {
    auto spend = store_->SpendByKeySince(since);
    for (const BudgetRef& ref : refs) {
      Status st = spend.ok() ? OkStatus() : spend.status();
      if (st.ok()) {
        auto it = spend->find(ref.key_id);
        st = state_->SeedSpend(ref, it == spend->end() ? 0.0 : it->second);
      }
      if (!st.ok()) {
        checked_periods_.erase(ref.key_id + ":" + std::to_string(ref.period_start_ms));
        return st;
      }
    }
  }
  table_.store(std::move(table));
  return OkStatus();
}

void Access::RefreshLoop() {
  bool failing = false;
  std::unique_lock lock(stop_mu_);
  while (!stop_) {
    const auto every = std::max(config()->auth.key_refresh, std::chrono::milliseconds(50));
    if (stop_cv_.wait_for(lock, every, [this] { return stop_; })) break;
    lock.unlock();
    FlushPending();
    Status st = Refresh();
    // Said once per change, not once per tick.
    if (!st.ok() && !failing) {
      std::fprintf(stderr, "iris: keys: cannot re-read the key table (keeping the last one): %s\n",
                   st.message().c_str());
    } else if (st.ok() && failing) {
      std::fprintf(stderr, "iris: keys: the key table is readable again\n");
    }
    failing = !st.ok();
    {
      std::lock_guard tick_lock(tick_mu_);
      if (tick_) tick_(*state_);
    }
    lock.lock();
  }
}

Status Access::SeedPeriod(const BudgetRef& ref) {
  double spent = 0;
  {
    std::lock_guard lock(store_mu_);
    if (store_) {
      IRIS_ASSIGN_OR_RETURN(auto spend, store_->SpendByKeySince(ref.period_start_ms));
      if (auto it = spend.find(ref.key_id); it != spend.end()) spent = it->second;
    }
  }
  return state_->SeedSpend(ref, spent);
}

void Access::NoteState(const Status& st) {
  const bool up = st.ok() || st.code() == ErrorCode::kNotFound;
  if (state_up_.exchange(up) != up) {
    if (up) {
      std::fprintf(stderr, "iris: keys: the shared state (%s) answers again\n",
                   std::string(state_->kind()).c_str());
    } else {
      std::fprintf(stderr,
                   "iris: keys: the shared state (%s) is unreachable: %s (state_failure: %s)\n",
                   std::string(state_->kind()).c_str(), st.message().c_str(),
                   config()->state_failure == config::StateFailure::kOpen ? "open, serving"
                                                                          : "closed, refusing");
    }
  }
}

size_t Access::PendingSettles() const {
  std::lock_guard lock(pending_mu_);
  return pending_.size() + settle_queue_.size() + settling_;
}

void Access::SettleLoop() {
  std::unique_lock lock(pending_mu_);
  for (;;) {
    settle_cv_.wait(lock, [this] { return settle_stop_ || !settle_queue_.empty(); });
    if (settle_queue_.empty()) return;  // stopping, and nothing left
    // What has queued up, as one batch (the other settler takes what comes meanwhile).
    const size_t take = std::min<size_t>(settle_queue_.size(), 256);
    std::vector<Settlement> batch(std::make_move_iterator(settle_queue_.begin()),
                                  std::make_move_iterator(settle_queue_.begin() + take));
    settle_queue_.erase(settle_queue_.begin(), settle_queue_.begin() + take);
    settling_ += take;
    lock.unlock();
    RunSettles(batch);
    lock.lock();
    settling_ -= take;
  }
}

void Access::RunSettles(std::vector<Settlement>& batch) {
  std::vector<Status> done = state_->SettleAll(batch);
  std::vector<Settlement> failed;
  for (size_t i = 0; i < batch.size(); ++i) {
    Settlement& s = batch[i];
    Status st = i < done.size() ? done[i] : Status(ErrorCode::kInternal, "no status");
    if (st.code() == ErrorCode::kNotFound && s.spend) {
      // A period the state has not seen: seeded from the request log, then settled (the
      // tokens went back already).
      Status seeded = SeedPeriod(*s.spend);
      st = seeded.ok() ? state_->Settle(*s.spend, s.reservation_id, s.cost) : seeded;
    }
    NoteState(st);
    if (!st.ok() && s.spend) {
      s.give_buckets.clear();
      s.give = 0;
      failed.push_back(std::move(s));
    }
  }
  if (!failed.empty()) {
    // Kept and retried until the state takes them: settled spend is never dropped.
    std::lock_guard lock(pending_mu_);
    pending_.insert(pending_.end(), std::make_move_iterator(failed.begin()),
                    std::make_move_iterator(failed.end()));
  }
}

void Access::FlushPending() {
  std::vector<Settlement> todo;
  {
    std::lock_guard lock(pending_mu_);
    todo.swap(pending_);
  }
  if (!todo.empty()) RunSettles(todo);
}

bool Access::HasMasterKey() const { return !config()->auth.master_key.empty(); }

bool Access::Required() const { return RequiredBy(*config(), *table_.load()); }

bool Access::EnterHoldWait(const std::string& key_id) {
  std::lock_guard lock(hold_waiters_mu_);
  int& n = hold_waiters_[key_id];
  if (n >= kMaxHoldWaitersPerKey) return false;
  ++n;
  return true;
}

void Access::LeaveHoldWait(const std::string& key_id) {
  std::lock_guard lock(hold_waiters_mu_);
  auto it = hold_waiters_.find(key_id);
  if (it != hold_waiters_.end() && --it->second <= 0) hold_waiters_.erase(it);
}

bool Access::RequiredBy(const config::Config& cfg, const Table& table) {
  switch (cfg.auth.mode) {
    case config::AuthMode::kKeys:
      return true;
    case config::AuthMode::kNone:
      return false;
    case config::AuthMode::kAuto:
      break;
  }
  return !config::IsLoopbackHost(cfg.server.listen.host) || !cfg.auth.master_key.empty() ||
         !table.all.empty();
}

std::optional<GatewayError> Access::Identify(const http::Headers& headers, Caller& caller) const {
  caller = Caller{};
  // One reading of the configuration and the table for the whole decision.
  const auto cfg = config();
  const auto table = table_.load();
  const bool required = RequiredBy(*cfg, *table);
  std::string_view presented = PresentedKey(headers);
  if (presented.empty()) {
    if (!required) return std::nullopt;
    return Refuse(ErrorClass::kAuthentication,
                  "this gateway needs an API key: send it as \"Authorization: Bearer sk-iris-...\" "
                  "(OpenAI SDKs) or \"x-api-key: sk-iris-...\" (Anthropic SDKs); an operator "
                  "makes one with `iris keys create --name NAME`",
                  "missing_api_key");
  }
  if (presented.size() > kMaxPresentedKey) {
    if (!required) return std::nullopt;
    return Refuse(ErrorClass::kAuthentication, "the API key presented is not a valid iris key",
                  "invalid_api_key");
  }
  const std::string& master = cfg->auth.master_key;
  if (!master.empty() && ConstantTimeEquals(presented, master)) {
    caller.master = true;
    return std::nullopt;
  }
  // (No keys, as on a gateway without auth: no hash to compute.)
  auto it = table->by_hash.empty() ? table->by_hash.end() : table->by_hash.find(HashKey(presented));
  if (it == table->by_hash.end()) {
    // With auth off, a client's placeholder key ("sk-anything") is not an error.
    if (!required) return std::nullopt;
    // (Nothing of what was presented is repeated: a provider's key sent here by mistake
    // must not reach the request log.)
    return Refuse(ErrorClass::kAuthentication,
                  "the API key presented is not a key of this gateway (iris keys are "
                  "sk-iris-...; ask the operator for one)",
                  "invalid_api_key");
  }
  if (auto why = Unusable(*it->second, NowUnixMs())) {
    return Refuse(ErrorClass::kAuthentication, *why, "invalid_api_key");
  }
  caller.key = it->second;
  return std::nullopt;
}

std::optional<GatewayError> Access::Permit(const Caller& caller,
                                           const std::vector<std::string>& models) const {
  if (!caller.key) return std::nullopt;
  for (const std::string& m : models) {
    if (!AllowsModel(*caller.key, m)) {
      return Refuse(ErrorClass::kPermission,
                    "the API key \"" + caller.key->name + "\" may not use the model \"" + m +
                        "\"; it may use: " + Join(caller.key->models),
                    "model_not_allowed");
    }
  }
  return std::nullopt;
}

// What one request asks of the shared state: its buckets (the key's own, then the model's, for
// everyone) and its budget reservation.
struct Access::Asked {
  std::vector<BucketSpec> buckets;
  std::vector<int64_t> want;
  int key_rpm = -1;  // index of the key's RPM bucket, -1: none
  int key_tpm = -1;
  std::optional<AdmitBudget> budget;
};

std::optional<GatewayError> Access::Ask(const config::Config& cfg, const Caller& caller,
                                        const AdmitRequest& request, int64_t now,
                                        Asked& asked) const {
  const KeyRecord* key = caller.key.get();
  std::vector<BucketSpec>& buckets = asked.buckets;
  std::vector<int64_t>& want = asked.want;
  if (key != nullptr && key->rpm > 0) {
    asked.key_rpm = static_cast<int>(buckets.size());
    buckets.push_back({"rpm:" + key->id, key->rpm});
    want.push_back(1);
  }
  if (key != nullptr && key->tpm > 0) {
    asked.key_tpm = static_cast<int>(buckets.size());
    buckets.push_back({"tpm:" + key->id, key->tpm});
    want.push_back(request.estimated_tokens);
  }
  if (auto it = cfg.auth.model_limits.find(request.model); it != cfg.auth.model_limits.end()) {
    if (it->second.rpm > 0) {
      buckets.push_back({"model-rpm:" + request.model, it->second.rpm});
      want.push_back(1);
    }
    if (it->second.tpm > 0) {
      buckets.push_back({"model-tpm:" + request.model, it->second.tpm});
      want.push_back(request.estimated_tokens);
    }
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].name.starts_with("rpm:") || buckets[i].name.starts_with("model-rpm:")) continue;
    if (want[i] > buckets[i].limit) {
      return Refuse(ErrorClass::kInvalidRequest,
                    "this request may use up to " + std::to_string(want[i]) +
                        " tokens (the prompt's estimate plus max_tokens), more than the limit of " +
                        std::to_string(buckets[i].limit) +
                        " tokens a minute; lower max_tokens or shorten the prompt",
                    "tokens_over_limit");
    }
  }
  if (key != nullptr && key->budget_usd) {
    asked.budget =
        AdmitBudget{RefFor(*key, now), *key->budget_usd, request.worst_cost_usd,
                    request.request_id.empty() ? std::to_string(now) : request.request_id,
                    static_cast<int64_t>(cfg.auth.reservation_ttl.count())};
  }
  return std::nullopt;
}

boost::asio::awaitable<std::optional<GatewayError>> Access::Admit(const Caller& caller,
                                                                  const AdmitRequest& request,
                                                                  Admission& admission) {
  const auto cfg = config();
  const int64_t now = NowUnixMs();
  Asked asked;
  if (std::optional<GatewayError> refused = Ask(*cfg, caller, request, now, asked)) {
    co_return refused;
  }
  if (asked.buckets.empty() && !asked.budget) co_return std::nullopt;
  Result<AdmitResult> admitted = Status(ErrorCode::kInternal, "not asked");
  for (int attempt = 0; attempt < 2; ++attempt) {
    // (Copies made before the co_await: GCC 12 mishandles temporaries inside one.)
    std::vector<BucketSpec> buckets = asked.buckets;
    std::vector<int64_t> want = asked.want;
    std::optional<AdmitBudget> budget = asked.budget;
    admitted =
        co_await state_->AdmitAsync(std::move(buckets), std::move(want), std::move(budget), now);
    if (attempt > 0 || admitted.ok() || admitted.status().code() != ErrorCode::kNotFound ||
        !asked.budget) {
      break;
    }
    // A period the state has not seen: its spend so far comes from the request log (a blocking
    // read, once a period for each key), then the state is asked again.
    if (Status seeded = SeedPeriod(asked.budget->ref); !seeded.ok()) {
      admitted = seeded;
      break;
    }
  }
  // A call settles its cost just after its answer is sent (with a remote state, from its
  // worker's next turn), so its caller's next call, on any instance, can still find its
  // reservation held. A refusal for holds alone asks again over about 150 ms before it stands
  // (a refusal takes nothing, so asking again is safe); a few of a key's calls at a time.
  if (RefusedForHolds(asked.budget, admitted) && EnterHoldWait(caller.key_id())) {
    struct Leave {  // (also when the coroutine is destroyed while it waits)
      Access* self;
      std::string key_id;
      ~Leave() { self->LeaveHoldWait(key_id); }
    } leave{this, caller.key_id()};
    for (const int wait_ms : kHoldWaitsMs) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                      std::chrono::milliseconds(wait_ms));
      co_await timer.async_wait(boost::asio::use_awaitable);
      std::vector<BucketSpec> buckets = asked.buckets;
      std::vector<int64_t> want = asked.want;
      std::optional<AdmitBudget> budget = asked.budget;
      Result<AdmitResult> again = co_await state_->AdmitAsync(std::move(buckets), std::move(want),
                                                              std::move(budget), NowUnixMs());
      if (!again.ok()) break;  // the refusal stands (never an admission for a state error)
      admitted = std::move(again);
      if (!RefusedForHolds(asked.budget, admitted)) break;
    }
  }
  co_return Answer(*cfg, caller, request, asked, admitted, admission);
}

std::optional<GatewayError> Access::Answer(const config::Config& cfg, const Caller& caller,
                                           const AdmitRequest& request, const Asked& asked,
                                           const Result<AdmitResult>& admitted,
                                           Admission& admission) {
  const KeyRecord* key = caller.key.get();
  NoteState(admitted.status());
  if (!admitted.ok()) {
    if (cfg.state_failure == config::StateFailure::kClosed) {
      return Refuse(ErrorClass::kOverloaded,
                    "rate limits and budgets cannot be checked right now (the shared state is "
                    "unreachable)");
    }
    return std::nullopt;  // state_failure: open; the cost is settled when the state is back
  }
  const TakeResult& t = admitted->take;
  auto add = [&](int i, std::string_view what) {
    if (i < 0 || static_cast<size_t>(i) >= t.buckets.size()) return;
    const BucketState& b = t.buckets[static_cast<size_t>(i)];
    const std::string w(what);
    admission.headers.emplace_back("x-ratelimit-limit-" + w, std::to_string(b.limit));
    admission.headers.emplace_back("x-ratelimit-remaining-" + w, std::to_string(b.remaining));
    admission.headers.emplace_back("x-ratelimit-reset-" + w, ResetDuration(b.reset_s));
  };
  add(asked.key_rpm, "requests");
  add(asked.key_tpm, "tokens");
  if (!t.allowed) {
    GatewayError e = Refuse(ErrorClass::kRateLimited,
                            "rate limit reached for " +
                                (key != nullptr ? "the API key \"" + key->name + "\""
                                                : "the model \"" + request.model + "\"") +
                                "; try again in " + ResetDuration(t.retry_after_s),
                            "rate_limit_exceeded");
    e.retry_after_s = std::max(1.0, std::ceil(t.retry_after_s));
    return e;
  }
  if (asked.budget && admitted->budget && !admitted->budget->allowed) {
    const ReserveResult& r = *admitted->budget;
    if (RefusedForHolds(asked.budget, admitted)) {
      GatewayError e =
          Refuse(ErrorClass::kRateLimited,
                 "the API key \"" + key->name + "\" has " + Dollars(*key->budget_usd - r.spent) +
                     " of its " + Dollars(*key->budget_usd) + " budget unspent, but " +
                     Dollars(r.reserved) +
                     " of it is reserved (calls in flight, or what other instances hold) and this "
                     "call may cost " +
                     Dollars(request.worst_cost_usd) + "; try again when they settle",
                 "budget_held");
      e.retry_after_s = 1;
      return e;
    }
    std::string when = key->budget_period == "total"
                           ? std::string("it does not reset; raise it with `iris keys update`")
                           : "it resets at the start of the next " + key->budget_period + " (UTC)";
    return Refuse(ErrorClass::kRateLimited,
                  "the API key \"" + key->name + "\" has reached its budget of " +
                      Dollars(*key->budget_usd) + " (" + Dollars(r.spent) + " spent, " +
                      Dollars(r.reserved) + " reserved by calls in flight, this call may cost " +
                      Dollars(request.worst_cost_usd) + "); " + when,
                  "insufficient_quota");
  }
  for (const BucketSpec& b : asked.buckets) {
    if (b.name.starts_with("tpm:") || b.name.starts_with("model-tpm:")) {
      admission.token_buckets.push_back(b);
    }
  }
  admission.tokens_taken = request.estimated_tokens;
  if (asked.budget) {
    admission.budget = asked.budget->ref;
    admission.reservation_id = asked.budget->reservation_id;
    admission.reserved_usd = request.worst_cost_usd;
  }
  return std::nullopt;
}

void Access::Settle(const Caller& caller, Admission& admission, bool answered,
                    std::optional<double> cost_usd, std::optional<int64_t> tokens_used,
                    const boost::asio::any_io_executor* ex) {
  if (admission.settled) return;
  admission.settled = true;
  Settlement s;
  s.at_ms = NowUnixMs();
  const int64_t used = tokens_used ? *tokens_used : (answered ? admission.tokens_taken : 0);
  s.give = admission.tokens_taken - used;
  if (s.give != 0) s.give_buckets = admission.token_buckets;
  s.cost = cost_usd ? *cost_usd : (answered ? admission.reserved_usd : 0.0);
  if (admission.budget) {
    s.spend = *admission.budget;
    s.reservation_id = admission.reservation_id;
  } else if (caller.key && s.cost > 0) {
    // Spend of keys without a budget is kept too (the metrics, and a budget set later).
    s.spend = RefFor(*caller.key, s.at_ms);
  }
  if (s.give_buckets.empty() && !s.spend) return;
  if (settlers_[0].joinable() && ex != nullptr) {
    // From a server worker: sent on its own connection, batched with the others of its turn;
    // what the state could not take goes to the settlers, who retry.
    {
      std::lock_guard lock(pending_mu_);
      ++settling_;
    }
    Settlement retry = s;
    retry.give_buckets.clear();  // (given back already, or not: a bucket errs on the tight side)
    retry.give = 0;
    state_->SettleAsync(
        *ex, std::move(s),
        [this, alive = std::weak_ptr<int>(alive_), retry = std::move(retry)](Status st) mutable {
          if (alive.expired()) return;
          if (st.code() != ErrorCode::kNotFound) NoteState(st);
          {
            std::lock_guard lock(pending_mu_);
            --settling_;
            if (!st.ok()) settle_queue_.push_back(std::move(retry));
          }
          if (!st.ok()) settle_cv_.notify_one();
        });
    return;
  }
  if (settlers_[0].joinable()) {
    {
      std::lock_guard lock(pending_mu_);
      settle_queue_.push_back(std::move(s));
    }
    settle_cv_.notify_one();
    return;
  }
  std::vector<Settlement> one;
  one.push_back(std::move(s));
  RunSettles(one);
}

std::vector<observe::KeySpendGauge> Access::SpendGauges() {
  std::vector<observe::KeySpendGauge> out;
  const int64_t now = NowUnixMs();
  // Held for the loop: a range-for keeps no temporary of its range expression alive, and a
  // refresh may replace (and free) the table meanwhile.
  const std::shared_ptr<const Table> table = table_.load();
  for (const auto& k : table->all) {
    if (Unusable(*k, now)) continue;
    observe::KeySpendGauge g;
    g.key_id = k->id;
    g.key_name = k->name;
    g.period = k->budget_period;
    g.budget_usd = k->budget_usd;
    Result<double> spent = state_->Spent(RefFor(*k, now));
    if (!spent.ok()) continue;
    g.spent_usd = *spent;
    out.push_back(std::move(g));
  }
  return out;
}

Access::AdminVerdict Access::CheckAdmin(const http::Headers& headers, std::string_view remote,
                                        double& retry_after_s) {
  const std::string_view address = ClientAddress(remote);
  const int64_t now = NowUnixMs();
  retry_after_s = admin_attempts_.WaitFor(address, now);
  if (retry_after_s > 0) return AdminVerdict::kThrottled;
  if (IsAdmin(headers)) return AdminVerdict::kAdmin;
  // Only a key counts as an attempt: a session cookie cannot be guessed (an HMAC), and an
  // expired one is what a dashboard left open sends.
  if (PresentedKey(headers).empty()) return AdminVerdict::kNoKey;
  admin_attempts_.Failed(address, now);
  return AdminVerdict::kWrongKey;
}

bool Access::IsAdmin(const http::Headers& headers) const {
  const std::string& master = config()->auth.master_key;
  if (master.empty()) return false;
  std::string_view presented = PresentedKey(headers);
  if (!presented.empty() && ConstantTimeEquals(presented, master)) return true;
  // Cookie: a=b; iris_session=EXPIRY.MAC; c=d
  std::string_view cookies = headers.Get("cookie");
  while (!cookies.empty()) {
    size_t end = cookies.find(';');
    std::string_view one = cookies.substr(0, end);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    if (one.starts_with(kSessionCookie) && one.size() > kSessionCookie.size() &&
        one[kSessionCookie.size()] == '=') {
      if (ValidSession(one.substr(kSessionCookie.size() + 1), NowUnixMs())) return true;
    }
    if (end == std::string_view::npos) break;
    cookies.remove_prefix(end + 1);
  }
  return false;
}

bool Access::ValidSession(std::string_view value, int64_t now_unix_ms) const {
  const size_t dot = value.find('.');
  if (dot == std::string_view::npos) return false;
  int64_t expires = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + dot, expires);
  if (ec != std::errc() || p != value.data() + dot || expires <= now_unix_ms) return false;
  return ConstantTimeEquals(value.substr(dot + 1), SessionMac(config()->auth.master_key, expires));
}

std::string Access::SessionCookie(int64_t now_unix_ms, int64_t ttl_s) const {
  const std::string& master = config()->auth.master_key;
  if (master.empty()) return {};
  const int64_t expires = now_unix_ms + ttl_s * 1000;
  return std::string(kSessionCookie) + "=" + std::to_string(expires) + "." +
         SessionMac(master, expires) +
         "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(ttl_s);
}

std::vector<std::shared_ptr<const KeyRecord>> Access::Keys() const { return table_.load()->all; }

}  // namespace iris::gateway::access
