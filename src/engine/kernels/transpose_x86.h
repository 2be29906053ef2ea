// Square transposes of 32-bit values in x86 vector registers, for packing weight panels
// (the prompt GEMM's f32 panels in kernels.cc, the bf16 pairs of bf16_kernels.cc), and the
// transposing additions that finish their dot-product tiles. Each
// function carries its own target attribute, so a caller compiled for that instruction set or
// a larger one (Highway's AVX2 and AVX-512 targets, the bf16 kernels) inlines it.
#pragma once

#include <immintrin.h>

#include <cstddef>

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() to their masked builtins and then warn
// that it is (or may be) used uninitialized (GCC bug 105593); the warning is about the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace iris::kernels::x86 {

// dst[j * stride + i] = lane j of r[i], for i, j in [0, 16): three rounds of shuffles (pairs
// of rows, then quadruples, then 128-bit blocks), 64 in all, instead of 256 scalar stores.
__attribute__((target("avx512f"))) inline void StoreTransposed16(const __m512* r, float* dst,
                                                                 size_t stride) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // u[4i + j], 128-bit block b: rows 4i..4i+3 of column 4b + j.
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);  // blocks 0, 2 of each
    const __m512 b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);  // blocks 1, 3
    const __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    _mm512_storeu_ps(dst + j * stride, _mm512_shuffle_f32x4(a, c, 0x88));
    _mm512_storeu_ps(dst + (j + 4) * stride, _mm512_shuffle_f32x4(b, d, 0x88));
    _mm512_storeu_ps(dst + (j + 8) * stride, _mm512_shuffle_f32x4(a, c, 0xdd));
    _mm512_storeu_ps(dst + (j + 12) * stride, _mm512_shuffle_f32x4(b, d, 0xdd));
  }
}

// The same for 8 × 8 (AVX2).
__attribute__((target("avx2"))) inline void StoreTransposed8(const __m256* r, float* dst,
                                                             size_t stride) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    _mm256_storeu_ps(dst + j * stride, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));
    _mm256_storeu_ps(dst + (j + 4) * stride, _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
  }
}

// sums[i] = the sum of the 16 lanes of v[i], i < n, with the bits of _mm512_reduce_add_ps,
// which adds lane j to lane j + 8, then j + 4, j + 2 and j + 1; here the same additions run
// for 16 vectors at once, in 45 shuffles and vector additions where 16 reductions take about
// 130 instructions (in a decoding batch's tile, with 16 or 24 sums over a row of 576, the
// reductions were a sixth of the work). For the dot-product tiles of kernels.cc and
// bf16_kernels.cc.
__attribute__((target("avx512f"))) inline void LaneSums16(const __m512* v, size_t n, float* sums) {
  if (n <= 4) {  // an edge tile: a few reductions cost less than the 45 steps
    for (size_t i = 0; i < n; ++i) sums[i] = _mm512_reduce_add_ps(v[i]);
    return;
  }
  for (size_t i0 = 0; i0 < n; i0 += 16) {
    __m512 a[16];
    for (size_t i = 0; i < 16; ++i) a[i] = i0 + i < n ? v[i0 + i] : _mm512_setzero_ps();
    // Lane j + 8 to lane j: vectors 2i and 2i + 1 in the low and high halves.
    for (size_t i = 0; i < 8; ++i) {
      a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)),
                           _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)));
    }
    // Lane j + 4 to lane j: vector 4i + b in 128-bit block b.
    for (size_t i = 0; i < 4; ++i) {
      a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)),
                           _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)));
    }
    // Lane j + 2 to lane j: block b holds vectors 8i + b (lanes 0, 1) and 8i + 4 + b (2, 3).
    for (size_t i = 0; i < 2; ++i) {
      a[i] = _mm512_add_ps(_mm512_shuffle_ps(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)),
                           _mm512_shuffle_ps(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)));
    }
    // Lane j + 1 to lane j: lane 4b + m holds the sum of vector 4m + b.
    const __m512 all = _mm512_add_ps(_mm512_shuffle_ps(a[0], a[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_ps(a[0], a[1], _MM_SHUFFLE(3, 1, 3, 1)));
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, all);
    for (size_t i = 0; i < 16 && i0 + i < n; ++i) sums[i0 + i] = lanes[4 * (i % 4) + i / 4];
  }
}

}  // namespace iris::kernels::x86

#pragma GCC diagnostic pop
