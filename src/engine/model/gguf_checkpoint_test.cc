// GGUF checkpoints: the converter's Q/K permutation undone, names mapped, and files that are
// not SmolVLM2 refused by name. (The golden test runs the converted tiny models end to end.)
#include "engine/model/gguf_checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/test_data.h"
#include "engine/model/weights.h"
#include "engine/ops/ops.h"
#include "engine/tensor/quant.h"

namespace iris::model {
namespace {
namespace fs = std::filesystem;

TEST(GgufCheckpoint, UnpermutingInvertsTheConvertersPermute) {
  // convert_hf_to_gguf's permute: w.reshape(heads, 2, hd/2, cols).swapaxes(1, 2): the row at
  // (h, j, i) of the original lands at (h, i, j) of the file.
  for (size_t heads : {1, 2, 3}) {
    for (size_t hd : {2, 4, 16}) {
      const size_t rows = heads * hd, half = hd / 2;
      std::vector<size_t> file_row_of(rows);
      for (size_t h = 0; h < heads; ++h) {
        for (size_t j = 0; j < 2; ++j) {
          for (size_t i = 0; i < half; ++i) {
            file_row_of[h * hd + j * half + i] = h * hd + i * 2 + j;
          }
        }
      }
      for (size_t o = 0; o < rows; ++o) {
        EXPECT_EQ(UnpermutedRow(o, rows, heads), file_row_of[o]) << heads << "x" << hd << " " << o;
      }
    }
  }
}

TEST(GgufCheckpoint, MapsTheTinyModelToHuggingFaceNames) {
  auto ckpt = OpenGgufCheckpoint(TestData("gguf/tiny-256m-style/text-BF16.gguf"),
                                 TestData("gguf/tiny-256m-style/mmproj-BF16.gguf"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  auto want = LoadModelConfig(TestData("smolvlm2/tiny-256m-style"));
  ASSERT_TRUE(want.ok());
  const ModelConfig& c = ckpt->config;
  EXPECT_EQ(c.text.hidden_size, want->text.hidden_size);
  EXPECT_EQ(c.text.num_key_value_heads, want->text.num_key_value_heads);
  EXPECT_EQ(c.text.head_dim, want->text.head_dim);
  EXPECT_EQ(c.text.vocab_size, want->text.vocab_size);
  EXPECT_EQ(c.text.rope_theta, want->text.rope_theta);
  EXPECT_EQ(c.text.rms_norm_eps, want->text.rms_norm_eps);
  EXPECT_EQ(c.vision.image_size, want->vision.image_size);
  EXPECT_EQ(c.vision.patch_size, want->vision.patch_size);
  EXPECT_EQ(c.vision.layer_norm_eps, want->vision.layer_norm_eps);
  EXPECT_EQ(c.scale_factor, want->scale_factor);
  EXPECT_EQ(c.image_token_id, want->image_token_id);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(ckpt->weight_types, "BF16+F32");
  EXPECT_FALSE(ckpt->dequantized);
  // Every tensor of the safetensors file is there, with its bytes (Q and K after unpermuting).
  auto st = formats::WeightStore::OpenDir(TestData("smolvlm2/tiny-256m-style"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(ckpt->weights.entries().size(), st->entries().size());
  for (const auto& [name, e] : st->entries()) {
    auto g = ckpt->weights.Get(name, e.view.shape);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    const size_t n = static_cast<size_t>(e.view.num_elements());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(e.view.GetF32(static_cast<int64_t>(i)), g->view.GetF32(static_cast<int64_t>(i)))
          << name << " value " << i;
    }
  }
}

TEST(GgufCheckpoint, Q8_0AndQ4_0StayAsStoredOtherQuantizedTypesAreConverted) {
  auto q8 = OpenGgufCheckpoint(TestData("gguf/tiny-2.2b-style/text-Q8_0.gguf"), "");
  ASSERT_TRUE(q8.ok()) << q8.status().ToString();
  EXPECT_FALSE(q8->dequantized);
  EXPECT_EQ(q8->weight_types, "F32+Q8_0");
  auto q = q8->weights.Get("model.text_model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->view.dtype, tensor::DType::kQ8_0);
  // The Q rows were reordered whole: the block bytes are the file's, in the checkpoint's order.
  auto file = formats::GgufFile::Open(TestData("gguf/tiny-2.2b-style/text-Q8_0.gguf"));
  ASSERT_TRUE(file.ok());
  const formats::GgufTensor* fq = *file->contents().Tensor("blk.0.attn_q.weight");
  const size_t rows = static_cast<size_t>(fq->rows()), rb = fq->row_bytes();
  const size_t heads = static_cast<size_t>(q8->config.text.num_attention_heads);
  for (size_t o = 0; o < rows; ++o) {
    EXPECT_EQ(std::memcmp(static_cast<const uint8_t*>(q->view.data) + o * rb,
                          fq->data + UnpermutedRow(o, rows, heads) * rb, rb),
              0)
        << o;
  }
  auto q4 = OpenGgufCheckpoint(TestData("gguf/tiny-2.2b-style/text-Q4_0.gguf"), "");
  ASSERT_TRUE(q4.ok()) << q4.status().ToString();
  EXPECT_FALSE(q4->dequantized);
  EXPECT_EQ(q4->weight_types, "F32+Q4_0");
  // Q4_0 blocks stay as the file holds them (for the int8 kernels), the Q rows in the
  // checkpoint's order.
  auto q4file = formats::GgufFile::Open(TestData("gguf/tiny-2.2b-style/text-Q4_0.gguf"));
  ASSERT_TRUE(q4file.ok());
  int checked = 0;
  for (const char* name : {"v_proj", "q_proj"}) {
    auto v =
        q4->weights.Get(std::string("model.text_model.layers.0.self_attn.") + name + ".weight");
    ASSERT_TRUE(v.ok());
    const formats::GgufTensor* fv =
        *q4file->contents().Tensor(name[0] == 'v' ? "blk.0.attn_v.weight" : "blk.0.attn_q.weight");
    if (fv->type != tensor::GgmlType::kQ4_0) continue;  // a fallback type for odd rows
    EXPECT_EQ(v->view.dtype, tensor::DType::kQ4_0);
    const size_t vrows = static_cast<size_t>(fv->rows()), vb = fv->row_bytes();
    for (size_t o = 0; o < vrows; ++o) {
      const size_t r = name[0] == 'q' ? UnpermutedRow(o, vrows, heads) : o;
      ASSERT_EQ(
          std::memcmp(static_cast<const uint8_t*>(v->view.data) + o * vb, fv->data + r * vb, vb), 0)
          << name << " row " << o;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no Q4_0 matrix in the file";
}

TEST(GgufCheckpoint, AQ8_0MatrixBoundAsF32HasTheFilesValues) {
  // Bound for the int8 kernels a Q8_0 matrix may be repacked (kQ8_0x); read back as f32 (a
  // position table, say) it must still give the file's values, row by row.
  std::vector<uint8_t> blocks(3 * 2 * 34);
  for (size_t b = 0; b < 6; ++b) {
    const uint16_t h = tensor::F32ToF16(0.01f * static_cast<float>(b + 1));
    std::memcpy(&blocks[b * 34], &h, 2);
    for (size_t i = 0; i < 32; ++i) blocks[b * 34 + 2 + i] = static_cast<uint8_t>(i * 7 + b);
  }
  formats::TensorEntry e;
  e.name = "m";
  e.file = "mem";
  e.mapped = false;
  e.view.dtype = tensor::DType::kQ8_0;
  e.view.shape = {3, 64};
  e.view.data = blocks.data();
  formats::WeightStore store = formats::WeightStore::FromEntries({{"m", e}}, {}, "mem");
  WeightBinder binder(store, WeightOptions{});
  auto values = binder.BindF32("m", {3, 64});
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  std::vector<float> want(3 * 64);
  tensor::DequantizeRow(tensor::GgmlType::kQ8_0, blocks.data(), want.size(), want.data());
  EXPECT_EQ(*values, want);
  auto matrix = binder.Bind("m", {3, 64});
  ASSERT_TRUE(matrix.ok());
  EXPECT_EQ(ops::ToF32(*matrix), want);
}

TEST(GgufCheckpoint, FilesOfAnotherKindAreRefusedByName) {
  const std::string text = TestData("gguf/tiny-256m-style/text-BF16.gguf");
  auto swapped = OpenGgufCheckpoint(text, text);
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.status().message(),
            text +
                ": general.architecture is 'llama', expected 'clip' (iris reads SmolVLM2 GGUF "
                "files)");
  auto mm = OpenGgufCheckpoint(TestData("gguf/tiny-256m-style/mmproj-BF16.gguf"), "");
  ASSERT_FALSE(mm.ok());
  EXPECT_NE(mm.status().message().find("is 'clip', expected 'llama'"), std::string::npos);
}

class GgufDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("iris_gguf_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Copy(const std::string& from, const std::string& to) {
    fs::copy_file(TestData(from), dir_ / to, fs::copy_options::overwrite_existing);
  }
  fs::path dir_;
};

TEST_F(GgufDirTest, FindsTheTextModelAndItsMmproj) {
  EXPECT_EQ(FindGgufFiles(dir_.string()).status().code(), ErrorCode::kNotFound);
  Copy("gguf/tiny-256m-style/text-BF16.gguf", "SmolVLM2-tiny-BF16.gguf");
  auto one = FindGgufFiles(dir_.string());
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->mmproj, "");
  Copy("gguf/tiny-256m-style/mmproj-BF16.gguf", "mmproj-SmolVLM2-tiny-BF16.gguf");
  auto both = FindGgufFiles(dir_.string());
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->text, (dir_ / "SmolVLM2-tiny-BF16.gguf").string());
  EXPECT_EQ(both->mmproj, (dir_ / "mmproj-SmolVLM2-tiny-BF16.gguf").string());
  Copy("gguf/tiny-256m-style/text-Q8_0.gguf", "SmolVLM2-tiny-Q8_0.gguf");
  auto two = FindGgufFiles(dir_.string());
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().message(),
            dir_.string() +
                " holds 2 GGUF text models (SmolVLM2-tiny-BF16.gguf, "
                "SmolVLM2-tiny-Q8_0.gguf): pass the one to use as --model FILE "
                "--mmproj FILE");
}

TEST_F(GgufDirTest, ATensorOfAnotherModelIsNamed) {
  // The tiny text model again, with one tensor a SmolVLM2 model does not have.
  auto file = formats::GgufFile::Open(TestData("gguf/tiny-256m-style/text-BF16.gguf"));
  ASSERT_TRUE(file.ok());
  std::vector<std::pair<std::string, formats::GgufValue>> meta(file->contents().metadata.begin(),
                                                               file->contents().metadata.end());
  std::vector<formats::GgufTensorToWrite> tensors;
  for (const auto& [name, t] : file->contents().tensors) {
    tensors.push_back({name, t.type, t.shape, {t.data, t.bytes}});
  }
  const std::vector<float> freqs(8, 1.0f);
  tensors.push_back({"rope_freqs.weight",
                     tensor::GgmlType::kF32,
                     {8},
                     {reinterpret_cast<const uint8_t*>(freqs.data()), 32}});
  const std::string path = (dir_ / "extra.gguf").string();
  ASSERT_TRUE(formats::WriteGguf(path, meta, tensors).ok());
  auto c = OpenGgufCheckpoint(path, "");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), path +
                                      ": tensor 'rope_freqs.weight' is not part of a SmolVLM2 "
                                      "text model (llama layout)");
}

TEST_F(GgufDirTest, SwappedFfnNamesAreTakenByShape) {
  // The tiny mmproj with ffn_up and ffn_down named the other way round, as some converted
  // files have them: the same model comes out.
  auto file = formats::GgufFile::Open(TestData("gguf/tiny-256m-style/mmproj-BF16.gguf"));
  ASSERT_TRUE(file.ok());
  std::vector<std::pair<std::string, formats::GgufValue>> meta(file->contents().metadata.begin(),
                                                               file->contents().metadata.end());
  std::vector<formats::GgufTensorToWrite> tensors;
  for (const auto& [name, t] : file->contents().tensors) {
    std::string renamed = name;
    if (const size_t at = name.find("ffn_up"); at != std::string::npos) {
      renamed.replace(at, 6, "ffn_down");
    } else if (const size_t down = name.find("ffn_down"); down != std::string::npos) {
      renamed.replace(down, 8, "ffn_up");
    }
    tensors.push_back({renamed, t.type, t.shape, {t.data, t.bytes}});
  }
  const std::string swapped = (dir_ / "mmproj-swapped.gguf").string();
  ASSERT_TRUE(formats::WriteGguf(swapped, meta, tensors).ok());
  const std::string text = TestData("gguf/tiny-256m-style/text-BF16.gguf");
  auto a = OpenGgufCheckpoint(text, TestData("gguf/tiny-256m-style/mmproj-BF16.gguf"));
  auto b = OpenGgufCheckpoint(text, swapped);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().ToString();
  for (const auto& [name, e] : a->weights.entries()) {
    auto other = b->weights.Get(name, e.view.shape);
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    EXPECT_EQ(std::memcmp(other->view.data, e.view.data, e.view.num_bytes()), 0) << name;
  }
}

}  // namespace
}  // namespace iris::model
