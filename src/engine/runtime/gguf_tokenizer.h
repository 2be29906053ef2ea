// The tokenizer a GGUF file carries (tokenizer.ggml.*): its vocabulary, token types and merges
// become the tokenizer.json document Hugging Face would write for them, read by the same
// Tokenizer, so a GGUF model tokenizes exactly as its safetensors original.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/formats/gguf.h"
#include "engine/tokenizer/tokenizer.h"

namespace iris::runtime {

// The tokenizer.json equivalent of the file's tokenizer: model "gpt2" (byte-level BPE) with
// pre-tokenizer "smollm" (digits one by one, then byte-level) or "gpt-2" (byte-level); CONTROL
// tokens become special added tokens, USER_DEFINED ones plain added tokens, UNUSED ones are
// left out. Anything else is Unimplemented naming the key.
Result<std::string> TokenizerJsonFromGguf(const formats::GgufContents& gguf);
Result<tokenizer::Tokenizer> TokenizerFromGguf(const formats::GgufContents& gguf);

// The other way: the tokenizer.ggml.* metadata of a tokenizer.json (`path` labels errors), for
// a model of `vocab_size` ids. Every id gets a token: the vocabulary's, an added token's
// (special → CONTROL, other → USER_DEFINED), or "[PADn]" (UNUSED) for ids the tokenizer lacks,
// as llama.cpp's converter writes them. Only what TokenizerJsonFromGguf reads back to the same
// tokenizer is written: a byte-level BPE without normalizer or byte fallback whose
// pre-tokenizer is SmolVLM2's ("smollm") or GPT-2's; anything else is Unimplemented naming
// what differs.
Result<std::vector<std::pair<std::string, formats::GgufValue>>> GgufTokenizerMetadata(
    const boost::json::value& tokenizer_json, int vocab_size, const std::string& path);

}  // namespace iris::runtime
