// SharedState in Redis (hiredis), for several instances: every operation is one Lua script,
// which Redis runs atomically, so instances racing for one budget or bucket see one order.
//
//   iris:b:NAME             hash {t: tokens, u: updated ms}   a token bucket; expires when full
//   iris:s:KEY:PERIOD       string                            settled spend (USD)
//   iris:r:KEY:PERIOD       hash {id: "amount:made_ms"}       reservations in flight
//
// A spend key that does not exist is "not known" (a new period, or Redis lost its data): Reserve
// and Settle then answer NotFound and write nothing, so that the caller can seed it from the
// request log first (Access does), instead of counting from zero.
//
// Requests admit through a pipelined connection on their own io_context (redis_pipe.h), so a
// worker never waits on Redis; everything else (settling, seeding, breakers) runs on Access's
// threads over a small pool of blocking connections, many settlements to one pipeline.
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/access/redis_pipe.h"
#include "gateway/access/state.h"

namespace iris::gateway::access {
namespace {

// A request's end: tokens given back to its TPM buckets, then (when ARGV[3] == '1') its cost
// settled. KEYS = the buckets, then the spend, reservation and settled-mark keys; ARGV = now,
// give, settle, reservation id, cost, then each bucket's limit. The mark makes a settle sent
// again after a lost reply count once (for an hour). Returns -1 when the spend is not known
// (the tokens were given back; the cost was not settled).
constexpr const char* kFinishScript = R"lua(
local now = tonumber(ARGV[1])
local give = tonumber(ARGV[2])
local settle = ARGV[3] == '1'
local n = #KEYS
if settle then n = n - 3 end
for i = 1, n do
  local limit = tonumber(ARGV[5 + i])
  local h = redis.call('HMGET', KEYS[i], 't', 'u')
  local t = tonumber(h[1])
  local u = tonumber(h[2])
  if t == nil or u == nil then t = limit; u = now end
  local rate = limit / 60000
  if now > u then t = t + (now - u) * rate; u = now end
  t = t + give
  if t > limit then t = limit end
  redis.call('HSET', KEYS[i], 't', tostring(t), 'u', tostring(u))
  redis.call('PEXPIRE', KEYS[i], math.ceil((limit - t) / rate) + 1000)
end
if not settle then return 1 end
if redis.call('EXISTS', KEYS[n + 1]) == 0 then return -1 end
if ARGV[4] ~= '' then
  if not redis.call('SET', KEYS[n + 3], '1', 'NX', 'PX', 3600000) then return 1 end
  redis.call('HDEL', KEYS[n + 2], ARGV[4])
end
redis.call('INCRBYFLOAT', KEYS[n + 1], ARGV[5])
return 1
)lua";

// Take and Reserve in one: KEYS = the buckets, then (when ARGV[2] == '1') the spend and
// reservation keys; ARGV = now, has_budget, budget, amount, id, ttl, then (limit, want) pairs.
// Returns {buckets_allowed, retry_after, budget_flag, spent, reserved, t_1..t_n}, budget_flag
// -1 (period unknown: nothing written), 0 refused, 1 reserved (or no budget asked).
constexpr const char* kAdmitScript = R"lua(
local now = tonumber(ARGV[1])
local has_budget = ARGV[2] == '1'
local n = #KEYS
if has_budget then n = n - 2 end
local spent = 0
if has_budget then
  local s = redis.call('GET', KEYS[n + 1])
  if not s then return {0, '0', -1, '0', '0'} end
  spent = tonumber(s)
end
local state = {}
local allowed = 1
local retry = 0
for i = 1, n do
  local limit = tonumber(ARGV[5 + 2 * i])
  local want = tonumber(ARGV[6 + 2 * i])
  local h = redis.call('HMGET', KEYS[i], 't', 'u')
  local t = tonumber(h[1])
  local u = tonumber(h[2])
  if t == nil or u == nil then t = limit; u = now end
  local rate = limit / 60000
  if now > u then t = t + (now - u) * rate; u = now end
  if t > limit then t = limit end
  state[i] = {t, u, limit, want}
  if t < want then
    allowed = 0
    local r = (want - t) / rate / 1000
    if r > retry then retry = r end
  end
end
local flag = 1
local reserved = 0
if has_budget and allowed == 1 then
  local budget = tonumber(ARGV[3])
  local amount = tonumber(ARGV[4])
  local ttl = tonumber(ARGV[6])
  local all = redis.call('HGETALL', KEYS[n + 2])
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local sep = string.find(v, ':', 1, true)
    local amt = tonumber(string.sub(v, 1, sep - 1))
    local made = tonumber(string.sub(v, sep + 1))
    if now - made > ttl then
      redis.call('HDEL', KEYS[n + 2], all[i])
    else
      reserved = reserved + amt
    end
  end
  if spent >= budget or spent + reserved + amount > budget then
    flag = 0
  else
    redis.call('HSET', KEYS[n + 2], ARGV[5], tostring(amount) .. ':' .. ARGV[1])
    reserved = reserved + amount
  end
end
local take = allowed == 1 and flag == 1
local out = {allowed, tostring(retry), flag, tostring(spent), tostring(reserved)}
for i = 1, n do
  local t, u, limit, want = state[i][1], state[i][2], state[i][3], state[i][4]
  if take then t = t - want end
  redis.call('HSET', KEYS[i], 't', tostring(t), 'u', tostring(u))
  redis.call('PEXPIRE', KEYS[i], math.ceil((limit - t) / (limit / 60000)) + 1000)
  out[#out + 1] = tostring(t)
end
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

std::string Sha1Hex(const char* text) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text), std::strlen(text), md);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : md) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

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

struct Script {
  const char* text;
  std::string sha;
};

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// One script call: its keys and arguments.
struct EvalCall {
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

bool IsNoScript(const Result<RedisReply>& r) {
  return !r.ok() && r.status().message().find("NOSCRIPT") != std::string::npos;
}

std::atomic<uint64_t> next_state_id{1};

class RedisState final : public SharedState {
 public:
  explicit RedisState(RedisEndpoint endpoint)
      : endpoint_(std::move(endpoint)),
        id_(next_state_id.fetch_add(1)),
        finish_{kFinishScript, Sha1Hex(kFinishScript)},
        publish_breaker_{kPublishBreakerScript, Sha1Hex(kPublishBreakerScript)},
        admit_{kAdmitScript, Sha1Hex(kAdmitScript)},
        open_breakers_{kOpenBreakersScript, Sha1Hex(kOpenBreakersScript)},
        admit_batch_(BatchScriptFor(kAdmitScript)),
        finish_batch_(BatchScriptFor(kFinishScript)) {}

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
    return AdmitReply(Eval(admit_, AdmitCall(buckets, want, budget, now_ms)), buckets, budget);
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
      EvalCall call = FinishCall(s);
      auto on_reply = [s = std::move(s), done = std::move(done)](Result<const redisReply*> r) {
        done(r.ok() ? FinishParse(*r, s) : r.status());
      };
      RedisPipeFor(ex, id_, endpoint_)
          ->EvalBatched(
              &finish_batch_, std::move(call.keys), std::move(call.args),
              std::make_unique<RedisPipe::ElementDoneOf<decltype(on_reply)>>(std::move(on_reply)));
    });
  }

  Status Give(const BucketSpec& bucket, int64_t n, int64_t now_ms) override {
    Settlement s;
    s.give_buckets = {bucket};
    s.give = n;
    s.at_ms = now_ms;
    return FinishReply(Eval(finish_, FinishCall(s)), s);
  }

  Status Settle(const BudgetRef& ref, const std::string& id, double cost) override {
    Settlement s;
    s.spend = ref;
    s.reservation_id = id;
    s.cost = cost;
    return FinishReply(Eval(finish_, FinishCall(s)), s);
  }

  std::vector<Status> SettleAll(const std::vector<Settlement>& settlements) override {
    std::vector<EvalCall> calls;
    calls.reserve(settlements.size());
    for (const Settlement& s : settlements) calls.push_back(FinishCall(s));
    std::vector<Result<RedisReply>> replies = EvalAll(finish_, calls);
    std::vector<Status> out;
    out.reserve(settlements.size());
    for (size_t i = 0; i < settlements.size(); ++i) {
      out.push_back(FinishReply(std::move(replies[i]), settlements[i]));
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

  std::string_view kind() const override { return "redis"; }

 private:
  // Hands an admitting coroutine to its io_context's pipe, as one call of a batch.
  struct InitiateAdmit {
    RedisState* state = nullptr;
    boost::asio::any_io_executor ex{};
    EvalCall call{};
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
              &state->admit_batch_, std::move(call.keys), std::move(call.args),
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

  static EvalCall AdmitCall(const std::vector<BucketSpec>& buckets,
                            const std::vector<int64_t>& want,
                            const std::optional<AdmitBudget>& budget, int64_t now_ms) {
    EvalCall c;
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
    }
    return c;
  }

  Result<AdmitResult> AdmitReply(Result<RedisReply> reply, const std::vector<BucketSpec>& buckets,
                                 const std::optional<AdmitBudget>& budget) const {
    IRIS_ASSIGN_OR_RETURN(RedisReply r, std::move(reply));
    return AdmitParse(r.get(), buckets, budget);
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

  static EvalCall FinishCall(const Settlement& s) {
    EvalCall c;
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
      c.keys.push_back("iris:d:" + s.spend->key_id + ":" + s.reservation_id);
    }
    return c;
  }

  static Status FinishReply(Result<RedisReply> reply, const Settlement& s) {
    if (!reply.ok()) return reply.status();
    return FinishParse(reply->get(), s);
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
    std::vector<std::vector<std::string>> preamble;
    if (!endpoint_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!endpoint_.user.empty()) auth.push_back(endpoint_.user);
      auth.push_back(endpoint_.password);
      preamble.push_back(std::move(auth));
    }
    if (endpoint_.db != 0) preamble.push_back({"SELECT", std::to_string(endpoint_.db)});
    for (Result<RedisReply>& r : Run(c.get(), preamble)) IRIS_RETURN_IF_ERROR(r.status());
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
  static std::vector<std::string> EvalArgv(const Script& s, const EvalCall& call, bool by_sha) {
    std::vector<std::string> cmd{by_sha ? "EVALSHA" : "EVAL", by_sha ? s.sha : s.text,
                                 std::to_string(call.keys.size())};
    cmd.insert(cmd.end(), call.keys.begin(), call.keys.end());
    cmd.insert(cmd.end(), call.args.begin(), call.args.end());
    return cmd;
  }

  // EVALSHA for each call, in one pipeline; those this Redis has no script for (a restart)
  // again with EVAL.
  std::vector<Result<RedisReply>> EvalAll(const Script& s, const std::vector<EvalCall>& calls) {
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(calls.size());
    for (const EvalCall& call : calls) cmds.push_back(EvalArgv(s, call, true));
    std::vector<Result<RedisReply>> out = Pipeline(cmds);
    std::vector<std::vector<std::string>> again;
    std::vector<size_t> where;
    for (size_t i = 0; i < out.size(); ++i) {
      if (!IsNoScript(out[i])) continue;
      again.push_back(EvalArgv(s, calls[i], false));
      where.push_back(i);
    }
    if (!again.empty()) {
      std::vector<Result<RedisReply>> second = Pipeline(again);
      for (size_t j = 0; j < where.size(); ++j) out[where[j]] = std::move(second[j]);
    }
    return out;
  }

  Result<RedisReply> Eval(const Script& s, const EvalCall& call) {
    return std::move(EvalAll(s, {call}).front());
  }

  RedisEndpoint endpoint_;
  uint64_t id_;  // names this state's pipe on each io_context
  Script finish_, publish_breaker_, admit_, open_breakers_;
  // The request path's scripts, many calls to one run (RedisPipe::EvalBatched).
  RedisPipe::BatchScript admit_batch_, finish_batch_;
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
