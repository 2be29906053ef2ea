// Tests of the gateway's JSON field readers: path syntax, the one type-error wording, null as
// absent in the strict readers, integer bounds, and the lenient readers' empty defaults.
#include "gateway/api/json_fields.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "gateway/api/openai.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

json::value Parse(std::string_view text) { return json::parse(text); }

template <typename T>
std::string ErrorOf(const Result<T>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

TEST(JsonFieldPath, DotsForMembersBracketsForElements) {
  EXPECT_EQ(MemberPath("", "model"), "model");
  EXPECT_EQ(MemberPath("tool_choice", "name"), "tool_choice.name");
  EXPECT_EQ(ElementPath("messages", 0), "messages[0]");
  std::string path =
      MemberPath(ElementPath(MemberPath(ElementPath("messages", 0), "content"), 12), "image_url");
  EXPECT_EQ(MemberPath(path, "url"), "messages[0].content[12].image_url.url");
}

TEST(JsonFieldErrors, OneWording) {
  EXPECT_EQ(FieldError("n", "only n=1 is supported").message(), "n: only n=1 is supported");
  EXPECT_EQ(MissingField("messages[0].role").message(), "messages[0].role: required");
  EXPECT_EQ(TypeError("stop", "a string", json::value(3)).message(),
            "stop: expected a string, got a number");
  EXPECT_EQ(Quote("file"), "\"file\"");
  EXPECT_EQ(KindName(json::value(nullptr)), "null");
  EXPECT_EQ(KindName(json::value(true)), "a boolean");
  EXPECT_EQ(KindName(json::value(1.5)), "a number");
  EXPECT_EQ(KindName(json::value(uint64_t{1} << 63)), "a number");
  EXPECT_EQ(KindName(json::value("x")), "a string");
  EXPECT_EQ(KindName(json::array()), "an array");
  EXPECT_EQ(KindName(json::object()), "an object");
}

TEST(JsonFieldStrict, TypeErrorsNameThePathAndBothKinds) {
  EXPECT_EQ(ErrorOf(AsString(json::value(1), "a.b")), "a.b: expected a string, got a number");
  EXPECT_EQ(ErrorOf(AsBool(json::value("yes"), "stream")),
            "stream: expected a boolean, got a string");
  EXPECT_EQ(ErrorOf(AsNumber(json::value(true), "top_p")),
            "top_p: expected a number, got a boolean");
  EXPECT_EQ(ErrorOf(AsObject(json::array(), "metadata")),
            "metadata: expected an object, got an array");
  EXPECT_EQ(ErrorOf(AsArray(json::object(), "tools")), "tools: expected an array, got an object");
  EXPECT_EQ(ErrorOf(AsString(json::value(nullptr), "x")), "x: expected a string, got null");
  EXPECT_EQ(*AsString(json::value("hi"), "x"), "hi");
  EXPECT_TRUE(*AsBool(json::value(true), "x"));
  EXPECT_EQ(*AsNumber(json::value(2), "x"), 2.0);
  EXPECT_EQ(*AsNumber(json::value(0.5), "x"), 0.5);
}

TEST(JsonFieldStrict, StringListNamesTheElement) {
  EXPECT_EQ(ErrorOf(AsStringList(Parse(R"(["a",2])"), "stop")),
            "stop[1]: expected a string, got a number");
  EXPECT_EQ(ErrorOf(AsStringList(json::value("a"), "models")),
            "models: expected an array, got a string");
  Result<std::vector<std::string>> list = AsStringList(Parse(R"(["a","b"])"), "stop");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::string>{"a", "b"}));
}

TEST(JsonFieldStrict, NullIsAbsent) {
  json::object o = Parse(R"({"a":null,"b":0,"c":"x"})").get_object();
  EXPECT_EQ(FindField(o, "a"), nullptr);
  EXPECT_EQ(FindField(o, "missing"), nullptr);
  ASSERT_NE(FindField(o, "b"), nullptr);
  EXPECT_EQ(ErrorOf(RequireField(o, "a", "tools[0]")), "tools[0].a: required");
  EXPECT_EQ(ErrorOf(RequiredString(o, "missing", "")), "missing: required");
  EXPECT_EQ(ErrorOf(RequiredString(o, "b", "m")), "m.b: expected a string, got a number");
  EXPECT_EQ(*RequiredString(o, "c", "m"), "x");
  EXPECT_EQ(ErrorOf(RequiredObject(o, "c", "m")), "m.c: expected an object, got a string");
}

TEST(JsonFieldStrict, IntegerBounds) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(*AsInt(Parse("9223372036854775807"), "n"), kMax);
  EXPECT_EQ(*AsInt(Parse("-9223372036854775808"), "n"), kMin);
  EXPECT_EQ(ErrorOf(AsInt(Parse("9223372036854775808"), "n")), "n: integer out of range");
  // Beyond int64 the parser hands over a double.
  EXPECT_EQ(ErrorOf(AsInt(Parse("-9223372036854775809"), "n")), "n: integer out of range");
  EXPECT_EQ(ErrorOf(AsInt(Parse("1e300"), "n")), "n: integer out of range");
  // Integral doubles are taken while they are exact.
  EXPECT_EQ(*AsInt(Parse("5.0"), "n"), 5);
  EXPECT_EQ(*AsInt(Parse("-8.9e15"), "n"), -8900000000000000);
  EXPECT_EQ(ErrorOf(AsInt(Parse("9e15"), "n")), "n: integer out of range");
  EXPECT_EQ(ErrorOf(AsInt(Parse("1.5"), "seed")), "seed: expected an integer, got a number");
  EXPECT_EQ(ErrorOf(AsInt(Parse(R"("5")"), "seed")), "seed: expected an integer, got a string");
}

TEST(JsonFieldStrict, NumberInRange) {
  EXPECT_EQ(*AsNumberInRange(json::value(0), "t", 0, 2), 0.0);
  EXPECT_EQ(*AsNumberInRange(json::value(2), "t", 0, 2), 2.0);
  EXPECT_EQ(ErrorOf(AsNumberInRange(json::value(2.5), "t", 0, 2)), "t: must be between 0 and 2");
  EXPECT_EQ(ErrorOf(AsNumberInRange(json::value(-3), "p", -2, 2)), "p: must be between -2 and 2");
  EXPECT_EQ(ErrorOf(AsNumberInRange(json::value(0.5), "t", 0, 0.25)),
            "t: must be between 0 and 0.25");
  EXPECT_EQ(ErrorOf(AsNumberInRange(json::value("1"), "t", 0, 2)),
            "t: expected a number, got a string");
}

TEST(JsonFieldStrict, ObjectText) {
  Result<json::object> o = ParseObjectText(R"({"city":"Paris"})", "args");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->at("city"), "Paris");
  EXPECT_EQ(ErrorOf(ParseObjectText("[1]", "messages[0].tool_calls[1].arguments")),
            "messages[0].tool_calls[1].arguments: expected a JSON object, got an array");
  EXPECT_EQ(ErrorOf(ParseObjectText("{", "args")),
            "args: expected a JSON object, got invalid JSON");
  EXPECT_EQ(ErrorOf(ParseObjectText("", "args")), "args: expected a JSON object, got invalid JSON");
}

TEST(JsonFieldLenient, AbsentNullOrMistypedReadsAsEmpty) {
  json::object o = Parse(R"({"s":"x","n":7,"u":18446744073709551615,"d":2.9,"o":{},"a":[1],
                             "z":null,"t":true,"f":false,"sn":"7"})")
                       .get_object();
  EXPECT_EQ(StringField(o, "s"), "x");
  EXPECT_EQ(StringField(o, "n"), "");
  EXPECT_EQ(StringField(o, "z"), "");
  EXPECT_EQ(StringField(o, "missing", "fallback"), "fallback");
  EXPECT_EQ(StringField(o, "s", "fallback"), "x");

  EXPECT_EQ(StringOrIntegerField(o, "s"), "x");
  EXPECT_EQ(StringOrIntegerField(o, "n"), "7");
  EXPECT_EQ(StringOrIntegerField(o, "u"), "18446744073709551615");
  EXPECT_EQ(StringOrIntegerField(o, "d", "none"), "none");
  EXPECT_EQ(StringOrIntegerField(o, "z", "none"), "none");

  EXPECT_NE(ObjectField(o, "o"), nullptr);
  EXPECT_EQ(ObjectField(o, "a"), nullptr);
  EXPECT_EQ(ObjectField(o, "z"), nullptr);
  ASSERT_NE(ArrayField(o, "a"), nullptr);
  EXPECT_EQ(ArrayField(o, "a")->size(), 1u);
  EXPECT_EQ(ArrayField(o, "o"), nullptr);

  EXPECT_TRUE(BoolField(o, "t"));
  EXPECT_FALSE(BoolField(o, "f"));
  EXPECT_FALSE(BoolField(o, "s"));
  EXPECT_FALSE(BoolField(o, "missing"));

  EXPECT_EQ(IntField(o, "n"), 7);
  EXPECT_EQ(IntField(o, "d"), 2);  // truncated
  EXPECT_EQ(IntField(o, "sn"), 0);
  EXPECT_EQ(IntField(o, "z"), 0);
  EXPECT_EQ(IntField(o, "missing"), 0);
}

TEST(JsonFieldLenient, IntegersSaturateAtInt64Bounds) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  json::object o = Parse(R"({"u":18446744073709551615,"big":1e300,"small":-1e300,
                             "max":9223372036854775807,"min":-9223372036854775808,
                             "neg":-2.7})")
                       .get_object();
  EXPECT_EQ(IntField(o, "u"), kMax);
  EXPECT_EQ(IntField(o, "big"), kMax);
  EXPECT_EQ(IntField(o, "small"), kMin);
  EXPECT_EQ(IntField(o, "max"), kMax);
  EXPECT_EQ(IntField(o, "min"), kMin);
  EXPECT_EQ(IntField(o, "neg"), -2);
}

// A provider's counts are added and priced: whatever it writes, each is from 0 to 2^32.
TEST(JsonFieldNumbers, TokenCountsAreBoundedSoTheirSumsCannotOverflow) {
  const json::object o = json::parse(R"({"huge":9223372036854775807,"big":18446744073709551615,)"
                                     R"("far":1e300,"neg":-5,"ok":4096,"text":"7"})")
                             .as_object();
  EXPECT_EQ(TokenCountField(o, "huge"), kMaxTokenCount);
  EXPECT_EQ(TokenCountField(o, "big"), kMaxTokenCount);
  EXPECT_EQ(TokenCountField(o, "far"), kMaxTokenCount);
  EXPECT_EQ(TokenCountField(o, "neg"), 0);
  EXPECT_EQ(TokenCountField(o, "ok"), 4096);
  EXPECT_EQ(TokenCountField(o, "text"), 0);
  EXPECT_EQ(TokenCountField(o, "absent"), 0);
  // OpenAI's usage object, as every OpenAI-shaped server's answer is read.
  const Usage u = DecodeOpenAIUsage(
      json::parse(R"({"prompt_tokens":9223372036854775807,"completion_tokens":88,)"
                  R"("prompt_tokens_details":{"cached_tokens":-1}})")
          .as_object());
  EXPECT_EQ(u.input_tokens, kMaxTokenCount);
  EXPECT_EQ(u.output_tokens, 88);
  EXPECT_EQ(u.cached_input_tokens, 0);
}

}  // namespace
}  // namespace iris::gateway::api
