// WeightBinder: every weight ends in the model's own memory (never the file's mapping), with
// the file's values, narrowed where that is exact; WeightMemory hands out aligned pieces.
#include "engine/model/weights.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <vector>

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

// Under `--compute bf16` (Panels::kBf16) the float matrices of whole groups of 16 rows are
// packed once at load, holding the values the products round them to; a matrix of other rows,
// a table read by rows and a quantized matrix are bound as without it. By default (the exact
// path) only matrices whose values are kept are packed.
TEST_F(WeightBinderTest, PanelsHoldEveryMatrixOfWholeGroupsWithTheValuesTheProductsTake) {
  std::vector<float> f32(32 * 9);
  std::vector<uint16_t> bf16(16 * 5), odd(6 * 5), f16(16 * 3);
  std::vector<float> as_bf16(16 * 4);
  for (size_t i = 0; i < as_bf16.size(); ++i) {
    as_bf16[i] = tensor::Bf16ToF32(static_cast<uint16_t>(0xbf80 + 11 * i));
  }
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = 1.0f + static_cast<float>(i) * 1.37e-3f;
  for (size_t i = 0; i < f16.size(); ++i) f16[i] = static_cast<uint16_t>(0x3c00 + 5 * i);
  for (size_t i = 0; i < bf16.size(); ++i) bf16[i] = static_cast<uint16_t>(0x3f80 + 3 * i);
  for (size_t i = 0; i < odd.size(); ++i) odd[i] = static_cast<uint16_t>(0x4000 + i);
  std::vector<float> q(16 * 32);
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::cos(0.3f * static_cast<float>(i));
  const std::string path = (dir_ / "model.safetensors").string();
  ASSERT_TRUE(formats::WriteSafetensors(
                  path, {{"f32", tensor::DType::kF32, {32, 9}, Bytes(f32.data(), f32.size() * 4)},
                         {"bf16", tensor::DType::kBF16, {16, 5}, Bytes(bf16.data(), 160)},
                         {"odd", tensor::DType::kBF16, {6, 5}, Bytes(odd.data(), 60)},
                         {"f16", tensor::DType::kF16, {16, 3}, Bytes(f16.data(), 96)},
                         {"f32bf16", tensor::DType::kF32, {16, 4}, Bytes(as_bf16.data(), 256)},
                         {"q", tensor::DType::kF32, {16, 32}, Bytes(q.data(), q.size() * 4)}})
                  .ok());
  auto store = formats::WeightStore::OpenDir(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    WeightOptions options;
    options.pool = p;
    options.panels = WeightOptions::Panels::kBf16;
    WeightBinder binder(*store, options);
    auto a = binder.Bind("f32", {32, 9});
    auto b = binder.Bind("bf16", {16, 5});
    auto o = binder.Bind("odd", {6, 5});
    auto table = binder.BindTable("bf16", {16, 5});
    ASSERT_TRUE(a.ok() && b.ok() && o.ok() && table.ok());
    EXPECT_EQ(a->dtype, tensor::DType::kBF16p);
    EXPECT_EQ(b->dtype, tensor::DType::kBF16p);
    EXPECT_EQ(o->dtype, tensor::DType::kBF16);
    EXPECT_EQ(table->dtype, tensor::DType::kBF16);
    EXPECT_EQ(a->num_bytes(), 32 * tensor::RowBytes(tensor::DType::kBF16p, 9));
    for (size_t i = 0; i < f32.size(); ++i) {
      ASSERT_EQ(a->GetF32(static_cast<int64_t>(i)), tensor::Bf16ToF32(tensor::F32ToBf16(f32[i])))
          << i;
    }
    for (size_t i = 0; i < bf16.size(); ++i) {
      ASSERT_EQ(b->GetF32(static_cast<int64_t>(i)), tensor::Bf16ToF32(bf16[i])) << i;
    }
    // By default (the exact path) BF16 and F16 matrices are packed with their values, and an
    // F32 one that bf16 cannot hold stays in rows; kNone leaves every one in rows.
    WeightOptions exact;
    exact.pool = p;
    WeightBinder plain(*store, exact);
    auto pa = plain.Bind("f32", {32, 9});
    auto pb = plain.Bind("bf16", {16, 5});
    auto ph = plain.Bind("f16", {16, 3});
    ASSERT_TRUE(pa.ok() && pb.ok() && ph.ok());
    EXPECT_EQ(pa->dtype, tensor::DType::kF32);
    EXPECT_EQ(pb->dtype, tensor::DType::kBF16p);
    EXPECT_EQ(ph->dtype, tensor::DType::kF16p);
    for (size_t i = 0; i < bf16.size(); ++i) {
      ASSERT_EQ(pb->GetF32(static_cast<int64_t>(i)), tensor::Bf16ToF32(bf16[i])) << i;
    }
    for (size_t i = 0; i < f16.size(); ++i) {
      ASSERT_EQ(ph->GetF32(static_cast<int64_t>(i)), tensor::F16ToF32(f16[i])) << i;
    }
    // An F32 matrix whose values are bf16 is packed as they are; not without narrowing.
    auto pe = plain.Bind("f32bf16", {16, 4});
    ASSERT_TRUE(pe.ok());
    EXPECT_EQ(pe->dtype, tensor::DType::kBF16p);
    for (size_t i = 0; i < as_bf16.size(); ++i) {
      ASSERT_EQ(pe->GetF32(static_cast<int64_t>(i)), as_bf16[i]) << i;
    }
    WeightOptions wide = exact;
    wide.narrow_exact_f32 = false;
    WeightBinder unnarrowed(*store, wide);
    auto pw = unnarrowed.Bind("f32bf16", {16, 4});
    ASSERT_TRUE(pw.ok());
    EXPECT_EQ(pw->dtype, tensor::DType::kF32);
    WeightOptions none = exact;
    none.panels = WeightOptions::Panels::kNone;
    WeightBinder rows(*store, none);
    auto rb = rows.Bind("bf16", {16, 5});
    ASSERT_TRUE(rb.ok());
    EXPECT_EQ(rb->dtype, tensor::DType::kBF16);
    // Quantizing at load comes first.
    WeightOptions int8 = options;
    int8.quantize = tensor::DType::kQ8_0;
    WeightBinder quantizer(*store, int8);
    auto qb = quantizer.Bind("q", {16, 32});
    ASSERT_TRUE(qb.ok());
    EXPECT_TRUE(tensor::IsBlockType(qb->dtype)) << tensor::DTypeName(qb->dtype);
  }
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
  const bool panels8 = kernels::MultipliesPanels(tensor::DType::kQ8_0p);
  const bool panels4 = kernels::MultipliesPanels(tensor::DType::kQ4_0p);
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
    if (four ? panels4 : panels8) {
      EXPECT_EQ(m->dtype, four ? tensor::DType::kQ4_0p : tensor::DType::kQ8_0p);
    } else {  // rows of Q8_0 blocks (Q4_0's values widened), repacked where the path prefers
      EXPECT_EQ(m->dtype,
                kernels::PrefersRepackedQ8() ? tensor::DType::kQ8_0x : tensor::DType::kQ8_0);
    }
    if (kernels::PrefersRepackedQ8()) {
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
  if (panels4) {
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
  if (panels8) {
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

// Rows of K super-blocks as a GGUF file holds them: random bytes, finite scales.
std::vector<uint8_t> RandomKRows(size_t rows, size_t cols, tensor::GgmlType type, uint32_t seed) {
  const size_t block = tensor::GgmlInfo(type).block_bytes;
  std::vector<uint8_t> w(rows * cols / 256 * block);
  uint32_t state = seed;
  for (uint8_t& b : w) {
    state = state * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(state >> 24);
  }
  for (size_t b = 0; b < w.size() / block; ++b) {
    const uint16_t d = tensor::F32ToF16(0.001f * static_cast<float>(b % 7 + 1));
    if (type == tensor::GgmlType::kQ6_K) {
      std::memcpy(&w[b * block + 208], &d, 2);
    } else {
      std::memcpy(&w[b * block], &d, 2);
      std::memcpy(&w[b * block + 2], &d, 2);
    }
  }
  return w;
}

TEST_F(WeightBinderTest, KFileMatricesGoInKPanelsWithTheFilesValues) {
  // Q4_K, Q5_K and Q6_K matrices as a GGUF file holds them: multiplied whole they go in K panels
  // (where the int8 panel kernels run), read by rows or of an odd number of rows they are
  // their f32 values; every binding holds gguf-py's values.
  const size_t cols = 512;
  std::map<std::string, formats::TensorEntry> entries;
  std::vector<std::vector<uint8_t>> rows_of;
  std::map<std::string, std::vector<float>> want;
  for (auto [name, type, rows] : {std::tuple{"q4k", tensor::GgmlType::kQ4_K, size_t{32}},
                                  std::tuple{"q6k", tensor::GgmlType::kQ6_K, size_t{48}},
                                  std::tuple{"q5k", tensor::GgmlType::kQ5_K, size_t{16}},
                                  std::tuple{"odd", tensor::GgmlType::kQ4_K, size_t{20}}}) {
    rows_of.push_back(RandomKRows(rows, cols, type, static_cast<uint32_t>(rows)));
    std::vector<float>& values = want[name];
    values.resize(rows * cols);
    tensor::DequantizeRow(type, rows_of.back().data(), rows * cols, values.data());
    formats::TensorEntry e;
    e.name = name;
    e.file = "mem";
    e.view = tensor::TensorView{*tensor::StoredDType(type),
                                {static_cast<int64_t>(rows), static_cast<int64_t>(cols)},
                                rows_of.back().data()};
    entries[name] = e;
  }
  formats::WeightStore gguf = formats::WeightStore::FromEntries(entries, {}, "mem");
  const bool panels = kernels::MultipliesPanels(tensor::DType::kQ4_Kp);
  ThreadPool pool(2);
  WeightOptions options;
  options.pool = &pool;
  WeightBinder binder(gguf, options);
  auto q4k = binder.Bind("q4k", {32, 512});
  auto q6k = binder.Bind("q6k", {48, 512});
  auto table = binder.BindTable("q4k", {32, 512});
  auto odd = binder.Bind("odd", {20, 512});
  auto q5k = binder.Bind("q5k", {16, 512});
  ASSERT_TRUE(q4k.ok() && q6k.ok() && table.ok() && odd.ok() && q5k.ok());
  EXPECT_EQ(q5k->dtype, panels ? tensor::DType::kQ5_Kp : tensor::DType::kF32);
  EXPECT_EQ(ops::ToF32(*q5k), want["q5k"]);
  EXPECT_EQ(q4k->dtype, panels ? tensor::DType::kQ4_Kp : tensor::DType::kF32);
  EXPECT_EQ(q6k->dtype, panels ? tensor::DType::kQ6_Kp : tensor::DType::kF32);
  EXPECT_EQ(table->dtype, tensor::DType::kF32);
  EXPECT_EQ(odd->dtype, tensor::DType::kF32);
  EXPECT_EQ(ops::ToF32(*q4k), want["q4k"]);
  EXPECT_EQ(ops::ToF32(*q6k), want["q6k"]);
  EXPECT_EQ(ops::ToF32(*table), want["q4k"]);
  EXPECT_EQ(ops::ToF32(*odd), want["odd"]);
  // A Q4_K and a Q6_K product in one call (a Q4_K_M file's q and v) give what each gives alone.
  const size_t tokens = 5;
  std::vector<float> x(tokens * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i));
  std::vector<float> a(tokens * 32), b(tokens * 48), a1(tokens * 32), b1(tokens * 48);
  ops::ComputeContext ctx{&pool, false};
  const ops::MatMulOut both[] = {{&*q4k, a.data()}, {&*q6k, b.data()}};
  ops::MatMuls(ctx, x.data(), tokens, both);
  ops::MatMul(ctx, x.data(), tokens, *q4k, a1.data());
  ops::MatMul(ctx, x.data(), tokens, *q6k, b1.data());
  EXPECT_EQ(a, a1);
  EXPECT_EQ(b, b1);
  // ... and the file's values, to int8 precision.
  std::vector<float> w6 = want["q6k"];
  for (size_t t = 0; t < tokens; ++t) {
    for (size_t n = 0; n < 48; ++n) {
      double exact = 0, size = 0;
      for (size_t i = 0; i < cols; ++i) {
        exact += static_cast<double>(w6[n * cols + i]) * x[t * cols + i];
        size += std::fabs(static_cast<double>(w6[n * cols + i]) * x[t * cols + i]);
      }
      EXPECT_NEAR(b[t * 48 + n], exact, 0.01 * size) << t << " " << n;
    }
  }
  // Asked for q8_0, a K matrix is quantized from its values like any other.
  WeightOptions to_q8 = options;
  to_q8.quantize = tensor::DType::kQ8_0;
  WeightBinder requantized(gguf, to_q8);
  auto q8 = requantized.Bind("q4k", {32, 512});
  ASSERT_TRUE(q8.ok());
  std::vector<uint8_t> blocks(32 * cols / 32 * 34);
  std::vector<float> want8(32 * cols);
  for (size_t r = 0; r < 32; ++r) {
    tensor::QuantizeRowQ8_0(&want["q4k"][r * cols], cols, &blocks[r * cols / 32 * 34]);
  }
  tensor::DequantizeRow(tensor::GgmlType::kQ8_0, blocks.data(), 32 * cols, want8.data());
  EXPECT_EQ(ops::ToF32(*q8), want8);
}

}  // namespace
}  // namespace iris::model
