// Translators for the upstreams that speak OpenAI's chat completions wire format: OpenAI
// itself, Mistral (same shape, stricter rules: protocols.md §4, §5.3) and any
// OpenAI-compatible server (Groq, Together, vLLM, Ollama, another iris).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gateway/providers/translator.h"

namespace iris::gateway::providers {

enum class OpenAIFlavor {
  kOpenAI,      // max_completion_tokens, stream_options.include_usage, `user`
  kMistral,     // max_tokens, random_seed, tool_choice "any", 9-char tool ids, no stream_options
  kCompatible,  // max_tokens (what most servers know), stream_options, `user`, `top_k`
};

// A translator for `flavor`. `provider_name` (the configured name, "groq", ...) appears in
// error messages; it defaults to the flavor's name. The translator is immutable and
// thread-safe; each stream gets its own StreamTranslator.
//
// A Responses API caller's body goes to OpenAI's own Responses API as is (openai_responses.h);
// every other request is translated to chat completions.
// Request: POST {base_url}/chat/completions with `Authorization: Bearer <api_key>` (omitted
// when the key is empty). Streams always ask for usage where the flavor can, so cost is
// known. Mistral tool-call ids are rewritten to MistralToolCallId() consistently in the
// assistant `tool_calls` and the tool results, a tool result is followed by a bridging
// assistant turn ("Done.") when a user turn comes next, and tool results carry the tool
// name. Responses: finish reasons per protocols.md §5.5 (an upstream "error" finish is an
// error, never a complete answer); tool calls without `type`/`index`/`id` are normalised.
std::unique_ptr<Translator> MakeOpenAITranslator(OpenAIFlavor flavor,
                                                 std::string provider_name = {});

// OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 and later, but not the gpt-5 chat models),
// which refuse sampling settings.
bool IsOpenAIReasoningModel(std::string_view model);

// Mistral's tool-call id for `id`: `id` itself when it already is 9 ASCII letters/digits,
// otherwise 9 base-62 characters of a 64-bit FNV-1a hash of `id` (and `salt`, which the
// encoder bumps on the rare collision within one request). Pure and deterministic, so the
// same id maps the same way in the assistant turn and in its tool result, across requests.
std::string MistralToolCallId(std::string_view id, int salt = 0);

}  // namespace iris::gateway::providers
