// Matrix products with bf16 inputs and f32 sums (kernels.h, MatMulRowsBf16): the opt-in
// `--compute bf16` path for prompts, image tiles and training. Activations and weights are
// rounded to bf16 (round to nearest even, as the hardware converts) and multiplied in pairs
// with AVX512-BF16's vdpbf16ps, 32 products per instruction where f32 FMAs do 16. Plain
// intrinsics behind target attributes (Highway 1.0.3 has no bf16 dot product); the scalar twin
// is ref::MatMulRowsBf16.
//
// Layout: the tokens' activations become bf16 pairs (k, k+1) as 32-bit words; the weights go
// through panels of 48 features × 128 pairs (24 KiB, in L1), each word the pair of one feature,
// so one k-pair step is 3 panel loads, a broadcast per token and 3 vdpbf16ps per token
// (8 tokens: 24 accumulators).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/transpose_x86.h"
#include "engine/tensor/dtype.h"

namespace iris::kernels {
namespace {

#define IRIS_BF16_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"

constexpr size_t kLanes = 16;
constexpr size_t kVectors = 3;
constexpr size_t kWidth = kVectors * kLanes;  // features per panel
static_assert(kMatMulRowAlign % kWidth == 0);
constexpr size_t kTokens = 8;
constexpr size_t kPanelPairs = 128;  // k pairs per panel

// dst[0, n) = bf16(src[0, n)) by the hardware's conversion (round to nearest even), n even
// or the last one followed by a zero.
__attribute__((target(IRIS_BF16_TARGET))) void ToBf16(const float* src, size_t n, uint16_t* dst) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 lo = _mm512_loadu_ps(src + i);
    const __m512 hi = _mm512_loadu_ps(src + i + 16);
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
  if (i < n) {
    alignas(64) float tail[32] = {};
    alignas(64) uint16_t out[32];
    std::copy(src + i, src + n, tail);
    const __m512 lo = _mm512_load_ps(tail);
    const __m512 hi = _mm512_load_ps(tail + 16);
    _mm512_store_si512(out, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
    std::copy(out, out + (n - i), dst + i);
  }
}

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() to their masked builtins and then warn
// that it may be used uninitialized (GCC bug 105593) where they are inlined: Bf16Pairs16 into
// GemmBf16.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// 32 weights from `src` (F32, F16 or BF16) as 16 bf16 pairs, rounded as ToBf16 rounds.
__attribute__((target(IRIS_BF16_TARGET))) inline __m512 Bf16Pairs16(const uint8_t* src,
                                                                    tensor::DType dtype) {
  if (dtype == tensor::DType::kBF16) return _mm512_castsi512_ps(_mm512_loadu_si512(src));
  __m512 lo, hi;
  if (dtype == tensor::DType::kF32) {
    lo = _mm512_loadu_ps(src);
    hi = _mm512_loadu_ps(src + 64);
  } else {  // F16: widened exactly
    lo = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
    hi = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32)));
  }
  return _mm512_castsi512_ps(reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
}

template <size_t kT>
__attribute__((target(IRIS_BF16_TARGET))) inline void PanelKernel(
    const uint32_t* __restrict xb, size_t x_pairs, const uint32_t* __restrict panel, size_t pairs,
    float* __restrict out, size_t out_stride, bool accumulate) {
  __m512 acc[kT][kVectors];
  for (size_t t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kVectors; ++v) {
      acc[t][v] =
          accumulate ? _mm512_loadu_ps(out + t * out_stride + v * kLanes) : _mm512_setzero_ps();
    }
  }
  for (size_t p = 0; p < pairs; ++p) {
    __m512bh w[kVectors];
    for (size_t v = 0; v < kVectors; ++v) {
      w[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(panel + p * kWidth + v * kLanes));
    }
    for (size_t t = 0; t < kT; ++t) {
      const __m512bh xv =
          reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(xb[t * x_pairs + p])));
      for (size_t v = 0; v < kVectors; ++v) acc[t][v] = _mm512_dpbf16_ps(acc[t][v], xv, w[v]);
    }
  }
  for (size_t t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kVectors; ++v) {
      _mm512_storeu_ps(out + t * out_stride + v * kLanes, acc[t][v]);
    }
  }
}

template <size_t kT>
__attribute__((target(IRIS_BF16_TARGET))) void PanelTokens(const uint32_t* xb, size_t x_pairs,
                                                           size_t num_tokens, const uint32_t* panel,
                                                           size_t pairs, float* out,
                                                           size_t out_stride, bool accumulate) {
  size_t t = 0;
  for (; t + kT <= num_tokens; t += kT) {
    PanelKernel<kT>(xb + t * x_pairs, x_pairs, panel, pairs, out + t * out_stride, out_stride,
                    accumulate);
  }
  if constexpr (kT > 1) {
    if (t < num_tokens) {
      PanelTokens<kT / 2>(xb + t * x_pairs, x_pairs, num_tokens - t, panel, pairs,
                          out + t * out_stride, out_stride, accumulate);
    }
  }
}

__attribute__((target(IRIS_BF16_TARGET))) void GemmBf16(const uint32_t* xb, size_t num_tokens,
                                                        const void* w, tensor::DType w_dtype,
                                                        size_t k_dim, size_t n_begin, size_t n_end,
                                                        float* out, size_t out_stride) {
  const size_t pairs = Bf16Pairs(k_dim);
  thread_local std::vector<uint32_t> panel;
  thread_local std::vector<uint16_t> row_bf16;
  thread_local std::vector<float> row_f32, scratch;
  panel.resize(kPanelPairs * kWidth);
  row_bf16.resize(2 * kPanelPairs);
  row_f32.resize(2 * kPanelPairs);
  scratch.resize(num_tokens * kWidth);
  const size_t es = tensor::DTypeSize(w_dtype);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (size_t nb = n_begin; nb < n_end; nb += kWidth) {
    const size_t nr = std::min(kWidth, n_end - nb);
    float* dst = nr == kWidth ? out + (nb - n_begin) : scratch.data();
    const size_t dst_stride = nr == kWidth ? out_stride : kWidth;
    for (size_t pb = 0; pb < pairs; pb += kPanelPairs) {
      const size_t pc = std::min(kPanelPairs, pairs - pb);
      const size_t k0 = 2 * pb, kc = std::min(2 * pc, k_dim - k0);
      // Squares of 16 features × 16 pairs whose values all lie in the row go through
      // registers; the rest pair by pair.
      const size_t p_square = kc / 2 / kLanes * kLanes;
      for (size_t g = 0; g < kWidth; g += kLanes) {
        for (size_t p = 0; p < p_square; p += kLanes) {
          __m512 v[kLanes];
          for (size_t i = 0; i < kLanes; ++i) {
            v[i] = g + i < nr ? Bf16Pairs16(wb + ((nb + g + i) * k_dim + k0 + 2 * p) * es, w_dtype)
                              : _mm512_setzero_ps();
          }
          x86::StoreTransposed16(v, reinterpret_cast<float*>(&panel[p * kWidth + g]), kWidth);
        }
      }
      if (p_square < pc) {
        const size_t k_rest = k0 + 2 * p_square, kc_rest = kc - 2 * p_square;
        for (size_t r = 0; r < kWidth; ++r) {
          if (r >= nr) {
            for (size_t p = p_square; p < pc; ++p) panel[p * kWidth + r] = 0;
            continue;
          }
          const uint8_t* row = wb + ((nb + r) * k_dim + k_rest) * es;
          if (w_dtype == tensor::DType::kBF16) {
            std::memcpy(row_bf16.data(), row, kc_rest * 2);  // stored bf16: used as they are
          } else {
            ConvertRowToF32(row, w_dtype, kc_rest, row_f32.data());
            ToBf16(row_f32.data(), kc_rest, row_bf16.data());
          }
          if (kc_rest % 2 != 0) row_bf16[kc_rest] = 0;
          for (size_t p = p_square; p < pc; ++p) {
            std::memcpy(&panel[p * kWidth + r], &row_bf16[2 * (p - p_square)], sizeof(uint32_t));
          }
        }
      }
      PanelTokens<kTokens>(xb + pb, pairs, num_tokens, panel.data(), pc, dst, dst_stride, pb != 0);
    }
    if (nr != kWidth) {
      for (size_t t = 0; t < num_tokens; ++t) {
        std::copy_n(scratch.data() + t * kWidth, nr, out + t * out_stride + (nb - n_begin));
      }
    }
  }
}

#pragma GCC diagnostic pop

__attribute__((target(IRIS_BF16_TARGET))) void PackBf16(const float* x, size_t x_stride,
                                                        size_t num_tokens, size_t k_dim,
                                                        uint32_t* xb) {
  const size_t pairs = Bf16Pairs(k_dim);
  for (size_t t = 0; t < num_tokens; ++t) {
    auto* dst = reinterpret_cast<uint16_t*>(xb + t * pairs);
    ToBf16(x + t * x_stride, k_dim, dst);
    if (k_dim % 2 != 0) dst[k_dim] = 0;
  }
}

}  // namespace

bool Bf16ProductsAvailable() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512bf16");
  return ok;
}

void PackActivationsBf16(const float* x, size_t x_stride, size_t num_tokens, size_t k_dim,
                         uint32_t* xb) {
  if (!Bf16ProductsAvailable()) {
    for (size_t t = 0; t < num_tokens; ++t) {
      auto* dst = reinterpret_cast<uint16_t*>(xb + t * Bf16Pairs(k_dim));
      for (size_t k = 0; k < k_dim; ++k) dst[k] = tensor::F32ToBf16(x[t * x_stride + k]);
      if (k_dim % 2 != 0) dst[k_dim] = 0;
    }
    return;
  }
  PackBf16(x, x_stride, num_tokens, k_dim, xb);
}

void MatMulRowsBf16Packed(const uint32_t* xb, size_t num_tokens, const void* w,
                          tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end,
                          float* out, size_t out_stride) {
  if (num_tokens == 0 || n_begin >= n_end || k_dim == 0) return;
  if (!Bf16ProductsAvailable()) {  // (only tests get here: the engine refuses bf16 first)
    const size_t pairs = Bf16Pairs(k_dim);
    thread_local std::vector<float> x;
    x.resize(num_tokens * k_dim);
    for (size_t t = 0; t < num_tokens; ++t) {
      const auto* src = reinterpret_cast<const uint16_t*>(xb + t * pairs);
      for (size_t k = 0; k < k_dim; ++k) x[t * k_dim + k] = tensor::Bf16ToF32(src[k]);
    }
    MatMulRows(x.data(), k_dim, num_tokens, w, w_dtype, k_dim, n_begin, n_end, out, out_stride);
    return;
  }
  GemmBf16(xb, num_tokens, w, w_dtype, k_dim, n_begin, n_end, out, out_stride);
}

void MatMulRowsBf16(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                    tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end, float* out,
                    size_t out_stride) {
  thread_local std::vector<uint32_t> xb;
  xb.resize(num_tokens * Bf16Pairs(k_dim));
  PackActivationsBf16(x, x_stride, num_tokens, k_dim, xb.data());
  MatMulRowsBf16Packed(xb.data(), num_tokens, w, w_dtype, k_dim, n_begin, n_end, out, out_stride);
}

}  // namespace iris::kernels
