// Schema checks and Anthropic's schema subset (see json_schema.h).
#include "gateway/api/json_schema.h"

#include <boost/json.hpp>
#include <cmath>
#include <string_view>

#include "base/json.h"

namespace iris::gateway::api {

namespace json = boost::json;

namespace {

constexpr int kMaxDepth = 64;
constexpr int kMaxSteps = 100000;

std::string Show(const json::value& v) {
  std::string s = SerializeJson(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool IsInteger(const json::value& v) {
  if (v.is_int64() || v.is_uint64()) return true;
  return v.is_double() && std::isfinite(v.get_double()) &&
         std::floor(v.get_double()) == v.get_double();
}

std::optional<double> Number(const json::value* v) {
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->to_number<double>();
}

bool HasType(const json::value& instance, std::string_view type) {
  if (type == "null") return instance.is_null();
  if (type == "boolean") return instance.is_bool();
  if (type == "string") return instance.is_string();
  if (type == "array") return instance.is_array();
  if (type == "object") return instance.is_object();
  if (type == "number") return instance.is_number();
  if (type == "integer") return instance.is_number() && IsInteger(instance);
  return true;  // (an unknown type name constrains nothing here)
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool JsonEqual(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  return a == b;
}

class Checker {
 public:
  explicit Checker(const json::value& root) : root_(root) {}

  std::optional<std::string> Check(const json::value& v, const json::value& s,
                                   const std::string& path, int depth) {
    if (depth > kMaxDepth || ++steps_ > kMaxSteps) {
      exhausted_ = true;  // (unchecked, not valid: `not` and oneOf must not judge on it)
      return std::nullopt;
    }
    if (s.is_bool()) {
      if (!s.get_bool()) return path + ": no value is allowed here";
      return std::nullopt;
    }
    if (!s.is_object()) return std::nullopt;
    const json::object& o = s.get_object();
    if (const json::value* ref = o.if_contains("$ref"); ref != nullptr && ref->is_string()) {
      if (const json::value* target = Resolve(ref->get_string())) {
        if (auto e = Check(v, *target, path, depth + 1)) return e;
      }
    }
    if (const json::value* t = o.if_contains("type")) {
      bool ok = !t->is_string() && !t->is_array();
      if (t->is_string()) ok = HasType(v, t->get_string());
      if (t->is_array()) {
        for (const json::value& one : t->get_array()) {
          ok = ok || (one.is_string() && HasType(v, one.get_string()));
        }
      }
      if (!ok) return path + ": " + Show(v) + " is not of type " + Show(*t);
    }
    if (const json::value* e = o.if_contains("enum"); e != nullptr && e->is_array()) {
      bool found = false;
      for (const json::value& x : e->get_array()) found = found || JsonEqual(x, v);
      if (!found) return path + ": " + Show(v) + " is not one of " + Show(*e);
    }
    if (const json::value* c = o.if_contains("const"); c != nullptr && !JsonEqual(*c, v)) {
      return path + ": " + Show(v) + " is not " + Show(*c);
    }
    if (v.is_number()) {
      const double x = v.to_number<double>();
      if (auto m = Number(o.if_contains("minimum")); m && x < *m) {
        return path + ": " + Show(v) + " is below the minimum " + Show(o.at("minimum"));
      }
      if (auto m = Number(o.if_contains("maximum")); m && x > *m) {
        return path + ": " + Show(v) + " is above the maximum " + Show(o.at("maximum"));
      }
      if (auto m = Number(o.if_contains("exclusiveMinimum")); m && x <= *m) {
        return path + ": " + Show(v) + " is not above " + Show(o.at("exclusiveMinimum"));
      }
      if (auto m = Number(o.if_contains("exclusiveMaximum")); m && x >= *m) {
        return path + ": " + Show(v) + " is not below " + Show(o.at("exclusiveMaximum"));
      }
      if (auto m = Number(o.if_contains("multipleOf")); m && *m > 0) {
        const double q = x / *m;
        if (std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q))) {
          return path + ": " + Show(v) + " is not a multiple of " + Show(o.at("multipleOf"));
        }
      }
    }
    if (v.is_string()) {
      const size_t n = CodePoints(v.get_string());
      if (auto m = Number(o.if_contains("minLength")); m && n < *m) {
        return path + ": the string is shorter than " + Show(o.at("minLength")) + " characters";
      }
      if (auto m = Number(o.if_contains("maxLength")); m && n > *m) {
        return path + ": the string is longer than " + Show(o.at("maxLength")) + " characters";
      }
    }
    if (v.is_array()) {
      const json::array& a = v.get_array();
      if (auto m = Number(o.if_contains("minItems")); m && a.size() < *m) {
        return path + ": fewer than " + Show(o.at("minItems")) + " items";
      }
      if (auto m = Number(o.if_contains("maxItems")); m && a.size() > *m) {
        return path + ": more than " + Show(o.at("maxItems")) + " items";
      }
      if (const json::value* u = o.if_contains("uniqueItems"); u && u->is_bool() && u->get_bool()) {
        for (size_t i = 0; i < a.size(); ++i) {
          for (size_t j = i + 1; j < a.size(); ++j) {
            if (++steps_ > kMaxSteps) {
              exhausted_ = true;
              return std::nullopt;
            }
            if (JsonEqual(a[i], a[j]))
              return path + ": items " + std::to_string(i) + " and " + std::to_string(j) +
                     " are equal";
          }
        }
      }
      if (const json::value* items = o.if_contains("items"); items != nullptr) {
        for (size_t i = 0; i < a.size(); ++i) {
          if (auto e = Check(a[i], *items, path + "[" + std::to_string(i) + "]", depth + 1)) {
            return e;
          }
        }
      }
    }
    if (v.is_object()) {
      const json::object& obj = v.get_object();
      if (auto m = Number(o.if_contains("minProperties")); m && obj.size() < *m) {
        return path + ": fewer than " + Show(o.at("minProperties")) + " properties";
      }
      if (auto m = Number(o.if_contains("maxProperties")); m && obj.size() > *m) {
        return path + ": more than " + Show(o.at("maxProperties")) + " properties";
      }
      if (const json::value* r = o.if_contains("required"); r != nullptr && r->is_array()) {
        for (const json::value& name : r->get_array()) {
          if (name.is_string() && !obj.contains(name.get_string())) {
            return path + ": the property " + Show(name) + " is missing";
          }
        }
      }
      const json::object* props = nullptr;
      if (const json::value* p = o.if_contains("properties"); p != nullptr && p->is_object()) {
        props = &p->get_object();
      }
      const json::value* extra = o.if_contains("additionalProperties");
      for (const auto& [key, value] : obj) {
        const std::string sub = path + "." + std::string(key);
        if (props != nullptr) {
          if (const json::value* ps = props->if_contains(key)) {
            if (auto e = Check(value, *ps, sub, depth + 1)) return e;
            continue;
          }
        }
        if (extra != nullptr) {
          if (auto e = Check(value, *extra, sub, depth + 1)) return e;
        }
      }
    }
    if (const json::value* all = o.if_contains("allOf"); all != nullptr && all->is_array()) {
      for (const json::value& sub : all->get_array()) {
        if (auto e = Check(v, sub, path, depth + 1)) return e;
      }
    }
    for (std::string_view key : {"anyOf", "oneOf"}) {
      const json::value* alts = o.if_contains(key);
      if (alts == nullptr || !alts->is_array() || alts->get_array().empty()) continue;
      size_t matched = 0;
      std::optional<std::string> first;
      for (const json::value& sub : alts->get_array()) {
        auto e = Check(v, sub, path, depth + 1);
        if (!e) ++matched;
        if (e && !first) first = e;
      }
      if (exhausted_) return std::nullopt;
      if (matched == 0) return *first;
      if (key == "oneOf" && matched > 1) return path + ": matches more than one of oneOf";
    }
    if (const json::value* n = o.if_contains("not"); n != nullptr) {
      if (!Check(v, *n, path, depth + 1) && !exhausted_) {
        return path + ": matches a schema it must not";
      }
    }
    return std::nullopt;
  }

 private:
  const json::value* Resolve(std::string_view ref) const {
    for (std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
      if (!ref.starts_with(prefix) || !root_.is_object()) continue;
      const json::value* defs = root_.get_object().if_contains(prefix.substr(2, prefix.size() - 3));
      if (defs == nullptr || !defs->is_object()) return nullptr;
      return defs->get_object().if_contains(ref.substr(prefix.size()));
    }
    if (ref == "#") return &root_;
    return nullptr;
  }

  const json::value& root_;
  int steps_ = 0;

 public:
  bool exhausted_ = false;  // a bound ended the check somewhere
};

// Anthropic's structured outputs refuse these; they move into the description.
constexpr std::string_view kMovedKeywords[] = {
    "minimum",   "maximum",  "exclusiveMinimum", "exclusiveMaximum", "multipleOf",   "minLength",
    "maxLength", "maxItems", "uniqueItems",      "minProperties",    "maxProperties"};

json::value Adapt(const json::value& s, bool& moved, int depth) {
  if (!s.is_object() || depth > kMaxDepth) return s;
  json::object out;
  std::string notes;
  for (const auto& [key, value] : s.get_object()) {
    bool move = false;
    for (std::string_view k : kMovedKeywords) move = move || key == k;
    if (key == "minItems" && value.is_number() && value.to_number<double>() > 1) move = true;
    if (move) {
      notes += (notes.empty() ? "" : ", ") + std::string(key) + ": " + SerializeJson(value);
      continue;
    }
    if ((key == "properties" || key == "$defs" || key == "definitions") && value.is_object()) {
      json::object sub;
      for (const auto& [name, schema] : value.get_object())
        sub[name] = Adapt(schema, moved, depth + 1);
      out[key] = std::move(sub);
    } else if ((key == "items" || key == "not" || key == "additionalProperties") &&
               value.is_object()) {
      out[key] = Adapt(value, moved, depth + 1);
    } else if ((key == "anyOf" || key == "oneOf" || key == "allOf" || key == "prefixItems") &&
               value.is_array()) {
      json::array sub;
      for (const json::value& schema : value.get_array())
        sub.push_back(Adapt(schema, moved, depth + 1));
      out[key] = std::move(sub);
    } else {
      out[key] = value;
    }
  }
  const json::value* type = out.if_contains("type");
  const bool object_type =
      (type != nullptr && type->is_string() && type->get_string() == "object") ||
      out.contains("properties");
  if (object_type) {
    const json::value* extra = out.if_contains("additionalProperties");
    if (extra == nullptr || !extra->is_bool() || extra->get_bool()) {
      if (extra != nullptr)
        notes += (notes.empty() ? "" : ", ") + std::string("additionalProperties: ") +
                 SerializeJson(*extra);
      out["additionalProperties"] = false;
      if (extra != nullptr) moved = true;
    }
  }
  if (!notes.empty()) {
    moved = true;
    std::string description;
    if (const json::value* d = out.if_contains("description"); d != nullptr && d->is_string()) {
      description = std::string(d->get_string()) + " ";
    }
    out["description"] = description + "(" + notes + ")";
  }
  return out;
}

}  // namespace

std::optional<std::string> SchemaViolation(const boost::json::value& instance,
                                           const boost::json::value& schema) {
  Checker checker(schema);
  std::optional<std::string> violation = checker.Check(instance, schema, "$", 0);
  if (checker.exhausted_) return std::nullopt;  // (what a bound cut short is not judged)
  return violation;
}

boost::json::value AnthropicSchema(const boost::json::value& schema, bool* moved) {
  bool any = false;
  json::value out = Adapt(schema, any, 0);
  if (moved != nullptr) *moved = any;
  return out;
}

}  // namespace iris::gateway::api
