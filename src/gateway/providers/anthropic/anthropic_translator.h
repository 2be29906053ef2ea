// The Anthropic Messages upstream (`POST {base_url}/messages`): ChatRequest -> Anthropic
// request bytes, and Anthropic's message, SSE events and error bodies back to neutral values.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "gateway/providers/translator.h"

namespace iris::gateway::providers {

// Encoding rules (protocols.md §5.1, §5.8, §5.9):
// - every system message, wherever it appears, is lifted into the top-level `system`
//   (text blocks, in order); consecutive same-role turns are merged; tool results become
//   `tool_result` blocks of a user turn; an assistant's tool calls become `tool_use` blocks
//   whose `input` is the parsed arguments (invalid JSON or a non-object: kInvalidArgument);
//   empty text is dropped and empty turns with it; a history that starts with the assistant
//   gets a "." user turn first; the trailing whitespace of a final assistant prefill is
//   trimmed.
// - images: inline data -> base64 source (jpeg/png/gif/webp only), http(s) URL -> url source.
// - `max_tokens`: the caller's, clamped to the model's ceiling when the model is known;
//   absent -> min(ceiling, 8192) (AnthropicDefaultMaxTokens).
// - tool_choice auto/any/tool/none; parallel_tool_calls=false -> disable_parallel_tool_use
//   (on an `auto` choice when none was given). stop -> stop_sequences (whitespace-only
//   entries dropped). temperature clamped to [0, 1]. user -> metadata.user_id.
// - response_format json_schema -> `output_config.format` (native structured outputs; the
//   answer comes back as plain text); json_object has no Anthropic equivalent: kInvalidArgument.
// - seed, frequency_penalty and presence_penalty are dropped (Anthropic has none).
// Decoding: input_tokens in Usage = input + cache_read + cache_creation.
// DecodeError: 401/403 are the operator's key problem (kUpstream, message names
// "anthropic"); 429 kRateLimited, 529/503 kOverloaded, 504 kUpstreamTimeout, other 5xx
// kUpstream, 400/422 kInvalidRequest, 404 kNotFound, 413 kPayloadTooLarge.
// `provider_name` (the configured name) appears in error messages.
std::unique_ptr<Translator> MakeAnthropicTranslator(std::string provider_name = "anthropic");

// The `max_tokens` sent when the caller gave none (§5.8); exposed for tests and docs.
int64_t AnthropicDefaultMaxTokens(std::string_view model);

}  // namespace iris::gateway::providers
