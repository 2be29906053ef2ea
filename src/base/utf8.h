// UTF-8 read the way the Unicode standard's "maximal subpart" practice reads it (what Rust's
// String::from_utf8_lossy and Python's errors="replace" do): each ill-formed subsequence becomes
// one U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace iris {

inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";  // U+FFFD

// True when `bytes` are well-formed UTF-8 throughout (no overlong forms, surrogates or
// characters cut off at the end).
bool IsValidUtf8(std::string_view bytes);

// Appends `bytes` to `out` with each invalid sequence replaced by U+FFFD. When
// `hold_truncated_tail`, a character cut off by the end of `bytes` is not consumed (the rest of
// it may come with the next bytes). Returns the number of bytes consumed.
size_t AppendLossyUtf8(std::string_view bytes, bool hold_truncated_tail, std::string* out);

// `bytes` as valid UTF-8: unchanged when they are, else with U+FFFD for each invalid sequence
// (a character cut off at the end included).
std::string LossyUtf8(std::string_view bytes);

// Cuts UTF-8 `text` to at most `max_bytes`, before a character rather than through it, and
// marks a cut with "..." (so at most max_bytes + 3 bytes in all). Bytes that are not UTF-8
// are kept as they are.
void CutAtCharacter(std::string& text, size_t max_bytes);

// LossyUtf8(bytes), then CutAtCharacter.
std::string CutUtf8(std::string_view bytes, size_t max_bytes);

}  // namespace iris
