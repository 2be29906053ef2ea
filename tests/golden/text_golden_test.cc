// The text path against Hugging Face transformers: the text_only case of both tiny models
// (logits at every position within 1e-4 × max|golden|, 8 greedy tokens with the KV cache).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "engine/formats/safetensors.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/verify.h"

namespace iris {
namespace {

class TextGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TextGoldenTest, EveryCaseMatchesTransformers) {
  runtime::VerifyOptions options;
  options.threads = 2;
  auto lines =
      runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/" + GetParam(), options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  std::set<std::string> items;
  for (const auto& l : *lines) {
    items.insert(l.item);
    EXPECT_TRUE(l.ok) << l.case_name << " " << l.item << ": err " << l.max_abs_error << " tol "
                      << l.tolerance << " " << l.detail;
  }
  for (const char* want :
       {"input_ids", "inputs_embeds", "logits", "generation_step_logits", "greedy_tokens",
        "vision_last_hidden_state", "image_features", "pixel_values", "prompt_expansion"}) {
    EXPECT_TRUE(items.count(want)) << "not compared: " << want;
  }
  std::set<std::string> cases;
  for (const auto& l : *lines) cases.insert(l.case_name);
  EXPECT_EQ(cases, (std::set<std::string>{"text_only", "image_nosplit", "image_split", "two_images",
                                          "video"}));
}

TEST_P(TextGoldenTest, SingleThreadGivesTheSameTokens) {
  runtime::VerifyOptions options;
  options.cases = {"text_only"};
  options.threads = 1;
  auto lines =
      runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/" + GetParam(), options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  for (const auto& l : *lines) EXPECT_TRUE(l.ok) << l.item;
}

// The same fixtures through the GGUF files tests/data/gguf/generate.py converts the tiny
// checkpoints to (convert_hf_to_gguf.py's layout: permuted Q/K rows, llama and clip names, the
// tokenizer and template in metadata): every case, within the same tolerance.
TEST_P(TextGoldenTest, TheGgufConversionMatchesTransformersToo) {
  runtime::VerifyOptions options;
  options.threads = 2;
  const std::string gguf = std::string(IRIS_TEST_DATA_DIR) + "/gguf/" + GetParam();
  options.model = gguf + "/text-BF16.gguf";
  options.mmproj = gguf + "/mmproj-BF16.gguf";
  auto lines =
      runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/" + GetParam(), options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  std::set<std::string> cases;
  for (const auto& l : *lines) {
    cases.insert(l.case_name);
    EXPECT_TRUE(l.ok) << l.case_name << " " << l.item << ": err " << l.max_abs_error << " tol "
                      << l.tolerance << " " << l.detail;
  }
  EXPECT_EQ(cases.size(), 5u);
}

// Q8_0 weights quantized at load are measured, not held to the exact tolerance: every case
// reports its next-token agreement, which stays high on these models.
TEST_P(TextGoldenTest, Q8_0WeightsAreMeasuredAgainstTheGoldens) {
  runtime::VerifyOptions options;
  options.threads = 2;
  options.weights = "q8_0";
  auto lines =
      runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/" + GetParam(), options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  size_t measured = 0;
  for (const auto& l : *lines) {
    EXPECT_TRUE(l.ok) << l.case_name << " " << l.item << " " << l.detail;
    if (l.item != "next_token") continue;
    ++measured;
    size_t agree = 0, positions = 0;
    double kl = 1;
    ASSERT_EQ(std::sscanf(l.detail.c_str(), "top-1 agrees at %zu/%zu positions, mean KL %lf",
                          &agree, &positions, &kl),
              3);
    // Random tiny models have near ties; a broken int8 path loses far more than this.
    EXPECT_GE(agree * 5, positions * 4) << l.case_name << ": " << l.detail;
    EXPECT_LT(kl, 1e-3) << l.case_name << ": " << l.detail;
    EXPECT_GT(kl, 1e-9) << l.case_name << ": the weights were not quantized";
  }
  EXPECT_EQ(measured, 5u);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, TextGoldenTest,
                         ::testing::Values("tiny-256m-style", "tiny-2.2b-style"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           for (char& c : s) {
                             if (c == '-' || c == '.') c = '_';
                           }
                           return s;
                         });

TEST(VerifyTest, UnknownCaseIsAnError) {
  runtime::VerifyOptions options;
  options.cases = {"no_such_case"};
  auto lines =
      runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style", options, {});
  ASSERT_FALSE(lines.ok());
  EXPECT_NE(lines.status().message().find("no_such_case"), std::string::npos);
}

}  // namespace
}  // namespace iris

namespace iris {
namespace {
namespace fs = std::filesystem;

// The fixture checkpoint rewritten in another dtype (the hub files are F32).
fs::path ConvertedFixture(const std::string& model, tensor::DType dtype) {
  const fs::path src = fs::path(IRIS_TEST_DATA_DIR) / "smolvlm2" / model;
  const fs::path dst =
      fs::temp_directory_path() / ("iris_golden_" + std::to_string(::getpid()) + "_" + model + "_" +
                                   std::string(tensor::DTypeName(dtype)));
  fs::create_directories(dst);
  for (const auto& entry : fs::directory_iterator(src)) {
    if (entry.path().filename() != "model.safetensors") {
      fs::copy_file(entry.path(), dst / entry.path().filename(),
                    fs::copy_options::overwrite_existing);
    }
  }
  auto in = formats::SafetensorsFile::Open((src / "model.safetensors").string());
  EXPECT_TRUE(in.ok());
  std::vector<formats::TensorToWrite> out;
  for (const auto& [name, e] : in->tensors()) {
    formats::TensorToWrite t{name, dtype, e.view.shape, {}};
    const int64_t n = e.view.num_elements();
    t.bytes.resize(static_cast<size_t>(n) * tensor::DTypeSize(dtype));
    for (int64_t i = 0; i < n; ++i) {
      const float f = e.view.GetF32(i);
      if (dtype == tensor::DType::kF32) {
        std::memcpy(&t.bytes[4 * i], &f, 4);
      } else {
        const uint16_t h = tensor::F32ToF16(f);
        std::memcpy(&t.bytes[2 * i], &h, 2);
      }
    }
    out.push_back(std::move(t));
  }
  EXPECT_TRUE(formats::WriteSafetensors((dst / "model.safetensors").string(), out).ok());
  return dst;
}

TEST(CheckpointDtypeTest, F32CheckpointGivesTheSameResults) {
  const fs::path dir = ConvertedFixture("tiny-256m-style", tensor::DType::kF32);
  runtime::VerifyOptions options;
  options.cases = {"text_only"};
  auto lines = runtime::Verify(dir.string(), options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  for (const auto& l : *lines) EXPECT_TRUE(l.ok) << l.item << " " << l.max_abs_error;
  fs::remove_all(dir);
}

TEST(CheckpointDtypeTest, F16CheckpointRuns) {
  const fs::path dir = ConvertedFixture("tiny-2.2b-style", tensor::DType::kF16);
  runtime::VerifyOptions options;
  options.cases = {"text_only"};
  auto lines = runtime::Verify(dir.string(), options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  for (const auto& l : *lines) {
    if (l.item == "greedy_tokens") {
      EXPECT_TRUE(l.ok) << l.detail;
    }
  }
  fs::remove_all(dir);
}

TEST(CheckpointErrorsTest, MissingAndMisshapenTensorsAreNamed) {
  const fs::path dir = ConvertedFixture("tiny-256m-style", tensor::DType::kF32);
  auto in = formats::SafetensorsFile::Open((dir / "model.safetensors").string());
  ASSERT_TRUE(in.ok());
  std::vector<formats::TensorToWrite> all, kept;
  for (const auto& [name, e] : in->tensors()) {
    const auto* p = static_cast<const char*>(e.view.data);
    all.push_back({name, e.view.dtype, e.view.shape, std::string(p, e.view.num_bytes())});
    if (name != "lm_head.weight") kept.push_back(all.back());
  }
  in = Status(ErrorCode::kInternal, "closed");  // unmap before rewriting
  ASSERT_TRUE(formats::WriteSafetensors((dir / "model.safetensors").string(), kept).ok());
  auto engine = runtime::Engine::Load(dir.string(), {});
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("'lm_head.weight'"), std::string::npos)
      << engine.status().message();

  for (auto& t : all) {
    if (t.name == "model.text_model.norm.weight") {
      t.shape = {32, 2};
    }
  }
  ASSERT_TRUE(formats::WriteSafetensors((dir / "model.safetensors").string(), all).ok());
  auto shaped = runtime::Engine::Load(dir.string(), {});
  ASSERT_FALSE(shaped.ok());
  EXPECT_NE(shaped.status().message().find("model.text_model.norm.weight"), std::string::npos);
  EXPECT_NE(shaped.status().message().find("[32, 2]"), std::string::npos)
      << shaped.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace iris
