// The gateway's JSON field readers (see json_fields.h).
#include "gateway/api/json_fields.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <utility>

#include "base/json.h"
#include "gateway/api/identifiers.h"

namespace iris::gateway::api {

namespace json = boost::json;

std::string MemberPath(std::string_view base, std::string_view key) {
  if (base.empty()) return std::string(key);
  std::string path;
  path.reserve(base.size() + 1 + key.size());
  path.append(base).append(".").append(key);
  return path;
}

std::string ElementPath(std::string_view base, size_t index) {
  std::string path(base);
  path.append("[").append(std::to_string(index)).append("]");
  return path;
}

Status FieldError(std::string_view path, std::string_view what) {
  std::string message(path);
  message.append(": ").append(what);
  return InvalidArgument(std::move(message));
}

Status MissingField(std::string_view path) { return FieldError(path, "required"); }

Status TypeError(std::string_view path, std::string_view expected, const json::value& got) {
  std::string what = "expected ";
  what.append(expected).append(", got ").append(KindName(got));
  return FieldError(path, what);
}

std::string_view KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  out.append(s).append("\"");
  return out;
}

// ---- Strict ----------------------------------------------------------------------------

const json::value* FindField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

Result<const json::value*> RequireField(const json::object& o, std::string_view key,
                                        std::string_view base) {
  const json::value* v = FindField(o, key);
  if (v == nullptr) return MissingField(MemberPath(base, key));
  return v;
}

Result<std::string> AsString(const json::value& v, std::string_view path) {
  if (!v.is_string()) return TypeError(path, "a string", v);
  return std::string(v.get_string());
}

Result<bool> AsBool(const json::value& v, std::string_view path) {
  if (!v.is_bool()) return TypeError(path, "a boolean", v);
  return v.get_bool();
}

Result<double> AsNumber(const json::value& v, std::string_view path) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return TypeError(path, "a number", v);
}

namespace {

// A bound as people write it: "2", "-2", "0.25" (SerializeJson alone writes 2.0).
std::string Bound(double d) {
  if (std::trunc(d) == d && std::fabs(d) < 9e15) return std::to_string(static_cast<int64_t>(d));
  return SerializeJson(json::value(d));
}

}  // namespace

Result<double> AsNumberInRange(const json::value& v, std::string_view path, double lo, double hi) {
  IRIS_ASSIGN_OR_RETURN(double d, AsNumber(v, path));
  if (!(d >= lo && d <= hi)) {
    return FieldError(path, "must be between " + Bound(lo) + " and " + Bound(hi));
  }
  return d;
}

Result<std::optional<double>> OptionalNumberInRange(const json::object& o, std::string_view key,
                                                    double lo, double hi) {
  const json::value* v = FindField(o, key);
  if (v == nullptr) return std::optional<double>();
  IRIS_ASSIGN_OR_RETURN(double d, AsNumberInRange(*v, key, lo, hi));
  return std::optional<double>(d);
}

Result<int64_t> AsInt(const json::value& v, std::string_view path) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(path, "integer out of range");
    }
    return static_cast<int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    double d = v.get_double();
    if (std::trunc(d) == d) {
      if (std::fabs(d) < 9e15) return static_cast<int64_t>(d);
      return FieldError(path, "integer out of range");
    }
  }
  return TypeError(path, "an integer", v);
}

Result<const json::object*> AsObject(const json::value& v, std::string_view path) {
  if (!v.is_object()) return TypeError(path, "an object", v);
  return &v.get_object();
}

Result<const json::array*> AsArray(const json::value& v, std::string_view path) {
  if (!v.is_array()) return TypeError(path, "an array", v);
  return &v.get_array();
}

Result<std::vector<std::string>> AsStringList(const json::value& v, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(const json::array* a, AsArray(v, path));
  std::vector<std::string> out;
  out.reserve(a->size());
  for (size_t i = 0; i < a->size(); ++i) {
    IRIS_ASSIGN_OR_RETURN(std::string s, AsString((*a)[i], ElementPath(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::string> RequiredString(const json::object& o, std::string_view key,
                                   std::string_view base) {
  IRIS_ASSIGN_OR_RETURN(const json::value* v, RequireField(o, key, base));
  return AsString(*v, MemberPath(base, key));
}

Result<const json::object*> RequiredObject(const json::object& o, std::string_view key,
                                           std::string_view base) {
  IRIS_ASSIGN_OR_RETURN(const json::value* v, RequireField(o, key, base));
  return AsObject(*v, MemberPath(base, key));
}

Result<json::object> ParseObjectText(std::string_view text, std::string_view path) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return FieldError(path, "expected a JSON object, got invalid JSON");
  if (!v.is_object()) return TypeError(path, "a JSON object", v);
  return std::move(v.get_object());
}

// ---- Lenient ---------------------------------------------------------------------------

std::string StringField(const json::object& o, std::string_view key, std::string_view fallback) {
  const json::value* v = o.if_contains(key);
  if (v != nullptr && v->is_string()) return std::string(v->get_string());
  return std::string(fallback);
}

std::string StringOrIntegerField(const json::object& o, std::string_view key,
                                 std::string_view fallback) {
  const json::value* v = o.if_contains(key);
  if (v != nullptr && v->is_string()) return std::string(v->get_string());
  if (v != nullptr && (v->is_int64() || v->is_uint64())) return SerializeJson(*v);
  return std::string(fallback);
}

const json::object* ObjectField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v != nullptr && v->is_object()) ? &v->get_object() : nullptr;
}

const json::array* ArrayField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v != nullptr && v->is_array()) ? &v->get_array() : nullptr;
}

bool BoolField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->get_bool();
}

int64_t IntField(const json::object& o, std::string_view key) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    return v->get_uint64() > static_cast<uint64_t>(kMax) ? kMax
                                                         : static_cast<int64_t>(v->get_uint64());
  }
  if (v->is_double()) {
    // Casting a double outside int64's range is undefined; 2^63 is exact in a double.
    double d = v->get_double();
    if (std::isnan(d)) return 0;
    if (d >= 0x1p63) return kMax;
    if (d < -0x1p63) return kMin;
    return static_cast<int64_t>(d);
  }
  return 0;
}

void AddFieldName(std::vector<std::string>& names, std::string_view name) {
  bool plain = !name.empty() && name.size() <= 64;
  for (char c : name) {
    plain =
        plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  AddNote(names, plain ? name : std::string_view("(unnamed)"));
}

void AddNote(std::vector<std::string>& notes, std::string_view note) {
  for (const std::string& n : notes) {
    if (n == note) return;
  }
  if (notes.size() > kMaxFieldNames) return;
  notes.emplace_back(notes.size() == kMaxFieldNames ? std::string_view("...") : note);
}

void NoteAsIsOnly(std::vector<std::string>* as_is_only, std::string_view path,
                  std::string_view type) {
  constexpr size_t kMaxType = 48;
  bool plain = !type.empty() && type.size() <= kMaxType;
  for (char c : type) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-' || c == ' ');
  }
  // (A path may hold a caller's member names.)
  AddNote(*as_is_only,
          ShownText(path, 160) + " (" + (plain ? std::string(type) : "an unknown type") + ")");
}

std::vector<std::string> UninterpretedKeys(const boost::json::object& o,
                                           std::initializer_list<std::string_view> known) {
  std::vector<std::string> out;
  for (const auto& [key, value] : o) {
    if (value.is_null()) continue;
    bool is_known = false;
    for (std::string_view k : known) is_known = is_known || key == k;
    if (!is_known) AddFieldName(out, key);
  }
  return out;
}

int64_t TokenCountField(const json::object& o, std::string_view key) {
  return std::clamp<int64_t>(IntField(o, key), 0, kMaxTokenCount);
}

}  // namespace iris::gateway::api
