// The one map from a failure to what a client sees: the HTTP status and the error body of
// each inbound dialect. Every code path that answers an error (a policy refusal, a bad
// request, an upstream failure, a bug) goes through here so the dialects never disagree.
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::gateway::api {

// The status iris answers with: 400, 401, 403, 404, 413, 429, 502, 504, 503, 500 for the
// classes in chat.h's order. kOverloaded is always 503 here; see HttpStatusFor.
int HttpStatus(ErrorClass error_class);

// Like HttpStatus, except that an Anthropic-dialect caller gets 529 for kOverloaded when
// the upstream itself answered 529 (Anthropic's own "overloaded" status, which its SDK
// retries with backoff). Every other case is HttpStatus(error.error_class).
int HttpStatusFor(const GatewayError& error, Dialect dialect);

// A stable lower-case name for logs and for the `iris_error_class` field of error bodies:
// "invalid_request", "authentication", "permission", "not_found", "payload_too_large",
// "rate_limited", "upstream", "upstream_timeout", "overloaded", "internal".
std::string_view ErrorClassName(ErrorClass error_class);

// OpenAI's `error.type` for a class. OpenAI's SDKs pick their exception class from the
// HTTP status, not from `type`, so these are informative; they follow the names OpenAI
// uses where one exists (invalid_request_error, authentication_error, permission_error,
// not_found_error, rate_limit_error, server_error) and name the gateway-only cases plainly
// (upstream_error, timeout_error, overloaded_error). A too-large body is an
// invalid_request_error with code "request_too_large", as OpenAI reports it.
std::string_view OpenAIErrorType(ErrorClass error_class);
// Anthropic's `error.type` (protocols.md §2.7): invalid_request_error, authentication_error,
// permission_error, not_found_error, request_too_large, rate_limit_error, api_error (an
// upstream failure or an iris bug), timeout_error, overloaded_error.
std::string_view AnthropicErrorType(ErrorClass error_class);

// The AI SDK gateway protocol's `error.type`, which `@ai-sdk/gateway` turns into its error
// classes: invalid_request_error (400, 413), authentication_error, forbidden (403),
// model_not_found (404: every not-found on a model call is about the model), rate_limit_exceeded,
// internal_server_error (an upstream failure, a timeout, overload or an iris bug).
std::string_view AiGatewayErrorType(ErrorClass error_class);

// The inner object {"message","type","param","code", "iris_error_class", ...}: the four
// OpenAI keys always (param/code null when empty), then who was at fault:
// `iris_error_class` always, `provider` and `upstream_status` when an upstream answered.
// Used for bodies and for the in-band error event of a stream.
boost::json::object OpenAIErrorObject(const GatewayError& error);
// {"error": OpenAIErrorObject(error)} serialized.
std::string OpenAIErrorBody(const GatewayError& error);
// {"type":"error","error":{"type","message", "iris_error_class", provider?, upstream_status?}}
// serialized (the same body is the data of Anthropic's in-band `event: error`).
std::string AnthropicErrorBody(const GatewayError& error);
// The AI SDK gateway protocol's inner error object: {"message","type","param","code",
// "iris_error_class", ...}; param is {"modelId": model_id} for model_not_found. A not-found
// with no model (an unknown path) is type "not_found".
boost::json::object AiGatewayErrorObject(const GatewayError& error, std::string_view model_id);
// {"error": AiGatewayErrorObject(error, model_id)} serialized.
std::string AiGatewayErrorBody(const GatewayError& error, std::string_view model_id);

// The longest error message an attempt's failure carries to its caller and the request log
// (its upstream's own words are bounded further: providers/provider_table.h).
inline constexpr size_t kMaxErrorMessageBytes = 2000;

// Upstream text relayed to callers and the log passes through this: API-key shapes
// (sk-..., sk-ant-..., AIza..., gsk_..., xai-...), bearer tokens and key=... query values
// become "[redacted]".
std::string RedactSecrets(std::string text);
// A transport error as a caller may see it: the upstream `host` named in `message` (alone,
// bracketed for IPv6, or with ":port") is replaced by `provider`, so callers learn nothing of
// where providers live (a private base_url, an internal proxy). Secrets are redacted too.
std::string HidePeer(std::string message, std::string_view host, std::string_view provider);

// Maps a base Status to a class, keeping its message. kInvalidArgument, kFailedPrecondition,
// kOutOfRange and kUnimplemented are the caller's (400); kNotFound 404; kPermissionDenied
// 403; kResourceExhausted a limit (429); kDeadlineExceeded an upstream timeout (504);
// kDataLoss (garbage from a peer) and kUnavailable (a peer's failure) kUpstream (502);
// kInternal and anything else 500. The caller fills provider/upstream_status when known.
// Precondition: !status.ok() (an OK status maps to kInternal).
GatewayError FromStatus(const Status& status);

}  // namespace iris::gateway::api
