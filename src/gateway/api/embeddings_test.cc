// The embeddings API: the input shapes it takes, the field named in each error, and vectors
// out as floats or as base64 of float32 LE.
#include "gateway/api/embeddings.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstring>

#include "base/base64.h"
#include "base/json.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

void ExpectEmbeddingsError(std::string_view body, std::string_view prefix) {
  Result<EmbeddingRequest> r = ParseEmbeddingRequest(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(prefix, 0), 0u) << r.status().message();
}

TEST(ParseEmbeddingRequest, EveryInputShape) {
  auto one = ParseEmbeddingRequest(R"({"model": "m", "input": "hi", "dimensions": 3,
                                       "encoding_format": "base64", "user": "u"})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->texts, std::vector<std::string>{"hi"});
  EXPECT_TRUE(one->base64);
  EXPECT_EQ(one->dimensions, 3);
  auto many = ParseEmbeddingRequest(R"({"model": "m", "input": ["a", "b"]})");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->size(), 2u);
  EXPECT_FALSE(many->base64);
  auto tokens = ParseEmbeddingRequest(R"({"model": "m", "input": [1, 2, 3]})");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->token_inputs.size(), 1u);
  EXPECT_EQ(tokens->token_inputs[0], (std::vector<int64_t>{1, 2, 3}));
  auto token_lists = ParseEmbeddingRequest(R"({"model": "m", "input": [[1], [2, 3]]})");
  ASSERT_TRUE(token_lists.ok());
  EXPECT_EQ(token_lists->size(), 2u);
}

TEST(ParseEmbeddingRequest, ErrorsNameTheField) {
  ExpectEmbeddingsError(R"({"input": "x"})", "model: required");
  ExpectEmbeddingsError(R"({"model": "m"})", "input: required");
  ExpectEmbeddingsError(R"({"model": "m", "input": ""})", "input: must not be empty");
  ExpectEmbeddingsError(R"({"model": "m", "input": []})", "input: must contain at least one input");
  ExpectEmbeddingsError(R"({"model": "m", "input": ["a", 2]})", "input[1]: expected a string");
  ExpectEmbeddingsError(R"({"model": "m", "input": [[1], [-2]]})",
                        "input[1][0]: a token id is not negative");
  ExpectEmbeddingsError(R"({"model": "m", "input": [[1], []]})", "input[1]: must not be empty");
  ExpectEmbeddingsError(R"({"model": "m", "input": "x", "dimensions": 0})",
                        "dimensions: must be between");
  ExpectEmbeddingsError(R"({"model": "m", "input": "x", "encoding_format": "int8"})",
                        "encoding_format:");
  std::string big = R"({"model": "m", "input": [)";
  for (int i = 0; i < 2049; ++i) big += i ? ",\"x\"" : "\"x\"";
  ExpectEmbeddingsError(big + "]}", "input: at most 2048 inputs");
}

TEST(EncodeEmbeddingResponse, FloatsOrBase64OfFloat32LittleEndian) {
  EmbeddingResponse r;
  r.model = "text-embedding-3-small";
  r.vectors = {{0.5f, -1.25f}, {3.0f}};
  r.usage.input_tokens = 7;
  json::object f = ParseJson(EncodeEmbeddingResponse(r, false, nullptr, 1e-6), "f")->as_object();
  EXPECT_EQ(f.at("data").at(1).at("index").as_int64(), 1);
  EXPECT_EQ(f.at("data").at(0).at("embedding").at(1).as_double(), -1.25);
  EXPECT_EQ(f.at("usage").at("prompt_tokens").as_int64(), 7);
  EXPECT_EQ(f.at("usage").at("cost").as_double(), 1e-6);
  json::object b =
      ParseJson(EncodeEmbeddingResponse(r, true, nullptr, std::nullopt), "b")->as_object();
  auto bytes = Base64Decode(b.at("data").at(0).at("embedding").as_string());
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), 8u);
  float values[2];
  std::memcpy(values, bytes->data(), 8);
  EXPECT_EQ(values[0], 0.5f);
  EXPECT_EQ(values[1], -1.25f);
  // An upstream's base64 answer reads back to the same floats.
  auto back = DecodeEmbeddingVector(b.at("data").at(0).at("embedding"), "e");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, r.vectors[0]);
  EXPECT_FALSE(DecodeEmbeddingVector(json::value("AAA="), "e").ok());  // 2 bytes: not a float
  EXPECT_FALSE(DecodeEmbeddingVector(json::array{1, "x"}, "e").ok());
}

}  // namespace
}  // namespace iris::gateway::api
