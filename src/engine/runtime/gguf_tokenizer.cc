#include "engine/runtime/gguf_tokenizer.h"

#include <boost/json.hpp>
#include <string_view>

#include "engine/model/gguf_checkpoint.h"

namespace iris::runtime {
namespace json = boost::json;

namespace {
// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

// The pre_tokenizer TokenizerJsonFromGguf writes for `pre` ("smollm", "gpt-2").
json::value PreTokenizerOf(const std::string& pre) {
  json::array steps;
  if (pre == "smollm") {
    steps.push_back(json::object{{"type", "Digits"}, {"individual_digits", true}});
  }
  steps.push_back(json::object{{"type", "ByteLevel"},
                               {"add_prefix_space", false},
                               {"trim_offsets", true},
                               {"use_regex", true}});
  return json::object{{"type", "Sequence"}, {"pretokenizers", std::move(steps)}};
}
}  // namespace

Result<std::string> TokenizerJsonFromGguf(const formats::GgufContents& c) {
  IRIS_ASSIGN_OR_RETURN(std::string model, c.String("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return Unimplemented(c.path + ": tokenizer.ggml.model '" + model +
                         "' (iris reads byte-level BPE, 'gpt2')");
  }
  std::string pre = "gpt-2";
  if (c.Has("tokenizer.ggml.pre")) {
    IRIS_ASSIGN_OR_RETURN(pre, c.String("tokenizer.ggml.pre"));
  }
  if (pre != "smollm" && pre != "gpt-2") {
    return Unimplemented(c.path + ": tokenizer.ggml.pre '" + pre +
                         "' (iris knows 'smollm' and 'gpt-2')");
  }
  IRIS_ASSIGN_OR_RETURN(const std::vector<std::string>* tokens, c.Strings("tokenizer.ggml.tokens"));
  const std::vector<double>* types = nullptr;
  if (c.Has("tokenizer.ggml.token_type")) {
    IRIS_ASSIGN_OR_RETURN(types, c.Numbers("tokenizer.ggml.token_type"));
    if (types->size() != tokens->size()) {
      return DataLoss(c.path + ": tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                      " entries for " + std::to_string(tokens->size()) + " tokens");
    }
  }
  IRIS_ASSIGN_OR_RETURN(const std::vector<std::string>* merges, c.Strings("tokenizer.ggml.merges"));
  json::object vocab;
  json::array added;
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& token = (*tokens)[id];
    const double raw_type = types ? (*types)[id] : kNormal;
    const int type = raw_type >= 0 && raw_type <= 16 ? static_cast<int>(raw_type) : -1;
    if (type == kUnused) continue;
    if (type != kNormal && type != kUnknown && type != kControl && type != kUserDefined &&
        type != kByte) {
      return DataLoss(c.path + ": tokenizer.ggml.token_type[" + std::to_string(id) + "] is " +
                      std::to_string(type) + ", not a llama.cpp token type");
    }
    if (!vocab.contains(token)) vocab[token] = id;
    if ((type == kControl || type == kUserDefined) && !token.empty()) {
      added.push_back(json::object{{"id", id},
                                   {"content", token},
                                   {"single_word", false},
                                   {"lstrip", false},
                                   {"rstrip", false},
                                   {"normalized", false},
                                   {"special", type == kControl}});
    }
  }
  json::array merge_list;
  merge_list.reserve(merges->size());
  for (const std::string& m : *merges) merge_list.emplace_back(m);
  json::object root{
      {"version", "1.0"},
      {"added_tokens", std::move(added)},
      {"normalizer", nullptr},
      {"pre_tokenizer", PreTokenizerOf(pre)},
      {"decoder", json::object{{"type", "ByteLevel"},
                               {"add_prefix_space", true},
                               {"trim_offsets", true},
                               {"use_regex", true}}},
      {"model", json::object{{"type", "BPE"},
                             {"dropout", nullptr},
                             {"unk_token", nullptr},
                             {"fuse_unk", false},
                             {"byte_fallback", false},
                             {"ignore_merges", false},
                             {"vocab", std::move(vocab)},
                             {"merges", std::move(merge_list)}}},
  };
  return json::serialize(root);
}

Result<tokenizer::Tokenizer> TokenizerFromGguf(const formats::GgufContents& c) {
  IRIS_ASSIGN_OR_RETURN(std::string text, TokenizerJsonFromGguf(c));
  return tokenizer::Tokenizer::FromJson(text, c.path + " (tokenizer.ggml.*)");
}

Result<std::vector<std::pair<std::string, formats::GgufValue>>> GgufTokenizerMetadata(
    const json::value& tokenizer_json, int vocab_size, const std::string& path) {
  const json::object* root = tokenizer_json.if_object();
  const json::object* model = nullptr;
  if (root != nullptr) {
    if (const json::value* m = root->if_contains("model")) model = m->if_object();
  }
  auto field = [](const json::object* o, const char* key) -> const json::value* {
    return o == nullptr ? nullptr : o->if_contains(key);
  };
  const json::value* type = field(model, "type");
  if (type == nullptr || !type->is_string() || type->get_string() != "BPE") {
    return Unimplemented(path + ": model.type is not \"BPE\" (a GGUF tokenizer is byte-level BPE)");
  }
  if (vocab_size < 1 || vocab_size > model::kMaxGgufVocab) {
    return InvalidArgument(path + ": a vocabulary of " + std::to_string(vocab_size) +
                           " ids (GGUF readers take 1.." + std::to_string(model::kMaxGgufVocab) +
                           ")");
  }
  // What the reader rebuilds is a plain byte-level BPE: anything that changes how text is
  // split or matched would be lost.
  for (const char* flag : {"byte_fallback", "fuse_unk", "ignore_merges"}) {
    const json::value* v = field(model, flag);
    if (v != nullptr && v->is_bool() && v->get_bool()) {
      return Unimplemented(path + ": model." + flag + " is true, which GGUF's byte-level BPE " +
                           "cannot carry");
    }
  }
  for (const char* key : {"unk_token", "continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::value* v = field(model, key);
    if (v != nullptr && !v->is_null() && !(v->is_string() && v->get_string().empty())) {
      return Unimplemented(path + ": model." + key + " is set, which GGUF's byte-level BPE " +
                           "cannot carry");
    }
  }
  const json::value* normalizer = field(root, "normalizer");
  if (normalizer != nullptr && !normalizer->is_null()) {
    return Unimplemented(path + ": the tokenizer has a normalizer, which GGUF cannot carry");
  }
  // The pre-tokenizer, compared with what the reader rebuilds for each name.
  const json::value* pre_json = field(root, "pre_tokenizer");
  std::string pre;
  for (const char* name : {"smollm", "gpt-2"}) {
    const json::value expected = PreTokenizerOf(name);
    const json::value bare = expected.at("pretokenizers").as_array().back();
    if (pre_json != nullptr &&
        (*pre_json == expected || (std::string(name) == "gpt-2" && *pre_json == bare))) {
      pre = name;
    }
  }
  if (pre.empty()) {
    return Unimplemented(path +
                         ": the pre_tokenizer is neither SmolVLM2's (digits, then byte-level) "
                         "nor GPT-2's (byte-level), so GGUF's tokenizer.ggml.pre cannot name it");
  }
  const json::value* vocab_json = field(model, "vocab");
  const json::value* merges_json = field(model, "merges");
  if (vocab_json == nullptr || !vocab_json->is_object() || merges_json == nullptr ||
      !merges_json->is_array()) {
    return InvalidArgument(path + ": model.vocab (an object) or model.merges (a list) is missing");
  }
  const size_t n = static_cast<size_t>(vocab_size);
  std::vector<std::string> tokens(n);
  std::vector<double> types(n, kUnused);
  std::vector<bool> have(n, false);
  auto place = [&](int64_t id, std::string token, int kind, const std::string& what) -> Status {
    if (id < 0 || id >= vocab_size) {
      return InvalidArgument(path + ": " + what + " has id " + std::to_string(id) +
                             ", outside the model's " + std::to_string(vocab_size) + " ids");
    }
    if (have[static_cast<size_t>(id)] && tokens[static_cast<size_t>(id)] != token) {
      return InvalidArgument(path + ": id " + std::to_string(id) + " is both '" +
                             tokens[static_cast<size_t>(id)] + "' and '" + token + "'");
    }
    tokens[static_cast<size_t>(id)] = std::move(token);
    types[static_cast<size_t>(id)] = kind;
    have[static_cast<size_t>(id)] = true;
    return OkStatus();
  };
  for (const auto& [token, id] : vocab_json->get_object()) {
    if (!id.is_int64()) return InvalidArgument(path + ": model.vocab values must be ids");
    IRIS_RETURN_IF_ERROR(place(id.get_int64(), std::string(token), kNormal,
                               "the token '" + std::string(token) + "'"));
  }
  if (const json::value* added = field(root, "added_tokens"); added != nullptr) {
    if (!added->is_array()) return InvalidArgument(path + ": added_tokens must be a list");
    for (const json::value& a : added->get_array()) {
      const json::value* id = a.is_object() ? a.get_object().if_contains("id") : nullptr;
      const json::value* content = a.is_object() ? a.get_object().if_contains("content") : nullptr;
      const json::value* special = a.is_object() ? a.get_object().if_contains("special") : nullptr;
      if (id == nullptr || !id->is_int64() || content == nullptr || !content->is_string()) {
        return InvalidArgument(path + ": an added token without an id or content");
      }
      const bool is_special = special != nullptr && special->is_bool() && special->get_bool();
      // The reader writes every added token as matched exactly where it stands.
      for (const char* flag : {"single_word", "lstrip", "rstrip", "normalized"}) {
        const json::value* v = a.get_object().if_contains(flag);
        if (v != nullptr && v->is_bool() && v->get_bool() &&
            (std::string_view(flag) != "normalized" || !is_special)) {
          return Unimplemented(path + ": the added token '" + std::string(content->get_string()) +
                               "' has " + flag + " set, which GGUF cannot carry");
        }
      }
      IRIS_RETURN_IF_ERROR(place(id->get_int64(), std::string(content->get_string()),
                                 is_special ? kControl : kUserDefined,
                                 "the added token '" + std::string(content->get_string()) + "'"));
    }
  }
  for (size_t id = 0; id < n; ++id) {
    if (!have[id]) tokens[id] = "[PAD" + std::to_string(id) + "]";
  }
  std::vector<std::string> merges;
  merges.reserve(merges_json->get_array().size());
  for (const json::value& m : merges_json->get_array()) {
    if (m.is_string()) {
      merges.emplace_back(m.get_string());
    } else if (m.is_array() && m.get_array().size() == 2 && m.get_array()[0].is_string() &&
               m.get_array()[1].is_string() &&
               m.get_array()[0].get_string().find(' ') == json::string::npos &&
               m.get_array()[1].get_string().find(' ') == json::string::npos) {
      merges.push_back(std::string(m.get_array()[0].get_string()) + " " +
                       std::string(m.get_array()[1].get_string()));
    } else {
      return InvalidArgument(path +
                             ": model.merges holds something other than a merge of two "
                             "tokens without spaces");
    }
  }
  std::vector<std::pair<std::string, formats::GgufValue>> out;
  out.emplace_back("tokenizer.ggml.model", formats::GgufString("gpt2"));
  out.emplace_back("tokenizer.ggml.pre", formats::GgufString(pre));
  out.emplace_back("tokenizer.ggml.tokens", formats::GgufStrings(std::move(tokens)));
  out.emplace_back("tokenizer.ggml.token_type",
                   formats::GgufNumbers(formats::GgufValueType::kI32, std::move(types)));
  out.emplace_back("tokenizer.ggml.merges", formats::GgufStrings(std::move(merges)));
  return out;
}

}  // namespace iris::runtime
