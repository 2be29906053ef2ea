// WeightBinder: every weight ends in the model's own memory (never the file's mapping), with
// the file's values, narrowed where that is exact; WeightMemory hands out aligned pieces.
#include "engine/model/weights.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "engine/kernels/kernels.h"
#include "engine/ops/ops.h"
#include "engine/tensor/dtype.h"
#include "engine/tensor/quant.h"

namespace iris::model {
namespace {
namespace fs = std::filesystem;

TEST(WeightMemoryTest, PiecesAreAlignedZeroedAndApart) {
  WeightMemory m;
  std::vector<std::pair<uint8_t*, size_t>> pieces;
  // Small pieces share a buffer; one larger than a buffer gets its own.
  for (size_t bytes : {size_t{1}, size_t{63}, size_t{1000}, size_t{100} << 20, size_t{65}}) {
    auto p = m.Allocate(bytes);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(*p) % 64, 0u);
    for (size_t i = 0; i < bytes; i += 4093) ASSERT_EQ((*p)[i], 0);
    std::memset(*p, 0xab, bytes);
    pieces.emplace_back(*p, bytes);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    for (size_t j = i + 1; j < pieces.size(); ++j) {
      const bool apart = pieces[i].first + pieces[i].second <= pieces[j].first ||
                         pieces[j].first + pieces[j].second <= pieces[i].first;
      EXPECT_TRUE(apart) << i << " and " << j << " overlap";
    }
  }
  // The small pieces are packed around the large one: 1000 bytes took 1024, 65 after them.
  EXPECT_EQ(pieces[4].first, pieces[2].first + 1024);
  auto impossible = m.Allocate(SIZE_MAX - 5);
  ASSERT_FALSE(impossible.ok());
  EXPECT_EQ(impossible.status().code(), ErrorCode::kResourceExhausted);
  WeightMemory moved = std::move(m);
  EXPECT_EQ(pieces[2].first[999], 0xab);  // still there, owned by `moved`
  EXPECT_GE(moved.bytes_used(), (size_t{100} << 20) + 1000);
}

class WeightBinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("iris_weights_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string Bytes(const void* p, size_t n) { return {static_cast<const char*>(p), n}; }

TEST_F(WeightBinderTest, EveryWeightIsCopiedOutOfTheFileWithItsValues) {
  // BF16 and F16 matrices as stored, an F32 one that is exactly BF16 (narrowed), an F32 one
  // that is not (copied as F32), and a small F32 vector.
  std::vector<uint16_t> bf16(6 * 5), f16(3 * 7);
  for (size_t i = 0; i < bf16.size(); ++i) bf16[i] = static_cast<uint16_t>(0x3f80 + i);
  for (size_t i = 0; i < f16.size(); ++i) f16[i] = static_cast<uint16_t>(0x3c00 + 3 * i);
  std::vector<float> exact(4 * 8), inexact(4 * 8), norm(8);
  for (size_t i = 0; i < exact.size(); ++i) {
    exact[i] = tensor::Bf16ToF32(static_cast<uint16_t>(0x4000 + 7 * i));
    inexact[i] = 1.0f + static_cast<float>(i) * 1e-3f;
  }
  for (size_t i = 0; i < norm.size(); ++i) norm[i] = static_cast<float>(i) - 2.5f;
  const std::string path = (dir_ / "model.safetensors").string();
  ASSERT_TRUE(formats::WriteSafetensors(
                  path, {{"bf16", tensor::DType::kBF16, {6, 5}, Bytes(bf16.data(), 60)},
                         {"f16", tensor::DType::kF16, {3, 7}, Bytes(f16.data(), 42)},
                         {"exact", tensor::DType::kF32, {4, 8}, Bytes(exact.data(), 128)},
                         {"inexact", tensor::DType::kF32, {4, 8}, Bytes(inexact.data(), 128)},
                         {"norm", tensor::DType::kF32, {8}, Bytes(norm.data(), 32)}})
                  .ok());
  auto store = formats::WeightStore::OpenDir(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // The file's bytes, to check no view points into them.
  std::set<std::pair<uintptr_t, uintptr_t>> file_ranges;
  for (const auto& [name, e] : store->entries()) {
    const auto b = reinterpret_cast<uintptr_t>(e.view.data);
    file_ranges.insert({b, b + e.view.num_bytes()});
  }
  auto outside_file = [&](const tensor::TensorView& v) {
    const auto b = reinterpret_cast<uintptr_t>(v.data);
    for (auto [lo, hi] : file_ranges) {
      if (b < hi && b + v.num_bytes() > lo) return false;
    }
    return true;
  };
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    WeightOptions options;
    options.pool = p;
    WeightBinder binder(*store, options);
    auto b = binder.Bind("bf16", {6, 5});
    auto h = binder.Bind("f16", {3, 7});
    auto x = binder.Bind("exact", {4, 8});
    auto y = binder.Bind("inexact", {4, 8});
    ASSERT_TRUE(b.ok() && h.ok() && x.ok() && y.ok());
    EXPECT_EQ(b->dtype, tensor::DType::kBF16);
    EXPECT_EQ(h->dtype, tensor::DType::kF16);
    EXPECT_EQ(x->dtype, tensor::DType::kBF16);  // narrowed: exactly representable
    EXPECT_EQ(y->dtype, tensor::DType::kF32);
    for (const auto* v : {&*b, &*h, &*x, &*y}) {
      EXPECT_TRUE(outside_file(*v));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v->data) % 64, 0u);
    }
    EXPECT_EQ(std::memcmp(b->data, bf16.data(), 60), 0);
    EXPECT_EQ(std::memcmp(h->data, f16.data(), 42), 0);
    EXPECT_EQ(std::memcmp(y->data, inexact.data(), 128), 0);
    const auto* narrowed = static_cast<const uint16_t*>(x->data);
    for (size_t i = 0; i < exact.size(); ++i) {
      ASSERT_EQ(tensor::Bf16ToF32(narrowed[i]), exact[i]) << i;
    }
    auto n = binder.BindF32("norm", {8});
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, norm);
    WeightMemory memory = binder.TakeOwned();
    EXPECT_GE(memory.bytes_used(), 60u + 42u + 64u + 128u);
    // The views stay valid in the moved memory.
    EXPECT_EQ(std::memcmp(b->data, bf16.data(), 60), 0);
  }
  // A table read by rows stays in the file when it is BF16/F16 and nothing converts it.
  WeightBinder rows(*store, WeightOptions{});
  auto in_file = rows.BindRows("bf16", {6, 5});
  auto narrowed = rows.BindRows("exact", {4, 8});
  ASSERT_TRUE(in_file.ok() && narrowed.ok());
  EXPECT_FALSE(outside_file(*in_file));
  EXPECT_EQ(std::memcmp(in_file->data, bf16.data(), 60), 0);
  EXPECT_TRUE(outside_file(*narrowed));
  EXPECT_EQ(narrowed->dtype, tensor::DType::kBF16);
}

TEST_F(WeightBinderTest, QuantizedMatricesGoInPanelsUnlessReadByRows) {
  // A 32 × 64 F32 matrix quantized at load (q8_0, q4_0), a Q4_0 matrix as a GGUF file holds
  // it, and the same bound as a table read by rows; every binding holds the quantizer's values.
  const size_t rows = 32, cols = 64;
  std::vector<float> w(rows * cols);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) * 0.1f;
  std::vector<uint8_t> q4(rows * cols / 32 * 18), q8(rows * cols / 32 * 34);
  std::vector<float> want4(w.size()), want8(w.size());
  for (size_t r = 0; r < rows; ++r) {
    tensor::QuantizeRowQ4_0(&w[r * cols], cols, &q4[r * cols / 32 * 18]);
    tensor::QuantizeRowQ8_0(&w[r * cols], cols, &q8[r * cols / 32 * 34]);
    tensor::DequantizeRow(tensor::GgmlType::kQ4_0, &q4[r * cols / 32 * 18], cols, &want4[r * cols]);
    tensor::DequantizeRow(tensor::GgmlType::kQ8_0, &q8[r * cols / 32 * 34], cols, &want8[r * cols]);
  }
  const std::string path = (dir_ / "model.safetensors").string();
  ASSERT_TRUE(formats::WriteSafetensors(
                  path, {{"w", tensor::DType::kF32, {32, 64}, Bytes(w.data(), w.size() * 4)}})
                  .ok());
  auto store = formats::WeightStore::OpenDir(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  formats::TensorEntry e;
  e.name = "q4";
  e.file = "mem";
  e.view = tensor::TensorView{tensor::DType::kQ4_0, {32, 64}, q4.data()};
  formats::WeightStore gguf = formats::WeightStore::FromEntries({{"q4", e}}, {}, "mem");
  const bool panels = kernels::PrefersPanelsQ8();
  ThreadPool pool(2);
  for (tensor::DType quantize : {tensor::DType::kQ8_0, tensor::DType::kQ4_0}) {
    WeightOptions options;
    options.quantize = quantize;
    options.pool = &pool;
    WeightBinder binder(*store, options);
    auto m = binder.Bind("w", {32, 64});
    auto t = binder.BindTable("w", {32, 64});
    ASSERT_TRUE(m.ok() && t.ok());
    const bool four = quantize == tensor::DType::kQ4_0;
    const std::vector<float>& want = four ? want4 : want8;
    if (panels) {
      EXPECT_EQ(m->dtype, four ? tensor::DType::kQ4_0p : tensor::DType::kQ8_0p);
      EXPECT_EQ(t->dtype, tensor::DType::kQ8_0x);  // rows stay whole, Q4_0 as Q8_0 blocks
    }
    EXPECT_EQ(ops::ToF32(*m), want);
    EXPECT_EQ(ops::ToF32(*t), want);
  }
  WeightBinder binder(gguf, WeightOptions{});
  auto m = binder.Bind("q4", {32, 64});
  auto t = binder.BindTable("q4", {32, 64});
  auto v = binder.BindF32("q4", {32, 64});
  ASSERT_TRUE(m.ok() && t.ok() && v.ok());
  if (panels) {
    EXPECT_EQ(m->dtype, tensor::DType::kQ4_0p);
  }
  EXPECT_EQ(ops::ToF32(*m), want4);
  EXPECT_EQ(ops::ToF32(*t), want4);
  EXPECT_EQ(*v, want4);
  // Asked for Q8_0, the file's Q4_0 matrix becomes Q8_0 with the same values, exactly.
  WeightOptions to_q8;
  to_q8.quantize = tensor::DType::kQ8_0;
  WeightBinder widened(gguf, to_q8);
  auto w8 = widened.Bind("q4", {32, 64});
  ASSERT_TRUE(w8.ok());
  if (panels) {
    EXPECT_EQ(w8->dtype, tensor::DType::kQ8_0p);
  }
  EXPECT_EQ(ops::ToF32(*w8), want4);
  // Q4_0 that is not a matrix of whole blocks is held as its f32 values.
  formats::TensorEntry odd = e;
  odd.view.shape = {32 * 64};
  formats::WeightStore odd_store = formats::WeightStore::FromEntries({{"q4", odd}}, {}, "mem");
  WeightBinder odd_binder(odd_store, WeightOptions{});
  auto flat = odd_binder.Bind("q4", {32 * 64});
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(flat->dtype, tensor::DType::kF32);
  EXPECT_EQ(std::memcmp(flat->data, want4.data(), want4.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace iris::model
