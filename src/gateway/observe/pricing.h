// List prices and the cost of one call, computed from the usage the provider reported.
// The built-in table is a dated seed (reference: protocols.md §7); iris.yaml overrides and
// extends it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/api/chat.h"

namespace iris::gateway::observe {

// USD per million tokens. Unset cached/cache-write prices fall back to the input price
// (providers that do not discount cache reads bill them as input), except where the model's
// family has a rule (Anthropic's multipliers: pricing.cc's FillFamilyRules).
struct Price {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
  std::optional<double> cached_input_per_mtok;
  std::optional<double> cache_write_per_mtok;
  // Anthropic's one-hour cache writes (2x input); unset: the cache-write price.
  std::optional<double> cache_write_1h_per_mtok;
  // USD per 1,000 web searches (Usage::web_searches); unset: searches are not priced, and the
  // caller is told (the cost then counts only the tokens).
  std::optional<double> web_search_per_1k;
  // Long-context tier (Gemini Pro): the whole request is billed at these rates when the
  // prompt exceeds `long_context_threshold` tokens.
  int64_t long_context_threshold = 0;  // 0: no tier
  double long_input_per_mtok = 0;
  double long_output_per_mtok = 0;
};

struct PriceEntry {
  std::string model;  // API model id; a dated variant ("gpt-4o-mini-2024-07-18") matches it
  Price price;
};

// The date the built-in table was last checked against the providers' pages.
inline constexpr std::string_view kPriceTableDate = "2026-09-20";

class PriceTable {
 public:
  // The built-in table plus `overrides` (an override replaces a built-in entry of the same
  // model id); the prices an entry leaves out follow its family's rules where there are some.
  explicit PriceTable(const std::vector<PriceEntry>& overrides = {});

  // The price for `model`: an exact id, else the longest listed id that `model` starts
  // with followed by '-' (dated snapshots); then the same for `model` without its first
  // "provider/" segment; else nullopt. (A model id may hold slashes of its own:
  // "meta-llama/Llama-3.3-70B", "local/HuggingFaceTB/SmolVLM2-256M-Video-Instruct".)
  std::optional<Price> Find(std::string_view model) const;
  // An exact id only.
  std::optional<Price> FindExact(std::string_view model) const;

  const std::vector<PriceEntry>& entries() const { return entries_; }

 private:
  std::vector<PriceEntry> entries_;
};

// Cost in USD of one call; nullopt when the model has no price (unknown, not free).
// Usage follows chat.h: input_tokens includes cached and cache-write tokens, output_tokens
// includes reasoning tokens (every provider bills reasoning as output). Web searches count
// only at a known price (PricesWebSearches).
std::optional<double> CostUsd(const Price& price, const Usage& usage);

// Whether CostUsd counts `usage`'s web searches (none made, or a price for them).
inline bool PricesWebSearches(const Price& price, const Usage& usage) {
  return usage.web_searches == 0 || price.web_search_per_1k.has_value();
}

}  // namespace iris::gateway::observe
