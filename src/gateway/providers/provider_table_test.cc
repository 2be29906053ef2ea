#include "gateway/providers/provider_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <string>

#include "base/utf8.h"
#include "gateway/providers/gemini/gemini_translator.h"

namespace iris::gateway::providers {
namespace {

TEST(ProviderTableTest, KindsAreInEnumOrderAndNamedOnce) {
  std::set<std::string_view> names;
  size_t i = 0;
  for (const ProviderFacts& f : AllProviderKinds()) {
    EXPECT_EQ(static_cast<size_t>(f.kind), i++);
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_EQ(ParseProviderKind(f.name), f.kind);
    EXPECT_EQ(ProviderKindName(f.kind), f.name);
    // Every cloud kind has a translator; the local engine has none.
    EXPECT_EQ(f.make_translator == nullptr, f.kind == ProviderKind::kLocal) << f.name;
  }
  EXPECT_EQ(ParseProviderKind("openai_compatible"), ProviderKind::kOpenAICompatible);
  EXPECT_EQ(ParseProviderKind("OpenAI"), std::nullopt);
  EXPECT_EQ(ParseProviderKind(""), std::nullopt);
}

TEST(ProviderTableTest, SegmentsAndModelIds) {
  EXPECT_EQ(KindForSegment("google"), ProviderKind::kGemini);
  EXPECT_EQ(KindForSegment("mistralai"), ProviderKind::kMistral);
  EXPECT_EQ(KindForSegment("anthropic"), ProviderKind::kAnthropic);
  EXPECT_EQ(KindForSegment("openai-compatible"), std::nullopt);
  EXPECT_EQ(KindForSegment("openai_compatible"), std::nullopt);
  EXPECT_EQ(KindForModelId("GPT-4o"), ProviderKind::kOpenAI);
  EXPECT_EQ(KindForModelId("o4-mini"), ProviderKind::kOpenAI);
  EXPECT_EQ(KindForModelId("o4"), ProviderKind::kOpenAI);
  EXPECT_EQ(KindForModelId("o40"), std::nullopt);
  EXPECT_EQ(KindForModelId("HuggingFaceTB/SmolVLM2-256M-Video-Instruct"), ProviderKind::kLocal);
  EXPECT_EQ(KindForModelId("devstral-small"), ProviderKind::kMistral);
  EXPECT_EQ(KindForModelId("gpt-4.1-mini"), ProviderKind::kOpenAI);
  EXPECT_EQ(KindForModelId("o3"), ProviderKind::kOpenAI);
  EXPECT_EQ(KindForModelId("gemini-2.5-pro"), ProviderKind::kGemini);
  EXPECT_EQ(KindForModelId("claude-3-5-haiku-latest"), ProviderKind::kAnthropic);
  EXPECT_EQ(KindForModelId("smolvlm2"), ProviderKind::kLocal);
  EXPECT_EQ(KindForModelId("o10"), std::nullopt);
  EXPECT_EQ(KindForModelId("omni-moderation"), std::nullopt);
  EXPECT_EQ(KindForModelId("llama-3"), std::nullopt);
  EXPECT_EQ(KindForModelId(""), std::nullopt);
}

TEST(ProviderTableTest, KeyVariablesAndBaseUrls) {
  EXPECT_EQ(FactsOf(ProviderKind::kGemini).key_env.size(), 2u);
  EXPECT_EQ(FactsOf(ProviderKind::kGemini).key_env[0], "GEMINI_API_KEY");
  EXPECT_TRUE(FactsOf(ProviderKind::kOpenAICompatible).default_base_url.empty());
  EXPECT_TRUE(FactsOf(ProviderKind::kLocal).key_env.empty());
  EXPECT_EQ(FactsOf(ProviderKind::kMistral).default_base_url, "https://api.mistral.ai/v1");
}

// The class every status maps to, whoever sent it (no body signal).
ErrorClass Expected(int status) {
  switch (status) {
    case 401:
    case 402:
    case 403:
    case 409:
    case 425:
      return ErrorClass::kUpstream;
    case 404:
    case 410:
      return ErrorClass::kNotFound;
    case 408:
    case 504:
      return ErrorClass::kUpstreamTimeout;
    case 413:
      return ErrorClass::kPayloadTooLarge;
    case 429:
      return ErrorClass::kRateLimited;
    case 503:
    case 529:
      return ErrorClass::kOverloaded;
  }
  return status >= 400 && status < 500 ? ErrorClass::kInvalidRequest : ErrorClass::kUpstream;
}

// Every status from 100 to 599, for every cloud provider, through its real translator with a
// body that carries no code: the same class everywhere (an upstream 409 once meant a caller
// error from Anthropic and an upstream error from OpenAI).
TEST(ProviderTableTest, EveryStatusOfEveryProviderClassifiesAlike) {
  for (const ProviderFacts& f : AllProviderKinds()) {
    if (f.make_translator == nullptr) continue;
    const std::unique_ptr<Translator> t = f.make_translator("p");
    for (int status = 100; status <= 599; ++status) {
      if (status >= 200 && status <= 299) continue;
      for (std::string_view body : {std::string_view(""), std::string_view("not json"),
                                    std::string_view(R"({"error":{"message":"m"}})")}) {
        const GatewayError e = t->DecodeError(status, body, "");
        EXPECT_EQ(e.error_class, Expected(status))
            << f.name << " status " << status << " body " << body;
        EXPECT_EQ(e.upstream_status, status);
        EXPECT_EQ(e.provider, "p");
        EXPECT_EQ(e.message.rfind("p ", 0), 0u) << e.message;
        std::string shown = "(";
        shown += std::to_string(status);
        shown += ')';
        EXPECT_NE(e.message.find(shown), std::string::npos) << e.message;
      }
    }
  }
}

TEST(ProviderTableTest, BodySignalsWinOverTheStatus) {
  auto decode = [](ProviderKind kind, int status, std::string_view body) {
    return FactsOf(kind)
        .make_translator(std::string(ProviderKindName(kind)))
        ->DecodeError(status, body, "");
  };
  EXPECT_EQ(decode(ProviderKind::kAnthropic, 400,
                   R"({"type":"error","error":{"type":"overloaded_error","message":"x"}})")
                .error_class,
            ErrorClass::kOverloaded);
  EXPECT_EQ(decode(ProviderKind::kAnthropic, 500,
                   R"({"type":"error","error":{"type":"timeout_error","message":"x"}})")
                .error_class,
            ErrorClass::kUpstreamTimeout);
  EXPECT_EQ(decode(ProviderKind::kOpenAI, 429,
                   R"({"error":{"code":"insufficient_quota","message":"pay up"}})")
                .error_class,
            ErrorClass::kUpstream);
  EXPECT_EQ(decode(ProviderKind::kGemini, 400,
                   R"({"error":{"status":"FAILED_PRECONDITION","message":"billing"}})")
                .error_class,
            ErrorClass::kUpstream);
  const GatewayError key = decode(ProviderKind::kGemini, 400,
                                  R"({"error":{"status":"INVALID_ARGUMENT","message":"bad key",
                                      "details":[{"reason":"API_KEY_INVALID"}]}})");
  EXPECT_EQ(key.error_class, ErrorClass::kUpstream);
  EXPECT_EQ(key.code, "upstream_authentication");
  EXPECT_EQ(decode(ProviderKind::kGemini, 400,
                   R"({"error":{"status":"RESOURCE_EXHAUSTED","message":"x"}})")
                .error_class,
            ErrorClass::kRateLimited);
  // A code another provider uses means nothing here.
  EXPECT_EQ(
      decode(ProviderKind::kMistral, 400, R"({"error":{"code":"overloaded_error"}})").error_class,
      ErrorClass::kInvalidRequest);
}

TEST(ProviderTableTest, RetryAfterFromTheHeaderOrTheBody) {
  const GatewayError e = MakeUpstreamError("p", 429, {}, " 3 ", 7.0);
  EXPECT_EQ(e.retry_after_s, 3.0);
  EXPECT_EQ(MakeUpstreamError("p", 429, {}, "", 7.0).retry_after_s, 7.0);
  EXPECT_EQ(MakeUpstreamError("p", 429, {}, "Wed, 21 Oct 2015 07:28:00 GMT").retry_after_s,
            std::nullopt);
  // Waits iris could not write back as whole seconds: none, or a day at most.
  EXPECT_EQ(
      MakeUpstreamError("p", 429, {}, "", std::numeric_limits<double>::infinity()).retry_after_s,
      std::nullopt);
  EXPECT_EQ(MakeUpstreamError("p", 429, {}, "", std::nan("")).retry_after_s, std::nullopt);
  EXPECT_EQ(MakeUpstreamError("p", 429, {}, "", -2.0).retry_after_s, std::nullopt);
  EXPECT_EQ(MakeUpstreamError("p", 429, {}, "1e300").retry_after_s, kMaxUpstreamRetryAfterS);
  EXPECT_EQ(MakeUpstreamError("p", 429, {}, "", 1e300).retry_after_s, kMaxUpstreamRetryAfterS);
  // Gemini's RetryInfo "retryDelay" of "infs" (a duration string) goes the same way.
  const std::unique_ptr<Translator> gemini = MakeGeminiTranslator("p");
  const GatewayError inf = gemini->DecodeError(
      429,
      R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"m","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"infs"}]}})",
      "");
  EXPECT_EQ(inf.retry_after_s, std::nullopt);
}

// Every translator's plain-text error falls back to the body's first 300 bytes, in whatever
// encoding the server wrote: what iris quotes of it is UTF-8, for JSON and the request log.
TEST(ProviderTableTest, AnUpstreamsTextInAnyEncodingIsQuotedAsUtf8) {
  for (const ProviderFacts& f : AllProviderKinds()) {
    if (f.make_translator == nullptr) continue;
    const std::unique_ptr<Translator> t = f.make_translator("p");
    // A Latin-1 page; then a UTF-8 one whose 300th byte is the middle of a character.
    const GatewayError latin1 = t->DecodeError(503, "Dienst nicht verf\xFCgbar", "");
    EXPECT_TRUE(IsValidUtf8(latin1.message)) << latin1.message;
    EXPECT_EQ(latin1.message, "p is overloaded (503): Dienst nicht verf\xEF\xBF\xBDgbar");
    const GatewayError cut = t->DecodeError(500, std::string(299, 'a') + "\xE2\x82\xAC", "");
    EXPECT_TRUE(IsValidUtf8(cut.message)) << cut.message;
    EXPECT_EQ(cut.message, "p failed (500): " + std::string(299, 'a') + "...");
  }
}

// What a provider writes in an error is repeated to callers and kept in the request log:
// whatever shape it has, every translator quotes something a person can read, and never more
// than the bounds.
TEST(ProviderTableTest, EveryTranslatorQuotesAnErrorItCannotReadAndBoundsWhatItQuotes) {
  const std::string head =
      "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
      "</center><hr><center>nginx</center>";
  const std::string html = head + "\r\n\t   " + std::string(400, 'x') + "\n  </body></html>";
  const std::string long_message(5000, 'm');
  const std::string long_code(5000, 'c');
  for (const ProviderFacts& f : AllProviderKinds()) {
    if (f.make_translator == nullptr) continue;
    SCOPED_TRACE(std::string(ProviderKindName(f.kind)));
    const std::unique_ptr<Translator> t = f.make_translator("p");
    // A proxy's page in front of the provider: its text, trimmed, each run of white space one
    // space, cut at 300 bytes.
    EXPECT_EQ(t->DecodeError(502, "\r\n  " + html + "\r\n", "").message,
              "p failed (502): " + (head + " " + std::string(400, 'x')).substr(0, 300) + "...");
    EXPECT_EQ(t->DecodeError(502, "Bad Gateway\n", "").message, "p failed (502): Bad Gateway");
    // JSON of another shape than the provider's errors: quoted as it came.
    EXPECT_EQ(t->DecodeError(500, R"({"fault":"db down"})", "").message,
              R"(p failed (500): {"fault":"db down"})");
    // Nothing at all, or only white space.
    EXPECT_EQ(t->DecodeError(500, "", "").message, "p failed (500): (empty body)");
    EXPECT_EQ(t->DecodeError(500, " \r\n", "").message, "p failed (500): (empty body)");
    // A message, a code and a parameter of 5,000 bytes each, in the provider's own shape.
    std::string body;
    if (f.kind == ProviderKind::kAnthropic) {
      body = R"({"type":"error","error":{"type":")" + long_code + R"(","message":")" +
             long_message + R"("}})";
    } else if (f.kind == ProviderKind::kGemini) {
      body = R"({"error":{"code":400,"status":")" + long_code + R"(","message":")" + long_message +
             R"("}})";
    } else {
      body = R"({"error":{"message":")" + long_message + R"(","type":"t","code":")" + long_code +
             R"(","param":")" + long_code + R"("}})";
    }
    const GatewayError big = t->DecodeError(400, body, "");
    EXPECT_EQ(big.message, "p rejected the request (400): " +
                               long_message.substr(0, kMaxUpstreamMessageBytes) + "...");
    EXPECT_EQ(big.code, long_code.substr(0, kMaxUpstreamCodeBytes) + "...");
    EXPECT_LE(big.param.size(), kMaxUpstreamCodeBytes + 3);
    // A key where a cut falls: redacted before the cut, so no part of it is left. (Cut first,
    // "sk-proj-KKK..." would be left, too short a token for a key shape.)
    const std::string key = "sk-proj-" + std::string(40, 'K');
    const std::string near_cut = std::string(kMaxUpstreamMessageBytes - 12, 'a') + " " + key;
    std::string keyed;
    if (f.kind == ProviderKind::kAnthropic) {
      keyed =
          R"({"type":"error","error":{"type":")" + key + R"(","message":")" + near_cut + R"("}})";
    } else if (f.kind == ProviderKind::kGemini) {
      keyed = R"({"error":{"code":400,"status":")" + key + R"(","message":")" + near_cut + R"("}})";
    } else {
      keyed = R"({"error":{"message":")" + near_cut + R"(","code":")" + key + R"("}})";
    }
    const GatewayError k = t->DecodeError(400, keyed, "");
    EXPECT_EQ(k.message.find("KKK"), std::string::npos) << k.message.substr(950);
    EXPECT_EQ(k.code, "[redacted]");
    // (A body of 334 bytes, quoted whole: 296 once its key is redacted.)
    const GatewayError quoted = t->DecodeError(502, std::string(285, 'a') + " " + key, "");
    EXPECT_EQ(quoted.message, "p failed (502): " + std::string(285, 'a') + " [redacted]");
  }
}

}  // namespace
}  // namespace iris::gateway::providers
