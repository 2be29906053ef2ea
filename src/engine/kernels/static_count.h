// A run-time count as a compile-time one: the rest of a loop over groups of tokens goes to a
// kernel templated on its number of tokens.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

namespace iris::kernels {

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
