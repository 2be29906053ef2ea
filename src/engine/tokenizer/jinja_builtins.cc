// Jinja's filters and tests (jinja2/filters.py, jinja2/tests.py), Python's str/dict
// methods and operators, and the globals transformers adds to its sandbox
// (transformers/utils/chat_template_utils.py), as chat templates use them. Case mapping is
// ASCII only; other characters pass through unchanged.
#include "engine/tokenizer/jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <unordered_map>

namespace iris::tokenizer::jinja {

const Value* Args::Get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

namespace {

// Big enough for any chat; small enough that a template cannot exhaust memory by accident.
constexpr int64_t kMaxRangeLength = 1 << 20;

Status TypeError(std::string message) { return InvalidArgument(std::move(message)); }

Status UndefinedError(const Value& v) {
  if (v.undefined_name().empty()) return InvalidArgument("value is undefined");
  return InvalidArgument("'" + v.undefined_name() + "' is undefined");
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
         (c >= '\x1c' && c <= '\x1f');
}
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlpha(char c) { return IsLower(c) || IsUpper(c); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char ToLower(char c) { return IsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
char ToUpper(char c) { return IsLower(c) ? static_cast<char>(c - 'a' + 'A') : c; }

std::string Lower(std::string s) {
  for (char& c : s) c = ToLower(c);
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = ToUpper(c);
  return s;
}
std::string Capitalize(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = i == 0 ? ToUpper(s[i]) : ToLower(s[i]);
  return s;
}
// Python's str.title(): a letter after a letter is lowered, any other letter raised.
// Non-ASCII bytes count as letters (they are mostly letters in chat text).
std::string PyTitle(std::string s) {
  bool previous_cased = false;
  for (char& c : s) {
    bool non_ascii = static_cast<unsigned char>(c) >= 0x80;
    if (IsAlpha(c)) c = previous_cased ? ToLower(c) : ToUpper(c);
    previous_cased = IsAlpha(c) || non_ascii;
  }
  return s;
}
// Jinja's title filter: words start after whitespace, '-', '(', '{', '[' or '<'.
std::string JinjaTitle(std::string s) {
  bool word_start = true;
  for (char& c : s) {
    bool separator = IsAsciiSpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      word_start = true;
      continue;
    }
    c = word_start ? ToUpper(c) : ToLower(c);
    word_start = false;
  }
  return s;
}

// Python's str.strip/lstrip/rstrip; `chars` null means whitespace.
std::string Strip(const std::string& s, const Value* chars, bool left, bool right) {
  if (chars == nullptr || chars->is_none() || chars->is_undefined()) {
    size_t b = 0;
    size_t e = s.size();
    if (left) {
      while (b < e && IsAsciiSpace(s[b])) ++b;
    }
    if (right) {
      while (e > b && IsAsciiSpace(s[e - 1])) --e;
    }
    return s.substr(b, e - b);
  }
  std::vector<std::string> set = CodePoints(ToStr(*chars));
  std::vector<std::string> cps = CodePoints(s);
  auto in_set = [&](const std::string& cp) {
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0;
  size_t e = cps.size();
  if (left) {
    while (b < e && in_set(cps[b])) ++b;
  }
  if (right) {
    while (e > b && in_set(cps[e - 1])) --e;
  }
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

// Python's str.replace(old, new, count); an empty `old` inserts between characters.
std::string Replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count) {
  std::string out;
  if (from.empty()) {
    std::vector<std::string> cps = CodePoints(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < cps.size()) out += cps[i];
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// Python's str.split(sep, maxsplit); sep null splits on runs of whitespace.
Result<ValueList> Split(const std::string& s, const Value* sep, int64_t maxsplit) {
  ValueList out;
  if (sep == nullptr || sep->is_none()) {
    size_t i = 0;
    int64_t splits = 0;
    while (true) {
      while (i < s.size() && IsAsciiSpace(s[i])) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && splits == maxsplit) {
        out.push_back(Value::String(s.substr(i)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !IsAsciiSpace(s[j])) ++j;
      out.push_back(Value::String(s.substr(i, j - i)));
      ++splits;
      i = j;
    }
    return out;
  }
  if (!sep->is_string())
    return TypeError("must be str or None, not " + std::string(TypeName(*sep)));
  const std::string& delim = sep->str();
  if (delim.empty()) return InvalidArgument("empty separator");
  size_t i = 0;
  int64_t splits = 0;
  while (maxsplit < 0 || splits < maxsplit) {
    size_t hit = s.find(delim, i);
    if (hit == std::string::npos) break;
    out.push_back(Value::String(s.substr(i, hit - i)));
    i = hit + delim.size();
    ++splits;
  }
  out.push_back(Value::String(s.substr(i)));
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Result<int64_t> ToIndex(const Value& v, std::string_view what) {
  if (v.is_int() || v.is_bool()) return v.AsInt();
  return TypeError(std::string(what) + " must be an integer, not " + std::string(TypeName(v)));
}

Result<int64_t> OptionalInt(const Value* v, int64_t fallback, std::string_view what) {
  if (v == nullptr || v->is_none()) return fallback;
  return ToIndex(*v, what);
}

bool OptionalBool(const Value* v, bool fallback) { return v == nullptr ? fallback : Truthy(*v); }

// Jinja's attribute paths for selectattr/map/sort: "a.b.0".
Value GetPath(const Value& v, std::string_view path) {
  Value current = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string_view part = path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), IsDigit);
    if (numeric) {
      int64_t index = 0;
      std::from_chars(part.data(), part.data() + part.size(), index);
      current = GetItem(current, Value::Int(index));
    } else {
      current = GetItem(current, Value::String(std::string(part)));
    }
    if (dot == std::string_view::npos) return current;
    start = dot + 1;
  }
}

// The value compared by sort/unique/min/max: an attribute path, lowered unless case-sensitive.
Value SortKey(const Value& item, const Value* attribute, bool case_sensitive) {
  Value key =
      attribute != nullptr && !attribute->is_none() ? GetPath(item, ToStr(*attribute)) : item;
  if (!case_sensitive && key.is_string()) return Value::String(Lower(key.str()));
  return key;
}

// A strict weak order on keys that are all numbers or all strings, checked up front so the
// comparator never fails inside std::stable_sort.
Status CheckSortable(const std::vector<Value>& keys) {
  bool numbers =
      std::all_of(keys.begin(), keys.end(), [](const Value& k) { return k.is_number(); });
  bool strings =
      std::all_of(keys.begin(), keys.end(), [](const Value& k) { return k.is_string(); });
  if (!numbers && !strings) return TypeError("can only sort numbers or strings");
  return OkStatus();
}
bool KeyLess(const Value& a, const Value& b) {
  if (a.is_string()) return a.str() < b.str();
  return a.AsDouble() < b.AsDouble();
}

// Python's round(x, ndigits): the exact binary value rounded half to even.
double PyRound(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits >= 0) {
    if (ndigits > 300) return x;
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf, nullptr);
  }
  double scale = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(x / scale) * scale;
}

Result<Value> FloorDivide(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    int64_t x = a.AsInt();
    int64_t y = b.AsInt();
    if (y == 0) return InvalidArgument("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) return InvalidArgument("integer overflow");
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
    return Value::Int(q);
  }
  double y = b.AsDouble();
  if (y == 0.0) return InvalidArgument("float floor division by zero");
  return Value::Float(std::floor(a.AsDouble() / y));
}

Result<Value> Modulo(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    int64_t x = a.AsInt();
    int64_t y = b.AsInt();
    if (y == 0) return InvalidArgument("integer division or modulo by zero");
    if (y == -1) return Value::Int(0);
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value::Int(r);
  }
  double y = b.AsDouble();
  if (y == 0.0) return InvalidArgument("float modulo");
  double r = std::fmod(a.AsDouble(), y);
  if (r != 0.0 && ((r < 0) != (y < 0))) r += y;
  return Value::Float(r);
}

Result<Value> Power(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float() && b.AsInt() >= 0) {
    int64_t base = a.AsInt();
    int64_t exp = b.AsInt();
    int64_t result = 1;
    while (exp > 0) {
      if ((exp & 1) != 0 && __builtin_mul_overflow(result, base, &result)) {
        return InvalidArgument("integer overflow");
      }
      exp >>= 1;
      if (exp > 0 && __builtin_mul_overflow(base, base, &base)) {
        return InvalidArgument("integer overflow");
      }
    }
    return Value::Int(result);
  }
  return Value::Float(std::pow(a.AsDouble(), b.AsDouble()));
}

Result<Value> Repeat(const Value& seq, int64_t times) {
  if (times <= 0) return seq.is_string() ? Value::String("") : Value::List({});
  size_t unit = seq.is_string() ? seq.str().size() : seq.list().size() * sizeof(Value);
  if (unit != 0 && static_cast<uint64_t>(times) > kMaxStringBytes / unit) {
    return InvalidArgument("repetition result too large");
  }
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value::String(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
  return Value::List(std::move(out));
}

Status OperandError(std::string_view op, const Value& a, const Value& b) {
  return TypeError("unsupported operand type(s) for " + std::string(op) + ": '" +
                   std::string(TypeName(a)) + "' and '" + std::string(TypeName(b)) + "'");
}

Result<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case ValueKind::kString:
      if (!item.is_string()) {
        return TypeError("'in <string>' requires string as left operand, not " +
                         std::string(TypeName(item)));
      }
      return container.str().find(item.str()) != std::string::npos;
    case ValueKind::kList:
      for (const Value& v : container.list()) {
        if (Equals(v, item)) return true;
      }
      return false;
    case ValueKind::kDict:
    case ValueKind::kNamespace:
      return item.is_string() && container.dict().Find(item.str()) != nullptr;
    case ValueKind::kUndefined:
      return false;
    default:
      return TypeError("argument of type '" + std::string(TypeName(container)) +
                       "' is not iterable");
  }
}

Result<int> OrderCompare(const Value& a, const Value& b, std::string_view op) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) {
      return a.AsInt() < b.AsInt() ? -1 : a.AsInt() > b.AsInt() ? 1 : 0;
    }
    double x = a.AsDouble();
    double y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) return 2;  // unordered: every comparison false
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list()) {
    const ValueList& x = a.list();
    const ValueList& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i])) continue;
      return OrderCompare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  return TypeError("'" + std::string(op) + "' not supported between instances of '" +
                   std::string(TypeName(a)) + "' and '" + std::string(TypeName(b)) + "'");
}

// ---- filters -----------------------------------------------------------------------------

using FilterFn = Result<Value> (*)(const Value& input, const Args& args);

Result<Value> FilterLength(const Value& v, const Args&) {
  switch (v.kind()) {
    case ValueKind::kString:
      return Value::Int(static_cast<int64_t>(CodePointCount(v.str())));
    case ValueKind::kList:
      return Value::Int(static_cast<int64_t>(v.list().size()));
    case ValueKind::kDict:
      return Value::Int(static_cast<int64_t>(v.dict().size()));
    case ValueKind::kUndefined:
      return Value::Int(0);
    default:
      return TypeError("object of type '" + std::string(TypeName(v)) + "' has no len()");
  }
}

Result<Value> FilterFirst(const Value& v, const Args&) {
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  if (items.empty()) return Value::Undefined("first");
  return items.front();
}

Result<Value> FilterLast(const Value& v, const Args&) {
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  if (items.empty()) return Value::Undefined("last");
  return items.back();
}

Result<Value> FilterJoin(const Value& v, const Args& args) {
  const Value* sep = args.Get(0, "d");
  const Value* attribute = args.Get(1, "attribute");
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && sep != nullptr) out += ToStr(*sep);
    out += ToStr(attribute != nullptr ? GetPath(items[i], ToStr(*attribute)) : items[i]);
  }
  return Value::String(std::move(out));
}

Result<Value> FilterDefault(const Value& v, const Args& args) {
  const Value* fallback = args.Get(0, "default_value");
  bool boolean = OptionalBool(args.Get(1, "boolean"), false);
  if (v.is_undefined() || (boolean && !Truthy(v))) {
    return fallback != nullptr ? *fallback : Value::String("");
  }
  return v;
}

// transformers overrides Jinja's tojson (which HTML-escapes) with
// tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) =
// json.dumps(...), so positional arguments follow that order.
Result<Value> FilterToJson(const Value& v, const Args& args) {
  JsonOptions options;
  options.ensure_ascii = OptionalBool(args.Get(0, "ensure_ascii"), false);
  const Value* indent = args.Get(1, "indent");
  if (indent != nullptr && !indent->is_none()) {
    options.has_indent = true;
    if (indent->is_string()) {
      options.indent = indent->str();
    } else {
      IRIS_ASSIGN_OR_RETURN(int64_t width, ToIndex(*indent, "indent"));
      options.indent.assign(static_cast<size_t>(std::clamp<int64_t>(width, 0, 64)), ' ');
    }
  }
  const Value* separators = args.Get(2, "separators");
  if (separators != nullptr && !separators->is_none()) {
    if (!separators->is_list() || separators->list().size() != 2 ||
        !separators->list()[0].is_string() || !separators->list()[1].is_string()) {
      return TypeError("tojson separators must be a pair of strings");
    }
    options.has_separators = true;
    options.item_separator = separators->list()[0].str();
    options.key_separator = separators->list()[1].str();
  }
  options.sort_keys = OptionalBool(args.Get(3, "sort_keys"), false);
  IRIS_ASSIGN_OR_RETURN(std::string json, ToJson(v, options));
  return Value::String(std::move(json));
}

// Python's int(s) for a decimal string: optional sign, digits with single underscores.
bool ParsePyInt(std::string_view s, int64_t* out) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(s.back())) s.remove_suffix(1);
  std::string digits;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (s[0] == '-') digits.push_back('-');
    s.remove_prefix(1);
  }
  if (s.empty() || !IsDigit(s.front()) || !IsDigit(s.back())) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && IsDigit(s[i - 1]) && IsDigit(s[i + 1])) continue;
    if (!IsDigit(s[i])) return false;
    digits.push_back(s[i]);
  }
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
  return res.ec == std::errc() && res.ptr == digits.data() + digits.size();
}

bool ParsePyFloat(std::string_view s, double* out) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(s.back())) s.remove_suffix(1);
  std::string text;
  for (char c : s) {
    if (c != '_') text.push_back(c);
  }
  if (text.empty() || text.find('x') != std::string::npos || text.find('X') != std::string::npos) {
    return false;
  }
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

Result<Value> FilterInt(const Value& v, const Args& args) {
  const Value* fallback = args.Get(0, "default");
  Value result = fallback != nullptr ? *fallback : Value::Int(0);
  if (v.is_int() || v.is_bool()) return Value::Int(v.AsInt());
  if (v.is_float()) {
    double d = v.float_value();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return result;
    return Value::Int(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    int64_t i = 0;
    if (ParsePyInt(v.str(), &i)) return Value::Int(i);
    double d = 0;
    if (ParsePyFloat(v.str(), &d) && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value::Int(static_cast<int64_t>(d));
    }
  }
  return result;
}

Result<Value> FilterFloat(const Value& v, const Args& args) {
  const Value* fallback = args.Get(0, "default");
  if (v.is_number()) return Value::Float(v.AsDouble());
  double d = 0;
  if (v.is_string() && ParsePyFloat(v.str(), &d)) return Value::Float(d);
  return fallback != nullptr ? *fallback : Value::Float(0.0);
}

Result<Value> FilterList(const Value& v, const Args&) {
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  return Value::List(std::move(items));
}

Result<Value> FilterItems(const Value& v, const Args&) {
  if (v.is_undefined()) return Value::List({});
  if (!v.is_dict()) return TypeError("can only get item pairs from a mapping");
  ValueList out;
  for (const auto& [k, item] : v.dict().items()) {
    out.push_back(Value::Tuple({Value::String(k), item}));
  }
  return Value::List(std::move(out));
}

Result<Value> FilterReplace(const Value& v, const Args& args) {
  const Value* from = args.Get(0, "old");
  const Value* to = args.Get(1, "new");
  if (from == nullptr || to == nullptr) return TypeError("replace needs 'old' and 'new'");
  IRIS_ASSIGN_OR_RETURN(int64_t count, OptionalInt(args.Get(2, "count"), -1, "count"));
  return Value::String(Replace(ToStr(v), ToStr(*from), ToStr(*to), count));
}

Result<Value> FilterRound(const Value& v, const Args& args) {
  IRIS_ASSIGN_OR_RETURN(int64_t precision, OptionalInt(args.Get(0, "precision"), 0, "precision"));
  const Value* method_arg = args.Get(1, "method");
  std::string method = method_arg != nullptr ? ToStr(*method_arg) : "common";
  if (!v.is_number()) return TypeError("round() needs a number, not " + std::string(TypeName(v)));
  if (method == "common") {
    if (!v.is_float()) {
      if (precision >= 0) return Value::Int(v.AsInt());
      return Value::Int(static_cast<int64_t>(PyRound(v.AsDouble(), precision)));
    }
    return Value::Float(PyRound(v.float_value(), precision));
  }
  if (method != "ceil" && method != "floor") {
    return InvalidArgument("round method must be 'common', 'ceil' or 'floor'");
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.AsDouble() * scale;
  return Value::Float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Result<Value> FilterAbs(const Value& v, const Args&) {
  if (v.is_float()) return Value::Float(std::fabs(v.float_value()));
  if (v.is_int() || v.is_bool()) {
    int64_t i = v.AsInt();
    if (i == INT64_MIN) return InvalidArgument("integer overflow");
    return Value::Int(i < 0 ? -i : i);
  }
  return TypeError("bad operand type for abs(): '" + std::string(TypeName(v)) + "'");
}

Result<Value> FilterUnique(const Value& v, const Args& args) {
  bool case_sensitive = OptionalBool(args.Get(0, "case_sensitive"), false);
  const Value* attribute = args.Get(1, "attribute");
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  ValueList out;
  std::vector<Value> seen;
  for (const Value& item : items) {
    Value key = SortKey(item, attribute, case_sensitive);
    bool dup =
        std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, key); });
    if (dup) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::List(std::move(out));
}

// select/reject/selectattr/rejectattr: keep items whose (attribute's) test result is `keep`.
Result<Value> FilterSelect(const Value& v, const Args& args, bool by_attribute, bool keep) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) return TypeError("selectattr needs an attribute name");
    attribute = ToStr(args.positional[next++]);
  }
  std::string test;
  if (next < args.positional.size()) test = ToStr(args.positional[next++]);
  if (!test.empty() && !IsKnownTest(test)) return InvalidArgument("unknown test '" + test + "'");
  Args test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next),
                              args.positional.end());
  test_args.keyword = args.keyword;
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  ValueList out;
  for (const Value& item : items) {
    Value subject = by_attribute ? GetPath(item, attribute) : item;
    bool result = Truthy(subject);
    if (!test.empty()) {
      IRIS_ASSIGN_OR_RETURN(result, ApplyTest(test, subject, test_args));
    }
    if (result == keep) out.push_back(item);
  }
  return Value::List(std::move(out));
}

Result<Value> FilterMap(const Value& v, const Args& args) {
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  ValueList out;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, value] : args.keyword) {
    if (k == "attribute") attribute = &value;
    if (k == "default") fallback = &value;
  }
  if (attribute != nullptr) {
    for (const Value& item : items) {
      Value mapped = GetPath(item, ToStr(*attribute));
      if (mapped.is_undefined() && fallback != nullptr) mapped = *fallback;
      out.push_back(std::move(mapped));
    }
    return Value::List(std::move(out));
  }
  if (args.positional.empty()) return TypeError("map needs a filter name or attribute=");
  std::string filter = ToStr(args.positional[0]);
  if (!IsKnownFilter(filter)) return InvalidArgument("unknown filter '" + filter + "'");
  Args filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keyword = args.keyword;
  for (const Value& item : items) {
    IRIS_ASSIGN_OR_RETURN(Value mapped, ApplyFilter(filter, item, filter_args));
    out.push_back(std::move(mapped));
  }
  return Value::List(std::move(out));
}

Result<Value> FilterSort(const Value& v, const Args& args) {
  bool reverse = OptionalBool(args.Get(0, "reverse"), false);
  bool case_sensitive = OptionalBool(args.Get(1, "case_sensitive"), false);
  const Value* attribute = args.Get(2, "attribute");
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(SortKey(item, attribute, case_sensitive));
  IRIS_RETURN_IF_ERROR(CheckSortable(keys));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? KeyLess(keys[b], keys[a]) : KeyLess(keys[a], keys[b]);
  });
  ValueList out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::List(std::move(out));
}

Result<Value> FilterDictSort(const Value& v, const Args& args) {
  bool case_sensitive = OptionalBool(args.Get(0, "case_sensitive"), false);
  const Value* by_arg = args.Get(1, "by");
  bool by_value = by_arg != nullptr && ToStr(*by_arg) == "value";
  bool reverse = OptionalBool(args.Get(2, "reverse"), false);
  IRIS_ASSIGN_OR_RETURN(Value pairs, FilterItems(v, Args{}));
  Args sort_args;
  sort_args.keyword = {{"reverse", Value::Bool(reverse)},
                       {"case_sensitive", Value::Bool(case_sensitive)},
                       {"attribute", Value::String(by_value ? "1" : "0")}};
  return FilterSort(pairs, sort_args);
}

Result<Value> FilterMinMax(const Value& v, const Args& args, bool want_max) {
  bool case_sensitive = OptionalBool(args.Get(0, "case_sensitive"), false);
  const Value* attribute = args.Get(1, "attribute");
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  if (items.empty()) return Value::Undefined(want_max ? "max" : "min");
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(SortKey(item, attribute, case_sensitive));
  IRIS_RETURN_IF_ERROR(CheckSortable(keys));
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    if (want_max ? KeyLess(keys[best], keys[i]) : KeyLess(keys[i], keys[best])) best = i;
  }
  return items[best];
}

Result<Value> FilterSum(const Value& v, const Args& args) {
  const Value* attribute = args.Get(0, "attribute");
  const Value* start = args.Get(1, "start");
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  Value total = start != nullptr ? *start : Value::Int(0);
  for (const Value& item : items) {
    Value term = attribute != nullptr ? GetPath(item, ToStr(*attribute)) : item;
    IRIS_ASSIGN_OR_RETURN(total, BinaryOp("+", total, term));
  }
  return total;
}

Result<Value> FilterReverse(const Value& v, const Args&) {
  if (v.is_string()) {
    std::vector<std::string> cps = CodePoints(v.str());
    std::string out;
    for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
    return Value::String(std::move(out));
  }
  IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
  std::reverse(items.begin(), items.end());
  return Value::List(std::move(items));
}

// Jinja's indent(width=4, first=False, blank=False).
Result<Value> FilterIndent(const Value& v, const Args& args) {
  const Value* width = args.Get(0, "width");
  std::string indent(4, ' ');
  if (width != nullptr && width->is_string()) {
    indent = width->str();
  } else if (width != nullptr) {
    IRIS_ASSIGN_OR_RETURN(int64_t n, ToIndex(*width, "width"));
    indent.assign(static_cast<size_t>(std::clamp<int64_t>(n, 0, 256)), ' ');
  }
  bool first = OptionalBool(args.Get(1, "first"), false);
  bool blank = OptionalBool(args.Get(2, "blank"), false);
  std::string s = ToStr(v) + "\n";
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    lines.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (blank || !lines[i].empty()) out += indent;
    }
    out += lines[i];
  }
  if (first) out = indent + out;
  return Value::String(std::move(out));
}

Result<Value> FilterAttr(const Value& v, const Args& args) {
  const Value* name = args.Get(0, "name");
  if (name == nullptr) return TypeError("attr needs a name");
  // Jinja's attr() reads attributes only, never dict items.
  if (!v.is_namespace()) return Value::Undefined(ToStr(*name));
  return GetAttribute(v, ToStr(*name));
}

const std::unordered_map<std::string_view, FilterFn>& Filters() {
  static const auto* filters = new std::unordered_map<std::string_view, FilterFn>{
      {"abs", FilterAbs},
      {"attr", FilterAttr},
      {"capitalize",
       [](const Value& v, const Args&) -> Result<Value> {
         return Value::String(Capitalize(ToStr(v)));
       }},
      {"count", FilterLength},
      {"d", FilterDefault},
      {"default", FilterDefault},
      {"dictsort", FilterDictSort},
      {"e",
       [](const Value& v, const Args&) -> Result<Value> {
         return Value::String(HtmlEscape(ToStr(v)));
       }},
      {"escape",
       [](const Value& v, const Args&) -> Result<Value> {
         return Value::String(HtmlEscape(ToStr(v)));
       }},
      {"first", FilterFirst},
      {"float", FilterFloat},
      {"indent", FilterIndent},
      {"int", FilterInt},
      {"items", FilterItems},
      {"join", FilterJoin},
      {"last", FilterLast},
      {"length", FilterLength},
      {"list", FilterList},
      {"lower",
       [](const Value& v, const Args&) -> Result<Value> { return Value::String(Lower(ToStr(v))); }},
      {"map", FilterMap},
      {"max", [](const Value& v, const Args& a) { return FilterMinMax(v, a, true); }},
      {"min", [](const Value& v, const Args& a) { return FilterMinMax(v, a, false); }},
      {"reject", [](const Value& v, const Args& a) { return FilterSelect(v, a, false, false); }},
      {"rejectattr", [](const Value& v, const Args& a) { return FilterSelect(v, a, true, false); }},
      {"replace", FilterReplace},
      {"reverse", FilterReverse},
      {"round", FilterRound},
      {"safe", [](const Value& v, const Args&) -> Result<Value> { return v; }},
      {"select", [](const Value& v, const Args& a) { return FilterSelect(v, a, false, true); }},
      {"selectattr", [](const Value& v, const Args& a) { return FilterSelect(v, a, true, true); }},
      {"sort", FilterSort},
      {"string",
       [](const Value& v, const Args&) -> Result<Value> { return Value::String(ToStr(v)); }},
      {"sum", FilterSum},
      {"title",
       [](const Value& v, const Args&) -> Result<Value> {
         return Value::String(JinjaTitle(ToStr(v)));
       }},
      {"tojson", FilterToJson},
      {"trim",
       [](const Value& v, const Args& a) -> Result<Value> {
         return Value::String(Strip(ToStr(v), a.Get(0, "chars"), true, true));
       }},
      {"unique", FilterUnique},
      {"upper",
       [](const Value& v, const Args&) -> Result<Value> { return Value::String(Upper(ToStr(v))); }},
  };
  return *filters;
}

// ---- tests -------------------------------------------------------------------------------

Result<const Value*> RequiredArg(const Args& args, std::string_view test) {
  const Value* v = args.Get(0, "other");
  if (v == nullptr) v = args.Get(0, "value");
  if (v == nullptr) return TypeError("test '" + std::string(test) + "' needs an argument");
  return v;
}

Result<bool> CompareTest(std::string_view op, const Value& v, const Args& args,
                         std::string_view name) {
  IRIS_ASSIGN_OR_RETURN(const Value* other, RequiredArg(args, name));
  return Compare(op, v, *other);
}

const std::vector<std::string_view>& TestNames() {
  static const auto* names = new std::vector<std::string_view>{
      "boolean", "callable", "defined",  "divisibleby", "eq",       "equalto",     "escaped",
      "even",    "false",    "filter",   "float",       "ge",       "greaterthan", "gt",
      "in",      "integer",  "iterable", "le",          "lessthan", "lower",       "lt",
      "mapping", "ne",       "none",     "number",      "odd",      "sameas",      "sequence",
      "string",  "test",     "true",     "undefined",   "upper",    "==",          "!=",
      "<",       "<=",       ">",        ">="};
  return *names;
}

Result<int64_t> IntForTest(const Value& v, std::string_view test) {
  if (!v.is_int() && !v.is_bool()) {
    return TypeError("test '" + std::string(test) + "' needs an integer, not " +
                     std::string(TypeName(v)));
  }
  return v.AsInt();
}

// ---- methods -----------------------------------------------------------------------------

Result<Value> StringMethod(const std::string& s, std::string_view name, const Args& args) {
  if (name == "strip") return Value::String(Strip(s, args.Get(0, "chars"), true, true));
  if (name == "lstrip") return Value::String(Strip(s, args.Get(0, "chars"), true, false));
  if (name == "rstrip") return Value::String(Strip(s, args.Get(0, "chars"), false, true));
  if (name == "upper") return Value::String(Upper(s));
  if (name == "lower") return Value::String(Lower(s));
  if (name == "title") return Value::String(PyTitle(s));
  if (name == "capitalize") return Value::String(Capitalize(s));
  if (name == "startswith" || name == "endswith") {
    const Value* affix = args.Get(0, "prefix");
    if (affix == nullptr) return TypeError(std::string(name) + "() takes at least 1 argument");
    std::vector<std::string> options;
    if (affix->is_string()) {
      options.push_back(affix->str());
    } else if (affix->is_list()) {
      for (const Value& option : affix->list()) {
        if (!option.is_string()) return TypeError(std::string(name) + "() needs strings");
        options.push_back(option.str());
      }
    } else {
      return TypeError(std::string(name) + "() needs a string or a tuple of strings, not " +
                       std::string(TypeName(*affix)));
    }
    for (const std::string& option : options) {
      if (option.size() > s.size()) continue;
      bool hit = name == "startswith"
                     ? s.compare(0, option.size(), option) == 0
                     : s.compare(s.size() - option.size(), option.size(), option) == 0;
      if (hit) return Value::Bool(true);
    }
    return Value::Bool(false);
  }
  if (name == "split") {
    IRIS_ASSIGN_OR_RETURN(int64_t maxsplit, OptionalInt(args.Get(1, "maxsplit"), -1, "maxsplit"));
    IRIS_ASSIGN_OR_RETURN(ValueList parts, Split(s, args.Get(0, "sep"), maxsplit));
    return Value::List(std::move(parts));
  }
  if (name == "splitlines") {
    ValueList lines;
    size_t start = 0;
    while (start < s.size()) {
      size_t nl = s.find('\n', start);
      if (nl == std::string::npos) nl = s.size();
      lines.push_back(Value::String(s.substr(start, nl - start)));
      start = nl + 1;
    }
    return Value::List(std::move(lines));
  }
  if (name == "replace") {
    const Value* from = args.Get(0, "old");
    const Value* to = args.Get(1, "new");
    if (from == nullptr || to == nullptr || !from->is_string() || !to->is_string()) {
      return TypeError("replace() needs two strings");
    }
    IRIS_ASSIGN_OR_RETURN(int64_t count, OptionalInt(args.Get(2, "count"), -1, "count"));
    return Value::String(Replace(s, from->str(), to->str(), count));
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    const Value* sub = args.Get(0, "sub");
    if (sub == nullptr || !sub->is_string())
      return TypeError(std::string(name) + "() needs a string");
    const std::string& needle = sub->str();
    if (name == "count") {
      if (needle.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(s) + 1));
      int64_t n = 0;
      for (size_t p = s.find(needle); p != std::string::npos;
           p = s.find(needle, p + needle.size())) {
        ++n;
      }
      return Value::Int(n);
    }
    size_t p = name == "rfind" ? s.rfind(needle) : s.find(needle);
    if (p == std::string::npos) {
      if (name == "index") return InvalidArgument("substring not found");
      return Value::Int(-1);
    }
    return Value::Int(static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, p))));
  }
  if (name == "join") {
    const Value* items_arg = args.Get(0, "iterable");
    if (items_arg == nullptr) return TypeError("join() takes exactly one argument");
    IRIS_ASSIGN_OR_RETURN(ValueList items, Iterate(*items_arg));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return TypeError("sequence item " + std::to_string(i) + ": expected str instance, " +
                         std::string(TypeName(items[i])) + " found");
      }
      if (i > 0) out += s;
      out += items[i].str();
    }
    return Value::String(std::move(out));
  }
  auto all_of = [&](bool (*pred)(char)) {
    return !s.empty() && std::all_of(s.begin(), s.end(), pred);
  };
  if (name == "isdigit") return Value::Bool(all_of(IsDigit));
  if (name == "isalpha") return Value::Bool(all_of(IsAlpha));
  if (name == "isalnum")
    return Value::Bool(all_of([](char c) { return IsAlpha(c) || IsDigit(c); }));
  if (name == "isspace") return Value::Bool(all_of(IsAsciiSpace));
  if (name == "islower" || name == "isupper") {
    bool any_cased = std::any_of(s.begin(), s.end(), IsAlpha);
    bool ok = name == "islower" ? std::none_of(s.begin(), s.end(), IsUpper)
                                : std::none_of(s.begin(), s.end(), IsLower);
    return Value::Bool(any_cased && ok);
  }
  return TypeError("'str' object has no method '" + std::string(name) + "'");
}

Result<Value> DictMethod(const ValueDict& dict, std::string_view name, const Args& args) {
  if (name == "get") {
    const Value* key = args.Get(0, "key");
    if (key == nullptr) return TypeError("get() takes at least 1 argument");
    const Value* fallback = args.Get(1, "default");
    const Value* found = key->is_string() ? dict.Find(key->str()) : nullptr;
    if (found != nullptr) return *found;
    return fallback != nullptr ? *fallback : Value::None();
  }
  ValueList out;
  if (name == "items") {
    for (const auto& [k, v] : dict.items()) out.push_back(Value::Tuple({Value::String(k), v}));
  } else if (name == "keys") {
    for (const auto& entry : dict.items()) out.push_back(Value::String(entry.first));
  } else if (name == "values") {
    for (const auto& entry : dict.items()) out.push_back(entry.second);
  } else {
    return TypeError("'dict' object has no method '" + std::string(name) + "'");
  }
  return Value::List(std::move(out));
}

}  // namespace

bool IsKnownFilter(std::string_view name) { return Filters().count(name) != 0; }

bool IsKnownTest(std::string_view name) {
  const auto& names = TestNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool IsGlobalFunction(std::string_view name) {
  return name == "range" || name == "namespace" || name == "dict" || name == "strftime_now" ||
         name == "raise_exception";
}

Result<Value> ApplyFilter(std::string_view name, const Value& input, const Args& args) {
  auto it = Filters().find(name);
  if (it == Filters().end()) return InvalidArgument("unknown filter '" + std::string(name) + "'");
  return it->second(input, args);
}

Result<bool> ApplyTest(std::string_view name, const Value& v, const Args& args) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.bool_value();
  if (name == "false") return v.is_bool() && !v.bool_value();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "callable") return v.is_callable();
  if (name == "escaped") return false;
  if (name == "iterable" || name == "sequence") {
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  }
  if (name == "lower" || name == "upper") {
    IRIS_ASSIGN_OR_RETURN(Value r,
                          StringMethod(ToStr(v), name == "lower" ? "islower" : "isupper", Args{}));
    return r.bool_value();
  }
  if (name == "odd" || name == "even") {
    IRIS_ASSIGN_OR_RETURN(int64_t i, IntForTest(v, name));
    return (i % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    IRIS_ASSIGN_OR_RETURN(int64_t i, IntForTest(v, name));
    const Value* arg = args.Get(0, "num");
    if (arg == nullptr) return TypeError("divisibleby needs a number");
    IRIS_ASSIGN_OR_RETURN(int64_t n, IntForTest(*arg, name));
    if (n == 0) return InvalidArgument("integer division or modulo by zero");
    return n == -1 || i % n == 0;
  }
  if (name == "sameas") {
    IRIS_ASSIGN_OR_RETURN(const Value* other, RequiredArg(args, name));
    if (v.kind() != other->kind()) return false;
    if (v.is_list() || v.is_dict() || v.is_namespace() || v.is_callable()) {
      return v.identity() == other->identity();
    }
    return Equals(v, *other);
  }
  if (name == "eq" || name == "equalto" || name == "==") return CompareTest("==", v, args, name);
  if (name == "ne" || name == "!=") return CompareTest("!=", v, args, name);
  if (name == "lt" || name == "lessthan" || name == "<") return CompareTest("<", v, args, name);
  if (name == "le" || name == "<=") return CompareTest("<=", v, args, name);
  if (name == "gt" || name == "greaterthan" || name == ">") return CompareTest(">", v, args, name);
  if (name == "ge" || name == ">=") return CompareTest(">=", v, args, name);
  if (name == "in") {
    const Value* seq = args.Get(0, "seq");
    if (seq == nullptr) return TypeError("test 'in' needs an argument");
    return Contains(*seq, v);
  }
  if (name == "filter") return v.is_string() && IsKnownFilter(v.str());
  if (name == "test") return v.is_string() && IsKnownTest(v.str());
  return InvalidArgument("unknown test '" + std::string(name) + "'");
}

Result<Value> CallMethod(const Value& object, std::string_view name, const Args& args) {
  if (object.is_string()) return StringMethod(object.str(), name, args);
  if (object.is_dict()) return DictMethod(object.dict(), name, args);
  return TypeError("'" + std::string(TypeName(object)) + "' object has no method '" +
                   std::string(name) + "'");
}

Result<Value> CallGlobal(std::string_view name, const Args& args) {
  if (name == "range") {
    if (args.positional.empty() || args.positional.size() > 3 || !args.keyword.empty()) {
      return TypeError("range expects 1 to 3 integer arguments");
    }
    int64_t start = 0;
    int64_t stop = 0;
    int64_t step = 1;
    if (args.positional.size() == 1) {
      IRIS_ASSIGN_OR_RETURN(stop, ToIndex(args.positional[0], "range() argument"));
    } else {
      IRIS_ASSIGN_OR_RETURN(start, ToIndex(args.positional[0], "range() argument"));
      IRIS_ASSIGN_OR_RETURN(stop, ToIndex(args.positional[1], "range() argument"));
      if (args.positional.size() == 3) {
        IRIS_ASSIGN_OR_RETURN(step, ToIndex(args.positional[2], "range() argument"));
      }
    }
    if (step == 0) return InvalidArgument("range() arg 3 must not be zero");
    double length = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) /
                              static_cast<double>(step));
    if (length > static_cast<double>(kMaxRangeLength)) {
      return ResourceExhausted("range() longer than " + std::to_string(kMaxRangeLength));
    }
    ValueList out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value::Int(i));
    return Value::List(std::move(out));
  }
  if (name == "namespace" || name == "dict") {
    ValueDict attrs;
    for (const Value& arg : args.positional) {
      if (!arg.is_dict())
        return TypeError(std::string(name) + "() positional argument must be a dict");
      for (const auto& [k, v] : arg.dict().items()) attrs.Set(k, v);
    }
    for (const auto& [k, v] : args.keyword) attrs.Set(k, v);
    return name == "namespace" ? Value::Namespace(std::move(attrs)) : Value::Dict(std::move(attrs));
  }
  if (name == "strftime_now") {
    const Value* format = args.Get(0, "format");
    if (format == nullptr || !format->is_string()) return TypeError("strftime_now needs a format");
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), format->str().c_str(), &local);
    return Value::String(std::string(buf, n));
  }
  return InvalidArgument("unknown function '" + std::string(name) + "'");
}

Value GetAttribute(const Value& object, std::string_view name) {
  if (object.is_dict() || object.is_namespace()) {
    const Value* found = object.dict().Find(name);
    if (found != nullptr) return *found;
  }
  return Value::Undefined(std::string(name));
}

Value GetItem(const Value& object, const Value& key) {
  if (key.is_string()) return GetAttribute(object, key.str());
  if (!key.is_int() && !key.is_bool()) return Value::Undefined("");
  int64_t index = key.AsInt();
  if (object.is_list()) {
    const ValueList& items = object.list();
    auto n = static_cast<int64_t>(items.size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) return Value::Undefined("[" + std::to_string(key.AsInt()) + "]");
    return items[static_cast<size_t>(index)];
  }
  if (object.is_string()) {
    std::vector<std::string> cps = CodePoints(object.str());
    auto n = static_cast<int64_t>(cps.size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) return Value::Undefined("[" + std::to_string(key.AsInt()) + "]");
    return Value::String(cps[static_cast<size_t>(index)]);
  }
  return Value::Undefined("");
}

Result<Value> Slice(const Value& object, const Value& start_arg, const Value& stop_arg,
                    const Value& step_arg) {
  auto bound = [](const Value& v) -> Result<std::optional<int64_t>> {
    if (v.is_none() || v.is_undefined()) return std::optional<int64_t>();
    IRIS_ASSIGN_OR_RETURN(int64_t i, ToIndex(v, "slice indices"));
    return std::optional<int64_t>(i);
  };
  IRIS_ASSIGN_OR_RETURN(std::optional<int64_t> start, bound(start_arg));
  IRIS_ASSIGN_OR_RETURN(std::optional<int64_t> stop, bound(stop_arg));
  IRIS_ASSIGN_OR_RETURN(std::optional<int64_t> step_opt, bound(step_arg));
  int64_t step = step_opt.value_or(1);
  if (step == 0) return InvalidArgument("slice step cannot be zero");

  std::vector<std::string> cps;
  int64_t n = 0;
  if (object.is_list()) {
    n = static_cast<int64_t>(object.list().size());
  } else if (object.is_string()) {
    cps = CodePoints(object.str());
    n = static_cast<int64_t>(cps.size());
  } else if (object.is_undefined()) {
    return Value::Undefined("");
  } else {
    return TypeError("'" + std::string(TypeName(object)) + "' object is not subscriptable");
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t b = adjust(start, step < 0 ? n - 1 : 0);
  int64_t e = adjust(stop, step < 0 ? -1 : n);
  if (object.is_list()) {
    ValueList out;
    for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
      out.push_back(object.list()[static_cast<size_t>(i)]);
    }
    return Value::List(std::move(out));
  }
  std::string out;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) out += cps[static_cast<size_t>(i)];
  return Value::String(std::move(out));
}

Result<Value> BinaryOp(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string left = ToStr(a);
    std::string right = ToStr(b);
    IRIS_RETURN_IF_ERROR(StringWithinBound(left.size() + right.size()));
    left += right;
    return Value::String(std::move(left));
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  bool numbers = a.is_number() && b.is_number();
  bool ints = numbers && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_add_overflow(a.AsInt(), b.AsInt(), &r))
        return InvalidArgument("integer overflow");
      return Value::Int(r);
    }
    if (numbers) return Value::Float(a.AsDouble() + b.AsDouble());
    if (a.is_string() && b.is_string()) {
      IRIS_RETURN_IF_ERROR(StringWithinBound(a.str().size() + b.str().size()));
      return Value::String(a.str() + b.str());
    }
    if (a.is_list() && b.is_list()) {
      IRIS_RETURN_IF_ERROR(ListWithinBound(a.list().size() + b.list().size()));
      ValueList out = a.list();
      out.insert(out.end(), b.list().begin(), b.list().end());
      return Value::List(std::move(out));
    }
    return OperandError(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_sub_overflow(a.AsInt(), b.AsInt(), &r))
        return InvalidArgument("integer overflow");
      return Value::Int(r);
    }
    if (numbers) return Value::Float(a.AsDouble() - b.AsDouble());
    return OperandError(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_mul_overflow(a.AsInt(), b.AsInt(), &r))
        return InvalidArgument("integer overflow");
      return Value::Int(r);
    }
    if (numbers) return Value::Float(a.AsDouble() * b.AsDouble());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return Repeat(a, b.AsInt());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return Repeat(b, a.AsInt());
    return OperandError(op, a, b);
  }
  if (!numbers) {
    if (op == "%" && a.is_string()) {
      return InvalidArgument("printf-style string formatting ('%') is not supported");
    }
    return OperandError(op, a, b);
  }
  if (op == "/") {
    if (b.AsDouble() == 0.0) return InvalidArgument("division by zero");
    return Value::Float(a.AsDouble() / b.AsDouble());
  }
  if (op == "//") return FloorDivide(a, b);
  if (op == "%") return Modulo(a, b);
  if (op == "**") return Power(a, b);
  return InvalidArgument("unknown operator '" + std::string(op) + "'");
}

Result<bool> Compare(std::string_view op, const Value& a, const Value& b) {
  if (op == "==") return Equals(a, b);
  if (op == "!=") return !Equals(a, b);
  if (op == "in") return Contains(b, a);
  if (op == "not in") {
    IRIS_ASSIGN_OR_RETURN(bool in, Contains(b, a));
    return !in;
  }
  IRIS_ASSIGN_OR_RETURN(int c, OrderCompare(a, b, op));
  if (c == 2) return false;
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  if (op == ">=") return c >= 0;
  return InvalidArgument("unknown comparison '" + std::string(op) + "'");
}

Result<ValueList> Iterate(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kList:
      return v.list();
    case ValueKind::kDict: {
      ValueList keys;
      for (const auto& entry : v.dict().items()) keys.push_back(Value::String(entry.first));
      return keys;
    }
    case ValueKind::kString: {
      ValueList chars;
      for (std::string& cp : CodePoints(v.str())) chars.push_back(Value::String(std::move(cp)));
      return chars;
    }
    case ValueKind::kUndefined:
      return ValueList{};
    default:
      return TypeError("'" + std::string(TypeName(v)) + "' object is not iterable");
  }
}

}  // namespace iris::tokenizer::jinja
