// The inbound embeddings API (POST /v1/embeddings, OpenAI's shape, protocols.md §1.10): the
// request into EmbeddingRequest, and vectors back as floats or as base64 of little-endian
// float32, which the official SDKs ask for by default and decode themselves.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::gateway::api {

inline constexpr size_t kMaxEmbeddingInputs = 2048;       // OpenAI's own bound
inline constexpr size_t kMaxEmbeddingInputTokens = 8192;  // one token-array input

// Accepted: `model`, `input` (a string, an array of strings, an array of token ids, or an
// array of token-id arrays; at most 2048 inputs, none empty), `encoding_format` (float or
// base64), `dimensions` (>= 1), `user`, and the routing hints of chat requests. Errors name
// the field ("input[3]: must not be empty").
Result<EmbeddingRequest> ParseEmbeddingRequest(std::string_view body);

// {"object":"list","data":[{"object":"embedding","index",embedding}],"model","usage":{
// "prompt_tokens","total_tokens"[,"cost"]}} plus `iris` when non-null.
std::string EncodeEmbeddingResponse(const EmbeddingResponse& response, bool base64,
                                    const boost::json::object* iris,
                                    std::optional<double> cost_usd);

// The vector of one upstream embedding value: an array of numbers, or a base64 string of
// float32 LE (what an upstream sends when asked for base64). `path` names it in errors.
Result<std::vector<float>> DecodeEmbeddingVector(const boost::json::value& v,
                                                 std::string_view path);

}  // namespace iris::gateway::api
