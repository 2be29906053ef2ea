#include "base/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "base/utf8.h"

namespace iris {
namespace {

TEST(SerializeJsonTest, NumbersAsPeopleWriteThem) {
  boost::json::object o;
  o["cost"] = 1234.5;
  o["small"] = 5.85e-6;
  o["t"] = 0.7;
  o["n"] = -3;
  o["u"] = uint64_t{18446744073709551615ULL};
  o["inf"] = std::numeric_limits<double>::infinity();
  o["s"] = "a\"b\n";
  o["a"] = boost::json::array{1, 2.5, nullptr, true, 1.0, 1e21};
  EXPECT_EQ(SerializeJson(o),
            R"({"cost":1234.5,"small":5.85e-06,"t":0.7,"n":-3,"u":18446744073709551615,)"
            R"("inf":null,"s":"a\"b\n","a":[1,2.5,null,true,1.0,1e+21]})");
  // Integers at their limits, written as Boost.JSON writes them.
  for (int64_t i : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                    std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(SerializeJson(boost::json::value(i)), std::to_string(i));
  }
  EXPECT_EQ(SerializeJson(boost::json::value(uint64_t{0})), "0");
  // Appended in place, after what the string held.
  std::string body = "x";
  AppendJson(boost::json::object{{"k", 1}}, body);
  EXPECT_EQ(body, R"(x{"k":1})");
  // Round trip: every double reads back exactly.
  for (double d : {0.1, 1.0 / 3, 1e300, 6.02214076e23, -2.5e-308}) {
    boost::json::value v = boost::json::parse(SerializeJson(boost::json::value(d)));
    EXPECT_EQ(v.to_number<double>(), d);
  }
}

}  // namespace
}  // namespace iris

namespace iris {
namespace {

// Strings come out exactly as Boost.JSON escapes them, the fast path for plain ASCII included.
TEST(SerializeJsonTest, StringsAreEscapedExactlyAsBoostJsonDoes) {
  std::vector<std::string> cases = {"",     "plain text",  "quote\"d", "back\\slash", "tab\there",
                                    "\x7f", "caf\xc3\xa9", "\xff\xfe", "</script>",   "line\n"};
  for (int b = 0; b < 256; ++b) cases.push_back(std::string(1, static_cast<char>(b)) + "x");
  for (const std::string& s : cases) {
    // Bytes that are not UTF-8 (0x80 to 0xff alone) are written as U+FFFD, escaped as the
    // rest; the text always parses.
    const std::string utf8 = LossyUtf8(s);
    EXPECT_EQ(utf8 == s, IsValidUtf8(s));
    const boost::json::value v(s);
    EXPECT_EQ(SerializeJson(v), boost::json::serialize(boost::json::value(utf8))) << s;
    const boost::json::object o{{s, s}};
    EXPECT_EQ(SerializeJson(o), boost::json::serialize(boost::json::object{{utf8, utf8}})) << s;
    Result<boost::json::value> back = ParseJson(SerializeJson(o), "written");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->as_object().at(utf8).as_string(), utf8);
  }
}

// One JSON text, and nothing but whitespace after it: a value followed by anything else is not
// JSON, and the message says where the extra data starts.
TEST(ParseJsonTest, OneValueAndOnlyWhitespaceAfterIt) {
  EXPECT_TRUE(ParseJson(" {\"a\":1} \r\n\t", "ws").ok());
  Result<boost::json::value> extra = ParseJson("{\"a\":1}x", "body");
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.status().message().rfind("body: invalid JSON at byte 7: extra data", 0), 0u)
      << extra.status().message();
  for (std::string_view junk : {"{\"a\":1}x", "{\"a\":1}{}", "[1] 2", "{} //", "\"s\"\"t\""}) {
    Result<boost::json::value> v = ParseJson(junk, "body");
    ASSERT_FALSE(v.ok()) << junk;
    EXPECT_NE(v.status().message().find("body: invalid JSON at byte"), std::string::npos)
        << v.status().message();
  }
}

// A value parsed into scratch storage lives there, whatever its size (more than the scratch's
// first 4 KiB comes from the heap), and reads the same as one in the default storage.
TEST(ParseJsonTest, ParsesIntoTheStorageItIsGiven) {
  for (size_t n : {1u, 10u, 2000u}) {
    boost::json::array a;
    for (size_t i = 0; i < n; ++i)
      a.push_back(boost::json::object{{"key " + std::to_string(i), i}});
    const std::string text = SerializeJson(a);
    JsonScratch scratch;
    Result<boost::json::value> v = ParseJson(text, "scratch", scratch.storage());
    ASSERT_TRUE(v.ok()) << v.status().message();
    EXPECT_EQ(v->storage().get(), scratch.storage().get());
    EXPECT_EQ(v->as_array()[n - 1].storage().get(), scratch.storage().get());
    EXPECT_EQ(SerializeJson(*v), text);
    Result<boost::json::value> heap = ParseJson(text, "heap");
    ASSERT_TRUE(heap.ok());
    EXPECT_EQ(heap->storage().get(), boost::json::storage_ptr().get());
    EXPECT_EQ(*heap, *v);
  }
  JsonScratch scratch;
  Result<boost::json::value> bad = ParseJson("{\"a\":", "the body", scratch.storage());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("the body: invalid JSON"), std::string::npos);
}

}  // namespace
}  // namespace iris
