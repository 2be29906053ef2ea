#include "gateway/access/keys.h"

#include <gtest/gtest.h>

#include <set>

#include "base/time.h"

namespace iris::gateway::access {
namespace {

TEST(Keys, AGeneratedKeyIsPrefixedBase62OfThirtyTwoBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto k = GenerateKey();
    ASSERT_TRUE(k.ok());
    ASSERT_TRUE(k->plaintext.starts_with("sk-iris-"));
    EXPECT_EQ(k->plaintext.size(), 8u + 43u);
    for (char c : k->plaintext.substr(8)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
    EXPECT_TRUE(k->id.starts_with("key_"));
    EXPECT_EQ(k->id.size(), 4u + 16u);
    EXPECT_EQ(k->hash, HashKey(k->plaintext));
    EXPECT_TRUE(seen.insert(k->plaintext).second);
    EXPECT_TRUE(seen.insert(k->id).second);
  }
}

TEST(Keys, Base62IsTheBigEndianNumber) {
  const unsigned char zero[2] = {0, 0};
  EXPECT_EQ(Base62(zero, 2), "000");
  const unsigned char one[2] = {0, 61};
  EXPECT_EQ(Base62(one, 2), "00z");
  const unsigned char v[2] = {0, 62};
  EXPECT_EQ(Base62(v, 2), "010");
  const unsigned char max[2] = {0xff, 0xff};  // 65535 = 17*62^2 + 3*62 + 1
  EXPECT_EQ(Base62(max, 2), "H31");
}

TEST(Keys, HashIsHexSha256) {
  EXPECT_EQ(HashKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(KeyHint("sk-iris-ABCDEFGHIJKLMNOPwxyz"), "sk-iris-ABCD...wxyz");
  EXPECT_EQ(KeyHint("short"), "...");
}

TEST(Keys, PeriodsAreUtcDaysAndMonths) {
  auto ms = [](const char* day) { return *ParseUtcDate(day); };
  const int64_t t = ms("2024-02-29") + 13 * 3600 * 1000;
  EXPECT_EQ(PeriodStart(BudgetPeriod::kDay, t), ms("2024-02-29"));
  EXPECT_EQ(PeriodEnd(BudgetPeriod::kDay, t), ms("2024-03-01"));
  EXPECT_EQ(PeriodStart(BudgetPeriod::kMonth, t), ms("2024-02-01"));
  EXPECT_EQ(PeriodEnd(BudgetPeriod::kMonth, t), ms("2024-03-01"));
  const int64_t dec = ms("2026-12-31") + 1;
  EXPECT_EQ(PeriodEnd(BudgetPeriod::kMonth, dec), ms("2027-01-01"));
  EXPECT_EQ(PeriodStart(BudgetPeriod::kTotal, dec), 0);
  EXPECT_FALSE(ParseBudgetPeriod("week").ok());
}

TEST(Keys, ModelListsAllowExactNamesAndProviderWildcards) {
  KeyRecord k;
  EXPECT_TRUE(AllowsModel(k, "anything"));
  k.models = {"fast", "openai/*"};
  EXPECT_TRUE(AllowsModel(k, "fast"));
  EXPECT_TRUE(AllowsModel(k, "openai/gpt-4o"));
  EXPECT_FALSE(AllowsModel(k, "openai"));
  EXPECT_FALSE(AllowsModel(k, "fast2"));
  EXPECT_FALSE(AllowsModel(k, "anthropic/claude"));
}

TEST(Keys, UnusableSaysWhy) {
  KeyRecord k;
  k.hint = "sk-iris-AAAA...BBBB";
  EXPECT_FALSE(Unusable(k, 1000));
  k.expires_unix_ms = 1000;
  EXPECT_NE(Unusable(k, 1000)->find("expired"), std::string::npos);
  EXPECT_FALSE(Unusable(k, 999));
  k.revoked_unix_ms = 5;
  EXPECT_NE(Unusable(k, 0)->find("revoked"), std::string::npos);
}

TEST(Keys, ChangesAreCheckedBeforeAnyIsApplied) {
  KeyRecord k;
  k.name = "a";
  KeyChanges c;
  c.name = "b";
  c.rpm = -1;
  EXPECT_FALSE(ApplyKeyChanges(c, k).ok());
  EXPECT_EQ(k.name, "a");
  c.rpm = 10;
  c.budget_usd = std::optional<double>(-1);
  EXPECT_FALSE(ApplyKeyChanges(c, k).ok());
  c.budget_usd = std::optional<double>(2.5);
  c.budget_period = "month";
  c.models = std::vector<std::string>{"x", "y/*"};
  ASSERT_TRUE(ApplyKeyChanges(c, k).ok());
  EXPECT_EQ(k.name, "b");
  EXPECT_EQ(k.rpm, 10);
  EXPECT_EQ(k.budget_period, "month");
  EXPECT_EQ(*k.budget_usd, 2.5);
  KeyChanges bad_name;
  bad_name.name = "has space";
  EXPECT_FALSE(ApplyKeyChanges(bad_name, k).ok());
  KeyChanges bad_model;
  bad_model.models = std::vector<std::string>{"a,b"};
  EXPECT_FALSE(ApplyKeyChanges(bad_model, k).ok());
  KeyChanges no_budget;
  no_budget.budget_usd = std::optional<double>();
  ASSERT_TRUE(ApplyKeyChanges(no_budget, k).ok());
  EXPECT_FALSE(k.budget_usd);
}

}  // namespace
}  // namespace iris::gateway::access
