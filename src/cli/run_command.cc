// `iris run`: renders the chat template for a prompt and streams the model's answer.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/time.h"
#include "cli/commands.h"
#include "engine/media/image.h"
#include "engine/runtime/engine.h"

namespace iris::cli {
namespace {

struct RunFlags {
  std::string model;
  std::string mmproj;
  std::string weights;
  std::string compute;
  std::string kv_cache_dtype;
  std::string adapter;
  bool pull = false;
  bool offline = false;
  std::string prompt;
  int max_tokens = 256;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  int threads = 0;
  std::vector<std::string> stop;
  std::vector<std::string> images;
  std::vector<std::string> videos;
  int64_t max_image_pixels = media::DecodeOptions().max_pixels;
};

int Run(const RunFlags& f) {
  auto t0 = SteadyClock::now();
  runtime::EngineOptions eo;
  eo.threads = f.threads;
  eo.mmproj = f.mmproj;
  eo.weights = f.weights;
  eo.compute = f.compute;
  eo.kv_cache_dtype = f.kv_cache_dtype;
  // A directory, or a repo id / short name in the Hugging Face cache (pulled with --pull).
  auto model_dir = FindModel(f.model, f.pull, f.offline);
  if (!model_dir.ok()) {
    PrintError("run", model_dir.status().message());
    return 1;
  }
  auto engine = runtime::Engine::Load(*model_dir, eo);
  if (!engine.ok()) {
    PrintError("run", engine.status().message());
    return 1;
  }
  runtime::GenerateOptions go;
  if (!f.adapter.empty()) {
    auto adapter_dir = FindModel(f.adapter, f.pull, f.offline, /*adapter=*/true);
    auto adapter = adapter_dir.ok()
                       ? (*engine)->LoadAdapter(*adapter_dir)
                       : Result<std::shared_ptr<const model::LoraAdapter>>(adapter_dir.status());
    if (!adapter.ok()) {
      PrintError("run", adapter.status().message());
      return 1;
    }
    std::fprintf(stderr, "iris run: adapter %s (%s)\n", adapter_dir->c_str(),
                 (*adapter)->Describe().c_str());
    go.adapter = *adapter;
  }
  const double load_s = SecondsSince(t0);
  // Videos and images first, then the question, as in the model card's examples.
  std::vector<runtime::Visual> visuals;
  boost::json::array content;
  for (const std::string& path : f.videos) {
    auto video = (*engine)->LoadVideo(path);
    if (!video.ok()) {
      PrintError("run", video.status().message());
      return 1;
    }
    visuals.push_back(std::move(video).value());
    content.push_back(boost::json::object{{"type", "video"}});
  }
  for (const std::string& path : f.images) {
    media::DecodeOptions decode;
    decode.max_pixels = f.max_image_pixels;
    auto image = (*engine)->LoadImage(path, decode);
    if (!image.ok()) {
      PrintError("run", image.status().message());
      return 1;
    }
    visuals.push_back(std::move(image).value());
    content.push_back(boost::json::object{{"type", "image"}});
  }
  content.push_back(boost::json::object{{"type", "text"}, {"text", f.prompt}});
  boost::json::array messages{boost::json::object{{"role", "user"}, {"content", content}}};
  auto prompt = (*engine)->RenderChat(messages);
  if (!prompt.ok()) {
    PrintError("run", prompt.status().message());
    return 1;
  }
  auto ids = (*engine)->TokenizePrompt(*prompt, visuals);
  if (!ids.ok()) {
    PrintError("run", ids.status().message());
    return 1;
  }
  go.max_tokens = f.max_tokens;
  go.sampling.temperature = f.temperature;
  go.sampling.top_p = f.top_p;
  go.sampling.top_k = f.top_k;
  go.sampling.min_p = f.min_p;
  go.sampling.repetition_penalty = f.repetition_penalty;
  go.sampling.seed = f.seed;
  go.stop = f.stop;
  auto result = (*engine)->Generate(
      *ids, go,
      [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      },
      visuals);
  if (!result.ok()) {
    PrintError("run", result.status().message());
    return 1;
  }
  std::fputc('\n', stdout);
  const auto& r = *result;
  const double prefill_tps = r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0;
  const double decode_tps = r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0;
  std::string vision;
  if (r.image_tiles > 0) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%zu image tiles/frames in %.2f s; ", r.image_tiles,
                  r.vision_seconds);
    vision = buf;
  }
  std::fprintf(stderr,
               "iris run: loaded in %.2f s (%s weights); %sprompt %zu tokens at %.1f tok/s; first "
               "token after %.2f s; generated %zu tokens at %.1f tok/s (%s); %d threads\n",
               load_s, (*engine)->weight_types().c_str(), vision.c_str(), r.prompt_tokens,
               prefill_tps, r.vision_seconds + r.prefill_seconds, r.tokens.size(), decode_tps,
               r.finish_reason.c_str(), (*engine)->threads());
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("run", "Answer a prompt with a local SmolVLM2 model, streaming");
  auto f = std::make_shared<RunFlags>();
  cmd->add_option("--model", f->model,
                  "model directory (safetensors, or GGUF files), a GGUF text model file, Hugging "
                  "Face repo id (org/name[@revision]) in the cache, or smolvlm2-256m | "
                  "smolvlm2-500m | smolvlm2-2.2b")
      ->required();
  cmd->add_option(
         "--weights", f->weights,
         "reduced-precision weights for the text model, quantized at load: q8_0 or q4_0 (int8 "
         "products; default: the file's types)")
      ->check(CLI::IsMember(runtime::kWeightChoices));
  cmd->add_option("--compute", f->compute,
                  "matrix products: exact (f32, the default) or bf16 (bf16 inputs, f32 sums; "
                  "AVX512-BF16 CPUs; opt-in, its error measured by iris verify --compute bf16)")
      ->check(CLI::IsMember({"exact", "bf16"}));
  AddKvCacheDtypeOption(cmd, f->kv_cache_dtype);
  cmd->add_option("--mmproj", f->mmproj,
                  "the vision tower (mmproj GGUF) of a GGUF text model given as --model FILE");
  cmd->add_option("--adapter", f->adapter,
                  "a PEFT LoRA adapter for the model: a directory (adapter_config.json + "
                  "adapter_model.safetensors) or a Hugging Face repo id in the cache");
  cmd->add_flag("--pull", f->pull,
                "download the model (and adapter) first when it is not in the cache");
  cmd->add_flag("--offline", f->offline, "never use the network (as HF_HUB_OFFLINE=1)");
  cmd->add_option("prompt", f->prompt, "the question or instruction")->required();
  cmd->add_option("--max-tokens", f->max_tokens, "most tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", f->temperature, "0 = greedy")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 100.0f));
  cmd->add_option("--top-p", f->top_p, "nucleus sampling mass")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--top-k", f->top_k, "sample among the k likeliest (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-p", f->min_p, "drop tokens below min-p × the top probability")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--repetition-penalty", f->repetition_penalty, "1 = off")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", f->seed, "random seed for sampling")->capture_default_str();
  cmd->add_option("--threads", f->threads, "compute threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--stop", f->stop, "stop string (repeatable)");
  cmd->add_option("--image", f->images, "image file (JPEG, PNG, WebP, GIF, BMP; repeatable)");
  cmd->add_option("--video", f->videos,
                  "video file (MP4, WebM, MOV, MKV, GIF; repeatable); 1 frame/s, at most 64");
  cmd->add_option("--max-image-pixels", f->max_image_pixels,
                  "refuse larger images (decompression bombs)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([f, &exit_code] { exit_code = Run(*f); });
}

}  // namespace iris::cli
