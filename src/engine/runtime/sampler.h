// Chooses the next token from logits: greedy, or sampling with temperature, top-k, top-p,
// min-p and a repetition penalty, from a seeded generator (same seed, same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "base/status.h"

namespace iris::runtime {

struct SamplingParams {
  float temperature = 0.0f;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off (HF/CTRL style: divide positive logits)
  uint64_t seed = 0;

  // InvalidArgument naming the parameter if a value is out of range.
  Status Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // Picks a token. `history` (prompt and generated ids) feeds the repetition penalty.
  // Modifies logits in place.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// Index of the largest logit: the first one on ties, as torch.argmax; unlike it, NaN never wins
// (every logit NaN gives 0).
int32_t ArgMax(std::span<const float> logits);

}  // namespace iris::runtime
