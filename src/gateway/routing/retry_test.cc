// The retry/fallback tables status by status, and backoff bounds with and without retry-after.
#include "gateway/routing/retry.h"

#include <gtest/gtest.h>

namespace iris::gateway::routing {
namespace {

using std::chrono::milliseconds;

Failure Http(int status) {
  Failure f;
  f.kind = Failure::Kind::kHttpStatus;
  f.http_status = status;
  return f;
}

Failure OfKind(Failure::Kind kind) {
  Failure f;
  f.kind = kind;
  return f;
}

TEST(RetryTest, StatusTable) {
  struct Row {
    int status;
    bool retry;
    bool fallback;
    bool breaker;
  };
  const Row rows[] = {
      {400, false, false, false}, {401, false, true, true}, {402, false, true, true},
      {403, false, true, true},   {404, false, true, true}, {405, false, false, false},
      {408, true, true, true},    {409, true, true, true},  {413, false, true, false},
      {422, false, false, false}, {425, true, true, true},  {429, true, true, true},
      {500, true, true, true},    {501, false, true, true}, {502, true, true, true},
      {503, true, true, true},    {504, true, true, true},  {505, false, true, true},
      {520, true, true, true},    {529, true, true, true},  {200, false, false, false},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(IsRetryable(row.status), row.retry) << row.status;
    EXPECT_EQ(IsRetryable(Http(row.status)), row.retry) << row.status;
    EXPECT_EQ(ShouldFallback(Http(row.status)), row.fallback) << row.status;
    EXPECT_EQ(CountsAgainstBreaker(Http(row.status)), row.breaker) << row.status;
  }
}

TEST(RetryTest, TransportFailures) {
  for (auto kind :
       {Failure::Kind::kConnect, Failure::Kind::kTimeout, Failure::Kind::kStreamBroken}) {
    EXPECT_TRUE(IsRetryable(OfKind(kind)));
    EXPECT_TRUE(ShouldFallback(OfKind(kind)));
    EXPECT_TRUE(CountsAgainstBreaker(OfKind(kind)));
  }
  EXPECT_FALSE(IsRetryable(OfKind(Failure::Kind::kMalformed)));
  EXPECT_TRUE(ShouldFallback(OfKind(Failure::Kind::kMalformed)));
  EXPECT_TRUE(CountsAgainstBreaker(OfKind(Failure::Kind::kMalformed)));
}

// A caller's request that a target cannot serve, or iris's own full queue, moves the request
// on but is no evidence against the target: it must never open the breaker for everyone.
TEST(RetryTest, UnsupportedAndBusyFallOverWithoutTouchingTheBreaker) {
  for (auto kind : {Failure::Kind::kUnsupported, Failure::Kind::kBusy}) {
    EXPECT_FALSE(IsRetryable(OfKind(kind)));
    EXPECT_TRUE(ShouldFallback(OfKind(kind)));
    EXPECT_FALSE(CountsAgainstBreaker(OfKind(kind)));
  }
}

// An answer that broke the caller's schema is one sample of a model: another try may keep it,
// then another target; it says nothing about the provider's health.
TEST(RetryTest, AnOffSchemaAnswerIsRetriedWithoutTouchingTheBreaker) {
  EXPECT_TRUE(IsRetryable(OfKind(Failure::Kind::kOffSchema)));
  EXPECT_TRUE(ShouldFallback(OfKind(Failure::Kind::kOffSchema)));
  EXPECT_FALSE(CountsAgainstBreaker(OfKind(Failure::Kind::kOffSchema)));
}

TEST(RetryTest, NothingAfterBytesReachedTheClient) {
  for (Failure f : {Http(503), Http(429), OfKind(Failure::Kind::kStreamBroken),
                    OfKind(Failure::Kind::kTimeout)}) {
    f.committed = true;
    EXPECT_FALSE(IsRetryable(f));
    EXPECT_FALSE(ShouldFallback(f));
  }
}

config::RoutingConfig Routing(int base_ms, int max_ms, int max_retry_after_ms) {
  config::RoutingConfig r;
  r.backoff_base = milliseconds(base_ms);
  r.backoff_max = milliseconds(max_ms);
  r.max_retry_after = milliseconds(max_retry_after_ms);
  return r;
}

TEST(BackoffTest, FullJitterWithinTheExponentialCeiling) {
  const RetryPolicy policy(Routing(100, 1000, 10000));
  Rng rng(3);
  for (int attempt = 0; attempt < 40; ++attempt) {
    const int64_t ceiling = std::min<int64_t>(1000, attempt >= 10 ? 1000 : 100LL << attempt);
    milliseconds lo(ceiling), hi(0);
    double sum = 0;
    constexpr int kDraws = 4000;
    for (int i = 0; i < kDraws; ++i) {
      const milliseconds d = policy.Backoff(attempt, std::nullopt, rng);
      ASSERT_GE(d.count(), 0);
      ASSERT_LE(d.count(), ceiling) << "attempt " << attempt;
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      sum += static_cast<double>(d.count());
    }
    // Full jitter: spread over the whole range, mean near half the ceiling.
    EXPECT_LE(lo.count(), ceiling / 10) << attempt;
    EXPECT_GE(hi.count(), ceiling * 9 / 10) << attempt;
    EXPECT_NEAR(sum / kDraws, ceiling / 2.0, ceiling * 0.05) << attempt;
  }
}

TEST(BackoffTest, RetryAfterIsHonouredUpToTheCap) {
  const RetryPolicy policy(Routing(100, 1000, 5000));
  Rng rng(3);
  EXPECT_EQ(policy.Backoff(0, 2.0, rng), milliseconds(2000));
  EXPECT_EQ(policy.Backoff(3, 0.25, rng), milliseconds(250));
  EXPECT_EQ(policy.Backoff(0, 0.0, rng), milliseconds(0));
  EXPECT_EQ(policy.Backoff(0, 60.0, rng), milliseconds(5000));
  // A negative retry-after is ignored: plain backoff.
  EXPECT_LE(policy.Backoff(0, -1.0, rng), milliseconds(100));
}

TEST(BackoffTest, DecideFallsOverInsteadOfSleepingTooLong) {
  const RetryPolicy policy(Routing(100, 1000, 5000));
  Rng rng(3);
  using Action = RetryPolicy::Decision::Action;

  auto d = policy.Decide(0, 2.0, milliseconds(60000), rng);
  EXPECT_EQ(d.action, Action::kRetry);
  EXPECT_EQ(d.delay, milliseconds(2000));

  // retry-after beyond max_retry_after: go to the next target now.
  d = policy.Decide(0, 30.0, milliseconds(600000), rng);
  EXPECT_EQ(d.action, Action::kFallOver);
  EXPECT_EQ(d.delay, milliseconds(0));

  // retry-after within the cap but beyond what is left of the total budget.
  d = policy.Decide(0, 4.0, milliseconds(3000), rng);
  EXPECT_EQ(d.action, Action::kFallOver);

  // Plain backoff always fits a large budget, never fits an empty one.
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(policy.Decide(5, std::nullopt, milliseconds(60000), rng).action, Action::kRetry);
    EXPECT_EQ(policy.Decide(5, std::nullopt, milliseconds(0), rng).action, Action::kFallOver);
  }
}

TEST(BackoffTest, NoOverflowForLargeAttempts) {
  const RetryPolicy policy(Routing(250, 8000, 10000));
  Rng rng(5);
  for (int attempt : {62, 63, 64, 1000, 1 << 30}) {
    const milliseconds d = policy.Backoff(attempt, std::nullopt, rng);
    EXPECT_GE(d.count(), 0);
    EXPECT_LE(d.count(), 8000);
  }
}

}  // namespace
}  // namespace iris::gateway::routing
