// One JSON library everywhere (Boost.JSON); helpers that turn its exceptions and
// error codes into Status values naming the file or field.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace iris {

// Parses `text`; on failure the message names `what` (a file path or field) and the offset.
// The value lives in `storage` (by default the heap).
Result<boost::json::value> ParseJson(std::string_view text, std::string_view what,
                                     boost::json::storage_ptr storage = {});
// Reads and parses a JSON file.
Result<boost::json::value> ReadJsonFile(const std::string& path);

// Storage for JSON that one function builds or parses and drops before it returns (an answer
// body it encodes, an upstream answer it decodes): the first 4 KiB on the stack, more from the
// heap, all of it freed at once at the end of the scope instead of one allocation per key,
// string, object and array. Nothing made in it may outlive it: a value that must (kept in a
// struct, returned) is copied into the default storage first, e.g.
// boost::json::value(v, boost::json::storage_ptr()).
class JsonScratch {
 public:
  JsonScratch() : resource_(buffer_, sizeof buffer_) {}
  JsonScratch(const JsonScratch&) = delete;
  JsonScratch& operator=(const JsonScratch&) = delete;
  // (Not owning: the values made with it must not outlive this scratch.)
  boost::json::storage_ptr storage() { return &resource_; }

 private:
  unsigned char buffer_[4096];
  boost::json::monotonic_resource resource_;
};

// JSON text like boost::json::serialize, except that doubles are written in their shortest
// round-trip form as people and strict parsers expect ("1234.5", "0.7", "5.85e-06"), not
// Boost.JSON 1.81's "1.2345E3". A non-finite double (which JSON cannot hold) is written as
// null. A string that is not valid UTF-8 is written with U+FFFD for each invalid sequence
// (JSON text is UTF-8). Every body iris sends is written with this.
std::string SerializeJson(const boost::json::value& value);
std::string SerializeJson(const boost::json::object& object);
std::string SerializeJson(const boost::json::array& array);
// SerializeJson(object) appended to `out`.
void AppendJson(const boost::json::object& object, std::string& out);

}  // namespace iris
