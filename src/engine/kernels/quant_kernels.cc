// Int8 matrix products for Q8_0 weights (kernels.h): activations quantized per block of 32,
// integer dot products per block, scaled and summed in f32. One scalar path and three x86
// paths picked at run time: AVX2 (maddubs/madd), AVX-VNNI and AVX512-VNNI (vpdpbusd on 256-bit
// vectors). The x86 paths are plain intrinsics behind target attributes (Highway 1.0.3 has no
// int8 dot product); each is tested against the scalar twin in ref/.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "engine/kernels/kernels.h"
#include "engine/tensor/dtype.h"

namespace iris::kernels {
namespace {

constexpr size_t kBlock = 32;       // values per block
constexpr size_t kBlockBytes = 34;  // f16 scale + 32 int8

enum class Path { kScalar = 0, kAvx2 = 1, kAvxVnni = 2, kAvx512Vnni = 3 };
constexpr const char* kPathNames[] = {"scalar", "avx2", "avxvnni", "avx512vnni"};

bool Supports(Path p) {
  switch (p) {
    case Path::kScalar:
      return true;
    case Path::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Path::kAvxVnni:
      return Supports(Path::kAvx2) && __builtin_cpu_supports("avxvnni");
    case Path::kAvx512Vnni:
      return Supports(Path::kAvx2) && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  }
  return false;
}

Path Best() {
  for (Path p : {Path::kAvx512Vnni, Path::kAvxVnni, Path::kAvx2}) {
    if (Supports(p)) return p;
  }
  return Path::kScalar;
}

std::atomic<int> g_forced{-1};

Path Active() {
  const int f = g_forced.load(std::memory_order_relaxed);
  if (f >= 0) return static_cast<Path>(f);
  static const Path best = Best();
  return best;
}

void RowsScalar(const int8_t* xq, const float* xd, size_t num_tokens, const uint8_t* w,
                size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const size_t nb = k_dim / kBlock, row_bytes = nb * kBlockBytes;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t n = n_begin; n < n_end; ++n) {
      const uint8_t* row = w + n * row_bytes;
      float acc = 0;
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * kBlockBytes;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        int32_t s = 0;
        for (size_t i = 0; i < kBlock; ++i) {
          s += static_cast<int32_t>(static_cast<int8_t>(blk[2 + i])) *
               xq[t * k_dim + b * kBlock + i];
        }
        acc += tensor::F16ToF32(h) * xd[t * nb + b] * static_cast<float>(s);
      }
      out[t * out_stride + (n - n_begin)] = acc;
    }
  }
}

#define IRIS_X86_TARGET "avx2,fma,f16c"

__attribute__((target(IRIS_X86_TARGET))) inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target(IRIS_X86_TARGET))) inline float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The three x86 paths differ only in the block dot product (8 int32 partial sums of the
// 32 products w·x): |w| as unsigned times x with w's sign, multiplied and added in pairs.
struct DotAvx2 {
  __attribute__((target(IRIS_X86_TARGET))) static __m256i Dot(__m256i w, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  }
};
struct DotAvxVnni {
  __attribute__((target(IRIS_X86_TARGET ",avxvnni"))) static __m256i Dot(__m256i w, __m256i x) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                                   _mm256_sign_epi8(x, w));
  }
};
struct DotAvx512Vnni {
  __attribute__((target(IRIS_X86_TARGET ",avx512f,avx512vl,avx512bw,avx512vnni"))) static __m256i
  Dot(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                               _mm256_sign_epi8(x, w));
  }
};

#define IRIS_Q8_NS avx2
#define IRIS_Q8_TARGET IRIS_X86_TARGET
#define IRIS_Q8_DOT DotAvx2
#include "engine/kernels/quant_kernels-inl.h"
#undef IRIS_Q8_NS
#undef IRIS_Q8_TARGET
#undef IRIS_Q8_DOT
#define IRIS_Q8_NS avxvnni
#define IRIS_Q8_TARGET IRIS_X86_TARGET ",avxvnni"
#define IRIS_Q8_DOT DotAvxVnni
#include "engine/kernels/quant_kernels-inl.h"
#undef IRIS_Q8_NS
#undef IRIS_Q8_TARGET
#undef IRIS_Q8_DOT
#define IRIS_Q8_NS avx512vnni
#define IRIS_Q8_TARGET IRIS_X86_TARGET ",avx512f,avx512vl,avx512bw,avx512vnni"
#define IRIS_Q8_DOT DotAvx512Vnni
#include "engine/kernels/quant_kernels-inl.h"
#undef IRIS_Q8_NS
#undef IRIS_Q8_TARGET
#undef IRIS_Q8_DOT

}  // namespace

void QuantizeRowsQ8(const float* x, size_t x_stride, size_t num_tokens, size_t k_dim, int8_t* q,
                    float* d) {
  const size_t nb = k_dim / kBlock;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t b = 0; b < nb; ++b) {
      const float* v = x + t * x_stride + b * kBlock;
      float amax = 0;
      for (size_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(v[i]));
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      d[t * nb + b] = scale;
      int8_t* out = q + t * k_dim + b * kBlock;
      for (size_t i = 0; i < kBlock; ++i) {
        // |v·inv| <= 127 up to rounding; the clamp keeps a NaN-free row in range regardless.
        const float r = std::round(v[i] * inv);
        out[i] = static_cast<int8_t>(r == r ? std::clamp(r, -127.0f, 127.0f) : 0.0f);
      }
    }
  }
}

void MatMulRowsQ8_0(const int8_t* xq, const float* xd, size_t num_tokens, const void* w,
                    size_t k_dim, size_t n_begin, size_t n_end, float* out, size_t out_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (Active()) {
    case Path::kAvx512Vnni:
      return avx512vnni::Rows(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
    case Path::kAvxVnni:
      return avxvnni::Rows(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
    case Path::kAvx2:
      return avx2::Rows(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
    case Path::kScalar:
      return RowsScalar(xq, xd, num_tokens, wb, k_dim, n_begin, n_end, out, out_stride);
  }
}

std::string ActiveQuantPath() { return kPathNames[static_cast<int>(Active())]; }

std::vector<std::string> AvailableQuantPaths() {
  std::vector<std::string> names;
  for (Path p : {Path::kAvx512Vnni, Path::kAvxVnni, Path::kAvx2, Path::kScalar}) {
    if (Supports(p)) names.push_back(kPathNames[static_cast<int>(p)]);
  }
  return names;
}

bool ForceQuantPath(const std::string& name) {
  if (name.empty()) {
    g_forced.store(-1);
    return true;
  }
  for (int i = 0; i < 4; ++i) {
    if (name == kPathNames[i] && Supports(static_cast<Path>(i))) {
      g_forced.store(i);
      return true;
    }
  }
  return false;
}

}  // namespace iris::kernels
