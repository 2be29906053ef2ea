// Scalar twins of the SIMD kernels: the specification the SIMD versions are tested against.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/tensor/dtype.h"

namespace iris::kernels::ref {

inline float LoadAsF32(const void* w, tensor::DType dtype, size_t i) {
  switch (dtype) {
    case tensor::DType::kBF16:
      return tensor::Bf16ToF32(static_cast<const uint16_t*>(w)[i]);
    case tensor::DType::kF16:
      return tensor::F16ToF32(static_cast<const uint16_t*>(w)[i]);
    default:
      return static_cast<const float*>(w)[i];
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

// Same contract as kernels::MatMulRowsBf16: inputs rounded to bf16 (nearest even), and per
// pair (k, k+1) the odd product then the even one added to an f32 sum, as vdpbf16ps specifies
// (a product of two bf16 values is exact in f32, so each addition rounds once).
inline void MatMulRowsBf16(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                           tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end,
                           float* out, size_t out_stride) {
  auto bf = [](float v) { return tensor::Bf16ToF32(tensor::F32ToBf16(v)); };
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      float s = 0;
      for (size_t k = 0; k < k_dim; k += 2) {
        const float x0 = bf(x[t * x_stride + k]), w0 = bf(LoadAsF32(w, w_dtype, n * k_dim + k));
        const float x1 = k + 1 < k_dim ? bf(x[t * x_stride + k + 1]) : 0.0f;
        const float w1 = k + 1 < k_dim ? bf(LoadAsF32(w, w_dtype, n * k_dim + k + 1)) : 0.0f;
        s += x1 * w1;
        s += x0 * w0;
      }
      out[t * out_stride + (n - n_begin)] = s;
    }
  }
}

inline float DotF32(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(s);
}

inline size_t ArgMaxF32(const float* x, size_t n) {
  size_t best = n;  // none yet
  for (size_t i = 0; i < n; ++i) {
    if (!std::isnan(x[i]) && (best == n || x[i] > x[best])) best = i;
  }
  return best == n ? 0 : best;
}

inline void AxpyF32(float alpha, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace iris::kernels::ref

#include <cmath>
#include <vector>

namespace iris::kernels::ref {

// Attention of one head, the plain way: scores = scale · q·k, softmax, weighted sum of v.
// Query i sees keys [0, n_i) with n_i = num_keys, or causal_base + i + 1 (capped) when
// causal_base != SIZE_MAX. k and v rows: k[j * k_stride + d], v[j * v_stride + d].
inline void AttentionHead(const float* q, size_t q_stride, size_t num_q, const float* k,
                          size_t k_stride, const float* v, size_t v_stride, size_t num_keys,
                          size_t head_dim, float scale, size_t causal_base, float* out,
                          size_t out_stride) {
  std::vector<double> p(num_keys);
  for (size_t i = 0; i < num_q; ++i) {
    size_t n = num_keys;
    if (causal_base != SIZE_MAX && causal_base + i + 1 < num_keys) n = causal_base + i + 1;
    double m = -INFINITY, sum = 0;
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t d = 0; d < head_dim; ++d) s += double(q[i * q_stride + d]) * k[j * k_stride + d];
      p[j] = s * scale;
      m = std::max(m, p[j]);
    }
    for (size_t j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - m));
    for (size_t d = 0; d < head_dim; ++d) {
      double o = 0;
      for (size_t j = 0; j < n; ++j) o += p[j] / sum * v[j * v_stride + d];
      out[i * out_stride + d] = static_cast<float>(o);
    }
  }
}

}  // namespace iris::kernels::ref

namespace iris::kernels::ref {

inline void GeluTanh(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v *
                              (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
  }
}

inline void SiluMul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    gate[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

}  // namespace iris::kernels::ref

namespace iris::kernels::ref {

// Same contract as kernels::MatMulRowsQ8_0, summed in double.
inline void MatMulRowsQ8_0(const int8_t* q, const float* d, size_t num_tokens, const void* w,
                           size_t k_dim, size_t n_begin, size_t n_end, float* out,
                           size_t out_stride) {
  const size_t nb = k_dim / 32;
  const auto* wb = static_cast<const uint8_t*>(w);
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      double acc = 0;
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = wb + (n * nb + b) * 34;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        int64_t s = 0;
        for (size_t i = 0; i < 32; ++i) {
          s += static_cast<int8_t>(blk[2 + i]) * static_cast<int64_t>(q[t * k_dim + b * 32 + i]);
        }
        acc += static_cast<double>(tensor::F16ToF32(h)) * d[t * nb + b] * static_cast<double>(s);
      }
      out[t * out_stride + (n - n_begin)] = static_cast<float>(acc);
    }
  }
}

}  // namespace iris::kernels::ref

namespace iris::kernels::ref {

// Same contract as kernels::MatMulRowsQ8_0x (rows in the kQ8_0x layout, activations padded).
inline void MatMulRowsQ8_0x(const int8_t* q, const float* d, size_t num_tokens, const void* w,
                            size_t k_dim, size_t n_begin, size_t n_end, float* out,
                            size_t out_stride) {
  const size_t sb = tensor::Q8xScaleBytes(k_dim), vb = tensor::Q8xValueBytes(k_dim);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      const uint8_t* row = wb + n * (sb + vb);
      double acc = 0;
      for (size_t b = 0; b < k_dim / 32; ++b) {
        uint16_t h;
        std::memcpy(&h, row + 2 * b, 2);
        int64_t s = 0;
        for (size_t i = 0; i < 32; ++i) {
          s += static_cast<int8_t>(row[sb + b * 32 + i]) *
               static_cast<int64_t>(q[t * vb + b * 32 + i]);
        }
        acc +=
            static_cast<double>(tensor::F16ToF32(h)) * d[t * (sb / 2) + b] * static_cast<double>(s);
      }
      out[t * out_stride + (n - n_begin)] = static_cast<float>(acc);
    }
  }
}

}  // namespace iris::kernels::ref
