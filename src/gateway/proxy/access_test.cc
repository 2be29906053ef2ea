// Keys, limits and budgets through the whole pipeline: a gateway with a SQLite store, a fake
// upstream with known usage and prices, and callers speaking both dialects.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/time.h"
#include "gateway/access/attempts.h"
#include "gateway/access/key_admin.h"
#include "gateway/observe/store.h"
#include "gateway/proxy/test_util.h"

namespace iris::gateway::proxy {
namespace {

using namespace testing_util;

class AccessPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = ::testing::TempDir() + "iris_access_" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    std::filesystem::remove(db_);
    auto store = observe::OpenStore(db_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    gw_.reset();
    store_.reset();
    std::filesystem::remove(db_);
  }

  // A key made directly in the store (as `iris keys create` does).
  std::string NewKey(const std::string& name, access::KeyChanges c = {}) {
    c.name = name;
    auto k = access::CreateKey(*store_, c, NowUnixMs());
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return k.ok() ? k->plaintext : std::string();
  }

  // $1 a token: each answer (5 prompt + 2 completion tokens) costs $7.
  void StartGateway(const std::string& extra = "") {
    std::string y = "providers:\n  a: { kind: openai-compatible, base_url: \"" +
                    upstream_.base_url() + "\" }\n";
    y += "models:\n  route: { targets: [a/m], retries: 0 }\n  other: { targets: [a/m] }\n";
    y += "pricing:\n  m: { input_per_mtok: 1000000, output_per_mtok: 1000000 }\n";
    y += extra;
    gw_ = std::make_unique<TestGateway>(
        y, std::map<std::string, std::string>{{"IRIS_MASTER_KEY", kMaster}}, db_);
  }

  http::testing::RawResponse Chat(const std::string& key, const std::string& model = "route",
                                  const std::string& extra_fields = "") {
    std::string body = R"({"model":")" + model +
                       R"(","max_tokens":2,"messages":[{"role":"user","content":"hi"}])" +
                       extra_fields + "}";
    std::vector<std::string> h;
    if (!key.empty()) h.push_back("Authorization: Bearer " + key);
    return gw_->Call("POST", "/v1/chat/completions", body, h);
  }
  http::testing::RawResponse Messages(const std::string& key) {
    std::string body =
        R"({"model":"route","max_tokens":2,"messages":[{"role":"user","content":"hi"}]})";
    std::vector<std::string> h{"anthropic-version: 2023-06-01"};
    if (!key.empty()) h.push_back("x-api-key: " + key);
    return gw_->Call("POST", "/v1/messages", body, h);
  }

  // A call with max_tokens 10: worst case $15, real cost $7; the upstream holds it until
  // release_ or hold_ms_.
  http::testing::RawResponse SlowChat(const std::string& key) {
    return gw_->Call(
        "POST", "/v1/chat/completions",
        R"({"model":"route","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
        {"Authorization: Bearer " + key});
  }
  // The gateway, and a key with a $20 budget whose slow calls the upstream holds until
  // release_.
  std::string StartWithAHeldCallsBudget() {
    access::KeyChanges c;
    c.budget_usd = std::optional<double>(20.0);
    const std::string key = NewKey("capped", c);
    StartGateway();
    hold_ms_ = 10000;
    return key;
  }
  void WaitForUpstreamRequests(int n) {
    for (int i = 0; i < 500 && upstream_.requests() < n; ++i) std::this_thread::sleep_for(2ms);
    ASSERT_GE(upstream_.requests(), n);
  }

  std::string db_;
  std::unique_ptr<observe::Store> store_;
  std::atomic<int> hold_ms_{0};
  std::atomic<bool> release_{false};
  FakeUpstream upstream_{
      [this](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
        if (req.body.find("\"max_tokens\":10") != std::string::npos) {
          const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(hold_ms_);
          while (!release_ && std::chrono::steady_clock::now() < until) {
            asio::steady_timer t(co_await asio::this_coro::executor, 2ms);
            co_await t.async_wait(asio::use_awaitable);
          }
        }
        co_await w.Send(200, Json(), Completion("ok"));
      }};
  std::unique_ptr<TestGateway> gw_;
};

// A call made on a thread of its own, joined however the test ends.
class InBackground {
 public:
  explicit InBackground(std::function<http::testing::RawResponse()> call)
      : thread_([this, call = std::move(call)] {
          const auto t0 = std::chrono::steady_clock::now();
          response_ = call();
          took_ = std::chrono::steady_clock::now() - t0;
        }) {}
  ~InBackground() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const http::testing::RawResponse& response() {
    Join();
    return response_;
  }
  std::chrono::steady_clock::duration took() {
    Join();
    return took_;
  }

 private:
  http::testing::RawResponse response_;
  std::chrono::steady_clock::duration took_{};
  std::thread thread_;  // last: starts once the rest is built
};

bool HasHeader(const http::testing::RawResponse& r, const std::string& line) {
  std::string head = r.head;
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string want = line;
  for (char& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return head.find(want) != std::string::npos;
}

TEST_F(AccessPipeline, AMissingOrUnknownKeyIs401InTheCallersDialect) {
  NewKey("team");
  StartGateway();
  auto r = Chat("");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(Body(r).at("error").at("code"), "missing_api_key");
  r = Chat("sk-iris-notakeyofthisgatewayatall0000000000000");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Body(r).at("error").at("code"), "invalid_api_key");
  EXPECT_EQ(upstream_.requests(), 0);
  auto m = Messages("");
  EXPECT_EQ(m.status, 401);
  EXPECT_EQ(Body(m).at("type"), "error");
  EXPECT_EQ(Body(m).at("error").at("type"), "authentication_error");
}

// Auth on (a master key is set) before any key exists: a presented key is refused as unknown,
// and the master key still calls.
TEST_F(AccessPipeline, BeforeAnyKeyExistsAPresentedKeyIsUnknown) {
  StartGateway();
  auto r = Chat("sk-iris-notakeyofthisgatewayatall0000000000000");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(Body(r).at("error").at("code"), "invalid_api_key");
  EXPECT_EQ(upstream_.requests(), 0);
  r = Chat(kMaster);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(AccessPipeline, AValidKeyCallsAndIsRecordedAsTheCaller) {
  const std::string key = NewKey("team");
  StartGateway();
  auto r = Chat(key);
  ASSERT_EQ(r.status, 200) << r.body;
  auto m = Messages(key);
  ASSERT_EQ(m.status, 200) << m.body;
  // (A request is recorded just after its answer is sent.)
  std::vector<observe::UsageRow> rows;
  for (int i = 0; i < 200 && rows.size() < 2; ++i) {
    gw_->assembly().request_log->Flush();
    auto fetched = store_->FetchUsageRows(0, NowUnixMs() + 1000);
    ASSERT_TRUE(fetched.ok());
    rows = *fetched;
    if (rows.size() < 2) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(rows.size(), 2u);
  auto keys = store_->FetchKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(rows[0].caller_key, (*keys)[0].id);
}

TEST_F(AccessPipeline, RevokedAndExpiredKeysAreRefused) {
  const std::string revoked = NewKey("gone");
  access::KeyChanges past;
  past.expires_unix_ms = NowUnixMs() - 1000;
  const std::string expired = NewKey("old", past);
  ASSERT_TRUE(access::RevokeKey(*store_, "gone", NowUnixMs()).ok());
  StartGateway();
  auto r = Chat(revoked);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(Body(r).at("error").at("message").as_string().find("revoked"), std::string::npos);
  r = Chat(expired);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(Body(r).at("error").at("message").as_string().find("expired"), std::string::npos);
}

TEST_F(AccessPipeline, AModelOutsideTheKeysListIs403NamingTheAllowedOnes) {
  access::KeyChanges c;
  c.models = std::vector<std::string>{"route"};
  const std::string key = NewKey("narrow", c);
  StartGateway();
  EXPECT_EQ(Chat(key).status, 200);
  auto r = Chat(key, "other");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(Body(r).at("error").at("message").as_string().find("route"), std::string::npos);
  // A fallback list is checked too.
  r = Chat(key, "route", R"(,"models":["other"])");
  EXPECT_EQ(r.status, 403) << r.body;
  // /v1/models lists only what the key may use.
  auto models = gw_->Call("GET", "/v1/models", "", {"Authorization: Bearer " + key});
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(Body(models).at("data").as_array().size(), 1u);
}

TEST_F(AccessPipeline, RpmIs429WithRetryAfterAndRateLimitHeaders) {
  access::KeyChanges c;
  c.rpm = 2;
  const std::string key = NewKey("slow", c);
  StartGateway();
  auto r1 = Chat(key);
  ASSERT_EQ(r1.status, 200);
  EXPECT_TRUE(HasHeader(r1, "x-ratelimit-limit-requests: 2")) << r1.head;
  EXPECT_TRUE(HasHeader(r1, "x-ratelimit-remaining-requests: 1")) << r1.head;
  ASSERT_EQ(Chat(key).status, 200);
  auto r3 = Chat(key);
  EXPECT_EQ(r3.status, 429) << r3.body;
  EXPECT_EQ(Body(r3).at("error").at("code"), "rate_limit_exceeded");
  EXPECT_TRUE(HasHeader(r3, "retry-after: ")) << r3.head;
  EXPECT_TRUE(HasHeader(r3, "x-ratelimit-remaining-requests: 0")) << r3.head;
  EXPECT_EQ(upstream_.requests(), 2);
}

TEST_F(AccessPipeline, ABudgetStopsAtTheReservationThatDoesNotFit) {
  // Worst case of one call: (5 prompt + 2 max_tokens) at $1 = $7; each costs $7.
  access::KeyChanges c;
  c.budget_usd = std::optional<double>(20.0);
  const std::string key = NewKey("capped", c);
  StartGateway();
  ASSERT_EQ(Chat(key).status, 200);
  ASSERT_EQ(Chat(key).status, 200);
  auto r = Chat(key);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(Body(r).at("error").at("code"), "insufficient_quota");
  EXPECT_EQ(Body(r).at("error").at("type"), "insufficient_quota");
  auto m = Messages(key);
  EXPECT_EQ(m.status, 429);
  EXPECT_EQ(Body(m).at("error").at("type"), "rate_limit_error");
  EXPECT_EQ(upstream_.requests(), 2);
  // The metric says what was spent (a call is settled just after its answer is sent).
  http::testing::RawResponse metrics;
  const std::string spent = "key_name=\"capped\",period=\"total\"} 14";
  for (int i = 0; i < 200; ++i) {
    metrics = gw_->Call("GET", "/metrics", "", {std::string("Authorization: Bearer ") + kMaster});
    if (metrics.body.find(spent) != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(metrics.body.find(spent), std::string::npos) << metrics.body;
}

// Web searches bill by the search: a budget reserves as many as the search tool allows. A
// reservation is not an answer: a model with no search price says nothing of searches that
// did not run.
TEST_F(AccessPipeline, ABudgetReservesTheWebSearchesASearchToolAllows) {
  FakeUpstream claude([](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
    const std::string model(json::parse(req.body).at("model").as_string());
    co_await w.Send(200, Json(),
                    R"({"id":"msg_1","type":"message","role":"assistant","model":")" + model +
                        R"(","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",)"
                        R"("usage":{"input_tokens":0,"output_tokens":0}})");
  });
  access::KeyChanges c;
  c.budget_usd = std::optional<double>(0.05);
  const std::string key = NewKey("searcher", c);
  gw_ = std::make_unique<TestGateway>(
      "providers:\n  claude: { kind: anthropic, api_key_env: K, base_url: \"" + claude.base_url() +
          "\" }\n"
          "pricing:\n"
          "  claude-x: { input_per_mtok: 0, output_per_mtok: 0, web_search_per_1k: 10 }\n"
          "  house-y: { input_per_mtok: 0, output_per_mtok: 0 }\n",
      std::map<std::string, std::string>{{"IRIS_MASTER_KEY", kMaster}, {"K", "sk-ant-test"}}, db_);
  auto ask = [&](const std::string& model, int max_uses) {
    return gw_->Call("POST", "/v1/messages",
                     R"({"model":"claude/)" + model +
                         R"(","max_tokens":5,"tools":[{"type":"web_search_20250305",)"
                         R"("name":"web_search","max_uses":)" +
                         std::to_string(max_uses) +
                         R"(}],"messages":[{"role":"user","content":"q"}]})",
                     {"anthropic-version: 2023-06-01", "x-api-key: " + key});
  };
  // 10 searches at $10 a thousand: $0.10, above the $0.05 budget.
  auto refused = ask("claude-x", 10);
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_NE(refused.body.find("this call may cost $0.1000"), std::string::npos) << refused.body;
  EXPECT_EQ(claude.requests(), 0);
  // 3 of them fit ($0.03): the call goes on, and costs what ran (no search).
  auto admitted = ask("claude-x", 3);
  ASSERT_EQ(admitted.status, 200) << admitted.body;
  EXPECT_EQ(claude.requests(), 1);
  EXPECT_EQ(Body(admitted).at("iris").at("cost_usd"), 0.0) << admitted.body;
  // Its reservation became what it cost ($0), so 4 more ($0.04) fit the $0.05 too.
  auto after = ask("claude-x", 4);
  EXPECT_EQ(after.status, 200) << after.body;
  // Searches a model has no price for reserve nothing, and a call that ran none has no warning.
  auto house = ask("house-y", 10);
  ASSERT_EQ(house.status, 200) << house.body;
  EXPECT_FALSE(Body(house).at("iris").as_object().contains("warnings")) << house.body;
}

TEST_F(AccessPipeline, ACallRefusedOnlyForAHoldOfACallInFlightWaitsForItToSettle) {
  // $20: a slow call holds its worst case ($15); a quick one ($7) fits what is spent ($0) but
  // not beside the hold. The slow call is let go 30 ms after the quick one started, and
  // settles at $7, so the quick one fits after all ($7 + $7).
  const std::string key = StartWithAHeldCallsBudget();
  InBackground slow([&] { return SlowChat(key); });
  WaitForUpstreamRequests(1);
  InBackground quick([&] { return Chat(key); });
  std::this_thread::sleep_for(30ms);
  release_ = true;
  EXPECT_EQ(slow.response().status, 200);
  EXPECT_EQ(quick.response().status, 200) << quick.response().body;
  EXPECT_GE(quick.took(), 25ms);  // it waited for the slow call
  // Now $14 is spent: the next quick call's $7 does not fit, and that refusal is at once.
  const auto t0 = std::chrono::steady_clock::now();
  auto spent = Chat(key);
  EXPECT_EQ(spent.status, 429);
  EXPECT_EQ(Body(spent).at("error").at("code"), "insufficient_quota");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
}

TEST_F(AccessPipeline, ACallHeldOutTooLongIsRefusedAsHeldWithRetryAfter) {
  const std::string key = StartWithAHeldCallsBudget();
  InBackground slow([&] { return SlowChat(key); });
  WaitForUpstreamRequests(1);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Chat(key);
  const auto waited = std::chrono::steady_clock::now() - t0;
  auto m = Messages(key);
  release_ = true;
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(Body(r).at("error").at("code"), "budget_held");
  EXPECT_EQ(Body(r).at("error").at("type"), "rate_limit_error");
  EXPECT_TRUE(HasHeader(r, "retry-after: 1")) << r.head;
  EXPECT_NE(r.body.find("has $20.0000 of its $20.0000 budget unspent, but $15.0000 of it is "
                        "reserved"),
            std::string::npos)
      << r.body;
  EXPECT_GE(waited, 150ms);  // it asked again before refusing
  ASSERT_EQ(m.status, 429);
  EXPECT_EQ(Body(m).at("error").at("type"), "rate_limit_error");
  EXPECT_EQ(slow.response().status, 200);
  EXPECT_EQ(Chat(key).status, 200);  // the hold became $7 spent
  EXPECT_EQ(upstream_.requests(), 2);
}

TEST_F(AccessPipeline, AFewOfAKeysCallsWaitForHoldsAndTheRestAreRefusedAtOnce) {
  const std::string key = StartWithAHeldCallsBudget();
  InBackground slow([&] { return SlowChat(key); });
  WaitForUpstreamRequests(1);
  std::vector<std::unique_ptr<InBackground>> quick;
  for (int i = 0; i < 12; ++i) {
    quick.push_back(std::make_unique<InBackground>([&] { return Chat(key); }));
  }
  int waited = 0;
  int at_once = 0;
  for (auto& q : quick) {
    EXPECT_EQ(q->response().status, 429);
    EXPECT_EQ(Body(q->response()).at("error").at("code"), "budget_held");
    (q->took() >= 150ms ? waited : at_once)++;
  }
  release_ = true;
  // Eight wait (each at least the sum of the waits); the other four are refused without one.
  EXPECT_LE(waited, 8);
  EXPECT_GE(at_once, 4);
  EXPECT_EQ(slow.response().status, 200);
}

TEST_F(AccessPipeline, SpendBeforeARestartCountsAgainstTheBudget) {
  access::KeyChanges c;
  c.budget_usd = std::optional<double>(20.0);
  const std::string key = NewKey("capped", c);
  StartGateway();
  ASSERT_EQ(Chat(key).status, 200);
  ASSERT_EQ(Chat(key).status, 200);
  gw_.reset();  // the log is flushed at shutdown
  StartGateway();
  EXPECT_EQ(Chat(key).status, 429);
}

TEST_F(AccessPipeline, TheAdminApiNeedsTheMasterKeyAndManagesKeys) {
  StartGateway();
  auto r = gw_->Call("GET", "/admin/keys", "", {});
  EXPECT_EQ(r.status, 401) << r.body;  // never open without the master key
  const std::string auth = std::string("Authorization: Bearer ") + kMaster;
  r = gw_->Call("POST", "/admin/keys", R"({"name":"ci","rpm":100,"models":["route"]})", {auth});
  ASSERT_EQ(r.status, 201) << r.body;
  const json::value created = Body(r);
  const std::string key(created.at("key").as_string());
  const std::string id(created.at("id").as_string());
  EXPECT_TRUE(key.starts_with("sk-iris-"));
  EXPECT_EQ(key.size(), 8u + 43u);
  // Listed without the key or its hash.
  r = gw_->Call("GET", "/admin/keys", "", {auth});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find(key), std::string::npos);
  EXPECT_EQ(r.body.find(access::HashKey(key)), std::string::npos);
  EXPECT_EQ(Body(r).at("data").at(0).at("rpm"), 100);
  // It works at once, and a key now exists: calls without one are refused.
  EXPECT_EQ(Chat(key).status, 200);
  EXPECT_EQ(Chat("").status, 401);
  r = gw_->Call("PATCH", "/admin/keys/" + id, R"({"rpm":null,"budget_usd":5})", {auth});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Body(r).at("rpm").is_null());
  EXPECT_EQ(Body(r).at("budget_usd"), 5.0);
  r = gw_->Call("PATCH", "/admin/keys/" + id, R"({"rpm":-1})", {auth});
  EXPECT_EQ(r.status, 400) << r.body;
  r = gw_->Call("DELETE", "/admin/keys/" + id, "", {auth});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("status"), "revoked");
  EXPECT_EQ(Chat(key).status, 401);
}

TEST_F(AccessPipeline, DashboardDataNeedsTheMasterKeyOrASessionOnceAuthIsOn) {
  NewKey("team");
  StartGateway();
  EXPECT_EQ(gw_->Call("GET", "/api/usage", "", {}).status, 401);
  EXPECT_EQ(gw_->Call("GET", "/metrics", "", {}).status, 401);
  EXPECT_EQ(gw_->Call("GET", "/api/usage", "", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(
      gw_->Call("GET", "/api/usage", "", {std::string("Authorization: Bearer ") + kMaster}).status,
      200);
  auto bad = gw_->Call("POST", "/admin/login", R"({"master_key":"nope"})", {});
  EXPECT_EQ(bad.status, 401);
  auto login =
      gw_->Call("POST", "/admin/login", std::string(R"({"master_key":")") + kMaster + R"("})", {});
  ASSERT_EQ(login.status, 200) << login.body;
  const size_t at = login.head.find("iris_session=");
  ASSERT_NE(at, std::string::npos) << login.head;
  const std::string cookie = login.head.substr(at, login.head.find(';', at) - at);
  EXPECT_EQ(gw_->Call("GET", "/api/usage", "", {"Cookie: " + cookie}).status, 200);
  EXPECT_EQ(login.head.find("Secure"), std::string::npos) << login.head;  // plain HTTP here
  // Behind a TLS-terminating proxy the cookie is Secure.
  auto proxied =
      gw_->Call("POST", "/admin/login", std::string(R"({"master_key":")") + kMaster + R"("})",
                {"X-Forwarded-Proto: https"});
  ASSERT_EQ(proxied.status, 200);
  EXPECT_NE(proxied.head.find("HttpOnly; SameSite=Strict; Max-Age=43200; Secure"),
            std::string::npos)
      << proxied.head;
  // A forged session is not one.
  std::string forged = cookie;
  forged.back() = forged.back() == '0' ? '1' : '0';
  EXPECT_EQ(gw_->Call("GET", "/api/usage", "", {"Cookie: " + forged}).status, 401);
}

TEST_F(AccessPipeline, GuessingTheMasterKeyIsStoppedPerAddress) {
  const std::string key = NewKey("team");
  StartGateway();
  const std::string master = std::string("Authorization: Bearer ") + kMaster;
  // Forged or expired session cookies are not guesses (an HMAC cannot be guessed, and a
  // dashboard left open sends its expired one): they do not count.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(gw_->Call("GET", "/api/usage", "", {"Cookie: iris_session=1.00"}).status, 401);
  }
  // Wrong keys do, on the admin API and the login alike.
  for (int i = 0; i < access::AttemptLimiter::kMaxFailures; ++i) {
    const std::string guess = "guess-" + std::to_string(i) + "-0123456789abcdef";
    if (i % 2 == 0) {
      EXPECT_EQ(gw_->Call("GET", "/admin/keys", "", {"Authorization: Bearer " + guess}).status,
                401);
    } else {
      EXPECT_EQ(
          gw_->Call("POST", "/admin/login", R"({"master_key":")" + guess + R"("})", {}).status,
          401);
    }
  }
  // From now on this address is refused even with the right key, and told when to retry.
  auto r = gw_->Call("GET", "/admin/keys", "", {master});
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_TRUE(HasHeader(r, "retry-after: ")) << r.head;
  EXPECT_NE(r.body.find("too many wrong master keys"), std::string::npos) << r.body;
  r = gw_->Call("POST", "/admin/login", std::string(R"({"master_key":")") + kMaster + R"("})", {});
  EXPECT_EQ(r.status, 429) << r.body;
  // Callers' own keys are another matter: chat still works.
  EXPECT_EQ(Chat(key).status, 200);
}

TEST_F(AccessPipeline, WithoutKeysALoopbackGatewayIsOpen) {
  StartGateway("auth: { mode: auto }\n");
  // IRIS_MASTER_KEY is set here, which turns auth on; without it calls are open.
  EXPECT_EQ(Chat("").status, 401);
  gw_.reset();
  gw_ = std::make_unique<TestGateway>("providers:\n  a: { kind: openai-compatible, base_url: \"" +
                                          upstream_.base_url() +
                                          "\" }\nmodels:\n  route: { targets: [a/m] }\n",
                                      std::map<std::string, std::string>{}, db_);
  EXPECT_EQ(Chat("").status, 200);
  EXPECT_EQ(Chat("sk-some-client-placeholder").status, 200);
  EXPECT_EQ(gw_->Call("GET", "/api/usage", "", {}).status, 200);
}

TEST_F(AccessPipeline, ModeKeysRequiresAKeyEvenOnLoopback) {
  gw_ = std::make_unique<TestGateway>(
      "auth: { mode: keys }\nproviders:\n  a: { kind: openai-compatible, base_url: \"" +
          upstream_.base_url() + "\" }\nmodels:\n  route: { targets: [a/m] }\n",
      std::map<std::string, std::string>{}, db_);
  EXPECT_EQ(Chat("").status, 401);
}

}  // namespace
}  // namespace iris::gateway::proxy
