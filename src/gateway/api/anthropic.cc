// The Anthropic Messages codec on the client side: request parsing with field-path errors,
// the message object and the SSE event sequence the Claude SDKs expect.
#include "gateway/api/anthropic.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <utility>

#include "base/json.h"
#include "gateway/api/errors.h"

namespace iris::gateway::api {
namespace {

namespace json = boost::json;

Status FieldError(std::string_view path, std::string_view what) {
  return InvalidArgument(std::string(path) + ": " + std::string(what));
}

std::string Path(std::string_view base, std::string_view field) {
  if (base.empty()) return std::string(field);
  return std::string(base) + "." + std::string(field);
}
std::string Path(std::string_view base, size_t index) {
  return std::string(base) + "." + std::to_string(index);
}

Result<std::string> GetString(const json::value& v, std::string_view path) {
  if (!v.is_string()) return FieldError(path, "must be a string");
  return std::string(v.get_string());
}

Result<double> GetNumber(const json::value& v, std::string_view path) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return FieldError(path, "must be a number");
}

Result<int64_t> GetInt(const json::value& v, std::string_view path) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v.get_uint64());
  }
  if (v.is_double() && std::trunc(v.get_double()) == v.get_double() &&
      std::fabs(v.get_double()) < 9e15) {
    return static_cast<int64_t>(v.get_double());
  }
  return FieldError(path, "must be an integer");
}

Result<bool> GetBool(const json::value& v, std::string_view path) {
  if (!v.is_bool()) return FieldError(path, "must be a boolean");
  return v.get_bool();
}

// The field when present and not null.
const json::value* Find(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

Result<const json::object*> GetObject(const json::value& v, std::string_view path) {
  if (!v.is_object()) return FieldError(path, "must be an object");
  return &v.get_object();
}

Result<std::string> RequiredString(const json::object& o, std::string_view key,
                                   std::string_view base) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return FieldError(Path(base, key), "field required");
  return GetString(*v, Path(base, key));
}

Result<ContentPart> ParseImage(const json::object& block, const std::string& path) {
  const json::value* src = Find(block, "source");
  if (src == nullptr) return FieldError(Path(path, "source"), "field required");
  IRIS_ASSIGN_OR_RETURN(const json::object* source, GetObject(*src, Path(path, "source")));
  std::string spath = Path(path, "source");
  IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*source, "type", spath));
  ContentPart part;
  part.type = ContentPart::Type::kImage;
  if (type == "base64") {
    IRIS_ASSIGN_OR_RETURN(part.media_type, RequiredString(*source, "media_type", spath));
    IRIS_ASSIGN_OR_RETURN(part.data_base64, RequiredString(*source, "data", spath));
    if (part.data_base64.empty()) return FieldError(Path(spath, "data"), "must not be empty");
  } else if (type == "url") {
    IRIS_ASSIGN_OR_RETURN(part.url, RequiredString(*source, "url", spath));
    if (part.url.rfind("https://", 0) != 0 && part.url.rfind("http://", 0) != 0) {
      return FieldError(Path(spath, "url"), "must be an http(s) URL");
    }
  } else {
    return FieldError(Path(spath, "type"),
                      "'" + type + "' is not supported (use \"base64\" or \"url\")");
  }
  return part;
}

// Content of a tool_result: a string or an array of text / image blocks.
Result<std::vector<ContentPart>> ParseToolResultContent(const json::value& v,
                                                        const std::string& path) {
  std::vector<ContentPart> parts;
  if (v.is_string()) {
    parts.push_back(ContentPart::Text(std::string(v.get_string())));
    return parts;
  }
  if (!v.is_array()) return FieldError(path, "must be a string or an array of content blocks");
  const json::array& blocks = v.get_array();
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string bpath = Path(path, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* block, GetObject(blocks[i], bpath));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*block, "type", bpath));
    if (type == "text") {
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*block, "text", bpath));
      parts.push_back(ContentPart::Text(std::move(text)));
    } else if (type == "image") {
      IRIS_ASSIGN_OR_RETURN(ContentPart part, ParseImage(*block, bpath));
      parts.push_back(std::move(part));
    } else {
      return FieldError(Path(bpath, "type"),
                        "'" + type + "' is not supported in a tool_result (text or image)");
    }
  }
  return parts;
}

// Appends the messages one Anthropic turn becomes.
Status ParseTurn(const json::value& turn_value, size_t index, std::vector<Message>& out) {
  std::string path = Path("messages", index);
  IRIS_ASSIGN_OR_RETURN(const json::object* turn, GetObject(turn_value, path));
  IRIS_ASSIGN_OR_RETURN(std::string role, RequiredString(*turn, "role", path));
  bool is_user = role == "user";
  if (!is_user && role != "assistant") {
    return FieldError(Path(path, "role"), "must be \"user\" or \"assistant\", got '" + role + "'");
  }
  const json::value* content = Find(*turn, "content");
  std::string cpath = Path(path, "content");
  if (content == nullptr) return FieldError(cpath, "field required");

  Message current;
  current.role = is_user ? Role::kUser : Role::kAssistant;
  if (content->is_string()) {
    current.content.push_back(ContentPart::Text(std::string(content->get_string())));
    out.push_back(std::move(current));
    return OkStatus();
  }
  if (!content->is_array()) return FieldError(cpath, "must be a string or an array of blocks");

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
    std::string bpath = Path(cpath, i);
    IRIS_ASSIGN_OR_RETURN(const json::object* block, GetObject(blocks[i], bpath));
    IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*block, "type", bpath));
    if (type == "text") {
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*block, "text", bpath));
      current.content.push_back(ContentPart::Text(std::move(text)));
    } else if (type == "image") {
      if (!is_user) return FieldError(Path(bpath, "type"), "image blocks belong in user turns");
      IRIS_ASSIGN_OR_RETURN(ContentPart part, ParseImage(*block, bpath));
      current.content.push_back(std::move(part));
    } else if (type == "tool_use") {
      if (is_user) return FieldError(Path(bpath, "type"), "tool_use belongs in assistant turns");
      ToolCall call;
      IRIS_ASSIGN_OR_RETURN(call.id, RequiredString(*block, "id", bpath));
      IRIS_ASSIGN_OR_RETURN(call.name, RequiredString(*block, "name", bpath));
      const json::value* input = Find(*block, "input");
      if (input == nullptr) return FieldError(Path(bpath, "input"), "field required");
      if (!input->is_object()) return FieldError(Path(bpath, "input"), "must be an object");
      call.arguments = SerializeJson(*input);
      current.tool_calls.push_back(std::move(call));
    } else if (type == "tool_result") {
      if (!is_user) {
        return FieldError(Path(bpath, "type"), "tool_result belongs in user turns");
      }
      flush();
      Message tool;
      tool.role = Role::kTool;
      IRIS_ASSIGN_OR_RETURN(tool.tool_call_id, RequiredString(*block, "tool_use_id", bpath));
      if (const json::value* c = Find(*block, "content")) {
        IRIS_ASSIGN_OR_RETURN(tool.content, ParseToolResultContent(*c, Path(bpath, "content")));
      }
      if (const json::value* e = Find(*block, "is_error")) {
        IRIS_ASSIGN_OR_RETURN(tool.is_error, GetBool(*e, Path(bpath, "is_error")));
      }
      out.push_back(std::move(tool));
    } else if (type == "thinking" || type == "redacted_thinking") {
      // Signed reasoning of an earlier Anthropic answer; no other provider can take it.
    } else {
      return FieldError(Path(bpath, "type"), "'" + type + "' blocks are not supported");
    }
  }
  flush();
  return OkStatus();
}

Status ParseTools(const json::value& v, ChatRequest& request) {
  if (!v.is_array()) return FieldError("tools", "must be an array");
  const json::array& tools = v.get_array();
  for (size_t i = 0; i < tools.size(); ++i) {
    std::string path = Path("tools", i);
    IRIS_ASSIGN_OR_RETURN(const json::object* t, GetObject(tools[i], path));
    if (const json::value* type = Find(*t, "type")) {
      IRIS_ASSIGN_OR_RETURN(std::string type_name, GetString(*type, Path(path, "type")));
      if (type_name != "custom") {
        return FieldError(Path(path, "type"),
                          "server tool '" + type_name + "' is not supported by iris");
      }
    }
    Tool tool;
    IRIS_ASSIGN_OR_RETURN(tool.name, RequiredString(*t, "name", path));
    if (tool.name.empty()) return FieldError(Path(path, "name"), "must not be empty");
    if (const json::value* d = Find(*t, "description")) {
      IRIS_ASSIGN_OR_RETURN(tool.description, GetString(*d, Path(path, "description")));
    }
    const json::value* schema = Find(*t, "input_schema");
    if (schema == nullptr) return FieldError(Path(path, "input_schema"), "field required");
    if (!schema->is_object()) return FieldError(Path(path, "input_schema"), "must be an object");
    tool.parameters = *schema;
    if (const json::value* s = Find(*t, "strict")) {
      IRIS_ASSIGN_OR_RETURN(tool.strict, GetBool(*s, Path(path, "strict")));
    }
    request.tools.push_back(std::move(tool));
  }
  return OkStatus();
}

Status ParseToolChoice(const json::value& v, ChatRequest& request) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, GetObject(v, "tool_choice"));
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
                      "must be \"auto\", \"any\", \"tool\" or \"none\", got '" + type + "'");
  }
  if (const json::value* d = Find(*o, "disable_parallel_tool_use")) {
    IRIS_ASSIGN_OR_RETURN(bool disable, GetBool(*d, "tool_choice.disable_parallel_tool_use"));
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
      std::string path = Path("system", i);
      IRIS_ASSIGN_OR_RETURN(const json::object* b, GetObject(blocks[i], path));
      IRIS_ASSIGN_OR_RETURN(std::string type, RequiredString(*b, "type", path));
      if (type != "text") return FieldError(Path(path, "type"), "must be \"text\"");
      IRIS_ASSIGN_OR_RETURN(std::string text, RequiredString(*b, "text", path));
      system.content.push_back(ContentPart::Text(std::move(text)));
    }
  } else {
    return FieldError("system", "must be a string or an array of text blocks");
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
  json::object o = iris != nullptr ? *iris : json::object();
  if (cost_usd) o["cost_usd"] = *cost_usd;
  return o;
}

std::string Event(std::string_view type, const json::object& data) {
  std::string out = "event: ";
  out.append(type).append("\ndata: ").append(SerializeJson(data)).append("\n\n");
  return out;
}

}  // namespace

Result<ChatRequest> ParseAnthropicRequest(std::string_view body) {
  boost::system::error_code ec;
  json::value root = json::parse(body, ec);
  if (ec) return InvalidArgument("request body: not valid JSON (" + ec.message() + ")");
  if (!root.is_object()) return InvalidArgument("request body: must be a JSON object");
  const json::object& o = root.get_object();

  ChatRequest request;
  request.dialect = Dialect::kAnthropic;
  IRIS_ASSIGN_OR_RETURN(request.model, RequiredString(o, "model", ""));
  if (request.model.empty()) return FieldError("model", "must not be empty");

  const json::value* max_tokens = Find(o, "max_tokens");
  if (max_tokens == nullptr) return FieldError("max_tokens", "field required");
  IRIS_ASSIGN_OR_RETURN(int64_t max, GetInt(*max_tokens, "max_tokens"));
  if (max < 1) return FieldError("max_tokens", "must be at least 1");
  request.max_tokens = max;

  if (const json::value* system = Find(o, "system")) {
    IRIS_RETURN_IF_ERROR(ParseSystem(*system, request));
  }
  const json::value* messages = Find(o, "messages");
  if (messages == nullptr) return FieldError("messages", "field required");
  if (!messages->is_array()) return FieldError("messages", "must be an array");
  if (messages->get_array().empty()) return FieldError("messages", "must not be empty");
  for (size_t i = 0; i < messages->get_array().size(); ++i) {
    IRIS_RETURN_IF_ERROR(ParseTurn(messages->get_array()[i], i, request.messages));
  }

  if (const json::value* tools = Find(o, "tools")) {
    IRIS_RETURN_IF_ERROR(ParseTools(*tools, request));
  }
  if (const json::value* choice = Find(o, "tool_choice")) {
    IRIS_RETURN_IF_ERROR(ParseToolChoice(*choice, request));
  }
  if (const json::value* stops = Find(o, "stop_sequences")) {
    if (!stops->is_array()) return FieldError("stop_sequences", "must be an array of strings");
    for (size_t i = 0; i < stops->get_array().size(); ++i) {
      IRIS_ASSIGN_OR_RETURN(std::string stop,
                            GetString(stops->get_array()[i], Path("stop_sequences", i)));
      request.stop.push_back(std::move(stop));
    }
  }
  if (const json::value* t = Find(o, "temperature")) {
    IRIS_ASSIGN_OR_RETURN(double temperature, GetNumber(*t, "temperature"));
    if (temperature < 0 || temperature > 1) {
      return FieldError("temperature", "must be between 0 and 1");
    }
    request.temperature = temperature;
  }
  if (const json::value* p = Find(o, "top_p")) {
    IRIS_ASSIGN_OR_RETURN(double top_p, GetNumber(*p, "top_p"));
    if (top_p < 0 || top_p > 1) return FieldError("top_p", "must be between 0 and 1");
    request.top_p = top_p;
  }
  if (const json::value* k = Find(o, "top_k")) {
    IRIS_ASSIGN_OR_RETURN(int64_t top_k, GetInt(*k, "top_k"));
    if (top_k < 0) return FieldError("top_k", "must not be negative");
    request.top_k = top_k;
  }
  if (const json::value* s = Find(o, "stream")) {
    IRIS_ASSIGN_OR_RETURN(request.stream, GetBool(*s, "stream"));
  }
  if (const json::value* m = Find(o, "metadata")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* metadata, GetObject(*m, "metadata"));
    if (const json::value* user = Find(*metadata, "user_id")) {
      IRIS_ASSIGN_OR_RETURN(request.user, GetString(*user, "metadata.user_id"));
    }
  }
  return request;
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
  return Event("content_block_stop", data);
}

std::string AnthropicStreamEncoder::Encode(const StreamEvent& event) {
  if (done_) return {};
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
      ToolCall call{event.id, event.name, ""};
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
  }
  return out;
}

std::string AnthropicStreamEncoder::Finish(const json::object* iris,
                                           std::optional<double> cost_usd) {
  if (done_) return {};
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
