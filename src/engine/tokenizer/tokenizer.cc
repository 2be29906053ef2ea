// Byte-level BPE that reproduces Hugging Face `tokenizers` (Tokenizer::encode with
// add_special_tokens=false, Tokenizer::decode) for GPT-2-style tokenizer.json files.
// Mirrors tokenizers/src/{tokenizer/added_vocabulary.rs, pre_tokenizers/{digits,byte_level}.rs,
// models/bpe/{model,word}.rs}.
#include "engine/tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <limits>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include "base/json.h"
#include "base/utf8.h"

namespace iris::tokenizer {
namespace {

namespace json = boost::json;

// Ids beyond this are refused: the id -> token table is dense.
constexpr int64_t kMaxVocabSize = int64_t{1} << 22;
// Like HF's BPE cache: at most this many words, each at most this many bytes.
constexpr size_t kCacheCapacity = 10000;
constexpr size_t kMaxCachedWordBytes = 256;

// GPT-2's pre-tokenizer regex, as in tokenizers' ByteLevel.
constexpr std::string_view kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Decodes the code point at s[*i] (s is valid UTF-8) and advances *i.
uint32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *i;
  if (p[0] < 0x80) {
    *i += 1;
    return p[0];
  }
  if (p[0] < 0xE0) {
    *i += 2;
    return (uint32_t{p[0]} & 0x1F) << 6 | (p[1] & 0x3F);
  }
  if (p[0] < 0xF0) {
    *i += 3;
    return (uint32_t{p[0]} & 0x0F) << 12 | (uint32_t{p[1]} & 0x3F) << 6 | (p[2] & 0x3F);
  }
  *i += 4;
  return (uint32_t{p[0]} & 0x07) << 18 | (uint32_t{p[1]} & 0x3F) << 12 |
         (uint32_t{p[2]} & 0x3F) << 6 | (p[3] & 0x3F);
}

// ---------------------------------------------------------------------------------------
// GPT-2 bytes_to_unicode: printable bytes stand for themselves, the other 68 bytes for
// U+0100.. in byte order, so every byte has a visible, non-space character.

struct ByteUnicodeTables {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 512> cp_to_byte{};  // -1 where a code point stands for no byte

  ByteUnicodeTables() {
    cp_to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteUnicodeTables& ByteTables() {
  static const ByteUnicodeTables tables;
  return tables;
}

void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else {  // every byte-level code point is below U+0800
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string BytesToUnicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) AppendCodePoint(ByteTables().byte_to_cp[b], &out);
  return out;
}

// The bytes a vocabulary token stands for; a token with a character outside the byte-level
// alphabet is taken as its own UTF-8 (as HF's ByteLevel decoder does).
std::string UnicodeToBytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const uint32_t cp = NextCodePoint(token, &i);
    const int b = cp < 512 ? ByteTables().cp_to_byte[cp] : -1;
    if (b < 0) return std::string(token);
    out.push_back(static_cast<char>(b));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// PCRE2

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using RegexCode = std::unique_ptr<pcre2_code, CodeDeleter>;

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

Result<RegexCode> CompileRegex(std::string_view pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    std::array<PCRE2_UCHAR, 256> buffer{};
    pcre2_get_error_message(error, buffer.data(), buffer.size());
    return Internal("cannot compile regex '" + std::string(pattern) + "' at " +
                    std::to_string(offset) + ": " + reinterpret_cast<const char*>(buffer.data()));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: the interpreter is the fallback
  return RegexCode(code);
}

// Splits `text` (valid UTF-8) into the matches of `code` and the gaps between them, in order,
// dropping empty pieces (SplitDelimiterBehavior::Isolated).
template <typename Fn>
void SplitIsolated(const pcre2_code* code, pcre2_match_data* match, std::string_view text,
                   Fn&& emit) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t gap_start = 0;
  size_t offset = 0;
  while (offset < text.size()) {
    int rc = pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      // A JIT resource limit: retry with the interpreter, which backtracks on the heap.
      rc = pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match,
                       nullptr);
    }
    if (rc < 0) break;  // no further match (or still failing): the rest is one gap
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const size_t begin = ovector[0];
    size_t end = ovector[1];
    if (begin > gap_start) emit(text.substr(gap_start, begin - gap_start));
    if (end > begin) {
      emit(text.substr(begin, end - begin));
    } else {
      // An empty match (not possible with our patterns): step over one character.
      size_t next = end;
      if (next < text.size()) NextCodePoint(text, &next);
      end = next;
      if (end > begin) emit(text.substr(begin, end - begin));
    }
    gap_start = end;
    offset = end;
  }
  if (gap_start < text.size()) emit(text.substr(gap_start));
}

// ---------------------------------------------------------------------------------------
// Added tokens: a byte trie answering "longest token starting here".

class TokenTrie {
 public:
  TokenTrie() : nodes_(1) {}

  void Insert(std::string_view content, int32_t id) {
    size_t node = 0;
    for (unsigned char c : content) {
      size_t child = Child(node, c);
      if (child == 0) {
        child = nodes_.size();
        nodes_[node].children.emplace_back(c, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[node].id = id;
    first_byte_[static_cast<unsigned char>(content[0])] = true;
    empty_ = false;
  }

  bool empty() const { return empty_; }

  // Longest token that is a prefix of `text`: {length, id}, or {0, -1}.
  std::pair<size_t, int32_t> LongestPrefix(std::string_view text) const {
    std::pair<size_t, int32_t> best{0, -1};
    if (text.empty() || !first_byte_[static_cast<unsigned char>(text[0])]) return best;
    size_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      node = Child(node, static_cast<unsigned char>(text[i]));
      if (node == 0) break;
      if (nodes_[node].id >= 0) best = {i + 1, nodes_[node].id};
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, size_t>> children;
    int32_t id = -1;
  };

  size_t Child(size_t node, unsigned char c) const {
    for (const auto& [byte, child] : nodes_[node].children) {
      if (byte == c) return child;
    }
    return 0;
  }

  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
  bool empty_ = true;
};

// A piece of the input: an added token (id >= 0) or text for the pre-tokenizer (id < 0).
struct Segment {
  std::string_view text;
  int32_t id;
};

// Leftmost-longest, non-overlapping matches of the trie's tokens (aho-corasick
// MatchKind::LeftmostLongest in HF).
void SplitOnAddedTokens(const TokenTrie& trie, std::string_view text, std::vector<Segment>* out) {
  if (trie.empty()) {
    out->push_back({text, -1});
    return;
  }
  size_t gap_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto [len, id] = trie.LongestPrefix(text.substr(i));
    if (len == 0) {
      ++i;
      continue;
    }
    if (i > gap_start) out->push_back({text.substr(gap_start, i - gap_start), -1});
    out->push_back({text.substr(i, len), id});
    i += len;
    gap_start = i;
  }
  if (gap_start < text.size()) out->push_back({text.substr(gap_start), -1});
}

// ---------------------------------------------------------------------------------------
// JSON helpers: every error names the file and the field.

Status FieldError(ErrorCode code, std::string_view what, std::string_view field,
                  std::string_view problem) {
  return Status(code, std::string(what) + ": " + std::string(field) + ": " + std::string(problem));
}

Status BadField(std::string_view what, std::string_view field, std::string_view problem) {
  return FieldError(ErrorCode::kInvalidArgument, what, field, problem);
}

Status Unsupported(std::string_view what, std::string_view field, std::string_view problem) {
  return FieldError(ErrorCode::kUnimplemented, what, field, problem);
}

// The field, or nullptr when absent or null.
const json::value* Find(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

Result<bool> GetBool(const json::object& object, std::string_view key, bool default_value,
                     std::string_view what, std::string_view field) {
  const json::value* v = Find(object, key);
  if (v == nullptr) return default_value;
  if (!v->is_bool()) return BadField(what, field, "expected true or false");
  return v->get_bool();
}

std::optional<int64_t> AsInt(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= uint64_t{std::numeric_limits<int64_t>::max()}) {
    return static_cast<int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

std::string TypeOf(const json::object& object) {
  const json::value* type = Find(object, "type");
  if (type == nullptr) return "(no type)";
  if (!type->is_string()) return "(non-string type)";
  return std::string(type->get_string());
}

}  // namespace

// ---------------------------------------------------------------------------------------

struct Tokenizer::Impl {
  enum class Kind : uint8_t { kNone, kVocab, kAdded, kSpecial };
  struct MergeInfo {
    int32_t rank;
    int32_t new_id;
  };

  // Model.
  std::unordered_map<std::string, int32_t> vocab;  // byte-level token string -> id
  std::unordered_map<uint64_t, MergeInfo> merges;  // (left id, right id) -> rank, result
  std::array<int32_t, 256> byte_ids{};             // id of each single-byte token, or -1
  int32_t unk_id = -1;
  bool fuse_unk = false;
  bool ignore_merges = false;

  // Added tokens.
  std::unordered_map<std::string, int32_t> added;  // content -> id
  TokenTrie raw_trie;                              // normalized=false tokens
  TokenTrie normalized_trie;                       // normalized=true tokens

  // Pre-tokenizer.
  bool has_digits_step = false;
  bool individual_digits = false;
  bool add_prefix_space = false;
  bool use_regex = true;
  RegexCode digits_regex;
  RegexCode byte_level_regex;

  // Decoding, indexed by id.
  std::vector<std::string> id_bytes;  // [vocab_size]
  std::vector<Kind> id_kind;          // [vocab_size]

  // Word -> ids cache shared by all threads.
  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  static uint64_t PairKey(int32_t left, int32_t right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }

  Status Load(const json::value& root, std::string_view what);
  Status LoadModel(const json::object& model, std::string_view what);
  Status LoadPreTokenizer(const json::value* pre, std::string_view what);
  Status LoadAddedTokens(const json::value* tokens, std::string_view what);

  // `digits_match` and `word_match` are scratch match data for the two regexes.
  void EncodeText(std::string_view text, pcre2_match_data* digits_match,
                  pcre2_match_data* word_match, std::vector<int32_t>* ids) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;
  std::vector<int32_t> BytePairEncode(std::string_view word) const;
};

Status Tokenizer::Impl::Load(const json::value& root_value, std::string_view what) {
  if (!root_value.is_object()) return InvalidArgument(std::string(what) + ": not a JSON object");
  const json::object& root = root_value.get_object();

  const json::value* model = Find(root, "model");
  if (model == nullptr) return BadField(what, "model", "missing");
  if (!model->is_object()) return BadField(what, "model", "expected an object");
  IRIS_RETURN_IF_ERROR(LoadModel(model->get_object(), what));

  if (const json::value* normalizer = Find(root, "normalizer")) {
    const std::string type = normalizer->is_object() ? TypeOf(normalizer->get_object()) : "?";
    return Unsupported(what, "normalizer", "type " + type + " is not supported (only null)");
  }
  IRIS_RETURN_IF_ERROR(LoadPreTokenizer(Find(root, "pre_tokenizer"), what));

  const json::value* decoder = Find(root, "decoder");
  if (decoder == nullptr) return Unsupported(what, "decoder", "missing (only ByteLevel)");
  if (!decoder->is_object() || TypeOf(decoder->get_object()) != "ByteLevel") {
    const std::string type = decoder->is_object() ? TypeOf(decoder->get_object()) : "?";
    return Unsupported(what, "decoder.type", type + " is not supported (only ByteLevel)");
  }
  // post_processor, truncation and padding do not change the ids of encode(text,
  // add_special_tokens=false) for a single sequence, which is all Encode does.

  IRIS_RETURN_IF_ERROR(LoadAddedTokens(Find(root, "added_tokens"), what));

  int32_t byte_level_tokens = 0;
  for (int b = 0; b < 256; ++b) {
    std::string key;
    AppendCodePoint(ByteTables().byte_to_cp[b], &key);
    auto it = vocab.find(key);
    byte_ids[b] = it == vocab.end() ? -1 : it->second;
    byte_level_tokens += it != vocab.end();
  }
  if (byte_level_tokens == 0 && !vocab.empty()) {
    return Unsupported(what, "model.vocab",
                       "has none of the 256 byte-level tokens (not a byte-level BPE)");
  }

  IRIS_ASSIGN_OR_RETURN(byte_level_regex, CompileRegex(kByteLevelPattern));
  IRIS_ASSIGN_OR_RETURN(digits_regex, CompileRegex(individual_digits ? R"(\p{N})" : R"(\p{N}+)"));
  return OkStatus();
}

Status Tokenizer::Impl::LoadModel(const json::object& model, std::string_view what) {
  const json::value* type = Find(model, "type");
  if (type != nullptr && !type->is_string()) return BadField(what, "model.type", "not a string");
  if (type != nullptr && type->get_string() != "BPE") {
    return Unsupported(what, "model.type",
                       std::string(type->get_string()) + " is not supported (only BPE)");
  }
  if (type == nullptr && Find(model, "merges") == nullptr) {
    return Unsupported(what, "model.type", "missing and the model has no merges (only BPE)");
  }

  if (const json::value* dropout = Find(model, "dropout")) {
    if (!dropout->is_number() || dropout->to_number<double>() != 0.0) {
      return Unsupported(what, "model.dropout", "only null is supported");
    }
  }
  for (std::string_view key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::value* v = Find(model, key);
    if (v != nullptr && !(v->is_string() && v->get_string().empty())) {
      return Unsupported(what, "model." + std::string(key), "only null is supported");
    }
  }
  IRIS_ASSIGN_OR_RETURN(bool byte_fallback,
                        GetBool(model, "byte_fallback", false, what, "model.byte_fallback"));
  if (byte_fallback) return Unsupported(what, "model.byte_fallback", "only false is supported");
  IRIS_ASSIGN_OR_RETURN(fuse_unk, GetBool(model, "fuse_unk", false, what, "model.fuse_unk"));
  IRIS_ASSIGN_OR_RETURN(ignore_merges,
                        GetBool(model, "ignore_merges", false, what, "model.ignore_merges"));

  const json::value* vocab_value = Find(model, "vocab");
  if (vocab_value == nullptr) return BadField(what, "model.vocab", "missing");
  if (!vocab_value->is_object()) return BadField(what, "model.vocab", "expected an object");
  const json::object& vocab_object = vocab_value->get_object();
  vocab.reserve(vocab_object.size());
  int64_t max_id = -1;
  for (const auto& [key, id_value] : vocab_object) {
    const std::optional<int64_t> id = AsInt(id_value);
    if (!id || *id < 0 || *id >= kMaxVocabSize) {
      return BadField(what, "model.vocab[\"" + std::string(key) + "\"]",
                      "expected an id in [0, " + std::to_string(kMaxVocabSize) + ")");
    }
    vocab[std::string(key)] = static_cast<int32_t>(*id);
    max_id = std::max(max_id, *id);
  }
  id_bytes.resize(static_cast<size_t>(max_id + 1));
  id_kind.resize(static_cast<size_t>(max_id + 1), Kind::kNone);
  for (const auto& [token, id] : vocab) {
    id_bytes[id] = UnicodeToBytes(token);
    id_kind[id] = Kind::kVocab;
  }

  if (const json::value* unk = Find(model, "unk_token")) {
    if (!unk->is_string()) return BadField(what, "model.unk_token", "expected a string");
    auto it = vocab.find(std::string(unk->get_string()));
    if (it == vocab.end()) return BadField(what, "model.unk_token", "not in model.vocab");
    unk_id = it->second;
  }

  const json::value* merges_value = Find(model, "merges");
  if (merges_value == nullptr) return BadField(what, "model.merges", "missing");
  if (!merges_value->is_array()) return BadField(what, "model.merges", "expected an array");
  const json::array& merge_list = merges_value->get_array();
  merges.reserve(merge_list.size());
  for (size_t rank = 0; rank < merge_list.size(); ++rank) {
    const std::string field = "model.merges[" + std::to_string(rank) + "]";
    const json::value& entry = merge_list[rank];
    std::string_view left;
    std::string_view right;
    if (entry.is_string()) {  // "a b"
      const std::string_view line = entry.get_string();
      const size_t space = line.find(' ');
      if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
        return BadField(what, field, "expected \"left right\"");
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (entry.is_array() && entry.get_array().size() == 2 &&
               entry.get_array()[0].is_string() && entry.get_array()[1].is_string()) {
      left = entry.get_array()[0].get_string();  // ["a", "b"]
      right = entry.get_array()[1].get_string();
    } else {
      return BadField(what, field, "expected \"left right\" or [\"left\", \"right\"]");
    }
    auto left_it = vocab.find(std::string(left));
    auto right_it = vocab.find(std::string(right));
    auto merged_it = vocab.find(std::string(left) + std::string(right));
    if (left_it == vocab.end() || right_it == vocab.end() || merged_it == vocab.end()) {
      return BadField(what, field, "a token of this merge or its result is not in model.vocab");
    }
    // As HF's HashMap collect: a repeated pair keeps its last rank.
    merges[PairKey(left_it->second, right_it->second)] = {static_cast<int32_t>(rank),
                                                          merged_it->second};
  }
  return OkStatus();
}

Status Tokenizer::Impl::LoadPreTokenizer(const json::value* pre, std::string_view what) {
  constexpr std::string_view kSupported =
      "supported: ByteLevel, or Sequence[Digits, ByteLevel] / Sequence[ByteLevel]";
  if (pre == nullptr)
    return Unsupported(what, "pre_tokenizer", "missing (" + std::string(kSupported) + ")");
  if (!pre->is_object()) return BadField(what, "pre_tokenizer", "expected an object");

  std::vector<std::pair<const json::object*, std::string>> steps;  // step, field name
  const std::string type = TypeOf(pre->get_object());
  if (type == "Sequence") {
    const json::value* list = Find(pre->get_object(), "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return BadField(what, "pre_tokenizer.pretokenizers", "expected an array");
    }
    for (size_t i = 0; i < list->get_array().size(); ++i) {
      const json::value& step = list->get_array()[i];
      const std::string field = "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]";
      if (!step.is_object()) return BadField(what, field, "expected an object");
      steps.emplace_back(&step.get_object(), field);
    }
  } else {
    steps.emplace_back(&pre->get_object(), "pre_tokenizer");
  }

  bool seen_digits = false;
  bool seen_byte_level = false;
  for (const auto& [step, field] : steps) {
    const std::string step_type = TypeOf(*step);
    if (step_type == "Digits" && !seen_digits && !seen_byte_level) {
      seen_digits = true;
      IRIS_ASSIGN_OR_RETURN(individual_digits, GetBool(*step, "individual_digits", false, what,
                                                       field + ".individual_digits"));
      // Digits splits with \p{N} (one char each) or \p{N}+ (runs); see Load.
    } else if (step_type == "ByteLevel" && !seen_byte_level) {
      seen_byte_level = true;
      IRIS_ASSIGN_OR_RETURN(add_prefix_space, GetBool(*step, "add_prefix_space", true, what,
                                                      field + ".add_prefix_space"));
      IRIS_ASSIGN_OR_RETURN(use_regex,
                            GetBool(*step, "use_regex", true, what, field + ".use_regex"));
    } else {
      return Unsupported(what, field + ".type",
                         step_type + " is not supported here (" + std::string(kSupported) + ")");
    }
  }
  if (!seen_byte_level) {
    return Unsupported(what, "pre_tokenizer",
                       "has no ByteLevel step (" + std::string(kSupported) + ")");
  }
  has_digits_step = seen_digits;
  return OkStatus();
}

Status Tokenizer::Impl::LoadAddedTokens(const json::value* tokens, std::string_view what) {
  if (tokens == nullptr) return OkStatus();
  if (!tokens->is_array()) return BadField(what, "added_tokens", "expected an array");
  for (size_t i = 0; i < tokens->get_array().size(); ++i) {
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    const json::value& entry = tokens->get_array()[i];
    if (!entry.is_object()) return BadField(what, field, "expected an object");
    const json::object& token = entry.get_object();
    const json::value* id_value = Find(token, "id");
    const std::optional<int64_t> id = id_value ? AsInt(*id_value) : std::nullopt;
    if (!id || *id < 0 || *id >= kMaxVocabSize) {
      return BadField(what, field + ".id",
                      "expected an id in [0, " + std::to_string(kMaxVocabSize) + ")");
    }
    const json::value* content = Find(token, "content");
    if (content == nullptr || !content->is_string() || content->get_string().empty()) {
      return BadField(what, field + ".content", "expected a non-empty string");
    }
    IRIS_ASSIGN_OR_RETURN(bool special, GetBool(token, "special", false, what, field + ".special"));
    IRIS_ASSIGN_OR_RETURN(bool normalized,
                          GetBool(token, "normalized", !special, what, field + ".normalized"));
    for (std::string_view flag : {"single_word", "lstrip", "rstrip"}) {
      IRIS_ASSIGN_OR_RETURN(bool on,
                            GetBool(token, flag, false, what, field + "." + std::string(flag)));
      if (on) return Unsupported(what, field + "." + std::string(flag), "only false is supported");
    }

    const std::string text(content->get_string());
    const auto index = static_cast<size_t>(*id);
    if (index < id_kind.size() &&
        (id_kind[index] == Kind::kAdded || id_kind[index] == Kind::kSpecial)) {
      return BadField(what, field + ".id", "id " + std::to_string(*id) + " is used twice");
    }
    if (index >= id_kind.size()) {
      id_bytes.resize(index + 1);
      id_kind.resize(index + 1, Kind::kNone);
    }
    id_bytes[index] = text;
    id_kind[index] = special ? Kind::kSpecial : Kind::kAdded;
    added[text] = static_cast<int32_t>(*id);
    // No normalizer is supported, so normalized tokens match the raw text too; HF still
    // looks for them only in the text left over by the non-normalized ones.
    (normalized ? normalized_trie : raw_trie).Insert(text, static_cast<int32_t>(*id));
  }
  return OkStatus();
}

void Tokenizer::Impl::EncodeText(std::string_view text, pcre2_match_data* digits_match,
                                 pcre2_match_data* word_match, std::vector<int32_t>* ids) const {
  // ByteLevel: optional prefix space, then the GPT-2 regex, on each piece from Digits.
  auto byte_level = [&](std::string_view piece) {
    std::string prefixed;
    if (add_prefix_space && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(piece);
      piece = prefixed;
    }
    if (!use_regex) {
      EncodeWord(piece, ids);
      return;
    }
    SplitIsolated(byte_level_regex.get(), word_match, piece,
                  [&](std::string_view word) { EncodeWord(word, ids); });
  };
  if (!has_digits_step) {
    byte_level(text);
    return;
  }
  SplitIsolated(digits_regex.get(), digits_match, text, byte_level);
}

void Tokenizer::Impl::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex);
    auto it = cache.find(std::string(word));
    if (it != cache.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids = BytePairEncode(word);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  if (cacheable) {
    std::unique_lock lock(cache_mutex);
    if (cache.size() < kCacheCapacity) cache.emplace(std::string(word), std::move(word_ids));
  }
}

// BPE as in tokenizers' Word::merge_all: repeatedly merge the adjacent pair with the lowest
// rank (leftmost first on ties), using a heap with lazily discarded stale entries.
std::vector<int32_t> Tokenizer::Impl::BytePairEncode(std::string_view word) const {
  if (ignore_merges) {
    auto it = vocab.find(BytesToUnicode(word));
    if (it != vocab.end()) return {it->second};
  }
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (unsigned char b : word) {
    int32_t id = byte_ids[b];
    if (id < 0) {
      if (unk_id < 0) continue;  // no unk token: the byte is dropped, as in HF
      if (fuse_unk && !symbols.empty() && symbols.back().id == unk_id) continue;
      id = unk_id;
    }
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return {};
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push_pair = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    auto it = merges.find(PairKey(symbols[pos].id, symbols[next].id));
    if (it != merges.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) push_pair(pos);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Stale entry: the pair at this position changed since it was queued.
    auto it = merges.find(PairKey(left.id, right.id));
    if (it == merges.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }

  std::vector<int32_t> ids;
  for (int32_t pos = 0; pos >= 0; pos = symbols[pos].next) ids.push_back(symbols[pos].id);
  return ids;
}

// ---------------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ReadJsonFile(path));
  auto impl = std::make_unique<Impl>();
  IRIS_RETURN_IF_ERROR(impl->Load(root, path));
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::FromJson(std::string_view json_text, std::string_view what) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(json_text, what));
  auto impl = std::make_unique<Impl>();
  IRIS_RETURN_IF_ERROR(impl->Load(root, what));
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  // HF only sees valid UTF-8 (a Rust &str); other input is repaired the lossy way first.
  std::string repaired;
  if (!IsValidUtf8(text)) {
    AppendLossyUtf8(text, /*hold_truncated_tail=*/false, &repaired);
    text = repaired;
  }
  std::vector<Segment> segments;
  SplitOnAddedTokens(impl_->raw_trie, text, &segments);
  if (!impl_->normalized_trie.empty()) {
    std::vector<Segment> refined;
    for (const Segment& segment : segments) {
      if (segment.id >= 0) {
        refined.push_back(segment);
      } else {
        SplitOnAddedTokens(impl_->normalized_trie, segment.text, &refined);
      }
    }
    segments = std::move(refined);
  }

  MatchData digits_match(pcre2_match_data_create_from_pattern(impl_->digits_regex.get(), nullptr));
  MatchData word_match(
      pcre2_match_data_create_from_pattern(impl_->byte_level_regex.get(), nullptr));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (const Segment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else if (!segment.text.empty()) {
      impl_->EncodeText(segment.text, digits_match.get(), word_match.get(), &ids);
    }
  }
  return ids;
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || impl_->id_kind[id] == Impl::Kind::kNone) {
      return InvalidArgument("token id " + std::to_string(id) +
                             " is outside the vocabulary (size " + std::to_string(vocab_size()) +
                             ")");
    }
    if (skip_special && impl_->id_kind[id] == Impl::Kind::kSpecial) continue;
    bytes += impl_->id_bytes[id];
  }
  std::string text;
  text.reserve(bytes.size());
  AppendLossyUtf8(bytes, /*hold_truncated_tail=*/false, &text);
  return text;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_kind.size()); }

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  const std::string key(token);
  if (auto it = impl_->added.find(key); it != impl_->added.end()) return it->second;
  if (auto it = impl_->vocab.find(key); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->id_bytes[id];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->id_kind[id] == Impl::Kind::kSpecial;
}

// ---------------------------------------------------------------------------------------

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::Push(int32_t id) {
  if (skip_special_ && tokenizer_.IsSpecial(id)) return {};
  pending_ += tokenizer_.TokenBytes(id);
  std::string text;
  const size_t consumed = AppendLossyUtf8(pending_, /*hold_truncated_tail=*/true, &text);
  pending_.erase(0, consumed);
  return text;
}

std::string StreamDecoder::Flush() {
  std::string text;
  AppendLossyUtf8(pending_, /*hold_truncated_tail=*/false, &text);
  pending_.clear();
  return text;
}

}  // namespace iris::tokenizer
