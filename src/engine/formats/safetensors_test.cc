// The safetensors reader on good files, sharded checkpoints, and every kind of damage.
#include "engine/formats/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace iris::formats {
namespace {
namespace fs = std::filesystem;
using tensor::DType;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("iris_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // A raw file: 8-byte length + header + data.
  std::string WriteRaw(const std::string& name, const std::string& header, size_t data_bytes,
                       uint64_t claimed_len = UINT64_MAX) {
    std::string p = Path(name);
    std::ofstream out(p, std::ios::binary);
    uint64_t len = claimed_len == UINT64_MAX ? header.size() : claimed_len;
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(len >> (8 * i)));
    out << header << std::string(data_bytes, '\0');
    return p;
  }

  static std::string Floats(std::initializer_list<float> v) {
    std::string s(v.size() * 4, '\0');
    size_t i = 0;
    for (float f : v) std::memcpy(&s[4 * i++], &f, 4);
    return s;
  }

  static std::string ErrorOf(const std::string& path) {
    auto r = SafetensorsFile::Open(path);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.status().message();
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsTensorsAndMetadata) {
  ASSERT_TRUE(
      WriteSafetensors(Path("a.safetensors"),
                       {{"w", DType::kF32, {2, 2}, Floats({1, 2, 3, 4})},
                        {"b", DType::kBF16, {3}, std::string("\x80\x3f\x00\x40\x00\x00", 6)}})
          .ok());
  auto f = SafetensorsFile::Open(Path("a.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const TensorEntry& w = f->tensors().at("w");
  EXPECT_EQ(w.view.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(w.view.GetF32(3), 4.0f);
  const TensorEntry& b = f->tensors().at("b");
  EXPECT_EQ(b.view.dtype, DType::kBF16);
  EXPECT_EQ(b.view.GetF32(0), 1.0f);
  EXPECT_EQ(b.view.GetF32(1), 2.0f);
}

TEST_F(SafetensorsTest, ReadsTheFixtureCheckpoint) {
  auto s = WeightStore::OpenDir(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto e = s->Get("lm_head.weight", {576, 64});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->view.dtype, DType::kBF16);
}

TEST_F(SafetensorsTest, ShardedCheckpointThroughIndex) {
  ASSERT_TRUE(WriteSafetensors(Path("model-00001-of-00002.safetensors"),
                               {{"a", DType::kF32, {1}, Floats({1})}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(Path("model-00002-of-00002.safetensors"),
                               {{"b", DType::kF32, {1}, Floats({2})}})
                  .ok());
  std::ofstream(Path("model.safetensors.index.json"))
      << R"({"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors"}})";
  auto s = WeightStore::OpenDir(dir_.string());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->Get("b")->view.GetF32(0), 2.0f);
  EXPECT_EQ(s->total_bytes(), 8u);

  // The index names a tensor its shard lacks.
  std::ofstream(Path("model.safetensors.index.json"))
      << R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
            "c": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})";
  auto bad = WeightStore::OpenDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'c'"), std::string::npos) << bad.status().message();

  // A missing shard names the shard file.
  fs::remove(Path("model-00002-of-00002.safetensors"));
  auto missing = WeightStore::OpenDir(dir_.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("model-00002-of-00002"), std::string::npos);
}

TEST_F(SafetensorsTest, MissingDirectoryAndMissingTensorAndWrongShape) {
  auto none = WeightStore::OpenDir(dir_.string());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(
      WriteSafetensors(Path("model.safetensors"), {{"w", DType::kF32, {2}, Floats({1, 2})}}).ok());
  auto s = WeightStore::OpenDir(dir_.string());
  ASSERT_TRUE(s.ok());
  auto m = s->Get("nope");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'nope'"), std::string::npos);
  auto shape = s->Get("w", {3});
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.status().message().find("shape [2], expected [3]"), std::string::npos)
      << shape.status().message();
  EXPECT_NE(shape.status().message().find("model.safetensors"), std::string::npos);
}

TEST_F(SafetensorsTest, TooShortFile) {
  std::ofstream(Path("short.safetensors")) << "abc";
  EXPECT_NE(ErrorOf(Path("short.safetensors")).find("too short"), std::string::npos);
}

TEST_F(SafetensorsTest, HeaderLengthPastEnd) {
  std::string p = WriteRaw("hdr.safetensors", "{}", 0, 1000);
  EXPECT_NE(ErrorOf(p).find("past the end"), std::string::npos);
  std::string huge = WriteRaw("huge.safetensors", "{}", 0, 1ull << 62);
  EXPECT_NE(ErrorOf(huge).find("absurd"), std::string::npos);
}

TEST_F(SafetensorsTest, InvalidJsonHeader) {
  std::string p = WriteRaw("json.safetensors", "{\"a\": [1, 2", 0);
  std::string e = ErrorOf(p);
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("json.safetensors"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, UnknownDtype) {
  std::string p = WriteRaw("dt.safetensors",
                           R"({"w": {"dtype": "F8_E9", "shape": [1], "data_offsets": [0, 1]}})", 1);
  std::string e = ErrorOf(p);
  EXPECT_NE(e.find("'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown dtype 'F8_E9'"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  std::string p = WriteRaw("oor.safetensors",
                           R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8);
  std::string e = ErrorOf(p);
  EXPECT_NE(e.find("'w'"), std::string::npos);
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, SizeDisagreesWithShape) {
  std::string p = WriteRaw("sz.safetensors",
                           R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8);
  EXPECT_NE(ErrorOf(p).find("needs 12"), std::string::npos);
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  std::string p = WriteRaw("ov.safetensors",
                           R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                           12);
  std::string e = ErrorOf(p);
  EXPECT_NE(e.find("overlap"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, EmptyTensorDoesNotHideAnOverlap) {
  // Sorted by offset the empty tensor sits between the two that overlap.
  std::string p = WriteRaw("ov_empty.safetensors",
                           R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                               "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                               "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                           16);
  std::string e = ErrorOf(p);
  EXPECT_NE(e.find("'a' and 'b' overlap"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, NegativeOrReversedOffsets) {
  std::string p = WriteRaw("neg.safetensors",
                           R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4);
  EXPECT_NE(ErrorOf(p).find("non-negative"), std::string::npos);
  std::string q = WriteRaw("rev.safetensors",
                           R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4);
  EXPECT_NE(ErrorOf(q).find("end before"), std::string::npos);
}

TEST_F(SafetensorsTest, TruncatedRealCheckpoint) {
  // Cut the fixture checkpoint in half: the reader must refuse it, naming a tensor.
  std::string src = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style/model.safetensors";
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(Path("cut.safetensors"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string e = ErrorOf(Path("cut.safetensors"));
  EXPECT_NE(e.find("tensor '"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

}  // namespace
}  // namespace iris::formats
