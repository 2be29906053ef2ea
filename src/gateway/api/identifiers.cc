// The character sets of caller-supplied names, checked once at decode time.
#include "gateway/api/identifiers.h"

namespace iris::gateway::api {
namespace {

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::string ShownText(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f && c != '"' && c != '\\' ? c : '?');
  }
  if (s.size() > max) out += "...";
  return out;
}

bool IsItemId(std::string_view id) {
  if (id.empty() || id.size() > kMaxItemIdBytes) return false;
  for (char c : id) {
    if (!IsAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

Status CheckModelId(std::string_view id, std::string_view field) {
  const std::string f(field);
  if (id.empty()) return InvalidArgument(f + ": must not be empty");
  if (id.size() > kMaxModelIdBytes) {
    return InvalidArgument(f + ": a model id is at most " + std::to_string(kMaxModelIdBytes) +
                           " bytes, got " + std::to_string(id.size()));
  }
  for (char c : id) {
    if (IsAlnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '@') {
      continue;
    }
    return InvalidArgument(f + ": \"" + ShownText(id) +
                           "\" is not a valid model id (letters, digits and . _ - : / @ only)");
  }
  if (id.find("..") != std::string_view::npos || id.front() == '/' || id.back() == '/' ||
      id.find("//") != std::string_view::npos) {
    return InvalidArgument(f + ": \"" + ShownText(id) +
                           "\" is not a valid model id (no \"..\" and no empty path segment)");
  }
  return OkStatus();
}

Status CheckProviderName(std::string_view name, std::string_view field) {
  const std::string f(field);
  if (name.empty() || name.size() > kMaxProviderNameBytes) {
    return InvalidArgument(f + ": a provider name is 1 to " +
                           std::to_string(kMaxProviderNameBytes) + " bytes");
  }
  for (char c : name) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') {
      return InvalidArgument(f + ": \"" + ShownText(name) +
                             "\" is not a valid provider name (letters, digits and . _ - only)");
    }
  }
  return OkStatus();
}

std::string EncodePathSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size());
  for (char c : segment) {
    if (IsAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

}  // namespace iris::gateway::api
