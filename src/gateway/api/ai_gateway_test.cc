// The AI SDK gateway protocol: what the parser takes from the call options and the headers,
// the field path in every error, what is dropped (and said), and the generate result, stream
// parts, embeddings, catalog and error bodies the client parses.
#include "gateway/api/ai_gateway.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "base/json.h"
#include "gateway/api/errors.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

AiGatewayHeaders Headers(std::string model = "m", std::string streaming = "false",
                         std::string version = "3") {
  return {std::move(model), std::move(streaming), std::move(version)};
}

void ExpectAiGatewayError(std::string_view body, std::string_view prefix,
                          const AiGatewayHeaders& headers = Headers()) {
  Result<AiGatewayRequest> r = ParseAiGatewayLanguageRequest(body, headers);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(prefix, 0), 0u)
      << "message: " << r.status().message() << "\nexpected prefix: " << prefix;
}

// The SSE data lines of a stream as JSON objects.
std::vector<json::object> Parts(std::string_view sse) {
  std::vector<json::object> out;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string_view::npos) {
    const size_t end = sse.find("\n\n", pos);
    out.push_back(json::parse(sse.substr(pos + 6, end - pos - 6)).as_object());
    pos = end;
  }
  return out;
}

TEST(ParseAiGatewayLanguageRequest, CallOptionsBecomeAChatRequest) {
  Result<AiGatewayRequest> r = ParseAiGatewayLanguageRequest(R"({
    "prompt": [
      {"role": "system", "content": "Be terse."},
      {"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "file", "mediaType": "image/png", "data": "iVBORw0KGgo="},
        {"type": "file", "mediaType": "image/*", "data": "https://example.com/a.jpg"}]},
      {"role": "assistant", "content": [
        {"type": "reasoning", "text": "hmm"},
        {"type": "text", "text": "checking"},
        {"type": "tool-call", "toolCallId": "c1", "toolName": "weather",
         "input": {"city": "Paris"}}]},
      {"role": "tool", "content": [
        {"type": "tool-result", "toolCallId": "c1", "toolName": "weather",
         "output": {"type": "json", "value": {"sky": "sunny"}}},
        {"type": "tool-result", "toolCallId": "c2", "toolName": "weather",
         "output": {"type": "error-text", "value": "boom"}}]}],
    "maxOutputTokens": 64, "temperature": 0.5, "topP": 0.9, "topK": 40, "seed": 7,
    "presencePenalty": 0.1, "frequencyPenalty": 0.2, "stopSequences": ["END"],
    "responseFormat": {"type": "json", "name": "city", "schema": {"type": "object"}},
    "tools": [{"type": "function", "name": "weather", "description": "d",
               "inputSchema": {"type": "object"}, "strict": true}],
    "toolChoice": {"type": "tool", "toolName": "weather"},
    "includeRawChunks": false, "headers": {"x": "y"},
    "providerOptions": {"gateway": {"order": ["anthropic"], "only": ["anthropic", "openai"],
                                    "models": ["b"], "user": "u1"},
                        "openai": {"reasoningEffort": "low"},
                        "anthropic": {"thinking": {"type": "enabled", "budgetTokens": 3000}}}
  })",
                                                             Headers("chat", "true"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const ChatRequest& c = r->chat;
  EXPECT_EQ(c.model, "chat");
  EXPECT_TRUE(c.stream);
  EXPECT_EQ(c.dialect, Dialect::kAiGateway);
  ASSERT_EQ(c.messages.size(), 5u);
  EXPECT_EQ(c.messages[0].role, Role::kSystem);
  ASSERT_EQ(c.messages[1].content.size(), 3u);
  EXPECT_EQ(c.messages[1].content[1].type, ContentPart::Type::kImage);
  EXPECT_EQ(c.messages[1].content[1].media_type, "image/png");
  EXPECT_EQ(c.messages[1].content[1].data_base64, "iVBORw0KGgo=");
  EXPECT_EQ(c.messages[1].content[2].url, "https://example.com/a.jpg");
  EXPECT_EQ(c.messages[2].role, Role::kAssistant);
  ASSERT_EQ(c.messages[2].content.size(), 1u);  // the reasoning part is dropped
  EXPECT_EQ(c.messages[2].content[0].text, "checking");
  ASSERT_EQ(c.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(c.messages[2].tool_calls[0].id, "c1");
  EXPECT_EQ(c.messages[2].tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(c.messages[3].role, Role::kTool);
  EXPECT_EQ(c.messages[3].tool_call_id, "c1");
  EXPECT_EQ(c.messages[3].content[0].text, R"({"sky":"sunny"})");
  EXPECT_FALSE(c.messages[3].is_error);
  EXPECT_TRUE(c.messages[4].is_error);
  EXPECT_EQ(c.max_tokens, 64);
  EXPECT_EQ(c.temperature, 0.5);
  EXPECT_EQ(c.top_p, 0.9);
  EXPECT_EQ(c.top_k, 40);
  EXPECT_EQ(c.seed, 7);
  EXPECT_EQ(c.presence_penalty, 0.1);
  EXPECT_EQ(c.frequency_penalty, 0.2);
  EXPECT_EQ(c.stop, std::vector<std::string>{"END"});
  ASSERT_TRUE(c.response_format);
  EXPECT_EQ(c.response_format->type, ResponseFormat::Type::kJsonSchema);
  EXPECT_EQ(c.response_format->name, "city");
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_TRUE(c.tools[0].strict);
  ASSERT_TRUE(c.tool_choice);
  EXPECT_EQ(c.tool_choice->mode, ToolChoice::Mode::kTool);
  EXPECT_EQ(c.routing.order, std::vector<std::string>{"anthropic"});
  EXPECT_EQ(c.routing.only.size(), 2u);
  EXPECT_EQ(c.routing.models, std::vector<std::string>{"b"});
  EXPECT_EQ(c.user, "u1");
  EXPECT_EQ(c.reasoning_effort, "low");
  EXPECT_EQ(c.thinking_budget, 3000);
  ASSERT_EQ(r->dropped.size(), 1u);
  EXPECT_EQ(r->dropped[0].feature, "reasoning");
}

TEST(ParseAiGatewayLanguageRequest, OptionsIrisDoesNotApplyAreDroppedByName) {
  Result<AiGatewayRequest> r = ParseAiGatewayLanguageRequest(R"({
    "prompt": [{"role": "user", "content": [{"type": "text", "text": "hi"}],
                "providerOptions": {"anthropic": {"cacheControl": {"type": "ephemeral"}}}}],
    "tools": [{"type": "function", "name": "f", "inputSchema": {}, "inputExamples": []}],
    "responseFormat": {"type": "json", "description": "d"},
    "providerOptions": {"anthropic": {"sendReasoning": true},
                        "gateway": {"sort": "cost", "order": null},
                        "openai": {"serviceTier": "flex"}}
  })",
                                                             Headers());
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::string> features;
  for (const DroppedField& d : r->dropped) features.push_back(d.feature);
  EXPECT_EQ(features, (std::vector<std::string>{"responseFormat.description", "tools.inputExamples",
                                                "providerOptions.anthropic.sendReasoning",
                                                "providerOptions.gateway.sort",
                                                "providerOptions.openai.serviceTier"}));
  EXPECT_EQ(r->chat.response_format->type, ResponseFormat::Type::kJsonObject);
  // (the message's cache breakpoint is applied: its last part's)
  ASSERT_TRUE(r->chat.messages[0].content[0].cache.has_value());
}

// providerOptions.anthropic.cacheControl on a message, a part or a tool is a cache breakpoint;
// where it has no place, and any other provider option there, it is dropped by name.
TEST(ParseAiGatewayLanguageRequest, CacheBreakpointsAreTaken) {
  Result<AiGatewayRequest> r = ParseAiGatewayLanguageRequest(R"({
    "prompt": [
      {"role": "system", "content": "long rules",
       "providerOptions": {"anthropic": {"cacheControl": {"type": "ephemeral", "ttl": "1h"}}}},
      {"role": "user", "content": [
        {"type": "text", "text": "a", "providerOptions": {"anthropic": {"cacheControl": {"type": "ephemeral"}}}},
        {"type": "text", "text": "b", "providerOptions": {"openai": {"x": 1}}}]},
      {"role": "assistant", "content": [
        {"type": "tool-call", "toolCallId": "c1", "toolName": "f", "input": {},
         "providerOptions": {"anthropic": {"cacheControl": {"type": "ephemeral"}}}}]},
      {"role": "tool", "content": [
        {"type": "tool-result", "toolCallId": "c1", "toolName": "f",
         "output": {"type": "text", "value": "ok"},
         "providerOptions": {"anthropic": {"cacheControl": {"type": "ephemeral"}}}}]}],
    "tools": [{"type": "function", "name": "f", "inputSchema": {},
               "providerOptions": {"anthropic": {"cacheControl": {"type": "ephemeral"}}}}]
  })",
                                                             Headers());
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<Message>& m = r->chat.messages;
  ASSERT_EQ(m.size(), 4u);
  ASSERT_TRUE(m[0].content[0].cache.has_value());
  EXPECT_EQ(m[0].content[0].cache->ttl, "1h");
  EXPECT_TRUE(m[1].content[0].cache.has_value());
  EXPECT_FALSE(m[1].content[1].cache.has_value());
  EXPECT_TRUE(m[3].content[0].cache.has_value());
  EXPECT_TRUE(r->chat.tools[0].cache.has_value());
  std::vector<std::string> features;
  for (const DroppedField& d : r->dropped) features.push_back(d.feature);
  EXPECT_EQ(features, (std::vector<std::string>{"providerOptions.openai",
                                                "providerOptions.anthropic.cacheControl"}));
  ExpectAiGatewayError(R"({"prompt": [{"role": "user", "content": [{"type": "text", "text": "a",
      "providerOptions": {"anthropic": {"cacheControl": {"type": "persistent"}}}}]}]})",
                       "prompt[0].content[0].providerOptions.anthropic.cacheControl.type: expected "
                       "\"ephemeral\"");
}

TEST(ParseAiGatewayLanguageRequest, DroppedListIsBounded) {
  std::string options;
  for (int i = 0; i < 100; ++i) {
    if (i > 0) options += ',';
    options.append("\"p").append(std::to_string(i)).append("\":{\"o\":1}");
  }
  Result<AiGatewayRequest> r = ParseAiGatewayLanguageRequest(
      R"({"prompt":[{"role":"user","content":[{"type":"text","text":"x"}]}],"providerOptions":{)" +
          options + "}}",
      Headers());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->dropped.size(), 33u);
  EXPECT_EQ(r->dropped.back().feature, "...");
}

TEST(ParseAiGatewayLanguageRequest, ErrorsNameTheFieldOrHeader) {
  const std::string user = R"({"role":"user","content":[{"type":"text","text":"x"}]})";
  ExpectAiGatewayError("{}", "ai-language-model-id", Headers(""));
  ExpectAiGatewayError("{}", "ai-language-model-streaming", Headers("m", "yes"));
  ExpectAiGatewayError("{}", "ai-language-model-specification-version", Headers("m", "false", "4"));
  ExpectAiGatewayError("[]", "request body: expected a JSON object");
  ExpectAiGatewayError("{}", "prompt: required");
  ExpectAiGatewayError(R"({"prompt":[]})", "prompt: must contain at least one message");
  ExpectAiGatewayError(R"({"prompt":[{"role":"robot","content":"x"}]})",
                       "prompt[0].role: expected");
  ExpectAiGatewayError(R"({"prompt":[{"role":"system","content":[]}]})",
                       "prompt[0].content: expected");
  ExpectAiGatewayError(
      R"({"prompt":[{"role":"user","content":[{"type":"file","mediaType":"application/pdf","data":"JVBE"}]}]})",
      "prompt[0].content[0].mediaType: only image files are supported");
  ExpectAiGatewayError(
      R"({"prompt":[{"role":"user","content":[{"type":"file","mediaType":"image/png","data":"ftp://x"}]}]})",
      "prompt[0].content[0].data");
  ExpectAiGatewayError(
      R"({"prompt":[{"role":"user","content":[{"type":"tool-call","toolCallId":"a","toolName":"b"}]}]})",
      "prompt[0].content[0].type: a user message may not carry");
  ExpectAiGatewayError(
      R"({"prompt":[{"role":"assistant","content":[{"type":"tool-call","toolCallId":"a","toolName":"b","input":{},"providerExecuted":true}]}]})",
      "prompt[0].content[0].providerExecuted");
  ExpectAiGatewayError(
      R"({"prompt":[{"role":"tool","content":[{"type":"tool-approval-response","approvalId":"a","approved":true}]}]})",
      "prompt[0].content[0].type: tool messages carry tool-result parts");
  ExpectAiGatewayError(
      R"({"prompt":[{"role":"tool","content":[{"type":"tool-result","toolCallId":"a","toolName":"b","output":{"type":"content","value":[{"type":"image-data","data":"x","mediaType":"image/png"}]}}]}]})",
      "prompt[0].content[0].output.value[0].type: tool results may carry text only");
  ExpectAiGatewayError(
      R"({"prompt":[)" + user +
          R"(],"tools":[{"type":"provider","id":"openai.web_search","name":"w","args":{}}]})",
      "tools[0]: provider-executed tools");
  ExpectAiGatewayError(R"({"prompt":[)" + user + R"(],"toolChoice":{"type":"any"}})",
                       "toolChoice.type");
  ExpectAiGatewayError(R"({"prompt":[)" + user + R"(],"temperature":3})",
                       "temperature: must be between");
  ExpectAiGatewayError(R"({"prompt":[)" + user + R"(],"maxOutputTokens":0})",
                       "maxOutputTokens: must be at least 1");
  ExpectAiGatewayError(R"({"prompt":[)" + user + R"(],"responseFormat":{"type":"yaml"}})",
                       "responseFormat.type");
  ExpectAiGatewayError(R"({"prompt":[)" + user + R"(],"providerOptions":{"a\r\nb":{}}})",
                       "providerOptions");
  ExpectAiGatewayError(
      R"({"prompt":[)" + user + R"(],"providerOptions":{"openai":{"reasoningEffort":"max"}}})",
      "providerOptions.openai.reasoningEffort");
}

TEST(ParseAiGatewayEmbeddingRequest, ValuesAndOptions) {
  Result<AiGatewayEmbeddingRequest> r = ParseAiGatewayEmbeddingRequest(
      R"({"values":["a","b"],"providerOptions":{"openai":{"dimensions":4,"user":"u"},
          "gateway":{"order":["openai"]},"cohere":{"inputType":"query"}}})",
      "openai/text-embedding-3-small");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->embed.model, "openai/text-embedding-3-small");
  EXPECT_EQ(r->embed.texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->embed.dimensions, 4);
  EXPECT_EQ(r->embed.user, "u");
  EXPECT_EQ(r->embed.routing.order, std::vector<std::string>{"openai"});
  ASSERT_EQ(r->dropped.size(), 1u);
  EXPECT_EQ(r->dropped[0].feature, "providerOptions.cohere.inputType");
  EXPECT_FALSE(ParseAiGatewayEmbeddingRequest(R"({"values":["a"]})", "").ok());
  EXPECT_EQ(ParseAiGatewayEmbeddingRequest(R"({"values":[]})", "m").status().message(),
            "values: must contain at least one value");
  EXPECT_EQ(ParseAiGatewayEmbeddingRequest(R"({"values":["a",""]})", "m").status().message(),
            "values[1]: must not be empty");
  EXPECT_EQ(ParseAiGatewayEmbeddingRequest(R"({"values":[1]})", "m").status().message(),
            "values[0]: expected a string, got a number");
}

ChatResponse Answer() {
  ChatResponse r;
  r.id = "resp-1";
  r.model = "gpt-4o-mini";
  r.created = 1700000000;
  r.text = "hello";
  r.tool_calls.push_back({"call_1", "weather", R"({"city":"Paris"})", {}});
  r.finish_reason = FinishReason::kToolCalls;
  r.usage = {.input_tokens = 10,
             .output_tokens = 5,
             .cached_input_tokens = 4,
             .cache_write_tokens = 1,
             .reasoning_tokens = 2,
             .reported = true};
  return r;
}

TEST(EncodeAiGatewayGenerateResult, V3Shapes) {
  const json::object iris{{"provider", "openai"}};
  const json::object out = json::parse(EncodeAiGatewayGenerateResult(
                                           Answer(), 3, {{"reasoning", "why"}}, &iris, 0.00012))
                               .as_object();
  EXPECT_EQ(SerializeJson(out.at("content")),
            R"([{"type":"text","text":"hello"},{"type":"tool-call","toolCallId":"call_1",)"
            R"("toolName":"weather","input":"{\"city\":\"Paris\"}"}])");
  EXPECT_EQ(SerializeJson(out.at("finishReason")),
            R"({"unified":"tool-calls","raw":"tool_calls"})");
  EXPECT_EQ(SerializeJson(out.at("usage")),
            R"({"inputTokens":{"total":10,"noCache":5,"cacheRead":4,"cacheWrite":1},)"
            R"("outputTokens":{"total":5,"text":3,"reasoning":2}})");
  EXPECT_EQ(SerializeJson(out.at("providerMetadata")),
            R"({"iris":{"provider":"openai"},"gateway":{"cost":"0.00012"}})");
  EXPECT_EQ(out.at("response").at("timestamp").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(SerializeJson(out.at("warnings")),
            R"([{"type":"unsupported","feature":"reasoning","details":"why"}])");
}

TEST(EncodeAiGatewayGenerateResult, V2ShapesAndUnreportedUsage) {
  ChatResponse r = Answer();
  const json::object v2 =
      json::parse(EncodeAiGatewayGenerateResult(r, 2, {{"x", "y"}}, nullptr, std::nullopt))
          .as_object();
  EXPECT_EQ(v2.at("finishReason").as_string(), "tool-calls");
  EXPECT_EQ(v2.at("usage").at("inputTokens").as_int64(), 10);
  EXPECT_EQ(v2.at("usage").at("totalTokens").as_int64(), 15);
  EXPECT_EQ(SerializeJson(v2.at("warnings")), R"([{"type":"other","message":"x: y"}])");
  EXPECT_EQ(SerializeJson(v2.at("providerMetadata")), "{}");
  r.usage = Usage{};
  const json::object v3 =
      json::parse(EncodeAiGatewayGenerateResult(r, 3, {}, nullptr, std::nullopt)).as_object();
  EXPECT_EQ(SerializeJson(v3.at("usage")), R"({"inputTokens":{},"outputTokens":{}})");
}

TEST(AiGatewayStreamEncoder, PartsInTheOrderTheClientExpects) {
  AiGatewayStreamEncoder enc(3, {{"providerOptions.anthropic", "d"}});
  std::string sse;
  StreamEvent e;
  e.type = StreamEvent::Type::kStart;
  e.id = "r1";
  e.model = "m";
  e.created = 1700000000;
  sse += enc.Encode(e);
  for (const char* t : {"Hel", "lo"}) {
    e = {};
    e.type = StreamEvent::Type::kTextDelta;
    e.text = t;
    sse += enc.Encode(e);
  }
  e = {};
  e.type = StreamEvent::Type::kToolCallStart;
  e.id = "call_1";
  e.name = "weather";
  sse += enc.Encode(e);
  for (const char* t : {"{\"ci", "ty\":1}"}) {
    e = {};
    e.type = StreamEvent::Type::kToolCallDelta;
    e.text = t;
    sse += enc.Encode(e);
  }
  e = {};
  e.type = StreamEvent::Type::kFinish;
  e.finish_reason = FinishReason::kToolCalls;
  sse += enc.Encode(e);
  e = {};
  e.type = StreamEvent::Type::kUsage;
  e.usage = {.input_tokens = 3, .output_tokens = 4, .reported = true};
  sse += enc.Encode(e);
  const json::object iris{{"provider", "p"}};
  sse += enc.Finish(&iris, std::nullopt);
  std::vector<std::string> types;
  for (const json::object& p : Parts(sse)) types.emplace_back(p.at("type").as_string());
  EXPECT_EQ(types, (std::vector<std::string>{
                       "stream-start", "response-metadata", "text-start", "text-delta",
                       "text-delta", "text-end", "tool-input-start", "tool-input-delta",
                       "tool-input-delta", "tool-input-end", "tool-call", "finish"}));
  const std::vector<json::object> parts = Parts(sse);
  EXPECT_EQ(parts[0].at("warnings").as_array().size(), 1u);
  EXPECT_EQ(parts[1].at("timestamp").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(parts[10].at("input").as_string(), R"({"city":1})");
  EXPECT_EQ(parts[11].at("finishReason").at("unified").as_string(), "tool-calls");
  EXPECT_EQ(parts[11].at("usage").at("inputTokens").at("total").as_int64(), 3);
  EXPECT_EQ(parts[11].at("providerMetadata").at("iris").at("provider").as_string(), "p");
}

TEST(AiGatewayStreamEncoder, ReasoningPartsCarryTheSignature) {
  AiGatewayStreamEncoder enc;
  std::string sse;
  for (const auto& [type, text] : std::vector<std::pair<StreamEvent::Type, std::string>>{
           {StreamEvent::Type::kReasoningDelta, "think"},
           {StreamEvent::Type::kReasoningDelta, "ing"},
           {StreamEvent::Type::kReasoningSignature, "sig"},
           {StreamEvent::Type::kTextDelta, "answer"}}) {
    StreamEvent e;
    e.type = type;
    e.text = text;
    sse += enc.Encode(e);
  }
  sse += enc.Finish(nullptr, std::nullopt);
  const std::vector<json::object> parts = Parts(sse);
  std::vector<std::string> types;
  for (const json::object& p : parts) types.emplace_back(p.at("type").as_string());
  EXPECT_EQ(types, (std::vector<std::string>{"stream-start", "response-metadata", "reasoning-start",
                                             "reasoning-delta", "reasoning-delta", "reasoning-end",
                                             "text-start", "text-delta", "text-end", "finish"}));
  EXPECT_EQ(parts[5].at("providerMetadata").at("anthropic").at("signature").as_string(), "sig");
  ChatResponse r;
  r.reasoning.push_back({"thought", "sig2", {}});
  r.reasoning.push_back({{}, {}, "redacted"});
  r.text = "answer";
  const json::object out =
      json::parse(EncodeAiGatewayGenerateResult(r, 3, {}, nullptr, std::nullopt)).as_object();
  EXPECT_EQ(SerializeJson(out.at("content")),
            R"([{"type":"reasoning","text":"thought","providerMetadata":{"anthropic":)"
            R"({"signature":"sig2"}}},{"type":"text","text":"answer"}])");
}

TEST(AiGatewayStreamEncoder, AnErrorIsAnErrorPartWithTheClientsType) {
  AiGatewayStreamEncoder enc;
  GatewayError e;
  e.error_class = ErrorClass::kUpstreamTimeout;
  e.message = "slow";
  const std::vector<json::object> parts = Parts(enc.Error(e));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].at("type").as_string(), "error");
  EXPECT_EQ(parts[2].at("error").at("type").as_string(), "internal_server_error");
  EXPECT_EQ(parts[2].at("error").at("message").as_string(), "slow");
}

TEST(AiGatewayErrorBody, TypesTheClientMapsToItsClasses) {
  const std::pair<ErrorClass, std::string_view> cases[] = {
      {ErrorClass::kInvalidRequest, "invalid_request_error"},
      {ErrorClass::kPayloadTooLarge, "invalid_request_error"},
      {ErrorClass::kAuthentication, "authentication_error"},
      {ErrorClass::kPermission, "forbidden"},
      {ErrorClass::kNotFound, "model_not_found"},
      {ErrorClass::kRateLimited, "rate_limit_exceeded"},
      {ErrorClass::kUpstream, "internal_server_error"},
      {ErrorClass::kUpstreamTimeout, "internal_server_error"},
      {ErrorClass::kOverloaded, "internal_server_error"},
      {ErrorClass::kInternal, "internal_server_error"},
  };
  for (const auto& [error_class, type] : cases) {
    GatewayError e;
    e.error_class = error_class;
    e.message = "m";
    const json::object body = json::parse(AiGatewayErrorBody(e, "gpt-x")).as_object();
    EXPECT_EQ(body.at("error").at("type").as_string(), type);
  }
  GatewayError e;
  e.error_class = ErrorClass::kNotFound;
  e.message = "unknown model";
  EXPECT_EQ(SerializeJson(json::parse(AiGatewayErrorBody(e, "gpt-x")).at("error").at("param")),
            R"({"modelId":"gpt-x"})");
  EXPECT_EQ(json::parse(AiGatewayErrorBody(e, "")).at("error").at("type").as_string(), "not_found");
}

TEST(EncodeAiGatewayConfig, PricesPerTokenAsDecimalStrings) {
  AiGatewayModel m;
  m.id = "chat";
  m.provider = "iris";
  m.description = "alias for openai/gpt-4o-mini";
  m.input_per_mtok = 0.15;
  m.output_per_mtok = 0.6;
  m.cached_input_per_mtok = 0.075;
  AiGatewayModel unpriced;
  unpriced.id = "groq/x";
  unpriced.provider = "groq";
  const json::object out = json::parse(EncodeAiGatewayConfig({m, unpriced})).as_object();
  const json::array& models = out.at("models").as_array();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(SerializeJson(models[0].at("pricing")),
            R"({"input":"0.00000015","output":"0.0000006","input_cache_read":"0.000000075"})");
  EXPECT_EQ(SerializeJson(models[0].at("specification")),
            R"({"specificationVersion":"v3","provider":"iris","modelId":"chat"})");
  EXPECT_FALSE(models[1].as_object().contains("pricing"));
}

TEST(EncodeAiGatewayEmbeddings, VectorsUsageAndWarnings) {
  EmbeddingResponse r;
  r.vectors = {{0.5f, -1.0f}};
  r.usage = {.input_tokens = 3, .reported = true};
  const json::object out =
      json::parse(EncodeAiGatewayEmbeddings(r, {{"f", "d"}}, nullptr, 0.5)).as_object();
  EXPECT_EQ(SerializeJson(out.at("embeddings")), "[[0.5,-1.0]]");
  EXPECT_EQ(out.at("usage").at("tokens").as_int64(), 3);
  EXPECT_EQ(out.at("providerMetadata").at("gateway").at("cost").as_string(), "0.5");
  EXPECT_EQ(out.at("warnings").as_array().size(), 1u);
}

}  // namespace
}  // namespace iris::gateway::api
