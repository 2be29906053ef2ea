// The stages before any attempt: decode the caller's dialect and check every bound and name
// (nothing a caller sent reaches a route, a path, a header, a metric or a log row unchecked),
// then plan the route.
#include "gateway/api/anthropic.h"
#include "gateway/api/openai.h"
#include "gateway/proxy/call.h"
#include "gateway/proxy/request_checks.h"

namespace iris::gateway::proxy {

Status Call::Decode() {
  auto parsed = summary_.dialect == Dialect::kOpenAI ? api::ParseOpenAIChatRequest(http_req_.body)
                                                     : api::ParseAnthropicRequest(http_req_.body);
  if (!parsed.ok()) return parsed.status();
  req_ = std::move(parsed).value();
  req_.dialect = summary_.dialect;
  IRIS_RETURN_IF_ERROR(CheckRequest(req_, *config_));
  summary_.requested_model = req_.model;
  summary_.stream = req_.stream;
  encoder_.emplace(summary_.dialect, req_, summary_.start_unix_ms / 1000);
  return OkStatus();
}

Status Call::Plan() {
  IRIS_ASSIGN_OR_RETURN(plan_, routing::PlanRoute(*config_, req_, ThreadRng()));
  summary_.alias = plan_.alias;
  deadline_ = start_ + plan_.timeouts.total;
  return OkStatus();
}

}  // namespace iris::gateway::proxy
