// Evaluates a parsed chat template. Internal to the interpreter.
#pragma once

#include <boost/json.hpp>
#include <string>

#include "base/status.h"
#include "engine/tokenizer/jinja_ast.h"

namespace iris::tokenizer::jinja {

// Renders `body` with the members of `context` as global variables. All state lives in the
// call, so concurrent renders of one template are safe. Errors are InvalidArgument naming the
// template line (raise_exception's message included), or ResourceExhausted for runaway
// templates.
Result<std::string> RenderTemplate(const Body& body, const boost::json::object& context);

}  // namespace iris::tokenizer::jinja
