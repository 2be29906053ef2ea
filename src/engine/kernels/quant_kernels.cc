// Int8 matrix products for Q8_0 weights (kernels.h): activations quantized per block of 32,
// integer dot products per block, scaled and summed in f32. One scalar path and three x86
// paths picked at run time: AVX2 (maddubs/madd), AVX-VNNI and AVX512-VNNI (vpdpbusd on 256-bit
// vectors). The x86 paths are plain intrinsics behind target attributes (Highway 1.0.3 has no
// int8 dot product); each is tested against the scalar twin in ref/.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <tuple>

#include "base/check.h"
#include "engine/kernels/kernels.h"
#include "engine/tensor/dtype.h"

namespace iris::kernels {
namespace {

constexpr size_t kBlock = 32;       // values per block
constexpr size_t kBlockBytes = 34;  // f16 scale + 32 int8

enum class Path { kScalar = 0, kAvx2 = 1, kAvxVnni = 2, kAvx512Vnni = 3 };
constexpr const char* kPathNames[] = {"scalar", "avx2", "avxvnni", "avx512vnni"};

bool Supports(Path p) {
  switch (p) {
    case Path::kScalar:
      return true;
    case Path::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Path::kAvxVnni:
      return Supports(Path::kAvx2) && __builtin_cpu_supports("avxvnni");
    case Path::kAvx512Vnni:
      return Supports(Path::kAvx2) && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  }
  return false;
}

Path Best() {
  for (Path p : {Path::kAvx512Vnni, Path::kAvxVnni, Path::kAvx2}) {
    if (Supports(p)) return p;
  }
  return Path::kScalar;
}

std::atomic<int> g_forced{-1};

Path Active() {
  const int f = g_forced.load(std::memory_order_relaxed);
  if (f >= 0) return static_cast<Path>(f);
  static const Path best = Best();
  return best;
}

void RowsScalar(const int8_t* xq, const float* xd, size_t num_tokens, const uint8_t* w,
                size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const size_t nb = k_dim / kBlock, row_bytes = nb * kBlockBytes;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      const uint8_t* row = w + n * row_bytes;
      float acc = 0;
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * kBlockBytes;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        int32_t s = 0;
        for (size_t i = 0; i < kBlock; ++i) {
          s += static_cast<int32_t>(static_cast<int8_t>(blk[2 + i])) *
               xq[t * k_dim + b * kBlock + i];
        }
        acc += tensor::F16ToF32(h) * xd[t * nb + b] * static_cast<float>(s);
      }
      out[t * out_stride + (n - n_begin)] = acc;
    }
  }
}

#define IRIS_X86_TARGET "avx2,fma,f16c"

__attribute__((target(IRIS_X86_TARGET))) inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target(IRIS_X86_TARGET))) inline float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The three x86 paths differ only in the block dot product (8 int32 partial sums of the
// 32 products w·x): |w| as unsigned times x with w's sign, multiplied and added in pairs.
// DotU(acc, w, x) adds to each int32 lane the four products of unsigned bytes w and signed
// bytes x (the panel layouts' weights are unsigned levels). On AVX2 the pairs are summed in 16
// bits first: exact for levels below 64 (Q4_0, Q4_K, Q5_K, Q6_K panels) against activations
// of at most 127 in magnitude, not for kQ8_0p's 0..255 (MultipliesPanels keeps those away).
struct DotAvx2 {
  __attribute__((target(IRIS_X86_TARGET))) static __m256i Dot(__m256i w, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  }
  __attribute__((target(IRIS_X86_TARGET), always_inline)) static inline __m256i DotU(__m256i acc,
                                                                                     __m256i w,
                                                                                     __m256i x) {
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
  }
};
struct DotAvxVnni {
  __attribute__((target(IRIS_X86_TARGET ",avxvnni"))) static __m256i Dot(__m256i w, __m256i x) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                                   _mm256_sign_epi8(x, w));
  }
  __attribute__((target(IRIS_X86_TARGET ",avxvnni"), always_inline)) static inline __m256i DotU(
      __m256i acc, __m256i w, __m256i x) {
    return _mm256_dpbusd_avx_epi32(acc, w, x);
  }
};
struct DotAvx512Vnni {
  __attribute__((target(IRIS_X86_TARGET ",avx512f,avx512vl,avx512bw,avx512vnni"))) static __m256i
  Dot(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                               _mm256_sign_epi8(x, w));
  }
};

// The panel layouts the kernels below take, as template arguments.
enum class Kind { kQ8_0, kQ4_0, kQ4_K, kQ5_K, kQ6_K };
template <Kind K>
constexpr tensor::DType kPanelType = K == Kind::kQ8_0   ? tensor::DType::kQ8_0p
                                     : K == Kind::kQ4_0 ? tensor::DType::kQ4_0p
                                     : K == Kind::kQ4_K ? tensor::DType::kQ4_Kp
                                     : K == Kind::kQ5_K ? tensor::DType::kQ5_Kp
                                                        : tensor::DType::kQ6_Kp;
// Q4_K and Q5_K: per block a scale and a min (the value (d · sc) · q − dmin · m).
template <Kind K>
constexpr bool kScaleAndMin = K == Kind::kQ4_K || K == Kind::kQ5_K;
template <Kind K>
constexpr bool kNibbles = tensor::IsNibblePanel(kPanelType<K>);
// Q5_K and Q6_K: bits of each level above its nibble, in their own field of the block.
template <Kind K>
constexpr size_t kHighBits = tensor::PanelHighBits(kPanelType<K>);

// Vector types of the panel kernels (quant_kernels-inl.h's TileP): kRows rows of a 16-row
// panel per vector, the operations the kernel needs on them, and its tile sizes. A panel's
// fields are rows in order (values: 4 bytes a row per group of 4, or per two groups as
// nibbles, or per 8 or 4 groups as Q5_K's and Q6_K's high bits; f16 scales: 2 bytes a row;
// sub-block scales: 1 byte a row), so the vector for rows [r0, r0 + kRows) reads at offset
// r0 times the field's bytes per row.
// AVX2 and AVX-VNNI: 8 rows per vector (the products are IRIS_Q8_DOTU's). Prompt tiles of
// kTokens tokens × 1 panel: 4 on AVX2 (its three-instruction products leave the 16 registers
// the bottleneck less than the loads; 2.2B Q4_K_M prefill 76 against 70 tok/s with 2), 2 on
// AVX-VNNI (98–108 against 95–107 with 4).
template <size_t kTokens>
struct V256 {
  using F = __m256;
  using I = __m256i;
  static constexpr size_t kRows = 8;
  static constexpr size_t kPromptTokens = kTokens, kPromptPanels = 1, kDecodePanels = 2;
#define IRIS_V __attribute__((target(IRIS_X86_TARGET), always_inline)) static inline
  IRIS_V F ZeroF() { return _mm256_setzero_ps(); }
  IRIS_V I ZeroI() { return _mm256_setzero_si256(); }
  IRIS_V F Set(float v) { return _mm256_set1_ps(v); }
  IRIS_V I SetI(int32_t v) { return _mm256_set1_epi32(v); }
  IRIS_V I Load(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  IRIS_V I Nibbles(I v, bool high) {
    const I low = _mm256_set1_epi8(0x0F);
    return high ? _mm256_and_si256(_mm256_srli_epi16(v, 4), low) : _mm256_and_si256(v, low);
  }
  // nibbles | the bits of `high` from bit `shift` on moved to bit 4 (`mask`: where they land).
  // The 16-bit shifts never carry a kept bit across bytes: shift − 4 is at most 3 and the
  // kept bits end at bit 7.
  IRIS_V I AboveNibble(I nibbles, I high, int shift, uint8_t mask) {
    const I moved =
        shift <= 4 ? _mm256_slli_epi16(high, 4 - shift) : _mm256_srli_epi16(high, shift - 4);
    return _mm256_or_si256(nibbles,
                           _mm256_and_si256(moved, _mm256_set1_epi8(static_cast<char>(mask))));
  }
  IRIS_V F Halves(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  IRIS_V F Unsigned8(const uint8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  IRIS_V F Signed8(const uint8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  IRIS_V F ToF(I v) { return _mm256_cvtepi32_ps(v); }
  IRIS_V I Sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  IRIS_V F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  IRIS_V F MulAdd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  IRIS_V F NegMulAdd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  IRIS_V void Store(float* p, F v) { _mm256_storeu_ps(p, v); }
#undef IRIS_V
};

#define IRIS_X512_TARGET IRIS_X86_TARGET ",avx512f,avx512vl,avx512bw,avx512vnni"

struct V512 {  // AVX512-VNNI: a whole panel per vector
  using F = __m512;
  using I = __m512i;
  static constexpr size_t kRows = 16;
  static constexpr size_t kPromptTokens = 4, kPromptPanels = 2, kDecodePanels = 4;
#define IRIS_V __attribute__((target(IRIS_X512_TARGET), always_inline)) static inline
  IRIS_V F ZeroF() { return _mm512_setzero_ps(); }
  IRIS_V I ZeroI() { return _mm512_setzero_si512(); }
  IRIS_V F Set(float v) { return _mm512_set1_ps(v); }
  IRIS_V I SetI(int32_t v) { return _mm512_set1_epi32(v); }
  IRIS_V I Load(const uint8_t* p) { return _mm512_load_si512(p); }
  IRIS_V I Nibbles(I v, bool high) {
    const I low = _mm512_set1_epi8(0x0F);
    return high ? _mm512_and_si512(_mm512_srli_epi16(v, 4), low) : _mm512_and_si512(v, low);
  }
  IRIS_V I AboveNibble(I nibbles, I high, int shift, uint8_t mask) {  // as V256's
    const I moved = shift <= 4 ? _mm512_slli_epi16(high, static_cast<unsigned>(4 - shift))
                               : _mm512_srli_epi16(high, static_cast<unsigned>(shift - 4));
    // nibbles | (moved & mask)
    return _mm512_ternarylogic_epi32(nibbles, moved, _mm512_set1_epi8(static_cast<char>(mask)),
                                     0xF8);
  }
  IRIS_V F Halves(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  IRIS_V F Unsigned8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  IRIS_V F Signed8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  IRIS_V F ToF(I v) { return _mm512_cvtepi32_ps(v); }
  IRIS_V I Sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  IRIS_V F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  IRIS_V F MulAdd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  IRIS_V F NegMulAdd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  IRIS_V void Store(float* p, F v) { _mm512_storeu_ps(p, v); }
  IRIS_V I DotU(I acc, I w, I x) { return _mm512_dpbusd_epi32(acc, w, x); }
#undef IRIS_V
};

#define IRIS_Q8_NS avx2
#define IRIS_Q8_TARGET IRIS_X86_TARGET
#define IRIS_Q8_DOT DotAvx2
#define IRIS_Q8_VEC V256<4>
#define IRIS_Q8_DOTU DotAvx2::DotU
#include "engine/kernels/quant_kernels-inl.h"
#undef IRIS_Q8_NS
#undef IRIS_Q8_TARGET
#undef IRIS_Q8_DOT
#undef IRIS_Q8_VEC
#undef IRIS_Q8_DOTU
#define IRIS_Q8_NS avxvnni
#define IRIS_Q8_TARGET IRIS_X86_TARGET ",avxvnni"
#define IRIS_Q8_DOT DotAvxVnni
#define IRIS_Q8_VEC V256<2>
#define IRIS_Q8_DOTU DotAvxVnni::DotU
#include "engine/kernels/quant_kernels-inl.h"
#undef IRIS_Q8_NS
#undef IRIS_Q8_TARGET
#undef IRIS_Q8_DOT
#undef IRIS_Q8_VEC
#undef IRIS_Q8_DOTU
#define IRIS_Q8_NS avx512vnni
#define IRIS_Q8_TARGET IRIS_X86_TARGET ",avx512f,avx512vl,avx512bw,avx512vnni"
#define IRIS_Q8_DOT DotAvx512Vnni
#define IRIS_Q8_VEC V512
#define IRIS_Q8_DOTU V512::DotU
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() to their masked builtins and then warn
// that it may be used uninitialized (GCC bug 105593); the warning is about the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "engine/kernels/quant_kernels-inl.h"
#pragma GCC diagnostic pop
#undef IRIS_Q8_NS
#undef IRIS_Q8_TARGET
#undef IRIS_Q8_DOT
#undef IRIS_Q8_VEC
#undef IRIS_Q8_DOTU

// kQ8_0x, one block at a time (every path but AVX-512).
void RowsXScalar(const int8_t* xq, const float* xd, size_t num_tokens, const uint8_t* w,
                 size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const size_t nb = k_dim / kBlock, sb = tensor::Q8xScaleBytes(k_dim);
  const size_t vb = tensor::Q8xValueBytes(k_dim), row_bytes = sb + vb, ds = sb / 2;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      const uint8_t* row = w + n * row_bytes;
      float acc = 0;
      for (size_t b = 0; b < nb; ++b) {
        uint16_t h;
        std::memcpy(&h, row + 2 * b, 2);
        int32_t s = 0;
        for (size_t i = 0; i < kBlock; ++i) {
          s += static_cast<int32_t>(static_cast<int8_t>(row[sb + b * kBlock + i])) *
               xq[t * vb + b * kBlock + i];
        }
        acc += tensor::F16ToF32(h) * xd[t * ds + b] * static_cast<float>(s);
      }
      out[t * out_stride + (n - n_begin)] = acc;
    }
  }
}

// The unsigned weight j (0..31) of `lane` in block b of a panel: kQ8_0p stores value + 128,
// kQ4_0p the Q4_0 level (value + 8) as a nibble, the K panels their levels q.
template <Kind K>
inline int PanelWeight(const uint8_t* panel, size_t b, size_t lane, size_t j) {
  return tensor::PanelLevel(kPanelType<K>, panel, lane, 32 * b + j);
}

// Panels one value at a time: the scalar path (and AVX2's kQ8_0p), and the twin the vector
// kernels must match bit for bit.
// Per block: Q8_0/Q4_0 take the offset back, float(dot − offset · sum) · (d · xd); Q4_K
// computes v = (d · sc) · float(dot) − (dmin · m) · float(sum) (one rounding for the
// difference) and adds v · xd; Q6_K takes 32 back from each half of 16,
// v = float(hi) · sc_hi + float(lo) · sc_lo (one rounding), and adds v · (d · xd).
template <Kind K>
void RowsPScalar(const int8_t* xq, const float* xd, const int32_t* xs, const int32_t* xs16,
                 size_t num_tokens, const uint8_t* w, size_t k_dim, size_t n_begin, size_t n_end,
                 float* out, size_t out_stride) {
  constexpr tensor::DType kP = kPanelType<K>;
  const size_t nb = k_dim / kBlock, panel_bytes = tensor::PanelBytes(kP, k_dim);
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      const uint8_t* panel = w + n / tensor::kQ8PanelRows * panel_bytes;
      const size_t lane = n % tensor::kQ8PanelRows;
      float acc = 0;
      for (size_t b = 0; b < nb; ++b) {
        int32_t dot[2] = {0, 0};  // the block's two halves of 16
        for (size_t i = 0; i < kBlock; ++i) {
          dot[i / 16] += PanelWeight<K>(panel, b, lane, i) * xq[t * k_dim + b * kBlock + i];
        }
        const float dx = xd[t * nb + b];
        if constexpr (K == Kind::kQ8_0 || K == Kind::kQ4_0) {
          constexpr int32_t kOffset = K == Kind::kQ4_0 ? 8 : 128;  // stored + offset
          const int32_t s = dot[0] + dot[1] - kOffset * xs[t * nb + b];
          uint16_t h;
          std::memcpy(&h, panel + tensor::PanelScaleOffset(kP, k_dim, lane, b), 2);
          acc = std::fma(static_cast<float>(s), tensor::F16ToF32(h) * dx, acc);
        } else {
          auto super = [&](size_t which) {
            uint16_t h;
            std::memcpy(&h, panel + tensor::PanelSuperScaleOffset(kP, k_dim, lane, b / 8, which),
                        2);
            return tensor::F16ToF32(h);
          };
          const uint8_t first = panel[tensor::PanelSubScaleOffset(kP, k_dim, lane, b, 0)];
          const uint8_t second = panel[tensor::PanelSubScaleOffset(kP, k_dim, lane, b, 1)];
          if constexpr (kScaleAndMin<K>) {
            const float a = super(0) * static_cast<float>(first);
            const float m = super(1) * static_cast<float>(second);
            const float v = std::fma(-m, static_cast<float>(xs[t * nb + b]),
                                     a * static_cast<float>(dot[0] + dot[1]));
            acc = std::fma(v, dx, acc);
          } else {
            const int32_t lo = dot[0] - 32 * xs16[t * 2 * nb + 2 * b];
            const int32_t hi = dot[1] - 32 * xs16[t * 2 * nb + 2 * b + 1];
            const float u = static_cast<float>(lo) * static_cast<float>(static_cast<int8_t>(first));
            const float v = std::fma(static_cast<float>(hi),
                                     static_cast<float>(static_cast<int8_t>(second)), u);
            acc = std::fma(v, super(0) * dx, acc);
          }
        }
      }
      out[t * out_stride + (n - n_begin)] = acc;
    }
  }
}

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() to their masked builtins and then warn
// that it may be used uninitialized (GCC bug 105593); the warning is about the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// R rows of kQ8_0x × T tokens, two blocks per 512-bit register: |w| times x with w's sign
// (a masked negation: AVX-512 has no byte sign instruction), the two blocks' scales × the
// token's two block scales spread over their halves, one multiply-add per row and token.
template <size_t R, size_t T, bool kPrefetch>
__attribute__((target(IRIS_X512_TARGET), always_inline)) inline void TileX512(
    const int8_t* x, size_t x_stride, const float* dx, size_t dx_stride, size_t pairs,
    const uint8_t* w, size_t row_bytes, size_t scale_bytes, float* out, size_t out_stride) {
  const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[T][R];
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) acc[t][r] = _mm512_setzero_ps();
  }
  for (size_t p = 0; p < pairs; ++p) {
    __m512i xv[T];
    __m128 dxp[T];
    for (size_t t = 0; t < T; ++t) {
      xv[t] = _mm512_loadu_si512(x + t * x_stride + 64 * p);
      dxp[t] = _mm_castsi128_ps(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(dx + t * dx_stride + 2 * p)));
    }
    for (size_t r = 0; r < R; ++r) {
      const uint8_t* row = w + r * row_bytes;
      if constexpr (kPrefetch) {
        _mm_prefetch(reinterpret_cast<const char*>(row + R * row_bytes + scale_bytes + 64 * p),
                     _MM_HINT_T0);
      }
      const __m512i wv = _mm512_loadu_si512(row + scale_bytes + 64 * p);
      const __m512i aw = _mm512_abs_epi8(wv);
      const __mmask64 negative = _mm512_movepi8_mask(wv);
      int32_t scales;
      std::memcpy(&scales, row + 4 * p, 4);
      const __m128 sw = _mm_cvtph_ps(_mm_cvtsi32_si128(scales));
      for (size_t t = 0; t < T; ++t) {
        const __m512i sx = _mm512_mask_sub_epi8(xv[t], negative, zero, xv[t]);
        const __m512i dot = _mm512_dpbusd_epi32(zero, aw, sx);
        const __m512 s =
            _mm512_permutexvar_ps(halves, _mm512_zextps128_ps512(_mm_mul_ps(sw, dxp[t])));
        acc[t][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc[t][r]);
      }
    }
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) {
      const __m512 v = acc[t][r];
      const __m256 hi = _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE));
      out[t * out_stride + r] = HorizontalSum(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
    }
  }
}

// Decode (one token): 8 rows at a time with the next 8 prefetched; prompts: 4 rows × 4 tokens.
__attribute__((target(IRIS_X512_TARGET))) void RowsX512(const int8_t* xq, const float* xd,
                                                        size_t num_tokens, const uint8_t* w,
                                                        size_t k_dim, size_t n_begin, size_t n_end,
                                                        float* out, size_t out_stride) {
  const size_t sb = tensor::Q8xScaleBytes(k_dim), vb = tensor::Q8xValueBytes(k_dim);
  const size_t row_bytes = sb + vb, ds = sb / 2, pairs = vb / 64;
  size_t t = 0;
  for (; t + 4 <= num_tokens; t += 4) {
    float* o = out + t * out_stride - n_begin;
    size_t n = n_begin;
    for (; n + 4 <= n_end; n += 4) {
      TileX512<4, 4, false>(xq + t * vb, vb, xd + t * ds, ds, pairs, w + n * row_bytes, row_bytes,
                            sb, o + n, out_stride);
    }
    for (; n < n_end; ++n) {
      TileX512<1, 4, false>(xq + t * vb, vb, xd + t * ds, ds, pairs, w + n * row_bytes, row_bytes,
                            sb, o + n, out_stride);
    }
  }
  for (; t < num_tokens; ++t) {
    const int8_t* x = xq + t * vb;
    const float* dx = xd + t * ds;
    float* o = out + t * out_stride - n_begin;
    size_t n = n_begin;
    for (; n + 16 <= n_end; n += 8) {
      TileX512<8, 1, true>(x, vb, dx, ds, pairs, w + n * row_bytes, row_bytes, sb, o + n,
                           out_stride);
    }
    for (; n + 4 <= n_end; n += 4) {
      TileX512<4, 1, false>(x, vb, dx, ds, pairs, w + n * row_bytes, row_bytes, sb, o + n,
                            out_stride);
    }
    for (; n < n_end; ++n) {
      TileX512<1, 1, false>(x, vb, dx, ds, pairs, w + n * row_bytes, row_bytes, sb, o + n,
                            out_stride);
    }
  }
}

#pragma GCC diagnostic pop

}  // namespace

void MatMulRowsQ8_0x(const int8_t* q, const float* d, size_t num_tokens, const void* w,
                     size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  if (Active() == Path::kAvx512Vnni) {
    return RowsX512(q, d, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
  }
  RowsXScalar(q, d, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
}

bool PrefersRepackedQ8() { return Active() == Path::kAvx512Vnni; }

void MatMulRowsPanels(tensor::DType panel_type, const int8_t* q, const float* d,
                      const int32_t* sums, size_t num_tokens, const void* w, size_t k_dim,
                      size_t n_begin, size_t n_end, float* out, size_t out_stride,
                      const int32_t* half_sums) {
  IRIS_CHECK(tensor::IsPanelType(panel_type));
  IRIS_CHECK(n_begin % tensor::kQ8PanelRows == 0 && n_end % tensor::kQ8PanelRows == 0);
  IRIS_CHECK(!tensor::IsKPanelType(panel_type) || k_dim % tensor::kKSuperBlock == 0);
  IRIS_CHECK(panel_type != tensor::DType::kQ6_Kp || half_sums != nullptr);
  const auto* wb = static_cast<const uint8_t*>(w);
  const size_t p_begin = n_begin / tensor::kQ8PanelRows, p_end = n_end / tensor::kQ8PanelRows;
  auto run = [&]<Kind K>() {
    switch (Active()) {
      case Path::kAvx512Vnni:
        return avx512vnni::RowsP<K>(q, d, sums, half_sums, num_tokens, wb, k_dim, p_begin, p_end,
                                    out, out_stride);
      case Path::kAvxVnni:
        return avxvnni::RowsP<K>(q, d, sums, half_sums, num_tokens, wb, k_dim, p_begin, p_end, out,
                                 out_stride);
      case Path::kAvx2:
        if constexpr (K != Kind::kQ8_0) {  // its levels would saturate maddubs's sums
          return avx2::RowsP<K>(q, d, sums, half_sums, num_tokens, wb, k_dim, p_begin, p_end, out,
                                out_stride);
        }
        break;
      case Path::kScalar:
        break;
    }
    RowsPScalar<K>(q, d, sums, half_sums, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
  };
  switch (panel_type) {
    case tensor::DType::kQ4_0p:
      return run.operator()<Kind::kQ4_0>();
    case tensor::DType::kQ4_Kp:
      return run.operator()<Kind::kQ4_K>();
    case tensor::DType::kQ5_Kp:
      return run.operator()<Kind::kQ5_K>();
    case tensor::DType::kQ6_Kp:
      return run.operator()<Kind::kQ6_K>();
    default:
      return run.operator()<Kind::kQ8_0>();
  }
}

void SumsPer16(const int8_t* q, size_t n, int32_t* sums) {
  for (size_t h = 0; h < n / 16; ++h) {
    int32_t s = 0;
    for (size_t i = 0; i < 16; ++i) s += q[16 * h + i];
    sums[h] = s;
  }
}

bool MultipliesPanels(tensor::DType panel_type) {
  switch (Active()) {
    case Path::kAvx512Vnni:
    case Path::kAvxVnni:
      return tensor::IsPanelType(panel_type);
    case Path::kAvx2:
      return tensor::IsPanelType(panel_type) && panel_type != tensor::DType::kQ8_0p;
    case Path::kScalar:
      break;
  }
  return false;
}

namespace {

// QuantizeRowsQ8 with AVX-512, one block of 32 in two registers; the same numbers as the
// scalar loop below (the test holds them to it): the same max (a NaN never wins, as with
// std::max), the same division and product, and round-half-away-from-zero done exactly
// (truncate, then step away from zero when the exact remainder is at least one half).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target(IRIS_X512_TARGET))) void QuantizeRowsX512(const float* x, size_t x_stride,
                                                                size_t num_tokens, size_t k_dim,
                                                                int8_t* q, float* d,
                                                                int32_t* sums) {
  const size_t nb = k_dim / kBlock;
  const __m512i sign = _mm512_set1_epi32(INT32_MIN);
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f),
               lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t b = 0; b < nb; ++b) {
      const float* v = x + t * x_stride + b * kBlock;
      const __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
      // max(|v|, acc) keeps acc where |v| is NaN (MAXPS returns its second operand then).
      __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
      m = _mm512_max_ps(_mm512_abs_ps(v1), m);
      const float amax = _mm512_reduce_max_ps(m);
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      d[t * nb + b] = scale;
      const __m512 vinv = _mm512_set1_ps(inv);
      int8_t* out = q + t * k_dim + b * kBlock;
      __m512i total = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        const __m512 y = _mm512_mul_ps(h == 0 ? v0 : v1, vinv);
        const __m512 tr = _mm512_roundscale_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __mmask16 away =
            _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(y, tr)), half, _CMP_GE_OQ);
        const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_and_si512(_mm512_castps_si512(y), sign), _mm512_castps_si512(one)));
        __m512 r = _mm512_mask_add_ps(tr, away, tr, step);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        const __mmask16 number = _mm512_cmp_ps_mask(y, y, _CMP_ORD_Q);
        const __m512i n = _mm512_maskz_cvtps_epi32(number, r);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * h), _mm512_cvtsepi32_epi8(n));
        total = _mm512_add_epi32(total, n);
      }
      if (sums != nullptr) sums[t * nb + b] = _mm512_reduce_add_epi32(total);
    }
  }
}
#pragma GCC diagnostic pop

}  // namespace

void QuantizeRowsQ8(const float* x, size_t x_stride, size_t num_tokens, size_t k_dim, int8_t* q,
                    float* d, int32_t* sums) {
  if (Active() == Path::kAvx512Vnni) {
    return QuantizeRowsX512(x, x_stride, num_tokens, k_dim, q, d, sums);
  }
  const size_t nb = k_dim / kBlock;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t b = 0; b < nb; ++b) {
      const float* v = x + t * x_stride + b * kBlock;
      float amax = 0;
      for (size_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(v[i]));
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      d[t * nb + b] = scale;
      int8_t* out = q + t * k_dim + b * kBlock;
      for (size_t i = 0; i < kBlock; ++i) {
        // |v·inv| <= 127 up to rounding; the clamp keeps a NaN-free row in range regardless.
        const float r = std::round(v[i] * inv);
        out[i] = static_cast<int8_t>(r == r ? std::clamp(r, -127.0f, 127.0f) : 0.0f);
      }
      if (sums != nullptr) {
        int32_t sum = 0;
        for (size_t i = 0; i < kBlock; ++i) sum += out[i];
        sums[t * nb + b] = sum;
      }
    }
  }
}

void MatMulRowsQ8_0(const int8_t* xq, const float* xd, size_t num_tokens, const void* w,
                    size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (Active()) {
    case Path::kAvx512Vnni:
      return avx512vnni::Rows(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
    case Path::kAvxVnni:
      return avxvnni::Rows(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
    case Path::kAvx2:
      return avx2::Rows(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
    case Path::kScalar:
      return RowsScalar(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
  }
}

std::string ActiveQuantPath() { return kPathNames[static_cast<int>(Active())]; }

std::vector<std::string> AvailableQuantPaths() {
  std::vector<std::string> names;
  for (Path p : {Path::kAvx512Vnni, Path::kAvxVnni, Path::kAvx2, Path::kScalar}) {
    if (Supports(p)) names.push_back(kPathNames[static_cast<int>(p)]);
  }
  return names;
}

bool ForceQuantPath(const std::string& name) {
  if (name.empty()) {
    g_forced.store(-1);
    return true;
  }
  for (int i = 0; i < 4; ++i) {
    if (name == kPathNames[i] && Supports(static_cast<Path>(i))) {
      g_forced.store(i);
      return true;
    }
  }
  return false;
}

}  // namespace iris::kernels
