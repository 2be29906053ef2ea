// Server-Sent Events framing: an incremental parser for upstream streams and an encoder
// for the streams iris sends.
#include "gateway/http/sse.h"

namespace iris::gateway::http {

void SseParser::Feed(std::string_view bytes, std::vector<SseEvent>& out) {
  bytes_seen_ += bytes.size();
  if (!bom_checked_ && !bytes.empty()) {
    // A UTF-8 BOM may start the stream; it can be split across feeds only in theory, and
    // upstreams do not send one, so a whole-prefix check is enough.
    if (bytes.size() >= 3 && bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
    bom_checked_ = true;
  }
  for (char c : bytes) {
    if (c == '\n' && last_was_cr_) {  // the \n of a \r\n pair
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = (c == '\r');
    if (c == '\n' || c == '\r') {
      ProcessLine(line_, out);
      line_.clear();
    } else {
      line_.push_back(c);
    }
  }
}

bool SseParser::HasPartialEvent() const { return has_fields_ || !line_.empty(); }

void SseParser::ProcessLine(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {  // blank line: dispatch
    if (has_fields_) {
      out.push_back(std::move(pending_));
      pending_ = SseEvent{};
      has_fields_ = false;
      data_lines_ = 0;
    }
    return;
  }
  if (line.front() == ':') return;  // comment / keep-alive
  std::string_view field = line, value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_lines_++ > 0) pending_.data.push_back('\n');
    pending_.data.append(value);
    has_fields_ = true;
  } else if (field == "event") {
    pending_.event.assign(value);
    has_fields_ = true;
  } else if (field == "id") {
    pending_.id.assign(value);
    has_fields_ = true;
  }
  // "retry" and unknown fields are ignored, as the spec says.
}

std::string EncodeSse(std::string_view data, std::string_view event) {
  std::string out;
  out.reserve(data.size() + event.size() + 16);
  if (!event.empty()) {
    out.append("event: ").append(event).push_back('\n');
  }
  size_t start = 0;
  while (true) {
    size_t nl = data.find('\n', start);
    out.append("data: ").append(data.substr(start, nl - start)).push_back('\n');
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  out.push_back('\n');
  return out;
}

}  // namespace iris::gateway::http
