// The counters' semantics, run over every SharedState (the memory one here; Redis joins it).
#include "gateway/access/state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace iris::gateway::access {
namespace {

TEST(MemoryState, ABucketStartsFullRefillsPerMinuteAndTakesAllOrNone) {
  auto s = NewMemoryState();
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

TEST(MemoryState, ReservationsBoundTheBudgetAndSettleToTheRealCost) {
  auto s = NewMemoryState();
  const BudgetRef ref{"k", 0};
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

TEST(MemoryState, SeedingOnlyFillsAPeriodNotSeen) {
  auto s = NewMemoryState();
  const BudgetRef ref{"k", 86'400'000};
  EXPECT_FALSE(*s->Knows(ref));
  ASSERT_TRUE(s->SeedSpend(ref, 3.0).ok());
  EXPECT_TRUE(*s->Knows(ref));
  ASSERT_TRUE(s->SeedSpend(ref, 100.0).ok());
  EXPECT_EQ(*s->Spent(ref), 3.0);
  EXPECT_EQ(*s->Spent(BudgetRef{"k", 0}), 0.0);
}

TEST(MemoryState, RacingCallersNeverOverspend) {
  auto s = NewMemoryState();
  const BudgetRef ref{"k", 0};
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

}  // namespace
}  // namespace iris::gateway::access
