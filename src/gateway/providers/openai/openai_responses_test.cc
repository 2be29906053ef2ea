// OpenAI's Responses API as an upstream: which bodies go as is, and how its answers and
// streams are read.
#include "gateway/providers/openai/openai_responses.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "base/json.h"
#include "gateway/api/responses.h"
#include "gateway/providers/openai/openai_translator.h"

namespace iris::gateway::providers {
namespace {

namespace json = boost::json;

const TargetInfo kOpenAI{"openai", "gpt-4.1-mini", "k", "https://api.openai.com/v1"};

ChatRequest Parse(std::string_view body) {
  auto r = api::ParseResponsesRequest(body);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r->chat) : ChatRequest();
}

json::object BodyOf(const UpstreamRequest& up) { return json::parse(up.body).as_object(); }

TEST(OpenAIResponses, TheCallersBodyGoesAsIsToOpenAIOnly) {
  ChatRequest req = Parse(R"({"model": "fast", "models": ["b"], "input": "hi",
      "tools": [{"type": "web_search"}], "include": ["reasoning.encrypted_content"],
      "service_tier": "flex", "future_field": {"x": 1}})");
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  Result<UpstreamRequest> up = t->EncodeRequest(req, kOpenAI);
  ASSERT_TRUE(up.ok()) << up.status().message();
  EXPECT_EQ(up->url, "https://api.openai.com/v1/responses");
  EXPECT_TRUE(up->as_is);
  EXPECT_TRUE(up->dropped.empty());
  json::object body = BodyOf(*up);
  EXPECT_EQ(body.at("model").as_string(), "gpt-4.1-mini");
  EXPECT_FALSE(body.contains("models"));  // (iris's own routing hint)
  EXPECT_EQ(body.at("tools").at(0).at("type").as_string(), "web_search");
  EXPECT_EQ(body.at("service_tier").as_string(), "flex");
  EXPECT_EQ(body.at("future_field").at("x").as_int64(), 1);
  EXPECT_EQ(body.at("input").as_string(), "hi");

  // Compatible servers and Mistral get chat completions, the untranslated fields named.
  for (OpenAIFlavor flavor : {OpenAIFlavor::kCompatible, OpenAIFlavor::kMistral}) {
    auto other = MakeOpenAITranslator(flavor);
    Result<UpstreamRequest> chat = other->EncodeRequest(req, {"x", "m", "", "https://x/v1"});
    ASSERT_TRUE(chat.ok()) << chat.status().message();
    EXPECT_EQ(chat->url, "https://x/v1/chat/completions");
    EXPECT_FALSE(chat->as_is);
    EXPECT_NE(std::find(chat->dropped.begin(), chat->dropped.end(), "service_tier"),
              chat->dropped.end());
  }
}

TEST(OpenAIResponses, AReasoningModelLosesItsSamplingSettingsByName) {
  ChatRequest req = Parse(R"({"model": "m", "input": "hi", "temperature": 0.2, "top_p": 0.5})");
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  Result<UpstreamRequest> up = t->EncodeRequest(req, {"openai", "o4-mini", "k", "https://x/v1"});
  ASSERT_TRUE(up.ok());
  EXPECT_FALSE(BodyOf(*up).contains("temperature"));
  EXPECT_EQ(up->dropped, (std::vector<std::string>{"temperature", "top_p"}));
}

TEST(OpenAIResponses, AThreadGoesAsIsToItsProviderAndWithItsItemsToAnother) {
  ChatRequest req = Parse(
      R"({"model": "m", "input": [{"role": "user", "content": "and now?"}],
          "previous_response_id": "resp_abc"})");
  req.thread.continues = true;
  req.thread.provider = "openai";
  req.thread.items = std::make_shared<json::array>(
      json::parse(R"([{"type": "message", "role": "user", "content": [{"type": "input_text",
                       "text": "first"}]}])")
          .as_array());
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  // The provider that answered the previous response keeps it: the id goes on.
  Result<UpstreamRequest> same = t->EncodeRequest(req, kOpenAI);
  ASSERT_TRUE(same.ok());
  json::object body = BodyOf(*same);
  EXPECT_EQ(body.at("previous_response_id").as_string(), "resp_abc");
  EXPECT_EQ(body.at("input").as_array().size(), 1u);
  // Another OpenAI provider (another account) does not: the kept items go first instead.
  TargetInfo other = kOpenAI;
  other.provider = "openai-eu";
  Result<UpstreamRequest> moved = t->EncodeRequest(req, other);
  ASSERT_TRUE(moved.ok());
  ASSERT_TRUE(moved->as_is);
  body = BodyOf(*moved);
  EXPECT_FALSE(body.contains("previous_response_id"));
  const json::array& input = body.at("input").as_array();
  ASSERT_EQ(input.size(), 2u);
  EXPECT_EQ(input[0].at("content").at(0).at("text").as_string(), "first");
  EXPECT_EQ(input[1].at("content").as_string(), "and now?");
  // A thread resolved from item references (iris's own ids) is translated instead.
  req.thread.items = nullptr;
  Result<UpstreamRequest> translated = t->EncodeRequest(req, other);
  ASSERT_TRUE(translated.ok());
  EXPECT_FALSE(translated->as_is);
  EXPECT_EQ(translated->url, "https://api.openai.com/v1/chat/completions");
}

constexpr std::string_view kResponse = R"({
  "id": "resp_0123", "object": "response", "created_at": 1700000000, "status": "completed",
  "model": "gpt-4.1-mini-2025-04-14", "error": null, "incomplete_details": null,
  "output": [
    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Hello ", "annotations": []},
                 {"type": "output_text", "text": "there", "annotations": []}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
     "arguments": "{\"a\":1}", "status": "completed"}],
  "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8},
            "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4},
            "total_tokens": 29}})";

TEST(OpenAIResponses, AResponseObjectIsReadAndKeptWhole) {
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  Result<ChatResponse> r = t->DecodeResponse(kResponse);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, "resp_0123");
  EXPECT_EQ(r->model, "gpt-4.1-mini-2025-04-14");
  EXPECT_EQ(r->text, "Hello there");
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].id, "call_1");
  EXPECT_EQ(r->tool_calls[0].arguments, "{\"a\":1}");
  EXPECT_EQ(r->finish_reason, FinishReason::kToolCalls);
  EXPECT_EQ(r->usage.input_tokens, 20);
  EXPECT_EQ(r->usage.cached_input_tokens, 8);
  EXPECT_EQ(r->usage.reasoning_tokens, 4);
  EXPECT_EQ(r->usage.web_searches, 1);  // the web_search_call item, billed by the call
  ASSERT_NE(r->as_is, nullptr);
  EXPECT_EQ(r->as_is->at("output").as_array().size(), 4u);
  // Kept in the default storage, not in the decoder's scratch, which is gone: still whole
  // after another answer, of other bytes, was decoded where that scratch was (an object left
  // in the scratch fails the storage check, and under ASan the reading too).
  EXPECT_EQ(r->as_is->storage().get(), json::storage_ptr().get());
  const std::shared_ptr<const json::object> kept = r->as_is;
  json::object other = json::parse(R"({"id":"chatcmpl-9","object":"chat.completion",
      "created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant"},
      "finish_reason":"stop"}]})")
                           .as_object();
  other["choices"].as_array()[0].as_object()["message"].as_object()["content"] =
      std::string(600, 'z');
  ASSERT_TRUE(t->DecodeResponse(SerializeJson(other)).ok());
  EXPECT_EQ(SerializeJson(*kept), SerializeJson(json::parse(kResponse).as_object()));

  json::object incomplete = json::parse(kResponse).as_object();
  incomplete["status"] = "incomplete";
  incomplete["incomplete_details"] = json::object{{"reason", "max_output_tokens"}};
  incomplete["output"].as_array().pop_back();
  r = t->DecodeResponse(SerializeJson(incomplete));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);

  EXPECT_FALSE(r->refused);
  json::object refusal = json::parse(kResponse).as_object();
  refusal["output"] = json::parse(R"([{"type": "message", "id": "msg_2", "role": "assistant",
      "content": [{"type": "refusal", "refusal": "I can't help with that."}]}])");
  r = t->DecodeResponse(SerializeJson(refusal));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->refused);  // (an answer, though not the schema's)
  EXPECT_EQ(r->text, "I can't help with that.");

  json::object failed = json::parse(kResponse).as_object();
  failed["status"] = "failed";
  failed["error"] = json::object{{"code", "server_error"}, {"message", "it broke"}};
  r = t->DecodeResponse(SerializeJson(failed));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("it broke"), std::string::npos);
}

http::SseEvent Event(std::string type, std::string data) {
  http::SseEvent e;
  e.event = std::move(type);
  e.data = std::move(data);
  return e;
}

TEST(OpenAIResponses, AStreamIsRelayedEventByEventAndReadForAccounting) {
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  auto s = t->NewStreamTranslator();
  std::vector<StreamEvent> all;
  auto feed = [&](std::string type, std::string data) {
    auto r = s->OnEvent(Event(type, data));
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_FALSE(r->empty());
    EXPECT_EQ(r->front().type, StreamEvent::Type::kAsIs);  // the event itself comes first
    EXPECT_EQ(r->front().name, type);
    EXPECT_EQ(r->front().text, data);
    for (StreamEvent& e : *r) all.push_back(std::move(e));
  };
  feed("response.created",
       R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_9",)"
       R"("model":"gpt-4.1","created_at":5,"status":"in_progress","output":[]}})");
  feed("response.web_search_call.searching",
       R"({"type":"response.web_search_call.searching","sequence_number":1,"item_id":"ws_1",)"
       R"("output_index":0})");
  feed("response.output_text.delta",
       R"({"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1",)"
       R"("output_index":1,"content_index":0,"delta":"Hi"})");
  feed("response.output_item.added",
       R"({"type":"response.output_item.added","sequence_number":3,"output_index":2,)"
       R"("item":{"type":"function_call","id":"fc_1","call_id":"call_7","name":"f",)"
       R"("arguments":""}})");
  feed("response.function_call_arguments.delta",
       R"({"type":"response.function_call_arguments.delta","sequence_number":4,)"
       R"("item_id":"fc_1","output_index":2,"delta":"{}"})");
  feed("response.completed",
       R"({"type":"response.completed","sequence_number":5,"response":{"id":"resp_9",)"
       R"("status":"completed","output":[{"type":"web_search_call","id":"ws_1"},)"
       R"({"type":"web_search_call","id":"ws_2"},{"type":"message","id":"msg_1"}],)"
       R"("usage":{"input_tokens":3,"output_tokens":2}}})");
  ASSERT_TRUE(s->OnEnd().ok());
  std::vector<StreamEvent::Type> neutral;
  for (const StreamEvent& e : all) {
    if (e.type != StreamEvent::Type::kAsIs) neutral.push_back(e.type);
  }
  using T = StreamEvent::Type;
  EXPECT_EQ(neutral, (std::vector<T>{T::kStart, T::kTextDelta, T::kToolCallStart, T::kToolCallDelta,
                                     T::kFinish, T::kUsage}));
  EXPECT_EQ(all[1].id, "resp_9");
  EXPECT_EQ(all.back().usage.output_tokens, 2);
  EXPECT_EQ(all.back().usage.web_searches, 2);  // the terminal response's search calls
  EXPECT_EQ(all[all.size() - 2].finish_reason, FinishReason::kToolCalls);

  // Searches without the usage object are no account (the cost stays unknown; a budget keeps
  // its worst case).
  s = t->NewStreamTranslator();
  ASSERT_TRUE(s->OnEvent(Event("response.created",
                               R"({"type":"response.created","response":{"id":"resp_8"}})"))
                  .ok());
  auto end = s->OnEvent(Event("response.completed",
                              R"({"type":"response.completed","response":{"id":"resp_8",)"
                              R"("status":"completed","output":[{"type":"web_search_call"}]}})"));
  ASSERT_TRUE(end.ok()) << end.status().message();
  for (const StreamEvent& e : *end) EXPECT_NE(e.type, StreamEvent::Type::kUsage);
}

TEST(OpenAIResponses, AFailedOrCutStreamIsAnError) {
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  const std::string created =
      R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_9"}})";
  auto s = t->NewStreamTranslator();
  ASSERT_TRUE(s->OnEvent(Event("response.created", created)).ok());
  auto failed = s->OnEvent(Event(
      "response.failed",
      R"({"type":"response.failed","response":{"status":"failed","error":{"message":"no"}}})"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kUnavailable);

  s = t->NewStreamTranslator();
  ASSERT_TRUE(s->OnEvent(Event("response.created", created)).ok());
  auto cut = s->OnEnd();
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), ErrorCode::kDataLoss);

  s = t->NewStreamTranslator();
  ASSERT_TRUE(s->OnEvent(Event("response.created", created)).ok());
  auto odd = s->OnEvent(Event("response.x", R"({"type":"response.x\nevent: y"})"));
  EXPECT_FALSE(odd.ok());  // (an event name that could break the caller's stream)
}

// Callers' SDKs read an event's type from its data: an event whose data lacks it goes back with
// it. And an `iris` member of the upstream's, beside the response or in it, never passes for
// iris's report (Finish adds that to the terminal event).
TEST(OpenAIResponses, RelayedEventsCarryTheirTypeAndNoReportButIris) {
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  auto s = t->NewStreamTranslator();
  auto r =
      s->OnEvent(Event("response.created",
                       R"({"sequence_number":0,"iris":{"request_id":"forged"},)"
                       R"("response":{"id":"resp_9","status":"in_progress","iris":{"cost_usd":0},)"
                       R"("usage":{"input_tokens":1,"cost":9,"cost_details":{}}}})"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->front().type, StreamEvent::Type::kAsIs);
  Result<json::value> data = ParseJson(r->front().text, "relayed");
  ASSERT_TRUE(data.ok());
  const json::object& o = data->as_object();
  EXPECT_EQ(o.at("type"), "response.created");
  EXPECT_FALSE(o.contains("iris"));
  EXPECT_FALSE(o.at("response").as_object().contains("iris"));
  EXPECT_EQ(o.at("response").at("id"), "resp_9");
  EXPECT_EQ(o.at("response").at("usage"), json::parse(R"({"input_tokens":1})"));
  // Neither in the data nor as the event's name: no type at all is a broken stream.
  auto untyped = s->OnEvent(Event("", R"({"sequence_number":1})"));
  ASSERT_FALSE(untyped.ok());
  EXPECT_EQ(untyped.status().code(), ErrorCode::kDataLoss);
}

}  // namespace
}  // namespace iris::gateway::providers
