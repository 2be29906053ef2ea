// Byte-level BPE tokenizer read from a Hugging Face `tokenizers` tokenizer.json
// (the SmolLM2/SmolVLM2 kind): added tokens first, Digits + ByteLevel pre-tokenizer with
// the GPT-2 regex, BPE merges by rank, ByteLevel decoder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace iris::tokenizer {

class Tokenizer {
 public:
  // Loads tokenizer.json. Errors name the file and what is wrong with it.
  static Result<Tokenizer> FromFile(const std::string& path);
  // Parses tokenizer.json content; `what` names it in error messages.
  static Result<Tokenizer> FromJson(std::string_view json, std::string_view what);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes text as HF tokenizers does with add_special_tokens=false: added/special token
  // strings in the text map to their ids. Thread-safe (words are cached behind a shared
  // mutex). Invalid UTF-8 in `text` is first replaced by U+FFFD, as HF only takes valid text.
  std::vector<int32_t> Encode(std::string_view text) const;

  // Decodes ids back to text (ByteLevel decoder; invalid UTF-8 becomes U+FFFD as in HF).
  // skip_special drops special tokens. An id outside the vocabulary is an error.
  Result<std::string> Decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Number of ids (base vocabulary + added tokens; max id + 1).
  int32_t vocab_size() const;
  // Id of an exact token string (vocabulary or added token), if any.
  std::optional<int32_t> TokenId(std::string_view token) const;
  // Raw bytes a token stands for (byte-level decoded; added tokens as their content).
  // Empty for an id outside the vocabulary.
  std::string TokenBytes(int32_t id) const;
  // True for added tokens marked special in tokenizer.json.
  bool IsSpecial(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text that is safe to print as it arrives: bytes of a
// UTF-8 character split across tokens are held back until the character is complete.
// Push outputs followed by Flush concatenate to Decode(ids, skip_special). Keeps a reference
// to `tokenizer`, which must outlive it; ids outside the vocabulary add nothing.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  // Returns the text that became complete with this token (may be empty).
  std::string Push(int32_t id);
  // Returns whatever is held back (an incomplete character becomes U+FFFD).
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace iris::tokenizer
