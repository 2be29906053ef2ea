// The Responses API's threads: each response iris returns (unless the caller said store:false)
// keeps its conversation, the input items so far and the output items, in the shared state
// (this process's memory, or Redis across instances) for limits.response_ttl_s, under the
// caller's key. previous_response_id continues one; an item_reference (or an output message
// named by id alone) brings back one earlier output item. A thread is read only by the key
// that made it.
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

#include "base/json.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/responses.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;

namespace {

// The state's key of a response's thread ("resp"), or of an output item OpenAI made ("item"):
// the caller's key id, so another key cannot read it.
std::string StateKey(std::string_view kind, const access::Caller& caller, std::string_view id) {
  std::string key(kind);
  key += ":";
  key += caller.key_id().empty() ? "-" : caller.key_id();
  key += ":";
  key += id;
  return key;
}

// The most output items of one response OpenAI made that are kept for item references.
constexpr size_t kMaxKeptItems = 64;

Status NotKept(std::string_view what, std::string_view id) {
  return Status(ErrorCode::kNotFound,
                std::string(what) + " " + std::string(id) +
                    " was not found: it expired (limits.response_ttl_s), was made with "
                    "store:false or by another key, or was never returned by this gateway");
}

}  // namespace

awaitable<Status> Call::LoadThread() {
  if (!responses_) co_return OkStatus();
  api::ResponsesRequest& r = *responses_;
  if (r.previous_response_id.empty() && r.references.empty() && r.item_ids.empty()) {
    co_return OkStatus();
  }
  access::Access* access = gw_.options_.access;
  const int64_t now = NowUnixMs();
  // Each thread (or item) read once, however many references name it.
  std::map<std::string, json::object> threads;
  // (`kind` is a view of a literal: GCC 12 mishandles temporaries with destructors in a
  // co_await.)
  auto load_kept = [&](std::string_view kind,
                       const std::string& id) -> awaitable<Result<const json::object*>> {
    const std::string key = StateKey(kind, caller_, id);
    if (auto it = threads.find(key); it != threads.end()) co_return &it->second;
    const char* what = kind == "item" ? "item" : "response";
    if (access == nullptr || config_->limits.response_ttl_s == 0) co_return NotKept(what, id);
    access::SharedState& state = access->state();
    Result<std::optional<std::string>> got = co_await OnStateThread(
        state, gw_.query_pool_, [&state, &key, now] { return state.GetValue(key, now); });
    if (!got.ok()) {
      co_return Status(ErrorCode::kUnavailable,
                       "the conversation store is unreachable: " + got.status().message());
    }
    if (!got->has_value()) co_return NotKept(what, id);
    Result<json::value> parsed = ParseJson(**got, "kept conversation");
    if (!parsed.ok() || !parsed->is_object()) {
      co_return Status(ErrorCode::kInternal, "the kept conversation of " + id + " is damaged");
    }
    auto [it, fresh] = threads.emplace(key, std::move(parsed->as_object()));
    co_return &it->second;
  };
  auto load = [&](const std::string& id) { return load_kept("resp", id); };
  // The provider that keeps the thread: the one that made every response and item it names
  // in its own wire format, else none.
  bool first_owner = true;
  auto join_provider = [&](const std::string& provider) {
    if (first_owner) req_.thread.provider = provider;
    if (!first_owner && req_.thread.provider != provider) req_.thread.provider.clear();
    first_owner = false;
  };

  std::vector<Message> history;
  if (!r.previous_response_id.empty()) {
    Result<const json::object*> thread = co_await load(r.previous_response_id);
    if (!thread.ok()) {
      co_return thread.status().code() == ErrorCode::kNotFound
          ? Status(ErrorCode::kNotFound, "previous_response_id: " + thread.status().message())
          : thread.status();
    }
    join_provider(api::StringField(**thread, "provider"));
    auto kept_items = std::make_shared<json::array>();
    for (std::string_view part : {"input", "output"}) {
      const json::array* items = api::ArrayField(**thread, part);
      if (items == nullptr) continue;
      for (const json::value& item : *items) kept_items->push_back(item);
      Result<std::vector<Message>> messages = api::ParseConversationItems(*items);
      if (!messages.ok()) {
        co_return Status(ErrorCode::kInternal,
                         "the kept conversation of " + r.previous_response_id + " is damaged");
      }
      for (Message& m : *messages) history.push_back(std::move(m));
    }
    req_.thread.items = std::move(kept_items);
  }
  // Items replayed whole with an id OpenAI may look up: only those it made for this key.
  for (const std::string& id : r.item_ids) {
    Result<const json::object*> kept = co_await load_kept("item", id);
    if (!kept.ok()) {
      co_return kept.status().code() == ErrorCode::kNotFound
          ? Status(ErrorCode::kNotFound,
                   "input: item " + id + " is not an output item this gateway returned")
          : kept.status();
    }
    join_provider(api::StringField(**kept, "provider"));
  }
  // Referenced items, from the last to the first so that the earlier places stay put; what they
  // bring in is bounded like a kept conversation.
  int64_t brought = 0;
  auto bring = [&](const api::ItemReference& ref, Message m) -> Status {
    for (const ContentPart& p : m.content) brought += static_cast<int64_t>(p.text.size());
    for (const ToolCall& c : m.tool_calls) brought += static_cast<int64_t>(c.arguments.size());
    if (brought > config_->limits.max_conversation_bytes) {
      return Status(ErrorCode::kOutOfRange,
                    "input: the items named by reference come to more than "
                    "limits.max_conversation_bytes (" +
                        std::to_string(config_->limits.max_conversation_bytes) + " bytes)");
    }
    req_.messages.insert(req_.messages.begin() + static_cast<std::ptrdiff_t>(ref.before_message),
                         std::move(m));
    return OkStatus();
  };
  for (size_t k = r.references.size(); k-- > 0;) {
    const api::ItemReference& ref = r.references[k];
    std::optional<api::ItemOwner> owner = api::ItemOwnerOf(ref.id);
    if (!owner) {
      // An item of a response OpenAI made itself (the body went to it as is), kept for this key:
      // OpenAI resolves the reference; any other provider gets the item iris kept.
      Result<const json::object*> kept = co_await load_kept("item", ref.id);
      if (!kept.ok()) {
        co_return kept.status().code() == ErrorCode::kNotFound
            ? Status(ErrorCode::kNotFound,
                     "input: item " + ref.id + " is not an output item this gateway returned")
            : kept.status();
      }
      join_provider(api::StringField(**kept, "provider"));
      const json::object* item = api::ObjectField(**kept, "item");
      std::optional<Message> m = item ? api::MessageOfOutputItem(*item) : std::nullopt;
      if (m) {
        if (Status s = bring(ref, std::move(*m)); !s.ok()) co_return s;
      } else {
        api::AddFieldName(req_.extra_fields, "input.reasoning");  // (a reasoning item)
      }
      continue;
    }
    // iris's own item: a body naming it cannot go on as is, to any OpenAI.
    join_provider("");
    Result<const json::object*> thread = co_await load(owner->response_id);
    if (!thread.ok()) {
      co_return thread.status().code() == ErrorCode::kNotFound
          ? Status(ErrorCode::kNotFound,
                   "input: the item " + ref.id + " of " + thread.status().message())
          : thread.status();
    }
    const json::array* output = api::ArrayField(**thread, "output");
    std::optional<Message> m;
    if (output != nullptr && owner->index < output->size() && (*output)[owner->index].is_object()) {
      m = api::MessageOfOutputItem((*output)[owner->index].get_object());
    }
    if (!m) co_return Status(ErrorCode::kNotFound, "input: item " + ref.id + " was not found");
    if (Status s = bring(ref, std::move(*m)); !s.ok()) co_return s;
  }
  req_.thread.continues = true;
  // (A body naming items cannot carry the kept conversation to another account instead.)
  if (!r.references.empty() || !r.item_ids.empty()) req_.thread.items = nullptr;
  // The thread goes after `instructions` (which are never carried over) and before the input.
  const size_t at = r.has_instructions ? 1 : 0;
  req_.messages.insert(req_.messages.begin() + static_cast<std::ptrdiff_t>(at),
                       std::make_move_iterator(history.begin()),
                       std::make_move_iterator(history.end()));
  api::MergeToolCallTurns(req_.messages);
  co_return OkStatus();
}

awaitable<void> Call::KeepThread(const ChatResponse& answer, const std::string& as_is_provider,
                                 const json::array* as_is_output) {
  if (!responses_ || !responses_->store) co_return;
  access::Access* access = gw_.options_.access;
  const int64_t ttl_s = config_->limits.response_ttl_s;
  if (access == nullptr || ttl_s == 0) co_return;
  // The conversation so far (the kept thread, resolved references and this input), without
  // this request's instructions, and the answer's output items.
  std::vector<Message> input(req_.messages.begin() + (responses_->has_instructions ? 1 : 0),
                             req_.messages.end());
  // The response's id: iris's own, or the one of the provider's own response object.
  const std::string id = answer.as_is ? answer.id : encoder_->responses_meta().id;
  if (!id.starts_with("resp_") || id.size() > api::kMaxResponseId) {
    summary_.warnings.push_back(
        "the response has no id previous_response_id can name; its "
        "conversation was not kept");
    co_return;
  }
  json::object thread{{"input", api::InputItemsOf(input)},
                      {"output", api::ResponseOutputItems(answer, id)}};
  if (!as_is_provider.empty()) thread["provider"] = as_is_provider;
  std::string value = SerializeJson(thread);
  if (static_cast<int64_t>(value.size()) > config_->limits.max_conversation_bytes) {
    summary_.warnings.push_back("the conversation (" + std::to_string(value.size()) +
                                " bytes) is over limits.max_conversation_bytes and was not "
                                "kept: previous_response_id cannot continue it");
    co_return;
  }
  access::SharedState& state = access->state();
  const std::string key = StateKey("resp", caller_, id);
  const int64_t now = NowUnixMs();
  Status kept = co_await OnStateThread(
      state, gw_.query_pool_, [&] { return state.PutValue(key, value, ttl_s * 1000, now); });
  if (!kept.ok()) {
    summary_.warnings.push_back("the conversation was not kept: " + kept.message());
    co_return;
  }
  if (as_is_output == nullptr) co_return;
  // OpenAI's own output items, which a caller may name by id (item_reference) in a later turn:
  // kept for this key only, so a key can name no item it was not given.
  size_t n = 0;
  int64_t bytes = 0;  // (all of one response's items within one conversation's bound)
  for (const json::value& v : *as_is_output) {
    if (!v.is_object()) continue;
    if (++n > kMaxKeptItems) break;
    const std::string item_id = api::StringField(v.get_object(), "id");
    if (!api::IsItemId(item_id)) continue;
    std::string item = SerializeJson(json::object{{"provider", as_is_provider}, {"item", v}});
    bytes += static_cast<int64_t>(item.size());
    if (bytes > config_->limits.max_conversation_bytes) {
      summary_.warnings.push_back(
          "the response's items are over limits.max_conversation_bytes: "
          "some were not kept, and cannot be named by item_reference");
      co_return;
    }
    const std::string item_key = StateKey("item", caller_, item_id);
    Status put = co_await OnStateThread(
        state, gw_.query_pool_, [&] { return state.PutValue(item_key, item, ttl_s * 1000, now); });
    if (!put.ok()) {
      summary_.warnings.push_back("the response's items were not kept: " + put.message());
      co_return;
    }
  }
}

}  // namespace iris::gateway::proxy
