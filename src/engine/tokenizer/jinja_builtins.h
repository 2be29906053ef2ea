// What chat templates call: Python's operators on values, Jinja's filters and tests, str and
// dict methods, and the global functions Hugging Face exposes (range, namespace,
// raise_exception, strftime_now). Errors carry no line; the renderer adds it.
// Internal to the interpreter.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/tokenizer/jinja_value.h"

namespace iris::tokenizer::jinja {

// The evaluated arguments of a call, filter or test (a filter's input is not among them).
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at `index` or named `name`; null when the caller gave neither.
  const Value* Get(size_t index, std::string_view name) const;
};

bool IsKnownFilter(std::string_view name);
bool IsKnownTest(std::string_view name);
// range, namespace, dict, strftime_now, raise_exception.
bool IsGlobalFunction(std::string_view name);

Result<Value> ApplyFilter(std::string_view name, const Value& input, const Args& args);
Result<bool> ApplyTest(std::string_view name, const Value& input, const Args& args);
// `object.name(args)` for str and dict methods (strip, split, startswith, get, items, ...).
Result<Value> CallMethod(const Value& object, std::string_view name, const Args& args);
// A global function other than raise_exception, which the renderer handles.
Result<Value> CallGlobal(std::string_view name, const Args& args);

// Lenient lookups, as in Jinja: a missing key, attribute or index gives Undefined.
Value GetAttribute(const Value& object, std::string_view name);
Value GetItem(const Value& object, const Value& key);
// object[start:stop:step] on a list or string; each bound may be None/Undefined.
Result<Value> Slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// + - * / // % ** ~ with Python's semantics (int overflow is an error, not a bigint).
Result<Value> BinaryOp(std::string_view op, const Value& a, const Value& b);
// == != < > <= >= in, "not in".
Result<bool> Compare(std::string_view op, const Value& a, const Value& b);
// The items a for loop visits: a list's items, a dict's keys, a string's characters;
// Undefined gives none.
Result<ValueList> Iterate(const Value& v);

}  // namespace iris::tokenizer::jinja
