// The request log's write path: nothing lost under concurrent submits or on Close, a full
// queue drops without blocking, and write failures are retried, counted and survived.
#include "gateway/observe/request_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <memory>
#include <thread>

#include "gateway/observe/store_test_util.h"

namespace iris::gateway::observe {
namespace {

using testing::Backend;
using testing::FreshStore;
using testing::Id;
using testing::MakeRecord;
using testing::TempDir;

constexpr int64_t kT0 = 1795564800000;

int64_t CountRows(const std::string& spec) {
  auto store = OpenStore(spec);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return -1;
  auto rows = (*store)->FetchUsageRows(0, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() ? static_cast<int64_t>(rows->size()) : -1;
}

// Holds the writer at its first batch, as a slow disk would, until Release(): so that the queue
// fills up. A log must not close while its writer is held: ReleaseAtExit(), declared after the
// log, lets it go however the test ends.
class StuckWriter {
 public:
  explicit StuckWriter(RequestLogOptions& o) {
    o.flush_interval_ms = 1;
    o.before_batch = [state = state_] {
      if (state->first.exchange(false)) {
        state->entered.set_value();
        state->release_f.wait();
      }
    };
  }
  void WaitUntilHeld() { state_->entered.get_future().wait(); }
  void Release() {
    if (!state_->released.exchange(true)) state_->release.set_value();
  }
  struct Releaser {
    StuckWriter* writer;
    ~Releaser() { writer->Release(); }
  };
  [[nodiscard]] Releaser ReleaseAtExit() { return Releaser{this}; }

 private:
  struct State {
    std::promise<void> entered, release;
    std::shared_future<void> release_f = release.get_future().share();
    std::atomic<bool> first{true}, released{false};
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

class RequestLogTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    spec_ = FreshStore(GetParam(), dir_);
    ASSERT_FALSE(spec_.empty());
  }
  TempDir dir_;
  std::string spec_;
};

TEST_P(RequestLogTest, FiveThousandRecordsFromFourThreadsAreAllWritten) {
  auto log = RequestLog::Open(spec_);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  constexpr int kThreads = 4, kEach = 1250;
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string id = Id("t", t) + Id("-", i);
        if (!(*log)->Submit(MakeRecord(id, kT0 + t * kEach + i))) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  (*log)->Flush();
  RequestLogStats s = (*log)->stats();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(s.written, kThreads * kEach);
  EXPECT_EQ(s.dropped, 0);
  EXPECT_EQ(s.write_errors, 0);
  EXPECT_EQ(s.queued, 0);
  EXPECT_GE(s.batches, 10);  // at most 500 records a transaction
  EXPECT_EQ(CountRows(spec_), kThreads * kEach);

  // The query side reads through its own connection.
  auto usage = (*log)->Usage({.since_unix_ms = kT0, .until_unix_ms = kT0 + 10000});
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_EQ(usage->totals.requests, kThreads * kEach);
  RequestsQuery three;
  three.limit = 3;
  auto page = (*log)->Requests(three);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->requests.size(), 3u);
  EXPECT_EQ(page->requests[0].attempts.size(), 1u);
}

TEST_P(RequestLogTest, AFullQueueDropsWithoutBlocking) {
  RequestLogOptions o;
  o.queue_capacity = 10;
  StuckWriter stuck(o);
  auto log = RequestLog::Open(spec_, o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto release_at_exit = stuck.ReleaseAtExit();
  ASSERT_TRUE((*log)->Submit(MakeRecord("held", kT0)));
  stuck.WaitUntilHeld();  // the writer holds that record and waits

  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE((*log)->Submit(MakeRecord(Id("q", i), kT0 + 1 + i)));
  }
  // The writer stays stuck while these run: a Submit that waited for room would never return,
  // so the deadline below fails the test instead of hanging it. (How fast a refusal is, is a
  // benchmark's question; a wall-clock bound here only measured the machine's load.)
  auto refusals = std::async(std::launch::async, [&] {
    int refused = 0;
    for (int i = 0; i < 50; ++i) {
      if (!(*log)->Submit(MakeRecord(Id("x", i), kT0 + 100 + i))) ++refused;
    }
    return refused;
  });
  if (refusals.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    stuck.Release();  // let the blocked Submit finish so the test can end
    FAIL() << "Submit blocked on a full queue while the writer was stuck";
  }
  EXPECT_EQ(refusals.get(), 50);
  RequestLogStats s = (*log)->stats();
  EXPECT_EQ(s.dropped, 50);
  EXPECT_EQ(s.summed, 0);  // (counted once written)
  EXPECT_EQ(s.queued, 10);
  stuck.Release();
  (*log)->Flush();
  s = (*log)->stats();
  EXPECT_EQ(s.written, 11);
  EXPECT_EQ(s.summed, 50);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(CountRows(spec_), 12);  // 11 records, and one row summing the 50 dropped
}

TEST_P(RequestLogTest, WhatDroppedRecordsCostIsWrittenSummed) {
  RequestLogOptions o;
  o.queue_capacity = 2;
  o.max_sums = 2;
  StuckWriter stuck(o);
  auto log = RequestLog::Open(spec_, o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto release_at_exit = stuck.ReleaseAtExit();
  int n = 0;
  auto record = [&](const std::string& key, const std::string& model, double cost) {
    RequestSummary r = MakeRecord(Id("r", n), kT0 + n);
    ++n;
    r.caller_key = key;
    r.model = model;
    r.cost_usd = cost;
    r.latency_ms = 100.0 * n;
    return r;
  };
  ASSERT_TRUE((*log)->Submit(record("key_a", "gpt-4o-mini", 1.0)));
  stuck.WaitUntilHeld();
  ASSERT_TRUE((*log)->Submit(record("key_a", "gpt-4o-mini", 2.0)));
  ASSERT_TRUE((*log)->Submit(record("key_b", "gpt-4o-mini", 4.0)));
  // The queue is full: these are dropped, their sums kept. Two sums fit as they are...
  for (int i = 0; i < 5; ++i) EXPECT_FALSE((*log)->Submit(record("key_a", "gpt-4o-mini", 0.01)));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE((*log)->Submit(record("key_b", "gpt-4o-mini", 0.1)));
  // ...then a record is summed without its provider and model, up to twice as many sums...
  for (int i = 0; i < 2; ++i) EXPECT_FALSE((*log)->Submit(record("key_a", "gpt-4o", 0.001)));
  EXPECT_FALSE((*log)->Submit(record("key_c", "gpt-4o", 8.0)));
  // ...and past that it is lost.
  EXPECT_FALSE((*log)->Submit(record("key_d", "gpt-4o", 16.0)));
  RequestLogStats s = (*log)->stats();
  EXPECT_EQ(s.dropped, 12);
  stuck.Release();
  (*log)->Flush();
  s = (*log)->stats();
  EXPECT_EQ(s.written, 3);
  EXPECT_EQ(s.summed, 11);

  auto store = OpenStore(spec_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto spend = (*store)->SpendByKeySince(kT0);
  ASSERT_TRUE(spend.ok()) << spend.status().ToString();
  EXPECT_NEAR((*spend)["key_a"], 1.0 + 2.0 + 0.05 + 0.002, 1e-9);
  EXPECT_NEAR((*spend)["key_b"], 4.0 + 0.3, 1e-9);
  EXPECT_NEAR((*spend)["key_c"], 8.0, 1e-9);
  EXPECT_EQ(spend->count("key_d"), 0u);

  auto rows = (*store)->FetchUsageRows(0, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 7u);
  int found = 0;
  for (const UsageRow& r : *rows) {
    if (!r.cost_usd) continue;
    if (r.caller_key == "key_a" && r.model == "gpt-4o-mini" && *r.cost_usd < 0.1) {
      ++found;  // five records in one row: tokens summed, latency their mean
      EXPECT_EQ(r.provider, "openai");
      EXPECT_EQ(r.input_tokens, 500);
      EXPECT_EQ(r.output_tokens, 100);
      EXPECT_NEAR(*r.cost_usd, 0.05, 1e-12);
      EXPECT_NEAR(r.latency_ms, 100.0 * (4 + 5 + 6 + 7 + 8) / 5, 1e-9);
      EXPECT_EQ(r.http_status, 200);
    }
    if (r.caller_key == "key_a" && r.model.empty()) {
      ++found;  // summed without provider and model
      EXPECT_EQ(r.provider, "");
      EXPECT_NEAR(*r.cost_usd, 0.002, 1e-12);
    }
  }
  EXPECT_EQ(found, 2);
  RequestsQuery all;
  all.limit = 10;
  auto page = (*log)->Requests(all);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  int described = 0;
  for (const auto& r : page->requests) {
    if (r.error.find("requests summed in one row") != std::string::npos) ++described;
  }
  EXPECT_EQ(described, 4);
}

TEST_P(RequestLogTest, CloseWritesTheSumsOfDroppedRecords) {
  RequestLogOptions o;
  o.queue_capacity = 1;
  StuckWriter stuck(o);
  auto log = RequestLog::Open(spec_, o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto release_at_exit = stuck.ReleaseAtExit();
  auto record = [](const std::string& id, double cost) {
    RequestSummary r = MakeRecord(id, kT0);
    r.caller_key = "key_a";
    r.cost_usd = cost;
    return r;
  };
  ASSERT_TRUE((*log)->Submit(record("held", 1.0)));
  stuck.WaitUntilHeld();
  ASSERT_TRUE((*log)->Submit(record("queued", 2.0)));
  EXPECT_FALSE((*log)->Submit(record("dropped-1", 0.25)));
  EXPECT_FALSE((*log)->Submit(record("dropped-2", 0.5)));
  stuck.Release();
  (*log)->Close();
  EXPECT_EQ((*log)->stats().summed, 2);
  auto store = OpenStore(spec_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto spend = (*store)->SpendByKeySince(kT0);
  ASSERT_TRUE(spend.ok()) << spend.status().ToString();
  EXPECT_NEAR((*spend)["key_a"], 3.75, 1e-12);
  EXPECT_EQ(CountRows(spec_), 3);
}

TEST_P(RequestLogTest, QueuedBodiesAreBoundedInBytesAndTheRowsKept) {
  RequestLogOptions o;
  o.max_queued_body_bytes = 3000;
  StuckWriter stuck(o);
  auto log = RequestLog::Open(spec_, o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto release_at_exit = stuck.ReleaseAtExit();
  auto with_bodies = [](const std::string& id, int64_t t) {
    RequestSummary r = MakeRecord(id, t);
    r.request_body = std::string(500, 'q');
    r.response_body = std::string(500, 'a');
    return r;
  };
  ASSERT_TRUE((*log)->Submit(with_bodies("held", kT0)));
  stuck.WaitUntilHeld();  // the writer holds that one: its bytes count until written
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->Submit(with_bodies(Id("b", i), kT0 + 1 + i)));
  RequestSummary too_large = MakeRecord("big", kT0 + 10);
  too_large.bodies_not_kept = true;  // (what the gateway marks past max_stored_body_bytes)
  ASSERT_TRUE((*log)->Submit(too_large));
  EXPECT_EQ((*log)->stats().bodies_dropped, 4);  // b2, b3, b4 past 3000 bytes; "big"
  stuck.Release();
  (*log)->Flush();
  EXPECT_EQ((*log)->stats().written, 7);  // every row, with or without its bodies
  auto store = OpenStore(spec_);
  ASSERT_TRUE(store.ok());
  std::vector<std::string> ids;
  ASSERT_TRUE((*store)
                  ->ForEachStoredExchange(0, kT0 + 100,
                                          [&](const StoredExchange& e) {
                                            ids.push_back(e.request_id);
                                            EXPECT_EQ(e.request_body.size(), 500u);
                                          })
                  .ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"held", "b0", "b1"}));
}

TEST_P(RequestLogTest, CloseWritesWhatIsStillQueued) {
  RequestLogOptions o;
  o.flush_interval_ms = 60000;  // nothing would be written by the timer during the test
  o.max_batch = 1000;
  auto log = RequestLog::Open(spec_, o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE((*log)->Submit(MakeRecord(Id("c", i), kT0 + i)));
  }
  (*log)->Close();
  (*log)->Close();  // idempotent
  EXPECT_EQ((*log)->stats().written, 300);
  EXPECT_FALSE((*log)->Submit(MakeRecord("late", kT0)));
  EXPECT_EQ((*log)->stats().dropped, 1);
  EXPECT_EQ(CountRows(spec_), 300);

  // The destructor closes too.
  auto again = RequestLog::Open(spec_, o);
  ASSERT_TRUE(again.ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*again)->Submit(MakeRecord(Id("d", i), kT0)));
  again->reset();
  EXPECT_EQ(CountRows(spec_), 320);
}

// A request id that is already stored loses a record: it is counted as lost (and said on
// stderr), never dropped silently.
TEST_P(RequestLogTest, ARepeatedRequestIdIsCountedAsLost) {
  auto log = RequestLog::Open(spec_);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->Submit(MakeRecord("same-id", kT0)));
  (*log)->Flush();
  ASSERT_TRUE((*log)->Submit(MakeRecord("same-id", kT0 + 1)));
  (*log)->Flush();
  RequestLogStats s = (*log)->stats();
  EXPECT_EQ(s.written, 1);
  EXPECT_EQ(s.lost, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, RequestLogTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::BackendName);

// A store whose first `failures` inserts fail: the writer's error handling without a disk
// that has to be broken for real.
class FlakyStore final : public Store {
 public:
  explicit FlakyStore(int failures) : failures_(failures) {}
  std::string_view kind() const override { return "flaky"; }
  Result<int64_t> Insert(const std::vector<RequestSummary>& batch) override {
    ++calls;
    if (failures_ > 0) {
      --failures_;
      return Status(ErrorCode::kUnavailable, "disk on fire");
    }
    rows += static_cast<int64_t>(batch.size());
    return static_cast<int64_t>(batch.size());
  }
  Status ForEachUsageRow(int64_t, int64_t, const std::function<void(const UsageRow&)>&) override {
    return OkStatus();
  }
  Status ForEachStoredExchange(int64_t, int64_t,
                               const std::function<void(const StoredExchange&)>&) override {
    return OkStatus();
  }
  Result<std::vector<RequestSummary>> FetchRequests(const RequestFilter&) override {
    return std::vector<RequestSummary>();
  }
  Status InsertKey(const KeyRecord&) override { return OkStatus(); }
  Status UpdateKey(const KeyRecord&) override { return OkStatus(); }
  Result<std::vector<KeyRecord>> FetchKeys() override { return std::vector<KeyRecord>(); }
  Result<std::map<std::string, double>> SpendByKeySince(int64_t) override {
    return std::map<std::string, double>();
  }
  Result<int> SchemaVersion() override { return LatestSchemaVersion(); }
  Status ExecForTest(const std::string&) override { return OkStatus(); }

  std::atomic<int> calls{0};
  std::atomic<int64_t> rows{0};

 private:
  int failures_;
};

TEST(RequestLogErrorsTest, AFailedBatchIsRetriedOnce) {
  auto owned = std::make_unique<FlakyStore>(1);
  FlakyStore* store = owned.get();
  auto log = RequestLog::Start(std::move(owned), "");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Submit(MakeRecord(Id("r", i), kT0)));
  log->Flush();
  RequestLogStats s = log->stats();
  EXPECT_EQ(s.written, 5);
  EXPECT_EQ(s.write_errors, 1);
  EXPECT_EQ(s.lost, 0);
  EXPECT_EQ(store->rows.load(), 5);
  EXPECT_FALSE(log->Usage({}).ok());  // no query connection for this log
}

TEST(RequestLogErrorsTest, APersistentFailureIsCountedAndSurvived) {
  auto owned = std::make_unique<FlakyStore>(1000000);
  FlakyStore* store = owned.get();
  RequestLogOptions o;
  o.max_batch = 4;
  auto log = RequestLog::Start(std::move(owned), "", o);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(log->Submit(MakeRecord(Id("r", i), kT0)));
  log->Flush();
  RequestLogStats s = log->stats();
  EXPECT_EQ(s.written, 0);
  EXPECT_EQ(s.lost, 8);
  EXPECT_EQ(s.write_errors, 4);  // two batches, each tried twice
  EXPECT_EQ(store->calls.load(), 4);
  EXPECT_EQ(s.queued, 0);
  log->Close();
}

TEST(RequestLogErrorsTest, OpenReportsAnUnusableStore) {
  TempDir dir;
  auto bad = RequestLog::Open("sqlite:" + dir.path());  // a directory, not a file
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir.path()), std::string::npos);
  auto unreachable = RequestLog::Open("postgresql://iris:secret@127.0.0.1:1/none");
  ASSERT_FALSE(unreachable.ok());
  EXPECT_NE(unreachable.status().message().find("cannot connect"), std::string::npos)
      << unreachable.status().message();
  EXPECT_EQ(unreachable.status().message().find("secret"), std::string::npos)
      << "the password leaked into the message";
}

TEST(RequestLogPostgresTest, AReconnectFollowsATerminatedConnection) {
  TempDir dir;
  const std::string spec = FreshStore(Backend::kPostgres, dir);
  ASSERT_FALSE(spec.empty());
  auto log = RequestLog::Open(spec);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->Submit(MakeRecord("before", kT0)));
  (*log)->Flush();
  // Kill every other backend on this database, the writer's included.
  auto admin = OpenStore(spec);
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)
                  ->ExecForTest("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                "datname = current_database() AND pid <> pg_backend_pid()")
                  .ok());
  ASSERT_TRUE((*log)->Submit(MakeRecord("after", kT0 + 1)));
  (*log)->Flush();
  RequestLogStats s = (*log)->stats();
  EXPECT_EQ(s.written, 2);
  EXPECT_EQ(s.lost, 0);
  EXPECT_EQ(CountRows(spec), 2);
}

}  // namespace
}  // namespace iris::gateway::observe
