// The GGUF reader and writer, dequantization of every type against gguf-py's numpy code
// (tests/data/gguf/dequant_cases.gguf, written by generate.py beside it), and every kind of
// damage a file can carry.
#include "engine/formats/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

namespace iris::formats {
namespace {
using tensor::GgmlType;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(GgufDequant, EveryTypeMatchesGgufPyBitForBit) {
  const std::string path = std::string(IRIS_TEST_DATA_DIR) + "/gguf/dequant_cases.gguf";
  Result<GgufFile> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufContents& c = file->contents();
  std::set<std::string> types;
  int cases = 0;
  for (const auto& [name, t] : c.tensors) {
    if (name.ends_with(".expected") || name.starts_with("quantize.")) continue;
    Result<const GgufTensor*> expected = c.Tensor(name + ".expected");
    ASSERT_TRUE(expected.ok()) << name;
    ASSERT_EQ((*expected)->type, GgmlType::kF32);
    ASSERT_EQ((*expected)->shape, t.shape) << name;
    types.insert(std::string(tensor::GgmlInfo(t.type).name));
    std::vector<float> row(static_cast<size_t>(t.row_elems()));
    for (int64_t r = 0; r < t.rows(); ++r) {
      tensor::DequantizeRow(t.type, t.data + r * t.row_bytes(), row.size(), row.data());
      const uint8_t* want = (*expected)->data + r * (*expected)->row_bytes();
      for (size_t i = 0; i < row.size(); ++i) {
        float w;
        std::memcpy(&w, want + 4 * i, 4);
        uint32_t a, b;
        std::memcpy(&a, &row[i], 4);
        std::memcpy(&b, &w, 4);
        ASSERT_EQ(a, b) << name << " row " << r << " value " << i << ": " << row[i] << " vs " << w;
      }
    }
    ++cases;
  }
  EXPECT_EQ(types.size(), 11u) << "every type iris reads has cases";
  EXPECT_EQ(cases, 22);
  EXPECT_EQ(*c.String("general.architecture"), "iris-dequant-cases");
}

TEST(GgufDequant, Q8_0QuantizationMatchesGgufPyBitForBit) {
  Result<GgufFile> file =
      GgufFile::Open(std::string(IRIS_TEST_DATA_DIR) + "/gguf/dequant_cases.gguf");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufTensor* src = *file->contents().Tensor("quantize.Q8_0.src");
  const GgufTensor* want = *file->contents().Tensor("quantize.Q8_0");
  ASSERT_EQ(want->type, GgmlType::kQ8_0);
  std::vector<uint8_t> got(want->bytes);
  for (int64_t r = 0; r < src->rows(); ++r) {
    tensor::QuantizeRowQ8_0(reinterpret_cast<const float*>(src->data + r * src->row_bytes()),
                            static_cast<size_t>(src->row_elems()),
                            got.data() + r * want->row_bytes());
  }
  EXPECT_EQ(std::memcmp(got.data(), want->data, got.size()), 0);
}

TEST(GgufDequant, Q4_0QuantizationMatchesGgufPyBitForBit) {
  // text-Q4_0.gguf is the BF16 file's values quantized by gguf-py (tests/data/gguf/generate.py).
  const std::string dir = std::string(IRIS_TEST_DATA_DIR) + "/gguf/tiny-256m-style/";
  Result<GgufFile> bf16 = GgufFile::Open(dir + "text-BF16.gguf");
  Result<GgufFile> q4 = GgufFile::Open(dir + "text-Q4_0.gguf");
  ASSERT_TRUE(bf16.ok() && q4.ok());
  int matrices = 0;
  for (const auto& [name, want] : q4->contents().tensors) {
    if (want.type != GgmlType::kQ4_0) continue;
    const GgufTensor* src = *bf16->contents().Tensor(want.name);
    ASSERT_EQ(src->type, GgmlType::kBF16) << want.name;
    const size_t n = static_cast<size_t>(want.row_elems());
    std::vector<float> row(n);
    std::vector<uint8_t> got(want.row_bytes());
    for (int64_t r = 0; r < want.rows(); ++r) {
      tensor::DequantizeRow(GgmlType::kBF16, src->data + r * src->row_bytes(), n, row.data());
      tensor::QuantizeRowQ4_0(row.data(), n, got.data());
      ASSERT_EQ(std::memcmp(got.data(), want.data + r * want.row_bytes(), got.size()), 0)
          << want.name << " row " << r;
    }
    ++matrices;
  }
  EXPECT_GT(matrices, 5);
}

TEST(GgmlTypes, NamesAndParsing) {
  GgmlType t;
  ASSERT_TRUE(tensor::ParseGgmlType("q4_k", &t));
  EXPECT_EQ(t, GgmlType::kQ4_K);
  ASSERT_TRUE(tensor::ParseGgmlType("BF16", &t));
  EXPECT_EQ(t, GgmlType::kBF16);
  EXPECT_FALSE(tensor::ParseGgmlType("q4", &t));
  EXPECT_EQ(tensor::GgmlTypeName(16), "IQ2_XXS");
  EXPECT_EQ(tensor::GgmlTypeName(200), "type 200");
  EXPECT_EQ(tensor::FindGgmlType(9), nullptr);  // Q8_1: ggml's, not read
  EXPECT_EQ(tensor::GgmlInfo(GgmlType::kQ6_K).block_bytes, 210u);
}

// A small valid image: metadata of each kind, a Q8_0 matrix and an F32 vector.
struct Sample {
  std::vector<uint8_t> q8 = std::vector<uint8_t>(2 * 34, 0);
  std::vector<float> bias = {1.5f, -2.0f, 0.25f};
  std::vector<std::pair<std::string, GgufValue>> meta;
  std::vector<GgufTensorToWrite> tensors;

  Sample() {
    q8[0] = 0x00;
    q8[1] = 0x3c;  // d = 1.0
    for (int i = 0; i < 32; ++i) q8[2 + i] = static_cast<uint8_t>(i - 16);
    meta.emplace_back("general.architecture", GgufString("llama"));
    meta.emplace_back("llama.block_count", GgufU32(30));
    meta.emplace_back("llama.rope.freq_base", GgufF32(100000.0f));
    meta.emplace_back("tokenizer.ggml.add_bos_token", GgufBool(false));
    meta.emplace_back("tokenizer.ggml.tokens", GgufStrings({"a", "b", "<|im_start|>"}));
    meta.emplace_back("tokenizer.ggml.token_type", GgufNumbers(GgufValueType::kI32, {1, 1, 3}));
    tensors.push_back({"blk.0.attn_q.weight", GgmlType::kQ8_0, {2, 32}, q8});
    tensors.push_back({"output_norm.weight",
                       GgmlType::kF32,
                       {3},
                       {reinterpret_cast<const uint8_t*>(bias.data()), 12}});
  }
  std::string Image(uint32_t alignment = 32) const {
    Result<std::string> s = SerializeGguf(meta, tensors, alignment);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : "";
  }
};

TEST(Gguf, RoundTripsMetadataAndTensors) {
  Sample sample;
  const std::string image = sample.Image();
  Result<GgufContents> c = ParseGguf(Bytes(image), "m.gguf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 3u);
  EXPECT_EQ(*c->String("general.architecture"), "llama");
  EXPECT_EQ(*c->Uint("llama.block_count"), 30u);
  EXPECT_EQ(*c->Float("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(*c->Float("llama.block_count"), 30.0);
  EXPECT_FALSE(*c->Bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ((*c->Strings("tokenizer.ggml.tokens"))->at(2), "<|im_start|>");
  EXPECT_EQ((*c->Numbers("tokenizer.ggml.token_type"))->at(2), 3.0);
  const GgufTensor* q = *c->Tensor("blk.0.attn_q.weight");
  EXPECT_EQ(q->type, GgmlType::kQ8_0);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(q->rows(), 2);
  EXPECT_EQ(q->row_bytes(), 34u);
  EXPECT_EQ((q->data - reinterpret_cast<const uint8_t*>(image.data())) % 32, 0);
  std::vector<float> row(32);
  tensor::DequantizeRow(q->type, q->data, 32, row.data());
  EXPECT_EQ(row[0], -16.0f);
  EXPECT_EQ(row[31], 15.0f);
  const GgufTensor* b = *c->Tensor("output_norm.weight");
  float v;
  std::memcpy(&v, b->data + 4, 4);
  EXPECT_EQ(v, -2.0f);
}

TEST(Gguf, AccessorsNameTheFileAndKey) {
  Sample sample;
  const std::string image = sample.Image();
  Result<GgufContents> c = ParseGguf(Bytes(image), "m.gguf");
  ASSERT_TRUE(c.ok());
  auto msg = [](const Status& s) { return s.message(); };
  EXPECT_EQ(msg(c->Uint("nope").status()), "m.gguf: no metadata key 'nope'");
  EXPECT_EQ(msg(c->String("llama.block_count").status()),
            "m.gguf: metadata 'llama.block_count' is uint32, expected a string");
  EXPECT_EQ(msg(c->Strings("tokenizer.ggml.token_type").status()),
            "m.gguf: metadata 'tokenizer.ggml.token_type' is array of int32, expected an array of "
            "strings");
  EXPECT_EQ(msg(c->Tensor("token_embd.weight").status()),
            "m.gguf: missing tensor 'token_embd.weight'");
}

TEST(Gguf, AlignmentFromMetadataIsHonoured) {
  Sample sample;
  sample.meta.emplace_back("general.alignment", GgufU32(64));
  const std::string image = sample.Image(64);
  Result<GgufContents> c = ParseGguf(Bytes(image), "m.gguf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->alignment, 64u);
  const GgufTensor* b = *c->Tensor("output_norm.weight");
  EXPECT_EQ((b->data - reinterpret_cast<const uint8_t*>(image.data())) % 64, 0);
}

TEST(Gguf, EveryTruncationIsAnErrorNeverACrash) {
  Sample sample;
  const std::string image = sample.Image();
  for (size_t n = 0; n < image.size(); ++n) {
    // Exactly sized copies, so a read past the end is caught by ASan.
    std::vector<uint8_t> cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(n));
    Result<GgufContents> c = ParseGguf(cut, "m.gguf");
    if (c.ok()) {
      // Only trailing padding after the last tensor's bytes may go.
      for (const auto& [name, t] : c->tensors) EXPECT_LE(t.data + t.bytes, cut.data() + n);
    } else {
      EXPECT_TRUE(c.status().message().starts_with("m.gguf: ")) << c.status().message();
    }
  }
}

// Damage at a given place: the image with `at` bytes replaced by `with`.
std::string Patched(std::string image, size_t at, const std::string& with) {
  image.replace(at, with.size(), with);
  return image;
}
std::string Le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string Le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

std::string Error(const std::string& image) {
  Result<GgufContents> c = ParseGguf(Bytes(image), "m.gguf");
  return c.ok() ? "(accepted)" : c.status().message();
}

TEST(Gguf, DamagedHeadersAreNamed) {
  Sample sample;
  const std::string image = sample.Image();
  EXPECT_EQ(Error("GGU"), "m.gguf: file is 3 bytes, too short for GGUF");
  EXPECT_EQ(Error(Patched(image, 0, "GGML")), "m.gguf: not a GGUF file (no GGUF magic)");
  EXPECT_NE(Error(Patched(image, 4, Le32(1))).find("version 1 is not supported"),
            std::string::npos);
  EXPECT_NE(Error(Patched(image, 4, Le32(0x03000000))).find("big-endian"), std::string::npos);
  EXPECT_NE(Error(Patched(image, 8, Le64(1ull << 60))).find("tensor count"), std::string::npos);
  EXPECT_NE(Error(Patched(image, 16, Le64(1ull << 60))).find("metadata count"), std::string::npos);
  // The first key's length claims more than the file holds.
  EXPECT_EQ(Error(Patched(image, 24, Le64(1ull << 40))),
            "m.gguf: metadata key 0 at byte 24 claims 1099511627776 bytes (at most 65535)");
}

TEST(Gguf, DamagedValuesAreNamed) {
  auto with = [](GgufValue v) {
    Sample s;
    s.meta.emplace_back("x.bad", std::move(v));
    return s.Image();
  };
  GgufValue b = GgufBool(true);
  b.u = 2;
  EXPECT_EQ(Error(with(b)), "m.gguf: metadata 'x.bad': bool value 2 is not 0 or 1");
  GgufValue unknown = GgufU32(1);
  unknown.type = static_cast<GgufValueType>(13);
  EXPECT_EQ(Error(with(unknown)), "m.gguf: metadata 'x.bad': unknown value type 13");
  // A string array whose count no file could hold: refused before anything is allocated.
  std::string image = with(GgufStrings({"a"}));
  const size_t at = image.find(std::string("x.bad")) + 5 + 4 + 4;  // past key, type, elem type
  EXPECT_NE(Error(Patched(image, at, Le64(1ull << 61))).find("does not fit"), std::string::npos);
  // Nesting beyond four arrays.
  GgufValue deep = GgufNumbers(GgufValueType::kU8, {1});
  for (int i = 0; i < 5; ++i) {
    GgufValue outer;
    outer.type = GgufValueType::kArray;
    outer.elem = GgufValueType::kArray;
    outer.items.push_back(deep);
    deep = outer;
  }
  EXPECT_NE(Error(with(deep)).find("nested deeper"), std::string::npos);
  // Duplicate keys and a bad alignment.
  {
    Sample s;
    s.meta.emplace_back("llama.block_count", GgufU32(2));
    EXPECT_EQ(Error(s.Image()), "m.gguf: metadata 'llama.block_count' appears twice");
  }
  {
    Sample s;
    GgufValue a = GgufU32(48);
    s.meta.emplace_back("general.alignment", a);
    EXPECT_FALSE(SerializeGguf(s.meta, s.tensors, 16).ok());  // the writer refuses it
    s.meta.back().second = GgufU32(16);
    const std::string img = s.Image(16);  // patched in below
    const size_t p = img.find("general.alignment") + 17 + 4;
    EXPECT_EQ(Error(Patched(img, p, Le32(48))),
              "m.gguf: general.alignment must be a uint32 power of two");
  }
}

TEST(Gguf, DamagedTensorsAreNamed) {
  Sample sample;
  const std::string image = sample.Image();
  const size_t name_at = image.find("blk.0.attn_q.weight");
  const size_t dims_at = name_at + 19;         // n_dims
  const size_t type_at = dims_at + 4 + 2 * 8;  // after ne0, ne1
  const size_t offset_at = type_at + 4;
  EXPECT_EQ(Error(Patched(image, dims_at, Le32(5))),
            "m.gguf: tensor 'blk.0.attn_q.weight': 5 dimensions (1 to 4 allowed)");
  EXPECT_EQ(Error(Patched(image, type_at, Le32(16))),
            "m.gguf: tensor 'blk.0.attn_q.weight' has type IQ2_XXS, which iris does not read "
            "(it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K)");
  EXPECT_EQ(Error(Patched(image, dims_at + 4, Le64(33))),
            "m.gguf: tensor 'blk.0.attn_q.weight': rows of 33 values are not whole Q8_0 blocks "
            "of 32");
  EXPECT_EQ(Error(Patched(image, dims_at + 4, Le64(1ull << 45))),
            "m.gguf: tensor 'blk.0.attn_q.weight': dimension 35184372088832 is absurd");
  EXPECT_EQ(Error(Patched(image, offset_at, Le64(8))),
            "m.gguf: tensor 'blk.0.attn_q.weight': offset 8 is not a multiple of the 32-byte "
            "alignment");
  EXPECT_NE(Error(Patched(image, offset_at, Le64(1 << 20))).find("run past the"),
            std::string::npos);
  // The bias moved onto the matrix.
  const size_t bias_offset_at = image.find("output_norm.weight") + 18 + 4 + 8 + 4;
  EXPECT_EQ(Error(Patched(image, bias_offset_at, Le64(32))),
            "m.gguf: tensors 'blk.0.attn_q.weight' and 'output_norm.weight' overlap in the data "
            "section");
  // A second tensor of the same name.
  Sample twice;
  twice.tensors[1].name = twice.tensors[0].name;
  twice.tensors[1].type = GgmlType::kF32;
  EXPECT_EQ(Error(twice.Image()), "m.gguf: tensor 'blk.0.attn_q.weight' appears twice");
}

TEST(Gguf, WriterRefusesWrongSizes) {
  Sample s;
  s.tensors[0].shape = {3, 32};
  Result<std::string> r = SerializeGguf(s.meta, s.tensors);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "SerializeGguf: tensor 'blk.0.attn_q.weight' has 68 bytes for Q8_0 [3, 32]");
}

// The streaming writer writes SerializeGguf's image, a tensor at a time, and leaves no file
// behind when it is used wrongly or abandoned.
TEST(Gguf, StreamingWriterWritesTheSameImage) {
  const std::string dir = ::testing::TempDir();
  Sample s;
  std::vector<GgufTensorInfo> infos;
  for (const GgufTensorToWrite& t : s.tensors) infos.push_back({t.name, t.type, t.shape});
  for (uint32_t alignment : {32u, 512u}) {
    const std::string path = dir + "/stream.gguf";
    auto w = GgufWriter::Create(path, s.meta, infos, alignment);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const GgufTensorToWrite& t : s.tensors) ASSERT_TRUE((*w)->Append(t.bytes).ok());
    ASSERT_TRUE((*w)->Finish().ok());
    EXPECT_FALSE(std::ifstream(path + ".partial").good());
    std::ifstream in(path, std::ios::binary);
    const std::string written((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    EXPECT_EQ(written, s.Image(alignment));
  }
  // The wrong size for the next tensor; too few tensors; abandoned: no file, no partial file.
  const std::string bad = dir + "/bad.gguf";
  {
    auto w = GgufWriter::Create(bad, s.meta, infos);
    ASSERT_TRUE(w.ok());
    Status wrong = (*w)->Append(s.tensors[1].bytes);
    EXPECT_EQ(wrong.message(),
              bad + ": tensor 'blk.0.attn_q.weight' has 12 bytes for Q8_0 [2, 32]");
    ASSERT_TRUE((*w)->Append(s.tensors[0].bytes).ok());
    EXPECT_EQ((*w)->Finish().message(),
              bad + ": 1 tensors not written (the next is 'output_norm.weight')");
  }
  EXPECT_FALSE(std::ifstream(bad).good());
  EXPECT_FALSE(std::ifstream(bad + ".partial").good());
  // A directory that does not exist.
  auto missing = GgufWriter::Create(dir + "/no/such/dir/x.gguf", s.meta, infos);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot create"), std::string::npos);
  // A name or key twice.
  std::vector<GgufTensorInfo> twice = infos;
  twice[1].name = twice[0].name;
  EXPECT_EQ(GgufWriter::Create(bad, s.meta, twice).status().message(),
            "GGUF writer: tensor 'blk.0.attn_q.weight' appears twice");
  auto meta = s.meta;
  meta.push_back(meta[0]);
  EXPECT_EQ(GgufWriter::Create(bad, meta, infos).status().message(),
            "GGUF writer: metadata key 'general.architecture' appears twice");
  // A shape the type cannot have.
  infos[0].shape = {2, 33};
  EXPECT_EQ(GgufWriter::Create(bad, s.meta, infos).status().message(),
            "GGUF writer: tensor 'blk.0.attn_q.weight' cannot be Q8_0 [2, 33]");
}

}  // namespace
}  // namespace iris::formats
