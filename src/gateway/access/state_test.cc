// The counters' semantics, run over every SharedState: this process's memory and a real
// redis-server.
#include "gateway/access/state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "base/time.h"
#include "gateway/access/lease_state.h"
#include "gateway/access/redis_test_server.h"
#include "gateway/access/state_testing.h"

namespace iris::gateway::access {
namespace {

// kLeased: Redis behind this instance's slices (lease_state.h), which must keep every answer
// of the suite (its counters are small: near their limits every request goes to Redis).
enum class Kind { kMemory, kRedis, kLeased };

using testing::AdmitOn;
using testing::RunOn;

class StateTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kMemory) {
      state_ = NewMemoryState();
      return;
    }
    redis_ = std::make_unique<testing::RedisTestServer>();
    ASSERT_TRUE(redis_->status().ok()) << redis_->status().ToString();
    auto s = NewRedisState(redis_->url());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    state_ = std::move(s).value();
    if (GetParam() == Kind::kLeased) {
      LeaseOptions lo;
      lo.tick_thread = false;
      state_ = std::make_unique<LeasedState>(std::move(state_), std::move(lo));
    }
  }
  std::unique_ptr<testing::RedisTestServer> redis_;
  std::unique_ptr<SharedState> state_;
};

TEST_P(StateTest, ABucketStartsFullRefillsPerMinuteAndTakesAllOrNone) {
  SharedState* s = state_.get();
  const BucketSpec rpm{"rpm:k", 60};  // one a second
  const BucketSpec tpm{"tpm:k", 600};
  auto r = s->Take({rpm, tpm}, {1, 500}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->allowed);
  EXPECT_EQ(r->buckets[0].remaining, 59);
  EXPECT_EQ(r->buckets[1].remaining, 100);
  EXPECT_NEAR(r->buckets[1].reset_s, 50.0, 1e-9);  // 500 tokens at 10 a second
  // TPM refuses: RPM is not spent either.
  r = s->Take({rpm, tpm}, {1, 200}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->allowed);
  EXPECT_NEAR(r->retry_after_s, 10.0, 1e-9);  // 100 more tokens at 10 a second
  EXPECT_EQ(r->buckets[0].remaining, 59);
  // Ten seconds later it fits.
  r = s->Take({rpm, tpm}, {1, 200}, 10'000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->allowed);
  // Given back (a request used fewer tokens than estimated), never above the limit.
  ASSERT_TRUE(s->Give(tpm, 10'000, 10'000).ok());
  r = s->Take({tpm}, {0}, 10'000);
  EXPECT_EQ(r->buckets[0].remaining, 600);
  // Taking more than estimated may drive a bucket below zero: the next callers wait.
  ASSERT_TRUE(s->Give(tpm, -900, 10'000).ok());
  r = s->Take({tpm}, {1}, 10'000);
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->buckets[0].remaining, 0);
}

TEST_P(StateTest, ReservationsBoundTheBudgetAndSettleToTheRealCost) {
  SharedState* s = state_.get();
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE(s->SeedSpend(ref, 0).ok());
  auto r = s->Reserve(ref, 1.0, 0.4, "a", 0, 1000);
  ASSERT_TRUE(r->allowed);
  r = s->Reserve(ref, 1.0, 0.4, "b", 0, 1000);
  ASSERT_TRUE(r->allowed);
  r = s->Reserve(ref, 1.0, 0.4, "c", 0, 1000);
  EXPECT_FALSE(r->allowed);
  EXPECT_NEAR(r->reserved, 0.8, 1e-12);
  ASSERT_TRUE(s->Settle(ref, "a", 0.1).ok());
  EXPECT_NEAR(*s->Spent(ref), 0.1, 1e-12);
  r = s->Reserve(ref, 1.0, 0.4, "c", 0, 1000);
  EXPECT_TRUE(r->allowed);
  // A reservation whose instance died expires.
  r = s->Reserve(ref, 1.0, 0.4, "d", 5000, 1000);
  EXPECT_TRUE(r->allowed);
  EXPECT_NEAR(r->reserved, 0.4, 1e-12);
  // A spent budget refuses even a free call.
  ASSERT_TRUE(s->Settle(ref, "d", 1.0).ok());
  EXPECT_FALSE(s->Reserve(ref, 1.0, 0.0, "e", 5000, 1000)->allowed);
}

TEST_P(StateTest, AReservationDroppedForItsAgeIsStillSettledOnce) {
  SharedState* s = state_.get();
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE(s->SeedSpend(ref, 0).ok());
  ASSERT_TRUE(s->Reserve(ref, 1.0, 0.5, "slow", 0, 1000)->allowed);
  // Much later another call drops it (its instance may have died) ...
  auto r = s->Reserve(ref, 1.0, 0.5, "next", 5000, 1000);
  ASSERT_TRUE(r->allowed);
  EXPECT_NEAR(r->reserved, 0.5, 1e-12);
  // ... but the slow call was alive: its cost counts, once.
  ASSERT_TRUE(s->Settle(ref, "slow", 0.25).ok());
  ASSERT_TRUE(s->Settle(ref, "slow", 0.25).ok());
  EXPECT_NEAR(*s->Spent(ref), 0.25, 1e-12);
  // A cost for a reservation that was never made is not counted either (only a settlement
  // sent again has a reservation id and nothing to remove).
  ASSERT_TRUE(s->Settle(ref, "never-reserved", 0.5).ok());
  EXPECT_NEAR(*s->Spent(ref), 0.25, 1e-12);
  // Without a reservation id a cost always counts (a key without a budget).
  ASSERT_TRUE(s->Settle(ref, "", 0.5).ok());
  EXPECT_NEAR(*s->Spent(ref), 0.75, 1e-12);
}

TEST_P(StateTest, SeedingOnlyFillsAPeriodNotSeen) {
  SharedState* s = state_.get();
  const BudgetRef ref{"k", 86'400'000};
  EXPECT_FALSE(*s->Knows(ref));
  ASSERT_TRUE(s->SeedSpend(ref, 3.0).ok());
  EXPECT_TRUE(*s->Knows(ref));
  ASSERT_TRUE(s->SeedSpend(ref, 100.0).ok());
  EXPECT_EQ(*s->Spent(ref), 3.0);
  EXPECT_EQ(*s->Spent(BudgetRef{"k", 0}), 0.0);
}

TEST_P(StateTest, RacingCallersNeverOverspend) {
  SharedState* s = state_.get();
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE(s->SeedSpend(ref, 0).ok());
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        auto r = s->Reserve(ref, 5.0, 0.01, id, 0, 1'000'000);
        if (r.ok() && r->allowed) {
          admitted.fetch_add(1);
          (void)s->Settle(ref, id, 0.01);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 500);
  EXPECT_NEAR(*s->Spent(ref), 5.0, 1e-9);
}

TEST_P(StateTest, AdmitTakesBucketsAndReservesTogetherOrNeither) {
  SharedState* s = state_.get();
  const BucketSpec rpm{"rpm:k", 10};
  const AdmitBudget budget{BudgetRef{"k", 0}, 1.0, 0.6, "a", 60'000};
  if (GetParam() != Kind::kMemory) {  // (memory knows every period it holds)
    EXPECT_EQ(s->Admit({rpm}, {1}, budget, 0).status().code(), ErrorCode::kNotFound);
  }
  ASSERT_TRUE(s->SeedSpend(budget.ref, 0).ok());
  auto r = s->Admit({rpm}, {1}, budget, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->take.allowed);
  EXPECT_TRUE(r->budget->allowed);
  EXPECT_EQ(r->take.buckets[0].remaining, 9);
  // The budget refuses: the bucket is not spent.
  AdmitBudget second = budget;
  second.reservation_id = "b";
  r = s->Admit({rpm}, {1}, second, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->take.allowed);
  EXPECT_FALSE(r->budget->allowed);
  EXPECT_NEAR(r->budget->reserved, 0.6, 1e-12);
  EXPECT_EQ(s->Take({rpm}, {0}, 0)->buckets[0].remaining, 9);
  // The bucket refuses: nothing is reserved.
  r = s->Admit({rpm}, {100}, std::nullopt, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->take.allowed);
  EXPECT_GT(r->take.retry_after_s, 0);
}

TEST_P(StateTest, KeptValuesAreReplacedAndExpire) {
  SharedState* s = state_.get();
  const int64_t now = NowUnixMs();
  ASSERT_TRUE(s->PutValue("resp:key_a:resp_1", "first", 60'000, now).ok());
  ASSERT_TRUE(s->PutValue("resp:key_a:resp_1", "second", 60'000, now).ok());
  ASSERT_TRUE(s->PutValue("resp:key_a:resp_2", std::string("bin\0ary", 7), 80, now).ok());
  EXPECT_EQ(s->GetValue("resp:key_a:resp_1", now)->value_or("-"), "second");
  EXPECT_EQ(s->GetValue("resp:key_a:resp_2", now)->value_or("-"), std::string("bin\0ary", 7));
  EXPECT_FALSE(s->GetValue("resp:key_b:resp_1", now)->has_value());  // another key's name
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(s->GetValue("resp:key_a:resp_2", NowUnixMs())->has_value());
  EXPECT_TRUE(s->GetValue("resp:key_a:resp_1", NowUnixMs())->has_value());
}

TEST(MemoryState, KeptValuesStayWithinTheirBytesOldestDroppedFirst) {
  auto s = NewMemoryState(/*max_value_bytes=*/100);
  const std::string v(30, 'x');  // 30 bytes + a 1-byte key
  for (std::string key : {"a", "b", "c"}) ASSERT_TRUE(s->PutValue(key, v, 60'000, 0).ok());
  ASSERT_TRUE(s->PutValue("a", v, 60'000, 0).ok());  // replacing makes "a" the newest
  ASSERT_TRUE(s->PutValue("d", v, 60'000, 0).ok());  // 4 x 31 > 100: the oldest ("b") goes
  EXPECT_FALSE(s->GetValue("b", 0)->has_value());
  for (std::string key : {"a", "c", "d"}) EXPECT_TRUE(s->GetValue(key, 0)->has_value()) << key;
  EXPECT_EQ(s->PutValue("big", std::string(200, 'x'), 60'000, 0).code(),
            ErrorCode::kResourceExhausted);
}

TEST_P(StateTest, OpenBreakersArePublishedAndExpire) {
  SharedState* s = state_.get();
  ASSERT_TRUE(s->PublishOpenBreaker("openai/gpt-4o", 5000).ok());
  ASSERT_TRUE(s->PublishOpenBreaker("openai/gpt-4o", 4000).ok());  // an earlier end loses
  ASSERT_TRUE(s->PublishOpenBreaker("groq/llama", 2000).ok());
  auto open = s->OpenBreakers(3000);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].first, "openai/gpt-4o");
  EXPECT_EQ((*open)[0].second, 5000);
  EXPECT_TRUE(s->OpenBreakers(6000)->empty());
}

TEST_P(StateTest, AdmitAsyncAndSettleAllKeepTheSameBooks) {
  SharedState* s = state_.get();
  boost::asio::io_context io;
  const BucketSpec rpm{"rpm:k", 10};
  const BucketSpec tpm{"tpm:k", 1000};
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE(s->SeedSpend(ref, 0).ok());
  auto r = AdmitOn(io, *s, {rpm, tpm}, {1, 400}, AdmitBudget{ref, 1.0, 0.6, "a", 60'000}, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->take.allowed);
  EXPECT_TRUE(r->budget->allowed);
  EXPECT_EQ(r->take.buckets[1].remaining, 600);
  r = AdmitOn(io, *s, {rpm, tpm}, {1, 400}, AdmitBudget{ref, 1.0, 0.6, "b", 60'000}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->budget->allowed);  // 0.6 + 0.6 > 1.0
  // Two settlements at once: "a" used 100 of its 400 tokens and cost 0.05; a key without a
  // budget adds to its spend.
  std::vector<Settlement> batch(2);
  batch[0].give_buckets = {tpm};
  batch[0].give = 300;
  batch[0].spend = ref;
  batch[0].reservation_id = "a";
  batch[0].cost = 0.05;
  batch[1].spend = BudgetRef{"other", 0};
  batch[1].cost = 0.5;
  ASSERT_TRUE(s->SeedSpend(*batch[1].spend, 1.0).ok());
  std::vector<Status> done = s->SettleAll(batch);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0].ok()) << done[0].ToString();
  EXPECT_TRUE(done[1].ok()) << done[1].ToString();
  EXPECT_NEAR(*s->Spent(ref), 0.05, 1e-12);
  EXPECT_NEAR(*s->Spent(*batch[1].spend), 1.5, 1e-12);
  EXPECT_EQ(s->Take({tpm}, {0}, 0)->buckets[0].remaining, 900);
  // Settled twice (a reply lost, the batch sent again): counted once.
  EXPECT_TRUE(s->SettleAll({batch[0]})[0].ok());
  EXPECT_NEAR(*s->Spent(ref), 0.05, 1e-12);
  // The reservation is gone: "b" fits now.
  r = AdmitOn(io, *s, {}, {}, AdmitBudget{ref, 1.0, 0.6, "b", 60'000}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->budget->allowed);
}

TEST_P(StateTest, ManySettlementsAtOnceAreEachCountedOnce) {
  SharedState* s = state_.get();
  const BucketSpec tpm{"tpm:k", 1000};
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE(s->SeedSpend(ref, 0).ok());
  ASSERT_TRUE(s->Admit({tpm}, {900}, AdmitBudget{ref, 1.0, 0.3, "a", 60'000}, 0)->take.allowed);
  ASSERT_TRUE(s->Reserve(ref, 1.0, 0.2, "b", 0, 60'000)->allowed);
  auto settlement = [&](std::string id, double cost, int64_t give) {
    Settlement x;
    x.give_buckets = {tpm};
    x.give = give;
    x.spend = ref;
    x.reservation_id = std::move(id);
    x.cost = cost;
    return x;
  };
  std::vector<Settlement> batch{settlement("a", 0.05, 300), settlement("a", 0.05, 0),
                                settlement("b", 0.1, 100)};
  Settlement unknown;
  unknown.spend = BudgetRef{"never-seen", 0};
  unknown.reservation_id = "c";
  unknown.cost = 1;
  batch.push_back(unknown);
  std::vector<Status> done = s->SettleAll(batch);
  ASSERT_EQ(done.size(), 4u);
  EXPECT_TRUE(done[0].ok() && done[1].ok() && done[2].ok());
  if (GetParam() != Kind::kMemory) {
    EXPECT_EQ(done[3].code(), ErrorCode::kNotFound);
  }
  EXPECT_NEAR(*s->Spent(ref), 0.15, 1e-12);                      // "a" once, "b" once
  EXPECT_EQ(s->Take({tpm}, {0}, 0)->buckets[0].remaining, 500);  // 100 + 300 + 100 back
  // Nothing reserved is left: a reservation of 0.85 fits.
  EXPECT_TRUE(s->Reserve(ref, 1.0, 0.85, "d", 0, 60'000)->allowed);
}

TEST_P(StateTest, SettleAsyncTellsItsCallerOnItsOwnThread) {
  SharedState* s = state_.get();
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE(s->SeedSpend(ref, 0).ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(s->Reserve(ref, 10.0, 0.5, "r" + std::to_string(i), 0, 60'000)->allowed);
  }
  boost::asio::io_context io;
  std::vector<Status> told;
  for (int i = 0; i < 5; ++i) {
    Settlement x;
    x.spend = ref;
    x.reservation_id = std::string("r") + std::to_string(i % 4);  // the fifth repeats the first
    x.cost = 0.25;
    s->SettleAsync(io.get_executor(), x, [&](Status st) {
      told.push_back(st);
      if (told.size() == 5) io.stop();
    });
  }
  io.run_for(std::chrono::seconds(5));
  ASSERT_EQ(told.size(), 5u);
  for (const Status& st : told) EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_NEAR(*s->Spent(ref), 1.0, 1e-12);  // four, once each
  // A period the state does not know is NotFound, for the caller to seed (Redis; memory knows
  // every period it is told about; slices hold a spend without a reservation for their next
  // tick, whose refusal goes to LeaseOptions::unsettled).
  if (GetParam() == Kind::kRedis) {
    Settlement unknown;
    unknown.spend = BudgetRef{"never-seen", 0};
    unknown.cost = 1;
    Status got = OkStatus();
    io.restart();
    s->SettleAsync(io.get_executor(), unknown, [&](Status st) {
      got = st;
      io.stop();
    });
    io.run_for(std::chrono::seconds(5));
    EXPECT_EQ(got.code(), ErrorCode::kNotFound);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, StateTest,
                         ::testing::Values(Kind::kMemory, Kind::kRedis, Kind::kLeased),
                         [](const ::testing::TestParamInfo<Kind>& i) {
                           return i.param == Kind::kMemory  ? "Memory"
                                  : i.param == Kind::kRedis ? "Redis"
                                                            : "LeasedRedis";
                         });

TEST(RedisState, AnUnknownPeriodIsNotFoundAndNothingIsWritten) {
  testing::RedisTestServer redis;
  ASSERT_TRUE(redis.status().ok()) << redis.status().ToString();
  auto s = NewRedisState(redis.url());
  ASSERT_TRUE(s.ok());
  const BudgetRef ref{"k", 0};
  EXPECT_EQ((*s)->Reserve(ref, 1, 0.1, "a", 0, 1000).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ((*s)->Settle(ref, "a", 0.1).code(), ErrorCode::kNotFound);
  EXPECT_FALSE(*(*s)->Knows(ref));
}

TEST(RedisState, SettledSpendSurvivesARestartAndAnOutageIsAnError) {
  testing::RedisTestServer redis;
  ASSERT_TRUE(redis.status().ok()) << redis.status().ToString();
  auto s = NewRedisState(redis.url());
  ASSERT_TRUE(s.ok());
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE((*s)->SeedSpend(ref, 1.5).ok());
  ASSERT_TRUE((*s)->Reserve(ref, 10, 1, "a", 0, 60'000)->allowed);
  ASSERT_TRUE((*s)->Settle(ref, "a", 0.25).ok());
  redis.Stop();
  EXPECT_EQ((*s)->Spent(ref).status().code(), ErrorCode::kUnavailable);
  ASSERT_TRUE(redis.Restart().ok());
  EXPECT_DOUBLE_EQ(*(*s)->Spent(ref), 1.75);  // a new connection, the same numbers
  // The scripts are loaded again into the restarted server.
  EXPECT_TRUE((*s)->Reserve(ref, 10, 1, "b", 0, 60'000)->allowed);
}

TEST(RedisState, ConcurrentAdmitsShareOnePipelineAndEachGetsItsOwnAnswer) {
  testing::RedisTestServer redis;
  ASSERT_TRUE(redis.status().ok()) << redis.status().ToString();
  auto s = NewRedisState(redis.url(3));  // not database 0: the pipe selects it too
  ASSERT_TRUE(s.ok());
  const BudgetRef ref{"k", 0};
  ASSERT_TRUE((*s)->SeedSpend(ref, 0).ok());
  boost::asio::io_context io;
  std::atomic<int> allowed{0}, refused{0}, failed{0};
  int finished = 0;
  std::vector<int> remaining(300, -1);
  for (int i = 0; i < 300; ++i) {
    boost::asio::co_spawn(
        io,
        [&, i]() -> boost::asio::awaitable<void> {
          // Each asks a bucket of its own and the one they share: every answer must be its own.
          std::vector<BucketSpec> buckets(2);
          buckets[0].name = "rpm:shared";
          buckets[0].limit = 200;
          buckets[1].name = "own:" + std::to_string(i);
          buckets[1].limit = 1000;
          std::vector<int64_t> want{1, i};
          AdmitBudget budget;
          budget.ref = ref;
          budget.budget = 100.0;
          budget.amount = 0.01;
          budget.reservation_id = std::to_string(i);
          budget.ttl_ms = 60'000;
          auto r = co_await (*s)->AdmitAsync(std::move(buckets), std::move(want), budget, 0);
          if (++finished == 300) io.stop();
          if (!r.ok()) {
            failed.fetch_add(1);
          } else if (r->take.allowed && r->budget && r->budget->allowed) {
            allowed.fetch_add(1);
            remaining[static_cast<size_t>(i)] = static_cast<int>(r->take.buckets[1].remaining);
          } else {
            refused.fetch_add(1);
          }
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(allowed.load(), 200);
  EXPECT_EQ(refused.load(), 100);
  for (int i = 0; i < 300; ++i) {
    if (remaining[static_cast<size_t>(i)] >= 0) {
      EXPECT_EQ(remaining[static_cast<size_t>(i)], 1000 - i);
    }
  }
}

TEST(RedisState, APipeConnectsAgainAfterARestartAndReloadsItsScript) {
  testing::RedisTestServer redis;
  ASSERT_TRUE(redis.status().ok()) << redis.status().ToString();
  auto s = NewRedisState(redis.url());
  ASSERT_TRUE(s.ok());
  boost::asio::io_context io;
  const BucketSpec rpm{"rpm:k", 100};
  ASSERT_TRUE(AdmitOn(io, **s, {rpm}, {1}, std::nullopt, 0).ok());
  redis.Stop();
  auto r = AdmitOn(io, **s, {rpm}, {1}, std::nullopt, 0);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("Redis 127.0.0.1:"), std::string::npos)
      << r.status().message();
  ASSERT_TRUE(redis.Restart().ok());
  r = AdmitOn(io, **s, {rpm}, {1}, std::nullopt, 0);  // a new connection, and EVAL after NOSCRIPT
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->take.buckets[0].remaining, 98);  // the first take survived the restart
  // Restarted while the pipe's connection is idle: the next caller does not see it (its
  // command goes again on a new connection).
  ASSERT_TRUE(redis.Restart().ok());
  r = AdmitOn(io, **s, {rpm}, {1}, std::nullopt, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->take.buckets[0].remaining, 97);
}

TEST(RedisState, ARedisThatNeverAnswersFailsAdmitWithinTheTimeout) {
  // A port that accepts connections (the kernel's backlog) and never replies.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  auto s =
      NewRedisState("redis://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/0");
  ASSERT_TRUE(s.ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = AdmitOn(io, **s, {{"rpm:k", 10}}, {1}, std::nullopt, 0);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no reply within 1000 ms"), std::string::npos)
      << r.status().message();
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(RedisState, BadUrlsAreRefused) {
  EXPECT_FALSE(NewRedisState("http://127.0.0.1:6379/0").ok());
  EXPECT_FALSE(NewRedisState("redis://127.0.0.1:6379/x").ok());
  EXPECT_TRUE(NewRedisState("redis://:secret@127.0.0.1:6379/2").ok());
}

}  // namespace
}  // namespace iris::gateway::access
