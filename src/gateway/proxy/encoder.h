// The caller's dialect (OpenAI or Anthropic) behind one face: bodies, stream events, the
// stream's end and its in-band error.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "gateway/api/anthropic.h"
#include "gateway/api/chat.h"
#include "gateway/api/openai.h"

namespace iris::gateway::proxy {

class Encoder {
 public:
  // `created`: the Unix seconds a stream reports when its source gives none.
  Encoder(Dialect dialect, const ChatRequest& req, int64_t created)
      : dialect_(dialect), openai_(req.include_usage, created), anthropic_() {}
  std::string Response(const ChatResponse& r, const boost::json::object& iris,
                       std::optional<double> cost) const {
    return dialect_ == Dialect::kOpenAI ? api::EncodeOpenAIChatResponse(r, &iris, cost)
                                        : api::EncodeAnthropicResponse(r, &iris, cost);
  }
  std::string Event(const StreamEvent& e) {
    return dialect_ == Dialect::kOpenAI ? openai_.Encode(e) : anthropic_.Encode(e);
  }
  std::string Finish(const boost::json::object& iris, std::optional<double> cost) {
    return dialect_ == Dialect::kOpenAI ? openai_.Finish(&iris, cost)
                                        : anthropic_.Finish(&iris, cost);
  }
  std::string StreamError(const GatewayError& e) {
    return dialect_ == Dialect::kOpenAI ? openai_.Error(e) : anthropic_.Error(e);
  }

 private:
  Dialect dialect_;
  api::OpenAIStreamEncoder openai_;
  api::AnthropicStreamEncoder anthropic_;
};

}  // namespace iris::gateway::proxy
