// Gemini upstream translator: contents/parts encoding with function-name recovery and
// schema cleaning, and decoding of responses, chunk streams and google.rpc.Status errors.
#include "gateway/providers/gemini/gemini_translator.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <set>
#include <utility>

#include "base/json.h"
#include "gateway/api/embeddings.h"
#include "gateway/api/identifiers.h"
#include "gateway/api/json_fields.h"
#include "gateway/providers/provider_table.h"

namespace iris::gateway::providers {
namespace {

namespace json = boost::json;
using api::ArrayField;
using api::BoolField;
using api::IntField;
using api::ObjectField;
using api::StringField;
using api::TokenCountField;

constexpr size_t kMaxStopSequences = 5;
constexpr std::string_view kFilesApiPrefix = "https://generativelanguage.googleapis.com/";

Status UnsupportedByGemini(std::string what) {
  return InvalidArgument("gemini: " + std::move(what));
}

// ---- schema cleaning -------------------------------------------------------------------

bool KeptKeyword(std::string_view key) {
  static const std::set<std::string_view> kKept = {
      "type",      "format",   "title",         "description",   "nullable", "enum",
      "items",     "minItems", "maxItems",      "minimum",       "maximum",  "minLength",
      "maxLength", "pattern",  "minProperties", "maxProperties", "default",  "propertyOrdering",
      "example"};
  return kKept.count(key) != 0;
}

class SchemaCleaner {
 public:
  explicit SchemaCleaner(const json::value& root) : root_(root) {}

  Result<json::value> Clean(const json::value& v) {
    if (!v.is_object()) return v;  // `true` / `false` schemas and garbage pass as they are
    const json::object& in = v.get_object();
    if (const json::value* ref = in.if_contains("$ref")) {
      if (!ref->is_string()) return UnsupportedByGemini("schema: $ref must be a string");
      std::string name(ref->get_string());
      if (active_.count(name) != 0) {
        return UnsupportedByGemini("schema: recursive $ref '" + name +
                                   "' cannot be sent to Gemini");
      }
      IRIS_ASSIGN_OR_RETURN(const json::value* target, Resolve(name));
      active_.insert(name);
      Result<json::value> out = Clean(*target);
      active_.erase(name);
      return out;
    }
    json::object out;
    for (const auto& [key, value] : in) {
      if (KeptKeyword(key)) out[key] = value;
    }
    if (const json::value* c = in.if_contains("const"); c != nullptr && !in.contains("enum")) {
      out["enum"] = json::array{*c};
    }
    if (const json::value* t = in.if_contains("type"); t != nullptr && t->is_array()) {
      json::array types;
      bool nullable = false;
      for (const json::value& ty : t->get_array()) {
        if (ty.is_string() && ty.get_string() == "null") {
          nullable = true;
        } else {
          types.push_back(ty);
        }
      }
      out.erase("type");
      if (nullable) out["nullable"] = true;
      if (types.size() == 1) {
        out["type"] = types[0];
      } else if (types.size() > 1) {
        json::array any;
        for (const json::value& ty : types) any.push_back(json::object{{"type", ty}});
        out["anyOf"] = std::move(any);
      }
    }
    if (const json::object* props = ObjectField(in, "properties")) {
      json::object cleaned;
      for (const auto& [name, sub] : *props) {
        IRIS_ASSIGN_OR_RETURN(cleaned[name], Clean(sub));
      }
      out["properties"] = std::move(cleaned);
    }
    if (const json::array* req = ArrayField(in, "required")) out["required"] = *req;
    if (const json::value* items = in.if_contains("items"); items != nullptr) {
      IRIS_ASSIGN_OR_RETURN(out["items"], Clean(*items));
    }
    for (std::string_view key : {"anyOf", "oneOf"}) {
      const json::array* alts = ArrayField(in, key);
      if (alts == nullptr) continue;
      json::array cleaned;
      for (const json::value& alt : *alts) {
        IRIS_ASSIGN_OR_RETURN(json::value c, Clean(alt));
        // {"type":"null"} alternatives become `nullable` on the schema itself.
        if (c.is_object() && c.get_object().size() == 1 &&
            StringField(c.get_object(), "type") == "null") {
          out["nullable"] = true;
          continue;
        }
        cleaned.push_back(std::move(c));
      }
      if (cleaned.size() == 1 && cleaned[0].is_object() && !out.contains("type")) {
        for (auto& [k, val] : cleaned[0].get_object()) out[k] = val;
      } else if (!cleaned.empty()) {
        out["anyOf"] = std::move(cleaned);
      }
    }
    return json::value(std::move(out));
  }

 private:
  Result<const json::value*> Resolve(const std::string& ref) {
    for (std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
      if (ref.rfind(prefix, 0) != 0 || !root_.is_object()) continue;
      std::string_view container = prefix.substr(2, prefix.size() - 3);
      const json::object* defs = ObjectField(root_.get_object(), container);
      if (defs == nullptr) break;
      if (const json::value* t = defs->if_contains(ref.substr(prefix.size()))) return t;
      break;
    }
    return UnsupportedByGemini("schema: cannot resolve $ref '" + ref + "' (only local $defs)");
  }

  const json::value& root_;
  std::set<std::string> active_;  // $refs being expanded (recursion guard)
};

bool IsEmptyObjectSchema(const json::value& v) {
  if (!v.is_object()) return true;
  const json::object& o = v.get_object();
  const json::object* props = ObjectField(o, "properties");
  return StringField(o, "type") == "object" && (props == nullptr || props->empty());
}

// ---- request encoding ------------------------------------------------------------------

struct Content {
  std::string role;  // "user" or "model"
  json::array parts;
};

Result<json::object> ImagePart(const ContentPart& p) {
  if (!p.data_base64.empty()) {
    if (p.media_type.empty()) return UnsupportedByGemini("inline image data needs a media type");
    return json::object{{"inlineData", {{"mimeType", p.media_type}, {"data", p.data_base64}}}};
  }
  if (p.url.rfind(kFilesApiPrefix, 0) == 0) {
    json::object file{{"fileUri", p.url}};
    if (!p.media_type.empty()) file["mimeType"] = p.media_type;
    return json::object{{"fileData", std::move(file)}};
  }
  return UnsupportedByGemini(
      "image URLs are not sent to Gemini (it only reads its own Files API URIs); the image "
      "must be fetched and sent as inline base64 data");
}

Result<json::array> Parts(const Message& m) {
  json::array parts;
  for (const ContentPart& p : m.content) {
    if (p.type == ContentPart::Type::kText) {
      if (!p.text.empty()) parts.push_back(json::object{{"text", p.text}});
    } else {
      IRIS_ASSIGN_OR_RETURN(json::object part, ImagePart(p));
      parts.push_back(std::move(part));
    }
  }
  return parts;
}

void AppendContent(std::vector<Content>& contents, Content c) {
  if (c.parts.empty()) return;
  if (!contents.empty() && contents.back().role == c.role) {
    for (json::value& p : c.parts) contents.back().parts.push_back(std::move(p));
  } else {
    contents.push_back(std::move(c));
  }
}

void GenerationConfig(const ChatRequest& r, json::object& config) {
  if (r.temperature) config["temperature"] = *r.temperature;
  if (r.top_p) config["topP"] = *r.top_p;
  if (r.top_k) config["topK"] = *r.top_k;
  if (r.max_tokens) config["maxOutputTokens"] = *r.max_tokens;
  if (!r.stop.empty()) {
    json::array stops;
    for (const std::string& s : r.stop) stops.push_back(json::string(s));
    config["stopSequences"] = std::move(stops);
  }
  if (r.seed) config["seed"] = *r.seed;
  if (r.presence_penalty) config["presencePenalty"] = *r.presence_penalty;
  if (r.frequency_penalty) config["frequencyPenalty"] = *r.frequency_penalty;
}

// ---- response decoding -----------------------------------------------------------------

FinishReason MapFinishReason(std::string_view reason, bool saw_function_call) {
  if (reason == "MAX_TOKENS") return FinishReason::kLength;
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
      reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "LANGUAGE" ||
      reason.rfind("IMAGE_", 0) == 0) {
    return FinishReason::kContentFilter;
  }
  // STOP, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, OTHER, ...
  return saw_function_call ? FinishReason::kToolCalls : FinishReason::kStop;
}

Usage DecodeGeminiUsage(const json::object& m) {
  Usage u;
  u.reported = true;
  u.input_tokens =
      TokenCountField(m, "promptTokenCount") + TokenCountField(m, "toolUsePromptTokenCount");
  u.cached_input_tokens = TokenCountField(m, "cachedContentTokenCount");
  u.reasoning_tokens = TokenCountField(m, "thoughtsTokenCount");
  u.output_tokens = TokenCountField(m, "candidatesTokenCount") + u.reasoning_tokens;
  return u;
}

std::string SafeIdPart(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  return out;
}

// The id handed to the caller for the n-th function call of an answer.
std::string ToolCallId(const json::object& call, std::string_view response_id, int n) {
  std::string id = StringField(call, "id");
  if (!id.empty()) return id;
  return "call_" + (response_id.empty() ? std::string("gemini") : SafeIdPart(response_id)) + "_" +
         std::to_string(n);
}

// The parts and finish reason of candidates[0], or the prompt's block reason.
struct CandidateView {
  const json::array* parts = nullptr;
  std::string finish_reason;
  std::string block_reason;  // promptFeedback.blockReason when the prompt was blocked
};

CandidateView FirstCandidate(const json::object& o) {
  CandidateView view;
  const json::array* cands = ArrayField(o, "candidates");
  if (cands != nullptr && !cands->empty() && (*cands)[0].is_object()) {
    const json::object& c = (*cands)[0].get_object();
    view.finish_reason = StringField(c, "finishReason");
    if (const json::object* content = ObjectField(c, "content")) {
      view.parts = ArrayField(*content, "parts");
    }
  } else if (const json::object* fb = ObjectField(o, "promptFeedback")) {
    view.block_reason = StringField(*fb, "blockReason");
  }
  return view;
}

class GeminiStreamTranslator : public StreamTranslator {
 public:
  Result<std::vector<StreamEvent>> OnEvent(const http::SseEvent& event) override {
    std::vector<StreamEvent> out;
    if (finished_) return out;
    IRIS_ASSIGN_OR_RETURN(json::object o,
                          ParseUpstreamObject("gemini", event.data, "stream chunk"));
    if (const json::object* err = ObjectField(o, "error")) {
      return Status(ErrorCode::kUnavailable, "gemini: stream error " + StringField(*err, "status") +
                                                 ": " + StringField(*err, "message"));
    }
    if (!started_) {
      started_ = true;
      response_id_ = StringField(o, "responseId");
      StreamEvent start;
      start.type = StreamEvent::Type::kStart;
      start.id = response_id_;
      start.model = StringField(o, "modelVersion");
      out.push_back(std::move(start));
      // Usage is cumulative on every chunk; the first one already knows the prompt size.
      if (const json::object* u = ObjectField(o, "usageMetadata")) {
        StreamEvent usage;
        usage.type = StreamEvent::Type::kUsage;
        usage.usage = DecodeGeminiUsage(*u);
        out.push_back(std::move(usage));
      }
    }
    if (const json::object* u = ObjectField(o, "usageMetadata")) usage_ = DecodeGeminiUsage(*u);
    CandidateView view = FirstCandidate(o);
    if (view.parts != nullptr) {
      for (const json::value& pv : *view.parts) {
        if (!pv.is_object()) continue;
        const json::object& part = pv.get_object();
        if (const json::object* call = ObjectField(part, "functionCall")) {
          StreamEvent s;
          s.type = StreamEvent::Type::kToolCallStart;
          s.index = next_tool_;
          s.id = ToolCallId(*call, response_id_, next_tool_);
          s.name = StringField(*call, "name");
          s.signature = StringField(part, "thoughtSignature");
          StreamEvent d;
          d.type = StreamEvent::Type::kToolCallDelta;
          d.index = next_tool_++;
          const json::value* args = call->if_contains("args");
          d.text = args != nullptr ? SerializeJson(*args) : "{}";
          out.push_back(std::move(s));
          out.push_back(std::move(d));
        } else if (const json::value* t = part.if_contains("text");
                   t != nullptr && t->is_string() && !t->get_string().empty()) {
          if (BoolField(part, "thought")) continue;
          StreamEvent e;
          e.type = StreamEvent::Type::kTextDelta;
          e.text = std::string(t->get_string());
          out.push_back(std::move(e));
        }
      }
    }
    if (!view.finish_reason.empty() || !view.block_reason.empty()) {
      finished_ = true;
      StreamEvent fin;
      fin.type = StreamEvent::Type::kFinish;
      fin.finish_reason = view.finish_reason.empty()
                              ? FinishReason::kContentFilter
                              : MapFinishReason(view.finish_reason, next_tool_ > 0);
      out.push_back(std::move(fin));
      if (usage_.reported) {
        StreamEvent u;
        u.type = StreamEvent::Type::kUsage;
        u.usage = usage_;
        out.push_back(std::move(u));
      }
    }
    return out;
  }

  Result<std::vector<StreamEvent>> OnEnd() override {
    if (!finished_) {
      return DataLoss("gemini: the stream ended without a finishReason (truncated answer)");
    }
    return std::vector<StreamEvent>{};
  }

 private:
  bool started_ = false;
  bool finished_ = false;
  int next_tool_ = 0;
  std::string response_id_;
  Usage usage_;
};

double ParseSeconds(std::string_view s) {
  if (!s.empty() && s.back() == 's') s.remove_suffix(1);
  double v = -1;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return (ec == std::errc() && p == s.data() + s.size()) ? v : -1;
}

class GeminiTranslator : public Translator {
 public:
  explicit GeminiTranslator(std::string name) : name_(std::move(name)) {}

  Result<UpstreamRequest> EncodeRequest(const ChatRequest& r,
                                        const TargetInfo& target) const override {
    json::object body;
    json::array system_parts;
    std::vector<Content> contents;
    std::map<std::string, std::string> call_names;  // tool_call_id -> function name
    bool gemini3 = target.model.rfind("gemini-3", 0) == 0;
    for (size_t i = 0; i < r.messages.size(); ++i) {
      const Message& m = r.messages[i];
      switch (m.role) {
        case Role::kSystem:
          for (const ContentPart& p : m.content) {
            if (p.type != ContentPart::Type::kText) {
              return UnsupportedByGemini("system messages may only hold text");
            }
            if (!p.text.empty()) system_parts.push_back(json::object{{"text", p.text}});
          }
          break;
        case Role::kUser: {
          Content c{"user", {}};
          IRIS_ASSIGN_OR_RETURN(c.parts, Parts(m));
          AppendContent(contents, std::move(c));
          break;
        }
        case Role::kAssistant: {
          Content c{"model", {}};
          IRIS_ASSIGN_OR_RETURN(c.parts, Parts(m));
          for (size_t j = 0; j < m.tool_calls.size(); ++j) {
            const ToolCall& call = m.tool_calls[j];
            Result<json::object> args = ToolCallArgumentsObject(call, i, j);
            if (!args.ok()) return UnsupportedByGemini(args.status().message());
            call_names[call.id] = call.name;
            json::object part{{"functionCall", {{"name", call.name}, {"args", std::move(*args)}}}};
            // The signature Gemini gave the call; Gemini 3 refuses a call without one, so a
            // call iris has none for (made by another provider, or kept no longer) carries
            // the documented stand-in.
            if (!call.signature.empty()) {
              part["thoughtSignature"] = call.signature;
            } else if (gemini3) {
              part["thoughtSignature"] = "skip_thought_signature_validator";
            }
            c.parts.push_back(std::move(part));
          }
          AppendContent(contents, std::move(c));
          break;
        }
        case Role::kTool: {
          auto it = call_names.find(m.tool_call_id);
          if (it == call_names.end()) {
            return UnsupportedByGemini("messages[" + std::to_string(i) +
                                       "]: the tool result for call '" + m.tool_call_id +
                                       "' answers no earlier assistant tool call (Gemini needs the "
                                       "function's name)");
          }
          std::string text;
          for (const ContentPart& p : m.content) {
            if (p.type != ContentPart::Type::kText) {
              return UnsupportedByGemini("tool results may only hold text");
            }
            text += p.text;
          }
          json::object response{{m.is_error ? "error" : "output", text}};
          Content c{"user", {}};
          c.parts.push_back(json::object{
              {"functionResponse", {{"name", it->second}, {"response", std::move(response)}}}});
          AppendContent(contents, std::move(c));
          break;
        }
      }
    }
    if (contents.empty())
      return UnsupportedByGemini("the request has no user or assistant content");
    if (!system_parts.empty()) body["systemInstruction"] = {{"parts", std::move(system_parts)}};
    json::array contents_json;
    for (Content& c : contents) {
      contents_json.push_back(json::object{{"role", c.role}, {"parts", std::move(c.parts)}});
    }
    body["contents"] = std::move(contents_json);

    if (!r.tools.empty()) {
      json::array decls;
      for (const Tool& t : r.tools) {
        json::object d{{"name", t.name}};
        if (!t.description.empty()) d["description"] = t.description;
        if (!t.parameters.is_null() && !IsEmptyObjectSchema(t.parameters)) {
          Result<json::value> cleaned = CleanSchemaForGemini(t.parameters);
          if (!cleaned.ok()) return cleaned.status().WithContext("tool '" + t.name + "'");
          d["parameters"] = std::move(*cleaned);
        }
        decls.push_back(std::move(d));
      }
      body["tools"] = json::array{json::object{{"functionDeclarations", std::move(decls)}}};
    }
    if (r.tool_choice) {
      json::object fcc;
      switch (r.tool_choice->mode) {
        case ToolChoice::Mode::kAuto:
          fcc["mode"] = "AUTO";
          break;
        case ToolChoice::Mode::kNone:
          fcc["mode"] = "NONE";
          break;
        case ToolChoice::Mode::kRequired:
          fcc["mode"] = "ANY";
          break;
        case ToolChoice::Mode::kTool:
          fcc["mode"] = "ANY";
          fcc["allowedFunctionNames"] = json::array{json::string(r.tool_choice->name)};
          break;
      }
      body["toolConfig"] = {{"functionCallingConfig", std::move(fcc)}};
    }

    if (r.stop.size() > kMaxStopSequences) {
      return UnsupportedByGemini("at most 5 stop sequences are accepted, got " +
                                 std::to_string(r.stop.size()));
    }
    json::object config;
    (void)GenerationConfig(r, config);
    if (r.response_format && r.response_format->type != ResponseFormat::Type::kText) {
      config["responseMimeType"] = "application/json";
      if (r.response_format->type == ResponseFormat::Type::kJsonSchema &&
          !r.response_format->schema.is_null()) {
        Result<json::value> cleaned = CleanSchemaForGemini(r.response_format->schema);
        if (!cleaned.ok()) return cleaned.status().WithContext("response_format");
        config["responseSchema"] = std::move(*cleaned);
      }
    }
    if (const std::optional<int64_t> budget = RequestedThinkingBudget(r)) {
      // Gemini 3 takes a thinking level, 2.5 a budget (0 turns thinking off where it can be).
      config["thinkingConfig"] =
          gemini3 ? json::object{{"thinkingLevel",
                                  *budget <= ThinkingBudgetForEffort("low") ? "low" : "high"}}
                  : json::object{{"thinkingBudget", *budget}};
    }
    if (!config.empty()) body["generationConfig"] = std::move(config);

    UpstreamRequest req;
    // The model is one path segment whatever it holds: '/', '?', '#' or ':' cannot change the
    // path, add a query or pick another method.
    req.url = target.base_url + "/models/" + api::EncodePathSegment(target.model) +
              (r.stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    req.headers = {{"x-goog-api-key", target.api_key}, {"content-type", "application/json"}};
    req.body = SerializeJson(body);
    req.dropped = r.extra_fields;  // (no caller speaks Gemini's wire format)
    // (Gemini caches prompts by itself; an explicit breakpoint has no place.)
    if (HasCacheMarks(r)) api::AddFieldName(req.dropped, "cache_control");
    return req;
  }

  Result<ChatResponse> DecodeResponse(std::string_view body) const override {
    IRIS_ASSIGN_OR_RETURN(json::object o, ParseUpstreamObject("gemini", body, "response body"));
    ChatResponse resp;
    resp.id = StringField(o, "responseId");
    resp.model = StringField(o, "modelVersion");
    CandidateView view = FirstCandidate(o);
    if (view.parts == nullptr && view.finish_reason.empty() && view.block_reason.empty()) {
      return DataLoss("gemini: response has neither candidates nor promptFeedback");
    }
    if (view.parts != nullptr) {
      for (const json::value& pv : *view.parts) {
        if (!pv.is_object()) continue;
        const json::object& part = pv.get_object();
        if (const json::object* call = ObjectField(part, "functionCall")) {
          ToolCall tc;
          tc.id = ToolCallId(*call, resp.id, static_cast<int>(resp.tool_calls.size()));
          tc.name = StringField(*call, "name");
          tc.signature = StringField(part, "thoughtSignature");
          const json::value* args = call->if_contains("args");
          tc.arguments = args != nullptr ? SerializeJson(*args) : "{}";
          resp.tool_calls.push_back(std::move(tc));
        } else if (part.contains("text")) {
          if (BoolField(part, "thought")) continue;
          resp.text += StringField(part, "text");
        }
      }
    }
    resp.finish_reason = view.finish_reason.empty() && !view.block_reason.empty()
                             ? FinishReason::kContentFilter
                             : MapFinishReason(view.finish_reason, !resp.tool_calls.empty());
    if (const json::object* u = ObjectField(o, "usageMetadata")) resp.usage = DecodeGeminiUsage(*u);
    return resp;
  }

  std::unique_ptr<StreamTranslator> NewStreamTranslator() const override {
    return std::make_unique<GeminiStreamTranslator>();
  }

  // batchEmbedContents: one request per input (protocols.md §3.6).
  Result<UpstreamRequest> EncodeEmbeddings(const EmbeddingRequest& r,
                                           const TargetInfo& target) const override {
    if (r.texts.empty()) {
      return UnsupportedByGemini("Gemini takes embedding inputs as text, not token ids");
    }
    const std::string model = "models/" + target.model;
    json::array requests;
    for (const std::string& text : r.texts) {
      json::object one{
          {"model", model},
          {"content", json::object{{"parts", json::array{json::object{{"text", text}}}}}}};
      if (r.dimensions) one["outputDimensionality"] = *r.dimensions;
      requests.push_back(std::move(one));
    }
    UpstreamRequest req;
    req.url =
        target.base_url + "/models/" + api::EncodePathSegment(target.model) + ":batchEmbedContents";
    req.headers = {{"x-goog-api-key", target.api_key}, {"content-type", "application/json"}};
    req.body = SerializeJson(json::object{{"requests", std::move(requests)}});
    return req;
  }

  Result<EmbeddingResponse> DecodeEmbeddings(std::string_view body) const override {
    IRIS_ASSIGN_OR_RETURN(json::object o, ParseUpstreamObject("gemini", body, "embeddings body"));
    const json::array* embeddings = ArrayField(o, "embeddings");
    if (embeddings == nullptr) return DataLoss("gemini: embeddings answer has no embeddings");
    EmbeddingResponse out;
    for (size_t i = 0; i < embeddings->size(); ++i) {
      const std::string path = "gemini: embeddings[" + std::to_string(i) + "]";
      const json::value& e = (*embeddings)[i];
      const json::value* values = e.is_object() ? e.get_object().if_contains("values") : nullptr;
      if (values == nullptr) return DataLoss(path + " has no values");
      IRIS_ASSIGN_OR_RETURN(std::vector<float> v, api::DecodeEmbeddingVector(*values, path));
      out.vectors.push_back(std::move(v));
    }
    // Gemini reports no token usage for embeddings: the cost stays unknown, not guessed.
    return out;
  }

  GatewayError DecodeError(int status, std::string_view body,
                           std::string_view retry_after) const override {
    UpstreamErrorBody b;
    std::optional<double> body_retry;
    bool key_invalid = false;
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    // Some Google front ends wrap the error in a one-element array.
    if (!ec && v.is_array() && !v.get_array().empty()) v = v.get_array()[0];
    if (!ec && v.is_object()) {
      if (const json::object* err = ObjectField(v.get_object(), "error")) {
        b.code = StringField(*err, "status");
        b.message = StringField(*err, "message");
        if (const json::array* details = ArrayField(*err, "details")) {
          for (const json::value& d : *details) {
            if (!d.is_object()) continue;
            const std::string reason = StringField(d.get_object(), "reason");
            if (SignalOf(ProviderKind::kGemini, reason) == ErrorSignal::kKeyRejected) {
              key_invalid = true;
            }
            double delay = ParseSeconds(StringField(d.get_object(), "retryDelay"));
            if (delay >= 0) body_retry = delay;
          }
        }
      }
    }
    b.signal = key_invalid ? ErrorSignal::kKeyRejected : SignalOf(ProviderKind::kGemini, b.code);
    b.text = body;
    return MakeUpstreamError(name_, status, std::move(b), retry_after, body_retry);
  }

 private:
  std::string name_;
};

}  // namespace

Result<json::value> CleanSchemaForGemini(const json::value& schema) {
  SchemaCleaner cleaner(schema);
  return cleaner.Clean(schema);
}

std::unique_ptr<Translator> MakeGeminiTranslator(std::string provider_name) {
  return std::make_unique<GeminiTranslator>(std::move(provider_name));
}

}  // namespace iris::gateway::providers
