// The OpenAI dialect: what the parser accepts, the field path in every error it returns,
// and the shapes of the response, chunk and model-list encoders.
#include "gateway/api/openai.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "base/json.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

// Parses `body`, expecting a kInvalidArgument whose message starts with `prefix`.
void ExpectChatError(std::string_view body, std::string_view prefix) {
  Result<ChatRequest> r = ParseOpenAIChatRequest(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(prefix, 0), 0u)
      << "message: " << r.status().message() << "\nexpected prefix: " << prefix;
}

TEST(ParseOpenAIChatRequest, FullRequest) {
  Result<ChatRequest> r = ParseOpenAIChatRequest(R"({
    "model": "gpt-4o-mini",
    "messages": [
      {"role": "developer", "content": "Be terse."},
      {"role": "user", "name": "ann", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                            "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok"}]}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object"}, "strict": true}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "parallel_tool_calls": false,
    "response_format": {"type": "json_schema", "json_schema": {"name": "s",
                        "schema": {"type": "object"}, "strict": true}},
    "stop": "END", "temperature": 0, "top_p": 0.5, "seed": 7, "max_tokens": 10,
    "max_completion_tokens": 20, "frequency_penalty": 0.1, "presence_penalty": -0.1,
    "stream": true, "stream_options": {"include_usage": true}, "user": "u1", "n": 1,
    "logprobs": false, "metadata": {"x": "y"},
    "models": ["m2", "m3"], "provider": {"order": ["a", "b"], "only": ["a", "b", "c"]},
    "providerOptions": {"gateway": {"order": ["b", "d"], "models": ["m3", "m4"]}}
  })");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ChatRequest& q = *r;
  EXPECT_EQ(q.model, "gpt-4o-mini");
  ASSERT_EQ(q.messages.size(), 4u);
  EXPECT_EQ(q.messages[0].role, Role::kSystem);
  EXPECT_EQ(q.messages[1].name, "ann");
  ASSERT_EQ(q.messages[1].content.size(), 3u);
  const ContentPart& img = q.messages[1].content[1];
  EXPECT_EQ(img.type, ContentPart::Type::kImage);
  EXPECT_EQ(img.media_type, "image/png");
  EXPECT_EQ(img.data_base64, "iVBORw0KGgo=");
  EXPECT_EQ(img.detail, "low");
  EXPECT_EQ(q.messages[1].content[2].url, "https://example.com/a.jpg");
  ASSERT_EQ(q.messages[2].tool_calls.size(), 1u);
  EXPECT_TRUE(q.messages[2].content.empty());
  EXPECT_EQ(q.messages[2].tool_calls[0].arguments, "{\"a\":1}");
  EXPECT_EQ(q.messages[3].tool_call_id, "call_1");
  ASSERT_EQ(q.tools.size(), 1u);
  EXPECT_TRUE(q.tools[0].strict);
  EXPECT_EQ(q.tool_choice->mode, ToolChoice::Mode::kTool);
  EXPECT_EQ(q.tool_choice->name, "f");
  EXPECT_EQ(q.parallel_tool_calls, false);
  EXPECT_EQ(q.response_format->type, ResponseFormat::Type::kJsonSchema);
  EXPECT_EQ(q.response_format->name, "s");
  EXPECT_EQ(q.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(q.temperature, 0.0);
  EXPECT_EQ(q.seed, 7);
  EXPECT_EQ(q.max_tokens, 20);
  EXPECT_TRUE(q.stream);
  EXPECT_TRUE(q.include_usage);
  EXPECT_EQ(q.user, "u1");
  EXPECT_EQ(q.routing.models, (std::vector<std::string>{"m2", "m3", "m4"}));
  EXPECT_EQ(q.routing.order, (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(q.routing.only, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(ParseOpenAIChatRequest, IncludeUsageNeedsStream) {
  Result<ChatRequest> r = ParseOpenAIChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],
          "stream_options":{"include_usage":true}})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->include_usage);
}

TEST(ParseOpenAIChatRequest, BareStringImageUrl) {
  Result<ChatRequest> r = ParseOpenAIChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":[
          {"type":"image_url","image_url":"https://x.test/a.png"}]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->messages[0].content[0].url, "https://x.test/a.png");
}

TEST(ParseOpenAIChatRequest, Errors) {
  const char* kUser = R"("messages":[{"role":"user","content":"hi"}])";
  auto with = [&](std::string extra) {
    return std::string("{\"model\":\"m\",") + kUser + "," + extra + "}";
  };
  ExpectChatError("[1]", "request body: expected a JSON object");
  ExpectChatError("{", "request body: invalid JSON");
  ExpectChatError(R"({"messages":[]})", "model: required");
  ExpectChatError(R"({"model":3,"messages":[]})", "model: expected a string, got a number");
  ExpectChatError(R"({"model":"m"})", "messages: required");
  ExpectChatError(R"({"model":"m","messages":[]})", "messages: must contain at least one");
  ExpectChatError(R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role: required");
  ExpectChatError(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})",
                  "messages[0].role: unknown role \"robot\"");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content: required");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":5}]})",
                  "messages[0].content: expected a string or an array");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"user",
      "content":"b"},{"role":"user","content":[{"type":"image_url","image_url":{"url":7}}]}]})",
                  "messages[2].content[0].image_url.url: expected a string, got a number");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"ftp://x"}}]}]})",
                  "messages[0].content[0].image_url.url: expected an http(s) URL");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:image/png,abcd"}}]}]})",
                  "messages[0].content[0].image_url.url: only base64 data URLs");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:text/plain;base64,abcd"}}]}]})",
                  "messages[0].content[0].image_url.url: expected an image media type");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:image/png;base64,ab$d"}}]}]})",
                  "messages[0].content[0].image_url.url: the data URL's payload is not valid");
  ExpectChatError(R"({"model":"m","messages":[{"role":"system","content":[
      {"type":"image_url","image_url":{"url":"https://x"}}]}]})",
                  "messages[0].content[0].type: image_url parts are only allowed in user");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"input_audio","input_audio":{}}]}]})",
                  "messages[0].content[0].type: \"input_audio\" content parts are not supported");
  ExpectChatError(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})",
                  "messages[0].content[0].text: required");
  ExpectChatError(
      R"({"model":"m","messages":[{"role":"assistant"}]})",
      "messages[0].content: required (an assistant message needs content or tool_calls)");
  ExpectChatError(R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c",
      "type":"function","function":{"name":1}}]}]})",
                  "messages[0].tool_calls[0].function.name: expected a string");
  ExpectChatError(R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
                  "messages[0].tool_call_id: required");
  ExpectChatError(R"({"model":"m","messages":[{"role":"function","content":"x","name":"f"}]})",
                  "messages[0].role: the legacy \"function\" role");
  ExpectChatError(with(R"("n":2)"), "n: only n=1 is supported, got 2");
  ExpectChatError(with(R"("tools":[{"type":"web_search"}])"),
                  "tools[0].type: unsupported tool type \"web_search\"");
  ExpectChatError(with(R"("tools":[{"type":"function","function":{"description":"x"}}])"),
                  "tools[0].function.name: required");
  ExpectChatError(with(R"("tools":[{"type":"function","function":{"name":"f","parameters":[]}}])"),
                  "tools[0].function.parameters: expected a JSON Schema object");
  ExpectChatError(with(R"("tool_choice":"sometimes")"), "tool_choice: expected \"auto\"");
  ExpectChatError(with(R"("tool_choice":{"type":"allowed_tools"})"), "tool_choice.type: only");
  ExpectChatError(with(R"("response_format":{"type":"xml"})"), "response_format.type: expected");
  ExpectChatError(with(R"("response_format":{"type":"json_schema"})"),
                  "response_format.json_schema: required");
  ExpectChatError(with(R"("response_format":{"type":"json_schema","json_schema":{"schema":{}}})"),
                  "response_format.json_schema.name: required");
  ExpectChatError(with(R"("stop":[1])"), "stop[0]: expected a string");
  ExpectChatError(with(R"("stop":1)"), "stop: expected a string or an array of strings");
  ExpectChatError(with(R"("temperature":"hot")"), "temperature: expected a number, got a string");
  ExpectChatError(with(R"("temperature":3)"), "temperature: must be between 0 and 2");
  ExpectChatError(with(R"("top_p":1.5)"), "top_p: must be between 0 and 1");
  ExpectChatError(with(R"("seed":1e300)"), "seed: integer out of range");
  ExpectChatError(with(R"("seed":1.5)"), "seed: expected an integer");
  ExpectChatError(with(R"("max_tokens":0)"), "max_tokens: must be at least 1");
  ExpectChatError(with(R"("max_completion_tokens":"5")"),
                  "max_completion_tokens: expected an integer");
  ExpectChatError(with(R"("stream":"yes")"), "stream: expected a boolean");
  ExpectChatError(with(R"("stream_options":{"include_usage":1})"),
                  "stream_options.include_usage: expected a boolean");
  ExpectChatError(with(R"("user":5)"), "user: expected a string");
  ExpectChatError(with(R"("parallel_tool_calls":"no")"), "parallel_tool_calls: expected a boolean");
  ExpectChatError(with(R"("models":"a")"), "models: expected an array");
  ExpectChatError(with(R"("provider":{"order":[1]})"), "provider.order[0]: expected a string");
  ExpectChatError(with(R"("providerOptions":{"gateway":{"only":"x"}})"),
                  "providerOptions.gateway.only: expected an array");
}

TEST(ParseOpenAIChatRequest, NullMeansAbsent) {
  Result<ChatRequest> r = ParseOpenAIChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":null,
          "tools":null,"stop":null,"user":null})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->temperature.has_value());
}

json::value ParseOrFail(std::string_view s) {
  Result<json::value> v = ParseJson(s, "test");
  EXPECT_TRUE(v.ok()) << s;
  return v.ok() ? *v : json::value();
}

TEST(EncodeOpenAIChatResponse, ToolCallsUsageCostAndIris) {
  ChatResponse resp;
  resp.id = "chatcmpl-1";
  resp.model = "gpt-4o";
  resp.created = 5;
  resp.tool_calls.push_back({"call_1", "f", "{}", {}});
  resp.finish_reason = FinishReason::kToolCalls;
  resp.usage = {.input_tokens = 10,
                .output_tokens = 4,
                .cached_input_tokens = 3,
                .reasoning_tokens = 1,
                .reported = true};
  json::object iris{{"provider", "openai"}};
  json::value v = ParseOrFail(EncodeOpenAIChatResponse(resp, &iris, 0.5));
  EXPECT_EQ(v, ParseOrFail(R"({"id":"chatcmpl-1","object":"chat.completion","created":5,
      "model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,
      "refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f",
      "arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
      "usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,
      "prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":
      {"reasoning_tokens":1},"cost":0.5},"iris":{"provider":"openai"}})"));
}

StreamEvent EventOf(StreamEvent::Type type) {
  StreamEvent e;
  e.type = type;
  return e;
}

std::vector<std::string> ChatChunkData(const std::string& sse) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < sse.size()) {
    size_t end = sse.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos);
    if (end == std::string::npos) break;
    out.push_back(sse.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

TEST(OpenAIStreamEncoder, TextToolsUsageAndIris) {
  OpenAIStreamEncoder enc(/*include_usage=*/true);
  std::string out;
  StreamEvent start = EventOf(StreamEvent::Type::kStart);
  start.id = "c1";
  start.model = "m";
  start.created = 9;
  out += enc.Encode(start);
  StreamEvent text = EventOf(StreamEvent::Type::kTextDelta);
  text.text = "Hi";
  out += enc.Encode(text);
  StreamEvent tc = EventOf(StreamEvent::Type::kToolCallStart);
  tc.index = 0;
  tc.id = "call_1";
  tc.name = "f";
  out += enc.Encode(tc);
  StreamEvent args = EventOf(StreamEvent::Type::kToolCallDelta);
  args.text = "{}";
  out += enc.Encode(args);
  StreamEvent fin = EventOf(StreamEvent::Type::kFinish);
  fin.finish_reason = FinishReason::kToolCalls;
  EXPECT_EQ(enc.Encode(fin), "");
  StreamEvent usage = EventOf(StreamEvent::Type::kUsage);
  usage.usage.input_tokens = 2;
  usage.usage.output_tokens = 3;
  EXPECT_EQ(enc.Encode(usage), "");
  json::object iris{{"attempts", 1}};
  out += enc.Finish(&iris, 0.25);
  std::vector<std::string> ev = ChatChunkData(out);
  ASSERT_EQ(ev.size(), 7u);
  EXPECT_EQ(ev.back(), "data: [DONE]");
  EXPECT_EQ(ParseOrFail(ev[0].substr(6)),
            ParseOrFail(R"({"id":"c1","object":"chat.completion.chunk","created":9,"model":"m",
      "choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},
      "logprobs":null,"finish_reason":null}],"usage":null})"));
  EXPECT_EQ(ParseOrFail(ev[2].substr(6)).at("choices").at(0).at("delta"),
            ParseOrFail(R"({"tool_calls":[{"index":0,"id":"call_1","type":"function",
                      "function":{"name":"f","arguments":""}}]})"));
  EXPECT_EQ(ParseOrFail(ev[4].substr(6)).at("choices").at(0).at("finish_reason"), "tool_calls");
  json::value last = ParseOrFail(ev[5].substr(6));
  EXPECT_EQ(last.at("choices"), json::array());
  EXPECT_EQ(last.at("usage").at("total_tokens"), 5);
  EXPECT_EQ(last.at("usage").at("cost"), 0.25);
  EXPECT_EQ(last.at("iris").at("attempts"), 1);
}

TEST(OpenAIStreamEncoder, NoUsageWithoutIncludeUsageAndIrisOnFinishChunk) {
  OpenAIStreamEncoder enc(/*include_usage=*/false, /*created=*/42);
  std::string out = enc.Encode(EventOf(StreamEvent::Type::kStart));
  StreamEvent usage = EventOf(StreamEvent::Type::kUsage);
  usage.usage.input_tokens = 2;
  out += enc.Encode(usage);
  json::object iris{{"k", "v"}};
  out += enc.Finish(&iris, 1.0);
  std::vector<std::string> ev = ChatChunkData(out);
  ASSERT_EQ(ev.size(), 3u);
  json::value fin = ParseOrFail(ev[1].substr(6));
  EXPECT_FALSE(fin.as_object().contains("usage"));
  EXPECT_EQ(fin.at("created"), 42);
  EXPECT_EQ(fin.at("iris").at("k"), "v");
  EXPECT_EQ(fin.at("choices").at(0).at("finish_reason"), "stop");
}

TEST(OpenAIStreamEncoder, ErrorHasNoDone) {
  OpenAIStreamEncoder enc(false);
  GatewayError e;
  e.error_class = ErrorClass::kUpstream;
  e.message = "cut";
  e.provider = "openai";
  std::string out = enc.Error(e);
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
  ASSERT_EQ(out.rfind("data: ", 0), 0u);
  json::value v = ParseOrFail(out.substr(6));
  EXPECT_EQ(v.at("error").at("message"), "cut");
  EXPECT_EQ(v.at("error").at("type"), "upstream_error");
  EXPECT_EQ(v.at("error").at("provider"), "openai");
}

TEST(EncodeOpenAIModelList, Shape) {
  EXPECT_EQ(ParseOrFail(EncodeOpenAIModelList({{"a", 1, "iris"}, {"b", 2, "openai"}})),
            ParseOrFail(R"({"object":"list","data":[
      {"id":"a","object":"model","created":1,"owned_by":"iris"},
      {"id":"b","object":"model","created":2,"owned_by":"openai"}]})"));
}

TEST(FinishReasons, RoundTrip) {
  EXPECT_EQ(ParseOpenAIFinishReason("model_length"), FinishReason::kLength);
  EXPECT_EQ(ParseOpenAIFinishReason("function_call"), FinishReason::kToolCalls);
  EXPECT_EQ(ParseOpenAIFinishReason("weird"), FinishReason::kStop);
  EXPECT_EQ(OpenAIFinishReason(FinishReason::kContentFilter), "content_filter");
}

}  // namespace
}  // namespace iris::gateway::api
