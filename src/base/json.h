// One JSON library everywhere (Boost.JSON); helpers that turn its exceptions and
// error codes into Status values naming the file or field.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace iris {

// Parses `text`; on failure the message names `what` (a file path or field) and the offset.
Result<boost::json::value> ParseJson(std::string_view text, std::string_view what);
// Reads and parses a JSON file.
Result<boost::json::value> ReadJsonFile(const std::string& path);

}  // namespace iris
