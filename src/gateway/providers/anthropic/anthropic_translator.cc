// Anthropic Messages upstream translator: request encoding with Anthropic's conversation
// rules (system lifted, roles alternating, tool blocks), response/stream/error decoding.
#include "gateway/providers/anthropic/anthropic_translator.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "base/json.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/json_schema.h"
#include "gateway/providers/provider_table.h"
#include "gateway/providers/relay.h"

namespace iris::gateway::providers {
namespace {

namespace json = boost::json;
using api::ArrayField;
using api::IntField;
using api::ObjectField;
using api::StringField;
using api::TokenCountField;

constexpr std::string_view kProvider = "anthropic";
constexpr int64_t kDefaultMaxTokens = 8192;
// Server tools' blocks a stream may hold open at once (a real answer has one or two).
constexpr size_t kMaxOpenOtherBlocks = 256;

// Output ceilings from protocols.md §5.8 (vercel/ai capability table), most specific first.
struct ModelCeiling {
  std::string_view prefix;
  int64_t max_tokens;
};
constexpr ModelCeiling kCeilings[] = {
    {"claude-opus-4-5", 128000}, {"claude-opus-4-6", 128000},  {"claude-sonnet-4-6", 128000},
    {"claude-opus-4-1", 32000},  {"claude-opus-4", 32000},     {"claude-sonnet-4", 64000},
    {"claude-haiku-4", 64000},   {"claude-3-7-sonnet", 64000}, {"claude-3-5-sonnet", 8192},
    {"claude-3-5-haiku", 8192},  {"claude-3-haiku", 4096},     {"claude-3-opus", 4096},
    {"claude-opus-5", 128000},   {"claude-sonnet-5", 128000},  {"claude-haiku-5", 128000},
};

std::optional<int64_t> Ceiling(std::string_view model) {
  for (const ModelCeiling& c : kCeilings) {
    if (model.substr(0, c.prefix.size()) == c.prefix) return c.max_tokens;
  }
  return std::nullopt;
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

Status UnsupportedByAnthropic(std::string what) {
  return InvalidArgument("anthropic: " + std::move(what));
}

Result<json::object> ImageBlock(const ContentPart& part) {
  json::object source;
  if (!part.data_base64.empty()) {
    static constexpr std::string_view kTypes[] = {"image/jpeg", "image/png", "image/gif",
                                                  "image/webp"};
    if (std::find(std::begin(kTypes), std::end(kTypes), part.media_type) == std::end(kTypes)) {
      return UnsupportedByAnthropic(
          "image media type '" + part.media_type +
          "' is not accepted (image/jpeg, image/png, image/gif, image/webp)");
    }
    source["type"] = "base64";
    source["media_type"] = part.media_type;
    source["data"] = part.data_base64;
  } else if (part.url.rfind("https://", 0) == 0 || part.url.rfind("http://", 0) == 0) {
    source["type"] = "url";
    source["url"] = part.url;
  } else {
    return UnsupportedByAnthropic("images must be inline base64 data or an http(s) URL");
  }
  json::object block;
  block["type"] = "image";
  block["source"] = std::move(source);
  return block;
}

json::object TextBlock(std::string_view text) {
  json::object b;
  b["type"] = "text";
  b["text"] = text;
  return b;
}

// A caller's cache breakpoint on a block.
void MarkCache(json::object& block, const std::optional<CacheMark>& mark) {
  if (!mark) return;
  json::object c{{"type", "ephemeral"}};
  if (!mark->ttl.empty()) c["ttl"] = mark->ttl;
  block["cache_control"] = std::move(c);
}

// Anthropic takes at most this many cache breakpoints in a request.
constexpr size_t kMaxCacheBreakpoints = 4;

// Keeps the last `keep` cache breakpoints on a body's blocks (tools, then system, then
// messages: the order the prompt is cached in), which cache the longest prefixes; false when
// some were removed.
bool KeepLastCacheBreakpoints(json::object& body, size_t keep) {
  std::vector<json::object*> marked;
  auto visit = [&marked](json::value* blocks) {
    if (blocks == nullptr || !blocks->is_array()) return;
    for (json::value& b : blocks->get_array()) {
      if (!b.is_object()) continue;
      if (b.get_object().contains("cache_control")) marked.push_back(&b.get_object());
    }
  };
  visit(body.if_contains("tools"));
  visit(body.if_contains("system"));
  if (json::value* messages = body.if_contains("messages"); messages && messages->is_array()) {
    for (json::value& m : messages->get_array()) visit(m.get_object().if_contains("content"));
  }
  if (marked.size() <= keep) return true;
  for (size_t i = 0; i + keep < marked.size(); ++i) {
    marked[i]->erase("cache_control");
  }
  return false;
}

// Text and image blocks of a user/assistant/tool message; empty text is dropped (its cache
// breakpoint moves to the block before it, or the first after it; with no block at all there is
// nothing to cache).
Result<json::array> ContentBlocks(const Message& m) {
  json::array blocks;
  std::optional<CacheMark> pending;
  for (const ContentPart& part : m.content) {
    if (part.type == ContentPart::Type::kText && part.text.empty()) {
      if (part.cache && !blocks.empty()) MarkCache(blocks.back().as_object(), part.cache);
      if (part.cache && blocks.empty()) pending = part.cache;
      continue;
    }
    if (part.type == ContentPart::Type::kText) {
      blocks.push_back(TextBlock(part.text));
    } else {
      IRIS_ASSIGN_OR_RETURN(json::object image, ImageBlock(part));
      blocks.push_back(std::move(image));
    }
    MarkCache(blocks.back().as_object(), part.cache ? part.cache : pending);
    pending.reset();
  }
  return blocks;
}

struct Turn {
  bool user = true;
  json::array blocks;
};

Result<Turn> EncodeMessage(const Message& m, size_t index) {
  Turn turn;
  switch (m.role) {
    case Role::kUser: {
      IRIS_ASSIGN_OR_RETURN(turn.blocks, ContentBlocks(m));
      break;
    }
    case Role::kAssistant: {
      turn.user = false;
      IRIS_ASSIGN_OR_RETURN(turn.blocks, ContentBlocks(m));
      for (size_t j = 0; j < m.tool_calls.size(); ++j) {
        const ToolCall& call = m.tool_calls[j];
        Result<json::object> input = ToolCallArgumentsObject(call, index, j);
        if (!input.ok()) return UnsupportedByAnthropic(input.status().message());
        json::object b;
        b["type"] = "tool_use";
        b["id"] = call.id;
        b["name"] = call.name;
        b["input"] = std::move(*input);
        turn.blocks.push_back(std::move(b));
      }
      break;
    }
    case Role::kTool: {
      json::object b;
      b["type"] = "tool_result";
      b["tool_use_id"] = m.tool_call_id;
      bool text_only = std::all_of(m.content.begin(), m.content.end(), [](const ContentPart& p) {
        return p.type == ContentPart::Type::kText;
      });
      if (text_only && m.content.size() <= 1) {
        b["content"] = m.content.empty() ? std::string() : m.content[0].text;
      } else {
        IRIS_ASSIGN_OR_RETURN(json::array blocks, ContentBlocks(m));
        b["content"] = std::move(blocks);
      }
      if (m.is_error) b["is_error"] = true;
      for (const ContentPart& p : m.content) {
        if (p.cache) MarkCache(b, p.cache);
      }
      if (b["content"].is_array()) {  // (the breakpoint is the tool_result block's)
        for (json::value& inner : b["content"].as_array()) inner.as_object().erase("cache_control");
      }
      turn.blocks.push_back(std::move(b));
      break;
    }
    case Role::kSystem:
      break;  // lifted by the caller
  }
  return turn;
}

json::value ToolChoiceJson(const ChatRequest& r) {
  if (!r.tool_choice && r.parallel_tool_calls.value_or(true)) return nullptr;
  json::object choice;
  ToolChoice::Mode mode = r.tool_choice ? r.tool_choice->mode : ToolChoice::Mode::kAuto;
  switch (mode) {
    case ToolChoice::Mode::kAuto:
      choice["type"] = "auto";
      break;
    case ToolChoice::Mode::kRequired:
      choice["type"] = "any";
      break;
    case ToolChoice::Mode::kNone:
      choice["type"] = "none";
      break;
    case ToolChoice::Mode::kTool:
      choice["type"] = "tool";
      choice["name"] = r.tool_choice->name;
      break;
  }
  if (mode != ToolChoice::Mode::kNone && r.parallel_tool_calls == false) {
    choice["disable_parallel_tool_use"] = true;
  }
  return choice;
}

FinishReason MapStopReason(std::string_view reason) {
  if (reason == "max_tokens" || reason == "model_context_window_exceeded") {
    return FinishReason::kLength;
  }
  if (reason == "tool_use") return FinishReason::kToolCalls;
  if (reason == "refusal") return FinishReason::kContentFilter;
  return FinishReason::kStop;  // end_turn, stop_sequence, pause_turn, unknown
}

// Raw Anthropic counts, merged as they arrive (message_delta may omit input fields).
struct RawUsage {
  int64_t input = 0, cache_read = 0, cache_creation = 0, cache_1h = 0, output = 0, thinking = 0;
  int64_t web_searches = 0;
  bool reported = false;

  void Merge(const json::object& u) {
    reported = true;
    if (u.contains("input_tokens")) input = TokenCountField(u, "input_tokens");
    if (u.contains("cache_read_input_tokens"))
      cache_read = TokenCountField(u, "cache_read_input_tokens");
    if (u.contains("cache_creation_input_tokens")) {
      cache_creation = TokenCountField(u, "cache_creation_input_tokens");
    }
    // (The writes by lifetime; the one-hour ones bill at twice the input.)
    if (const json::object* c = ObjectField(u, "cache_creation")) {
      cache_1h = TokenCountField(*c, "ephemeral_1h_input_tokens");
    }
    if (const json::object* t = ObjectField(u, "server_tool_use")) {
      web_searches = TokenCountField(*t, "web_search_requests");
    }
    if (u.contains("output_tokens")) output = TokenCountField(u, "output_tokens");
    if (const json::object* d = ObjectField(u, "output_tokens_details")) {
      thinking = TokenCountField(*d, "thinking_tokens");
    }
  }
  Usage ToUsage() const {
    Usage usage;
    usage.input_tokens = input + cache_read + cache_creation;
    usage.cached_input_tokens = cache_read;
    usage.cache_write_tokens = cache_creation;
    usage.cache_write_1h_tokens = std::min(cache_1h, cache_creation);
    usage.output_tokens = output;
    usage.web_searches = web_searches;
    usage.reasoning_tokens = thinking;
    usage.reported = reported;
    return usage;
  }
};

// `relay`: the answer to an Anthropic caller's body sent as is. Each event goes back as it came
// (StreamEvent::kAsIs), before the neutral events read from it.
class AnthropicStreamTranslator : public StreamTranslator {
 public:
  explicit AnthropicStreamTranslator(bool relay) : relay_(relay) {}

  Result<std::vector<StreamEvent>> OnEvent(const http::SseEvent& event) override {
    if (stopped_) return std::vector<StreamEvent>{};  // nothing counts after message_stop
    IRIS_ASSIGN_OR_RETURN(json::object data,
                          ParseUpstreamObject("anthropic", event.data, "stream event data"));
    std::string type = event.event.empty() ? StringField(data, "type") : event.event;
    IRIS_ASSIGN_OR_RETURN(std::vector<StreamEvent> read, Read(type, data));
    if (!relay_) return read;
    // The event goes back as it came (relay.h), without an `iris` member in its message either.
    bool changed = false;
    if (json::value* m = data.if_contains("message"); m != nullptr && m->is_object()) {
      if (m->get_object().stable_erase("iris") > 0) changed = true;
    }
    IRIS_ASSIGN_OR_RETURN(StreamEvent relay, RelayedEvent("anthropic", Dialect::kAnthropic, type,
                                                          data, event.data, changed));
    // (A server tool's block is content no neutral event stands for; text and calls are the
    // neutral events' to commit.)
    relay.as_is_content = other_block_event_;
    std::vector<StreamEvent> out;
    out.reserve(read.size() + 1);
    out.push_back(std::move(relay));
    for (StreamEvent& e : read) out.push_back(std::move(e));
    return out;
  }

  Result<std::vector<StreamEvent>> OnEnd() override {
    if (!stopped_) {
      return DataLoss("anthropic: the stream ended before message_stop (truncated answer)");
    }
    return std::vector<StreamEvent>{};
  }

 private:
  // The neutral events one upstream event makes.
  // Notes in other_block_event_ whether the event starts or adds to a block of another type.
  Result<std::vector<StreamEvent>> Read(const std::string& type, const json::object& data) {
    std::vector<StreamEvent> out;
    other_block_event_ = false;
    if (type == "error") {
      const json::object* err = ObjectField(data, "error");
      std::string etype = err ? StringField(*err, "type") : "";
      std::string msg = err ? StringField(*err, "message") : "";
      return Status(
          ErrorCode::kUnavailable,
          "anthropic: stream error " + (etype.empty() ? "(untyped)" : etype) + ": " + msg);
    }
    if (type == "message_start") {
      const json::object* msg = ObjectField(data, "message");
      if (msg == nullptr) return DataLoss("anthropic: message_start without a message");
      started_ = true;
      StreamEvent start;
      start.type = StreamEvent::Type::kStart;
      start.id = StringField(*msg, "id");
      start.model = StringField(*msg, "model");
      out.push_back(std::move(start));
      if (const json::object* u = ObjectField(*msg, "usage")) {
        usage_.Merge(*u);
        out.push_back(UsageEvent());
      }
      return out;
    }
    if (!started_) {
      if (type == "ping") return out;
      return DataLoss("anthropic: stream event '" + type + "' before message_start");
    }
    if (type == "content_block_start") {
      const json::object* block = ObjectField(data, "content_block");
      if (block == nullptr) return DataLoss("anthropic: content_block_start without a block");
      int index = static_cast<int>(IntField(data, "index"));
      std::string btype = StringField(*block, "type");
      if (btype == "tool_use") {
        int tool = next_tool_++;
        block_to_tool_[index] = tool;
        StreamEvent e;
        e.type = StreamEvent::Type::kToolCallStart;
        e.index = tool;
        e.id = StringField(*block, "id");
        e.name = StringField(*block, "name");
        out.push_back(std::move(e));
      } else if (btype == "text") {
        std::string text = StringField(*block, "text");
        if (!text.empty()) out.push_back(TextEvent(std::move(text)));
      } else if (btype == "thinking") {
        const int reasoning = next_reasoning_++;
        block_to_reasoning_[index] = reasoning;
        std::string text = StringField(*block, "thinking");
        if (!text.empty()) {
          out.push_back(ReasoningEvent(StreamEvent::Type::kReasoningDelta, reasoning, text));
        }
      } else if (btype == "redacted_thinking") {
        out.push_back(ReasoningEvent(StreamEvent::Type::kRedactedReasoning, next_reasoning_++,
                                     StringField(*block, "data")));
      } else {
        // (a server tool's call or result: its deltas are not read; open ones are bounded)
        if (other_blocks_.size() >= kMaxOpenOtherBlocks) {
          return DataLoss("anthropic: more than " + std::to_string(kMaxOpenOtherBlocks) +
                          " content blocks open at once");
        }
        other_blocks_.insert(index);
        other_block_event_ = true;
      }
      return out;  // server-tool blocks are not part of the neutral answer
    }
    if (type == "content_block_delta") {
      const json::object* delta = ObjectField(data, "delta");
      if (delta == nullptr) return DataLoss("anthropic: content_block_delta without a delta");
      other_block_event_ = other_blocks_.contains(static_cast<int>(IntField(data, "index")));
      std::string dtype = StringField(*delta, "type");
      if (dtype == "text_delta") {
        std::string text = StringField(*delta, "text");
        if (!text.empty()) out.push_back(TextEvent(std::move(text)));
      } else if (dtype == "thinking_delta" || dtype == "signature_delta") {
        auto it = block_to_reasoning_.find(static_cast<int>(IntField(data, "index")));
        if (it == block_to_reasoning_.end()) {
          return DataLoss("anthropic: " + dtype + " for a block that is not thinking");
        }
        const bool thinking = dtype == "thinking_delta";
        std::string text = StringField(*delta, thinking ? "thinking" : "signature");
        if (!text.empty()) {
          out.push_back(ReasoningEvent(thinking ? StreamEvent::Type::kReasoningDelta
                                                : StreamEvent::Type::kReasoningSignature,
                                       it->second, std::move(text)));
        }
      } else if (dtype == "input_json_delta") {
        const int index = static_cast<int>(IntField(data, "index"));
        auto it = block_to_tool_.find(index);
        if (it == block_to_tool_.end()) {
          if (other_blocks_.contains(index)) return out;  // (a server tool's input)
          return DataLoss("anthropic: input_json_delta for a block that is not a tool_use");
        }
        std::string partial = StringField(*delta, "partial_json");
        if (!partial.empty()) {
          StreamEvent e;
          e.type = StreamEvent::Type::kToolCallDelta;
          e.index = it->second;
          e.text = std::move(partial);
          out.push_back(std::move(e));
        }
      }
      return out;
    }
    if (type == "message_delta") {
      if (const json::object* delta = ObjectField(data, "delta")) {
        StreamEvent fin;
        fin.type = StreamEvent::Type::kFinish;
        fin.finish_reason = MapStopReason(StringField(*delta, "stop_reason"));
        fin.stop_sequence = StringField(*delta, "stop_sequence");
        out.push_back(std::move(fin));
      }
      if (const json::object* u = ObjectField(data, "usage")) {
        usage_.Merge(*u);
        out.push_back(UsageEvent());
      }
      return out;
    }
    if (type == "content_block_stop") {
      const int index = static_cast<int>(IntField(data, "index"));
      other_block_event_ = other_blocks_.erase(index) > 0;
    }
    if (type == "message_stop") stopped_ = true;
    return out;  // content_block_stop, ping, unknown event types
  }

  StreamEvent UsageEvent() const {
    StreamEvent e;
    e.type = StreamEvent::Type::kUsage;
    e.usage = usage_.ToUsage();
    return e;
  }
  static StreamEvent ReasoningEvent(StreamEvent::Type type, int index, std::string text) {
    StreamEvent e;
    e.type = type;
    e.index = index;
    e.text = std::move(text);
    return e;
  }
  static StreamEvent TextEvent(std::string text) {
    StreamEvent e;
    e.type = StreamEvent::Type::kTextDelta;
    e.text = std::move(text);
    return e;
  }

  bool started_ = false;
  bool stopped_ = false;
  int next_tool_ = 0;
  std::map<int, int> block_to_tool_;  // content block index -> tool call index
  int next_reasoning_ = 0;
  std::map<int, int> block_to_reasoning_;  // content block index -> reasoning block index
  std::set<int> other_blocks_;      // content block indexes of other types (server tools' blocks)
  bool other_block_event_ = false;  // the event read last is about one of those
  RawUsage usage_;
  bool relay_ = false;
};

class AnthropicTranslator : public Translator {
 public:
  explicit AnthropicTranslator(std::string name) : name_(std::move(name)) {}

  Result<UpstreamRequest> EncodeRequest(const ChatRequest& r,
                                        const TargetInfo& target) const override {
    std::optional<int64_t> ceiling = Ceiling(target.model);
    if (r.dialect == Dialect::kAnthropic && r.caller_body) {
      // An Anthropic caller: its body goes on as written (cache_control, thinking, metadata,
      // service_tier, thinking blocks with their signatures, fields iris does not know yet).
      json::object body = CallerBodyFor(r, target.model);
      if (ceiling && r.max_tokens && *r.max_tokens > *ceiling) body["max_tokens"] = *ceiling;
      UpstreamRequest out = MessagesRequest(target, body);
      // (its beta features too: checked when the request was decoded)
      if (!r.anthropic_beta.empty()) out.headers.emplace_back("anthropic-beta", r.anthropic_beta);
      out.as_is = true;
      return out;
    }
    json::object body;
    body["model"] = target.model;
    int64_t max_tokens = r.max_tokens ? *r.max_tokens : AnthropicDefaultMaxTokens(target.model);
    if (ceiling) max_tokens = std::min(max_tokens, *ceiling);
    body["max_tokens"] = max_tokens;

    json::array system;
    std::optional<CacheMark> system_pending;  // a breakpoint on an empty system text
    std::vector<Turn> turns;
    for (size_t i = 0; i < r.messages.size(); ++i) {
      const Message& m = r.messages[i];
      if (m.role == Role::kSystem) {
        for (const ContentPart& p : m.content) {
          if (p.type != ContentPart::Type::kText) {
            return UnsupportedByAnthropic("system messages may only hold text");
          }
          if (p.text.empty()) {
            // (its breakpoint moves to the block before it, or the first after it)
            if (p.cache && !system.empty()) MarkCache(system.back().as_object(), p.cache);
            if (p.cache && system.empty()) system_pending = p.cache;
            continue;
          }
          system.push_back(TextBlock(p.text));
          MarkCache(system.back().as_object(), p.cache ? p.cache : system_pending);
          system_pending.reset();
        }
        continue;
      }
      IRIS_ASSIGN_OR_RETURN(Turn turn, EncodeMessage(m, i));
      if (turn.blocks.empty()) continue;  // Anthropic rejects empty content
      if (!turns.empty() && turns.back().user == turn.user) {
        for (json::value& b : turn.blocks) turns.back().blocks.push_back(std::move(b));
      } else {
        turns.push_back(std::move(turn));
      }
    }
    if (turns.empty())
      return UnsupportedByAnthropic("the request has no user or assistant content");
    if (!turns.front().user) {
      Turn placeholder;
      placeholder.blocks.push_back(TextBlock("."));
      turns.insert(turns.begin(), std::move(placeholder));
    }
    // A final assistant turn is a prefill, and Anthropic rejects trailing whitespace there.
    if (!turns.back().user) {
      json::object& last = turns.back().blocks.back().as_object();
      if (StringField(last, "type") == "text") {
        std::string text(last["text"].as_string());
        text.erase(text.find_last_not_of(" \t\r\n") + 1);
        if (text.empty()) {
          turns.back().blocks.pop_back();
          if (turns.back().blocks.empty()) turns.pop_back();
        } else {
          last["text"] = text;
        }
      }
    }
    if (!system.empty()) body["system"] = std::move(system);
    json::array messages;
    for (Turn& t : turns) {
      json::object m;
      m["role"] = t.user ? "user" : "assistant";
      m["content"] = std::move(t.blocks);
      messages.push_back(std::move(m));
    }
    body["messages"] = std::move(messages);

    if (!r.tools.empty()) {
      json::array tools;
      for (const Tool& t : r.tools) {
        json::object tool;
        tool["name"] = t.name;
        if (!t.description.empty()) tool["description"] = t.description;
        if (t.parameters.is_object()) {
          // A strict tool's schema follows the rules of structured outputs.
          tool["input_schema"] = t.strict ? api::AnthropicSchema(t.parameters) : t.parameters;
        } else {
          tool["input_schema"] = {{"type", "object"}, {"properties", json::object()}};
        }
        if (t.strict) tool["strict"] = true;
        MarkCache(tool, t.cache);
        tools.push_back(std::move(tool));
      }
      body["tools"] = std::move(tools);
    }
    if (json::value choice = ToolChoiceJson(r); !choice.is_null()) {
      body["tool_choice"] = std::move(choice);
    }
    if (r.tools.empty()) {
      // Anthropic refuses tool_use / tool_result blocks unless tools are declared, but OpenAI
      // callers often send the history of a tool conversation without its tools. Declare the
      // tools the history used, with an open schema, and forbid new calls.
      json::array declared;
      std::vector<std::string> seen;
      for (const Message& m : r.messages) {
        for (const ToolCall& c : m.tool_calls) {
          if (c.name.empty() || std::find(seen.begin(), seen.end(), c.name) != seen.end()) continue;
          seen.push_back(c.name);
          declared.push_back(
              json::object{{"name", c.name},
                           {"description", "A tool used earlier in this conversation."},
                           {"input_schema", json::object{{"type", "object"}}}});
        }
      }
      if (!declared.empty()) {
        body["tools"] = std::move(declared);
        if (!body.contains("tool_choice")) body["tool_choice"] = json::object{{"type", "none"}};
      }
    }
    json::array stops;
    for (const std::string& s : r.stop) {
      if (!IsBlank(s)) stops.push_back(json::string(s));
    }
    if (!stops.empty()) body["stop_sequences"] = std::move(stops);
    if (r.temperature) body["temperature"] = std::clamp(*r.temperature, 0.0, 1.0);
    if (r.top_p) body["top_p"] = *r.top_p;
    if (r.top_k) body["top_k"] = *r.top_k;
    if (r.stream) body["stream"] = true;
    if (!r.user.empty()) body["metadata"] = {{"user_id", r.user}};
    if (r.response_format) {
      switch (r.response_format->type) {
        case ResponseFormat::Type::kText:
          break;
        case ResponseFormat::Type::kJsonObject:
          return UnsupportedByAnthropic(
              "response_format json_object has no Anthropic equivalent; use json_schema");
        case ResponseFormat::Type::kJsonSchema:
          // (Limits Anthropic refuses move into descriptions; the proxy checks the answer
          // against the caller's own schema.)
          body["output_config"] = {{"format",
                                    {{"type", "json_schema"},
                                     {"schema", api::AnthropicSchema(r.response_format->schema)}}}};
          break;
      }
    }

    std::vector<std::string> dropped = r.extra_fields;
    // (A breakpoint at the prompt's end, top-level, takes one of the four.)
    if (!KeepLastCacheBreakpoints(body, kMaxCacheBreakpoints - (r.cache ? 1 : 0))) {
      api::AddFieldName(dropped, "cache_control");
    }
    MarkCache(body, r.cache);
    Think(r, ceiling, body, dropped);
    UpstreamRequest req = MessagesRequest(target, body);
    req.dropped = std::move(dropped);
    return req;
  }

  // Extended thinking for a request that asks for reasoning (thinking_budget or an effort).
  // Anthropic's budget is at least 1024 tokens and below max_tokens: when max_tokens does not
  // exceed the budget it grows by it (OpenAI counts reasoning in max_completion_tokens; the
  // admission estimate counts it too), within the model's ceiling. Thinking refuses a
  // temperature, top_k and a top_p below 0.95 (removed and named), a forced tool choice, and a
  // history of tool calls without their signed thinking blocks, which no caller of another wire
  // format has: then thinking is not turned on, and named.
  static void Think(const ChatRequest& r, std::optional<int64_t> ceiling, json::object& body,
                    std::vector<std::string>& dropped) {
    const std::optional<int64_t> asked = RequestedThinkingBudget(r);
    if (!asked || *asked <= 0) return;
    const std::string_view name = r.thinking_budget ? "thinking" : "reasoning_effort";
    bool tool_history = false;
    for (const Message& m : r.messages) tool_history = tool_history || !m.tool_calls.empty();
    const bool forced = r.tool_choice && (r.tool_choice->mode == ToolChoice::Mode::kRequired ||
                                          r.tool_choice->mode == ToolChoice::Mode::kTool);
    if (tool_history || forced) {
      api::AddFieldName(dropped, name);
      return;
    }
    int64_t budget = std::clamp<int64_t>(*asked, 1024, kMaxThinkingBudget);
    int64_t max_tokens = body["max_tokens"].to_number<int64_t>();
    if (max_tokens <= budget) max_tokens = std::min(max_tokens, kMaxThinkingBudget) + budget;
    if (ceiling) max_tokens = std::min(max_tokens, *ceiling);
    budget = std::min(budget, max_tokens - 1);
    if (budget < 1024) {
      api::AddFieldName(dropped, name);  // (max_tokens leaves no room to think)
      return;
    }
    body["max_tokens"] = max_tokens;
    body["thinking"] = json::object{{"type", "enabled"}, {"budget_tokens", budget}};
    for (std::string_view key : {"temperature", "top_k"}) {
      if (body.erase(key) > 0) api::AddFieldName(dropped, key);
    }
    if (const json::value* top_p = body.if_contains("top_p");
        top_p != nullptr && top_p->is_number() && top_p->to_number<double>() < 0.95) {
      body.erase("top_p");
      api::AddFieldName(dropped, "top_p");
    }
  }

  static UpstreamRequest MessagesRequest(const TargetInfo& target, const json::object& body) {
    UpstreamRequest req;
    req.url = target.base_url + "/messages";
    req.headers = {{"x-api-key", target.api_key},
                   {"anthropic-version", "2023-06-01"},
                   {"content-type", "application/json"}};
    req.body = SerializeJson(body);
    return req;
  }

  Result<ChatResponse> DecodeResponse(std::string_view body) const override {
    IRIS_ASSIGN_OR_RETURN(json::object o, ParseUpstreamObject("anthropic", body, "response body"));
    return Decode(o);
  }

  // The message is also kept whole for the Anthropic caller whose body went as is: its server
  // tools' blocks, citations and fields iris does not read reach it (without an `iris` member
  // of the upstream's, which would pass for iris's report).
  Result<ChatResponse> DecodeAsIsResponse(std::string_view body) const override {
    IRIS_ASSIGN_OR_RETURN(json::object o, ParseUpstreamObject("anthropic", body, "response body"));
    IRIS_ASSIGN_OR_RETURN(ChatResponse resp, Decode(o));
    o.stable_erase("iris");
    resp.as_is = std::make_shared<const json::object>(std::move(o));
    resp.as_is_dialect = Dialect::kAnthropic;
    return resp;
  }

  std::unique_ptr<StreamTranslator> NewStreamTranslator() const override {
    return std::make_unique<AnthropicStreamTranslator>(/*relay=*/false);
  }
  std::unique_ptr<StreamTranslator> NewAsIsStreamTranslator() const override {
    return std::make_unique<AnthropicStreamTranslator>(/*relay=*/true);
  }

  GatewayError DecodeError(int status, std::string_view body,
                           std::string_view retry_after) const override {
    UpstreamErrorBody b;
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec && v.is_object()) {
      if (const json::object* err = ObjectField(v.get_object(), "error")) {
        b.code = StringField(*err, "type");
        b.message = StringField(*err, "message");
      }
    }
    b.signal = SignalOf(ProviderKind::kAnthropic, b.code);
    b.text = body;
    return MakeUpstreamError(name_, status, std::move(b), retry_after);
  }

 private:
  // What iris reads of a message object.
  static Result<ChatResponse> Decode(const json::object& o) {
    ChatResponse resp;
    resp.id = StringField(o, "id");
    resp.model = StringField(o, "model");
    const json::array* content = ArrayField(o, "content");
    if (content == nullptr) return DataLoss("anthropic: response has no content array");
    for (const json::value& bv : *content) {
      if (!bv.is_object()) continue;
      const json::object& b = bv.get_object();
      std::string type = StringField(b, "type");
      if (type == "text") {
        resp.text += StringField(b, "text");
      } else if (type == "thinking") {
        resp.reasoning.push_back({StringField(b, "thinking"), StringField(b, "signature"), {}});
      } else if (type == "redacted_thinking") {
        resp.reasoning.push_back({{}, {}, StringField(b, "data")});
      } else if (type == "tool_use") {
        ToolCall call;
        call.id = StringField(b, "id");
        call.name = StringField(b, "name");
        const json::value* input = b.if_contains("input");
        call.arguments = input != nullptr ? SerializeJson(*input) : "{}";
        resp.tool_calls.push_back(std::move(call));
      }
    }
    resp.finish_reason = MapStopReason(StringField(o, "stop_reason"));
    resp.stop_sequence = StringField(o, "stop_sequence");
    if (const json::object* u = ObjectField(o, "usage")) {
      RawUsage raw;
      raw.Merge(*u);
      resp.usage = raw.ToUsage();
    }
    return resp;
  }

  std::string name_;
};

}  // namespace

int64_t AnthropicDefaultMaxTokens(std::string_view model) {
  std::optional<int64_t> ceiling = Ceiling(model);
  return ceiling ? std::min(*ceiling, kDefaultMaxTokens) : kDefaultMaxTokens;
}

std::unique_ptr<Translator> MakeAnthropicTranslator(std::string provider_name) {
  return std::make_unique<AnthropicTranslator>(std::move(provider_name));
}

}  // namespace iris::gateway::providers
