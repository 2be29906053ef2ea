// Route planning: name resolution, weighted first pick, order/only hints and the reasons every
// dropped target was dropped, so "no target" errors say what to fix.
#include "gateway/routing/plan.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <set>
#include <utility>

namespace iris::gateway::routing {
namespace {

using config::Config;
using config::ModelAlias;
using config::ProviderConfig;
using config::ProviderKind;

struct Candidate {
  const ProviderConfig* provider = nullptr;
  std::string model;
  double weight = 1.0;
};

std::vector<Candidate> ProvidersOfKind(const Config& config, ProviderKind kind,
                                       std::string_view model) {
  std::vector<Candidate> out;
  for (const ProviderConfig& p : config.providers) {
    if (p.kind == kind) out.push_back({&p, std::string(model)});
  }
  return out;
}

std::vector<Candidate> AliasCandidates(const Config& config, const ModelAlias& alias, Rng& rng) {
  std::vector<Candidate> out;
  for (const config::AliasTarget& t : alias.targets) {
    const ProviderConfig* p = config.FindProvider(t.provider);
    if (p != nullptr) out.push_back({p, t.model, t.weight});
  }
  if (alias.strategy == config::Strategy::kWeighted && out.size() > 1) {
    std::vector<double> weights;
    for (const Candidate& c : out) weights.push_back(c.weight);
    const size_t first = PickWeighted(weights, rng);
    std::rotate(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(first),
                out.begin() + static_cast<std::ptrdiff_t>(first) + 1);
    std::stable_sort(out.begin() + 1, out.end(),
                     [](const Candidate& a, const Candidate& b) { return a.weight > b.weight; });
  }
  return out;
}

std::string NotFoundMessage(const Config& config, std::string_view name) {
  std::string aliases;
  for (const ModelAlias& a : config.models) aliases += (aliases.empty() ? "" : ", ") + a.name;
  std::string providers;
  for (const ProviderConfig& p : config.providers) {
    providers += (providers.empty() ? "" : ", ") + p.name;
  }
  return "unknown model \"" + std::string(name) + "\": not an alias (" +
         (aliases.empty() ? "none configured" : aliases) +
         "), not provider/model with a configured provider (" +
         (providers.empty() ? "none configured" : providers) +
         "), and no provider lists it or matches its prefix";
}

// The candidates one requested name stands for; `alias_out` is set when it named an alias.
Result<std::vector<Candidate>> Resolve(const Config& config, std::string_view name, Rng& rng,
                                       const ModelAlias** alias_out) {
  if (const ModelAlias* alias = config.FindAlias(name)) {
    if (alias_out != nullptr) *alias_out = alias;
    return AliasCandidates(config, *alias, rng);
  }
  const size_t slash = name.find('/');
  if (slash != std::string_view::npos && slash > 0 && slash + 1 < name.size()) {
    if (const ProviderConfig* p = config.FindProvider(name.substr(0, slash))) {
      return std::vector<Candidate>{{p, std::string(name.substr(slash + 1))}};
    }
  }
  std::vector<Candidate> listed;
  for (const ProviderConfig& p : config.providers) {
    if (std::find(p.models.begin(), p.models.end(), name) != p.models.end()) {
      listed.push_back({&p, std::string(name)});
    }
  }
  if (!listed.empty()) return listed;
  if (slash != std::string_view::npos && slash > 0 && slash + 1 < name.size()) {
    if (auto kind = providers::KindForSegment(name.substr(0, slash))) {
      auto of_kind = ProvidersOfKind(config, *kind, name.substr(slash + 1));
      if (!of_kind.empty()) return of_kind;
    }
  }
  if (auto kind = KindForModelId(name)) {
    auto of_kind = ProvidersOfKind(config, *kind, name);
    if (!of_kind.empty()) return of_kind;
  }
  return NotFound(NotFoundMessage(config, name));
}

bool NamedIn(const std::vector<std::string>& names, const ProviderConfig& p) {
  for (const std::string& n : names) {
    if (n == p.name || n == config::ProviderKindName(p.kind)) return true;
  }
  return false;
}

// Position of `p` in `order` (by name or kind); order.size() when absent.
size_t OrderRank(const std::vector<std::string>& order, const ProviderConfig& p) {
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] == p.name || order[i] == config::ProviderKindName(p.kind)) return i;
  }
  return order.size();
}

void AddReason(std::vector<std::string>& reasons, std::string reason) {
  if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
    reasons.push_back(std::move(reason));
  }
}

}  // namespace

double UniformUnit(Rng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

size_t PickWeighted(std::span<const double> weights, Rng& rng) {
  double total = 0;
  for (double w : weights) total += std::max(w, 0.0);
  if (weights.empty() || total <= 0) return 0;
  const double x = UniformUnit(rng) * total;
  double acc = 0;
  size_t last_positive = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    acc += weights[i];
    last_positive = i;
    if (x < acc) return i;
  }
  return last_positive;  // rounding left x == total
}

Result<Plan> PlanRoute(const Config& config, const ChatRequest& request, Rng& rng) {
  if (request.model.empty()) return InvalidArgument("model is required");
  const RoutingHints& hints = request.routing;

  Plan plan;
  plan.retries_per_target = config.default_retries;
  plan.timeouts = config.default_timeouts;

  std::set<std::string, std::less<>> seen;  // target keys already planned
  std::vector<std::string> reasons;         // why targets were dropped, for the error message
  bool only_removed_enabled = false;

  std::vector<std::string> names = {request.model};
  names.insert(names.end(), hints.models.begin(), hints.models.end());
  for (size_t n = 0; n < names.size(); ++n) {
    const std::string& name = names[n];
    if (name.empty()) {
      return InvalidArgument("routing.models[" + std::to_string(n - 1) + "] is empty");
    }
    const ModelAlias* alias = nullptr;
    Result<std::vector<Candidate>> resolved = Resolve(config, name, rng, &alias);
    if (!resolved.ok()) {
      if (n == 0) return resolved.status();
      return Status(resolved.status().code(), "routing.models[" + std::to_string(n - 1) +
                                                  "]: " + resolved.status().message());
    }
    if (n == 0 && alias != nullptr) {
      plan.alias = alias->name;
      plan.retries_per_target = alias->retries;
      plan.timeouts = alias->timeouts;
    }
    std::vector<Candidate> candidates = std::move(resolved).value();
    if (!hints.order.empty()) {
      std::stable_sort(
          candidates.begin(), candidates.end(), [&](const Candidate& a, const Candidate& b) {
            return OrderRank(hints.order, *a.provider) < OrderRank(hints.order, *b.provider);
          });
    }
    for (Candidate& c : candidates) {
      const ProviderConfig& p = *c.provider;
      if (!p.enabled) {
        AddReason(reasons, p.name + " (" + p.disabled_reason + ")");
        continue;
      }
      if (!hints.only.empty() && !NamedIn(hints.only, p)) {
        AddReason(reasons, p.name + " (not in routing.only)");
        only_removed_enabled = true;
        continue;
      }
      Target t;
      t.provider = p.name;
      t.kind = p.kind;
      t.model = std::move(c.model);
      t.provider_config = &p;
      if (!seen.insert(t.Key()).second) continue;
      plan.targets.push_back(std::move(t));
    }
  }
  plan.skipped = reasons;

  if (plan.targets.empty()) {
    std::string message = "no enabled target for model " + request.model;
    for (size_t i = 1; i < names.size(); ++i) message += (i == 1 ? " (or " : ", ") + names[i];
    if (names.size() > 1) message += ")";
    message += ": ";
    for (size_t i = 0; i < reasons.size(); ++i) message += (i > 0 ? ", " : "") + reasons[i];
    if (reasons.empty()) message += "the route has no targets";
    if (only_removed_enabled) return InvalidArgument(std::move(message));
    return Status(ErrorCode::kUnavailable, std::move(message));
  }
  return plan;
}

}  // namespace iris::gateway::routing
