// `iris quantize --model M --weights q8_0 --out DIR`: writes a safetensors checkpoint as GGUF
// files (the text model quantized, the vision tower as an mmproj), which `iris run --model DIR`
// and llama.cpp load without quantizing again.
#include <cstdio>
#include <memory>
#include <string>

#include "base/thread_pool.h"
#include "base/time.h"
#include "cli/commands.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/gguf_export.h"

namespace iris::cli {
namespace {

struct QuantizeFlags {
  std::string model;
  std::string weights = "q8_0";
  std::string out;
  std::string name;
  int threads = 0;
  bool pull = false;
  bool offline = false;
};

std::string Size(uint64_t bytes) { return HumanBytes(static_cast<double>(bytes)); }

int Quantize(const QuantizeFlags& f) {
  const auto t0 = SteadyClock::now();
  auto model_dir = FindModel(f.model, f.pull, f.offline);
  if (!model_dir.ok()) {
    PrintError("quantize", model_dir.status().message());
    return 1;
  }
  ThreadPool pool(f.threads);
  runtime::GgufExportOptions o;
  o.weights = f.weights;
  o.name = f.name;
  o.pool = &pool;
  ProgressBar bar;
  o.progress = [&](uint64_t done, uint64_t total) {
    bar.Update(done, total, Size(done) + " of " + Size(total));
  };
  std::fprintf(stderr, "iris quantize: %s → %s (text matrices %s, %d threads)\n",
               model_dir->c_str(), f.out.c_str(), f.weights.c_str(), pool.num_threads());
  auto written = runtime::ExportGguf(*model_dir, f.out, o);
  if (!written.ok()) {
    PrintError("quantize", written.status().message());
    return 1;
  }
  std::fprintf(stderr, "iris quantize: wrote %s (%s)", written->text_path.c_str(),
               Size(written->text_bytes).c_str());
  if (!written->mmproj_path.empty()) {
    std::fprintf(stderr, " and %s (%s)", written->mmproj_path.c_str(),
                 Size(written->mmproj_bytes).c_str());
  }
  std::fprintf(stderr, " from %s of weights in %.1f s\n", Size(written->checkpoint_bytes).c_str(),
               SecondsSince(t0));
  std::printf("%s\n", f.out.c_str());
  return 0;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "quantize", "Write a checkpoint as GGUF files with the text model quantized (q8_0, q4_0)");
  auto f = std::make_shared<QuantizeFlags>();
  cmd->add_option("--model", f->model,
                  "the safetensors checkpoint: a directory, Hugging Face repo id in the cache, or "
                  "smolvlm2-256m | smolvlm2-500m | smolvlm2-2.2b")
      ->required();
  cmd->add_option("--weights", f->weights,
                  "the text model's matrices: q8_0 or q4_0, the numbers `iris run --weights` "
                  "gives at load; the vision tower keeps the checkpoint's values")
      ->capture_default_str()
      ->check(CLI::IsMember(runtime::kWeightChoices));
  cmd->add_option("--out", f->out,
                  "the directory for the files (must not exist or be empty): NAME-Q8_0.gguf and "
                  "mmproj-NAME-BF16.gguf, which iris run --model DIR and llama.cpp load")
      ->required();
  cmd->add_option("--name", f->name,
                  "the files' NAME (default: the checkpoint's repo or directory name)");
  cmd->add_option("--threads", f->threads, "threads quantizing (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--pull", f->pull, "download the model first when it is not in the cache");
  cmd->add_flag("--offline", f->offline, "never use the network (as HF_HUB_OFFLINE=1)");
  cmd->callback([f, &exit_code] { exit_code = Quantize(*f); });
}

}  // namespace iris::cli
