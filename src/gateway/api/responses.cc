// The inbound Responses dialect (see responses.h): a strict request parser that names the field
// at fault, and the response and typed-event encoders.
#include "gateway/api/responses.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

#include "base/json.h"
#include "gateway/api/errors.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/openai.h"

namespace iris::gateway::api {

namespace json = boost::json;

namespace {

constexpr size_t kMaxMetadataKeys = 16;
constexpr size_t kMaxMetadataKey = 64;
constexpr size_t kMaxMetadataValue = 512;

// Content of an input message: a string, or input_text / input_image parts (user, system),
// output_text / refusal parts (assistant). input_file / input_audio parts and images by file_id,
// which only OpenAI takes, are noted in `as_is->as_is_only` and skipped; refused when `as_is` is
// null.
Result<std::vector<ContentPart>> ParseInputContent(const json::value& v, std::string_view path,
                                                   Role role, ChatRequest* as_is) {
  std::vector<std::string>* as_is_only = as_is != nullptr ? &as_is->as_is_only : nullptr;
  std::vector<ContentPart> parts;
  if (v.is_string()) {
    parts.push_back(ContentPart::Text(std::string(v.get_string())));
    return parts;
  }
  IRIS_ASSIGN_OR_RETURN(const json::array* a, AsArray(v, path));
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string p = ElementPath(path, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject((*a)[i], p));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", p));
    ContentPart part;
    if (type == "input_text" || type == "output_text" || type == "text") {
      IRIS_ASSIGN_OR_RETURN(part.text, RequiredString(*o, "text", p));
    } else if (type == "refusal" && role == Role::kAssistant) {
      IRIS_ASSIGN_OR_RETURN(part.text, RequiredString(*o, "refusal", p));
    } else if (type == "input_image") {
      if (role != Role::kUser) {
        return FieldError(MemberPath(p, "type"),
                          "input_image parts are only allowed in user "
                          "messages");
      }
      if (FindField(*o, "file_id") != nullptr && FindField(*o, "image_url") == nullptr) {
        if (as_is != nullptr) {  // (a file uploaded to OpenAI)
          NoteAsIsOnly(as_is_only, p, "input_image with file_id");
          continue;
        }
        return FieldError(MemberPath(p, "file_id"),
                          "uploaded files are not supported; send the image as image_url (an "
                          "http(s) URL or a base64 data URL)");
      }
      const json::value* url = FindField(*o, "image_url");
      if (url == nullptr) return MissingField(MemberPath(p, "image_url"));
      if (!url->is_string()) return TypeError(MemberPath(p, "image_url"), "a string", *url);
      IRIS_RETURN_IF_ERROR(ParseOpenAIImageUrl(*url, MemberPath(p, "image_url"), part));
      if (const json::value* d = FindField(*o, "detail")) {
        IRIS_ASSIGN_OR_RETURN(part.detail, AsString(*d, MemberPath(p, "detail")));
      }
    } else if ((type == "input_file" || type == "input_audio") && as_is != nullptr) {
      NoteAsIsOnly(as_is_only, p, type);
      continue;
    } else if (type == "input_file" || type == "input_audio") {
      return FieldError(MemberPath(p, "type"), Quote(type) + " content parts are not supported");
    } else {
      return FieldError(MemberPath(p, "type"), "unknown content part type " + Quote(type));
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<Role> ParseRole(const json::object& o, std::string_view path) {
  IRIS_ASSIGN_OR_RETURN(std::string role, RequiredString(o, "role", path));
  if (role == "user") return Role::kUser;
  if (role == "assistant") return Role::kAssistant;
  if (role == "system" || role == "developer") return Role::kSystem;
  return FieldError(
      MemberPath(path, "role"),
      "unknown role " + Quote(role) + " (expected user, assistant, system or developer)");
}

// The text of a function_call_output's `output`: a string, or input_text parts.
Result<std::vector<ContentPart>> ParseToolOutput(const json::value& v, std::string_view path) {
  if (v.is_string())
    return std::vector<ContentPart>{ContentPart::Text(std::string(v.get_string()))};
  IRIS_ASSIGN_OR_RETURN(std::vector<ContentPart> parts,
                        ParseInputContent(v, path, Role::kUser, nullptr));
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].type != ContentPart::Type::kText) {
      return FieldError(ElementPath(path, i), "a tool output may only hold text");
    }
  }
  return parts;
}

// The input items into out.chat.messages (and out.references). `as_is`: items and parts only
// OpenAI's Responses API knows are noted in chat.as_is_only and skipped, and reasoning items
// noted in chat.extra_fields; otherwise (a kept conversation) they are refused.
Status ParseInputItems(const json::array& items, ResponsesRequest& out, bool as_is) {
  std::vector<Message>& messages = out.chat.messages;
  std::vector<std::string>* as_is_only = as_is ? &out.chat.as_is_only : nullptr;
  ChatRequest* as_is_chat = as_is ? &out.chat : nullptr;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string p = ElementPath("input", i);
    IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(items[i], p));
    std::string type = "message";
    if (const json::value* t = FindField(*o, "type")) {
      IRIS_ASSIGN_OR_RETURN(type, AsString(*t, MemberPath(p, "type")));
    }
    std::string id;
    if (const json::value* v = FindField(*o, "id")) {
      IRIS_ASSIGN_OR_RETURN(id, AsString(*v, MemberPath(p, "id")));
      if (!IsItemId(id)) {
        return FieldError(MemberPath(p, "id"), "expected an item id (at most " +
                                                   std::to_string(kMaxResponseId) +
                                                   " letters, digits, '_' or '-')");
      }
      if (out.references.size() + out.item_ids.size() >= kMaxNamedItems) {
        return FieldError(p, "at most " + std::to_string(kMaxNamedItems) +
                                 " input items may name an earlier item by id");
      }
    }
    const bool reference =
        type == "item_reference" || (type == "message" && FindField(*o, "content") == nullptr);
    if (reference) {
      // An earlier output item named by its id alone.
      if (id.empty()) return MissingField(MemberPath(p, "id"));
      out.references.push_back(ItemReference{std::move(id), messages.size()});
      continue;
    }
    // (An item replayed whole with its id: the id still names the item where it was made.)
    if (!id.empty() && as_is && !ItemOwnerOf(id)) out.item_ids.push_back(id);
    if (type == "message") {
      Message m;
      IRIS_ASSIGN_OR_RETURN(m.role, ParseRole(*o, p));
      IRIS_ASSIGN_OR_RETURN(const json::value* content, RequireField(*o, "content", p));
      IRIS_ASSIGN_OR_RETURN(
          m.content, ParseInputContent(*content, MemberPath(p, "content"), m.role, as_is_chat));
      messages.push_back(std::move(m));
      continue;
    }
    if (type == "function_call") {
      ToolCall call;
      IRIS_ASSIGN_OR_RETURN(call.id, RequiredString(*o, "call_id", p));
      IRIS_ASSIGN_OR_RETURN(call.name, RequiredString(*o, "name", p));
      const json::value* args = FindField(*o, "arguments");
      call.arguments = "{}";
      if (args != nullptr) {
        IRIS_ASSIGN_OR_RETURN(call.arguments, AsString(*args, MemberPath(p, "arguments")));
      }
      Message m;  // merged with its neighbours by MergeToolCallTurns
      m.role = Role::kAssistant;
      m.tool_calls.push_back(std::move(call));
      messages.push_back(std::move(m));
      continue;
    }
    if (type == "function_call_output") {
      Message m;
      m.role = Role::kTool;
      IRIS_ASSIGN_OR_RETURN(m.tool_call_id, RequiredString(*o, "call_id", p));
      IRIS_ASSIGN_OR_RETURN(const json::value* output, RequireField(*o, "output", p));
      IRIS_ASSIGN_OR_RETURN(m.content, ParseToolOutput(*output, MemberPath(p, "output")));
      messages.push_back(std::move(m));
      continue;
    }
    if (as_is && type == "reasoning") {
      // A model's own earlier reasoning (encrypted): only OpenAI takes it back.
      AddFieldName(out.chat.extra_fields, "input.reasoning");
      continue;
    }
    if (as_is) {
      // Hosted tool calls and their outputs (web_search_call, file_search_call, mcp_call, ...).
      NoteAsIsOnly(as_is_only, p, type);
      continue;
    }
    return FieldError(MemberPath(p, "type"),
                      "unsupported input item type " + Quote(type) +
                          " (expected message, function_call, function_call_output, "
                          "item_reference or reasoning)");
  }
  return OkStatus();
}

// A function tool; nullopt for a hosted one (web_search, file_search, mcp, ...), which is
// noted in chat.as_is_only.
Result<std::optional<Tool>> ParseFlatTool(const json::value& v, std::string_view path,
                                          ChatRequest& chat) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, path));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", path));
  if (type != "function") {
    NoteAsIsOnly(&chat.as_is_only, path, type);
    return std::optional<Tool>();
  }
  IRIS_ASSIGN_OR_RETURN(Tool tool, ParseFunctionFields(*o, path));
  return std::optional<Tool>(std::move(tool));
}

// A tool choice; nullopt for one that names a hosted tool or a subset of the tools
// ({"type":"web_search_preview"}, {"type":"allowed_tools",...}), noted in `as_is_only`.
Result<std::optional<ToolChoice>> ParseFlatToolChoice(const json::value& v,
                                                      std::vector<std::string>& as_is_only) {
  if (v.is_string()) {
    IRIS_ASSIGN_OR_RETURN(ToolChoice mode, ParseToolChoiceMode(v.get_string(), "tool_choice"));
    return std::optional<ToolChoice>(std::move(mode));
  }
  ToolChoice choice;
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, "tool_choice"));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", "tool_choice"));
  if (type != "function") {
    NoteAsIsOnly(&as_is_only, "tool_choice", type);
    return std::optional<ToolChoice>();
  }
  IRIS_ASSIGN_OR_RETURN(choice.name, RequiredString(*o, "name", "tool_choice"));
  choice.mode = ToolChoice::Mode::kTool;
  return std::optional<ToolChoice>(std::move(choice));
}

Result<std::optional<ResponseFormat>> ParseTextFormat(const json::value& v) {
  IRIS_ASSIGN_OR_RETURN(const json::object* text, AsObject(v, "text"));
  const json::value* f = FindField(*text, "format");
  if (f == nullptr) return std::optional<ResponseFormat>();
  constexpr std::string_view kPath = "text.format";
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(*f, kPath));
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "type", kPath));
  ResponseFormat format;
  if (type == "text") {
    format.type = ResponseFormat::Type::kText;
  } else if (type == "json_object") {
    format.type = ResponseFormat::Type::kJsonObject;
  } else if (type == "json_schema") {
    format.type = ResponseFormat::Type::kJsonSchema;
    IRIS_ASSIGN_OR_RETURN(format.name, RequiredString(*o, "name", kPath));
    IRIS_ASSIGN_OR_RETURN(const json::value* schema, RequireField(*o, "schema", kPath));
    if (!schema->is_object()) return TypeError(MemberPath(kPath, "schema"), "an object", *schema);
    format.schema = *schema;
    if (const json::value* strict = FindField(*o, "strict")) {
      IRIS_ASSIGN_OR_RETURN(format.strict, AsBool(*strict, MemberPath(kPath, "strict")));
    }
  } else {
    return FieldError("text.format.type",
                      "expected \"text\", \"json_object\" or \"json_schema\", got " + Quote(type));
  }
  return std::optional<ResponseFormat>(std::move(format));
}

Status ParseMetadata(const json::value& v, json::object& out) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, "metadata"));
  if (o->size() > kMaxMetadataKeys) {
    return FieldError("metadata", "at most " + std::to_string(kMaxMetadataKeys) + " keys");
  }
  for (const auto& [key, value] : *o) {
    const std::string p = MemberPath("metadata", key);
    if (key.size() > kMaxMetadataKey) {
      return FieldError("metadata",
                        "keys are at most " + std::to_string(kMaxMetadataKey) + " characters");
    }
    IRIS_ASSIGN_OR_RETURN(std::string s, AsString(value, p));
    if (s.size() > kMaxMetadataValue) {
      return FieldError(p, "at most " + std::to_string(kMaxMetadataValue) + " characters");
    }
    out[key] = s;
  }
  return OkStatus();
}

// Notes every place of `v` (at `path`) that names something in the provider's account, which
// every caller shares: a file_id, file_ids, vector_store_ids, a container_id or a container
// given by id, an approval_request_id.
void NoteAccountRefs(const json::value& v, const std::string& path, std::vector<std::string>& out) {
  if (v.is_array()) {
    const json::array& a = v.get_array();
    for (size_t i = 0; i < a.size(); ++i) NoteAccountRefs(a[i], ElementPath(path, i), out);
    return;
  }
  if (!v.is_object()) return;
  for (const auto& [key, value] : v.get_object()) {
    if (value.is_null()) continue;
    if (key == "file_id" || key == "file_ids" || key == "vector_store_ids" ||
        key == "container_id" || key == "approval_request_id" ||
        (key == "container" && value.is_string())) {
      NoteAsIsOnly(&out, MemberPath(path, key), "in the provider account");
      continue;
    }
    NoteAccountRefs(value, MemberPath(path, key), out);
  }
}

}  // namespace

Result<ResponsesRequest> ParseResponsesRequest(std::string_view body) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, "request body"));
  if (!root.is_object()) return TypeError("request body", "a JSON object", root);
  const json::object& o = root.get_object();
  ResponsesRequest out;
  ChatRequest& req = out.chat;
  req.dialect = Dialect::kResponses;

  IRIS_ASSIGN_OR_RETURN(req.model, RequiredString(o, "model", ""));
  if (req.model.empty()) return FieldError("model", "must not be empty");

  if (FindField(o, "conversation") != nullptr) {
    return FieldError("conversation",
                      "conversations are not supported; continue a thread with "
                      "previous_response_id");
  }
  // A prompt template stored at OpenAI: only OpenAI can fill it in.
  const bool prompt = FindField(o, "prompt") != nullptr;
  if (prompt) {
    NoteAsIsOnly(&req.as_is_only, "prompt", "a stored prompt template");
    NoteAsIsOnly(&req.account_refs, "prompt", "a stored prompt template");
  }
  if (const json::value* v = FindField(o, "background")) {
    IRIS_ASSIGN_OR_RETURN(bool background, AsBool(*v, "background"));
    if (background) return FieldError("background", "background responses are not supported");
  }
  if (const json::value* v = FindField(o, "instructions")) {
    IRIS_ASSIGN_OR_RETURN(out.instructions, AsString(*v, "instructions"));
    if (!out.instructions.empty()) {
      Message m;
      m.role = Role::kSystem;
      m.content.push_back(ContentPart::Text(out.instructions));
      req.messages.push_back(std::move(m));
      out.has_instructions = true;
    }
  }
  if (const json::value* v = FindField(o, "previous_response_id")) {
    IRIS_ASSIGN_OR_RETURN(out.previous_response_id, AsString(*v, "previous_response_id"));
    if (!out.previous_response_id.starts_with("resp_") ||
        out.previous_response_id.size() > kMaxResponseId) {
      return FieldError("previous_response_id",
                        "expected the id of an earlier response (resp_...)");
    }
  }
  const json::value* input = FindField(o, "input");
  if (input == nullptr && !prompt) return MissingField("input");
  if (input == nullptr) {
    // (a prompt template alone)
  } else if (input->is_string()) {
    Message m;
    m.content.push_back(ContentPart::Text(std::string(input->get_string())));
    req.messages.push_back(std::move(m));
  } else if (input->is_array()) {
    IRIS_RETURN_IF_ERROR(ParseInputItems(input->get_array(), out, /*as_is=*/true));
  } else {
    return TypeError("input", "a string or an array of input items", *input);
  }
  if (req.messages.size() == (out.has_instructions ? 1u : 0u) && out.references.empty() &&
      out.previous_response_id.empty() && req.as_is_only.empty()) {
    return FieldError("input", "must contain at least one item");
  }

  bool searches = false;  // a hosted web_search tool (web_search, web_search_preview, ...)
  if (const json::value* v = FindField(o, "tools")) {
    IRIS_ASSIGN_OR_RETURN(const json::array* ta, AsArray(*v, "tools"));
    for (size_t i = 0; i < ta->size(); ++i) {
      IRIS_ASSIGN_OR_RETURN(std::optional<Tool> t,
                            ParseFlatTool((*ta)[i], ElementPath("tools", i), req));
      if (t) {
        req.tools.push_back(std::move(*t));
      } else if (StringField((*ta)[i].get_object(), "type").starts_with("web_search")) {
        searches = true;
      }
    }
  }
  if (const json::value* v = FindField(o, "tool_choice")) {
    IRIS_ASSIGN_OR_RETURN(req.tool_choice, ParseFlatToolChoice(*v, req.as_is_only));
  }
  // A hosted web search's bound, for the budget: max_tool_calls caps every hosted tool's calls.
  // (One that is not a positive integer is OpenAI's to refuse.)
  if (searches) {
    req.max_web_searches =
        std::clamp<int64_t>(IntField(o, "max_tool_calls"), 0, kMaxReservedWebSearches);
  }
  if (const json::value* v = FindField(o, "parallel_tool_calls")) {
    IRIS_ASSIGN_OR_RETURN(bool b, AsBool(*v, "parallel_tool_calls"));
    req.parallel_tool_calls = b;
  }
  if (const json::value* v = FindField(o, "text")) {
    IRIS_ASSIGN_OR_RETURN(req.response_format, ParseTextFormat(*v));
  }
  IRIS_ASSIGN_OR_RETURN(req.temperature, OptionalNumberInRange(o, "temperature", 0, 2));
  IRIS_ASSIGN_OR_RETURN(req.top_p, OptionalNumberInRange(o, "top_p", 0, 1));
  if (const json::value* v = FindField(o, "max_output_tokens")) {
    IRIS_ASSIGN_OR_RETURN(int64_t n, AsInt(*v, "max_output_tokens"));
    if (n < 1) return FieldError("max_output_tokens", "must be at least 1");
    req.max_tokens = n;
  }
  if (const json::value* v = FindField(o, "reasoning")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* r, AsObject(*v, "reasoning"));
    if (const json::value* e = FindField(*r, "effort")) {
      IRIS_ASSIGN_OR_RETURN(req.reasoning_effort, ParseReasoningEffort(*e, "reasoning.effort"));
    }
  }
  if (const json::value* v = FindField(o, "metadata")) {
    IRIS_RETURN_IF_ERROR(ParseMetadata(*v, out.metadata));
  }
  if (const json::value* v = FindField(o, "store")) {
    IRIS_ASSIGN_OR_RETURN(out.store, AsBool(*v, "store"));
  }
  if (const json::value* v = FindField(o, "stream")) {
    IRIS_ASSIGN_OR_RETURN(req.stream, AsBool(*v, "stream"));
  }
  req.include_usage = req.stream;  // the terminal event always carries usage
  if (const json::value* v = FindField(o, "user")) {
    IRIS_ASSIGN_OR_RETURN(req.user, AsString(*v, "user"));
  } else if (const json::value* s = FindField(o, "safety_identifier")) {
    IRIS_ASSIGN_OR_RETURN(req.user, AsString(*s, "safety_identifier"));
  }
  IRIS_RETURN_IF_ERROR(ParseOpenAIRoutingHints(o, req.routing));
  if (out.references.empty()) MergeToolCallTurns(req.messages);
  // What iris does not translate goes on to OpenAI's Responses API as is, and is reported as
  // dropped where the request is translated.
  const std::vector<std::string> extra = UninterpretedKeys(o, {"model",
                                                               "input",
                                                               "instructions",
                                                               "tools",
                                                               "tool_choice",
                                                               "parallel_tool_calls",
                                                               "text",
                                                               "max_output_tokens",
                                                               "temperature",
                                                               "top_p",
                                                               "reasoning",
                                                               "metadata",
                                                               "store",
                                                               "previous_response_id",
                                                               "stream",
                                                               "user",
                                                               "safety_identifier",
                                                               "background",
                                                               "conversation",
                                                               "prompt",
                                                               "models",
                                                               "provider",
                                                               "providerOptions"});
  for (const std::string& key : extra) AddFieldName(req.extra_fields, key);
  if (const json::value* text = FindField(o, "text"); text != nullptr && text->is_object()) {
    for (const std::string& key : UninterpretedKeys(text->get_object(), {"format"})) {
      AddFieldName(req.extra_fields, "text." + key);
    }
  }
  if (const json::value* r = FindField(o, "reasoning"); r != nullptr && r->is_object()) {
    for (const std::string& key : UninterpretedKeys(r->get_object(), {"effort"})) {
      AddFieldName(req.extra_fields, "reasoning." + key);
    }
  }
  // What the body names in the provider's account: in the input and the hosted tools (not in
  // JSON schemas, whose properties may have any name).
  if (const json::value* in = FindField(o, "input"))
    NoteAccountRefs(*in, "input", req.account_refs);
  if (const json::value* tools = FindField(o, "tools"); tools != nullptr && tools->is_array()) {
    const json::array& a = tools->get_array();
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].is_object() && StringField(a[i].get_object(), "type") != "function") {
        NoteAccountRefs(a[i], ElementPath("tools", i), req.account_refs);
      }
    }
  }
  req.caller_body = std::make_shared<const json::object>(std::move(root.get_object()));
  return out;
}

void MergeToolCallTurns(std::vector<Message>& messages) {
  std::vector<Message> merged;
  merged.reserve(messages.size());
  for (Message& m : messages) {
    if (m.role == Role::kAssistant && m.content.empty() && !m.tool_calls.empty() &&
        !merged.empty() && merged.back().role == Role::kAssistant) {
      for (ToolCall& c : m.tool_calls) merged.back().tool_calls.push_back(std::move(c));
      continue;
    }
    merged.push_back(std::move(m));
  }
  messages = std::move(merged);
}

boost::json::array InputItemsOf(const std::vector<Message>& messages) {
  json::array items;
  for (const Message& m : messages) {
    if (m.role == Role::kTool) {
      std::string text;
      for (const ContentPart& p : m.content) text += p.text;
      items.push_back(json::object{
          {"type", "function_call_output"}, {"call_id", m.tool_call_id}, {"output", text}});
      continue;
    }
    const bool assistant = m.role == Role::kAssistant;
    if (!m.content.empty() || m.tool_calls.empty()) {
      json::array content;
      for (const ContentPart& p : m.content) {
        if (p.type == ContentPart::Type::kText) {
          content.push_back(
              json::object{{"type", assistant ? "output_text" : "input_text"}, {"text", p.text}});
          continue;
        }
        json::object image{
            {"type", "input_image"},
            {"image_url",
             p.data_base64.empty() ? p.url : "data:" + p.media_type + ";base64," + p.data_base64}};
        if (!p.detail.empty()) image["detail"] = p.detail;
        content.push_back(std::move(image));
      }
      std::string_view role = m.role == Role::kSystem ? "system" : assistant ? "assistant" : "user";
      items.push_back(
          json::object{{"type", "message"}, {"role", role}, {"content", std::move(content)}});
    }
    for (const ToolCall& c : m.tool_calls) {
      items.push_back(json::object{{"type", "function_call"},
                                   {"call_id", c.id},
                                   {"name", c.name},
                                   {"arguments", c.arguments}});
    }
  }
  return items;
}

Result<std::vector<Message>> ParseConversationItems(const boost::json::array& items) {
  ResponsesRequest parsed;
  IRIS_RETURN_IF_ERROR(ParseInputItems(items, parsed, /*as_is=*/false));
  if (!parsed.references.empty()) return InvalidArgument("a kept conversation holds a reference");
  return std::move(parsed.chat.messages);
}

// --- Items ----------------------------------------------------------------------------------

std::string ResponseItemId(std::string_view prefix, std::string_view response_id, size_t index) {
  std::string_view tail = response_id;
  if (tail.starts_with("resp_")) tail.remove_prefix(5);
  return std::string(prefix) + "_" + std::string(tail) + "_" + std::to_string(index);
}

std::optional<ItemOwner> ItemOwnerOf(std::string_view item_id) {
  size_t first = item_id.find('_');
  size_t last = item_id.rfind('_');
  if (first == std::string_view::npos || last == first) return std::nullopt;
  std::string_view prefix = item_id.substr(0, first);
  if (prefix != "msg" && prefix != "fc") return std::nullopt;
  std::string_view tail = item_id.substr(first + 1, last - first - 1);
  std::string_view digits = item_id.substr(last + 1);
  if (tail.empty() || tail.size() > kMaxResponseId || digits.empty() || digits.size() > 4) {
    return std::nullopt;
  }
  ItemOwner owner;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), owner.index);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  owner.response_id = "resp_" + std::string(tail);
  return owner;
}

namespace {

json::object OutputText(std::string text) {
  return json::object{{"type", "output_text"},
                      {"text", std::move(text)},
                      {"annotations", json::array()},
                      {"logprobs", json::array()}};
}

json::object MessageItem(std::string id, std::string_view status, json::array content) {
  return json::object{{"type", "message"},
                      {"id", std::move(id)},
                      {"status", status},
                      {"role", "assistant"},
                      {"content", std::move(content)}};
}

json::object FunctionCallItem(std::string id, const ToolCall& call, std::string_view status) {
  return json::object{{"type", "function_call"},     {"id", std::move(id)},
                      {"call_id", call.id},          {"name", call.name},
                      {"arguments", call.arguments}, {"status", status}};
}

json::object ResponsesUsage(const Usage& u, std::optional<double> cost_usd) {
  json::object usage{
      {"input_tokens", u.input_tokens},
      {"input_tokens_details", json::object{{"cached_tokens", u.cached_input_tokens}}},
      {"output_tokens", u.output_tokens},
      {"output_tokens_details", json::object{{"reasoning_tokens", u.reasoning_tokens}}},
      {"total_tokens", u.input_tokens + u.output_tokens}};
  if (u.cache_write_tokens != 0) {
    usage["input_tokens_details"].as_object()["cache_write_tokens"] = u.cache_write_tokens;
  }
  if (cost_usd) usage["cost"] = *cost_usd;
  return usage;
}

// "completed", or "incomplete" with incomplete_details for a cut-short answer.
std::pair<std::string_view, json::value> StatusOf(FinishReason reason) {
  if (reason == FinishReason::kLength) {
    return {"incomplete", json::object{{"reason", "max_output_tokens"}}};
  }
  if (reason == FinishReason::kContentFilter) {
    return {"incomplete", json::object{{"reason", "content_filter"}}};
  }
  return {"completed", nullptr};
}

json::object ResponseObject(const ResponseMeta& meta, std::string_view status,
                            json::value incomplete, json::array output) {
  json::object r;
  r["id"] = meta.id;
  r["object"] = "response";
  r["created_at"] = meta.created_at;
  r["status"] = status;
  r["error"] = nullptr;
  r["incomplete_details"] = std::move(incomplete);
  r["model"] = meta.model;
  r["output"] = std::move(output);
  const ResponsesRequest* req = meta.request;
  r["instructions"] = req != nullptr && !req->instructions.empty() ? json::value(req->instructions)
                                                                   : json::value(nullptr);
  r["metadata"] = req != nullptr ? req->metadata : json::object();
  r["previous_response_id"] = req != nullptr && !req->previous_response_id.empty()
                                  ? json::value(req->previous_response_id)
                                  : json::value(nullptr);
  r["parallel_tool_calls"] = req != nullptr ? req->chat.parallel_tool_calls.value_or(true) : true;
  r["store"] = req != nullptr ? req->store : true;
  if (req != nullptr && req->chat.max_tokens) {
    r["max_output_tokens"] = *req->chat.max_tokens;
  } else {
    r["max_output_tokens"] = nullptr;
  }
  r["temperature"] = req != nullptr && req->chat.temperature ? json::value(*req->chat.temperature)
                                                             : json::value(nullptr);
  r["top_p"] =
      req != nullptr && req->chat.top_p ? json::value(*req->chat.top_p) : json::value(nullptr);
  json::array tools;
  if (req != nullptr) {
    for (const Tool& t : req->chat.tools) {
      json::object tool{{"type", "function"}, {"name", t.name}, {"strict", t.strict}};
      tool["description"] =
          t.description.empty() ? json::value(nullptr) : json::value(t.description);
      tool["parameters"] = t.parameters;
      tools.push_back(std::move(tool));
    }
  }
  r["tools"] = std::move(tools);
  r["tool_choice"] = "auto";
  if (req != nullptr && req->chat.tool_choice) {
    const ToolChoice& c = *req->chat.tool_choice;
    if (c.mode == ToolChoice::Mode::kNone) r["tool_choice"] = "none";
    if (c.mode == ToolChoice::Mode::kRequired) r["tool_choice"] = "required";
    if (c.mode == ToolChoice::Mode::kTool) {
      r["tool_choice"] = json::object{{"type", "function"}, {"name", c.name}};
    }
  }
  r["reasoning"] = json::object{{"effort", req != nullptr && req->chat.reasoning_effort
                                               ? json::value(*req->chat.reasoning_effort)
                                               : json::value(nullptr)},
                                {"summary", nullptr}};
  r["text"] = json::object{{"format", json::object{{"type", "text"}}}};
  if (req != nullptr && req->chat.response_format) {
    const ResponseFormat& f = *req->chat.response_format;
    if (f.type == ResponseFormat::Type::kJsonObject) {
      r["text"] = json::object{{"format", json::object{{"type", "json_object"}}}};
    } else if (f.type == ResponseFormat::Type::kJsonSchema) {
      r["text"] = json::object{{"format", json::object{{"type", "json_schema"},
                                                       {"name", f.name},
                                                       {"schema", f.schema},
                                                       {"strict", f.strict}}}};
    }
  }
  r["truncation"] = "disabled";
  r["user"] = req != nullptr && !req->chat.user.empty() ? json::value(req->chat.user)
                                                        : json::value(nullptr);
  return r;
}

}  // namespace

json::array ResponseOutputItems(const ChatResponse& response, std::string_view response_id) {
  json::array items;
  if (!response.text.empty() || response.tool_calls.empty()) {
    items.push_back(MessageItem(ResponseItemId("msg", response_id, 0), "completed",
                                json::array{OutputText(response.text)}));
  }
  for (const ToolCall& call : response.tool_calls) {
    items.push_back(
        FunctionCallItem(ResponseItemId("fc", response_id, items.size()), call, "completed"));
  }
  return items;
}

std::optional<Message> MessageOfOutputItem(const json::object& item) {
  const std::string type = StringField(item, "type");
  Message m;
  m.role = Role::kAssistant;
  if (type == "message") {
    if (const json::array* content = ArrayField(item, "content")) {
      for (const json::value& part : *content) {
        if (!part.is_object()) continue;
        m.content.push_back(ContentPart::Text(StringField(part.get_object(), "text")));
      }
    }
    return m;
  }
  if (type == "function_call") {
    ToolCall call;
    call.id = StringField(item, "call_id");
    call.name = StringField(item, "name");
    call.arguments = StringField(item, "arguments", "{}");
    m.tool_calls.push_back(std::move(call));
    return m;
  }
  return std::nullopt;
}

std::string EncodeResponsesResponse(const ChatResponse& response, const ResponseMeta& meta,
                                    const boost::json::object* iris,
                                    std::optional<double> cost_usd) {
  auto [status, incomplete] = StatusOf(response.finish_reason);
  json::object r =
      ResponseObject(meta, status, std::move(incomplete), ResponseOutputItems(response, meta.id));
  r["usage"] = ResponsesUsage(response.usage, cost_usd);
  if (iris != nullptr) r["iris"] = *iris;
  return SerializeJson(r);
}

namespace {
// The provider's own response object with iris's usage.cost and report added.
void AddIrisReport(json::object& response, const json::object* iris,
                   std::optional<double> cost_usd) {
  // usage.cost is iris's, or absent: a provider's own never passes for it.
  if (json::value* usage = response.if_contains("usage"); usage && usage->is_object()) {
    json::object& u = usage->get_object();
    ErasePriceOf(u);
    if (cost_usd) u["cost"] = *cost_usd;
  }
  if (iris != nullptr) response["iris"] = *iris;
}
}  // namespace

std::string EncodeAsIsResponse(json::object response, const json::object* iris,
                               std::optional<double> cost_usd) {
  AddIrisReport(response, iris, cost_usd);
  return SerializeJson(response);
}

// --- Streaming ------------------------------------------------------------------------------

const json::array* ResponsesStreamEncoder::as_is_output() const {
  if (terminal_name_.empty()) return nullptr;
  const json::object* response = ObjectField(terminal_, "response");
  return response != nullptr ? ArrayField(*response, "output") : nullptr;
}

std::string ResponsesStreamEncoder::Relay(const StreamEvent& event) {
  as_is_ = true;
  started_ = true;
  // (iris's own events after these, an error, number on from them)
  sequence_ = std::max<int64_t>(sequence_, static_cast<int64_t>(event.index) + 1);
  const bool terminal = event.name == "response.completed" || event.name == "response.incomplete";
  if (terminal || event.name == "response.created") {
    boost::system::error_code ec;
    json::value data = json::parse(event.text, ec);
    const json::object* response =
        !ec && data.is_object() ? ObjectField(data.get_object(), "response") : nullptr;
    if (response != nullptr && event.name == "response.created") {
      meta_.id = StringField(*response, "id");
      meta_.model = StringField(*response, "model");
      meta_.created_at = IntField(*response, "created_at");
    }
    if (terminal && response != nullptr) {
      terminal_name_ = event.name;
      terminal_ = std::move(data.get_object());
      return {};  // (sent by Finish, with iris's report)
    }
  }
  std::string out = "event: ";
  out += event.name;
  out += "\ndata: ";
  out += event.text;
  out += "\n\n";
  return out;
}

std::string ResponsesStreamEncoder::Emit(std::string_view type, json::object data) {
  json::object event;
  event["type"] = type;
  event["sequence_number"] = sequence_++;
  for (auto& [key, value] : data) event[key] = std::move(value);
  std::string out = "event: ";
  out += type;
  out += "\ndata: ";
  out += SerializeJson(event);
  out += "\n\n";
  return out;
}

json::object ResponsesStreamEncoder::Snapshot(std::string_view status) const {
  return ResponseObject(meta_, status, nullptr, items_);
}

std::string ResponsesStreamEncoder::EnsureStarted() {
  if (started_) return {};
  started_ = true;
  std::string out = Emit("response.created", json::object{{"response", Snapshot("in_progress")}});
  out += Emit("response.in_progress", json::object{{"response", Snapshot("in_progress")}});
  return out;
}

std::string ResponsesStreamEncoder::OpenMessage() {
  message_item_ = items_.size();
  message_open_ = true;
  message_text_.clear();
  const std::string id = ResponseItemId("msg", meta_.id, *message_item_);
  items_.push_back(MessageItem(id, "in_progress", json::array()));
  std::string out = Emit("response.output_item.added",
                         json::object{{"output_index", *message_item_}, {"item", items_.back()}});
  out += Emit("response.content_part.added", json::object{{"item_id", id},
                                                          {"output_index", *message_item_},
                                                          {"content_index", 0},
                                                          {"part", OutputText("")}});
  return out;
}

std::string ResponsesStreamEncoder::CloseMessage() {
  if (!message_open_) return {};
  message_open_ = false;
  const size_t index = *message_item_;
  json::object& item = items_[index].as_object();
  const std::string id(item["id"].as_string());
  json::object part = OutputText(message_text_);
  std::string out = Emit("response.output_text.done", json::object{{"item_id", id},
                                                                   {"output_index", index},
                                                                   {"content_index", 0},
                                                                   {"text", message_text_},
                                                                   {"logprobs", json::array()}});
  out += Emit(
      "response.content_part.done",
      json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0}, {"part", part}});
  item["content"] = json::array{std::move(part)};
  item["status"] = "completed";
  out += Emit("response.output_item.done", json::object{{"output_index", index}, {"item", item}});
  return out;
}

std::string ResponsesStreamEncoder::Encode(const StreamEvent& event) {
  if (event.type == StreamEvent::Type::kAsIs) {
    // (Another wire format's own events are not this API's: their neutral events follow.)
    return event.as_is_dialect == Dialect::kResponses ? Relay(event) : std::string();
  }
  if (as_is_) {
    FoldStreamEvent(answer_, event);  // (the caller has the provider's own events)
    return {};
  }
  std::string out;
  switch (event.type) {
    case StreamEvent::Type::kStart:
      if (answer_.id.empty()) answer_.id = event.id;
      if (!event.model.empty() && !started_) {
        answer_.model = event.model;
        meta_.model = event.model;
      }
      return EnsureStarted();
    case StreamEvent::Type::kTextDelta: {
      if (event.text.empty()) return {};
      out = EnsureStarted();
      // Text after a tool call opens a message item of its own, as OpenAI's own streams do.
      if (!message_open_) out += OpenMessage();
      message_text_ += event.text;
      answer_.text += event.text;
      out += Emit("response.output_text.delta",
                  json::object{{"item_id", items_[*message_item_].as_object()["id"]},
                               {"output_index", *message_item_},
                               {"content_index", 0},
                               {"delta", event.text},
                               {"logprobs", json::array()}});
      return out;
    }
    case StreamEvent::Type::kToolCallStart: {
      out = EnsureStarted();
      out += CloseMessage();
      const size_t index = items_.size();
      ToolCall call;
      call.id = event.id;
      call.name = event.name;
      answer_.tool_calls.push_back(call);
      tool_items_.emplace_back(event.index, index);
      items_.push_back(
          FunctionCallItem(ResponseItemId("fc", meta_.id, index), call, "in_progress"));
      out += Emit("response.output_item.added",
                  json::object{{"output_index", index}, {"item", items_.back()}});
      return out;
    }
    case StreamEvent::Type::kToolCallDelta: {
      if (event.text.empty()) return {};
      for (size_t k = 0; k < tool_items_.size(); ++k) {
        if (tool_items_[k].first != event.index) continue;
        const size_t index = tool_items_[k].second;
        answer_.tool_calls[k].arguments += event.text;
        return Emit("response.function_call_arguments.delta",
                    json::object{{"item_id", items_[index].as_object()["id"]},
                                 {"output_index", index},
                                 {"delta", event.text}});
      }
      return {};  // a delta for a call never started: the translators do not produce one
    }
    case StreamEvent::Type::kFinish:
      answer_.finish_reason = event.finish_reason;
      return {};
    case StreamEvent::Type::kUsage:
      answer_.usage = event.usage;
      answer_.usage.reported = true;
      return {};
    case StreamEvent::Type::kReasoningDelta:
    case StreamEvent::Type::kReasoningSignature:
    case StreamEvent::Type::kRedactedReasoning:
      return {};  // (this API's reasoning items are OpenAI's own, encrypted: none to give)
    case StreamEvent::Type::kAsIs:
      break;  // (relayed above)
    case StreamEvent::Type::kExtras:
      break;  // (a chat chunk's own members have no place in this API's events)
  }
  return out;
}

std::string ResponsesStreamEncoder::Finish(const boost::json::object* iris,
                                           std::optional<double> cost_usd) {
  if (as_is_) {
    // (the translator refuses a stream that ends without its terminal event)
    if (terminal_name_.empty()) return {};
    if (json::value* r = terminal_.if_contains("response"); r && r->is_object()) {
      AddIrisReport(r->get_object(), iris, cost_usd);
    }
    std::string out = "event: " + terminal_name_ + "\ndata: " + SerializeJson(terminal_) + "\n\n";
    terminal_name_.clear();
    return out;
  }
  std::string out = EnsureStarted();
  // An empty answer is still one (empty) message, as in the non-streaming object.
  if (items_.empty()) out += OpenMessage();
  out += CloseMessage();
  for (size_t k = 0; k < tool_items_.size(); ++k) {
    const size_t index = tool_items_[k].second;
    json::object& item = items_[index].as_object();
    ToolCall& call = answer_.tool_calls[k];
    if (call.arguments.empty()) call.arguments = "{}";
    item["arguments"] = call.arguments;
    item["status"] = "completed";
    out +=
        Emit("response.function_call_arguments.done", json::object{{"item_id", item["id"]},
                                                                   {"output_index", index},
                                                                   {"name", call.name},
                                                                   {"arguments", call.arguments}});
    out += Emit("response.output_item.done", json::object{{"output_index", index}, {"item", item}});
  }
  auto [status, incomplete] = StatusOf(answer_.finish_reason);
  json::object r = ResponseObject(meta_, status, std::move(incomplete), items_);
  r["usage"] = ResponsesUsage(answer_.usage, cost_usd);
  if (iris != nullptr) r["iris"] = *iris;
  out += Emit(status == "completed" ? "response.completed" : "response.incomplete",
              json::object{{"response", std::move(r)}});
  return out;
}

std::string ResponsesStreamEncoder::Error(const GatewayError& error) {
  std::string out = EnsureStarted();
  json::object e = OpenAIErrorObject(error);
  json::object data{{"code", e["code"]}, {"message", e["message"]}, {"param", e["param"]}};
  out += Emit("error", std::move(data));
  json::object r = Snapshot("failed");
  r["error"] = json::object{
      {"code", e["code"].is_null() ? json::value(OpenAIErrorType(error.error_class)) : e["code"]},
      {"message", e["message"]}};
  out += Emit("response.failed", json::object{{"response", std::move(r)}});
  return out;
}

}  // namespace iris::gateway::api
