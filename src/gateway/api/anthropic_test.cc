// Tests of the inbound Anthropic codec: field-path errors, the tool_result split, and the
// message / SSE encoders (usage semantics, the held-back message_start, extras placement).
#include "gateway/api/anthropic.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

StreamEvent Ev(StreamEvent::Type type, std::string text = "", int index = 0, std::string id = "",
               std::string name = "") {
  StreamEvent e;
  e.type = type;
  e.text = std::move(text);
  e.index = index;
  e.id = std::move(id);
  e.name = std::move(name);
  return e;
}

std::string ParseError(std::string_view body) {
  Result<ChatRequest> r = ParseAnthropicRequest(body);
  EXPECT_FALSE(r.ok()) << body;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

TEST(ParseAnthropicRequest, RequiredFieldsNameTheirPath) {
  EXPECT_EQ(ParseError(R"({"max_tokens":5,"messages":[{"role":"user","content":"hi"}]})"),
            "model: required");
  EXPECT_EQ(ParseError(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"),
            "max_tokens: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":"5","messages":[]})"),
            "max_tokens: expected an integer, got a string");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5})"), "messages: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[]})"),
            "messages: must contain at least one message");
  EXPECT_EQ(ParseError("[1]"), "request body: expected a JSON object, got an array");
  EXPECT_EQ(ParseError("{"), "request body: invalid JSON at byte 1: incomplete JSON");
}

TEST(ParseAnthropicRequest, NestedErrorsNameTheirPath) {
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[
      {"role":"user","content":"a"},{"role":"system","content":"b"}]})"),
            "messages[1].role: expected \"user\" or \"assistant\", got \"system\"");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"text","text":"a"},{"type":"image","source":{"type":"path","path":"/etc"}}]}]})"),
            "messages[0].content[1].source.type: \"path\" is not supported (use \"base64\" or "
            "\"url\")");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"image","source":{"type":"base64","data":"AA=="}}]}]})"),
            "messages[0].content[0].source.media_type: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant",
      "content":[{"type":"tool_use","id":"t","name":"f","input":"x"}]}]})"),
            "messages[0].content[0].input: expected an object, got a string");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user",
      "content":[{"type":"tool_result","tool_use_id":"t","content":[{"text":"x"}]}]}]})"),
            "messages[0].content[0].content[0].type: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],
      "tools":[{"name":"f"}]})"),
            "tools[0].input_schema: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],
      "tool_choice":{"type":"tool"}})"),
            "tool_choice.name: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],
      "stop_sequences":["x",3]})"),
            "stop_sequences[1]: expected a string, got a number");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],
      "temperature":1.5})"),
            "temperature: must be between 0 and 1");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],
      "metadata":{"user_id":7}})"),
            "metadata.user_id: expected a string, got a number");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":9223372036854775808,"messages":[]})"),
            "max_tokens: integer out of range");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"system":7,"messages":[]})"),
            "system: expected a string or an array of text blocks, got a number");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"image","source":{"type":"url","url":3}}]}]})"),
            "messages[0].content[0].source.url: expected a string, got a number");
  EXPECT_EQ(
      ParseError(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"}],
      "tool_choice":{"type":"sometimes"}})"),
      "tool_choice.type: expected \"auto\", \"any\", \"tool\" or \"none\", got \"sometimes\"");
}

TEST(ParseAnthropicRequest, ToolResultsSplitIntoToolMessagesInOrder) {
  Result<ChatRequest> r = ParseAnthropicRequest(R"({"model":"claude","max_tokens":100,
    "system":[{"type":"text","text":"be terse"},{"type":"text","text":"be kind"}],
    "messages":[
      {"role":"user","content":"weather in Paris and Rome?"},
      {"role":"assistant","content":[{"type":"text","text":"Checking."},
        {"type":"tool_use","id":"toolu_1","name":"w","input":{"city":"Paris"}},
        {"type":"tool_use","id":"toolu_2","name":"w","input":{"city":"Rome"}}]},
      {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"toolu_1","content":"21C"},
        {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,
         "content":[{"type":"text","text":"timeout"}]},
        {"type":"text","text":"and Oslo?"}]}],
    "tool_choice":{"type":"any","disable_parallel_tool_use":true},
    "metadata":{"user_id":"u-1"},"stream":true,"top_k":5,"thinking":{"type":"disabled"}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ChatRequest& q = *r;
  EXPECT_EQ(q.dialect, Dialect::kAnthropic);
  EXPECT_EQ(q.max_tokens, 100);
  EXPECT_TRUE(q.stream);
  EXPECT_EQ(q.user, "u-1");
  EXPECT_EQ(q.top_k, 5);
  ASSERT_TRUE(q.tool_choice.has_value());
  EXPECT_EQ(q.tool_choice->mode, ToolChoice::Mode::kRequired);
  EXPECT_EQ(q.parallel_tool_calls, false);
  ASSERT_EQ(q.messages.size(), 6u);
  EXPECT_EQ(q.messages[0].role, Role::kSystem);
  ASSERT_EQ(q.messages[0].content.size(), 2u);
  EXPECT_EQ(q.messages[1].role, Role::kUser);
  EXPECT_EQ(q.messages[2].role, Role::kAssistant);
  ASSERT_EQ(q.messages[2].tool_calls.size(), 2u);
  EXPECT_EQ(q.messages[2].tool_calls[1].arguments, R"({"city":"Rome"})");
  EXPECT_EQ(q.messages[3].role, Role::kTool);
  EXPECT_EQ(q.messages[3].tool_call_id, "toolu_1");
  EXPECT_FALSE(q.messages[3].is_error);
  EXPECT_EQ(q.messages[4].role, Role::kTool);
  EXPECT_EQ(q.messages[4].tool_call_id, "toolu_2");
  EXPECT_TRUE(q.messages[4].is_error);
  EXPECT_EQ(q.messages[4].content[0].text, "timeout");
  EXPECT_EQ(q.messages[5].role, Role::kUser);
  EXPECT_EQ(q.messages[5].content[0].text, "and Oslo?");
}

TEST(ParseAnthropicRequest, Images) {
  Result<ChatRequest> r = ParseAnthropicRequest(R"({"model":"m","max_tokens":5,"messages":[
    {"role":"user","content":[
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}},
      {"type":"image","source":{"type":"url","url":"https://x.test/a.jpg"}}]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& parts = r->messages[0].content;
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].type, ContentPart::Type::kImage);
  EXPECT_EQ(parts[0].media_type, "image/png");
  EXPECT_EQ(parts[0].data_base64, "iVBO");
  EXPECT_EQ(parts[1].url, "https://x.test/a.jpg");
}

// A budget reserves the searches the web search tools allow: their max_uses, summed; none for
// a tool without one, or one that is not a positive integer (Anthropic's to refuse), or another
// server tool's.
TEST(ParseAnthropicRequest, TheSearchesABudgetReservesAreTheSearchToolsMaxUses) {
  auto searches = [](const std::string& tools) {
    Result<ChatRequest> r = ParseAnthropicRequest(
        R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"q"}],"tools":)" +
        tools + "}");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->max_web_searches : -1;
  };
  EXPECT_EQ(searches(R"([{"type":"web_search_20250305","name":"web_search","max_uses":3},
      {"type":"web_search_20260209","name":"web_search_2","max_uses":4},
      {"type":"web_search_20250305","name":"web_search_3"},
      {"type":"web_search_20250305","name":"web_search_4","max_uses":"9"},
      {"type":"web_search_20250305","name":"web_search_5","max_uses":-2},
      {"type":"code_execution_20250825","name":"code_execution","max_uses":8}])"),
            7);
  EXPECT_EQ(searches(R"([{"type":"web_search_20250305","name":"web_search"}])"), 0);
  EXPECT_EQ(searches(R"([{"type":"web_search_20250305","name":"a","max_uses":9000000000000},
      {"type":"web_search_20250305","name":"b","max_uses":9000000000000}])"),
            kMaxReservedWebSearches);
  // No overflow from the largest counts JSON has (past int64, too: the most).
  EXPECT_EQ(searches(R"([{"type":"web_search_20250305","name":"a","max_uses":1},
      {"type":"web_search_20250305","name":"b","max_uses":9223372036854775807},
      {"type":"web_search_20250305","name":"c","max_uses":9223372036854775807}])"),
            kMaxReservedWebSearches);
  EXPECT_EQ(searches(R"([{"type":"web_search_20250305","name":"a",)"
                     R"("max_uses":18446744073709551615}])"),
            kMaxReservedWebSearches);
}

// What only Anthropic's own API takes (server tools, documents, server tools' blocks, files in
// its account, MCP servers, a container) is noted for it rather than refused: Anthropic takes
// the body as written, another provider refuses it naming each.

TEST(ParseAnthropicRequest, WhatOnlyAnthropicTakesIsNotedForIt) {
  Result<ChatRequest> r = ParseAnthropicRequest(R"({"model":"m","max_tokens":5,
    "tools":[{"name":"f","input_schema":{"type":"object"}},
             {"type":"web_search_20250305","name":"web_search","max_uses":2},
             {"type":"bash_20250124","name":"bash"},
             {"type":"custom","name":"g","input_schema":{"type":"object"}}],
    "messages":[
      {"role":"user","content":[
        {"type":"text","text":"Summarise"},
        {"type":"document","source":{"type":"file","file_id":"file_011"}},
        {"type":"image","source":{"type":"file","file_id":"file_012"}},
        {"type":"<script>","source":{"type":"text","data":"x"}},
        {"type":"container_upload","file_id":"file_013"},
        {"type":"document","source":{"type":"content","content":[
          {"type":"image","source":{"type":"file","file_id":"file_014"}}]}}]},
      {"role":"assistant","content":[
        {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search",
         "input":{"query":"q","file_id":"the model's own words"}},
        {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},
        {"type":"text","text":"Found it"}]},
      {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"t","content":[
          {"type":"search_result","source":"https://x.test","title":"t","content":[]},
          {"type":"text","text":"ok"}]}]}],
    "mcp_servers":[{"type":"url","url":"https://mcp.test/sse","name":"m"}],
    "container":"container_011"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(
      r->as_is_only,
      (std::vector<std::string>{
          "messages[0].content[1] (document)", "messages[0].content[2] (an image from a file)",
          "messages[0].content[3] (an unknown type)", "messages[0].content[4] (container_upload)",
          "messages[0].content[5] (document)", "messages[1].content[0] (server_tool_use)",
          "messages[1].content[1] (web_search_tool_result)",
          "messages[2].content[0].content[0] (search_result)", "tools[1] (web_search_20250305)",
          "tools[2] (bash_20250124)", "mcp_servers (MCP servers)",
          "container (a code execution container)"}));
  EXPECT_EQ(r->account_refs,
            (std::vector<std::string>{"messages[0].content[1] (in the provider account)",
                                      "messages[0].content[2] (in the provider account)",
                                      "messages[0].content[4] (in the provider account)",
                                      "messages[0].content[5] (in the provider account)",
                                      "container (in the provider account)"}));
  EXPECT_EQ(r->max_web_searches, 2);  // (the search tool's max_uses, for a budget)
  // What iris reads is the rest.
  ASSERT_EQ(r->tools.size(), 2u);
  EXPECT_EQ(r->tools[0].name, "f");
  EXPECT_EQ(r->tools[1].name, "g");
  ASSERT_EQ(r->messages.size(), 3u);
  ASSERT_EQ(r->messages[0].content.size(), 1u);
  EXPECT_EQ(r->messages[0].content[0].text, "Summarise");
  ASSERT_EQ(r->messages[1].content.size(), 1u);
  EXPECT_EQ(r->messages[1].content[0].text, "Found it");
  EXPECT_TRUE(r->messages[1].tool_calls.empty());
  ASSERT_EQ(r->messages[2].content.size(), 1u);
  EXPECT_EQ(r->messages[2].content[0].text, "ok");
  ASSERT_NE(r->caller_body, nullptr);  // (the body Anthropic takes as written)

  // A request of only what iris reads notes nothing; an empty list of MCP servers is none.
  Result<ChatRequest> plain = ParseAnthropicRequest(R"({"model":"m","max_tokens":5,
    "messages":[{"role":"user","content":"hi"}],"mcp_servers":[],
    "container":{"skills":[{"type":"anthropic","skill_id":"pdf"}]}})");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->as_is_only,
            (std::vector<std::string>{"container (a code execution container)"}));
  EXPECT_TRUE(plain->account_refs.empty());  // (a container made for this request)
  // Skills uploaded to the account are in it; Anthropic's own are not.
  Result<ChatRequest> skills = ParseAnthropicRequest(R"({"model":"m","max_tokens":5,
    "messages":[{"role":"user","content":"hi"}],
    "container":{"skills":[{"type":"anthropic","skill_id":"pdf"},
                           {"type":"custom","skill_id":"skill_01"}]}})");
  ASSERT_TRUE(skills.ok()) << skills.status().ToString();
  EXPECT_EQ(skills->account_refs,
            (std::vector<std::string>{"container.skills[1] (in the provider account)"}));
}

// The caller's anthropic-beta header reaches Anthropic only as plain names.
TEST(ParseAnthropicBeta, TakesPlainNamesOnly) {
  Result<std::string> two = ParseAnthropicBeta(" files-api-2025-04-14 ,mcp-client-2025-04-04");
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(*two, "files-api-2025-04-14,mcp-client-2025-04-04");
  EXPECT_EQ(ParseAnthropicBeta("context-1m-2025-08-07").value(), "context-1m-2025-08-07");
  std::string many;
  for (int i = 0; i < 17; ++i) many += (i ? "," : "") + std::string("b") + std::to_string(i);
  for (std::string bad :
       {std::string("a b"), std::string("a,,b"), std::string("a,"), std::string(" "),
        std::string("x\r\nHost: evil"), std::string(65, 'a'), std::string("caf\xc3\xa9"), many}) {
    Result<std::string> r = ParseAnthropicBeta(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("anthropic-beta: ", 0), 0u) << r.status().message();
  }
  many.resize(many.rfind(','));  // (16 names)
  EXPECT_TRUE(ParseAnthropicBeta(many).ok());
}

TEST(EncodeAnthropicResponse, UsageExcludesCachedInputAndExtrasGoUnderIris) {
  ChatResponse resp;
  resp.id = "msg_1";
  resp.model = "claude-x";
  resp.text = "hi";
  resp.tool_calls.push_back({"toolu_1", "f", R"({"a":1})", {}});
  resp.tool_calls.push_back({"toolu_2", "g", "not json", {}});
  resp.finish_reason = FinishReason::kToolCalls;
  resp.usage.input_tokens = 100;
  resp.usage.cached_input_tokens = 60;
  resp.usage.cache_write_tokens = 10;
  resp.usage.output_tokens = 7;
  json::object iris;
  iris["provider"] = "anthropic";
  json::value v = json::parse(EncodeAnthropicResponse(resp, &iris, 0.25));
  EXPECT_EQ(v.at("usage"), json::parse(R"({"input_tokens":30,"cache_creation_input_tokens":10,
      "cache_read_input_tokens":60,"output_tokens":7})"));
  EXPECT_EQ(v.at("stop_reason"), "tool_use");
  EXPECT_EQ(v.at("content").at(1).at("input"), json::parse(R"({"a":1})"));
  EXPECT_EQ(v.at("content").at(2).at("input"), json::parse(R"({"rawInvalidInput":"not json"})"));
  EXPECT_EQ(v.at("iris"), json::parse(R"({"provider":"anthropic","cost_usd":0.25})"));

  resp.finish_reason = FinishReason::kStop;
  resp.stop_sequence = "END";
  v = json::parse(EncodeAnthropicResponse(resp, nullptr, std::nullopt));
  EXPECT_EQ(v.at("stop_reason"), "stop_sequence");
  EXPECT_EQ(v.at("stop_sequence"), "END");
  EXPECT_FALSE(v.as_object().contains("iris"));
}

TEST(AnthropicStreamEncoder, HoldsMessageStartForUsageAndEndsWithMessageStop) {
  AnthropicStreamEncoder enc;
  StreamEvent start = Ev(StreamEvent::Type::kStart, "", 0, "msg_1");
  start.model = "m";
  EXPECT_EQ(enc.Encode(start), "");
  StreamEvent usage = Ev(StreamEvent::Type::kUsage);
  usage.usage.input_tokens = 12;
  EXPECT_EQ(enc.Encode(usage), "");
  std::string out = enc.Encode(Ev(StreamEvent::Type::kTextDelta, "Hi"));
  EXPECT_NE(out.find("event: message_start\n"), std::string::npos);
  EXPECT_NE(out.find(R"("input_tokens":12)"), std::string::npos);
  EXPECT_NE(out.find("event: content_block_start\n"), std::string::npos);
  out = enc.Encode(Ev(StreamEvent::Type::kToolCallStart, "", 0, "t", "f"));
  EXPECT_NE(out.find(R"({"type":"content_block_stop","index":0})"), std::string::npos);
  EXPECT_NE(out.find(R"("index":1)"), std::string::npos);
  out = enc.Encode(Ev(StreamEvent::Type::kToolCallDelta, "{}", 0));
  EXPECT_NE(out.find(R"("partial_json":"{}")"), std::string::npos);
  EXPECT_NE(out.find(R"("index":1)"), std::string::npos);
  StreamEvent fin = Ev(StreamEvent::Type::kFinish);
  fin.finish_reason = FinishReason::kToolCalls;
  enc.Encode(fin);
  json::object iris;
  iris["attempts"] = 1;
  out = enc.Finish(&iris, std::nullopt);
  EXPECT_NE(out.find(R"("stop_reason":"tool_use")"), std::string::npos);
  EXPECT_NE(out.find(R"("iris":{"attempts":1})"), std::string::npos);
  EXPECT_NE(out.find("event: message_stop\n"), std::string::npos);
  EXPECT_EQ(enc.Error(GatewayError{}), "");
}

// Anthropic's own message goes back as it came, with iris's report in place of any upstream's.
TEST(EncodeAnthropicAsIsResponse, KeepsTheMessageAndAddsTheReport) {
  json::object message = json::parse(R"({"id":"msg_1","type":"message","content":[
      {"type":"text","text":"x","citations":[{"type":"char_location"}]}],
      "usage":{"input_tokens":1,"server_tool_use":{"web_search_requests":2}},
      "iris":{"cost_usd":99}})")
                             .as_object();
  json::object iris{{"provider", "anthropic"}};
  json::value v = json::parse(EncodeAnthropicAsIsResponse(message, &iris, 0.5));
  json::object want = message;
  want["iris"] = json::parse(R"({"provider":"anthropic","cost_usd":0.5})");
  EXPECT_EQ(v, json::value(want));
  v = json::parse(EncodeAnthropicAsIsResponse(message, nullptr, std::nullopt));
  want.erase("iris");
  EXPECT_EQ(v, json::value(want));
}

// An Anthropic stream's own events are relayed; the neutral events read from them send nothing;
// the last message_delta waits for Finish, which adds iris's report.
TEST(AnthropicStreamEncoder, RelaysAnthropicsOwnEvents) {
  auto relay = [](std::string name, std::string data) {
    StreamEvent e = Ev(StreamEvent::Type::kAsIs, std::move(data), 0, "", std::move(name));
    e.as_is_dialect = Dialect::kAnthropic;
    return e;
  };
  AnthropicStreamEncoder enc;
  EXPECT_EQ(enc.Encode(relay("message_start", R"({"type":"message_start","message":{}})")),
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n");
  EXPECT_EQ(enc.Encode(Ev(StreamEvent::Type::kStart, "", 0, "msg_1")), "");
  const std::string srv =
      R"({"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use"}})";
  EXPECT_EQ(enc.Encode(relay("content_block_start", srv)),
            "event: content_block_start\ndata: " + srv + "\n\n");
  EXPECT_EQ(enc.Encode(Ev(StreamEvent::Type::kTextDelta, "Hi")), "");
  // Another API's own events are not Anthropic's.
  StreamEvent other = Ev(StreamEvent::Type::kAsIs, "{}", 0, "", "response.created");
  other.as_is_dialect = Dialect::kResponses;
  EXPECT_EQ(enc.Encode(other), "");
  // Only the last message_delta waits: an earlier one goes when the next comes, and a ping
  // after the last goes before it.
  EXPECT_EQ(enc.Encode(relay("message_delta", R"({"type":"message_delta","n":1})")), "");
  EXPECT_EQ(enc.Encode(relay("message_delta", R"({"type":"message_delta","n":2,"iris":{}})")),
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"n\":1}\n\n");
  EXPECT_EQ(enc.Encode(relay("ping", R"({"type":"ping"})")),
            "event: ping\ndata: {\"type\":\"ping\"}\n\n");
  EXPECT_EQ(enc.Encode(relay("message_stop", R"({"type":"message_stop"})")), "");
  EXPECT_EQ(enc.Encode(Ev(StreamEvent::Type::kFinish)), "");
  json::object iris{{"attempts", 1}};
  std::string out = enc.Finish(&iris, 0.25);
  const std::string head = "event: message_delta\ndata: ";
  const std::string tail = "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  ASSERT_EQ(out.rfind(head, 0), 0u) << out;
  ASSERT_GT(out.size(), head.size() + tail.size());
  EXPECT_EQ(out.substr(out.size() - tail.size()), tail);
  EXPECT_EQ(json::parse(out.substr(head.size(), out.size() - head.size() - tail.size())),
            json::parse(R"({"type":"message_delta","n":2,"iris":{"attempts":1,"cost_usd":0.25}})"));
  EXPECT_EQ(enc.Finish(&iris, 0.25), "");
}

TEST(AnthropicStreamEncoder, ErrorEndsTheStream) {
  AnthropicStreamEncoder enc;
  enc.Encode(Ev(StreamEvent::Type::kStart, "", 0, "msg_1"));
  enc.Encode(Ev(StreamEvent::Type::kTextDelta, "Hi"));
  GatewayError err;
  err.error_class = ErrorClass::kOverloaded;
  err.message = "anthropic is overloaded";
  std::string out = enc.Error(err);
  EXPECT_EQ(out.rfind("event: error\ndata: ", 0), 0u);
  json::value body = json::parse(out.substr(out.find('{')));
  EXPECT_EQ(body.at("error").at("type"), "overloaded_error");
  EXPECT_EQ(enc.Finish(nullptr, std::nullopt), "");
}

}  // namespace
}  // namespace iris::gateway::api
