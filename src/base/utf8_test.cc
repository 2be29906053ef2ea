#include "base/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace iris {
namespace {

TEST(Utf8, ValidTextIsKeptWhole) {
  for (const std::string s : {"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80!"}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_EQ(LossyUtf8(s), s);
  }
}

TEST(Utf8, EachMaximalInvalidSubpartIsOneReplacement) {
  const std::string r(kUtf8Replacement);
  // A lone continuation byte; a byte never valid; an overlong form (C0 80: two); a surrogate
  // (ED A0 80: ED, then A0 and 80 apart); a lead byte whose continuation is missing before ASCII.
  EXPECT_EQ(LossyUtf8("a\x80z"), "a" + r + "z");
  EXPECT_EQ(LossyUtf8("\xFF"), r);
  EXPECT_EQ(LossyUtf8("\xC0\x80"), r + r);
  EXPECT_EQ(LossyUtf8("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(LossyUtf8("\xE2\x82x"), r + "x");
  for (const std::string bad : {"a\x80z", "\xFF", "\xC0\x80", "\xED\xA0\x80", "\xE2\x82x"}) {
    EXPECT_FALSE(IsValidUtf8(bad));
    EXPECT_TRUE(IsValidUtf8(LossyUtf8(bad)));
  }
}

TEST(Utf8, ACharacterCutOffAtTheEndIsHeldOrReplaced) {
  const std::string cut = "ab\xE2\x82";  // the euro sign without its last byte
  std::string held;
  EXPECT_EQ(AppendLossyUtf8(cut, /*hold_truncated_tail=*/true, &held), 2u);
  EXPECT_EQ(held, "ab");
  EXPECT_EQ(LossyUtf8(cut), "ab" + std::string(kUtf8Replacement));
}

TEST(Utf8, CutBeforeACharacterNotThroughIt) {
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(CutUtf8("abc", 3), "abc");
  EXPECT_EQ(CutUtf8("abcd", 3), "abc...");
  EXPECT_EQ(CutUtf8("", 0), "");
  EXPECT_EQ(CutUtf8("a", 0), "...");
  // Each cut through the euro sign leaves it out; after it, it stays.
  EXPECT_EQ(CutUtf8("ab" + euro + "z", 3), "ab...");
  EXPECT_EQ(CutUtf8("ab" + euro + "z", 4), "ab...");
  EXPECT_EQ(CutUtf8("ab" + euro + "z", 5), "ab" + euro + "...");
  // What is not UTF-8 is replaced first, as LossyUtf8 does; the bound is on what comes out
  // (300 bytes of Latin-1 are not 900 of U+FFFD).
  const std::string r(kUtf8Replacement);
  EXPECT_EQ(CutUtf8(std::string("a\xFF") + "bcd", 3), "a...");
  EXPECT_EQ(CutUtf8(std::string("a\xFF") + "bcd", 4), "a" + r + "...");
  EXPECT_EQ(CutUtf8("a\xFF", 9), "a" + r);
  EXPECT_EQ(CutUtf8(std::string(300, '\xE9'), 300).size(), 300u / 3 * 3 + 3);
  // CutAtCharacter cuts the same way and keeps what it does not cut as it is.
  std::string text = "ab" + euro + "z";
  CutAtCharacter(text, 4);
  EXPECT_EQ(text, "ab...");
  std::string raw = "a\xFF";
  CutAtCharacter(raw, 9);
  EXPECT_EQ(raw, "a\xFF");
}

}  // namespace
}  // namespace iris
