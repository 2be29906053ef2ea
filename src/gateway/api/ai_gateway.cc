// The inbound AI SDK gateway protocol (see ai_gateway.h): the call options into ChatRequest,
// naming the field at fault, and the generate result / stream parts back.
#include "gateway/api/ai_gateway.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>

#include "base/json.h"
#include "gateway/api/embeddings.h"
#include "gateway/api/errors.h"
#include "gateway/api/identifiers.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/openai.h"

namespace iris::gateway::api {

namespace json = boost::json;

namespace {

// Distinct dropped features are kept up to this many; the rest are counted in one last entry.
constexpr size_t kMaxDropped = 32;

void Drop(std::vector<DroppedField>& dropped, std::string feature, std::string details) {
  for (const DroppedField& d : dropped) {
    if (d.feature == feature) return;
  }
  if (dropped.size() == kMaxDropped) {
    dropped.push_back({"...", "more fields were dropped than are listed"});
    return;
  }
  if (dropped.size() > kMaxDropped) return;
  dropped.push_back({std::move(feature), std::move(details)});
}

// The providerOptions of a message, part or tool: the cache breakpoint of
// `anthropic.cacheControl`, if set; iris applies no other option there, so each other provider
// named is dropped (names checked: they go into a response header).
Result<std::optional<CacheMark>> PartOptions(const json::object& o, std::string_view path,
                                             std::vector<DroppedField>& dropped) {
  std::optional<CacheMark> cache;
  const json::value* v = FindField(o, "providerOptions");
  if (v == nullptr) return cache;
  const std::string po_path = MemberPath(path, "providerOptions");
  IRIS_ASSIGN_OR_RETURN(const json::object* po, AsObject(*v, po_path));
  for (const auto& [key, value] : *po) {
    IRIS_RETURN_IF_ERROR(CheckProviderName(key, po_path));
    if (value.is_null()) continue;
    bool others = true;
    if (key == "anthropic") {
      const std::string a_path = MemberPath(po_path, key);
      IRIS_ASSIGN_OR_RETURN(const json::object* a, AsObject(value, a_path));
      others = false;
      for (const auto& [option, setting] : *a) {
        if (setting.is_null()) continue;
        if (option == "cacheControl" || option == "cache_control") {
          IRIS_ASSIGN_OR_RETURN(cache, ParseCacheControl(setting, MemberPath(a_path, option)));
        } else {
          others = true;
        }
      }
    }
    if (!others) continue;
    Drop(dropped, "providerOptions." + std::string(key),
         "provider options on messages, parts and tools are not passed to the upstream, but "
         "for anthropic.cacheControl (first seen at " +
             po_path + ")");
  }
  return cache;
}

// A file part of a user message: images only, as a data URL, an http(s) URL or base64 bytes
// with their mediaType.
Status ParseFilePart(const json::object& o, std::string_view path, ContentPart& part) {
  IRIS_ASSIGN_OR_RETURN(std::string media_type, RequiredString(o, "mediaType", path));
  if (!media_type.starts_with("image/")) {
    return FieldError(MemberPath(path, "mediaType"), "only image files are supported (got " +
                                                         Quote(media_type.substr(0, 80)) + ")");
  }
  IRIS_ASSIGN_OR_RETURN(std::string data, RequiredString(o, "data", path));
  const std::string data_path = MemberPath(path, "data");
  if (data.starts_with("data:") || data.starts_with("https://") || data.starts_with("http://")) {
    return ParseOpenAIImageUrl(json::value(data), data_path, part);
  }
  if (media_type == "image/*") {
    return FieldError(MemberPath(path, "mediaType"), "inline image bytes need a concrete type");
  }
  return ParseOpenAIImageUrl(json::value("data:" + media_type + ";base64," + data), data_path,
                             part);
}

// A tool result's output as the text (and error flag) of a tool message.
Status ParseToolOutput(const json::value& v, std::string_view path, Message& m) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, path));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", path));
  const json::value* value = FindField(*o, "value");
  if (type == "text" || type == "error-text") {
    if (value == nullptr) return MissingField(MemberPath(path, "value"));
    IRIS_ASSIGN_OR_RETURN(std::string text, AsString(*value, MemberPath(path, "value")));
    m.content.push_back(ContentPart::Text(std::move(text)));
    m.is_error = type == "error-text";
  } else if (type == "json" || type == "error-json") {
    m.content.push_back(ContentPart::Text(value == nullptr ? "null" : SerializeJson(*value)));
    m.is_error = type == "error-json";
  } else if (type == "execution-denied") {
    std::string text = "Tool execution denied.";
    if (const json::value* r = FindField(*o, "reason")) {
      IRIS_ASSIGN_OR_RETURN(std::string reason, AsString(*r, MemberPath(path, "reason")));
      text += " " + reason;
    }
    m.content.push_back(ContentPart::Text(std::move(text)));
  } else if (type == "content") {
    if (value == nullptr) return MissingField(MemberPath(path, "value"));
    IRIS_ASSIGN_OR_RETURN(const json::array* items, AsArray(*value, MemberPath(path, "value")));
    for (size_t i = 0; i < items->size(); ++i) {
      const std::string p = ElementPath(MemberPath(path, "value"), i);
      IRIS_ASSIGN_OR_RETURN(const json::object* item, AsObject((*items)[i], p));
      IRIS_ASSIGN_OR_RETURN(std::string item_type, RequiredString(*item, "type", p));
      if (item_type != "text") {
        return FieldError(MemberPath(p, "type"), "tool results may carry text only (got " +
                                                     Quote(item_type.substr(0, 40)) + ")");
      }
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*item, "text", p));
      m.content.push_back(ContentPart::Text(std::move(text)));
    }
  } else {
    return FieldError(MemberPath(path, "type"),
                      "expected text, json, error-text, error-json, execution-denied or content, "
                      "got " +
                          Quote(type.substr(0, 40)));
  }
  return OkStatus();
}

Status ParseMessage(const json::object& o, std::string_view path, std::vector<Message>& out,
                    std::vector<DroppedField>& dropped) {
  IRIS_ASSIGN_OR_RETURN(std::string role, RequiredString(o, "role", path));
  // (A message's cache breakpoint is its last part's, as Anthropic's own SDK provider has it.)
  IRIS_ASSIGN_OR_RETURN(std::optional<CacheMark> message_cache, PartOptions(o, path, dropped));
  const std::string content_path = MemberPath(path, "content");
  IRIS_ASSIGN_OR_RETURN(const json::value* content, RequireField(o, "content", path));
  if (role == "system") {
    IRIS_ASSIGN_OR_RETURN(std::string text, AsString(*content, content_path));
    Message m;
    m.role = Role::kSystem;
    m.content.push_back(ContentPart::Text(std::move(text)));
    m.content.back().cache = std::move(message_cache);
    out.push_back(std::move(m));
    return OkStatus();
  }
  if (role != "user" && role != "assistant" && role != "tool") {
    return FieldError(MemberPath(path, "role"),
                      "expected system, user, assistant or tool, got " + Quote(role.substr(0, 40)));
  }
  IRIS_ASSIGN_OR_RETURN(const json::array* parts, AsArray(*content, content_path));
  Message m;
  m.role = role == "user" ? Role::kUser : Role::kAssistant;
  for (size_t i = 0; i < parts->size(); ++i) {
    const std::string p = ElementPath(content_path, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* part, AsObject((*parts)[i], p));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*part, "type", p));
    IRIS_ASSIGN_OR_RETURN(std::optional<CacheMark> cache, PartOptions(*part, p, dropped));
    if (i + 1 == parts->size() && message_cache) cache = message_cache;
    if (role == "tool") {
      if (type != "tool-result") {
        return FieldError(MemberPath(p, "type"),
                          "tool messages carry tool-result parts (tool approvals are not "
                          "supported), got " +
                              Quote(type.substr(0, 40)));
      }
      Message result;
      result.role = Role::kTool;
      IRIS_ASSIGN_OR_RETURN(result.tool_call_id, RequiredString(*part, "toolCallId", p));
      IRIS_ASSIGN_OR_RETURN(result.name, RequiredString(*part, "toolName", p));
      IRIS_ASSIGN_OR_RETURN(const json::value* output, RequireField(*part, "output", p));
      IRIS_RETURN_IF_ERROR(ParseToolOutput(*output, MemberPath(p, "output"), result));
      result.name.clear();  // (the tool's name is the call's; a tool message has no speaker)
      if (cache) {
        if (result.content.empty()) result.content.push_back(ContentPart::Text(""));
        result.content.back().cache = std::move(cache);
      }
      out.push_back(std::move(result));
      continue;
    }
    if (cache && type != "text" && type != "file") {
      Drop(dropped, "providerOptions.anthropic.cacheControl",
           "a cache breakpoint goes on text, file and tool-result parts and on tools only "
           "(first at " +
               p + ")");
    }
    if (type == "text") {
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*part, "text", p));
      m.content.push_back(ContentPart::Text(std::move(text)));
      m.content.back().cache = std::move(cache);
    } else if (type == "file" && role == "user") {
      ContentPart image;
      IRIS_RETURN_IF_ERROR(ParseFilePart(*part, p, image));
      image.cache = std::move(cache);
      m.content.push_back(std::move(image));
    } else if (type == "reasoning" && role == "assistant") {
      Drop(dropped, "reasoning",
           "earlier reasoning parts are not sent back to the upstream (first at " + p + ")");
    } else if (type == "tool-call" && role == "assistant") {
      if (const json::value* pe = FindField(*part, "providerExecuted")) {
        IRIS_ASSIGN_OR_RETURN(bool provider_executed,
                              AsBool(*pe, MemberPath(p, "providerExecuted")));
        if (provider_executed) {
          return FieldError(MemberPath(p, "providerExecuted"),
                            "provider-executed tools are not supported");
        }
      }
      ToolCall call;
      IRIS_ASSIGN_OR_RETURN(call.id, RequiredString(*part, "toolCallId", p));
      IRIS_ASSIGN_OR_RETURN(call.name, RequiredString(*part, "toolName", p));
      const json::value* input = FindField(*part, "input");
      call.arguments = input == nullptr ? "{}" : SerializeJson(*input);
      m.tool_calls.push_back(std::move(call));
    } else {
      return FieldError(MemberPath(p, "type"), "a " + role + " message may not carry a " +
                                                   Quote(type.substr(0, 40)) + " part");
    }
  }
  if (role != "tool") out.push_back(std::move(m));
  return OkStatus();
}

Status ParseTools(const json::value& v, ChatRequest& req, std::vector<DroppedField>& dropped) {
  IRIS_ASSIGN_OR_RETURN(const json::array* tools, AsArray(v, "tools"));
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string p = ElementPath("tools", i);
    IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject((*tools)[i], p));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", p));
    if (type != "function") {
      std::string id = StringField(*o, "id", type).substr(0, 80);
      return FieldError(p, "provider-executed tools (" + Quote(id) +
                               ") are not supported; declare a function tool");
    }
    Tool tool;
    IRIS_ASSIGN_OR_RETURN(tool.name, RequiredString(*o, "name", p));
    if (tool.name.empty()) return FieldError(MemberPath(p, "name"), "must not be empty");
    if (const json::value* d = FindField(*o, "description")) {
      IRIS_ASSIGN_OR_RETURN(tool.description, AsString(*d, MemberPath(p, "description")));
    }
    if (const json::value* s = FindField(*o, "inputSchema")) {
      IRIS_ASSIGN_OR_RETURN(const json::object* schema, AsObject(*s, MemberPath(p, "inputSchema")));
      tool.parameters = *schema;
    }
    if (const json::value* s = FindField(*o, "strict")) {
      IRIS_ASSIGN_OR_RETURN(tool.strict, AsBool(*s, MemberPath(p, "strict")));
    }
    if (FindField(*o, "inputExamples") != nullptr) {
      Drop(dropped, "tools.inputExamples",
           "input examples are not passed to the upstream (first at " + p + ")");
    }
    IRIS_ASSIGN_OR_RETURN(tool.cache, PartOptions(*o, p, dropped));
    req.tools.push_back(std::move(tool));
  }
  return OkStatus();
}

Status ParseAiGatewayToolChoice(const json::value& v, ChatRequest& req) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, "toolChoice"));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", "toolChoice"));
  if (type == "tool") {
    ToolChoice choice;
    choice.mode = ToolChoice::Mode::kTool;
    IRIS_ASSIGN_OR_RETURN(choice.name, RequiredString(*o, "toolName", "toolChoice"));
    req.tool_choice = std::move(choice);
    return OkStatus();
  }
  IRIS_ASSIGN_OR_RETURN(req.tool_choice, ParseToolChoiceMode(type, "toolChoice.type"));
  return OkStatus();
}

Status ParseResponseFormat(const json::value& v, ChatRequest& req,
                           std::vector<DroppedField>& dropped) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, "responseFormat"));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", "responseFormat"));
  if (type == "text") return OkStatus();
  if (type != "json") {
    return FieldError("responseFormat.type",
                      "expected \"text\" or \"json\", got " + Quote(type.substr(0, 40)));
  }
  ResponseFormat format;
  if (const json::value* s = FindField(*o, "schema")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* schema, AsObject(*s, "responseFormat.schema"));
    format.type = ResponseFormat::Type::kJsonSchema;
    format.schema = *schema;
    format.name = "response";
    if (const json::value* n = FindField(*o, "name")) {
      IRIS_ASSIGN_OR_RETURN(format.name, AsString(*n, "responseFormat.name"));
    }
  } else {
    format.type = ResponseFormat::Type::kJsonObject;
  }
  if (FindField(*o, "description") != nullptr) {
    Drop(dropped, "responseFormat.description",
         "the schema's description is not passed to the upstream");
  }
  req.response_format = std::move(format);
  return OkStatus();
}

// Applies one provider option (`provider`.`option` = `value`, at `path`); false when iris does
// not apply it.
using ApplyOption = std::function<Result<bool>(std::string_view provider, std::string_view option,
                                               const json::value& value, const std::string& path)>;

// Top-level providerOptions: gateway routing (read by ParseOpenAIRoutingHints), the end user
// (`gateway.user` or `openai.user`, into `user`), the options `apply` takes, and every other
// option dropped, said by name (names are checked: they go into a response header).
Status ReadProviderOptions(const json::object& body, RoutingHints& routing, std::string& user,
                           std::vector<DroppedField>& dropped, const ApplyOption& apply) {
  IRIS_RETURN_IF_ERROR(ParseOpenAIRoutingHints(body, routing));
  const json::value* v = FindField(body, "providerOptions");
  if (v == nullptr) return OkStatus();
  IRIS_ASSIGN_OR_RETURN(const json::object* po, AsObject(*v, "providerOptions"));
  for (const auto& [key, value] : *po) {
    IRIS_RETURN_IF_ERROR(CheckProviderName(key, "providerOptions"));
    if (value.is_null()) continue;
    const std::string path = MemberPath("providerOptions", key);
    IRIS_ASSIGN_OR_RETURN(const json::object* options, AsObject(value, path));
    for (const auto& [option, option_value] : *options) {
      if (option_value.is_null()) continue;
      if (key == "gateway" && (option == "order" || option == "only" || option == "models")) {
        continue;  // (routing, read above)
      }
      const bool plain = CheckProviderName(option, path).ok();
      const std::string option_path =
          MemberPath(path, plain ? std::string_view(option) : "(unnamed)");
      if (option == "user" && (key == "gateway" || key == "openai")) {
        IRIS_ASSIGN_OR_RETURN(user, AsString(option_value, option_path));
        continue;
      }
      IRIS_ASSIGN_OR_RETURN(bool applied, apply(key, option, option_value, option_path));
      if (!applied) Drop(dropped, option_path, "iris does not apply this option");
    }
  }
  return OkStatus();
}

std::string_view UnifiedFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kToolCalls:
      return "tool-calls";
    case FinishReason::kContentFilter:
      return "content-filter";
    case FinishReason::kError:
      return "error";
  }
  return "other";
}

json::value FinishReasonJson(FinishReason reason, int spec_version) {
  if (spec_version == 2) return json::value(UnifiedFinishReason(reason));
  std::string_view raw = reason == FinishReason::kError ? "error" : OpenAIFinishReason(reason);
  return json::object{{"unified", UnifiedFinishReason(reason)}, {"raw", raw}};
}

json::object UsageJson(const Usage& u, int spec_version) {
  json::object out;
  if (spec_version == 2) {
    if (!u.reported) return out;
    out["inputTokens"] = u.input_tokens;
    out["outputTokens"] = u.output_tokens;
    out["totalTokens"] = u.input_tokens + u.output_tokens;
    out["reasoningTokens"] = u.reasoning_tokens;
    out["cachedInputTokens"] = u.cached_input_tokens;
    return out;
  }
  json::object in, gen;
  if (u.reported) {
    in["total"] = u.input_tokens;
    in["noCache"] =
        std::max<int64_t>(0, u.input_tokens - u.cached_input_tokens - u.cache_write_tokens);
    in["cacheRead"] = u.cached_input_tokens;
    in["cacheWrite"] = u.cache_write_tokens;
    gen["total"] = u.output_tokens;
    gen["text"] = std::max<int64_t>(0, u.output_tokens - u.reasoning_tokens);
    gen["reasoning"] = u.reasoning_tokens;
  }
  out["inputTokens"] = std::move(in);
  out["outputTokens"] = std::move(gen);
  return out;
}

json::array WarningsJson(const std::vector<DroppedField>& dropped, int spec_version) {
  json::array out;
  for (const DroppedField& d : dropped) {
    if (spec_version == 2) {
      out.push_back(json::object{{"type", "other"}, {"message", d.feature + ": " + d.details}});
    } else {
      out.push_back(
          json::object{{"type", "unsupported"}, {"feature", d.feature}, {"details", d.details}});
    }
  }
  return out;
}

// USD as a plain decimal string (no exponent), as the AI SDK's gateway reports money.
std::string DecimalString(double usd) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.12f", usd);
  std::string s = buf;
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

json::object ProviderMetadata(const json::object* iris, std::optional<double> cost_usd) {
  json::object out;
  if (iris != nullptr) out["iris"] = *iris;
  if (cost_usd) out["gateway"] = json::object{{"cost", DecimalString(*cost_usd)}};
  return out;
}

std::string IsoTime(int64_t unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

std::string Part(const json::object& part) { return "data: " + SerializeJson(part) + "\n\n"; }

}  // namespace

Result<AiGatewayRequest> ParseAiGatewayLanguageRequest(std::string_view body,
                                                       const AiGatewayHeaders& headers) {
  AiGatewayRequest out;
  ChatRequest& req = out.chat;
  if (headers.model_id.empty()) {
    return FieldError("ai-language-model-id", "the header naming the model is required");
  }
  req.model = headers.model_id;
  if (headers.streaming == "true") {
    req.stream = true;
  } else if (!headers.streaming.empty() && headers.streaming != "false") {
    return FieldError("ai-language-model-streaming", "expected \"true\" or \"false\"");
  }
  if (headers.spec_version == "2") {
    out.spec_version = 2;
  } else if (!headers.spec_version.empty() && headers.spec_version != "3") {
    return FieldError("ai-language-model-specification-version",
                      "iris speaks versions 2 and 3 of the AI SDK's language model "
                      "specification, got " +
                          Quote(headers.spec_version.substr(0, 16)));
  }
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, "request body"));
  if (!root.is_object()) return TypeError("request body", "a JSON object", root);
  const json::object& o = root.get_object();
  IRIS_ASSIGN_OR_RETURN(const json::value* prompt, RequireField(o, "prompt", ""));
  IRIS_ASSIGN_OR_RETURN(const json::array* messages, AsArray(*prompt, "prompt"));
  if (messages->empty()) return FieldError("prompt", "must contain at least one message");
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string p = ElementPath("prompt", i);
    IRIS_ASSIGN_OR_RETURN(const json::object* m, AsObject((*messages)[i], p));
    IRIS_RETURN_IF_ERROR(ParseMessage(*m, p, req.messages, out.dropped));
  }
  if (const json::value* v = FindField(o, "maxOutputTokens")) {
    IRIS_ASSIGN_OR_RETURN(int64_t n, AsInt(*v, "maxOutputTokens"));
    if (n < 1) return FieldError("maxOutputTokens", "must be at least 1");
    req.max_tokens = n;
  }
  IRIS_ASSIGN_OR_RETURN(req.temperature, OptionalNumberInRange(o, "temperature", 0, 2));
  IRIS_ASSIGN_OR_RETURN(req.top_p, OptionalNumberInRange(o, "topP", 0, 1));
  IRIS_ASSIGN_OR_RETURN(req.presence_penalty, OptionalNumberInRange(o, "presencePenalty", -2, 2));
  IRIS_ASSIGN_OR_RETURN(req.frequency_penalty, OptionalNumberInRange(o, "frequencyPenalty", -2, 2));
  if (const json::value* v = FindField(o, "topK")) {
    IRIS_ASSIGN_OR_RETURN(int64_t k, AsInt(*v, "topK"));
    if (k < 1) return FieldError("topK", "must be at least 1");
    req.top_k = k;
  }
  if (const json::value* v = FindField(o, "seed")) {
    IRIS_ASSIGN_OR_RETURN(int64_t seed, AsInt(*v, "seed"));
    req.seed = seed;
  }
  if (const json::value* v = FindField(o, "stopSequences")) {
    IRIS_ASSIGN_OR_RETURN(req.stop, AsStringList(*v, "stopSequences"));
  }
  if (const json::value* v = FindField(o, "responseFormat")) {
    IRIS_RETURN_IF_ERROR(ParseResponseFormat(*v, req, out.dropped));
  }
  if (const json::value* v = FindField(o, "tools")) {
    IRIS_RETURN_IF_ERROR(ParseTools(*v, req, out.dropped));
  }
  if (const json::value* v = FindField(o, "toolChoice")) {
    IRIS_RETURN_IF_ERROR(ParseAiGatewayToolChoice(*v, req));
  }
  IRIS_RETURN_IF_ERROR(ReadProviderOptions(
      o, req.routing, req.user, out.dropped,
      [&](std::string_view provider, std::string_view option, const json::value& value,
          const std::string& path) -> Result<bool> {
        if (provider == "openai" && option == "reasoningEffort") {
          IRIS_ASSIGN_OR_RETURN(req.reasoning_effort, ParseReasoningEffort(value, path));
          return true;
        }
        if (provider == "anthropic" && (option == "cacheControl" || option == "cache_control")) {
          // A breakpoint at the prompt's end (Anthropic's top-level cache_control).
          IRIS_ASSIGN_OR_RETURN(req.cache, ParseCacheControl(value, path));
          return true;
        }
        if (provider == "anthropic" && option == "thinking") {
          // {"type":"enabled","budgetTokens":N} (or "disabled"), as @ai-sdk/anthropic takes it.
          IRIS_ASSIGN_OR_RETURN(const json::object* thinking, AsObject(value, path));
          IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*thinking, "type", path));
          if (type == "disabled") return true;
          if (type != "enabled") return false;
          IRIS_ASSIGN_OR_RETURN(const json::value* budget,
                                RequireField(*thinking, "budgetTokens", path));
          IRIS_ASSIGN_OR_RETURN(int64_t tokens, AsInt(*budget, MemberPath(path, "budgetTokens")));
          if (tokens < 1 || tokens > kMaxThinkingBudget) {
            return FieldError(MemberPath(path, "budgetTokens"),
                              "must be between 1 and " + std::to_string(kMaxThinkingBudget));
          }
          req.thinking_budget = tokens;
          return true;
        }
        if (provider == "google" && option == "thinkingConfig") {
          IRIS_ASSIGN_OR_RETURN(const json::object* config, AsObject(value, path));
          const json::value* budget = FindField(*config, "thinkingBudget");
          if (budget == nullptr) return false;
          IRIS_ASSIGN_OR_RETURN(int64_t tokens, AsInt(*budget, MemberPath(path, "thinkingBudget")));
          if (tokens < 0) return false;  // (-1, Gemini's own dynamic thinking: not a budget)
          if (tokens > kMaxThinkingBudget) {
            return FieldError(MemberPath(path, "thinkingBudget"),
                              "must be at most " + std::to_string(kMaxThinkingBudget));
          }
          req.thinking_budget = tokens;
          return true;
        }
        return false;
      }));
  req.dialect = Dialect::kAiGateway;
  return out;
}

Result<AiGatewayEmbeddingRequest> ParseAiGatewayEmbeddingRequest(std::string_view body,
                                                                 std::string_view model_id) {
  AiGatewayEmbeddingRequest out;
  EmbeddingRequest& req = out.embed;
  if (model_id.empty()) return FieldError("ai-model-id", "the header naming the model is required");
  req.model = std::string(model_id);
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, "request body"));
  if (!root.is_object()) return TypeError("request body", "a JSON object", root);
  const json::object& o = root.get_object();
  IRIS_ASSIGN_OR_RETURN(const json::value* values, RequireField(o, "values", ""));
  IRIS_ASSIGN_OR_RETURN(const json::array* a, AsArray(*values, "values"));
  if (a->empty()) return FieldError("values", "must contain at least one value");
  if (a->size() > kMaxEmbeddingInputs) {
    return FieldError("values", "at most " + std::to_string(kMaxEmbeddingInputs) + " values, got " +
                                    std::to_string(a->size()));
  }
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string p = ElementPath("values", i);
    IRIS_ASSIGN_OR_RETURN(std::string text, AsString((*a)[i], p));
    if (text.empty()) return FieldError(p, "must not be empty");
    req.texts.push_back(std::move(text));
  }
  IRIS_RETURN_IF_ERROR(
      ReadProviderOptions(o, req.routing, req.user, out.dropped,
                          [&](std::string_view provider, std::string_view option,
                              const json::value& value, const std::string& path) -> Result<bool> {
                            if ((provider == "openai" && option == "dimensions") ||
                                (provider == "google" && option == "outputDimensionality")) {
                              IRIS_ASSIGN_OR_RETURN(int64_t d, AsInt(value, path));
                              if (d < 1 || d > 65536)
                                return FieldError(path, "must be between 1 and 65536");
                              req.dimensions = d;
                              return true;
                            }
                            return false;
                          }));
  return out;
}

std::string EncodeAiGatewayGenerateResult(const ChatResponse& response, int spec_version,
                                          const std::vector<DroppedField>& dropped,
                                          const boost::json::object* iris,
                                          std::optional<double> cost_usd) {
  json::array content;
  for (const ReasoningBlock& b : response.reasoning) {
    if (b.text.empty()) continue;  // (a redacted block has nothing to show)
    json::object part{{"type", "reasoning"}, {"text", b.text}};
    if (!b.signature.empty()) {
      part["providerMetadata"] =
          json::object{{"anthropic", json::object{{"signature", b.signature}}}};
    }
    content.push_back(std::move(part));
  }
  if (!response.text.empty()) {
    content.push_back(json::object{{"type", "text"}, {"text", response.text}});
  }
  for (const ToolCall& call : response.tool_calls) {
    content.push_back(json::object{{"type", "tool-call"},
                                   {"toolCallId", call.id},
                                   {"toolName", call.name},
                                   {"input", call.arguments.empty() ? "{}" : call.arguments}});
  }
  json::object out{
      {"content", std::move(content)},
      {"finishReason", FinishReasonJson(response.finish_reason, spec_version)},
      {"usage", UsageJson(response.usage, spec_version)},
      {"providerMetadata", ProviderMetadata(iris, cost_usd)},
      {"response", json::object{{"id", response.id},
                                {"modelId", response.model},
                                {"timestamp", IsoTime(response.created)}}},
      {"warnings", WarningsJson(dropped, spec_version)},
  };
  return SerializeJson(out);
}

std::string EncodeAiGatewayEmbeddings(const EmbeddingResponse& response,
                                      const std::vector<DroppedField>& dropped,
                                      const boost::json::object* iris,
                                      std::optional<double> cost_usd) {
  json::array embeddings;
  embeddings.reserve(response.vectors.size());
  for (const std::vector<float>& v : response.vectors) {
    json::array values;
    values.reserve(v.size());
    for (float f : v) values.push_back(static_cast<double>(f));
    embeddings.push_back(std::move(values));
  }
  json::object out{{"embeddings", std::move(embeddings)},
                   {"providerMetadata", ProviderMetadata(iris, cost_usd)},
                   {"warnings", WarningsJson(dropped, 3)}};
  if (response.usage.reported) out["usage"] = json::object{{"tokens", response.usage.input_tokens}};
  return SerializeJson(out);
}

std::string EncodeAiGatewayConfig(const std::vector<AiGatewayModel>& models) {
  json::array list;
  for (const AiGatewayModel& m : models) {
    json::object entry{{"id", m.id}, {"name", m.id}};
    if (!m.description.empty()) entry["description"] = m.description;
    if (m.input_per_mtok && m.output_per_mtok) {
      json::object pricing{{"input", DecimalString(*m.input_per_mtok / 1e6)},
                           {"output", DecimalString(*m.output_per_mtok / 1e6)}};
      if (m.cached_input_per_mtok) {
        pricing["input_cache_read"] = DecimalString(*m.cached_input_per_mtok / 1e6);
      }
      if (m.cache_write_per_mtok) {
        pricing["input_cache_write"] = DecimalString(*m.cache_write_per_mtok / 1e6);
      }
      entry["pricing"] = std::move(pricing);
    }
    entry["specification"] =
        json::object{{"specificationVersion", "v3"}, {"provider", m.provider}, {"modelId", m.id}};
    list.push_back(std::move(entry));
  }
  return SerializeJson(json::object{{"models", std::move(list)}});
}

// --- Streaming -------------------------------------------------------------------------------

std::string AiGatewayStreamEncoder::Start() {
  if (started_) return {};
  started_ = true;
  std::string out = Part(
      json::object{{"type", "stream-start"}, {"warnings", WarningsJson(dropped_, spec_version_)}});
  json::object meta{{"type", "response-metadata"}};
  if (!response_id_.empty()) meta["id"] = response_id_;
  if (!model_.empty()) meta["modelId"] = model_;
  if (created_ != 0) meta["timestamp"] = IsoTime(created_);
  return out + Part(meta);
}

std::string AiGatewayStreamEncoder::CloseText() {
  if (!text_open_) return {};
  text_open_ = false;
  return Part(json::object{{"type", "text-end"}, {"id", std::to_string(text_parts_ - 1)}});
}

std::string AiGatewayStreamEncoder::CloseReasoning() {
  if (open_reasoning_ < 0) return {};
  json::object part{{"type", "reasoning-end"},
                    {"id", "reasoning-" + std::to_string(open_reasoning_)}};
  if (!signature_.empty()) {
    part["providerMetadata"] =
        json::object{{"anthropic", json::object{{"signature", std::move(signature_)}}}};
  }
  signature_.clear();
  open_reasoning_ = -1;
  return Part(part);
}

std::string AiGatewayStreamEncoder::Encode(const StreamEvent& e) {
  switch (e.type) {
    case StreamEvent::Type::kStart:
      if (!started_) {
        response_id_ = e.id;
        model_ = e.model;
        created_ = e.created;
      }
      return Start();
    case StreamEvent::Type::kTextDelta: {
      if (e.text.empty()) return Start();
      std::string out = Start() + CloseReasoning();
      if (!text_open_) {
        text_open_ = true;
        out += Part(json::object{{"type", "text-start"}, {"id", std::to_string(text_parts_++)}});
      }
      return out + Part(json::object{{"type", "text-delta"},
                                     {"id", std::to_string(text_parts_ - 1)},
                                     {"delta", e.text}});
    }
    case StreamEvent::Type::kToolCallStart: {
      std::string out = Start() + CloseReasoning() + CloseText();
      if (e.index < 0) return out;
      if (calls_.size() <= static_cast<size_t>(e.index)) calls_.resize(e.index + 1);
      ToolCall& call = calls_[e.index];
      call.id = e.id.empty() ? "call_" + std::to_string(e.index) : e.id;
      call.name = e.name;
      return out + Part(json::object{
                       {"type", "tool-input-start"}, {"id", call.id}, {"toolName", call.name}});
    }
    case StreamEvent::Type::kToolCallDelta: {
      std::string out = Start();
      if (e.index < 0) return out;
      if (calls_.size() <= static_cast<size_t>(e.index)) calls_.resize(e.index + 1);
      ToolCall& call = calls_[e.index];
      call.arguments += e.text;
      if (call.id.empty() || e.text.empty()) return out;
      return out +
             Part(json::object{{"type", "tool-input-delta"}, {"id", call.id}, {"delta", e.text}});
    }
    case StreamEvent::Type::kFinish:
      finish_ = e.finish_reason;
      return Start();
    case StreamEvent::Type::kUsage:
      usage_ = e.usage;
      return Start();
    case StreamEvent::Type::kReasoningDelta: {
      std::string out = Start() + CloseText();
      const std::string id = "reasoning-" + std::to_string(e.index);
      if (open_reasoning_ != e.index) {
        out += CloseReasoning();
        open_reasoning_ = e.index;
        out += Part(json::object{{"type", "reasoning-start"}, {"id", id}});
      }
      if (e.text.empty()) return out;
      return out + Part(json::object{{"type", "reasoning-delta"}, {"id", id}, {"delta", e.text}});
    }
    case StreamEvent::Type::kReasoningSignature:
      // (Anthropic's signature, where @ai-sdk/anthropic keeps it, on the block's end.)
      signature_ = e.text;
      return Start() + CloseReasoning();
    case StreamEvent::Type::kRedactedReasoning:
      return Start() + CloseText() + CloseReasoning();
    case StreamEvent::Type::kAsIs:
      return {};  // (only a Responses caller gets a provider's own events)
    case StreamEvent::Type::kExtras:
      return {};  // (OpenAI's own chunk members have no stream part)
  }
  return {};
}

std::string AiGatewayStreamEncoder::Finish(const boost::json::object* iris,
                                           std::optional<double> cost_usd) {
  std::string out = Start() + CloseReasoning() + CloseText();
  for (const ToolCall& call : calls_) {
    if (call.id.empty()) continue;
    out += Part(json::object{{"type", "tool-input-end"}, {"id", call.id}});
    out += Part(json::object{{"type", "tool-call"},
                             {"toolCallId", call.id},
                             {"toolName", call.name},
                             {"input", call.arguments.empty() ? "{}" : call.arguments}});
  }
  out += Part(json::object{{"type", "finish"},
                           {"finishReason", FinishReasonJson(finish_, spec_version_)},
                           {"usage", UsageJson(usage_, spec_version_)},
                           {"providerMetadata", ProviderMetadata(iris, cost_usd)}});
  return out;
}

std::string AiGatewayStreamEncoder::Error(const GatewayError& error) {
  return Start() +
         Part(json::object{{"type", "error"}, {"error", AiGatewayErrorObject(error, {})}});
}

}  // namespace iris::gateway::api
