// Forward and backward passes of the SmolVLM2 text decoder for LoRA training: the base weights
// stay frozen (used as loaded, and a transposed copy of each for the input gradients), the
// gradients of the adapters' A and B are accumulated. Activations are kept per layer for one
// sequence; attention probabilities are recomputed from the saved log-sum-exp in the backward
// pass, so memory grows with tokens, not tokens².
#pragma once

#include <array>
#include <cstdint>
#include <functional>
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

// Buffers of one adapted layer's forward and backward products (reused).
struct LoraScratch {
  std::vector<float> t, dyt, ut, bt, du, dut, at, g;
};

class TextTrainer {
 public:
  // FailedPrecondition for quantized weights (train on the checkpoint's own types).
  static Result<TextTrainer> Create(const model::TextModel& model, ops::ComputeContext& ctx);
  // Movable, not copyable: the transposed views point into owned_.
  TextTrainer(TextTrainer&&) = default;
  TextTrainer& operator=(TextTrainer&&) = default;
  TextTrainer(const TextTrainer&) = delete;
  TextTrainer& operator=(const TextTrainer&) = delete;

  // One sequence: embeds [T, model_dim] (positions 0..T-1), labels[t] the token position t
  // must predict or -1. Adds grad_scale × d(Σ loss)/dθ to the adapters' gradients when
  // `backward`; lora may be null (the base model, forward only).
  SequenceLoss Run(ops::ComputeContext& ctx, const float* embeds, std::span<const int32_t> labels,
                   LoraParams* lora, float grad_scale, bool backward);

 private:
  TextTrainer() = default;
  void AttentionForward(ops::ComputeContext& ctx, const float* q, const float* k, const float* v,
                        size_t T, float* out, float* lse);
  void AttentionBackward(ops::ComputeContext& ctx, const float* q, const float* k, const float* v,
                         const float* out, const float* lse, const float* dout, size_t T, float* dq,
                         float* dk, float* dv);
  struct Acts {  // one layer's saved activations
    std::vector<float> xin, x2, q, k, v, attn, lse, g, u, m;
    std::array<std::vector<float>, 7> lu;  // x·Aᵀ per adapted site (q, k, v, o, gate, up, down)
  };
  struct Attn {  // one head's scratch
    std::vector<float> qh, qht, kg, kgt, vg, vgt, oh, doh, doht, grad, s, dp, st;
  };
  struct Scratch {  // a sequence's buffers, kept between calls (their pages stay mapped)
    std::vector<float> x, h, tmp, cos, sin, xr, hf, logits, dhf, dx, dxr, dm, dg, dup, dh, ht, mt,
        attnt, dattn, dq, dk, dv, neg_sin;
    std::vector<double> row_loss;
    LoraScratch lora;
  };
  void ForEachHead(ops::ComputeContext& ctx, size_t heads, size_t T,
                   const std::function<void(size_t, Attn&, ops::ComputeContext&)>& fn);
  std::vector<Acts> acts_;
  std::vector<Attn> attn_;                // one per pool thread
  std::vector<float> head_dk_, head_dv_;  // [nh, T, hd]: each head's share of dk, dv
  Scratch scratch_;
  struct Transposed {
    tensor::TensorView q, k, v, o, gate, up, down;
  };
  const model::TextModel* model_ = nullptr;
  std::vector<Transposed> transposed_;  // Wᵀ of each layer, [in, out]
  tensor::TensorView lm_head_t_;        // [model_dim, vocab]
  std::vector<std::vector<uint8_t>> owned_;
};

}  // namespace iris::train
