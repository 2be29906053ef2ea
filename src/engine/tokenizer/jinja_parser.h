// Parses chat template source into a syntax tree (jinja_ast.h). Internal to the interpreter.
#pragma once

#include <string_view>

#include "base/status.h"
#include "engine/tokenizer/jinja_ast.h"

namespace iris::tokenizer::jinja {

// Parses a whole template. Syntax errors, unknown filters or tests, and tags iris does not
// support (include, extends, call, ...) fail with InvalidArgument naming line and column.
Result<Body> ParseTemplate(std::string_view source);

}  // namespace iris::tokenizer::jinja
