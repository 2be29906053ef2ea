// Matrix products with bf16 inputs and f32 sums (kernels.h, MatMulRowsBf16): the opt-in
// `--compute bf16` path for prompts, decode, image tiles and training. Activations and weights are
// rounded to bf16 (round to nearest even, as the hardware converts) and multiplied in pairs
// with AVX512-BF16's vdpbf16ps, 32 products per instruction where f32 FMAs do 16. Plain
// intrinsics behind target attributes (Highway 1.0.3 has no bf16 dot product); the scalar twin
// is ref::MatMulRowsBf16.
//
// Layout: the tokens' activations become bf16 pairs (k, k+1) as 32-bit words; the weights go
// through panels of 48 features × 128 pairs (24 KiB, in L1), each word the pair of one feature,
// so one k-pair step is 3 panel loads, a broadcast per token and 3 vdpbf16ps per token
// (8 tokens: 24 accumulators).
//
// Where the CPU has AMX (AMX-TILE and AMX-BF16, and Linux grants the process its tile state),
// the same panels go through tile registers instead: one tdpbf16ps is 16 tokens × 16 features
// × 16 pairs, 512 products. The architecture defines both instructions to add each pair's odd
// product and then its even one to the sum; a software model of the tiles that does so gives
// the vdpbf16ps path's numbers bit for bit, and AMX hardware is held to the twin's tolerance
// (its rounding inside a tile is its own).
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/tile_shape.h"
#include "engine/kernels/transpose_x86.h"
#include "engine/tensor/dtype.h"
#include "engine/tensor/tensor.h"

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

// out[t, 0..16·kV) (+)= Σ_p xb[t, p] · the panel's pair p, whose 16·kV features' words lie
// in kV vectors of 16: vector v of pair p at panel + p · p_stride + v · v_stride (a panel
// packed per call: kWidth and kLanes; weights packed at load, tensor::DType::kBF16p: kLanes
// and a group of 16 rows' words). Every feature's sum takes the pairs in order, one
// vdpbf16ps each, whatever the layout, the tokens or the block of pairs.
// kAhead (weights packed at load): what the pass requests as it reads a pair (tile_shape.h).
template <size_t kT, size_t kV, PanelAhead kAhead = PanelAhead::kNothing>
__attribute__((target(IRIS_BF16_TARGET))) inline void PanelKernel(
    const uint32_t* __restrict xb, size_t x_pairs, const uint32_t* __restrict panel,
    size_t p_stride, size_t v_stride, size_t pairs, float* __restrict out, size_t out_stride,
    bool accumulate) {
  __m512 acc[kT][kV];
  for (size_t t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kV; ++v) {
      acc[t][v] =
          accumulate ? _mm512_loadu_ps(out + t * out_stride + v * kLanes) : _mm512_setzero_ps();
    }
  }
  for (size_t p = 0; p < pairs; ++p) {
    __m512bh w[kV];
    for (size_t v = 0; v < kV; ++v) {
      if constexpr (kAhead == PanelAhead::kPairsAhead) {
        _mm_prefetch(reinterpret_cast<const char*>(panel + (p + kHalfPanelAheadPairs) * p_stride +
                                                   v * v_stride),
                     _MM_HINT_T0);
      } else if constexpr (kAhead == PanelAhead::kNextBlock) {
        _mm_prefetch(
            reinterpret_cast<const char*>(panel + (p + kPanelPairs) * p_stride + v * v_stride),
            _MM_HINT_T1);
      }
      w[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(panel + p * p_stride + v * v_stride));
    }
    for (size_t t = 0; t < kT; ++t) {
      const __m512bh xv =
          reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(xb[t * x_pairs + p])));
      for (size_t v = 0; v < kV; ++v) acc[t][v] = _mm512_dpbf16_ps(acc[t][v], xv, w[v]);
    }
  }
  for (size_t t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kV; ++v) {
      _mm512_storeu_ps(out + t * out_stride + v * kLanes, acc[t][v]);
    }
  }
}

// Passes `pass`, pass + 1, … over a block of kPanelPairs pairs (or fewer, the last), kT tokens
// each (fewer at the end); with kAtLoad (weights packed at load, read from memory) each pass
// requests what AheadOfPass says.
template <size_t kT, size_t kV, bool kAtLoad = false>
__attribute__((target(IRIS_BF16_TARGET))) void PanelTokens(const uint32_t* xb, size_t x_pairs,
                                                           size_t num_tokens, const uint32_t* panel,
                                                           size_t p_stride, size_t v_stride,
                                                           size_t pairs, float* out,
                                                           size_t out_stride, bool accumulate,
                                                           size_t pass = 0) {
  size_t t = 0;
  for (; t + kT <= num_tokens; t += kT, ++pass) {
    auto run = [&](auto ahead) __attribute__((target(IRIS_BF16_TARGET))) {
      PanelKernel<kT, kV, decltype(ahead)::value>(xb + t * x_pairs, x_pairs, panel, p_stride,
                                                  v_stride, pairs, out + t * out_stride, out_stride,
                                                  accumulate);
    };
    if constexpr (!kAtLoad) {  // (panels packed per call: their own strides, in cache)
      run(std::integral_constant<PanelAhead, PanelAhead::kNothing>());
    } else {
      WithPanelAhead(AheadOfPass(pass), run);
    }
  }
  if constexpr (kT > 1) {
    if (t < num_tokens) {
      PanelTokens<kT / 2, kV, kAtLoad>(xb + t * x_pairs, x_pairs, num_tokens - t, panel, p_stride,
                                       v_stride, pairs, out + t * out_stride, out_stride,
                                       accumulate, pass);
    }
  }
}

// ---- Few tokens (decode, a decoding batch): dot-product tiles over the weight rows ----
//
// Below kBf16GemmMinTokens tokens, packing panels costs more than it saves: a tile of
// kT tokens × kR rows reads 16 pairs of each row straight from the weights (converted to bf16
// pairs in registers where they are F32 or F16; BF16 weights are used as they are) and adds
// one vdpbf16ps per token and row to a vector of partial sums, whose lanes are added at the
// end (x86::LaneSums16). A pair's two products go into the same lane, odd then even, as in
// the panels; only the order in which the lanes' partial sums meet differs.
template <size_t kT, size_t kR>
__attribute__((target(IRIS_BF16_TARGET))) inline void DotTile(const uint32_t* __restrict xb,
                                                              size_t pairs, const uint8_t* w,
                                                              size_t row_bytes, tensor::DType dtype,
                                                              size_t k_dim, float* __restrict out,
                                                              size_t out_stride) {
  const size_t es = tensor::DTypeSize(dtype);
  __m512 acc[kT][kR];
  for (size_t t = 0; t < kT; ++t) {
    for (size_t r = 0; r < kR; ++r) acc[t][r] = _mm512_setzero_ps();
  }
  // Rows of a tile are adjacent, so the next tile starts kR rows ahead: ask for its line
  // while this one streams.
  size_t p = 0;
  for (; 2 * (p + kLanes) <= k_dim; p += kLanes) {
    for (size_t r = 0; r < kR; ++r) {  // 32 values: one line, two of F32
      const uint8_t* next = w + (kR + r) * row_bytes + 2 * p * es;
      _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T0);
      if (es == 4) _mm_prefetch(reinterpret_cast<const char*>(next + 64), _MM_HINT_T0);
    }
    __m512bh wv[kR];
    for (size_t r = 0; r < kR; ++r) {
      wv[r] = reinterpret_cast<__m512bh>(Bf16Pairs16(w + r * row_bytes + 2 * p * es, dtype));
    }
    for (size_t t = 0; t < kT; ++t) {
      __m512i xi = _mm512_loadu_si512(xb + t * pairs + p);
      // Held in a register: one load for kR products, not a memory operand in each.
      if constexpr (kR > 1) __asm__("" : "+v"(xi));
      const __m512bh xv = reinterpret_cast<__m512bh>(xi);
      for (size_t r = 0; r < kR; ++r) acc[t][r] = _mm512_dpbf16_ps(acc[t][r], xv, wv[r]);
    }
  }
  if (p < pairs) {
    // The last values of each row (fewer than 32, or an odd k): rounded as ToBf16 rounds and
    // padded with zeros, against the activations' last pairs (a zero after an odd k).
    const auto live = static_cast<__mmask16>((1u << (pairs - p)) - 1);
    const size_t k0 = 2 * p, kc = k_dim - k0;
    for (size_t r = 0; r < kR; ++r) {
      alignas(64) float wide[2 * kLanes];
      alignas(64) uint16_t narrow[2 * kLanes] = {};
      ConvertRowToF32(w + r * row_bytes + k0 * es, dtype, kc, wide);
      ToBf16(wide, kc, narrow);
      const auto wv = reinterpret_cast<__m512bh>(_mm512_load_si512(narrow));
      for (size_t t = 0; t < kT; ++t) {
        const auto xv =
            reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi32(live, xb + t * pairs + p));
        acc[t][r] = _mm512_dpbf16_ps(acc[t][r], xv, wv);
      }
    }
  }
  float sums[kT * kR];
  x86::LaneSums16(&acc[0][0], kT * kR, sums);
  for (size_t t = 0; t < kT; ++t) {
    for (size_t r = 0; r < kR; ++r) out[t * out_stride + r] = sums[t * kR + r];
  }
}

// Rows [n_begin, n_end) for kT tokens (1 to 8), in tiles of TileRows32(kT) rows.
template <size_t kT>
__attribute__((target(IRIS_BF16_TARGET))) void DotRows(const uint32_t* xb, size_t pairs,
                                                       const uint8_t* w, tensor::DType dtype,
                                                       size_t k_dim, size_t n_begin, size_t n_end,
                                                       float* out, size_t out_stride) {
  constexpr size_t kR = TileRows32(kT);
  const size_t row_bytes = k_dim * tensor::DTypeSize(dtype);
  size_t n = n_begin;
  for (; n + kR <= n_end; n += kR) {
    DotTile<kT, kR>(xb, pairs, w + n * row_bytes, row_bytes, dtype, k_dim, out + (n - n_begin),
                    out_stride);
  }
  // The rows left at the end of a range: half tiles, then one row at a time.
  constexpr size_t kHalf = kR / 2;
  if constexpr (kHalf > 1) {
    for (; n + kHalf <= n_end; n += kHalf) {
      DotTile<kT, kHalf>(xb, pairs, w + n * row_bytes, row_bytes, dtype, k_dim, out + (n - n_begin),
                         out_stride);
    }
  }
  for (; n < n_end; ++n) {
    DotTile<kT, 1>(xb, pairs, w + n * row_bytes, row_bytes, dtype, k_dim, out + (n - n_begin),
                   out_stride);
  }
}

// Tokens go in groups of 8, then the rest (1 to 7) as one group. Every group passes over a
// block of rows while it is in L2 (about 256 KiB of weights), rather than each group reading
// all rows from memory.
__attribute__((target(IRIS_BF16_TARGET))) void DotTokens(const uint32_t* xb, size_t num_tokens,
                                                         const void* w, tensor::DType dtype,
                                                         size_t k_dim, size_t n_begin, size_t n_end,
                                                         float* out, size_t out_stride) {
  const size_t pairs = Bf16Pairs(k_dim);
  const auto* wb = static_cast<const uint8_t*>(w);
  const size_t row_bytes = k_dim * tensor::DTypeSize(dtype);
  // (A whole number of every tile's rows: 3, 4, 6 and 8.)
  const size_t block = num_tokens <= 8
                           ? n_end - n_begin
                           : std::max<size_t>(24, (size_t{256} << 10) / row_bytes / 24 * 24);
  for (size_t b = n_begin; b < n_end; b += block) {
    const size_t e = std::min(n_end, b + block);
    auto rows = [&](auto tokens, size_t t) {
      DotRows<decltype(tokens)::value>(xb + t * pairs, pairs, wb, dtype, k_dim, b, e,
                                       out + t * out_stride + (b - n_begin), out_stride);
    };
    size_t t = 0;
    for (; t + 8 <= num_tokens; t += 8) rows(std::integral_constant<size_t, 8>(), t);
    WithStaticCount<7>(num_tokens - t, [&](auto tokens) { rows(tokens, t); });
  }
}

// ---- AMX: the same panels through tile registers ----
//
// tdpbf16ps C += A · B multiplies a tile of 16 tokens × 16 pairs (A: rows of the packed
// activations as they are) by a tile of 16 pairs × 16 features (B: 16 rows of a panel, which
// already holds one feature's pair per word, rows of kWidth words) into 16 × 16 f32 sums (C).
// A panel's 48 features are three C tiles, with one A and three B tiles: 7 of the 8. Every
// tile is 16 rows of 64 bytes, configured once per call; a partial block (the last tokens,
// the last pairs of a row) goes through zero-padded scratch, so the configuration never
// changes while sums are held in tiles (loading one zeroes every tile).

#define IRIS_AMX_TARGET IRIS_BF16_TARGET ",amx-tile,amx-bf16"

constexpr size_t kTileRows = 16;   // tokens per tile
constexpr size_t kTilePairs = 16;  // pairs per tile row: 64 bytes
constexpr size_t kCTiles = kVectors;

// The tile instructions in software, as the architecture defines them (tdpbf16ps: for each
// pair the product of the odd elements, then that of the even ones, added to the sum; bf16
// subnormal inputs read as zero, subnormal sums flushed to zero, round to nearest even). The
// AMX kernel runs on them as "amx-emulated", so its code is tested on any CPU with
// AVX512-BF16 (tests only: slow).
struct EmulatedTiles {
  float c[kCTiles][kTileRows][kLanes];
  uint32_t a[kTileRows][kTilePairs];
  uint32_t b[kCTiles][kTilePairs][kLanes];

  static float Daz(uint16_t bf16) {
    if ((bf16 & 0x7f80u) == 0) return std::signbit(tensor::Bf16ToF32(bf16)) ? -0.0f : 0.0f;
    return tensor::Bf16ToF32(bf16);
  }
  static float Ftz(float x) {
    return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x;
  }
  void ZeroC(size_t i) { std::memset(c[i], 0, sizeof c[i]); }
  void LoadC(size_t i, const float* p, size_t stride_bytes) {
    for (size_t r = 0; r < kTileRows; ++r) {
      std::memcpy(c[i][r], reinterpret_cast<const uint8_t*>(p) + r * stride_bytes, 64);
    }
  }
  void StoreC(size_t i, float* p, size_t stride_bytes) {
    for (size_t r = 0; r < kTileRows; ++r) {
      std::memcpy(reinterpret_cast<uint8_t*>(p) + r * stride_bytes, c[i][r], 64);
    }
  }
  void LoadA(const uint32_t* p, size_t stride_bytes) {
    for (size_t r = 0; r < kTileRows; ++r) {
      std::memcpy(a[r], reinterpret_cast<const uint8_t*>(p) + r * stride_bytes, 64);
    }
  }
  void LoadB(size_t i, const uint32_t* p, size_t stride_bytes) {
    for (size_t r = 0; r < kTilePairs; ++r) {
      std::memcpy(b[i][r], reinterpret_cast<const uint8_t*>(p) + r * stride_bytes, 64);
    }
  }
  void Dp(size_t i) {  // C[i] += A · B[i]
    for (size_t m = 0; m < kTileRows; ++m) {
      for (size_t n = 0; n < kLanes; ++n) {
        float sum = c[i][m][n];
        for (size_t p = 0; p < kTilePairs; ++p) {
          const uint32_t x = a[m][p], w = b[i][p][n];
          // Each step an f32 FMA, as defined (a bf16 product is exact in f32 unless it falls
          // below f32's normal range).
          sum = Ftz(std::fma(Daz(static_cast<uint16_t>(x >> 16)),
                             Daz(static_cast<uint16_t>(w >> 16)), sum));
          sum = Ftz(std::fma(Daz(static_cast<uint16_t>(x)), Daz(static_cast<uint16_t>(w)), sum));
        }
        c[i][m][n] = sum;
      }
    }
  }
};

// The layout ldtilecfg reads: palette 1, then each tile's bytes per row and rows.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// The intrinsics' inline assembly names neither the memory it reads nor all of the
// configuration: stores before a tile load must not be moved past it.
inline void CompilerBarrier() { __asm__ __volatile__("" ::: "memory"); }

// Tiles 0-2: C; 3: A; 4-6: B. The tile numbers are the instructions' immediates.
struct HardwareTiles {
  __attribute__((target(IRIS_AMX_TARGET))) static void Begin() {
    TileConfig cfg;
    for (size_t t = 0; t < 7; ++t) {
      cfg.colsb[t] = 64;
      cfg.rows[t] = kTileRows;
    }
    CompilerBarrier();
    _tile_loadconfig(&cfg);
  }
  __attribute__((target(IRIS_AMX_TARGET))) static void End() { _tile_release(); }
  __attribute__((target(IRIS_AMX_TARGET), always_inline)) inline void ZeroC(size_t i) {
    if (i == 0) _tile_zero(0);
    if (i == 1) _tile_zero(1);
    if (i == 2) _tile_zero(2);
  }
  __attribute__((target(IRIS_AMX_TARGET), always_inline)) inline void LoadC(size_t i,
                                                                            const float* p,
                                                                            size_t stride) {
    CompilerBarrier();
    if (i == 0) _tile_loadd(0, p, stride);
    if (i == 1) _tile_loadd(1, p, stride);
    if (i == 2) _tile_loadd(2, p, stride);
  }
  __attribute__((target(IRIS_AMX_TARGET), always_inline)) inline void StoreC(size_t i, float* p,
                                                                             size_t stride) {
    if (i == 0) _tile_stored(0, p, stride);
    if (i == 1) _tile_stored(1, p, stride);
    if (i == 2) _tile_stored(2, p, stride);
  }
  __attribute__((target(IRIS_AMX_TARGET), always_inline)) inline void LoadA(const uint32_t* p,
                                                                            size_t stride) {
    CompilerBarrier();
    _tile_loadd(3, p, stride);
  }
  __attribute__((target(IRIS_AMX_TARGET), always_inline)) inline void LoadB(size_t i,
                                                                            const uint32_t* p,
                                                                            size_t stride) {
    CompilerBarrier();
    if (i == 0) _tile_loadd(4, p, stride);
    if (i == 1) _tile_loadd(5, p, stride);
    if (i == 2) _tile_loadd(6, p, stride);
  }
  __attribute__((target(IRIS_AMX_TARGET), always_inline)) inline void Dp(size_t i) {
    if (i == 0) _tile_dpbf16ps(0, 3, 4);
    if (i == 1) _tile_dpbf16ps(1, 3, 5);
    if (i == 2) _tile_dpbf16ps(2, 3, 6);
  }
};

// PanelTokens through tiles: out[t, 0..16·nv) (+)= Σ_p xb[t, p] · the panel's pair p for the
// pc pairs of the panel (laid out as PanelKernel reads it, nv vectors of 16 features), whose
// pairs [pc, round up to 16) are zero.
template <class Tiles>
__attribute__((target(IRIS_AMX_TARGET))) void AmxPanelTokens(Tiles& tiles, const uint32_t* xb,
                                                             size_t x_pairs, size_t num_tokens,
                                                             const uint32_t* panel, size_t p_stride,
                                                             size_t v_stride, size_t nv, size_t pc,
                                                             float* out, size_t out_stride,
                                                             bool accumulate) {
  alignas(64) uint32_t a_pad[kTileRows * kTilePairs];
  alignas(64) float c_pad[kCTiles][kTileRows * kLanes];
  const size_t pc_tiles = (pc + kTilePairs - 1) / kTilePairs * kTilePairs;
  for (size_t t0 = 0; t0 < num_tokens; t0 += kTileRows) {
    const size_t m = std::min(kTileRows, num_tokens - t0);
    float* o = out + t0 * out_stride;
    const bool whole_rows = m == kTileRows;
    for (size_t i = 0; i < nv; ++i) {
      if (!accumulate) {
        tiles.ZeroC(i);
      } else if (whole_rows) {
        tiles.LoadC(i, o + i * kLanes, out_stride * sizeof(float));
      } else {
        std::fill(c_pad[i], c_pad[i] + kTileRows * kLanes, 0.0f);
        for (size_t r = 0; r < m; ++r) {
          std::copy_n(o + r * out_stride + i * kLanes, kLanes, c_pad[i] + r * kLanes);
        }
        tiles.LoadC(i, c_pad[i], kLanes * sizeof(float));
      }
    }
    for (size_t p = 0; p < pc_tiles; p += kTilePairs) {
      if (whole_rows && p + kTilePairs <= pc) {
        tiles.LoadA(xb + t0 * x_pairs + p, x_pairs * sizeof(uint32_t));
      } else {
        const size_t q = std::min(kTilePairs, pc - p);
        std::fill(a_pad, a_pad + kTileRows * kTilePairs, 0u);
        for (size_t r = 0; r < m; ++r) {
          std::copy_n(xb + (t0 + r) * x_pairs + p, q, a_pad + r * kTilePairs);
        }
        tiles.LoadA(a_pad, kTilePairs * sizeof(uint32_t));
      }
      for (size_t i = 0; i < nv; ++i) {
        tiles.LoadB(i, panel + p * p_stride + i * v_stride, p_stride * sizeof(uint32_t));
      }
      for (size_t i = 0; i < nv; ++i) tiles.Dp(i);
    }
    for (size_t i = 0; i < nv; ++i) {
      if (whole_rows) {
        tiles.StoreC(i, o + i * kLanes, out_stride * sizeof(float));
      } else {
        tiles.StoreC(i, c_pad[i], kLanes * sizeof(float));
        for (size_t r = 0; r < m; ++r) {
          std::copy_n(c_pad[i] + r * kLanes, kLanes, o + r * out_stride + i * kLanes);
        }
      }
    }
  }
}

enum class Bf16Path { kAvx512Bf16, kAmx, kAmxEmulated };
constexpr const char* kBf16PathNames[] = {"avx512bf16", "amx", "amx-emulated"};
std::atomic<int> g_bf16_forced{-1};

bool AvxBf16Available() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512bf16");
  return ok;
}

// AMX-TILE and AMX-BF16 (CPUID leaf 7, EDX bits 24 and 22), and the tile data state granted
// to this process by Linux (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, feature 18):
// without that grant the first tile instruction faults.
bool AmxGranted() {
  if (!AvxBf16Available()) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  if ((edx & (1u << 24)) == 0 || (edx & (1u << 22)) == 0) return false;
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

__attribute__((target(IRIS_BF16_TARGET))) void GemmBf16(Bf16Path path, const uint32_t* xb,
                                                        size_t num_tokens, const void* w,
                                                        tensor::DType w_dtype, size_t k_dim,
                                                        size_t n_begin, size_t n_end, float* out,
                                                        size_t out_stride) {
  const size_t pairs = Bf16Pairs(k_dim);
  HardwareTiles hardware;
  EmulatedTiles emulated;  // (tests only; its tiles are loaded or zeroed before they are read)
  if (path == Bf16Path::kAmx) HardwareTiles::Begin();
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
      if (path == Bf16Path::kAvx512Bf16) {
        PanelTokens<kTokens, kVectors>(xb + pb, pairs, num_tokens, panel.data(), kWidth, kLanes, pc,
                                       dst, dst_stride, pb != 0);
        continue;
      }
      // Tiles take whole blocks of 16 pairs: the rows past the panel's last pair are zero.
      const size_t pc_tiles = (pc + kTilePairs - 1) / kTilePairs * kTilePairs;
      std::fill(panel.begin() + static_cast<ptrdiff_t>(pc * kWidth),
                panel.begin() + static_cast<ptrdiff_t>(pc_tiles * kWidth), 0u);
      if (path == Bf16Path::kAmx) {
        AmxPanelTokens(hardware, xb + pb, pairs, num_tokens, panel.data(), kWidth, kLanes, kVectors,
                       pc, dst, dst_stride, pb != 0);
      } else {
        AmxPanelTokens(emulated, xb + pb, pairs, num_tokens, panel.data(), kWidth, kLanes, kVectors,
                       pc, dst, dst_stride, pb != 0);
      }
    }
    if (nr != kWidth) {
      for (size_t t = 0; t < num_tokens; ++t) {
        std::copy_n(scratch.data() + t * kWidth, nr, out + t * out_stride + (nb - n_begin));
      }
    }
  }
  if (path == Bf16Path::kAmx) HardwareTiles::End();
}

// PanelTokens over nv (1 to kVectors) groups of weights packed at load.
__attribute__((target(IRIS_BF16_TARGET))) void GroupPanelTokens(
    size_t nv, const uint32_t* xb, size_t x_pairs, size_t num_tokens, const uint32_t* panel,
    size_t group_words, size_t pairs, float* out, size_t out_stride, bool accumulate) {
  static_assert(kVectors == 3);
  if (nv == 3) {
    PanelTokens<kTokens, 3, true>(xb, x_pairs, num_tokens, panel, kLanes, group_words, pairs, out,
                                  out_stride, accumulate);
  } else if (nv == 2) {
    PanelTokens<kTokens, 2, true>(xb, x_pairs, num_tokens, panel, kLanes, group_words, pairs, out,
                                  out_stride, accumulate);
  } else {
    PanelTokens<kTokens, 1, true>(xb, x_pairs, num_tokens, panel, kLanes, group_words, pairs, out,
                                  out_stride, accumulate);
  }
}

// GemmBf16 over weights packed at load (tensor::DType::kBF16p), for any number of tokens:
// the panels are read where they lie, a group of 16 rows after another, kVectors groups at a
// time; every feature's sum takes its pairs in the order GemmBf16 takes them, so the numbers
// are GemmBf16's bit for bit, and a token's do not depend on the tokens beside it.
__attribute__((target(IRIS_BF16_TARGET))) void GemmBf16Panels(Bf16Path path, const uint32_t* xb,
                                                              size_t num_tokens, const void* w,
                                                              size_t k_dim, size_t n_begin,
                                                              size_t n_end, float* out,
                                                              size_t out_stride) {
  const size_t pairs = Bf16Pairs(k_dim);
  const size_t group_words = tensor::HalfPanelPairs(k_dim) * tensor::kHalfPanelRows;
  static_assert(tensor::kHalfPanelRows == kLanes);
  const auto* wp = static_cast<const uint32_t*>(w);
  HardwareTiles hardware;
  EmulatedTiles emulated;  // (tests only)
  if (path == Bf16Path::kAmx) HardwareTiles::Begin();
  for (size_t nb = n_begin; nb < n_end; nb += kWidth) {
    const size_t nv = std::min(kVectors, (n_end - nb) / kLanes);
    const uint32_t* groups = wp + nb / kLanes * group_words;
    float* dst = out + (nb - n_begin);
    for (size_t pb = 0; pb < pairs; pb += kPanelPairs) {
      const size_t pc = std::min(kPanelPairs, pairs - pb);
      const uint32_t* panel = groups + pb * kLanes;
      const bool accumulate = pb != 0;
      if (path == Bf16Path::kAvx512Bf16) {
        GroupPanelTokens(nv, xb + pb, pairs, num_tokens, panel, group_words, pc, dst, out_stride,
                         accumulate);
      } else if (path == Bf16Path::kAmx) {  // (pairs past pc are zero in the layout)
        AmxPanelTokens(hardware, xb + pb, pairs, num_tokens, panel, kLanes, group_words, nv, pc,
                       dst, out_stride, accumulate);
      } else {
        AmxPanelTokens(emulated, xb + pb, pairs, num_tokens, panel, kLanes, group_words, nv, pc,
                       dst, out_stride, accumulate);
      }
    }
  }
  if (path == Bf16Path::kAmx) HardwareTiles::End();
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

// The tiles are first checked against the vector path on a small product with partial blocks
// of tokens, pairs and features: a CPU, kernel or toolchain whose tiles disagree keeps
// vdpbf16ps (and ActiveBf16Path, which the bench's JSON reports, says so).
bool AmxAgreesWithVectors() {
  constexpr size_t kTok = 19, kK = 300, kN = 50;
  std::vector<float> x(kTok * kK), w(kN * kK);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * std::cos(0.11f * static_cast<float>(i));
  std::vector<uint32_t> xb(kTok * Bf16Pairs(kK));
  PackBf16(x.data(), kK, kTok, kK, xb.data());
  std::vector<float> tiles(kTok * kN), vectors(kTok * kN);
  GemmBf16(Bf16Path::kAmx, xb.data(), kTok, w.data(), tensor::DType::kF32, kK, 0, kN, tiles.data(),
           kN);
  GemmBf16(Bf16Path::kAvx512Bf16, xb.data(), kTok, w.data(), tensor::DType::kF32, kK, 0, kN,
           vectors.data(), kN);
  for (size_t i = 0; i < tiles.size(); ++i) {
    if (!(std::abs(tiles[i] - vectors[i]) <= 1e-5f * (1.0f + static_cast<float>(kK)))) {
      return false;
    }
  }
  return true;
}

bool AmxAvailable() {
  static const bool ok = AmxGranted() && AmxAgreesWithVectors();
  return ok;
}

bool Bf16PathSupported(Bf16Path p) {
  return p == Bf16Path::kAmx ? AmxAvailable() : AvxBf16Available();
}

Bf16Path ActivePath() {
  const int forced = g_bf16_forced.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<Bf16Path>(forced);
  return AmxAvailable() ? Bf16Path::kAmx : Bf16Path::kAvx512Bf16;
}

}  // namespace

bool Bf16ProductsAvailable() { return AvxBf16Available(); }

std::vector<std::string> AvailableBf16Paths() {
  std::vector<std::string> names;
  for (Bf16Path p : {Bf16Path::kAmx, Bf16Path::kAvx512Bf16}) {
    if (Bf16PathSupported(p)) names.push_back(kBf16PathNames[static_cast<int>(p)]);
  }
  return names;
}

std::string ActiveBf16Path() {
  return Bf16ProductsAvailable() ? kBf16PathNames[static_cast<int>(ActivePath())] : "";
}

bool ForceBf16Path(const std::string& name) {
  if (name.empty()) {
    g_bf16_forced.store(-1);
    return true;
  }
  for (Bf16Path p : {Bf16Path::kAvx512Bf16, Bf16Path::kAmx, Bf16Path::kAmxEmulated}) {
    if (name == kBf16PathNames[static_cast<int>(p)] && Bf16PathSupported(p)) {
      g_bf16_forced.store(static_cast<int>(p));
      return true;
    }
  }
  return false;
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

namespace {

// Row r's words (HalfPanelPairs of them, zeros past its pairs) into its group's panel.
void ScatterRowWords(const uint32_t* words, size_t padded, size_t r, uint32_t* panels) {
  uint32_t* group = panels + r / tensor::kHalfPanelRows * padded * tensor::kHalfPanelRows;
  const size_t lane = r % tensor::kHalfPanelRows;
  for (size_t p = 0; p < padded; ++p) group[p * tensor::kHalfPanelRows + lane] = words[p];
}

}  // namespace

void PackBf16Panels(const void* w, tensor::DType w_dtype, size_t k_dim, size_t r_begin,
                    size_t r_end, void* panels, bool exact_f32) {
  IRIS_CHECK(r_begin % tensor::kHalfPanelRows == 0 && r_end % tensor::kHalfPanelRows == 0);
  IRIS_CHECK(w_dtype == tensor::DType::kF32 || w_dtype == tensor::DType::kF16 ||
             w_dtype == tensor::DType::kBF16);
  const size_t padded = tensor::HalfPanelPairs(k_dim);
  const size_t es = tensor::DTypeSize(w_dtype);
  std::vector<float> row(k_dim);
  std::vector<uint32_t> words(padded);  // one row's pairs, zeros after them
  for (size_t r = r_begin; r < r_end; ++r) {
    const auto* src = static_cast<const uint8_t*>(w) + r * k_dim * es;
    std::fill(words.begin(), words.end(), 0u);
    if (w_dtype == tensor::DType::kBF16) {  // stored bf16: used as they are
      std::memcpy(words.data(), src, k_dim * 2);
    } else if (exact_f32) {  // values that are bf16 already: their high halves, subnormals too
      auto* halves = reinterpret_cast<uint16_t*>(words.data());
      for (size_t j = 0; j < k_dim; ++j) {
        uint32_t bits;
        std::memcpy(&bits, src + 4 * j, 4);
        halves[j] = static_cast<uint16_t>(bits >> 16);
      }
    } else {  // rounded as the products round their activations
      ConvertRowToF32(src, w_dtype, k_dim, row.data());
      PackActivationsBf16(row.data(), k_dim, 1, k_dim, words.data());
    }
    ScatterRowWords(words.data(), padded, r, static_cast<uint32_t*>(panels));
  }
}

void PackF16Panels(const void* w, size_t k_dim, size_t r_begin, size_t r_end, void* panels) {
  IRIS_CHECK(r_begin % tensor::kHalfPanelRows == 0 && r_end % tensor::kHalfPanelRows == 0);
  constexpr size_t kRows = tensor::kHalfPanelRows;
  const size_t padded = tensor::HalfPanelPairs(k_dim);
  const auto* src = static_cast<const uint16_t*>(w);
  auto* dst = static_cast<uint16_t*>(panels);
  for (size_t r = r_begin; r < r_end; ++r) {
    // The group column by column: row r's column j in lane r % 16 of the group's column j;
    // zeros past k.
    uint16_t* lane = dst + r / kRows * padded * 2 * kRows + r % kRows;
    const uint16_t* row = src + r * k_dim;
    for (size_t j = 0; j < 2 * padded; ++j) lane[j * kRows] = j < k_dim ? row[j] : uint16_t{0};
  }
}

void MatMulRowsBf16Packed(const uint32_t* xb, size_t num_tokens, const void* w,
                          tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end,
                          float* out, size_t out_stride) {
  if (num_tokens == 0 || n_begin >= n_end || k_dim == 0) return;
  // (F16 panels are the exact path's: the bf16 products take their matrices as kBF16p.)
  IRIS_CHECK_MSG(w_dtype != tensor::DType::kF16p, "MatMulRowsBf16: F16 panels");
  const bool packed = w_dtype == tensor::DType::kBF16p;
  IRIS_CHECK(!packed ||
             (n_begin % tensor::kHalfPanelRows == 0 && n_end % tensor::kHalfPanelRows == 0));
  if (!Bf16ProductsAvailable()) {  // (only tests get here: the engine refuses bf16 first)
    const size_t pairs = Bf16Pairs(k_dim);
    thread_local std::vector<float> x, rows;
    x.resize(num_tokens * k_dim);
    for (size_t t = 0; t < num_tokens; ++t) {
      const auto* src = reinterpret_cast<const uint16_t*>(xb + t * pairs);
      for (size_t k = 0; k < k_dim; ++k) x[t * k_dim + k] = tensor::Bf16ToF32(src[k]);
    }
    if (packed) {  // the panels' rows [n_begin, n_end), as f32 rows
      rows.resize((n_end - n_begin) * k_dim);
      const tensor::TensorView v{
          w_dtype, {static_cast<int64_t>(n_end), static_cast<int64_t>(k_dim)}, w};
      for (size_t r = n_begin; r < n_end; ++r) {
        for (size_t j = 0; j < k_dim; ++j) {
          rows[(r - n_begin) * k_dim + j] = v.GetF32(static_cast<int64_t>(r * k_dim + j));
        }
      }
      MatMulRows(x.data(), k_dim, num_tokens, rows.data(), tensor::DType::kF32, k_dim, 0,
                 n_end - n_begin, out, out_stride);
      return;
    }
    MatMulRows(x.data(), k_dim, num_tokens, w, w_dtype, k_dim, n_begin, n_end, out, out_stride);
    return;
  }
  if (packed) {
    GemmBf16Panels(ActivePath(), xb, num_tokens, w, k_dim, n_begin, n_end, out, out_stride);
    return;
  }
  if (num_tokens < kBf16GemmMinTokens) {  // on every path (AMX tiles take panels)
    DotTokens(xb, num_tokens, w, w_dtype, k_dim, n_begin, n_end, out, out_stride);
    return;
  }
  GemmBf16(ActivePath(), xb, num_tokens, w, w_dtype, k_dim, n_begin, n_end, out, out_stride);
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
