// Runs the translation cases (tests/gateway_cases/*) whose inbound dialect is OpenAI and
// whose upstream speaks OpenAI's wire format: client request -> ParseOpenAIChatRequest ->
// EncodeRequest (compared with upstream_request.json) -> the recorded upstream answer ->
// DecodeResponse / stream translator / DecodeError -> the OpenAI encoders (compared with
// client_response.{json,sse} or client_error.json). A new case is a new folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"
#include "gateway/api/errors.h"
#include "gateway/api/openai.h"
#include "gateway/http/sse.h"
#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/cases_testing.h"
#include "gateway/providers/gemini/gemini_translator.h"
#include "gateway/providers/openai/openai_translator.h"

namespace iris::gateway::providers {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using cases::CasesDir;
using cases::Lower;
using cases::ReadFile;
using cases::ReadJson;

std::optional<OpenAIFlavor> FlavorOf(std::string_view provider) {
  if (provider == "openai") return OpenAIFlavor::kOpenAI;
  if (provider == "mistral") return OpenAIFlavor::kMistral;
  if (provider == "openai-compatible") return OpenAIFlavor::kCompatible;
  return std::nullopt;
}

// Every provider an OpenAI caller can reach; null for an unknown name.
std::unique_ptr<Translator> TranslatorFor(std::string_view provider, std::string provider_name) {
  if (auto flavor = FlavorOf(provider)) return MakeOpenAITranslator(*flavor, provider_name);
  if (provider == "anthropic") return MakeAnthropicTranslator();
  if (provider == "gemini") return MakeGeminiTranslator();
  return nullptr;
}

// The case folders this test owns: inbound openai, any provider.
std::vector<std::string> OpenAICases() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(CasesDir(), ec)) {
    fs::path c = entry.path() / "case.json";
    if (!fs::exists(c)) continue;
    Result<json::value> v = ParseJson(ReadFile(c), c.string());
    if (!v.ok() || !v->is_object()) {
      names.push_back(entry.path().filename().string());  // fails loudly in the test
      continue;
    }
    const json::object& o = v->get_object();
    auto in = o.find("inbound");
    auto prov = o.find("provider");
    if (in == o.end() || in->value() != "openai" || prov == o.end() || !prov->value().is_string() ||
        !TranslatorFor(prov->value().get_string(), "")) {
      continue;
    }
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool IsNumber(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }
double ToDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return v.get_double();
}

// JSON equality with numbers compared by value (1 == 1.0); returns the first difference.
std::string JsonDiff(const json::value& want, const json::value& got, const std::string& path) {
  if (IsNumber(want) && IsNumber(got)) {
    double a = ToDouble(want);
    double b = ToDouble(got);
    if (a == b || std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b))) return {};
    return path + ": want " + json::serialize(want) + ", got " + json::serialize(got);
  }
  if (want.kind() != got.kind()) {
    return path + ": want " + json::serialize(want) + ", got " + json::serialize(got);
  }
  if (want.is_object()) {
    const json::object& w = want.get_object();
    const json::object& g = got.get_object();
    for (const auto& kv : w) {
      auto it = g.find(kv.key());
      if (it == g.end()) return path + "." + std::string(kv.key()) + ": missing";
      std::string d = JsonDiff(kv.value(), it->value(), path + "." + std::string(kv.key()));
      if (!d.empty()) return d;
    }
    for (const auto& kv : g) {
      if (!w.contains(kv.key())) {
        return path + "." + std::string(kv.key()) + ": unexpected " + json::serialize(kv.value());
      }
    }
    return {};
  }
  if (want.is_array()) {
    const json::array& w = want.get_array();
    const json::array& g = got.get_array();
    if (w.size() != g.size()) {
      return path + ": want " + std::to_string(w.size()) + " elements, got " +
             std::to_string(g.size()) + ": " + json::serialize(got);
    }
    for (size_t i = 0; i < w.size(); ++i) {
      std::string d = JsonDiff(w[i], g[i], path + "[" + std::to_string(i) + "]");
      if (!d.empty()) return d;
    }
    return {};
  }
  if (want != got)
    return path + ": want " + json::serialize(want) + ", got " + json::serialize(got);
  return {};
}

std::vector<http::SseEvent> ParseSse(std::string_view bytes, size_t piece) {
  http::SseParser parser;
  std::vector<http::SseEvent> events;
  for (size_t i = 0; i < bytes.size(); i += piece) parser.Feed(bytes.substr(i, piece), events);
  return events;
}

class OpenAICaseTest : public testing::TestWithParam<std::string> {};

TEST_P(OpenAICaseTest, Translates) {
  const fs::path dir = CasesDir() / GetParam();
  json::value case_json = ReadJson(dir / "case.json");
  ASSERT_TRUE(case_json.is_object()) << "case.json must be an object";
  const json::object& c = case_json.get_object();
  std::string provider(c.at("provider").as_string());
  std::string provider_name =
      c.contains("provider_name") ? std::string(c.at("provider_name").as_string()) : provider;
  std::unique_ptr<Translator> translator = TranslatorFor(provider, provider_name);
  ASSERT_NE(translator, nullptr) << provider;
  const json::object* iris = nullptr;
  if (auto it = c.find("iris"); it != c.end()) iris = &it->value().as_object();
  std::optional<double> cost;
  if (auto it = c.find("cost_usd"); it != c.end()) cost = ToDouble(it->value());

  // Client request -> ChatRequest -> upstream request.
  Result<ChatRequest> request = api::ParseOpenAIChatRequest(ReadFile(dir / "client_request.json"));
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  if (auto it = c.find("stream"); it != c.end()) {
    EXPECT_EQ(request->stream, it->value().as_bool());
  }
  TargetInfo target{provider_name, std::string(c.at("model").as_string()), "test-key",
                    std::string(c.at("base_url").as_string())};
  Result<UpstreamRequest> up = translator->EncodeRequest(*request, target);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  json::value want_up = ReadJson(dir / "upstream_request.json");
  EXPECT_EQ(up->method, "POST");
  EXPECT_EQ(up->url, want_up.at("url").as_string());
  for (const auto& kv : want_up.at("headers").as_object()) {
    bool found = false;
    for (const auto& [name, value] : up->headers) {
      if (Lower(name) == Lower(std::string(kv.key()))) {
        found = true;
        EXPECT_EQ(value, kv.value().as_string()) << "header " << kv.key();
      }
    }
    EXPECT_TRUE(found) << "missing header " << kv.key();
  }
  Result<json::value> got_body = ParseJson(up->body, "upstream body");
  ASSERT_TRUE(got_body.ok()) << got_body.status().ToString();
  EXPECT_EQ(JsonDiff(want_up.at("body"), *got_body, "upstream_request.body"), "");
  // What the provider could not take of the caller's request (case.json "dropped"; none when
  // absent).
  std::vector<std::string> want_dropped;
  if (const json::value* d = c.if_contains("dropped")) {
    for (const json::value& name : d->as_array()) want_dropped.emplace_back(name.as_string());
  }
  EXPECT_EQ(up->dropped, want_dropped);

  // An upstream error status -> the client's error.
  if (auto it = c.find("upstream_status"); it != c.end()) {
    int status = static_cast<int>(it->value().as_int64());
    std::string retry_after;
    if (auto r = c.find("retry_after"); r != c.end()) retry_after = r->value().as_string();
    GatewayError err =
        translator->DecodeError(status, ReadFile(dir / "upstream_error.json"), retry_after);
    if (auto s = c.find("client_status"); s != c.end()) {
      EXPECT_EQ(api::HttpStatus(err.error_class), s->value().as_int64());
    }
    if (auto r = c.find("client_retry_after"); r != c.end()) {
      ASSERT_TRUE(err.retry_after_s.has_value());
      EXPECT_DOUBLE_EQ(*err.retry_after_s, ToDouble(r->value()));
    }
    Result<json::value> got = ParseJson(api::OpenAIErrorBody(err), "client error");
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(JsonDiff(ReadJson(dir / "client_error.json"), *got, "client_error"), "");
    return;
  }

  if (!request->stream) {
    Result<ChatResponse> resp =
        translator->DecodeResponse(ReadFile(dir / "upstream_response.json"));
    ASSERT_TRUE(resp.ok()) << resp.status().ToString();
    Result<json::value> got =
        ParseJson(api::EncodeOpenAIChatResponse(*resp, iris, cost), "client response");
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(JsonDiff(ReadJson(dir / "client_response.json"), *got, "client_response"), "");
    return;
  }

  // Streams: feed the recorded bytes in small odd pieces, as a network would.
  std::vector<http::SseEvent> upstream = ParseSse(ReadFile(dir / "upstream_response.sse"), 7);
  std::unique_ptr<StreamTranslator> st = translator->NewStreamTranslator();
  api::OpenAIStreamEncoder encoder(request->include_usage);
  std::string out;
  std::optional<Status> failure;
  for (const http::SseEvent& e : upstream) {
    Result<std::vector<StreamEvent>> events = st->OnEvent(e);
    if (!events.ok()) {
      failure = events.status();
      break;
    }
    for (const StreamEvent& ev : *events) out += encoder.Encode(ev);
  }
  if (!failure) {
    Result<std::vector<StreamEvent>> tail = st->OnEnd();
    if (tail.ok()) {
      for (const StreamEvent& ev : *tail) out += encoder.Encode(ev);
      out += encoder.Finish(iris, cost);
    } else {
      failure = tail.status();
    }
  }
  if (failure) {
    GatewayError err = api::FromStatus(*failure);
    err.provider = provider_name;
    out += encoder.Error(err);
  }
  std::vector<http::SseEvent> want = ParseSse(ReadFile(dir / "client_response.sse"), 1 << 20);
  std::vector<http::SseEvent> got = ParseSse(out, 1 << 20);
  ASSERT_EQ(want.size(), got.size()) << "client stream:\n" << out;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].event, got[i].event) << "event " << i;
    if (want[i].data == "[DONE]" || got[i].data == "[DONE]") {
      EXPECT_EQ(want[i].data, got[i].data) << "event " << i;
      continue;
    }
    Result<json::value> w = ParseJson(want[i].data, "want event");
    Result<json::value> g = ParseJson(got[i].data, "got event");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(JsonDiff(*w, *g, "event[" + std::to_string(i) + "]"), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, OpenAICaseTest, testing::ValuesIn(OpenAICases()),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(OpenAICases, Present) { EXPECT_GE(OpenAICases().size(), 9u) << CasesDir(); }

}  // namespace
}  // namespace iris::gateway::providers
