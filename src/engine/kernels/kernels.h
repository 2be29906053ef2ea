// SIMD hot loops, compiled for several x86 targets (Highway) and dispatched at run time to
// the best one the CPU supports. Kernels take plain pointers and a row range; they never
// see the thread pool. Each has a scalar twin in ref/ that tests compare against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor/dtype.h"

namespace iris::kernels {

// out[t * out_stride + (n - n_begin)] = Σ_k x[t * x_stride + k] · w[n * k_dim + k]
// for t in [0, num_tokens), n in [n_begin, n_end). w is row-major [N, k_dim] in w_dtype
// (F32, BF16 or F16; products and sums in f32). `out` points at column n_begin.
void MatMulRows(const float* x, size_t x_stride, size_t num_tokens, const void* w,
                tensor::DType w_dtype, size_t k_dim, size_t n_begin, size_t n_end, float* out,
                size_t out_stride);

// Σ a[i] · b[i].
float DotF32(const float* a, const float* b, size_t n);
// y[i] += alpha · x[i].
void AxpyF32(float alpha, const float* x, float* y, size_t n);
// dst[i] = f32(src[i]) for a row of a weight tensor (F32, BF16 or F16).
void ConvertRowToF32(const void* src, tensor::DType dtype, size_t n, float* dst);

// The SIMD target in use ("AVX3", "AVX2", "EMU128", ...).
std::string ActiveTarget();
// Targets compiled in that this CPU can run, best first.
std::vector<std::string> AvailableTargets();
// Restricts dispatch to the named target (tests run every kernel on each); "" restores the
// default. Returns false if the target is not available. Not thread-safe.
bool ForceTarget(const std::string& name);
// CPU features relevant to the kernels (for benchmarks and logs), e.g. "avx2 fma avx512f".
std::string CpuFeatures();

}  // namespace iris::kernels
