// The trainable side of LoRA fine-tuning: an A and a B for each adapted linear layer of the
// text model, their gradients and AdamW moments; initialised as PEFT does (A
// kaiming-uniform with a = √5, i.e. U(-1/√in, 1/√in); B zero, so training starts from the base
// model), saved as a PEFT adapter directory that Hugging Face PEFT and iris both load.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model/config.h"
#include "engine/model/lora.h"

namespace iris::train {

// The text model's linear layers by the names PEFT's target_modules use.
struct TrainTarget {
  std::string_view name;  // "q_proj"
  model::LoraSite site;
  std::string_view path;  // inside a decoder layer: "self_attn.q_proj"
};
inline constexpr TrainTarget kTrainTargets[] = {
    {"q_proj", model::LoraSite::kTextQ, "self_attn.q_proj"},
    {"k_proj", model::LoraSite::kTextK, "self_attn.k_proj"},
    {"v_proj", model::LoraSite::kTextV, "self_attn.v_proj"},
    {"o_proj", model::LoraSite::kTextO, "self_attn.o_proj"},
    {"gate_proj", model::LoraSite::kTextGate, "mlp.gate_proj"},
    {"up_proj", model::LoraSite::kTextUp, "mlp.up_proj"},
    {"down_proj", model::LoraSite::kTextDown, "mlp.down_proj"},
};

struct LoraParam {
  model::LoraSite site = model::LoraSite::kTextQ;
  size_t layer = 0;
  int64_t rank = 0, in = 0, out = 0;
  std::vector<float> a, b;            // [rank, in], [out, rank]
  std::vector<float> grad_a, grad_b;  // accumulated over a step
  std::vector<float> m_a, v_a, m_b, v_b;
  std::string module;  // "model.text_model.layers.3.self_attn.q_proj"
};

struct LoraShape {
  int rank = 8;
  double alpha = 16;
  std::vector<std::string> targets;  // names of kTrainTargets; empty = all seven
};

class LoraParams {
 public:
  // InvalidArgument for a rank outside [1, 1024] or an unknown target name (the known ones
  // listed).
  static Result<LoraParams> Create(const model::TextConfig& config, const LoraShape& shape,
                                   uint64_t seed);

  const LoraShape& shape() const { return shape_; }
  float scale() const { return static_cast<float>(shape_.alpha / shape_.rank); }
  // The adapted layer at (site, layer) or null; O(1).
  LoraParam* Find(model::LoraSite site, size_t layer) {
    const int32_t i = index_[static_cast<size_t>(site)].size() > layer
                          ? index_[static_cast<size_t>(site)][layer]
                          : -1;
    return i < 0 ? nullptr : &params_[static_cast<size_t>(i)];
  }
  std::vector<LoraParam>& params() { return params_; }
  const std::vector<LoraParam>& params() const { return params_; }
  size_t num_parameters() const;

  void ZeroGrad();
  // √(Σ grad²) over every parameter.
  double GradNorm() const;
  // Scales every gradient (clipping).
  void ScaleGrad(float factor);
  // One AdamW step (torch's: decoupled weight decay, bias-corrected moments) at step t ≥ 1.
  void AdamW(double lr, int64_t t, double beta1, double beta2, double eps, double weight_decay);

  // Writes dir/adapter_config.json and dir/adapter_model.safetensors as PEFT's save_pretrained
  // does for a SmolVLM2 model (target_modules a regular expression that PEFT matches to the
  // text model's layers only).
  Status SavePeft(const std::string& dir, const std::string& base_model) const;
  // Everything a resumed run needs: A, B and both moments, with `state` (the caller's step
  // counters and options, as text) in the same file's metadata, so one rename makes a
  // checkpoint whole. LoadState hands that text to `accept` first and loads the tensors only
  // if it returns OK.
  Status SaveState(const std::string& path, const std::string& state) const;
  Status LoadState(const std::string& path,
                   const std::function<Status(const std::string& state)>& accept);

 private:
  LoraShape shape_;
  std::vector<LoraParam> params_;
  std::vector<std::vector<int32_t>> index_ =
      std::vector<std::vector<int32_t>>(model::kNumLoraSites);
};

}  // namespace iris::train
