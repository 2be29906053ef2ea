// The engine from GGUF files: the tokenizer from tokenizer.ggml.* tokenizes as tokenizer.json
// does, a directory of GGUF files loads like a checkpoint, and the GGUF model generates the
// same tokens as its safetensors original.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "base/test_data.h"
#include "engine/kernels/kernels.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/engine_testing.h"
#include "engine/runtime/gguf_tokenizer.h"

namespace iris::runtime {
namespace {

TEST(GgufTokenizer, TokenizesAsTokenizerJson) {
  for (const char* model : {"tiny-256m-style", "tiny-2.2b-style"}) {
    auto file = formats::GgufFile::Open(TestData("gguf/" + std::string(model) + "/text-BF16.gguf"));
    ASSERT_TRUE(file.ok());
    auto from_gguf = TokenizerFromGguf(file->contents());
    ASSERT_TRUE(from_gguf.ok()) << from_gguf.status().ToString();
    auto from_json = tokenizer::Tokenizer::FromFile(
        TestData("smolvlm2/" + std::string(model) + "/tokenizer.json"));
    ASSERT_TRUE(from_json.ok());
    EXPECT_EQ(from_gguf->vocab_size(), from_json->vocab_size());
    for (const char* text :
         {"<|im_start|>User: What is the capital of France?<end_of_utterance>\nAssistant:",
          "<fake_token_around_image><global-img><image><image><fake_token_around_image>",
          "Digits 12345 and 3.14159, unicode: naïve café 日本語 🙂, code: x->y != z;",
          "   leading spaces\t\ttabs\n\nnewlines  ", "<row_1_col_2><image>", ""}) {
      const std::vector<int32_t> ids = from_json->Encode(text);
      EXPECT_EQ(from_gguf->Encode(text), ids) << model << ": " << text;
      for (bool skip : {false, true}) {
        auto a = from_gguf->Decode(ids, skip), b = from_json->Decode(ids, skip);
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(*a, *b) << text;
      }
    }
  }
}

TEST(GgufTokenizer, OtherTokenizersAreNamed) {
  auto file = formats::GgufFile::Open(TestData("gguf/tiny-256m-style/text-BF16.gguf"));
  ASSERT_TRUE(file.ok());
  formats::GgufContents c = file->contents();
  c.metadata["tokenizer.ggml.model"] = formats::GgufString("llama");
  EXPECT_EQ(TokenizerFromGguf(c).status().message(),
            c.path + ": tokenizer.ggml.model 'llama' (iris reads byte-level BPE, 'gpt2')");
  c = file->contents();
  c.metadata["tokenizer.ggml.pre"] = formats::GgufString("qwen2");
  EXPECT_EQ(TokenizerFromGguf(c).status().message(),
            c.path + ": tokenizer.ggml.pre 'qwen2' (iris knows 'smollm' and 'gpt-2')");
  c = file->contents();
  c.metadata["tokenizer.ggml.token_type"].numbers.pop_back();
  EXPECT_NE(TokenizerFromGguf(c).status().message().find("entries for"), std::string::npos);
}

TEST(GgufEngine, GeneratesWhatTheSafetensorsModelGenerates) {
  EngineOptions o;
  o.threads = 2;
  o.mmproj = TestData("gguf/tiny-256m-style/mmproj-BF16.gguf");
  auto gguf = Engine::Load(TestData("gguf/tiny-256m-style/text-BF16.gguf"), o);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  o.mmproj.clear();
  auto st = Engine::Load(TestData("smolvlm2/tiny-256m-style"), o);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*gguf)->weight_types(), "BF16+F32");
  EXPECT_EQ((*gguf)->eos_ids(), (*st)->eos_ids());
  ASSERT_NE((*gguf)->image_config(), nullptr);
  EXPECT_EQ((*gguf)->image_config()->longest_edge, (*st)->image_config()->longest_edge);
  EXPECT_EQ((*gguf)->image_config()->tile_size, (*st)->image_config()->tile_size);
  EXPECT_EQ((*gguf)->image_config()->image_seq_len, (*st)->image_config()->image_seq_len);
  const boost::json::array messages = test_util::AskAboutAnImage();
  auto prompt = (*gguf)->RenderChat(messages);
  ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
  EXPECT_EQ(*prompt, *(*st)->RenderChat(messages));
  const std::vector<int32_t> answer = test_util::AnswerAboutAPattern(**gguf, *prompt);
  EXPECT_FALSE(answer.empty());
  EXPECT_EQ(answer, test_util::AnswerAboutAPattern(**st, *prompt));
}

// Q8_0 weights with int8 activations against the exact (BF16) model: the error is measured
// (docs/performance.md) and bounded here, so a broken int8 kernel cannot pass.
TEST(GgufEngine, Q8_0LogitsStayCloseToTheExactModel) {
  const std::string prompt =
      "<|im_start|>User: What is the capital of France? Answer in 3 words.<end_of_utterance>\n"
      "Assistant:";
  for (const char* model : {"tiny-256m-style", "tiny-2.2b-style"}) {
    EngineOptions o;
    o.threads = 2;
    auto exact = Engine::Load(TestData("gguf/" + std::string(model) + "/text-BF16.gguf"), o);
    auto q8 = Engine::Load(TestData("gguf/" + std::string(model) + "/text-Q8_0.gguf"), o);
    ASSERT_TRUE(exact.ok() && q8.ok());
    const std::vector<float> a = test_util::PromptLogits(**exact, prompt),
                             b = test_util::PromptLogits(**q8, prompt);
    ASSERT_EQ(a.size(), b.size());
    double max_abs = 0, max_err = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(a[i])));
      max_err = std::max(max_err, std::fabs(static_cast<double>(a[i]) - b[i]));
    }
    std::printf("%s: Q8_0 logits max error %.3g of max |logit| %.3g (%.2f%%)\n", model, max_err,
                max_abs, 100 * max_err / max_abs);
    EXPECT_LT(max_err, 0.05 * max_abs) << model;
    EXPECT_GT(max_err, 0.0) << model << ": the int8 path was not taken";
  }
}

// A Q4_K_M file as llama-quantize writes it (tests/data/gguf/tiny-2.2b-style/text-Q4_K_M.gguf:
// its FFN down projections are Q4_K and Q6_K, the rest falls back to Q5_0/Q8_0 for rows of
// 64). Its
// logits stay near the exact model's; and with the K matrices in panels (int8 activations)
// near the same file's values multiplied in f32 (the scalar path binds K matrices as f32).
TEST(GgufEngine, Q4_K_MLogitsStayCloseToTheExactModelAndToTheFilesValues) {
  const std::string prompt =
      "<|im_start|>User: What is the capital of France? Answer in 3 words.<end_of_utterance>\n"
      "Assistant:";
  EngineOptions o;
  o.threads = 2;
  auto exact = Engine::Load(TestData("gguf/tiny-2.2b-style/text-BF16.gguf"), o);
  auto k = Engine::Load(TestData("gguf/tiny-2.2b-style/text-Q4_K_M.gguf"), o);
  ASSERT_TRUE(exact.ok() && k.ok()) << (k.ok() ? exact.status() : k.status()).ToString();
  const bool panels = kernels::MultipliesPanels(tensor::DType::kQ4_Kp);
  std::vector<float> f;
  {
    // The scalar path binds K matrices as their f32 values (the path is restored on the way
    // out, whatever happens).
    struct Restore {
      ~Restore() { kernels::ForceQuantPath(""); }
    } restore;
    ASSERT_TRUE(kernels::ForceQuantPath("scalar"));
    auto k_f32 = Engine::Load(TestData("gguf/tiny-2.2b-style/text-Q4_K_M.gguf"), o);
    ASSERT_TRUE(k_f32.ok());
    f = test_util::PromptLogits(**k_f32, prompt);
  }
  const std::vector<float> a = test_util::PromptLogits(**exact, prompt),
                           b = test_util::PromptLogits(**k, prompt);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(f.size(), b.size());
  double max_abs = 0, to_exact = 0, to_values = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(a[i])));
    to_exact = std::max(to_exact, std::fabs(static_cast<double>(a[i]) - b[i]));
    to_values = std::max(to_values, std::fabs(static_cast<double>(f[i]) - b[i]));
  }
  std::printf(
      "Q4_K_M logits: max error %.3g against the exact model, %.3g against the file's "
      "values in f32 (max |logit| %.3g)\n",
      to_exact, to_values, max_abs);
  // Measured: 15.7 % (4- and 5-bit weights of a random tiny model) and 1.8 % (the int8
  // activations alone, as Q8_0's 2.2 % above).
  EXPECT_LT(to_exact, 0.25 * max_abs);
  EXPECT_LT(to_values, 0.05 * max_abs);
  EXPECT_GT(to_exact, 0.0);
  if (panels) {
    EXPECT_GT(to_values, 0.0) << "the K matrices were not in panels";
  }
}

TEST(GgufEngine, AnMmprojNeedsAGgufModel) {
  EngineOptions o;
  o.mmproj = TestData("gguf/tiny-256m-style/mmproj-BF16.gguf");
  auto e = Engine::Load(TestData("smolvlm2/tiny-256m-style"), o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("an mmproj goes with a GGUF text model"), std::string::npos);
  auto not_gguf = Engine::Load(TestData("smolvlm2/tiny-256m-style/config.json"), {});
  ASSERT_FALSE(not_gguf.ok());
  EXPECT_NE(not_gguf.status().message().find("not a GGUF file"), std::string::npos);
}

}  // namespace
}  // namespace iris::runtime
