#include "base/utf8.h"

namespace iris {
namespace {

enum class Utf8Kind { kValid, kInvalid, kTruncated };
struct Utf8Scan {
  Utf8Kind kind;
  size_t len;  // bytes of the character, of the maximal invalid subpart, or of the tail
};

// Classifies the sequence starting at p[0] (n >= 1 bytes available) following the Unicode
// "maximal subpart" practice that Rust's String::from_utf8_lossy uses.
Utf8Scan ScanUtf8(const unsigned char* p, size_t n) {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return {Utf8Kind::kValid, 1};
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {Utf8Kind::kInvalid, 1};
  }
  for (size_t i = 1; i <= need; ++i) {
    if (i >= n) return {Utf8Kind::kTruncated, i};
    if (p[i] < lo || p[i] > hi) return {Utf8Kind::kInvalid, i};
    lo = 0x80;
    hi = 0xBF;
  }
  return {Utf8Kind::kValid, need + 1};
}

}  // namespace

size_t AppendLossyUtf8(std::string_view bytes, bool hold_truncated_tail, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  size_t valid_start = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Scan scan = ScanUtf8(p + i, n - i);
    if (scan.kind == Utf8Kind::kValid) {
      i += scan.len;
      continue;
    }
    out->append(bytes.substr(valid_start, i - valid_start));
    if (scan.kind == Utf8Kind::kTruncated && hold_truncated_tail) return i;
    out->append(kUtf8Replacement);
    i += scan.len;
    valid_start = i;
  }
  out->append(bytes.substr(valid_start, n - valid_start));
  return n;
}

bool IsValidUtf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    const Utf8Scan scan = ScanUtf8(p + i, bytes.size() - i);
    if (scan.kind != Utf8Kind::kValid) return false;
    i += scan.len;
  }
  return true;
}

std::string LossyUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendLossyUtf8(bytes, /*hold_truncated_tail=*/false, &out);
  return out;
}

void CutAtCharacter(std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return;
  // Step back from the cut to the first byte of the character it splits.
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += "...";
}

std::string CutUtf8(std::string_view bytes, size_t max_bytes) {
  std::string out = LossyUtf8(bytes);
  CutAtCharacter(out, max_bytes);
  return out;
}

}  // namespace iris
