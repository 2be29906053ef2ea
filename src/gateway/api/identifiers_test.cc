#include "gateway/api/identifiers.h"

#include <gtest/gtest.h>

namespace iris::gateway::api {
namespace {

TEST(IdentifiersTest, AcceptsTheModelIdsPeopleUse) {
  for (const char* id :
       {"gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.5-flash", "o3",
        "meta-llama/Llama-3.1-8B-Instruct", "llama3.1:8b", "@cf/meta/llama-3-8b",
        "anthropic.claude-3-sonnet-20240229-v1:0", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
        "local/smolvlm2", "openai/gpt-4o-mini", "vision_fast"}) {
    EXPECT_TRUE(CheckModelId(id, "model").ok()) << id;
  }
}

TEST(IdentifiersTest, RefusesInjectionAndNamesTheField) {
  const std::string too_long(257, 'a');
  for (std::string id :
       {std::string("gemini-2.5-flash?key=x"), std::string("gemini-2.5-flash#"),
        std::string("../../v1/files"), std::string("a%2Fb"), std::string("x\r\nHost: evil"),
        std::string("x\ny"), std::string("a b"), std::string("a\0b", 3), std::string(""), too_long,
        std::string("/abs"), std::string("trailing/"), std::string("a//b"),
        std::string("caf\xc3\xa9"), std::string("x;y"), std::string("x\"y")}) {
    Status s = CheckModelId(id, "models[3]");
    ASSERT_FALSE(s.ok()) << id;
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(s.message().rfind("models[3]: ", 0), 0u) << s.message();
    EXPECT_EQ(s.message().find('\r'), std::string::npos);
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
    EXPECT_LT(s.message().size(), 200u);
  }
}

TEST(IdentifiersTest, ProviderNames) {
  EXPECT_TRUE(CheckProviderName("openai", "provider.order[0]").ok());
  EXPECT_TRUE(CheckProviderName("my-vllm_2.b", "provider.only[1]").ok());
  EXPECT_FALSE(CheckProviderName("", "provider.only[0]").ok());
  EXPECT_FALSE(CheckProviderName("a/b", "provider.only[0]").ok());
  EXPECT_FALSE(CheckProviderName(std::string(65, 'a'), "provider.only[0]").ok());
}

TEST(IdentifiersTest, EncodePathSegmentLeavesOnlyUnreserved) {
  EXPECT_EQ(EncodePathSegment("gemini-2.5-flash"), "gemini-2.5-flash");
  EXPECT_EQ(EncodePathSegment("a/b:c?d#e%f"), "a%2Fb%3Ac%3Fd%23e%25f");
  EXPECT_EQ(EncodePathSegment(std::string("\r\n\0", 3)), "%0D%0A%00");
}

}  // namespace
}  // namespace iris::gateway::api
