// Fuzz harness: bytes through SseParser (4 KiB event limit), once whole and once split at
// points drawn from the input's hash. Both must give the same events and the same overflow
// state; no event's data outgrows the limit; once overflowed the parser stays overflowed and
// emits nothing; every event survives EncodeSse -> SseParser unchanged. Seeds in
// tests/data/fuzz/sse_corpus/; run as ctest fuzz_sse or, with -DIRIS_BUILD_FUZZ=ON, libFuzzer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "gateway/http/sse.h"

namespace {

using iris::gateway::http::EncodeSse;
using iris::gateway::http::SseEvent;
using iris::gateway::http::SseParser;

constexpr size_t kLimit = 4096;

bool Same(const SseEvent& a, const SseEvent& b) {
  return a.event == b.event && a.data == b.data && a.id == b.id;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  SseParser whole(kLimit);
  std::vector<SseEvent> whole_events;
  whole.Feed(input, whole_events);

  // The same bytes in chunks of 0..16 bytes (sometimes longer), cut where the hash says.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : input) h = (h ^ c) * 1099511628211ull;
  SseParser split(kLimit);
  std::vector<SseEvent> split_events;
  bool was_overflowed = false;
  for (size_t pos = 0; pos <= size;) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    size_t n = (h & 0x100) ? h % 17 : h % 600;
    if (n > size - pos) n = size - pos;
    const size_t before = split_events.size();
    split.Feed(input.substr(pos, n), split_events);
    if (was_overflowed) Check(split.overflowed() && split_events.size() == before);
    was_overflowed = split.overflowed();
    pos += n;
    if (pos == size) break;
  }

  Check(whole.overflowed() == split.overflowed());
  Check(whole_events.size() == split_events.size());
  for (size_t i = 0; i < whole_events.size(); ++i) {
    Check(Same(whole_events[i], split_events[i]));
    Check(whole_events[i].data.size() <= kLimit);
    Check(whole_events[i].event.size() <= kLimit && whole_events[i].id.size() <= kLimit);
  }

  // Overflow is final: more bytes, even well-formed events, change nothing.
  if (whole.overflowed()) {
    const size_t before = whole_events.size();
    whole.Feed("\n\ndata: more\n\n", whole_events);
    Check(whole.overflowed() && whole_events.size() == before);
  }

  // What the parser produced, encoded again, parses back to the same event.
  for (const SseEvent& e : whole_events) {
    SseParser again(2 * kLimit + 64);
    std::vector<SseEvent> out;
    again.Feed(EncodeSse(e.data, e.event), out);
    Check(out.size() == 1 && !again.overflowed() && !again.HasPartialEvent());
    Check(out[0].data == e.data && out[0].event == e.event && out[0].id.empty());
  }
  return 0;
}
