#include "engine/runtime/sampler.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace iris::runtime {
namespace {

std::vector<float> Logits() { return {1.0f, 3.0f, 2.9f, -1.0f, 0.5f}; }

TEST(SamplerTest, GreedyTakesArgmaxFirstOnTies) {
  Sampler s(SamplingParams{});
  auto l = Logits();
  EXPECT_EQ(s.Sample(l, {}), 1);
  std::vector<float> tie = {2.0f, 5.0f, 5.0f};
  EXPECT_EQ(ArgMax(tie), 1);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDiffers) {
  SamplingParams p;
  p.temperature = 1.5f;
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      auto l = Logits();
      out.push_back(s.Sample(l, {}));
    }
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(SamplerTest, TopKOneAndTinyTopPAreGreedy) {
  SamplingParams k;
  k.temperature = 2.0f;
  k.top_k = 1;
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_p = 0.01f;
  SamplingParams m;
  m.temperature = 1.0f;
  m.min_p = 0.99f;
  for (const auto& params : {k, p, m}) {
    Sampler s(params);
    for (int i = 0; i < 50; ++i) {
      auto l = Logits();
      ASSERT_EQ(s.Sample(l, {}), 1);
    }
  }
}

TEST(SamplerTest, TopKTwoOnlyDrawsTheTwoBest) {
  SamplingParams p;
  p.temperature = 5.0f;
  p.top_k = 2;
  Sampler s(p);
  std::map<int32_t, int> counts;
  for (int i = 0; i < 500; ++i) {
    auto l = Logits();
    counts[s.Sample(l, {})]++;
  }
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[1], 100);
  EXPECT_GT(counts[2], 100);
}

TEST(SamplerTest, RepetitionPenaltyDemotesSeenTokens) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  auto l = Logits();
  std::vector<int32_t> history = {1};
  EXPECT_EQ(s.Sample(l, history), 2);  // 3.0 / 2 = 1.5 < 2.9
  EXPECT_FLOAT_EQ(l[1], 1.5f);
}

TEST(SamplerTest, InvalidParametersAreNamed) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_NE(p.Validate().message().find("temperature"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_NE(p.Validate().message().find("top_p"), std::string::npos);
  p = {};
  p.min_p = 2;
  EXPECT_NE(p.Validate().message().find("min_p"), std::string::npos);
  p = {};
  p.repetition_penalty = 0;
  EXPECT_NE(p.Validate().message().find("repetition_penalty"), std::string::npos);
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
}

}  // namespace
}  // namespace iris::runtime
