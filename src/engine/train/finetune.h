// `iris finetune`'s loop: LoRA on the text model (vision tower frozen; each image's features
// computed once and kept), AdamW with a cosine schedule after a linear warmup, gradient
// clipping, the loss on the assistant tokens only (the mean over every labelled token of a
// step, however the step's conversations are split into micro-batches). Every save_every
// steps, and when stopped, it writes a checkpoint (adapter, AdamW moments, step) from which
// Resume continues with bit-identical results, and the PEFT adapter.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/runtime/engine.h"
#include "engine/train/dataset.h"
#include "engine/train/lora_params.h"
#include "engine/train/text_trainer.h"

namespace iris::train {

struct FinetuneOptions {
  LoraShape lora;
  double lr = 2e-4;
  int epochs = 1;
  size_t batch_tokens = 2048;  // tokens per micro-batch (whole conversations, at least one)
  int grad_accum = 1;          // micro-batches per optimizer step
  int64_t warmup = -1;         // steps of linear warmup; -1: 5% of the run
  uint64_t seed = 0;
  int64_t max_steps = 0;  // 0: epochs decide
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;  // 0: no clipping
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t save_every = 50;    // steps between checkpoints (0: only at the end)
  int64_t eval_every = 0;     // steps between eval passes (0: at each epoch's end)
  std::string base_model;     // written into adapter_config.json
  size_t max_seq_tokens = 0;  // the data's limit (DatasetOptions), recorded for --resume
};

// The learning rate at `step` (0-based) of `total`: linear warmup to lr, then half a cosine
// down to 0 (transformers' get_cosine_schedule_with_warmup).
double CosineLr(double lr, int64_t step, int64_t warmup, int64_t total);

struct StepReport {
  int64_t step = 0;  // 1-based, after the update
  int64_t total_steps = 0;
  int epoch = 0;    // 1-based
  double loss = 0;  // mean over the step's labelled tokens
  double lr = 0;
  double grad_norm = 0;  // before clipping
  size_t tokens = 0;     // every token run this step (prompts included)
  size_t labelled = 0;
  double seconds = 0;  // this step's wall time
  std::optional<double> eval_loss;
};

class Finetune {
 public:
  // out_dir receives the adapter, checkpoint/ and train_log.jsonl. With `resume`, the
  // checkpoint in out_dir is loaded: its options and data must be this run's.
  static Result<Finetune> Create(runtime::Engine& engine, Dataset train,
                                 std::optional<Dataset> eval, const FinetuneOptions& options,
                                 const std::string& out_dir, bool resume);

  int64_t total_steps() const { return total_steps_; }
  int64_t step() const { return step_; }
  const LoraParams& lora() const { return lora_; }
  size_t trainable_parameters() const { return lora_.num_parameters(); }

  // Runs to the end, or to the first step boundary after *stop turns true; either way a
  // checkpoint and the adapter are written. on_step gets every step's report.
  Status Run(const std::function<void(const StepReport&)>& on_step,
             const std::atomic<bool>* stop = nullptr);

  // Mean cross-entropy over a dataset's labelled tokens with the current adapter.
  double EvalLoss(Dataset& data);

 private:
  Finetune(runtime::Engine& engine, LoraParams lora, TextTrainer trainer)
      : engine_(&engine), lora_(std::move(lora)), trainer_(std::move(trainer)) {}
  std::vector<std::vector<size_t>> EpochPlan(int epoch) const;  // steps → example indices
  void Embed(Example& e, std::vector<float>& embeds);
  Status SaveCheckpoint() const;
  Status LoadCheckpoint();
  std::string OptionsJson() const;

  runtime::Engine* engine_;
  LoraParams lora_;
  TextTrainer trainer_;
  Dataset train_;
  std::optional<Dataset> eval_;
  FinetuneOptions options_;
  std::string out_dir_;
  int64_t total_steps_ = 0, warmup_ = 0;
  int64_t step_ = 0;  // optimizer steps done
  std::string model_fingerprint_;
};

}  // namespace iris::train
