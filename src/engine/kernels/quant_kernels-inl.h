// The body of one x86 path of quant_kernels.cc, included once per path with
// IRIS_Q8_NS (namespace), IRIS_Q8_TARGET (target attribute string), IRIS_Q8_DOT (a struct
// whose Dot(w, x) gives 8 int32 partial sums of a block's 32 products), IRIS_Q8_VEC (the
// panel kernel's vector type: V256 or V512) and IRIS_Q8_DOTU (its unsigned × signed
// accumulating dot product) defined.
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

// T tokens × P panels of a panel layout (kernels.h, MatMulRowsPanels), on the vectors of
// IRIS_Q8_VEC (Vec::kRows rows each: a panel is kV vectors): per block, 8 groups of 4
// values, each group one IRIS_Q8_DOTU per token and vector (kRows rows × 4 unsigned weights ×
// the token's 4 values, broadcast; the nibble layouts split first, two groups per load, Q5_K
// and Q6_K then put their high bits above the nibbles; Q6_K's halves of 16 in two sums); then per
// block the integer sums scaled into the f32 outputs as RowsPScalar does, lane by lane the same
// operations in the same order (so its numbers on every path). With kPrefetch (decode), the panels
// after these are requested a block ahead.
template <Kind K, size_t T, size_t P, bool kPrefetch>
__attribute__((target(IRIS_Q8_TARGET), always_inline)) inline void TileP(
    const int8_t* x, size_t k_dim, const float* dx, const int32_t* sx, const int32_t* sx16,
    size_t nb, const uint8_t* w, size_t panel_bytes, float* out, size_t out_stride) {
  using Vec = IRIS_Q8_VEC;
  using F = typename Vec::F;
  using I = typename Vec::I;
  constexpr size_t kRows = Vec::kRows;
  constexpr size_t kV = tensor::kQ8PanelRows / kRows;  // vectors per panel
  constexpr size_t H = P * kV;                         // vectors of outputs per token
  constexpr tensor::DType kP = kPanelType<K>;
  constexpr size_t kValueBytes = tensor::PanelBlockBytes(kP);
  constexpr size_t kHigh = kHighBits<K>;  // bits above the nibble
  constexpr bool kK = kScaleAndMin<K> || K == Kind::kQ6_K;
  constexpr size_t kHalves = K == Kind::kQ6_K ? 2 : 1;  // integer sums per block
  // Where vector h's rows start in a field of `per_row` bytes a row, in its panel.
  auto panel = [&](size_t h) { return w + h / kV * panel_bytes; };
  auto rows = [](size_t h, size_t per_row) { return h % kV * kRows * per_row; };
  F acc[T][H];
  for (size_t t = 0; t < T; ++t) {
    for (size_t h = 0; h < H; ++h) acc[t][h] = Vec::ZeroF();
  }
  const size_t scales = nb * kValueBytes;  // then, for K, the super-scales
  const size_t super_bytes = kK ? tensor::PanelSuperBytes(kPanelType<K>) : 0;
  F sup[H][2] = {};  // K: the rows' super-scales (d, and dmin but for Q6_K)
  for (size_t b = 0; b < nb; ++b) {
    if constexpr (kPrefetch) {
      for (size_t p = 0; p < P; ++p) {
        const uint8_t* next = w + (P + p) * panel_bytes + b * kValueBytes;
        for (size_t line = 0; line < kValueBytes / 64; ++line) {
          _mm_prefetch(reinterpret_cast<const char*>(next + 64 * line), _MM_HINT_T0);
        }
      }
    }
    if constexpr (kK) {
      if (b % 8 == 0) {
        for (size_t h = 0; h < H; ++h) {
          const uint8_t* at = panel(h) + scales + nb * 32 + super_bytes * (b / 8) + rows(h, 2);
          for (size_t which = 0; which < super_bytes / 32; ++which) {
            sup[h][which] = Vec::Halves(at + 32 * which);
          }
        }
      }
    }
    I dot[kHalves][T][H];
    for (size_t k = 0; k < kHalves; ++k) {
      for (size_t t = 0; t < T; ++t) {
        for (size_t h = 0; h < H; ++h) dot[k][t][h] = Vec::ZeroI();
      }
    }
    // Unrolled, so that each group's sum, nibble and shifts are known when compiled (a
    // rolled loop kept Q6_K's two sums in memory).
#pragma GCC unroll 8
    for (size_t g = 0; g < 8; ++g) {
      const size_t k = kHalves == 2 ? g / 4 : 0;
      I wv[H];
      for (size_t h = 0; h < H; ++h) {
        const uint8_t* values = panel(h) + b * kValueBytes + rows(h, 4);
        const I loaded = Vec::Load(values + tensor::PanelValueOffset(kP, 0, 4 * g));
        if constexpr (kNibbles<K>) {
          wv[h] = Vec::Nibbles(loaded, tensor::PanelValueShift(kP, 4 * g) != 0);
          if constexpr (kHigh != 0) {  // the bits above the nibble (value 4g's place)
            constexpr auto kMask = static_cast<uint8_t>(((1u << kHigh) - 1) << 4);
            wv[h] =
                Vec::AboveNibble(wv[h], Vec::Load(values + tensor::PanelHighOffset(kP, 0, 4 * g)),
                                 tensor::PanelHighShift(kP, 4 * g), kMask);
          }
        } else {
          wv[h] = loaded;
        }
      }
      for (size_t t = 0; t < T; ++t) {
        int32_t four;
        std::memcpy(&four, x + t * k_dim + b * kBlock + 4 * g, 4);
        const I xv = Vec::SetI(four);
        for (size_t h = 0; h < H; ++h) dot[k][t][h] = IRIS_Q8_DOTU(dot[k][t][h], wv[h], xv);
      }
    }
    if constexpr (K == Kind::kQ8_0 || K == Kind::kQ4_0) {
      constexpr int32_t kOffset = K == Kind::kQ4_0 ? 8 : 128;
      F sw[H];
      for (size_t h = 0; h < H; ++h) sw[h] = Vec::Halves(panel(h) + scales + 32 * b + rows(h, 2));
      for (size_t t = 0; t < T; ++t) {
        const I undo = Vec::SetI(kOffset * sx[t * nb + b]);
        const F d = Vec::Set(dx[t * nb + b]);
        for (size_t h = 0; h < H; ++h) {
          const F v = Vec::ToF(Vec::Sub(dot[0][t][h], undo));
          acc[t][h] = Vec::MulAdd(v, Vec::Mul(sw[h], d), acc[t][h]);
        }
      }
    } else {
      F first[H], second[H];
      for (size_t h = 0; h < H; ++h) {
        const uint8_t* at = panel(h) + scales + 32 * b + rows(h, 1);
        if constexpr (kScaleAndMin<K>) {  // d · sc and dmin · m
          first[h] = Vec::Mul(sup[h][0], Vec::Unsigned8(at));
          second[h] = Vec::Mul(sup[h][1], Vec::Unsigned8(at + 16));
        } else {  // the halves' int8 scales
          first[h] = Vec::Signed8(at);
          second[h] = Vec::Signed8(at + 16);
        }
      }
      for (size_t t = 0; t < T; ++t) {
        const F d = Vec::Set(dx[t * nb + b]);
        if constexpr (kScaleAndMin<K>) {
          const F sum = Vec::Set(static_cast<float>(sx[t * nb + b]));
          for (size_t h = 0; h < H; ++h) {
            const F u = Vec::Mul(first[h], Vec::ToF(dot[0][t][h]));
            const F v = Vec::NegMulAdd(second[h], sum, u);
            acc[t][h] = Vec::MulAdd(v, d, acc[t][h]);
          }
        } else {
          const I undo_lo = Vec::SetI(32 * sx16[t * 2 * nb + 2 * b]);
          const I undo_hi = Vec::SetI(32 * sx16[t * 2 * nb + 2 * b + 1]);
          for (size_t h = 0; h < H; ++h) {
            const F lo = Vec::ToF(Vec::Sub(dot[0][t][h], undo_lo));
            const F hi = Vec::ToF(Vec::Sub(dot[kHalves - 1][t][h], undo_hi));
            const F v = Vec::MulAdd(hi, second[h], Vec::Mul(lo, first[h]));
            acc[t][h] = Vec::MulAdd(v, Vec::Mul(sup[h][0], d), acc[t][h]);
          }
        }
      }
    }
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t h = 0; h < H; ++h) Vec::Store(out + t * out_stride + h * kRows, acc[t][h]);
  }
}

// Panels [p_begin, p_end) for tokens [0, num_tokens): prompts take tiles of
// Vec::kPromptTokens tokens × kPromptPanels panels, decode kDecodePanels panels at a time with
// the next ones prefetched (the tile sizes that fit each target's registers).
template <Kind K>
__attribute__((target(IRIS_Q8_TARGET))) void RowsP(const int8_t* xq, const float* xd,
                                                   const int32_t* xs, const int32_t* xs16,
                                                   size_t num_tokens, const uint8_t* w,
                                                   size_t k_dim, size_t p_begin, size_t p_end,
                                                   float* out, size_t out_stride) {
  using Vec = IRIS_Q8_VEC;
  constexpr size_t kT = Vec::kPromptTokens, kP = Vec::kPromptPanels, kD = Vec::kDecodePanels;
  const size_t nb = k_dim / kBlock;
  const size_t pb = tensor::PanelBytes(kPanelType<K>, k_dim);
  auto tokens = [&](size_t t) {
    return std::make_tuple(xq + t * k_dim, xd + t * nb, xs + t * nb,
                           xs16 == nullptr ? nullptr : xs16 + t * 2 * nb, out + t * out_stride);
  };
  size_t t = 0;
  for (; t + kT <= num_tokens; t += kT) {
    const auto [x, d, s, s16, o] = tokens(t);
    size_t p = p_begin;
    for (; p + kP <= p_end; p += kP) {
      TileP<K, kT, kP, false>(x, k_dim, d, s, s16, nb, w + p * pb, pb, o + 16 * (p - p_begin),
                              out_stride);
    }
    for (; p < p_end; ++p) {
      TileP<K, kT, 1, false>(x, k_dim, d, s, s16, nb, w + p * pb, pb, o + 16 * (p - p_begin),
                             out_stride);
    }
  }
  for (; t < num_tokens; ++t) {
    const auto [x, d, s, s16, o] = tokens(t);
    size_t p = p_begin;
    for (; p + 2 * kD <= p_end; p += kD) {  // the next kD panels exist: prefetch them
      TileP<K, 1, kD, true>(x, k_dim, d, s, s16, nb, w + p * pb, pb, o + 16 * (p - p_begin),
                            out_stride);
    }
    for (; p + kD <= p_end; p += kD) {
      TileP<K, 1, kD, false>(x, k_dim, d, s, s16, nb, w + p * pb, pb, o + 16 * (p - p_begin),
                             out_stride);
    }
    for (; p < p_end; ++p) {
      TileP<K, 1, 1, false>(x, k_dim, d, s, s16, nb, w + p * pb, pb, o + 16 * (p - p_begin),
                            out_stride);
    }
  }
}

}  // namespace IRIS_Q8_NS
