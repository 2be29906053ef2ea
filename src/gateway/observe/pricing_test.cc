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

TEST(Pricing, AnthropicOneHourCacheWritesAtTwiceTheInput) {
  PriceTable t;
  auto p = t.Find("claude-sonnet-4-5-20250929");
  ASSERT_TRUE(p);
  // 1000 written, 600 of them for an hour; 100 uncached, 0 out:
  // 100*3 + 400*3.75 + 600*6 = 300 + 1500 + 3600 = 5400 micro-dollars.
  Usage u = U(1100, 0, 0, 1000);
  u.cache_write_1h_tokens = 600;
  EXPECT_NEAR(*CostUsd(*p, u), 0.0054, kMicro / 10);
  // A count above the writes (a provider's slip) is held to them: all 1000 at 6.
  u.cache_write_1h_tokens = 5000;
  EXPECT_NEAR(*CostUsd(*p, u), (100 * 3 + 1000 * 6.0) / 1e6, kMicro / 10);
  // A price without the one-hour rate bills those writes at its cache-write rate.
  Price own = *p;
  own.cache_write_1h_per_mtok.reset();
  u.cache_write_1h_tokens = 600;
  EXPECT_NEAR(*CostUsd(own, u), (100 * 3 + 1000 * 3.75) / 1e6, kMicro / 10);
}

TEST(Pricing, WebSearchesAtTheirOwnPrice) {
  PriceTable t;
  // Anthropic and OpenAI: $10 per 1,000 searches, on top of the tokens.
  for (std::string_view model : {"claude-haiku-4-5", "gpt-4.1"}) {
    auto p = t.Find(model);
    ASSERT_TRUE(p) << model;
    Usage u = U(0, 0);
    u.web_searches = 3;
    EXPECT_NEAR(*CostUsd(*p, u), 0.03, kMicro / 10) << model;
    EXPECT_TRUE(PricesWebSearches(*p, u));
    u = U(1000, 100);
    u.web_searches = 1;
    EXPECT_NEAR(*CostUsd(*p, u), 0.01 + *CostUsd(*p, U(1000, 100)), kMicro / 10) << model;
  }
  // A price without a search rate counts the tokens only, and says so.
  Price custom;
  custom.input_per_mtok = 1;
  Usage u = U(1000, 0);
  u.web_searches = 2;
  EXPECT_NEAR(*CostUsd(custom, u), 0.001, kMicro / 10);
  EXPECT_FALSE(PricesWebSearches(custom, u));
  u.web_searches = 0;
  EXPECT_TRUE(PricesWebSearches(custom, u));
  // Models that run no search tool through iris have no rate.
  EXPECT_FALSE(t.Find("gemini-2.5-flash")->web_search_per_1k);
  EXPECT_FALSE(t.Find("text-embedding-3-small")->web_search_per_1k);
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
  EXPECT_FALSE(t.Find("llama-3.3-70b-versatile")->web_search_per_1k);
}

// Model ids with slashes of their own are priced as written, behind a provider's name too; the
// local model only by its own "local/" entry.
TEST(Pricing, IdsWithSlashesAndTheLocalModel) {
  Price p;
  p.input_per_mtok = 0.88;
  Price local;
  local.input_per_mtok = 0.01;
  PriceTable t({{"meta-llama/Llama-3.3-70B-Instruct", p},
                {"local/HuggingFaceTB/SmolVLM2-256M-Video-Instruct", local},
                {"smolvlm2", p}});
  EXPECT_NEAR(t.Find("meta-llama/Llama-3.3-70B-Instruct")->input_per_mtok, 0.88, 1e-12);
  EXPECT_NEAR(t.Find("together/meta-llama/Llama-3.3-70B-Instruct")->input_per_mtok, 0.88, 1e-12);
  EXPECT_NEAR(t.Find("local/HuggingFaceTB/SmolVLM2-256M-Video-Instruct")->input_per_mtok, 0.01,
              1e-12);
  EXPECT_NEAR(t.FindExact("local/HuggingFaceTB/SmolVLM2-256M-Video-Instruct")->input_per_mtok, 0.01,
              1e-12);
  EXPECT_FALSE(t.FindExact("local/smolvlm2"));  // (a cloud model's price of the same name)
  EXPECT_TRUE(t.Find("openai/gpt-4o"));
}

// An iris.yaml price that names only input and output keeps what the provider's sheet says for
// the rest of its family; what it names wins.
TEST(Pricing, OverridesKeepTheirFamilysRules) {
  Price sonnet;
  sonnet.input_per_mtok = 2;
  sonnet.output_per_mtok = 10;
  Price own = sonnet;
  own.cached_input_per_mtok = 1;
  own.web_search_per_1k = 0;  // (searches the operator does not pay for)
  PriceTable t({{"claude-sonnet-4-5", sonnet}, {"claude-new-9", own}, {"gpt-4o-mini", sonnet}});
  Price p = *t.Find("claude-sonnet-4-5");
  EXPECT_EQ(p.input_per_mtok, 2);
  EXPECT_NEAR(*p.cached_input_per_mtok, 0.2, 1e-12);
  EXPECT_NEAR(*p.cache_write_per_mtok, 2.5, 1e-12);
  EXPECT_NEAR(*p.cache_write_1h_per_mtok, 4, 1e-12);
  EXPECT_EQ(p.web_search_per_1k, 10);
  p = *t.Find("claude-new-9");
  EXPECT_EQ(p.cached_input_per_mtok, 1);
  EXPECT_EQ(p.web_search_per_1k, 0);
  p = *t.Find("gpt-4o-mini");
  EXPECT_EQ(p.web_search_per_1k, 10);
  EXPECT_FALSE(p.cached_input_per_mtok);  // (OpenAI's discount differs by model)
}

}  // namespace
}  // namespace iris::gateway::observe
