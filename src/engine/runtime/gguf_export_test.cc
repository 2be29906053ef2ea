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
#include <functional>
#include <iterator>

#include "base/json.h"
#include "base/test_data.h"
#include "engine/formats/gguf.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/engine_testing.h"

namespace iris::runtime {
namespace {
namespace fs = std::filesystem;

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
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i) {
    if (!SameValue(a.items[i], b.items[i])) return false;
  }
  return a.type == b.type && a.u == b.u && a.i == b.i && a.f == b.f && a.s == b.s &&
         a.elem == b.elem && a.strings == b.strings && a.numbers == b.numbers;
}

// Every tensor of `want` is in `got` with the same type, shape and bytes, and no other; every
// metadata key of `want` but the name has the same value in `got`, which adds only the keys
// llama.cpp's converter writes and generate.py leaves out.
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
  for (const auto& [key, value] : g.metadata) {
    EXPECT_TRUE(w.Has(key) || key == "general.name" || key == "general.file_type" ||
                key == "general.quantization_version")
        << got_path << " adds " << key;
  }
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
      auto r = ExportGguf(TestData("smolvlm2/" + std::string(model)), out.string(), o);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const std::string type = std::string(weights) == "q8_0" ? "Q8_0" : "Q4_0";
      EXPECT_EQ(r->text_path, (out / (std::string(model) + "-" + type + ".gguf")).string());
      EXPECT_EQ(r->mmproj_path, (out / ("mmproj-" + std::string(model) + "-BF16.gguf")).string());
      EXPECT_EQ(last, r->checkpoint_bytes);
      EXPECT_GT(calls, 10u);
      EXPECT_EQ(r->text_bytes, fs::file_size(r->text_path));
      ExpectSameFile(r->text_path,
                     TestData("gguf/" + std::string(model) + "/text-" + type + ".gguf"));
      ExpectSameFile(r->mmproj_path, TestData("gguf/" + std::string(model) + "/mmproj-BF16.gguf"));
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
      ASSERT_TRUE(ExportGguf(TestData("smolvlm2/" + std::string(model)), out.string(), x).ok());
      EngineOptions o;
      o.threads = 2;
      auto gguf = Engine::Load(out.string(), o);
      ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
      o.weights = weights;
      auto st = Engine::Load(TestData("smolvlm2/" + std::string(model)), o);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      EXPECT_EQ(test_util::PromptLogits(**gguf, prompt), test_util::PromptLogits(**st, prompt))
          << model << weights;
      EXPECT_EQ((*gguf)->eos_ids(), (*st)->eos_ids());
      const boost::json::array messages = test_util::AskAboutAnImage();
      auto rendered = (*gguf)->RenderChat(messages);
      auto rendered_st = (*st)->RenderChat(messages);
      ASSERT_TRUE(rendered.ok() && rendered_st.ok());
      EXPECT_EQ(*rendered, *rendered_st);
      const std::vector<int32_t> answer = test_util::AnswerAboutAPattern(**gguf, *rendered);
      EXPECT_FALSE(answer.empty());
      EXPECT_EQ(answer, test_util::AnswerAboutAPattern(**st, *rendered)) << model << weights;
    }
  }
}

// A copy of the tiny 256M-style checkpoint whose tensors `rewrite` may rename, widen to F32 or
// drop (an empty name), and whose JSON files `edit` may change.
fs::path RewriteCheckpoint(
    const fs::path& to,
    const std::function<void(std::string& name, bool& to_f32)>& rewrite = nullptr,
    const std::function<void(const std::string& file, boost::json::value&)>& edit = nullptr) {
  const std::string from = TestData("smolvlm2/tiny-256m-style");
  fs::create_directories(to);
  for (const char* file :
       {"config.json", "generation_config.json", "tokenizer.json", "chat_template.json",
        "preprocessor_config.json", "processor_config.json"}) {
    auto json = ReadJsonFile(from + "/" + file);
    EXPECT_TRUE(json.ok()) << file;
    if (edit) edit(file, *json);
    std::ofstream((to / file).string()) << boost::json::serialize(*json);
  }
  auto store = formats::WeightStore::OpenDir(from);
  EXPECT_TRUE(store.ok());
  std::vector<formats::TensorToWrite> tensors;
  for (const auto& [name, e] : store->entries()) {
    formats::TensorToWrite t;
    t.name = name;
    bool to_f32 = false;
    if (rewrite) rewrite(t.name, to_f32);
    if (t.name.empty()) continue;
    t.shape = e.view.shape;
    t.dtype = to_f32 ? tensor::DType::kF32 : e.view.dtype;
    const auto* bytes = static_cast<const char*>(e.view.data);
    if (to_f32) {
      EXPECT_EQ(e.view.dtype, tensor::DType::kBF16);
      for (size_t i = 0; i < e.view.num_bytes() / 2; ++i) {
        const char widened[4] = {0, 0, bytes[2 * i], bytes[2 * i + 1]};
        t.bytes.append(widened, 4);
      }
    } else {
      t.bytes.assign(bytes, e.view.num_bytes());
    }
    tensors.push_back(std::move(t));
  }
  EXPECT_TRUE(formats::WriteSafetensors((to / "model.safetensors").string(), tensors).ok());
  return to;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A checkpoint saved as F32 (holding bf16 values, as the hub's are) under the older unprefixed
// vision names writes the very files the BF16 one does.
TEST_F(GgufExportTest, AnF32CheckpointUnderOtherNamesWritesTheSameFiles) {
  const fs::path f32 = RewriteCheckpoint(dir_ / "f32", [](std::string& name, bool& to_f32) {
    to_f32 = true;
    for (const char* p : {"model.vision_model.", "model.connector."}) {
      if (name.starts_with(p)) name = name.substr(6);  // "vision_model.", "connector."
    }
  });
  GgufExportOptions o;
  o.name = "same";
  auto a = ExportGguf(TestData("smolvlm2/tiny-256m-style"), (dir_ / "a").string(), o);
  auto b = ExportGguf(f32.string(), (dir_ / "b").string(), o);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(Slurp(a->text_path), Slurp(b->text_path));
  EXPECT_EQ(Slurp(a->mmproj_path), Slurp(b->mmproj_path));
  EXPECT_GT(b->checkpoint_bytes, a->checkpoint_bytes);  // read as F32
}

// Tied embeddings: no lm_head in the file (nor read from the checkpoint), the same numbers.
TEST_F(GgufExportTest, TiedEmbeddingsWriteNoOutputMatrix) {
  const fs::path tied = RewriteCheckpoint(dir_ / "tied", nullptr,
                                          [](const std::string& file, boost::json::value& json) {
                                            if (file == "config.json")
                                              json.as_object()["tie_word_embeddings"] = true;
                                          });
  GgufExportOptions x;
  auto r = ExportGguf(tied.string(), (dir_ / "out").string(), x);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto text = formats::GgufFile::Open(r->text_path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->contents().tensors.count("output.weight"), 0u);
  EngineOptions o;
  o.threads = 2;
  auto gguf = Engine::Load((dir_ / "out").string(), o);
  o.weights = "q8_0";
  auto st = Engine::Load(tied.string(), o);
  ASSERT_TRUE(gguf.ok() && st.ok());
  const std::string prompt = "<|im_start|>User: Hi there!<end_of_utterance>\nAssistant:";
  EXPECT_EQ(test_util::PromptLogits(**gguf, prompt), test_util::PromptLogits(**st, prompt));
  // Untied without an lm_head is refused, as the loader refuses it.
  const fs::path headless = RewriteCheckpoint(dir_ / "headless", [](std::string& name, bool&) {
    if (name == "lm_head.weight") name.clear();
  });
  EXPECT_NE(ExportGguf(headless.string(), (dir_ / "h").string(), x)
                .status()
                .message()
                .find("no lm_head.weight"),
            std::string::npos);
}

TEST_F(GgufExportTest, BadInputIsRefusedByNameAndLeavesNothing) {
  const std::string model = TestData("smolvlm2/tiny-256m-style");
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
  auto gguf = ExportGguf(TestData("gguf/tiny-256m-style"), (dir_ / "b").string(), o);
  EXPECT_EQ(gguf.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(gguf.status().message().find("no config.json"), std::string::npos);
  // Names that would leave the directory, or read as an mmproj.
  for (const char* name : {"../x", "a/b", "mmproj-x", ".hidden", ""}) {
    GgufExportOptions n = o;
    n.name = name;
    if (*name == '\0') continue;  // "" means the checkpoint's own name
    auto r = ExportGguf(model, (dir_ / "n").string(), n);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << name;
    EXPECT_NE(r.status().message().find("pass --name"), std::string::npos) << name;
  }
  EXPECT_FALSE(fs::exists(dir_ / "n"));
  // Tokenizers GGUF cannot carry, each named before anything is written.
  const std::vector<std::pair<std::function<void(boost::json::object&)>, std::string>> tokenizers =
      {
          {[](boost::json::object& t) {
             t["normalizer"] = boost::json::object{{"type", "NFC"}};
           },
           "has a normalizer"},
          {[](boost::json::object& t) {
             t["pre_tokenizer"] = boost::json::object{{"type", "Whitespace"}};
           },
           "neither SmolVLM2's"},
          {[](boost::json::object& t) { t["model"].as_object()["ignore_merges"] = true; },
           "model.ignore_merges is true"},
          {[](boost::json::object& t) { t["model"].as_object()["unk_token"] = "<unk>"; },
           "model.unk_token is set"},
          {[](boost::json::object& t) {
             t["added_tokens"].as_array()[3].as_object()["lstrip"] = true;
           },
           "has lstrip set"},
          {[](boost::json::object& t) {
             t["model"].as_object()["merges"].as_array()[0] = boost::json::array{"a b", "c"};
           },
           "merge of two tokens without spaces"},
          {[](boost::json::object& t) {
             t["added_tokens"].as_array()[0].as_object()["id"] = 1 << 20;
           },
           "outside the model's 576 ids"},
      };
  int k = 0;
  for (const auto& [damage, message] : tokenizers) {
    const fs::path ckpt = RewriteCheckpoint(dir_ / ("tok" + std::to_string(k)), nullptr,
                                            [&](const std::string& file, boost::json::value& json) {
                                              if (file == "tokenizer.json")
                                                damage(json.as_object());
                                            });
    const fs::path out = dir_ / ("tok-out" + std::to_string(k++));
    auto r = ExportGguf(ckpt.string(), out.string(), o);
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().ToString();
    EXPECT_FALSE(fs::exists(out));
  }
  // Two names for one weight: the tensors of the original and one again under the older name.
  const fs::path twice = RewriteCheckpoint(dir_ / "twice");
  {
    auto store = formats::WeightStore::OpenDir(TestData("smolvlm2/tiny-256m-style"));
    ASSERT_TRUE(store.ok());
    std::vector<formats::TensorToWrite> tensors;
    for (const auto& [name, e] : store->entries()) {
      tensors.push_back({name, e.view.dtype, e.view.shape,
                         std::string(static_cast<const char*>(e.view.data), e.view.num_bytes())});
      if (name == "model.vision_model.post_layernorm.bias") {
        tensors.push_back(tensors.back());
        tensors.back().name = "vision_model.post_layernorm.bias";
      }
    }
    ASSERT_TRUE(formats::WriteSafetensors((twice / "model.safetensors").string(), tensors).ok());
  }
  auto dup = ExportGguf(twice.string(), (dir_ / "dup").string(), o);
  EXPECT_NE(dup.status().message().find("are the same weight (v.post_ln.bias)"), std::string::npos)
      << dup.status().ToString();
  // A layer beyond the config's count.
  const fs::path extra = RewriteCheckpoint(
      dir_ / "extra", nullptr, [](const std::string& file, boost::json::value& json) {
        if (file == "config.json") {
          json.at("text_config").as_object()["num_hidden_layers"] = 1;
        }
      });
  auto beyond = ExportGguf(extra.string(), (dir_ / "beyond").string(), o);
  EXPECT_NE(beyond.status().message().find("has no place in the GGUF layout"), std::string::npos)
      << beyond.status().ToString();
  // Found only once written: three end ids. The files are removed, the directory too.
  const fs::path ends = RewriteCheckpoint(
      dir_ / "ends", nullptr, [](const std::string& file, boost::json::value& json) {
        if (file == "generation_config.json") {
          json.as_object()["eos_token_id"] = boost::json::array{575, 2, 0};
        }
      });
  auto three = ExportGguf(ends.string(), (dir_ / "three").string(), o);
  EXPECT_EQ(three.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(three.status().message().find("ends answers at 3 ids"), std::string::npos)
      << three.status().ToString();
  EXPECT_FALSE(fs::exists(dir_ / "three"));
  // Image and video settings an mmproj has no key for.
  const std::vector<std::pair<std::function<void(boost::json::object&)>, std::string>> settings = {
      {[](boost::json::object& p) { p["do_image_splitting"] = false; },
       "preprocessor_config.json has settings an mmproj cannot carry"},
      {[](boost::json::object& p) {
         p["video_sampling"] = boost::json::object{{"fps", 2}};
       },
       "video_sampling differs from 1 frame a second"},
  };
  for (const auto& [change, message] : settings) {
    const fs::path ckpt = RewriteCheckpoint(dir_ / ("pre" + std::to_string(k)), nullptr,
                                            [&](const std::string& file, boost::json::value& json) {
                                              if (file == "preprocessor_config.json")
                                                change(json.as_object());
                                            });
    const fs::path out = dir_ / ("pre-out" + std::to_string(k++));
    auto r = ExportGguf(ckpt.string(), out.string(), o);
    EXPECT_EQ(r.status().code(), ErrorCode::kUnimplemented) << r.status().ToString();
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().ToString();
    EXPECT_FALSE(fs::exists(out));
  }
  // Into an existing empty directory: it stays, empty.
  fs::create_directories(dir_ / "empty");
  EXPECT_FALSE(ExportGguf(ends.string(), (dir_ / "empty").string(), o).ok());
  EXPECT_TRUE(fs::exists(dir_ / "empty"));
  EXPECT_TRUE(fs::is_empty(dir_ / "empty"));
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
