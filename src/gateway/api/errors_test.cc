// The one error map: every class's status and the bodies of both dialects.
#include "gateway/api/errors.h"

#include <gtest/gtest.h>

#include "base/json.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

TEST(HttpStatus, EveryClass) {
  EXPECT_EQ(HttpStatus(ErrorClass::kInvalidRequest), 400);
  EXPECT_EQ(HttpStatus(ErrorClass::kAuthentication), 401);
  EXPECT_EQ(HttpStatus(ErrorClass::kPermission), 403);
  EXPECT_EQ(HttpStatus(ErrorClass::kNotFound), 404);
  EXPECT_EQ(HttpStatus(ErrorClass::kPayloadTooLarge), 413);
  EXPECT_EQ(HttpStatus(ErrorClass::kRateLimited), 429);
  EXPECT_EQ(HttpStatus(ErrorClass::kUpstream), 502);
  EXPECT_EQ(HttpStatus(ErrorClass::kUpstreamTimeout), 504);
  EXPECT_EQ(HttpStatus(ErrorClass::kOverloaded), 503);
  EXPECT_EQ(HttpStatus(ErrorClass::kInternal), 500);
}

TEST(HttpStatusFor, Anthropic529OnlyFromAnUpstream529) {
  GatewayError e;
  e.error_class = ErrorClass::kOverloaded;
  EXPECT_EQ(HttpStatusFor(e, Dialect::kAnthropic), 503);
  e.upstream_status = 529;
  EXPECT_EQ(HttpStatusFor(e, Dialect::kAnthropic), 529);
  EXPECT_EQ(HttpStatusFor(e, Dialect::kOpenAI), 503);
}

TEST(OpenAIErrorBody, FourKeysAndFault) {
  GatewayError e;
  e.error_class = ErrorClass::kRateLimited;
  e.message = "openai rate limit (429): slow down";
  e.provider = "openai";
  e.upstream_status = 429;
  e.code = "rate_limit_exceeded";
  Result<json::value> v = ParseJson(OpenAIErrorBody(e), "body");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, json::parse(R"({"error":{"message":"openai rate limit (429): slow down",
      "type":"rate_limit_error","param":null,"code":"rate_limit_exceeded",
      "iris_error_class":"rate_limited","provider":"openai","upstream_status":429}})"));
}

TEST(OpenAIErrorBody, PayloadTooLargeCode) {
  GatewayError e;
  e.error_class = ErrorClass::kPayloadTooLarge;
  e.message = "too big";
  e.param = "messages";
  json::value v = json::parse(OpenAIErrorBody(e));
  EXPECT_EQ(v.at("error").at("code"), "request_too_large");
  EXPECT_EQ(v.at("error").at("param"), "messages");
  EXPECT_EQ(v.at("error").at("type"), "invalid_request_error");
}

TEST(AnthropicErrorBody, Types) {
  GatewayError e;
  e.message = "m";
  const std::pair<ErrorClass, const char*> cases[] = {
      {ErrorClass::kInvalidRequest, "invalid_request_error"},
      {ErrorClass::kAuthentication, "authentication_error"},
      {ErrorClass::kPermission, "permission_error"},
      {ErrorClass::kNotFound, "not_found_error"},
      {ErrorClass::kPayloadTooLarge, "request_too_large"},
      {ErrorClass::kRateLimited, "rate_limit_error"},
      {ErrorClass::kUpstream, "api_error"},
      {ErrorClass::kUpstreamTimeout, "timeout_error"},
      {ErrorClass::kOverloaded, "overloaded_error"},
      {ErrorClass::kInternal, "api_error"}};
  for (const auto& [cls, type] : cases) {
    e.error_class = cls;
    json::value v = json::parse(AnthropicErrorBody(e));
    EXPECT_EQ(v.at("type"), "error");
    EXPECT_EQ(v.at("error").at("type"), type);
    EXPECT_EQ(v.at("error").at("message"), "m");
    EXPECT_EQ(v.at("error").at("iris_error_class").as_string(), ErrorClassName(cls));
  }
}

TEST(FromStatus, Codes) {
  EXPECT_EQ(FromStatus(InvalidArgument("x")).error_class, ErrorClass::kInvalidRequest);
  EXPECT_EQ(FromStatus(InvalidArgument("x")).message, "x");
  EXPECT_EQ(FromStatus(Unimplemented("x")).error_class, ErrorClass::kInvalidRequest);
  EXPECT_EQ(FromStatus(NotFound("x")).error_class, ErrorClass::kNotFound);
  EXPECT_EQ(FromStatus(DataLoss("x")).error_class, ErrorClass::kUpstream);
  EXPECT_EQ(FromStatus(Status(ErrorCode::kUnavailable, "x")).error_class, ErrorClass::kUpstream);
  EXPECT_EQ(FromStatus(Status(ErrorCode::kDeadlineExceeded, "x")).error_class,
            ErrorClass::kUpstreamTimeout);
  EXPECT_EQ(FromStatus(Status(ErrorCode::kPermissionDenied, "x")).error_class,
            ErrorClass::kPermission);
  EXPECT_EQ(FromStatus(ResourceExhausted("x")).error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(FromStatus(Internal("x")).error_class, ErrorClass::kInternal);
}

}  // namespace
}  // namespace iris::gateway::api

namespace iris::gateway::api {
namespace {

TEST(RedactTest, KeyShapesAndBearerTokensAreRedacted) {
  const std::string text =
      "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Header was Bearer "
      "abc123def456ghi789; google said AIzaSyA1234567890abcdefghijklmnop and url ?key=secretvalue";
  const std::string out = RedactSecrets(text);
  EXPECT_EQ(out.find("sk-proj-abcdefghijklmnop1234"), std::string::npos) << out;
  EXPECT_EQ(out.find("abc123def456ghi789"), std::string::npos) << out;
  EXPECT_EQ(out.find("AIzaSyA1234567890"), std::string::npos) << out;
  EXPECT_EQ(out.find("secretvalue"), std::string::npos) << out;
  EXPECT_NE(out.find("Incorrect API key provided"), std::string::npos);
  EXPECT_EQ(RedactSecrets("model gpt-4o-mini not found"), "model gpt-4o-mini not found");
}

// A key shape counts at the start of a word only: every failure's message is redacted, and a
// caller's own model or route names must come back as written.
TEST(RedactTest, AKeyShapeInsideAWordIsNoKey) {
  for (const std::string name :
       {"local/my-task-summarizer-v2", "desk-assistant-lookup-model", "a_task_classifier_v2",
        "monkey=bananas-and-more", "xAIzaSyA1234567890abcdefghijklmnop"}) {
    EXPECT_EQ(RedactSecrets("model " + name + " not found"), "model " + name + " not found");
  }
  EXPECT_EQ(RedactSecrets("(sk-proj-abcdefghijklmnop1234)"), "([redacted])");
  EXPECT_EQ(RedactSecrets("key:\"sk-ant-abcdefghijklmnop\""), "key:\"[redacted]\"");
  EXPECT_EQ(RedactSecrets("/v1?api_key=abcdefgh&x=1"), "/v1?api_key=[redacted]&x=1");
}

TEST(RedactTest, HidePeerRemovesHostsAndPorts) {
  EXPECT_EQ(HidePeer("connect to 10.1.2.3:8443 failed: Connection refused", "10.1.2.3", "vllm"),
            "connect to vllm failed: Connection refused");
  EXPECT_EQ(HidePeer("no response headers from api.openai.com:443 within 100 ms", "api.openai.com",
                     "openai"),
            "no response headers from openai within 100 ms");
  EXPECT_EQ(HidePeer("connect to [::1]:9000 failed", "::1", "local-llm"),
            "connect to local-llm failed");
}

}  // namespace
}  // namespace iris::gateway::api
