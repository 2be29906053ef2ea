#include "base/base64.h"

#include <gtest/gtest.h>

namespace iris {
namespace {

std::string Str(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

TEST(Base64, RoundTripsEveryLength) {
  std::string s;
  for (int n = 0; n < 40; ++n) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.ok()) << n;
    EXPECT_EQ(Str(*d), s);
    s.push_back(static_cast<char>(n * 37 + 200));
  }
}

TEST(Base64, KnownVectorsPaddedUnpaddedAndWrapped) {
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Str(*Base64Decode("Zm8=")), "fo");
  EXPECT_EQ(Str(*Base64Decode("Zm8")), "fo");
  EXPECT_EQ(Str(*Base64Decode("Zm9v\nYmFy")), "foobar");
}

TEST(Base64, RejectsGarbage) {
  EXPECT_FALSE(Base64Decode("Zm9v!").ok());
  EXPECT_FALSE(Base64Decode("Zm8=Zg").ok());
  EXPECT_FALSE(Base64Decode("Z").ok());
  EXPECT_NE(Base64Decode("ab$c").status().message().find("offset 2"), std::string::npos);
}

}  // namespace
}  // namespace iris
