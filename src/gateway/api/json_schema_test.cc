// Schema checks on answers, and the schema Anthropic's structured outputs take.
#include "gateway/api/json_schema.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "base/json.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

std::optional<std::string> Violation(std::string_view instance, std::string_view schema) {
  return SchemaViolation(json::parse(instance), json::parse(schema));
}

TEST(SchemaViolation, KeptAnswersPass) {
  const char* schema = R"({"type":"object","required":["city","days"],
    "properties":{"city":{"type":"string","maxLength":8},
                  "days":{"type":"array","minItems":1,"maxItems":3,"uniqueItems":true,
                          "items":{"type":"integer","minimum":1,"maximum":7}},
                  "unit":{"enum":["C","F"]}},
    "additionalProperties":false})";
  EXPECT_EQ(Violation(R"({"city":"Paris","days":[1,2],"unit":"C"})", schema), std::nullopt);
  EXPECT_EQ(Violation(R"({"city":"Zürich","days":[7]})", schema), std::nullopt)
      << "lengths count code points";
}

TEST(SchemaViolation, EachBrokenLimitIsNamedWithItsPath) {
  const char* schema = R"({"type":"object","required":["city"],
    "properties":{"city":{"type":"string","maxLength":5,"minLength":2},
                  "n":{"type":"number","exclusiveMinimum":0,"multipleOf":0.5},
                  "tags":{"type":"array","maxItems":2,"uniqueItems":true,
                          "items":{"type":"string"}}},
    "additionalProperties":false})";
  const std::pair<const char*, const char*> cases[] = {
      {R"({"n":1})", "$: the property \"city\" is missing"},
      {R"({"city":"Amsterdam"})", "$.city: the string is longer than 5 characters"},
      {R"({"city":"A"})", "$.city: the string is shorter than 2 characters"},
      {R"({"city":"Rome","n":0})", "$.n: 0 is not above 0"},
      {R"({"city":"Rome","n":0.7})", "$.n: 0.7 is not a multiple of 0.5"},
      {R"({"city":"Rome","tags":["a","b","c"]})", "$.tags: more than 2 items"},
      {R"({"city":"Rome","tags":["a","a"]})", "$.tags: items 0 and 1 are equal"},
      {R"({"city":"Rome","tags":[1]})", "$.tags[0]: 1 is not of type \"string\""},
      {R"({"city":"Rome","extra":1})", "$.extra: no value is allowed here"},
      {R"([])", "$: [] is not of type \"object\""},
  };
  for (const auto& [instance, want] : cases) {
    EXPECT_EQ(Violation(instance, schema), std::optional<std::string>(want)) << instance;
  }
}

TEST(SchemaViolation, CombinatorsAndLocalRefs) {
  const char* schema = R"({"$defs":{"pos":{"type":"integer","minimum":1}},
    "type":"object","properties":{
      "a":{"$ref":"#/$defs/pos"},
      "b":{"anyOf":[{"type":"string"},{"type":"integer","maximum":3}]},
      "c":{"oneOf":[{"type":"integer"},{"type":"number"}]},
      "d":{"not":{"const":"x"}}}})";
  EXPECT_EQ(Violation(R"({"a":2,"b":"s","c":1.5,"d":"y"})", schema), std::nullopt);
  EXPECT_EQ(Violation(R"({"a":0})", schema), "$.a: 0 is below the minimum 1");
  EXPECT_EQ(Violation(R"({"b":9})", schema), "$.b: 9 is not of type \"string\"");
  EXPECT_EQ(Violation(R"({"c":2})", schema), "$.c: matches more than one of oneOf");
  EXPECT_EQ(Violation(R"({"d":"x"})", schema), "$.d: matches a schema it must not");
}

TEST(SchemaViolation, AHostileSchemaIsBounded) {
  // A $ref that names itself, and nesting past the depth bound, end the check instead of
  // looping or overflowing the stack.
  EXPECT_EQ(Violation("1", R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})"),
            std::nullopt);
  json::value nested = json::object{{"type", "string"}};
  json::value instance = 1;  // (not a string: a violation, 200 levels down)
  for (int i = 0; i < 200; ++i) {
    nested = json::object{{"items", std::move(nested)}};
    instance = json::array{std::move(instance)};
  }
  // The innermost "string" lies past the bound: the check stops before it.
  EXPECT_EQ(SchemaViolation(instance, nested), std::nullopt);
  // Work past the bound gives no verdict: a long valid answer under oneOf / not is not "broken".
  json::array many;
  for (int i = 0; i < 60000; ++i) many.push_back(i);
  EXPECT_EQ(SchemaViolation(json::value(many), json::parse(R"({"type":"array","items":{
              "oneOf":[{"type":"integer"},{"type":"string"}],"not":{"type":"string"}}})")),
            std::nullopt);
}

TEST(AnthropicSchema, LimitsMoveIntoDescriptionsAndObjectsClose) {
  bool moved = false;
  const json::value out = AnthropicSchema(json::parse(R"({"type":"object",
    "properties":{"n":{"type":"integer","minimum":1,"maximum":10,"description":"count"},
                  "tags":{"type":"array","items":{"type":"string","maxLength":20},
                          "minItems":1,"maxItems":3},
                  "inner":{"type":"object","properties":{"x":{"type":"string"}},
                           "additionalProperties":true}}})"),
                                          &moved);
  EXPECT_TRUE(moved);
  EXPECT_EQ(SerializeJson(out),
            R"j({"type":"object","properties":{"n":{"type":"integer","description":)j"
            R"j("count (minimum: 1, maximum: 10)"},"tags":{"type":"array","items":{"type":)j"
            R"j("string","description":"(maxLength: 20)"},"minItems":1,"description":)j"
            R"j("(maxItems: 3)"},"inner":{"type":"object","properties":{"x":{"type":"string"}},)j"
            R"j("additionalProperties":false,"description":"(additionalProperties: true)"}},)j"
            R"j("additionalProperties":false})j");
  EXPECT_EQ(SerializeJson(AnthropicSchema(json::parse(R"({"type":"string"})"), &moved)),
            R"({"type":"string"})");
  EXPECT_FALSE(moved);
}

}  // namespace
}  // namespace iris::gateway::api
