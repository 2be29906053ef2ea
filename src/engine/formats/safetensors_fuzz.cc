// Fuzz harness: bytes as a whole .safetensors file (or as header JSON + NUL + data, see below)
// through ParseSafetensors (what SafetensorsFile::Open runs on the mapped file). Every tensor it
// accepts must lie inside the data section, hold exactly dtype × shape bytes, and overlap no other
// tensor; its bytes are all read, so ASan sees a view that points outside the input. Seeds in
// tests/data/fuzz/safetensors_corpus/; ctest fuzz_safetensors, or libFuzzer with
// -DIRIS_BUILD_FUZZ=ON.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "engine/formats/safetensors.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t raw_size) {
  using namespace iris;
  // An input that starts with '{' is "header JSON, NUL, tensor bytes": the harness writes the
  // length prefix, so mutations of the JSON do not all die on a wrong header length. Any other
  // input is a whole file.
  std::vector<uint8_t> built;
  const uint8_t* data = raw;
  size_t size = raw_size;
  if (raw_size > 0 && raw[0] == '{') {
    const auto* nul = static_cast<const uint8_t*>(std::memchr(raw, 0, raw_size));
    const uint64_t header_len = nul != nullptr ? static_cast<uint64_t>(nul - raw) : raw_size;
    const size_t tail = nul != nullptr ? raw_size - header_len - 1 : 0;
    built.resize(8 + header_len + tail);  // exactly sized: ASan sees a read past the end
    for (int i = 0; i < 8; ++i) built[i] = static_cast<uint8_t>(header_len >> (8 * i));
    std::memcpy(built.data() + 8, raw, header_len);
    if (tail > 0) std::memcpy(built.data() + 8 + header_len, nul + 1, tail);
    data = built.data();
    size = built.size();
  }
  iris::Result<formats::SafetensorsContents> parsed =
      formats::ParseSafetensors(std::span<const uint8_t>(data, size), "fuzz.safetensors");
  if (!parsed.ok()) {
    Check(!parsed.status().message().empty());
    return 0;
  }
  Check(size >= 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  const uint8_t* data_begin = data + 8 + header_len;
  const uint8_t* data_end = data + size;

  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;
  volatile uint8_t sink = 0;
  for (const auto& [name, entry] : parsed->tensors) {
    Check(name == entry.name && entry.file == "fuzz.safetensors");
    const auto* begin = static_cast<const uint8_t*>(entry.view.data);
    const size_t bytes = entry.view.num_bytes();
    Check(begin >= data_begin && begin <= data_end &&
          bytes <= static_cast<size_t>(data_end - begin));
    uint8_t sum = 0;
    for (size_t i = 0; i < bytes; ++i) sum ^= begin[i];
    sink = sink ^ sum;
    if (bytes > 0) spans.emplace_back(begin, begin + bytes);
  }
  (void)sink;
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) Check(spans[i].first >= spans[i - 1].second);
  return 0;
}
