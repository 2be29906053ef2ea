// LoRA adapters as Hugging Face PEFT saves them (adapter_config.json and
// adapter_model.safetensors), applied on the fly: a layer W that an adapter targets computes
// x·Wᵀ + (x·Aᵀ)·(s·B)ᵀ, s = lora_alpha / r (or / √r with use_rslora), so one base model serves
// many adapters at once and a request picks its own. MergeLora writes W + s·B·A instead.
//
// Sites: every linear layer of the text model and the vision tower, the connector's
// projection, lm_head, and the token embeddings (lora_embedding_A/B). modules_to_save may hold
// a whole lm_head or embedding table. Anything else an adapter file holds (DoRA magnitudes,
// LoRA biases, other modules) is refused with its name, never ignored.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/formats/safetensors.h"
#include "engine/model/config.h"
#include "engine/ops/ops.h"
#include "engine/tensor/tensor.h"

namespace iris::model {

enum class LoraSite : uint8_t {
  kTextQ,
  kTextK,
  kTextV,
  kTextO,
  kTextGate,
  kTextUp,
  kTextDown,
  kVisionQ,
  kVisionK,
  kVisionV,
  kVisionO,
  kVisionFc1,
  kVisionFc2,
  kConnector,
  kLmHead,
  kEmbed,
  kCount
};
inline constexpr size_t kNumLoraSites = static_cast<size_t>(LoraSite::kCount);

// One adapted layer: W [out, in] gains s·B·A, A [rank, in], B [out, rank] (s folded into B).
// For the embeddings (kEmbed) A is [rank, vocab] and B [dim, rank], as PEFT stores them.
struct LoraLinear {
  std::string module;  // "model.text_model.layers.3.self_attn.q_proj"
  int64_t rank = 0, in = 0, out = 0;
  float scale = 0;       // lora_alpha / rank, or / √rank
  std::vector<float> a;  // [rank, in]
  std::vector<float> b;  // [out, rank], times scale
  tensor::TensorView A() const { return {tensor::DType::kF32, {rank, in}, a.data()}; }
  tensor::TensorView B() const { return {tensor::DType::kF32, {out, rank}, b.data()}; }
};

// Which layers a base model has, to check an adapter against it.
struct LoraBase {
  ModelConfig config;
  bool has_vision = false;
};

class LoraAdapter {
 public:
  // Reads an adapter directory and checks every tensor against the base model: names,
  // shapes, ranks (r and rank_pattern), finiteness. Errors name the file and the tensor.
  static Result<std::shared_ptr<const LoraAdapter>> Load(const std::string& dir,
                                                         const LoraBase& base);

  // The adapted layer at (site, layer), or null. Layer is 0 for the connector, lm_head and
  // embeddings.
  const LoraLinear* Find(LoraSite site, size_t layer) const {
    const auto& v = index_[static_cast<size_t>(site)];
    return layer < v.size() && v[layer] >= 0 ? &linears_[static_cast<size_t>(v[layer])] : nullptr;
  }
  // Whole tables from modules_to_save ([vocab, dim] f32), or empty.
  const std::vector<float>& lm_head() const { return lm_head_; }
  const std::vector<float>& embed_tokens() const { return embed_tokens_; }
  // True when the adapter changes the vision tower or connector (image features then depend
  // on it).
  bool touches_vision() const { return touches_vision_; }
  const std::vector<LoraLinear>& linears() const { return linears_; }

  const std::string& dir() const { return dir_; }
  // Distinct for every adapter loaded in this process (cache keys).
  uint64_t serial() const { return serial_; }
  // What it adapts, for logs: "rank 8, 210 layers (text, vision), lm_head".
  std::string Describe() const;

 private:
  std::string dir_;
  uint64_t serial_ = 0;
  std::vector<LoraLinear> linears_;
  std::array<std::vector<int32_t>, kNumLoraSites> index_;
  std::vector<float> lm_head_, embed_tokens_;
  bool touches_vision_ = false;
};

// out[rows, l.out] += (x[rows, l.in]·Aᵀ)·(s·B)ᵀ.
void ApplyLora(ops::ComputeContext& ctx, const LoraLinear& l, const float* x, size_t rows,
               float* out);

// out[t] += the adapter's embedding delta (or its whole table's row) for ids[t]; out holds the
// base rows. No-op for an adapter that leaves the embeddings alone.
void ApplyLoraEmbed(const LoraAdapter& adapter, std::span<const int32_t> ids, size_t dim,
                    float* out);

// The module a checkpoint weight belongs to, in the names PEFT uses for SmolVLM2
// ("model.text_model.layers.0.self_attn.q_proj", "lm_head"), with its site and layer;
// false for weights no adapter can target (norms, biases, positions).
struct LoraModule {
  LoraSite site = LoraSite::kCount;
  size_t layer = 0;
};
bool FindLoraModule(const std::string& weight_name, LoraModule* module);

// Writes base + adapter merged: every file of `base_dir` but the weights is copied, and one
// model.safetensors holds every tensor, the adapted ones as F32 (W + s·B·A, summed in
// double), the others as the base stores them. `out_dir` must not exist or be empty.
// on_progress (optional) gets (tensors written, total).
Status MergeLora(const std::string& base_dir, const LoraAdapter& adapter,
                 const std::string& out_dir,
                 const std::function<void(size_t, size_t)>& on_progress = {});

}  // namespace iris::model
