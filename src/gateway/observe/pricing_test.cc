#include "gateway/observe/pricing.h"

#include <gtest/gtest.h>

namespace iris::gateway::observe {
namespace {

Usage U(int64_t in, int64_t out, int64_t cached = 0, int64_t write = 0, int64_t reasoning = 0) {
  Usage u;
  u.input_tokens = in;
  u.output_tokens = out;
  u.cached_input_tokens = cached;
  u.cache_write_tokens = write;
  u.reasoning_tokens = reasoning;
  u.reported = true;
  return u;
}

// Costs are compared to the micro-dollar.
constexpr double kMicro = 1e-6;

TEST(Pricing, OpenAICachedTokensAtTheDiscount) {
  PriceTable t;
  auto p = t.Find("gpt-4o-mini");
  ASSERT_TRUE(p);
  // 10,000 prompt tokens of which 4,000 cached, 1,000 completion:
  // 6000*0.15 + 4000*0.075 + 1000*0.60 = 900 + 300 + 600 = 1800 micro-dollars.
  EXPECT_NEAR(*CostUsd(*p, U(10000, 1000, 4000)), 0.0018, kMicro / 10);
}

TEST(Pricing, AnthropicCacheReadsAndWrites) {
  PriceTable t;
  auto p = t.Find("claude-haiku-4-5");
  ASSERT_TRUE(p);
  // input 100 uncached + 2000 read + 500 written; 300 out:
  // 100*1 + 2000*0.1 + 500*1.25 + 300*5 = 100 + 200 + 625 + 1500 = 2425 micro-dollars.
  EXPECT_NEAR(*CostUsd(*p, U(2600, 300, 2000, 500)), 0.002425, kMicro / 10);
}

TEST(Pricing, GeminiThinkingIsOutputAndLongContextTier) {
  PriceTable t;
  auto flash = t.Find("gemini-2.5-flash");
  ASSERT_TRUE(flash);
  // 1000 in, 200 candidates + 800 thoughts = 1000 out: 1000*0.30 + 1000*2.50 = 2800.
  EXPECT_NEAR(*CostUsd(*flash, U(1000, 1000, 0, 0, 800)), 0.0028, kMicro / 10);
  auto pro = t.Find("gemini-2.5-pro");
  ASSERT_TRUE(pro);
  EXPECT_NEAR(*CostUsd(*pro, U(200000, 1000)), (200000 * 1.25 + 1000 * 10.0) / 1e6, kMicro / 10);
  EXPECT_NEAR(*CostUsd(*pro, U(200001, 1000)), (200001 * 2.50 + 1000 * 15.0) / 1e6, kMicro / 10);
}

TEST(Pricing, MistralFlat) {
  PriceTable t;
  EXPECT_NEAR(*CostUsd(*t.Find("mistral-large-latest"), U(1000000, 1000000)), 2.0, kMicro);
}

TEST(Pricing, DatedSnapshotsAndProviderPrefixesMatch) {
  PriceTable t;
  EXPECT_TRUE(t.Find("gpt-4o-mini-2024-07-18"));
  EXPECT_NEAR(t.Find("openai/gpt-4o-2024-08-06")->input_per_mtok, 2.50, 1e-12);
  // The longest prefix wins: gpt-4o-mini-..., not gpt-4o.
  EXPECT_NEAR(t.Find("gpt-4o-mini-2024-07-18")->input_per_mtok, 0.15, 1e-12);
  EXPECT_FALSE(t.Find("gpt-4"));
  EXPECT_FALSE(t.Find("llama-3-70b"));
}

TEST(Pricing, OverridesReplaceAndExtend) {
  Price custom;
  custom.input_per_mtok = 0.05;
  custom.output_per_mtok = 0.08;
  PriceTable t({{"gpt-4o-mini", custom}, {"llama-3.3-70b-versatile", custom}});
  EXPECT_NEAR(t.Find("gpt-4o-mini")->input_per_mtok, 0.05, 1e-12);
  EXPECT_TRUE(t.Find("groq/llama-3.3-70b-versatile"));
}

}  // namespace
}  // namespace iris::gateway::observe
