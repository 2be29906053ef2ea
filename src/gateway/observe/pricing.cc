// The built-in price table and the cost arithmetic.
#include "gateway/observe/pricing.h"

#include <algorithm>
#include <cmath>

namespace iris::gateway::observe {
namespace {

PriceEntry E(std::string model, double in, double out, std::optional<double> cached = {},
             std::optional<double> write = {}) {
  PriceEntry e;
  e.model = std::move(model);
  e.price.input_per_mtok = in;
  e.price.output_per_mtok = out;
  e.price.cached_input_per_mtok = cached;
  e.price.cache_write_per_mtok = write;
  return e;
}

std::vector<PriceEntry> BuiltIn() {
  std::vector<PriceEntry> t = {
      // OpenAI: cached input at the listed discount; cache writes are free (billed as input).
      E("gpt-4o", 2.50, 10.00, 1.25),
      E("gpt-4o-mini", 0.15, 0.60, 0.075),
      E("gpt-4.1", 2.00, 8.00, 0.50),
      E("gpt-5.4", 2.50, 15.00, 0.25),
      E("gpt-5.4-mini", 0.75, 4.50),
      E("gpt-5.5", 5.00, 30.00),
      // Anthropic: cache reads 0.1x input, 5-minute cache writes 1.25x input.
      E("claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75),
      E("claude-sonnet-4-6", 3.00, 15.00, 0.30, 3.75),
      E("claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25),
      E("claude-opus-4-5", 5.00, 25.00, 0.50, 6.25),
      // Gemini: output covers thinking tokens.
      E("gemini-2.5-flash", 0.30, 2.50),
      E("gemini-2.5-pro", 1.25, 10.00),
      E("gemini-3.1-pro-preview", 2.00, 12.00),
      // Mistral: flat input/output.
      E("mistral-large-2512", 0.50, 1.50),
      E("mistral-large-latest", 0.50, 1.50),
      E("mistral-large-2411", 2.00, 6.00),
      E("mistral-small-latest", 0.10, 0.30),
      // Embeddings: input only.
      E("text-embedding-3-small", 0.02, 0),
      E("text-embedding-3-large", 0.13, 0),
      E("text-embedding-ada-002", 0.10, 0),
      E("gemini-embedding-001", 0.15, 0),
      E("mistral-embed", 0.10, 0),
  };
  for (PriceEntry& e : t) {
    if (e.model == "gemini-2.5-pro") {
      e.price.long_context_threshold = 200000;
      e.price.long_input_per_mtok = 2.50;
      e.price.long_output_per_mtok = 15.00;
    }
  }
  return t;
}

// What a provider's price sheet says for every model of its family, where an entry leaves it
// out (the built-in rows, or an iris.yaml price giving only input and output):
// - Anthropic: cache reads 0.1x input, five-minute writes 1.25x, one-hour writes 2x; its web
//   search tool $10 per 1,000 searches (protocols.md §7).
// - OpenAI: the Responses API's web_search tool, $10 per 1,000 calls (its pricing page; the
//   older web_search_preview on non-reasoning models bills $25, an iris.yaml price). Its cache
//   discount differs by model and is not derived.
void FillFamilyRules(PriceEntry& e) {
  std::string_view model = e.model;
  if (size_t slash = model.find('/'); slash != std::string_view::npos) {
    model.remove_prefix(slash + 1);
  }
  Price& p = e.price;
  if (model.starts_with("claude-")) {
    if (!p.cached_input_per_mtok) p.cached_input_per_mtok = 0.1 * p.input_per_mtok;
    if (!p.cache_write_per_mtok) p.cache_write_per_mtok = 1.25 * p.input_per_mtok;
    if (!p.cache_write_1h_per_mtok) p.cache_write_1h_per_mtok = 2 * p.input_per_mtok;
    if (!p.web_search_per_1k) p.web_search_per_1k = 10.00;
  }
  if (model.starts_with("gpt-") && !p.web_search_per_1k) p.web_search_per_1k = 10.00;
}

}  // namespace

PriceTable::PriceTable(const std::vector<PriceEntry>& overrides) : entries_(BuiltIn()) {
  for (const PriceEntry& o : overrides) {
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const PriceEntry& e) { return e.model == o.model; });
    if (it != entries_.end()) {
      *it = o;
    } else {
      entries_.push_back(o);
    }
  }
  for (PriceEntry& e : entries_) FillFamilyRules(e);
}

std::optional<Price> PriceTable::Find(std::string_view model) const {
  auto lookup = [this](std::string_view id) -> std::optional<Price> {
    const PriceEntry* best = nullptr;
    for (const PriceEntry& e : entries_) {
      if (e.model == id) return e.price;
      if (id.size() > e.model.size() && id.substr(0, e.model.size()) == e.model &&
          id[e.model.size()] == '-' && (!best || e.model.size() > best->model.size())) {
        best = &e;
      }
    }
    if (best) return best->price;
    return std::nullopt;
  };
  if (std::optional<Price> p = lookup(model)) return p;
  if (size_t slash = model.find('/'); slash != std::string_view::npos) {
    return lookup(model.substr(slash + 1));
  }
  return std::nullopt;
}

std::optional<Price> PriceTable::FindExact(std::string_view model) const {
  for (const PriceEntry& e : entries_) {
    if (e.model == model) return e.price;
  }
  return std::nullopt;
}

std::optional<double> CostUsd(const Price& price, const Usage& usage) {
  double in = price.input_per_mtok;
  double out = price.output_per_mtok;
  if (price.long_context_threshold > 0 && usage.input_tokens > price.long_context_threshold) {
    in = price.long_input_per_mtok;
    out = price.long_output_per_mtok;
  }
  const double cached = price.cached_input_per_mtok.value_or(in);
  const double write = price.cache_write_per_mtok.value_or(in);
  const double write_1h = price.cache_write_1h_per_mtok.value_or(write);
  const int64_t uncached = std::max<int64_t>(
      0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens);
  const int64_t written_1h = std::clamp<int64_t>(usage.cache_write_1h_tokens, 0,
                                                 std::max<int64_t>(0, usage.cache_write_tokens));
  // tokens x USD-per-million = micro-dollars; searches x USD-per-thousand x 1000 too.
  double micro =
      static_cast<double>(uncached) * in + static_cast<double>(usage.cached_input_tokens) * cached +
      static_cast<double>(usage.cache_write_tokens - written_1h) * write +
      static_cast<double>(written_1h) * write_1h + static_cast<double>(usage.output_tokens) * out;
  if (price.web_search_per_1k && usage.web_searches > 0) {
    micro += static_cast<double>(usage.web_searches) * *price.web_search_per_1k * 1000;
  }
  // Rounded to a millionth of a micro-dollar: the sum's float noise (3.2000000000000003e-06)
  // never shows in a body, a log row or a bill.
  return std::round(micro * 1e6) / 1e12;
}

}  // namespace iris::gateway::observe
