// ops::MatMuls: several products of one input in one parallel loop give exactly the numbers of
// separate MatMul calls, on every path (decode tiles, prompt panels, bf16 products, int8), and
// `--compute bf16` reaches every product of float weights.
// Attention's kept buffers give the numbers of fresh ones; decoding queries get the same
// numbers alone or in a batch, on one thread or two.
#include "engine/ops/ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "base/thread_pool.h"
#include "engine/kernels/kernels.h"
#include "engine/tensor/dtype.h"
#include "engine/tensor/quant.h"

namespace iris::ops {
namespace {

struct Weight {
  std::vector<uint8_t> bytes;
  tensor::TensorView view;
};

// A [rows, k] weight of `dtype` (F32, BF16, Q8_0 quantized from random values, or BF16p and
// F16p: packed at load).
Weight RandomWeight(tensor::DType dtype, size_t rows, size_t k, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> values(rows * k);
  for (float& v : values) v = dist(rng);
  Weight w;
  if (dtype == tensor::DType::kBF16p) {
    w.bytes.resize(rows * tensor::RowBytes(dtype, k));
    kernels::PackBf16Panels(values.data(), tensor::DType::kF32, k, 0, rows, w.bytes.data());
    w.view = {dtype, {static_cast<int64_t>(rows), static_cast<int64_t>(k)}, w.bytes.data()};
    return w;
  }
  if (dtype == tensor::DType::kF16p) {
    std::vector<uint16_t> halves(values.size());
    for (size_t i = 0; i < values.size(); ++i) halves[i] = tensor::F32ToF16(values[i]);
    w.bytes.resize(rows * tensor::RowBytes(dtype, k));
    kernels::PackF16Panels(halves.data(), k, 0, rows, w.bytes.data());
    w.view = {dtype, {static_cast<int64_t>(rows), static_cast<int64_t>(k)}, w.bytes.data()};
    return w;
  }
  w.bytes.resize(rows * tensor::RowBytes(dtype, k));
  for (size_t r = 0; r < rows; ++r) {
    const float* row = values.data() + r * k;
    uint8_t* dst = w.bytes.data() + r * tensor::RowBytes(dtype, k);
    if (dtype == tensor::DType::kQ8_0) {
      tensor::QuantizeRowQ8_0(row, k, dst);
    } else if (dtype == tensor::DType::kBF16) {
      for (size_t i = 0; i < k; ++i) {
        uint32_t bits;
        std::memcpy(&bits, &row[i], 4);
        const auto h = static_cast<uint16_t>(bits >> 16);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      std::memcpy(dst, row, k * 4);
    }
  }
  w.view.dtype = dtype;
  w.view.shape = {static_cast<int64_t>(rows), static_cast<int64_t>(k)};
  w.view.data = w.bytes.data();
  return w;
}

TEST(MatMulsTest, GivesTheNumbersOfSeparateProducts) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  // A layer's q, k, v (rows of 576, 192, 192: whole panels) and an odd set (rows not multiples
  // of anything, so ranges cut inside products).
  const std::vector<std::vector<size_t>> shapes = {{576, 192, 192}, {37, 101, 5}};
  for (tensor::DType dtype : {tensor::DType::kF32, tensor::DType::kBF16, tensor::DType::kQ8_0,
                              tensor::DType::kBF16p, tensor::DType::kF16p}) {
    const bool packed = tensor::IsHalfPanelType(dtype);
    for (const auto& rows : shapes) {
      // (Panels packed at load: whole groups of 16 rows.)
      if (packed && std::any_of(rows.begin(), rows.end(), [](size_t r) { return r % 16; }))
        continue;
      const size_t k = 96;
      std::vector<Weight> ws;
      for (size_t n : rows) ws.push_back(RandomWeight(dtype, n, k, rng));
      for (size_t tokens : {size_t{1}, size_t{16}, size_t{70}}) {
        std::vector<float> x(tokens * k);
        std::normal_distribution<float> dist(0.0f, 1.0f);
        for (float& v : x) v = dist(rng);
        for (bool bf16 : {false, true}) {
          // (F16 panels are the exact path's; the bf16 products take BF16 ones.)
          if (bf16 && (dtype == tensor::DType::kQ8_0 || dtype == tensor::DType::kF16p ||
                       !kernels::Bf16ProductsAvailable()))
            continue;
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            ComputeContext ctx{p, bf16};
            std::vector<std::vector<float>> apart, together;
            std::vector<MatMulOut> outs;
            for (size_t i = 0; i < ws.size(); ++i) {
              apart.emplace_back(tokens * rows[i]);
              together.emplace_back(tokens * rows[i], -1.0f);
              MatMul(ctx, x.data(), tokens, ws[i].view, apart.back().data());
            }
            for (size_t i = 0; i < ws.size(); ++i)
              outs.push_back({&ws[i].view, together[i].data()});
            MatMuls(ctx, x.data(), tokens, outs);
            for (size_t i = 0; i < ws.size(); ++i) {
              ASSERT_EQ(std::memcmp(apart[i].data(), together[i].data(), apart[i].size() * 4), 0)
                  << tensor::DTypeName(dtype) << " product " << i << " of " << rows.size() << ", "
                  << tokens << " tokens, bf16 " << bf16 << ", pool " << (p != nullptr);
            }
          }
        }
      }
    }
  }
}

TEST(MatMulsTest, WeightsOfDifferentDtypesGoOneAfterTheOther) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  const size_t k = 64, tokens = 3;
  Weight a = RandomWeight(tensor::DType::kBF16, 40, k, rng);
  Weight b = RandomWeight(tensor::DType::kF32, 24, k, rng);
  std::vector<float> x(tokens * k, 0.25f);
  ComputeContext ctx{&pool, false};
  std::vector<float> a1(tokens * 40), b1(tokens * 24), a2(a1.size(), -1.0f), b2(b1.size(), -1.0f);
  MatMul(ctx, x.data(), tokens, a.view, a1.data());
  MatMul(ctx, x.data(), tokens, b.view, b1.data());
  const MatMulOut outs[] = {{&a.view, a2.data()}, {&b.view, b2.data()}};
  MatMuls(ctx, x.data(), tokens, outs);
  EXPECT_EQ(a1, a2);
  EXPECT_EQ(b1, b2);
}

// `--compute bf16` covers every product of float weights: one decoding token, a decoding
// batch and a prompt all get the bf16 kernel's numbers (not the exact ones); int8 weights keep
// theirs.
TEST(MatMulsTest, Bf16ComputeTakesEveryProductOfFloatWeights) {
  if (!kernels::Bf16ProductsAvailable()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  std::mt19937 rng(12);
  ThreadPool pool(2);
  const size_t k = 96, n = 50;
  for (tensor::DType dtype : {tensor::DType::kBF16, tensor::DType::kF32}) {
    Weight w = RandomWeight(dtype, n, k, rng);
    for (size_t tokens : {size_t{1}, size_t{16}, size_t{40}, size_t{70}}) {
      std::vector<float> x(tokens * k);
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (float& v : x) v = dist(rng);
      std::vector<float> got(tokens * n), bf16(tokens * n), exact(tokens * n);
      ComputeContext ctx{&pool, true};
      MatMul(ctx, x.data(), tokens, w.view, got.data());
      kernels::MatMulRowsBf16(x.data(), k, tokens, w.view.data, dtype, k, 0, n, bf16.data(), n);
      kernels::MatMulRows(x.data(), k, tokens, w.view.data, dtype, k, 0, n, exact.data(), n);
      EXPECT_EQ(got, bf16) << tensor::DTypeName(dtype) << ", " << tokens << " tokens";
      EXPECT_NE(got, exact) << tensor::DTypeName(dtype) << ", " << tokens << " tokens";
    }
  }
  Weight q = RandomWeight(tensor::DType::kQ8_0, n, k, rng);
  std::vector<float> x(k), with(n), without(n);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& v : x) v = dist(rng);  // (values bf16 cannot hold)
  ComputeContext on{&pool, true}, off{&pool, false};
  MatMul(on, x.data(), 1, q.view, with.data());
  MatMul(off, x.data(), 1, q.view, without.data());
  EXPECT_EQ(with, without);
}

// The model's matrices under `--compute bf16` are packed at load: a token gets the same
// numbers in a step of any size, on one thread or two, and from 32 rows the numbers of the
// weights' rows (per-call panels).
TEST(MatMulsTest, WeightsInBf16PanelsGiveATokenItsNumbersInAStepOfAnySize) {
  if (!kernels::Bf16ProductsAvailable()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  std::mt19937 rng(13);
  ThreadPool pool(2);
  const size_t k = 300, n = 208;  // 4 panels of 48 and a group of 16; 2 blocks of pairs
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> values(n * k);
  for (float& v : values) v = dist(rng);
  Weight packed;
  packed.bytes.resize(n * tensor::RowBytes(tensor::DType::kBF16p, k));
  kernels::PackBf16Panels(values.data(), tensor::DType::kF32, k, 0, n, packed.bytes.data());
  packed.view = {tensor::DType::kBF16p,
                 {static_cast<int64_t>(n), static_cast<int64_t>(k)},
                 packed.bytes.data()};
  const tensor::TensorView rows{
      tensor::DType::kF32, {static_cast<int64_t>(n), static_cast<int64_t>(k)}, values.data()};
  const size_t most = 70;
  std::vector<float> x(most * k);
  for (float& v : x) v = 2 * dist(rng);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    ComputeContext ctx{p, true};
    std::vector<float> alone(most * n);
    for (size_t t = 0; t < most; ++t) MatMul(ctx, x.data() + t * k, 1, packed.view, &alone[t * n]);
    for (size_t tokens : {size_t{2}, size_t{7}, size_t{31}, size_t{32}, size_t{70}}) {
      std::vector<float> step(tokens * n, -1.0f), from_rows(tokens * n, -1.0f);
      MatMul(ctx, x.data(), tokens, packed.view, step.data());
      EXPECT_EQ(std::memcmp(step.data(), alone.data(), step.size() * 4), 0)
          << tokens << " tokens, pool " << (p != nullptr);
      if (tokens >= kernels::kBf16GemmMinTokens) {
        MatMul(ctx, x.data(), tokens, rows, from_rows.data());
        EXPECT_EQ(step, from_rows) << tokens << " tokens, pool " << (p != nullptr);
      }
    }
  }
  // The packed matrix holds the bf16 values of the rows.
  const std::vector<float> unpacked = ToF32(packed.view);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(unpacked[i], tensor::Bf16ToF32(tensor::F32ToBf16(values[i]))) << i;
  }
}

// Attention keeps its packed keys and values between calls: a call after a longer or a shorter
// one gives the numbers of a fresh one.
TEST(AttentionTest, KeptBuffersGiveTheNumbersOfAFreshCall) {
  ThreadPool pool(2);
  ComputeContext ctx{&pool, false};
  const size_t heads = 3, kv_heads = 1, head_dim = 24;
  std::normal_distribution<float> dist(0.0f, 1.0f);
  auto run = [&](size_t keys) {
    std::mt19937 local(static_cast<uint32_t>(keys));
    std::vector<float> q(keys * heads * head_dim), k(keys * kv_heads * head_dim),
        v(keys * kv_heads * head_dim), out(q.size());
    for (auto* x : {&q, &k, &v}) {
      for (float& f : *x) f = dist(local);
    }
    CausalAttention(ctx, q.data(), keys, 0, k.data(), v.data(), heads, kv_heads, head_dim, 0.2f,
                    out.data());
    return out;
  };
  const std::vector<float> short_first = run(40), long_first = run(300);
  EXPECT_EQ(run(40), short_first);
  EXPECT_EQ(run(300), long_first);
}

TEST(AttentionTest, DecodingQueriesGetTheSameNumbersAloneOrBatchedOnAnyThreads) {
  // 9 query heads over 3 kv heads (the 256M model's layout), caches paged in blocks of 16
  // scattered in memory, sequences of different lengths, one with two new positions; blocks
  // of f32, then of f16 (a KV cache kept in half precision).
  const size_t heads = 9, kv_heads = 3, head_dim = 64, block = 16;
  const size_t kv_stride = kv_heads * head_dim, q_stride = heads * head_dim;
  const std::vector<std::pair<size_t, size_t>> shapes = {{5, 1}, {40, 1}, {16, 2}, {131, 1}};
  for (const tensor::DType dtype : {tensor::DType::kF32, tensor::DType::kF16}) {
    SCOPED_TRACE(std::string(tensor::DTypeName(dtype)));
    const bool half = dtype == tensor::DType::kF16;
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    // Each block as f32 (what it holds, widened) and as stored.
    std::vector<std::vector<float>> blocks_of;
    std::vector<std::vector<uint16_t>> halves_of;
    std::vector<std::vector<float>> queries;
    std::vector<std::vector<const void*>> keys(shapes.size()), values(shapes.size());
    std::vector<std::vector<const float*>> key_f32(shapes.size()), value_f32(shapes.size());
    for (size_t s = 0; s < shapes.size(); ++s) {
      const size_t total = shapes[s].first + shapes[s].second;
      const size_t nb = (total + block - 1) / block;
      for (size_t b = 0; b < 2 * nb; ++b) {
        blocks_of.emplace_back(block * kv_stride);
        halves_of.emplace_back(block * kv_stride);
        for (size_t i = 0; i < blocks_of.back().size(); ++i) {
          halves_of.back()[i] = tensor::F32ToF16Saturated(dist(rng));
          blocks_of.back()[i] = half ? tensor::F16ToF32(halves_of.back()[i]) : dist(rng);
        }
      }
      for (size_t b = 0; b < nb; ++b) {  // keys and values blocks in reverse order of creation
        const size_t kb = blocks_of.size() - 1 - b, vb = blocks_of.size() - 1 - nb - b;
        key_f32[s].push_back(blocks_of[kb].data());
        value_f32[s].push_back(blocks_of[vb].data());
        keys[s].push_back(half ? static_cast<const void*>(halves_of[kb].data())
                               : blocks_of[kb].data());
        values[s].push_back(half ? static_cast<const void*>(halves_of[vb].data())
                                 : blocks_of[vb].data());
      }
      queries.emplace_back(shapes[s].second * q_stride);
      for (float& f : queries.back()) f = dist(rng);
    }
    const KvBlocks list = [&](size_t s, std::vector<const void*>& k, std::vector<const void*>& v) {
      k.insert(k.end(), keys[s].begin(), keys[s].end());
      v.insert(v.end(), values[s].begin(), values[s].end());
    };
    auto run = [&](ThreadPool* pool, const std::vector<size_t>& which, tensor::DType as,
                   const KvBlocks& blocks) {
      ComputeContext ctx{pool, false};
      std::vector<std::vector<float>> out(shapes.size());
      std::vector<DecodeQueries> seqs;
      for (size_t s : which) {
        out[s].assign(shapes[s].second * q_stride, NAN);
        seqs.push_back({queries[s].data(), shapes[s].second, shapes[s].first, out[s].data()});
      }
      const KvBlocks picked = [&](size_t i, std::vector<const void*>& k,
                                  std::vector<const void*>& v) { blocks(which[i], k, v); };
      DecodeAttention(ctx, seqs, heads, kv_heads, head_dim, 0.125f, block, as, picked);
      return out;
    };
    ThreadPool pool(2);
    const auto batched = run(&pool, {0, 1, 2, 3}, dtype, list);
    EXPECT_EQ(run(nullptr, {0, 1, 2, 3}, dtype, list), batched);
    for (size_t s = 0; s < shapes.size(); ++s) {
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        EXPECT_EQ(run(p, {s}, dtype, list)[s], batched[s]) << "sequence " << s;
      }
      for (float f : batched[s]) ASSERT_TRUE(std::isfinite(f)) << "sequence " << s;
    }
    if (half) {
      // f16 blocks give exactly the numbers of f32 blocks holding the same (widened) values.
      const KvBlocks widened = [&](size_t s, std::vector<const void*>& k,
                                   std::vector<const void*>& v) {
        k.insert(k.end(), key_f32[s].begin(), key_f32[s].end());
        v.insert(v.end(), value_f32[s].begin(), value_f32[s].end());
      };
      EXPECT_EQ(run(&pool, {0, 1, 2, 3}, tensor::DType::kF32, widened), batched);
    }
    // The blocks are read head by head ([kv_heads, block, head_dim]): the same numbers, to
    // rounding, as attention over the positions gathered into rows.
    for (size_t s = 0; s < shapes.size(); ++s) {
      const auto [pos0, n] = shapes[s];
      std::vector<float> kg((pos0 + n) * kv_stride), vg(kg.size()), out(n * q_stride);
      for (size_t j = 0; j < pos0 + n; ++j) {
        for (size_t h = 0; h < kv_heads; ++h) {
          const size_t at = h * block * head_dim + j % block * head_dim;
          std::copy_n(key_f32[s][j / block] + at, head_dim,
                      kg.data() + j * kv_stride + h * head_dim);
          std::copy_n(value_f32[s][j / block] + at, head_dim,
                      vg.data() + j * kv_stride + h * head_dim);
        }
      }
      ComputeContext ctx{nullptr, false};
      CausalAttention(ctx, queries[s].data(), n, pos0, kg.data(), vg.data(), heads, kv_heads,
                      head_dim, 0.125f, out.data());
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_NEAR(batched[s][i], out[i], 2e-5f * (1.0f + std::fabs(out[i])))
            << "sequence " << s << " value " << i;
      }
      // Prompt attention over the blocks in place: the same numbers as over the rows, exactly.
      std::vector<float> paged(out.size(), NAN);
      ComputeContext threaded{&pool, false};
      CausalAttentionPaged(threaded, queries[s].data(), n, pos0, keys[s], values[s], dtype, block,
                           heads, kv_heads, head_dim, 0.125f, paged.data());
      EXPECT_EQ(paged, out) << "sequence " << s;
    }
  }
}

}  // namespace
}  // namespace iris::ops
