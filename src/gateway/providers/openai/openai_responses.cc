// OpenAI's Responses API as an upstream (see openai_responses.h).
#include "gateway/providers/openai/openai_responses.h"

#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "base/json.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/openai.h"
#include "gateway/providers/openai/openai_translator.h"
#include "gateway/providers/relay.h"

namespace iris::gateway::providers {

namespace json = boost::json;
using api::ArrayField;
using api::FindField;
using api::IntField;
using api::ObjectField;
using api::StringField;
using api::StringOrIntegerField;
using api::TokenCountField;

std::optional<json::object> ResponsesBodyAsIs(const ChatRequest& r, const TargetInfo& target,
                                              std::vector<std::string>& dropped) {
  json::object body = CallerBodyFor(r, target.model);
  if (r.thread.continues && r.thread.provider != target.provider) {
    // (Item references: only the account that made the items knows them.)
    if (r.thread.items == nullptr) return std::nullopt;
    // OpenAI does not know the previous response: the conversation iris kept goes first.
    json::array input = *r.thread.items;
    if (const json::value* in = FindField(body, "input")) {
      if (in->is_string()) {
        input.push_back(json::object{{"role", "user"}, {"content", in->get_string()}});
      } else if (in->is_array()) {
        for (const json::value& item : in->get_array()) input.push_back(item);
      }
    }
    body["input"] = std::move(input);
    body.erase("previous_response_id");
  }
  if (IsOpenAIReasoningModel(target.model)) {
    for (std::string_view key : {"temperature", "top_p", "top_logprobs"}) {
      if (body.erase(key) > 0) api::AddFieldName(dropped, key);
    }
  }
  return body;
}

namespace {

Usage DecodeResponsesUsage(const json::object& u) {
  Usage usage;
  usage.reported = true;
  usage.input_tokens = TokenCountField(u, "input_tokens");
  usage.output_tokens = TokenCountField(u, "output_tokens");
  if (const json::object* d = ObjectField(u, "input_tokens_details")) {
    usage.cached_input_tokens = TokenCountField(*d, "cached_tokens");
  }
  if (const json::object* d = ObjectField(u, "output_tokens_details")) {
    usage.reasoning_tokens = TokenCountField(*d, "reasoning_tokens");
  }
  return usage;
}

// The hosted web searches a response ran: one web_search_call item each, which OpenAI bills by
// the call.
int64_t WebSearchesOf(const json::object& response) {
  int64_t n = 0;
  if (const json::array* output = ArrayField(response, "output")) {
    for (const json::value& v : *output) {
      if (v.is_object() && StringField(v.get_object(), "type") == "web_search_call") ++n;
    }
  }
  return n;
}

// The finish of a completed or incomplete response.
FinishReason FinishOf(const json::object& response, bool tool_calls) {
  if (StringField(response, "status") == "incomplete") {
    const json::object* details = ObjectField(response, "incomplete_details");
    const std::string reason = details != nullptr ? StringField(*details, "reason") : "";
    return reason == "content_filter" ? FinishReason::kContentFilter : FinishReason::kLength;
  }
  return tool_calls ? FinishReason::kToolCalls : FinishReason::kStop;
}

// A response that did not complete: the upstream's own error message.
Status Failed(const json::object& response, std::string_view provider) {
  std::string message = "status " + StringOrIntegerField(response, "status", "(none)");
  if (const json::object* e = ObjectField(response, "error")) {
    message = StringOrIntegerField(*e, "message", message);
  }
  return Status(ErrorCode::kUnavailable,
                std::string(provider) + " answered with a failed response: " + message);
}

// The text of a message item's output_text (or refusal) parts; `refused` when a refusal part
// was among them.
std::string MessageText(const json::object& item, bool& refused) {
  std::string text;
  const json::array* content = ArrayField(item, "content");
  if (content == nullptr) return text;
  for (const json::value& v : *content) {
    if (!v.is_object()) continue;
    const json::object& part = v.get_object();
    const std::string type = StringField(part, "type");
    if (type == "output_text") text += StringField(part, "text");
    if (type == "refusal") {
      text += StringField(part, "refusal");
      refused = true;
    }
  }
  return text;
}

ToolCall CallOf(const json::object& item) {
  ToolCall call;
  call.id = StringField(item, "call_id");
  call.name = StringField(item, "name");
  call.arguments = StringField(item, "arguments");
  return call;
}

}  // namespace

bool IsResponsesObject(const json::object& o) { return StringField(o, "object") == "response"; }

Result<ChatResponse> DecodeResponsesObject(json::object o, std::string_view provider) {
  const std::string status = StringField(o, "status");
  if (status != "completed" && status != "incomplete") return Failed(o, provider);
  ChatResponse r;
  r.id = StringField(o, "id");
  r.model = StringField(o, "model");
  r.created = IntField(o, "created_at");
  if (const json::array* output = ArrayField(o, "output")) {
    for (const json::value& v : *output) {
      if (!v.is_object()) continue;
      const json::object& item = v.get_object();
      const std::string type = StringField(item, "type");
      if (type == "message") {
        r.text += MessageText(item, r.refused);
      } else if (type == "function_call") {
        ToolCall call = CallOf(item);
        if (call.arguments.empty()) call.arguments = "{}";
        r.tool_calls.push_back(std::move(call));
      }
    }
  }
  r.finish_reason = FinishOf(o, !r.tool_calls.empty());
  if (const json::object* u = ObjectField(o, "usage")) r.usage = DecodeResponsesUsage(*u);
  r.usage.web_searches = WebSearchesOf(o);  // (an account only beside the usage object)
  r.as_is = std::make_shared<const json::object>(std::move(o));
  r.as_is_dialect = Dialect::kResponses;
  return r;
}

bool IsResponsesStreamEvent(const http::SseEvent& event) {
  return event.event.starts_with("response.");
}

namespace {

class ResponsesStreamTranslator final : public StreamTranslator {
 public:
  explicit ResponsesStreamTranslator(std::string name) : name_(std::move(name)) {}

  Result<std::vector<StreamEvent>> OnEvent(const http::SseEvent& event) override;
  Result<std::vector<StreamEvent>> OnEnd() override;

 private:
  // The call at output item `output_index`, or -1.
  int CallAt(int64_t output_index) const {
    auto it = calls_.find(output_index);
    return it == calls_.end() ? -1 : it->second;
  }

  std::string name_;
  bool started_ = false;
  bool finished_ = false;
  std::map<int64_t, int> calls_;  // output_index -> tool call index
  std::set<int> with_arguments_;  // tool calls whose arguments were streamed
};

Result<std::vector<StreamEvent>> ResponsesStreamTranslator::OnEvent(const http::SseEvent& event) {
  std::vector<StreamEvent> out;
  if (finished_) return out;  // (nothing follows the terminal event)
  if (event.event == "error") {
    return Status(ErrorCode::kUnavailable, name_ + " reported an error mid-stream: " + event.data);
  }
  Result<json::value> parsed = ParseJson(event.data, name_ + " stream event");
  if (!parsed.ok()) return DataLoss(parsed.status().message());
  if (!parsed->is_object()) return DataLoss(name_ + " stream event: expected a JSON object");
  json::object& o = parsed->get_object();
  std::string type = StringField(o, "type");
  const bool typed = !type.empty();
  if (!typed) type = event.event;
  if (type.empty()) return DataLoss(name_ + ": a stream event without a type");
  if (type == "response.failed") {
    const json::object* response = ObjectField(o, "response");
    return Failed(response != nullptr ? *response : o, name_);
  }
  if (type == "error") {
    return Status(ErrorCode::kUnavailable, name_ + " reported an error mid-stream: " +
                                               StringOrIntegerField(o, "message", event.data));
  }
  // The event goes back as it came (relay.h), without what inside its response would pass for
  // iris's report and price: an `iris` member and usage.cost (Finish adds those to the terminal
  // event).
  bool changed = false;
  if (json::value* r = o.if_contains("response"); r != nullptr && r->is_object()) {
    json::object& response = r->get_object();
    // (stable_erase: the rest of the event keeps OpenAI's order)
    if (response.stable_erase("iris") > 0) changed = true;
    if (json::value* u = response.if_contains("usage"); u != nullptr && u->is_object()) {
      if (api::ErasePriceOf(u->get_object())) changed = true;
    }
  }
  IRIS_ASSIGN_OR_RETURN(StreamEvent relay,
                        RelayedEvent(name_, Dialect::kResponses, type, o, event.data, changed));
  // (Any event past the opening ones: a reasoning or hosted-tool item shows OpenAI at work.)
  relay.as_is_content =
      type != "response.created" && type != "response.in_progress" && type != "response.queued";
  relay.index = static_cast<int>(
      std::clamp<int64_t>(IntField(o, "sequence_number"), 0, std::numeric_limits<int>::max() - 1));
  out.push_back(std::move(relay));

  const json::object* response = ObjectField(o, "response");
  if (!started_) {
    if (type != "response.created" || response == nullptr) {
      return DataLoss(name_ + ": the stream did not begin with response.created");
    }
    started_ = true;
    StreamEvent start;
    start.type = StreamEvent::Type::kStart;
    start.id = StringField(*response, "id");
    start.model = StringField(*response, "model");
    start.created = IntField(*response, "created_at");
    out.push_back(std::move(start));
    return out;
  }
  if (type == "response.output_text.delta" || type == "response.refusal.delta") {
    StreamEvent e;
    e.type = StreamEvent::Type::kTextDelta;
    e.text = StringField(o, "delta");
    if (!e.text.empty()) out.push_back(std::move(e));
  } else if (type == "response.output_item.added" || type == "response.output_item.done") {
    const json::object* item = ObjectField(o, "item");
    if (item == nullptr || StringField(*item, "type") != "function_call") return out;
    const int64_t output_index = IntField(o, "output_index");
    int k = CallAt(output_index);
    if (k < 0) {
      k = static_cast<int>(calls_.size());
      calls_[output_index] = k;
      StreamEvent e;
      e.type = StreamEvent::Type::kToolCallStart;
      e.index = k;
      e.id = StringField(*item, "call_id");
      e.name = StringField(*item, "name");
      out.push_back(std::move(e));
    }
    // Arguments that came whole, with the item rather than as deltas.
    const std::string arguments = StringField(*item, "arguments");
    if (!arguments.empty() && !with_arguments_.contains(k)) {
      with_arguments_.insert(k);
      StreamEvent e;
      e.type = StreamEvent::Type::kToolCallDelta;
      e.index = k;
      e.text = arguments;
      out.push_back(std::move(e));
    }
  } else if (type == "response.function_call_arguments.delta") {
    const int k = CallAt(IntField(o, "output_index"));
    if (k < 0) return DataLoss(name_ + ": arguments for a function call that never began");
    StreamEvent e;
    e.type = StreamEvent::Type::kToolCallDelta;
    e.index = k;
    e.text = StringField(o, "delta");
    with_arguments_.insert(k);
    if (!e.text.empty()) out.push_back(std::move(e));
  } else if (type == "response.completed" || type == "response.incomplete") {
    if (response == nullptr) return DataLoss(name_ + ": " + type + " without its response");
    finished_ = true;
    StreamEvent finish;
    finish.type = StreamEvent::Type::kFinish;
    finish.finish_reason = FinishOf(*response, !calls_.empty());
    out.push_back(std::move(finish));
    // (Searches without the usage object are no account: the cost stays unknown, and a budget
    // keeps its worst case.)
    if (const json::object* u = ObjectField(*response, "usage")) {
      StreamEvent usage;
      usage.type = StreamEvent::Type::kUsage;
      usage.usage = DecodeResponsesUsage(*u);
      usage.usage.web_searches = WebSearchesOf(*response);
      out.push_back(std::move(usage));
    }
  }
  return out;
}

Result<std::vector<StreamEvent>> ResponsesStreamTranslator::OnEnd() {
  if (finished_) return std::vector<StreamEvent>();
  return DataLoss(name_ + ": the stream ended before response.completed; the answer is truncated");
}

}  // namespace

std::unique_ptr<StreamTranslator> NewResponsesStreamTranslator(std::string provider) {
  return std::make_unique<ResponsesStreamTranslator>(std::move(provider));
}

}  // namespace iris::gateway::providers
