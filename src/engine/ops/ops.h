// Tensor operations of the models: shape checks, dtype dispatch, and ParallelFor over the
// kernels. Activations are f32 row-major; weights are TensorViews the model owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/thread_pool.h"
#include "engine/tensor/tensor.h"

namespace iris::ops {

// What every op needs to run: the pool its loops run on. Passed explicitly, no singletons.
struct ComputeContext {
  ThreadPool* pool = nullptr;
  // `--compute bf16` (opt-in): every product of float weights (prompts, decode, image tiles,
  // training) rounds its inputs to bf16 (kernels::MatMulRowsBf16Packed). Int8 weights are
  // unchanged. The model's matrices are packed at load (WeightOptions::Panels::kBf16) and sum
  // through the same panels at any number of rows, so a token's numbers do not depend on what
  // shares its step; other float weights (an adapter's, a matrix whose rows are not a multiple
  // of 16) sum through panels from 32 rows and in tiles below. (On the exact path likewise,
  // with kExact panels, and 64 rows for the others.)
  bool bf16 = false;
};

// out[T, N] = x[T, K] · wᵀ, w a [N, K] weight (F32/BF16/F16). Parallel over N.
// bias (optional, f32 [N]) is added.
void MatMul(ComputeContext& ctx, const float* x, size_t num_tokens, const tensor::TensorView& w,
            float* out, const float* bias = nullptr);

// Several products of the same activations (a layer's q, k and v; gate and up), as MatMul
// each, in one parallel loop over all their rows: one wait for the threads instead of one per
// weight, the activations quantized or rounded once. The weights share k (w.shape[1]);
// weights of different dtypes go one after the other. The numbers are those of separate
// MatMul calls.
struct MatMulOut {
  const tensor::TensorView* w;
  float* out;
};
void MatMuls(ComputeContext& ctx, const float* x, size_t num_tokens,
             std::span<const MatMulOut> products);

// Scratch kept across calls: `buf` holds at least n floats, grown to exactly n when smaller
// (not doubled, and what it held is not copied), never shrunk, not zeroed again.
void GrowScratch(std::vector<float>& buf, size_t n);

// x[T, D] ← x · rsqrt(mean(x²) + eps) · weight (Llama RMSNorm).
void RmsNorm(const float* x, size_t num_tokens, size_t dim, const float* weight, float eps,
             float* out);

// out[T, D] = LayerNorm(x) · weight + bias (biased variance, as torch).
void LayerNorm(const float* x, size_t num_tokens, size_t dim, const float* weight,
               const float* bias, float eps, float* out);

// Rotary tables for positions [pos0, pos0 + T): cos/sin [T, head_dim/2].
void RopeTables(double theta, size_t head_dim, size_t pos0, size_t num_tokens, float* cos_out,
                float* sin_out);
// Applies rotate-half RoPE in place to x[T, num_heads, head_dim].
void ApplyRope(float* x, size_t num_tokens, size_t num_heads, size_t head_dim, const float* cos,
               const float* sin);

// gate[T, F] ← silu(gate) ⊙ up.
void SiluMul(float* gate, const float* up, size_t n);
// x ← gelu_pytorch_tanh(x).
void GeluTanh(float* x, size_t n);
// x[i] += y[i].
void Add(float* x, const float* y, size_t n);
// Softmax over n values in place (max-subtracted, f32).
void Softmax(float* x, size_t n);

// Causal multi-head attention with grouped KV heads.
// q: [T, num_heads, head_dim] for positions [pos0, pos0 + T).
// k_cache, v_cache: [capacity, num_kv_heads, head_dim] holding positions [0, pos0 + T).
// out: [T, num_heads, head_dim]. scale multiplies q·k. For prompt chunks; decoding rows go
// through DecodeAttention.
void CausalAttention(ComputeContext& ctx, const float* q, size_t num_tokens, size_t pos0,
                     const float* k_cache, const float* v_cache, size_t num_heads,
                     size_t num_kv_heads, size_t head_dim, float scale, float* out);
// The same over a paged cache read in place: k_blocks and v_blocks hold positions
// [0, pos0 + T) in blocks of block_keys positions, head by head ([num_kv_heads, block_keys,
// head_dim]; model::KvPool's layout, as DecodeAttention reads it), elements of kv_dtype
// (kernels::IsKvDType: f32, or f16 widened as the keys are packed). Numbers identical to
// CausalAttention over the same (widened) values in rows.
void CausalAttentionPaged(ComputeContext& ctx, const float* q, size_t num_tokens, size_t pos0,
                          std::span<const void* const> k_blocks,
                          std::span<const void* const> v_blocks, tensor::DType kv_dtype,
                          size_t block_keys, size_t num_heads, size_t num_kv_heads, size_t head_dim,
                          float scale, float* out);

// One sequence's queries in DecodeAttention: q and out [num_tokens, num_heads, head_dim] for
// positions [pos0, pos0 + num_tokens).
struct DecodeQueries {
  const float* q = nullptr;
  size_t num_tokens = 0;
  size_t pos0 = 0;
  float* out = nullptr;
};
// Appends the key and value blocks of sequence `seq` (this layer), in position order: each
// holds `block_keys` positions head by head, [num_kv_heads, block_keys, head_dim] (a
// sequence's cache is paged; model::KvPool's layout).
using KvBlocks = std::function<void(size_t seq, std::vector<const void*>& keys,
                                    std::vector<const void*>& values)>;
// Causal attention of a few queries in each of several sequences (decoding), in one parallel
// loop over (sequence, query head) (a batch splits at whole kv heads), reading the cache's
// blocks in place; elements of kv_dtype (kernels::IsKvDType). Each query's numbers do not
// depend on the batch or the split.
void DecodeAttention(ComputeContext& ctx, std::span<const DecodeQueries> seqs, size_t num_heads,
                     size_t num_kv_heads, size_t head_dim, float scale, size_t block_keys,
                     tensor::DType kv_dtype, const KvBlocks& blocks);

// Bidirectional attention over one sequence (vision): q, k, v, out [T, num_heads, head_dim].
void FullAttention(ComputeContext& ctx, const float* q, const float* k, const float* v,
                   size_t num_tokens, size_t num_heads, size_t head_dim, float scale, float* out);

// Converts a small weight (norm, bias) to f32.
std::vector<float> ToF32(const tensor::TensorView& w);

}  // namespace iris::ops
