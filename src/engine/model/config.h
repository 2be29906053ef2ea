// SmolVLM2 config.json: the values the engine needs, with Hugging Face's class defaults
// for keys the published files leave out (smolvlm2.md §1.2, §12).
#pragma once

#include <string>

#include "base/status.h"

namespace iris::model {

struct TextConfig {  // LlamaConfig
  int vocab_size = 32000;
  int hidden_size = 4096;         // model_dim
  int intermediate_size = 11008;  // ffn_dim
  int num_hidden_layers = 32;
  int num_attention_heads = 32;
  int num_key_value_heads = 32;  // defaults to num_attention_heads
  int head_dim = 128;            // defaults to hidden_size / num_attention_heads
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  int max_position_embeddings = 2048;
  std::string hidden_act = "silu";
};

struct VisionConfig {  // SmolVLMVisionConfig
  int hidden_size = 1152;
  int intermediate_size = 3072;
  int num_hidden_layers = 12;
  int num_attention_heads = 16;
  int num_channels = 3;
  int image_size = 224;
  int patch_size = 32;
  float layer_norm_eps = 1e-6f;
  std::string hidden_act = "gelu_pytorch_tanh";
};

struct ModelConfig {
  std::string model_type;     // "smolvlm" (or "idefics3")
  std::string weights_dtype;  // dtype / torch_dtype as written, informational
  int image_token_id = 128257;
  int scale_factor = 2;
  bool tie_word_embeddings = false;
  TextConfig text;
  VisionConfig vision;
};

// Parses config.json content. A config that is not SmolVLM (or Idefics3) is a
// FailedPrecondition; wrong types and impossible values are InvalidArgument naming the key.
Result<ModelConfig> ParseModelConfig(std::string_view json_text, const std::string& what);
// The checks ParseModelConfig makes of the values it read (positive sizes, heads that group,
// an even head_dim, silu, rope_theta > 0, image_token_id in the vocabulary); `what` names
// the source in errors. Other sources of a config (GGUF metadata) run them too.
Status ValidateModelConfig(const ModelConfig& config, const std::string& what);
// Reads DIR/config.json.
Result<ModelConfig> LoadModelConfig(const std::string& dir);

}  // namespace iris::model
