// Turns a request's model name (an alias, provider/model or a bare model id) plus its routing hints
// into the ordered list of upstream targets to try. Pure: no I/O, no clock; the weighted choice
// draws from a caller-owned RNG so tests are deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/config/config.h"

namespace iris::gateway::routing {

// One per worker thread (not thread-safe); seed it in tests.
using Rng = std::mt19937_64;

// A uniform double in [0, 1) from 53 random bits, the same on every standard library.
double UniformUnit(Rng& rng);

// Index i with probability weights[i] / sum(weights). Weights must be >= 0 with a positive sum
// (config validation guarantees > 0); returns 0 for an empty or all-zero span.
size_t PickWeighted(std::span<const double> weights, Rng& rng);

// The provider kind a bare model id belongs to, by its well-known prefix (the provider table).
using providers::KindForModelId;

struct Target {
  std::string provider;  // the configured provider's name
  config::ProviderKind kind = config::ProviderKind::kOpenAI;
  std::string model;  // the upstream model id to send
  // Points into the Config the plan was made from: valid while that snapshot is alive (the
  // proxy holds its shared_ptr for the whole request).
  const config::ProviderConfig* provider_config = nullptr;

  // "provider/model": the key of this target's circuit breaker and metrics.
  std::string Key() const { return provider + "/" + model; }
};

struct Plan {
  std::vector<Target> targets;  // in the order to try; never empty in a returned plan
  int retries_per_target = 2;
  config::Timeouts timeouts;
  std::string alias;  // the alias the request named; empty when it named a model directly
  // Targets left out and why ("openai (OPENAI_API_KEY not set)"), for the request log.
  std::vector<std::string> skipped;
};

// Plans `request.model` then each of `request.routing.models` (deduplicated), resolving each name:
//  1. an alias → its targets (weighted: the first drawn by weight, the rest by descending weight);
//  2. "provider/model" with a configured provider name → that provider;
//  3. an id some provider lists under `models` → those providers, in config order;
//  4. "kind/model" (openai/, anthropic/, gemini/ or google/, mistral/, local/) → providers of
//     that kind;
//  5. a bare id with a known prefix (KindForModelId) → providers of that kind.
// Then, within each requested name's targets, `routing.order` (provider or kind names) moves those
// providers first in that order, and `routing.only` drops every other provider. Disabled
// providers are dropped with their reason. Retries and timeouts come from the primary alias, else
// the config's defaults.
// Errors: kInvalidArgument for an empty model or when `only` removed every enabled target;
// kNotFound for a name that resolves to nothing (the message lists aliases and providers);
// kUnavailable when every target's provider is disabled ("no enabled target for model vision:
// openai (OPENAI_API_KEY not set), ...").
Result<Plan> PlanRoute(const config::Config& config, const ChatRequest& request, Rng& rng);

}  // namespace iris::gateway::routing
