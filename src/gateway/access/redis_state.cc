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
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <boost/url/parse.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/access/state.h"

namespace iris::gateway::access {
namespace {

constexpr const char* kGiveScript = R"lua(
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 't', 'u')
local t = tonumber(h[1])
local u = tonumber(h[2])
if t == nil or u == nil then t = limit; u = now end
local rate = limit / 60000
if now > u then t = t + (now - u) * rate; u = now end
t = t + n
if t > limit then t = limit end
redis.call('HSET', KEYS[1], 't', tostring(t), 'u', tostring(u))
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - t) / rate) + 1000)
return 1
)lua";

// KEYS[3] marks a reservation settled (for an hour), so that a settle sent again after a lost
// reply is counted once.
constexpr const char* kSettleScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', 3600000) then return 1 end
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
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

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

class RedisState final : public SharedState {
 public:
  RedisState(std::string host, int port, int db, std::string user, std::string password,
             std::string where)
      : host_(std::move(host)),
        port_(port),
        db_(db),
        user_(std::move(user)),
        password_(std::move(password)),
        where_(std::move(where)),
        give_{kGiveScript, Sha1Hex(kGiveScript)},
        settle_{kSettleScript, Sha1Hex(kSettleScript)},
        publish_breaker_{kPublishBreakerScript, Sha1Hex(kPublishBreakerScript)},
        admit_{kAdmitScript, Sha1Hex(kAdmitScript)},
        open_breakers_{kOpenBreakersScript, Sha1Hex(kOpenBreakersScript)} {}

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
    std::vector<std::string> keys;
    std::vector<std::string> args{std::to_string(now_ms), budget ? "1" : "0"};
    args.push_back(budget ? Num(budget->budget) : "0");
    args.push_back(budget ? Num(budget->amount) : "0");
    args.push_back(budget ? budget->reservation_id : "");
    args.push_back(budget ? std::to_string(budget->ttl_ms) : "0");
    for (size_t i = 0; i < buckets.size(); ++i) {
      keys.push_back("iris:b:" + buckets[i].name);
      args.push_back(std::to_string(buckets[i].limit));
      args.push_back(std::to_string(want[i]));
    }
    if (budget) {
      keys.push_back(SpentKey(budget->ref));
      keys.push_back(ReservedKey(budget->ref));
    }
    IRIS_ASSIGN_OR_RETURN(Reply r, Eval(admit_, keys, args));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5) return Unexpected("admit");
    const double flag = ToDouble(r->element[2]);
    if (flag < 0) {
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

  Status Give(const BucketSpec& bucket, int64_t n, int64_t now_ms) override {
    return Eval(give_, {"iris:b:" + bucket.name},
                {std::to_string(now_ms), std::to_string(bucket.limit), std::to_string(n)})
        .status();
  }

  Status Settle(const BudgetRef& ref, const std::string& id, double cost) override {
    IRIS_ASSIGN_OR_RETURN(
        Reply r, Eval(settle_, {SpentKey(ref), ReservedKey(ref), "iris:d:" + ref.key_id + ":" + id},
                      {id, Num(cost)}));
    if (ToDouble(r.get()) < 0) return NotFound("the spend of " + ref.key_id + " is not known yet");
    return OkStatus();
  }

  Status SeedSpend(const BudgetRef& ref, double spent) override {
    return Command({"SET", SpentKey(ref), Num(spent), "NX"}).status();
  }

  Result<bool> Knows(const BudgetRef& ref) override {
    IRIS_ASSIGN_OR_RETURN(Reply r, Command({"EXISTS", SpentKey(ref)}));
    return r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  }

  Result<double> Spent(const BudgetRef& ref) override {
    IRIS_ASSIGN_OR_RETURN(Reply r, Command({"GET", SpentKey(ref)}));
    return ToDouble(r.get());
  }

  Status PublishOpenBreaker(const std::string& target, int64_t until_unix_ms) override {
    return Eval(publish_breaker_, {"iris:breakers"}, {target, std::to_string(until_unix_ms)})
        .status();
  }

  Result<std::vector<std::pair<std::string, int64_t>>> OpenBreakers(int64_t now_ms) override {
    IRIS_ASSIGN_OR_RETURN(Reply r,
                          Eval(open_breakers_, {"iris:breakers"}, {std::to_string(now_ms)}));
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
  static std::string SpentKey(const BudgetRef& ref) {
    return "iris:s:" + ref.key_id + ":" + std::to_string(ref.period_start_ms);
  }
  static std::string ReservedKey(const BudgetRef& ref) {
    return "iris:r:" + ref.key_id + ":" + std::to_string(ref.period_start_ms);
  }

  Status Unexpected(std::string_view what) const {
    return Status(ErrorCode::kUnavailable,
                  "Redis " + where_ + ": unexpected reply to " + std::string(what));
  }

  // A connection from the pool (`reused`), or a new one (connect and command timeouts: a dead
  // Redis costs a caller at most that long).
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
    timeval connect_timeout{0, 300'000};
    Context c(redisConnectWithTimeout(host_.c_str(), port_, connect_timeout));
    if (!c || c->err) {
      return Status(ErrorCode::kUnavailable,
                    "Redis " + where_ + ": cannot connect: " + (c ? c->errstr : "out of memory"));
    }
    timeval command_timeout{1, 0};
    redisSetTimeout(c.get(), command_timeout);
    if (!password_.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!user_.empty()) auth.push_back(user_);
      auth.push_back(password_);
      IRIS_RETURN_IF_ERROR(Run(c.get(), auth).status());
    }
    if (db_ != 0) IRIS_RETURN_IF_ERROR(Run(c.get(), {"SELECT", std::to_string(db_)}).status());
    return c;
  }

  void Release(Context c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < 16) idle_.push_back(std::move(c));
  }

  Result<Reply> Run(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r) {
      return Status(ErrorCode::kUnavailable, "Redis " + where_ + ": " + c->errstr);
    }
    if (r->type == REDIS_REPLY_ERROR) {
      return Status(ErrorCode::kInternal, "Redis " + where_ + ": " + std::string(r->str, r->len));
    }
    return r;
  }

  Result<Reply> Command(const std::vector<std::string>& args) {
    bool reused = false;
    IRIS_ASSIGN_OR_RETURN(Context c, Acquire(reused));
    Result<Reply> r = Run(c.get(), args);
    if (!r.ok() && r.status().code() == ErrorCode::kUnavailable && reused) {
      // A pooled connection that broke while idle (Redis restarted): the others are as stale.
      // Drop them all and try once on a fresh one. (Every script is safe to send twice: a
      // settle is counted once per reservation.)
      {
        std::lock_guard lock(mu_);
        idle_.clear();
      }
      IRIS_ASSIGN_OR_RETURN(c, Acquire(reused));
      r = Run(c.get(), args);
    }
    // A broken connection is dropped; one that answered (even an error) goes back.
    if (r.ok() || r.status().code() == ErrorCode::kInternal) Release(std::move(c));
    return r;
  }

  // EVALSHA, loading the script with EVAL when this Redis does not know it (a restart).
  Result<Reply> Eval(const Script& s, const std::vector<std::string>& keys,
                     const std::vector<std::string>& args) {
    std::vector<std::string> cmd{"EVALSHA", s.sha, std::to_string(keys.size())};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.insert(cmd.end(), args.begin(), args.end());
    Result<Reply> r = Command(cmd);
    if (!r.ok() && r.status().message().find("NOSCRIPT") != std::string::npos) {
      cmd[0] = "EVAL";
      cmd[1] = s.text;
      r = Command(cmd);
    }
    return r;
  }

  std::string host_;
  int port_;
  int db_;
  std::string user_;
  std::string password_;
  std::string where_;  // host:port/db, never the password
  Script give_, settle_, publish_breaker_, admit_, open_breakers_;
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
  const std::string where = host + ":" + std::to_string(port) + "/" + std::to_string(db);
  auto state = std::make_unique<RedisState>(host, port, db, std::string(parsed->user()),
                                            std::string(parsed->password()), where);
  return std::unique_ptr<SharedState>(std::move(state));
}

}  // namespace iris::gateway::access
