// Highway implementations of kernels.h, compiled once per SIMD target by foreach_target.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "engine/kernels/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace iris::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE float ScalarToF32(float v) { return v; }
HWY_INLINE float ScalarToF32(hwy::bfloat16_t v) {
  uint16_t bits;
  std::memcpy(&bits, &v, 2);
  return tensor::Bf16ToF32(bits);
}
HWY_INLINE float ScalarToF32(hwy::float16_t v) {
  uint16_t bits;
  std::memcpy(&bits, &v, 2);
  return tensor::F16ToF32(bits);
}

HWY_INLINE VF LoadF32(DF df, const float* p) { return hn::LoadU(df, p); }
HWY_INLINE VF LoadF32(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}
HWY_INLINE VF LoadF32(DF df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}

// A kTokens × kRows block of outputs: every weight vector loaded once feeds kTokens FMAs
// and every activation vector kRows FMAs.
template <size_t kTokens, size_t kRows, typename WT>
HWY_INLINE void Tile(const float* HWY_RESTRICT x, size_t x_stride, const WT* HWY_RESTRICT w,
                     size_t k_dim, float* HWY_RESTRICT out, size_t out_stride) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF acc[kTokens][kRows];
  for (size_t t = 0; t < kTokens; ++t)
    for (size_t r = 0; r < kRows; ++r) acc[t][r] = hn::Zero(df);
  size_t k = 0;
  for (; k + lanes <= k_dim; k += lanes) {
    VF wv[kRows];
    for (size_t r = 0; r < kRows; ++r) wv[r] = LoadF32(df, w + r * k_dim + k);
    for (size_t t = 0; t < kTokens; ++t) {
      const VF xv = hn::LoadU(df, x + t * x_stride + k);
      for (size_t r = 0; r < kRows; ++r) acc[t][r] = hn::MulAdd(xv, wv[r], acc[t][r]);
    }
  }
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t r = 0; r < kRows; ++r) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[t][r]));
      for (size_t kk = k; kk < k_dim; ++kk) {
        s += x[t * x_stride + kk] * ScalarToF32(w[r * k_dim + kk]);
      }
      out[t * out_stride + r] = s;
    }
  }
}

template <size_t kTokens, typename WT>
HWY_INLINE void RowsForTokens(const float* x, size_t x_stride, const WT* w, size_t k_dim,
                              size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  size_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) {
    Tile<kTokens, 4>(x, x_stride, w + n * k_dim, k_dim, out + (n - n_begin), out_stride);
  }
  for (; n < n_end; ++n) {
    Tile<kTokens, 1>(x, x_stride, w + n * k_dim, k_dim, out + (n - n_begin), out_stride);
  }
}

template <typename WT>
void TokensOverRows(const float* x, size_t x_stride, size_t num_tokens, const WT* w, size_t k_dim,
                    size_t nb, size_t ne, float* o, size_t out_stride) {
  size_t t = 0;
  for (; t + 4 <= num_tokens; t += 4) {
    RowsForTokens<4>(x + t * x_stride, x_stride, w, k_dim, nb, ne, o + t * out_stride, out_stride);
  }
  switch (num_tokens - t) {
    case 3:
      RowsForTokens<3>(x + t * x_stride, x_stride, w, k_dim, nb, ne, o + t * out_stride, out_stride);
      break;
    case 2:
      RowsForTokens<2>(x + t * x_stride, x_stride, w, k_dim, nb, ne, o + t * out_stride, out_stride);
      break;
    case 1:
      RowsForTokens<1>(x + t * x_stride, x_stride, w, k_dim, nb, ne, o + t * out_stride, out_stride);
      break;
    default: break;
  }
}

template <typename WT>
void ConvertT(const WT* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst);

template <typename WT>
void MatMulRowsT(const float* x, size_t x_stride, size_t num_tokens, const WT* w, size_t k_dim,
                 size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  // Row blocks outside, tokens inside: a block of weight rows (about 64 KiB) stays in cache
  // while every token passes over it. With many tokens a 16-bit block is widened to f32
  // once, so the inner loop is pure FMA.
  size_t rows = (64 * 1024 / sizeof(float)) / (k_dim ? k_dim : 1);
  rows = rows < 4 ? 4 : (rows > 64 ? 64 : rows & ~size_t{3});
  constexpr bool kWiden = !std::is_same_v<WT, float>;
  const bool widen = kWiden && num_tokens >= 8;
  thread_local std::vector<float> block;
  if (widen && block.size() < rows * k_dim) block.resize(rows * k_dim);
  for (size_t nb = n_begin; nb < n_end; nb += rows) {
    const size_t ne = nb + rows < n_end ? nb + rows : n_end;
    float* o = out + (nb - n_begin);
    if (widen) {
      ConvertT(w + nb * k_dim, (ne - nb) * k_dim, block.data());
      TokensOverRows(x, x_stride, num_tokens, block.data(), k_dim, 0, ne - nb, o, out_stride);
    } else {
      TokensOverRows(x, x_stride, num_tokens, w, k_dim, nb, ne, o, out_stride);
    }
  }
}

void MatMulRowsF32(const float* x, size_t xs, size_t nt, const void* w, size_t k, size_t nb,
                   size_t ne, float* out, size_t os) {
  MatMulRowsT(x, xs, nt, static_cast<const float*>(w), k, nb, ne, out, os);
}
void MatMulRowsBF16(const float* x, size_t xs, size_t nt, const void* w, size_t k, size_t nb,
                    size_t ne, float* out, size_t os) {
  MatMulRowsT(x, xs, nt, static_cast<const hwy::bfloat16_t*>(w), k, nb, ne, out, os);
}
void MatMulRowsF16(const float* x, size_t xs, size_t nt, const void* w, size_t k, size_t nb,
                   size_t ne, float* out, size_t os) {
  MatMulRowsT(x, xs, nt, static_cast<const hwy::float16_t*>(w), k, nb, ne, out, os);
}

float DotF32Impl(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF s0 = hn::Zero(df), s1 = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + lanes), hn::LoadU(df, b + i + lanes), s1);
  }
  for (; i + lanes <= n; i += lanes) s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void AxpyF32Impl(float alpha, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t n) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const VF va = hn::Set(df, alpha);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

template <typename WT>
void ConvertT(const WT* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(LoadF32(df, src + i), df, dst + i);
  for (; i < n; ++i) dst[i] = ScalarToF32(src[i]);
}
void ConvertBF16(const void* src, size_t n, float* dst) {
  ConvertT(static_cast<const hwy::bfloat16_t*>(src), n, dst);
}
void ConvertF16(const void* src, size_t n, float* dst) {
  ConvertT(static_cast<const hwy::float16_t*>(src), n, dst);
}

}  // namespace HWY_NAMESPACE
}  // namespace iris::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cpuid.h>

namespace iris::kernels {

HWY_EXPORT(MatMulRowsF32);
HWY_EXPORT(MatMulRowsBF16);
HWY_EXPORT(MatMulRowsF16);
HWY_EXPORT(DotF32Impl);
HWY_EXPORT(AxpyF32Impl);
HWY_EXPORT(ConvertBF16);
HWY_EXPORT(ConvertF16);

void MatMulRows(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end, float* out,
                size_t out_stride) {
  switch (w_dtype) {
    case tensor::DType::kBF16:
      HWY_DYNAMIC_DISPATCH(MatMulRowsBF16)(x, x_stride, num_tokens, w, k_dim, n_begin, n_end,
                                           out, out_stride);
      return;
    case tensor::DType::kF16:
      HWY_DYNAMIC_DISPATCH(MatMulRowsF16)(x, x_stride, num_tokens, w, k_dim, n_begin, n_end,
                                          out, out_stride);
      return;
    default:
      HWY_DYNAMIC_DISPATCH(MatMulRowsF32)(x, x_stride, num_tokens, w, k_dim, n_begin, n_end,
                                          out, out_stride);
      return;
  }
}

float DotF32(const float* a, const float* b, size_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32Impl)(a, b, n);
}

void AxpyF32(float alpha, const float* x, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(AxpyF32Impl)(alpha, x, y, n);
}

void ConvertRowToF32(const void* src, tensor::DType dtype, size_t n, float* dst) {
  switch (dtype) {
    case tensor::DType::kBF16: HWY_DYNAMIC_DISPATCH(ConvertBF16)(src, n, dst); return;
    case tensor::DType::kF16: HWY_DYNAMIC_DISPATCH(ConvertF16)(src, n, dst); return;
    default: std::memcpy(dst, src, n * sizeof(float)); return;
  }
}

namespace {
int64_t BestOf(int64_t targets) {
  // Highway's target bits: lower bit = better target.
  return targets & ~(targets - 1);
}
}  // namespace

std::string ActiveTarget() {
  return hwy::TargetName(BestOf(hwy::SupportedTargets() & HWY_TARGETS));
}

std::vector<std::string> AvailableTargets() {
  std::vector<std::string> names;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) names.push_back(hwy::TargetName(t));
  return names;
}

bool ForceTarget(const std::string& name) {
  hwy::SetSupportedTargetsForTest(0);
  if (name.empty()) {
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    return true;
  }
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(t)) {
      hwy::SetSupportedTargetsForTest(t);
      hwy::GetChosenTarget().Update(hwy::SupportedTargets());
      return true;
    }
  }
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return false;
}

std::string CpuFeatures() {
  unsigned a, b, c, d;
  std::string f;
  auto add = [&](bool has, const char* name) {
    if (has) f += f.empty() ? name : std::string(" ") + name;
  };
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    add(c & bit_FMA, "fma");
    add(c & bit_F16C, "f16c");
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    add(b & bit_AVX2, "avx2");
    add(b & bit_AVX512F, "avx512f");
    add(b & bit_AVX512BW, "avx512bw");
    add(b & bit_AVX512VL, "avx512vl");
    add(c & bit_AVX512VNNI, "avx512vnni");
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) add(a & bit_AVX512BF16, "avx512bf16");
  return f;
}

}  // namespace iris::kernels
#endif  // HWY_ONCE
