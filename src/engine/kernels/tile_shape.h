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

// How a product over weights packed at load (tensor::DType::kBF16p, kF16p: 64 bytes a pair of
// columns per group) requests the weights before it reads them. Such a product goes through a
// block of the weights (a few groups, 128 pairs) once per block of tokens (8 on AVX-512):
// - the first pass reads the block from memory, and requests each group's line
//   kHalfPanelAheadPairs pairs on as it reads a pair (kPairsAhead, into L1);
// - the second pass reads the block from cache, and requests the next block's line at the same
//   place (kNextBlock, into L2), so that the next block's first pass finds it there (after a
//   range's last block, whatever lies 128 pairs on: a few wasted requests, never a load);
// - later passes request nothing.
// Without them, a pass from memory waited on its loads (decode's streams ran at about two
// thirds of the read bandwidth) and, for 9 to 64 tokens, the passes from cache did not hide it.
enum class PanelAhead { kNothing, kPairsAhead, kNextBlock };
constexpr PanelAhead AheadOfPass(size_t pass) {
  return pass == 0   ? PanelAhead::kPairsAhead
         : pass == 1 ? PanelAhead::kNextBlock
                     : PanelAhead::kNothing;
}

// Calls f(std::integral_constant<PanelAhead, ahead>()): a run-time PanelAhead as a compile-time
// one.
template <typename F>
inline void WithPanelAhead(PanelAhead ahead, F&& f) {
  switch (ahead) {
    case PanelAhead::kPairsAhead:
      f(std::integral_constant<PanelAhead, PanelAhead::kPairsAhead>());
      break;
    case PanelAhead::kNextBlock:
      f(std::integral_constant<PanelAhead, PanelAhead::kNextBlock>());
      break;
    case PanelAhead::kNothing:
      f(std::integral_constant<PanelAhead, PanelAhead::kNothing>());
      break;
  }
}

// kPairsAhead's distance: 32 pairs, 2 KiB. 8 pairs gained nothing, 16 less than 32, 48 and 64
// a little less.
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
