// The SmolVLM2 text decoder (Llama / SmolLM2): embeddings, RMSNorm, rotate-half RoPE,
// grouped-query attention with a KV cache, SiLU-gated MLP, final norm and untied lm_head.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/formats/safetensors.h"
#include "engine/model/config.h"
#include "engine/ops/ops.h"

namespace iris::model {

// Per-sequence keys and values of every layer, f32, grown on demand.
class KvCache {
 public:
  KvCache(int num_layers, int kv_dim)
      : num_layers_(num_layers), kv_dim_(kv_dim), k_(num_layers), v_(num_layers) {}
  size_t length() const { return length_; }
  // Ensures room for `tokens` positions in total.
  void Reserve(size_t tokens);
  // Forgets everything after `length` positions (to reuse a shared prefix).
  void Truncate(size_t length) { length_ = std::min(length, length_); }
  float* keys(int layer) { return k_[layer].data(); }    // [capacity, kv_dim]
  float* values(int layer) { return v_[layer].data(); }  // [capacity, kv_dim]
  void set_length(size_t n) { length_ = n; }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return 2 * capacity_ * kv_dim_ * num_layers_ * sizeof(float); }

 private:
  int num_layers_;
  int kv_dim_;
  size_t capacity_ = 0;
  size_t length_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

class TextModel {
 public:
  // Binds the decoder's weights (in place, memory-mapped) and checks every shape.
  // With narrow_exact_f32, F32 matrices that hold only BF16 values are stored as BF16 (once,
  // at load) and their mapped pages released.
  static Result<TextModel> Load(const formats::WeightStore& weights, const TextConfig& config,
                                bool tie_word_embeddings, bool narrow_exact_f32 = true);

  const TextConfig& config() const { return config_; }
  int model_dim() const { return config_.hidden_size; }
  int vocab_size() const { return config_.vocab_size; }

  // out[T, model_dim] = embedding rows of ids. Ids must be in [0, vocab_size).
  void Embed(std::span<const int32_t> ids, float* out) const;

  // Runs T new positions (embeds [T, model_dim]) after what the cache holds, appends their
  // keys/values to it. logits receives [T, vocab] if all_logits, else [1, vocab] for the
  // last position. Precondition: cache.length() + T <= max_position_embeddings.
  void Forward(ops::ComputeContext& ctx, const float* embeds, size_t num_tokens, KvCache& cache,
               bool all_logits, std::vector<float>* logits) const;

  KvCache NewCache() const {
    return KvCache(config_.num_hidden_layers, config_.num_key_value_heads * config_.head_dim);
  }

 private:
  struct Layer {
    tensor::TensorView q, k, v, o, gate, up, down;
    std::vector<float> input_norm, post_norm;
  };
  TextConfig config_;
  tensor::TensorView embed_;    // [vocab, model_dim]
  tensor::TensorView lm_head_;  // [vocab, model_dim]
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  std::vector<std::vector<uint32_t>> owned_;  // narrowed or realigned weights (WeightBinder)
};

// Finds the name prefix the checkpoint uses for the text model ("model.text_model." in
// current files, "text_model." or "model." in older dumps).
Result<std::string> TextPrefix(const formats::WeightStore& weights);

}  // namespace iris::model
