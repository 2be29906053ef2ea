// SIMD hot loops, compiled for several x86 targets (Highway) and dispatched at run time to
// the best one the CPU supports. Kernels take plain pointers and a row range; they never
// see the thread pool. Each has a scalar twin in ref/ that tests compare against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor/dtype.h"

namespace iris::kernels {

// out[t * out_stride + (n - n_begin)] = Σ_k x[t * x_stride + k] · w[n * k_dim + k]
// for t in [0, num_tokens), n in [n_begin, n_end). w is row-major [N, k_dim] in w_dtype
// (F32, BF16 or F16; products and sums in f32), or BF16 or F16 values packed at load
// (tensor::DType::kBF16p, kF16p: PackBf16Panels, PackF16Panels; n_begin and n_end multiples of
// tensor::kHalfPanelRows), which go through the panels at every number of tokens with the
// numbers the packed panels below give from kGemmMinTokens, so that a token's numbers do not
// depend on how many tokens share the call. `out` points at column n_begin.
void MatMulRows(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end, float* out,
                size_t out_stride);

// From this many tokens on, MatMulRows multiplies through packed weight panels (a prompt);
// below it, dot-product tiles straight over the weight rows (decode).
inline constexpr size_t kGemmMinTokens = 64;
// A packed-panel range [n_begin, n_end) that starts at a multiple of this (and is not the last
// one) covers whole panels on every target (48 features on AVX-512, 16 on AVX2, 8 below). A
// range cut elsewhere gives the same numbers but computes a partial panel at full cost.
inline constexpr size_t kMatMulRowAlign = 48;

// The opt-in `--compute bf16` products: as MatMulRows, but the activations and the weights are
// rounded to bf16 (round to nearest even) and multiplied in pairs with f32 sums, AVX512-BF16's
// vdpbf16ps: about twice the products per instruction, at bf16's precision (8 significant
// bits per input). From kBf16GemmMinTokens tokens it packs the weights per call, as the prompt
// GEMM does; below, dot-product tiles read the weight rows as they are (decode), summing in
// another order. Weights packed at load (tensor::DType::kBF16p, PackBf16Panels) go through the
// panels at every number of tokens, with the numbers of the per-call panels, so that a
// token's sums do not depend on how many tokens share the call; n_begin and n_end are then
// multiples of tensor::kHalfPanelRows. Where the
// CPU lacks AVX512-BF16 it is neither fast nor the twin (bf16
// activations, exact weights: tests only); callers that promise bf16 check
// Bf16ProductsAvailable first. Scalar twin: ref::MatMulRowsBf16.
void MatMulRowsBf16(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                    tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end, float* out,
                    size_t out_stride);
bool Bf16ProductsAvailable();
// Where packing pays for those: panels halve the cost of a row, and packing a 256M model's
// weights costs about 13 rows of tiles (one thread, 270 MB of BF16 weights: tiles 1.4 ms a
// row, panels 0.7 ms a row plus 19 ms).
inline constexpr size_t kBf16GemmMinTokens = 32;
// The paths of those products this CPU can run, best first: "amx" (AMX tiles, where the CPU
// has AMX-BF16 and Linux grants the process its tile state) and "avx512bf16"; none without
// AVX512-BF16. Then the one in use ("" without AVX512-BF16), and a restriction to one path
// for tests and benchmarks ("" restores the best). "amx-emulated" also exists wherever
// AVX512-BF16 does: the AMX kernel with its tile instructions computed in software as the
// architecture defines them, so that the kernel's code is tested on any such CPU (slow).
std::vector<std::string> AvailableBf16Paths();
std::string ActiveBf16Path();
bool ForceBf16Path(const std::string& name);
// The same in two steps, so that the activations are rounded once for every range of
// features: xb holds num_tokens rows of Bf16Pairs(k_dim) words (bf16 pairs (k, k+1), a zero
// after an odd k_dim).
inline size_t Bf16Pairs(size_t k_dim) { return (k_dim + 1) / 2; }
void PackActivationsBf16(const float* x, size_t x_stride, size_t num_tokens, size_t k_dim,
                         uint32_t* xb);
void MatMulRowsBf16Packed(const uint32_t* xb, size_t num_tokens, const void* w,
                          tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end,
                          float* out, size_t out_stride);
// Rows [r_begin, r_end) (multiples of tensor::kHalfPanelRows) of a row-major F32, F16 or
// BF16 matrix of k_dim columns into `panels`, the whole matrix's tensor::DType::kBF16p bytes
// (RowBytes(kBF16p, k_dim) per row): BF16 as stored; F32 and F16 rounded as
// PackActivationsBf16 rounds (the bf16 products' rounding), or with `exact_f32` F32 values
// that are all bf16 already (tensor::ExactlyBf16) taken as they are. Ranges of whole groups
// may be packed in parallel.
void PackBf16Panels(const void* w, tensor::DType w_dtype, size_t k_dim, size_t r_begin,
                    size_t r_end, void* panels, bool exact_f32 = false);
// The same for an F16 matrix into tensor::DType::kF16p (its values as stored, each group
// column by column; RowBytes(kF16p, k_dim) per row).
void PackF16Panels(const void* w, size_t k_dim, size_t r_begin, size_t r_end, void* panels);

// Σ a[i] · b[i].
float DotF32(const float* a, const float* b, size_t n);
// The index of the largest of x[0, n) that is not NaN, the first on ties (−0 and +0 tie); 0
// when every value is NaN or n is 0.
size_t ArgMaxF32(const float* x, size_t n);
// y[i] += alpha · x[i].
void AxpyF32(float alpha, const float* x, float* y, size_t n);
// dst[i] = f32(src[i]) for a row of a weight tensor (F32, BF16 or F16).
void ConvertRowToF32(const void* src, tensor::DType dtype, size_t n, float* dst);

// x ← gelu_pytorch_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
void GeluTanh(float* x, size_t n);
// gate ← silu(gate) ⊙ up.
void SiluMul(float* gate, const float* up, size_t n);

// Attention of num_q queries of one head (q rows of q_stride floats) over num_keys keys
// packed in panels of AttentionMaxLanes() keys: key j, dim d is at
// kt[(j / P) * head_dim * P + d * P + j % P] with P = AttentionMaxLanes(); the packed buffer
// covers kt_stride keys (a multiple of P, >= num_keys), padding keys finite (zero).
// v[j * v_stride + d]. causal_base == SIZE_MAX: every query sees all keys; else query i
// sees keys [0, causal_base + i]. scratch: AttentionScratchRows() × kt_stride floats. out
// rows of out_stride floats.
void AttentionHead(const float* q, size_t q_stride, size_t num_q, const float* kt, size_t kt_stride,
                   const float* v, size_t v_stride, size_t num_keys, size_t head_dim, float scale,
                   size_t causal_base, float* scratch, float* out, size_t out_stride);
// Queries of one decoding position that share a kv head (num_q rows q_stride apart, e.g. a
// grouped-query attention group) over keys and values kept in blocks (a paged KV cache): key
// j is row j % block_keys of k_blocks[j / block_keys], rows `stride` elements apart, no
// transpose; values alike. One block of num_keys rows is a contiguous cache. Each query's
// numbers are the same whatever num_q (a query alone or in a group). Scores sum each key's
// lanes by a pairwise tree, the weighted sum goes key by key in order. scratch: num_q rows of
// num_keys rounded up to AttentionMaxLanes() floats; out rows out_stride apart.
// Keys and values are kv_dtype (IsKvDType): f32, or f16 widened exactly as they are loaded
// (the numbers are those of f32 blocks holding the same values wherever head_dim is whole
// vectors; a scalar tail may be contracted differently, to within rounding).
void AttentionDecodeBlocks(const float* q, size_t q_stride, size_t num_q,
                           const void* const* k_blocks, const void* const* v_blocks,
                           tensor::DType kv_dtype, size_t block_keys, size_t stride,
                           size_t num_keys, size_t head_dim, float scale, float* scratch,
                           float* out, size_t out_stride);
// Element types a KV cache may hold: kF32 (the exact path) or kF16 (opt-in, half the bytes).
inline bool IsKvDType(tensor::DType d) {
  return d == tensor::DType::kF32 || d == tensor::DType::kF16;
}
// dst[i] = f16(src[i]) as tensor::F32ToF16Saturated (its scalar twin) computes it, F16C's
// conversion where the CPU has it (a NaN stays a NaN; its payload bits may differ).
void NarrowRowF16(const float* src, size_t n, void* dst);
// Padding multiple for kt_stride and scratch sizes (the widest vector of any target).
constexpr size_t AttentionMaxLanes() { return 16; }
// Queries AttentionHead scores together (rows of scratch it needs).
constexpr size_t AttentionScratchRows() { return 8; }

// Int8 products for Q8_0 weights (quant_kernels.cc). Activations are quantized first, per
// row of k_dim values (a multiple of 32) in blocks of 32 as llama.cpp quantizes Q8_0
// activations: scale d = max|x| / 127 (kept in f32), q = round(x / d), ties away from zero.
// q: num_tokens × k_dim; d: num_tokens × k_dim / 32.
// With `sums` (num_tokens × k_dim / 32), also each block's sum of q (what kQ8_0p's unsigned
// weights need to be undone).
void QuantizeRowsQ8(const float* x, size_t x_stride, size_t num_tokens, size_t k_dim, int8_t* q,
                    float* d, int32_t* sums = nullptr);
// out[t · out_stride + (n − n_begin)] = Σ_b wd[n, b] · d[t, b] · Σ_i wq[n, b, i] · q[t, b, i]
// for t in [0, num_tokens), n in [n_begin, n_end): w is [N, k_dim] in Q8_0 blocks (34 bytes:
// an f16 scale and 32 int8 values, rows back to back); activations are in [-127, 127], so
// the AVX2 path's pairwise 16-bit sums cannot saturate even with -128 weights.
void MatMulRowsQ8_0(const int8_t* q, const float* d, size_t num_tokens, const void* w, size_t k_dim,
                    size_t n_begin, size_t n_end, float* out, size_t out_stride);
// The same for weights repacked at load (tensor::DType::kQ8_0x). Activations come padded the
// way the rows are: q rows of tensor::Q8xValueBytes(k_dim) bytes (zeros past k_dim), d rows of
// tensor::Q8xScaleBytes(k_dim) / 2 floats (zeros past k_dim / 32). The AVX-512 path takes two
// blocks per register; the others read the layout one block at a time.
void MatMulRowsQ8_0x(const int8_t* q, const float* d, size_t num_tokens, const void* w,
                     size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride);
// True when the path in use runs kQ8_0x faster than kQ8_0 (weights are repacked at load).
bool PrefersRepackedQ8();
// The same for weights in panels of 16 rows (any tensor::IsPanelType: kQ8_0p; kQ4_0p, half
// the bytes per weight; kQ4_Kp, kQ5_Kp and kQ6_Kp from GGUF K files, k_dim a multiple of
// 256):
// activations as QuantizeRowsQ8 writes them (q rows of k_dim, d and sums rows of k_dim / 32),
// and for kQ6_Kp also `half_sums` (rows of k_dim / 16: SumsPer16 of each q row); rows
// [n_begin, n_end) whole panels (multiples of 16). Every output is one sequence of operations
// whatever the number of tokens or rows: per block, the integer dot products, then the block's
// contribution scaled and added, block after block, so a token's numbers do not depend on
// what it is batched with. The AVX-512 path multiplies 16 rows × 4 values per instruction,
// AVX-VNNI and AVX2 8 rows × 4 values (AVX2 not kQ8_0p, whose levels its 16-bit pair sums
// cannot hold); the scalar path (and AVX2's kQ8_0p) reads the layout a value at a time.
void MatMulRowsPanels(tensor::DType panel_type, const int8_t* q, const float* d,
                      const int32_t* sums, size_t num_tokens, const void* w, size_t k_dim,
                      size_t n_begin, size_t n_end, float* out, size_t out_stride,
                      const int32_t* half_sums = nullptr);
// sums[h] = q[16h] + … + q[16h + 15] for h in [0, n / 16).
void SumsPer16(const int8_t* q, size_t n, int32_t* sums);
// True when the path in use has a vector kernel for this panel layout (the loader then puts
// matrices of a multiple of 16 rows in it).
bool MultipliesPanels(tensor::DType panel_type);

// The int8 paths this CPU can run, best first ("avx512vnni", "avxvnni", "avx2", "scalar"), the
// one in use, and a restriction to one of them for tests ("" restores the best).
std::vector<std::string> AvailableQuantPaths();
std::string ActiveQuantPath();
bool ForceQuantPath(const std::string& name);

// The SIMD target in use ("AVX3", "AVX2", "EMU128", ...).
std::string ActiveTarget();
// Targets compiled in that this CPU can run, best first.
std::vector<std::string> AvailableTargets();
// Restricts dispatch to the named target (tests run every kernel on each); "" restores the
// default. Returns false if the target is not available. Not thread-safe.
bool ForceTarget(const std::string& name);
// CPU features relevant to the kernels (for benchmarks and logs), e.g. "avx2 fma avx512f".
std::string CpuFeatures();

}  // namespace iris::kernels
