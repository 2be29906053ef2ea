// `iris quantize`'s writer: the files it writes from the tiny golden checkpoints hold the very
// tensors and metadata llama.cpp's layout gives them (the GGUF files beside them were written
// independently, by gguf-py: tests/data/gguf/generate.py), load as the model they came from
// with the numbers `--weights` gives at load, and bad input is refused by name.
#include "engine/runtime/gguf_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "engine/formats/gguf.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/engine_testing.h"

namespace iris::runtime {
namespace {
namespace fs = std::filesystem;

std::string Data(const std::string& rel) { return std::string(IRIS_TEST_DATA_DIR) + "/" + rel; }

class GgufExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("iris_export_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

bool SameValue(const formats::GgufValue& a, const formats::GgufValue& b) {
  return a.type == b.type && a.u == b.u && a.i == b.i && a.f == b.f && a.s == b.s &&
         a.elem == b.elem && a.strings == b.strings && a.numbers == b.numbers &&
         a.items.size() == b.items.size();
}

// Every tensor of `want` is in `got` with the same type, shape and bytes, and no other; every
// metadata key of `want` but the name has the same value in `got`.
void ExpectSameFile(const std::string& got_path, const std::string& want_path) {
  auto got = formats::GgufFile::Open(got_path);
  auto want = formats::GgufFile::Open(want_path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  const formats::GgufContents &g = got->contents(), &w = want->contents();
  EXPECT_EQ(g.tensors.size(), w.tensors.size()) << got_path;
  for (const auto& [name, t] : w.tensors) {
    auto it = g.tensors.find(name);
    ASSERT_NE(it, g.tensors.end()) << got_path << " lacks " << name;
    EXPECT_EQ(it->second.type, t.type) << name;
    EXPECT_EQ(it->second.shape, t.shape) << name;
    ASSERT_EQ(it->second.bytes, t.bytes) << name;
    EXPECT_EQ(std::memcmp(it->second.data, t.data, t.bytes), 0) << name << " differs";
  }
  int keys = 0;
  for (const auto& [key, value] : w.metadata) {
    if (key == "general.name") continue;
    auto it = g.metadata.find(key);
    ASSERT_NE(it, g.metadata.end()) << got_path << " lacks " << key;
    EXPECT_TRUE(SameValue(it->second, value)) << key;
    ++keys;
  }
  EXPECT_GT(keys, 15) << want_path;
}

TEST_F(GgufExportTest, WritesTheTensorsAndMetadataOfLlamaCppsLayout) {
  for (const char* model : {"tiny-256m-style", "tiny-2.2b-style"}) {
    for (const char* weights : {"q8_0", "q4_0"}) {
      const fs::path out = dir_ / (std::string(model) + weights);
      GgufExportOptions o;
      o.weights = weights;
      ThreadPool pool(2);
      o.pool = &pool;
      uint64_t last = 0, calls = 0;
      o.progress = [&](uint64_t done, uint64_t total) {
        EXPECT_GE(done, last);
        EXPECT_LE(done, total);
        last = done;
        ++calls;
      };
      auto r = ExportGguf(Data("smolvlm2/" + std::string(model)), out.string(), o);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const std::string type = std::string(weights) == "q8_0" ? "Q8_0" : "Q4_0";
      EXPECT_EQ(r->text_path, (out / (std::string(model) + "-" + type + ".gguf")).string());
      EXPECT_EQ(r->mmproj_path, (out / ("mmproj-" + std::string(model) + "-BF16.gguf")).string());
      EXPECT_EQ(last, r->checkpoint_bytes);
      EXPECT_GT(calls, 10u);
      EXPECT_EQ(r->text_bytes, fs::file_size(r->text_path));
      ExpectSameFile(r->text_path, Data("gguf/" + std::string(model) + "/text-" + type + ".gguf"));
      ExpectSameFile(r->mmproj_path, Data("gguf/" + std::string(model) + "/mmproj-BF16.gguf"));
      auto text = formats::GgufFile::Open(r->text_path);
      ASSERT_TRUE(text.ok());
      EXPECT_EQ(*text->contents().Uint("general.file_type"), type == "Q8_0" ? 7u : 2u);
      EXPECT_EQ(*text->contents().String("general.name"), model);
      // Nothing else is left in the directory (the .partial files were renamed).
      EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 2);
    }
  }
}

// The written files are the checkpoint loaded with --weights: the same logits bit for bit,
// the same answer about an image, the same chat prompt and end ids.
TEST_F(GgufExportTest, TheFilesGiveTheNumbersOfWeightsAtLoad) {
  const std::string prompt =
      "<|im_start|>User: What is the capital of France? Answer in 3 words.<end_of_utterance>\n"
      "Assistant:";
  for (const char* model : {"tiny-256m-style", "tiny-2.2b-style"}) {
    for (const char* weights : {"q8_0", "q4_0"}) {
      const fs::path out = dir_ / (std::string(model) + weights);
      GgufExportOptions x;
      x.weights = weights;
      ASSERT_TRUE(ExportGguf(Data("smolvlm2/" + std::string(model)), out.string(), x).ok());
      EngineOptions o;
      o.threads = 2;
      auto gguf = Engine::Load(out.string(), o);
      ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
      o.weights = weights;
      auto st = Engine::Load(Data("smolvlm2/" + std::string(model)), o);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      EXPECT_EQ(testing::PromptLogits(**gguf, prompt), testing::PromptLogits(**st, prompt))
          << model << weights;
      EXPECT_EQ((*gguf)->eos_ids(), (*st)->eos_ids());
      const boost::json::array messages = testing::AskAboutAnImage();
      auto rendered = (*gguf)->RenderChat(messages);
      ASSERT_TRUE(rendered.ok());
      EXPECT_EQ(*rendered, *(*st)->RenderChat(messages));
      const std::vector<int32_t> answer = testing::AnswerAboutAPattern(**gguf, *rendered);
      EXPECT_FALSE(answer.empty());
      EXPECT_EQ(answer, testing::AnswerAboutAPattern(**st, *rendered)) << model << weights;
    }
  }
}

// A copy of a tiny checkpoint to damage.
fs::path CopyCheckpoint(const fs::path& to) {
  fs::copy(Data("smolvlm2/tiny-256m-style"), to, fs::copy_options::recursive);
  return to;
}

TEST_F(GgufExportTest, BadInputIsRefusedByNameAndLeavesNothing) {
  const std::string model = Data("smolvlm2/tiny-256m-style");
  GgufExportOptions o;
  o.weights = "q5_1";
  EXPECT_EQ(ExportGguf(model, (dir_ / "a").string(), o).status().message(),
            "weights 'q5_1' are not supported: q8_0 or q4_0");
  o.weights = "q8_0";
  // An occupied output directory, or a file in its place.
  fs::create_directories(dir_ / "full");
  std::ofstream(dir_ / "full" / "x") << "x";
  EXPECT_EQ(ExportGguf(model, (dir_ / "full").string(), o).status().message(),
            (dir_ / "full").string() + " exists and is not an empty directory");
  // A GGUF directory is not a safetensors checkpoint.
  auto gguf = ExportGguf(Data("gguf/tiny-256m-style"), (dir_ / "b").string(), o);
  EXPECT_EQ(gguf.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(gguf.status().message().find("no config.json"), std::string::npos);
  // A tokenizer GGUF cannot carry.
  const fs::path normalized = CopyCheckpoint(dir_ / "normalized");
  {
    auto tok = ReadJsonFile((normalized / "tokenizer.json").string());
    ASSERT_TRUE(tok.ok());
    tok->as_object()["normalizer"] = boost::json::object{{"type", "NFC"}};
    std::ofstream((normalized / "tokenizer.json").string()) << boost::json::serialize(*tok);
  }
  auto norm = ExportGguf(normalized.string(), (dir_ / "c").string(), o);
  EXPECT_EQ(norm.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(norm.status().message().find("has a normalizer"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "c"));
  // A pre-tokenizer other than SmolVLM2's or GPT-2's.
  const fs::path split = CopyCheckpoint(dir_ / "split");
  {
    auto tok = ReadJsonFile((split / "tokenizer.json").string());
    ASSERT_TRUE(tok.ok());
    tok->as_object()["pre_tokenizer"] = boost::json::object{{"type", "Whitespace"}};
    std::ofstream((split / "tokenizer.json").string()) << boost::json::serialize(*tok);
  }
  auto pre = ExportGguf(split.string(), (dir_ / "d").string(), o);
  EXPECT_NE(pre.status().message().find("neither SmolVLM2's"), std::string::npos)
      << pre.status().ToString();
  EXPECT_FALSE(fs::exists(dir_ / "d"));
}

TEST_F(GgufExportTest, CheckpointNamesComeFromTheRepoOrTheDirectory) {
  EXPECT_EQ(CheckpointName("/c/hub/models--HuggingFaceTB--SmolVLM2-256M-Video-Instruct/snapshots/"
                           "0123abcd"),
            "SmolVLM2-256M-Video-Instruct");
  EXPECT_EQ(CheckpointName("/data/my-model/"), "my-model");
  EXPECT_EQ(CheckpointName("my-model"), "my-model");
  EXPECT_EQ(CheckpointName("/"), "model");
}

}  // namespace
}  // namespace iris::runtime
