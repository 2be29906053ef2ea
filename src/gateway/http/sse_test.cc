// Tests for the SSE parser and encoder: every split point, every line ending, comments,
// multi-line data, a BOM, and partial-event detection.
#include "gateway/http/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace iris::gateway::http {
namespace {

std::vector<SseEvent> ParseAll(std::string_view bytes) {
  SseParser parser;
  std::vector<SseEvent> out;
  parser.Feed(bytes, out);
  return out;
}

// Parses `bytes` split into two feeds at every position and into single bytes; every way
// must give the same events as one feed.
void ExpectSplitInvariant(std::string_view bytes, const std::vector<SseEvent>& expected) {
  auto check = [&](const std::vector<SseEvent>& got, const std::string& how) {
    ASSERT_EQ(got.size(), expected.size()) << how;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].event, expected[i].event) << how << " event " << i;
      EXPECT_EQ(got[i].data, expected[i].data) << how << " event " << i;
      EXPECT_EQ(got[i].id, expected[i].id) << how << " event " << i;
    }
  };
  check(ParseAll(bytes), "one feed");
  for (size_t split = 0; split <= bytes.size(); ++split) {
    SseParser parser;
    std::vector<SseEvent> out;
    parser.Feed(bytes.substr(0, split), out);
    parser.Feed(bytes.substr(split), out);
    check(out, "split at " + std::to_string(split));
  }
  SseParser parser;
  std::vector<SseEvent> out;
  for (char c : bytes) parser.Feed(std::string_view(&c, 1), out);
  check(out, "byte by byte");
}

TEST(SseParserTest, OpenAiStyleStream) {
  std::string stream =
      "data: {\"a\":1}\n\n"
      "data: {\"b\":2}\n\n"
      "data: [DONE]\n\n";
  ExpectSplitInvariant(stream, {{"", "{\"a\":1}", ""}, {"", "{\"b\":2}", ""}, {"", "[DONE]", ""}});
}

TEST(SseParserTest, AnthropicStyleWithEventNamesAndIds) {
  std::string stream =
      "event: message_start\ndata: {\"x\":1}\nid: 7\n\n"
      "event: ping\ndata: {}\n\n";
  ExpectSplitInvariant(stream, {{"message_start", "{\"x\":1}", "7"}, {"ping", "{}", ""}});
}

TEST(SseParserTest, AllLineEndings) {
  std::vector<SseEvent> expected = {{"e", "one", ""}, {"", "two", ""}};
  ExpectSplitInvariant("event: e\ndata: one\n\ndata: two\n\n", expected);
  ExpectSplitInvariant("event: e\r\ndata: one\r\n\r\ndata: two\r\n\r\n", expected);
  ExpectSplitInvariant("event: e\rdata: one\r\rdata: two\r\r", expected);
  ExpectSplitInvariant("event: e\r\ndata: one\n\rdata: two\r\n\n", expected);
}

TEST(SseParserTest, CommentsAreIgnored) {
  ExpectSplitInvariant(": ping\n\n:another\ndata: x\n: inside\n\n", {{"", "x", ""}});
}

TEST(SseParserTest, MultiLineDataJoinsWithNewline) {
  ExpectSplitInvariant("data: line1\ndata: line2\ndata:\ndata: line4\n\n",
                       {{"", "line1\nline2\n\nline4", ""}});
}

TEST(SseParserTest, NoSpaceAfterColonAndOnlyOneSpaceRemoved) {
  ExpectSplitInvariant("data:tight\n\ndata:  two spaces\n\n",
                       {{"", "tight", ""}, {"", " two spaces", ""}});
}

TEST(SseParserTest, FieldWithoutColonAndUnknownFields) {
  // "data" alone is a data field with an empty value; retry and unknown fields are ignored.
  ExpectSplitInvariant("retry: 100\nfoo: bar\ndata\n\n", {{"", "", ""}});
}

TEST(SseParserTest, EventWithoutDataIsNotDispatched) {
  ExpectSplitInvariant("event: lonely\n\ndata: x\n\n", {{"", "x", ""}});
}

TEST(SseParserTest, BomIsSkippedEvenWhenSplit) {
  ExpectSplitInvariant(
      "\xEF\xBB\xBF"
      "data: after bom\n\n",
      {{"", "after bom", ""}});
  // Only at the start: a later BOM is data.
  ExpectSplitInvariant(
      "data: a\n\n\xEF\xBB\xBF"
      "data: b\n\n",
      {{"", "a", ""}});
}

TEST(SseParserTest, PartialEventDetection) {
  SseParser parser;
  std::vector<SseEvent> out;
  EXPECT_FALSE(parser.HasPartialEvent());
  parser.Feed("data: complete\n\n", out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_FALSE(parser.HasPartialEvent());
  parser.Feed("data: cut", out);
  EXPECT_TRUE(parser.HasPartialEvent());  // an incomplete line
  parser.Feed("\n", out);
  EXPECT_TRUE(parser.HasPartialEvent());  // a complete line but no blank line yet
  EXPECT_EQ(out.size(), 1u);
  parser.Feed("\n", out);
  EXPECT_FALSE(parser.HasPartialEvent());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].data, "cut");
  EXPECT_EQ(parser.bytes_seen(), 27u);
}

TEST(SseEncodeTest, EncodesEventAndData) {
  EXPECT_EQ(EncodeSse("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(EncodeSse("x", "message_stop"), "event: message_stop\ndata: x\n\n");
  EXPECT_EQ(EncodeSse("a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(EncodeSse(""), "data: \n\n");
}

TEST(SseEncodeTest, RoundTripsAnyLineBreaks) {
  for (std::string data :
       {"plain", "a\nb", "a\r\nb", "a\rb", "trailing\n", "\n\nx", "a\r\n\r\nb"}) {
    std::vector<SseEvent> out = ParseAll(EncodeSse(data, "ev\nil"));
    ASSERT_EQ(out.size(), 1u) << data;
    std::string normalized;
    for (size_t i = 0; i < data.size(); ++i) {
      if (data[i] == '\r') {
        normalized.push_back('\n');
        if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
      } else {
        normalized.push_back(data[i]);
      }
    }
    EXPECT_EQ(out[0].data, normalized);
    EXPECT_EQ(out[0].event, "evil");
  }
}

}  // namespace
}  // namespace iris::gateway::http

namespace iris::gateway::http {
namespace {

TEST(SseParserLimitTest, ALineWithoutEndStopsAtTheLimit) {
  SseParser parser(1024);
  std::vector<SseEvent> out;
  const std::string chunk(300, 'x');
  parser.Feed("data: ", out);
  for (int i = 0; i < 10; ++i) parser.Feed(chunk, out);
  EXPECT_TRUE(parser.overflowed());
  EXPECT_TRUE(out.empty());
  parser.Feed("\n\ndata: ok\n\n", out);  // nothing more is read once it overflowed
  EXPECT_TRUE(out.empty());
}

TEST(SseParserLimitTest, AnEventOfManyShortLinesStopsAtTheLimit) {
  SseParser parser(1024);
  std::vector<SseEvent> out;
  for (int i = 0; i < 100; ++i) parser.Feed("data: 0123456789abcdef\n", out);
  EXPECT_TRUE(parser.overflowed());
  EXPECT_TRUE(out.empty());
}

TEST(SseParserLimitTest, EventsUnderTheLimitPass) {
  SseParser parser(1024);
  std::vector<SseEvent> out;
  for (int i = 0; i < 100; ++i) parser.Feed("data: " + std::string(900, 'y') + "\n\n", out);
  EXPECT_FALSE(parser.overflowed());
  EXPECT_EQ(out.size(), 100u);
}

}  // namespace
}  // namespace iris::gateway::http
