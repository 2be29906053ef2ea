// The one error map (see errors.h): class -> HTTP status and class -> dialect error body.
#include "gateway/api/errors.h"

#include <boost/json/serialize.hpp>
#include <cctype>

#include "base/json.h"

namespace iris::gateway::api {

namespace json = boost::json;

int HttpStatus(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kInvalidRequest:
      return 400;
    case ErrorClass::kAuthentication:
      return 401;
    case ErrorClass::kPermission:
      return 403;
    case ErrorClass::kNotFound:
      return 404;
    case ErrorClass::kPayloadTooLarge:
      return 413;
    case ErrorClass::kRateLimited:
      return 429;
    case ErrorClass::kUpstream:
      return 502;
    case ErrorClass::kUpstreamTimeout:
      return 504;
    case ErrorClass::kOverloaded:
      return 503;
    case ErrorClass::kInternal:
      return 500;
  }
  return 500;
}

int HttpStatusFor(const GatewayError& error, Dialect dialect) {
  if (dialect == Dialect::kAnthropic && error.error_class == ErrorClass::kOverloaded &&
      error.upstream_status == 529) {
    return 529;
  }
  return HttpStatus(error.error_class);
}

std::string_view ErrorClassName(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kInvalidRequest:
      return "invalid_request";
    case ErrorClass::kAuthentication:
      return "authentication";
    case ErrorClass::kPermission:
      return "permission";
    case ErrorClass::kNotFound:
      return "not_found";
    case ErrorClass::kPayloadTooLarge:
      return "payload_too_large";
    case ErrorClass::kRateLimited:
      return "rate_limited";
    case ErrorClass::kUpstream:
      return "upstream";
    case ErrorClass::kUpstreamTimeout:
      return "upstream_timeout";
    case ErrorClass::kOverloaded:
      return "overloaded";
    case ErrorClass::kInternal:
      return "internal";
  }
  return "internal";
}

std::string_view OpenAIErrorType(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kInvalidRequest:
    case ErrorClass::kPayloadTooLarge:
      return "invalid_request_error";
    case ErrorClass::kAuthentication:
      return "authentication_error";
    case ErrorClass::kPermission:
      return "permission_error";
    case ErrorClass::kNotFound:
      return "not_found_error";
    case ErrorClass::kRateLimited:
      return "rate_limit_error";
    case ErrorClass::kUpstream:
      return "upstream_error";
    case ErrorClass::kUpstreamTimeout:
      return "timeout_error";
    case ErrorClass::kOverloaded:
      return "overloaded_error";
    case ErrorClass::kInternal:
      return "server_error";
  }
  return "server_error";
}

std::string_view AnthropicErrorType(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kInvalidRequest:
      return "invalid_request_error";
    case ErrorClass::kAuthentication:
      return "authentication_error";
    case ErrorClass::kPermission:
      return "permission_error";
    case ErrorClass::kNotFound:
      return "not_found_error";
    case ErrorClass::kPayloadTooLarge:
      return "request_too_large";
    case ErrorClass::kRateLimited:
      return "rate_limit_error";
    case ErrorClass::kUpstream:
    case ErrorClass::kInternal:
      return "api_error";
    case ErrorClass::kUpstreamTimeout:
      return "timeout_error";
    case ErrorClass::kOverloaded:
      return "overloaded_error";
  }
  return "api_error";
}

std::string_view AiGatewayErrorType(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kInvalidRequest:
    case ErrorClass::kPayloadTooLarge:
      return "invalid_request_error";
    case ErrorClass::kAuthentication:
      return "authentication_error";
    case ErrorClass::kPermission:
      return "forbidden";
    case ErrorClass::kNotFound:
      return "model_not_found";
    case ErrorClass::kRateLimited:
      return "rate_limit_exceeded";
    case ErrorClass::kUpstream:
    case ErrorClass::kUpstreamTimeout:
    case ErrorClass::kOverloaded:
    case ErrorClass::kInternal:
      return "internal_server_error";
  }
  return "internal_server_error";
}

namespace {

// Fields that say whose fault the failure was; OpenAI and Anthropic SDKs ignore extra keys.
void AddFault(const GatewayError& error, json::object& out) {
  out["iris_error_class"] = ErrorClassName(error.error_class);
  if (!error.provider.empty()) out["provider"] = error.provider;
  if (error.upstream_status != 0) out["upstream_status"] = error.upstream_status;
}

std::string CodeFor(const GatewayError& error) {
  if (!error.code.empty()) return error.code;
  if (error.error_class == ErrorClass::kPayloadTooLarge) return "request_too_large";
  return {};
}

}  // namespace

json::object OpenAIErrorObject(const GatewayError& error) {
  json::object o;
  o["message"] = error.message;
  // A spent budget reads as OpenAI's own quota error: type and code "insufficient_quota".
  o["type"] = error.code == "insufficient_quota" ? std::string_view("insufficient_quota")
                                                 : OpenAIErrorType(error.error_class);
  o["param"] = error.param.empty() ? json::value(nullptr) : json::value(error.param);
  std::string code = CodeFor(error);
  o["code"] = code.empty() ? json::value(nullptr) : json::value(code);
  AddFault(error, o);
  return o;
}

std::string OpenAIErrorBody(const GatewayError& error) {
  json::object body;
  body["error"] = OpenAIErrorObject(error);
  return SerializeJson(body);
}

std::string AnthropicErrorBody(const GatewayError& error) {
  json::object inner;
  inner["type"] = AnthropicErrorType(error.error_class);
  inner["message"] = error.message;
  AddFault(error, inner);
  json::object body;
  body["type"] = "error";
  body["error"] = std::move(inner);
  return SerializeJson(body);
}

json::object AiGatewayErrorObject(const GatewayError& error, std::string_view model_id) {
  // OpenAI's object, with the client's own types and an unknown model's id as the param.
  json::object o = OpenAIErrorObject(error);
  o["type"] = AiGatewayErrorType(error.error_class);
  if (error.error_class == ErrorClass::kNotFound && model_id.empty()) {
    o["type"] = "not_found";  // (a path, not a model)
    o["param"] = nullptr;
  } else if (error.error_class == ErrorClass::kNotFound) {
    o["param"] = json::object{{"modelId", model_id}};
  }
  return o;
}

std::string AiGatewayErrorBody(const GatewayError& error, std::string_view model_id) {
  json::object body;
  body["error"] = AiGatewayErrorObject(error, model_id);
  return SerializeJson(body);
}

GatewayError FromStatus(const Status& status) {
  GatewayError e;
  e.message = status.message();
  switch (status.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kOutOfRange:
    case ErrorCode::kUnimplemented:
      e.error_class = ErrorClass::kInvalidRequest;
      break;
    case ErrorCode::kNotFound:
      e.error_class = ErrorClass::kNotFound;
      break;
    case ErrorCode::kPermissionDenied:
      e.error_class = ErrorClass::kPermission;
      break;
    case ErrorCode::kResourceExhausted:
      e.error_class = ErrorClass::kRateLimited;
      break;
    case ErrorCode::kDeadlineExceeded:
      e.error_class = ErrorClass::kUpstreamTimeout;
      break;
    case ErrorCode::kDataLoss:
    case ErrorCode::kUnavailable:
      e.error_class = ErrorClass::kUpstream;
      break;
    case ErrorCode::kOk:
    case ErrorCode::kInternal:
      e.error_class = ErrorClass::kInternal;
      break;
  }
  if (e.message.empty()) e.message = std::string(ErrorCodeName(status.code()));
  return e;
}

namespace {

bool IsTokenChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
         c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

// Replaces every run of token characters that starts with `prefix` (case-sensitive) at the
// start of a word and is at least `min_len` long after it. (Inside a word the prefix is part
// of it: "my-task-summarizer" holds "sk-" and no key.)
void RedactAfter(std::string& text, std::string_view prefix, size_t min_len, bool keep_prefix) {
  size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    size_t end = pos + prefix.size();
    if (pos > 0 && std::isalnum(static_cast<unsigned char>(text[pos - 1]))) {
      pos = end;
      continue;
    }
    while (end < text.size() && IsTokenChar(text[end])) ++end;
    if (end - pos - prefix.size() >= min_len) {
      const size_t from = keep_prefix ? pos + prefix.size() : pos;
      text.replace(from, end - from, "[redacted]");
      pos = from + 10;
    } else {
      pos = end;
    }
  }
}

}  // namespace

std::string RedactSecrets(std::string text) {
  RedactAfter(text, "Bearer ", 8, true);
  RedactAfter(text, "bearer ", 8, true);
  for (std::string_view prefix : {"sk-", "AIza", "gsk_", "xai-", "hf_", "sk_"}) {
    RedactAfter(text, prefix, 12, false);
  }
  for (std::string_view param : {"key=", "api_key=", "apikey=", "token="}) {
    RedactAfter(text, param, 4, true);
  }
  return text;
}

std::string HidePeer(std::string message, std::string_view host, std::string_view provider) {
  // Longest forms first: "[::1]:8080" and "[::1]", then "host:443" and "host".
  std::string bracketed;
  if (host.find(':') != std::string_view::npos) {
    bracketed.push_back('[');
    bracketed.append(host);
    bracketed.push_back(']');
  }
  for (const std::string& h : {bracketed, std::string(host)}) {
    if (h.empty()) continue;
    size_t pos = 0;
    while ((pos = message.find(h, pos)) != std::string::npos) {
      size_t end = pos + h.size();
      if (end < message.size() && message[end] == ':') {
        size_t digits = end + 1;
        while (digits < message.size() && message[digits] >= '0' && message[digits] <= '9') {
          ++digits;
        }
        if (digits > end + 1) end = digits;
      }
      message.replace(pos, end - pos, provider);
      pos += provider.size();
    }
  }
  return RedactSecrets(std::move(message));
}

}  // namespace iris::gateway::api
