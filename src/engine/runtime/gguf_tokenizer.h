// The tokenizer a GGUF file carries (tokenizer.ggml.*): its vocabulary, token types and merges
// become the tokenizer.json document Hugging Face would write for them, read by the same
// Tokenizer, so a GGUF model tokenizes exactly as its safetensors original.
#pragma once

#include <string>

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

}  // namespace iris::runtime
