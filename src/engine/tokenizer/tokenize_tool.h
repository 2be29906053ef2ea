// `iris tokenize`: encodes text to token ids or decodes ids to text with a tokenizer.json, so
// that scripts can compare iris's tokenizer with Hugging Face's byte for byte.
#pragma once

#include <iosfwd>
#include <string>

namespace iris::tokenizer {

// Loads the tokenizer at `tokenizer_path`. Without `decode`, reads all of `in` exactly as
// given (a trailing newline is text too), encodes it (add_special_tokens=false) and writes
// the ids to `out` as a compact JSON array and a newline. With `decode`, reads a JSON array
// of ids from `in` and writes the decoded text (special tokens kept, no newline added).
// Returns 0; on any error writes one line "iris tokenize: <message>" to `err` and returns 1.
int RunTokenizeTool(const std::string& tokenizer_path, bool decode, std::istream& in,
                    std::ostream& out, std::ostream& err);

}  // namespace iris::tokenizer
