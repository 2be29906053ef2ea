// The text path against Hugging Face transformers: the text_only case of both tiny models
// (logits at every position within 1e-4 × max|golden|, 8 greedy tokens with the KV cache).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "engine/runtime/verify.h"

namespace iris {
namespace {

class TextGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TextGoldenTest, TextOnlyMatchesTransformers) {
  runtime::VerifyOptions options;
  options.cases = {"text_only"};
  options.threads = 2;
  auto lines = runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/" + GetParam(),
                               options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  std::set<std::string> items;
  for (const auto& l : *lines) {
    items.insert(l.item);
    EXPECT_TRUE(l.ok) << l.case_name << " " << l.item << ": err " << l.max_abs_error << " tol "
                      << l.tolerance << " " << l.detail;
  }
  for (const char* want : {"input_ids", "inputs_embeds", "logits", "generation_step_logits",
                           "greedy_tokens"}) {
    EXPECT_TRUE(items.count(want)) << "not compared: " << want;
  }
}

TEST_P(TextGoldenTest, SingleThreadGivesTheSameTokens) {
  runtime::VerifyOptions options;
  options.cases = {"text_only"};
  options.threads = 1;
  auto lines = runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/" + GetParam(),
                               options, {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  for (const auto& l : *lines) EXPECT_TRUE(l.ok) << l.item;
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
  auto lines = runtime::Verify(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style",
                               options, {});
  ASSERT_FALSE(lines.ok());
  EXPECT_NE(lines.status().message().find("no_such_case"), std::string::npos);
}

}  // namespace
}  // namespace iris
