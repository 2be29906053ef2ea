// The Responses dialect: what the parser accepts and the field path in every error, how items
// become chat turns and back, and the typed events of a streamed answer.
#include "gateway/api/responses.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "base/json.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

void ExpectResponsesError(std::string_view body, std::string_view prefix) {
  Result<ResponsesRequest> r = ParseResponsesRequest(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(prefix, 0), 0u)
      << "message: " << r.status().message() << "\nexpected prefix: " << prefix;
}

TEST(ParseResponsesRequest, ItemsBecomeChatTurnsInOrder) {
  Result<ResponsesRequest> r = ParseResponsesRequest(R"({
    "model": "m", "instructions": "Be terse.", "store": false, "max_output_tokens": 64,
    "metadata": {"team": "ml"}, "reasoning": {"effort": "low"},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"},
                        "strict": true}},
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "function", "name": "f"},
    "input": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                   {"type": "input_image",
                                    "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
      {"type": "message", "role": "assistant", "id": "msg_x",
       "content": [{"type": "output_text", "text": "let me check"}]},
      {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
      {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"a\":1}"},
      {"type": "reasoning", "id": "rs_1", "summary": []},
      {"type": "function_call_output", "call_id": "c1", "output": "one"},
      {"type": "function_call_output", "call_id": "c2",
       "output": [{"type": "input_text", "text": "two"}]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ChatRequest& c = r->chat;
  EXPECT_EQ(c.dialect, Dialect::kResponses);
  EXPECT_TRUE(r->has_instructions);
  EXPECT_FALSE(r->store);
  EXPECT_EQ(r->metadata.at("team").as_string(), "ml");
  EXPECT_EQ(c.max_tokens, 64);
  EXPECT_EQ(c.reasoning_effort, "low");
  ASSERT_TRUE(c.response_format);
  EXPECT_EQ(c.response_format->type, ResponseFormat::Type::kJsonSchema);
  EXPECT_TRUE(c.response_format->strict);
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(c.tool_choice->mode, ToolChoice::Mode::kTool);
  // instructions, system, user, assistant (text + both calls), tool, tool.
  ASSERT_EQ(c.messages.size(), 6u);
  EXPECT_EQ(c.messages[0].content[0].text, "Be terse.");
  EXPECT_EQ(c.messages[1].role, Role::kSystem);
  EXPECT_EQ(c.messages[2].content[1].type, ContentPart::Type::kImage);
  EXPECT_EQ(c.messages[2].content[1].media_type, "image/png");
  EXPECT_EQ(c.messages[3].role, Role::kAssistant);
  EXPECT_EQ(c.messages[3].content[0].text, "let me check");
  ASSERT_EQ(c.messages[3].tool_calls.size(), 2u);
  EXPECT_EQ(c.messages[3].tool_calls[1].arguments, "{\"a\":1}");
  EXPECT_EQ(c.messages[4].tool_call_id, "c1");
  EXPECT_EQ(c.messages[5].content[0].text, "two");
}

TEST(ParseResponsesRequest, ReferencesKeepTheirPlace) {
  Result<ResponsesRequest> r = ParseResponsesRequest(R"({"model": "m", "input": [
      {"role": "user", "content": "a"}, {"type": "item_reference", "id": "msg_abc_0"},
      {"type": "message", "role": "assistant", "id": "msg_abc_1"},
      {"role": "user", "content": "b"}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->references.size(), 2u);
  EXPECT_EQ(r->references[0].id, "msg_abc_0");
  EXPECT_EQ(r->references[0].before_message, 1u);
  EXPECT_EQ(r->references[1].before_message, 1u);
  EXPECT_EQ(r->chat.messages.size(), 2u);
}

// A budget reserves the hosted web searches max_tool_calls allows, when a web_search tool is
// among the tools.
TEST(ParseResponsesRequest, TheSearchesABudgetReservesAreMaxToolCalls) {
  auto searches = [](const std::string& rest) {
    auto r = ParseResponsesRequest(R"({"model":"m","input":"q")" + rest + "}");
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->chat.max_web_searches : -1;
  };
  EXPECT_EQ(searches(R"(,"tools":[{"type":"web_search"}],"max_tool_calls":5)"), 5);
  EXPECT_EQ(searches(R"(,"tools":[{"type":"web_search_preview"}],"max_tool_calls":2)"), 2);
  EXPECT_EQ(searches(R"(,"tools":[{"type":"web_search"}])"), 0);  // unbounded: unknown
  EXPECT_EQ(searches(R"(,"tools":[{"type":"file_search","vector_store_ids":["v"]}],)"
                     R"("max_tool_calls":5)"),
            0);
  EXPECT_EQ(searches(R"(,"tools":[{"type":"web_search"}],"max_tool_calls":0)"), 0);
  EXPECT_EQ(searches(R"(,"tools":[{"type":"web_search"}],"max_tool_calls":9223372036854775807)"),
            kMaxReservedWebSearches);
}

TEST(ParseResponsesRequest, ErrorsNameTheField) {
  ExpectResponsesError(R"({"input": "x"})", "model: required");
  ExpectResponsesError(R"({"model": "m"})", "input: required");
  ExpectResponsesError(R"({"model": "m", "input": []})", "input: must contain at least one item");
  ExpectResponsesError(R"({"model": "m", "input": 3})", "input: expected a string or an array");
  ExpectResponsesError(R"({"model": "m", "input": [{"role": "tool", "content": "x"}]})",
                       "input[0].role: unknown role \"tool\"");
  ExpectResponsesError(
      R"({"model": "m", "input": [{"role": "assistant", "content": [
                  {"type": "input_image", "image_url": "https://x/y.png"}]}]})",
      "input[0].content[0].type: input_image parts are only allowed in user messages");
  ExpectResponsesError(R"({"model": "m", "input": [{"role": "user", "content": [
                  {"type": "input_image", "image_url": "ftp://x"}]}]})",
                       "input[0].content[0].image_url: expected an http(s) URL");
  ExpectResponsesError(R"({"model": "m", "input": [{"type": "function_call", "name": "f"}]})",
                       "input[0].call_id: required");
  ExpectResponsesError(R"({"model": "m", "input": [{"type": "function_call_output", "call_id": "c",
                  "output": [{"type": "input_image", "image_url": "https://x/y.png"}]}]})",
                       "input[0].output[0]: a tool output may only hold text");
  ExpectResponsesError(R"({"model": "m", "input": "x", "tools": [{"name": "f"}]})",
                       "tools[0].type: required");
  ExpectResponsesError(R"({"model": "m", "input": [{"type": 7}]})",
                       "input[0].type: expected a string");
  ExpectResponsesError(
      R"({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}})",
      "text.format.name: required");
  ExpectResponsesError(R"({"model": "m", "input": "x", "max_output_tokens": 0})",
                       "max_output_tokens: must be at least 1");
  ExpectResponsesError(R"({"model": "m", "input": "x", "reasoning": {"effort": "max"}})",
                       "reasoning.effort: expected none, minimal, low, medium, high or xhigh");
  ExpectResponsesError(R"({"model": "m", "input": "x", "metadata": {"k": 1}})",
                       "metadata.k: expected a string");
  ExpectResponsesError(R"({"model": "m", "input": "x", "background": true})", "background:");
  ExpectResponsesError(R"({"model": "m", "input": "x", "conversation": "conv_1"})",
                       "conversation:");
  ExpectResponsesError(R"({"model": "m", "input": "x", "previous_response_id": "chatcmpl-1"})",
                       "previous_response_id: expected the id of an earlier response");
  // A continuation may send no new input item beyond its references.
  EXPECT_TRUE(
      ParseResponsesRequest(R"({"model": "m", "input": [], "previous_response_id": "resp_1"})")
          .ok());
}

// What only OpenAI's Responses API takes is noted (for a provider taking the body as is), not
// refused; a translating provider refuses it then, naming each.
TEST(ParseResponsesRequest, WhatOnlyOpenAITakesIsNotedNotRefused) {
  auto r = ParseResponsesRequest(R"({"model": "m",
      "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                     {"type": "input_file", "file_id": "file-1"},
                                     {"type": "input_image", "file_id": "file-2"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "odd type!", "id": "x"}],
      "tools": [{"type": "function", "name": "f",
                 "parameters": {"type": "object", "properties": {"file_id": {"type": "string"}}}},
                {"type": "file_search", "vector_store_ids": ["vs_1"]}],
      "tool_choice": {"type": "web_search_preview"},
      "include": ["reasoning.encrypted_content"], "truncation": "auto",
      "reasoning": {"effort": "low", "summary": "auto"}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const ChatRequest& c = r->chat;
  EXPECT_EQ(c.as_is_only, (std::vector<std::string>{
                              "input[0].content[1] (input_file)",
                              "input[0].content[2] (input_image with file_id)",
                              "input[2] (web_search_call)", "input[3] (an unknown type)",
                              "tools[1] (file_search)", "tool_choice (web_search_preview)"}));
  EXPECT_EQ(c.extra_fields, (std::vector<std::string>{"input.reasoning", "include", "truncation",
                                                      "reasoning.summary"}));
  // What lives in the provider's account, shared by every caller, is named apart.
  // (not a function's schema, whose properties may have any name)
  EXPECT_EQ(c.account_refs,
            (std::vector<std::string>{"input[0].content[1].file_id (in the provider account)",
                                      "input[0].content[2].file_id (in the provider account)",
                                      "tools[1].vector_store_ids (in the provider account)"}));
  // Items replayed whole with an id of OpenAI's are listed to be checked against this key's.
  EXPECT_EQ(r->item_ids, (std::vector<std::string>{"rs_1", "ws_1", "x"}));
  EXPECT_EQ(c.max_web_searches, 0);  // (no search tool: nothing for a budget to reserve)
  ASSERT_EQ(c.messages.size(), 1u);
  ASSERT_EQ(c.messages[0].content.size(), 1u);  // the text; the files stay in the body
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_FALSE(c.tool_choice.has_value());
  ASSERT_NE(c.caller_body, nullptr);
  EXPECT_EQ(c.caller_body->at("include").as_array().size(), 1u);

  // A stored prompt template needs no input.
  auto prompt = ParseResponsesRequest(R"({"model": "m", "prompt": {"id": "pmpt_1"}})");
  ASSERT_TRUE(prompt.ok()) << prompt.status().message();
  EXPECT_EQ(prompt->chat.as_is_only,
            (std::vector<std::string>{"prompt (a stored prompt template)"}));
  EXPECT_EQ(prompt->chat.account_refs, prompt->chat.as_is_only);
  ExpectResponsesError(R"({"model": "m"})", "input: required");
}

// Ids a caller names items by are plain and bounded; iris's own are not listed to check.
TEST(ParseResponsesRequest, ItemIdsArePlainBoundedAndListed) {
  ExpectResponsesError(R"({"model": "m", "input": [{"type": "item_reference", "id": "a b"}]})",
                       "input[0].id: expected an item id");
  ExpectResponsesError(R"({"model": "m", "input": [{"type": "reasoning", "id": ""}]})",
                       "input[0].id: expected an item id");
  std::string many = R"({"model": "m", "input": [)";
  for (int i = 0; i <= 256; ++i) {
    many += (i > 0 ? "," : "") + std::string(R"({"type": "item_reference", "id": "msg_)") +
            std::to_string(i) + R"("})";
  }
  ExpectResponsesError(many + "]}",
                       "input[256]: at most 256 input items may name an earlier item by id");
  auto r = ParseResponsesRequest(R"({"model": "m", "input": [
      {"type": "message", "role": "assistant", "id": "msg_0af_0",
       "content": [{"type": "output_text", "text": "hi"}]},
      {"type": "message", "role": "assistant", "id": "msg_68af",
       "content": [{"type": "output_text", "text": "hi"}]}]})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->item_ids, (std::vector<std::string>{"msg_68af"}));
}

TEST(ResponseItems, IdsNameTheirResponseAndRoundTrip) {
  EXPECT_EQ(ResponseItemId("fc", "resp_0af", 2), "fc_0af_2");
  auto owner = ItemOwnerOf("fc_0af_2");
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->response_id, "resp_0af");
  EXPECT_EQ(owner->index, 2u);
  for (std::string_view bad :
       {"msg_x", "rs_0af_1", "msg__1", "msg_a_", "msg_a_1x", "msg_a_99999"}) {
    EXPECT_FALSE(ItemOwnerOf(bad)) << bad;
  }
  ChatResponse answer;
  answer.text = "checking";
  answer.tool_calls.push_back({"call_1", "f", "{\"a\":1}", {}});
  json::array items = ResponseOutputItems(answer, "resp_0af");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].at("id").as_string(), "msg_0af_0");
  EXPECT_EQ(items[1].at("id").as_string(), "fc_0af_1");
  EXPECT_EQ(items[1].at("call_id").as_string(), "call_1");
  // Kept and read back: the same turns.
  std::vector<Message> turns;
  for (const json::value& item : items) turns.push_back(*MessageOfOutputItem(item.as_object()));
  MergeToolCallTurns(turns);
  ASSERT_EQ(turns.size(), 1u);
  json::array kept = InputItemsOf(turns);
  Result<std::vector<Message>> back = ParseConversationItems(kept);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  MergeToolCallTurns(*back);
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].content[0].text, "checking");
  EXPECT_EQ((*back)[0].tool_calls[0].arguments, "{\"a\":1}");
}

// The data of each event of a stream, in order.
std::vector<json::object> ResponsesEventData(const std::string& sse) {
  std::vector<json::object> out;
  size_t at = 0;
  while ((at = sse.find("data: ", at)) != std::string::npos) {
    const size_t end = sse.find('\n', at);
    out.push_back(ParseJson(sse.substr(at + 6, end - at - 6), "event")->as_object());
    at = end;
  }
  return out;
}

TEST(ResponsesStreamEncoder, TextThenToolCallsInTheOrderClientsCheck) {
  ResponseMeta meta;
  meta.id = "resp_ab";
  meta.created_at = 7;
  meta.model = "alias";
  ResponsesStreamEncoder enc(meta);
  std::string sse;
  StreamEvent start;
  start.type = StreamEvent::Type::kStart;
  start.model = "gpt-4o";
  sse += enc.Encode(start);
  StreamEvent text;
  text.text = "hi";
  sse += enc.Encode(text);
  StreamEvent call;
  call.type = StreamEvent::Type::kToolCallStart;
  call.id = "call_1";
  call.name = "f";
  sse += enc.Encode(call);
  StreamEvent args;
  args.type = StreamEvent::Type::kToolCallDelta;
  args.text = "{\"a\":";
  sse += enc.Encode(args);
  args.text = "1}";
  sse += enc.Encode(args);
  StreamEvent finish;
  finish.type = StreamEvent::Type::kFinish;
  finish.finish_reason = FinishReason::kToolCalls;
  sse += enc.Encode(finish);
  sse += enc.Finish(nullptr, 0.5);
  std::vector<json::object> events = ResponsesEventData(sse);
  std::vector<std::string> types;
  for (size_t i = 0; i < events.size(); ++i) {
    types.emplace_back(events[i].at("type").as_string());
    EXPECT_EQ(events[i].at("sequence_number").as_int64(), static_cast<int64_t>(i));
  }
  EXPECT_EQ(
      types,
      (std::vector<std::string>{
          "response.created", "response.in_progress", "response.output_item.added",
          "response.content_part.added", "response.output_text.delta", "response.output_text.done",
          "response.content_part.done", "response.output_item.done", "response.output_item.added",
          "response.function_call_arguments.delta", "response.function_call_arguments.delta",
          "response.function_call_arguments.done", "response.output_item.done",
          "response.completed"}));
  EXPECT_EQ(events[0].at("response").at("model").as_string(), "gpt-4o");
  EXPECT_EQ(events[4].at("item_id").as_string(), "msg_ab_0");
  EXPECT_EQ(events[12].at("item").at("status").as_string(), "completed");
  EXPECT_EQ(events[12].at("item").at("arguments").as_string(), "{\"a\":1}");
  const json::object& done = events.back().at("response").as_object();
  EXPECT_EQ(done.at("status").as_string(), "completed");
  EXPECT_EQ(done.at("output").as_array().size(), 2u);
  EXPECT_EQ(done.at("usage").at("cost").as_double(), 0.5);
  EXPECT_EQ(enc.answer().text, "hi");
  EXPECT_EQ(enc.answer().tool_calls[0].arguments, "{\"a\":1}");
}

TEST(ResponsesStreamEncoder, TextAfterAToolCallIsAMessageItemOfItsOwn) {
  ResponsesStreamEncoder enc({"resp_c", 1, "m", nullptr});
  StreamEvent e;
  e.text = "before";
  enc.Encode(e);
  StreamEvent call;
  call.type = StreamEvent::Type::kToolCallStart;
  call.id = "call_1";
  call.name = "f";
  enc.Encode(call);
  e.text = "after";
  std::string sse = enc.Encode(e);
  std::vector<json::object> events = ResponsesEventData(sse + enc.Finish(nullptr, std::nullopt));
  const json::array& output = events.back().at("response").at("output").as_array();
  ASSERT_EQ(output.size(), 3u);
  EXPECT_EQ(output[0].at("content").at(0).at("text").as_string(), "before");
  EXPECT_EQ(output[1].at("type").as_string(), "function_call");
  EXPECT_EQ(output[2].at("id").as_string(), "msg_c_2");
  EXPECT_EQ(output[2].at("content").at(0).at("text").as_string(), "after");
  EXPECT_EQ(enc.answer().text, "beforeafter");
}

TEST(ResponsesStreamEncoder, ACutShortAnswerIsIncompleteAndAFailureIsAnErrorThenFailed) {
  ResponsesStreamEncoder enc({"resp_1", 1, "m", nullptr});
  StreamEvent finish;
  finish.type = StreamEvent::Type::kFinish;
  finish.finish_reason = FinishReason::kLength;
  enc.Encode(finish);
  std::vector<json::object> events = ResponsesEventData(enc.Finish(nullptr, std::nullopt));
  EXPECT_EQ(events.back().at("type").as_string(), "response.incomplete");
  EXPECT_EQ(events.back().at("response").at("incomplete_details").at("reason").as_string(),
            "max_output_tokens");
  // An empty answer is one empty message, announced like any other.
  EXPECT_EQ(events[2].at("type").as_string(), "response.output_item.added");

  ResponsesStreamEncoder failing({"resp_2", 1, "m", nullptr});
  GatewayError e;
  e.error_class = ErrorClass::kUpstream;
  e.message = "openai: the stream broke";
  events = ResponsesEventData(failing.Error(e));
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2].at("type").as_string(), "error");
  EXPECT_EQ(events[events.size() - 2].at("message").as_string(), "openai: the stream broke");
  EXPECT_EQ(events.back().at("type").as_string(), "response.failed");
  EXPECT_EQ(events.back().at("response").at("error").at("message").as_string(),
            "openai: the stream broke");
}

// Another wire format's own events are not this API's: a Responses caller answered by a stream
// that relays Anthropic's events gets only what iris makes of their neutral events.
TEST(ResponsesStreamEncoder, AnotherApisOwnEventsAreNotRelayed) {
  ResponsesStreamEncoder enc({"resp_ab", 7, "alias", nullptr});
  StreamEvent anthropic;
  anthropic.type = StreamEvent::Type::kAsIs;
  anthropic.as_is_dialect = Dialect::kAnthropic;
  anthropic.name = "message_start";
  anthropic.text = R"({"type":"message_start","message":{"id":"msg_1"}})";
  EXPECT_EQ(enc.Encode(anthropic), "");
  EXPECT_FALSE(enc.as_is());
  StreamEvent text;
  text.text = "hi";
  const std::string sse = enc.Encode(text) + enc.Finish(nullptr, std::nullopt);
  EXPECT_NE(sse.find("event: response.output_text.delta"), std::string::npos) << sse;
  EXPECT_EQ(sse.find("msg_1"), std::string::npos) << sse;
}

// OpenAI's own response object goes back as it came, with iris's report; usage.cost is iris's
// or absent, whatever the provider wrote there.
TEST(EncodeAsIsResponse, TheReportAndTheCostAreIrisOwn) {
  const json::object upstream =
      json::parse(R"({"id":"resp_1","object":"response","iris":{"request_id":"forged"},)"
                  R"("usage":{"input_tokens":1,"cost":99,"cost_details":{"x":1}}})")
          .as_object();
  const json::object report{{"request_id", "req_1"}};
  json::value priced = json::parse(EncodeAsIsResponse(upstream, &report, 0.5));
  EXPECT_EQ(priced.at("iris"), report);
  EXPECT_EQ(priced.at("usage").at("cost").as_double(), 0.5);
  EXPECT_FALSE(priced.at("usage").as_object().contains("cost_details"));
  json::value unpriced = json::parse(EncodeAsIsResponse(upstream, &report, std::nullopt));
  EXPECT_FALSE(unpriced.at("usage").as_object().contains("cost"));
  EXPECT_EQ(unpriced.at("usage").at("input_tokens"), 1);
  EXPECT_EQ(unpriced.at("id"), "resp_1");
}

TEST(EncodeResponsesResponse, TheObjectClientsValidate) {
  ResponsesRequest req;
  req.instructions = "be brief";
  req.previous_response_id = "resp_0";
  ChatResponse answer;
  answer.text = "hello";
  answer.usage = {.input_tokens = 10,
                  .output_tokens = 5,
                  .cached_input_tokens = 4,
                  .reasoning_tokens = 2,
                  .reported = true};
  ResponseMeta meta{"resp_9", 100, "gpt-4o", &req};
  json::object o =
      ParseJson(EncodeResponsesResponse(answer, meta, nullptr, std::nullopt), "r")->as_object();
  EXPECT_EQ(o.at("object").as_string(), "response");
  EXPECT_EQ(o.at("status").as_string(), "completed");
  EXPECT_TRUE(o.at("incomplete_details").is_null());
  EXPECT_TRUE(o.at("error").is_null());
  EXPECT_EQ(o.at("instructions").as_string(), "be brief");
  EXPECT_EQ(o.at("previous_response_id").as_string(), "resp_0");
  const json::object& part = o.at("output").at(0).at("content").at(0).as_object();
  EXPECT_EQ(part.at("type").as_string(), "output_text");
  EXPECT_TRUE(part.at("annotations").as_array().empty());
  EXPECT_EQ(o.at("usage").at("input_tokens_details").at("cached_tokens").as_int64(), 4);
  EXPECT_EQ(o.at("usage").at("output_tokens_details").at("reasoning_tokens").as_int64(), 2);
  EXPECT_EQ(o.at("usage").at("total_tokens").as_int64(), 15);
}

}  // namespace
}  // namespace iris::gateway::api
