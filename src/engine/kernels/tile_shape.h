// Shapes of the dot-product tiles that multiply a few tokens by weight rows (decode): how many
// rows a tile of n tokens takes, and a run-time count of tokens as a compile-time one.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

namespace iris::kernels {

// Rows of a tile for 1 to 8 tokens with 32 vector registers (AVX-512): up to 24 sums, the
// weight vectors and one activation (3 rows for 7–8 tokens, 4 for 5–6, 6 for 3–4); 8 rows for
// one or two tokens, which reading the weights bounds (more rows, more streams in flight).
constexpr size_t TileRows32(size_t tokens) {
  constexpr size_t kRows[9] = {0, 8, 8, 6, 6, 4, 4, 3, 3};
  return kRows[tokens];
}

// How far ahead decode's products over weights packed at load (tensor::DType::kBF16p, kF16p:
// 64 bytes a pair of columns per group) request each group's stream: 32 pairs, 2 KiB. The
// hardware's prefetchers alone left decode's three streams at about two thirds of the read
// bandwidth; 8 pairs gained nothing, 16 less than 32, 48 and 64 a little less.
inline constexpr size_t kHalfPanelAheadPairs = 32;

// Calls f(std::integral_constant<size_t, n>()) for n in [1, kMax]; nothing for any other n.
template <size_t kMax, typename F>
inline void WithStaticCount(size_t n, F&& f) {
  if constexpr (kMax > 0) {
    if (n == kMax) {
      f(std::integral_constant<size_t, kMax>());
      return;
    }
    WithStaticCount<kMax - 1>(n, std::forward<F>(f));
  }
}

}  // namespace iris::kernels
