// The SmolVLM2 text decoder (Llama / SmolLM2): embeddings, RMSNorm, rotate-half RoPE,
// grouped-query attention with a KV cache, SiLU-gated MLP, final norm and untied lm_head.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/formats/safetensors.h"
#include "engine/model/config.h"
#include "engine/model/kv_cache.h"
#include "engine/model/lora.h"
#include "engine/model/weights.h"
#include "engine/ops/ops.h"

namespace iris::model {

// One sequence's share of a batched forward pass: `num_tokens` new positions after what its
// cache holds.
struct ForwardChunk {
  const float* embeds = nullptr;  // [num_tokens, model_dim]
  size_t num_tokens = 0;
  KvCache* cache = nullptr;
  enum class Logits { kNone, kLast, kAll } logits = Logits::kLast;
  const LoraAdapter* adapter = nullptr;  // this sequence's adapter, or null for the base
};

class TextModel {
 public:
  // Binds the decoder's weights (copied into the model's memory as stored, unless the options
  // convert them; see WeightBinder) and checks every shape.
  static Result<TextModel> Load(const formats::WeightStore& weights, const TextConfig& config,
                                bool tie_word_embeddings, const WeightOptions& options = {});

  const TextConfig& config() const { return config_; }
  int model_dim() const { return config_.hidden_size; }
  int vocab_size() const { return config_.vocab_size; }

  // out[T, model_dim] = embedding rows of ids (with the adapter's change, if any). Ids must be
  // in [0, vocab_size).
  void Embed(std::span<const int32_t> ids, float* out, const LoraAdapter* adapter = nullptr) const;

  // Runs T new positions (embeds [T, model_dim]) after what the cache holds, appends their
  // keys/values to it. logits receives [T, vocab] if all_logits, else [1, vocab] for the
  // last position. Precondition: cache.length() + T <= max_position_embeddings.
  // kResourceExhausted, with nothing run or appended, when the cache cannot grow by T
  // positions: its pool's budget is spent, or the machine refused the memory.
  Status Forward(ops::ComputeContext& ctx, const float* embeds, size_t num_tokens, KvCache& cache,
                 bool all_logits, std::vector<float>* logits) const;

  // Runs the chunks of several sequences in one pass over the weights: every linear layer
  // multiplies all their rows at once; attention and positions stay per sequence. Each
  // chunk's cache must have room reserved (KvCache::Reserve) for its new positions. logits
  // receives the rows the chunks ask for, [rows, vocab], in chunk order. Chunks may carry
  // different adapters (and none): each adds its own low-rank terms to its own rows. The
  // activations live in a workspace the calling thread keeps between passes (up to 64 MiB;
  // more is given back after the pass): not reentrant on one thread.
  void ForwardBatch(ops::ComputeContext& ctx, std::span<const ForwardChunk> chunks,
                    std::vector<float>* logits) const;

  // A pool for this model's keys and values (max_blocks 0: grows as needed; kv_dtype f32, or
  // f16: see KvPool), and a cache in a pool of its own.
  std::shared_ptr<KvPool> NewPool(size_t max_blocks = 0,
                                  tensor::DType kv_dtype = tensor::DType::kF32) const {
    return std::make_shared<KvPool>(config_.num_hidden_layers,
                                    static_cast<size_t>(config_.num_key_value_heads),
                                    static_cast<size_t>(config_.head_dim), max_blocks, kv_dtype);
  }
  KvCache NewCache() const { return KvCache(NewPool()); }

  // The weights, for training (engine/train), which runs its own forward and backward.
  struct Layer {
    tensor::TensorView q, k, v, o, gate, up, down;
    std::vector<float> input_norm, post_norm;
  };
  const std::vector<Layer>& layers() const { return layers_; }
  const tensor::TensorView& lm_head() const { return lm_head_; }
  const std::vector<float>& final_norm() const { return final_norm_; }

 private:
  TextConfig config_;
  tensor::TensorView embed_;    // [vocab, model_dim]
  tensor::TensorView lm_head_;  // [vocab, model_dim]
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  WeightMemory owned_;  // the weights the views point at (WeightBinder)
};

// Finds the name prefix the checkpoint uses for the text model ("model.text_model." in
// current files, "text_model." or "model." in older dumps).
Result<std::string> TextPrefix(const formats::WeightStore& weights);

}  // namespace iris::model
