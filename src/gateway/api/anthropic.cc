// The Anthropic Messages codec on the client side: request parsing with field-path errors,
// the message object and the SSE event sequence the Claude SDKs expect.
#include "gateway/api/anthropic.h"

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <utility>

#include "base/json.h"
#include "gateway/api/errors.h"
#include "gateway/api/json_fields.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

Result<ContentPart> ParseImage(const json::object& block, const std::string& path) {
  std::string spath = MemberPath(path, "source");
  IRIS_ASSIGN_OR_RETURN(const json::object* source, RequiredObject(block, "source", path));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*source, "type", spath));
  ContentPart part;
  part.type = ContentPart::Type::kImage;
  if (type == "base64") {
    IRIS_ASSIGN_OR_RETURN(part.media_type, RequiredString(*source, "media_type", spath));
    IRIS_ASSIGN_OR_RETURN(part.data_base64, RequiredString(*source, "data", spath));
    if (part.data_base64.empty()) {
      return FieldError(MemberPath(spath, "data"), "must not be empty");
    }
  } else if (type == "url") {
    IRIS_ASSIGN_OR_RETURN(part.url, RequiredString(*source, "url", spath));
    if (part.url.rfind("https://", 0) != 0 && part.url.rfind("http://", 0) != 0) {
      return FieldError(MemberPath(spath, "url"), "expected an http(s) URL");
    }
  } else {
    return FieldError(MemberPath(spath, "type"),
                      Quote(type) + " is not supported (use \"base64\" or \"url\")");
  }
  return part;
}

// Whether `v` names a file in the provider's account, which every caller shares: a `file_id`
// anywhere (a document's or an image's source, a container_upload, a code execution's output),
// a source of type "file". An `input` member is the model's or the caller's arguments, not a
// reference. One look at each value (the parser bounds the depth), no paths built.
bool NamesAccountFile(const json::value& v) {
  if (v.is_array()) {
    const json::array& a = v.get_array();
    return std::any_of(a.begin(), a.end(),
                       [](const json::value& e) { return NamesAccountFile(e); });
  }
  if (!v.is_object()) return false;
  const json::object& o = v.get_object();
  if (StringField(o, "type") == "file" || FindField(o, "file_id") != nullptr) return true;
  for (const auto& [key, value] : o) {
    if (key != "input" && NamesAccountFile(value)) return true;
  }
  return false;
}

// A block only Anthropic's own API can take (a document, a search result, a server tool's call
// or result, an image from an uploaded file, a type iris does not know yet): noted in
// as_is_only and left out of the messages iris reads; Anthropic takes the body as written. A
// block that names a file in the provider's account (NamesAccountFile) is noted in account_refs.
void NoteAnthropicOnly(const json::object& block, const std::string& path, std::string_view type,
                       ChatRequest& request) {
  NoteAsIsOnly(&request.as_is_only, path, type);
  if (NamesAccountFile(block)) NoteAsIsOnly(&request.account_refs, path, "in the provider account");
}

// An image block whose source is an uploaded file (Anthropic's Files API).
bool IsFileImage(const json::object& block) {
  const json::object* source = ObjectField(block, "source");
  return source != nullptr && StringField(*source, "type") == "file";
}

// Content of a tool_result: a string or an array of text / image blocks (other blocks are
// Anthropic's alone: NoteAnthropicOnly).
Result<std::vector<ContentPart>> ParseToolResultContent(const json::value& v,
                                                        const std::string& path,
                                                        ChatRequest& request) {
  std::vector<ContentPart> parts;
  if (v.is_string()) {
    parts.push_back(ContentPart::Text(std::string(v.get_string())));
    return parts;
  }
  if (!v.is_array()) return TypeError(path, "a string or an array of content blocks", v);
  const json::array& blocks = v.get_array();
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string bpath = ElementPath(path, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* block, AsObject(blocks[i], bpath));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*block, "type", bpath));
    if (type == "text") {
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*block, "text", bpath));
      parts.push_back(ContentPart::Text(std::move(text)));
    } else if (type == "image" && !IsFileImage(*block)) {
      IRIS_ASSIGN_OR_RETURN(ContentPart part, ParseImage(*block, bpath));
      parts.push_back(std::move(part));
    } else {
      NoteAnthropicOnly(*block, bpath, type == "image" ? "an image from a file" : type, request);
    }
  }
  return parts;
}

// Appends the messages one Anthropic turn becomes to request.messages.
Status ParseTurn(const json::value& turn_value, size_t index, ChatRequest& request) {
  std::vector<Message>& out = request.messages;
  std::string path = ElementPath("messages", index);
  IRIS_ASSIGN_OR_RETURN(const json::object* turn, AsObject(turn_value, path));
  IRIS_ASSIGN_OR_RETURN(std::string role, RequiredString(*turn, "role", path));
  bool is_user = role == "user";
  if (!is_user && role != "assistant") {
    return FieldError(MemberPath(path, "role"),
                      "expected \"user\" or \"assistant\", got " + Quote(role));
  }
  std::string cpath = MemberPath(path, "content");
  IRIS_ASSIGN_OR_RETURN(const json::value* content, RequireField(*turn, "content", path));

  Message current;
  current.role = is_user ? Role::kUser : Role::kAssistant;
  if (content->is_string()) {
    current.content.push_back(ContentPart::Text(std::string(content->get_string())));
    out.push_back(std::move(current));
    return OkStatus();
  }
  if (!content->is_array()) {
    return TypeError(cpath, "a string or an array of content blocks", *content);
  }

  // A user turn interleaves kTool messages (one per tool_result) with kUser messages
  // holding the runs of other blocks between them, preserving the order.
  auto flush = [&] {
    if (!current.content.empty() || !current.tool_calls.empty()) {
      out.push_back(std::move(current));
      current = Message{};
      current.role = is_user ? Role::kUser : Role::kAssistant;
    }
  };
  const json::array& blocks = content->get_array();
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string bpath = ElementPath(cpath, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* block, AsObject(blocks[i], bpath));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*block, "type", bpath));
    if (type == "text") {
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*block, "text", bpath));
      current.content.push_back(ContentPart::Text(std::move(text)));
    } else if (type == "image") {
      if (!is_user) {
        return FieldError(MemberPath(bpath, "type"), "image blocks belong in user turns");
      }
      if (IsFileImage(*block)) {
        NoteAnthropicOnly(*block, bpath, "an image from a file", request);
        continue;
      }
      IRIS_ASSIGN_OR_RETURN(ContentPart part, ParseImage(*block, bpath));
      current.content.push_back(std::move(part));
    } else if (type == "tool_use") {
      if (is_user) {
        return FieldError(MemberPath(bpath, "type"), "tool_use belongs in assistant turns");
      }
      ToolCall call;
      IRIS_ASSIGN_OR_RETURN(call.id, RequiredString(*block, "id", bpath));
      IRIS_ASSIGN_OR_RETURN(call.name, RequiredString(*block, "name", bpath));
      IRIS_ASSIGN_OR_RETURN(const json::object* input, RequiredObject(*block, "input", bpath));
      call.arguments = SerializeJson(*input);
      current.tool_calls.push_back(std::move(call));
    } else if (type == "tool_result") {
      if (!is_user) {
        return FieldError(MemberPath(bpath, "type"), "tool_result belongs in user turns");
      }
      flush();
      Message tool;
      tool.role = Role::kTool;
      IRIS_ASSIGN_OR_RETURN(tool.tool_call_id, RequiredString(*block, "tool_use_id", bpath));
      if (const json::value* c = FindField(*block, "content")) {
        IRIS_ASSIGN_OR_RETURN(tool.content,
                              ParseToolResultContent(*c, MemberPath(bpath, "content"), request));
      }
      if (const json::value* e = FindField(*block, "is_error")) {
        IRIS_ASSIGN_OR_RETURN(tool.is_error, AsBool(*e, MemberPath(bpath, "is_error")));
      }
      out.push_back(std::move(tool));
    } else if (type == "thinking" || type == "redacted_thinking") {
      // Signed reasoning of an earlier Anthropic answer; no other provider can take it.
    } else {
      NoteAnthropicOnly(*block, bpath, type, request);
    }
  }
  flush();
  return OkStatus();
}

Status ParseTools(const json::value& v, ChatRequest& request) {
  IRIS_ASSIGN_OR_RETURN(const json::array* tools, AsArray(v, "tools"));
  for (size_t i = 0; i < tools->size(); ++i) {
    std::string path = ElementPath("tools", i);
    IRIS_ASSIGN_OR_RETURN(const json::object* t, AsObject((*tools)[i], path));
    if (const json::value* type = FindField(*t, "type")) {
      IRIS_ASSIGN_OR_RETURN(std::string type_name, AsString(*type, MemberPath(path, "type")));
      if (type_name != "custom") {
        // A server tool (web_search_20250305, code_execution_...) or one of Anthropic's own
        // client tools (bash_..., text_editor_..., computer_...): Anthropic's alone.
        NoteAsIsOnly(&request.as_is_only, path, type_name);
        // (A max_uses that is not a positive integer is Anthropic's to refuse; one past int64
        // reserves the most.)
        if (type_name.starts_with("web_search_")) {
          request.max_web_searches =
              std::min(kMaxReservedWebSearches,
                       request.max_web_searches + std::clamp<int64_t>(IntField(*t, "max_uses"), 0,
                                                                      kMaxReservedWebSearches));
        }
        continue;
      }
    }
    Tool tool;
    IRIS_ASSIGN_OR_RETURN(tool.name, RequiredString(*t, "name", path));
    if (tool.name.empty()) return FieldError(MemberPath(path, "name"), "must not be empty");
    if (const json::value* d = FindField(*t, "description")) {
      IRIS_ASSIGN_OR_RETURN(tool.description, AsString(*d, MemberPath(path, "description")));
    }
    IRIS_ASSIGN_OR_RETURN(const json::object* schema, RequiredObject(*t, "input_schema", path));
    tool.parameters = *schema;
    if (const json::value* s = FindField(*t, "strict")) {
      IRIS_ASSIGN_OR_RETURN(tool.strict, AsBool(*s, MemberPath(path, "strict")));
    }
    request.tools.push_back(std::move(tool));
  }
  return OkStatus();
}

Status ParseAnthropicToolChoice(const json::value& v, ChatRequest& request) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, "tool_choice"));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", "tool_choice"));
  ToolChoice choice;
  if (type == "auto") {
    choice.mode = ToolChoice::Mode::kAuto;
  } else if (type == "any") {
    choice.mode = ToolChoice::Mode::kRequired;
  } else if (type == "none") {
    choice.mode = ToolChoice::Mode::kNone;
  } else if (type == "tool") {
    choice.mode = ToolChoice::Mode::kTool;
    IRIS_ASSIGN_OR_RETURN(choice.name, RequiredString(*o, "name", "tool_choice"));
  } else {
    return FieldError("tool_choice.type",
                      "expected \"auto\", \"any\", \"tool\" or \"none\", got " + Quote(type));
  }
  if (const json::value* d = FindField(*o, "disable_parallel_tool_use")) {
    IRIS_ASSIGN_OR_RETURN(bool disable, AsBool(*d, "tool_choice.disable_parallel_tool_use"));
    if (disable) request.parallel_tool_calls = false;
  }
  request.tool_choice = std::move(choice);
  return OkStatus();
}

Status ParseSystem(const json::value& v, ChatRequest& request) {
  Message system;
  system.role = Role::kSystem;
  if (v.is_string()) {
    if (!v.get_string().empty()) {
      system.content.push_back(ContentPart::Text(std::string(v.get_string())));
    }
  } else if (v.is_array()) {
    const json::array& blocks = v.get_array();
    for (size_t i = 0; i < blocks.size(); ++i) {
      std::string path = ElementPath("system", i);
      IRIS_ASSIGN_OR_RETURN(const json::object* b, AsObject(blocks[i], path));
      IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*b, "type", path));
      if (type != "text") {
        return FieldError(MemberPath(path, "type"), "expected \"text\", got " + Quote(type));
      }
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*b, "text", path));
      system.content.push_back(ContentPart::Text(std::move(text)));
    }
  } else {
    return TypeError("system", "a string or an array of text blocks", v);
  }
  if (!system.content.empty()) request.messages.push_back(std::move(system));
  return OkStatus();
}

// Anthropic's usage object: input_tokens counts only the uncached part.
json::object EncodeUsage(const Usage& u) {
  json::object o;
  o["input_tokens"] =
      std::max<int64_t>(0, u.input_tokens - u.cached_input_tokens - u.cache_write_tokens);
  o["cache_creation_input_tokens"] = u.cache_write_tokens;
  o["cache_read_input_tokens"] = u.cached_input_tokens;
  o["output_tokens"] = u.output_tokens;
  return o;
}

json::object ToolUseBlock(const ToolCall& call, bool with_input) {
  json::object b;
  b["type"] = "tool_use";
  b["id"] = call.id;
  b["name"] = call.name;
  if (!with_input) {
    b["input"] = json::object();
    return b;
  }
  boost::system::error_code ec;
  json::value input = json::parse(call.arguments.empty() ? "{}" : call.arguments, ec);
  if (ec || !input.is_object()) {
    json::object wrapped;
    wrapped["rawInvalidInput"] = call.arguments;
    input = std::move(wrapped);
  }
  b["input"] = std::move(input);
  return b;
}

// The `"iris"` extras object, or nullopt when there is nothing to say.
std::optional<json::object> IrisExtras(const json::object* iris, std::optional<double> cost_usd) {
  if (iris == nullptr && !cost_usd) return std::nullopt;
  // (In the default storage: a copy would otherwise stay in the storage of *iris.)
  json::object o = iris != nullptr ? json::object(*iris, json::storage_ptr()) : json::object();
  if (cost_usd) o["cost_usd"] = *cost_usd;
  return o;
}

std::string Event(std::string_view type, const json::object& data) {
  std::string out = "event: ";
  out.append(type).append("\ndata: ").append(SerializeJson(data)).append("\n\n");
  return out;
}

// What a translation to another wire format loses from inside an Anthropic body (the top-level
// keys are counted apart): cache_control on system blocks, tools and content blocks, and the
// signed thinking blocks of earlier answers. The body has been parsed already: shapes hold.
void NoteNestedExtras(const json::object& o, std::vector<std::string>& extra) {
  auto blocks_of = [](const json::value* v) -> const json::array* {
    return v != nullptr && v->is_array() ? &v->get_array() : nullptr;
  };
  auto note_cache = [&](const json::value& block) {
    if (block.is_object() && FindField(block.get_object(), "cache_control") != nullptr) {
      AddFieldName(extra, "cache_control");
    }
  };
  for (const char* key : {"system", "tools"}) {
    if (const json::array* a = blocks_of(FindField(o, key))) {
      for (const json::value& b : *a) note_cache(b);
    }
  }
  if (const json::array* turns = blocks_of(FindField(o, "messages"))) {
    for (const json::value& turn : *turns) {
      const json::array* blocks = blocks_of(FindField(turn.get_object(), "content"));
      if (blocks == nullptr) continue;
      for (const json::value& b : *blocks) {
        note_cache(b);
        const std::string type = StringField(b.get_object(), "type");
        if (type == "thinking" || type == "redacted_thinking") {
          AddFieldName(extra, "thinking_blocks");
        }
        if (const json::array* inner = blocks_of(FindField(b.get_object(), "content"))) {
          for (const json::value& ib : *inner) note_cache(ib);
        }
      }
    }
  }
}

}  // namespace

Result<ChatRequest> ParseAnthropicRequest(std::string_view body) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, "request body"));
  if (!root.is_object()) return TypeError("request body", "a JSON object", root);
  const json::object& o = root.get_object();

  ChatRequest request;
  request.dialect = Dialect::kAnthropic;
  IRIS_ASSIGN_OR_RETURN(request.model, RequiredString(o, "model", ""));
  if (request.model.empty()) return FieldError("model", "must not be empty");

  IRIS_ASSIGN_OR_RETURN(const json::value* max_tokens, RequireField(o, "max_tokens", ""));
  IRIS_ASSIGN_OR_RETURN(int64_t max, AsInt(*max_tokens, "max_tokens"));
  if (max < 1) return FieldError("max_tokens", "must be at least 1");
  request.max_tokens = max;

  if (const json::value* system = FindField(o, "system")) {
    IRIS_RETURN_IF_ERROR(ParseSystem(*system, request));
  }
  IRIS_ASSIGN_OR_RETURN(const json::value* messages, RequireField(o, "messages", ""));
  IRIS_ASSIGN_OR_RETURN(const json::array* turns, AsArray(*messages, "messages"));
  if (turns->empty()) return FieldError("messages", "must contain at least one message");
  for (size_t i = 0; i < turns->size(); ++i) {
    IRIS_RETURN_IF_ERROR(ParseTurn((*turns)[i], i, request));
  }

  if (const json::value* tools = FindField(o, "tools")) {
    IRIS_RETURN_IF_ERROR(ParseTools(*tools, request));
  }
  if (const json::value* choice = FindField(o, "tool_choice")) {
    IRIS_RETURN_IF_ERROR(ParseAnthropicToolChoice(*choice, request));
  }
  // MCP servers Anthropic connects the model to, and a code-execution container (one kept in
  // the provider's account when named by id): Anthropic's alone.
  if (const json::value* m = FindField(o, "mcp_servers");
      m != nullptr && !(m->is_array() && m->get_array().empty())) {
    NoteAsIsOnly(&request.as_is_only, "mcp_servers", "MCP servers");
  }
  if (const json::value* c = FindField(o, "container")) {
    NoteAsIsOnly(&request.as_is_only, "container", "a code execution container");
    // A container kept by id, and skills uploaded to the account (any but Anthropic's own).
    if (c->is_string() || (c->is_object() && FindField(c->get_object(), "id") != nullptr)) {
      NoteAsIsOnly(&request.account_refs, "container", "in the provider account");
    } else if (const json::array* skills =
                   c->is_object() ? ArrayField(c->get_object(), "skills") : nullptr) {
      for (size_t i = 0; i < skills->size(); ++i) {
        const json::value& skill = (*skills)[i];
        if (!skill.is_object() || StringField(skill.get_object(), "type") != "anthropic") {
          NoteAsIsOnly(&request.account_refs, ElementPath("container.skills", i),
                       "in the provider account");
        }
      }
    }
  }
  if (const json::value* stops = FindField(o, "stop_sequences")) {
    IRIS_ASSIGN_OR_RETURN(request.stop, AsStringList(*stops, "stop_sequences"));
  }
  IRIS_ASSIGN_OR_RETURN(request.temperature, OptionalNumberInRange(o, "temperature", 0, 1));
  IRIS_ASSIGN_OR_RETURN(request.top_p, OptionalNumberInRange(o, "top_p", 0, 1));
  if (const json::value* k = FindField(o, "top_k")) {
    IRIS_ASSIGN_OR_RETURN(int64_t top_k, AsInt(*k, "top_k"));
    if (top_k < 0) return FieldError("top_k", "must not be negative");
    request.top_k = top_k;
  }
  if (const json::value* s = FindField(o, "stream")) {
    IRIS_ASSIGN_OR_RETURN(request.stream, AsBool(*s, "stream"));
  }
  if (const json::value* m = FindField(o, "metadata")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* metadata, AsObject(*m, "metadata"));
    if (const json::value* user = FindField(*metadata, "user_id")) {
      IRIS_ASSIGN_OR_RETURN(request.user, AsString(*user, "metadata.user_id"));
    }
  }
  bool thinking_read = false;
  if (const json::value* t = FindField(o, "thinking")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* thinking, AsObject(*t, "thinking"));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*thinking, "type", "thinking"));
    if (type == "enabled") {
      IRIS_ASSIGN_OR_RETURN(const json::value* budget,
                            RequireField(*thinking, "budget_tokens", "thinking"));
      IRIS_ASSIGN_OR_RETURN(int64_t tokens, AsInt(*budget, "thinking.budget_tokens"));
      if (tokens < 1 || tokens > kMaxThinkingBudget) {
        return FieldError("thinking.budget_tokens",
                          "must be between 1 and " + std::to_string(kMaxThinkingBudget));
      }
      request.thinking_budget = tokens;
      thinking_read = true;
    } else if (type == "disabled") {
      thinking_read = true;
    }
  }
  // (A thinking mode iris does not know stays a field other wire formats cannot take.)
  request.extra_fields = UninterpretedKeys(
      o, {"model", "max_tokens", "system", "messages", "tools", "tool_choice", "stop_sequences",
          "temperature", "top_p", "top_k", "stream", "metadata",
          thinking_read ? std::string_view("thinking") : std::string_view("model")});
  NoteNestedExtras(o, request.extra_fields);
  request.caller_body = std::make_shared<const json::object>(std::move(root.get_object()));
  return request;
}

Result<std::string> ParseAnthropicBeta(std::string_view header) {
  std::string out;
  size_t names = 0;
  for (bool more = true; more;) {
    const size_t comma = header.find(',');
    std::string_view name = header.substr(0, comma);
    more = comma != std::string_view::npos;
    if (more) header.remove_prefix(comma + 1);
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    bool plain = !name.empty() && name.size() <= 64;
    for (char c : name) {
      plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
    }
    if (!plain || ++names > kMaxAnthropicBetas) {
      return FieldError("anthropic-beta",
                        "expected at most " + std::to_string(kMaxAnthropicBetas) +
                            " comma-separated beta names of 1 to 64 letters, digits, '.', '_' "
                            "or '-'");
    }
    if (!out.empty()) out += ',';
    out.append(name);
  }
  return out;
}

std::string_view AnthropicStopReason(FinishReason reason, std::string_view stop_sequence) {
  switch (reason) {
    case FinishReason::kStop:
      return stop_sequence.empty() ? "end_turn" : "stop_sequence";
    case FinishReason::kLength:
      return "max_tokens";
    case FinishReason::kToolCalls:
      return "tool_use";
    case FinishReason::kContentFilter:
      return "refusal";
    case FinishReason::kError:
      return "end_turn";
  }
  return "end_turn";
}

std::string EncodeAnthropicResponse(const ChatResponse& response, const json::object* iris,
                                    std::optional<double> cost_usd) {
  json::object o;
  o["id"] = response.id;
  o["type"] = "message";
  o["role"] = "assistant";
  o["model"] = response.model;
  json::array content;
  for (const ReasoningBlock& b : response.reasoning) {
    if (!b.redacted_data.empty()) {
      content.push_back(json::object{{"type", "redacted_thinking"}, {"data", b.redacted_data}});
    } else {
      content.push_back(
          json::object{{"type", "thinking"}, {"thinking", b.text}, {"signature", b.signature}});
    }
  }
  if (!response.text.empty()) {
    json::object text;
    text["type"] = "text";
    text["text"] = response.text;
    content.push_back(std::move(text));
  }
  for (const ToolCall& call : response.tool_calls) content.push_back(ToolUseBlock(call, true));
  o["content"] = std::move(content);
  o["stop_reason"] = AnthropicStopReason(response.finish_reason, response.stop_sequence);
  if (response.finish_reason == FinishReason::kStop && !response.stop_sequence.empty()) {
    o["stop_sequence"] = response.stop_sequence;
  } else {
    o["stop_sequence"] = nullptr;
  }
  o["usage"] = EncodeUsage(response.usage);
  if (auto extras = IrisExtras(iris, cost_usd)) o["iris"] = std::move(*extras);
  return SerializeJson(o);
}

std::string EncodeAnthropicAsIsResponse(json::object message, const json::object* iris,
                                        std::optional<double> cost_usd) {
  message.stable_erase("iris");  // (only iris's own report goes by that name)
  if (auto extras = IrisExtras(iris, cost_usd)) message["iris"] = std::move(*extras);
  return SerializeJson(message);
}

std::string AnthropicStreamEncoder::MaybeStart() {
  if (started_) return {};
  started_ = true;
  json::object message;
  message["id"] = id_;
  message["type"] = "message";
  message["role"] = "assistant";
  message["model"] = model_;
  message["content"] = json::array();
  message["stop_reason"] = nullptr;
  message["stop_sequence"] = nullptr;
  message["usage"] = EncodeUsage(usage_);
  json::object data;
  data["type"] = "message_start";
  data["message"] = std::move(message);
  return Event("message_start", data);
}

std::string AnthropicStreamEncoder::CloseBlock() {
  if (open_block_ < 0) return {};
  json::object data;
  data["type"] = "content_block_stop";
  data["index"] = open_block_;
  open_block_ = -1;
  open_tool_ = -1;
  open_reasoning_ = -1;
  return Event("content_block_stop", data);
}

std::string AnthropicStreamEncoder::OpenBlock(json::object block) {
  std::string out = MaybeStart() + CloseBlock();
  open_block_ = next_block_++;
  open_is_text_ = StringField(block, "type") == "text";
  json::object data;
  data["type"] = "content_block_start";
  data["index"] = open_block_;
  data["content_block"] = std::move(block);
  return out + Event("content_block_start", data);
}

std::string AnthropicStreamEncoder::Delta(json::object delta) const {
  json::object data;
  data["type"] = "content_block_delta";
  data["index"] = open_block_;
  data["delta"] = std::move(delta);
  return Event("content_block_delta", data);
}

std::string AnthropicStreamEncoder::Encode(const StreamEvent& event) {
  if (done_) return {};
  if (event.type == StreamEvent::Type::kAsIs) {
    if (event.as_is_dialect != Dialect::kAnthropic) return {};  // (another API's own events)
    relay_ = true;
    started_ = true;
    std::string out;
    // (Only the last message_delta waits for iris's report: an earlier one goes when the next
    // comes. What follows the last one but message_stop, a ping, goes before it.)
    if (event.name == "message_delta") {
      if (!held_delta_.empty()) out = "event: message_delta\ndata: " + held_delta_ + "\n\n";
      held_delta_ = event.text;
      return out;
    }
    if (event.name == "message_stop") return out;  // (sent by Finish)
    out.append("event: ").append(event.name).append("\ndata: ").append(event.text).append("\n\n");
    return out;
  }
  if (relay_) {  // (the caller has the provider's own events; Finish may still need these)
    if (event.type == StreamEvent::Type::kFinish) {
      finish_reason_ = event.finish_reason;
      stop_sequence_ = event.stop_sequence;
    } else if (event.type == StreamEvent::Type::kUsage) {
      usage_ = event.usage;
    }
    return {};
  }
  std::string out;
  switch (event.type) {
    case StreamEvent::Type::kStart:
      id_ = event.id;
      model_ = event.model;
      break;
    case StreamEvent::Type::kUsage:
      usage_ = event.usage;
      break;
    case StreamEvent::Type::kTextDelta: {
      if (event.text.empty()) break;
      out += MaybeStart();
      if (open_block_ < 0 || !open_is_text_) {
        out += CloseBlock();
        open_block_ = next_block_++;
        open_is_text_ = true;
        json::object block;
        block["type"] = "text";
        block["text"] = "";
        json::object data;
        data["type"] = "content_block_start";
        data["index"] = open_block_;
        data["content_block"] = std::move(block);
        out += Event("content_block_start", data);
      }
      json::object delta;
      delta["type"] = "text_delta";
      delta["text"] = event.text;
      json::object data;
      data["type"] = "content_block_delta";
      data["index"] = open_block_;
      data["delta"] = std::move(delta);
      out += Event("content_block_delta", data);
      break;
    }
    case StreamEvent::Type::kToolCallStart: {
      out += MaybeStart();
      out += CloseBlock();
      open_block_ = next_block_++;
      open_is_text_ = false;
      open_tool_ = event.index;
      tool_blocks_[event.index] = open_block_;
      ToolCall call{event.id, event.name, "", {}};
      json::object data;
      data["type"] = "content_block_start";
      data["index"] = open_block_;
      data["content_block"] = ToolUseBlock(call, false);
      out += Event("content_block_start", data);
      break;
    }
    case StreamEvent::Type::kToolCallDelta: {
      if (event.text.empty()) break;
      auto it = tool_blocks_.find(event.index);
      if (it == tool_blocks_.end()) break;  // a delta for a call that never started
      json::object delta;
      delta["type"] = "input_json_delta";
      delta["partial_json"] = event.text;
      json::object data;
      data["type"] = "content_block_delta";
      data["index"] = it->second;
      data["delta"] = std::move(delta);
      out += Event("content_block_delta", data);
      break;
    }
    case StreamEvent::Type::kFinish:
      out += MaybeStart();
      out += CloseBlock();
      finish_reason_ = event.finish_reason;
      stop_sequence_ = event.stop_sequence;
      break;
    case StreamEvent::Type::kReasoningDelta:
    case StreamEvent::Type::kReasoningSignature: {
      if (open_block_ < 0 || open_reasoning_ != event.index) {
        out += OpenBlock(json::object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
        open_reasoning_ = event.index;
      }
      if (event.text.empty()) break;
      if (event.type == StreamEvent::Type::kReasoningDelta) {
        out += Delta(json::object{{"type", "thinking_delta"}, {"thinking", event.text}});
      } else {
        out += Delta(json::object{{"type", "signature_delta"}, {"signature", event.text}});
      }
      break;
    }
    case StreamEvent::Type::kRedactedReasoning:
      out += OpenBlock(json::object{{"type", "redacted_thinking"}, {"data", event.text}});
      out += CloseBlock();
      break;
    case StreamEvent::Type::kAsIs:
      break;  // (relayed above)
    case StreamEvent::Type::kExtras:
      break;  // (OpenAI's own members have no place in Anthropic's events)
  }
  return out;
}

std::string AnthropicStreamEncoder::Finish(const json::object* iris,
                                           std::optional<double> cost_usd) {
  if (done_) return {};
  if (relay_ && !held_delta_.empty()) {
    boost::system::error_code ec;
    json::value data = json::parse(held_delta_, ec);
    if (!ec && data.is_object()) {
      json::object& delta = data.get_object();
      delta.stable_erase("iris");
      if (auto extras = IrisExtras(iris, cost_usd)) delta["iris"] = std::move(*extras);
      done_ = true;
      return Event("message_delta", delta) +
             Event("message_stop", json::object{{"type", "message_stop"}});
    }
  }
  // (A relayed stream without a message_delta gets iris's own, as a stream it encodes.)
  std::string out = MaybeStart();
  out += CloseBlock();
  json::object delta;
  delta["stop_reason"] = AnthropicStopReason(finish_reason_, stop_sequence_);
  if (finish_reason_ == FinishReason::kStop && !stop_sequence_.empty()) {
    delta["stop_sequence"] = stop_sequence_;
  } else {
    delta["stop_sequence"] = nullptr;
  }
  json::object data;
  data["type"] = "message_delta";
  data["delta"] = std::move(delta);
  data["usage"] = EncodeUsage(usage_);
  if (auto extras = IrisExtras(iris, cost_usd)) data["iris"] = std::move(*extras);
  out += Event("message_delta", data);
  json::object stop;
  stop["type"] = "message_stop";
  out += Event("message_stop", stop);
  done_ = true;
  return out;
}

std::string AnthropicStreamEncoder::Error(const GatewayError& error) {
  if (done_) return {};
  done_ = true;
  std::string out = "event: error\ndata: ";
  out.append(AnthropicErrorBody(error)).append("\n\n");
  return out;
}

std::string EncodeAnthropicModelList(const std::vector<ModelInfo>& models) {
  json::array data;
  for (const ModelInfo& m : models) {
    data.push_back(json::object{{"type", "model"},
                                {"id", m.id},
                                {"display_name", m.id},
                                {"created_at", "1970-01-01T00:00:00Z"}});
  }
  json::object out{{"data", std::move(data)}, {"has_more", false}};
  out["first_id"] = models.empty() ? json::value(nullptr) : json::value(models.front().id);
  out["last_id"] = models.empty() ? json::value(nullptr) : json::value(models.back().id);
  return SerializeJson(out);
}

}  // namespace iris::gateway::api
