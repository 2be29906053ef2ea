// The request pipeline end to end at the C++ level: a real gateway (AssembleGateway) on a
// loopback port, in front of fake upstreams that are real HTTP servers speaking OpenAI's wire
// format, called over a raw socket. Each failure semantic of the pipeline has a test here.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/runtime/scheduler.h"
#include "gateway/api/errors.h"
#include "gateway/proxy/test_util.h"

namespace iris::gateway::proxy {
namespace {

using namespace testing_util;

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

std::string Yaml(const std::string& a_url, const std::string& b_url, const std::string& extra) {
  std::string y = "providers:\n";
  y += "  a: { kind: openai-compatible, base_url: \"" + a_url + "\" }\n";
  y += "  b: { kind: openai-compatible, base_url: \"" + b_url + "\" }\n";
  y += extra;
  return y;
}

std::string Request(bool stream, const std::string& model = "route") {
  return std::string(R"({"model":")") + model + R"(","messages":[{"role":"user","content":"hi"}])" +
         (stream ? R"(,"stream":true})" : "}");
}

TEST(Pipeline, FallsOverToTheNextTargetAfterAServerError) {
  FakeUpstream a(Fails(500));
  FakeUpstream b(Answers("from b"));
  TestGateway gw(
      Yaml(a.base_url(), b.base_url(), "models:\n  route: { targets: [a/m, b/m], retries: 0 }\n"));
  auto r = gw.Post(Request(false));
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = Body(r);
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "from b");
  EXPECT_EQ(v.at("iris").at("provider"), "b");
  EXPECT_EQ(v.at("iris").at("attempts").as_array().size(), 2u);
  EXPECT_EQ(v.at("iris").at("attempts").at(0).at("status"), 500);
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 1);
}

TEST(Pipeline, RetriesTheSameTargetThenAnswers) {
  std::atomic<int> calls{0};
  FakeUpstream a([&calls](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
    if (calls.fetch_add(1) == 0) {
      co_await w.Send(503, Json(), R"({"error":{"message":"busy"}})");
    } else {
      co_await Answers("second try")(req, w);
    }
  });
  FakeUpstream b(Answers("never"));
  TestGateway gw(Yaml(a.base_url(), b.base_url(),
                      "routing: { backoff_base_ms: 1, backoff_max_ms: 2 }\n"
                      "models:\n  route: { targets: [a/m, b/m], retries: 1 }\n"));
  auto r = gw.Post(Request(false));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("choices").at(0).at("message").at("content"), "second try");
  EXPECT_EQ(a.requests(), 2);
  EXPECT_EQ(b.requests(), 0);
}

TEST(Pipeline, TheCallersBadRequestIsNeitherRetriedNorFailedOver) {
  FakeUpstream a(Fails(400, R"({"error":{"message":"bad temperature"}})"));
  FakeUpstream b(Answers("never"));
  TestGateway gw(
      Yaml(a.base_url(), b.base_url(), "models:\n  route: { targets: [a/m, b/m], retries: 2 }\n"));
  auto r = gw.Post(Request(false));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("bad temperature"), std::string::npos);
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 0);
}

TEST(Pipeline, AnOpenBreakerSkipsItsTarget) {
  FakeUpstream a(Fails(500));
  FakeUpstream b(Answers("b"));
  TestGateway gw(Yaml(a.base_url(), b.base_url(),
                      "routing: { breaker: { failure_threshold: 2, cooldown_ms: 60000 } }\n"
                      "models:\n  route: { targets: [a/m, b/m], retries: 0 }\n"));
  for (int i = 0; i < 2; ++i) ASSERT_EQ(gw.Post(Request(false)).status, 200);
  EXPECT_EQ(a.requests(), 2);
  auto r = gw.Post(Request(false));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(a.requests(), 2);  // skipped: the breaker is open
  json::value v = Body(r);
  EXPECT_EQ(v.at("iris").at("attempts").at(0).at("outcome"), "skipped");
  EXPECT_EQ(b.requests(), 3);
}

// A stream that sends its headers and `events`, then nothing for 5 s.
FakeHandler HangsAfter(std::vector<std::string> events) {
  return [events](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.StartStream(200, Sse());
    for (const std::string& e : events) co_await w.Write(e);
    asio::steady_timer t(co_await asio::this_coro::executor, 5s);
    co_await t.async_wait(asio::use_awaitable);
    co_await w.Finish();
  };
}

// `route` over a and b, no retries, 300 ms for the first token.
const std::string kFirstTokenRoute =
    "models:\n  route: { targets: [a/m, b/m], retries: 0, timeouts: { first_token_ms: 300 } }\n";

TEST(Pipeline, AStreamWithoutAFirstTokenInTimeFallsOverInvisibly) {
  // `a` sends its headers at once, then nothing: first_token_ms cuts it.
  FakeUpstream a(HangsAfter({}));
  FakeUpstream b(Answers("quick"));
  TestGateway gw(Yaml(a.base_url(), b.base_url(), kFirstTokenRoute));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = gw.Post(Request(true));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("quick"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("data: {\"error\""), std::string::npos) << r.body;  // no error event
  EXPECT_NE(r.body.find("\"provider\":\"b\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("no first token within 300 ms"), std::string::npos) << r.body;
}

TEST(Pipeline, ChunksOfEmptyMembersAreNoFirstTokenButReasoningTextIs) {
  // `a` keeps its stream alive with deltas whose own members hold nothing, then hangs: no
  // first token, so the route falls over. `c` sends reasoning text (a member iris does not
  // read) and then breaks: that was the first token, so the caller gets an error event.
  const std::string keep_alive =
      R"(data: {"id":"x","object":"chat.completion.chunk","model":"m",)"
      R"("choices":[{"index":0,"delta":{"reasoning_content":null,"audio":""},)"
      R"("finish_reason":null}]})"
      "\n\n";
  FakeUpstream a(HangsAfter({keep_alive, keep_alive, keep_alive}));
  FakeUpstream b(Answers("quick"));
  TestGateway gw(Yaml(a.base_url(), b.base_url(), kFirstTokenRoute));
  auto r = gw.Post(Request(true));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("quick"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("data: {\"error\""), std::string::npos) << r.body;

  FakeUpstream c([](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.StartStream(200, Sse());
    co_await w.Write(R"(data: {"id":"x","object":"chat.completion.chunk","model":"m",)"
                     R"("choices":[{"index":0,"delta":{"reasoning_content":"Let me see"},)"
                     R"("finish_reason":null}]})"
                     "\n\n");
    co_await w.Finish();  // no finish_reason, no [DONE]
  });
  FakeUpstream d(Answers("never"));
  TestGateway gw2(
      Yaml(c.base_url(), d.base_url(), "models:\n  route: { targets: [a/m, b/m], retries: 0 }\n"));
  auto r2 = gw2.Post(Request(true));
  ASSERT_EQ(r2.status, 200) << r2.body;  // committed at the reasoning text
  EXPECT_NE(r2.body.find(R"("reasoning_content":"Let me see")"), std::string::npos) << r2.body;
  EXPECT_NE(r2.body.find("data: {\"error\""), std::string::npos) << r2.body;
  EXPECT_EQ(d.requests(), 0);
}

TEST(Pipeline, AStreamCutAfterItsFirstTokenEndsWithAnErrorEventAndNoFallback) {
  FakeUpstream a([](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.StartStream(200, Sse());
    co_await w.Write(Chunk("partial"));
    co_await w.Finish();  // no finish_reason, no [DONE]
  });
  FakeUpstream b(Answers("never"));
  TestGateway gw(
      Yaml(a.base_url(), b.base_url(), "models:\n  route: { targets: [a/m, b/m], retries: 2 }\n"));
  auto r = gw.Post(Request(true));
  ASSERT_EQ(r.status, 200) << r.body;  // committed at the first token
  EXPECT_NE(r.body.find("partial"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: {\"error\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 0);
}

// What an upstream writes into a failure reaches the caller (and the request log) through the
// attempt's outcome: a key in it is redacted, and it is cut at kMaxErrorMessageBytes. Here an
// OpenAI-compatible server echoes the operator's key in an error event after the first token,
// and in an error member of a 200 answer.
TEST(Pipeline, AnUpstreamsWordsInAFailureAreRedactedAndBounded) {
  const std::string key = "sk-proj-" + std::string(40, 'K');
  const std::string words = "Incorrect API key provided: " + key + " " + std::string(10000, 'w');
  const std::string error = R"({"error":{"message":")" + words + R"("}})";
  FakeUpstream a([error](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.StartStream(200, Sse());
    co_await w.Write(Chunk("partial"));
    asio::steady_timer t(co_await asio::this_coro::executor, 100ms);  // the caller has it
    co_await t.async_wait(asio::use_awaitable);
    co_await w.Write("data: " + error + "\n\n");
    co_await w.Finish();
  });
  FakeUpstream b([error](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.Send(200, Json(), error);
  });
  TestGateway gw(Yaml(a.base_url(), b.base_url(),
                      "models:\n  sa: { targets: [a/m], retries: 0 }\n"
                      "  sb: { targets: [b/m], retries: 0 }\n"));
  auto streamed = gw.Post(Request(true, "sa"));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  const size_t at = streamed.body.find("data: {\"error\"");
  ASSERT_NE(at, std::string::npos) << streamed.body;
  const std::string event = streamed.body.substr(at + 6, streamed.body.find("\n", at) - at - 6);
  const std::string streamed_message(Body({200, {}, event}).at("error").at("message").as_string());

  auto answered = gw.Post(Request(false, "sb"));
  EXPECT_EQ(answered.status, 502) << answered.body.substr(0, 300);
  const std::string answered_message(Body(answered).at("error").at("message").as_string());

  for (const std::string& m : {streamed_message, answered_message}) {
    EXPECT_EQ(m.find(std::string(12, 'K')), std::string::npos) << m.substr(0, 200);
    EXPECT_NE(m.find("provided: [redacted]"), std::string::npos) << m.substr(0, 200);
    EXPECT_LE(m.size(), api::kMaxErrorMessageBytes + 3);
    EXPECT_EQ(m.substr(m.size() - 4), "w...");
  }
}

// An error page iris quotes (it has no message iris can read) names the upstream's host and
// port; callers get the provider's name in their place.
TEST(Pipeline, AQuotedErrorPageDoesNotNameTheUpstreamsHost) {
  FakeUpstream b(Answers("unused"));
  const std::string host = b.base_url().substr(b.base_url().find("//") + 2);  // 127.0.0.1:port
  const std::string page = "<html><body>upstream " + host.substr(0, host.find('/')) +
                           " refused the connection</body></html>";
  http::Headers html = Json();
  html.Set("content-type", "text/html");
  FakeUpstream a([page, html](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.Send(502, html, page);
  });
  TestGateway gw(Yaml(a.base_url(), b.base_url(), "models:\n  route: { targets: [a/m] }\n"));
  auto r = gw.Post(Request(false));
  EXPECT_EQ(r.status, 502) << r.body;
  const std::string message(Body(r).at("error").at("message").as_string());
  EXPECT_NE(message.find("<html><body>upstream a refused the connection"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("127.0.0.1"), std::string::npos) << message;
}

TEST(Pipeline, EveryAttemptFailingNamesEachOne) {
  FakeUpstream a(Fails(502));
  FakeUpstream b(Fails(504));
  TestGateway gw(
      Yaml(a.base_url(), b.base_url(), "models:\n  route: { targets: [a/m, b/m], retries: 0 }\n"));
  auto r = gw.Post(Request(false));
  EXPECT_EQ(r.status, 504) << r.body;  // the last attempt's class
  EXPECT_NE(r.body.find("all 2 attempts failed"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("a/m"), std::string::npos);
  EXPECT_NE(r.body.find("b/m"), std::string::npos);
}

// An Anthropic caller's server tool (web search here) goes to Anthropic as written, and
// Anthropic's own answer comes back whole, server tools' blocks and citations included, whole
// or streamed. A target of another kind refuses the request, naming the tool, and the next
// target is tried; with none left, the caller learns which API can take it.
TEST(Pipeline, AnAnthropicCallersServerToolsGoToAnthropicAndComeBackWhole) {
  const std::string message =
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[)"
      R"({"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},)"
      R"({"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},)"
      R"({"type":"text","text":"Rain.","citations":[{"type":"web_search_result_location",)"
      R"("url":"https://w.test","cited_text":"Rain"}]}],"stop_reason":"end_turn",)"
      R"("stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":4,)"
      R"("server_tool_use":{"web_search_requests":1}}})";
  const std::vector<std::pair<std::string, std::string>> events = {
      {"message_start",
       R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",)"
       R"("model":"claude-x","content":[],"usage":{"input_tokens":9,"output_tokens":1}}})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use",)"
       R"("id":"srvtoolu_1","name":"web_search","input":{}}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",)"
       R"("partial_json":"{\"query\":\"q\"}"}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":0})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":1,"delta":{"type":"citations_delta",)"
       R"("citation":{"type":"web_search_result_location","url":"https://w.test"}}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Rain."}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":1})"},
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)"
       R"("usage":{"output_tokens":4,"server_tool_use":{"web_search_requests":1}}})"},
      {"message_stop", R"({"type":"message_stop"})"}};
  std::mutex seen_mu;
  std::string seen, seen_beta;  // the body and the anthropic-beta header Anthropic got
  FakeUpstream claude([&](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
    {
      std::lock_guard<std::mutex> lock(seen_mu);
      seen = req.body;
      seen_beta = std::string(req.headers.Get("anthropic-beta"));
    }
    if (req.body.find("\"stream\":true") == std::string::npos) {
      co_await w.Send(200, Json(), message);
      co_return;
    }
    co_await w.StartStream(200, Sse());
    for (const auto& [name, data] : events) {
      co_await w.Write("event: " + name + "\ndata: " + data + "\n\n");
    }
    co_await w.Finish();
  });
  FakeUpstream other(Answers("never"));
  const std::string yaml =
      "providers:\n"
      "  other: { kind: openai-compatible, base_url: \"" +
      other.base_url() +
      "\" }\n"
      "  claude: { kind: anthropic, api_key_env: K, base_url: \"" +
      claude.base_url() +
      "\", headers: { anthropic-beta: operator-beta-1 } }\n"
      "models:\n"
      "  route: { targets: [other/m, claude/claude-x], retries: 0 }\n"
      "  elsewhere: { targets: [other/m], retries: 0 }\n";
  TestGateway gw(yaml, {{"K", "sk-ant-test"}});
  auto ask = [&](const std::string& model, bool stream,
                 const std::string& beta =
                     "anthropic-beta: files-api-2025-04-14, x-2\r\nAnthropic-Beta: y-3") {
    return gw.Call(
        "POST", "/v1/messages",
        R"({"model":")" + model + R"(","max_tokens":100,)" + (stream ? R"("stream":true,)" : "") +
            R"("tools":[{"type":"web_search_20250305","name":"web_search","max_uses":1}],)"
            R"("messages":[{"role":"user","content":"Rain in Paris?"}]})",
        {"anthropic-version: 2023-06-01", beta});
  };

  auto whole = ask("route", false);
  ASSERT_EQ(whole.status, 200) << whole.body;
  json::object got = Body(whole).as_object();
  json::object iris = got.at("iris").as_object();
  got.erase("iris");
  EXPECT_EQ(json::value(got), json::parse(message));  // as it came, with iris's report
  EXPECT_EQ(iris.at("provider"), "claude");
  ASSERT_EQ(iris.at("attempts").as_array().size(), 2u);
  EXPECT_EQ(other.requests(), 0);  // (refused before anything was sent)
  json::value sent;
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    sent = json::parse(seen);
    // The operator's beta features, then the caller's (every line), checked, in one field.
    EXPECT_EQ(seen_beta, "operator-beta-1,files-api-2025-04-14,x-2,y-3");
  }
  EXPECT_EQ(sent.at("tools"),
            json::parse(R"([{"type":"web_search_20250305","name":"web_search","max_uses":1}])"));
  EXPECT_EQ(sent.at("model"), "claude-x");

  auto streamed = ask("route", true);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  // Every event as it came, in order, once; the last message_delta with iris's report.
  std::vector<std::pair<std::string, std::string>> frames;
  for (size_t at = 0; at < streamed.body.size();) {
    const size_t end = streamed.body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos) << streamed.body;
    const std::string frame = streamed.body.substr(at, end - at);
    const size_t nl = frame.find('\n');
    ASSERT_EQ(frame.rfind("event: ", 0), 0u) << frame;
    ASSERT_EQ(frame.compare(nl + 1, 6, "data: "), 0) << frame;
    frames.emplace_back(frame.substr(7, nl - 7), frame.substr(nl + 7));
    at = end + 2;
  }
  ASSERT_EQ(frames.size(), events.size()) << streamed.body;
  for (size_t i = 0; i + 2 < events.size(); ++i) EXPECT_EQ(frames[i], events[i]) << i;
  EXPECT_EQ(frames[events.size() - 2].first, "message_delta");
  json::object last = json::parse(frames[events.size() - 2].second).as_object();
  EXPECT_EQ(last.at("iris").at("provider"), "claude");
  last.erase("iris");
  EXPECT_EQ(json::value(last), json::parse(events[events.size() - 2].second));
  EXPECT_EQ(frames.back(), events.back());
  EXPECT_EQ(other.requests(), 0);

  auto bad_beta = ask("route", false, "anthropic-beta: files api");
  EXPECT_EQ(bad_beta.status, 400) << bad_beta.body;
  EXPECT_NE(bad_beta.body.find("anthropic-beta: expected"), std::string::npos) << bad_beta.body;

  auto refused = ask("elsewhere", false);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("tools[0] (web_search_20250305)"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("only Anthropic's Messages API can"), std::string::npos)
      << refused.body;
  EXPECT_EQ(other.requests(), 0);
}

// An answer discarded for breaking the caller's JSON schema was still billed: its tokens count
// in the request's usage and cost beside the answer that went out. (A stream commits at its
// first token or its finish, so a streamed answer off the schema ends in an error instead.)
TEST(Pipeline, AnAnswerDiscardedOffSchemaStillCounts) {
  // a: an empty answer (not JSON) with 1000 tokens each way; b: valid JSON.
  FakeUpstream a([](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.Send(200, Json(),
                    R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":)"
                    R"([{"index":0,"message":{"role":"assistant","content":""},)"
                    R"("finish_reason":"stop"}],"usage":{"prompt_tokens":1000,)"
                    R"("completion_tokens":1000,"total_tokens":2000}})");
  });
  FakeUpstream b(Answers(R"({"ok":true})"));
  TestGateway gw(Yaml(a.base_url(), b.base_url(),
                      "models:\n  route: { targets: [a/m, b/m], retries: 0 }\n"
                      "pricing:\n  m: { input_per_mtok: 1, output_per_mtok: 1 }\n"));
  auto r = gw.Post(R"({"model":"route","messages":[{"role":"user","content":"hi"}],)"
                   R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":)"
                   R"({"type":"object"}}}})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object iris = Body(r).at("iris").as_object();
  ASSERT_EQ(iris.at("attempts").as_array().size(), 2u) << iris;
  EXPECT_EQ(iris.at("provider"), "b") << iris;
  // a's 2000 tokens at $1 a million, and b's 5 + 2 (the body's usage is b's answer's own).
  EXPECT_NEAR(iris.at("cost_usd").to_number<double>(), 0.002007, 1e-9) << iris;
}

// Web searches bill by the search on top of the tokens: cost_usd counts them at the model's
// web_search_per_1k, whole and streamed, and where the price has none the caller is told.
TEST(Pipeline, WebSearchesAreInTheCost) {
  auto message = [](const std::string& model) {
    return R"({"id":"msg_1","type":"message","role":"assistant","model":")" + model +
           R"(","content":[{"type":"text","text":"Rain."}],"stop_reason":"end_turn",)"
           R"("usage":{"input_tokens":1000,"output_tokens":1000,)"
           R"("server_tool_use":{"web_search_requests":2}}})";
  };
  FakeUpstream claude([&](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
    const std::string model(json::parse(req.body).at("model").as_string());
    if (req.body.find("\"stream\":true") == std::string::npos) {
      co_await w.Send(200, Json(), message(model));
      co_return;
    }
    co_await w.StartStream(200, Sse());
    co_await w.Write(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"model\":\"" +
        model +
        "\",\"content\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Rain.\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":1000,\"server_tool_use\":"
        "{\"web_search_requests\":2}}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    co_await w.Finish();
  });
  TestGateway gw(
      "providers:\n"
      "  claude: { kind: anthropic, api_key_env: K, base_url: \"" +
          claude.base_url() +
          "\" }\n"
          "pricing:\n"
          "  claude-x: { input_per_mtok: 1, output_per_mtok: 1, web_search_per_1k: 10 }\n"
          "  house-y: { input_per_mtok: 1, output_per_mtok: 1 }\n",
      {{"K", "sk-ant-test"}});
  auto ask = [&](const std::string& model, bool stream) {
    return gw.Call("POST", "/v1/messages",
                   R"({"model":"claude/)" + model + R"(","max_tokens":100,)" +
                       (stream ? R"("stream":true,)" : "") +
                       R"("tools":[{"type":"web_search_20250305","name":"web_search"}],)"
                       R"("messages":[{"role":"user","content":"Rain in Paris?"}]})",
                   {"anthropic-version: 2023-06-01"});
  };
  // The iris report of a whole answer, or of a stream's last message_delta.
  auto report = [](const http::testing::RawResponse& r, bool stream) -> json::object {
    if (!stream) return json::parse(r.body).at("iris").as_object();
    const size_t at = r.body.rfind("event: message_delta\ndata: ");
    EXPECT_NE(at, std::string::npos) << r.body;
    if (at == std::string::npos) return {};
    const size_t from = at + 27;
    return json::parse(r.body.substr(from, r.body.find('\n', from) - from)).at("iris").as_object();
  };
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "whole");
    auto priced = ask("claude-x", stream);
    ASSERT_EQ(priced.status, 200) << priced.body;
    json::object iris = report(priced, stream);
    // 1000 in + 1000 out at $1 a million, and 2 searches at $10 a thousand.
    EXPECT_NEAR(iris.at("cost_usd").to_number<double>(), 0.002 + 0.02, 1e-9) << iris;
    EXPECT_FALSE(iris.contains("warnings")) << iris;

    auto unpriced = ask("house-y", stream);
    ASSERT_EQ(unpriced.status, 200) << unpriced.body;
    iris = report(unpriced, stream);
    EXPECT_NEAR(iris.at("cost_usd").to_number<double>(), 0.002, 1e-9) << iris;
    ASSERT_TRUE(iris.contains("warnings")) << iris;
    EXPECT_EQ(iris.at("warnings"),
              json::array({"2 web searches by claude/house-y are not in cost_usd: its price has "
                           "no web_search_per_1k (pricing in iris.yaml)"}))
        << iris;
  }
}

// Anthropic's own events wait for the first token like any: a stream that breaks before it
// falls over to the next target unseen, and the caller gets that target's answer in its own
// wire format, none of Anthropic's events.
TEST(Pipeline, AnAnthropicStreamCutBeforeItsFirstTokenFallsOverUnseen) {
  FakeUpstream claude([](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.StartStream(200, Sse());
    co_await w.Write(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_cut\","
        "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":3}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    co_await w.Finish();  // (no message_stop: cut)
  });
  FakeUpstream other(Answers("from other"));
  TestGateway gw(
      "providers:\n"
      "  claude: { kind: anthropic, api_key_env: K, base_url: \"" +
          claude.base_url() +
          "\" }\n"
          "  other: { kind: openai-compatible, base_url: \"" +
          other.base_url() +
          "\" }\n"
          "models:\n  route: { targets: [claude/claude-x, other/m], retries: 0 }\n",
      {{"K", "sk-ant-test"}});
  auto r = gw.Call("POST", "/v1/messages",
                   R"({"model":"route","max_tokens":50,"stream":true,)"
                   R"("messages":[{"role":"user","content":"hi"}]})",
                   {"anthropic-version: 2023-06-01"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(claude.requests(), 1);
  EXPECT_EQ(other.requests(), 1);
  EXPECT_EQ(r.body.find("msg_cut"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("text":"from other")"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.rfind("event: message_start\n", 0), 0u) << r.body;
  EXPECT_NE(r.body.find("event: message_stop\n"), std::string::npos) << r.body;
}

// A file in the provider's account is every caller's only where the operator says so.
TEST(Pipeline, AnAnthropicFileIsTheOperatorsToShare) {
  std::atomic<int> asked{0};
  FakeUpstream claude([&](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    asked.fetch_add(1);
    co_await w.Send(200, Json(),
                    R"({"id":"msg_1","type":"message","role":"assistant","model":"c",)"
                    R"("content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",)"
                    R"("usage":{"input_tokens":1,"output_tokens":1}})");
  });
  const std::string body =
      R"({"model":"claude/c","max_tokens":10,"messages":[{"role":"user","content":[)"
      R"({"type":"document","source":{"type":"file","file_id":"file_011"}},)"
      R"({"type":"text","text":"Summarise"}]}]})";
  for (bool shared : {false, true}) {
    TestGateway gw("providers:\n  claude: { kind: anthropic, api_key_env: K, base_url: \"" +
                       claude.base_url() + "\"" + (shared ? ", account_resources: true" : "") +
                       " }\n",
                   {{"K", "sk-ant-test"}});
    auto r = gw.Call("POST", "/v1/messages", body, {"anthropic-version: 2023-06-01"});
    if (!shared) {
      EXPECT_EQ(r.status, 403) << r.body;
      EXPECT_NE(r.body.find("messages[0].content[0] (in the provider account)"), std::string::npos)
          << r.body;
      EXPECT_NE(r.body.find("account_resources: true"), std::string::npos) << r.body;
      EXPECT_EQ(asked.load(), 0);
    } else {
      EXPECT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(asked.load(), 1);
    }
  }
}

const std::string kTinyModel = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";

// AssembleGateway with the tiny test checkpoint as the local model, under `yaml`.
Result<std::unique_ptr<Assembly>> AssembleLocal(const std::string& yaml, int engine_threads = 0) {
  IRIS_ASSIGN_OR_RETURN(
      auto config, config::LoadConfigString(yaml, [](std::string_view) { return std::nullopt; }));
  AssembleFlags flags;
  flags.db = "none";
  flags.listen = "127.0.0.1:0";
  flags.local_model_dir = kTinyModel;
  flags.engine_threads = engine_threads;
  return AssembleGateway(config, flags);
}

// providers.local's threads and max_queue reach the engine and its queue.
TEST(Assemble, LocalThreadsAndQueueComeFromTheConfiguration) {
  const std::string yaml =
      "providers:\n  local: { kind: local, model: x, threads: 1, max_queue: 3, max_images: 2,\n"
      "           step_tokens: 24 }\n";
  auto a = AssembleLocal(yaml);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_NE((*a)->local, nullptr);
  EXPECT_EQ((*a)->local->engine_threads(), 1);
  EXPECT_EQ((*a)->local->options().max_queue, 3u);
  EXPECT_EQ((*a)->local->options().max_images, 2);
  EXPECT_EQ((*a)->local->options().step_tokens, 24u);
  // A prompt chunk beside decoders gets a quarter of the step's rows, from 8 to 16.
  EXPECT_EQ((*a)->local->scheduler_options().step_tokens, 24u);
  EXPECT_EQ((*a)->local->scheduler_options().min_prefill, 8u);
  for (const auto& [step_tokens, min_prefill] :
       {std::pair<int, size_t>{0, 16}, {8, 8}, {40, 10}, {50, 12}, {64, 16}, {128, 16}}) {
    const std::string key = step_tokens != 0 ? ", step_tokens: " + std::to_string(step_tokens) : "";
    auto d = AssembleLocal("providers:\n  local: { kind: local, model: x" + key + " }\n");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ((*d)->local->scheduler_options().step_tokens,
              static_cast<size_t>(step_tokens != 0 ? step_tokens : 64));
    EXPECT_EQ((*d)->local->scheduler_options().min_prefill, min_prefill)
        << "step_tokens " << step_tokens;
  }
  // --engine-threads wins over the file.
  a = AssembleLocal(yaml, /*engine_threads=*/2);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->local->engine_threads(), 2);
}

// providers.local.kv_cache_dtype reaches the engine: f16 blocks are half the bytes, so the same
// kv_cache_mb holds twice the blocks.
TEST(Assemble, AnF16KvCacheHoldsTwiceThePositionsInTheSameBudget) {
  auto f32 = AssembleLocal("providers:\n  local: { kind: local, model: x, kv_cache_mb: 16 }\n");
  auto f16 = AssembleLocal(
      "providers:\n  local: { kind: local, model: x, kv_cache_mb: 16, kv_cache_dtype: f16 }\n");
  ASSERT_TRUE(f32.ok() && f16.ok()) << f32.status().ToString() << f16.status().ToString();
  const providers::LocalStats& a = (*f32)->local->stats();
  const providers::LocalStats& b = (*f16)->local->stats();
  EXPECT_EQ(b.kv_block_bytes.load() * 2, a.kv_block_bytes.load());
  EXPECT_EQ(b.kv_blocks_total.load(), 2 * a.kv_blocks_total.load());
}

// A full queue refuses at once: with max_queue 0 and one generation running, a second local
// request is refused (kResourceExhausted, which the pipeline answers as overloaded and falls
// over from) without waiting for the first.
TEST(Assemble, TheLocalQueueBoundIsEnforced) {
  auto a = AssembleLocal(
      "providers:\n  local: { kind: local, model: x, threads: 1, max_queue: 0, max_batch: 1 }\n");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  providers::LocalProvider& local = *(*a)->local;
  ChatRequest req;
  Message m;
  m.content.push_back(ContentPart::Text("hello"));
  req.messages.push_back(m);
  req.max_tokens = 64;
  std::atomic<bool> release{false};
  std::atomic<bool> done{false}, entered{false};
  providers::LocalSink slow{[&release, &entered](const StreamEvent&) {
                              entered.store(true);
                              while (!release.load()) std::this_thread::sleep_for(1ms);
                              return true;
                            },
                            [&done](const iris::Status&) { done.store(true); },
                            {}};
  ASSERT_TRUE(local.Submit(req, slow).ok());
  // The engine thread holds the first request (in its sink): max_batch 1 is taken.
  const bool held = http::testing::WaitUntil([&] { return entered.load(); });
  if (!held) release.store(true);
  ASSERT_TRUE(held);
  iris::Status second = local.Submit(
      req, providers::LocalSink{
               [](const StreamEvent&) { return true; }, [](const iris::Status&) {}, {}});
  EXPECT_EQ(second.code(), ErrorCode::kResourceExhausted) << second.ToString();
  release.store(true);
  EXPECT_TRUE(http::testing::WaitUntil([&] { return done.load(); }, 30s));
}

}  // namespace
}  // namespace iris::gateway::proxy
