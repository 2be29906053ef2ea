// The SmolVLM2 vision side: SigLIP encoder (patch convolution, learned positions, pre-LN
// layers, gelu_pytorch_tanh MLP, post-LN) and the connector (pixel shuffle + projection)
// that turns one tile into image_seq_len text-model embeddings.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/formats/safetensors.h"
#include "engine/model/config.h"
#include "engine/model/lora.h"
#include "engine/model/weights.h"
#include "engine/ops/ops.h"

namespace iris::model {

class VisionModel {
 public:
  // Binds the tower and connector weights (copied into the model's memory, see WeightBinder;
  // on `pool` when given; in panels as `panels` says, WeightOptions::panels) and checks every
  // shape.
  static Result<VisionModel> Load(const formats::WeightStore& weights, const ModelConfig& config,
                                  ThreadPool* pool = nullptr,
                                  WeightOptions::Panels panels = WeightOptions::Panels::kExact);

  int tile_size() const { return config_.image_size; }
  int patches_per_side() const { return config_.image_size / config_.patch_size; }
  int num_patches() const { return patches_per_side() * patches_per_side(); }
  int hidden_size() const { return config_.hidden_size; }
  // Tokens per tile after the pixel shuffle (64 for 512/16 with s = 4, 81 for 384/14, s = 3).
  int tokens_per_tile() const { return num_patches() / (scale_factor_ * scale_factor_); }
  int text_dim() const { return text_dim_; }

  // One tile: pixels [3, tile, tile] (normalised, channels first) →
  // hidden [num_patches, hidden_size] (after post_layernorm) when hidden != nullptr, and
  // features [tokens_per_tile, text_dim]. An adapter (optional) adds its low-rank terms to the
  // tower's and the connector's linear layers.
  void EncodeTile(ops::ComputeContext& ctx, const float* pixels, float* hidden, float* features,
                  const LoraAdapter* adapter = nullptr) const;

  // The same in stages, so a scheduler can run a tile a few layers at a time between other
  // work: BeginTile (patch embedding), ContinueTile (up to max_layers encoder layers; true
  // once all have run), FinishTile (post-layernorm and connector). Same results as EncodeTile.
  // A finished state keeps its buffers for the next BeginTile; drop it to free them. (BeginTile
  // takes `mlp` for the patch rows, FinishTile `h` and `q` for its inputs: scratch only.)
  // EncodeTile keeps one such state per calling thread (about 32 MB for SmolVLM2's towers).
  struct TileState {
    std::vector<float> x;  // the residual stream [num_patches, hidden_size]
    size_t next_layer = 0;
    const LoraAdapter* adapter = nullptr;
    std::vector<float> h, q, k, v, attn, mlp;  // a layer's scratch, kept for the next call
  };
  void BeginTile(ops::ComputeContext& ctx, const float* pixels, TileState& state,
                 const LoraAdapter* adapter = nullptr) const;
  bool ContinueTile(ops::ComputeContext& ctx, TileState& state, size_t max_layers) const;
  void FinishTile(ops::ComputeContext& ctx, TileState& state, float* hidden, float* features) const;
  size_t num_layers() const { return layers_.size(); }

 private:
  struct Layer {
    tensor::TensorView q, k, v, o, fc1, fc2;
    std::vector<float> q_bias, k_bias, v_bias, o_bias, fc1_bias, fc2_bias;
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
  };
  VisionConfig config_;
  int scale_factor_ = 1;
  int text_dim_ = 0;
  tensor::TensorView patch_weight_;  // [hidden, 3 * patch * patch] (the conv kernel, flat)
  std::vector<float> patch_bias_;
  std::vector<float> positions_;  // [num_patches, hidden]
  std::vector<float> post_ln_w_, post_ln_b_;
  tensor::TensorView projection_;  // [text_dim, hidden * s * s]
  std::vector<Layer> layers_;
  WeightMemory owned_;  // the weights the views point at (WeightBinder)
};

// out[(I·m + J)][(dh·s + dw)·D + d] = in[(I·s + dh)·n + (J·s + dw)][d], m = n / s: the
// connector's space-to-depth (HF SmolVLMConnector.pixel_shuffle).
void PixelShuffle(const float* in, int n, int dim, int s, float* out);

// Replaces the embeddings of the image_token_id positions of ids, in order, by the rows of
// features ([k, dim], the tiles of every image in prompt order). InvalidArgument if the
// number of <image> tokens differs from the number of feature rows.
Status MergeImageFeatures(std::span<const int32_t> ids, int32_t image_token_id,
                          std::span<const float> features, size_t dim, float* embeds);

}  // namespace iris::model
