// Tokenizer against Hugging Face `tokenizers` outputs (tests/data/tokenizer/cases.json and the
// tiny SmolVLM2 goldens), plus the loader's error paths, merges formats and streaming decode.
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "base/json.h"

namespace iris::tokenizer {
namespace {

namespace json = boost::json;

const std::string kDataDir = IRIS_TEST_DATA_DIR;
const std::string kRealPath = kDataDir + "/tokenizer/tokenizer.json";
const std::string kTinyDir = kDataDir + "/smolvlm2/tiny-256m-style";

json::value ReadJson(const std::string& path) {
  Result<json::value> value = ReadJsonFile(path);
  EXPECT_TRUE(value.ok()) << value.status().ToString();
  return value.ok() ? *value : json::value();
}

std::vector<int32_t> IdsOf(const json::value& array) {
  std::vector<int32_t> ids;
  for (const json::value& v : array.as_array()) ids.push_back(static_cast<int32_t>(v.as_int64()));
  return ids;
}

// The real SmolVLM2 tokenizer, loaded once for the whole binary.
const Tokenizer& Real() {
  static const Tokenizer* tokenizer = [] {
    Result<Tokenizer> t = Tokenizer::FromFile(kRealPath);
    if (!t.ok()) {
      ADD_FAILURE() << t.status().ToString();
      std::abort();
    }
    return new Tokenizer(std::move(t).value());
  }();
  return *tokenizer;
}

const json::array& HfCases() {
  static const json::value cases = ReadJson(kDataDir + "/tokenizer/cases.json");
  return cases.at("cases").as_array();
}

bool IsValidUtf8(std::string_view s) {
  // Round-trips through the decoder's own rules would be circular; check the structure.
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80           ? 1
                 : (b >> 5) == 0x6  ? 2
                 : (b >> 4) == 0xE  ? 3
                 : (b >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// Push every id through a StreamDecoder; checks that each piece is whole UTF-8.
std::string Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special,
                   std::vector<std::string>* pieces = nullptr) {
  StreamDecoder decoder(tokenizer, skip_special);
  std::string text;
  for (int32_t id : ids) {
    std::string piece = decoder.Push(id);
    EXPECT_TRUE(IsValidUtf8(piece)) << "after id " << id;
    if (pieces != nullptr) pieces->push_back(piece);
    text += piece;
  }
  std::string tail = decoder.Flush();
  EXPECT_TRUE(IsValidUtf8(tail));
  return text + tail;
}

// ---------------------------------------------------------------------------------------
// (1) The 128 Hugging Face cases.

// One test over all the cases: each failure names its case, and the tokenizer loads once (a
// test of its own per case loaded it 128 times, ctest running each in a process of its own).
TEST(HfCasesTest, EachEncodesToHfIdsAndDecodesBack) {
  ASSERT_EQ(HfCases().size(), 128u);
  for (size_t i = 0; i < HfCases().size(); ++i) {
    const json::object& c = HfCases()[i].as_object();
    const std::string text(c.at("text").as_string());
    const std::vector<int32_t> expected = IdsOf(c.at("ids"));
    SCOPED_TRACE("case " + std::to_string(i) + ": " + json::serialize(c.at("text")));

    EXPECT_EQ(Real().Encode(text), expected);
    EXPECT_EQ(Stream(Real(), expected, /*skip_special=*/false), text);
    Result<std::string> decoded = Real().Decode(expected);
    Result<std::string> skipped = Real().Decode(expected, /*skip_special=*/true);
    EXPECT_TRUE(decoded.ok() && skipped.ok())
        << (decoded.ok() ? skipped.status() : decoded.status()).ToString();
    if (!decoded.ok() || !skipped.ok()) continue;
    EXPECT_EQ(*decoded, text);
    EXPECT_EQ(Stream(Real(), expected, /*skip_special=*/true), *skipped);
  }
}

// ---------------------------------------------------------------------------------------
// (2) The tiny SmolVLM2 fixture (merges written as pairs).

TEST(TinyFixture, EncodesEveryExpandedPromptExactly) {
  Result<Tokenizer> tokenizer = Tokenizer::FromFile(kTinyDir + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const json::value goldens = ReadJson(kTinyDir + "/goldens.json");
  const json::object& cases = goldens.at("cases").as_object();
  ASSERT_GE(cases.size(), 5u);
  EXPECT_EQ(tokenizer->vocab_size(), goldens.at("vocab_size").as_int64());
  for (const auto& [name, c] : cases) {
    SCOPED_TRACE(std::string(name));
    const std::string prompt(c.at("expanded_prompt").as_string());
    EXPECT_EQ(tokenizer->Encode(prompt), IdsOf(c.at("input_ids")));
    Result<std::string> decoded = tokenizer->Decode(IdsOf(c.at("input_ids")));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, prompt);
    // Random weights generate arbitrary ids: byte fragments must become U+FFFD as in HF.
    Result<std::string> generated = tokenizer->Decode(IdsOf(c.at("generated_ids")));
    ASSERT_TRUE(generated.ok());
    EXPECT_EQ(*generated, std::string(c.at("generated_text").as_string()));
  }
  for (const auto& [content, id] : goldens.at("special_token_ids").as_object()) {
    EXPECT_EQ(tokenizer->TokenId(std::string(content)), id.as_int64()) << content;
    EXPECT_TRUE(tokenizer->IsSpecial(static_cast<int32_t>(id.as_int64()))) << content;
  }
}

// ---------------------------------------------------------------------------------------
// (3) Synthetic tokenizers: merges formats, rank order, pre-tokenizer variants.

// A tokenizer over the letters a b c, the digits 1 2, space (Ġ) and a few merges.
std::string SmallTokenizerJson(const std::string& merges,
                               const std::string& pre_tokenizer =
                                   R"({"type": "Sequence", "pretokenizers": [
                                        {"type": "Digits", "individual_digits": true},
                                        {"type": "ByteLevel", "add_prefix_space": false,
                                         "trim_offsets": true, "use_regex": true}]})",
                               const std::string& added_tokens = "[]") {
  return R"({"version": "1.0", "added_tokens": )" + added_tokens + R"(,
    "normalizer": null, "pre_tokenizer": )" +
         pre_tokenizer + R"(,
    "post_processor": null,
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null,
              "continuing_subword_prefix": null, "end_of_word_suffix": null,
              "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "1": 4, "2": 5,
                        "ab": 6, "abc": 7, "\u0120ab": 8, "12": 9, "bc": 10, "aa": 11,
                        "\u0120abc": 12},
              "merges": )" +
         merges + "}}";
}

Tokenizer MustLoad(const std::string& json_text) {
  Result<Tokenizer> t = Tokenizer::FromJson(json_text, "test.json");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

TEST(Merges, StringsAndPairsGiveTheSameResult) {
  Tokenizer strings = MustLoad(SmallTokenizerJson(R"(["a b", "ab c", "\u0120 ab", "1 2",
                                                      "\u0120 abc"])"));
  Tokenizer pairs = MustLoad(SmallTokenizerJson(
      R"([["a", "b"], ["ab", "c"], ["\u0120", "ab"], ["1", "2"], ["\u0120", "abc"]])"));
  Tokenizer mixed = MustLoad(
      SmallTokenizerJson(R"(["a b", ["ab", "c"], "\u0120 ab", ["1", "2"], "\u0120 abc"])"));
  const std::string text = "abc ab abcab 12 cab";
  const std::vector<int32_t> expected = {7, 8, 12, 6, 3, 4, 5, 3, 2, 6};
  EXPECT_EQ(strings.Encode(text), expected);
  EXPECT_EQ(pairs.Encode(text), expected);
  EXPECT_EQ(mixed.Encode(text), expected);
}

TEST(Merges, LowerRankWinsAndTiesGoLeft) {
  Tokenizer ab_first = MustLoad(SmallTokenizerJson(R"(["a b", "b c", "a a"])"));
  Tokenizer bc_first = MustLoad(SmallTokenizerJson(R"(["b c", "a b", "a a"])"));
  EXPECT_EQ(ab_first.Encode("abc"), (std::vector<int32_t>{6, 2}));
  EXPECT_EQ(bc_first.Encode("abc"), (std::vector<int32_t>{0, 10}));
  EXPECT_EQ(ab_first.Encode("aaa"), (std::vector<int32_t>{11, 0}));
  EXPECT_EQ(ab_first.Encode("aaaa"), (std::vector<int32_t>{11, 11}));
}

TEST(PreTokenizer, DigitsSplitBeforeTheRegexAndPlainByteLevelWorks) {
  const std::string merges = R"(["1 2", "a b"])";
  Tokenizer with_digits = MustLoad(SmallTokenizerJson(merges));
  Tokenizer byte_level_only = MustLoad(SmallTokenizerJson(
      merges, R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                  "use_regex": true})"));
  Tokenizer sequence_of_one = MustLoad(
      SmallTokenizerJson(merges, R"({"type": "Sequence", "pretokenizers": [{"type": "ByteLevel",
                  "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]})"));
  EXPECT_EQ(with_digits.Encode("ab12"), (std::vector<int32_t>{6, 4, 5}));
  EXPECT_EQ(byte_level_only.Encode("ab12"), (std::vector<int32_t>{6, 9}));
  EXPECT_EQ(sequence_of_one.Encode("ab12"), (std::vector<int32_t>{6, 9}));
  // The regex splits letters from digits, so "b1" never merges even without Digits.
  EXPECT_EQ(byte_level_only.Encode("12ab"), (std::vector<int32_t>{9, 6}));
}

TEST(PreTokenizer, AddPrefixSpacePrependsToEachPiece) {
  Tokenizer t = MustLoad(
      SmallTokenizerJson(R"(["a b", "\u0120 ab"])",
                         R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})",
                         R"([{"id": 13, "content": "<x>", "special": true}])"));
  EXPECT_EQ(t.Encode("ab"), (std::vector<int32_t>{8}));
  EXPECT_EQ(t.Encode(" ab"), (std::vector<int32_t>{8}));
  EXPECT_EQ(t.Encode("ab<x>ab"), (std::vector<int32_t>{8, 13, 8}));
}

TEST(PreTokenizer, BytesMissingFromTheVocabAreDropped) {
  Tokenizer t = MustLoad(SmallTokenizerJson(R"(["a b"])"));
  EXPECT_EQ(t.Encode("a z b"), (std::vector<int32_t>{0, 3, 3, 1}));
}

TEST(AddedTokens, LongestMatchAtTheLeftmostPositionWins) {
  Tokenizer t = MustLoad(SmallTokenizerJson(R"(["a b"])", R"({"type": "ByteLevel",
      "add_prefix_space": false, "use_regex": true})",
                                            R"([{"id": 20, "content": "<a>", "special": true},
          {"id": 21, "content": "<a><b>", "special": true},
          {"id": 22, "content": "a><", "special": false, "normalized": true},
          {"id": 23, "content": "c", "special": false, "normalized": false}])"));
  EXPECT_EQ(t.vocab_size(), 24);
  EXPECT_EQ(t.Encode("<a><b>"), (std::vector<int32_t>{21}));
  EXPECT_EQ(t.Encode("<a><a>"), (std::vector<int32_t>{20, 20}));
  // Non-normalized tokens are found first; "a><" only in the text they leave.
  EXPECT_EQ(t.Encode("ba><c"), (std::vector<int32_t>{1, 22, 23}));
  EXPECT_EQ(t.Encode("<a><"), (std::vector<int32_t>{20}));  // '<' is not in the vocab
  EXPECT_TRUE(t.IsSpecial(20));
  EXPECT_FALSE(t.IsSpecial(22));
  EXPECT_EQ(t.TokenBytes(21), "<a><b>");
  Result<std::string> text = t.Decode(std::vector<int32_t>{6, 20, 22, 21}, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "aba><");
}

// ---------------------------------------------------------------------------------------
// Decoding and streaming.

TEST(Decode, RealTokenizerBasics) {
  EXPECT_EQ(Real().vocab_size(), 49280);
  ASSERT_TRUE(Real().TokenId("<image>").has_value());
  EXPECT_TRUE(Real().IsSpecial(*Real().TokenId("<image>")));
  EXPECT_TRUE(Real().IsSpecial(0));
  ASSERT_TRUE(Real().TokenId("\u0120the").has_value());
  const int32_t the = *Real().TokenId("\u0120the");
  EXPECT_FALSE(Real().IsSpecial(the));
  EXPECT_EQ(Real().TokenBytes(the), " the");
  EXPECT_EQ(Real().TokenBytes(-1), "");
  EXPECT_EQ(Real().TokenBytes(Real().vocab_size()), "");
  EXPECT_FALSE(Real().TokenId("no such token, surely").has_value());

  const std::vector<int32_t> ids = Real().Encode("<|im_start|>User: hi<end_of_utterance>\nA:");
  Result<std::string> skipped = Real().Decode(ids, /*skip_special=*/true);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, "User: hi\nA:");
}

TEST(Decode, IdOutsideTheVocabularyIsAnError) {
  for (int32_t bad : {-1, Real().vocab_size(), 1 << 30}) {
    Result<std::string> text = Real().Decode(std::vector<int32_t>{19556, bad});
    ASSERT_FALSE(text.ok()) << bad;
    EXPECT_EQ(text.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(text.status().message().find(std::to_string(bad)), std::string::npos);
  }
  Result<std::string> empty = Real().Decode({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

// Id of the single-byte token for `byte` in the real vocabulary (it has all bytes that can
// occur in UTF-8: not 0xC0, 0xC1, 0xF5..0xFF).
int32_t ByteToken(unsigned char byte) {
  for (int32_t id = 0; id < Real().vocab_size(); ++id) {
    if (!Real().IsSpecial(id) && Real().TokenBytes(id) == std::string(1, static_cast<char>(byte))) {
      return id;
    }
  }
  ADD_FAILURE() << "no token for byte " << int{byte};
  return 0;
}

std::string DecodeBytes(const std::vector<unsigned char>& bytes) {
  std::vector<int32_t> ids;
  for (unsigned char b : bytes) ids.push_back(ByteToken(b));
  Result<std::string> text = Real().Decode(ids);
  EXPECT_TRUE(text.ok());
  EXPECT_EQ(Stream(Real(), ids, false), *text);
  return *text;
}

TEST(Decode, InvalidUtf8BecomesReplacementCharactersLikeFromUtf8Lossy) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(DecodeBytes({0xF0, 0x9F, 0x98, 'x'}), r + "x");  // truncated 4-byte: one
  EXPECT_EQ(DecodeBytes({0xF0, 0x80, 0x80}), r + r + r);     // bad second byte
  EXPECT_EQ(DecodeBytes({0xED, 0xA0, 0x80}), r + r + r);     // surrogate
  EXPECT_EQ(DecodeBytes({0xE0, 0x80, 0xAF}), r + r + r);     // overlong
  EXPECT_EQ(DecodeBytes({0xE2, 0x82, 'A'}), r + "A");
  EXPECT_EQ(DecodeBytes({0x80, 'a', 0xBF}), r + "a" + r);           // lone continuations
  EXPECT_EQ(DecodeBytes({0xE2, 0x82, 0xAC}), "\xE2\x82\xAC");       // €
  EXPECT_EQ(DecodeBytes({0xF4, 0x90, 0x80, 0x80}), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(DecodeBytes({0xE2}), r);
}

TEST(StreamDecoder, NeverEmitsHalfACharacter) {
  for (const std::string text : {"emoji 🚀 in 🌟 text ✨", "日本語のテキスト",
                                 "family: 👨\u200d👩\u200d👧\u200d👦 flag: 🇺🇸", "👍"}) {
    SCOPED_TRACE(text);
    const std::vector<int32_t> ids = Real().Encode(text);
    // The test only means something if some token carries part of a character.
    bool split = false;
    for (int32_t id : ids) split = split || !IsValidUtf8(Real().TokenBytes(id));
    EXPECT_TRUE(split);
    std::vector<std::string> pieces;
    EXPECT_EQ(Stream(Real(), ids, true, &pieces), text);
    bool held_back = false;
    for (const std::string& piece : pieces) {
      EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos);
      held_back = held_back || piece.empty();
    }
    EXPECT_TRUE(held_back);
  }
}

TEST(StreamDecoder, FlushTurnsAnIncompleteTailIntoReplacement) {
  StreamDecoder decoder(Real());
  EXPECT_EQ(decoder.Push(*Real().TokenId("Hello")), "Hello");
  EXPECT_EQ(decoder.Push(ByteToken(0xE6)), "");
  EXPECT_EQ(decoder.Push(ByteToken(0x97)), "");
  EXPECT_EQ(decoder.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Flush(), "");
  // Invalid bytes are not held: they cannot become valid.
  EXPECT_EQ(decoder.Push(ByteToken(0x80)), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Push(ByteToken(0xE6)), "");
  EXPECT_EQ(decoder.Push(ByteToken('a')),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(decoder.Push(*Real().TokenId("<|im_end|>")), "");  // special, skipped
  StreamDecoder keep(Real(), /*skip_special=*/false);
  EXPECT_EQ(keep.Push(*Real().TokenId("<|im_end|>")), "<|im_end|>");
  EXPECT_EQ(keep.Push(-5), "");
}

// ---------------------------------------------------------------------------------------
// Encoding odds and ends.

TEST(Encode, EmptyAndInvalidUtf8Input) {
  EXPECT_TRUE(Real().Encode("").empty());
  // Invalid UTF-8 is repaired to U+FFFD first (HF only accepts valid strings).
  EXPECT_EQ(Real().Encode("a\xFF"
                          "b"),
            Real().Encode("a\xEF\xBF\xBD"
                          "b"));
  EXPECT_EQ(Real().Encode("\xE6\x97"), Real().Encode("\xEF\xBF\xBD"));
}

TEST(Encode, LongInputsRoundTrip) {
  std::string text;
  for (const json::value& c : HfCases()) text += std::string(c.at("text").as_string()) + "\n";
  std::string big;
  while (big.size() < 200000) big += text;
  big += std::string(100000, ' ') + "end" + std::string(50000, 'x') + std::string(3000, '9');
  const std::vector<int32_t> ids = Real().Encode(big);
  EXPECT_GT(ids.size(), 50000u);
  Result<std::string> decoded = Real().Decode(ids);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, big);
}

TEST(Encode, IsThreadSafe) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < HfCases().size(); ++i) {
          const json::object& c = HfCases()[(i + t * 31) % HfCases().size()].as_object();
          if (Real().Encode(std::string(c.at("text").as_string())) != IdsOf(c.at("ids"))) {
            ++failures[t];
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// ---------------------------------------------------------------------------------------
// (5) Loader errors name the file and the field.

void ExpectError(const std::string& json_text, ErrorCode code, const std::string& needle) {
  Result<Tokenizer> t = Tokenizer::FromJson(json_text, "my/tokenizer.json");
  ASSERT_FALSE(t.ok()) << needle;
  EXPECT_EQ(t.status().code(), code) << t.status().ToString();
  EXPECT_NE(t.status().message().find("my/tokenizer.json"), std::string::npos)
      << t.status().ToString();
  EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().ToString();
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(LoadErrors, InvalidJson) {
  ExpectError("{\"model\": ", ErrorCode::kInvalidArgument, "invalid JSON");
  ExpectError("[1, 2]", ErrorCode::kInvalidArgument, "object");
}

TEST(LoadErrors, MissingFile) {
  Result<Tokenizer> t = Tokenizer::FromFile(kDataDir + "/no/such/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no/such/tokenizer.json"), std::string::npos);
}

TEST(LoadErrors, ModelProblems) {
  const std::string good = SmallTokenizerJson(R"(["a b"])");
  ExpectError(R"({"version": "1.0", "decoder": {"type": "ByteLevel"}})",
              ErrorCode::kInvalidArgument, "model");
  ExpectError(Replace(good, R"("type": "BPE")", R"("type": "Unigram")"), ErrorCode::kUnimplemented,
              "model.type");
  ExpectError(Replace(good, R"("type": "BPE")", R"("type": "WordPiece")"),
              ErrorCode::kUnimplemented, "WordPiece");
  ExpectError(Replace(good, R"("dropout": null)", R"("dropout": 0.1)"), ErrorCode::kUnimplemented,
              "model.dropout");
  ExpectError(Replace(good, R"("byte_fallback": false)", R"("byte_fallback": true)"),
              ErrorCode::kUnimplemented, "model.byte_fallback");
  ExpectError(SmallTokenizerJson(R"(["a q"])"), ErrorCode::kInvalidArgument, "model.merges[0]");
  ExpectError(SmallTokenizerJson(R"(["a b", "c"])"), ErrorCode::kInvalidArgument,
              "model.merges[1]");
  ExpectError(SmallTokenizerJson(R"([["a"]])"), ErrorCode::kInvalidArgument, "model.merges[0]");
  ExpectError(SmallTokenizerJson(R"({"a b": 0})"), ErrorCode::kInvalidArgument, "model.merges");
  ExpectError(Replace(good, R"("a": 0)", R"("a": -4)"), ErrorCode::kInvalidArgument, "model.vocab");
  ExpectError(Replace(good, R"("unk_token": null)", R"("unk_token": "<unk>")"),
              ErrorCode::kInvalidArgument, "model.unk_token");
}

TEST(LoadErrors, UnsupportedPipelineParts) {
  const std::string good = SmallTokenizerJson(R"(["a b"])");
  ExpectError(Replace(good, R"("normalizer": null)", R"("normalizer": {"type": "NFC"})"),
              ErrorCode::kUnimplemented, "normalizer");
  ExpectError(SmallTokenizerJson("[]", R"({"type": "Metaspace", "replacement": "_"})"),
              ErrorCode::kUnimplemented, "pre_tokenizer.type");
  ExpectError(SmallTokenizerJson("[]", "null"), ErrorCode::kUnimplemented, "pre_tokenizer");
  ExpectError(SmallTokenizerJson("[]", R"({"type": "Sequence", "pretokenizers": [
                {"type": "ByteLevel"}, {"type": "Digits"}]})"),
              ErrorCode::kUnimplemented, "pre_tokenizer.pretokenizers[1].type");
  ExpectError(SmallTokenizerJson("[]", R"({"type": "Sequence", "pretokenizers": [
                {"type": "Digits"}]})"),
              ErrorCode::kUnimplemented, "pre_tokenizer");
  ExpectError(
      Replace(good, R"("decoder": {"type": "ByteLevel")", R"("decoder": {"type": "BPEDecoder")"),
      ErrorCode::kUnimplemented, "decoder");
  ExpectError(SmallTokenizerJson("[]", R"({"type": "ByteLevel"})",
                                 R"([{"id": 30, "content": "<m>", "lstrip": true}])"),
              ErrorCode::kUnimplemented, "added_tokens[0].lstrip");
  ExpectError(
      SmallTokenizerJson("[]", R"({"type": "ByteLevel"})", R"([{"id": 30, "content": ""}])"),
      ErrorCode::kInvalidArgument, "added_tokens[0].content");
  ExpectError(SmallTokenizerJson("[]", R"({"type": "ByteLevel"})",
                                 R"([{"id": 30, "content": "<m>"}, {"id": 30, "content": "<n>"}])"),
              ErrorCode::kInvalidArgument, "added_tokens[1].id");
}

}  // namespace
}  // namespace iris::tokenizer
