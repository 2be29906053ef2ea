// Lenient field reads for decoding provider answers: a missing or mistyped field reads as
// empty, because upstreams omit fields freely and the translators decide what is required.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace iris::gateway::providers {

// The string at `key`, or "" when absent or not a string.
inline std::string StringField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return (v != nullptr && v->is_string()) ? std::string(v->get_string()) : std::string();
}

// The object at `key`, or null when absent or not an object.
inline const boost::json::object* ObjectField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return (v != nullptr && v->is_object()) ? &v->get_object() : nullptr;
}

// The integer at `key` (a double is truncated), or 0 when absent or not a number.
inline int64_t IntField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  return 0;
}

}  // namespace iris::gateway::providers
