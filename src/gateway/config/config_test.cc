// iris.yaml parsing: the issue's example, defaults, every error reported at once with its key path
// and line, keys resolved through an injected environment.
#include "gateway/config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

// Substring check that prints the whole text on failure.
#define EXPECT_CONTAINS(text, part)                                                                \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "missing: " << (part) << "\nin:\n" \
                                                             << (text)

namespace iris::gateway::config {
namespace {

using std::chrono::milliseconds;

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kIssueExample = R"(server: { listen: 127.0.0.1:8080 }
providers:
  openai:    { kind: openai,    api_key_env: OPENAI_API_KEY }
  anthropic: { kind: anthropic, api_key_env: ANTHROPIC_API_KEY }
  gemini:    { kind: gemini,    api_key_env: GEMINI_API_KEY }
  mistral:   { kind: mistral,   api_key_env: MISTRAL_API_KEY }
  groq:      { kind: openai-compatible, base_url: https://api.groq.com/openai/v1, api_key_env: GROQ_API_KEY }
  local:     { kind: local, model: /models/SmolVLM2-500M-Video-Instruct }
models:
  vision:                        # a public model name -> ordered fallback targets
    targets: [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, local/smolvlm2]
    retries: 2
    timeouts: { connect_ms: 2000, first_token_ms: 15000, total_ms: 120000 }
  balanced:
    strategy: weighted
    targets: [{ target: openai/gpt-4.1, weight: 3 }, { target: mistral/mistral-large-latest, weight: 1 }]
)";

// The error text of a load that must fail.
std::string Errors(std::string_view yaml, EnvLookup env = FakeEnv({})) {
  auto r = LoadConfigString(yaml, env);
  EXPECT_FALSE(r.ok()) << "expected errors for:\n" << yaml;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

TEST(ConfigTest, IssueExampleParses) {
  auto r = LoadConfigString(kIssueExample, FakeEnv({{"OPENAI_API_KEY", "sk-test-openai"},
                                                    {"ANTHROPIC_API_KEY", "a-key"},
                                                    {"GROQ_API_KEY", "g-key"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = **r;
  EXPECT_EQ(c.server.listen.host, "127.0.0.1");
  EXPECT_EQ(c.server.listen.port, 8080);
  ASSERT_EQ(c.providers.size(), 6u);
  EXPECT_EQ(c.providers[0].name, "openai");
  EXPECT_EQ(c.providers[4].name, "groq");
  EXPECT_EQ(c.providers[5].name, "local");

  const ProviderConfig* openai = c.FindProvider("openai");
  ASSERT_NE(openai, nullptr);
  EXPECT_EQ(openai->kind, ProviderKind::kOpenAI);
  EXPECT_EQ(openai->base_url, "https://api.openai.com/v1");
  EXPECT_EQ(openai->api_key, "sk-test-openai");
  EXPECT_TRUE(openai->enabled);

  EXPECT_EQ(c.FindProvider("anthropic")->base_url, "https://api.anthropic.com/v1");
  const ProviderConfig* gemini = c.FindProvider("gemini");
  EXPECT_EQ(gemini->base_url, "https://generativelanguage.googleapis.com/v1beta");
  EXPECT_FALSE(gemini->enabled);
  EXPECT_EQ(gemini->disabled_reason, "GEMINI_API_KEY not set");
  EXPECT_EQ(c.FindProvider("mistral")->base_url, "https://api.mistral.ai/v1");
  EXPECT_FALSE(c.FindProvider("mistral")->enabled);

  const ProviderConfig* groq = c.FindProvider("groq");
  EXPECT_EQ(groq->kind, ProviderKind::kOpenAICompatible);
  EXPECT_EQ(groq->base_url, "https://api.groq.com/openai/v1");
  EXPECT_EQ(groq->api_key, "g-key");

  const ProviderConfig* local = c.FindProvider("local");
  EXPECT_EQ(local->kind, ProviderKind::kLocal);
  EXPECT_EQ(local->model, "/models/SmolVLM2-500M-Video-Instruct");
  EXPECT_TRUE(local->enabled);
  EXPECT_EQ(local->max_queue, 64);

  ASSERT_EQ(c.models.size(), 2u);
  const ModelAlias* vision = c.FindAlias("vision");
  ASSERT_NE(vision, nullptr);
  EXPECT_EQ(vision->strategy, Strategy::kFallback);
  ASSERT_EQ(vision->targets.size(), 3u);
  EXPECT_EQ(vision->targets[0].provider, "openai");
  EXPECT_EQ(vision->targets[0].model, "gpt-4o-mini");
  EXPECT_EQ(vision->targets[1].provider, "anthropic");
  EXPECT_EQ(vision->targets[1].model, "claude-haiku-4-5");
  EXPECT_EQ(vision->targets[2].provider, "local");
  EXPECT_EQ(vision->retries, 2);
  EXPECT_EQ(vision->timeouts.connect, milliseconds(2000));
  EXPECT_EQ(vision->timeouts.first_token, milliseconds(15000));
  EXPECT_EQ(vision->timeouts.idle, milliseconds(60000));  // not overridden: the default
  EXPECT_EQ(vision->timeouts.total, milliseconds(120000));

  const ModelAlias* balanced = c.FindAlias("balanced");
  ASSERT_NE(balanced, nullptr);
  EXPECT_EQ(balanced->strategy, Strategy::kWeighted);
  ASSERT_EQ(balanced->targets.size(), 2u);
  EXPECT_EQ(balanced->targets[0].model, "gpt-4.1");
  EXPECT_DOUBLE_EQ(balanced->targets[0].weight, 3);
  EXPECT_EQ(balanced->targets[1].provider, "mistral");
  EXPECT_DOUBLE_EQ(balanced->targets[1].weight, 1);
}

// account_resources lets callers name what is in an OpenAI or Anthropic account; off by
// default, and only for the kinds that take callers' bodies as written.
TEST(ConfigTest, AccountResourcesIsAnOptInOfTheKindsThatTakeBodiesAsWritten) {
  auto r = LoadConfigString(R"(providers:
  openai: { kind: openai, api_key_env: K }
  team:   { kind: openai, api_key_env: K, account_resources: true }
  claude: { kind: anthropic, api_key_env: K, account_resources: true }
  anthropic: { kind: anthropic, api_key_env: K }
)",
                            FakeEnv({{"K", "k"}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const ProviderConfig& p : (*r)->providers) {
    EXPECT_EQ(p.account_resources, p.name == "team" || p.name == "claude") << p.name;
  }
  EXPECT_CONTAINS(Errors(R"(providers:
  gemini: { kind: gemini, api_key_env: K, account_resources: true }
)",
                         FakeEnv({{"K", "k"}})),
                  "providers.gemini.account_resources: only for kinds openai and anthropic");
  EXPECT_CONTAINS(Errors(R"(providers:
  openai: { kind: openai, api_key_env: K, account_resources: yes please }
)",
                         FakeEnv({{"K", "k"}})),
                  "providers.openai.account_resources: expected true or false");
}

TEST(ConfigTest, DefaultsWhenSectionsAreMissing) {
  auto r = LoadConfigString("", FakeEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = **r;
  EXPECT_EQ(c.server.listen.host, "127.0.0.1");
  EXPECT_EQ(c.server.listen.port, 8080);
  EXPECT_GE(c.server.threads, 1);
  EXPECT_GT(c.server.max_body_bytes, 1 << 20);
  EXPECT_TRUE(c.providers.empty());
  EXPECT_TRUE(c.models.empty());
  EXPECT_EQ(c.default_retries, 2);
  EXPECT_EQ(c.default_timeouts.connect, milliseconds(5000));
  EXPECT_EQ(c.default_timeouts.first_token, milliseconds(60000));
  EXPECT_EQ(c.default_timeouts.idle, milliseconds(60000));
  EXPECT_EQ(c.default_timeouts.total, milliseconds(600000));
  EXPECT_EQ(c.routing.breaker.failure_threshold, 5);
  EXPECT_TRUE(c.store.empty());
  EXPECT_TRUE(c.pricing.empty());
}

TEST(ConfigTest, TopLevelDefaultsFlowIntoAliasesAndAliasOverridesWin) {
  auto r = LoadConfigString(R"(
defaults:
  retries: 1
  timeouts: { connect_ms: 1000, idle_ms: 9000 }
providers:
  openai: {}
models:
  a: { targets: [openai/gpt-4o] }
  b: { targets: [openai/gpt-4o], retries: 0, timeouts: { idle_ms: 500 } }
)",
                            FakeEnv({{"OPENAI_API_KEY", "k"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = **r;
  EXPECT_EQ(c.default_retries, 1);
  const ModelAlias* a = c.FindAlias("a");
  EXPECT_EQ(a->retries, 1);
  EXPECT_EQ(a->timeouts.connect, milliseconds(1000));
  EXPECT_EQ(a->timeouts.idle, milliseconds(9000));
  EXPECT_EQ(a->timeouts.total, milliseconds(600000));
  const ModelAlias* b = c.FindAlias("b");
  EXPECT_EQ(b->retries, 0);
  EXPECT_EQ(b->timeouts.connect, milliseconds(1000));  // inherited
  EXPECT_EQ(b->timeouts.idle, milliseconds(500));      // overridden
  // A provider named after its kind needs no `kind:`, and gets the kind's key variable.
  EXPECT_EQ(c.FindProvider("openai")->kind, ProviderKind::kOpenAI);
  EXPECT_EQ(c.FindProvider("openai")->api_key_env, "OPENAI_API_KEY");
}

TEST(ConfigTest, ServerRoutingStorePricingAndProviderExtras) {
  auto r = LoadConfigString(R"(
server:
  listen: "[::1]:9000"
  threads: 3
  max_body_bytes: 1048576
  header_timeout_ms: 5000
  body_timeout_ms: 7000
  idle_timeout_ms: 8000
  shutdown_grace_ms: 0
routing:
  backoff_base_ms: 100
  backoff_max_ms: 2000
  max_retry_after_ms: 5000
  breaker: { failure_threshold: 3, cooldown_ms: 1500 }
store: postgres://iris@db/iris
pricing:
  gpt-4o-mini: { input_per_mtok: 0.15, output_per_mtok: 0.6, cached_input_per_mtok: 0.075 }
  claude-x: { input_per_mtok: 1, output_per_mtok: 5, cache_write_1h_per_mtok: 2,
              web_search_per_1k: 10 }
providers:
  oai:
    kind: openai
    base_url: https://proxy.example.com/v1/
    headers: { OpenAI-Organization: org-123 }
    models: [gpt-4o, gpt-4o-mini]
  local: { kind: local, model: HuggingFaceTB/SmolVLM2-256M-Video-Instruct,
           threads: 2, max_queue: 8, max_batch: 16, kv_cache_mb: 512, compute: bf16,
           kv_cache_dtype: f16, step_tokens: 32 }
)",
                            FakeEnv({{"OPENAI_API_KEY", "k"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = **r;
  EXPECT_EQ(c.server.listen.host, "::1");
  EXPECT_EQ(c.server.listen.port, 9000);
  EXPECT_EQ(c.server.threads, 3);
  EXPECT_EQ(c.server.max_body_bytes, 1048576);
  EXPECT_EQ(c.server.header_timeout, milliseconds(5000));
  EXPECT_EQ(c.server.body_timeout, milliseconds(7000));
  EXPECT_EQ(c.server.idle_timeout, milliseconds(8000));
  EXPECT_EQ(c.server.shutdown_grace, milliseconds(0));
  EXPECT_EQ(c.routing.backoff_base, milliseconds(100));
  EXPECT_EQ(c.routing.backoff_max, milliseconds(2000));
  EXPECT_EQ(c.routing.max_retry_after, milliseconds(5000));
  EXPECT_EQ(c.routing.breaker.failure_threshold, 3);
  EXPECT_EQ(c.routing.breaker.cooldown, milliseconds(1500));
  EXPECT_EQ(c.store, "postgres://iris@db/iris");
  ASSERT_EQ(c.pricing.count("gpt-4o-mini"), 1u);
  const ModelPrice& price = c.pricing.at("gpt-4o-mini");
  EXPECT_DOUBLE_EQ(price.input_per_mtok, 0.15);
  EXPECT_DOUBLE_EQ(price.output_per_mtok, 0.6);
  EXPECT_EQ(price.cached_input_per_mtok, 0.075);
  EXPECT_FALSE(price.cache_write_per_mtok.has_value());
  EXPECT_FALSE(price.web_search_per_1k.has_value());
  const ModelPrice& claude = c.pricing.at("claude-x");
  EXPECT_EQ(claude.cache_write_1h_per_mtok, 2);
  EXPECT_EQ(claude.web_search_per_1k, 10);
  const ProviderConfig* oai = c.FindProvider("oai");
  EXPECT_EQ(oai->base_url, "https://proxy.example.com/v1");  // trailing '/' dropped
  EXPECT_EQ(oai->headers.at("OpenAI-Organization"), "org-123");
  EXPECT_EQ(oai->models, (std::vector<std::string>{"gpt-4o", "gpt-4o-mini"}));
  const ProviderConfig* local = c.FindProvider("local");
  EXPECT_EQ(local->threads, 2);
  EXPECT_EQ(local->max_queue, 8);
  EXPECT_EQ(local->max_batch, 16);
  EXPECT_EQ(local->kv_cache_mb, 512);
  EXPECT_EQ(local->compute, "bf16");
  EXPECT_EQ(local->kv_cache_dtype, "f16");
  EXPECT_EQ(local->step_tokens, 32);
  // Anything else is named with the two choices; only the local provider has the keys.
  auto bad = LoadConfigString(R"(
providers:
  local: { kind: local, model: m, compute: fp16, kv_cache_dtype: q8_0 }
  oai: { kind: openai, compute: bf16, kv_cache_dtype: f16 }
)",
                              FakeEnv({{"OPENAI_API_KEY", "k"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("providers.local.compute: expected exact"),
            std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("providers.oai.compute"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("providers.local.kv_cache_dtype: expected f32"),
            std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("providers.oai.kv_cache_dtype"), std::string::npos)
      << bad.status().message();
}

TEST(ConfigTest, SecurityLimitsImageFetchAndBrowserSettings) {
  auto r = LoadConfigString(R"(
server:
  allowed_hosts: [gw.example.com, "*.corp.example"]
  cors: { allow_origins: [https://app.example.com] }
  max_connections: 500
image_fetch: { enabled: true, allow_hosts: [img.example.com], allow_private: false,
               use_proxy: true, max_bytes: 1000000, max_per_request: 2, timeout_ms: 3000 }
limits: { max_images: 5, max_image_bytes: 1000, max_total_image_bytes: 2000,
          max_fallback_models: 2, max_provider_hints: 3, max_attempts: 4,
          max_stream_event_bytes: 65536, max_metric_models: 7, response_ttl_s: 0,
          max_conversation_bytes: 4096 }
providers:
  local: { kind: local, model: /m, max_images: 3, max_image_pixels: 1000000,
           max_request_pixels: 2000000 }
)",
                            FakeEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = **r;
  EXPECT_EQ(c.server.allowed_hosts.size(), 2u);
  EXPECT_EQ(c.server.cors.allow_origins.at(0), "https://app.example.com");
  EXPECT_EQ(c.server.max_connections, 500);
  EXPECT_TRUE(c.image_fetch.enabled);
  EXPECT_TRUE(c.image_fetch.use_proxy);
  EXPECT_FALSE(c.image_fetch.allow_private);
  EXPECT_EQ(c.image_fetch.max_per_request, 2);
  EXPECT_EQ(c.image_fetch.timeout.count(), 3000);
  EXPECT_EQ(c.limits.max_images, 5);
  EXPECT_EQ(c.limits.max_attempts, 4);
  EXPECT_EQ(c.limits.max_stream_event_bytes, 65536);
  EXPECT_EQ(c.limits.max_metric_models, 7);
  EXPECT_EQ(c.limits.response_ttl_s, 0);
  EXPECT_EQ(c.limits.max_conversation_bytes, 4096);
  EXPECT_EQ(c.providers.at(0).max_images, 3);
  EXPECT_EQ(c.providers.at(0).max_request_pixels, 2000000);

  // Defaults: fetching off, nothing private, every limit set.
  auto d = LoadConfigString("", FakeEnv({}));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE((*d)->image_fetch.enabled);
  EXPECT_FALSE((*d)->image_fetch.allow_private);
  EXPECT_EQ((*d)->limits.max_attempts, 10);
  EXPECT_EQ((*d)->limits.response_ttl_s, 30 * 24 * 3600);
  EXPECT_EQ((*d)->limits.max_conversation_bytes, 16 << 20);

  auto bad = LoadConfigString(R"(
image_fetch: { enabled: yes-please, max_bytes: 0 }
limits: { max_attempts: 0, max_pictures: 3, response_ttl_s: -1 }
providers: { openai: { kind: openai, max_images: 2 } }
)",
                              FakeEnv({{"OPENAI_API_KEY", "k"}}));
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  EXPECT_NE(m.find("image_fetch.enabled: expected true or false"), std::string::npos) << m;
  EXPECT_NE(m.find("image_fetch.max_bytes"), std::string::npos) << m;
  EXPECT_NE(m.find("limits.max_attempts"), std::string::npos) << m;
  EXPECT_NE(m.find("limits.max_pictures: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("limits.response_ttl_s"), std::string::npos) << m;
  EXPECT_NE(m.find("providers.openai.max_images: only for kind local"), std::string::npos) << m;
}

TEST(ConfigTest, GeminiFallsBackToGoogleApiKey) {
  auto r = LoadConfigString("providers: { gemini: { kind: gemini } }",
                            FakeEnv({{"GOOGLE_API_KEY", "g"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ProviderConfig* g = (*r)->FindProvider("gemini");
  EXPECT_TRUE(g->enabled);
  EXPECT_EQ(g->api_key, "g");
  EXPECT_EQ(g->api_key_env, "GOOGLE_API_KEY");

  auto none = LoadConfigString("providers: { gemini: { kind: gemini } }", FakeEnv({}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)->FindProvider("gemini")->disabled_reason,
            "GEMINI_API_KEY or GOOGLE_API_KEY not set");
}

TEST(ConfigTest, UnsetOrEmptyKeyDisablesTheProviderButIsNotAnError) {
  auto r = LoadConfigString(R"(
providers:
  openai: { kind: openai, api_key_env: MY_OPENAI_KEY }
  vllm: { kind: openai-compatible, base_url: http://10.0.0.5:8000/v1 }
models:
  m: { targets: [openai/gpt-4o, vllm/qwen] }
)",
                            FakeEnv({{"MY_OPENAI_KEY", ""}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ProviderConfig* openai = (*r)->FindProvider("openai");
  EXPECT_FALSE(openai->enabled);
  EXPECT_EQ(openai->disabled_reason, "MY_OPENAI_KEY not set");
  // An openai-compatible server without api_key_env needs no key and stays enabled.
  const ProviderConfig* vllm = (*r)->FindProvider("vllm");
  EXPECT_TRUE(vllm->enabled);
  EXPECT_TRUE(vllm->api_key.empty());
}

TEST(ConfigTest, EveryErrorIsReportedAtOnceWithPathAndLine) {
  const std::string errors = Errors(R"(server:
  listen: localhost
  thread: 4
providers:
  openai: { kind: openai }
  gemini: { kind: gemini }
  groq: { kind: openai-compatible, api_key_env: GROQ_API_KEY }
  x: { kind: opnai }
models:
  vision:
    targets: [openai/gpt-4o-mini, antropic/claude-haiku-4-5]
  balanced:
    strategy: weighted
    targets: [{ target: openai/gpt-4.1, weight: 0 },
              { target: gemini/gemini-2.5-flash, weight: -1 }]
)");
  EXPECT_CONTAINS(errors, ("iris.yaml: 7 errors"));
  EXPECT_CONTAINS(errors, ("iris.yaml:2: server.listen: bad listen address \"localhost\""));
  EXPECT_CONTAINS(errors, ("iris.yaml:3: server.thread: unknown key; did you mean \"threads\"?"));
  EXPECT_CONTAINS(errors,
                  ("iris.yaml:7: providers.groq.base_url: required for kind openai-compatible"));
  EXPECT_CONTAINS(errors, ("iris.yaml:8: providers.x.kind: unknown kind \"opnai\" (one of: "
                           "openai, anthropic, gemini, mistral, openai-compatible, local)"));
  EXPECT_CONTAINS(errors, ("did you mean \"openai\"?"));
  EXPECT_CONTAINS(errors, ("iris.yaml:11: models.vision.targets[1]: unknown provider "
                           "\"antropic\" (configured: openai, gemini, groq, x)"));
  EXPECT_CONTAINS(errors, ("models.balanced.targets[0].weight: weights must be > 0"));
  EXPECT_CONTAINS(errors, ("models.balanced.targets[1].weight: weights must be > 0"));
  // Sorted by line.
  EXPECT_LT(errors.find("server.listen"), errors.find("providers.groq"));
  EXPECT_LT(errors.find("providers.x"), errors.find("models.vision"));
}

TEST(ConfigTest, LiteralSecretsAreRejected) {
  const std::string errors = Errors(R"(
providers:
  openai: { kind: openai, api_key: sk-proj-abcdefghijklmnop }
  anthropic: { kind: anthropic, api_key_env: sk-ant-abcdefghijklmnopqrstu }
  groq:
    kind: openai-compatible
    base_url: https://api.groq.com/openai/v1
    headers: { Authorization: Bearer sk-abcdefghijklmnopqrst }
)");
  EXPECT_CONTAINS(errors, ("iris.yaml:3: providers.openai.api_key: secrets are referenced by "
                           "environment variable: use api_key_env"));
  EXPECT_CONTAINS(errors, ("iris.yaml:4: providers.anthropic.api_key_env: this looks like a "
                           "key, not a variable name"));
  EXPECT_CONTAINS(errors, ("providers.groq.headers.Authorization: secrets are referenced"));
  // The secret itself is never echoed back.
  EXPECT_EQ(errors.find("abcdefghijklmnop"), std::string::npos) << errors;
}

TEST(ConfigTest, BaseUrlWithoutHostIsAnError) {
  const std::string errors = Errors(R"(
providers:
  a: { kind: openai-compatible, base_url: "https://" }
  b: { kind: openai-compatible, base_url: "http:////" }
  c: { kind: openai-compatible, base_url: "http://h/" }
)");
  EXPECT_CONTAINS(errors, ("providers.a.base_url: has no host, got \"https://\""));
  EXPECT_CONTAINS(errors, ("providers.b.base_url: has no host"));
  EXPECT_EQ(errors.find("providers.c"), std::string::npos) << errors;
}

TEST(ConfigTest, HeadersTheClientCannotSendAreErrors) {
  const std::string errors = Errors(R"(
providers:
  groq:
    kind: openai-compatible
    base_url: https://api.groq.com/openai/v1
    headers: { X-Ok: "a\tb", X-Nul: "a\0b", X-Ctl: "a\x01b", X-Del: "a\x7fb" }
)");
  EXPECT_EQ(errors.find("X-Ok"), std::string::npos) << errors;
  for (const char* name : {"X-Nul", "X-Ctl", "X-Del"}) {
    EXPECT_CONTAINS(errors, ("providers.groq.headers." + std::string(name) +
                             ": header values may not contain line breaks or other control "
                             "characters"));
  }
}

TEST(ConfigTest, WrongTypesAreErrors) {
  const std::string errors = Errors(R"(
server: { threads: many, max_body_bytes: [1] }
providers:
  openai: { kind: openai, models: gpt-4o }
  local: { kind: local }
  list: [1, 2]
models:
  a: { targets: openai/gpt-4o }
  b: { targets: [gpt-4o], retries: 99 }
  c: { strategy: random, targets: [openai/x] }
  d: { targets: [{ target: openai/x, weight: 2 }] }
routing: { breaker: { failure_threshold: 0 } }
pricing:
  gpt-x: { input_per_mtok: cheap }
store: redis://x
)");
  EXPECT_CONTAINS(errors, ("server.threads: expected an integer, got \"many\""));
  EXPECT_CONTAINS(errors, ("server.max_body_bytes: expected an integer, got a list"));
  EXPECT_CONTAINS(errors, ("providers.openai.models: expected a list of strings"));
  EXPECT_CONTAINS(errors, ("providers.local.model: required for kind local"));
  EXPECT_CONTAINS(errors, ("providers.list: expected a map, got a list"));
  EXPECT_CONTAINS(errors, ("models.a.targets: expected a non-empty list"));
  EXPECT_CONTAINS(errors, ("models.b.targets[0]: expected \"provider/model\", got \"gpt-4o\""));
  EXPECT_CONTAINS(errors, ("models.b.retries: must be between 0 and 10, got 99"));
  EXPECT_CONTAINS(errors, ("models.c.strategy: unknown strategy \"random\""));
  EXPECT_CONTAINS(errors, ("models.d.targets[0].weight: only used with strategy: weighted"));
  EXPECT_CONTAINS(errors, ("routing.breaker.failure_threshold: must be between 1 and 1000"));
  EXPECT_CONTAINS(errors, ("pricing.gpt-x.input_per_mtok: expected a number"));
  EXPECT_CONTAINS(errors, ("pricing.gpt-x.output_per_mtok: required"));
  EXPECT_CONTAINS(errors, ("store: unknown store \"redis://\""));
}

TEST(ConfigTest, UnknownKeysEverywhereWithSuggestions) {
  const std::string errors = Errors(R"(
sever: { listen: ":80" }
providers:
  openai: { kind: openai, base_ulr: https://x }
  local: { kind: local, model: m, base_url: https://x }
models:
  a: { targtes: [openai/x] }
  b: { targets: [openai/x], timeouts: { conect_ms: 5 } }
)");
  EXPECT_CONTAINS(errors, ("iris.yaml:2: sever: unknown key; did you mean \"server\"?"));
  EXPECT_CONTAINS(errors, ("providers.openai.base_ulr: unknown key; did you mean \"base_url\"?"));
  EXPECT_CONTAINS(errors, ("providers.local.base_url: not used by kind local"));
  EXPECT_CONTAINS(errors, ("models.a.targtes: unknown key; did you mean \"targets\"?"));
  EXPECT_CONTAINS(errors, ("models.a.targets: required"));
  EXPECT_CONTAINS(errors,
                  ("models.b.timeouts.conect_ms: unknown key; did you mean \"connect_ms\"?"));
}

TEST(ConfigTest, LocalAdaptersAreNamedDirectoriesOrRepos) {
  auto r = LoadConfigString(R"(
providers:
  local:
    kind: local
    model: /m
    adapters: { receipts: /adapters/receipts, charts-v2: org/charts-lora@v2 }
)",
                            FakeEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& adapters = (*r)->providers.at(0).adapters;
  ASSERT_EQ(adapters.size(), 2u);
  EXPECT_EQ(adapters.at("receipts"), "/adapters/receipts");
  EXPECT_EQ(adapters.at("charts-v2"), "org/charts-lora@v2");
  const std::string errors = Errors(R"(
providers:
  openai: { kind: openai, adapters: { a: /x } }
  local: { kind: local, model: m, adapters: { "a:b": /x, empty: "", list: [1] } }
)");
  EXPECT_CONTAINS(errors, ("providers.openai.adapters: only for kind local"));
  EXPECT_CONTAINS(errors, ("providers.local.adapters.a:b: adapter names use letters"));
  EXPECT_CONTAINS(errors, ("providers.local.adapters.empty: an adapter directory"));
  EXPECT_CONTAINS(errors, ("providers.local.adapters.list:"));
  // Routes may name an adapter only if it is configured.
  const std::string routes = Errors(R"(
providers:
  local: { kind: local, model: m, adapters: { receipts: /a } }
models:
  ok: { targets: [local/smolvlm2:receipts] }
  typo: { targets: [local/smolvlm2:reciepts] }
)");
  EXPECT_CONTAINS(routes, ("unknown adapter \"reciepts\" of provider local (configured under "
                           "providers.local.adapters: receipts); did you mean \"receipts\"?"));
  EXPECT_EQ(routes.find("models.ok"), std::string::npos) << routes;
}

TEST(ConfigTest, DuplicateKeysAndNameClashes) {
  const std::string errors = Errors(R"(
providers:
  openai: { kind: openai }
  openai: { kind: openai }
  "a/b": { kind: openai }
models:
  openai: { targets: [openai/gpt-4o] }
)");
  EXPECT_CONTAINS(errors, ("iris.yaml:4: providers.openai: duplicate key"));
  EXPECT_CONTAINS(errors, ("providers.a/b: provider names use letters"));
  EXPECT_CONTAINS(errors, ("models.openai: an alias may not share a provider's name"));
}

TEST(ConfigTest, TimeoutsThatCannotHold) {
  const std::string errors = Errors(R"(
providers: { openai: {} }
models:
  a: { targets: [openai/x], timeouts: { first_token_ms: 90000, total_ms: 60000 } }
)");
  EXPECT_CONTAINS(errors, ("models.a.timeouts: first_token_ms (90000) exceeds total_ms (60000)"));
}

TEST(ConfigTest, YamlSyntaxErrorHasLineAndColumn) {
  auto r = LoadConfigString("providers:\n  openai: { kind: openai\n", FakeEnv({}), "my.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.status().message(), ("my.yaml:"));
  EXPECT_CONTAINS(r.status().message(), ("YAML syntax error"));
}

TEST(ConfigTest, ListenAddresses) {
  auto a = ParseListenAddress("0.0.0.0:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 80);
  auto b = ParseListenAddress("[::1]:8443");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 8443);
  auto c = ParseListenAddress(":0");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "0.0.0.0");
  EXPECT_EQ(c->port, 0);
  auto d = ParseListenAddress("localhost:65535");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "localhost");
  for (const char* bad : {"8080", "host:", "host:65536", "host:-1", "host:80x", "::1:80", "[::1]80",
                          "[::1", "[abc.example]:80", "a b:80", ""}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

TEST(ConfigTest, FromEnvironment) {
  auto r = ConfigFromEnvironment(
      FakeEnv({{"ANTHROPIC_API_KEY", "a"}, {"GOOGLE_API_KEY", "g"}, {"MISTRAL_API_KEY", ""}}),
      "/models/smol");
  ASSERT_TRUE(r.ok());
  const Config& c = **r;
  ASSERT_EQ(c.providers.size(), 3u);
  EXPECT_EQ(c.providers[0].name, "anthropic");
  EXPECT_EQ(c.providers[0].api_key, "a");
  EXPECT_EQ(c.providers[0].base_url, "https://api.anthropic.com/v1");
  EXPECT_EQ(c.providers[1].name, "gemini");
  EXPECT_EQ(c.providers[1].api_key_env, "GOOGLE_API_KEY");
  EXPECT_EQ(c.providers[2].name, "local");
  EXPECT_EQ(c.providers[2].model, "/models/smol");
  EXPECT_TRUE(c.models.empty());

  auto bare = ConfigFromEnvironment(FakeEnv({}), "");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE((*bare)->providers.empty());
}

TEST(ConfigTest, LoadFile) {
  const std::string path = ::testing::TempDir() + "/iris_config_test.yaml";
  {
    std::ofstream out(path);
    out << "providers:\n  openai: { kind: opnai }\n";
  }
  auto r = LoadConfigFile(path, FakeEnv({}));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.status().message(), (path + ":2: providers.openai.kind: unknown kind"));
  std::remove(path.c_str());
  auto missing = LoadConfigFile(path, FakeEnv({}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace iris::gateway::config

namespace iris::gateway::config {
namespace {

TEST(ConfigAuthTest, AuthStateAndTheirDefaults) {
  auto d = LoadConfigString("", FakeEnv({}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->auth.mode, AuthMode::kAuto);
  EXPECT_EQ((*d)->auth.master_key_env, "IRIS_MASTER_KEY");
  EXPECT_EQ((*d)->auth.lease.count(), 500);
  EXPECT_TRUE((*d)->auth.master_key.empty());
  EXPECT_EQ((*d)->state_failure, StateFailure::kClosed);

  auto r = LoadConfigString(R"(
auth:
  mode: keys
  master_key_env: GW_ADMIN
  default_max_tokens: 1000
  key_refresh_ms: 250
  lease_ms: 200
  model_limits:
    gpt-4o: { rpm: 60, tpm: 100000 }
state: redis://127.0.0.1:6379/0
state_failure: open
)",
                            FakeEnv({{"GW_ADMIN", "0123456789abcdef0123"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = **r;
  EXPECT_EQ(c.auth.mode, AuthMode::kKeys);
  EXPECT_EQ(c.auth.master_key, "0123456789abcdef0123");
  EXPECT_EQ(c.auth.default_max_tokens, 1000);
  EXPECT_EQ(c.auth.key_refresh.count(), 250);
  EXPECT_EQ(c.auth.lease.count(), 200);
  EXPECT_EQ(c.auth.model_limits.at("gpt-4o").rpm, 60);
  EXPECT_EQ(c.auth.model_limits.at("gpt-4o").tpm, 100000);
  EXPECT_EQ(c.state, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.state_failure, StateFailure::kOpen);
}

TEST(ConfigAuthTest, MistakesAreNamed) {
  const std::string e = Errors(R"(
auth:
  mode: sometimes
  reservation_ttl_ms: 60000
  lease_ms: 40000
  model_limits:
    m: { rpm: -1, burst: 3 }
state: memcached://x
state_failure: maybe
)");
  EXPECT_NE(e.find("auth.mode: expected auto, keys or none"), std::string::npos) << e;
  EXPECT_NE(e.find("auth.lease_ms: expected at most 60000 and at most half of "
                   "auth.reservation_ttl_ms (60000)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("auth.model_limits.m.rpm"), std::string::npos) << e;
  EXPECT_NE(e.find("burst"), std::string::npos) << e;
  EXPECT_NE(e.find("state: expected redis://"), std::string::npos) << e;
  EXPECT_NE(e.find("state_failure: expected closed or open"), std::string::npos) << e;
  // The default lease against a short reservation ttl set alone.
  const std::string t = Errors("auth: { reservation_ttl_ms: 600 }\n");
  EXPECT_NE(t.find("auth.lease_ms: expected at most 60000 and at most half"), std::string::npos)
      << t;
  // A short master key is refused, whether from a file or the environment alone.
  const std::string s = Errors("", FakeEnv({{"IRIS_MASTER_KEY", "short"}}));
  EXPECT_NE(s.find("shorter than 16 characters"), std::string::npos) << s;
  EXPECT_FALSE(ConfigFromEnvironment(FakeEnv({{"IRIS_MASTER_KEY", "short"}}), "").ok());
}

TEST(ConfigAuthTest, LoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("::ffff:127.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("example.com"));
}

}  // namespace
}  // namespace iris::gateway::config

namespace iris::gateway::config {
namespace {

TEST(ConfigTest, StoreBodiesAndTheOperatorsSecrets) {
  auto r = LoadConfigString(
      R"(
providers:
  openai: { kind: openai, api_key_env: OAI }
  custom:
    kind: openai-compatible
    base_url: https://llm.example.com/v1
    headers: { X-Api-Version: 2024-01-01, X-Tenant-Token: tenant-0123456789 }
models:
  vision: { targets: [openai/gpt-4o-mini], store_bodies: true }
  chat: { targets: [openai/gpt-4o-mini] }
limits: { max_stored_body_bytes: 4096 }
)",
      FakeEnv({{"OAI", "provider-key-0123456789"}, {"MK", "master-0123456789abc"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->FindAlias("vision")->store_bodies);
  EXPECT_FALSE((*r)->FindAlias("chat")->store_bodies);  // off unless asked
  EXPECT_EQ((*r)->limits.max_stored_body_bytes, 4096);
  std::vector<std::string> secrets = OperatorSecrets(**r);
  std::sort(secrets.begin(), secrets.end());
  // The key and the token header; not the version date (it is no secret).
  EXPECT_EQ(secrets, (std::vector<std::string>{"provider-key-0123456789", "tenant-0123456789"}));
  EXPECT_NE(Errors("models:\n  v: { targets: [openai/x], store_bodies: yes please }\n")
                .find("models.v.store_bodies"),
            std::string::npos);
}

}  // namespace
}  // namespace iris::gateway::config
