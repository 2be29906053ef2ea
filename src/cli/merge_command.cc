// `iris merge --model M --adapter A --out DIR`: writes the checkpoint with a LoRA adapter merged
// into its weights (W + s·B·A), which runs anywhere a SmolVLM2 checkpoint runs.
#include <cstdio>
#include <memory>
#include <string>

#include "base/time.h"
#include "cli/commands.h"
#include "engine/model/lora.h"
#include "engine/runtime/engine.h"

namespace iris::cli {
namespace {

struct MergeFlags {
  std::string model;
  std::string adapter;
  std::string out;
  bool pull = false;
  bool offline = false;
};

int Merge(const MergeFlags& f) {
  const auto t0 = SteadyClock::now();
  auto model_dir = FindModel(f.model, f.pull, f.offline);
  if (!model_dir.ok()) {
    PrintError("merge", model_dir.status().message());
    return 1;
  }
  if (model_dir->ends_with(".gguf")) {
    PrintError("merge",
               "merge writes safetensors checkpoints; pass the model's safetensors "
               "directory or repo id, not a GGUF file");
    return 1;
  }
  auto adapter_dir = FindModel(f.adapter, f.pull, f.offline, /*adapter=*/true);
  if (!adapter_dir.ok()) {
    PrintError("merge", adapter_dir.status().message());
    return 1;
  }
  runtime::EngineOptions eo;
  eo.threads = 1;
  auto engine = runtime::Engine::Load(*model_dir, eo);
  if (!engine.ok()) {
    PrintError("merge", engine.status().message());
    return 1;
  }
  auto adapter = (*engine)->LoadAdapter(*adapter_dir);
  if (!adapter.ok()) {
    PrintError("merge", adapter.status().message());
    return 1;
  }
  std::fprintf(stderr, "iris merge: %s into %s\n", (*adapter)->Describe().c_str(),
               model_dir->c_str());
  ProgressBar bar;
  Status merged = model::MergeLora(*model_dir, **adapter, f.out, [&](size_t done, size_t total) {
    bar.Update(done, total, std::to_string(done) + "/" + std::to_string(total) + " tensors");
  });
  if (!merged.ok()) {
    PrintError("merge", merged.message());
    return 1;
  }
  std::fprintf(stderr, "iris merge: wrote %s in %.1f s\n", f.out.c_str(), SecondsSince(t0));
  std::printf("%s\n", f.out.c_str());
  return 0;
}

}  // namespace

void AddMergeCommand(CLI::App& app, int& exit_code) {
  auto* cmd =
      app.add_subcommand("merge", "Write a checkpoint with a LoRA adapter merged into its weights");
  auto f = std::make_shared<MergeFlags>();
  cmd->add_option("--model", f->model,
                  "the base checkpoint: a safetensors directory, Hugging Face repo id in the "
                  "cache, or smolvlm2-256m | smolvlm2-500m | smolvlm2-2.2b")
      ->required();
  cmd->add_option("--adapter", f->adapter,
                  "the PEFT LoRA adapter: a directory or a Hugging Face repo id in the cache")
      ->required();
  cmd->add_option("--out", f->out,
                  "the new checkpoint directory (must not exist or be empty); adapted weights "
                  "are written as F32, the others as the base stores them")
      ->required();
  cmd->add_flag("--pull", f->pull, "download the model and adapter first when not in the cache");
  cmd->add_flag("--offline", f->offline, "never use the network (as HF_HUB_OFFLINE=1)");
  cmd->callback([f, &exit_code] { exit_code = Merge(*f); });
}

}  // namespace iris::cli
