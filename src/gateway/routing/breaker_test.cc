// The breaker state machine under a hand-stepped clock, and the registry's stable references.
#include "gateway/routing/breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace iris::gateway::routing {
namespace {

using std::chrono::milliseconds;

TimePoint T(int64_t ms) { return TimePoint(milliseconds(ms)); }

TEST(BreakerTest, OpensAfterNConsecutiveFailures) {
  CircuitBreaker b(3, milliseconds(1000));
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(T(0)));
  b.OnFailure(T(0));
  b.OnFailure(T(1));
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(T(2)));
  b.OnFailure(T(2));
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  EXPECT_EQ(b.open_until(), T(1002));
}

TEST(BreakerTest, ForceOpenTakesTheLaterEndAndSparesAProbe) {
  CircuitBreaker b(3, milliseconds(1000));
  b.ForceOpen(T(500));
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  EXPECT_FALSE(b.Allow(T(100)));
  b.ForceOpen(T(300));  // an earlier end changes nothing
  EXPECT_EQ(b.open_until(), T(500));
  EXPECT_TRUE(b.Allow(T(600)));  // the probe
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
  b.ForceOpen(T(5000));  // the probe keeps its verdict
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
  b.OnSuccess(T(700));
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  BreakerRegistry r(config::BreakerConfig{});
  r.Get("a/m")->ForceOpen(T(900));
  r.Get("b/m");
  auto open = r.OpenUntil(T(100));
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].first, "a/m");
  EXPECT_TRUE(r.OpenUntil(T(1000)).empty());
}

TEST(BreakerTest, SuccessResetsTheCount) {
  CircuitBreaker b(3, milliseconds(1000));
  b.OnFailure(T(0));
  b.OnFailure(T(1));
  b.OnSuccess(T(2));
  EXPECT_EQ(b.consecutive_failures(), 0);
  b.OnFailure(T(3));
  b.OnFailure(T(4));
  EXPECT_EQ(b.State(), BreakerState::kClosed);
}

TEST(BreakerTest, RejectsWhileOpenThenLetsOneProbeThrough) {
  CircuitBreaker b(2, milliseconds(1000));
  b.OnFailure(T(0));
  b.OnFailure(T(10));
  ASSERT_EQ(b.State(), BreakerState::kOpen);
  EXPECT_FALSE(b.Allow(T(11)));
  EXPECT_FALSE(b.Allow(T(1009)));
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  // Cooldown over: exactly one caller gets the probe.
  EXPECT_TRUE(b.Allow(T(1010)));
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
  EXPECT_FALSE(b.Allow(T(1011)));
  EXPECT_FALSE(b.Allow(T(1500)));
}

TEST(BreakerTest, ProbeSuccessCloses) {
  CircuitBreaker b(1, milliseconds(1000));
  b.OnFailure(T(0));
  ASSERT_TRUE(b.Allow(T(1000)));
  b.OnSuccess(T(1200));
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(T(1201)));
  EXPECT_TRUE(b.Allow(T(1202)));
}

TEST(BreakerTest, ProbeFailureReopensWithAFreshCooldown) {
  CircuitBreaker b(1, milliseconds(1000));
  b.OnFailure(T(0));
  ASSERT_TRUE(b.Allow(T(1000)));
  b.OnFailure(T(1300));
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  EXPECT_EQ(b.open_until(), T(2300));
  EXPECT_FALSE(b.Allow(T(2299)));
  EXPECT_TRUE(b.Allow(T(2300)));
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
}

TEST(BreakerTest, LateOutcomesWhileOpenDoNotChangeIt) {
  CircuitBreaker b(1, milliseconds(1000));
  b.OnFailure(T(0));
  b.OnSuccess(T(100));  // a request admitted before the breaker opened
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  b.OnFailure(T(900));  // does not extend the cooldown
  EXPECT_EQ(b.open_until(), T(1000));
}

TEST(BreakerTest, AProbeThatNeverReportsIsReplaced) {
  CircuitBreaker b(1, milliseconds(1000));
  b.OnFailure(T(0));
  ASSERT_TRUE(b.Allow(T(1000)));  // this probe's request is cancelled and never reports
  EXPECT_FALSE(b.Allow(T(1999)));
  EXPECT_TRUE(b.Allow(T(2000)));
  EXPECT_FALSE(b.Allow(T(2001)));
}

TEST(BreakerTest, ConcurrentAllowGrantsOneProbe) {
  CircuitBreaker b(1, milliseconds(1000));
  b.OnFailure(T(0));
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j) granted += b.Allow(T(1500)) ? 1 : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1);
}

TEST(BreakerRegistryTest, StableReferencesPerKeyAndConfiguredThreshold) {
  config::BreakerConfig c;
  c.failure_threshold = 2;
  c.cooldown = milliseconds(500);
  BreakerRegistry registry(c);
  CircuitBreaker& a = *registry.Get("openai/gpt-4o");
  for (int i = 0; i < 100; ++i) registry.Get("p/m" + std::to_string(i));
  EXPECT_EQ(registry.Get("openai/gpt-4o").get(), &a);
  EXPECT_NE(registry.Get("anthropic/claude").get(), &a);
  a.OnFailure(T(0));
  a.OnFailure(T(1));
  EXPECT_EQ(a.State(), BreakerState::kOpen);
  EXPECT_EQ(a.open_until(), T(501));
  const auto snapshot = registry.Snapshot();
  EXPECT_EQ(snapshot.size(), 102u);
  EXPECT_EQ(snapshot.at("openai/gpt-4o"), BreakerState::kOpen);
  EXPECT_EQ(snapshot.at("anthropic/claude"), BreakerState::kClosed);
  EXPECT_EQ(BreakerStateName(BreakerState::kHalfOpen), "half-open");
}

TEST(BreakerRegistryTest, BoundedByEvictingHealthyBreakersFirst) {
  config::BreakerConfig c;
  c.failure_threshold = 1;
  BreakerRegistry registry(c, 3);
  auto failing = registry.Get("p/failing");
  failing->OnFailure(T(0));  // open: never evicted while it is
  for (int i = 0; i < 50; ++i) registry.Get("p/invented-" + std::to_string(i));
  const auto snapshot = registry.Snapshot();
  EXPECT_EQ(snapshot.size(), 3u);
  EXPECT_EQ(snapshot.at("p/failing"), BreakerState::kOpen);
  EXPECT_EQ(registry.Get("p/failing").get(), failing.get());
  // With every tracked breaker unhealthy, a new key gets an untracked one.
  for (const auto& [key, state] : registry.Snapshot()) registry.Get(key)->OnFailure(T(0));
  auto extra = registry.Get("p/new");
  EXPECT_EQ(registry.Snapshot().size(), 3u);
  EXPECT_EQ(registry.Snapshot().count("p/new"), 0u);
  EXPECT_TRUE(extra->Allow(T(0)));
}

}  // namespace
}  // namespace iris::gateway::routing
