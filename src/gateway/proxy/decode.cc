// The stages before any attempt: decode the caller's dialect and check every bound and name
// (nothing a caller sent reaches a route, a path, a header, a metric or a log row unchecked),
// then plan the route.
#include "gateway/api/ai_gateway.h"
#include "gateway/api/anthropic.h"
#include "gateway/api/embeddings.h"
#include "gateway/api/openai.h"
#include "gateway/api/responses.h"
#include "gateway/proxy/call.h"
#include "gateway/proxy/request_checks.h"
#include "gateway/proxy/request_id.h"

namespace iris::gateway::proxy {

Status Call::Decode() {
  switch (summary_.dialect) {
    case Dialect::kOpenAI: {
      IRIS_ASSIGN_OR_RETURN(req_, api::ParseOpenAIChatRequest(http_req_.body));
      break;
    }
    case Dialect::kAnthropic: {
      IRIS_ASSIGN_OR_RETURN(req_, api::ParseAnthropicRequest(http_req_.body));
      // (every line of the header: a list, as HTTP joins repeated fields)
      std::string beta;
      for (const auto& [name, value] : http_req_.headers) {
        if (!http::EqualsIgnoreCase(name, "anthropic-beta")) continue;
        if (!beta.empty()) beta += ',';
        beta += value;
      }
      if (!beta.empty()) {
        IRIS_ASSIGN_OR_RETURN(req_.anthropic_beta, api::ParseAnthropicBeta(beta));
      }
      break;
    }
    case Dialect::kEmbeddings: {
      IRIS_ASSIGN_OR_RETURN(EmbeddingRequest parsed, api::ParseEmbeddingRequest(http_req_.body));
      req_.model = parsed.model;
      req_.routing = parsed.routing;
      req_.user = parsed.user;
      embed_.emplace(std::move(parsed));
      break;
    }
    case Dialect::kResponses: {
      IRIS_ASSIGN_OR_RETURN(api::ResponsesRequest parsed,
                            api::ParseResponsesRequest(http_req_.body));
      req_ = std::move(parsed.chat);
      responses_.emplace(std::move(parsed));
      break;
    }
    case Dialect::kAiGateway: {
      api::AiGatewayHeaders headers;
      headers.model_id = http_req_.headers.Get("ai-language-model-id");
      headers.streaming = http_req_.headers.Get("ai-language-model-streaming");
      headers.spec_version = http_req_.headers.Get("ai-language-model-specification-version");
      IRIS_ASSIGN_OR_RETURN(api::AiGatewayRequest parsed,
                            api::ParseAiGatewayLanguageRequest(http_req_.body, headers));
      req_ = std::move(parsed.chat);
      ai_gateway_spec_ = parsed.spec_version;
      dropped_ = std::move(parsed.dropped);
      break;
    }
    case Dialect::kAiGatewayEmbeddings: {
      IRIS_ASSIGN_OR_RETURN(api::AiGatewayEmbeddingRequest parsed,
                            api::ParseAiGatewayEmbeddingRequest(
                                http_req_.body, http_req_.headers.Get("ai-model-id")));
      req_.model = parsed.embed.model;
      req_.routing = parsed.embed.routing;
      req_.user = parsed.embed.user;
      embed_.emplace(std::move(parsed.embed));
      dropped_ = std::move(parsed.dropped);
      break;
    }
  }
  for (const api::DroppedField& d : dropped_) {
    summary_.warnings.push_back(d.feature + " was not applied: " + d.details);
  }
  req_.dialect = summary_.dialect;
  IRIS_RETURN_IF_ERROR(CheckRequest(req_, *config_));
  summary_.requested_model = req_.model;
  summary_.stream = req_.stream;
  api::ResponseMeta meta;
  if (responses_) {
    meta.id = NewResponseId();
    meta.created_at = summary_.start_unix_ms / 1000;
    meta.model = req_.model;
    meta.request = &*responses_;
  }
  encoder_.emplace(summary_.dialect, req_, summary_.start_unix_ms / 1000, std::move(meta),
                   api::AiGatewayStreamEncoder(ai_gateway_spec_, dropped_));
  return OkStatus();
}

Status Call::Plan() {
  IRIS_ASSIGN_OR_RETURN(plan_, routing::PlanRoute(*config_, req_, ThreadRng()));
  summary_.alias = plan_.alias;
  if (const config::ModelAlias* alias = config_->FindAlias(plan_.alias)) {
    store_bodies_ = alias->store_bodies && !embed_;
  }
  deadline_ = start_ + plan_.timeouts.total;
  return OkStatus();
}

}  // namespace iris::gateway::proxy
