// The local SmolVLM2 provider: a bounded queue in front of one engine thread.
#include "gateway/providers/local/local_provider.h"

#include <boost/json.hpp>
#include <span>

#include "base/base64.h"
#include "base/time.h"
#include "engine/media/image.h"
#include "engine/runtime/engine.h"

namespace iris::gateway::providers {
namespace {

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
  thread_ = std::thread([this] { Loop(); });
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
    // The running generation plus max_queue waiting ones.
    if (queue_.size() + (busy_ ? 1 : 0) >= options_.max_queue + 1) {
      return ResourceExhausted("the local model's queue is full (" +
                               std::to_string(options_.max_queue) + " waiting)");
    }
    queue_.push_back(Job{std::move(request), std::move(sink)});
    stats_.queued.store(static_cast<int64_t>(queue_.size()));
  }
  cv_.notify_one();
  return OkStatus();
}

void LocalProvider::Loop() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      stats_.queued.store(static_cast<int64_t>(queue_.size()));
    }
    stats_.running.store(1);
    Status status = Run(job);
    stats_.running.store(0);
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    stats_.completed.fetch_add(1);
    job.sink.on_done(status);
  }
}

Status LocalProvider::Run(Job& job) {
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
      IRIS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, Base64Decode(p.data_base64));
      media::DecodeOptions decode;
      decode.max_pixels = static_cast<int64_t>(options_.max_image_pixels);
      auto image = media::DecodeImage(bytes, decode);
      if (!image.ok()) {
        // A bad or oversized image is the caller's fault (400), whatever code the decoder
        // used: never a 429/503 that a client or the router would retry.
        return InvalidArgument("image " + std::to_string(visuals.size() + 1) + ": " +
                               image.status().message());
      }
      total_pixels += static_cast<int64_t>(image->width) * image->height;
      if (total_pixels > options_.max_request_pixels) {
        return InvalidArgument("the request's images hold more than " +
                               std::to_string(options_.max_request_pixels) +
                               " pixels in all; the local model takes fewer or smaller images");
      }
      IRIS_ASSIGN_OR_RETURN(media::ProcessedImage pixels, engine_->PreprocessImage(*image));
      runtime::Visual visual;
      visual.pixels = std::move(pixels);
      visuals.push_back(std::move(visual));
      content.push_back(boost::json::object{{"type", "image"}});
    }
    messages.push_back(boost::json::object{{"role", RoleName(m.role)}, {"content", content}});
  }
  IRIS_ASSIGN_OR_RETURN(std::string prompt, engine_->RenderChat(messages));
  IRIS_ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine_->TokenizePrompt(prompt, visuals));

  runtime::GenerateOptions go;
  go.max_tokens = static_cast<int>(req.max_tokens.value_or(options_.default_max_tokens));
  // Unset temperature means greedy: the small checkpoints answer best that way.
  go.sampling.temperature = static_cast<float>(req.temperature.value_or(0.0));
  go.sampling.top_p = static_cast<float>(req.top_p.value_or(1.0));
  go.sampling.top_k = static_cast<int>(req.top_k.value_or(0));
  go.sampling.seed = static_cast<uint64_t>(req.seed.value_or(0));
  go.stop = req.stop;
  IRIS_RETURN_IF_ERROR(go.sampling.Validate());
  const int64_t room =
      engine_->config().text.max_position_embeddings - static_cast<int64_t>(ids.size());
  if (room <= 0) {
    return OutOfRange("the prompt is " + std::to_string(ids.size()) +
                      " tokens; the local model's context is " +
                      std::to_string(engine_->config().text.max_position_embeddings));
  }
  if (go.max_tokens > room) go.max_tokens = static_cast<int>(room);

  StreamEvent start;
  start.type = StreamEvent::Type::kStart;
  start.model = options_.model_name;
  start.created = NowUnixMs() / 1000;
  if (!job.sink.on_event(start)) return OkStatus();
  bool cancelled = false;
  auto result = engine_->Generate(
      ids, go,
      [&](std::string_view piece) {
        StreamEvent e;
        e.type = StreamEvent::Type::kTextDelta;
        e.text.assign(piece);
        if (!job.sink.on_event(e)) cancelled = true;
        return !cancelled;
      },
      visuals);
  if (!result.ok()) return result.status();
  if (cancelled) return OkStatus();
  const auto& r = *result;
  stats_.output_tokens.fetch_add(static_cast<int64_t>(r.tokens.size()));
  if (r.decode_seconds > 0) {
    stats_.last_decode_tokens_per_s.store(static_cast<double>(r.tokens.size()) / r.decode_seconds);
  }
  StreamEvent finish;
  finish.type = StreamEvent::Type::kFinish;
  finish.finish_reason = r.finish_reason == "length" ? FinishReason::kLength : FinishReason::kStop;
  job.sink.on_event(finish);
  StreamEvent usage;
  usage.type = StreamEvent::Type::kUsage;
  usage.usage.input_tokens = static_cast<int64_t>(r.prompt_tokens);
  usage.usage.output_tokens = static_cast<int64_t>(r.tokens.size());
  usage.usage.reported = true;
  job.sink.on_event(usage);
  return OkStatus();
}

}  // namespace iris::gateway::providers
