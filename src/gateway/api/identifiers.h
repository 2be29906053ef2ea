// What a caller may name: model ids and provider names. One rule for every provider, so a
// name can never carry a path, a query, a header or a second request into an upstream call,
// a response header, a metric label or a log row.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace iris::gateway::api {

// Model ids: 1 to 256 bytes of A-Z a-z 0-9 and . _ - : / @ (enough for "gpt-4o-mini",
// "meta-llama/Llama-3.1-8B-Instruct", "llama3.1:8b", "@cf/meta/llama-3", "local/smolvlm2"),
// with no ".." and no empty or leading/trailing '/' segment.
inline constexpr size_t kMaxModelIdBytes = 256;
// InvalidArgument naming `field` ("model", "models[2]") and what is wrong; OK otherwise.
Status CheckModelId(std::string_view id, std::string_view field);

// Provider names in routing hints (provider.order / only): 1 to 64 bytes of A-Z a-z 0-9 . _ -
inline constexpr size_t kMaxProviderNameBytes = 64;
Status CheckProviderName(std::string_view name, std::string_view field);

// Item and response ids a caller names (item_reference, previous_response_id, an item's id):
// 1 to 128 bytes of A-Z a-z 0-9 _ -
inline constexpr size_t kMaxItemIdBytes = 128;
bool IsItemId(std::string_view id);

// A caller's text as an error message may show it: its first `max` bytes, every byte that could
// confuse a log or terminal (control, non-ASCII, '"', '\\') as '?', and "..." when cut.
std::string ShownText(std::string_view s, size_t max = 64);

// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so
// the result is exactly one path segment ('/', '?', '#', '%' and ':' included).
std::string EncodePathSegment(std::string_view segment);

}  // namespace iris::gateway::api
