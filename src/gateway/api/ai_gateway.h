// The inbound AI SDK gateway protocol: what `@ai-sdk/gateway`'s `createGateway({ baseURL })`
// sends (protocols.md §6). The model id and the call's kind travel in headers
// (`ai-language-model-id`, `ai-language-model-streaming`,
// `ai-language-model-specification-version`; `ai-model-id` for embeddings) and the body is the
// AI SDK's own call options (LanguageModelV3CallOptions: prompt, tools, toolChoice,
// responseFormat, providerOptions, ...). Answers are the SDK's generate result as JSON, or an
// SSE stream of its stream parts (`data: {"type":"text-delta",...}`); errors are
// {"error":{"message","type","param"}} with the types the client maps to its error classes
// (api/errors.h). Implemented against @ai-sdk/gateway 3.0.232 (specification v3); v2 callers
// (AI SDK 5) get v2's finish reason and usage shapes.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::gateway::api {

// The headers a call carries besides its body.
struct AiGatewayHeaders {
  std::string model_id;      // ai-language-model-id (ai-model-id for embeddings)
  std::string streaming;     // ai-language-model-streaming: "true" / "false"
  std::string spec_version;  // ai-language-model-specification-version ("2" or "3")
};

// Something the caller asked for that iris did not apply: reported to the client as an AI SDK
// warning ({"type":"unsupported","feature","details"}), in the `iris` report and in the
// x-iris-dropped-fields header.
struct DroppedField {
  std::string feature;  // "providerOptions.anthropic", "prompt[3].content[0] (reasoning)"
  std::string details;  // a sentence
};

struct AiGatewayRequest {
  ChatRequest chat;
  int spec_version = 3;
  std::vector<DroppedField> dropped;
};

// POST .../language-model. Accepted: `prompt` (system / user / assistant / tool messages with
// text, file (images: a data URL, an http(s) URL or base64 with its mediaType), reasoning,
// tool-call and tool-result parts), `maxOutputTokens`, `temperature`, `topP`, `topK`,
// `presencePenalty`, `frequencyPenalty`, `stopSequences`, `seed`, `responseFormat`
// (text / json with or without a schema), function `tools`, `toolChoice`, and
// `providerOptions`: `gateway.{order,only,models}` route the call, `openai.reasoningEffort`,
// `openai.user`, `anthropic.thinking` and `google.thinkingConfig.thinkingBudget` are applied
// (reasoning reaches every provider through the one effort/budget table); other provider
// options are dropped and said so. Refused with
// a 400 naming the field: provider-executed tools, non-image files, tool approval responses,
// a missing or malformed model id or streaming header, a specification version other than 2
// or 3.
Result<AiGatewayRequest> ParseAiGatewayLanguageRequest(std::string_view body,
                                                       const AiGatewayHeaders& headers);

struct AiGatewayEmbeddingRequest {
  EmbeddingRequest embed;
  std::vector<DroppedField> dropped;
};

// POST .../embedding-model: {"values":[strings],"providerOptions"?} with the model in the
// `ai-model-id` header. `providerOptions.gateway` routes; `openai.dimensions` (or
// `google.outputDimensionality`) sets the dimensions; other options are dropped and said so.
Result<AiGatewayEmbeddingRequest> ParseAiGatewayEmbeddingRequest(std::string_view body,
                                                                 std::string_view model_id);

// The generate result: {"content":[text / tool-call parts],"finishReason","usage",
// "providerMetadata":{"iris":...},"response":{"id","modelId","timestamp"},"warnings"}.
std::string EncodeAiGatewayGenerateResult(const ChatResponse& response, int spec_version,
                                          const std::vector<DroppedField>& dropped,
                                          const boost::json::object* iris,
                                          std::optional<double> cost_usd);
// {"embeddings":[[...]],"usage":{"tokens"},"providerMetadata":{"iris":...},"warnings"}.
std::string EncodeAiGatewayEmbeddings(const EmbeddingResponse& response,
                                      const std::vector<DroppedField>& dropped,
                                      const boost::json::object* iris,
                                      std::optional<double> cost_usd);

// One entry of GET .../config: a model iris serves, priced per token when its price is known.
struct AiGatewayModel {
  std::string id;        // what the caller names: an alias or provider/model
  std::string provider;  // "iris" for an alias
  std::string description;
  std::optional<double> input_per_mtok, output_per_mtok, cached_input_per_mtok,
      cache_write_per_mtok;
};
// {"models":[{"id","name","description","pricing":{"input","output",...},"specification":{
// "specificationVersion":"v3","provider","modelId"}}]}; prices are USD per token as decimal
// strings, as the client expects.
std::string EncodeAiGatewayConfig(const std::vector<AiGatewayModel>& models);

// Turns one answer's StreamEvents into the SDK's stream parts, each one SSE `data:` line:
// stream-start (with the warnings), response-metadata, reasoning-start / reasoning-delta /
// reasoning-end (an Anthropic signature in its providerMetadata), text-start / text-delta /
// text-end, tool-input-start / tool-input-delta / tool-input-end and a whole tool-call per call,
// then finish with the usage and the `iris` report in providerMetadata. Not thread-safe; one per
// answer.
class AiGatewayStreamEncoder {
 public:
  AiGatewayStreamEncoder() = default;
  AiGatewayStreamEncoder(int spec_version, std::vector<DroppedField> dropped)
      : spec_version_(spec_version), dropped_(std::move(dropped)) {}

  std::string Encode(const StreamEvent& event);
  std::string Finish(const boost::json::object* iris, std::optional<double> cost_usd);
  // A failure after the stream began: an `error` part whose error is the error body's inner
  // object, so the client raises the same class it would for a failed call.
  std::string Error(const GatewayError& error);

  int spec_version() const { return spec_version_; }
  const std::vector<DroppedField>& dropped() const { return dropped_; }

 private:
  std::string Start();
  std::string CloseText();
  std::string CloseReasoning();

  int spec_version_ = 3;
  std::vector<DroppedField> dropped_;
  bool started_ = false;
  bool text_open_ = false;
  int open_reasoning_ = -1;  // the reasoning block whose part is open
  std::string signature_;    // its signature, once known
  int text_parts_ = 0;
  std::string response_id_, model_;
  int64_t created_ = 0;
  FinishReason finish_ = FinishReason::kStop;
  Usage usage_;
  std::vector<ToolCall> calls_;  // by stream index
};

}  // namespace iris::gateway::api
