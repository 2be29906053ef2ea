// Splits chat template source into text and tag tokens, applying Jinja's whitespace control
// the way Hugging Face configures it (trim_blocks=True, lstrip_blocks=True, `-` and `+`
// modifiers), and tokenizes the expressions inside tags. Internal to the interpreter.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace iris::tokenizer::jinja {

enum class TokenKind {
  kText,        // literal template text, whitespace control already applied
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier or keyword
  kString,      // text holds the decoded value
  kInt,         // text holds the digits (underscores removed)
  kFloat,       // text holds the literal (underscores removed)
  kOperator,    // text holds the operator: "+", "//", "==", "(", ...
  kEnd,         // end of the template
};

struct Token {
  TokenKind kind;
  std::string text;
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes
};

// Tokenizes a whole template. Fails with InvalidArgument naming the line and column of an
// unclosed tag, comment or string, or of a character no expression can contain.
Result<std::vector<Token>> Lex(std::string_view source);

// InvalidArgument("chat template line L, column C: message"); column 0 leaves it out.
Status TemplateError(int line, int column, std::string_view message);

}  // namespace iris::tokenizer::jinja
