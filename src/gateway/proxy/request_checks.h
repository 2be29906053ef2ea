// The bounds a decoded request must fit before any work is done for it: names a caller may
// use (model ids, provider names), list lengths, and the number and size of its images. All
// limits come from iris.yaml (`limits:`, `image_fetch:`; docs/security.md lists the defaults).
#pragma once

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/config/config.h"

namespace iris::gateway::proxy {

// kInvalidArgument naming the field and the limit (a 400, never retried), or kOutOfRange for
// sizes (mapped to 413 by the pipeline). Cheap: one pass, no decoding; base64 sizes are
// computed from their length.
Status CheckRequest(const ChatRequest& request, const config::Config& config);

// The decoded size of a base64 string of `length` characters (upper bound).
inline int64_t Base64DecodedBytes(size_t length) {
  return static_cast<int64_t>(length / 4 * 3 + 3);
}

}  // namespace iris::gateway::proxy
