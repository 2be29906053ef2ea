// The body of one x86 path of quant_kernels.cc, included once per path with
// IRIS_Q8_NS (namespace), IRIS_Q8_TARGET (target attribute string) and IRIS_Q8_DOT (a struct
// whose Dot(w, x) gives 8 int32 partial sums of a block's 32 products) defined.
// No include guard: it is meant to be included several times.

namespace IRIS_Q8_NS {

// R weight rows × T tokens: each weight block feeds T products, each activation block R.
// With kPrefetch (decode), the blocks of the next R rows are requested a few blocks ahead.
template <size_t R, size_t T, bool kPrefetch>
__attribute__((target(IRIS_Q8_TARGET), always_inline)) inline void Tile(
    const int8_t* xq, const float* xd, size_t k_dim, const uint8_t* w, size_t row_bytes, float* out,
    size_t out_stride) {
  const size_t nb = k_dim / kBlock;
  __m256 acc[T][R];
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) acc[t][r] = _mm256_setzero_ps();
  }
  for (size_t b = 0; b < nb; ++b) {
    const size_t off = b * kBlockBytes;
    if constexpr (kPrefetch) {
      if (b % 2 == 0) {
        for (size_t r = 0; r < R; ++r) {
          _mm_prefetch(reinterpret_cast<const char*>(w + (R + r) * row_bytes + off + 4 * 64),
                       _MM_HINT_T0);
        }
      }
    }
    __m256i wv[R];
    float dw[R];
    for (size_t r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * row_bytes + off;
      wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      uint16_t h;
      std::memcpy(&h, blk, 2);
      dw[r] = _cvtsh_ss(h);
    }
    for (size_t t = 0; t < T; ++t) {
      const __m256i x =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * k_dim + b * kBlock));
      const float dx = xd[t * nb + b];
      for (size_t r = 0; r < R; ++r) {
        const __m256 s = _mm256_set1_ps(dw[r] * dx);
        acc[t][r] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(IRIS_Q8_DOT::Dot(wv[r], x)), acc[t][r]);
      }
    }
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) out[t * out_stride + r] = HorizontalSum(acc[t][r]);
  }
}

// Rows [n_begin, n_end) for tokens [0, num_tokens): decode takes 8 rows at a time with
// prefetch (bound by reading weights); several tokens take tiles of 4 rows × 4 tokens.
__attribute__((target(IRIS_Q8_TARGET))) void Rows(const int8_t* xq, const float* xd,
                                                  size_t num_tokens, const uint8_t* w, size_t k_dim,
                                                  size_t n_begin, size_t n_end, float* out,
                                                  size_t out_stride) {
  const size_t nb = k_dim / kBlock, row_bytes = nb * kBlockBytes;
  size_t t = 0;
  for (; t + 4 <= num_tokens; t += 4) {
    const int8_t* x = xq + t * k_dim;
    const float* d = xd + t * nb;
    float* o = out + t * out_stride - n_begin;
    size_t n = n_begin;
    for (; n + 4 <= n_end; n += 4) {
      Tile<4, 4, false>(x, d, k_dim, w + n * row_bytes, row_bytes, o + n, out_stride);
    }
    for (; n < n_end; ++n) {
      Tile<1, 4, false>(x, d, k_dim, w + n * row_bytes, row_bytes, o + n, out_stride);
    }
  }
  for (; t < num_tokens; ++t) {
    const int8_t* x = xq + t * k_dim;
    const float* d = xd + t * nb;
    float* o = out + t * out_stride - n_begin;
    size_t n = n_begin;
    for (; n + 16 <= n_end; n += 8) {  // the next 8 rows exist: prefetch them
      Tile<8, 1, true>(x, d, k_dim, w + n * row_bytes, row_bytes, o + n, out_stride);
    }
    for (; n + 4 <= n_end; n += 4) {
      Tile<4, 1, false>(x, d, k_dim, w + n * row_bytes, row_bytes, o + n, out_stride);
    }
    for (; n < n_end; ++n) {
      Tile<1, 1, false>(x, d, k_dim, w + n * row_bytes, row_bytes, o + n, out_stride);
    }
  }
}

}  // namespace IRIS_Q8_NS
