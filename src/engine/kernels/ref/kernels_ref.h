// Scalar twins of the SIMD kernels: the specification the SIMD versions are tested against.
#pragma once

#include <cstddef>

#include "engine/tensor/dtype.h"

namespace iris::kernels::ref {

inline float LoadAsF32(const void* w, tensor::DType dtype, size_t i) {
  switch (dtype) {
    case tensor::DType::kBF16: return tensor::Bf16ToF32(static_cast<const uint16_t*>(w)[i]);
    case tensor::DType::kF16: return tensor::F16ToF32(static_cast<const uint16_t*>(w)[i]);
    default: return static_cast<const float*>(w)[i];
  }
}

// Same contract as kernels::MatMulRows; sums in double so the twin is the more exact one.
inline void MatMulRows(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                       tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end,
                       float* out, size_t out_stride) {
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      double s = 0;
      for (size_t k = 0; k < k_dim; ++k) {
        s += static_cast<double>(x[t * x_stride + k]) * LoadAsF32(w, w_dtype, n * k_dim + k);
      }
      out[t * out_stride + (n - n_begin)] = static_cast<float>(s);
    }
  }
}

inline float DotF32(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(s);
}

inline void AxpyF32(float alpha, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace iris::kernels::ref
