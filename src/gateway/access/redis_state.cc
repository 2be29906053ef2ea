// SharedState in Redis (hiredis), for several instances: every operation is one Lua script,
// which Redis runs atomically, so instances racing for one budget or bucket see one order.
//
//   iris:b:NAME             hash {t: tokens, u: updated ms}   a token bucket; expires when full
//   iris:s:KEY:PERIOD       string                            settled spend (USD)
//   iris:r:KEY:PERIOD       hash {id: "amount:made_ms"}       reservations in flight
//   iris:x:KEY:PERIOD       hash {id: made_ms}                reservations dropped for their
//                                                             age (their instance died, or is
//                                                             slow): still settled, once, for
//                                                             an hour after the last drop
//
// A settlement counts when it removes its reservation (from either hash): one sent again after
// a lost reply finds nothing and counts nothing.
//
// A spend key that does not exist is "not known" (a new period, or Redis lost its data): Reserve
// and Settle then answer NotFound and write nothing, so that the caller can seed it from the
// request log first (Access does), instead of counting from zero.
//
// Requests admit and settle through a pipelined connection on their own io_context
// (redis_pipe.h), so a worker never waits on Redis, and the calls of one turn share one script
// run; everything else (retried settlements, seeding, breakers) runs on Access's threads over
// a small pool of blocking connections.
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/access/redis_pipe.h"
#include "gateway/access/state.h"

namespace iris::gateway::access {
namespace {

// The request path's two scripts are batch scripts (RedisBatchCommand): one run answers many
// calls, as if they had run one after another, reading and writing each key once. The bucket
// arithmetic (kBucketLua), shared by both, comes first in each.
constexpr const char* kBucketLua = R"lua(
local buckets = {}
local function bucket(key, limit, now)
  local b = buckets[key]
  if b == nil then
    local h = redis.call('HMGET', key, 't', 'u')
    b = {t = tonumber(h[1]), u = tonumber(h[2])}
    if b.t == nil or b.u == nil then b.t = limit; b.u = now end
    buckets[key] = b
  end
  b.limit = limit
  if now > b.u then b.t = b.t + (now - b.u) * limit / 60000; b.u = now end
  if b.t > limit then b.t = limit end
  return b
end
local function save_buckets()
  for key, b in pairs(buckets) do
    redis.call('HSET', key, 't', tostring(b.t), 'u', tostring(b.u))
    redis.call('PEXPIRE', key, math.ceil((b.limit - b.t) / (b.limit / 60000)) + 1000)
  end
end
)lua";

// Admits: each call's KEYS = its buckets, then (when it has a budget) its spend, reservation
// and dropped-reservation keys; ARGV = now, has_budget, budget, amount, reservation id, ttl, then a
// (limit, want) pair per bucket. Each answers {buckets_allowed, retry_after, budget_flag,
// spent, reserved, t_1..t_n}: budget_flag -1 (period unknown: nothing taken), 0 refused, 1
// reserved (or no budget asked). Nothing is taken unless the buckets and the budget all agree.
constexpr const char* kAdmitScript = R"lua(
local spent = {}
local reservations = {}
local function reserved_in(key, expired_key, now, ttl)
  local r = reservations[key]
  if r == nil then
    r = {total = 0, stale = {}, dropped = {}, new = {}, expired_key = expired_key, ttl = ttl}
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local v = all[i + 1]
      local sep = string.find(v, ':', 1, true)
      local made = string.sub(v, sep + 1)
      if now - tonumber(made) > ttl then
        r.stale[#r.stale + 1] = all[i]
        r.dropped[#r.dropped + 1] = all[i]
        r.dropped[#r.dropped + 1] = made
      else
        r.total = r.total + tonumber(string.sub(v, 1, sep - 1))
      end
    end
    reservations[key] = r
  end
  return r
end
local out = {}
local k, a = 1, 2
for c = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local now = tonumber(ARGV[a])
  local has_budget = ARGV[a + 1] == '1'
  local nb = nk
  if has_budget then nb = nk - 3 end
  local result = nil
  local s = 0
  if has_budget then
    local sk = KEYS[k + nb]
    if spent[sk] == nil then
      local v = redis.call('GET', sk)
      spent[sk] = v and tonumber(v) or false
    end
    if spent[sk] == false then result = {0, '0', -1, '0', '0'} else s = spent[sk] end
  end
  if result == nil then
    local allowed, retry = 1, 0
    local taken = {}
    for i = 1, nb do
      local limit = tonumber(ARGV[a + 4 + 2 * i])
      local want = tonumber(ARGV[a + 5 + 2 * i])
      local b = bucket(KEYS[k + i - 1], limit, now)
      taken[i] = {b, want}
      if b.t < want then
        allowed = 0
        local r = (want - b.t) / (limit / 60000) / 1000
        if r > retry then retry = r end
      end
    end
    local flag, reserved = 1, 0
    if has_budget and allowed == 1 then
      local budget, amount = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
      local r = reserved_in(KEYS[k + nb + 1], KEYS[k + nb + 2], now, tonumber(ARGV[a + 5]))
      if s >= budget or s + r.total + amount > budget then
        flag = 0
      else
        r.new[#r.new + 1] = ARGV[a + 4]
        r.new[#r.new + 1] = tostring(amount) .. ':' .. ARGV[a]
        r.total = r.total + amount
      end
      reserved = r.total
    end
    result = {allowed, tostring(retry), flag, tostring(s), tostring(reserved)}
    for i = 1, nb do
      local b, want = taken[i][1], taken[i][2]
      if allowed == 1 and flag == 1 then b.t = b.t - want end
      result[#result + 1] = tostring(b.t)
    end
  end
  out[c] = result
  k = k + nk
  a = a + na
end
save_buckets()
for key, r in pairs(reservations) do
  if #r.stale > 0 then
    redis.call('HDEL', key, unpack(r.stale))
    redis.call('HSET', r.expired_key, unpack(r.dropped))
    redis.call('PEXPIRE', r.expired_key, r.ttl + 3600000)
  end
  if #r.new > 0 then redis.call('HSET', key, unpack(r.new)) end
end
return out
)lua";

// Requests' ends: each call's KEYS = the buckets its unused tokens go back to, then (when it
// settles a cost) its spend, reservation and dropped-reservation keys; ARGV = now, give,
// settle, reservation id, cost, then each bucket's limit. A cost with a reservation id counts
// only when it removes that reservation. Each answers 1, or -1 when the spend is not known
// (the tokens went back; the cost was not settled).
constexpr const char* kFinishScript = R"lua(
local known = {}
local costs = {}
local out = {}
local k, a = 1, 2
for c = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local now, give = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local settle = ARGV[a + 2] == '1'
  local nb = nk
  if settle then nb = nk - 3 end
  for i = 1, nb do
    local limit = tonumber(ARGV[a + 4 + i])
    local b = bucket(KEYS[k + i - 1], limit, now)
    b.t = b.t + give
    if b.t > limit then b.t = limit end
  end
  local result = 1
  if settle then
    local sk, rk, id = KEYS[k + nb], KEYS[k + nb + 1], ARGV[a + 3]
    if known[sk] == nil then known[sk] = redis.call('EXISTS', sk) == 1 end
    if not known[sk] then
      result = -1
    elseif id == '' or redis.call('HDEL', rk, id) == 1 or
        redis.call('HDEL', KEYS[k + nb + 2], id) == 1 then
      costs[sk] = (costs[sk] or 0) + tonumber(ARGV[a + 4])
    end
  end
  out[c] = result
  k = k + nk
  a = a + na
end
save_buckets()
for sk, cost in pairs(costs) do redis.call('INCRBYFLOAT', sk, string.format('%.17g', cost)) end
return out
)lua";

//   iris:breakers           hash {target: open-until ms}      breakers any instance opened
constexpr const char* kPublishBreakerScript = R"lua(
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
)lua";

constexpr const char* kOpenBreakersScript = R"lua(
local now = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
)lua";

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

double ToDouble(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<double>(r->integer);
  if (r->type == REDIS_REPLY_STRING) return std::strtod(r->str, nullptr);
  return 0;
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

bool IsNoScript(const Result<RedisReply>& r) {
  return !r.ok() && r.status().message().find("NOSCRIPT") != std::string::npos;
}

std::atomic<uint64_t> next_state_id{1};

class RedisState final : public SharedState {
 public:
  explicit RedisState(RedisEndpoint endpoint)
      : endpoint_(std::move(endpoint)),
        id_(next_state_id.fetch_add(1)),
        admit_(std::string(kBucketLua) + kAdmitScript),
        finish_(std::string(kBucketLua) + kFinishScript),
        publish_breaker_(kPublishBreakerScript),
        open_breakers_(kOpenBreakersScript) {}

  // Take and Reserve are Admit without a budget, or without buckets: one script holds the
  // rules of both.
  Result<TakeResult> Take(const std::vector<BucketSpec>& buckets, const std::vector<int64_t>& want,
                          int64_t now_ms) override {
    IRIS_ASSIGN_OR_RETURN(AdmitResult r, Admit(buckets, want, std::nullopt, now_ms));
    return r.take;
  }

  Result<ReserveResult> Reserve(const BudgetRef& ref, double budget, double amount,
                                const std::string& id, int64_t now_ms, int64_t ttl_ms) override {
    IRIS_ASSIGN_OR_RETURN(AdmitResult r,
                          Admit({}, {}, AdmitBudget{ref, budget, amount, id, ttl_ms}, now_ms));
    if (!r.budget) return Unexpected("reserve");
    return *r.budget;
  }

  Result<AdmitResult> Admit(const std::vector<BucketSpec>& buckets,
                            const std::vector<int64_t>& want,
                            const std::optional<AdmitBudget>& budget, int64_t now_ms) override {
    const RedisCall call = AdmitCall(buckets, want, budget, now_ms);
    IRIS_ASSIGN_OR_RETURN(RedisReply r, EvalBatch(admit_, {&call}));
    return AdmitParse(r->element[0], buckets, budget);
  }

  boost::asio::awaitable<Result<AdmitResult>> AdmitAsync(std::vector<BucketSpec> buckets,
                                                         std::vector<int64_t> want,
                                                         std::optional<AdmitBudget> budget,
                                                         int64_t now_ms) override {
    // (No co_await inside an initializer, no temporaries inside a co_await: GCC 12.)
    const boost::asio::any_io_executor ex = co_await boost::asio::this_coro::executor;
    InitiateAdmit init;
    init.state = this;
    init.ex = ex;
    init.call = AdmitCall(buckets, want, budget, now_ms);
    init.buckets = std::move(buckets);
    init.budget = std::move(budget);
    Result<AdmitResult> out = co_await AdmitBatched(std::move(init));
    co_return out;
  }

  void SettleAsync(const boost::asio::any_io_executor& ex, Settlement s,
                   std::function<void(Status)> done) override {
    boost::asio::dispatch(ex, [this, ex, s = std::move(s), done = std::move(done)]() mutable {
      RedisCall call = FinishCall(s);
      auto on_reply = [s = std::move(s), done = std::move(done)](Result<const redisReply*> r) {
        done(r.ok() ? FinishParse(*r, s) : r.status());
      };
      RedisPipeFor(ex, id_, endpoint_)
          ->EvalBatched(
              &finish_, std::move(call),
              std::make_unique<RedisPipe::ElementDoneOf<decltype(on_reply)>>(std::move(on_reply)));
    });
  }

  Status Give(const BucketSpec& bucket, int64_t n, int64_t now_ms) override {
    Settlement s;
    s.give_buckets = {bucket};
    s.give = n;
    s.at_ms = now_ms;
    return SettleAll({s}).front();
  }

  Status Settle(const BudgetRef& ref, const std::string& id, double cost) override {
    Settlement s;
    s.spend = ref;
    s.reservation_id = id;
    s.cost = cost;
    return SettleAll({s}).front();
  }

  std::vector<Status> SettleAll(const std::vector<Settlement>& settlements) override {
    std::vector<Status> out;
    out.reserve(settlements.size());
    for (size_t from = 0; from < settlements.size(); from += RedisPipe::kMaxBatch) {
      const size_t to = std::min(settlements.size(), from + RedisPipe::kMaxBatch);
      std::vector<RedisCall> calls;
      for (size_t i = from; i < to; ++i) calls.push_back(FinishCall(settlements[i]));
      std::vector<const RedisCall*> batch;
      for (const RedisCall& c : calls) batch.push_back(&c);
      Result<RedisReply> r = EvalBatch(finish_, batch);
      for (size_t i = from; i < to; ++i) {
        out.push_back(r.ok() ? FinishParse((*r)->element[i - from], settlements[i]) : r.status());
      }
    }
    return out;
  }

  Status SeedSpend(const BudgetRef& ref, double spent) override {
    return Command({"SET", SpentKey(ref), Num(spent), "NX"}).status();
  }

  Result<bool> Knows(const BudgetRef& ref) override {
    IRIS_ASSIGN_OR_RETURN(RedisReply r, Command({"EXISTS", SpentKey(ref)}));
    return r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  }

  Result<double> Spent(const BudgetRef& ref) override {
    IRIS_ASSIGN_OR_RETURN(RedisReply r, Command({"GET", SpentKey(ref)}));
    return ToDouble(r.get());
  }

  Status PublishOpenBreaker(const std::string& target, int64_t until_unix_ms) override {
    return Eval(publish_breaker_, {{"iris:breakers"}, {target, std::to_string(until_unix_ms)}})
        .status();
  }

  Result<std::vector<std::pair<std::string, int64_t>>> OpenBreakers(int64_t now_ms) override {
    IRIS_ASSIGN_OR_RETURN(RedisReply r,
                          Eval(open_breakers_, {{"iris:breakers"}, {std::to_string(now_ms)}}));
    if (r->type != REDIS_REPLY_ARRAY) return Unexpected("open breakers");
    std::vector<std::pair<std::string, int64_t>> out;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      if (r->element[i]->type != REDIS_REPLY_STRING) continue;
      out.emplace_back(std::string(r->element[i]->str, r->element[i]->len),
                       static_cast<int64_t>(ToDouble(r->element[i + 1])));
    }
    return out;
  }

  Status PutValue(const std::string& key, const std::string& value, int64_t ttl_ms,
                  int64_t /*now_ms*/) override {
    // Redis expires the value itself (PX), on every instance's clock alike.
    return Command({"SET", "iris:value:" + key, value, "PX",
                    std::to_string(std::max<int64_t>(1, ttl_ms))})
        .status();
  }

  Result<std::optional<std::string>> GetValue(const std::string& key, int64_t /*now_ms*/) override {
    IRIS_ASSIGN_OR_RETURN(RedisReply r, Command({"GET", "iris:value:" + key}));
    if (r->type == REDIS_REPLY_NIL) return std::optional<std::string>();
    if (r->type != REDIS_REPLY_STRING) return Unexpected("value");
    return std::optional<std::string>(std::string(r->str, r->len));
  }

  std::string_view kind() const override { return "redis"; }

 private:
  // Hands an admitting coroutine to its io_context's pipe, as one call of a batch.
  struct InitiateAdmit {
    RedisState* state = nullptr;
    boost::asio::any_io_executor ex{};
    RedisCall call{};
    std::vector<BucketSpec> buckets;
    std::optional<AdmitBudget> budget;

    template <typename H>
    void operator()(H handler) {
      auto on_reply = [state = state, ex = ex, buckets = std::move(buckets),
                       budget = std::move(budget),
                       h = std::move(handler)](Result<const redisReply*> r) mutable {
        Result<AdmitResult> out =
            r.ok() ? state->AdmitParse(*r, buckets, budget) : Result<AdmitResult>(r.status());
        // Posted: the reply's other calls are handed out first.
        boost::asio::post(ex, [h = std::move(h), out = std::move(out)]() mutable {
          std::move(h)(std::move(out));
        });
      };
      RedisPipeFor(ex, state->id_, state->endpoint_)
          ->EvalBatched(
              &state->admit_, std::move(call),
              std::make_unique<RedisPipe::ElementDoneOf<decltype(on_reply)>>(std::move(on_reply)));
    }
  };

  // Not a coroutine: the awaitable async_initiate makes holds the initiation (GCC 12 mishandles
  // temporaries inside co_await expressions).
  static boost::asio::awaitable<Result<AdmitResult>> AdmitBatched(InitiateAdmit init) {
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                       void(Result<AdmitResult>)>(std::move(init),
                                                                  boost::asio::use_awaitable);
  }

  static std::string SpentKey(const BudgetRef& ref) {
    return "iris:s:" + ref.key_id + ":" + std::to_string(ref.period_start_ms);
  }
  static std::string ReservedKey(const BudgetRef& ref) {
    return "iris:r:" + ref.key_id + ":" + std::to_string(ref.period_start_ms);
  }
  static std::string ExpiredKey(const BudgetRef& ref) {
    return "iris:x:" + ref.key_id + ":" + std::to_string(ref.period_start_ms);
  }

  static RedisCall AdmitCall(const std::vector<BucketSpec>& buckets,
                             const std::vector<int64_t>& want,
                             const std::optional<AdmitBudget>& budget, int64_t now_ms) {
    RedisCall c;
    c.args = {std::to_string(now_ms), budget ? "1" : "0"};
    c.args.push_back(budget ? Num(budget->budget) : "0");
    c.args.push_back(budget ? Num(budget->amount) : "0");
    c.args.push_back(budget ? budget->reservation_id : "");
    c.args.push_back(budget ? std::to_string(budget->ttl_ms) : "0");
    for (size_t i = 0; i < buckets.size(); ++i) {
      c.keys.push_back("iris:b:" + buckets[i].name);
      c.args.push_back(std::to_string(buckets[i].limit));
      c.args.push_back(std::to_string(want[i]));
    }
    if (budget) {
      c.keys.push_back(SpentKey(budget->ref));
      c.keys.push_back(ReservedKey(budget->ref));
      c.keys.push_back(ExpiredKey(budget->ref));
    }
    return c;
  }

  Result<AdmitResult> AdmitParse(const redisReply* r, const std::vector<BucketSpec>& buckets,
                                 const std::optional<AdmitBudget>& budget) const {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5) return Unexpected("admit");
    const double flag = ToDouble(r->element[2]);
    if (flag < 0) {
      if (!budget) return Unexpected("admit");
      return NotFound("the spend of " + budget->ref.key_id + " is not known yet");
    }
    if (r->elements != 5 + buckets.size()) return Unexpected("admit");
    AdmitResult out;
    out.take.allowed = ToDouble(r->element[0]) == 1;
    out.take.retry_after_s = ToDouble(r->element[1]);
    for (size_t i = 0; i < buckets.size(); ++i) {
      const double t = ToDouble(r->element[5 + i]);
      const double limit = static_cast<double>(buckets[i].limit);
      BucketState b;
      b.limit = buckets[i].limit;
      b.remaining = std::max<int64_t>(0, static_cast<int64_t>(std::floor(t)));
      b.reset_s = limit > 0 ? std::max(0.0, (limit - t) / (limit / 60.0)) : 0;
      out.take.buckets.push_back(b);
    }
    if (budget && out.take.allowed) {
      ReserveResult rr;
      rr.allowed = flag == 1;
      rr.spent = ToDouble(r->element[3]);
      rr.reserved = ToDouble(r->element[4]);
      out.budget = rr;
    }
    return out;
  }

  static RedisCall FinishCall(const Settlement& s) {
    RedisCall c;
    const bool give = s.give != 0 && !s.give_buckets.empty();
    c.args = {std::to_string(s.at_ms), std::to_string(give ? s.give : 0), s.spend ? "1" : "0",
              s.reservation_id, Num(s.cost)};
    if (give) {
      for (const BucketSpec& b : s.give_buckets) {
        c.keys.push_back("iris:b:" + b.name);
        c.args.push_back(std::to_string(b.limit));
      }
    }
    if (s.spend) {
      c.keys.push_back(SpentKey(*s.spend));
      c.keys.push_back(ReservedKey(*s.spend));
      c.keys.push_back(ExpiredKey(*s.spend));
    }
    return c;
  }

  static Status FinishParse(const redisReply* r, const Settlement& s) {
    if (ToDouble(r) < 0) return NotFound("the spend of " + s.spend->key_id + " is not known yet");
    return OkStatus();
  }

  Status Unexpected(std::string_view what) const {
    return Status(ErrorCode::kUnavailable,
                  "Redis " + endpoint_.where + ": unexpected reply to " + std::string(what));
  }

  // A connection from the pool (`reused`), or a new one.
  Result<Context> Acquire(bool& reused) {
    {
      std::lock_guard lock(mu_);
      reused = !idle_.empty();
      if (reused) {
        Context c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    const auto connect_us =
        std::chrono::duration_cast<std::chrono::microseconds>(kRedisConnectTimeout).count();
    timeval connect_timeout{connect_us / 1'000'000, connect_us % 1'000'000};
    Context c(redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, connect_timeout));
    if (!c || c->err) {
      return Status(ErrorCode::kUnavailable, "Redis " + endpoint_.where + ": cannot connect: " +
                                                 (c ? c->errstr : "out of memory"));
    }
    const auto command_us =
        std::chrono::duration_cast<std::chrono::microseconds>(kRedisCommandTimeout).count();
    timeval command_timeout{command_us / 1'000'000, command_us % 1'000'000};
    redisSetTimeout(c.get(), command_timeout);
    for (Result<RedisReply>& r : Run(c.get(), RedisPreamble(endpoint_))) {
      IRIS_RETURN_IF_ERROR(r.status());
    }
    return c;
  }

  void Release(Context c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < 16) idle_.push_back(std::move(c));
  }

  // Sends every command, then reads every reply (a pipeline): one result each, in order. A
  // connection that breaks fails the commands not answered yet.
  std::vector<Result<RedisReply>> Run(redisContext* c,
                                      const std::vector<std::vector<std::string>>& cmds) {
    std::vector<Result<RedisReply>> out;
    out.reserve(cmds.size());
    for (const std::vector<std::string>& args : cmds) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const std::string& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
    }
    for (size_t i = 0; i < cmds.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        const Status st(ErrorCode::kUnavailable, "Redis " + endpoint_.where + ": " +
                                                     (c->errstr[0] ? c->errstr : "no reply"));
        while (out.size() < cmds.size()) out.emplace_back(st);
        break;
      }
      RedisReply r(static_cast<redisReply*>(raw));
      Status st = RedisReplyError(*r, endpoint_.where);
      out.push_back(st.ok() ? Result<RedisReply>(std::move(r)) : Result<RedisReply>(st));
    }
    return out;
  }

  // Run on a pooled connection.
  std::vector<Result<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& cmds) {
    bool reused = false;
    auto failed = [&](const Status& st) {
      std::vector<Result<RedisReply>> all;
      for (size_t i = 0; i < cmds.size(); ++i) all.emplace_back(st);
      return all;
    };
    Result<Context> c = Acquire(reused);
    if (!c.ok()) return failed(c.status());
    std::vector<Result<RedisReply>> out = Run(c->get(), cmds);
    auto broken = [&] {
      return !out.empty() && !out.back().ok() &&
             out.back().status().code() == ErrorCode::kUnavailable;
    };
    if (broken() && reused) {
      // A pooled connection that broke while idle (Redis restarted): the others are as stale.
      // Drop them all and try once on a fresh one. (Sending again is safe: a settle counts once
      // per reservation; a give sent twice only loosens a bucket by one request.)
      {
        std::lock_guard lock(mu_);
        idle_.clear();
      }
      c = Acquire(reused);
      if (!c.ok()) return failed(c.status());
      out = Run(c->get(), cmds);
    }
    // A broken connection is dropped; one that answered (even errors) goes back.
    if (!broken()) Release(std::move(*c));
    return out;
  }

  Result<RedisReply> Command(const std::vector<std::string>& args) {
    return std::move(Pipeline({args}).front());
  }

  // EVALSHA (by_sha) or EVAL.
  static std::vector<std::string> EvalArgv(const RedisScript& s, const RedisCall& call,
                                           bool by_sha) {
    std::vector<std::string> cmd{by_sha ? "EVALSHA" : "EVAL", by_sha ? s.sha : s.text,
                                 std::to_string(call.keys.size())};
    cmd.insert(cmd.end(), call.keys.begin(), call.keys.end());
    cmd.insert(cmd.end(), call.args.begin(), call.args.end());
    return cmd;
  }

  // A script (EVAL with its text when this Redis does not know it: a restart).
  Result<RedisReply> Eval(const RedisScript& s, const RedisCall& call) {
    Result<RedisReply> r = Command(EvalArgv(s, call, true));
    if (IsNoScript(r)) r = Command(EvalArgv(s, call, false));
    return r;
  }

  // A batch script run once for `calls`; its reply holds one element a call.
  Result<RedisReply> EvalBatch(const RedisScript& s, const std::vector<const RedisCall*>& calls) {
    Result<RedisReply> r = Command(RedisBatchCommand(s, true, calls));
    if (IsNoScript(r)) r = Command(RedisBatchCommand(s, false, calls));
    if (r.ok() && ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != calls.size())) {
      return Unexpected("a batch");
    }
    return r;
  }

  RedisEndpoint endpoint_;
  uint64_t id_;  // names this state's pipe on each io_context
  // The request path's batch scripts (one run, many calls), and the breakers'.
  RedisScript admit_, finish_, publish_breaker_, open_breakers_;
  std::mutex mu_;
  std::vector<Context> idle_;
};

}  // namespace

Result<std::unique_ptr<SharedState>> NewRedisState(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed || parsed->scheme() != "redis" || !parsed->has_authority()) {
    return InvalidArgument("state: expected redis://[user:password@]HOST:PORT/DB");
  }
  const std::string host = parsed->host_address();
  int port = parsed->has_port() ? static_cast<int>(parsed->port_number()) : 6379;
  int db = 0;
  std::string path = parsed->path();
  if (!path.empty() && path != "/") {
    try {
      db = std::stoi(path.substr(1));
    } catch (...) {
      return InvalidArgument("state: the Redis database is a number (redis://HOST:PORT/0)");
    }
  }
  if (host.empty() || port <= 0 || db < 0) {
    return InvalidArgument("state: expected redis://[user:password@]HOST:PORT/DB");
  }
  RedisEndpoint endpoint;
  endpoint.host = host;
  endpoint.port = port;
  endpoint.db = db;
  endpoint.user = std::string(parsed->user());
  endpoint.password = std::string(parsed->password());
  endpoint.where = host + ":" + std::to_string(port) + "/" + std::to_string(db);
  return std::unique_ptr<SharedState>(std::make_unique<RedisState>(std::move(endpoint)));
}

}  // namespace iris::gateway::access
