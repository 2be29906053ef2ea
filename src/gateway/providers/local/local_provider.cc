// The local SmolVLM2 provider: a bounded queue in front of one engine thread that steps the
// engine's scheduler.
#include "gateway/providers/local/local_provider.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <span>

#include "base/base64.h"
#include "base/time.h"
#include "engine/media/image.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/scheduler.h"
#include "gateway/providers/local/local_stream.h"

namespace iris::gateway::providers {
namespace {

// The least rows a prompt chunk gets beside decoders, whatever step_tokens says.
constexpr size_t kMinPrefillFloor = 8;

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
    case Role::kTool:
      return "tool";
  }
  return "user";
}

// What the engine cannot take, as a message that says so; OK when it can take it all.
Status CheckSupported(const ChatRequest& request, bool has_vision) {
  if (request.reasoning_effort || request.thinking_budget) {
    return Unimplemented("the local model does not reason; remove " +
                         std::string(request.reasoning_effort ? "reasoning_effort" : "thinking"));
  }
  if (!request.tools.empty()) {
    return Unimplemented("the local model does not support tools");
  }
  if (request.response_format && request.response_format->type != ResponseFormat::Type::kText) {
    return Unimplemented("the local model does not support response_format (JSON mode)");
  }
  for (const Message& m : request.messages) {
    if (m.role == Role::kTool || !m.tool_calls.empty()) {
      return Unimplemented("the local model does not support tool calls or tool results");
    }
    for (const ContentPart& p : m.content) {
      if (p.type != ContentPart::Type::kImage) continue;
      if (!has_vision) return Unimplemented("the local model has no vision tower");
      if (p.data_base64.empty()) {
        return Unimplemented("the local model takes images as data: URLs or fetched bytes; got " +
                             p.url.substr(0, 80));
      }
    }
  }
  if (request.messages.empty()) return InvalidArgument("messages: must not be empty");
  return OkStatus();
}

}  // namespace

LocalProvider::LocalProvider(std::unique_ptr<runtime::Engine> engine, LocalOptions options)
    : engine_(std::move(engine)), options_(std::move(options)) {
  options_.max_batch =
      std::clamp<size_t>(options_.max_batch, 1, stats_.steps_by_sequences.size() - 1);
  const model::TextConfig& tc = engine_->config().text;
  const size_t block_bytes = model::KvPool::BlockBytes(
      tc.num_hidden_layers,
      static_cast<size_t>(tc.num_key_value_heads) * static_cast<size_t>(tc.head_dim),
      engine_->kv_dtype());
  const size_t blocks = std::max<size_t>(1, (options_.kv_cache_mb << 20) / block_bytes);
  runtime::SchedulerOptions so;
  so.max_batch = options_.max_batch;
  so.prefill_chunk = std::max<size_t>(options_.prefill_chunk, 1);
  so.step_tokens = std::max<size_t>(options_.step_tokens, 1);
  // A prompt chunk beside decoders gets at least a quarter of the step's rows, from 8 rows (a
  // long prompt beside many decoders still moves: 4k tokens take 512 steps) to 16 (the
  // default's): a small step_tokens keeps every step small, at the cost of slower prompts.
  so.min_prefill = std::clamp<size_t>(so.step_tokens / 4, kMinPrefillFloor, so.min_prefill);
  so.max_queue = SIZE_MAX;  // Submit bounds the queue
  so.image_cache_bytes = options_.image_cache_mb << 20;
  scheduler_ = std::make_unique<runtime::Scheduler>(*engine_, engine_->NewKvPool(blocks), so);
  stats_.kv_blocks_total.store(static_cast<int64_t>(blocks));
  stats_.kv_block_bytes.store(static_cast<int64_t>(block_bytes));
  thread_ = std::thread([this] { Loop(); });
}

const runtime::SchedulerOptions& LocalProvider::scheduler_options() const {
  return scheduler_->options();
}

LocalProvider::~LocalProvider() {
  std::deque<Job> abandoned;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    abandoned.swap(queue_);
  }
  cv_.notify_all();
  for (Job& job : abandoned) {
    job.sink.on_done(Status(ErrorCode::kUnavailable, "the local model is shutting down"));
  }
  if (thread_.joinable()) thread_.join();
}

int LocalProvider::engine_threads() const { return engine_->threads(); }

bool LocalProvider::has_vision() const { return engine_->vision_model() != nullptr; }

Status LocalProvider::Submit(ChatRequest request, LocalSink sink) {
  IRIS_RETURN_IF_ERROR(CheckSupported(request, has_vision()));
  std::shared_ptr<const model::LoraAdapter> adapter;
  std::string model = options_.model_name;
  if (const size_t colon = request.model.find(':'); colon != std::string::npos) {
    // local/<model>:<adapter>; the name comes from the caller: shown back printable and short.
    auto shown = [](std::string_view s) {
      std::string out;
      for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
      return out + (s.size() > 64 ? "..." : "");
    };
    const std::string_view base = std::string_view(request.model).substr(0, colon);
    if (base != options_.model_name) {
      return InvalidArgument("the local model is local/" + options_.model_name + ", not local/" +
                             shown(base) + " (adapters are local/" + options_.model_name +
                             ":NAME)");
    }
    const std::string name = request.model.substr(colon + 1);
    auto it = options_.adapters.find(name);
    if (it == options_.adapters.end()) {
      std::string known;
      for (const auto& [n, a] : options_.adapters) known += (known.empty() ? "" : ", ") + n;
      return InvalidArgument(
          "the local model has no adapter '" + shown(name) + "' (" +
          (known.empty() ? std::string("none is configured") : "configured: " + known) + ")");
    }
    adapter = it->second;
    model += ":" + name;
  }
  int images = 0;
  for (const Message& m : request.messages) {
    for (const ContentPart& p : m.content) images += p.type == ContentPart::Type::kImage ? 1 : 0;
  }
  if (images > options_.max_images) {
    // Checked before anything is decoded; another target may take that many.
    return Unimplemented("the local model takes at most " + std::to_string(options_.max_images) +
                         " images per request, got " + std::to_string(images));
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status(ErrorCode::kUnavailable, "the local model is shutting down");
    // max_batch generations running plus max_queue waiting, first come first served.
    if (queue_.size() + in_scheduler_ >= options_.max_queue + options_.max_batch) {
      return ResourceExhausted("the local model is busy (" + std::to_string(options_.max_batch) +
                               " generations running, " + std::to_string(options_.max_queue) +
                               " waiting)");
    }
    queue_.push_back(
        Job{std::move(request), std::move(sink), std::move(adapter), std::move(model)});
    stats_.queued.fetch_add(1);
  }
  cv_.notify_one();
  return OkStatus();
}

void LocalProvider::Loop() {
  for (;;) {
    std::deque<Job> jobs;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      if (scheduler_->idle()) {
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      }
      jobs.swap(queue_);
      stopping = stopping_;
      in_scheduler_ += jobs.size();
    }
    for (Job& job : jobs) Start(std::move(job));
    if (stopping) {
      // Running generations finish; nothing new starts.
      scheduler_->CancelWaiting(
          Status(ErrorCode::kUnavailable, "the local model is shutting down"));
      if (scheduler_->idle()) {
        PublishStats();
        return;
      }
    }
    size_t rows = 0;
    const auto step_start = std::chrono::steady_clock::now();
    {
      LocalStream::HeldRings held;  // the step's events wake their readers after it
      rows = scheduler_->Step();
    }
    if (rows > 0) {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - step_start;
      stats_.steps.fetch_add(1);
      const size_t n = scheduler_->last_step_sequences();
      if (n > 0) stats_.steps_by_sequences[n].fetch_add(1);
      const double ms = std::ceil(took.count() * 1e3);
      const size_t last = stats_.steps_by_ms.size() - 1;
      stats_.steps_by_ms[ms < static_cast<double>(last) ? static_cast<size_t>(ms) : last].fetch_add(
          1);
      stats_.step_seconds.fetch_add(took.count());
    }
    PublishStats();
  }
}

void LocalProvider::PublishStats() {
  const runtime::SchedulerStats st = scheduler_->stats();
  {
    std::lock_guard lock(mu_);
    in_scheduler_ = st.running + st.waiting;
    stats_.queued.store(static_cast<int64_t>(queue_.size() + st.waiting));
  }
  stats_.running.store(static_cast<int64_t>(st.running));
  stats_.kv_blocks_in_use.store(static_cast<int64_t>(st.kv_blocks_in_use));
  stats_.prefix_hit_tokens.store(st.prefix_hit_tokens);
  stats_.image_cache_hits.store(st.image_cache_hits);
  stats_.image_cache_misses.store(st.image_cache_misses);
}

void LocalProvider::Start(Job job) {
  auto fail = [&](const Status& st) {
    stats_.completed.fetch_add(1);
    job.sink.on_done(st);
  };
  if (job.sink.gone && job.sink.gone()) {
    fail(OkStatus());
    return;
  }
  const ChatRequest& req = job.request;
  // Messages in the shape the checkpoint's chat template reads; images decoded in order.
  std::vector<runtime::Visual> visuals;
  int64_t total_pixels = 0;  // decoded so far; bounded before any tile is preprocessed
  boost::json::array messages;
  for (const Message& m : req.messages) {
    boost::json::array content;
    for (const ContentPart& p : m.content) {
      if (p.type == ContentPart::Type::kText) {
        content.push_back(boost::json::object{{"type", "text"}, {"text", p.text}});
        continue;
      }
      auto bytes = Base64Decode(p.data_base64);
      if (!bytes.ok()) return fail(bytes.status());
      media::DecodeOptions decode;
      decode.max_pixels = static_cast<int64_t>(options_.max_image_pixels);
      auto image = media::DecodeImage(*bytes, decode);
      if (!image.ok()) {
        // A bad or oversized image is the caller's fault (400), whatever code the decoder
        // used: never a 429/503 that a client or the router would retry.
        return fail(InvalidArgument("image " + std::to_string(visuals.size() + 1) + ": " +
                                    image.status().message()));
      }
      total_pixels += static_cast<int64_t>(image->width) * image->height;
      if (total_pixels > options_.max_request_pixels) {
        return fail(InvalidArgument(
            "the request's images hold more than " + std::to_string(options_.max_request_pixels) +
            " pixels in all; the local model takes fewer or smaller images"));
      }
      auto pixels = engine_->PreprocessImage(*image);
      if (!pixels.ok()) return fail(pixels.status());
      runtime::Visual visual;
      visual.pixels = std::move(pixels).value();
      visuals.push_back(std::move(visual));
      content.push_back(boost::json::object{{"type", "image"}});
    }
    messages.push_back(boost::json::object{{"role", RoleName(m.role)}, {"content", content}});
  }
  auto prompt = engine_->RenderChat(messages);
  if (!prompt.ok()) {
    // The model's chat template refused this conversation (raise_exception, or a template
    // that runs past its bounds on it): never a 429/503 that a client or the router would
    // retry with the same messages.
    return fail(InvalidArgument("the model's chat template cannot render this conversation: " +
                                prompt.status().message()));
  }
  auto ids = engine_->TokenizePrompt(*prompt, visuals);
  if (!ids.ok()) return fail(ids.status());

  runtime::SequenceRequest sr;
  runtime::GenerateOptions& go = sr.options;
  const int64_t max_tokens = req.max_tokens.value_or(options_.default_max_tokens);
  go.max_tokens = static_cast<int>(std::clamp<int64_t>(max_tokens, 0, 1 << 30));
  // Unset temperature means greedy: the small checkpoints answer best that way.
  go.sampling.temperature = static_cast<float>(req.temperature.value_or(0.0));
  go.sampling.top_p = static_cast<float>(req.top_p.value_or(1.0));
  go.sampling.top_k = static_cast<int>(req.top_k.value_or(0));
  go.sampling.seed = static_cast<uint64_t>(req.seed.value_or(0));
  go.stop = req.stop;
  go.adapter = job.adapter;
  sr.prompt = std::move(ids).value();
  sr.visuals = std::move(visuals);

  // The sink is shared by the callbacks; they all run on this thread.
  auto sink = std::make_shared<LocalSink>(std::move(job.sink));
  auto cancelled = std::make_shared<bool>(false);
  sr.on_text = [sink, cancelled](std::string_view piece) {
    StreamEvent e;
    e.type = StreamEvent::Type::kTextDelta;
    e.text.assign(piece);
    if (!sink->on_event(e)) *cancelled = true;
    return !*cancelled;
  };
  sr.cancelled = [sink, cancelled] { return *cancelled || (sink->gone && sink->gone()); };
  sr.on_done = [this, sink, cancelled](Result<runtime::GenerateResult> r) {
    stats_.completed.fetch_add(1);
    if (!r.ok()) {
      sink->on_done(r.status());
      return;
    }
    stats_.output_tokens.fetch_add(static_cast<int64_t>(r->tokens.size()));
    if (r->decode_seconds > 0) {
      stats_.last_decode_tokens_per_s.store(static_cast<double>(r->tokens.size()) /
                                            r->decode_seconds);
    }
    if (!*cancelled && !(sink->gone && sink->gone())) {
      StreamEvent finish;
      finish.type = StreamEvent::Type::kFinish;
      finish.finish_reason =
          r->finish_reason == "length" ? FinishReason::kLength : FinishReason::kStop;
      sink->on_event(finish);
      StreamEvent usage;
      usage.type = StreamEvent::Type::kUsage;
      usage.usage.input_tokens = static_cast<int64_t>(r->prompt_tokens);
      usage.usage.output_tokens = static_cast<int64_t>(r->tokens.size());
      usage.usage.reported = true;
      sink->on_event(usage);
    }
    sink->on_done(OkStatus());
  };
  Status added = scheduler_->Add(std::move(sr));
  if (!added.ok()) {
    stats_.completed.fetch_add(1);
    sink->on_done(added);
    return;
  }
  // Queued: the stream opens (its first text comes from a later step).
  StreamEvent start;
  start.type = StreamEvent::Type::kStart;
  start.model = job.model;
  start.created = NowUnixMs() / 1000;
  if (!sink->on_event(start)) *cancelled = true;  // dropped at the next step
}

}  // namespace iris::gateway::providers
