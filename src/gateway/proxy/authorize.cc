// Who may make this call and how much it may spend (gateway/access enforces, this stage asks):
// Authorize runs after Decode (the model is known and checked) and before Plan; Admit after
// Plan (the targets' prices bound the worst case); Settle from Finish, on every path.
#include <algorithm>
#include <boost/asio/this_coro.hpp>

#include "gateway/providers/translator.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

std::optional<GatewayError> Call::Authorize() {
  access::Access* access = gw_.options_.access;
  if (access == nullptr) return std::nullopt;
  if (auto refused = access->Identify(http_req_.headers, caller_)) return refused;
  summary_.caller_key = caller_.key_id();
  // Every model the request may route to: its own and its fallback list.
  std::vector<std::string> models{req_.model};
  models.insert(models.end(), req_.routing.models.begin(), req_.routing.models.end());
  return access->Permit(caller_, models);
}

boost::asio::awaitable<std::optional<GatewayError>> Call::Admit() {
  access::Access* access = gw_.options_.access;
  if (access == nullptr) co_return std::nullopt;
  executor_ = co_await boost::asio::this_coro::executor;  // (Settle tells the state from it)
  access::AdmitRequest r;
  r.model = req_.model;
  r.request_id = summary_.request_id;
  const int64_t prompt =
      embed_ ? access::EstimateEmbeddingTokens(*embed_) : access::EstimatePromptTokens(req_);
  // (A thinking budget can come on top of max_tokens: see the Anthropic translator.)
  const int64_t output =
      embed_ ? 0
             : req_.max_tokens.value_or(config_->auth.default_max_tokens) +
                   std::max<int64_t>(0, providers::RequestedThinkingBudget(req_).value_or(0));
  r.estimated_tokens = prompt + output;
  // The worst case over the plan's targets (an unpriced one costs nothing known).
  Usage worst;
  worst.reported = true;
  worst.input_tokens = prompt;
  worst.output_tokens = output;
  worst.web_searches = req_.max_web_searches;
  for (const routing::Target& t : plan_.targets) {
    r.worst_cost_usd = std::max(r.worst_cost_usd, ListCost(t, worst).value_or(0));
  }
  std::optional<GatewayError> refused = co_await access->Admit(caller_, r, admission_);
  for (auto& [name, value] : admission_.headers) w_.AddDefaultHeader(name, value);
  admitted_ = !refused;
  co_return refused;
}

void Call::Settle() {
  if (!admitted_) return;
  admitted_ = false;
  const Usage& u = summary_.usage;
  const std::optional<int64_t> tokens =
      u.reported ? std::optional<int64_t>(u.input_tokens + u.output_tokens) : std::nullopt;
  gw_.options_.access->Settle(caller_, admission_, summary_.http_status < 400, summary_.cost_usd,
                              tokens, &executor_);
}

}  // namespace iris::gateway::proxy
