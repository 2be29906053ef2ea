// The store backends against real SQLite files and a real PostgreSQL server: migrations,
// the round trip of every field, the usage aggregation and request paging, and the same
// answers from both.
#include "gateway/observe/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <fstream>
#include <limits>

#include "base/utf8.h"
#include "gateway/observe/store_test_util.h"
#include "gateway/observe/usage.h"

namespace iris::gateway::observe {
namespace {

using testing::Backend;
using testing::FreshStore;
using testing::Id;
using testing::MakeRecord;
using testing::TempDir;

constexpr int64_t kDay0 = 1795564800000;  // 2026-11-25T00:00:00Z
constexpr int64_t kHour = 3600000;
constexpr int64_t kMin = 60000;

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    spec_ = FreshStore(GetParam(), dir_);
    ASSERT_FALSE(spec_.empty());
  }
  std::unique_ptr<Store> Open() {
    auto s = OpenStore(spec_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  TempDir dir_;
  std::string spec_;
};

TEST_P(StoreTest, MigrationsApplyOnceAndNewerSchemaIsRefused) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->kind(), GetParam() == Backend::kSqlite ? "sqlite" : "postgres");
    auto v = store->SchemaVersion();
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, LatestSchemaVersion());
    ASSERT_TRUE(store->Insert({MakeRecord("kept", kDay0)}).ok());
    // Migration 4 dropped the index no query used: its name is free again.
    EXPECT_TRUE(store->ExecForTest("CREATE INDEX requests_model_start ON requests (model)").ok());
    ASSERT_TRUE(store->ExecForTest("DROP INDEX requests_model_start").ok());
  }
  {
    // Migration 1 creates tables without IF NOT EXISTS: applying it twice would fail here.
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->SchemaVersion(), LatestSchemaVersion());
    auto rows = store->FetchUsageRows(0, std::numeric_limits<int64_t>::max());
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(rows->size(), 1u);  // the data survived the reopen
    ASSERT_TRUE(store
                    ->ExecForTest("INSERT INTO schema_migrations (version, applied_at) VALUES "
                                  "(999, 0)")
                    .ok());
  }
  auto refused = OpenStore(spec_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("schema version 999, newer than this iris"),
            std::string::npos)
      << refused.status().message();
}

TEST_P(StoreTest, ALogOfAnOlderSchemaGainsTheWebSearchCount) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert({MakeRecord("old", kDay0)}).ok());
    // The log as the schema before migration 5 left it.
    ASSERT_TRUE(store->ExecForTest("ALTER TABLE requests DROP COLUMN web_searches").ok());
    ASSERT_TRUE(store->ExecForTest("DELETE FROM schema_migrations WHERE version = 5").ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), LatestSchemaVersion());
  RequestSummary searched = MakeRecord("new", kDay0 + 1);
  searched.usage.web_searches = 4;
  ASSERT_TRUE(store->Insert({searched}).ok());
  RequestFilter f;
  f.limit = 10;
  auto got = store->FetchRequests(f);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].request_id, "new");
  EXPECT_EQ((*got)[0].usage.web_searches, 4);
  EXPECT_EQ((*got)[1].request_id, "old");
  EXPECT_EQ((*got)[1].usage.web_searches, 0);
}

TEST_P(StoreTest, RoundTripsEveryField) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  RequestSummary r;
  r.request_id = "req-1";
  r.dialect = Dialect::kAnthropic;
  r.start_unix_ms = kDay0 + 1234;
  r.caller_key = "key-7";
  r.requested_model = "smart";
  r.alias = "smart-route";
  r.provider = "anthropic";
  r.model = "claude-sonnet-4-5";
  r.stream = true;
  r.http_status = 200;
  r.latency_ms = 2345.125;
  r.ttft_ms = -1;  // unknown: stored as NULL
  r.overhead_ms = 1.5;
  r.usage = {.input_tokens = 1000,
             .output_tokens = 300,
             .cached_input_tokens = 200,
             .cache_write_tokens = 100,
             .reasoning_tokens = 50,
             .web_searches = 3,
             .reported = true};
  r.cost_usd = std::nullopt;  // unknown: stored as NULL
  r.bytes_in = 4096;
  r.bytes_out = 123456;
  r.attempts = {
      {"openai", "gpt-4o", "error", 503, "upstream 503: overloaded", "upstream", 10.5, -1},
      {"mistral", "mistral-large", "skipped", 0, "breaker open", "unavailable", 0, -1},
      {"anthropic", "claude-sonnet-4-5", "ok", 200, "", "", 2300.25, 800.5},
  };
  RequestSummary failed = MakeRecord("req-0", kDay0 + 1000);
  failed.http_status = 502;
  failed.error_class = "upstream";
  failed.error = "every target failed: 'quoted' \"text\" ✓";
  failed.provider = "";
  failed.model = "";
  auto first = store->Insert({r, failed});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 2);
  // A retried batch that had in fact been committed changes nothing, and says so: 0 written.
  auto again = store->Insert({r});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);

  RequestFilter f;
  f.limit = 10;
  auto got = store->FetchRequests(f);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  const RequestSummary& g = (*got)[0];
  EXPECT_EQ(g.request_id, "req-1");
  EXPECT_EQ(g.dialect, Dialect::kAnthropic);
  EXPECT_EQ(g.start_unix_ms, r.start_unix_ms);
  EXPECT_EQ(g.caller_key, "key-7");
  EXPECT_EQ(g.requested_model, "smart");
  EXPECT_EQ(g.alias, "smart-route");
  EXPECT_EQ(g.provider, "anthropic");
  EXPECT_EQ(g.model, "claude-sonnet-4-5");
  EXPECT_TRUE(g.stream);
  EXPECT_EQ(g.http_status, 200);
  EXPECT_EQ(g.error_class, "");
  EXPECT_EQ(g.latency_ms, 2345.125);
  EXPECT_EQ(g.ttft_ms, -1);
  EXPECT_EQ(g.overhead_ms, 1.5);
  EXPECT_EQ(g.usage.input_tokens, 1000);
  EXPECT_EQ(g.usage.output_tokens, 300);
  EXPECT_EQ(g.usage.cached_input_tokens, 200);
  EXPECT_EQ(g.usage.cache_write_tokens, 100);
  EXPECT_EQ(g.usage.reasoning_tokens, 50);
  EXPECT_EQ(g.usage.web_searches, 3);
  EXPECT_FALSE(g.cost_usd.has_value());
  EXPECT_EQ(g.bytes_in, 4096);
  EXPECT_EQ(g.bytes_out, 123456);
  ASSERT_EQ(g.attempts.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(g.attempts[i].provider, r.attempts[i].provider);
    EXPECT_EQ(g.attempts[i].model, r.attempts[i].model);
    EXPECT_EQ(g.attempts[i].outcome, r.attempts[i].outcome);
    EXPECT_EQ(g.attempts[i].status, r.attempts[i].status);
    EXPECT_EQ(g.attempts[i].error, r.attempts[i].error);
    EXPECT_EQ(g.attempts[i].error_class, r.attempts[i].error_class);
    EXPECT_EQ(g.attempts[i].latency_ms, r.attempts[i].latency_ms);
    EXPECT_EQ(g.attempts[i].ttft_ms, r.attempts[i].ttft_ms);
  }
  const RequestSummary& h = (*got)[1];
  EXPECT_EQ(h.request_id, "req-0");
  EXPECT_EQ(h.dialect, Dialect::kOpenAI);
  EXPECT_FALSE(h.stream);
  EXPECT_EQ(h.http_status, 502);
  EXPECT_EQ(h.error, failed.error);
  EXPECT_EQ(h.ttft_ms, 40.25);
  ASSERT_TRUE(h.cost_usd.has_value());
  EXPECT_EQ(*h.cost_usd, 0.0000270);
  ASSERT_EQ(h.attempts.size(), 1u);

  // The JSON the dashboard reads: NULLs for the unknowns.
  RequestsPage page;
  page.requests = *got;
  auto json = boost::json::parse(RequestsJson(page));
  const auto& j = json.at("requests").at(0);
  EXPECT_EQ(j.at("dialect"), "anthropic");
  EXPECT_EQ(j.at("route"), "smart-route");
  EXPECT_TRUE(j.at("ttft_ms").is_null());
  EXPECT_TRUE(j.at("cost_usd").is_null());
  EXPECT_EQ(j.at("usage").at("cached_tokens"), 200);
  EXPECT_EQ(j.at("usage").at("web_searches"), 3);
  EXPECT_EQ(j.at("attempts").at(2).at("n"), 3);
  EXPECT_EQ(j.at("attempts").at(2).at("ttft_ms").as_double(), 800.5);
  EXPECT_TRUE(j.at("attempts").at(0).at("ttft_ms").is_null());
  EXPECT_TRUE(json.at("next_before").is_null());
}

// Eight requests over two days with known sums, percentiles and buckets.
std::vector<RequestSummary> KnownDataSet() {
  struct Row {
    int64_t start;
    const char* provider;
    const char* model;
    int status;
    const char* error_class;
    double latency, ttft;
    std::optional<double> cost;
    int64_t in, out, cached, reasoning;
  };
  const Row rows[] = {
      {kDay0 + kHour + 0 * kMin, "openai", "gpt-4o-mini", 200, "", 100, 40, 0.001, 100, 10, 20, 0},
      {kDay0 + kHour + 1 * kMin, "openai", "gpt-4o-mini", 200, "", 200, 50, 0.002, 200, 20, 0, 0},
      {kDay0 + kHour + 2 * kMin, "anthropic", "claude", 200, "", 300, 60, 0.003, 300, 30, 0, 5},
      {kDay0 + kHour + 3 * kMin, "anthropic", "claude", 502, "upstream", 1000, -1, {}, 0, 0, 0, 0},
      {kDay0 + kHour + 4 * kMin, "", "", 429, "rate_limited", 3, -1, {}, 0, 0, 0, 0},
      {kDay0 + 24 * kHour + 2 * kHour, "openai", "gpt-4o-mini", 200, "", 20, 8, 0.0005, 50, 5, 0,
       0},
      {kDay0 + 24 * kHour + 3 * kHour, "local", "smolvlm", 200, "", 4000, 700, 0.0, 1000, 100, 0,
       0},
      {kDay0 + 24 * kHour + 4 * kHour,
       "openai",
       "gpt-4o",
       500,
       "upstream",
       40000,
       -1,
       {},
       0,
       0,
       0,
       0},
  };
  std::vector<RequestSummary> out;
  int i = 0;
  for (const Row& row : rows) {
    RequestSummary r = MakeRecord(testing::Id("known-", i++), row.start);
    r.requested_model = row.provider[0] != '\0' ? row.model : "x";
    r.provider = row.provider;
    r.model = row.model;
    r.http_status = row.status;
    r.error_class = row.error_class;
    r.latency_ms = row.latency;
    r.ttft_ms = row.ttft;
    r.cost_usd = row.cost;
    r.usage.input_tokens = row.in;
    r.usage.output_tokens = row.out;
    r.usage.cached_input_tokens = row.cached;
    r.usage.reasoning_tokens = row.reasoning;
    if (std::string_view(row.model) == "claude" && row.status == 200) r.usage.web_searches = 2;
    out.push_back(r);
  }
  return out;
}

UsageQuery AllGroups(int64_t since, int64_t until) {
  return {.since_unix_ms = since,
          .until_unix_ms = until,
          .by_day = true,
          .by_model = true,
          .by_provider = true};
}

TEST_P(StoreTest, UsageOnAKnownDataSet) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(KnownDataSet()).ok());
  // One request outside the window on each side.
  ASSERT_TRUE(
      store->Insert({MakeRecord("before", kDay0 - 1), MakeRecord("after", kDay0 + 48 * kHour)})
          .ok());
  auto report = QueryUsage(*store, AllGroups(kDay0, kDay0 + 48 * kHour));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const UsageStats& t = report->totals;
  EXPECT_EQ(t.requests, 8);
  EXPECT_EQ(t.errors, 3);
  EXPECT_NEAR(t.cost_usd, 0.0065, 1e-12);
  EXPECT_EQ(t.unpriced_requests, 3);
  EXPECT_EQ(t.input_tokens, 1650);
  EXPECT_EQ(t.output_tokens, 165);
  EXPECT_EQ(t.cached_tokens, 20);
  EXPECT_EQ(t.reasoning_tokens, 5);
  EXPECT_EQ(t.web_searches, 2);
  EXPECT_EQ(t.latency_ms.p50, 200);
  EXPECT_EQ(t.latency_ms.p90, 40000);
  EXPECT_EQ(t.latency_ms.p99, 40000);
  EXPECT_EQ(t.ttft_ms.p50, 50);
  EXPECT_EQ(t.ttft_ms.p90, 700);
  EXPECT_EQ(t.ttft_ms.p99, 700);

  ASSERT_EQ(report->by_day.size(), 2u);
  EXPECT_EQ(report->by_day[0].key, "2026-11-25");
  EXPECT_EQ(report->by_day[0].requests, 5);
  EXPECT_EQ(report->by_day[0].errors, 2);
  EXPECT_EQ(report->by_day[1].key, "2026-11-26");
  EXPECT_EQ(report->by_day[1].requests, 3);
  EXPECT_EQ(report->by_day[1].latency_ms.p50, 4000);

  ASSERT_EQ(report->by_provider.size(), 4u);
  EXPECT_EQ(report->by_provider[0].key, "openai");
  EXPECT_EQ(report->by_provider[0].requests, 4);
  EXPECT_EQ(report->by_provider[0].errors, 1);
  EXPECT_NEAR(report->by_provider[0].cost_usd, 0.0035, 1e-12);
  EXPECT_EQ(report->by_provider[1].key, "anthropic");
  EXPECT_EQ(report->by_provider[1].web_searches, 2);
  EXPECT_EQ(report->by_provider[0].web_searches, 0);
  EXPECT_EQ(report->by_provider[2].key, "(none)");
  EXPECT_EQ(report->by_provider[3].key, "local");

  ASSERT_EQ(report->by_model.size(), 5u);
  EXPECT_EQ(report->by_model[0].key, "openai/gpt-4o-mini");
  EXPECT_EQ(report->by_model[0].requests, 3);
  EXPECT_EQ(report->by_model[0].ttft_ms.p50, 40);
  EXPECT_EQ(report->by_model[1].key, "anthropic/claude");
  EXPECT_EQ(report->by_model[1].ttft_ms.p50, 60);  // one request without a token
  EXPECT_EQ(report->by_model[4].key, "x");

  ASSERT_EQ(report->errors_by_class.size(), 2u);
  EXPECT_EQ(report->errors_by_class[0].key, "upstream");
  EXPECT_EQ(report->errors_by_class[0].count, 2);
  EXPECT_EQ(report->errors_by_class[1].key, "rate_limited");
  EXPECT_EQ(report->errors_by_class[1].count, 1);

  const std::array<int64_t, 13> latency = {1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1};
  const std::array<int64_t, 13> ttft = {0, 1, 0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0};
  EXPECT_EQ(report->latency_histogram.counts, latency);
  EXPECT_EQ(report->ttft_histogram.counts, ttft);

  EXPECT_EQ(report->rate_bucket_ms, kHour);
  ASSERT_EQ(report->rate.size(), 48u);
  EXPECT_EQ(report->rate[0].t_unix_ms, kDay0);
  EXPECT_EQ(report->rate[1].requests, 5);
  EXPECT_EQ(report->rate[1].errors, 2);
  EXPECT_EQ(report->rate[26].requests, 1);
  EXPECT_EQ(report->rate[28].errors, 1);
  int64_t sum = 0;
  for (const RatePoint& p : report->rate) sum += p.requests;
  EXPECT_EQ(sum, 8);

  auto json = boost::json::parse(UsageJson(*report));
  EXPECT_EQ(json.at("totals").at("requests"), 8);
  EXPECT_EQ(json.at("by_day").at(0).at("key"), "2026-11-25");
  EXPECT_EQ(json.at("by_model").at(0).at("latency_ms").at("p50").as_double(), 100);
  EXPECT_EQ(json.at("latency_histogram").at("bounds_ms").as_array().size(), 12u);
  EXPECT_EQ(json.at("latency_histogram").at("counts").as_array().size(), 13u);
  EXPECT_EQ(json.at("errors_by_class").at(0).at("count"), 2);
  EXPECT_EQ(json.at("rate").as_array().size(), 48u);

  // An empty window: zeros and nulls, not errors.
  auto empty = QueryUsage(*store, AllGroups(kDay0 + 100 * kHour, kDay0 + 101 * kHour));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->totals.requests, 0);
  EXPECT_FALSE(empty->totals.latency_ms.p50.has_value());
  auto ej = boost::json::parse(UsageJson(*empty));
  EXPECT_TRUE(ej.at("totals").at("latency_ms").at("p50").is_null());

  // Bounds a caller can send to /api/usage: refused, never overflowing arithmetic.
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  const int64_t highest = std::numeric_limits<int64_t>::max();
  for (auto [since, until] :
       {std::pair{lowest, highest}, std::pair{lowest, int64_t{0}}, std::pair{int64_t{0}, highest},
        std::pair{int64_t{-1}, int64_t{5}}, std::pair{kDay0 + 10, kDay0}}) {
    auto bad = QueryUsage(*store, AllGroups(since, until));
    ASSERT_FALSE(bad.ok()) << since << " " << until;
    EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  }
}

TEST_P(StoreTest, RequestsPageNewestFirstWithoutSplittingAMillisecond) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<RequestSummary> batch;
  const int64_t ms[] = {1000, 2000, 3000, 4000, 4000, 5000};
  for (int i = 0; i < 6; ++i) {
    RequestSummary r = MakeRecord(Id("p", i), kDay0 + ms[i]);
    if (i == 2) {
      r.provider = "anthropic";
      r.http_status = 529;
    }
    batch.push_back(r);
  }
  ASSERT_TRUE(store->Insert(batch).ok());
  std::vector<std::string> seen;
  RequestsQuery q;
  q.limit = 2;
  std::vector<size_t> sizes;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = QueryRequests(*store, q);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    sizes.push_back(page->requests.size());
    for (const RequestSummary& r : page->requests) seen.push_back(r.request_id);
    if (!page->next_before) break;
    q.before_unix_ms = *page->next_before;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"p5", "p4", "p3", "p2", "p1", "p0"}));
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 2, 2, 1}));

  RequestsQuery errors;
  errors.http_status = -1;
  auto e = QueryRequests(*store, errors);
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->requests.size(), 1u);
  EXPECT_EQ(e->requests[0].request_id, "p2");
  RequestsQuery by_provider;
  by_provider.provider = "openai";
  by_provider.http_status = 200;
  by_provider.model = "gpt-4o-mini";
  auto p = QueryRequests(*store, by_provider);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->requests.size(), 5u);
  EXPECT_FALSE(p->next_before.has_value());
  RequestsQuery huge;
  huge.limit = 100000;  // clamped to kMaxRequestsPage
  EXPECT_TRUE(QueryRequests(*store, huge).ok());
}

TEST_P(StoreTest, KeysRoundTripAndSpendSumsByKey) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  KeyRecord k;
  k.id = "key_a";
  k.name = "team-a";
  k.key_hash = std::string(64, 'a');
  k.hint = "sk-iris-AAAA...aaaa";
  k.created_unix_ms = 10;
  k.updated_unix_ms = 11;
  k.expires_unix_ms = 12;
  k.budget_usd = 2.5;
  k.budget_period = "month";
  k.rpm = 60;
  k.tpm = 1000;
  k.models = {"fast", "openai/*", "quote\"d"};
  ASSERT_TRUE(store->InsertKey(k).ok());
  KeyRecord same_hash = k;
  same_hash.id = "key_b";
  EXPECT_EQ(store->InsertKey(same_hash).code(), ErrorCode::kFailedPrecondition);
  auto keys = store->FetchKeys();
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  const KeyRecord& g = (*keys)[0];
  EXPECT_EQ(g.name, "team-a");
  EXPECT_EQ(g.key_hash, k.key_hash);
  EXPECT_EQ(g.hint, k.hint);
  EXPECT_EQ(g.expires_unix_ms, 12);
  EXPECT_EQ(g.revoked_unix_ms, 0);
  EXPECT_EQ(*g.budget_usd, 2.5);
  EXPECT_EQ(g.budget_period, "month");
  EXPECT_EQ(g.rpm, 60);
  EXPECT_EQ(g.tpm, 1000);
  EXPECT_EQ(g.models, k.models);
  k.budget_usd.reset();
  k.revoked_unix_ms = 99;
  ASSERT_TRUE(store->UpdateKey(k).ok());
  keys = store->FetchKeys();
  EXPECT_FALSE((*keys)[0].budget_usd);
  EXPECT_EQ((*keys)[0].revoked_unix_ms, 99);
  KeyRecord missing = k;
  missing.id = "key_none";
  EXPECT_EQ(store->UpdateKey(missing).code(), ErrorCode::kNotFound);

  std::vector<RequestSummary> batch;
  for (int i = 0; i < 4; ++i) {
    RequestSummary r = MakeRecord("r" + std::to_string(i), kDay0 + i);
    r.caller_key = i < 3 ? "key_a" : "key_c";
    r.cost_usd = 0.25 * (i + 1);
    batch.push_back(r);
  }
  RequestSummary unpriced = MakeRecord("r9", kDay0 + 9);
  unpriced.caller_key = "key_a";
  unpriced.cost_usd.reset();
  batch.push_back(unpriced);
  ASSERT_TRUE(store->Insert(batch).ok());
  auto spend = store->SpendByKeySince(kDay0 + 1);
  ASSERT_TRUE(spend.ok());
  EXPECT_DOUBLE_EQ(spend->at("key_a"), 0.5 + 0.75);
  EXPECT_DOUBLE_EQ(spend->at("key_c"), 1.0);
  auto rows = store->FetchUsageRows(kDay0, kDay0 + 100);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[3].caller_key, "key_c");
  RequestFilter f;
  f.caller_key = "key_c";
  auto listed = store->FetchRequests(f);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].request_id, "r3");
}

TEST_P(StoreTest, StoredBodiesRoundTripBesideTheirRequestOnly) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  RequestSummary with = MakeRecord("b1", kDay0 + 1);
  with.alias = "vision";
  with.provider = "openai";
  with.model = "gpt-4o-mini";
  // Quotes, newlines, non-ASCII and a megabyte: stored byte for byte.
  with.request_body = R"({"model":"vision","messages":[{"role":"user","content":"hé
"x""}]})";
  with.response_body = std::string(1 << 20, 'a');
  RequestSummary without = MakeRecord("b2", kDay0 + 2);
  RequestSummary outside = MakeRecord("b3", kDay0 + kHour);
  outside.request_body = "{}";
  outside.response_body = "{}";
  ASSERT_TRUE(store->Insert({with, without, outside}).ok());
  // A retried batch (same ids) changes nothing, bodies included.
  RequestSummary again = with;
  again.request_body = "changed";
  auto n = store->Insert({again});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);

  std::vector<StoredExchange> seen;
  ASSERT_TRUE(store
                  ->ForEachStoredExchange(kDay0, kDay0 + kHour,
                                          [&](const StoredExchange& e) { seen.push_back(e); })
                  .ok());
  ASSERT_EQ(seen.size(), 1u);  // b2 stored no bodies; b3 is outside the window
  EXPECT_EQ(seen[0].request_id, "b1");
  EXPECT_EQ(seen[0].start_unix_ms, kDay0 + 1);
  EXPECT_EQ(seen[0].alias, "vision");
  EXPECT_EQ(seen[0].provider, "openai");
  EXPECT_EQ(seen[0].model, "gpt-4o-mini");
  EXPECT_EQ(seen[0].request_body, with.request_body);
  EXPECT_EQ(seen[0].response_body, with.response_body);
  seen.clear();
  ASSERT_TRUE(store
                  ->ForEachStoredExchange(0, std::numeric_limits<int64_t>::max(),
                                          [&](const StoredExchange& e) { seen.push_back(e); })
                  .ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].request_id, "b3");  // oldest first
}

TEST_P(StoreTest, TextThatIsNotUtf8KeepsItsBatch) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // A provider's error page in Latin-1, with a NUL, and a character cut in two at a length.
  RequestSummary bad = MakeRecord("u1", kDay0 + 1);
  bad.http_status = 502;
  bad.error = std::string("openai failed (502): Dienst nicht verf\xFCgbar") + '\0' + " \xE2\x82";
  bad.attempts[0].error = bad.error;
  bad.request_body = "{\"q\":\"\xFF\"}";
  bad.response_body = "ok \xC3";
  RequestSummary good = MakeRecord("u2", kDay0 + 2);
  good.http_status = 529;
  good.error =
      "anthropic failed (529): \xC3\xBC"
      "berlastet \xE2\x80\x94 \xF0\x9F\x98\x80";
  auto n = store->Insert({bad, good});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  auto rows = store->FetchRequests({});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  const RequestSummary& got = (*rows)[1];
  ASSERT_EQ(got.request_id, "u1");
  // Either store keeps U+FFFD in place of each byte that is not UTF-8 and of the NUL, so the
  // record reads back the same from both.
  const std::string want = std::string("openai failed (502): Dienst nicht verf") +
                           std::string(kUtf8Replacement) + "gbar" + std::string(kUtf8Replacement) +
                           " " + std::string(kUtf8Replacement);
  EXPECT_EQ(got.error, want);
  ASSERT_EQ(got.attempts.size(), 1u);
  EXPECT_EQ(got.attempts[0].error, want);
  // Text that is UTF-8 already is kept byte for byte.
  ASSERT_EQ((*rows)[0].request_id, "u2");
  EXPECT_EQ((*rows)[0].error, good.error);
  // The stored bodies too.
  std::vector<StoredExchange> seen;
  ASSERT_TRUE(store
                  ->ForEachStoredExchange(kDay0, kDay0 + kHour,
                                          [&](const StoredExchange& e) { seen.push_back(e); })
                  .ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].request_body, "{\"q\":\"" + std::string(kUtf8Replacement) + "\"}");
  EXPECT_EQ(seen[0].response_body, "ok " + std::string(kUtf8Replacement));
}

TEST(StorableTextTest, IsUtf8WithoutNul) {
  using internal::IsStorableText;
  using internal::StorableText;
  const std::string fffd(kUtf8Replacement);
  for (std::string_view ok : {std::string_view(""), std::string_view("plain"),
                              std::string_view("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80")}) {
    EXPECT_TRUE(IsStorableText(ok)) << ok;
    EXPECT_EQ(StorableText(ok), ok);
  }
  EXPECT_FALSE(IsStorableText(std::string_view("a\0b", 3)));
  EXPECT_EQ(StorableText(std::string_view("a\0b", 3)), "a" + fffd + "b");
  EXPECT_FALSE(IsStorableText("verf\xFCgbar"));
  EXPECT_EQ(StorableText("verf\xFCgbar"), "verf" + fffd + "gbar");
  EXPECT_FALSE(IsStorableText("cut \xE2\x82"));
  EXPECT_EQ(StorableText("cut \xE2\x82"), "cut " + fffd);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::BackendName);

TEST(StoreBackendsTest, BothBackendsAnswerTheSameUsageAndRequests) {
  TempDir dir;
  std::vector<std::string> usage, requests;
  for (Backend b : {Backend::kSqlite, Backend::kPostgres}) {
    std::string spec = FreshStore(b, dir);
    ASSERT_FALSE(spec.empty());
    auto store = OpenStore(spec);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Insert(KnownDataSet()).ok());
    auto report = QueryUsage(**store, AllGroups(kDay0, kDay0 + 48 * kHour));
    ASSERT_TRUE(report.ok());
    usage.push_back(UsageJson(*report));
    RequestsQuery five;
    five.limit = 5;
    auto page = QueryRequests(**store, five);
    ASSERT_TRUE(page.ok());
    requests.push_back(RequestsJson(*page));
  }
  EXPECT_EQ(usage[0], usage[1]);
  EXPECT_EQ(requests[0], requests[1]);
}

TEST(SqliteStoreTest, MigrationsAreRecordedOnce) {
  TempDir dir;
  const std::string path = dir.path() + "/m.db";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(OpenSqliteStore(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(version) FROM schema_migrations", -1, &s,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), LatestSchemaVersion());
  EXPECT_EQ(sqlite3_column_int(s, 1), LatestSchemaVersion());
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST(SqliteStoreTest, CorruptOrUnwritablePathsGiveClearErrors) {
  TempDir dir;
  const std::string garbage = dir.path() + "/garbage.db";
  {
    std::ofstream out(garbage);
    for (int i = 0; i < 200; ++i) out << "this is not an SQLite database at all. ";
  }
  auto corrupt = OpenStore(garbage);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find(garbage), std::string::npos)
      << corrupt.status().message();
  EXPECT_NE(corrupt.status().message().find("not a database"), std::string::npos)
      << corrupt.status().message();

  const std::string file = dir.path() + "/plain-file";
  { std::ofstream(file) << "x"; }
  auto under_file = OpenStore("sqlite:" + file + "/iris.db");
  ASSERT_FALSE(under_file.ok());
  EXPECT_NE(under_file.status().message().find("cannot create the directory"), std::string::npos)
      << under_file.status().message();

  auto a_directory = OpenStore(dir.path());
  ASSERT_FALSE(a_directory.ok());
  EXPECT_NE(a_directory.status().message().find(dir.path()), std::string::npos)
      << a_directory.status().message();

  auto missing = OpenStore(dir.path() + "/missing.db", StoreOptions{.create = false});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

TEST(StoreSpecTest, ParsesStoreStringsAndTheDefaultPath) {
  EXPECT_EQ(ParseStoreSpec("postgres://u@h/db").kind, StoreSpec::Kind::kPostgres);
  EXPECT_EQ(ParseStoreSpec("postgresql://u@h/db").location, "postgresql://u@h/db");
  EXPECT_EQ(ParseStoreSpec("sqlite:/x/y.db").location, "/x/y.db");
  EXPECT_EQ(ParseStoreSpec("/x/y.db").kind, StoreSpec::Kind::kSqlite);

  auto saved = [](const char* n) {
    const char* v = std::getenv(n);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto restore = [](const char* n, const std::optional<std::string>& v) {
    if (v) {
      setenv(n, v->c_str(), 1);
    } else {
      unsetenv(n);
    }
  };
  const auto data = saved("IRIS_DATA_DIR"), xdg = saved("XDG_DATA_HOME"), home = saved("HOME");
  setenv("IRIS_DATA_DIR", "/d", 1);
  setenv("XDG_DATA_HOME", "/x", 1);
  setenv("HOME", "/h", 1);
  EXPECT_EQ(DefaultStorePath(), "/d/iris.db");
  EXPECT_EQ(ParseStoreSpec("").location, "/d/iris.db");
  unsetenv("IRIS_DATA_DIR");
  EXPECT_EQ(DefaultStorePath(), "/x/iris/iris.db");
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(DefaultStorePath(), "/h/.local/share/iris/iris.db");
  restore("IRIS_DATA_DIR", data);
  restore("XDG_DATA_HOME", xdg);
  restore("HOME", home);
}

TEST(UsageTest, UtcDayAndPercentileEdges) {
  EXPECT_EQ(UtcDay(kDay0), "2026-11-25");
  EXPECT_EQ(UtcDay(kDay0 - 1), "2026-11-24");
  std::vector<UsageRow> rows(1);
  rows[0].latency_ms = 7;
  auto r = AggregateUsage(rows, {.since_unix_ms = 0, .until_unix_ms = kMin});
  EXPECT_EQ(r.totals.latency_ms.p50, 7);
  EXPECT_EQ(r.totals.latency_ms.p99, 7);
  EXPECT_FALSE(r.totals.ttft_ms.p50.has_value());
  EXPECT_EQ(r.latency_histogram.counts[1], 1);  // 5 < 7 <= 10
  EXPECT_EQ(r.rate.size(), 1u);
}

}  // namespace
}  // namespace iris::gateway::observe
