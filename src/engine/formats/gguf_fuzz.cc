// Fuzz harness: bytes as a whole .gguf file through ParseGguf (what GgufFile::Open runs on the
// mapped file). Every tensor it accepts must lie inside the input, hold exactly the bytes its
// type and shape need, and overlap no other; its bytes are all read (ASan sees a view past the
// end) and its rows dequantized. Metadata accessors never fail without a message. Seeds in
// tests/data/fuzz/gguf_corpus/; ctest fuzz_gguf, or libFuzzer with -DIRIS_BUILD_FUZZ=ON.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <utility>
#include <vector>

#include "engine/formats/gguf.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris;
  Result<formats::GgufContents> parsed =
      formats::ParseGguf(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!parsed.ok()) {
    Check(!parsed.status().message().empty());
    return 0;
  }
  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;
  std::vector<float> row;
  volatile float sink = 0;
  for (const auto& [name, t] : parsed->tensors) {
    Check(name == t.name && !t.shape.empty() && t.shape.size() <= 4);
    const tensor::GgmlTypeInfo& info = tensor::GgmlInfo(t.type);
    Check(t.row_elems() % static_cast<int64_t>(info.block_elems) == 0);
    Check(t.bytes == static_cast<size_t>(t.rows()) * t.row_bytes());
    Check(t.data >= data && t.bytes <= static_cast<size_t>(data + size - t.data));
    // Dequantize a bounded number of rows (a valid file may hold gigabytes of zeros).
    if (t.row_elems() <= 4096) {
      row.resize(static_cast<size_t>(t.row_elems()));
      for (int64_t r = 0; r < std::min<int64_t>(t.rows(), 16); ++r) {
        tensor::DequantizeRow(t.type, t.data + r * t.row_bytes(), row.size(), row.data());
        if (!row.empty()) sink = sink + row.back();
      }
    }
    if (t.bytes > 0) spans.emplace_back(t.data, t.data + t.bytes);
  }
  (void)sink;
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) Check(spans[i].first >= spans[i - 1].second);
  for (const auto& [key, v] : parsed->metadata) {
    for (auto st : {parsed->Uint(key).status(), parsed->Float(key).status(),
                    parsed->String(key).status(), parsed->Strings(key).status()}) {
      Check(st.ok() || !st.message().empty());
    }
  }
  return 0;
}
