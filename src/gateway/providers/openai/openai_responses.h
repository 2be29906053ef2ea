// OpenAI's own Responses API as an upstream (POST {base_url}/responses), for callers of the
// same API: their body goes on as they wrote it, and the answer (object or typed event stream)
// comes back as OpenAI sent it, read here only for what iris needs (text and tool calls for the
// kept conversation and the schema check, the finish, usage for cost).
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/http/sse.h"
#include "gateway/providers/translator.h"

namespace iris::gateway::providers {

// The body a Responses caller's request (dialect kResponses, caller_body set) goes to OpenAI
// with: the caller's own, with `target`'s model. A continued thread goes as is to the provider
// that keeps it (previous_response_id and all); to another, the kept conversation's items go
// before the input instead of previous_response_id. nullopt when the thread came from item
// references (their ids are iris's, which OpenAI does not know): the request is translated.
// A reasoning model's sampling settings are removed and named in `dropped`.
std::optional<boost::json::object> ResponsesBodyAsIs(const ChatRequest& request,
                                                     const TargetInfo& target,
                                                     std::vector<std::string>& dropped);

// A 2xx body that is a `response` object (`"object": "response"`).
bool IsResponsesObject(const boost::json::object& o);
// What iris reads of a `response` object; ChatResponse::as_is holds the object itself.
// A failed response is an error (kUnavailable) naming `provider`.
Result<ChatResponse> DecodeResponsesObject(boost::json::object o, std::string_view provider);

// A stream event of the Responses API (`event: response.*`).
bool IsResponsesStreamEvent(const http::SseEvent& event);
// Decodes a Responses API stream: each event becomes a StreamEvent::kAsIs carrying it, then
// the neutral events it stands for. `error` and response.failed are errors (kUnavailable); a
// stream that ends before response.completed / response.incomplete is truncated (kDataLoss).
std::unique_ptr<StreamTranslator> NewResponsesStreamTranslator(std::string provider);

}  // namespace iris::gateway::providers
