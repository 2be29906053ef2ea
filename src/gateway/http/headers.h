// A small ordered header list with case-insensitive lookup, shared by the inbound server and
// the outbound client so handlers and providers see one type and no Beast.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iris::gateway::http {

// ASCII case-insensitive equality (header names are ASCII tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// ASCII lower case (host names, schemes, media types); other bytes unchanged.
std::string ToLower(std::string_view s);

// What may be written on the wire. Every request line and header that iris writes goes
// through these checks, so no caller-supplied byte can end a line early and start another
// (request smuggling, header injection).
//
// A field name is an RFC 9110 token: 1*tchar, at most 256 bytes.
bool IsValidFieldName(std::string_view name);
// A field value holds visible ASCII, obs-text (0x80-0xFF), spaces and tabs: never CR, LF,
// NUL or another control byte. At most 64 KiB.
bool IsValidFieldValue(std::string_view value);
// A request target in origin form ("/path?query") or absolute form: visible ASCII only
// (no space, no control byte, no byte >= 0x80), non-empty, at most 64 KiB.
bool IsValidRequestTarget(std::string_view target);
// A method is a token (GET, POST, ...).
inline bool IsValidMethod(std::string_view method) { return IsValidFieldName(method); }

// Whether a host name (lower case) matches a configured pattern: the name itself, or
// "*.example.com" for every subdomain of example.com (not example.com itself).
bool HostMatches(std::string_view host, std::string_view pattern);

// Header fields in arrival order; duplicates are kept. Lookups are linear, which beats a map
// for the dozen fields a request carries. A value type; not thread-safe.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  Headers() = default;
  Headers(std::initializer_list<Field> fields) : fields_(fields) {}

  // Appends a field (a repeated name keeps both).
  void Add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  // Replaces every field named `name` by one field (appended when absent).
  void Set(std::string_view name, std::string value);
  // Removes every field named `name`.
  void Remove(std::string_view name);
  // The first value of `name`, or nullptr.
  const std::string* Find(std::string_view name) const;
  // The first value of `name`, or "" when absent.
  std::string_view Get(std::string_view name) const {
    const std::string* v = Find(name);
    return v ? std::string_view(*v) : std::string_view();
  }
  bool Has(std::string_view name) const { return Find(name) != nullptr; }

  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  void reserve(size_t n) { fields_.reserve(n); }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

}  // namespace iris::gateway::http
