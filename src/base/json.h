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

// JSON text like boost::json::serialize, except that doubles are written in their shortest
// round-trip form as people and strict parsers expect ("1234.5", "0.7", "5.85e-06"), not
// Boost.JSON 1.81's "1.2345E3". A non-finite double (which JSON cannot hold) is written as
// null. Every body iris sends is written with this.
std::string SerializeJson(const boost::json::value& value);
std::string SerializeJson(const boost::json::object& object);
std::string SerializeJson(const boost::json::array& array);
// SerializeJson(object) appended to `out`.
void AppendJson(const boost::json::object& object, std::string& out);

}  // namespace iris
