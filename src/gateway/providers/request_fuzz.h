// Shared by the inbound request harnesses (openai_request_fuzz.cc, anthropic_request_fuzz.cc):
// a request that decoded is encoded for every upstream, and what comes out must be sendable.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "gateway/api/chat.h"
#include "gateway/api/identifiers.h"
#include "gateway/http/headers.h"
#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/gemini/gemini_translator.h"
#include "gateway/providers/openai/openai_translator.h"
#include "gateway/upstream/client.h"

namespace iris::gateway::providers::fuzz {

inline void Check(bool ok) {
  if (!ok) std::abort();
}

// Runs each translator's EncodeRequest on `request`. A refusal must say why; a success must be
// a JSON object body, a URL that the upstream client accepts, and headers that are valid HTTP.
inline void EncodeForEveryProvider(const ChatRequest& request) {
  // As in the gateway: a model id it would not route (too long, control characters) is refused
  // by the request checks (proxy/request_checks.cc) before any translator sees it.
  if (!api::CheckModelId(request.model, "model").ok()) return;
  struct Upstream {
    std::unique_ptr<Translator> translator;
    std::string provider;
    std::string base_url;
  };
  static const auto* const kUpstreams = [] {
    auto* v = new std::vector<Upstream>;
    v->push_back(
        {MakeOpenAITranslator(OpenAIFlavor::kOpenAI), "openai", "https://api.openai.com/v1"});
    v->push_back(
        {MakeOpenAITranslator(OpenAIFlavor::kMistral), "mistral", "https://api.mistral.ai/v1"});
    v->push_back({MakeOpenAITranslator(OpenAIFlavor::kCompatible, "groq"), "groq",
                  "http://127.0.0.1:11434/v1"});
    v->push_back({MakeAnthropicTranslator(), "anthropic", "https://api.anthropic.com/v1"});
    v->push_back(
        {MakeGeminiTranslator(), "gemini", "https://generativelanguage.googleapis.com/v1beta"});
    return v;
  }();
  for (const Upstream& u : *kUpstreams) {
    TargetInfo target;
    target.provider = u.provider;
    // The caller's model id, as a provider/model route would pass it on (Gemini puts it in
    // the URL path).
    target.model = request.model.empty() ? "model" : request.model;
    target.api_key = "sk-fuzz-0123456789";
    target.base_url = u.base_url;
    Result<UpstreamRequest> encoded = u.translator->EncodeRequest(request, target);
    if (!encoded.ok()) {
      Check(!encoded.status().message().empty());
      continue;
    }
    Result<boost::json::value> body = ParseJson(encoded->body, "encoded body");
    Check(body.ok() && body->is_object());
    Check(encoded->url.rfind(u.base_url + "/", 0) == 0);
    Result<upstream::Url> url = upstream::ParseUrl(encoded->url);
    Check(url.ok() && http::IsValidRequestTarget(url->target));
    Check(http::IsValidMethod(encoded->method));
    for (const auto& [name, value] : encoded->headers) {
      Check(http::IsValidFieldName(name) && http::IsValidFieldValue(value));
    }
  }
}

}  // namespace iris::gateway::providers::fuzz
