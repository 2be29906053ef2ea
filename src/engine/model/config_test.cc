// config.json parsing: Hugging Face defaults for missing keys and the real files' quirks.
#include "engine/model/config.h"

#include <gtest/gtest.h>

namespace iris::model {
namespace {

TEST(ConfigTest, FixtureConfigs) {
  auto c = LoadModelConfig(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->weights_dtype, "bfloat16");  // written as "dtype" by transformers 4.57
  EXPECT_EQ(c->text.hidden_size, 64);
  EXPECT_EQ(c->text.num_key_value_heads, 2);
  EXPECT_EQ(c->text.rope_theta, 100000.0);
  EXPECT_EQ(c->image_token_id, 550);
  auto big = LoadModelConfig(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-2.2b-style");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->text.rope_theta, 273768.0);  // read from the file, never assumed
  EXPECT_EQ(big->text.max_position_embeddings, 16384);
}

// The shape of the published 500M/2.2B files: torch_dtype, missing keys, pad 128002.
TEST(ConfigTest, MissingKeysGetTransformersDefaults) {
  auto c = ParseModelConfig(R"({
    "model_type": "smolvlm", "torch_dtype": "float32", "pad_token_id": 128002,
    "image_token_id": 49190, "scale_factor": 3, "vocab_size": 49280,
    "text_config": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                    "head_dim": 64, "rope_theta": 273768, "rms_norm_eps": 1e-5,
                    "vocab_size": 49280, "model_type": "llama"},
    "vision_config": {"hidden_size": 768, "image_size": 512, "patch_size": 16,
                      "num_attention_heads": 12}})",
                            "config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->weights_dtype, "float32");
  EXPECT_EQ(c->text.num_attention_heads, 32);  // LlamaConfig default
  EXPECT_EQ(c->text.num_key_value_heads, 32);  // defaults to num_attention_heads
  EXPECT_EQ(c->vision.num_hidden_layers, 12);
  EXPECT_EQ(c->vision.intermediate_size, 3072);
  EXPECT_FLOAT_EQ(c->vision.layer_norm_eps, 1e-6f);
  EXPECT_EQ(c->vision.hidden_act, "gelu_pytorch_tanh");
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(ConfigTest, NotSmolVlm) {
  auto c = ParseModelConfig(R"({"model_type": "llama"})", "x/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("not a SmolVLM2"), std::string::npos);
}

TEST(ConfigTest, BadValuesNameTheKey) {
  auto type = ParseModelConfig(
      R"({"model_type": "smolvlm", "text_config": {"hidden_size": "big"}})", "config.json");
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.status().message().find("text_config.hidden_size"), std::string::npos)
      << type.status().message();
  auto gqa = ParseModelConfig(R"({"model_type": "smolvlm", "image_token_id": 1, "text_config":
      {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}})",
                              "config.json");
  ASSERT_FALSE(gqa.ok());
  EXPECT_NE(gqa.status().message().find("num_key_value_heads"), std::string::npos);
  auto neg = ParseModelConfig(
      R"({"model_type": "smolvlm", "text_config": {"num_hidden_layers": -1}})", "config.json");
  ASSERT_FALSE(neg.ok());
  auto json = ParseModelConfig("{", "config.json");
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().message().find("config.json"), std::string::npos);
  auto rope = ParseModelConfig(R"({"model_type": "smolvlm", "image_token_id": 1, "text_config":
      {"vocab_size": 10, "rope_scaling": {"type": "linear", "factor": 2}}})",
                               "config.json");
  ASSERT_FALSE(rope.ok());
  EXPECT_EQ(rope.status().code(), ErrorCode::kUnimplemented);
}

}  // namespace
}  // namespace iris::model
