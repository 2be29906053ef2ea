#include "base/json.h"

#include "base/mapped_file.h"

namespace iris {

Result<boost::json::value> ParseJson(std::string_view text, std::string_view what) {
  boost::json::stream_parser p;
  boost::system::error_code ec;
  size_t n = p.write_some(text.data(), text.size(), ec);
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

}  // namespace iris
