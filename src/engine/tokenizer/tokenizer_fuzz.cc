// Fuzz harness: arbitrary bytes through Tokenizer::Encode with SmolVLM2's real tokenizer
// (tests/data/tokenizer/tokenizer.json, loaded once). Every id must be in the vocabulary;
// valid UTF-8 made of bytes the vocabulary has must decode back to itself; a StreamDecoder fed the
// ids one by one must give what Decode(ids, skip_special) gives. Seeds in
// tests/data/fuzz/tokenizer_corpus/; ctest fuzz_tokenizer, or libFuzzer with -DIRIS_BUILD_FUZZ=ON.
// IRIS_TOKENIZER_JSON overrides the tokenizer file.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "engine/tokenizer/tokenizer.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// The bytes whose ByteLevel character (GPT-2's bytes_to_unicode) is in the vocabulary. Like
// HF's BPE without an unk token, Encode drops the others (SmolLM2 has no token for some
// control bytes, e.g. 0x04, 0x13), so only texts made of these bytes round-trip.
std::array<bool, 256> KnownBytes(const iris::tokenizer::Tokenizer& tokenizer) {
  std::array<bool, 256> known{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    const uint32_t cp = printable ? b : next++;
    std::string ch;
    if (cp < 0x80) {
      ch.push_back(static_cast<char>(cp));
    } else {
      ch.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      ch.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
    known[b] = tokenizer.TokenId(ch).has_value();
  }
  return known;
}

const iris::tokenizer::Tokenizer& TheTokenizer() {
  static const iris::tokenizer::Tokenizer* const kTokenizer = [] {
    const std::string path =
        iris::GetEnv("IRIS_TOKENIZER_JSON")
            .value_or(std::string(IRIS_TEST_DATA_DIR) + "/tokenizer/tokenizer.json");
    auto t = iris::tokenizer::Tokenizer::FromFile(path);
    if (!t.ok()) {
      fprintf(stderr, "tokenizer_fuzz: %s\n", t.status().ToString().c_str());
      std::abort();
    }
    return new iris::tokenizer::Tokenizer(std::move(*t));
  }();
  return *kTokenizer;
}

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const iris::tokenizer::Tokenizer& tokenizer = TheTokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const std::array<bool, 256> kKnown = KnownBytes(tokenizer);
  bool known = true;
  for (unsigned char c : text) known = known && kKnown[c];
  const std::vector<int32_t> ids = tokenizer.Encode(text);
  if (size == 0) Check(ids.empty());
  if (size > 0 && known) Check(!ids.empty());
  for (int32_t id : ids) Check(id >= 0 && id < tokenizer.vocab_size());

  iris::Result<std::string> decoded = tokenizer.Decode(ids);
  Check(decoded.ok());
  if (known && IsUtf8(text)) Check(*decoded == text);

  iris::Result<std::string> visible = tokenizer.Decode(ids, /*skip_special=*/true);
  Check(visible.ok());
  iris::tokenizer::StreamDecoder stream(tokenizer, /*skip_special=*/true);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.Push(id);
  streamed += stream.Flush();
  Check(streamed == *visible);
  return 0;
}
