// The values a chat template computes with: Python's types as Jinja sees them (None, bool,
// int, float, str, list, dict), plus Jinja's Undefined, namespace() objects and callables.
// Internal to the chat template interpreter.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/status.h"

namespace iris::tokenizer::jinja {

struct MacroStmt;  // jinja_ast.h
class Value;

using ValueList = std::vector<Value>;

// A dict with string keys in insertion order, like Python's dict. Lookups are linear: the
// dicts of a chat (messages, tool calls) have a handful of keys.
class ValueDict {
 public:
  const Value* Find(std::string_view key) const;
  // Inserts or replaces, keeping the first insertion's position.
  void Set(std::string key, Value value);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  // Defined below Value: Clang instantiates the vector's members here, where Value is
  // still incomplete.
  size_t size() const;
  bool empty() const;

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Something `name(...)` can call: a macro of the template or a global function.
struct Callable {
  const MacroStmt* macro = nullptr;  // not owned; the template outlives every render
  std::string builtin;               // "range", "namespace", ... when macro is null
};

enum class ValueKind {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kDict,
  kNamespace,
  kCallable,
};

// A value with Python semantics. Lists and dicts are shared on copy (the sandbox HF renders
// in cannot mutate them); a namespace is shared on purpose, so `set ns.x` is seen by every
// holder, as in Jinja.
class Value {
 public:
  Value() = default;  // undefined
  static Value Undefined(std::string name) {
    Value v;
    v.data_ = std::move(name);
    return v;
  }
  static Value None() { return Value(ValueKind::kNone, std::monostate()); }
  static Value Bool(bool b) { return Value(ValueKind::kBool, b); }
  static Value Int(int64_t i) { return Value(ValueKind::kInt, i); }
  static Value Float(double d) { return Value(ValueKind::kFloat, d); }
  static Value String(std::string s) { return Value(ValueKind::kString, std::move(s)); }
  static Value List(ValueList items) {
    return Value(ValueKind::kList, std::make_shared<ValueList>(std::move(items)));
  }
  // A tuple is a list that prints as (a, b) and never equals a list, as in Python.
  static Value Tuple(ValueList items) {
    Value v = List(std::move(items));
    v.tuple_ = true;
    return v;
  }
  static Value Dict(ValueDict dict) {
    return Value(ValueKind::kDict, std::make_shared<ValueDict>(std::move(dict)));
  }
  static Value Namespace(ValueDict attrs) {
    return Value(ValueKind::kNamespace, std::make_shared<ValueDict>(std::move(attrs)));
  }
  static Value Function(Callable callable) {
    return Value(ValueKind::kCallable, std::make_shared<const Callable>(std::move(callable)));
  }

  ValueKind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  bool is_none() const { return kind_ == ValueKind::kNone; }
  bool is_bool() const { return kind_ == ValueKind::kBool; }
  bool is_int() const { return kind_ == ValueKind::kInt; }
  bool is_float() const { return kind_ == ValueKind::kFloat; }
  // int, float or bool (a bool is an int in Python).
  bool is_number() const {
    return kind_ == ValueKind::kInt || kind_ == ValueKind::kFloat || kind_ == ValueKind::kBool;
  }
  bool is_string() const { return kind_ == ValueKind::kString; }
  bool is_list() const { return kind_ == ValueKind::kList; }  // tuples included
  bool is_tuple() const { return tuple_; }
  bool is_dict() const { return kind_ == ValueKind::kDict; }
  bool is_namespace() const { return kind_ == ValueKind::kNamespace; }
  bool is_callable() const { return kind_ == ValueKind::kCallable; }

  // Each accessor requires the matching kind.
  bool bool_value() const { return std::get<bool>(data_); }
  int64_t int_value() const { return std::get<int64_t>(data_); }
  double float_value() const { return std::get<double>(data_); }
  const std::string& str() const { return std::get<std::string>(data_); }
  const ValueList& list() const { return *std::get<std::shared_ptr<ValueList>>(data_); }
  // A dict's items, or a namespace's attributes.
  const ValueDict& dict() const { return *std::get<std::shared_ptr<ValueDict>>(data_); }
  ValueDict& mutable_namespace() const { return *std::get<std::shared_ptr<ValueDict>>(data_); }
  // The shared attributes of a namespace (or dict), for the renderer's cycle breaking.
  const std::shared_ptr<ValueDict>& shared_dict() const {
    return std::get<std::shared_ptr<ValueDict>>(data_);
  }
  const Callable& callable() const { return *std::get<std::shared_ptr<const Callable>>(data_); }
  // The name an undefined value was looked up by ("" when unknown).
  const std::string& undefined_name() const { return std::get<std::string>(data_); }

  // An int, bool or float as a double; requires is_number().
  double AsDouble() const;
  // An int or bool as an int; requires is_int() or is_bool().
  int64_t AsInt() const { return is_bool() ? (bool_value() ? 1 : 0) : int_value(); }

  // Identity of shared objects (namespaces, callables), for `is sameas`.
  const void* identity() const;

 private:
  using Data =
      std::variant<std::monostate, bool, int64_t, double, std::string, std::shared_ptr<ValueList>,
                   std::shared_ptr<ValueDict>, std::shared_ptr<const Callable>>;
  template <typename T>
  Value(ValueKind kind, T data) : kind_(kind), data_(std::move(data)) {}

  ValueKind kind_ = ValueKind::kUndefined;
  bool tuple_ = false;
  Data data_ = std::string();
};

inline size_t ValueDict::size() const { return items_.size(); }
inline bool ValueDict::empty() const { return items_.empty(); }

// Python's truth value (Undefined is false).
bool Truthy(const Value& v);
// Python's `==` (1 == 1.0 == True); Undefined equals only Undefined.
bool Equals(const Value& a, const Value& b);
// Python's type name, for error messages: "str", "int", "NoneType", "Undefined", ...
std::string_view TypeName(const Value& v);

// The most bytes a template may make of one string (a value or the rendered text), and the
// most items of one list: a template that repeats `| tojson` or doubles a list in a loop is
// refused (ResourceExhausted) long before its values grow beyond memory.
inline constexpr size_t kMaxStringBytes = size_t{64} << 20;
inline constexpr size_t kMaxListItems = size_t{1} << 22;
// OK, or ResourceExhausted naming the bound, for a string of `bytes` or a list of `items`;
// operators check the size of what they would make before they make it.
Status StringWithinBound(size_t bytes);
Status ListWithinBound(size_t items);

// str(v) as Jinja prints it: Undefined prints as "", None as "None", True as "True",
// floats as Python's repr, containers as Python's repr. A container's text stops growing past
// kMaxStringBytes (so it is then longer than that, and refused where it is used).
std::string ToStr(const Value& v);
// repr(v): strings quoted the way Python quotes them (bounded as ToStr).
std::string Repr(const Value& v);
// Python's repr of a float: the shortest digits that round-trip, "1.0", "1e+16", "inf".
std::string FormatFloat(double d);

// json.dumps(v, ensure_ascii=..., indent=..., separators=..., sort_keys=...).
struct JsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;     // indent=None when false
  std::string indent;          // the indent unit when has_indent
  std::string item_separator;  // "" means Python's default (", " or "," with indent)
  std::string key_separator;   // "" means ": "
  bool has_separators = false;
  bool sort_keys = false;
};
// Fails (InvalidArgument, no line) for values JSON cannot hold: Undefined, namespace, macro;
// ResourceExhausted past kMaxStringBytes of JSON.
Result<std::string> ToJson(const Value& v, const JsonOptions& options);

// The context of a render: JSON object -> dict, array -> list, and so on.
Value FromJson(const boost::json::value& json);

// UTF-8 code points of `s`, each as its bytes; a byte that starts no valid sequence stands
// for itself. Python indexes, slices, iterates and measures strings by code point.
std::vector<std::string> CodePoints(std::string_view s);
size_t CodePointCount(std::string_view s);

}  // namespace iris::tokenizer::jinja
