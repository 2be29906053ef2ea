// Every SIMD kernel against its scalar twin on every target this CPU can run, with odd
// sizes and unaligned pointers.
#include "engine/kernels/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/ref/kernels_ref.h"
#include "engine/kernels/transpose_x86.h"
#include "engine/tensor/quant.h"
#include "engine/tensor/tensor.h"

namespace iris::kernels {
namespace {

using tensor::DType;

class KernelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(ForceTarget(GetParam())) << GetParam(); }
  void TearDown() override { ForceTarget(""); }
};

std::vector<float> RandomFloats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Weights stored as dtype, returned as raw bytes (+1 element of slack for misalignment).
std::vector<uint8_t> Encode(const std::vector<float>& w, DType dtype, size_t offset_bytes) {
  const size_t es = tensor::DTypeSize(dtype);
  std::vector<uint8_t> bytes(offset_bytes + w.size() * es);
  for (size_t i = 0; i < w.size(); ++i) {
    uint8_t* p = bytes.data() + offset_bytes + i * es;
    if (dtype == DType::kF32) {
      std::memcpy(p, &w[i], 4);
    } else {
      uint16_t h = dtype == DType::kBF16 ? tensor::F32ToBf16(w[i]) : tensor::F32ToF16(w[i]);
      std::memcpy(p, &h, 2);
    }
  }
  return bytes;
}

// Each token t of a batch's outputs `got` (rows [n_begin, n) at t * out_stride) equals what
// `alone(t, out)` writes for that token by itself (n - n_begin values): a decoding sequence's
// answer does not depend on what shares its step.
template <typename Alone>
void ExpectTokensAloneGetTheirBatchNumbers(Alone alone, size_t tokens, size_t n_begin, size_t n,
                                           const std::vector<float>& got, size_t out_stride,
                                           const std::string& what) {
  for (size_t t = 0; t < tokens; ++t) {
    std::vector<float> one(n, -7.f);
    alone(t, one.data());
    for (size_t j = n_begin; j < n; ++j) {
      ASSERT_EQ(one[j - n_begin], got[t * out_stride + j - n_begin])
          << what << " token " << t << " row " << j;
    }
  }
}

TEST_P(KernelsTest, MatMulRowsMatchesScalarTwin) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    // k = 300: a panel block of 256, then one of 44 (whole squares of lanes and a tail).
    for (size_t k : {1u, 7u, 16u, 33u, 64u, 72u, 100u, 257u, 300u}) {
      // Decode tiles below 64 tokens (groups of 8 on AVX-512, 4 elsewhere, then the rest as
      // one group: every shape of tile), the packed GEMM from 64.
      for (size_t tokens :
           {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 12u, 14u, 15u, 21u, 63u, 64u, 77u}) {
        for (size_t n : {1u, 3u, 4u, 17u, 35u, 70u, 110u}) {
          const size_t x_stride = k + 3;  // rows not packed
          auto x_store = RandomFloats(tokens * x_stride + 1, 1);
          const float* x = x_store.data() + 1;  // unaligned
          auto w = RandomFloats(n * k, 2, 0.5f);
          // Aligned to the element but not to any vector.
          const size_t off = tensor::DTypeSize(dtype);
          auto wb = Encode(w, dtype, off);
          const size_t n_begin = n > 2 ? 1 : 0;
          const size_t out_stride = n + 2;
          std::vector<float> got(tokens * out_stride, -7.f), want(tokens * out_stride, -7.f);
          MatMulRows(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n, got.data(),
                     out_stride);
          ref::MatMulRows(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n, want.data(),
                          out_stride);
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::sqrt(static_cast<float>(k))))
                << "dtype " << tensor::DTypeName(dtype) << " k=" << k << " tokens=" << tokens
                << " n=" << n << " i=" << i;
          }
          // Below the GEMM, a token alone gets the numbers it gets in any tile of a batch.
          if (tokens < kGemmMinTokens) {
            ASSERT_NO_FATAL_FAILURE(ExpectTokensAloneGetTheirBatchNumbers(
                [&](size_t t, float* out) {
                  MatMulRows(x + t * x_stride, x_stride, 1, wb.data() + off, dtype, k, n_begin, n,
                             out, n);
                },
                tokens, n_begin, n, got, out_stride,
                "dtype " + std::string(tensor::DTypeName(dtype)) + " k=" + std::to_string(k) +
                    " tokens=" + std::to_string(tokens) + " n=" + std::to_string(n)));
          }
        }
      }
    }
  }
}

// Row 17, column 3 of a matrix of 5 columns (16 pairs a row, padded): the second group
// (1024 bytes on), its second pair (64 on); kBF16p: row 1's word, high half; kF16p: the odd
// column's 16 values, row 1's.
static_assert(tensor::HalfPanelOffset(DType::kBF16p, 5, 17, 3) == 1024 + 64 + 4 + 2);
static_assert(tensor::HalfPanelOffset(DType::kF16p, 5, 17, 3) == 1024 + 64 + 32 + 2);

// BF16 and F16 weights packed at load (DType::kBF16p from BF16 rows or F32 ones that hold
// bf16 values, kF16p from F16 rows; exact values): every number of tokens sums through the
// panels, bit for bit as the packed GEMM sums the same rows from kGemmMinTokens on, so a token
// alone gets the numbers it gets in any batch, on every target; odd k, several blocks of
// pairs, ranges from whole groups.
TEST_P(KernelsTest, MatMulRowsOverPanelsPackedAtLoadSumAsTheGemmAtEveryTokenCount) {
  for (DType dtype : {DType::kBF16, DType::kF32, DType::kF16}) {
    for (size_t k : {1u, 2u, 7u, 16u, 33u, 64u, 257u, 300u, 600u}) {
      for (size_t n : {16u, 48u, 64u, 96u, 112u}) {
        // Values bf16 holds, stored as BF16 or as F32; or F16 values.
        auto w = RandomFloats(n * k, 2, 0.5f);
        if (dtype != DType::kF16) {
          for (float& v : w) v = tensor::Bf16ToF32(tensor::F32ToBf16(v));
        }
        const size_t off = tensor::DTypeSize(dtype);
        auto wb = Encode(w, dtype, off);
        const DType panel_type = dtype == DType::kF16 ? DType::kF16p : DType::kBF16p;
        // Packed over a buffer of junk, in two ranges of whole groups (as the binder packs in
        // parallel).
        std::vector<uint8_t> packed(n * tensor::RowBytes(panel_type, k), 0xAB);
        for (auto [r0, r1] :
             {std::pair<size_t, size_t>{0, n / 2 / 16 * 16}, {n / 2 / 16 * 16, n}}) {
          if (dtype == DType::kF16) {
            PackF16Panels(wb.data() + off, k, r0, r1, packed.data());
          } else {
            PackBf16Panels(wb.data() + off, dtype, k, r0, r1, packed.data(), /*exact_f32=*/true);
          }
        }
        // The layout holds the values, each in two bytes of its own, and zeros everywhere else
        // (an odd row's last pair, the pairs that pad a row).
        const tensor::TensorView view{
            panel_type, {static_cast<int64_t>(n), static_cast<int64_t>(k)}, packed.data()};
        std::vector<bool> holds(packed.size(), false);
        for (size_t i = 0; i < n * k; ++i) {
          const float want = dtype == DType::kF16 ? tensor::F16ToF32(tensor::F32ToF16(w[i])) : w[i];
          ASSERT_EQ(view.GetF32(static_cast<int64_t>(i)), want) << i;
          const size_t at = tensor::HalfPanelOffset(panel_type, k, i / k, i % k);
          ASSERT_LT(at + 1, packed.size());
          ASSERT_FALSE(holds[at] || holds[at + 1]) << i;
          holds[at] = holds[at + 1] = true;
        }
        for (size_t b = 0; b < packed.size(); ++b) {
          if (!holds[b]) {
            ASSERT_EQ(packed[b], 0) << "byte " << b;
          }
        }
        const std::string shape = "dtype " + std::string(tensor::DTypeName(dtype)) +
                                  " k=" + std::to_string(k) + " n=" + std::to_string(n);
        for (size_t tokens : {1u, 2u, 3u, 5u, 7u, 8u, 9u, 15u, 16u, 31u, 63u, 64u, 77u}) {
          const size_t x_stride = k + 3;
          auto x_store = RandomFloats(tokens * x_stride + 1, 1);
          const float* x = x_store.data() + 1;
          const size_t n_begin = n >= 64 ? 16 : 0;
          const size_t out_stride = n + 2;
          std::vector<float> got(tokens * out_stride, -7.f), twin(tokens * out_stride, -7.f),
              rows(tokens * out_stride, -7.f);
          MatMulRows(x, x_stride, tokens, packed.data(), panel_type, k, n_begin, n, got.data(),
                     out_stride);
          ref::MatMulRows(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n, twin.data(),
                          out_stride);
          MatMulRows(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n, rows.data(),
                     out_stride);
          const std::string what = shape + " tokens=" + std::to_string(tokens);
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_NEAR(got[i], twin[i], 1e-4f * (1.0f + std::sqrt(static_cast<float>(k))))
                << what << " i=" << i;
            if (tokens >= kGemmMinTokens) {
              ASSERT_EQ(got[i], rows[i]) << what << " i=" << i;
            }
          }
          ASSERT_NO_FATAL_FAILURE(ExpectTokensAloneGetTheirBatchNumbers(
              [&](size_t t, float* out) {
                MatMulRows(x + t * x_stride, x_stride, 1, packed.data(), panel_type, k, n_begin, n,
                           out, n);
              },
              tokens, n_begin, n, got, out_stride, what));
        }
      }
    }
  }
}

// On AVX-512 a decode tile's outputs are the sums _mm512_reduce_add_ps gives of its
// accumulators' lanes, bit for bit (the tiles sum 16 accumulators at once with its pairing):
// with k = 32 each lane holds fma(x1, w1, x0 · w0), computed here the same way.
__attribute__((target("avx512f"))) float ReducedDot32(const float* x, const float* w) {
  const __m512 acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(w + 16),
                                     _mm512_mul_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(w)));
  return _mm512_reduce_add_ps(acc);
}

TEST(TileSumsTest, DecodeTilesSumLanesAsTheReductionIntrinsicDoes) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "this CPU has no AVX-512";
  ASSERT_TRUE(ForceTarget("AVX3"));
  struct Restore {
    ~Restore() { ForceTarget(""); }
  } restore;
  constexpr size_t k = 32, n = 50;
  for (size_t tokens : {1u, 2u, 5u, 8u, 16u}) {
    auto x = RandomFloats(tokens * k, 7);
    auto w = RandomFloats(n * k, 8);
    std::vector<float> got(tokens * n);
    MatMulRows(x.data(), k, tokens, w.data(), DType::kF32, k, 0, n, got.data(), n);
    for (size_t t = 0; t < tokens; ++t) {
      for (size_t j = 0; j < n; ++j) {
        ASSERT_EQ(got[t * n + j], ReducedDot32(x.data() + t * k, w.data() + j * k))
            << "tokens " << tokens << " token " << t << " row " << j;
      }
    }
  }
}

// The panel packers' square transposes, value for value: dst[j * stride + i] = src[i][j],
// nothing written between the rows of dst.
__attribute__((target("avx512f"))) void Transpose16(const float* src, float* dst, size_t stride) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + 16 * i);
  x86::StoreTransposed16(r, dst, stride);
}
__attribute__((target("avx2"))) void Transpose8(const float* src, float* dst, size_t stride) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + 8 * i);
  x86::StoreTransposed8(r, dst, stride);
}

TEST(TransposeTest, SquaresOfLanesTransposeValueForValue) {
  for (const size_t n : {8u, 16u}) {
    if (n == 16 ? !__builtin_cpu_supports("avx512f") : !__builtin_cpu_supports("avx2")) continue;
    const size_t stride = n + 5;
    std::vector<float> src(n * n), dst(n * stride, -1.0f);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
    (n == 16 ? Transpose16 : Transpose8)(src.data(), dst.data(), stride);
    for (size_t j = 0; j < n; ++j) {
      for (size_t i = 0; i < stride; ++i) {
        const float want = i < n ? src[i * n + j] : -1.0f;
        ASSERT_EQ(dst[j * stride + i], want) << n << "x" << n << ": row " << j << ", column " << i;
      }
    }
  }
}

// Every bf16 path this CPU runs, and the AMX kernel on emulated tiles wherever AVX512-BF16 is.
std::vector<std::string> Bf16PathsToTest() {
  std::vector<std::string> paths = AvailableBf16Paths();
  if (Bf16ProductsAvailable()) paths.push_back("amx-emulated");
  if (paths.empty()) paths.push_back("avx512bf16");  // (skipped below)
  return paths;
}

class Bf16KernelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!Bf16ProductsAvailable()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
    ASSERT_TRUE(ForceBf16Path(GetParam())) << GetParam();
    ASSERT_EQ(ActiveBf16Path(), GetParam());
  }
  void TearDown() override { ForceBf16Path(""); }
};

// The bf16 products (`--compute bf16`): every token tail (8, 4, 2, 1; for tiles 16 and
// partial blocks), partial panels, odd k, k not a whole number of tile rows (16 pairs),
// panel blocks of 128 pairs and more, unaligned rows, each weight type; below 32 tokens the
// dot-product tiles, whose groups of 8 tokens share blocks of rows (several blocks at 2049).
TEST_P(Bf16KernelsTest, MatMulRowsBf16MatchesScalarTwin) {
  double largest_bf16_effect = 0;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (size_t k : {1u, 2u, 7u, 64u, 255u, 256u, 257u, 300u, 576u, 600u, 2049u}) {
      // Tiles below 32 tokens (groups of 8, then the rest as one group: every shape of tile),
      // panels from 32.
      for (size_t tokens :
           {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 10u, 13u, 15u, 16u, 31u, 32u, 47u, 77u}) {
        // (Below the panels every path runs the same tiles: checked once.)
        if (tokens < kBf16GemmMinTokens && GetParam() != "avx512bf16") continue;
        for (size_t n : {1u, 17u, 48u, 50u, 97u}) {
          const size_t x_stride = k + 3;
          auto x_store = RandomFloats(tokens * x_stride + 1, 3);
          const float* x = x_store.data() + 1;
          auto w = RandomFloats(n * k, 4, 0.5f);
          const size_t off = tensor::DTypeSize(dtype);
          auto wb = Encode(w, dtype, off);
          const size_t n_begin = n > 2 ? 1 : 0;
          const size_t out_stride = n + 2;
          std::vector<float> got(tokens * out_stride, -7.f), want(tokens * out_stride, -7.f),
              exact(tokens * out_stride, -7.f);
          MatMulRowsBf16(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n, got.data(),
                         out_stride);
          ref::MatMulRowsBf16(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n,
                              want.data(), out_stride);
          ref::MatMulRows(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n, exact.data(),
                          out_stride);
          for (size_t i = 0; i < got.size(); ++i) {
            // The same products, summed in the twin's order (panels) or in 16 lanes (tiles):
            // equal but for the last bits of a long sum.
            ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + static_cast<float>(k)))
                << "dtype " << tensor::DTypeName(dtype) << " k=" << k << " tokens=" << tokens
                << " n=" << n << " i=" << i;
            largest_bf16_effect =
                std::max(largest_bf16_effect, static_cast<double>(std::abs(got[i] - exact[i])));
          }
          // Below the panels, a token alone gets the numbers it gets in any tile of a batch
          // and in any block of rows.
          if (tokens < kBf16GemmMinTokens) {
            ASSERT_NO_FATAL_FAILURE(ExpectTokensAloneGetTheirBatchNumbers(
                [&](size_t t, float* out) {
                  MatMulRowsBf16(x + t * x_stride, x_stride, 1, wb.data() + off, dtype, k, n_begin,
                                 n, out, n);
                },
                tokens, n_begin, n, got, out_stride,
                "dtype " + std::string(tensor::DTypeName(dtype)) + " k=" + std::to_string(k) +
                    " tokens=" + std::to_string(tokens) + " n=" + std::to_string(n)));
          }
        }
      }
    }
  }
  // And it is bf16: the products differ from the exact ones by bf16's rounding, visibly.
  EXPECT_GT(largest_bf16_effect, 1e-3);
}

// Weights packed at load for the bf16 products (DType::kBF16p): the layout holds each weight
// rounded as the products round it; every number of tokens sums through the panels, in the
// per-call panels' order (bit for bit from 32 tokens, where those take over), so a token alone
// gets the numbers it gets in any batch, on every path; ranges start and end at whole groups.
TEST_P(Bf16KernelsTest, PanelsPackedAtLoadSumAsThePanelsAtEveryTokenCount) {
  const bool emulated = GetParam() == "amx-emulated";  // (slow: fewer shapes)
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (size_t k : {1u, 2u, 7u, 64u, 255u, 257u, 300u, 576u, 2049u}) {
      for (size_t n : {16u, 48u, 64u, 96u, 112u}) {
        // (Emulated tiles: every number of C tiles, 3 then 2 from 16, and 1.)
        if (emulated && !(k == 7 && n == 16) && !(k == 300 && n == 96)) continue;
        auto w = RandomFloats(n * k, 8, 0.5f);
        const size_t off = tensor::DTypeSize(dtype);
        auto wb = Encode(w, dtype, off);
        std::vector<uint8_t> packed(n * tensor::RowBytes(DType::kBF16p, k), 0xAB);
        PackBf16Panels(wb.data() + off, dtype, k, 0, n / 2 / 16 * 16, packed.data());
        PackBf16Panels(wb.data() + off, dtype, k, n / 2 / 16 * 16, n, packed.data());
        const std::string shape = "dtype " + std::string(tensor::DTypeName(dtype)) +
                                  " k=" + std::to_string(k) + " n=" + std::to_string(n);
        // The layout: each value where HalfPanelOffset says, rounded to nearest even.
        const tensor::TensorView view{
            DType::kBF16p, {static_cast<int64_t>(n), static_cast<int64_t>(k)}, packed.data()};
        const tensor::TensorView rows{
            dtype, {static_cast<int64_t>(n), static_cast<int64_t>(k)}, wb.data() + off};
        for (size_t i = 0; i < n * k; ++i) {
          const float want = tensor::Bf16ToF32(tensor::F32ToBf16(rows.GetF32(i)));
          ASSERT_EQ(view.GetF32(static_cast<int64_t>(i)), want) << shape << " i=" << i;
        }
        for (size_t tokens : {1u, 2u, 3u, 5u, 7u, 8u, 9u, 16u, 31u, 32u, 33u, 77u}) {
          const size_t x_stride = k + 3;
          auto x_store = RandomFloats(tokens * x_stride + 1, 9);
          const float* x = x_store.data() + 1;
          const size_t n_begin = n >= 64 ? 16 : 0;
          const size_t out_stride = n + 2;
          std::vector<float> got(tokens * out_stride, -7.f), twin(tokens * out_stride, -7.f),
              per_call(tokens * out_stride, -7.f);
          MatMulRowsBf16(x, x_stride, tokens, packed.data(), DType::kBF16p, k, n_begin, n,
                         got.data(), out_stride);
          ref::MatMulRowsBf16(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n,
                              twin.data(), out_stride);
          MatMulRowsBf16(x, x_stride, tokens, wb.data() + off, dtype, k, n_begin, n,
                         per_call.data(), out_stride);
          const std::string what = shape + " tokens=" + std::to_string(tokens);
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_NEAR(got[i], twin[i], 1e-5f * (1.0f + static_cast<float>(k))) << what;
            if (tokens >= kBf16GemmMinTokens) {
              ASSERT_EQ(got[i], per_call[i]) << what << " i=" << i;
            }
          }
          ASSERT_NO_FATAL_FAILURE(ExpectTokensAloneGetTheirBatchNumbers(
              [&](size_t t, float* out) {
                MatMulRowsBf16(x + t * x_stride, x_stride, 1, packed.data(), DType::kBF16p, k,
                               n_begin, n, out, n);
              },
              tokens, n_begin, n, got, out_stride, what));
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, Bf16KernelsTest, ::testing::ValuesIn(Bf16PathsToTest()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The AMX kernel on emulated tiles gives the numbers of the avx512bf16 path bit for bit: both
// instructions are defined to add each pair's odd product and then its even one to the sum,
// so any slip in the tiles' addressing, the padded blocks or the panel's zeroed rows shows.
// AMX hardware is held to the twin's tolerance instead (its rounding inside a tile is its own).
TEST(Bf16PathsTest, TilesGiveTheNumbersOfTheVectorPath) {
  if (!Bf16ProductsAvailable()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  struct Restore {
    ~Restore() { ForceBf16Path(""); }
  } restore;
  std::vector<std::string> paths = AvailableBf16Paths();
  paths.push_back("amx-emulated");
  for (size_t k : {32u, 64u, 300u, 600u, 1536u}) {
    // (Below kBf16GemmMinTokens every path runs the same dot-product tiles.)
    for (size_t tokens : {32u, 47u, 64u, 77u}) {
      for (size_t n : {48u, 97u}) {
        auto x = RandomFloats(tokens * k, 5);
        auto w = RandomFloats(n * k, 6, 0.5f);
        std::vector<float> want(tokens * n);
        ASSERT_TRUE(ForceBf16Path("avx512bf16"));
        MatMulRowsBf16(x.data(), k, tokens, w.data(), DType::kF32, k, 0, n, want.data(), n);
        for (const std::string& path : paths) {
          if (path == "avx512bf16") continue;
          ASSERT_TRUE(ForceBf16Path(path));
          std::vector<float> got(tokens * n, -7.f);
          MatMulRowsBf16(x.data(), k, tokens, w.data(), DType::kF32, k, 0, n, got.data(), n);
          for (size_t i = 0; i < got.size(); ++i) {
            if (path == "amx-emulated") {
              ASSERT_EQ(got[i], want[i])
                  << path << " k=" << k << " tokens=" << tokens << " i=" << i;
            } else {
              ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + static_cast<float>(k)))
                  << path << " k=" << k << " tokens=" << tokens << " i=" << i;
            }
          }
        }
      }
    }
  }
}

// Forcing a path: only those this CPU runs; "" restores the best.
TEST(Bf16PathsTest, OnlyPathsThisCpuRunsCanBeForced) {
  const std::vector<std::string> paths = AvailableBf16Paths();
  EXPECT_EQ(ActiveBf16Path(), paths.empty() ? "" : paths.front());
  EXPECT_FALSE(ForceBf16Path("vdpbf16"));
  EXPECT_EQ(ForceBf16Path("amx"), std::find(paths.begin(), paths.end(), "amx") != paths.end());
  EXPECT_EQ(ForceBf16Path("amx-emulated"), Bf16ProductsAvailable());
  EXPECT_TRUE(ForceBf16Path(""));
  EXPECT_EQ(ActiveBf16Path(), paths.empty() ? "" : paths.front());
}

TEST_P(KernelsTest, DotAxpyConvertMatchScalarTwins) {
  for (size_t n : {0u, 1u, 5u, 16u, 31u, 64u, 129u}) {
    auto a = RandomFloats(n + 1, 3), b = RandomFloats(n + 1, 4);
    EXPECT_NEAR(DotF32(a.data() + 1, b.data() + 1, n), ref::DotF32(a.data() + 1, b.data() + 1, n),
                1e-4f * (1 + n));
    auto y1 = RandomFloats(n + 1, 5);
    auto y2 = y1;
    AxpyF32(0.37f, a.data() + 1, y1.data() + 1, n);
    ref::AxpyF32(0.37f, a.data() + 1, y2.data() + 1, n);
    for (size_t i = 0; i < y1.size(); ++i) ASSERT_NEAR(y1[i], y2[i], 1e-5f);
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      auto bytes = Encode(a, dtype, 0);
      std::vector<float> got(a.size());
      ConvertRowToF32(bytes.data(), dtype, a.size(), got.data());
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(got[i], ref::LoadAsF32(bytes.data(), dtype, i)) << tensor::DTypeName(dtype);
      }
    }
  }
}

TEST_P(KernelsTest, ArgMaxMatchesScalarTwin) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (size_t n : {0u, 1u, 7u, 16u, 17u, 63u, 64u, 65u, 200u, 49280u}) {
    auto x = RandomFloats(n + 1, 11);
    const float* at = x.data() + 1;  // (not aligned)
    EXPECT_EQ(ArgMaxF32(at, n), ref::ArgMaxF32(at, n)) << n;
    if (n < 2) continue;
    // The largest in each place: first, last, mid-way, at a multiple of 17; then also last
    // (the first wins).
    for (size_t where : {size_t{0}, n - 1, n / 2, n - n % 17}) {
      if (where >= n) continue;
      auto y = x;
      y[1 + where] = 100.0f;
      EXPECT_EQ(ArgMaxF32(y.data() + 1, n), where) << n;
      y[1 + n - 1] = 100.0f;
      EXPECT_EQ(ArgMaxF32(y.data() + 1, n), std::min(where, n - 1)) << n;
    }
    // NaN never wins, wherever it is; infinities are values; −0 and +0 tie.
    auto z = x;
    z[1] = nan;
    z[1 + n / 3] = nan;
    z[1 + n - 1] = nan;
    EXPECT_EQ(ArgMaxF32(z.data() + 1, n), ref::ArgMaxF32(z.data() + 1, n)) << n;
    EXPECT_FALSE(std::isnan(z[1 + ArgMaxF32(z.data() + 1, n)])) << n;
    std::vector<float> all_nan(n, nan), low(n, -inf), zeros(n, 0.0f);
    EXPECT_EQ(ArgMaxF32(all_nan.data(), n), 0u);
    low[n - 1] = nan;
    low[n / 2] = -1e30f;
    EXPECT_EQ(ArgMaxF32(low.data(), n), n / 2);
    low[n / 2] = -inf;
    EXPECT_EQ(ArgMaxF32(low.data(), n), 0u);
    low[0] = nan;  // −inf the largest: its first place, not "every value NaN"
    EXPECT_EQ(ArgMaxF32(low.data(), n), 1u);
    zeros[0] = nan;
    zeros[1] = -0.0f;
    EXPECT_EQ(ArgMaxF32(zeros.data(), n), 1u);
    EXPECT_EQ(ref::ArgMaxF32(zeros.data(), n), 1u);
  }
}

TEST_P(KernelsTest, AttentionMatchesScalarTwin) {
  for (size_t head_dim : {16u, 64u, 72u, 5u}) {
    for (size_t num_keys : {1u, 7u, 16u, 33u, 100u}) {
      for (size_t causal : {0u, 1u}) {
        const size_t num_q = causal ? std::min<size_t>(num_keys, 9) : 7;
        const size_t base = causal ? num_keys - num_q : SIZE_MAX;
        const size_t stride = head_dim + 3;  // rows not packed
        auto q = RandomFloats(num_q * stride, 11), k = RandomFloats(num_keys * stride, 12);
        auto v = RandomFloats(num_keys * stride, 13);
        const size_t padded =
            (num_keys + AttentionMaxLanes() - 1) / AttentionMaxLanes() * AttentionMaxLanes();
        constexpr size_t kP = AttentionMaxLanes();
        std::vector<float> kt(head_dim * padded, 0.0f);
        for (size_t d = 0; d < head_dim; ++d) {
          for (size_t j = 0; j < num_keys; ++j)
            kt[(j / kP) * head_dim * kP + d * kP + j % kP] = k[j * stride + d];
        }
        std::vector<float> scratch(AttentionScratchRows() * padded), got(num_q * stride),
            want(num_q * stride);
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        AttentionHead(q.data(), stride, num_q, kt.data(), padded, v.data(), stride, num_keys,
                      head_dim, scale, base, scratch.data(), got.data(), stride);
        ref::AttentionHead(q.data(), stride, num_q, k.data(), stride, v.data(), stride, num_keys,
                           head_dim, scale, base, want.data(), stride);
        for (size_t i = 0; i < num_q; ++i) {
          for (size_t d = 0; d < head_dim; ++d) {
            ASSERT_NEAR(got[i * stride + d], want[i * stride + d], 2e-5f)
                << "hd " << head_dim << " keys " << num_keys << " causal " << causal;
          }
        }
        // The decode kernel: the last query alone over the untransposed keys, in one block.
        const size_t last = num_q - 1;
        const size_t n_last = causal ? base + last + 1 : num_keys;
        std::vector<float> one(head_dim);
        const void* k0 = k.data();
        const void* v0 = v.data();
        constexpr tensor::DType kF32 = tensor::DType::kF32;
        AttentionDecodeBlocks(q.data() + last * stride, stride, 1, &k0, &v0, kF32, n_last, stride,
                              n_last, head_dim, scale, scratch.data(), one.data(), head_dim);
        for (size_t d = 0; d < head_dim; ++d) {
          ASSERT_NEAR(one[d], want[last * stride + d], 2e-5f) << "decode hd " << head_dim;
        }
        // The same keys paged into blocks of a few rows, the blocks scattered in reverse
        // order in memory: the contiguous result (the same sums in the same order; the
        // compiler may contract the scalar tail differently).
        for (size_t block : {1u, 5u, 16u}) {
          const size_t nb = (n_last + block - 1) / block;
          std::vector<float> kp(nb * block * stride, NAN), vp(nb * block * stride, NAN);
          std::vector<const void*> kb(nb), vb(nb);
          for (size_t b = 0; b < nb; ++b) {
            const size_t slot = nb - 1 - b;
            for (size_t r = 0; r < block && b * block + r < n_last; ++r) {
              std::copy_n(k.data() + (b * block + r) * stride, stride,
                          kp.data() + (slot * block + r) * stride);
              std::copy_n(v.data() + (b * block + r) * stride, stride,
                          vp.data() + (slot * block + r) * stride);
            }
            kb[b] = kp.data() + slot * block * stride;
            vb[b] = vp.data() + slot * block * stride;
          }
          std::vector<float> paged(head_dim);
          AttentionDecodeBlocks(q.data() + last * stride, stride, 1, kb.data(), vb.data(), kF32,
                                block, stride, n_last, head_dim, scale, scratch.data(),
                                paged.data(), head_dim);
          for (size_t d = 0; d < head_dim; ++d) {
            ASSERT_NEAR(paged[d], one[d], 1e-6f) << "paged by " << block << " hd " << head_dim;
          }
        }
        // Several queries over the same keys (a grouped-query attention group, any size): each
        // gets exactly the numbers it gets alone, and the twin's within tolerance.
        for (size_t group : {2u, 3u, 4u, 5u, 7u}) {
          const size_t nq = std::min(group, num_q);
          std::vector<float> grouped(nq * (head_dim + 1), NAN);
          std::vector<float> group_scratch(nq * padded);
          AttentionDecodeBlocks(q.data(), stride, nq, &k0, &v0, kF32, n_last, stride, n_last,
                                head_dim, scale, group_scratch.data(), grouped.data(),
                                head_dim + 1);
          std::vector<float> want_all(nq * stride);
          ref::AttentionHead(q.data(), stride, nq, k.data(), stride, v.data(), stride, n_last,
                             head_dim, scale, SIZE_MAX, want_all.data(), stride);
          for (size_t i = 0; i < nq; ++i) {
            std::vector<float> alone(head_dim);
            AttentionDecodeBlocks(q.data() + i * stride, stride, 1, &k0, &v0, kF32, n_last, stride,
                                  n_last, head_dim, scale, scratch.data(), alone.data(), head_dim);
            for (size_t d = 0; d < head_dim; ++d) {
              ASSERT_EQ(grouped[i * (head_dim + 1) + d], alone[d])
                  << "query " << i << " of " << nq << " hd " << head_dim;
              ASSERT_NEAR(alone[d], want_all[i * stride + d], 2e-5f) << "query " << i;
            }
          }
        }
        // Keys and values in f16 (a KV cache in half precision), paged: exactly the numbers of
        // f32 blocks holding the same values widened, for a group of queries.
        {
          const size_t nq = std::min<size_t>(3, num_q);
          std::vector<uint16_t> kh(n_last * stride), vh(n_last * stride);
          NarrowRowF16(k.data(), kh.size(), kh.data());
          NarrowRowF16(v.data(), vh.size(), vh.data());
          std::vector<float> kw(kh.size()), vw(vh.size());
          ConvertRowToF32(kh.data(), tensor::DType::kF16, kh.size(), kw.data());
          ConvertRowToF32(vh.data(), tensor::DType::kF16, vh.size(), vw.data());
          const size_t block = 5, nb = (n_last + block - 1) / block;
          std::vector<const void*> k16(nb), v16(nb), k32(nb), v32(nb);
          for (size_t b = 0; b < nb; ++b) {
            k16[b] = kh.data() + b * block * stride;
            v16[b] = vh.data() + b * block * stride;
            k32[b] = kw.data() + b * block * stride;
            v32[b] = vw.data() + b * block * stride;
          }
          std::vector<float> s16(nq * padded), s32(nq * padded), o16(nq * head_dim, NAN),
              o32(nq * head_dim, NAN);
          AttentionDecodeBlocks(q.data(), stride, nq, k16.data(), v16.data(), tensor::DType::kF16,
                                block, stride, n_last, head_dim, scale, s16.data(), o16.data(),
                                head_dim);
          AttentionDecodeBlocks(q.data(), stride, nq, k32.data(), v32.data(), kF32, block, stride,
                                n_last, head_dim, scale, s32.data(), o32.data(), head_dim);
          // (Dimensions past the last whole vector are summed in scalar code, where the
          // compiler may contract the two instantiations differently.)
          for (size_t i = 0; i < o16.size(); ++i) {
            if (head_dim % AttentionMaxLanes() == 0) {
              ASSERT_EQ(o16[i], o32[i]) << "f16 blocks, hd " << head_dim << " keys " << n_last;
            } else {
              ASSERT_NEAR(o16[i], o32[i], 1e-6f) << "f16 blocks, hd " << head_dim;
            }
          }
        }
      }
    }
  }
}

// The KV pool's layout (blocks of 16 keys, rows of 64 values one after another) goes through
// groups addressed from their first row, any other layout through lists of rows: the same
// numbers, bit for bit, in f32 and f16, for whole groups and a short last one.
TEST_P(KernelsTest, DecodeAttentionOverPackedBlocksGivesTheNumbersOfAnyLayout) {
  constexpr size_t kDim = 64;
  for (const tensor::DType dtype : {tensor::DType::kF32, tensor::DType::kF16}) {
    const size_t es = tensor::DTypeSize(dtype);
    for (size_t num_keys : {1u, 16u, 33u, 100u, 280u}) {
      const auto k = RandomFloats(num_keys * kDim, 42), v = RandomFloats(num_keys * kDim, 43);
      // The keys and values paged into blocks of `block` rows `stride` apart, each block an
      // allocation of its own, the last one no longer than its rows (a read past them is an
      // ASan error), the cells between rows NaN.
      auto paged = [&](const std::vector<float>& rows, size_t block, size_t stride,
                       std::vector<std::vector<uint8_t>>& store) {
        const size_t nb = (num_keys + block - 1) / block;
        store.assign(nb, {});
        std::vector<const void*> blocks(nb);
        for (size_t b = 0; b < nb; ++b) {
          const size_t n = std::min(block, num_keys - b * block);
          std::vector<float> wide(n * stride, NAN);
          for (size_t r = 0; r < n; ++r) {
            std::copy_n(rows.data() + (b * block + r) * kDim, kDim, wide.data() + r * stride);
          }
          store[b].resize(wide.size() * es);
          if (dtype == tensor::DType::kF16) {
            NarrowRowF16(wide.data(), wide.size(), store[b].data());
          } else {
            std::memcpy(store[b].data(), wide.data(), store[b].size());
          }
          blocks[b] = store[b].data();
        }
        return blocks;
      };
      for (size_t nq : {1u, 3u}) {
        const auto q = RandomFloats(nq * kDim, 41);
        const float scale = 0.125f;
        const size_t padded =
            (num_keys + AttentionMaxLanes() - 1) / AttentionMaxLanes() * AttentionMaxLanes();
        std::vector<float> scratch(nq * padded);
        std::vector<std::vector<uint8_t>> ks, vs, kr, vr;
        const auto kb = paged(k, 16, kDim, ks), vb = paged(v, 16, kDim, vs);
        const auto kb5 = paged(k, 5, kDim + 3, kr), vb5 = paged(v, 5, kDim + 3, vr);
        std::vector<float> packed(nq * kDim, NAN), rows(nq * kDim, NAN);
        AttentionDecodeBlocks(q.data(), kDim, nq, kb.data(), vb.data(), dtype, 16, kDim, num_keys,
                              kDim, scale, scratch.data(), packed.data(), kDim);
        AttentionDecodeBlocks(q.data(), kDim, nq, kb5.data(), vb5.data(), dtype, 5, kDim + 3,
                              num_keys, kDim, scale, scratch.data(), rows.data(), kDim);
        for (size_t i = 0; i < packed.size(); ++i) {
          ASSERT_FALSE(std::isnan(packed[i])) << i;
          ASSERT_EQ(packed[i], rows[i]) << "keys " << num_keys << " queries " << nq << " at " << i
                                        << (dtype == tensor::DType::kF16 ? " f16" : " f32");
        }
      }
    }
  }
}

TEST_P(KernelsTest, NarrowingToF16MatchesScalarTwin) {
  // Ordinary values, ties, subnormals, the edges of f16's range and past it, infinities, NaN.
  std::vector<float> x = RandomFloats(1000, 31, 100.0f);
  for (float f : {0.0f, -0.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 6e-8f, 3e-8f, 1e-5f,
                  -2.9e-8f, 65504.0f, 65519.0f, 65520.0f, 1e6f, -1e9f, INFINITY, -INFINITY, NAN}) {
    x.push_back(f);
  }
  for (size_t n : {x.size(), size_t{1}, size_t{17}}) {
    std::vector<uint16_t> got(n, 0xffff);
    NarrowRowF16(x.data() + x.size() - n, n, got.data());
    for (size_t i = 0; i < n; ++i) {
      const float f = x[x.size() - n + i];
      ASSERT_EQ(got[i], tensor::F32ToF16Saturated(f)) << f;
      const float back = tensor::F16ToF32(got[i]);
      if (std::isnan(f)) {
        ASSERT_TRUE(std::isnan(back));
      } else {
        ASSERT_LE(std::fabs(back), tensor::kF16Max) << f;  // never an infinity
      }
    }
  }
}

TEST_P(KernelsTest, ActivationsMatchScalarTwins) {
  for (size_t n : {1u, 15u, 16u, 33u, 1000u}) {
    auto x = RandomFloats(n, 21, 3.0f), up = RandomFloats(n, 22);
    x[0] = -30.0f;  // far tails
    if (n > 1) x[1] = 30.0f;
    auto g1 = x, g2 = x;
    GeluTanh(g1.data(), n);
    ref::GeluTanh(g2.data(), n);
    auto s1 = x, s2 = x;
    SiluMul(s1.data(), up.data(), n);
    ref::SiluMul(s2.data(), up.data(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_NEAR(g1[i], g2[i], 1e-6f * (1.0f + std::fabs(g2[i]))) << "gelu x=" << x[i];
      ASSERT_NEAR(s1[i], s2[i], 1e-6f * (1.0f + std::fabs(s2[i]))) << "silu x=" << x[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, KernelsTest, ::testing::ValuesIn(AvailableTargets()),
                         [](const auto& param_info) { return param_info.param; });

class QuantKernelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(ForceQuantPath(GetParam())) << GetParam(); }
  void TearDown() override { ForceQuantPath(""); }
};

// Rows of blocks as ggml writes them: an f16 scale, then 32 values in [-127, 127] (Q8_0) or
// 16 bytes of nibbles (Q4_0) per block.
std::vector<uint8_t> RandomBlockRows(size_t rows, size_t k, uint32_t seed, bool q4 = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(q4 ? 0 : -127, q4 ? 255 : 127);
  std::normal_distribution<float> scale(0.0f, 0.01f);
  const size_t payload = q4 ? 16 : 32, block = 2 + payload;
  std::vector<uint8_t> w(rows * k / 32 * block);
  for (size_t b = 0; b < w.size() / block; ++b) {
    const uint16_t h = tensor::F32ToF16(scale(rng));
    std::memcpy(&w[b * block], &h, 2);
    for (size_t i = 0; i < payload; ++i) w[b * block + 2 + i] = static_cast<uint8_t>(value(rng));
  }
  return w;
}

TEST_P(QuantKernelsTest, MatMulRowsQ8_0MatchesScalarTwin) {
  for (size_t k : {32u, 64u, 96u, 576u}) {
    for (size_t tokens : {1u, 2u, 4u, 5u, 9u}) {
      for (size_t n : {1u, 3u, 4u, 9u, 17u, 26u}) {
        auto x = RandomFloats(tokens * k, 3);
        std::vector<int8_t> q(tokens * k);
        std::vector<float> d(tokens * k / 32);
        QuantizeRowsQ8(x.data(), k, tokens, k, q.data(), d.data());
        auto w = RandomBlockRows(n, k, 4);
        // A row range inside the matrix, written at a stride wider than the range.
        const size_t nb = n > 2 ? 1 : 0, ne = n, stride = n + 2;
        std::vector<float> got(tokens * stride, -1.0f), want(tokens * stride, -1.0f);
        MatMulRowsQ8_0(q.data(), d.data(), tokens, w.data(), k, nb, ne, got.data(), stride);
        ref::MatMulRowsQ8_0(q.data(), d.data(), tokens, w.data(), k, nb, ne, want.data(), stride);
        for (size_t t = 0; t < tokens; ++t) {
          for (size_t j = 0; j < ne - nb; ++j) {
            const float a = got[t * stride + j], b = want[t * stride + j];
            EXPECT_NEAR(a, b, 1e-5f * (1.0f + std::fabs(b))) << k << " " << tokens << " " << n;
          }
          EXPECT_EQ(got[t * stride + (ne - nb)], -1.0f) << "wrote past the range";
        }
      }
    }
  }
}

TEST_P(QuantKernelsTest, MatMulRowsQ8_0xMatchesTheBlockLayout) {
  for (size_t k : {32u, 64u, 96u, 576u, 608u}) {
    const size_t vb = tensor::Q8xValueBytes(k), ds = tensor::Q8xScaleBytes(k) / 2;
    const size_t row_bytes = tensor::RowBytes(DType::kQ8_0x, k);
    for (size_t tokens : {1u, 3u, 4u, 6u}) {
      for (size_t n : {1u, 5u, 17u, 26u}) {
        auto x = RandomFloats(tokens * k, 5);
        std::vector<int8_t> q(tokens * k), qx(tokens * vb, 0);
        std::vector<float> d(tokens * k / 32), dx(tokens * ds, 0.0f);
        QuantizeRowsQ8(x.data(), k, tokens, k, q.data(), d.data());
        for (size_t t = 0; t < tokens; ++t) {
          std::copy(q.begin() + t * k, q.begin() + (t + 1) * k, qx.begin() + t * vb);
          std::copy(d.begin() + t * k / 32, d.begin() + (t + 1) * k / 32, dx.begin() + t * ds);
        }
        auto w = RandomBlockRows(n, k, 6);
        std::vector<uint8_t> wx(n * row_bytes);
        for (size_t r = 0; r < n; ++r) {
          tensor::RepackRowQ8_0x(w.data() + r * (k / 32 * 34), k, wx.data() + r * row_bytes);
        }
        const size_t nb = n > 2 ? 1 : 0, stride = n + 2;
        std::vector<float> got(tokens * stride, -1.0f), want(tokens * stride, -1.0f),
            block(tokens * stride, -1.0f);
        MatMulRowsQ8_0x(qx.data(), dx.data(), tokens, wx.data(), k, nb, n, got.data(), stride);
        ref::MatMulRowsQ8_0x(qx.data(), dx.data(), tokens, wx.data(), k, nb, n, want.data(),
                             stride);
        ref::MatMulRowsQ8_0(q.data(), d.data(), tokens, w.data(), k, nb, n, block.data(), stride);
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << k << " " << i;
          EXPECT_EQ(want[i], block[i]) << "the two layouts hold the same matrix";
        }
      }
    }
  }
  // The repacked row dequantizes to the values of the block row.
  auto w = RandomBlockRows(1, 96, 7);
  std::vector<uint8_t> wx(tensor::RowBytes(DType::kQ8_0x, 96));
  tensor::RepackRowQ8_0x(w.data(), 96, wx.data());
  std::vector<float> a(96), b(96);
  ConvertRowToF32(w.data(), DType::kQ8_0, 96, a.data());
  ConvertRowToF32(wx.data(), DType::kQ8_0x, 96, b.data());
  EXPECT_EQ(a, b);
}

// Rows of Q8_0 (or Q4_0) blocks in kQ8_0p (kQ4_0p) panels, in 64-byte aligned memory (as the
// model holds them).
struct Panels {
  std::vector<uint8_t> bytes;
  uint8_t* data = nullptr;
  Panels(const std::vector<uint8_t>& block_rows, size_t rows, size_t k,
         DType dtype = DType::kQ8_0p) {
    const size_t panel = tensor::PanelBytes(dtype, k);
    const size_t row_bytes = k / 32 * (dtype == DType::kQ4_0p ? 18 : 34);
    bytes.resize(rows / 16 * panel + 64);
    data = bytes.data() + (64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64;
    for (size_t p = 0; p < rows / 16; ++p) {
      const uint8_t* src = block_rows.data() + p * 16 * row_bytes;
      tensor::RepackPanel(dtype, src, row_bytes, k, data + p * panel);
    }
  }
};

TEST_P(QuantKernelsTest, MatMulRowsQ8_0pMatchesTheBlockLayoutBitForBitOnEveryPath) {
  for (size_t k : {32u, 96u, 576u, 608u}) {
    const size_t nb = k / 32;
    for (size_t tokens : {1u, 2u, 4u, 5u, 9u}) {
      for (size_t n : {16u, 48u, 80u, 144u}) {
        auto x = RandomFloats(tokens * k, 8);
        std::vector<int8_t> q(tokens * k);
        std::vector<float> d(tokens * nb);
        std::vector<int32_t> sums(tokens * nb);
        QuantizeRowsQ8(x.data(), k, tokens, k, q.data(), d.data(), sums.data());
        auto w = RandomBlockRows(n, k, 9);
        w[2] = 0x80;  // a -128 weight (ggml never writes one; a file may hold it)
        Panels panels(w, n, k);
        // A range of whole panels inside the matrix, written at a stride wider than the range.
        const size_t nb0 = n > 16 ? 16 : 0, stride = n + 2;
        std::vector<float> got(tokens * stride, -1.0f), want(tokens * stride, -1.0f),
            twin(tokens * stride, -1.0f);
        MatMulRowsPanels(DType::kQ8_0p, q.data(), d.data(), sums.data(), tokens, panels.data, k,
                         nb0, n, got.data(), stride);
        ref::MatMulRowsQ8_0(q.data(), d.data(), tokens, w.data(), k, nb0, n, want.data(), stride);
        ASSERT_TRUE(ForceQuantPath("scalar"));
        MatMulRowsPanels(DType::kQ8_0p, q.data(), d.data(), sums.data(), tokens, panels.data, k,
                         nb0, n, twin.data(), stride);
        ASSERT_TRUE(ForceQuantPath(GetParam()));
        for (size_t t = 0; t < tokens; ++t) {
          for (size_t j = 0; j < n - nb0; ++j) {
            const float a = got[t * stride + j], b = want[t * stride + j];
            ASSERT_NEAR(a, b, 1e-5f * (1.0f + std::fabs(b))) << k << " " << tokens << " " << n;
            ASSERT_EQ(a, twin[t * stride + j]) << "the scalar twin, bit for bit";
          }
          EXPECT_EQ(got[t * stride + (n - nb0)], -1.0f) << "wrote past the range";
          // A token alone gets the numbers it gets in a batch.
          std::vector<float> alone(n - nb0);
          MatMulRowsPanels(DType::kQ8_0p, q.data() + t * k, d.data() + t * nb, sums.data() + t * nb,
                           1, panels.data, k, nb0, n, alone.data(), n - nb0);
          for (size_t j = 0; j < n - nb0; ++j) ASSERT_EQ(alone[j], got[t * stride + j]) << t;
        }
      }
    }
  }
}

TEST_P(QuantKernelsTest, ActivationsQuantizeAsTheScalarLoopOnEveryPath) {
  // Blocks: random at several scales; exact halves (max 127: scale 1, so v is v / scale);
  // NaN and infinity; tiny values whose scale is subnormal; zeros.
  std::vector<float> x = RandomFloats(32 * 8, 12, 3.0f);
  auto big = RandomFloats(32, 13, 1e4f);
  auto tiny = RandomFloats(32, 14, 1e-38f);
  x.insert(x.end(), big.begin(), big.end());
  x.insert(x.end(), tiny.begin(), tiny.end());
  std::vector<float> halves(32, 0.0f);
  const float hv[] = {127.0f, 2.5f, -3.5f, 0.5f, -0.5f, 126.5f, -126.5f, 1.4999999f, 0.49999997f};
  std::copy(std::begin(hv), std::end(hv), halves.begin());
  x.insert(x.end(), halves.begin(), halves.end());
  std::vector<float> odd(32, 1.0f);
  odd[3] = std::nanf("");
  odd[7] = -std::numeric_limits<float>::infinity();
  odd[9] = -0.0f;
  x.insert(x.end(), odd.begin(), odd.end());
  std::vector<float> nan_max(32, 2.0f);
  nan_max[0] = std::nanf("");
  x.insert(x.end(), nan_max.begin(), nan_max.end());
  x.insert(x.end(), 32, 0.0f);
  const size_t k = 64, tokens = x.size() / k;
  std::vector<int8_t> q(x.size()), q_ref(x.size());
  std::vector<float> d(x.size() / 32), d_ref(x.size() / 32);
  std::vector<int32_t> s(x.size() / 32), s_ref(x.size() / 32);
  QuantizeRowsQ8(x.data(), k, tokens, k, q.data(), d.data(), s.data());
  ASSERT_TRUE(ForceQuantPath("scalar"));
  QuantizeRowsQ8(x.data(), k, tokens, k, q_ref.data(), d_ref.data(), s_ref.data());
  ASSERT_TRUE(ForceQuantPath(GetParam()));
  EXPECT_EQ(q, q_ref);
  for (size_t b = 0; b < d.size(); ++b) {
    EXPECT_EQ(std::memcmp(&d[b], &d_ref[b], 4), 0) << b << ": " << d[b] << " vs " << d_ref[b];
    int32_t sum = 0;
    for (size_t i = 0; i < 32; ++i) sum += q_ref[b * 32 + i];
    EXPECT_EQ(s[b], sum) << b;
  }
  EXPECT_EQ(q[10 * 32 + 1], 3) << "2.5 rounds away from zero";
  EXPECT_EQ(q[10 * 32 + 2], -4) << "-3.5 rounds away from zero";
}

TEST_P(QuantKernelsTest, MatMulRowsQ4_0pMatchesTheBlockLayoutBitForBitOnEveryPath) {
  for (size_t k : {32u, 96u, 576u}) {
    const size_t nb = k / 32;
    for (size_t tokens : {1u, 3u, 4u, 6u}) {
      for (size_t n : {16u, 48u, 144u}) {
        auto x = RandomFloats(tokens * k, 15);
        std::vector<int8_t> q(tokens * k);
        std::vector<float> d(tokens * nb);
        std::vector<int32_t> sums(tokens * nb);
        QuantizeRowsQ8(x.data(), k, tokens, k, q.data(), d.data(), sums.data());
        auto w4 = RandomBlockRows(n, k, 16, /*q4=*/true);
        std::vector<uint8_t> w8(n * nb * 34);  // the same values as Q8_0 blocks
        tensor::WidenRowToQ8_0(tensor::GgmlType::kQ4_0, w4.data(), n * k, w8.data());
        Panels panels(w4, n, k, DType::kQ4_0p);
        const uint8_t* data = panels.data;
        const size_t nb0 = n > 16 ? 16 : 0, stride = n + 2;
        std::vector<float> got(tokens * stride, -1.0f), want(tokens * stride, -1.0f),
            twin(tokens * stride, -1.0f);
        MatMulRowsPanels(DType::kQ4_0p, q.data(), d.data(), sums.data(), tokens, data, k, nb0, n,
                         got.data(), stride);
        ref::MatMulRowsQ8_0(q.data(), d.data(), tokens, w8.data(), k, nb0, n, want.data(), stride);
        ASSERT_TRUE(ForceQuantPath("scalar"));
        MatMulRowsPanels(DType::kQ4_0p, q.data(), d.data(), sums.data(), tokens, data, k, nb0, n,
                         twin.data(), stride);
        ASSERT_TRUE(ForceQuantPath(GetParam()));
        for (size_t t = 0; t < tokens; ++t) {
          for (size_t j = 0; j < n - nb0; ++j) {
            const float a = got[t * stride + j], b = want[t * stride + j];
            ASSERT_NEAR(a, b, 1e-5f * (1.0f + std::fabs(b))) << k << " " << tokens << " " << n;
            ASSERT_EQ(a, twin[t * stride + j]) << "the scalar twin, bit for bit";
          }
          EXPECT_EQ(got[t * stride + (n - nb0)], -1.0f) << "wrote past the range";
          std::vector<float> alone(n - nb0);
          MatMulRowsPanels(DType::kQ4_0p, q.data() + t * k, d.data() + t * nb, sums.data() + t * nb,
                           1, data, k, nb0, n, alone.data(), n - nb0);
          for (size_t j = 0; j < n - nb0; ++j) ASSERT_EQ(alone[j], got[t * stride + j]) << t;
        }
        // Each panel row holds its Q4_0 row's values.
        std::vector<float> row(k), from_panel(k);
        for (size_t r = 0; r < n; r += 5) {
          tensor::DequantizeRow(tensor::GgmlType::kQ4_0, &w4[r * nb * 18], k, row.data());
          tensor::DequantizePanelRow(DType::kQ4_0p, data, k, r, from_panel.data());
          ASSERT_EQ(from_panel, row) << r;
        }
      }
    }
  }
}

// Rows of Q4_K, Q5_K or Q6_K super-blocks of 256 values (144, 176, 210 bytes): finite f16
// super-scales, every other byte random (any byte pattern is a valid block).
std::vector<uint8_t> RandomKRows(size_t rows, size_t k, uint32_t seed, DType kind) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> scale(0.0f, 0.002f);
  const size_t block = tensor::RowBytes(kind, 256);
  std::vector<uint8_t> w(rows * k / 256 * block);
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  for (size_t b = 0; b < w.size() / block; ++b) {
    uint8_t* blk = &w[b * block];
    const bool q6 = kind == DType::kQ6_K;
    for (size_t which = 0; which < (q6 ? 1u : 2u); ++which) {
      const uint16_t h = tensor::F32ToF16(scale(rng));
      std::memcpy(q6 ? blk + 208 : blk + 2 * which, &h, 2);
    }
  }
  return w;
}

// The K panels hold their rows' values bit for bit, and multiply as those values do: against
// a double-precision sum over the file's values, the scalar twin bit for bit, and a token
// alone as in a batch.
TEST_P(QuantKernelsTest, MatMulRowsKPanelsMultiplyTheFilesValuesOnEveryPath) {
  for (DType kind : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const DType panel_type = kind == DType::kQ4_K   ? DType::kQ4_Kp
                             : kind == DType::kQ5_K ? DType::kQ5_Kp
                                                    : DType::kQ6_Kp;
    const tensor::GgmlType ggml = *tensor::StoredGgmlType(kind);
    for (size_t k : {256u, 768u}) {
      const size_t nb = k / 32, row_bytes = tensor::RowBytes(kind, k);
      for (size_t tokens : {1u, 3u, 4u, 6u}) {
        for (size_t n : {16u, 48u, 144u}) {
          SCOPED_TRACE(std::string(tensor::DTypeName(kind)) + " k=" + std::to_string(k) +
                       " tokens=" + std::to_string(tokens) + " n=" + std::to_string(n));
          auto x = RandomFloats(tokens * k, 21);
          std::vector<int8_t> q(tokens * k);
          std::vector<float> d(tokens * nb);
          std::vector<int32_t> sums(tokens * nb), halves(tokens * k / 16);
          QuantizeRowsQ8(x.data(), k, tokens, k, q.data(), d.data(), sums.data());
          SumsPer16(q.data(), tokens * k, halves.data());
          const auto w = RandomKRows(n, k, 22 + static_cast<uint32_t>(n), kind);
          std::vector<uint8_t> bytes(n / 16 * tensor::PanelBytes(panel_type, k) + 64);
          uint8_t* data = bytes.data() + (64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64;
          for (size_t p = 0; p < n / 16; ++p) {
            tensor::RepackPanel(panel_type, w.data() + p * 16 * row_bytes, row_bytes, k,
                                data + p * tensor::PanelBytes(panel_type, k));
          }
          std::vector<float> values(n * k);
          for (size_t r = 0; r < n; ++r) {
            tensor::DequantizeRow(ggml, w.data() + r * row_bytes, k, &values[r * k]);
            std::vector<float> from_panel(k);
            tensor::DequantizePanelRow(panel_type, data, k, r, from_panel.data());
            ASSERT_EQ(std::memcmp(from_panel.data(), &values[r * k], 4 * k), 0) << "row " << r;
          }
          const size_t nb0 = n > 16 ? 16 : 0, stride = n + 2;
          std::vector<float> got(tokens * stride, -1.0f), twin(tokens * stride, -1.0f);
          MatMulRowsPanels(panel_type, q.data(), d.data(), sums.data(), tokens, data, k, nb0, n,
                           got.data(), stride, halves.data());
          ASSERT_TRUE(ForceQuantPath("scalar"));
          MatMulRowsPanels(panel_type, q.data(), d.data(), sums.data(), tokens, data, k, nb0, n,
                           twin.data(), stride, halves.data());
          ASSERT_TRUE(ForceQuantPath(GetParam()));
          for (size_t t = 0; t < tokens; ++t) {
            for (size_t j = 0; j < n - nb0; ++j) {
              double want = 0, size = 0;
              for (size_t i = 0; i < k; ++i) {
                const double term = static_cast<double>(values[(nb0 + j) * k + i]) * q[t * k + i] *
                                    d[t * nb + i / 32];
                want += term;
                size += std::fabs(term);
              }
              const float a = got[t * stride + j];
              ASSERT_NEAR(a, want, 1e-5 * (size + 1e-6)) << t << " " << j;
              ASSERT_EQ(a, twin[t * stride + j]) << "the scalar twin, bit for bit";
            }
            EXPECT_EQ(got[t * stride + (n - nb0)], -1.0f) << "wrote past the range";
            std::vector<float> alone(n - nb0);
            MatMulRowsPanels(panel_type, q.data() + t * k, d.data() + t * nb, sums.data() + t * nb,
                             1, data, k, nb0, n, alone.data(), n - nb0, halves.data() + t * k / 16);
            for (size_t j = 0; j < n - nb0; ++j) ASSERT_EQ(alone[j], got[t * stride + j]) << t;
          }
        }
      }
    }
  }
}

TEST(QuantKernels, KPanelAddressingFitsThePanel) {
  for (DType p : {DType::kQ4_Kp, DType::kQ5_Kp, DType::kQ6_Kp}) {
    for (size_t n : {256u, 512u, 2048u, 8192u}) {
      const size_t bytes = tensor::PanelBytes(p, n);
      EXPECT_EQ(bytes % 64, 0u);
      EXPECT_EQ(tensor::RowBytes(p, n) * 16, bytes);
      const size_t nb = n / 32, last_super = n / 256 - 1;
      EXPECT_LT(tensor::PanelValueOffset(p, 15, n - 1), nb * tensor::PanelBlockBytes(p));
      EXPECT_EQ(tensor::PanelSubScaleOffset(p, n, 0, 0, 0), nb * tensor::PanelBlockBytes(p));
      EXPECT_LT(tensor::PanelSubScaleOffset(p, n, 15, nb - 1, 1),
                tensor::PanelSuperScaleOffset(p, n, 0, 0, 0));
      const size_t which = p == DType::kQ6_Kp ? 0 : 1;
      EXPECT_LE(tensor::PanelSuperScaleOffset(p, n, 15, last_super, which) + 2, bytes);
      EXPECT_EQ(tensor::PanelSuperScaleOffset(p, n, 0, 1, 0) % 32, 0u) << "aligned loads";
    }
  }
  // Bits per weight: Q4_Kp 4.625 (Q4_K 4.5), Q5_Kp 5.625 (Q5_K 5.5), Q6_Kp 6.5625 (Q6_K
  // 6.5625).
  EXPECT_EQ(tensor::PanelBytes(DType::kQ4_Kp, 2048) * 8, 16u * 2048 * 4625 / 1000);
  EXPECT_EQ(tensor::PanelBytes(DType::kQ5_Kp, 2048) * 8, 16u * 2048 * 5625 / 1000);
  EXPECT_EQ(tensor::PanelBytes(DType::kQ6_Kp, 2048) * 8, 16u * 2048 * 65625 / 10000);
  // Every value's nibble and high bits have a place of their own, inside its block.
  for (DType p : {DType::kQ5_Kp, DType::kQ6_Kp}) {
    const size_t bits = tensor::PanelHighBits(p);
    std::vector<uint8_t> used(tensor::PanelBlockBytes(p), 0);
    for (size_t lane = 0; lane < 16; ++lane) {
      for (size_t j = 0; j < 32; ++j) {
        uint8_t& low = used[tensor::PanelValueOffset(p, lane, j)];
        const int low_bits = 0x0F << tensor::PanelValueShift(p, j);
        EXPECT_EQ(low & low_bits, 0) << lane << " " << j;
        low = static_cast<uint8_t>(low | low_bits);
        const size_t at = tensor::PanelHighOffset(p, lane, j);
        ASSERT_GE(at, 256u);
        ASSERT_LT(at, used.size());
        const int high_bits = ((1 << bits) - 1) << tensor::PanelHighShift(p, j);
        EXPECT_LT(high_bits, 256);
        EXPECT_EQ(used[at] & high_bits, 0) << lane << " " << j;
        used[at] = static_cast<uint8_t>(used[at] | high_bits);
      }
    }
    for (uint8_t u : used) EXPECT_EQ(u, 0xFF) << "every bit of the block holds a value";
  }
}

TEST(QuantKernels, PanelsHoldTheValuesOfTheirRows) {
  const size_t rows = 32, k = 96;
  auto w = RandomBlockRows(rows, k, 10);
  w[5] = 0x80;
  Panels panels(w, rows, k);
  EXPECT_EQ(tensor::RowBytes(DType::kQ8_0p, k) * 16, tensor::PanelBytes(DType::kQ8_0p, k));
  EXPECT_EQ(tensor::PanelBytes(DType::kQ8_0p, k) % 64, 0u);
  tensor::TensorView view{
      DType::kQ8_0p, {static_cast<int64_t>(rows), static_cast<int64_t>(k)}, panels.data};
  std::vector<float> row(k), got(k);
  for (size_t r = 0; r < rows; ++r) {
    ConvertRowToF32(w.data() + r * (k / 32 * 34), DType::kQ8_0, k, row.data());
    tensor::DequantizePanelRow(DType::kQ8_0p, panels.data, k, r, got.data());
    EXPECT_EQ(got, row) << r;
    for (size_t j = 0; j < k; j += 7)
      EXPECT_EQ(view.GetF32(static_cast<int64_t>(r * k + j)), row[j]);
  }
}

TEST(QuantKernels, Q4AndQ5BlocksBecomeQ8BlocksOfTheSameValues) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 50; ++trial) {
    uint8_t q4[18], q5[22], q8[34];
    for (uint8_t& b : q4) b = static_cast<uint8_t>(byte(rng));
    for (uint8_t& b : q5) b = static_cast<uint8_t>(byte(rng));
    const uint16_t h = tensor::F32ToF16(0.0123f * static_cast<float>(trial + 1));
    std::memcpy(q4, &h, 2);
    std::memcpy(q5, &h, 2);
    float a[32], b[32];
    tensor::WidenRowToQ8_0(tensor::GgmlType::kQ4_0, q4, 32, q8);
    tensor::DequantizeRow(tensor::GgmlType::kQ4_0, q4, 32, a);
    tensor::DequantizeRow(tensor::GgmlType::kQ8_0, q8, 32, b);
    EXPECT_EQ(std::vector<float>(a, a + 32), std::vector<float>(b, b + 32));
    tensor::WidenRowToQ8_0(tensor::GgmlType::kQ5_0, q5, 32, q8);
    tensor::DequantizeRow(tensor::GgmlType::kQ5_0, q5, 32, a);
    tensor::DequantizeRow(tensor::GgmlType::kQ8_0, q8, 32, b);
    EXPECT_EQ(std::vector<float>(a, a + 32), std::vector<float>(b, b + 32));
  }
}

TEST(QuantKernels, ActivationsQuantizeAsLlamaCppDoes) {
  std::vector<float> x(64);
  for (size_t i = 0; i < 32; ++i) x[i] = static_cast<float>(i) - 15.5f;  // max |x| 15.5
  // The second block is all zeros: scale 0, values 0.
  std::vector<int8_t> q(64);
  std::vector<float> d(2);
  QuantizeRowsQ8(x.data(), 64, 1, 64, q.data(), d.data());
  EXPECT_EQ(d[0], 15.5f / 127.0f);
  EXPECT_EQ(q[0], -127);
  EXPECT_EQ(q[31], 127);
  EXPECT_EQ(d[1], 0.0f);
  for (size_t i = 32; i < 64; ++i) EXPECT_EQ(q[i], 0);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_LE(std::fabs(q[i] * d[0] - x[i]), d[0] / 2 + 1e-6f) << i;
    EXPECT_EQ(q[i], static_cast<int8_t>(std::round(x[i] * (1.0f / d[0]))));
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, QuantKernelsTest, ::testing::ValuesIn(AvailableQuantPaths()),
                         [](const auto& path) { return path.param; });

TEST(KernelsInfoTest, ReportsTargetsAndFeatures) {
  auto targets = AvailableTargets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(ActiveTarget(), targets.front());
  EXPECT_FALSE(ForceTarget("NO_SUCH_TARGET"));
  EXPECT_EQ(ActiveTarget(), targets.front());
}

TEST(DTypeTest, HalfConversionsRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
    EXPECT_EQ(tensor::F16ToF32(tensor::F32ToF16(f)), f) << f;
  }
  EXPECT_EQ(tensor::Bf16ToF32(tensor::F32ToBf16(1.0f)), 1.0f);
  EXPECT_EQ(tensor::F32ToBf16(1.00390625f), 0x3f80);  // ties to even
  EXPECT_TRUE(std::isinf(tensor::F16ToF32(tensor::F32ToF16(1e6f))));
}

}  // namespace
}  // namespace iris::kernels
