// The caller's dialect (OpenAI chat, Anthropic messages, OpenAI responses, the AI SDK gateway
// protocol) behind one face:
// bodies, stream events, the stream's end and its in-band error.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "gateway/api/ai_gateway.h"
#include "gateway/api/anthropic.h"
#include "gateway/api/chat.h"
#include "gateway/api/openai.h"
#include "gateway/api/responses.h"

namespace iris::gateway::proxy {

class Encoder {
 public:
  // `created`: the Unix seconds a stream reports when its source gives none. `responses`
  // (kResponses only): the response's id, creation time and the request it echoes.
  // `ai_gateway` (kAiGateway only): the caller's specification version and dropped fields.
  Encoder(Dialect dialect, const ChatRequest& req, int64_t created,
          api::ResponseMeta responses = {}, api::AiGatewayStreamEncoder ai_gateway = {})
      : dialect_(dialect),
        openai_(req.include_usage, created),
        responses_(responses),
        ai_gateway_(std::move(ai_gateway)) {}

  std::string Response(const ChatResponse& r, const boost::json::object& iris,
                       std::optional<double> cost) {
    switch (dialect_) {
      case Dialect::kOpenAI:
      case Dialect::kEmbeddings:  // (answered by DeliverEmbeddings, never here)
        return api::EncodeOpenAIChatResponse(r, &iris, cost);
      case Dialect::kAnthropic:
        if (r.as_is && r.as_is_dialect == Dialect::kAnthropic) {
          return api::EncodeAnthropicAsIsResponse(*r.as_is, &iris, cost);
        }
        return api::EncodeAnthropicResponse(r, &iris, cost);
      case Dialect::kAiGateway:
      case Dialect::kAiGatewayEmbeddings:
        return api::EncodeAiGatewayGenerateResult(r, ai_gateway_.spec_version(),
                                                  ai_gateway_.dropped(), &iris, cost);
      case Dialect::kResponses:
        break;
    }
    if (r.as_is && r.as_is_dialect == Dialect::kResponses) {
      return api::EncodeAsIsResponse(*r.as_is, &iris, cost);
    }
    api::ResponseMeta meta = responses_meta();
    meta.model = r.model;
    return api::EncodeResponsesResponse(r, meta, &iris, cost);
  }
  std::string Event(const StreamEvent& e) {
    switch (dialect_) {
      case Dialect::kOpenAI:
      case Dialect::kEmbeddings:
        return openai_.Encode(e);
      case Dialect::kAnthropic:
        return anthropic_.Encode(e);
      case Dialect::kAiGateway:
      case Dialect::kAiGatewayEmbeddings:
        return ai_gateway_.Encode(e);
      case Dialect::kResponses:
        break;
    }
    return responses_.Encode(e);
  }
  std::string Finish(const boost::json::object& iris, std::optional<double> cost) {
    switch (dialect_) {
      case Dialect::kOpenAI:
      case Dialect::kEmbeddings:
        return openai_.Finish(&iris, cost);
      case Dialect::kAnthropic:
        return anthropic_.Finish(&iris, cost);
      case Dialect::kAiGateway:
      case Dialect::kAiGatewayEmbeddings:
        return ai_gateway_.Finish(&iris, cost);
      case Dialect::kResponses:
        break;
    }
    return responses_.Finish(&iris, cost);
  }
  std::string StreamError(const GatewayError& e) {
    switch (dialect_) {
      case Dialect::kOpenAI:
      case Dialect::kEmbeddings:
        return openai_.Error(e);
      case Dialect::kAnthropic:
        return anthropic_.Error(e);
      case Dialect::kAiGateway:
      case Dialect::kAiGatewayEmbeddings:
        return ai_gateway_.Error(e);
      case Dialect::kResponses:
        break;
    }
    return responses_.Error(e);
  }
  // kResponses: the streamed answer so far (for the conversation store).
  const ChatResponse& streamed_answer() const { return responses_.answer(); }
  const api::ResponseMeta& responses_meta() const { return responses_.meta(); }
  // kResponses: the stream is the provider's own, relayed as is.
  bool responses_as_is() const { return responses_.as_is(); }
  // kResponses, as is: the output items of the provider's own terminal event (null before it).
  const boost::json::array* responses_as_is_output() const { return responses_.as_is_output(); }

 private:
  Dialect dialect_;
  api::OpenAIStreamEncoder openai_;
  api::AnthropicStreamEncoder anthropic_;
  api::ResponsesStreamEncoder responses_;
  api::AiGatewayStreamEncoder ai_gateway_;
};

}  // namespace iris::gateway::proxy
