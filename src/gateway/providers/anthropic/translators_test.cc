// Focused tests of the Anthropic and Gemini translators' tricky mappings: role merging and
// system lifting, max_tokens defaults, argument validation, usage normalisation, Gemini id
// synthesis and function-name recovery, schema cleaning, stream termination and errors.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/gemini/gemini_translator.h"

namespace iris::gateway::providers {
namespace {

namespace json = boost::json;

Message Msg(Role role, std::string text) {
  Message m;
  m.role = role;
  if (!text.empty()) m.content.push_back(ContentPart::Text(std::move(text)));
  return m;
}

Message ToolResult(std::string id, std::string text) {
  Message m = Msg(Role::kTool, std::move(text));
  m.tool_call_id = std::move(id);
  return m;
}

const TargetInfo kAnthropic{"anthropic", "claude-sonnet-4-5-20250929", "k",
                            "https://api.anthropic.com/v1"};
const TargetInfo kGemini{"gemini", "gemini-2.5-flash", "k",
                         "https://generativelanguage.googleapis.com/v1beta"};

json::value Body(const Translator& t, const ChatRequest& r, const TargetInfo& target) {
  Result<UpstreamRequest> up = t.EncodeRequest(r, target);
  EXPECT_TRUE(up.ok()) << up.status().ToString();
  return up.ok() ? json::parse(up->body) : json::value();
}

TEST(AnthropicTranslator, LiftsSystemMergesRolesAndDefaultsMaxTokens) {
  ChatRequest r;
  r.messages.push_back(Msg(Role::kSystem, "A"));
  r.messages.push_back(Msg(Role::kAssistant, "I start"));  // needs a user turn before it
  r.messages.push_back(Msg(Role::kUser, "u1"));
  r.messages.push_back(Msg(Role::kSystem, "B"));  // mid-conversation: lifted too
  r.messages.push_back(Msg(Role::kUser, "u2"));
  r.messages.push_back(Msg(Role::kUser, ""));              // empty: dropped
  r.messages.push_back(Msg(Role::kAssistant, "pre  \n"));  // prefill: trailing space trimmed
  r.temperature = 1.6;
  r.seed = 3;
  r.parallel_tool_calls = false;
  r.tools.push_back(Tool{"f", "", json::value(), false, std::nullopt});
  auto t = MakeAnthropicTranslator();
  json::value body = Body(*t, r, kAnthropic);
  EXPECT_EQ(body.at("system"),
            json::parse(R"([{"type":"text","text":"A"},{"type":"text","text":"B"}])"));
  EXPECT_EQ(body.at("messages"), json::parse(R"([
    {"role":"user","content":[{"type":"text","text":"."}]},
    {"role":"assistant","content":[{"type":"text","text":"I start"}]},
    {"role":"user","content":[{"type":"text","text":"u1"},{"type":"text","text":"u2"}]},
    {"role":"assistant","content":[{"type":"text","text":"pre"}]}])"));
  EXPECT_EQ(body.at("max_tokens"), 8192);
  EXPECT_EQ(body.at("temperature"), 1.0);
  EXPECT_FALSE(body.as_object().contains("seed"));
  EXPECT_EQ(body.at("tool_choice"),
            json::parse(R"({"type":"auto","disable_parallel_tool_use":true})"));
  EXPECT_EQ(body.at("tools").at(0).at("input_schema"),
            json::parse(R"({"type":"object","properties":{}})"));
  EXPECT_EQ(AnthropicDefaultMaxTokens("claude-3-haiku-20240307"), 4096);
  r.max_tokens = 1000000;
  EXPECT_EQ(Body(*t, r, kAnthropic).at("max_tokens"), 64000);  // clamped to the ceiling
}

// Cache breakpoints go on their blocks (a tool result's on the tool_result block); past
// Anthropic's four, the last four are kept and the rest named.
TEST(AnthropicTranslator, CacheBreakpointsGoOnTheirBlocksAtMostFour) {
  ChatRequest r;
  Message system = Msg(Role::kSystem, "rules");
  system.content[0].cache = CacheMark{"1h"};
  Message user = Msg(Role::kUser, "a");
  user.content.push_back(ContentPart::Text("b"));
  user.content[0].cache = CacheMark{};
  user.content[1].cache = CacheMark{};
  Message call = Msg(Role::kAssistant, "");
  call.tool_calls.push_back({"c1", "f", "{}", {}});
  Message result = ToolResult("c1", "ok");
  result.content[0].cache = CacheMark{};
  r.messages = {system, user, call, result};
  Tool tool;
  tool.name = "f";
  tool.cache = CacheMark{};
  r.tools = {tool};
  auto t = MakeAnthropicTranslator();
  Result<UpstreamRequest> up = t->EncodeRequest(r, kAnthropic);
  ASSERT_TRUE(up.ok()) << up.status().message();
  json::object body = json::parse(up->body).as_object();
  // Five breakpoints: the tool's (the first) goes.
  EXPECT_FALSE(body.at("tools").at(0).as_object().contains("cache_control"));
  EXPECT_EQ(body.at("system").at(0).at("cache_control").at("ttl").as_string(), "1h");
  const json::array& turns = body.at("messages").as_array();
  EXPECT_TRUE(turns[0].at("content").at(0).as_object().contains("cache_control"));
  EXPECT_TRUE(turns[0].at("content").at(1).as_object().contains("cache_control"));
  const json::object& tool_result = turns[2].at("content").at(0).as_object();
  EXPECT_EQ(tool_result.at("type").as_string(), "tool_result");
  EXPECT_EQ(tool_result.at("cache_control").at("type").as_string(), "ephemeral");
  EXPECT_EQ(up->dropped, (std::vector<std::string>{"cache_control"}));
  // Gemini names them all.
  auto g = MakeGeminiTranslator();
  Result<UpstreamRequest> gu = g->EncodeRequest(r, kGemini);
  ASSERT_TRUE(gu.ok()) << gu.status().message();
  EXPECT_EQ(gu->dropped, (std::vector<std::string>{"cache_control"}));
}

TEST(AnthropicTranslator, ToolCallsAndResults) {
  ChatRequest r;
  r.messages.push_back(Msg(Role::kUser, "q"));
  Message a = Msg(Role::kAssistant, "");
  a.tool_calls.push_back({"call_1", "f", "", {}});  // empty arguments mean {}
  a.tool_calls.push_back({"call_2", "g", R"({"x":1})", {}});
  r.messages.push_back(a);
  r.messages.push_back(ToolResult("call_1", "r1"));
  Message err = ToolResult("call_2", "boom");
  err.is_error = true;
  r.messages.push_back(err);
  r.messages.push_back(Msg(Role::kUser, "next"));
  r.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
  auto t = MakeAnthropicTranslator();
  json::value body = Body(*t, r, kAnthropic);
  EXPECT_EQ(body.at("messages").at(1).at("content"), json::parse(R"([
    {"type":"tool_use","id":"call_1","name":"f","input":{}},
    {"type":"tool_use","id":"call_2","name":"g","input":{"x":1}}])"));
  EXPECT_EQ(body.at("messages").at(2).at("content"), json::parse(R"([
    {"type":"tool_result","tool_use_id":"call_1","content":"r1"},
    {"type":"tool_result","tool_use_id":"call_2","content":"boom","is_error":true},
    {"type":"text","text":"next"}])"));
  EXPECT_EQ(body.at("tool_choice"), json::parse(R"({"type":"any"})"));

  r.messages[1].tool_calls[1].arguments = "{not json";
  Result<UpstreamRequest> bad = t->EncodeRequest(r, kAnthropic);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "anthropic: messages[1].tool_calls[1].arguments: expected a JSON object, got invalid "
            "JSON");
  r.messages[1].tool_calls[1].arguments = "[1]";
  EXPECT_EQ(t->EncodeRequest(r, kAnthropic).status().message(),
            "anthropic: messages[1].tool_calls[1].arguments: expected a JSON object, got an "
            "array");
}

TEST(AnthropicTranslator, HistoryWithToolsButNoToolsDeclaresThemAndForbidsNewCalls) {
  ChatRequest r;
  r.messages.push_back(Msg(Role::kUser, "q"));
  Message a = Msg(Role::kAssistant, "");
  a.tool_calls.push_back({"call_1", "get_weather", R"({"city":"Paris"})", {}});
  a.tool_calls.push_back({"call_2", "get_weather", R"({"city":"Rome"})", {}});
  r.messages.push_back(a);
  r.messages.push_back(ToolResult("call_1", "sunny"));
  r.messages.push_back(ToolResult("call_2", "rain"));
  auto t = MakeAnthropicTranslator();
  json::value body = Body(*t, r, kAnthropic);
  EXPECT_EQ(body.at("tools"), json::parse(R"([{"name":"get_weather",
    "description":"A tool used earlier in this conversation.","input_schema":{"type":"object"}}])"));
  EXPECT_EQ(body.at("tool_choice"), json::parse(R"({"type":"none"})"));
  // Without tool history nothing is declared.
  ChatRequest plain;
  plain.messages.push_back(Msg(Role::kUser, "q"));
  EXPECT_FALSE(Body(*t, plain, kAnthropic).as_object().contains("tools"));
}

TEST(AnthropicTranslator, ResponseFormatAndImages) {
  ChatRequest r;
  Message u = Msg(Role::kUser, "x");
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.data_base64 = "AAAA";
  img.media_type = "image/tiff";
  u.content.push_back(img);
  r.messages.push_back(u);
  auto t = MakeAnthropicTranslator();
  EXPECT_FALSE(t->EncodeRequest(r, kAnthropic).ok());  // tiff is not accepted
  r.messages[0].content.pop_back();
  r.response_format = ResponseFormat{ResponseFormat::Type::kJsonSchema, "s",
                                     json::parse(R"({"type":"object"})"), true};
  EXPECT_EQ(
      Body(*t, r, kAnthropic).at("output_config"),
      json::parse(
          R"({"format":{"type":"json_schema","schema":{"type":"object","additionalProperties":false}}})"));
  r.response_format->type = ResponseFormat::Type::kJsonObject;
  EXPECT_EQ(t->EncodeRequest(r, kAnthropic).status().code(), ErrorCode::kInvalidArgument);
}

TEST(AnthropicTranslator, UsageIncludesCacheAndErrorsAreClassified) {
  auto t = MakeAnthropicTranslator();
  Result<ChatResponse> resp = t->DecodeResponse(R"({"id":"m","model":"c","content":[],
    "stop_reason":"max_tokens","usage":{"input_tokens":5,"cache_read_input_tokens":100,
    "cache_creation_input_tokens":20,"output_tokens":3}})");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->usage.input_tokens, 125);
  EXPECT_EQ(resp->usage.cached_input_tokens, 100);
  EXPECT_EQ(resp->usage.cache_write_tokens, 20);
  EXPECT_EQ(resp->usage.cache_write_1h_tokens, 0);
  EXPECT_EQ(resp->usage.web_searches, 0);
  EXPECT_EQ(resp->finish_reason, FinishReason::kLength);
  // The writes by lifetime, and the searches Anthropic bills by the search.
  resp = t->DecodeResponse(R"({"id":"m","model":"c","content":[],"stop_reason":"end_turn",
    "usage":{"input_tokens":5,"cache_creation_input_tokens":20,
    "cache_creation":{"ephemeral_5m_input_tokens":8,"ephemeral_1h_input_tokens":12},
    "output_tokens":3,"server_tool_use":{"web_search_requests":2}}})");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->usage.cache_write_tokens, 20);
  EXPECT_EQ(resp->usage.cache_write_1h_tokens, 12);
  EXPECT_EQ(resp->usage.web_searches, 2);

  GatewayError e = t->DecodeError(
      401,
      R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})",
      "");
  EXPECT_EQ(e.error_class, ErrorClass::kUpstream);
  EXPECT_NE(e.message.find("anthropic rejected the API key"), std::string::npos);
  EXPECT_EQ(e.upstream_status, 401);
  e = t->DecodeError(
      429, R"({"type":"error","error":{"type":"rate_limit_error","message":"slow"}})", "12");
  EXPECT_EQ(e.error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(e.retry_after_s, 12.0);
  EXPECT_EQ(t->DecodeError(529, "garbage", "").error_class, ErrorClass::kOverloaded);
  EXPECT_EQ(t->DecodeError(400, "{}", "").error_class, ErrorClass::kInvalidRequest);
}

TEST(AnthropicStream, RejectsGarbageAndEventsBeforeStart) {
  auto t = MakeAnthropicTranslator();
  auto st = t->NewStreamTranslator();
  EXPECT_EQ(st->OnEvent({"content_block_delta", "{nope", ""}).status().code(),
            ErrorCode::kDataLoss);
  auto st2 = t->NewStreamTranslator();
  EXPECT_FALSE(st2->OnEvent({"content_block_start", R"({"index":0})", ""}).ok());
  EXPECT_EQ(st2->OnEnd().status().code(), ErrorCode::kDataLoss);
}

// The answer to an Anthropic caller's body sent as is: Anthropic's own events go back as they
// came (one kAsIs each, before the neutral events read from it), with no `iris` member of the
// upstream's; a server tool's blocks do not break the neutral reading.
TEST(AnthropicStream, RelaysItsOwnEventsForTheBodySentAsIs) {
  auto t = MakeAnthropicTranslator();
  auto st = t->NewAsIsStreamTranslator();
  // (data on two lines, and an upstream's own "iris": back as one line, without it)
  auto start = st->OnEvent(
      {"message_start",
       "{\"type\":\"message_start\",\n\"message\":{\"id\":\"m\",\"model\":\"c\",\"iris\":{\"x\":1},"
       "\"usage\":{\"input_tokens\":5}}}",
       ""});
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  ASSERT_EQ(start->size(), 3u);  // the relay, then kStart and kUsage
  EXPECT_EQ((*start)[0].type, StreamEvent::Type::kAsIs);
  EXPECT_EQ((*start)[0].as_is_dialect, Dialect::kAnthropic);
  EXPECT_EQ((*start)[0].name, "message_start");
  EXPECT_FALSE((*start)[0].as_is_content);  // (no answer yet: no first token)
  EXPECT_EQ((*start)[0].text.find('\n'), std::string::npos);
  EXPECT_EQ(json::parse((*start)[0].text), json::parse(R"({"type":"message_start",
      "message":{"id":"m","model":"c","usage":{"input_tokens":5}}})"));
  EXPECT_EQ((*start)[1].type, StreamEvent::Type::kStart);
  EXPECT_EQ((*start)[2].type, StreamEvent::Type::kUsage);

  // A server tool's call: its input deltas are relayed and read as nothing.
  const std::string block =
      R"({"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use",)"
      R"("id":"srvtoolu_1","name":"web_search","input":{}}})";
  auto srv = st->OnEvent({"", block, ""});  // (the name from the data's type)
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  ASSERT_EQ(srv->size(), 1u);
  EXPECT_EQ((*srv)[0].name, "content_block_start");
  EXPECT_EQ((*srv)[0].text, block);      // (unchanged: as it came)
  EXPECT_TRUE((*srv)[0].as_is_content);  // (the model at work: the first token)
  auto input = st->OnEvent({"content_block_delta",
                            R"({"type":"content_block_delta","index":0,"delta":)"
                            R"({"type":"input_json_delta","partial_json":"{\"q\":1}"}})",
                            ""});
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ASSERT_EQ(input->size(), 1u);
  EXPECT_TRUE((*input)[0].as_is_content);
  // The type goes into the data when only the event's name had it.
  auto stop = st->OnEvent({"content_block_stop", R"({"index":0})", ""});
  ASSERT_TRUE(stop.ok());
  EXPECT_EQ(json::parse((*stop)[0].text),
            json::parse(R"({"index":0,"type":"content_block_stop"})"));
  // An input delta for a block that never started is still garbage.
  auto stray = st->OnEvent({"content_block_delta",
                            R"({"type":"content_block_delta","index":7,"delta":)"
                            R"({"type":"input_json_delta","partial_json":"{}"}})",
                            ""});
  EXPECT_EQ(stray.status().code(), ErrorCode::kDataLoss);

  // Only plain event names go back into a caller's stream.
  auto st2 = t->NewAsIsStreamTranslator();
  EXPECT_EQ(st2->OnEvent({"message start", R"({"message":{}})", ""}).status().code(),
            ErrorCode::kDataLoss);
  // An error event is iris's to report (its own error event), not relayed.
  auto st3 = t->NewAsIsStreamTranslator();
  auto err = st3->OnEvent(
      {"error", R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})", ""});
  EXPECT_EQ(err.status().code(), ErrorCode::kUnavailable);

  // The translator for other callers relays nothing, and reads the same blocks.
  auto plain = t->NewStreamTranslator();
  auto p0 = plain->OnEvent({"message_start", R"({"message":{"id":"m"}})", ""});
  ASSERT_TRUE(p0.ok());
  for (const StreamEvent& e : *p0) EXPECT_NE(e.type, StreamEvent::Type::kAsIs);
  ASSERT_TRUE(plain->OnEvent({"", block, ""}).ok());
  auto p1 = plain->OnEvent({"content_block_delta",
                            R"({"type":"content_block_delta","index":0,"delta":)"
                            R"({"type":"input_json_delta","partial_json":"{}"}})",
                            ""});
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_TRUE(p1->empty());
}

// A whole answer to a body sent as is keeps Anthropic's message (less an upstream's `iris`);
// the same answer read for another caller keeps none.
TEST(AnthropicTranslator, KeepsItsOwnMessageForTheBodySentAsIs) {
  auto t = MakeAnthropicTranslator();
  const std::string body = R"({"id":"msg_1","type":"message","model":"c","content":[
      {"type":"text","text":"A "},
      {"type":"text","text":"cited","citations":[{"type":"char_location","cited_text":"x"}]},
      {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}}],
      "stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2,
      "server_tool_use":{"web_search_requests":1}},"iris":{"cost_usd":9}})";
  Result<ChatResponse> as_is = t->DecodeAsIsResponse(body);
  ASSERT_TRUE(as_is.ok()) << as_is.status().ToString();
  EXPECT_EQ(as_is->text, "A cited");  // (what iris reads: the log's text, the usage)
  EXPECT_EQ(as_is->usage.input_tokens, 3);
  ASSERT_NE(as_is->as_is, nullptr);
  EXPECT_EQ(as_is->as_is_dialect, Dialect::kAnthropic);
  json::value want = json::parse(body);
  want.as_object().erase("iris");
  EXPECT_EQ(json::value(*as_is->as_is), want);
  Result<ChatResponse> plain = t->DecodeResponse(body);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->as_is, nullptr);
  EXPECT_EQ(plain->text, "A cited");
}

TEST(GeminiTranslator, RecoversFunctionNamesAndMergesTurns) {
  ChatRequest r;
  r.messages.push_back(Msg(Role::kSystem, "sys"));
  r.messages.push_back(Msg(Role::kUser, "q"));
  Message a = Msg(Role::kAssistant, "");
  a.tool_calls.push_back({"call_x_0", "lookup", R"({"k":"a"})", {}});
  a.tool_calls.push_back({"call_x_1", "fetch", R"({})", {}});
  r.messages.push_back(a);
  r.messages.push_back(ToolResult("call_x_1", "B"));  // answered out of order
  Message err = ToolResult("call_x_0", "failed");
  err.is_error = true;
  r.messages.push_back(err);
  r.user = "dropped";
  r.parallel_tool_calls = false;
  r.seed = 7;
  auto t = MakeGeminiTranslator();
  json::value body = Body(*t, r, kGemini);
  EXPECT_EQ(body.at("contents").at(2), json::parse(R"({"role":"user","parts":[
    {"functionResponse":{"name":"fetch","response":{"output":"B"}}},
    {"functionResponse":{"name":"lookup","response":{"error":"failed"}}}]})"));
  EXPECT_EQ(body.at("generationConfig"), json::parse(R"({"seed":7})"));
  for (std::string_view key : {"user", "parallel_tool_calls", "metadata"}) {
    EXPECT_FALSE(body.as_object().contains(key)) << key;
  }

  r.messages.push_back(ToolResult("call_unknown", "?"));
  Result<UpstreamRequest> bad = t->EncodeRequest(r, kGemini);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("call_unknown"), std::string::npos);

  // Gemini 3 replays need the documented signature escape hatch.
  r.messages.pop_back();
  TargetInfo g3 = kGemini;
  g3.model = "gemini-3-pro-preview";
  EXPECT_EQ(Body(*t, r, g3).at("contents").at(1).at("parts").at(0).at("thoughtSignature"),
            "skip_thought_signature_validator");

  r.messages[2].tool_calls[0].arguments = "\"text\"";
  EXPECT_EQ(t->EncodeRequest(r, kGemini).status().message(),
            "gemini: messages[2].tool_calls[0].arguments: expected a JSON object, got a string");
}

TEST(GeminiTranslator, ImageUrlsNeedFetching) {
  ChatRequest r;
  Message u = Msg(Role::kUser, "x");
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.url = "https://example.com/cat.png";
  u.content.push_back(img);
  r.messages.push_back(u);
  auto t = MakeGeminiTranslator();
  Result<UpstreamRequest> up = t->EncodeRequest(r, kGemini);
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), ErrorCode::kInvalidArgument);
  r.messages[0].content[1].url = "https://generativelanguage.googleapis.com/v1beta/files/abc";
  r.messages[0].content[1].media_type = "image/png";
  EXPECT_EQ(Body(*t, r, kGemini).at("contents").at(0).at("parts").at(1),
            json::parse(R"({"fileData":{"fileUri":
              "https://generativelanguage.googleapis.com/v1beta/files/abc","mimeType":"image/png"}})"));
}

TEST(GeminiTranslator, SchemaCleaning) {
  json::value in = json::parse(R"({
    "$schema":"http://json-schema.org/draft-07/schema#","type":"object",
    "additionalProperties":false,
    "properties":{
      "a":{"type":["string","null"],"const":"x"},
      "b":{"$ref":"#/$defs/Item"},
      "c":{"oneOf":[{"type":"integer"},{"type":"null"}]},
      "d":{"type":["string","integer"]},
      "e":{"type":"array","items":{"$ref":"#/definitions/Leaf"}}},
    "$defs":{"Item":{"type":"object","properties":{"n":{"type":"number","exclusiveMinimum":0}}}},
    "definitions":{"Leaf":{"type":"string","format":"date-time"}}})");
  Result<json::value> out = CleanSchemaForGemini(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, json::parse(R"({"type":"object","properties":{
      "a":{"type":"string","nullable":true,"enum":["x"]},
      "b":{"type":"object","properties":{"n":{"type":"number"}}},
      "c":{"type":"integer","nullable":true},
      "d":{"anyOf":[{"type":"string"},{"type":"integer"}]},
      "e":{"type":"array","items":{"type":"string","format":"date-time"}}}})"));
  json::value recursive = json::parse(
      R"({"type":"object","properties":{"n":{"$ref":"#/$defs/N"}},
          "$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}})");
  EXPECT_EQ(CleanSchemaForGemini(recursive).status().code(), ErrorCode::kInvalidArgument);
}

TEST(GeminiTranslator, SynthesizesIdsAndNormalisesUsage) {
  auto t = MakeGeminiTranslator();
  Result<ChatResponse> resp = t->DecodeResponse(R"({"candidates":[{"content":{"role":"model",
    "parts":[{"text":"thinking...","thought":true},{"text":"ok"},
      {"functionCall":{"name":"a","args":{"x":1}}},{"functionCall":{"name":"b"}},
      {"functionCall":{"name":"c","id":"given"}}]},"finishReason":"STOP"}],
    "usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":4,"candidatesTokenCount":3,
      "thoughtsTokenCount":7,"toolUsePromptTokenCount":2},"responseId":"r/1","modelVersion":"g"})");
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->text, "ok");
  ASSERT_EQ(resp->tool_calls.size(), 3u);
  EXPECT_EQ(resp->tool_calls[0].id, "call_r_1_0");
  EXPECT_EQ(resp->tool_calls[1].id, "call_r_1_1");
  EXPECT_EQ(resp->tool_calls[1].arguments, "{}");
  EXPECT_EQ(resp->tool_calls[2].id, "given");
  EXPECT_EQ(resp->finish_reason, FinishReason::kToolCalls);
  EXPECT_EQ(resp->usage.input_tokens, 12);
  EXPECT_EQ(resp->usage.cached_input_tokens, 4);
  EXPECT_EQ(resp->usage.output_tokens, 10);
  EXPECT_EQ(resp->usage.reasoning_tokens, 7);

  resp = t->DecodeResponse(R"({"promptFeedback":{"blockReason":"SAFETY"}})");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->finish_reason, FinishReason::kContentFilter);
  EXPECT_FALSE(t->DecodeResponse(R"({"usageMetadata":{}})").ok());
}

TEST(GeminiTranslator, Errors) {
  auto t = MakeGeminiTranslator();
  GatewayError e = t->DecodeError(400, R"({"error":{"code":400,"message":"API key not valid.",
      "status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}})",
                                  "");
  EXPECT_EQ(e.error_class, ErrorClass::kUpstream);
  EXPECT_NE(e.message.find("gemini rejected the API key"), std::string::npos);
  EXPECT_EQ(t->DecodeError(400, R"({"error":{"status":"INVALID_ARGUMENT","message":"bad"}})", "")
                .error_class,
            ErrorClass::kInvalidRequest);
  EXPECT_EQ(t->DecodeError(503, R"([{"error":{"status":"UNAVAILABLE","message":"busy"}}])", "")
                .error_class,
            ErrorClass::kOverloaded);
  EXPECT_EQ(t->DecodeError(504, "", "").error_class, ErrorClass::kUpstreamTimeout);

  auto st = t->NewStreamTranslator();
  Result<std::vector<StreamEvent>> ev =
      st->OnEvent({"", R"({"error":{"code":500,"message":"oops","status":"INTERNAL"}})", ""});
  EXPECT_EQ(ev.status().code(), ErrorCode::kUnavailable);
}

// A reasoning effort becomes extended thinking where Anthropic takes it, and is named as
// dropped where it would refuse it (a tool history without signed thinking, a forced tool).
TEST(AnthropicTranslator, ReasoningEffortBecomesThinkingWithinAnthropicsRules) {
  ChatRequest r;
  r.messages.push_back({Role::kUser, {ContentPart::Text("think")}, {}, "", "", false});
  r.reasoning_effort = "medium";
  r.max_tokens = 100;
  r.temperature = 0.3;
  r.top_p = 0.5;
  auto t = MakeAnthropicTranslator();
  Result<UpstreamRequest> up = t->EncodeRequest(r, kAnthropic);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  json::object body = json::parse(up->body).as_object();
  EXPECT_EQ(body.at("thinking"), json::parse(R"({"type":"enabled","budget_tokens":8192})"));
  EXPECT_EQ(body.at("max_tokens").as_int64(), 8292);
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("top_p"));
  EXPECT_EQ(up->dropped, (std::vector<std::string>{"temperature", "top_p"}));

  ChatRequest tools = r;
  tools.messages.push_back({Role::kAssistant, {}, {{"call_1", "f", "{}", {}}}, "", "", false});
  tools.messages.push_back({Role::kTool, {ContentPart::Text("ok")}, {}, "call_1", "", false});
  up = t->EncodeRequest(tools, kAnthropic);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_FALSE(json::parse(up->body).as_object().contains("thinking"));
  EXPECT_EQ(up->dropped, std::vector<std::string>{"reasoning_effort"});

  ChatRequest forced = r;
  forced.tools.push_back({"f", "", json::object{{"type", "object"}}, false, std::nullopt});
  forced.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
  up = t->EncodeRequest(forced, kAnthropic);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_FALSE(json::parse(up->body).as_object().contains("thinking"));
}

}  // namespace
}  // namespace iris::gateway::providers
