// The counters' semantics, run over every SharedState: this process's memory and a real
// redis-server.
#include "gateway/access/state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gateway/access/redis_test_server.h"

namespace iris::gateway::access {
namespace {

enum class Kind { kMemory, kRedis };

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
  if (GetParam() == Kind::kRedis) {  // (memory knows every period it holds)
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

INSTANTIATE_TEST_SUITE_P(Kinds, StateTest, ::testing::Values(Kind::kMemory, Kind::kRedis),
                         [](const ::testing::TestParamInfo<Kind>& i) {
                           return i.param == Kind::kMemory ? "Memory" : "Redis";
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

TEST(RedisState, BadUrlsAreRefused) {
  EXPECT_FALSE(NewRedisState("http://127.0.0.1:6379/0").ok());
  EXPECT_FALSE(NewRedisState("redis://127.0.0.1:6379/x").ok());
  EXPECT_TRUE(NewRedisState("redis://:secret@127.0.0.1:6379/2").ok());
}

}  // namespace
}  // namespace iris::gateway::access
