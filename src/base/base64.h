// Standard base64 (RFC 4648 §4) for images carried inline in JSON requests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace iris {

// Decodes padded or unpadded base64; ASCII whitespace is skipped. InvalidArgument (with the
// offset of the first bad character) for anything else.
Result<std::vector<uint8_t>> Base64Decode(std::string_view text);
std::string Base64Encode(std::string_view bytes);

}  // namespace iris
