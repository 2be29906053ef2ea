// Highway implementations of kernels.h, compiled once per SIMD target by foreach_target.

// foreach_target must come first: it re-includes this file once per target.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/cache_control.h>
#include <hwy/contrib/math/math-inl.h>
// clang-format on

#include "engine/kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "engine/kernels/tile_shape.h"
#include "engine/kernels/transpose_x86.h"
#include "engine/tensor/quant.h"

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

// Makes the compiler hold v in a register: an activation vector feeding several FMAs is then
// loaded once, not folded into each FMA as a memory operand (one load per FMA made the
// decoding batch's tiles wait on loads rather than multiplies).
HWY_INLINE void KeepInRegister(VF& v) {
#if defined(__GNUC__) && HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3  // measured there only
  asm("" : "+v"(v.raw));
#else
  (void)v;
#endif
}

// Sums of lanes of kN vectors at once (kN = the number of lanes): lane j of the result is
// the sum of the lanes of v[j]. A pairwise tree: each level adds the even lanes of two
// vectors to their odd lanes, halving the vectors and the partial sums per input, so kN
// sums cost kN - 1 additions of whole vectors instead of kN separate reductions.
#if HWY_TARGET != HWY_SCALAR
template <size_t kN>
HWY_INLINE VF SumsOfLanes(DF df, VF* HWY_RESTRICT v) {
  for (size_t n = kN; n > 1; n /= 2) {
    for (size_t i = 0; i < n / 2; ++i) {
      v[i] = hn::Add(hn::ConcatEven(df, v[2 * i + 1], v[2 * i]),
                     hn::ConcatOdd(df, v[2 * i + 1], v[2 * i]));
    }
  }
  return v[0];
}
#else
template <size_t kN>
HWY_INLINE VF SumsOfLanes(DF, VF* HWY_RESTRICT v) {
  return v[0];  // one lane
}
#endif

// sums[i] = the sum of the lanes of v[i], i < n, with the bits of GetLane(SumOfLanes(v[i]))
// (on AVX-512, x86::LaneSums16: 16 reductions at once).
template <size_t n>
HWY_INLINE void TileSums(VF* HWY_RESTRICT v, float* HWY_RESTRICT sums) {
#if HWY_TARGET <= HWY_AVX3
  __m512 raw[n];
  for (size_t i = 0; i < n; ++i) raw[i] = v[i].raw;
  x86::LaneSums16(raw, n, sums);
#else
  const DF df;
  for (size_t i = 0; i < n; ++i) sums[i] = hn::GetLane(hn::SumOfLanes(df, v[i]));
#endif
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
  // Rows of a tile are adjacent in memory, so the next tile starts kRows rows ahead: prefetch
  // it while this one streams.
  const size_t line_step = 64 / sizeof(WT);
  for (; k + lanes <= k_dim; k += lanes) {
    if (k % line_step < lanes) {
      for (size_t r = 0; r < kRows; ++r) hwy::Prefetch(w + (kRows + r) * k_dim + k);
    }
    VF wv[kRows];
    for (size_t r = 0; r < kRows; ++r) wv[r] = LoadF32(df, w + r * k_dim + k);
    for (size_t t = 0; t < kTokens; ++t) {
      VF xv = hn::LoadU(df, x + t * x_stride + k);
      if constexpr (kRows > 1) KeepInRegister(xv);
      for (size_t r = 0; r < kRows; ++r) acc[t][r] = hn::MulAdd(xv, wv[r], acc[t][r]);
    }
  }
  float sums[kTokens * kRows];
  TileSums<kTokens * kRows>(&acc[0][0], sums);
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t r = 0; r < kRows; ++r) {
      float s = sums[t * kRows + r];
      for (size_t kk = k; kk < k_dim; ++kk) {
        s += x[t * x_stride + kk] * ScalarToF32(w[r * k_dim + kk]);
      }
      out[t * out_stride + r] = s;
    }
  }
}

// Rows of a tile for kTokens tokens: TileRows32 with AVX-512's 32 registers; 4 rows with the
// 16 of narrower x86 targets (8 for one token, bound by reading the weights).
template <size_t kTokens>
constexpr size_t TileRows() {
#if HWY_TARGET <= HWY_AVX3
  return TileRows32(kTokens);
#else
  return kTokens == 1 ? 8 : 4;
#endif
}

template <size_t kTokens, typename WT>
HWY_INLINE void RowsForTokens(const float* x, size_t x_stride, const WT* w, size_t k_dim,
                              size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  constexpr size_t kRows = TileRows<kTokens>();
  size_t n = n_begin;
  for (; n + kRows <= n_end; n += kRows) {
    Tile<kTokens, kRows>(x, x_stride, w + n * k_dim, k_dim, out + (n - n_begin), out_stride);
  }
  // The rows left at the end of a range: half tiles, then one row at a time.
  constexpr size_t kHalf = kRows / 2;
  if constexpr (kHalf > 1) {
    for (; n + kHalf <= n_end; n += kHalf) {
      Tile<kTokens, kHalf>(x, x_stride, w + n * k_dim, k_dim, out + (n - n_begin), out_stride);
    }
  }
  for (; n < n_end; ++n) {
    Tile<kTokens, 1>(x, x_stride, w + n * k_dim, k_dim, out + (n - n_begin), out_stride);
  }
}

// Every token's numbers are those it gets alone: a tile's shape changes only which sums are
// computed together, not how any of them is summed.
template <typename WT>
void TokensOverRows(const float* x, size_t x_stride, size_t num_tokens, const WT* w, size_t k_dim,
                    size_t nb, size_t ne, float* o, size_t out_stride) {
#if HWY_TARGET <= HWY_AVX3
  // Groups of 8, then the rest (1 to 7) as one group: a decoding batch of 5 to 7 passes over
  // the weights once, as 8 do, not as 4 and then the rest.
  constexpr size_t kGroup = 8;
#else
  constexpr size_t kGroup = 4;
#endif
  size_t t = 0;
  for (; t + kGroup <= num_tokens; t += kGroup) {
    RowsForTokens<kGroup>(x + t * x_stride, x_stride, w, k_dim, nb, ne, o + t * out_stride,
                          out_stride);
  }
  WithStaticCount<kGroup - 1>(num_tokens - t, [&](auto tokens) {
    RowsForTokens<decltype(tokens)::value>(x + t * x_stride, x_stride, w, k_dim, nb, ne,
                                           o + t * out_stride, out_stride);
  });
}

template <typename WT>
void ConvertT(const WT* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst);

// ---- Prefill GEMM: packed weight panels and a register-blocked outer-product kernel ----
//
// out[t, n] += Σ_k x[t, k] · panel[k, n] for kTok tokens × kPanelVectors vectors of features.
// The panel holds kPanelVectors vectors of weight rows, interleaved per k and widened to
// f32, so each k step is kPanelVectors loads, kTok broadcasts and kTok·kPanelVectors FMAs;
// no horizontal sums. AVX-512 has 32 registers: 8 × 3 accumulators; others 16: 4 × 2.
// (Every AVX-512 target, newer ones included: 3 × 16 features keeps a panel a divisor of
// kMatMulRowAlign.)
#if HWY_TARGET <= HWY_AVX3
constexpr size_t kPanelVectors = 3;
constexpr size_t kPanelTokens = 8;
#else
constexpr size_t kPanelVectors = 2;
constexpr size_t kPanelTokens = 4;
#endif

template <size_t kTok>
HWY_INLINE void PanelKernel(const float* HWY_RESTRICT x, size_t x_stride,
                            const float* HWY_RESTRICT panel, size_t kc, float* HWY_RESTRICT out,
                            size_t out_stride, bool accumulate) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  constexpr size_t kV = kPanelVectors;
  VF acc[kTok][kV];
  for (size_t t = 0; t < kTok; ++t) {
    for (size_t v = 0; v < kV; ++v) {
      acc[t][v] = accumulate ? hn::LoadU(df, out + t * out_stride + v * lanes) : hn::Zero(df);
    }
  }
  for (size_t k = 0; k < kc; ++k) {
    VF w[kV];
    for (size_t v = 0; v < kV; ++v) w[v] = hn::LoadU(df, panel + (kV * k + v) * lanes);
    for (size_t t = 0; t < kTok; ++t) {
      const VF xv = hn::Set(df, x[t * x_stride + k]);
      for (size_t v = 0; v < kV; ++v) acc[t][v] = hn::MulAdd(xv, w[v], acc[t][v]);
    }
  }
  for (size_t t = 0; t < kTok; ++t) {
    for (size_t v = 0; v < kV; ++v) hn::StoreU(acc[t][v], df, out + t * out_stride + v * lanes);
  }
}

template <size_t kTok>
HWY_INLINE void PanelTokens(const float* x, size_t x_stride, size_t num_tokens, const float* panel,
                            size_t kc, float* out, size_t out_stride, bool accumulate) {
  size_t t = 0;
  for (; t + kTok <= num_tokens; t += kTok) {
    PanelKernel<kTok>(x + t * x_stride, x_stride, panel, kc, out + t * out_stride, out_stride,
                      accumulate);
  }
  if constexpr (kTok > 1) {
    if (t < num_tokens) {
      PanelTokens<kTok / 2>(x + t * x_stride, x_stride, num_tokens - t, panel, kc,
                            out + t * out_stride, out_stride, accumulate);
    }
  }
}

#if HWY_TARGET <= HWY_AVX3 || HWY_TARGET == HWY_AVX2
// dst[j * stride + i] = lane j of r[i]: a square of lanes × lanes values.
HWY_INLINE void StoreTransposed(const VF* r, float* HWY_RESTRICT dst, size_t stride) {
#if HWY_TARGET <= HWY_AVX3
  __m512 raw[16];
  for (int i = 0; i < 16; ++i) raw[i] = r[i].raw;
  x86::StoreTransposed16(raw, dst, stride);
#else
  __m256 raw[8];
  for (int i = 0; i < 8; ++i) raw[i] = r[i].raw;
  x86::StoreTransposed8(raw, dst, stride);
#endif
}
#endif

// panel[k * width + r] = f32(rows[r * k_dim + k]) for r < nr, k < kc; rows [nr, width) zero.
// Where the target has StoreTransposed, whole squares of lanes × lanes values go through
// registers; the rest (and other targets) row by row: each row widened with vector
// conversions (a scalar F16 conversion per weight made F16 prompts 2x slower than F32 ones),
// then scattered into the panel. The panel's values are the same either way.
template <typename WT>
HWY_INLINE void PackPanel(const WT* HWY_RESTRICT rows, size_t k_dim, size_t nr, size_t width,
                          size_t kc, float* HWY_RESTRICT widened, float* HWY_RESTRICT panel) {
  size_t k_done = 0;
#if HWY_TARGET <= HWY_AVX3 || HWY_TARGET == HWY_AVX2
  const DF df;
  constexpr size_t kL = HWY_TARGET <= HWY_AVX3 ? 16 : 8;
  static_assert(hn::MaxLanes(DF()) == kL, "squares of the vector width");
  HWY_DASSERT(width % kL == 0);
  k_done = kc - kc % kL;
  for (size_t g = 0; g < width; g += kL) {
    for (size_t k = 0; k < k_done; k += kL) {
      VF v[kL];
      for (size_t i = 0; i < kL; ++i) {
        v[i] = g + i < nr ? LoadF32(df, rows + (g + i) * k_dim + k) : hn::Zero(df);
      }
      StoreTransposed(v, panel + k * width + g, width);
    }
  }
  if (k_done == kc) return;
#endif
  for (size_t r = 0; r < width; ++r) {
    if (r < nr) {
      ConvertT(rows + r * k_dim + k_done, kc - k_done, widened);
      for (size_t k = k_done; k < kc; ++k) panel[k * width + r] = widened[k - k_done];
    } else {
      for (size_t k = k_done; k < kc; ++k) panel[k * width + r] = 0.0f;
    }
  }
}

template <typename WT>
void GemmPacked(const float* x, size_t x_stride, size_t num_tokens, const WT* w, size_t k_dim,
                size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const DF df;
  const size_t width = kPanelVectors * hn::Lanes(df);  // features per panel
  HWY_DASSERT(kMatMulRowAlign % width == 0);
  constexpr size_t kKc = 256;  // k per panel: a panel stays in L1
  thread_local std::vector<float> panel, scratch, widened;
  panel.resize(kKc * width);
  scratch.resize(num_tokens * width);
  widened.resize(kKc);
  for (size_t nb = n_begin; nb < n_end; nb += width) {
    const size_t nr = nb + width <= n_end ? width : n_end - nb;
    // A partial panel computes into scratch (padding features are zero weights).
    float* dst = nr == width ? out + (nb - n_begin) : scratch.data();
    const size_t dst_stride = nr == width ? out_stride : width;
    for (size_t kb = 0; kb < k_dim; kb += kKc) {
      const size_t kc = kb + kKc <= k_dim ? kKc : k_dim - kb;
      PackPanel(w + nb * k_dim + kb, k_dim, nr, width, kc, widened.data(), panel.data());
      // Weights come from DRAM once per prefill: ask for the next block of each row (or of
      // the next panel) now, so it arrives while the tokens pass over this panel.
      for (size_t r = 0; r < nr; ++r) {
        const WT* next =
            kb + kKc < k_dim ? w + (nb + r) * k_dim + kb + kKc : w + (nb + width + r) * k_dim;
        for (size_t k = 0; k < kKc; k += 64 / sizeof(WT)) hwy::Prefetch(next + k);
      }
      PanelTokens<kPanelTokens>(x + kb, x_stride, num_tokens, panel.data(), kc, dst, dst_stride,
                                kb != 0);
    }
    if (nr != width) {
      for (size_t t = 0; t < num_tokens; ++t) {
        for (size_t r = 0; r < nr; ++r)
          out[t * out_stride + (nb - n_begin) + r] = scratch[t * width + r];
      }
    }
  }
}

template <typename WT>
void MatMulRowsT(const float* x, size_t x_stride, size_t num_tokens, const WT* w, size_t k_dim,
                 size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  if (num_tokens >= kGemmMinTokens) {
    GemmPacked(x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
    return;
  }
  // Few tokens (decode): dot-product tiles straight over the weight rows.
  TokensOverRows(x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
}

// ---- Weights packed at load (tensor::DType::kBF16p, kF16p) ----
//
// GemmPacked's products over panels laid out once, at load: a group of 16 rows holds 64 bytes
// for each pair of columns (2p, 2p + 1). kBF16p: one 32-bit word per row, column 2p's value in
// its low half; a vector of features at pair p is one load, widened exactly to two f32
// vectors (the word shifted up 16 bits, and its high half). kF16p: column 2p's 16 values,
// then column 2p + 1's; each a load converted to f32. Every feature's sum takes k in order
// with MulAdd, as GemmPacked's panels take it, so the numbers are GemmPacked's bit for bit at
// any number of tokens, and a token's do not depend on the tokens beside it.
inline constexpr size_t kHalfPanelPairBytes = 4 * tensor::kHalfPanelRows;
// Pairs of a block of the weights (GemmPacked's 256 columns: a block of tokens' activations and
// the block's weights stay in L1).
inline constexpr size_t kHalfBlockPairs = 128;

// A vector of features' two columns of a pair, from `at` (the pair's bytes, offset to the
// vector's first row).
template <bool kF16>
HWY_INLINE void LoadPair(const uint8_t* HWY_RESTRICT at, VF& even, VF& odd) {
  const DF df;
  if constexpr (kF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto* h = reinterpret_cast<const hwy::float16_t*>(at);
    even = hn::PromoteTo(df, hn::LoadU(dh, h));
    odd = hn::PromoteTo(df, hn::LoadU(dh, h + tensor::kHalfPanelRows));
  } else {
    const hn::RebindToUnsigned<DF> du;
    const auto words = hn::LoadU(du, reinterpret_cast<const uint32_t*>(at));
    even = hn::BitCast(df, hn::ShiftLeft<16>(words));
    odd = hn::BitCast(df, hn::And(words, hn::Set(du, 0xFFFF0000u)));
  }
}

// kAhead: what the pass requests as it reads a pair (tile_shape.h).
template <size_t kTok, size_t kV, bool kF16, PanelAhead kAhead>
HWY_INLINE void PackedHalfKernel(const float* HWY_RESTRICT x, size_t x_stride,
                                 const uint8_t* const* base, size_t p_begin, size_t p_end,
                                 size_t k_dim, float* HWY_RESTRICT out, size_t out_stride,
                                 bool accumulate) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF acc[kTok][kV];
  for (size_t t = 0; t < kTok; ++t) {
    for (size_t v = 0; v < kV; ++v) {
      acc[t][v] = accumulate ? hn::LoadU(df, out + t * out_stride + v * lanes) : hn::Zero(df);
    }
  }
  for (size_t p = p_begin; p < p_end; ++p) {
    VF even[kV], odd[kV];
    for (size_t v = 0; v < kV; ++v) {
      if constexpr (kAhead == PanelAhead::kPairsAhead) {
        hwy::Prefetch(base[v] + (p + kHalfPanelAheadPairs) * kHalfPanelPairBytes);
      } else if constexpr (kAhead == PanelAhead::kNextBlock) {
        __builtin_prefetch(base[v] + (p + kHalfBlockPairs) * kHalfPanelPairBytes, 0, 2);
      }
      LoadPair<kF16>(base[v] + p * kHalfPanelPairBytes, even[v], odd[v]);
    }
    const size_t k = 2 * p;
    if (k + 1 < k_dim) {
      for (size_t t = 0; t < kTok; ++t) {
        const VF xe = hn::Set(df, x[t * x_stride + k]);
        for (size_t v = 0; v < kV; ++v) acc[t][v] = hn::MulAdd(xe, even[v], acc[t][v]);
        const VF xo = hn::Set(df, x[t * x_stride + k + 1]);
        for (size_t v = 0; v < kV; ++v) acc[t][v] = hn::MulAdd(xo, odd[v], acc[t][v]);
      }
    } else {  // the last column of an odd row
      for (size_t t = 0; t < kTok; ++t) {
        const VF xe = hn::Set(df, x[t * x_stride + k]);
        for (size_t v = 0; v < kV; ++v) acc[t][v] = hn::MulAdd(xe, even[v], acc[t][v]);
      }
    }
  }
  for (size_t t = 0; t < kTok; ++t) {
    for (size_t v = 0; v < kV; ++v) hn::StoreU(acc[t][v], df, out + t * out_stride + v * lanes);
  }
}

// Passes `pass`, pass + 1, … over the block, kTok tokens each (fewer at the end).
template <size_t kTok, size_t kV, bool kF16>
HWY_INLINE void PackedHalfTokens(const float* x, size_t x_stride, size_t num_tokens,
                                 const uint8_t* const* base, size_t p_begin, size_t p_end,
                                 size_t k_dim, float* out, size_t out_stride, bool accumulate,
                                 size_t pass = 0) {
  size_t t = 0;
  for (; t + kTok <= num_tokens; t += kTok, ++pass) {
    auto run = [&](auto ahead) HWY_ATTR {
      PackedHalfKernel<kTok, kV, kF16, decltype(ahead)::value>(
          x + t * x_stride, x_stride, base, p_begin, p_end, k_dim, out + t * out_stride, out_stride,
          accumulate);
    };
    WithPanelAhead(AheadOfPass(pass), run);
  }
  if constexpr (kTok > 1) {
    if (t < num_tokens) {
      PackedHalfTokens<kTok / 2, kV, kF16>(x + t * x_stride, x_stride, num_tokens - t, base,
                                           p_begin, p_end, k_dim, out + t * out_stride, out_stride,
                                           accumulate, pass);
    }
  }
}

// Rows [n_begin, n_end) (whole groups of 16) of a kBF16p or kF16p matrix, blocks of
// kPanelVectors vectors of features (the rows left at a range's end: fewer) and of
// kHalfBlockPairs pairs.
template <bool kF16>
void GemmPackedHalves(const float* x, size_t x_stride, size_t num_tokens, const uint32_t* w,
                      size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  static_assert(tensor::kHalfPanelRows % hn::MaxLanes(DF()) == 0, "vectors within a group");
  const size_t pairs = (k_dim + 1) / 2;
  const size_t group_words = tensor::HalfPanelPairs(k_dim) * tensor::kHalfPanelRows;
  for (size_t nb = n_begin; nb < n_end; nb += kPanelVectors * lanes) {
    const size_t nv = std::min(kPanelVectors, (n_end - nb) / lanes);
    const uint8_t* base[kPanelVectors];  // each vector's first row in its group, at pair 0
    for (size_t v = 0; v < nv; ++v) {
      const size_t f = nb + v * lanes;
      base[v] = reinterpret_cast<const uint8_t*>(w + f / tensor::kHalfPanelRows * group_words) +
                (kF16 ? 2 : 4) * (f % tensor::kHalfPanelRows);
    }
    float* o = out + (nb - n_begin);
    for (size_t pb = 0; pb < pairs; pb += kHalfBlockPairs) {
      const size_t pe = std::min(pairs, pb + kHalfBlockPairs);
      const bool accumulate = pb != 0;
      if (nv == kPanelVectors) {
        PackedHalfTokens<kPanelTokens, kPanelVectors, kF16>(x, x_stride, num_tokens, base, pb, pe,
                                                            k_dim, o, out_stride, accumulate);
      } else if constexpr (kPanelVectors > 2) {
        if (nv == 2) {
          PackedHalfTokens<kPanelTokens, 2, kF16>(x, x_stride, num_tokens, base, pb, pe, k_dim, o,
                                                  out_stride, accumulate);
        } else {
          PackedHalfTokens<kPanelTokens, 1, kF16>(x, x_stride, num_tokens, base, pb, pe, k_dim, o,
                                                  out_stride, accumulate);
        }
      } else {
        PackedHalfTokens<kPanelTokens, 1, kF16>(x, x_stride, num_tokens, base, pb, pe, k_dim, o,
                                                out_stride, accumulate);
      }
    }
  }
}

// ---- Attention for one head ----

// p[0, n) ← softmax(p[0, n)); p[n, n_padded) ← 0. Returns nothing; f32 throughout.
HWY_INLINE void SoftmaxPadded(float* HWY_RESTRICT p, size_t n, size_t n_padded) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  for (size_t j = n; j < n_padded; ++j) p[j] = -INFINITY;
  VF vmax = hn::Set(df, -INFINITY);
  for (size_t j = 0; j < n_padded; j += lanes) vmax = hn::Max(vmax, hn::LoadU(df, p + j));
  const VF vm = hn::MaxOfLanes(df, vmax);
  VF vsum = hn::Zero(df);
  for (size_t j = 0; j < n_padded; j += lanes) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, p + j), vm));
    const VF z = hn::IfThenZeroElse(
        hn::Ge(hn::Iota(df, static_cast<float>(j)), hn::Set(df, static_cast<float>(n))), e);
    hn::StoreU(z, df, p + j);
    vsum = hn::Add(vsum, z);
  }
  const VF inv = hn::Set(df, 1.0f / hn::GetLane(hn::SumOfLanes(df, vsum)));
  for (size_t j = 0; j < n_padded; j += lanes)
    hn::StoreU(hn::Mul(hn::LoadU(df, p + j), inv), df, p + j);
}

// out[d] = Σ_j p[j] · v[j·v_stride + offset + d] for d < dims.
HWY_INLINE void WeightedSum(const float* HWY_RESTRICT p, size_t n, const float* HWY_RESTRICT v,
                            size_t dims, float* HWY_RESTRICT out, size_t v_stride,
                            size_t offset = 0) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  v += offset;
  size_t d = 0;
  for (; d + lanes <= dims; d += lanes) {
    VF a0 = hn::Zero(df);
    for (size_t j = 0; j < n; ++j)
      a0 = hn::MulAdd(hn::Set(df, p[j]), hn::LoadU(df, v + j * v_stride + d), a0);
    hn::StoreU(a0, df, out + d);
  }
  for (; d < dims; ++d) {
    float a = 0;
    for (size_t j = 0; j < n; ++j) a += p[j] * v[j * v_stride + d];
    out[d] = a;
  }
}

constexpr size_t kKeyPanel = AttentionMaxLanes();

// Scores of kQ queries (rows q[i * q_stride]) against keys [c, c + kV·lanes) of the
// packed keys, into p[i * p_stride + c ...]: each key vector loaded once feeds kQ FMAs.
template <size_t kQ, size_t kV>
HWY_INLINE void ScoreBlock(const float* HWY_RESTRICT q, size_t q_stride,
                           const float* HWY_RESTRICT kt, size_t c, size_t head_dim, VF vscale,
                           float* HWY_RESTRICT p, size_t p_stride) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF acc[kQ][kV];
  for (size_t i = 0; i < kQ; ++i)
    for (size_t v = 0; v < kV; ++v) acc[i][v] = hn::Zero(df);
  // Keys are packed in panels of kKeyPanel: key j, dim d at
  // (j / kKeyPanel)·head_dim·kKeyPanel + d·kKeyPanel + j % kKeyPanel, so this walk is
  // sequential.
  const float* base[kV];
  for (size_t v = 0; v < kV; ++v) {
    const size_t key = c + v * lanes;
    base[v] = kt + (key / kKeyPanel) * head_dim * kKeyPanel + key % kKeyPanel;
  }
  for (size_t d = 0; d < head_dim; ++d) {
    VF kv[kV];
    for (size_t v = 0; v < kV; ++v) kv[v] = hn::LoadU(df, base[v] + d * kKeyPanel);
    for (size_t i = 0; i < kQ; ++i) {
      const VF qd = hn::Set(df, q[i * q_stride + d]);
      for (size_t v = 0; v < kV; ++v) acc[i][v] = hn::MulAdd(qd, kv[v], acc[i][v]);
    }
  }
  for (size_t i = 0; i < kQ; ++i)
    for (size_t v = 0; v < kV; ++v)
      hn::StoreU(hn::Mul(acc[i][v], vscale), df, p + i * p_stride + c + v * lanes);
}

// out[i][d] = Σ_j p[i][j] · v[j][d] for kQ queries over keys [0, n): each value vector
// loaded once feeds kQ FMAs.
template <size_t kQ>
HWY_INLINE void WeightedSumBlock(const float* HWY_RESTRICT p, size_t p_stride, size_t n,
                                 const float* HWY_RESTRICT v, size_t v_stride, size_t head_dim,
                                 float* HWY_RESTRICT out, size_t out_stride) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  constexpr size_t kD = kQ >= 8 ? 2 : 4;  // value vectors per pass: at most 16 accumulators
  size_t d = 0;
  for (; d + kD * lanes <= head_dim; d += kD * lanes) {
    VF acc[kQ][kD];
    for (size_t i = 0; i < kQ; ++i)
      for (size_t e = 0; e < kD; ++e) acc[i][e] = hn::Zero(df);
    for (size_t j = 0; j < n; ++j) {
      VF vv[kD];
      for (size_t e = 0; e < kD; ++e) vv[e] = hn::LoadU(df, v + j * v_stride + d + e * lanes);
      for (size_t i = 0; i < kQ; ++i) {
        const VF pj = hn::Set(df, p[i * p_stride + j]);
        for (size_t e = 0; e < kD; ++e) acc[i][e] = hn::MulAdd(pj, vv[e], acc[i][e]);
      }
    }
    for (size_t i = 0; i < kQ; ++i)
      for (size_t e = 0; e < kD; ++e)
        hn::StoreU(acc[i][e], df, out + i * out_stride + d + e * lanes);
  }
  for (size_t i = 0; i < kQ; ++i) {
    WeightedSum(p + i * p_stride, n, v, head_dim - d, out + i * out_stride + d, v_stride, d);
  }
}

void AttentionHeadImpl(const float* HWY_RESTRICT q, size_t q_stride, size_t num_q,
                       const float* HWY_RESTRICT kt, size_t kt_stride, const float* HWY_RESTRICT v,
                       size_t v_stride, size_t num_keys, size_t head_dim, float scale,
                       size_t causal_base, float* HWY_RESTRICT scratch, float* HWY_RESTRICT out,
                       size_t out_stride) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const VF vscale = hn::Set(df, scale);
  constexpr size_t kQ = AttentionScratchRows();
  auto keys_for = [&](size_t i) {
    return causal_base == SIZE_MAX
               ? num_keys
               : (causal_base + i + 1 < num_keys ? causal_base + i + 1 : num_keys);
  };
  size_t i0 = 0;
  for (; i0 + kQ <= num_q; i0 += kQ) {
    // Every query of the group is scored over the keys the last one sees; softmax then
    // zeroes each query's keys beyond its own causal limit.
    const size_t n_max = keys_for(i0 + kQ - 1);
    const size_t padded = (n_max + lanes - 1) / lanes * lanes;
    size_t c = 0;
    for (; c + 2 * lanes <= padded; c += 2 * lanes) {
      ScoreBlock<kQ, 2>(q + i0 * q_stride, q_stride, kt, c, head_dim, vscale, scratch, kt_stride);
    }
    for (; c < padded; c += lanes) {
      ScoreBlock<kQ, 1>(q + i0 * q_stride, q_stride, kt, c, head_dim, vscale, scratch, kt_stride);
    }
    for (size_t i = 0; i < kQ; ++i)
      SoftmaxPadded(scratch + i * kt_stride, keys_for(i0 + i), padded);
    WeightedSumBlock<kQ>(scratch, kt_stride, n_max, v, v_stride, head_dim, out + i0 * out_stride,
                         out_stride);
  }
  for (; i0 < num_q; ++i0) {
    const size_t n = keys_for(i0);
    const size_t padded = (n + lanes - 1) / lanes * lanes;
    for (size_t c = 0; c < padded; c += lanes) {
      ScoreBlock<1, 1>(q + i0 * q_stride, q_stride, kt, c, head_dim, vscale, scratch, kt_stride);
    }
    SoftmaxPadded(scratch, n, padded);
    WeightedSumBlock<1>(scratch, kt_stride, n, v, v_stride, head_dim, out + i0 * out_stride,
                        out_stride);
  }
}

// Value vectors a pass of WeightedSumQueries keeps per query: kQ·kD accumulators, kD value
// vectors and a broadcast fit the registers (32 on AVX-512, 16 elsewhere).
template <size_t kQ>
constexpr size_t DecodeValueVectors() {
#if HWY_TARGET <= HWY_AVX3
  return 4;
#else
  return kQ <= 2 ? 4 : 2;
#endif
}

// out_i[d] = Σ_j p_i[j] · v_j[d] for kQ queries (p rows p_stride apart), key by key in order
// for every d (each query's sums do not depend on kQ), values in blocks as the keys.
template <size_t kQ, typename T>
HWY_INLINE void WeightedSumQueries(const float* HWY_RESTRICT p, size_t p_stride,
                                   const void* const* v_blocks, size_t block_keys, size_t stride,
                                   size_t num_keys, size_t head_dim, float* HWY_RESTRICT out,
                                   size_t out_stride) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  auto pass = [&](size_t d, auto vectors) HWY_ATTR {  // dims [d, d + kD·lanes)
    constexpr size_t kD = decltype(vectors)::value;
    VF acc[kQ][kD];
    for (size_t i = 0; i < kQ; ++i)
      for (size_t e = 0; e < kD; ++e) acc[i][e] = hn::Zero(df);
    for (size_t j0 = 0, b = 0; j0 < num_keys; j0 += block_keys, ++b) {
      const size_t rows = std::min(block_keys, num_keys - j0);
      const T* vb = static_cast<const T*>(v_blocks[b]) + d;
      for (size_t r = 0; r < rows; ++r) {
        VF vv[kD];
        for (size_t e = 0; e < kD; ++e) {
          vv[e] = LoadF32(df, vb + r * stride + e * lanes);
          if constexpr (kQ > 1) KeepInRegister(vv[e]);  // one load for kQ queries
        }
        for (size_t i = 0; i < kQ; ++i) {
          const VF pj = hn::Set(df, p[i * p_stride + j0 + r]);
          for (size_t e = 0; e < kD; ++e) acc[i][e] = hn::MulAdd(pj, vv[e], acc[i][e]);
        }
      }
    }
    for (size_t i = 0; i < kQ; ++i)
      for (size_t e = 0; e < kD; ++e)
        hn::StoreU(acc[i][e], df, out + i * out_stride + d + e * lanes);
  };
  constexpr size_t kD = DecodeValueVectors<kQ>();
  size_t d = 0;
  for (; d + kD * lanes <= head_dim; d += kD * lanes) pass(d, std::integral_constant<size_t, kD>());
  for (; d + lanes <= head_dim; d += lanes) pass(d, std::integral_constant<size_t, 1>());
  for (; d < head_dim; ++d) {
    for (size_t i = 0; i < kQ; ++i) {
      float a = 0;
      for (size_t j0 = 0, b = 0; j0 < num_keys; j0 += block_keys, ++b) {
        const size_t rows = std::min(block_keys, num_keys - j0);
        for (size_t r = 0; r < rows; ++r)
          a += p[i * p_stride + j0 + r] *
               ScalarToF32(static_cast<const T*>(v_blocks[b])[r * stride + d]);
      }
      out[i * out_stride + d] = a;
    }
  }
}

// Queries of one decoding position over keys and values held in blocks (see kernels.h).
// Scores go key group by key group (one key per lane): each query's partial products of
// the group's keys are summed by one SumsOfLanes tree; the group's rows stay in L1 for the
// other queries of the kv head. Keys and values are f32, or f16 widened as they are loaded.
template <typename T>
void AttentionDecodeBlocksT(const float* HWY_RESTRICT q, size_t q_stride, size_t num_q,
                            const void* const* k_blocks, const void* const* v_blocks,
                            size_t block_keys, size_t stride, size_t num_keys, size_t head_dim,
                            float scale, float* HWY_RESTRICT scratch, float* HWY_RESTRICT out,
                            size_t out_stride) {
  const DF df;
  constexpr size_t kL = hn::MaxLanes(DF());
  const size_t lanes = hn::Lanes(df);
  HWY_DASSERT(lanes == kL);
  if (num_keys == 0) {  // nothing to attend to
    for (size_t i = 0; i < num_q; ++i) std::fill_n(out + i * out_stride, head_dim, 0.0f);
    return;
  }
  const size_t p_stride = (num_keys + kL - 1) / kL * kL;
  const size_t whole = head_dim / lanes * lanes;  // dims in whole vectors; the rest scalar
  const VF vscale = hn::Set(df, scale);
  const size_t groups = p_stride / kL;
  constexpr size_t kLine = 64 / sizeof(T);
  // Scores of group g of keys for every query; row(j) is the group's key j.
  auto score_group = [&](size_t g, auto row) HWY_ATTR {
    for (size_t i = 0; i < num_q; ++i) {
      const float* qi = q + i * q_stride;
      VF part[kL];
      for (size_t j = 0; j < kL; ++j) part[j] = hn::Zero(df);
      for (size_t d = 0; d < whole; d += lanes) {
        const VF qd = hn::LoadU(df, qi + d);
        for (size_t j = 0; j < kL; ++j) part[j] = hn::MulAdd(qd, LoadF32(df, row(j) + d), part[j]);
      }
      float* p = scratch + i * p_stride + g * kL;
      const VF sums = SumsOfLanes<kL>(df, part);
      if (whole == head_dim) {
        hn::StoreU(hn::Mul(sums, vscale), df, p);
      } else {
        hn::StoreU(sums, df, p);
        for (size_t j = 0; j < kL; ++j) {
          float s = p[j];
          for (size_t d = whole; d < head_dim; ++d) s += qi[d] * ScalarToF32(row(j)[d]);
          p[j] = s * scale;
        }
      }
    }
  };
  size_t g = 0;
  // The KV pool's layout (blocks of a multiple of kL keys, rows of 64 values one after
  // another): a whole group lies in one block, kL rows one after another, so it is addressed
  // from its first row at fixed offsets, and its keys and values are kL · 64 values each to
  // request (whole lines where the block starts on one, as the pool's do; elsewhere a line
  // goes unrequested, never a number changes).
  constexpr size_t kPacked = 64;
  if (block_keys % kL == 0 && stride == kPacked && head_dim == kPacked) {
    auto first_row = [&](const void* const* blocks, size_t group) {
      const size_t j = group * kL;
      return static_cast<const T*>(blocks[j / block_keys]) + (j % block_keys) * kPacked;
    };
    for (const size_t full = num_keys / kL; g < full; ++g) {
      const T* keys = first_row(k_blocks, g);
      // The next group's keys, and this group's values for the weighted sum after the
      // softmax, come from memory while this group is multiplied.
      const T* next = g + 1 < groups ? first_row(k_blocks, g + 1) : keys;
      const T* values = first_row(v_blocks, g);
      for (size_t d = 0; d < kL * kPacked; d += kLine) {
        hwy::Prefetch(next + d);
        hwy::Prefetch(values + d);
      }
      score_group(g, [keys](size_t j) { return keys + j * kPacked; });
    }
  }
  // Any other layout, and a last group short of kL, through lists of the rows: a short group
  // repeats its first row (the extra scores land in the scratch's padding, which the softmax
  // overwrites), and kL more entries past the last group give its "next group" prefetch valid
  // rows. value_rows is for prefetching only (the weighted sum walks v_blocks).
  thread_local std::vector<const T*> rows, value_rows;
  if (g < groups) {
    rows.resize(p_stride + kL);
    value_rows.resize(p_stride);
    for (size_t j = g * kL; j < num_keys; ++j) {
      const size_t blk = j / block_keys, r = j % block_keys;
      rows[j] = static_cast<const T*>(k_blocks[blk]) + r * stride;
      value_rows[j] = static_cast<const T*>(v_blocks[blk]) + r * stride;
    }
    for (size_t j = num_keys; j < p_stride + kL; ++j) rows[j] = rows[(num_keys - 1) / kL * kL];
    for (size_t j = num_keys; j < p_stride; ++j) value_rows[j] = value_rows[num_keys - 1];
  }
  for (; g < groups; ++g) {
    const T* const* gr = rows.data() + g * kL;
    // The next group's keys, and this group's values for the weighted sum after the softmax,
    // come from memory while this group is multiplied.
    for (size_t j = 0; j < kL; ++j) {
      // Every line a row touches (rows need not start on a line).
      for (size_t d = 0; d < head_dim; d += kLine) {
        hwy::Prefetch(gr[kL + j] + d);
        hwy::Prefetch(value_rows[g * kL + j] + d);
      }
      hwy::Prefetch(gr[kL + j] + head_dim - 1);
      hwy::Prefetch(value_rows[g * kL + j] + head_dim - 1);
    }
    score_group(g, [gr](size_t j) { return gr[j]; });
  }
  if (rows.size() > (size_t{1} << 16)) {  // a very long context: do not keep its lists
    rows = {};
    value_rows = {};
  }
  for (size_t i = 0; i < num_q; ++i) SoftmaxPadded(scratch + i * p_stride, num_keys, p_stride);
  size_t i = 0;
  for (; i + 4 <= num_q; i += 4) {
    WeightedSumQueries<4, T>(scratch + i * p_stride, p_stride, v_blocks, block_keys, stride,
                             num_keys, head_dim, out + i * out_stride, out_stride);
  }
  const float* p = scratch + i * p_stride;
  float* o = out + i * out_stride;
  switch (num_q - i) {
    case 3:
      WeightedSumQueries<3, T>(p, p_stride, v_blocks, block_keys, stride, num_keys, head_dim, o,
                               out_stride);
      break;
    case 2:
      WeightedSumQueries<2, T>(p, p_stride, v_blocks, block_keys, stride, num_keys, head_dim, o,
                               out_stride);
      break;
    case 1:
      WeightedSumQueries<1, T>(p, p_stride, v_blocks, block_keys, stride, num_keys, head_dim, o,
                               out_stride);
      break;
    default:
      break;
  }
}

void AttentionDecodeBlocksF32(const float* q, size_t q_stride, size_t num_q, const void* const* kb,
                              const void* const* vb, size_t block_keys, size_t stride,
                              size_t num_keys, size_t head_dim, float scale, float* scratch,
                              float* out, size_t out_stride) {
  AttentionDecodeBlocksT<float>(q, q_stride, num_q, kb, vb, block_keys, stride, num_keys, head_dim,
                                scale, scratch, out, out_stride);
}
void AttentionDecodeBlocksF16(const float* q, size_t q_stride, size_t num_q, const void* const* kb,
                              const void* const* vb, size_t block_keys, size_t stride,
                              size_t num_keys, size_t head_dim, float scale, float* scratch,
                              float* out, size_t out_stride) {
  AttentionDecodeBlocksT<hwy::float16_t>(q, q_stride, num_q, kb, vb, block_keys, stride, num_keys,
                                         head_dim, scale, scratch, out, out_stride);
}

// gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
void GeluTanhImpl(float* HWY_RESTRICT x, size_t n) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const VF half = hn::Set(df, 0.5f), one = hn::Set(df, 1.0f);
  const VF c0 = hn::Set(df, 0.7978845608028654f), c1 = hn::Set(df, 0.044715f);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF v = hn::LoadU(df, x + i);
    const VF inner = hn::Mul(c0, hn::MulAdd(hn::Mul(c1, hn::Mul(v, v)), v, v));
    hn::StoreU(hn::Mul(hn::Mul(half, v), hn::Add(one, hn::Tanh(df, inner))), df, x + i);
  }
  for (; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}

// gate ← silu(gate) ⊙ up, silu(g) = g / (1 + e^-g).
void SiluMulImpl(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, size_t n) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const VF one = hn::Set(df, 1.0f);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF g = hn::LoadU(df, gate + i);
    const VF sig = hn::Div(g, hn::Add(one, hn::Exp(df, hn::Neg(g))));
    hn::StoreU(hn::Mul(sig, hn::LoadU(df, up + i)), df, gate + i);
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
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
void MatMulRowsBF16p(const float* x, size_t xs, size_t nt, const void* w, size_t k, size_t nb,
                     size_t ne, float* out, size_t os) {
  GemmPackedHalves<false>(x, xs, nt, static_cast<const uint32_t*>(w), k, nb, ne, out, os);
}
void MatMulRowsF16p(const float* x, size_t xs, size_t nt, const void* w, size_t k, size_t nb,
                    size_t ne, float* out, size_t os) {
  GemmPackedHalves<true>(x, xs, nt, static_cast<const uint32_t*>(w), k, nb, ne, out, os);
}

// Two passes over x: the largest value that is not NaN (four running maxima; a comparison with
// NaN is false, so NaN never replaces one), then the first index that holds it.
size_t ArgMaxF32Impl(const float* HWY_RESTRICT x, size_t n) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF m[4];
  for (VF& v : m) v = hn::Set(df, -INFINITY);
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    for (size_t j = 0; j < 4; ++j) {
      const VF v = hn::LoadU(df, x + i + j * lanes);
      m[j] = hn::IfThenElse(hn::Lt(m[j], v), v, m[j]);
    }
  }
  for (; i + lanes <= n; i += lanes) {
    const VF v = hn::LoadU(df, x + i);
    m[0] = hn::IfThenElse(hn::Lt(m[0], v), v, m[0]);
  }
  const VF m01 = hn::IfThenElse(hn::Lt(m[0], m[1]), m[1], m[0]);
  const VF m23 = hn::IfThenElse(hn::Lt(m[2], m[3]), m[3], m[2]);
  float best = hn::GetLane(hn::MaxOfLanes(df, hn::IfThenElse(hn::Lt(m01, m23), m23, m01)));
  for (; i < n; ++i) {
    if (x[i] > best) best = x[i];
  }
  const VF vb = hn::Set(df, best);
  for (i = 0; i + lanes <= n; i += lanes) {
    const intptr_t first = hn::FindFirstTrue(df, hn::Eq(hn::LoadU(df, x + i), vb));
    if (first >= 0) return i + static_cast<size_t>(first);
  }
  for (; i < n; ++i) {
    if (x[i] == best) return i;
  }
  return 0;  // every value NaN (or none)
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
  for (; i + lanes <= n; i += lanes)
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
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

// f32 → f16, round to nearest even, saturating at ±65504 (NaN stays NaN).
void NarrowF16Impl(const float* HWY_RESTRICT src, size_t n, void* dst) {
  uint16_t* HWY_RESTRICT out = static_cast<uint16_t*>(dst);
  size_t i = 0;
#if HWY_TARGET <= HWY_AVX2
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const size_t lanes = hn::Lanes(df);
  const VF hi = hn::Set(df, tensor::kF16Max), lo = hn::Set(df, -tensor::kF16Max);
  for (; i + lanes <= n; i += lanes) {
    const VF v = hn::LoadU(df, src + i);
    // Min/Max would turn a NaN into the bound; keep it.
    const VF clamped = hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, lo), hi));
    hn::StoreU(hn::DemoteTo(dh, clamped), dh, reinterpret_cast<hwy::float16_t*>(out + i));
  }
#endif
  for (; i < n; ++i) out[i] = tensor::F32ToF16Saturated(src[i]);
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
HWY_EXPORT(MatMulRowsBF16p);
HWY_EXPORT(MatMulRowsF16p);
HWY_EXPORT(DotF32Impl);
HWY_EXPORT(ArgMaxF32Impl);
HWY_EXPORT(AxpyF32Impl);
HWY_EXPORT(ConvertBF16);
HWY_EXPORT(ConvertF16);
HWY_EXPORT(AttentionHeadImpl);
HWY_EXPORT(GeluTanhImpl);
HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(AttentionDecodeBlocksF32);
HWY_EXPORT(AttentionDecodeBlocksF16);
HWY_EXPORT(NarrowF16Impl);

void MatMulRows(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end, float* out,
                size_t out_stride) {
  switch (w_dtype) {
    case tensor::DType::kBF16:
      HWY_DYNAMIC_DISPATCH(MatMulRowsBF16)
      (x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
      return;
    case tensor::DType::kF16:
      HWY_DYNAMIC_DISPATCH(MatMulRowsF16)
      (x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
      return;
    case tensor::DType::kBF16p:  // whole groups of 16 rows
      IRIS_CHECK(n_begin % tensor::kHalfPanelRows == 0 && n_end % tensor::kHalfPanelRows == 0);
      HWY_DYNAMIC_DISPATCH(MatMulRowsBF16p)
      (x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
      return;
    case tensor::DType::kF16p:
      IRIS_CHECK(n_begin % tensor::kHalfPanelRows == 0 && n_end % tensor::kHalfPanelRows == 0);
      HWY_DYNAMIC_DISPATCH(MatMulRowsF16p)
      (x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
      return;
    default:
      HWY_DYNAMIC_DISPATCH(MatMulRowsF32)
      (x, x_stride, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
      return;
  }
}

float DotF32(const float* a, const float* b, size_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32Impl)(a, b, n);
}

size_t ArgMaxF32(const float* x, size_t n) { return HWY_DYNAMIC_DISPATCH(ArgMaxF32Impl)(x, n); }

void AxpyF32(float alpha, const float* x, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(AxpyF32Impl)(alpha, x, y, n);
}

void ConvertRowToF32(const void* src, tensor::DType dtype, size_t n, float* dst) {
  switch (dtype) {
    case tensor::DType::kBF16:
      HWY_DYNAMIC_DISPATCH(ConvertBF16)(src, n, dst);
      return;
    case tensor::DType::kF16:
      HWY_DYNAMIC_DISPATCH(ConvertF16)(src, n, dst);
      return;
    case tensor::DType::kQ8_0:  // the block formats as a GGUF file stores them
    case tensor::DType::kQ4_0:
    case tensor::DType::kQ4_K:
    case tensor::DType::kQ5_K:
    case tensor::DType::kQ6_K:
      tensor::DequantizeRow(*tensor::StoredGgmlType(dtype), src, n, dst);
      return;
    case tensor::DType::kQ8_0x:
      tensor::DequantizeRowQ8_0x(static_cast<const uint8_t*>(src), n, dst);
      return;
    case tensor::DType::kQ8_0p:  // a row is spread over its panel (ops::ToF32 reads panels)
    case tensor::DType::kQ4_0p:
    case tensor::DType::kQ4_Kp:
    case tensor::DType::kQ5_Kp:
    case tensor::DType::kQ6_Kp:
    case tensor::DType::kBF16p:
    case tensor::DType::kF16p:
      IRIS_CHECK_MSG(false, "ConvertRowToF32: a panel's row is not contiguous");
      return;
    default:
      std::memcpy(dst, src, n * sizeof(float));
      return;
  }
}

void AttentionHead(const float* q, size_t q_stride, size_t num_q, const float* kt, size_t kt_stride,
                   const float* v, size_t v_stride, size_t num_keys, size_t head_dim, float scale,
                   size_t causal_base, float* scratch, float* out, size_t out_stride) {
  HWY_DYNAMIC_DISPATCH(AttentionHeadImpl)
  (q, q_stride, num_q, kt, kt_stride, v, v_stride, num_keys, head_dim, scale, causal_base, scratch,
   out, out_stride);
}

void GeluTanh(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(GeluTanhImpl)(x, n); }

void SiluMul(float* gate, const float* up, size_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, n);
}

void AttentionDecodeBlocks(const float* q, size_t q_stride, size_t num_q,
                           const void* const* k_blocks, const void* const* v_blocks,
                           tensor::DType kv_dtype, size_t block_keys, size_t stride,
                           size_t num_keys, size_t head_dim, float scale, float* scratch,
                           float* out, size_t out_stride) {
  IRIS_CHECK(IsKvDType(kv_dtype));
  if (kv_dtype == tensor::DType::kF16) {
    HWY_DYNAMIC_DISPATCH(AttentionDecodeBlocksF16)
    (q, q_stride, num_q, k_blocks, v_blocks, block_keys, stride, num_keys, head_dim, scale, scratch,
     out, out_stride);
    return;
  }
  HWY_DYNAMIC_DISPATCH(AttentionDecodeBlocksF32)
  (q, q_stride, num_q, k_blocks, v_blocks, block_keys, stride, num_keys, head_dim, scale, scratch,
   out, out_stride);
}

void NarrowRowF16(const float* src, size_t n, void* dst) {
  HWY_DYNAMIC_DISPATCH(NarrowF16Impl)(src, n, dst);
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
