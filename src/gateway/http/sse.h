// Server-Sent Events framing (WHATWG "text/event-stream"), both directions. No LLM
// knowledge: providers interpret the `data` of each event.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace iris::gateway::http {

struct SseEvent {
  std::string event;  // the `event:` field; empty when absent (the spec's "message")
  std::string data;   // `data:` lines joined with '\n'
  std::string id;
};

// Incremental parser: feed bytes as they arrive, in any split; complete events come out.
// Handles \n, \r\n and \r line ends, comments (": ping"), fields without a space after
// the colon, multi-line data, and a BOM (even split across feeds). As the spec says, an event
// with no data line is not dispatched. Not thread-safe; one per stream.
class SseParser {
 public:
  // An event (or a line) larger than `max_event_bytes` is not buffered: the parser stops,
  // overflowed() turns true, and every later Feed() does nothing. A peer that never sends a
  // line break cannot grow memory without bound.
  explicit SseParser(size_t max_event_bytes = size_t{4} << 20)
      : max_event_bytes_(max_event_bytes) {}
  // Appends every event completed by `bytes` to `out`.
  void Feed(std::string_view bytes, std::vector<SseEvent>& out);
  // True once an event or a line outgrew max_event_bytes (the stream is unusable).
  bool overflowed() const { return overflowed_; }
  size_t max_event_bytes() const { return max_event_bytes_; }
  // True when bytes are buffered that do not yet form a complete event (a stream that
  // ends here was cut mid-event).
  bool HasPartialEvent() const;
  // Bytes received so far (for limits and logs).
  size_t bytes_seen() const { return bytes_seen_; }

 private:
  void ProcessLine(std::string_view line, std::vector<SseEvent>& out);

  std::string line_;  // the current incomplete line
  SseEvent pending_;  // fields of the event being built
  bool has_fields_ = false;
  int data_lines_ = 0;  // data lines in pending_
  bool last_was_cr_ = false;
  bool bom_checked_ = false;
  size_t bom_matched_ = 0;  // BOM bytes seen so far at the stream start
  size_t bytes_seen_ = 0;
  size_t max_event_bytes_;
  bool overflowed_ = false;
};

// "event: NAME\ndata: DATA\n\n" (the event line omitted when `event` is empty); data with
// line breaks (\n, \r\n or \r) becomes several data lines.
std::string EncodeSse(std::string_view data, std::string_view event = {});

}  // namespace iris::gateway::http
