// Signatures of tool calls: a provider that signs the calls it makes (Gemini's thoughtSignature,
// providers::ProviderFacts::signs_tool_calls) wants each signature back with its call in the
// next turn, and no caller's SDK carries it (OpenAI and Anthropic tool calls have no place for
// it). iris keeps each signature in the shared state under the caller's key and the call's id,
// for limits.response_ttl_s, and puts it back on the history's calls before such a provider is
// tried; a call iris has none for goes as the translator decides (Gemini 3: its documented
// stand-in).
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

using boost::asio::awaitable;

namespace {

// Calls looked up per request (the latest first), and the longest call id kept or looked up.
constexpr size_t kMaxLookups = 64;
constexpr size_t kMaxCallId = 256;

std::string SignatureKey(const access::Caller& caller, std::string_view call_id) {
  std::string key = "sig:";
  key += caller.key_id().empty() ? "-" : caller.key_id();
  key += ":";
  key += call_id;
  return key;
}

}  // namespace

awaitable<void> Call::KeepSignatures(const std::vector<ToolCall>& calls) {
  access::Access* access = gw_.options_.access;
  const int64_t ttl_s = config_->limits.response_ttl_s;
  if (access == nullptr || ttl_s == 0) co_return;
  access::SharedState& state = access->state();
  for (const ToolCall& call : calls) {
    if (call.signature.empty() || call.id.empty() || call.id.size() > kMaxCallId) continue;
    const std::string key = SignatureKey(caller_, call.id);
    const int64_t now = NowUnixMs();
    Status kept = co_await OnStateThread(state, gw_.query_pool_, [&] {
      return state.PutValue(key, call.signature, ttl_s * 1000, now);
    });
    if (!kept.ok()) {
      summary_.warnings.push_back("the signature of tool call " + call.id +
                                  " was not kept: " + kept.message());
      co_return;
    }
  }
}

awaitable<void> Call::LoadSignatures() {
  signatures_loaded_ = true;
  access::Access* access = gw_.options_.access;
  if (access == nullptr || config_->limits.response_ttl_s == 0) co_return;
  access::SharedState& state = access->state();
  size_t lookups = 0;
  for (auto m = req_.messages.rbegin(); m != req_.messages.rend(); ++m) {
    for (ToolCall& call : m->tool_calls) {
      if (!call.signature.empty() || call.id.empty() || call.id.size() > kMaxCallId) continue;
      if (++lookups > kMaxLookups) co_return;
      const std::string key = SignatureKey(caller_, call.id);
      const int64_t now = NowUnixMs();
      Result<std::optional<std::string>> got = co_await OnStateThread(
          state, gw_.query_pool_, [&state, &key, now] { return state.GetValue(key, now); });
      if (!got.ok()) co_return;  // (the stand-in then; an unreachable store fails nothing)
      if (got->has_value()) call.signature = std::move(**got);
    }
  }
}

}  // namespace iris::gateway::proxy
