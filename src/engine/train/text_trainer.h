// Forward and backward passes of the SmolVLM2 text decoder for LoRA training: the base weights
// stay frozen (used as loaded, and a transposed copy of each for the input gradients), the
// gradients of the adapters' A and B are accumulated. Activations are kept per layer for one
// sequence; attention probabilities are recomputed from the saved log-sum-exp in the backward
// pass, so memory grows with tokens, not tokens².
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "engine/model/text_model.h"
#include "engine/ops/ops.h"
#include "engine/train/lora_params.h"

namespace iris::train {

struct SequenceLoss {
  double sum = 0;     // Σ cross-entropy (nats) over the labelled positions
  size_t tokens = 0;  // labelled positions
};

class TextTrainer {
 public:
  // FailedPrecondition for quantized weights (train on the checkpoint's own types).
  static Result<TextTrainer> Create(const model::TextModel& model, ops::ComputeContext& ctx);

  // One sequence: embeds [T, model_dim] (positions 0..T-1), labels[t] the token position t
  // must predict or -1. Adds grad_scale × d(Σ loss)/dθ to the adapters' gradients when
  // `backward`; lora may be null (the base model, forward only).
  SequenceLoss Run(ops::ComputeContext& ctx, const float* embeds, std::span<const int32_t> labels,
                   LoraParams* lora, float grad_scale, bool backward);

 private:
  struct Transposed {
    tensor::TensorView q, k, v, o, gate, up, down;
  };
  const model::TextModel* model_ = nullptr;
  std::vector<Transposed> transposed_;  // Wᵀ of each layer, [in, out]
  tensor::TensorView lm_head_t_;        // [model_dim, vocab]
  std::vector<std::vector<uint8_t>> owned_;
};

}  // namespace iris::train
