// Fuzz harness: bytes as a provider's answer. The first byte picks the provider (OpenAI,
// Mistral, an OpenAI-compatible server, Anthropic, Gemini) and what the rest is: a 2xx body, an
// error body with a status, or an SSE stream fed in pieces (the second byte picks their size),
// read for any caller or as the answer to a body sent as is (Anthropic's own message or events
// kept for an Anthropic caller).
// What decodes is encoded for every caller's wire format (OpenAI chat, Anthropic, Responses, the
// AI SDK gateway protocol), bodies and streams alike, and what comes out must be what a client
// can read: JSON objects, SSE events of JSON objects, iris's own report unforged by the upstream,
// an error with a message and a status a client understands. Seeds in
// tests/data/fuzz/upstream_response_corpus/; ctest fuzz_upstream_response, or libFuzzer with
// -DIRIS_BUILD_FUZZ=ON.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "gateway/api/ai_gateway.h"
#include "gateway/api/anthropic.h"
#include "gateway/api/chat.h"
#include "gateway/api/errors.h"
#include "gateway/api/openai.h"
#include "gateway/api/responses.h"
#include "gateway/http/sse.h"
#include "gateway/providers/anthropic/anthropic_translator.h"
#include "gateway/providers/gemini/gemini_translator.h"
#include "gateway/providers/openai/openai_translator.h"
#include "gateway/providers/provider_table.h"

namespace {

namespace json = boost::json;
using namespace iris::gateway;

void Check(bool ok) {
  if (!ok) std::abort();
}

// The provider's name is a member an upstream could try to echo; iris's report must survive.
const json::object& IrisReport() {
  static const auto* const kIris = new json::object{
      {"request_id", "req_fuzz"}, {"provider", "fuzz"}, {"model", "m"}, {"attempts", 1}};
  return *kIris;
}
constexpr double kCost = 0.25;

const std::vector<std::unique_ptr<providers::Translator>>& Translators() {
  static const auto* const kTranslators = [] {
    auto* v = new std::vector<std::unique_ptr<providers::Translator>>;
    v->push_back(providers::MakeOpenAITranslator(providers::OpenAIFlavor::kOpenAI));
    v->push_back(providers::MakeOpenAITranslator(providers::OpenAIFlavor::kMistral));
    v->push_back(providers::MakeOpenAITranslator(providers::OpenAIFlavor::kCompatible, "vllm"));
    v->push_back(providers::MakeAnthropicTranslator());
    v->push_back(providers::MakeGeminiTranslator());
    return v;
  }();
  return *kTranslators;
}

json::object ParseObject(std::string_view text) {
  iris::Result<json::value> v = iris::ParseJson(text, "encoded");
  Check(v.ok() && v->is_object());
  return std::move(v->as_object());
}

// iris's report where an encoder puts it: ours, whatever the upstream sent.
void CheckReport(const json::value* report) {
  Check(report != nullptr && report->is_object());
  const json::object& o = report->as_object();
  for (const auto& kv : IrisReport()) {
    const json::value* v = o.if_contains(kv.key());
    Check(v != nullptr && *v == kv.value());
  }
}

// Where a wire format's reader finds iris's report: beside the answer ("" below), in a
// Responses API event's response object, in the AI SDK's providerMetadata.
using Holders = std::span<const std::string_view>;
constexpr std::string_view kBeside[] = {""};
constexpr std::string_view kResponses[] = {"", "response"};
constexpr std::string_view kAiSdk[] = {"providerMetadata"};

// Every report in `o`'s `holders` is ours. Returns how many there are.
int CheckReports(const json::object& o, Holders holders) {
  int found = 0;
  for (std::string_view holder : holders) {
    const json::object* in = &o;
    if (!holder.empty()) {
      const json::value* h = o.if_contains(holder);
      if (h == nullptr || !h->is_object()) continue;
      in = &h->get_object();
    }
    if (const json::value* report = in->if_contains("iris")) {
      CheckReport(report);
      ++found;
    }
  }
  return found;
}

// `usage.cost` (in `at`) is iris's. A provider's own object (as_is) may come without usage.
void CheckCost(const json::object& at, bool as_is = false) {
  const json::value* usage = at.if_contains("usage");
  if (as_is && (usage == nullptr || !usage->is_object())) return;
  Check(usage != nullptr && usage->is_object());
  const json::value* cost = usage->as_object().if_contains("cost");
  Check(cost != nullptr && cost->is_double() && cost->get_double() == kCost);
}

void CheckBodies(const ChatResponse& r) {
  const json::object openai = ParseObject(api::EncodeOpenAIChatResponse(r, &IrisReport(), kCost));
  Check(CheckReports(openai, kBeside) == 1);
  CheckCost(openai);

  const json::object anthropic = ParseObject(api::EncodeAnthropicResponse(r, &IrisReport(), kCost));
  Check(CheckReports(anthropic, kBeside) == 1);
  Check(anthropic.at("type") == "message");
  const json::value* cost = anthropic.at("iris").as_object().if_contains("cost_usd");
  Check(cost != nullptr && cost->is_double() && cost->get_double() == kCost);

  api::ResponseMeta meta;
  meta.id = "resp_fuzz";
  meta.created_at = 1;
  meta.model = "m";
  const json::object responses =
      ParseObject(api::EncodeResponsesResponse(r, meta, &IrisReport(), kCost));
  Check(CheckReports(responses, kBeside) == 1);
  CheckCost(responses);
  if (r.as_is != nullptr && r.as_is_dialect == Dialect::kResponses) {
    const json::object as_is = ParseObject(api::EncodeAsIsResponse(*r.as_is, &IrisReport(), kCost));
    Check(CheckReports(as_is, kBeside) == 1);
    CheckCost(as_is, /*as_is=*/true);
  }
  if (r.as_is != nullptr && r.as_is_dialect == Dialect::kAnthropic) {
    const json::object as_is =
        ParseObject(api::EncodeAnthropicAsIsResponse(*r.as_is, &IrisReport(), kCost));
    Check(CheckReports(as_is, kBeside) == 1);
    const json::value* own = as_is.at("iris").as_object().if_contains("cost_usd");
    Check(own != nullptr && own->is_double() && own->get_double() == kCost);
  }
  const json::object gateway =
      ParseObject(api::EncodeAiGatewayGenerateResult(r, 3, {}, &IrisReport(), kCost));
  Check(gateway.contains("content") && CheckReports(gateway, kAiSdk) == 1);
}

void CheckError(const GatewayError& e) {
  Check(!e.message.empty());
  const int status = api::HttpStatus(e.error_class);
  Check(status >= 400 && status <= 599);
  Check(!e.retry_after_s ||
        (*e.retry_after_s >= 0 && *e.retry_after_s <= providers::kMaxUpstreamRetryAfterS));
  ParseObject(api::OpenAIErrorBody(e));
  ParseObject(api::AnthropicErrorBody(e));
  ParseObject(api::AiGatewayErrorBody(e, "m"));
}

// Every event of an encoder's stream is a JSON object (or OpenAI's [DONE]), whole SSE, and
// any report in it is ours. Returns how many reports there are.
int CheckStream(const std::string& bytes, bool typed, Holders holders) {
  http::SseParser parser(size_t{64} << 20);
  std::vector<http::SseEvent> events;
  parser.Feed(bytes, events);
  Check(!parser.overflowed() && !parser.HasPartialEvent());
  int reports = 0;
  for (const http::SseEvent& e : events) {
    if (e.data == "[DONE]") continue;
    const json::object o = ParseObject(e.data);
    // Anthropic's and the Responses API's events name their type twice.
    if (typed && !e.event.empty()) {
      const json::value* type = o.if_contains("type");
      Check(type != nullptr && type->is_string() && type->get_string() == e.event);
    }
    reports += CheckReports(o, holders);
  }
  return reports;
}

struct Encoders {
  explicit Encoders(bool include_usage)
      : openai(include_usage), responses(api::ResponseMeta{"resp_fuzz", 1, "m", nullptr}) {}
  api::OpenAIStreamEncoder openai;
  api::AnthropicStreamEncoder anthropic;
  api::ResponsesStreamEncoder responses;
  api::AiGatewayStreamEncoder gateway{3, {}};
  std::string out[4];

  void Encode(const StreamEvent& e) {
    out[0] += openai.Encode(e);
    out[1] += anthropic.Encode(e);
    out[2] += responses.Encode(e);
    out[3] += gateway.Encode(e);
  }
  void Finish() {
    out[0] += openai.Finish(&IrisReport(), kCost);
    out[1] += anthropic.Finish(&IrisReport(), kCost);
    out[2] += responses.Finish(&IrisReport(), kCost);
    out[3] += gateway.Finish(&IrisReport(), kCost);
  }
  void Error(const GatewayError& e) {
    out[0] += openai.Error(e);
    out[1] += anthropic.Error(e);
    out[2] += responses.Error(e);
    out[3] += gateway.Error(e);
  }
  // A stream that finished carries iris's report once, in every wire format.
  void CheckAll(bool finished) const {
    const int reports[] = {CheckStream(out[0], false, kBeside), CheckStream(out[1], true, kBeside),
                           CheckStream(out[2], true, kResponses),
                           CheckStream(out[3], false, kAiSdk)};
    for (int n : reports) Check(finished ? n == 1 : n == 0);
  }
};

void RunStream(const providers::Translator& tr, std::string_view bytes, size_t piece,
               bool include_usage, bool as_is) {
  std::unique_ptr<providers::StreamTranslator> st =
      as_is ? tr.NewAsIsStreamTranslator() : tr.NewStreamTranslator();
  http::SseParser parser(4096);  // as limits.max_stream_event_bytes bounds it
  Encoders enc(include_usage);
  ChatResponse folded;
  std::optional<iris::Status> failure;
  std::vector<http::SseEvent> sse;
  auto take = [&](iris::Result<std::vector<StreamEvent>> events) {
    if (!events.ok()) {
      Check(!events.status().message().empty());
      failure = events.status();
      return;
    }
    for (const StreamEvent& e : *events) {
      enc.Encode(e);
      FoldStreamEvent(folded, e);
    }
  };
  for (size_t at = 0; at < bytes.size() && !failure; at += piece) {
    sse.clear();
    parser.Feed(bytes.substr(at, piece), sse);
    if (parser.overflowed()) failure = iris::DataLoss("an event is too large");
    for (const http::SseEvent& e : sse) {
      if (failure) break;
      take(st->OnEvent(e));
    }
  }
  if (!failure) take(st->OnEnd());
  if (failure) {
    enc.Error(api::FromStatus(*failure));
  } else {
    enc.Finish();
    CheckBodies(folded);  // (what a caller who did not stream gets of a streamed answer)
  }
  enc.CheckAll(!failure);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first byte: bits 0-2 the provider, bit 3 a flag (the answer to a body sent as is for a
  // 2xx body, a retry-after header for an error, include_usage for a stream), bits 4-5 the form
  // (0: a 2xx body, 1: an error, 2: a stream, 3: a stream answering a body sent as is).
  const auto& translators = Translators();
  const size_t pick = data[0] & 7;
  if (pick >= translators.size()) return 0;
  const providers::Translator& tr = *translators[pick];
  const unsigned mode = (data[0] >> 4) & 3;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (mode == 0) {
    iris::Result<ChatResponse> r =
        (data[0] & 8) != 0 ? tr.DecodeAsIsResponse(rest) : tr.DecodeResponse(rest);
    if (!r.ok()) {
      Check(!r.status().message().empty());
      CheckError(api::FromStatus(r.status()));
      return 0;
    }
    CheckBodies(*r);
  } else if (mode == 1) {
    // A status from 400 to 599, and a retry-after header as upstreams write it (or none).
    const int status = 400 + data[1] % 200;
    const std::string_view retry_after = (data[0] & 8) != 0 ? "17" : "";
    CheckError(tr.DecodeError(status, rest, retry_after));
  } else {
    RunStream(tr, rest, 1 + data[1] % 97, (data[0] & 8) != 0, /*as_is=*/mode == 3);
  }
  return 0;
}
