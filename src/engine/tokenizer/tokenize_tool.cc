// The body of `iris tokenize`, kept out of the CLI so it can be tested with string streams.
#include "engine/tokenizer/tokenize_tool.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstdint>
#include <istream>
#include <limits>
#include <ostream>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/tokenizer/tokenizer.h"

namespace iris::tokenizer {
namespace {

Result<std::vector<int32_t>> ParseIds(std::string_view text) {
  IRIS_ASSIGN_OR_RETURN(boost::json::value value, ParseJson(text, "token ids on stdin"));
  if (!value.is_array()) return InvalidArgument("token ids on stdin: expected a JSON array");
  std::vector<int32_t> ids;
  ids.reserve(value.get_array().size());
  for (const boost::json::value& element : value.get_array()) {
    const bool in_range =
        (element.is_int64() && element.get_int64() >= 0 &&
         element.get_int64() <= std::numeric_limits<int32_t>::max()) ||
        (element.is_uint64() && element.get_uint64() <= std::numeric_limits<int32_t>::max());
    if (!in_range) {
      return InvalidArgument("token ids on stdin: element " + std::to_string(ids.size()) +
                             " is not a token id (" + boost::json::serialize(element) + ")");
    }
    ids.push_back(static_cast<int32_t>(element.to_number<int64_t>()));
  }
  return ids;
}

Status Run(const std::string& tokenizer_path, bool decode, std::istream& in, std::ostream& out) {
  IRIS_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::FromFile(tokenizer_path));
  std::string input;
  std::array<char, 1 << 16> buffer;
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
    input.append(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return DataLoss("cannot read standard input");
  if (decode) {
    IRIS_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(input));
    IRIS_ASSIGN_OR_RETURN(std::string text, tokenizer.Decode(ids, /*skip_special=*/false));
    out << text;
  } else {
    const std::vector<int32_t> ids = tokenizer.Encode(input);
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) line += ',';
      line += std::to_string(ids[i]);
    }
    line += "]\n";
    out << line;
  }
  out.flush();
  if (!out) return DataLoss("cannot write standard output");
  return OkStatus();
}

}  // namespace

int RunTokenizeTool(const std::string& tokenizer_path, bool decode, std::istream& in,
                    std::ostream& out, std::ostream& err) {
  const Status status = Run(tokenizer_path, decode, in, out);
  if (status.ok()) return 0;
  std::string message = status.message();
  std::replace(message.begin(), message.end(), '\n', ' ');
  err << "iris tokenize: " << message << '\n';
  return 1;
}

}  // namespace iris::tokenizer
