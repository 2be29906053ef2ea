#include "engine/runtime/gguf_tokenizer.h"

#include <boost/json.hpp>

namespace iris::runtime {
namespace json = boost::json;

namespace {
// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;
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
  json::array steps;
  if (pre == "smollm") {
    steps.push_back(json::object{{"type", "Digits"}, {"individual_digits", true}});
  } else if (pre != "gpt-2") {
    return Unimplemented(c.path + ": tokenizer.ggml.pre '" + pre +
                         "' (iris knows 'smollm' and 'gpt-2')");
  }
  steps.push_back(json::object{{"type", "ByteLevel"},
                               {"add_prefix_space", false},
                               {"trim_offsets", true},
                               {"use_regex", true}});
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
      {"pre_tokenizer", json::object{{"type", "Sequence"}, {"pretokenizers", std::move(steps)}}},
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

}  // namespace iris::runtime
