// The inbound OpenAI dialect (see openai.h): a strict request parser that names the field
// at fault, and the response, chunk and model-list encoders.
#include "gateway/api/openai.h"

#include <boost/json/serialize.hpp>
#include <unordered_set>
#include <utility>

#include "base/json.h"
#include "gateway/api/errors.h"
#include "gateway/api/json_fields.h"

namespace iris::gateway::api {

namespace json = boost::json;

namespace {

// Linear in the sizes (a hashed set, not a scan per entry): a caller's list of a hundred
// thousand names must not hold a worker for seconds before the limits check refuses it.
void AppendUnique(std::vector<std::string>& to, const std::vector<std::string>& from) {
  std::unordered_set<std::string> seen(to.begin(), to.end());
  for (const std::string& s : from) {
    if (seen.insert(s).second) to.push_back(s);
  }
}

// --- Content ----------------------------------------------------------------------------

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Accepts standard base64, padded or not; no whitespace, no URL-safe alphabet.
bool IsBase64(std::string_view s) {
  size_t n = s.size();
  size_t pad = 0;
  while (pad < 2 && pad < n && s[n - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i + pad < n; ++i) {
    if (!IsBase64Char(s[i])) return false;
  }
  if (pad > 0) return n % 4 == 0;
  return n % 4 != 1;
}

// "data:image/png;base64,AAAA" -> media_type "image/png", data_base64 "AAAA".
Status ParseDataUrl(std::string_view url, std::string_view path, ContentPart& part) {
  std::string_view rest = url.substr(5);  // after "data:"
  size_t comma = rest.find(',');
  if (comma == std::string_view::npos) return FieldError(path, "malformed data URL (no comma)");
  std::string_view header = rest.substr(0, comma);
  std::string_view data = rest.substr(comma + 1);
  constexpr std::string_view kBase64 = ";base64";
  if (header.size() < kBase64.size() || header.substr(header.size() - kBase64.size()) != kBase64) {
    return FieldError(path, "only base64 data URLs are supported (data:<type>;base64,...)");
  }
  std::string_view media_type = header.substr(0, header.find(';'));
  if (media_type.substr(0, 6) != "image/" || media_type.size() == 6) {
    return FieldError(path,
                      "expected an image media type in the data URL, got " + Quote(media_type));
  }
  if (data.empty()) return FieldError(path, "the data URL has no data");
  if (!IsBase64(data)) return FieldError(path, "the data URL's payload is not valid base64");
  part.media_type = std::string(media_type);
  part.data_base64 = std::string(data);
  return OkStatus();
}

}  // namespace

Status ParseOpenAIImageUrl(const json::value& v, std::string_view path, ContentPart& part) {
  std::string url;
  std::string url_path = std::string(path);
  if (v.is_string()) {  // Mistral's bare-string form, which some OpenAI clients send too
    url = std::string(v.get_string());
  } else if (v.is_object()) {
    const json::object& o = v.get_object();
    url_path = MemberPath(path, "url");
    IRIS_ASSIGN_OR_RETURN(url, RequiredString(o, "url", path));
    if (const json::value* d = FindField(o, "detail")) {
      IRIS_ASSIGN_OR_RETURN(part.detail, AsString(*d, MemberPath(path, "detail")));
    }
  } else {
    return TypeError(path, "an object or a string", v);
  }
  part.type = ContentPart::Type::kImage;
  if (url.rfind("data:", 0) == 0) return ParseDataUrl(url, url_path, part);
  if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0) {
    part.url = std::move(url);
    return OkStatus();
  }
  return FieldError(url_path, "expected an http(s) URL or a base64 data URL");
}

namespace {

// Content of a message with role `role_name`: a string or an array of parts. Images only
// in user messages, refusals only in assistant messages.
Result<std::vector<ContentPart>> ParseContent(const json::value& v, std::string_view path,
                                              std::string_view role_name) {
  std::vector<ContentPart> parts;
  if (v.is_string()) {
    parts.push_back(ContentPart::Text(std::string(v.get_string())));
    return parts;
  }
  if (!v.is_array()) return TypeError(path, "a string or an array of content parts", v);
  const json::array& a = v.get_array();
  for (size_t i = 0; i < a.size(); ++i) {
    std::string p = ElementPath(path, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(a[i], p));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", p));
    ContentPart part;
    if (type == "text") {
      IRIS_ASSIGN_OR_RETURN(part.text, RequiredString(*o, "text", p));
    } else if (type == "refusal" && role_name == "assistant") {
      IRIS_ASSIGN_OR_RETURN(part.text, RequiredString(*o, "refusal", p));
    } else if (type == "image_url") {
      if (role_name != "user") {
        return FieldError(MemberPath(p, "type"),
                          "image_url parts are only allowed in user messages");
      }
      const json::value* image = FindField(*o, "image_url");
      if (image == nullptr) return MissingField(MemberPath(p, "image_url"));
      IRIS_RETURN_IF_ERROR(ParseOpenAIImageUrl(*image, MemberPath(p, "image_url"), part));
    } else if (type == "input_audio" || type == "file") {
      return FieldError(MemberPath(p, "type"), Quote(type) + " content parts are not supported");
    } else {
      return FieldError(MemberPath(p, "type"), "unknown content part type " + Quote(type));
    }
    // (Anthropic's cache breakpoints, as OpenAI-shaped clients of Claude models write them.)
    if (const json::value* c = FindField(*o, "cache_control")) {
      IRIS_ASSIGN_OR_RETURN(part.cache, ParseCacheControl(*c, MemberPath(p, "cache_control")));
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<std::vector<ToolCall>> ParseToolCalls(const json::value& v, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(const json::array* a, AsArray(v, path));
  std::vector<ToolCall> calls;
  for (size_t i = 0; i < a->size(); ++i) {
    std::string p = ElementPath(path, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject((*a)[i], p));
    ToolCall call;
    IRIS_ASSIGN_OR_RETURN(call.id, RequiredString(*o, "id", p));
    if (const json::value* t = FindField(*o, "type")) {
      IRIS_ASSIGN_OR_RETURN(std::string type, AsString(*t, MemberPath(p, "type")));
      if (type != "function") {
        return FieldError(MemberPath(p, "type"),
                          "only \"function\" tool calls are supported, got " + Quote(type));
      }
    }
    std::string fp = MemberPath(p, "function");
    IRIS_ASSIGN_OR_RETURN(const json::object* fo, RequiredObject(*o, "function", p));
    IRIS_ASSIGN_OR_RETURN(call.name, RequiredString(*fo, "name", fp));
    const json::value* args = FindField(*fo, "arguments");
    if (args == nullptr) {
      call.arguments = "{}";
    } else {
      IRIS_ASSIGN_OR_RETURN(call.arguments, AsString(*args, MemberPath(fp, "arguments")));
    }
    calls.push_back(std::move(call));
  }
  return calls;
}

Result<Message> ParseMessage(const json::value& v, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, path));
  IRIS_ASSIGN_OR_RETURN(std::string role, RequiredString(*o, "role", path));
  Message m;
  if (role == "system" || role == "developer") {
    m.role = Role::kSystem;
  } else if (role == "user") {
    m.role = Role::kUser;
  } else if (role == "assistant") {
    m.role = Role::kAssistant;
  } else if (role == "tool") {
    m.role = Role::kTool;
  } else if (role == "function") {
    return FieldError(MemberPath(path, "role"),
                      "the legacy \"function\" role is not supported; use \"tool\" messages");
  } else {
    return FieldError(MemberPath(path, "role"), "unknown role " + Quote(role) +
                                                    " (expected system, developer, user, "
                                                    "assistant or tool)");
  }
  if (const json::value* name = FindField(*o, "name")) {
    IRIS_ASSIGN_OR_RETURN(m.name, AsString(*name, MemberPath(path, "name")));
  }
  if (m.role == Role::kAssistant) {
    if (const json::value* tc = FindField(*o, "tool_calls")) {
      IRIS_ASSIGN_OR_RETURN(m.tool_calls, ParseToolCalls(*tc, MemberPath(path, "tool_calls")));
    }
  }
  if (m.role == Role::kTool) {
    IRIS_ASSIGN_OR_RETURN(m.tool_call_id, RequiredString(*o, "tool_call_id", path));
  }
  const json::value* content = FindField(*o, "content");
  if (content == nullptr) {
    if (m.role != Role::kAssistant || m.tool_calls.empty()) {
      return FieldError(MemberPath(path, "content"),
                        m.role == Role::kAssistant
                            ? "required (an assistant message needs content or tool_calls)"
                            : "required");
    }
  } else {
    IRIS_ASSIGN_OR_RETURN(m.content, ParseContent(*content, MemberPath(path, "content"), role));
  }
  return m;
}

Result<Tool> ParseTool(const json::value& v, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, path));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", path));
  if (type != "function") {
    return FieldError(MemberPath(path, "type"), "unsupported tool type " + Quote(type) +
                                                    "; only \"function\" tools are supported");
  }
  IRIS_ASSIGN_OR_RETURN(const json::object* fo, RequiredObject(*o, "function", path));
  return ParseFunctionFields(*fo, MemberPath(path, "function"));
}

Result<ToolChoice> ParseToolChoice(const json::value& v) {
  constexpr std::string_view kPath = "tool_choice";
  if (v.is_string()) return ParseToolChoiceMode(v.get_string(), kPath);
  ToolChoice choice;
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, kPath));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", "tool_choice"));
  if (type != "function") {
    return FieldError("tool_choice.type",
                      "only {\"type\":\"function\",...} is supported, got " + Quote(type));
  }
  IRIS_ASSIGN_OR_RETURN(const json::object* fo, RequiredObject(*o, "function", "tool_choice"));
  IRIS_ASSIGN_OR_RETURN(choice.name, RequiredString(*fo, "name", "tool_choice.function"));
  choice.mode = ToolChoice::Mode::kTool;
  return choice;
}

Result<ResponseFormat> ParseResponseFormat(const json::value& v) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, "response_format"));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", "response_format"));
  ResponseFormat format;
  if (type == "text") {
    format.type = ResponseFormat::Type::kText;
  } else if (type == "json_object") {
    format.type = ResponseFormat::Type::kJsonObject;
  } else if (type == "json_schema") {
    format.type = ResponseFormat::Type::kJsonSchema;
    constexpr std::string_view kPath = "response_format.json_schema";
    IRIS_ASSIGN_OR_RETURN(const json::object* jo,
                          RequiredObject(*o, "json_schema", "response_format"));
    IRIS_ASSIGN_OR_RETURN(format.name, RequiredString(*jo, "name", kPath));
    if (const json::value* schema = FindField(*jo, "schema")) {
      if (!schema->is_object()) return TypeError(MemberPath(kPath, "schema"), "an object", *schema);
      format.schema = *schema;
    }
    if (const json::value* strict = FindField(*jo, "strict")) {
      IRIS_ASSIGN_OR_RETURN(format.strict, AsBool(*strict, MemberPath(kPath, "strict")));
    }
  } else {
    return FieldError("response_format.type",
                      "expected \"text\", \"json_object\" or \"json_schema\", got " + Quote(type));
  }
  return format;
}

}  // namespace

Result<Tool> ParseFunctionFields(const json::object& fields, std::string_view path) {
  Tool tool;
  IRIS_ASSIGN_OR_RETURN(tool.name, RequiredString(fields, "name", path));
  if (tool.name.empty()) return FieldError(MemberPath(path, "name"), "must not be empty");
  if (const json::value* d = FindField(fields, "description")) {
    IRIS_ASSIGN_OR_RETURN(tool.description, AsString(*d, MemberPath(path, "description")));
  }
  if (const json::value* p = FindField(fields, "parameters")) {
    if (!p->is_object()) {
      return TypeError(MemberPath(path, "parameters"), "a JSON Schema object", *p);
    }
    tool.parameters = *p;
  }
  if (const json::value* s = FindField(fields, "strict")) {
    IRIS_ASSIGN_OR_RETURN(tool.strict, AsBool(*s, MemberPath(path, "strict")));
  }
  return tool;
}

Result<ToolChoice> ParseToolChoiceMode(std::string_view mode, std::string_view path) {
  ToolChoice choice;
  if (mode == "auto") {
    choice.mode = ToolChoice::Mode::kAuto;
  } else if (mode == "none") {
    choice.mode = ToolChoice::Mode::kNone;
  } else if (mode == "required") {
    choice.mode = ToolChoice::Mode::kRequired;
  } else {
    return FieldError(path, "expected \"auto\", \"none\" or \"required\", got " + Quote(mode));
  }
  return choice;
}

Result<std::string> ParseReasoningEffort(const json::value& v, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(std::string effort, AsString(v, path));
  for (std::string_view known : {"none", "minimal", "low", "medium", "high", "xhigh"}) {
    if (effort == known) return effort;
  }
  return FieldError(path,
                    "expected none, minimal, low, medium, high or xhigh, got " + Quote(effort));
}

Status ParseOpenAIRoutingHints(const json::object& o, RoutingHints& routing) {
  if (const json::value* v = FindField(o, "models")) {  // OpenRouter
    IRIS_ASSIGN_OR_RETURN(std::vector<std::string> models, AsStringList(*v, "models"));
    AppendUnique(routing.models, models);
  }
  if (const json::value* v = FindField(o, "provider")) {  // OpenRouter
    IRIS_ASSIGN_OR_RETURN(const json::object* p, AsObject(*v, "provider"));
    if (const json::value* order = FindField(*p, "order")) {
      IRIS_ASSIGN_OR_RETURN(std::vector<std::string> list, AsStringList(*order, "provider.order"));
      AppendUnique(routing.order, list);
    }
    if (const json::value* only = FindField(*p, "only")) {
      IRIS_ASSIGN_OR_RETURN(std::vector<std::string> list, AsStringList(*only, "provider.only"));
      AppendUnique(routing.only, list);
    }
  }
  if (const json::value* v = FindField(o, "providerOptions")) {  // Vercel AI Gateway
    IRIS_ASSIGN_OR_RETURN(const json::object* po, AsObject(*v, "providerOptions"));
    if (const json::value* g = FindField(*po, "gateway")) {
      constexpr std::string_view kPath = "providerOptions.gateway";
      IRIS_ASSIGN_OR_RETURN(const json::object* go, AsObject(*g, kPath));
      const std::pair<std::string_view, std::vector<std::string>*> lists[] = {
          {"order", &routing.order}, {"only", &routing.only}, {"models", &routing.models}};
      for (const auto& [key, to] : lists) {
        if (const json::value* lv = FindField(*go, key)) {
          IRIS_ASSIGN_OR_RETURN(std::vector<std::string> list,
                                AsStringList(*lv, MemberPath(kPath, key)));
          AppendUnique(*to, list);
        }
      }
    }
  }
  return OkStatus();
}

Result<ChatRequest> ParseOpenAIChatRequest(std::string_view body) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, "request body"));
  if (!root.is_object()) return TypeError("request body", "a JSON object", root);
  const json::object& o = root.get_object();
  ChatRequest req;
  req.dialect = Dialect::kOpenAI;

  IRIS_ASSIGN_OR_RETURN(req.model, RequiredString(o, "model", ""));
  if (req.model.empty()) return FieldError("model", "must not be empty");

  IRIS_ASSIGN_OR_RETURN(const json::value* messages, RequireField(o, "messages", ""));
  IRIS_ASSIGN_OR_RETURN(const json::array* ma, AsArray(*messages, "messages"));
  if (ma->empty()) return FieldError("messages", "must contain at least one message");
  for (size_t i = 0; i < ma->size(); ++i) {
    IRIS_ASSIGN_OR_RETURN(Message m, ParseMessage((*ma)[i], ElementPath("messages", i)));
    req.messages.push_back(std::move(m));
  }

  if (const json::value* v = FindField(o, "n")) {
    IRIS_ASSIGN_OR_RETURN(int64_t n, AsInt(*v, "n"));
    if (n != 1) return FieldError("n", "only n=1 is supported, got " + std::to_string(n));
  }
  if (const json::value* v = FindField(o, "tools")) {
    IRIS_ASSIGN_OR_RETURN(const json::array* ta, AsArray(*v, "tools"));
    for (size_t i = 0; i < ta->size(); ++i) {
      IRIS_ASSIGN_OR_RETURN(Tool t, ParseTool((*ta)[i], ElementPath("tools", i)));
      req.tools.push_back(std::move(t));
    }
  }
  if (const json::value* v = FindField(o, "tool_choice")) {
    IRIS_ASSIGN_OR_RETURN(ToolChoice c, ParseToolChoice(*v));
    req.tool_choice = std::move(c);
  }
  if (const json::value* v = FindField(o, "parallel_tool_calls")) {
    IRIS_ASSIGN_OR_RETURN(bool b, AsBool(*v, "parallel_tool_calls"));
    req.parallel_tool_calls = b;
  }
  if (const json::value* v = FindField(o, "response_format")) {
    IRIS_ASSIGN_OR_RETURN(ResponseFormat f, ParseResponseFormat(*v));
    req.response_format = std::move(f);
  }
  if (const json::value* v = FindField(o, "stop")) {
    if (v->is_string()) {
      if (!v->get_string().empty()) req.stop.emplace_back(v->get_string());
    } else if (v->is_array()) {
      IRIS_ASSIGN_OR_RETURN(req.stop, AsStringList(*v, "stop"));
    } else {
      return TypeError("stop", "a string or an array of strings", *v);
    }
  }
  IRIS_ASSIGN_OR_RETURN(req.temperature, OptionalNumberInRange(o, "temperature", 0, 2));
  IRIS_ASSIGN_OR_RETURN(req.top_p, OptionalNumberInRange(o, "top_p", 0, 1));
  IRIS_ASSIGN_OR_RETURN(req.frequency_penalty,
                        OptionalNumberInRange(o, "frequency_penalty", -2, 2));
  IRIS_ASSIGN_OR_RETURN(req.presence_penalty, OptionalNumberInRange(o, "presence_penalty", -2, 2));
  if (const json::value* v = FindField(o, "top_k")) {
    IRIS_ASSIGN_OR_RETURN(int64_t k, AsInt(*v, "top_k"));
    req.top_k = k;
  }
  if (const json::value* v = FindField(o, "seed")) {
    IRIS_ASSIGN_OR_RETURN(int64_t seed, AsInt(*v, "seed"));
    req.seed = seed;
  }
  for (std::string_view key : {"max_tokens", "max_completion_tokens"}) {
    if (const json::value* v = FindField(o, key)) {
      IRIS_ASSIGN_OR_RETURN(int64_t n, AsInt(*v, key));
      if (n < 1) return FieldError(key, "must be at least 1");
      req.max_tokens = n;  // max_completion_tokens comes second and so wins
    }
  }
  if (const json::value* v = FindField(o, "stream")) {
    IRIS_ASSIGN_OR_RETURN(req.stream, AsBool(*v, "stream"));
  }
  if (const json::value* v = FindField(o, "stream_options")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* so, AsObject(*v, "stream_options"));
    if (const json::value* iu = FindField(*so, "include_usage")) {
      IRIS_ASSIGN_OR_RETURN(bool b, AsBool(*iu, "stream_options.include_usage"));
      req.include_usage = b && req.stream;
    }
  }
  if (const json::value* v = FindField(o, "user")) {
    IRIS_ASSIGN_OR_RETURN(req.user, AsString(*v, "user"));
  }
  if (const json::value* v = FindField(o, "reasoning_effort")) {
    IRIS_ASSIGN_OR_RETURN(req.reasoning_effort, ParseReasoningEffort(*v, "reasoning_effort"));
  }
  IRIS_RETURN_IF_ERROR(ParseOpenAIRoutingHints(o, req.routing));
  req.extra_fields = UninterpretedKeys(o, {"model",
                                           "messages",
                                           "n",
                                           "tools",
                                           "tool_choice",
                                           "parallel_tool_calls",
                                           "response_format",
                                           "stop",
                                           "temperature",
                                           "top_p",
                                           "frequency_penalty",
                                           "presence_penalty",
                                           "top_k",
                                           "seed",
                                           "max_tokens",
                                           "max_completion_tokens",
                                           "stream",
                                           "stream_options",
                                           "user",
                                           "reasoning_effort",
                                           "models",
                                           "provider",
                                           "providerOptions"});
  req.caller_body = std::make_shared<const json::object>(std::move(root.get_object()));
  return req;
}

// --- Responses -----------------------------------------------------------------------------

std::string_view OpenAIFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
    case FinishReason::kError:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kToolCalls:
      return "tool_calls";
    case FinishReason::kContentFilter:
      return "content_filter";
  }
  return "stop";
}

FinishReason ParseOpenAIFinishReason(std::string_view reason) {
  if (reason == "length" || reason == "model_length") return FinishReason::kLength;
  if (reason == "tool_calls" || reason == "function_call") return FinishReason::kToolCalls;
  if (reason == "content_filter") return FinishReason::kContentFilter;
  if (reason == "error") return FinishReason::kError;
  return FinishReason::kStop;
}

boost::json::object EncodeOpenAIUsage(const Usage& usage, std::optional<double> cost_usd,
                                      boost::json::storage_ptr storage) {
  json::object u(6, storage);
  u["prompt_tokens"] = usage.input_tokens;
  u["completion_tokens"] = usage.output_tokens;
  u["total_tokens"] = usage.input_tokens + usage.output_tokens;
  json::object prompt_details(2, storage);
  prompt_details["cached_tokens"] = usage.cached_input_tokens;
  if (usage.cache_write_tokens != 0) {
    prompt_details["cache_write_tokens"] = usage.cache_write_tokens;
  }
  u["prompt_tokens_details"] = std::move(prompt_details);
  json::object completion_details(1, storage);
  completion_details["reasoning_tokens"] = usage.reasoning_tokens;
  u["completion_tokens_details"] = std::move(completion_details);
  if (cost_usd) u["cost"] = *cost_usd;
  return u;
}

Result<CacheMark> ParseCacheControl(const json::value& v, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, path));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", path));
  if (type != "ephemeral") {
    return FieldError(MemberPath(path, "type"),
                      "expected \"ephemeral\", got " + Quote(type.substr(0, 40)));
  }
  CacheMark mark;
  if (const json::value* t = FindField(*o, "ttl")) {
    IRIS_ASSIGN_OR_RETURN(mark.ttl, AsString(*t, MemberPath(path, "ttl")));
    if (mark.ttl != "5m" && mark.ttl != "1h") {
      return FieldError(MemberPath(path, "ttl"), "expected \"5m\" or \"1h\"");
    }
  }
  return mark;
}

bool ErasePriceOf(boost::json::object& usage) {
  const size_t erased = usage.stable_erase("cost") + usage.stable_erase("cost_details");
  return erased > 0;
}

Usage DecodeOpenAIUsage(const boost::json::object& o) {
  Usage u;
  u.reported = true;
  u.input_tokens = TokenCountField(o, "prompt_tokens");
  u.output_tokens = TokenCountField(o, "completion_tokens");
  if (const json::object* d = ObjectField(o, "prompt_tokens_details")) {
    u.cached_input_tokens = TokenCountField(*d, "cached_tokens");
    u.cache_write_tokens = TokenCountField(*d, "cache_write_tokens");
  } else if (const json::object* legacy = ObjectField(o, "prompt_token_details")) {
    u.cached_input_tokens = TokenCountField(*legacy, "cached_tokens");
  }
  if (u.cached_input_tokens == 0) u.cached_input_tokens = TokenCountField(o, "num_cached_tokens");
  if (const json::object* d = ObjectField(o, "completion_tokens_details")) {
    u.reasoning_tokens = TokenCountField(*d, "reasoning_tokens");
  }
  return u;
}

namespace {

// [o], in the storage of o (an initializer list would put the array in the default storage).
json::array ArrayOf(json::object o) {
  json::array a(o.storage());
  a.push_back(std::move(o));
  return a;
}

json::object ToolCallJson(const ToolCall& call, json::storage_ptr storage = {}) {
  json::object fn(2, storage);
  fn["name"] = call.name;
  fn["arguments"] = call.arguments;
  json::object tc(3, storage);
  tc["id"] = call.id;
  tc["type"] = "function";
  tc["function"] = std::move(fn);
  return tc;
}

std::string DataEvent(const json::object& o) { return "data: " + SerializeJson(o) + "\n\n"; }

// Adds a provider's own members (OpenAIExtras) to a chat.completion or chunk iris built: at
// the top, to its first choice, and to that choice's `inner` (message or delta). iris's
// members keep their place; one the provider also sent (a choice's `logprobs`) takes its value.
void AddExtras(json::object& out, const OpenAIExtras& x, std::string_view inner) {
  for (const auto& kv : x.top) out[kv.key()] = kv.value();
  json::value* c = out.if_contains("choices");
  json::array* choices = c != nullptr ? c->if_array() : nullptr;
  if (choices == nullptr || choices->empty() || !(*choices)[0].is_object()) return;
  json::object& choice = (*choices)[0].get_object();
  for (const auto& kv : x.choice) choice[kv.key()] = kv.value();
  if (x.message.empty()) return;
  json::value& m = choice[inner];
  if (!m.is_object()) m = json::object(choice.storage());
  for (const auto& kv : x.message) m.get_object()[kv.key()] = kv.value();
}

// iris's usage object written over the provider's own (`provider`, an object or null): its
// token details iris does not count stay, in the provider's order; iris's counts win, and the
// only cost is iris's (an upstream's own `cost`, OpenRouter's say, is not passed off as it).
json::object OverProviderUsage(const json::value& provider, json::object ours) {
  if (!provider.is_object()) return ours;
  json::object merged(provider.get_object(), ours.storage());
  ErasePriceOf(merged);
  for (const auto& kv : ours) {
    json::value& slot = merged[kv.key()];
    if (slot.is_object() && kv.value().is_object()) {
      for (const auto& sub : kv.value().get_object()) slot.get_object()[sub.key()] = sub.value();
    } else {
      slot = kv.value();
    }
  }
  return merged;
}

}  // namespace

std::string EncodeOpenAIChatResponse(const ChatResponse& response, const boost::json::object* iris,
                                     std::optional<double> cost_usd) {
  // Built, written out and dropped here: in scratch storage.
  JsonScratch scratch;
  const json::storage_ptr sp = scratch.storage();
  json::object message(4, sp);
  message["role"] = "assistant";
  if ((response.text.empty() && !response.tool_calls.empty()) || response.refused) {
    message["content"] = nullptr;
  } else {
    message["content"] = response.text;
  }
  // (A refusal where OpenAI puts it.)
  message["refusal"] = response.refused ? json::value(response.text) : json::value(nullptr);
  if (!response.tool_calls.empty()) {
    json::array calls(sp);
    for (const ToolCall& c : response.tool_calls) calls.push_back(ToolCallJson(c, sp));
    message["tool_calls"] = std::move(calls);
  }
  json::object choice(4, sp);
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = OpenAIFinishReason(response.finish_reason);
  json::object out(6, sp);
  out["id"] = response.id;
  out["object"] = "chat.completion";
  out["created"] = response.created;
  out["model"] = response.model;
  out["choices"] = ArrayOf(std::move(choice));
  const OpenAIExtras* extras = response.openai_extras.get();
  if (response.usage.reported || cost_usd) {
    json::object usage = EncodeOpenAIUsage(response.usage, cost_usd, sp);
    out["usage"] =
        extras != nullptr ? OverProviderUsage(extras->usage, std::move(usage)) : std::move(usage);
  }
  if (extras != nullptr) AddExtras(out, *extras, "message");
  std::string body = SerializeJson(out);
  if (iris != nullptr) {  // the last member, written in place rather than copied into `out`
    body.pop_back();
    body += ",\"iris\":";
    AppendJson(*iris, body);
    body.push_back('}');
  }
  return body;
}

// --- Streaming -------------------------------------------------------------------------------

json::object OpenAIStreamEncoder::Chunk(json::storage_ptr storage) const {
  json::object c(6, std::move(storage));
  c["id"] = id_;
  c["object"] = "chat.completion.chunk";
  c["created"] = created_;
  c["model"] = model_;
  return c;
}

std::string OpenAIStreamEncoder::Emit(json::object chunk) const {
  if (include_usage_ && !chunk.contains("usage")) chunk["usage"] = nullptr;
  return DataEvent(chunk);
}

namespace {

// A chunk's `choices` array (one choice with `delta`), in the storage of `delta`.
json::array Choices(json::object delta, std::optional<std::string_view> finish) {
  json::object c(4, delta.storage());
  c["index"] = 0;
  c["delta"] = std::move(delta);
  c["logprobs"] = nullptr;
  if (finish) {
    c["finish_reason"] = *finish;
  } else {
    c["finish_reason"] = nullptr;
  }
  return ArrayOf(std::move(c));
}

}  // namespace

void OpenAIStreamEncoder::Hold(const OpenAIExtras* extras, std::optional<OpenAIExtras>& held) {
  if (extras == nullptr) return;
  if (!held) held.emplace();
  for (const auto& kv : extras->top) held->top[kv.key()] = kv.value();
  for (const auto& kv : extras->choice) held->choice[kv.key()] = kv.value();
  for (const auto& kv : extras->message) held->message[kv.key()] = kv.value();
}

void OpenAIStreamEncoder::AddHeldAnd(json::object& chunk, const OpenAIExtras* extras) {
  if (held_) {
    AddExtras(chunk, *held_, "delta");
    held_.reset();
  }
  if (extras != nullptr) AddExtras(chunk, *extras, "delta");
}

std::string OpenAIStreamEncoder::EnsureStarted(const OpenAIExtras* extras) {
  if (started_) return {};
  started_ = true;
  JsonScratch scratch;  // (each chunk is written out and dropped here)
  json::object delta(3, scratch.storage());
  delta["role"] = "assistant";
  delta["content"] = "";
  delta["refusal"] = nullptr;
  json::object chunk = Chunk(scratch.storage());
  chunk["choices"] = Choices(std::move(delta), std::nullopt);
  AddHeldAnd(chunk, extras);
  return Emit(std::move(chunk));
}

std::string OpenAIStreamEncoder::Encode(const StreamEvent& event) {
  const OpenAIExtras* extras = event.openai_extras.get();
  if (extras != nullptr && !extras->usage.is_null()) provider_usage_ = extras->usage;
  JsonScratch scratch;
  const json::storage_ptr sp = scratch.storage();
  json::object delta(sp);
  switch (event.type) {
    case StreamEvent::Type::kStart:
      if (started_) {
        Hold(extras, held_);
        return {};
      }
      id_ = event.id;
      model_ = event.model;
      if (event.created != 0) created_ = event.created;
      return EnsureStarted(extras);
    case StreamEvent::Type::kTextDelta:
      if (event.text.empty()) {
        Hold(extras, held_);
        return {};
      }
      delta[event.refusal ? "refusal" : "content"] = event.text;
      break;
    case StreamEvent::Type::kToolCallStart: {
      json::object fn(2, sp);
      fn["name"] = event.name;
      fn["arguments"] = "";
      json::object tc(4, sp);
      tc["index"] = event.index;
      tc["id"] = event.id;
      tc["type"] = "function";
      tc["function"] = std::move(fn);
      delta["tool_calls"] = ArrayOf(std::move(tc));
      break;
    }
    case StreamEvent::Type::kToolCallDelta: {
      if (event.text.empty()) {
        Hold(extras, held_);
        return {};
      }
      json::object fn(1, sp);
      fn["arguments"] = event.text;
      json::object tc(2, sp);
      tc["index"] = event.index;
      tc["function"] = std::move(fn);
      delta["tool_calls"] = ArrayOf(std::move(tc));
      break;
    }
    case StreamEvent::Type::kFinish:
      finish_ = event.finish_reason;
      Hold(extras, finish_extras_);  // (for the finish chunk)
      return {};
    case StreamEvent::Type::kUsage:
      usage_ = event.usage;
      usage_.reported = true;
      usage_extras_ = event.openai_extras;  // (for the usage chunk)
      return {};
    case StreamEvent::Type::kReasoningDelta:
    case StreamEvent::Type::kReasoningSignature:
    case StreamEvent::Type::kRedactedReasoning:
      Hold(extras, held_);
      return {};  // (chat completions has no place for another provider's reasoning)
    case StreamEvent::Type::kAsIs:
      return {};  // (only a Responses caller gets a provider's own events)
    case StreamEvent::Type::kExtras:
      break;  // a chunk of the provider's own members, on an empty delta
  }
  std::string out = EnsureStarted(nullptr);
  json::object chunk = Chunk(sp);
  chunk["choices"] = Choices(std::move(delta), std::nullopt);
  AddHeldAnd(chunk, extras);
  out += Emit(std::move(chunk));
  return out;
}

std::string OpenAIStreamEncoder::Finish(const boost::json::object* iris,
                                        std::optional<double> cost_usd) {
  std::string out = EnsureStarted(nullptr);
  JsonScratch scratch;
  const json::storage_ptr sp = scratch.storage();
  bool usage_chunk = include_usage_ && (usage_.reported || cost_usd);
  json::object finish = Chunk(sp);
  finish["choices"] =
      Choices(json::object(sp), OpenAIFinishReason(finish_.value_or(FinishReason::kStop)));
  AddHeldAnd(finish, finish_extras_ ? &*finish_extras_ : nullptr);
  if (!usage_chunk && iris != nullptr) finish["iris"] = *iris;
  out += Emit(std::move(finish));
  if (usage_chunk) {
    json::object last = Chunk(sp);
    last["choices"] = json::array(sp);
    last["usage"] = OverProviderUsage(provider_usage_, EncodeOpenAIUsage(usage_, cost_usd, sp));
    if (usage_extras_ != nullptr) AddExtras(last, *usage_extras_, "delta");
    if (iris != nullptr) last["iris"] = *iris;
    out += Emit(std::move(last));
  }
  out += "data: [DONE]\n\n";
  return out;
}

std::string OpenAIStreamEncoder::Error(const GatewayError& error) {
  json::object body;
  body["error"] = OpenAIErrorObject(error);
  return DataEvent(body);
}

std::string EncodeOpenAIModelList(const std::vector<ModelInfo>& models) {
  json::array data;
  for (const ModelInfo& m : models) {
    json::object o;
    o["id"] = m.id;
    o["object"] = "model";
    o["created"] = m.created;
    o["owned_by"] = m.owned_by;
    data.push_back(std::move(o));
  }
  json::object out;
  out["object"] = "list";
  out["data"] = std::move(data);
  return SerializeJson(out);
}

}  // namespace iris::gateway::api
