// `iris tokenize` end to end on string streams with the real SmolVLM2 tokenizer.json.
#include "engine/tokenizer/tokenize_tool.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace iris::tokenizer {
namespace {

const std::string kTokenizerPath = std::string(IRIS_TEST_DATA_DIR) + "/tokenizer/tokenizer.json";

struct ToolRun {
  int rc;
  std::string out;
  std::string err;
};

ToolRun RunTool(const std::string& path, bool decode, const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  const int rc = RunTokenizeTool(path, decode, in, out, err);
  return {rc, out.str(), err.str()};
}

void ExpectOneLineError(const ToolRun& run, const std::string& needle) {
  EXPECT_EQ(run.rc, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err.rfind("iris tokenize: ", 0), 0u) << run.err;
  ASSERT_FALSE(run.err.empty());
  EXPECT_EQ(run.err.back(), '\n');
  EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << run.err;
  EXPECT_NE(run.err.find(needle), std::string::npos) << run.err;
}

TEST(TokenizeTool, EncodesToACompactJsonArray) {
  const ToolRun run = RunTool(kTokenizerPath, false, "Hello, world!");
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out, "[19556,28,905,17]\n");
  EXPECT_EQ(run.err, "");
}

TEST(TokenizeTool, KeepsATrailingNewline) {
  const ToolRun plain = RunTool(kTokenizerPath, false, "Hello, world!");
  const ToolRun newline = RunTool(kTokenizerPath, false, "Hello, world!\n");
  EXPECT_EQ(newline.rc, 0);
  EXPECT_NE(newline.out, plain.out);
  EXPECT_EQ(newline.out.substr(0, plain.out.size() - 2), plain.out.substr(0, plain.out.size() - 2));
  const ToolRun back = RunTool(kTokenizerPath, true, newline.out);
  EXPECT_EQ(back.rc, 0) << back.err;
  EXPECT_EQ(back.out, "Hello, world!\n");
}

TEST(TokenizeTool, EmptyInput) {
  EXPECT_EQ(RunTool(kTokenizerPath, false, "").out, "[]\n");
  EXPECT_EQ(RunTool(kTokenizerPath, true, "[]").out, "");
}

TEST(TokenizeTool, DecodesIdsKeepingSpecialTokens) {
  const ToolRun run = RunTool(kTokenizerPath, true, " [1, 19556, 28, 905, 17, 2]\n");
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out, "<|im_start|>Hello, world!<|im_end|>");
}

TEST(TokenizeTool, Errors) {
  ExpectOneLineError(RunTool("/no/such/tokenizer.json", false, "x"), "/no/such/tokenizer.json");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "[1, 2"), "invalid JSON");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "{\"ids\": [1]}"), "JSON array");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "[1, \"a\"]"), "element 1");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "[1, -3]"), "element 1");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "[1, 2.5]"), "element 1");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "[1, 99999999999]"), "element 1");
  ExpectOneLineError(RunTool(kTokenizerPath, true, "[1, 999999]"), "999999");
}

}  // namespace
}  // namespace iris::tokenizer
