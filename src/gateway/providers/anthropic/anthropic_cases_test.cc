// Runs the translation cases in tests/gateway_cases whose inbound dialect is Anthropic:
// client request -> ParseAnthropicRequest -> translator.EncodeRequest (compared with
// upstream_request.json) -> upstream response (JSON, SSE or error) -> decoded and encoded
// back to the client as the proxy does (compared with client_response.{json,sse} /
// client_error.json). A request that went as is (to Anthropic) gets Anthropic's own answer;
// where a case also has translated_response.{json,sse}, the same answer read into iris's
// neutral form and encoded by iris is compared with it (what a caller would get from another
// provider answering the same). Cases with another inbound dialect are skipped here.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/api/anthropic.h"
#include "gateway/http/sse.h"
#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/cases_testing.h"
#include "gateway/providers/gemini/gemini_translator.h"

namespace iris::gateway::providers {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using cases::CasesDir;
using cases::Lower;
using cases::ReadFile;
using cases::ReadJson;

std::vector<http::SseEvent> ParseSse(std::string_view bytes) {
  http::SseParser parser;
  std::vector<http::SseEvent> events;
  parser.Feed(bytes, events);
  parser.Feed("\n\n", events);  // flush a final event without its blank line
  return events;
}

std::vector<std::string> AnthropicInboundCases() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(CasesDir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("anthropic-", 0) != 0 && name.rfind("gemini-", 0) != 0) continue;
    if (!fs::exists(entry.path() / "case.json")) continue;
    json::value c = json::parse(ReadFile(entry.path() / "case.json"));
    if (c.at("inbound") == "anthropic") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string_view ClassName(ErrorClass c) {
  static constexpr std::string_view kNames[] = {
      "invalid_request", "authentication", "permission",       "not_found",  "payload_too_large",
      "rate_limited",    "upstream",       "upstream_timeout", "overloaded", "internal"};
  return kNames[static_cast<int>(c)];
}

// What the proxy does with a failed stream: the Status becomes an upstream error.
GatewayError StreamFailure(const Status& s, std::string_view provider) {
  GatewayError e;
  e.error_class = ErrorClass::kUpstream;
  e.message = s.message();
  e.provider = std::string(provider);
  return e;
}

class TranslationCase : public testing::TestWithParam<std::string> {};

TEST_P(TranslationCase, Matches) {
  fs::path dir = CasesDir() / GetParam();
  json::object c = ReadJson(dir / "case.json").as_object();
  std::string provider(c.at("provider").as_string());
  std::unique_ptr<Translator> translator =
      provider == "anthropic" ? MakeAnthropicTranslator() : MakeGeminiTranslator();

  Result<ChatRequest> request = api::ParseAnthropicRequest(ReadFile(dir / "client_request.json"));
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  TargetInfo target{provider, std::string(c.at("model").as_string()), "test-key",
                    std::string(c.at("base_url").as_string())};
  Result<UpstreamRequest> up = translator->EncodeRequest(*request, target);
  ASSERT_TRUE(up.ok()) << up.status().ToString();

  json::object want_up = ReadJson(dir / "upstream_request.json").as_object();
  EXPECT_EQ(up->method, "POST");
  EXPECT_EQ(up->url, want_up.at("url").as_string());
  for (const auto& [name, value] : want_up.at("headers").as_object()) {
    auto it = std::find_if(up->headers.begin(), up->headers.end(),
                           [&](const auto& h) { return Lower(h.first) == Lower(name); });
    ASSERT_NE(it, up->headers.end()) << "missing header " << name;
    EXPECT_EQ(it->second, value.as_string()) << name;
  }
  EXPECT_EQ(json::parse(up->body), want_up.at("body")) << "got body " << up->body;
  // What the provider could not take of the caller's request (case.json "dropped"; none when
  // absent).
  std::vector<std::string> want_dropped;
  if (const json::value* d = c.if_contains("dropped")) {
    for (const json::value& name : d->as_array()) want_dropped.emplace_back(name.as_string());
  }
  EXPECT_EQ(up->dropped, want_dropped);

  if (const json::value* status = c.if_contains("upstream_status")) {
    int code = static_cast<int>(status->to_number<int64_t>());
    std::string retry_after;
    if (const json::value* ra = c.if_contains("retry_after")) retry_after = ra->as_string();
    GatewayError err =
        translator->DecodeError(code, ReadFile(dir / "upstream_response.json"), retry_after);
    json::object want = ReadJson(dir / "client_error.json").as_object();
    EXPECT_EQ(ClassName(err.error_class), want.at("error_class").as_string());
    EXPECT_EQ(err.upstream_status, code);
    EXPECT_EQ(err.provider, provider);
    EXPECT_EQ(err.message, want.at("message").as_string());
    if (const json::value* ra = want.if_contains("retry_after_s")) {
      ASSERT_TRUE(err.retry_after_s.has_value());
      EXPECT_DOUBLE_EQ(*err.retry_after_s, ra->to_number<double>());
    }
    // The in-band form an Anthropic client gets once a stream has started.
    api::AnthropicStreamEncoder enc;
    std::vector<http::SseEvent> events = ParseSse(enc.Error(err));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(json::parse(events[0].data), want.at("anthropic_body"));
    return;
  }

  if (c.at("stream").as_bool()) {
    auto run = [&](bool as_is, const fs::path& want_file) {
      SCOPED_TRACE(want_file.filename().string());
      std::unique_ptr<StreamTranslator> st =
          as_is ? translator->NewAsIsStreamTranslator() : translator->NewStreamTranslator();
      api::AnthropicStreamEncoder enc;
      std::string client;
      bool failed = false;
      for (const http::SseEvent& ev : ParseSse(ReadFile(dir / "upstream_response.sse"))) {
        Result<std::vector<StreamEvent>> out = st->OnEvent(ev);
        if (!out.ok()) {
          client += enc.Error(StreamFailure(out.status(), provider));
          failed = true;
          break;
        }
        for (const StreamEvent& e : *out) client += enc.Encode(e);
      }
      if (!failed) {
        Result<std::vector<StreamEvent>> tail = st->OnEnd();
        if (!tail.ok()) {
          client += enc.Error(StreamFailure(tail.status(), provider));
        } else {
          for (const StreamEvent& e : *tail) client += enc.Encode(e);
          client += enc.Finish(nullptr, std::nullopt);
        }
      }
      std::vector<http::SseEvent> got = ParseSse(client);
      std::vector<http::SseEvent> want = ParseSse(ReadFile(want_file));
      ASSERT_EQ(got.size(), want.size()) << client;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].event, want[i].event) << "event " << i;
        EXPECT_EQ(json::parse(got[i].data), json::parse(want[i].data))
            << "event " << i << ": " << got[i].data;
      }
    };
    run(up->as_is, dir / "client_response.sse");
    if (fs::exists(dir / "translated_response.sse")) run(false, dir / "translated_response.sse");
    return;
  }

  const std::string body = ReadFile(dir / "upstream_response.json");
  Result<ChatResponse> resp =
      up->as_is ? translator->DecodeAsIsResponse(body) : translator->DecodeResponse(body);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  // (as the proxy's encoder: Anthropic's own message to the caller whose body went as is)
  std::string client = resp->as_is && resp->as_is_dialect == Dialect::kAnthropic
                           ? api::EncodeAnthropicAsIsResponse(*resp->as_is, nullptr, std::nullopt)
                           : api::EncodeAnthropicResponse(*resp, nullptr, std::nullopt);
  EXPECT_EQ(json::parse(client), ReadJson(dir / "client_response.json")) << client;
  if (fs::exists(dir / "translated_response.json")) {
    Result<ChatResponse> neutral = translator->DecodeResponse(body);
    ASSERT_TRUE(neutral.ok()) << neutral.status().ToString();
    EXPECT_EQ(neutral->as_is, nullptr);
    EXPECT_EQ(json::parse(api::EncodeAnthropicResponse(*neutral, nullptr, std::nullopt)),
              ReadJson(dir / "translated_response.json"));
  }
}

INSTANTIATE_TEST_SUITE_P(GatewayCases, TranslationCase, testing::ValuesIn(AnthropicInboundCases()),
                         [](const testing::TestParamInfo<std::string>& param) {
                           std::string n = param.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(TranslationCases, AreFound) { EXPECT_GE(AnthropicInboundCases().size(), 10u); }

}  // namespace
}  // namespace iris::gateway::providers
