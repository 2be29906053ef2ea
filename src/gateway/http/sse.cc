// Server-Sent Events framing: an incremental parser for upstream streams and an encoder
// for the streams iris sends.
#include "gateway/http/sse.h"

namespace iris::gateway::http {

void SseParser::Feed(std::string_view bytes, std::vector<SseEvent>& out) {
  if (overflowed_) return;
  bytes_seen_ += bytes.size();
  // A UTF-8 BOM may start the stream, possibly split across feeds: match it byte by byte.
  static constexpr std::string_view kBom = "\xEF\xBB\xBF";
  while (!bom_checked_ && !bytes.empty()) {
    if (bytes.front() == kBom[bom_matched_]) {
      bytes.remove_prefix(1);
      if (++bom_matched_ == kBom.size()) bom_checked_ = true;
    } else {
      // Not a BOM after all: the bytes matched so far are ordinary line bytes.
      line_.append(kBom.substr(0, bom_matched_));
      bom_checked_ = true;
    }
  }
  while (!bytes.empty()) {
    if (last_was_cr_ && bytes.front() == '\n') {  // the \n of a \r\n pair split across feeds
      bytes.remove_prefix(1);
    }
    last_was_cr_ = false;
    size_t end = bytes.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      if (line_.size() + bytes.size() + pending_.data.size() > max_event_bytes_) {
        overflowed_ = true;
        line_.clear();
        pending_ = SseEvent{};
        return;
      }
      line_.append(bytes);
      return;
    }
    if (line_.size() + end + pending_.data.size() > max_event_bytes_) {
      overflowed_ = true;
      line_.clear();
      pending_ = SseEvent{};
      return;
    }
    if (line_.empty()) {
      ProcessLine(bytes.substr(0, end), out);
    } else {
      line_.append(bytes.substr(0, end));
      ProcessLine(line_, out);
      line_.clear();
    }
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        if (bytes[end + 1] == '\n') ++end;
      } else {
        last_was_cr_ = true;
      }
    }
    bytes.remove_prefix(end + 1);
  }
}

bool SseParser::HasPartialEvent() const { return has_fields_ || !line_.empty(); }

void SseParser::ProcessLine(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {  // blank line: dispatch; an event without data lines is dropped
    if (has_fields_) {
      if (data_lines_ > 0) out.push_back(std::move(pending_));
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
    out.append("event: ");
    // A line break inside the name would end the field early; drop it.
    for (char c : event) {
      if (c != '\r' && c != '\n') out.push_back(c);
    }
    out.push_back('\n');
  }
  // Any of \r\n, \r and \n in the data starts a new data line (the parser splits on all three).
  size_t start = 0;
  while (true) {
    size_t nl = data.find_first_of("\r\n", start);
    out.append("data: ").append(data.substr(start, nl - start)).push_back('\n');
    if (nl == std::string_view::npos) break;
    start = nl + 1;
    if (data[nl] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out.push_back('\n');
  return out;
}

}  // namespace iris::gateway::http
