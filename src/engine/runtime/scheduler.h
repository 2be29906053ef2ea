// Many generations on one engine at once (continuous batching). Each request becomes a
// sequence with its own KV blocks, sampler, detokenizer and stop state; every Step runs one
// batched forward whose rows are the next token of every decoding sequence plus a chunk of a
// prompt being prefilled, so a long prompt never holds the others' tokens back for more than a
// chunk. A request joins when its KV blocks fit the pool (first come, first served) and leaves
// the moment it ends or its caller goes away, freeing its blocks. Image and video features are
// kept by content hash, so a second question about the same picture skips the vision tower,
// and prompts that start alike share the KV blocks of their common prefix.
//
// A Scheduler is driven from one thread (Add and Step); callbacks run on that thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "engine/model/kv_cache.h"
#include "engine/runtime/engine.h"

namespace iris::runtime {

struct SchedulerOptions {
  size_t max_batch = 8;        // sequences stepped together
  size_t prefill_chunk = 256;  // prompt tokens one sequence prefills per step
  // While others decode, a step carries this many rows (their tokens plus a prompt chunk,
  // which always gets at least min_prefill, so many decoders take a step past it): a long
  // prompt arriving costs the running answers a slightly slower step, never a stall of a
  // whole prefill.
  size_t step_tokens = 64;
  size_t min_prefill = 16;
  // Likewise an image tile goes through the vision tower this many encoder layers per step
  // while others decode (a whole tile at once otherwise).
  size_t vision_layers = 1;
  size_t max_queue = 64;  // sequences waiting for room beyond the running ones
  size_t image_cache_bytes = size_t{64} << 20;  // image features kept by content hash
  bool prefix_cache = true;                     // share the KV blocks of common prompt prefixes
};

struct SequenceRequest {
  std::vector<int32_t> prompt;
  std::vector<Visual> visuals;
  GenerateOptions options;
  TextCallback on_text;             // text as it is safe to print; false cancels
  std::function<bool()> cancelled;  // optional; checked before every step
  // Called exactly once, last: the result (what was generated before a cancel included), or
  // the error that ended the sequence.
  std::function<void(Result<GenerateResult>)> on_done;
  // Tests: every logits row the sequence samples from, in order.
  std::function<void(std::span<const float>)> on_logits;
};

struct SchedulerStats {
  size_t running = 0;  // sequences admitted (holding KV blocks)
  size_t waiting = 0;  // queued for room
  size_t kv_blocks_in_use = 0;
  size_t kv_blocks_total = 0;      // 0: the pool grows as needed
  int64_t prefix_hit_tokens = 0;   // prompt positions taken from shared blocks
  int64_t image_cache_hits = 0;    // visuals whose features came from the cache
  int64_t image_cache_misses = 0;  // visuals encoded
};

class Scheduler {
 public:
  Scheduler(Engine& engine, std::shared_ptr<model::KvPool> pool, SchedulerOptions options);
  ~Scheduler();  // ends every sequence left with kUnavailable
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Checks the request (token ids, sampling, context and KV room) and queues it. On an error
  // nothing is queued and on_done is not called. kResourceExhausted when the queue is full.
  Status Add(SequenceRequest request);

  // Runs one step. Returns the number of rows it ran (0: nothing to do).
  size_t Step();

  // Ends every sequence, running and queued, with `why`.
  void CancelAll(const Status& why);
  // Ends the queued sequences (not yet running) with `why`.
  void CancelWaiting(const Status& why);

  // Sequences in the last step's batched forward.
  size_t last_step_sequences() const { return last_step_sequences_; }
  // Set by the constructor, never written after: readable from any thread.
  const SchedulerOptions& options() const { return options_; }

  bool idle() const { return running_.empty() && waiting_.empty(); }
  SchedulerStats stats() const;

 private:
  struct Sequence;
  class FeatureCache;
  class PrefixCache;

  void Admit();
  bool EncodeOneVisual(bool others_waiting);
  void Finish(Sequence& s, const Status& status);  // OK: the sequence's result
  void Sample(Sequence& s, std::span<float> logits);

  Engine& engine_;
  std::shared_ptr<model::KvPool> pool_;
  SchedulerOptions options_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::unique_ptr<FeatureCache> features_;
  std::unique_ptr<PrefixCache> prefixes_;
  int64_t prefix_hit_tokens_ = 0;
  int64_t image_hits_ = 0;
  size_t last_step_sequences_ = 0;
  int64_t image_misses_ = 0;
  // A finished tile's scratch (tens of MB), handed to the next tile begun: fresh pages for
  // every tile cost more than its norms and activations.
  model::VisionModel::TileState spare_tile_;
  // The last step's logits, reused by the next (Step's thread only) unless they grew past
  // kKeepLogitsBytes: fresh pages for 3 MB of logits a step cost page faults too.
  static constexpr size_t kKeepLogitsBytes = size_t{32} << 20;
  std::vector<float> step_logits_;
};

}  // namespace iris::runtime
