// The Google Gemini upstream (generateContent / streamGenerateContent?alt=sse on the
// Generative Language API): ChatRequest -> Gemini request bytes, Gemini answers -> neutral.
#pragma once

#include <boost/json/value.hpp>
#include <memory>

#include "base/status.h"
#include "gateway/providers/translator.h"

namespace iris::gateway::providers {

// Encoding rules (protocols.md §3.2, §5.2, §5.9):
// - URL `{base_url}/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`
//   when streaming; the key goes in the `x-goog-api-key` header, never in the URL.
// - system messages -> `systemInstruction`; user -> role "user"; assistant -> role "model"
//   with `functionCall` parts (args = parsed arguments; invalid JSON: kInvalidArgument);
//   tool results -> `functionResponse` parts of a user turn, named by looking the
//   tool_call_id up among the history's assistant tool calls (Gemini has no call ids),
//   with response {"output": text} (or {"error": text} when is_error). Consecutive
//   same-role turns are merged.
// - images: inline base64 -> `inlineData`. A URL is only sent (as `fileData`) when it is a
//   Gemini Files API URI (https://generativelanguage.googleapis.com/...); any other URL is
//   kInvalidArgument: Gemini cannot fetch arbitrary URLs on every model, so the proxy must
//   download the bytes and pass them inline first.
// - tools -> `tools:[{functionDeclarations}]` with each schema run through
//   CleanSchemaForGemini (an empty root object schema omits `parameters`); tool_choice ->
//   toolConfig.functionCallingConfig (AUTO / NONE / ANY / ANY + allowedFunctionNames).
// - generationConfig: temperature, topP, topK, maxOutputTokens, stopSequences (at most 5),
//   seed, presencePenalty, frequencyPenalty, responseMimeType + responseSchema for JSON.
//   user, parallel_tool_calls and anything else Gemini does not know are never sent
//   (Gemini rejects unknown fields).
// - Gemini 3 models get thoughtSignature "skip_thought_signature_validator" on replayed
//   functionCall parts, since iris does not keep the real signatures.
// Decoding: tool call ids are functionCall.id when present, else "call_<responseId>_<n>"
// (stable for one answer, unique across turns); finishReason STOP with function calls ->
// kToolCalls; usage input = promptTokenCount + toolUsePromptTokenCount, output =
// candidatesTokenCount + thoughtsTokenCount (reasoning = thoughts).
// `provider_name` (the configured name) appears in error messages.
std::unique_ptr<Translator> MakeGeminiTranslator(std::string provider_name = "gemini");

// Google's Schema object is an OpenAPI 3.0 subset: keeps the keywords it accepts, inlines
// local `$ref`s (`#/$defs/..`, `#/definitions/..`), turns `"type":[T,"null"]` into
// `type` + `nullable`, other type lists and `oneOf` into `anyOf`, `const` into `enum`, and
// drops the rest (`$schema`, `additionalProperties`, ...). A recursive `$ref` is
// kInvalidArgument (Gemini schemas cannot express recursion).
Result<boost::json::value> CleanSchemaForGemini(const boost::json::value& schema);

}  // namespace iris::gateway::providers
