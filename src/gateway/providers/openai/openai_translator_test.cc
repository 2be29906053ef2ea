// Edge cases of the OpenAI-shaped translators that the case folders do not pin down:
// Mistral ids, error-body shapes, malformed and cut streams, where a provider's own members go.
#include "gateway/providers/openai/openai_translator.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "base/json.h"
#include "gateway/api/anthropic.h"
#include "gateway/api/openai.h"

namespace iris::gateway::providers {
namespace {

namespace json = boost::json;

http::SseEvent Data(std::string data) {
  http::SseEvent e;
  e.data = std::move(data);
  return e;
}

TEST(MistralToolCallId, ShapeAndDeterminism) {
  EXPECT_EQ(MistralToolCallId("gSIMJiOkT"), "gSIMJiOkT");
  std::string a = MistralToolCallId("call_abc123");
  EXPECT_EQ(a.size(), 9u);
  for (char c : a) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << a;
  EXPECT_EQ(a, MistralToolCallId("call_abc123"));
  EXPECT_NE(a, MistralToolCallId("call_abc124"));
  EXPECT_NE(a, MistralToolCallId("call_abc123", 1));
  EXPECT_NE(MistralToolCallId("gSIMJiOkT", 1), "gSIMJiOkT");
}

TEST(OpenAITranslator, MistralIdsMatchBetweenCallAndResult) {
  ChatRequest req;
  Message user;
  user.content.push_back(ContentPart::Text("hi"));
  Message asst;
  asst.role = Role::kAssistant;
  asst.tool_calls.push_back({"toolu_01A09q90qw90lq917835lq9", "f", "{}", {}});
  Message tool;
  tool.role = Role::kTool;
  tool.tool_call_id = "toolu_01A09q90qw90lq917835lq9";
  tool.content.push_back(ContentPart::Text("ok"));
  req.messages = {user, asst, tool};
  auto t = MakeOpenAITranslator(OpenAIFlavor::kMistral);
  Result<UpstreamRequest> up = t->EncodeRequest(req, {"mistral", "m", "k", "https://x/v1/"});
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->url, "https://x/v1/chat/completions");
  json::value body = json::parse(up->body);
  const json::array& msgs = body.at("messages").as_array();
  std::string id(msgs[1].at("tool_calls").at(0).at("id").as_string());
  EXPECT_EQ(id, MistralToolCallId("toolu_01A09q90qw90lq917835lq9"));
  EXPECT_EQ(msgs[2].at("tool_call_id").as_string(), id);
  EXPECT_EQ(msgs[2].at("name").as_string(), "f");
}

TEST(OpenAITranslator, ImagesOnlyInUserMessages) {
  ChatRequest req;
  Message tool;
  tool.role = Role::kTool;
  tool.tool_call_id = "c";
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.url = "https://x/a.png";
  tool.content = {ContentPart::Text("see"), img};
  req.messages = {tool};
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  Result<UpstreamRequest> up = t->EncodeRequest(req, {"openai", "m", "k", "https://x"});
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(up.status().message().find("messages[0]"), std::string::npos);
}

TEST(OpenAITranslator, DecodeErrorShapes) {
  auto t = MakeOpenAITranslator(OpenAIFlavor::kMistral);
  GatewayError e = t->DecodeError(
      429, R"({"object":"error","message":"Rate limit exceeded","type":"rate_limited",
               "param":null,"code":"1300"})",
      "3");
  EXPECT_EQ(e.error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(e.message, "mistral rate limit (429): Rate limit exceeded");
  EXPECT_EQ(e.code, "1300");
  EXPECT_EQ(e.retry_after_s, 3.0);
  EXPECT_EQ(e.upstream_status, 429);

  e = t->DecodeError(401, R"({"detail":"Unauthorized"})", "");
  EXPECT_EQ(e.error_class, ErrorClass::kUpstream);
  EXPECT_EQ(e.message, "mistral rejected the API key (401): Unauthorized");
  EXPECT_FALSE(e.retry_after_s.has_value());

  e = t->DecodeError(422, R"({"detail":[{"loc":["body","messages",0],"msg":"bad role"}]})", "");
  EXPECT_EQ(e.error_class, ErrorClass::kInvalidRequest);
  EXPECT_EQ(e.message, "mistral rejected the request (422): body.messages.0: bad role");

  auto o = MakeOpenAITranslator(OpenAIFlavor::kCompatible, "groq");
  e = o->DecodeError(503, "<html>Service Unavailable</html>\n", "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_EQ(e.error_class, ErrorClass::kOverloaded);
  EXPECT_EQ(e.message, "groq is overloaded (503): <html>Service Unavailable</html>");
  EXPECT_EQ(e.provider, "groq");
  EXPECT_FALSE(e.retry_after_s.has_value());

  e = o->DecodeError(429, R"({"error":{"message":"You exceeded your current quota",
      "type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
                     "");
  EXPECT_EQ(e.error_class, ErrorClass::kUpstream);
  e = o->DecodeError(500, "", "");
  EXPECT_EQ(e.error_class, ErrorClass::kUpstream);
  EXPECT_EQ(e.message, "groq failed (500): (empty body)");
  EXPECT_EQ(o->DecodeError(504, "{}", "").error_class, ErrorClass::kUpstreamTimeout);
  EXPECT_EQ(o->DecodeError(404, "{}", "").error_class, ErrorClass::kNotFound);
  EXPECT_EQ(o->DecodeError(413, "{}", "").error_class, ErrorClass::kPayloadTooLarge);
  EXPECT_EQ(o->DecodeError(529, "{}", "").error_class, ErrorClass::kOverloaded);
}

TEST(OpenAIStreamTranslator, MalformedJsonIsDataLoss) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kOpenAI)->NewStreamTranslator();
  Result<std::vector<StreamEvent>> r = st->OnEvent(Data("{\"id\":"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(r.status().message().find("openai"), std::string::npos);
}

TEST(OpenAIStreamTranslator, ErrorEventIsUnavailable) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kOpenAI)->NewStreamTranslator();
  ASSERT_TRUE(st->OnEvent(Data(R"({"id":"x","choices":[]})")).ok());
  Result<std::vector<StreamEvent>> r =
      st->OnEvent(Data(R"({"error":{"message":"boom","type":"server_error"}})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("boom"), std::string::npos);
}

TEST(OpenAIStreamTranslator, EndWithoutDoneOrFinishIsAnError) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kOpenAI)->NewStreamTranslator();
  ASSERT_TRUE(
      st->OnEvent(Data(R"({"id":"x","choices":[{"index":0,"delta":{"content":"Hi"}}]})")).ok());
  EXPECT_FALSE(st->OnEnd().ok());
}

TEST(OpenAIStreamTranslator, FinishWithoutDoneIsComplete) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kCompatible)->NewStreamTranslator();
  ASSERT_TRUE(st->OnEvent(Data(R"({"id":"x","choices":[{"index":0,"delta":{"content":"Hi"},
      "finish_reason":"stop"}]})"))
                  .ok());
  EXPECT_TRUE(st->OnEnd().ok());
}

TEST(OpenAIStreamTranslator, DoneWithoutChunksIsAnError) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kOpenAI)->NewStreamTranslator();
  EXPECT_FALSE(st->OnEvent(Data("[DONE]")).ok());
}

TEST(OpenAIStreamTranslator, MistralFinishErrorIsAnError) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kMistral)->NewStreamTranslator();
  Result<std::vector<StreamEvent>> r = st->OnEvent(
      Data(R"({"id":"x","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
}

TEST(OpenAIStreamTranslator, InterleavedParallelToolCalls) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kOpenAI)->NewStreamTranslator();
  std::vector<StreamEvent> all;
  for (const char* chunk : {
           R"({"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"id":"a",
               "type":"function","function":{"name":"f","arguments":""}}]}}]})",
           R"({"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":5,"id":"b",
               "type":"function","function":{"name":"g","arguments":"{"}}]}}]})",
           R"({"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,
               "function":{"arguments":"{}"}}]}}]})",
           R"({"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":5,
               "function":{"arguments":"}"}}]}}]})"}) {
    Result<std::vector<StreamEvent>> r = st->OnEvent(Data(chunk));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    all.insert(all.end(), r->begin(), r->end());
  }
  ASSERT_EQ(all.size(), 6u);  // start, start a, start b, delta b, delta a, delta b
  EXPECT_EQ(all[1].type, StreamEvent::Type::kToolCallStart);
  EXPECT_EQ(all[1].index, 0);
  EXPECT_EQ(all[2].index, 1);
  EXPECT_EQ(all[2].name, "g");
  EXPECT_EQ(all[4].index, 0);
  EXPECT_EQ(all[4].text, "{}");
  EXPECT_EQ(all[5].index, 1);
}

// OpenAI's own members (logprobs, system_fingerprint, annotations) ride on the answer for an
// OpenAI caller only; an answer with none carries nothing.
TEST(OpenAITranslator, ItsOwnMembersAreKeptApartAndReachNoOtherWireFormat) {
  auto t = MakeOpenAITranslator(OpenAIFlavor::kOpenAI);
  Result<ChatResponse> plain = t->DecodeResponse(
      R"({"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
      "message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],
      "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->openai_extras, nullptr);

  Result<ChatResponse> r = t->DecodeResponse(
      R"({"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
      "message":{"role":"assistant","content":"Hi","refusal":null,"annotations":[]},
      "logprobs":{"content":[{"token":"Hi","logprob":-0.5,"bytes":[72,105],"top_logprobs":[]}]},
      "finish_reason":"stop"}],"system_fingerprint":"fp_x1",
      "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,
      "completion_tokens_details":{"accepted_prediction_tokens":0}}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_NE(r->openai_extras, nullptr);
  EXPECT_EQ(json::serialize(r->openai_extras->top), R"({"system_fingerprint":"fp_x1"})");
  EXPECT_TRUE(r->openai_extras->choice.contains("logprobs"));
  EXPECT_EQ(json::serialize(r->openai_extras->message), R"({"annotations":[]})");
  EXPECT_TRUE(r->openai_extras->usage.is_object());
  // Written back once each, beside iris's own report and cost (an upstream's own `iris` and
  // `usage.cost`, another gateway's, are not passed off as iris's).
  Result<ChatResponse> relayed = t->DecodeResponse(
      R"({"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
      "message":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":"stop"}],
      "iris":{"provider":"theirs"},"usage":{"prompt_tokens":3,"completion_tokens":1,
      "total_tokens":4,"cost":9.5,"cost_details":{"upstream":9.5}}})");
  ASSERT_TRUE(relayed.ok()) << relayed.status().ToString();
  const json::object ours = {{"provider", "ours"}};
  const std::string body = api::EncodeOpenAIChatResponse(*relayed, &ours, std::nullopt);
  EXPECT_EQ(body.find("theirs"), std::string::npos) << body;
  EXPECT_EQ(body.find("\"iris\":"), body.rfind("\"iris\":")) << body;  // one `iris` member
  EXPECT_EQ(body.find("\"cost"), std::string::npos) << body;           // no price, no cost
  EXPECT_NE(body.find(R"("logprobs":null)"), std::string::npos) << body;

  // A compatible server's members go back only where OpenAI has them.
  Result<ChatResponse> compat =
      MakeOpenAITranslator(OpenAIFlavor::kCompatible)
          ->DecodeResponse(
              R"({"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
      "message":{"role":"assistant","content":"Hi","reasoning_content":"Thought.",
      "internal":1},"logprobs":null,"stop_reason":null,"finish_reason":"stop"}],
      "system_fingerprint":"fp_c","kv_transfer_params":{"remote_host":"10.0.0.7"}})");
  ASSERT_TRUE(compat.ok()) << compat.status().ToString();
  ASSERT_NE(compat->openai_extras, nullptr);
  EXPECT_EQ(json::serialize(compat->openai_extras->top), R"({"system_fingerprint":"fp_c"})");
  EXPECT_EQ(json::serialize(compat->openai_extras->choice), R"({"logprobs":null})");
  EXPECT_EQ(json::serialize(compat->openai_extras->message), R"({"reasoning_content":"Thought."})");

  const std::string anthropic = api::EncodeAnthropicResponse(*r, nullptr, std::nullopt);
  for (const char* own : {"logprobs", "fp_x1", "annotations", "accepted_prediction_tokens"}) {
    EXPECT_EQ(anthropic.find(own), std::string::npos) << own << " in " << anthropic;
  }
}

// A streamed refusal is the answer's text for every caller (OpenAI's callers get it back as a
// refusal; folded, the answer is refused), and a chunk's own members stay OpenAI's.
TEST(OpenAIStreamTranslator, ARefusalIsTextForEveryCallerAndTheChunksOwnMembersStayOpenAIs) {
  auto st = MakeOpenAITranslator(OpenAIFlavor::kOpenAI)->NewStreamTranslator();
  const std::string head = R"({"id":"r","object":"chat.completion.chunk","created":1,"model":"m",)"
                           R"("system_fingerprint":"fp_x2","choices":[{"index":0,)";
  std::vector<StreamEvent> events;
  for (const std::string& rest : {
           std::string(R"("delta":{"role":"assistant","content":null,"refusal":""},)"
                       R"("logprobs":null,"finish_reason":null}]})"),
           std::string(R"("delta":{"refusal":"I'm"},"logprobs":{"refusal":[]},)"
                       R"("finish_reason":null}]})"),
           std::string(R"("delta":{"refusal":" sorry"},"finish_reason":null}]})"),
           std::string(R"("delta":{},"finish_reason":"stop"}]})"),
       }) {
    Result<std::vector<StreamEvent>> r = st->OnEvent(Data(head + rest));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (StreamEvent& e : *r) events.push_back(std::move(e));
  }
  ChatResponse folded;
  int refusals = 0;
  int carriers = 0;
  for (const StreamEvent& e : events) {
    FoldStreamEvent(folded, e);
    if (e.type == StreamEvent::Type::kTextDelta && e.refusal) ++refusals;
    if (e.openai_extras != nullptr) ++carriers;
  }
  EXPECT_EQ(refusals, 2);
  EXPECT_EQ(carriers, 4);  // every chunk held OpenAI's own members: one event of each has them
  EXPECT_TRUE(folded.refused);
  EXPECT_EQ(folded.text, "I'm sorry");
  EXPECT_NE(events[1].openai_extras, nullptr);  // the first refusal piece, with its logprobs
  api::AnthropicStreamEncoder anthropic;
  std::string out;
  for (const StreamEvent& e : events) out += anthropic.Encode(e);
  out += anthropic.Finish(nullptr, std::nullopt);
  EXPECT_NE(out.find(R"("text":"I'm")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("text":" sorry")"), std::string::npos) << out;
  EXPECT_EQ(out.find("fp_x2"), std::string::npos) << out;
  EXPECT_EQ(out.find("logprobs"), std::string::npos) << out;
}

}  // namespace
}  // namespace iris::gateway::providers
