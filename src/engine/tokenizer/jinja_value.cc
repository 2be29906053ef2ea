// Python semantics for the chat template interpreter's values: truth, equality, str(),
// repr(), json.dumps() and the conversion from the JSON render context.
#include "engine/tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace iris::tokenizer::jinja {

const Value* ValueDict::Find(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ValueDict::Set(std::string key, Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(value));
}

double Value::AsDouble() const {
  switch (kind_) {
    case ValueKind::kFloat:
      return float_value();
    case ValueKind::kInt:
      return static_cast<double>(int_value());
    default:
      return bool_value() ? 1.0 : 0.0;
  }
}

const void* Value::identity() const {
  if (const auto* d = std::get_if<std::shared_ptr<ValueDict>>(&data_)) return d->get();
  if (const auto* l = std::get_if<std::shared_ptr<ValueList>>(&data_)) return l->get();
  if (const auto* c = std::get_if<std::shared_ptr<const Callable>>(&data_)) return c->get();
  return nullptr;
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return false;
    case ValueKind::kBool:
      return v.bool_value();
    case ValueKind::kInt:
      return v.int_value() != 0;
    case ValueKind::kFloat:
      return v.float_value() != 0.0;
    case ValueKind::kString:
      return !v.str().empty();
    case ValueKind::kList:
      return !v.list().empty();
    case ValueKind::kDict:
      return !v.dict().empty();
    case ValueKind::kNamespace:
    case ValueKind::kCallable:
      return true;
  }
  return false;
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.AsDouble() == b.AsDouble();
    return a.AsInt() == b.AsInt();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return true;
    case ValueKind::kString:
      return a.str() == b.str();
    case ValueKind::kList: {
      const ValueList& x = a.list();
      const ValueList& y = b.list();
      if (a.is_tuple() != b.is_tuple() || x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Equals(x[i], y[i])) return false;
      }
      return true;
    }
    case ValueKind::kDict: {
      const ValueDict& x = a.dict();
      const ValueDict& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* other = y.Find(k);
        if (other == nullptr || !Equals(v, *other)) return false;
      }
      return true;
    }
    default:
      return a.identity() == b.identity();
  }
}

std::string_view TypeName(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "NoneType";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "str";
    case ValueKind::kList:
      return "list";
    case ValueKind::kDict:
      return "dict";
    case ValueKind::kNamespace:
      return "Namespace";
    case ValueKind::kCallable:
      return "function";
  }
  return "object";
}

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits, then Python's layout: fixed when -4 < decimal point <= 16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  int decpt = exponent + 1;
  int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= n) {
      out += digits;
      out.append(static_cast<size_t>(decpt - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out += '.';
      out += digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits[0];
  if (n > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out += exp_buf;
  return out;
}

namespace {

std::string ReprString(const std::string& s) {
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += quote;
  return out;
}

// Decodes one UTF-8 sequence at s[*i], advancing *i; an invalid byte decodes to itself.
uint32_t NextCodePoint(std::string_view s, size_t* i) {
  auto b0 = static_cast<unsigned char>(s[*i]);
  size_t len = b0 < 0x80           ? 1
               : (b0 >> 5) == 0x6  ? 2
               : (b0 >> 4) == 0xe  ? 3
               : (b0 >> 3) == 0x1e ? 4
                                   : 0;
  if (len <= 1 || *i + len > s.size()) {
    ++*i;
    return b0;
  }
  uint32_t cp = b0 & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[*i + k]);
    if ((b & 0xc0) != 0x80) {
      ++*i;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  *i += len;
  return cp;
}

void AppendJsonString(const std::string& s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    uint32_t cp = NextCodePoint(s, &i);
    switch (cp) {
      case '"':
        *out += "\\\"";
        continue;
      case '\\':
        *out += "\\\\";
        continue;
      case '\n':
        *out += "\\n";
        continue;
      case '\r':
        *out += "\\r";
        continue;
      case '\t':
        *out += "\\t";
        continue;
      case '\b':
        *out += "\\b";
        continue;
      case '\f':
        *out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (cp < 0x20 || (ensure_ascii && cp > 0x7e)) {
      if (cp > 0xffff) {
        uint32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      *out += buf;
    } else {
      out->append(s, start, i - start);
    }
  }
  out->push_back('"');
}

}  // namespace

Status StringWithinBound(size_t bytes) {
  if (bytes <= kMaxStringBytes) return OkStatus();
  return ResourceExhausted("a string longer than " + std::to_string(kMaxStringBytes) + " bytes");
}

Status ListWithinBound(size_t items) {
  if (items <= kMaxListItems) return OkStatus();
  return ResourceExhausted("a list of more than " + std::to_string(kMaxListItems) + " items");
}

namespace {

Status WithinBound(const std::string& json) {
  if (json.size() <= kMaxStringBytes) return OkStatus();
  return ResourceExhausted("tojson: the JSON exceeds " + std::to_string(kMaxStringBytes) +
                           " bytes");
}

Status DumpJson(const Value& v, const JsonOptions& opt, int level, std::string* out) {
  const std::string& item_sep =
      opt.has_separators ? opt.item_separator : (opt.has_indent ? std::string(",") : ", ");
  const std::string& key_sep = opt.has_separators ? opt.key_separator : std::string(": ");
  auto newline = [&](int depth) {
    if (!opt.has_indent) return;
    out->push_back('\n');
    for (int i = 0; i < depth; ++i) *out += opt.indent;
  };
  switch (v.kind()) {
    case ValueKind::kNone:
      *out += "null";
      return OkStatus();
    case ValueKind::kBool:
      *out += v.bool_value() ? "true" : "false";
      return OkStatus();
    case ValueKind::kInt:
      *out += std::to_string(v.int_value());
      return OkStatus();
    case ValueKind::kFloat: {
      double d = v.float_value();
      if (std::isnan(d)) {
        *out += "NaN";
      } else if (std::isinf(d)) {
        *out += d < 0 ? "-Infinity" : "Infinity";
      } else {
        *out += FormatFloat(d);
      }
      return OkStatus();
    }
    case ValueKind::kString:
      AppendJsonString(v.str(), opt.ensure_ascii, out);
      return WithinBound(*out);
    case ValueKind::kList: {
      const ValueList& items = v.list();
      if (items.empty()) {
        *out += "[]";
        return OkStatus();
      }
      out->push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) *out += item_sep;
        newline(level + 1);
        IRIS_RETURN_IF_ERROR(DumpJson(items[i], opt, level + 1, out));
        IRIS_RETURN_IF_ERROR(WithinBound(*out));
      }
      newline(level);
      out->push_back(']');
      return OkStatus();
    }
    case ValueKind::kDict: {
      const ValueDict& dict = v.dict();
      if (dict.empty()) {
        *out += "{}";
        return OkStatus();
      }
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : dict.items()) entries.push_back(&entry);
      if (opt.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      out->push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) *out += item_sep;
        newline(level + 1);
        AppendJsonString(entries[i]->first, opt.ensure_ascii, out);
        *out += key_sep;
        IRIS_RETURN_IF_ERROR(DumpJson(entries[i]->second, opt, level + 1, out));
        IRIS_RETURN_IF_ERROR(WithinBound(*out));
      }
      newline(level);
      out->push_back('}');
      return OkStatus();
    }
    default:
      return InvalidArgument("Object of type " + std::string(TypeName(v)) +
                             " is not JSON serializable");
  }
}

}  // namespace

namespace {

// Appends repr(v), stopping (past kMaxStringBytes) before each further item of a container.
void AppendRepr(const Value& v, std::string* out) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      *out += "Undefined";
      return;
    case ValueKind::kString:
      *out += ReprString(v.str());
      return;
    case ValueKind::kList: {
      *out += v.is_tuple() ? "(" : "[";
      const ValueList& items = v.list();
      for (size_t i = 0; i < items.size() && out->size() <= kMaxStringBytes; ++i) {
        if (i > 0) *out += ", ";
        AppendRepr(items[i], out);
      }
      if (v.is_tuple()) {
        *out += items.size() == 1 ? ",)" : ")";
      } else {
        *out += "]";
      }
      return;
    }
    case ValueKind::kDict: {
      *out += "{";
      bool first = true;
      for (const auto& [k, item] : v.dict().items()) {
        if (out->size() > kMaxStringBytes) break;
        if (!first) *out += ", ";
        first = false;
        *out += ReprString(k) + ": ";
        AppendRepr(item, out);
      }
      *out += "}";
      return;
    }
    case ValueKind::kNamespace:
      *out += "<Namespace>";
      return;
    case ValueKind::kCallable:
      *out += "<function>";
      return;
    default:
      *out += ToStr(v);
      return;
  }
}

}  // namespace

std::string Repr(const Value& v) {
  std::string out;
  AppendRepr(v, &out);
  return out;
}

std::string ToStr(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "";
    case ValueKind::kNone:
      return "None";
    case ValueKind::kBool:
      return v.bool_value() ? "True" : "False";
    case ValueKind::kInt:
      return std::to_string(v.int_value());
    case ValueKind::kFloat:
      return FormatFloat(v.float_value());
    case ValueKind::kString:
      return v.str();
    default:
      return Repr(v);
  }
}

Result<std::string> ToJson(const Value& v, const JsonOptions& options) {
  std::string out;
  IRIS_RETURN_IF_ERROR(DumpJson(v, options, 0, &out));
  return out;
}

Value FromJson(const boost::json::value& json) {
  switch (json.kind()) {
    case boost::json::kind::null:
      return Value::None();
    case boost::json::kind::bool_:
      return Value::Bool(json.get_bool());
    case boost::json::kind::int64:
      return Value::Int(json.get_int64());
    case boost::json::kind::uint64: {
      uint64_t u = json.get_uint64();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::Int(static_cast<int64_t>(u));
      return Value::Float(static_cast<double>(u));
    }
    case boost::json::kind::double_:
      return Value::Float(json.get_double());
    case boost::json::kind::string:
      return Value::String(std::string(json.get_string()));
    case boost::json::kind::array: {
      ValueList items;
      items.reserve(json.get_array().size());
      for (const auto& item : json.get_array()) items.push_back(FromJson(item));
      return Value::List(std::move(items));
    }
    case boost::json::kind::object: {
      ValueDict dict;
      for (const auto& entry : json.get_object()) {
        dict.Set(std::string(entry.key()), FromJson(entry.value()));
      }
      return Value::Dict(std::move(dict));
    }
  }
  return Value::None();
}

std::vector<std::string> CodePoints(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    NextCodePoint(s, &i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  size_t i = 0;
  while (i < s.size()) {
    NextCodePoint(s, &i);
    ++n;
  }
  return n;
}

}  // namespace iris::tokenizer::jinja
