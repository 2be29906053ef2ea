#include "base/json.h"

#include <charconv>
#include <cmath>

#include "base/mapped_file.h"
#include "base/utf8.h"

namespace iris {

Result<boost::json::value> ParseJson(std::string_view text, std::string_view what,
                                     boost::json::storage_ptr storage) {
  // The parser's own working stacks start in this buffer (a request or an answer of a few
  // KiB never allocates for them); the value it makes lives in `storage`.
  unsigned char scratch[4096];
  boost::json::stream_parser p({}, {}, scratch);
  p.reset(std::move(storage));
  boost::system::error_code ec;
  // One JSON text and nothing after it but whitespace: `{...}junk` is "extra data" at the
  // junk's first byte (write_some stopped at the value, and finish() then called it
  // incomplete, which misled whoever read the message).
  size_t n = p.write(text.data(), text.size(), ec);
  if (!ec) p.finish(ec);
  if (ec) {
    return InvalidArgument(std::string(what) + ": invalid JSON at byte " + std::to_string(n) +
                           ": " + ec.message());
  }
  return p.release();
}

Result<boost::json::value> ReadJsonFile(const std::string& path) {
  IRIS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseJson(text, path);
}

namespace {

void Write(const boost::json::value& v, std::string& out);

void WriteString(boost::json::string_view s, std::string& out) {
  // Printable ASCII other than '"' and '\\' needs no escaping: appended as it is, without the
  // temporary string Boost.JSON's serialize() builds. Anything else gets Boost.JSON's escaping,
  // and JSON text is UTF-8: bytes that are not (a provider's plain-text error cut at a length,
  // say) are written as U+FFFD, so that no reader's parser refuses the whole document.
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') {
      const std::string_view view(s.data(), s.size());
      out +=
          IsValidUtf8(view) ? boost::json::serialize(s) : boost::json::serialize(LossyUtf8(view));
      return;
    }
  }
  out.push_back('"');
  out.append(s.data(), s.size());
  out.push_back('"');
}

void WriteObject(const boost::json::object& o, std::string& out) {
  out.push_back('{');
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out.push_back(',');
    first = false;
    WriteString(kv.key(), out);
    out.push_back(':');
    Write(kv.value(), out);
  }
  out.push_back('}');
}

void WriteArray(const boost::json::array& a, std::string& out) {
  out.push_back('[');
  bool first = true;
  for (const boost::json::value& v : a) {
    if (!first) out.push_back(',');
    first = false;
    Write(v, out);
  }
  out.push_back(']');
}

void Write(const boost::json::value& v, std::string& out) {
  char buf[32];
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64: {
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v.get_int64());
      out.append(buf, end);
      return;
    }
    case boost::json::kind::uint64: {
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v.get_uint64());
      out.append(buf, end);
      return;
    }
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
      const std::string_view text(buf, static_cast<size_t>(end - buf));
      out += text;
      // A double stays a double for typed readers: 1.0, not 1.
      if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
      return;
    }
    case boost::json::kind::string:
      WriteString(v.get_string(), out);
      return;
    case boost::json::kind::array:
      WriteArray(v.get_array(), out);
      return;
    case boost::json::kind::object:
      WriteObject(v.get_object(), out);
      return;
  }
}

}  // namespace

// (Room for a typical body up front: growing a string from empty one character at a time
// reallocates it five or six times on the way to a few hundred bytes.)
constexpr size_t kFirstReserve = 256;

std::string SerializeJson(const boost::json::value& value) {
  std::string out;
  out.reserve(kFirstReserve);
  Write(value, out);
  return out;
}

std::string SerializeJson(const boost::json::object& object) {
  std::string out;
  out.reserve(kFirstReserve);
  WriteObject(object, out);
  return out;
}

std::string SerializeJson(const boost::json::array& array) {
  std::string out;
  out.reserve(kFirstReserve);
  WriteArray(array, out);
  return out;
}

void AppendJson(const boost::json::object& object, std::string& out) { WriteObject(object, out); }

}  // namespace iris
