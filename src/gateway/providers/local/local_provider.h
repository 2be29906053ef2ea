// The built-in SmolVLM2 engine as a gateway provider: requests queue to one engine thread,
// which renders the checkpoint's chat template, decodes images, and hands them to the
// engine's scheduler; it steps every running generation together (continuous batching) and
// streams neutral StreamEvents back. The only gateway code that includes the engine.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::runtime {
class Engine;
class Scheduler;
struct SchedulerOptions;
}  // namespace iris::runtime
namespace iris::model {
class LoraAdapter;
}  // namespace iris::model

namespace iris::gateway::providers {

struct LocalOptions {
  std::string model_name = "smolvlm2";  // the id callers see (local/<model_name>)
  size_t max_queue = 16;                // waiting requests beyond the running ones
  size_t max_batch = 8;                 // generations stepped together
  size_t kv_cache_mb = 2048;            // KV cache budget (taken as it is needed)
  size_t prefill_chunk = 256;           // prompt tokens a request prefills per step
  size_t step_tokens = 64;              // rows of a step while others decode (SchedulerOptions)
  size_t image_cache_mb = 64;           // image features kept by content hash
  int default_max_tokens = 512;         // when the request names none
  uint64_t max_image_pixels = 4096ull * 4096ull;
  // Bounds checked before the engine works on a request: images per request (counted at
  // Submit, before any decoding) and decoded pixels over all of them (checked image by image,
  // before any tile is preprocessed).
  int max_images = 8;
  int64_t max_request_pixels = int64_t{32} << 20;
  // LoRA adapters of the engine's model, by the name callers give after the model id
  // (local/smolvlm2:<name>). Requests for different adapters share the engine's batches.
  std::map<std::string, std::shared_ptr<const model::LoraAdapter>> adapters;
};

// Receives one generation's events on the engine thread. `on_event` returns false to stop
// the generation (the caller went away); `on_done` is called exactly once, last, with OK
// or the error that ended the request.
struct LocalSink {
  std::function<bool(const StreamEvent&)> on_event;
  std::function<void(const Status&)> on_done;
  // Optional: true once the caller is gone, so a queued or prefilling request is dropped
  // before it produces anything.
  std::function<bool()> gone;
};

// Counters for /metrics, read from any thread.
struct LocalStats {
  std::atomic<int64_t> queued{0};   // waiting for the engine (not yet running)
  std::atomic<int64_t> running{0};  // generations being stepped
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> output_tokens{0};
  std::atomic<double> last_decode_tokens_per_s{0};
  std::atomic<int64_t> kv_blocks_in_use{0};
  std::atomic<int64_t> kv_blocks_total{0};
  std::atomic<int64_t> kv_block_bytes{0};
  std::atomic<int64_t> prefix_hit_tokens{0};   // ever
  std::atomic<int64_t> image_cache_hits{0};    // ever
  std::atomic<int64_t> image_cache_misses{0};  // ever
  std::atomic<int64_t> steps{0};               // batched forward passes, ever
  // Batched steps by the number of sequences in them (max_batch is at most 256), ever.
  std::array<std::atomic<uint64_t>, 257> steps_by_sequences{};
  // Batched steps by their wall time in milliseconds, rounded up (the last: over a second),
  // ever; and the sum of their times in seconds.
  std::array<std::atomic<uint64_t>, 1002> steps_by_ms{};
  std::atomic<double> step_seconds{0};
};

class LocalProvider {
 public:
  // Takes the loaded engine; starts the engine thread.
  LocalProvider(std::unique_ptr<runtime::Engine> engine, LocalOptions options);
  ~LocalProvider();  // finishes the running generation, fails the queued ones, joins
  LocalProvider(const LocalProvider&) = delete;
  LocalProvider& operator=(const LocalProvider&) = delete;

  // Checks what the engine can take (text, inline images; no tools, no JSON mode), then
  // queues the request. request.model picks an adapter after a colon ("smolvlm2:NAME"); an
  // unknown one is kInvalidArgument. kUnimplemented for an input it cannot take (the router falls
  // over to another target), kResourceExhausted when the queue is full. Thread-safe.
  Status Submit(ChatRequest request, LocalSink sink);

  const std::string& model_name() const { return options_.model_name; }
  const LocalOptions& options() const { return options_; }
  // What the scheduler was given (fixed at construction; readable from any thread).
  const runtime::SchedulerOptions& scheduler_options() const;
  int engine_threads() const;  // the engine's compute threads
  const LocalStats& stats() const { return stats_; }
  bool has_vision() const;

 private:
  struct Job {
    ChatRequest request;
    LocalSink sink;
    std::shared_ptr<const model::LoraAdapter> adapter;  // null: the base model
    std::string model;                                  // the id answers carry
  };
  void Loop();
  // Decodes, renders and tokenizes a job and hands it to the scheduler; on an error the job
  // is done.
  void Start(Job job);
  void PublishStats();

  std::unique_ptr<runtime::Engine> engine_;
  LocalOptions options_;
  LocalStats stats_;
  // The engine thread's (set before it starts, never reset; scheduler_options() reads its
  // constant options from any thread).
  std::unique_ptr<runtime::Scheduler> scheduler_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t in_scheduler_ = 0;  // under mu_: handed to the scheduler (running or waiting)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace iris::gateway::providers
