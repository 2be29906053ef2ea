#include "gateway/access/attempts.h"

#include <gtest/gtest.h>

#include <string>

namespace iris::gateway::access {
namespace {

TEST(AttemptLimiter, AnAddressIsRefusedAfterTooManyFailuresUntilItsWindowEnds) {
  AttemptLimiter l;
  for (int i = 0; i < AttemptLimiter::kMaxFailures - 1; ++i) l.Failed("10.0.0.1", 1000 + i);
  EXPECT_EQ(l.WaitFor("10.0.0.1", 2000), 0);
  l.Failed("10.0.0.1", 2000);
  EXPECT_DOUBLE_EQ(l.WaitFor("10.0.0.1", 2000), 59.0);  // the window began at 1000
  EXPECT_EQ(l.WaitFor("10.0.0.2", 2000), 0);            // others are not affected
  EXPECT_DOUBLE_EQ(l.WaitFor("10.0.0.1", 60'500), 0.5);
  EXPECT_EQ(l.WaitFor("10.0.0.1", 61'000), 0);  // over, and forgotten
  EXPECT_EQ(l.tracked(), 0u);
  // A failure after a window starts a new one.
  l.Failed("10.0.0.1", 70'000);
  EXPECT_EQ(l.WaitFor("10.0.0.1", 70'000), 0);
}

TEST(AttemptLimiter, MemoryIsBoundedByForgettingTheOldestWindow) {
  AttemptLimiter l;
  for (size_t i = 0; i < AttemptLimiter::kMaxAddresses + 100; ++i) {
    l.Failed("addr-" + std::to_string(i), static_cast<int64_t>(i));
  }
  EXPECT_EQ(l.tracked(), AttemptLimiter::kMaxAddresses);
  // The newest are still counted.
  const std::string last = "addr-" + std::to_string(AttemptLimiter::kMaxAddresses + 99);
  for (int i = 1; i < AttemptLimiter::kMaxFailures; ++i) l.Failed(last, 10'000);
  EXPECT_GT(l.WaitFor(last, 10'000), 0);
}

TEST(AttemptLimiter, TheAddressIsThePeerWithoutItsPort) {
  EXPECT_EQ(ClientAddress("127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(ClientAddress("[::1]:443"), "::1");
  EXPECT_EQ(ClientAddress("[fe80::1%eth0]:1"), "fe80::1%eth0");
  EXPECT_EQ(ClientAddress("host"), "host");
}

}  // namespace
}  // namespace iris::gateway::access
