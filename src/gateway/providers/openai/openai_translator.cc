// OpenAI-shaped upstreams (see openai_translator.h): ChatRequest -> chat completions body,
// and chat completions answers, chunks and errors back into the neutral vocabulary.
#include "gateway/providers/openai/openai_translator.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <utility>

#include "base/json.h"
#include "gateway/api/embeddings.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/openai.h"
#include "gateway/providers/openai/openai_responses.h"
#include "gateway/providers/provider_table.h"

namespace iris::gateway::providers {

namespace json = boost::json;
using api::ArrayField;
using api::FindField;
using api::IntField;
using api::ObjectField;
using api::StringField;
using api::StringOrIntegerField;
using api::TokenCountField;

namespace {
// The provider table's kind of a flavor.
ProviderKind KindOf(OpenAIFlavor flavor) {
  switch (flavor) {
    case OpenAIFlavor::kOpenAI:
      return ProviderKind::kOpenAI;
    case OpenAIFlavor::kMistral:
      return ProviderKind::kMistral;
    case OpenAIFlavor::kCompatible:
      break;
  }
  return ProviderKind::kOpenAICompatible;
}
}  // namespace

namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsMistralId(std::string_view id) {
  if (id.size() != 9) return false;
  for (char c : id) {
    if (!IsAlnum(c)) return false;
  }
  return true;
}

}  // namespace

std::string MistralToolCallId(std::string_view id, int salt) {
  if (salt == 0 && IsMistralId(id)) return std::string(id);
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (char c : id) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < salt; ++i) mix(0xFF);
  static constexpr char kAlphabet[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string out(9, '0');
  for (char& c : out) {  // 62^9 < 2^64: nine digits use most of the hash
    c = kAlphabet[h % 62];
    h /= 62;
  }
  return out;
}

bool IsOpenAIReasoningModel(std::string_view model) {
  for (std::string_view family : {"o1", "o3", "o4"}) {
    if (model.starts_with(family) &&
        (model.size() == family.size() || model[family.size()] == '-')) {
      return true;
    }
  }
  return model.starts_with("gpt-5") && model.find("-chat") == std::string_view::npos;
}

namespace {

// --- Request -----------------------------------------------------------------------------

std::string DataUrl(const ContentPart& p) {
  std::string media_type = p.media_type.empty() ? "image/png" : p.media_type;
  return "data:" + media_type + ";base64," + p.data_base64;
}

// One text part -> a string; otherwise an array of text / image_url parts.
Result<json::value> EncodeContent(const std::vector<ContentPart>& parts, bool allow_images,
                                  std::string_view provider, std::string_view where) {
  if (parts.size() == 1 && parts[0].type == ContentPart::Type::kText) {
    return json::value(parts[0].text);
  }
  json::array out;
  for (const ContentPart& p : parts) {
    json::object o;
    if (p.type == ContentPart::Type::kText) {
      o["type"] = "text";
      o["text"] = p.text;
    } else {
      if (!allow_images) {
        return InvalidArgument(std::string(provider) + " does not accept images in " +
                               std::string(where));
      }
      json::object image;
      image["url"] = p.url.empty() ? DataUrl(p) : p.url;
      if (!p.detail.empty()) image["detail"] = p.detail;
      o["type"] = "image_url";
      o["image_url"] = std::move(image);
    }
    out.push_back(std::move(o));
  }
  return json::value(std::move(out));
}

// Rewrites tool-call ids for Mistral, the same way for a call and its result.
class IdMap {
 public:
  explicit IdMap(bool active) : active_(active) {}
  std::string Map(const std::string& id) {
    if (!active_) return id;
    auto it = to_.find(id);
    if (it != to_.end()) return it->second;
    std::string mapped = MistralToolCallId(id);
    for (int salt = 1; used_.count(mapped) != 0; ++salt) mapped = MistralToolCallId(id, salt);
    used_.insert(mapped);
    to_[id] = mapped;
    return mapped;
  }

 private:
  bool active_;
  std::map<std::string, std::string> to_;
  std::set<std::string> used_;
};

class OpenAITranslator final : public Translator {
 public:
  OpenAITranslator(OpenAIFlavor flavor, std::string name)
      : flavor_(flavor), name_(std::move(name)) {}

  Result<UpstreamRequest> EncodeRequest(const ChatRequest& request,
                                        const TargetInfo& target) const override;
  Result<ChatResponse> DecodeResponse(std::string_view body) const override;
  std::unique_ptr<StreamTranslator> NewStreamTranslator() const override;
  GatewayError DecodeError(int status, std::string_view body,
                           std::string_view retry_after) const override;
  Result<UpstreamRequest> EncodeEmbeddings(const EmbeddingRequest& request,
                                           const TargetInfo& target) const override;
  Result<EmbeddingResponse> DecodeEmbeddings(std::string_view body) const override;

 private:
  bool mistral() const { return flavor_ == OpenAIFlavor::kMistral; }
  // POST {base_url}{path} with the bearer key (when there is one) and a JSON body.
  static UpstreamRequest Post(const TargetInfo& target, std::string_view path,
                              const json::object& body, bool stream);
  Result<json::array> EncodeMessages(const ChatRequest& request) const;

  OpenAIFlavor flavor_;
  std::string name_;
};

Result<json::array> OpenAITranslator::EncodeMessages(const ChatRequest& request) const {
  json::array out;
  IdMap ids(mistral());
  std::map<std::string, std::string> tool_names;  // call id -> function name
  Role previous = Role::kSystem;
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const Message& m = request.messages[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (mistral() && previous == Role::kTool && m.role == Role::kUser) {
      // Mistral rejects "Unexpected role 'user' after role 'tool'" (protocols.md §4).
      out.push_back(json::object{{"role", "assistant"}, {"content", "Done."}});
    }
    previous = m.role;
    json::object o;
    switch (m.role) {
      case Role::kSystem:
        o["role"] = "system";
        break;
      case Role::kUser:
        o["role"] = "user";
        break;
      case Role::kAssistant:
        o["role"] = "assistant";
        break;
      case Role::kTool:
        o["role"] = "tool";
        break;
    }
    if (m.role == Role::kTool) {
      o["tool_call_id"] = ids.Map(m.tool_call_id);
      if (mistral()) {
        auto it = tool_names.find(m.tool_call_id);
        if (it != tool_names.end()) o["name"] = it->second;
      }
    }
    if (m.role == Role::kAssistant && m.content.empty()) {
      o["content"] = m.tool_calls.empty() ? json::value("") : json::value(nullptr);
    } else if (m.content.empty()) {
      o["content"] = "";
    } else {
      IRIS_ASSIGN_OR_RETURN(json::value content,
                            EncodeContent(m.content, m.role == Role::kUser, name_,
                                          where + " (only user messages may carry images)"));
      o["content"] = std::move(content);
    }
    if (!m.tool_calls.empty()) {
      json::array calls;
      for (const ToolCall& c : m.tool_calls) {
        tool_names[c.id] = c.name;
        json::object fn{{"name", c.name}, {"arguments", c.arguments.empty() ? "{}" : c.arguments}};
        calls.push_back(
            json::object{{"id", ids.Map(c.id)}, {"type", "function"}, {"function", fn}});
      }
      o["tool_calls"] = std::move(calls);
    }
    if (!m.name.empty() && !mistral() && m.role != Role::kTool) o["name"] = m.name;
    out.push_back(std::move(o));
  }
  return out;
}

namespace {

// Applies OpenAI's parameter rules to a chat completions body for `model`: max_tokens is
// max_completion_tokens, top_k (which OpenAI refuses) goes, and a reasoning model's sampling
// settings are removed (all reported).
void ApplyOpenAIModelRules(json::object& body, std::string_view model,
                           std::vector<std::string>& dropped) {
  if (const json::value* max = body.if_contains("max_tokens")) {
    if (!body.contains("max_completion_tokens")) {
      // (A copy first: the insert may move the object's table, and `max` with it.)
      json::value value = *max;
      body["max_completion_tokens"] = std::move(value);
    }
    body.erase("max_tokens");
  }
  if (body.erase("top_k") > 0) api::AddFieldName(dropped, "top_k");  // (OpenAI refuses it)
  if (!IsOpenAIReasoningModel(model)) return;
  for (std::string_view key : {"temperature", "top_p", "presence_penalty", "frequency_penalty",
                               "logprobs", "top_logprobs", "logit_bias"}) {
    if (body.erase(key) > 0) api::AddFieldName(dropped, key);
  }
}
}  // namespace

Result<UpstreamRequest> OpenAITranslator::EncodeRequest(const ChatRequest& request,
                                                        const TargetInfo& target) const {
  if (request.dialect == Dialect::kResponses && flavor_ == OpenAIFlavor::kOpenAI &&
      request.caller_body) {
    // A Responses caller of OpenAI: its body goes to the same API as written (hosted tools,
    // reasoning items, include, truncation, service_tier, fields iris does not know yet).
    std::vector<std::string> dropped;
    if (std::optional<json::object> body = ResponsesBodyAsIs(request, target, dropped)) {
      UpstreamRequest out = Post(target, "/responses", *body, request.stream);
      out.dropped = std::move(dropped);
      out.as_is = true;
      return out;
    }
  }
  if (request.dialect == Dialect::kOpenAI && !mistral() && request.caller_body) {
    // An OpenAI-shaped caller of an OpenAI-shaped upstream: its body goes on as written
    // (service_tier, metadata, store, logprobs, fields iris does not know yet). The copy is
    // written out and dropped here: in scratch storage.
    JsonScratch scratch;
    json::object body = CallerBodyFor(request, target.model, scratch.storage());
    if (request.stream) {
      json::object options(scratch.storage());
      if (const json::value* o = body.if_contains("stream_options"); o && o->is_object()) {
        options = o->get_object();
      }
      options["include_usage"] = true;  // (so that cost is known)
      body["stream_options"] = std::move(options);
    }
    std::vector<std::string> dropped;
    if (flavor_ == OpenAIFlavor::kOpenAI) ApplyOpenAIModelRules(body, target.model, dropped);
    UpstreamRequest out = Post(target, "/chat/completions", body, request.stream);
    out.dropped = std::move(dropped);
    out.as_is = true;
    return out;
  }
  json::object body;
  body["model"] = target.model;
  IRIS_ASSIGN_OR_RETURN(json::array messages, EncodeMessages(request));
  body["messages"] = std::move(messages);
  if (!request.tools.empty()) {
    json::array tools;
    for (const Tool& t : request.tools) {
      json::object fn;
      fn["name"] = t.name;
      if (!t.description.empty()) fn["description"] = t.description;
      if (!t.parameters.is_null()) fn["parameters"] = t.parameters;
      if (t.strict) fn["strict"] = true;
      tools.push_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
    }
    body["tools"] = std::move(tools);
  }
  if (request.tool_choice) {
    switch (request.tool_choice->mode) {
      case ToolChoice::Mode::kAuto:
        body["tool_choice"] = "auto";
        break;
      case ToolChoice::Mode::kNone:
        body["tool_choice"] = "none";
        break;
      case ToolChoice::Mode::kRequired:
        body["tool_choice"] = mistral() ? "any" : "required";
        break;
      case ToolChoice::Mode::kTool:
        body["tool_choice"] = json::object{
            {"type", "function"}, {"function", json::object{{"name", request.tool_choice->name}}}};
        break;
    }
  }
  if (request.parallel_tool_calls) body["parallel_tool_calls"] = *request.parallel_tool_calls;
  if (request.response_format) {
    const ResponseFormat& f = *request.response_format;
    switch (f.type) {
      case ResponseFormat::Type::kText:
        body["response_format"] = json::object{{"type", "text"}};
        break;
      case ResponseFormat::Type::kJsonObject:
        body["response_format"] = json::object{{"type", "json_object"}};
        break;
      case ResponseFormat::Type::kJsonSchema: {
        json::object js;
        js["name"] = f.name;
        if (!f.schema.is_null()) js["schema"] = f.schema;
        if (f.strict) js["strict"] = true;
        body["response_format"] =
            json::object{{"type", "json_schema"}, {"json_schema", std::move(js)}};
        break;
      }
    }
  }
  if (!request.stop.empty()) {
    json::array stop;
    for (const std::string& s : request.stop) stop.push_back(json::value(s));
    body["stop"] = std::move(stop);
  }
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.top_p) body["top_p"] = *request.top_p;
  if (request.top_k && flavor_ == OpenAIFlavor::kCompatible) body["top_k"] = *request.top_k;
  if (request.frequency_penalty) body["frequency_penalty"] = *request.frequency_penalty;
  if (request.presence_penalty) body["presence_penalty"] = *request.presence_penalty;
  if (request.max_tokens) {
    body[flavor_ == OpenAIFlavor::kOpenAI ? "max_completion_tokens" : "max_tokens"] =
        *request.max_tokens;
  }
  if (request.seed) body[mistral() ? "random_seed" : "seed"] = *request.seed;
  if (request.reasoning_effort) {
    if (mistral()) {
      return InvalidArgument(
          "mistral: reasoning effort (reasoning_effort / reasoning.effort) "
          "is not supported");
    }
    body["reasoning_effort"] = *request.reasoning_effort;
  }
  std::vector<std::string> dropped = request.extra_fields;
  if (HasCacheMarks(request)) api::AddFieldName(dropped, "cache_control");
  if (request.thinking_budget && !request.reasoning_effort) {
    // An Anthropic caller's thinking budget: an effort for OpenAI's reasoning models.
    if (flavor_ == OpenAIFlavor::kOpenAI && IsOpenAIReasoningModel(target.model)) {
      // (low, medium and high are the efforts every reasoning model takes.)
      std::string_view effort = EffortForThinkingBudget(*request.thinking_budget);
      if (effort == "minimal") effort = "low";
      if (effort == "xhigh") effort = "high";
      body["reasoning_effort"] = effort;
    } else {
      api::AddFieldName(dropped, "thinking");
    }
  }
  if (!request.user.empty() && !mistral()) body["user"] = request.user;
  if (request.stream) {
    body["stream"] = true;
    // Mistral always reports usage on the finish chunk and rejects stream_options.
    if (!mistral()) body["stream_options"] = json::object{{"include_usage", true}};
  }
  if (flavor_ == OpenAIFlavor::kOpenAI) ApplyOpenAIModelRules(body, target.model, dropped);
  UpstreamRequest out = Post(target, "/chat/completions", body, request.stream);
  out.dropped = std::move(dropped);
  return out;
}

UpstreamRequest OpenAITranslator::Post(const TargetInfo& target, std::string_view path,
                                       const json::object& body, bool stream) {
  UpstreamRequest out;
  std::string base = target.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  out.url = base + std::string(path);
  if (!target.api_key.empty())
    out.headers.emplace_back("authorization", "Bearer " + target.api_key);
  out.headers.emplace_back("content-type", "application/json");
  out.headers.emplace_back("accept", stream ? "text/event-stream" : "application/json");
  out.body = SerializeJson(body);
  return out;
}

// --- Embeddings ----------------------------------------------------------------------------

Result<UpstreamRequest> OpenAITranslator::EncodeEmbeddings(const EmbeddingRequest& request,
                                                           const TargetInfo& target) const {
  json::object body;
  body["model"] = target.model;
  if (!request.texts.empty()) {
    json::array input;
    for (const std::string& t : request.texts) input.push_back(json::value(t));
    body["input"] = std::move(input);
  } else {
    if (mistral()) {
      return InvalidArgument(name_ + ": Mistral takes embedding inputs as text, not token ids");
    }
    json::array input;
    for (const std::vector<int64_t>& tokens : request.token_inputs) {
      json::array a;
      for (int64_t t : tokens) a.push_back(t);
      input.push_back(std::move(a));
    }
    body["input"] = std::move(input);
  }
  if (request.dimensions) {
    body[mistral() ? "output_dimension" : "dimensions"] = *request.dimensions;
  }
  body["encoding_format"] = "float";
  if (!request.user.empty() && !mistral()) body["user"] = request.user;
  return Post(target, "/embeddings", body, false);
}

Result<EmbeddingResponse> OpenAITranslator::DecodeEmbeddings(std::string_view body) const {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, name_ + " embeddings"));
  if (!root.is_object()) return DataLoss(name_ + ": embeddings answer is not a JSON object");
  const json::object& o = root.get_object();
  const json::array* data = ArrayField(o, "data");
  if (data == nullptr) return DataLoss(name_ + ": embeddings answer has no data array");
  EmbeddingResponse out;
  out.model = StringField(o, "model");
  out.vectors.resize(data->size());
  std::vector<bool> seen(data->size(), false);
  for (size_t i = 0; i < data->size(); ++i) {
    if (!(*data)[i].is_object()) return DataLoss(name_ + ": data[" + std::to_string(i) + "]");
    const json::object& item = (*data)[i].get_object();
    // Answers carry their input's index; a server that omits it answers in order.
    const int64_t index =
        item.contains("index") ? IntField(item, "index") : static_cast<int64_t>(i);
    if (index < 0 || static_cast<size_t>(index) >= data->size() || seen[index]) {
      return DataLoss(name_ + ": embeddings answer has a wrong or repeated index");
    }
    seen[index] = true;
    const json::value* v = item.if_contains("embedding");
    if (v == nullptr) return DataLoss(name_ + ": data[" + std::to_string(i) + "] has no embedding");
    IRIS_ASSIGN_OR_RETURN(
        out.vectors[index],
        api::DecodeEmbeddingVector(*v, name_ + ": data[" + std::to_string(i) + "].embedding"));
  }
  if (const json::object* u = ObjectField(o, "usage")) {
    out.usage.reported = true;
    out.usage.input_tokens = TokenCountField(*u, "prompt_tokens");
  }
  return out;
}

// --- Responses ---------------------------------------------------------------------------

// Text of a `content` that is a string, null, or an array of parts (Mistral's reasoning
// models send [{"type":"thinking",...},{"type":"text","text":...}]: thinking is dropped).
std::string ContentText(const json::value* content) {
  if (content == nullptr) return {};
  if (content->is_string()) return std::string(content->get_string());
  std::string text;
  if (content->is_array()) {
    for (const json::value& part : content->get_array()) {
      if (!part.is_object()) continue;
      const json::object& p = part.get_object();
      if (StringField(p, "type") == "text") text += StringField(p, "text");
    }
  }
  return text;
}

// Function arguments are a JSON string; some compatible servers send an object instead.
std::string Arguments(const json::object& fn) {
  const json::value* a = FindField(fn, "arguments");
  if (a == nullptr) return {};
  if (a->is_string()) return std::string(a->get_string());
  return SerializeJson(*a);
}

// What a chat answer's (or a chunk's) members are that iris reads itself; the others go back
// as they came to a caller in OpenAI's chat format (OpenAIExtras). `iris` is another
// gateway's report, which iris's own replaces.
constexpr std::string_view kReadAtTop[] = {"id",      "object", "created", "model",
                                           "choices", "usage",  "iris"};
constexpr std::string_view kReadInChoice[] = {"index", "message", "delta", "finish_reason"};
constexpr std::string_view kReadInMessage[] = {"role", "content", "refusal", "tool_calls"};
constexpr std::string_view kUsageCounts[] = {"prompt_tokens", "completion_tokens", "total_tokens"};
// A compatible server's members go back only where OpenAI documents them (and the reasoning
// text such servers stream beside the content): a server inside the operator's network may add
// what names its machines (vLLM's kv_transfer_params, say), which a caller must not learn.
constexpr std::string_view kCompatibleTop[] = {"system_fingerprint", "service_tier"};
constexpr std::string_view kCompatibleChoice[] = {"logprobs"};
constexpr std::string_view kCompatibleMessage[] = {"annotations", "audio", "reasoning_content",
                                                   "reasoning"};
constexpr std::string_view kCompatibleUsage[] = {"prompt_tokens_details",
                                                 "completion_tokens_details"};

bool IsOneOf(std::string_view key, std::span<const std::string_view> set) {
  return std::find(set.begin(), set.end(), key) != set.end();
}

// Copies the members of `from` that iris does not `read` (and, when `only` is not empty, that
// are in `only`) into `to` (the default storage).
void CopyOthers(const json::object& from, std::span<const std::string_view> read,
                std::span<const std::string_view> only, json::object& to) {
  for (const auto& kv : from) {
    if (IsOneOf(kv.key(), read)) continue;
    if (!only.empty() && !IsOneOf(kv.key(), only)) continue;
    to.emplace(kv.key(), kv.value());
  }
}

// The members of an answer (`top`, its first choice and that choice's message or delta) that
// iris does not read; null when there are none. The usage object is kept whole when it holds
// more than the three counts. OpenAI's and Mistral's own members all go back; a compatible
// server's only where OpenAI has them (`compatible`).
std::shared_ptr<const OpenAIExtras> ExtrasOf(const json::object& top, const json::object* choice,
                                             const json::object* message, bool compatible) {
  using Set = std::span<const std::string_view>;
  OpenAIExtras x;
  CopyOthers(top, kReadAtTop, compatible ? Set(kCompatibleTop) : Set(), x.top);
  if (choice != nullptr) {
    CopyOthers(*choice, kReadInChoice, compatible ? Set(kCompatibleChoice) : Set(), x.choice);
  }
  if (message != nullptr) {
    CopyOthers(*message, kReadInMessage, compatible ? Set(kCompatibleMessage) : Set(), x.message);
  }
  if (const json::object* u = ObjectField(top, "usage")) {
    bool more = false;
    for (const auto& kv : *u) more = more || !IsOneOf(kv.key(), kUsageCounts);
    if (more && compatible) {
      json::object kept;
      CopyOthers(*u, {}, kCompatibleUsage, kept);
      if (!kept.empty()) x.usage = std::move(kept);
    } else if (more) {
      x.usage = json::object(*u, json::storage_ptr());
    }
  }
  if (x.empty()) return nullptr;
  return std::make_shared<const OpenAIExtras>(std::move(x));
}

// The message of an in-band or 200-status `error` member, whatever its shape.
std::string ErrorMessage(const json::value& error) {
  if (error.is_string()) return std::string(error.get_string());
  if (error.is_object()) {
    std::string m = StringOrIntegerField(error.get_object(), "message");
    if (!m.empty()) return m;
  }
  return SerializeJson(error);
}

// An `{"error":...}` member or Mistral's flat `{"object":"error",...}`; nullopt otherwise.
std::optional<std::string> InBandError(const json::object& o) {
  if (const json::value* e = FindField(o, "error")) return ErrorMessage(*e);
  if (StringOrIntegerField(o, "object") == "error") {
    return StringOrIntegerField(o, "message", "unknown error");
  }
  return std::nullopt;
}

Result<ChatResponse> OpenAITranslator::DecodeResponse(std::string_view body) const {
  // The answer is read into strings and dropped here: parsed into scratch storage.
  JsonScratch scratch;
  Result<json::value> parsed = ParseJson(body, name_ + " response", scratch.storage());
  if (!parsed.ok()) return DataLoss(parsed.status().message());
  if (!parsed->is_object()) return DataLoss(name_ + " response: expected a JSON object");
  if (flavor_ == OpenAIFlavor::kOpenAI && IsResponsesObject(parsed->get_object())) {
    // (Kept whole in the answer: copied out of the scratch.)
    return DecodeResponsesObject(json::object(parsed->get_object(), json::storage_ptr()), name_);
  }
  const json::object& o = parsed->get_object();
  if (auto err = InBandError(o)) {
    return Status(ErrorCode::kUnavailable, name_ + " answered with an error: " + *err);
  }
  const json::array* choices = ArrayField(o, "choices");
  if (choices == nullptr || choices->empty() || !(*choices)[0].is_object()) {
    return DataLoss(name_ + " response has no choices");
  }
  const json::object& choice = (*choices)[0].get_object();
  const json::object* message = ObjectField(choice, "message");
  if (message == nullptr) return DataLoss(name_ + " response: choices[0].message is missing");
  const json::object& msg = *message;
  ChatResponse r;
  r.id = StringOrIntegerField(o, "id");
  r.model = StringOrIntegerField(o, "model");
  r.created = IntField(o, "created");
  r.text = ContentText(FindField(msg, "content"));
  if (r.text.empty()) {
    r.text = StringOrIntegerField(msg, "refusal");
    r.refused = !r.text.empty();
  }
  if (const json::array* calls = ArrayField(msg, "tool_calls")) {
    const json::array& a = *calls;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_object()) return DataLoss(name_ + " response: malformed tool_calls");
      const json::object& c = a[i].get_object();
      const json::object* fn = ObjectField(c, "function");
      if (fn == nullptr) return DataLoss(name_ + " response: tool call without a function");
      ToolCall call;
      call.id = StringOrIntegerField(c, "id", "call_" + std::to_string(i));
      call.name = StringOrIntegerField(*fn, "name");
      call.arguments = Arguments(*fn);
      if (call.arguments.empty()) call.arguments = "{}";
      r.tool_calls.push_back(std::move(call));
    }
  }
  std::string finish = StringOrIntegerField(choice, "finish_reason");
  if (finish == "error") {
    return Status(ErrorCode::kUnavailable,
                  name_ + " stopped the answer with finish_reason \"error\"");
  }
  r.finish_reason = finish.empty() && !r.tool_calls.empty() ? FinishReason::kToolCalls
                                                            : api::ParseOpenAIFinishReason(finish);
  if (const json::object* u = ObjectField(o, "usage")) r.usage = api::DecodeOpenAIUsage(*u);
  r.openai_extras = ExtrasOf(o, &choice, &msg, flavor_ == OpenAIFlavor::kCompatible);
  return r;
}

// --- Streams -----------------------------------------------------------------------------

class OpenAIStreamTranslator final : public StreamTranslator {
 public:
  // `responses`: the upstream is OpenAI itself, whose Responses API streams may come back.
  OpenAIStreamTranslator(std::string name, bool responses, bool compatible)
      : name_(std::move(name)), responses_ok_(responses), compatible_(compatible) {}

  Result<std::vector<StreamEvent>> OnEvent(const http::SseEvent& event) override;
  Result<std::vector<StreamEvent>> OnEnd() override;

 private:
  Status ToolCallDelta(const json::object& tc, std::vector<StreamEvent>& out);

  std::string name_;
  bool responses_ok_ = false;
  bool compatible_ = false;  // a compatible server's own members are kept as ExtrasOf says
  bool started_ = false;
  bool finished_ = false;
  bool done_ = false;
  std::string id_;
  int num_calls_ = 0;
  int last_call_ = -1;
  std::map<int64_t, int> by_index_;   // upstream tool_calls[].index -> ours
  std::map<std::string, int> by_id_;  // tool call id -> ours (Mistral sends no index)
  // A stream of OpenAI's Responses API (the answer to a Responses caller's body sent as is).
  std::unique_ptr<StreamTranslator> responses_;
};

Status OpenAIStreamTranslator::ToolCallDelta(const json::object& tc,
                                             std::vector<StreamEvent>& out) {
  const json::value* index = FindField(tc, "index");
  std::string id = StringOrIntegerField(tc, "id");
  const json::object* fn = ObjectField(tc, "function");
  int k = -1;
  bool is_new = false;
  if (index != nullptr && (index->is_int64() || index->is_uint64())) {
    int64_t upstream =
        index->is_int64() ? index->get_int64() : static_cast<int64_t>(index->get_uint64());
    auto it = by_index_.find(upstream);
    if (it != by_index_.end()) {
      k = it->second;
    } else {
      k = num_calls_++;
      by_index_[upstream] = k;
      is_new = true;
    }
  } else if (!id.empty()) {
    auto it = by_id_.find(id);
    if (it != by_id_.end()) {
      k = it->second;
    } else {
      k = num_calls_++;
      is_new = true;
    }
  } else if (last_call_ >= 0) {
    k = last_call_;
  } else {
    return DataLoss(name_ + ": a streamed tool call has neither index nor id");
  }
  if (is_new) {
    StreamEvent start;
    start.type = StreamEvent::Type::kToolCallStart;
    start.index = k;
    start.id = id.empty() ? "call_" + id_ + "_" + std::to_string(k) : id;
    start.name = fn ? StringOrIntegerField(*fn, "name") : std::string();
    by_id_[start.id] = k;
    out.push_back(std::move(start));
  }
  last_call_ = k;
  if (fn != nullptr) {
    std::string args = Arguments(*fn);
    if (!args.empty()) {
      StreamEvent delta;
      delta.type = StreamEvent::Type::kToolCallDelta;
      delta.index = k;
      delta.text = std::move(args);
      out.push_back(std::move(delta));
    }
  }
  return OkStatus();
}

Result<std::vector<StreamEvent>> OpenAIStreamTranslator::OnEvent(const http::SseEvent& event) {
  if (responses_ok_ && !started_ && responses_ == nullptr && IsResponsesStreamEvent(event)) {
    responses_ = NewResponsesStreamTranslator(name_);
  }
  if (responses_ != nullptr) return responses_->OnEvent(event);
  std::vector<StreamEvent> out;
  if (done_) return out;  // anything after [DONE] is ignored, as the SDKs do
  if (event.event == "error") {
    return Status(ErrorCode::kUnavailable, name_ + " reported an error mid-stream: " + event.data);
  }
  std::string_view data = event.data;
  while (!data.empty() && (data.back() == ' ' || data.back() == '\n')) data.remove_suffix(1);
  if (data.empty()) return out;
  if (data == "[DONE]") {
    done_ = true;
    if (!started_) return DataLoss(name_ + ": the stream ended ([DONE]) without any chunk");
    if (!finished_) {
      finished_ = true;
      StreamEvent e;
      e.type = StreamEvent::Type::kFinish;
      out.push_back(std::move(e));
    }
    return out;
  }
  JsonScratch scratch;  // (the chunk is read into events and dropped here)
  Result<json::value> parsed = ParseJson(data, name_ + " stream chunk", scratch.storage());
  if (!parsed.ok()) return DataLoss(parsed.status().message());
  if (!parsed->is_object()) return DataLoss(name_ + " stream chunk: expected a JSON object");
  const json::object& o = parsed->get_object();
  if (auto err = InBandError(o)) {
    return Status(ErrorCode::kUnavailable, name_ + " reported an error mid-stream: " + *err);
  }
  if (!started_) {
    started_ = true;
    StreamEvent start;
    start.type = StreamEvent::Type::kStart;
    start.id = id_ = StringOrIntegerField(o, "id");
    start.model = StringOrIntegerField(o, "model");
    start.created = IntField(o, "created");
    out.push_back(std::move(start));
  }
  std::optional<FinishReason> finish;
  const json::object* first_choice = nullptr;  // choices[0], and its delta
  const json::object* first_delta = nullptr;
  if (const json::array* choices = ArrayField(o, "choices")) {
    for (const json::value& cv : *choices) {
      if (!cv.is_object()) return DataLoss(name_ + " stream chunk: malformed choice");
      const json::object& choice = cv.get_object();
      if (IntField(choice, "index") != 0) continue;  // n = 1 is all iris asks for
      if (first_choice == nullptr) first_choice = &choice;
      if (const json::object* d = ObjectField(choice, "delta")) {
        const json::object& delta = *d;
        if (first_delta == nullptr) first_delta = &delta;
        std::string text = ContentText(FindField(delta, "content"));
        if (!text.empty()) {
          StreamEvent e;
          e.type = StreamEvent::Type::kTextDelta;
          e.text = std::move(text);
          out.push_back(std::move(e));
        }
        std::string refusal = StringField(delta, "refusal");
        if (!refusal.empty()) {
          StreamEvent e;
          e.type = StreamEvent::Type::kTextDelta;
          e.text = std::move(refusal);
          e.refusal = true;
          out.push_back(std::move(e));
        }
        if (const json::array* calls = ArrayField(delta, "tool_calls")) {
          for (const json::value& tc : *calls) {
            if (!tc.is_object()) return DataLoss(name_ + " stream chunk: malformed tool call");
            IRIS_RETURN_IF_ERROR(ToolCallDelta(tc.get_object(), out));
          }
        }
      }
      std::string reason = StringOrIntegerField(choice, "finish_reason");
      if (reason == "error") {
        return Status(ErrorCode::kUnavailable,
                      name_ + " stopped the answer with finish_reason \"error\"");
      }
      if (!reason.empty()) finish = api::ParseOpenAIFinishReason(reason);
    }
  }
  if (finish && !finished_) {
    finished_ = true;
    StreamEvent e;
    e.type = StreamEvent::Type::kFinish;
    e.finish_reason = *finish;
    out.push_back(std::move(e));
  }
  const json::value* usage = FindField(o, "usage");
  if (usage == nullptr) {  // Groq reports usage under x_groq on its last chunk
    if (const json::object* xg = ObjectField(o, "x_groq")) usage = FindField(*xg, "usage");
  }
  if (usage != nullptr && usage->is_object()) {
    StreamEvent e;
    e.type = StreamEvent::Type::kUsage;
    e.usage = api::DecodeOpenAIUsage(usage->get_object());
    out.push_back(std::move(e));
  }
  if (auto extras = ExtrasOf(o, first_choice, first_delta, compatible_)) {
    // On the chunk's first event of the answer's content: an OpenAI caller's chunk made of it
    // carries them. Without one, a delta's own members that hold something (reasoning text)
    // go on an event of their own; the rest on the chunk's first event.
    auto carrier = std::find_if(out.begin(), out.end(), [](const StreamEvent& e) {
      return e.type == StreamEvent::Type::kTextDelta ||
             e.type == StreamEvent::Type::kToolCallStart ||
             e.type == StreamEvent::Type::kToolCallDelta;
    });
    if (carrier == out.end() && (out.empty() || extras->MessageHoldsSomething())) {
      out.emplace_back().type = StreamEvent::Type::kExtras;
      carrier = out.end() - 1;
    } else if (carrier == out.end()) {
      carrier = out.begin();
    }
    carrier->openai_extras = std::move(extras);
  }
  return out;
}

Result<std::vector<StreamEvent>> OpenAIStreamTranslator::OnEnd() {
  if (responses_ != nullptr) return responses_->OnEnd();
  if (done_ || finished_) return std::vector<StreamEvent>();
  return DataLoss(name_ +
                  ": the stream ended before [DONE] and without a finish_reason; "
                  "the answer is truncated");
}

std::unique_ptr<StreamTranslator> OpenAITranslator::NewStreamTranslator() const {
  return std::make_unique<OpenAIStreamTranslator>(name_, flavor_ == OpenAIFlavor::kOpenAI,
                                                  flavor_ == OpenAIFlavor::kCompatible);
}

// --- Errors ------------------------------------------------------------------------------

struct ErrorFields {
  std::string message;
  std::string type;
  std::string code;
  std::string param;
};

// Reads the error bodies OpenAI-shaped servers send: {"error":{...}}, {"error":"..."},
// Mistral's flat {"object":"error",...}, {"detail":"..."}, FastAPI's {"detail":[{loc,msg}]},
// {"message":...}, or a one-element array of any of these (anything else is quoted by
// MakeUpstreamError).
ErrorFields ParseErrorBody(std::string_view body) {
  ErrorFields f;
  Result<json::value> parsed = ParseJson(body, "error body");
  const json::value* v = parsed.ok() ? &*parsed : nullptr;
  if (v != nullptr && v->is_array() && !v->get_array().empty()) v = &v->get_array()[0];
  if (v != nullptr && v->is_object()) {
    const json::object* o = &v->get_object();
    if (const json::value* e = FindField(*o, "error")) {
      if (e->is_string()) {
        f.message = e->get_string();
        return f;
      }
      if (e->is_object()) o = &e->get_object();
    }
    f.message = StringOrIntegerField(*o, "message");
    f.type = StringOrIntegerField(*o, "type");
    f.code = StringOrIntegerField(*o, "code");
    f.param = StringOrIntegerField(*o, "param");
    if (const json::value* d = FindField(*o, "detail"); d && f.message.empty()) {
      if (d->is_string()) {
        f.message = d->get_string();
      } else if (d->is_array()) {
        for (const json::value& item : d->get_array()) {
          if (!item.is_object()) continue;
          std::string loc;
          if (const json::array* l = ArrayField(item.get_object(), "loc")) {
            for (const json::value& part : *l) {
              if (!loc.empty()) loc += ".";
              loc += part.is_string() ? std::string(part.get_string()) : SerializeJson(part);
            }
          }
          if (!f.message.empty()) f.message += "; ";
          f.message +=
              (loc.empty() ? "" : loc + ": ") + StringOrIntegerField(item.get_object(), "msg");
        }
      }
    }
  }
  return f;
}

GatewayError OpenAITranslator::DecodeError(int status, std::string_view body,
                                           std::string_view retry_after) const {
  ErrorFields f = ParseErrorBody(body);
  const ProviderKind kind = KindOf(flavor_);
  UpstreamErrorBody b;
  b.signal = SignalOf(kind, f.code);
  if (b.signal == ErrorSignal::kNone) b.signal = SignalOf(kind, f.type);
  b.message = std::move(f.message);
  b.code = std::move(f.code);
  b.param = std::move(f.param);
  b.text = body;
  return MakeUpstreamError(name_, status, std::move(b), retry_after);
}

}  // namespace

std::unique_ptr<Translator> MakeOpenAITranslator(OpenAIFlavor flavor, std::string provider_name) {
  if (provider_name.empty()) {
    provider_name = std::string(ProviderKindName(KindOf(flavor)));
  }
  return std::make_unique<OpenAITranslator>(flavor, std::move(provider_name));
}

}  // namespace iris::gateway::providers
