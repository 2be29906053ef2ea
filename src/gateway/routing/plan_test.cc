// Route planning: aliases, weighted first pick, provider/model, bare ids, hints, disabled
// providers.
#include "gateway/routing/plan.h"

#include <gtest/gtest.h>

#include <array>
#include <map>

namespace iris::gateway::routing {
namespace {

using config::Config;
using config::ProviderKind;

#define EXPECT_CONTAINS(text, part)                                                                \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "missing: " << (part) << "\nin:\n" \
                                                             << (text)

config::EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kConfig = R"(
providers:
  openai:    { kind: openai }
  anthropic: { kind: anthropic }
  gemini:    { kind: gemini }
  mistral:   { kind: mistral }
  groq:      { kind: openai-compatible, base_url: https://api.groq.com/openai/v1,
               api_key_env: GROQ_API_KEY, models: [llama-3.3-70b-versatile, gpt-oss-120b] }
  local:     { kind: local, model: /models/smol }
models:
  vision:
    targets: [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, local/smolvlm2]
    retries: 1
    timeouts: { first_token_ms: 15000 }
  balanced:
    strategy: weighted
    targets: [{ target: openai/gpt-4.1, weight: 3 },
              { target: mistral/mistral-large-latest, weight: 1 }]
  three:
    strategy: weighted
    targets: [{ target: openai/a, weight: 1 }, { target: anthropic/b, weight: 5 },
              { target: mistral/c, weight: 2 }]
  cloud-only:
    targets: [gemini/gemini-2.5-flash]
)";

// Gemini is the one provider without a key.
std::shared_ptr<const Config> TestConfig() {
  auto r = config::LoadConfigString(kConfig, FakeEnv({{"OPENAI_API_KEY", "o"},
                                                      {"ANTHROPIC_API_KEY", "a"},
                                                      {"MISTRAL_API_KEY", "m"},
                                                      {"GROQ_API_KEY", "g"}}));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

ChatRequest Request(std::string model) {
  ChatRequest r;
  r.model = std::move(model);
  return r;
}

std::vector<std::string> Keys(const Plan& plan) {
  std::vector<std::string> out;
  for (const Target& t : plan.targets) out.push_back(t.Key());
  return out;
}

using Keys_ = std::vector<std::string>;

TEST(PlanTest, AliasKeepsFallbackOrderRetriesAndTimeouts) {
  auto config = TestConfig();
  Rng rng(1);
  auto plan = PlanRoute(*config, Request("vision"), rng);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Keys(*plan),
            (Keys_{"openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "local/smolvlm2"}));
  EXPECT_EQ(plan->alias, "vision");
  EXPECT_EQ(plan->retries_per_target, 1);
  EXPECT_EQ(plan->timeouts.first_token, std::chrono::milliseconds(15000));
  EXPECT_EQ(plan->targets[0].kind, ProviderKind::kOpenAI);
  EXPECT_EQ(plan->targets[0].provider_config, config->FindProvider("openai"));
  EXPECT_EQ(plan->targets[2].kind, ProviderKind::kLocal);
  EXPECT_EQ(plan->targets[2].provider_config->model, "/models/smol");
}

TEST(PlanTest, DirectModelsUseConfigDefaults) {
  auto config = TestConfig();
  Rng rng(1);
  auto plan = PlanRoute(*config, Request("openai/gpt-4o"), rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Keys(*plan), (Keys_{"openai/gpt-4o"}));
  EXPECT_EQ(plan->alias, "");
  EXPECT_EQ(plan->retries_per_target, config->default_retries);
  EXPECT_EQ(plan->timeouts.first_token, config->default_timeouts.first_token);
}

TEST(PlanTest, ProviderSlashModelKeepsSlashesInTheModel) {
  auto config = TestConfig();
  Rng rng(1);
  auto plan = PlanRoute(*config, Request("groq/meta-llama/llama-4-scout"), rng);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->targets.size(), 1u);
  EXPECT_EQ(plan->targets[0].provider, "groq");
  EXPECT_EQ(plan->targets[0].model, "meta-llama/llama-4-scout");
  EXPECT_EQ(plan->targets[0].kind, ProviderKind::kOpenAICompatible);
}

TEST(PlanTest, BareIdsByPrefix) {
  auto config = TestConfig();
  Rng rng(1);
  const std::pair<const char*, const char*> cases[] = {
      {"gpt-4o", "openai/gpt-4o"},
      {"chatgpt-4o-latest", "openai/chatgpt-4o-latest"},
      {"o1", "openai/o1"},
      {"o3-mini", "openai/o3-mini"},
      {"o4-mini", "openai/o4-mini"},
      {"claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"},
      {"mistral-large-latest", "mistral/mistral-large-latest"},
      {"ministral-8b-latest", "mistral/ministral-8b-latest"},
      {"codestral-latest", "mistral/codestral-latest"},
      {"pixtral-12b", "mistral/pixtral-12b"},
      {"magistral-medium-latest", "mistral/magistral-medium-latest"},
      {"SmolVLM2-500M-Video-Instruct", "local/SmolVLM2-500M-Video-Instruct"},
      {"HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
       "local/HuggingFaceTB/SmolVLM2-256M-Video-Instruct"},
      // Listed under a provider's `models`: that provider, even with a known prefix.
      {"gpt-oss-120b", "groq/gpt-oss-120b"},
      {"llama-3.3-70b-versatile", "groq/llama-3.3-70b-versatile"},
  };
  for (const auto& [model, key] : cases) {
    auto plan = PlanRoute(*config, Request(model), rng);
    ASSERT_TRUE(plan.ok()) << model << ": " << plan.status().ToString();
    EXPECT_EQ(Keys(*plan), (Keys_{key})) << model;
  }
}

TEST(PlanTest, KindSlashModelWhenNoProviderHasThatName) {
  auto config = config::LoadConfigString(R"(
providers:
  claude-prod: { kind: anthropic, api_key_env: K }
  claude-backup: { kind: anthropic, api_key_env: K }
  gem: { kind: gemini, api_key_env: K }
)",
                                         FakeEnv({{"K", "k"}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Rng rng(1);
  auto plan = PlanRoute(**config, Request("anthropic/claude-opus-4-1"), rng);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Keys(*plan), (Keys_{"claude-prod/claude-opus-4-1", "claude-backup/claude-opus-4-1"}));
  plan = PlanRoute(**config, Request("google/gemini-2.5-pro"), rng);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Keys(*plan), (Keys_{"gem/gemini-2.5-pro"}));
  // A bare prefix finds every provider of the kind, in config order.
  plan = PlanRoute(**config, Request("claude-haiku-4-5"), rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Keys(*plan), (Keys_{"claude-prod/claude-haiku-4-5", "claude-backup/claude-haiku-4-5"}));
  // ... and `order` can put the backup first.
  ChatRequest r = Request("claude-haiku-4-5");
  r.routing.order = {"claude-backup"};
  plan = PlanRoute(**config, r, rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->targets[0].provider, "claude-backup");
}

TEST(PlanTest, UnknownModelListsAliasesAndProviders) {
  auto config = TestConfig();
  Rng rng(1);
  for (const char* model : {"llama-3", "antropic/claude-x", "visoin"}) {
    auto plan = PlanRoute(*config, Request(model), rng);
    ASSERT_FALSE(plan.ok()) << model;
    EXPECT_EQ(plan.status().code(), ErrorCode::kNotFound);
    EXPECT_CONTAINS(plan.status().message(), "unknown model \"" + std::string(model) + "\"");
    EXPECT_CONTAINS(plan.status().message(), "vision, balanced, three, cloud-only");
    EXPECT_CONTAINS(plan.status().message(), "openai, anthropic, gemini, mistral, groq, local");
  }
  auto empty = PlanRoute(*config, Request(""), rng);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
}

TEST(PlanTest, DisabledProvidersAreSkippedWithReasons) {
  auto config = TestConfig();
  Rng rng(1);
  auto plan = PlanRoute(*config, Request("cloud-only"), rng);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(plan.status().message(),
            "no enabled target for model cloud-only: gemini (GEMINI_API_KEY or GOOGLE_API_KEY not "
            "set)");

  auto bare = PlanRoute(*config, Request("gemini-2.5-flash"), rng);
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.status().code(), ErrorCode::kUnavailable);

  // With a fallback model the disabled one is skipped and the plan goes on.
  ChatRequest r = Request("gemini-2.5-flash");
  r.routing.models = {"claude-haiku-4-5"};
  auto with_fallback = PlanRoute(*config, r, rng);
  ASSERT_TRUE(with_fallback.ok()) << with_fallback.status().ToString();
  EXPECT_EQ(Keys(*with_fallback), (Keys_{"anthropic/claude-haiku-4-5"}));
  EXPECT_EQ(with_fallback->skipped, (Keys_{"gemini (GEMINI_API_KEY or GOOGLE_API_KEY not set)"}));
}

TEST(PlanTest, FallbackModelsAppendInOrderWithoutDuplicates) {
  auto config = TestConfig();
  Rng rng(1);
  ChatRequest r = Request("openai/gpt-4o");
  r.routing.models = {"claude-sonnet-4-5", "vision", "openai/gpt-4o"};
  auto plan = PlanRoute(*config, r, rng);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Keys(*plan),
            (Keys_{"openai/gpt-4o", "anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini",
                   "anthropic/claude-haiku-4-5", "local/smolvlm2"}));
  EXPECT_EQ(plan->alias, "");  // the primary was direct; a fallback alias does not set it

  r.routing.models = {"claude-sonnet-4-5", "nope-1"};
  auto bad = PlanRoute(*config, r, rng);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kNotFound);
  EXPECT_CONTAINS(bad.status().message(), "routing.models[1]: unknown model \"nope-1\"");
}

TEST(PlanTest, OrderMovesProvidersFirstWithinEachModel) {
  auto config = TestConfig();
  Rng rng(1);
  ChatRequest r = Request("vision");
  r.routing.order = {"local", "anthropic"};
  auto plan = PlanRoute(*config, r, rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Keys(*plan),
            (Keys_{"local/smolvlm2", "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"}));

  // Kind names work too, and unknown names are ignored.
  r.routing.order = {"bedrock", "anthropic"};
  plan = PlanRoute(*config, r, rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->targets[0].provider, "anthropic");

  // Order never moves a fallback model's target ahead of the primary model's.
  r = Request("openai/gpt-4o");
  r.routing.models = {"claude-sonnet-4-5"};
  r.routing.order = {"anthropic"};
  plan = PlanRoute(*config, r, rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Keys(*plan), (Keys_{"openai/gpt-4o", "anthropic/claude-sonnet-4-5"}));
}

TEST(PlanTest, OnlyFiltersAndExplainsAnEmptyResult) {
  auto config = TestConfig();
  Rng rng(1);
  ChatRequest r = Request("vision");
  r.routing.only = {"anthropic", "local"};
  auto plan = PlanRoute(*config, r, rng);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Keys(*plan), (Keys_{"anthropic/claude-haiku-4-5", "local/smolvlm2"}));
  EXPECT_EQ(plan->skipped, (Keys_{"openai (not in routing.only)"}));

  r.routing.only = {"gemini", "mistral"};
  plan = PlanRoute(*config, r, rng);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(plan.status().message(),
            "no enabled target for model vision: openai (not in routing.only), anthropic (not in "
            "routing.only), local (not in routing.only)");

  r = Request("cloud-only");
  r.routing.models = {"gpt-4o"};
  r.routing.only = {"gemini"};
  plan = PlanRoute(*config, r, rng);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "no enabled target for model cloud-only (or gpt-4o): gemini (GEMINI_API_KEY or "
            "GOOGLE_API_KEY not set), openai (not in routing.only)");
}

TEST(PlanTest, WeightedFirstPickFollowsWeightsAndTheRestFallBackByWeight) {
  auto config = TestConfig();
  Rng rng(12345);
  constexpr int kDraws = 40000;
  int openai_first = 0;
  for (int i = 0; i < kDraws; ++i) {
    auto plan = PlanRoute(*config, Request("balanced"), rng);
    ASSERT_TRUE(plan.ok());
    ASSERT_EQ(plan->targets.size(), 2u);
    if (plan->targets[0].provider == "openai") {
      ++openai_first;
      EXPECT_EQ(plan->targets[1].provider, "mistral");
    } else {
      EXPECT_EQ(plan->targets[1].provider, "openai");
    }
  }
  EXPECT_NEAR(static_cast<double>(openai_first) / kDraws, 0.75, 0.03);

  // Three targets 1:5:2 — whoever is first, the rest follow by descending weight.
  std::map<std::string, int> firsts;
  for (int i = 0; i < kDraws; ++i) {
    auto plan = PlanRoute(*config, Request("three"), rng);
    ASSERT_TRUE(plan.ok());
    ++firsts[plan->targets[0].provider];
    const std::string& first = plan->targets[0].provider;
    if (first == "openai") {
      EXPECT_EQ(Keys(*plan), (Keys_{"openai/a", "anthropic/b", "mistral/c"}));
    } else if (first == "anthropic") {
      EXPECT_EQ(Keys(*plan), (Keys_{"anthropic/b", "mistral/c", "openai/a"}));
    } else {
      EXPECT_EQ(Keys(*plan), (Keys_{"mistral/c", "anthropic/b", "openai/a"}));
    }
  }
  EXPECT_NEAR(firsts["openai"] / double{kDraws}, 1.0 / 8, 0.03);
  EXPECT_NEAR(firsts["anthropic"] / double{kDraws}, 5.0 / 8, 0.03);
  EXPECT_NEAR(firsts["mistral"] / double{kDraws}, 2.0 / 8, 0.03);
}

TEST(PickWeightedTest, DistributionAndEdges) {
  Rng rng(7);
  const std::array<double, 2> weights = {3, 1};
  constexpr int kDraws = 40000;
  int zeros = 0;
  for (int i = 0; i < kDraws; ++i) zeros += PickWeighted(weights, rng) == 0;
  EXPECT_NEAR(zeros / double{kDraws}, 0.75, 0.03);

  const std::array<double, 3> with_zero = {0, 2, 0};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(PickWeighted(with_zero, rng), 1u);
  EXPECT_EQ(PickWeighted(std::span<const double>(), rng), 0u);
  const std::array<double, 2> none = {0, 0};
  EXPECT_EQ(PickWeighted(none, rng), 0u);
}

TEST(PickWeightedTest, SameSeedSameSequence) {
  const std::array<double, 4> weights = {1, 2, 3, 4};
  Rng a(99), b(99);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(PickWeighted(weights, a), PickWeighted(weights, b));
}

}  // namespace
}  // namespace iris::gateway::routing
