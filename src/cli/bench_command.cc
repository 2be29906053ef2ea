// `iris bench`: load time, prefill and decode speed, peak memory, as JSON.
#include <sys/resource.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "base/time.h"
#include "cli/commands.h"
#include "engine/kernels/kernels.h"
#include "engine/media/image.h"
#include "engine/media/video.h"
#include "engine/runtime/engine.h"

namespace iris::cli {
namespace {

struct BenchFlags {
  std::string model;
  std::string mmproj;
  std::string weights;
  std::string compute;
  std::string kv_cache_dtype;
  int prompt_tokens = 512;
  int decode_tokens = 128;
  int threads = 0;
  int vision_tiles = 1;
  std::string image;       // time to first token for "Describe this image." about this picture
  std::string video;       // time to sample and preprocess a video's frames
  std::vector<int> batch;  // batched decode steps with this many sequences at once
  std::string int8_path;   // an int8 kernel path other than the best (for measuring it)
  std::string bf16_path;   // a bf16 product path other than the best (for measuring it)
  bool json = false;
};

// Batched decoding as the scheduler runs it: `sequences` caches each holding `context`
// positions, then steps of one ForwardBatch with one new token per sequence. Returns
// milliseconds per step (the best of three rounds of `steps`), or the memory the caches could
// not have.
Result<double> BatchedStepMs(runtime::Engine& engine, std::span<const int32_t> prompt,
                             size_t sequences, size_t context, int steps) {
  const model::TextModel& text = engine.text_model();
  const size_t dim = static_cast<size_t>(text.model_dim());
  std::shared_ptr<model::KvPool> pool = engine.NewKvPool();
  std::vector<model::KvCache> caches;
  caches.reserve(sequences);
  std::vector<float> embeds(context * dim);
  text.Embed(prompt.first(context), embeds.data());
  std::vector<float> logits;
  for (size_t s = 0; s < sequences; ++s) {
    caches.emplace_back(pool);
    // Room for every timed step (ForwardBatch appends to reserved blocks only).
    const size_t room = context + 3 * static_cast<size_t>(steps);
    if (!caches.back().Reserve(room)) {
      return ResourceExhausted("KV cache: no memory for " + std::to_string(sequences) +
                               " sequences of " + std::to_string(room) + " positions");
    }
    IRIS_RETURN_IF_ERROR(
        text.Forward(engine.compute(), embeds.data(), context, caches.back(), false, &logits));
  }
  std::vector<float> rows(sequences * dim);
  for (size_t s = 0; s < sequences; ++s) {
    const int32_t id = prompt[s % prompt.size()];
    text.Embed(std::span<const int32_t>(&id, 1), rows.data() + s * dim);
  }
  std::vector<model::ForwardChunk> chunks;
  for (size_t s = 0; s < sequences; ++s) {
    chunks.push_back({rows.data() + s * dim, 1, &caches[s], model::ForwardChunk::Logits::kLast});
  }
  double best = 1e30;
  for (int round = 0; round < 3; ++round) {
    auto t = SteadyClock::now();
    for (int i = 0; i < steps; ++i) text.ForwardBatch(engine.compute(), chunks, &logits);
    best = std::min(best, SecondsSince(t) * 1000.0 / steps);
  }
  return best;
}

// The kernel paths this CPU runs, for an error that refuses another: "a, b" or `none`.
std::string PathsThisCpuHas(const std::vector<std::string>& paths, const std::string& none) {
  std::string have;
  for (const std::string& p : paths) have += (have.empty() ? "" : ", ") + p;
  return have.empty() ? none : have;
}

int Bench(const BenchFlags& f) {
  // Before loading: the loader lays int8 weights out for the path in use.
  if (!f.int8_path.empty() && !kernels::ForceQuantPath(f.int8_path)) {
    PrintError("bench", "--int8-path " + f.int8_path + ": this CPU has " +
                            PathsThisCpuHas(kernels::AvailableQuantPaths(), "no int8 path"));
    return 2;
  }
  if (!f.bf16_path.empty() && !kernels::ForceBf16Path(f.bf16_path)) {
    PrintError("bench", "--bf16-path " + f.bf16_path + ": this CPU has " +
                            PathsThisCpuHas(kernels::AvailableBf16Paths(), "no bf16 products"));
    return 2;
  }
  auto t0 = SteadyClock::now();
  runtime::EngineOptions eo;
  eo.threads = f.threads;
  eo.mmproj = f.mmproj;
  eo.weights = f.weights;
  eo.compute = f.compute;
  eo.kv_cache_dtype = f.kv_cache_dtype;
  auto loaded = runtime::Engine::Load(f.model, eo);
  if (!loaded.ok()) {
    PrintError("bench", loaded.status().message());
    return 1;
  }
  runtime::Engine& engine = **loaded;
  const double load_s = SecondsSince(t0);
  const model::TextModel& text = engine.text_model();
  // A fixed pseudo-random prompt of ordinary (non-special) tokens.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(100, std::min(text.vocab_size(), 49152) - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(f.prompt_tokens));
  for (int32_t& id : prompt) id = pick(rng);

  const size_t dim = static_cast<size_t>(text.model_dim());
  std::vector<float> embeds(prompt.size() * dim);
  text.Embed(prompt, embeds.data());
  // Warm-up, as llama-bench does it: the whole prompt once, through the KV memory the timed
  // passes use. It touches every weight page and every page of the prompt's keys and values,
  // so that the timed prefill measures compute, not first page faults (llama.cpp clears its
  // KV buffer when it creates a context; a pool keeps its slabs when blocks are released).
  const size_t positions = prompt.size() + static_cast<size_t>(f.decode_tokens);
  std::shared_ptr<model::KvPool> pool = engine.NewKvPool();
  std::vector<float> logits;
  // Memory for the keys and values that the machine refuses ends the run with its reason.
  auto refused = [](const Status& s) {
    PrintError("bench", s.message());
    return 1;
  };
  auto reserve = [&](model::KvCache& c) {
    return c.Reserve(positions) ? OkStatus()
                                : ResourceExhausted("KV cache: no memory for " +
                                                    std::to_string(positions) + " positions");
  };
  {
    model::KvCache warm(pool);
    if (Status s = reserve(warm); !s.ok()) return refused(s);
    if (Status s =
            text.Forward(engine.compute(), embeds.data(), prompt.size(), warm, false, &logits);
        !s.ok()) {
      return refused(s);
    }
  }
  // The blocks the warm-up held, all taken before the clock starts.
  model::KvCache cache(pool);
  if (Status s = reserve(cache); !s.ok()) return refused(s);
  auto t1 = SteadyClock::now();
  if (Status s =
          text.Forward(engine.compute(), embeds.data(), prompt.size(), cache, false, &logits);
      !s.ok()) {
    return refused(s);
  }
  const double prefill_s = SecondsSince(t1);

  std::vector<float> emb(dim);
  auto t2 = SteadyClock::now();
  for (int i = 0; i < f.decode_tokens; ++i) {
    const int32_t id = runtime::ArgMax(logits);
    text.Embed(std::span<const int32_t>(&id, 1), emb.data());
    if (Status s = text.Forward(engine.compute(), emb.data(), 1, cache, false, &logits); !s.ok()) {
      return refused(s);
    }
  }
  const double decode_s = SecondsSince(t2);

  // Vision: milliseconds per tile through the SigLIP tower and the connector.
  double vision_ms_per_tile = 0;
  const model::VisionModel* vision = engine.vision_model();
  if (vision && f.vision_tiles > 0) {
    const size_t tile_floats = 3 * static_cast<size_t>(vision->tile_size()) * vision->tile_size();
    std::vector<float> pixels(tile_floats);
    std::uniform_real_distribution<float> px(-1.0f, 1.0f);
    for (float& v : pixels) v = px(rng);
    std::vector<float> features(static_cast<size_t>(vision->tokens_per_tile()) * dim);
    vision->EncodeTile(engine.compute(), pixels.data(), nullptr, features.data());  // warm-up
    auto t3 = SteadyClock::now();
    for (int i = 0; i < f.vision_tiles; ++i) {
      vision->EncodeTile(engine.compute(), pixels.data(), nullptr, features.data());
    }
    vision_ms_per_tile = SecondsSince(t3) * 1000.0 / f.vision_tiles;
  }

  // Time to first token for one picture: decode + preprocess, vision, prefill of the
  // expanded prompt, first sampled token.
  boost::json::object ttft;
  if (!f.image.empty()) {
    auto t4 = SteadyClock::now();
    auto visual = engine.LoadImage(f.image);
    if (!visual.ok()) {
      PrintError("bench", visual.status().message());
      return 1;
    }
    const double preprocess_s = SecondsSince(t4);
    boost::json::array messages{boost::json::object{
        {"role", "user"},
        {"content", boost::json::array{
                        boost::json::object{{"type", "image"}},
                        boost::json::object{{"type", "text"}, {"text", "Describe this image."}}}}}};
    auto prompt_text = engine.RenderChat(messages);
    std::vector<runtime::Visual> images;
    images.push_back(std::move(visual).value());
    auto ids = prompt_text.ok() ? engine.TokenizePrompt(*prompt_text, images)
                                : Result<std::vector<int32_t>>(prompt_text.status());
    if (!ids.ok()) {
      PrintError("bench", ids.status().message());
      return 1;
    }
    runtime::GenerateOptions go;
    go.max_tokens = 1;
    auto r = engine.Generate(*ids, go, {}, images);
    if (!r.ok()) {
      PrintError("bench", r.status().message());
      return 1;
    }
    ttft = boost::json::object{
        {"image", f.image},
        {"tiles", r->image_tiles},
        {"prompt_tokens", r->prompt_tokens},
        {"preprocess_seconds", preprocess_s},
        {"vision_seconds", r->vision_seconds},
        {"prefill_seconds", r->prefill_seconds},
        {"time_to_first_token_seconds", SecondsSince(t4)},
    };
  }

  // Video: decode only the sampled frames (seeking), then preprocess them on every core.
  boost::json::object video;
  if (!f.video.empty()) {
    auto t5 = SteadyClock::now();
    auto loaded_video = engine.LoadVideo(f.video);
    if (!loaded_video.ok()) {
      PrintError("bench", loaded_video.status().message());
      return 1;
    }
    video = boost::json::object{
        {"video", f.video},
        {"duration_seconds", loaded_video->duration},
        {"sampled_frames", loaded_video->frame_indices.size()},
        {"decode_and_preprocess_seconds", SecondsSince(t5)},
    };
  }

  // Batched decoding: one step's time with N sequences, each over a context of the prompt.
  boost::json::array batched;
  for (int n : f.batch) {
    const size_t context = std::min<size_t>(prompt.size(), 256);
    Result<double> step = BatchedStepMs(engine, prompt, static_cast<size_t>(n), context, 16);
    if (!step.ok()) return refused(step.status());
    const double ms = *step;
    batched.push_back(boost::json::object{{"sequences", n},
                                          {"context", context},
                                          {"step_ms", ms},
                                          {"tokens_per_second", n * 1000.0 / ms}});
    if (!f.json) {
      std::printf("batched decode: %3d sequences | %.1f ms per step | %.1f tok/s\n", n, ms,
                  n * 1000.0 / ms);
    }
  }

  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  boost::json::object out{
      {"model", f.model},
      {"weights_bytes", engine.weight_bytes()},
      {"load_seconds", load_s},
      {"prompt_tokens", f.prompt_tokens},
      {"prefill_seconds", prefill_s},
      {"prefill_tokens_per_second", prefill_s > 0 ? f.prompt_tokens / prefill_s : 0.0},
      {"decode_tokens", f.decode_tokens},
      {"decode_seconds", decode_s},
      {"decode_tokens_per_second", decode_s > 0 ? f.decode_tokens / decode_s : 0.0},
      {"peak_rss_bytes", static_cast<int64_t>(ru.ru_maxrss) * 1024},
      {"vision_tiles", vision ? f.vision_tiles : 0},
      {"vision_ms_per_tile", vision_ms_per_tile},
      {"image_ttft", ttft},
      {"video", video},
      {"batched_decode", batched},
      {"threads", engine.threads()},
      {"kv_cache_dtype", runtime::KvCacheDtypeName(engine.kv_dtype())},
      {"simd_target", kernels::ActiveTarget()},
      {"int8_path", kernels::ActiveQuantPath()},
      {"bf16_path", kernels::ActiveBf16Path()},
      {"cpu_features", kernels::CpuFeatures()},
  };
  if (f.json) {
    std::printf("%s\n", boost::json::serialize(out).c_str());
  } else {
    std::printf(
        "load %.2f s | prefill %d tok in %.2f s = %.1f tok/s | decode %d tok in %.2f s = "
        "%.1f tok/s | vision %.0f ms/tile | peak RSS %.0f MiB | %d threads | %s\n",
        load_s, f.prompt_tokens, prefill_s, f.prompt_tokens / prefill_s, f.decode_tokens, decode_s,
        f.decode_tokens / decode_s, vision_ms_per_tile, ru.ru_maxrss / 1024.0, engine.threads(),
        kernels::ActiveTarget().c_str());
    if (!ttft.empty()) std::printf("image: %s\n", boost::json::serialize(ttft).c_str());
    if (!video.empty()) std::printf("video: %s\n", boost::json::serialize(video).c_str());
  }
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("bench", "Measure load, prefill and decode speed of a model");
  auto f = std::make_shared<BenchFlags>();
  cmd->add_option("--model", f->model,
                  "model directory (safetensors or GGUF files) or GGUF text model file")
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
  cmd->add_option("--mmproj", f->mmproj, "the vision tower (mmproj GGUF) of a GGUF --model FILE");
  cmd->add_option("--prompt-tokens", f->prompt_tokens, "prefill length")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--decode-tokens", f->decode_tokens, "tokens to decode")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  cmd->add_option("--vision-tiles", f->vision_tiles, "tiles to time through the vision tower")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--image", f->image,
                  "also measure time to first token for 'Describe this image.' about this file");
  cmd->add_option("--video", f->video,
                  "also measure sampling 64 frames from this video (decode + preprocess)");
  cmd->add_option("--batch", f->batch,
                  "also time batched decode steps with these numbers of sequences (e.g. 1,8,16)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  cmd->add_option("--threads", f->threads, "compute threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--int8-path", f->int8_path,
                  "int8 kernels to use: avx512vnni, avxvnni, avx2 or scalar (default: the best "
                  "this CPU has; to measure what other CPUs get)")
      ->check(CLI::IsMember({"avx512vnni", "avxvnni", "avx2", "scalar"}));
  cmd->add_option("--bf16-path", f->bf16_path,
                  "products of --compute bf16 to use: amx or avx512bf16 (default: the best this "
                  "CPU has)")
      ->check(CLI::IsMember({"amx", "avx512bf16"}));
  cmd->add_flag("--json", f->json, "print one JSON object");
  cmd->callback([f, &exit_code] { exit_code = Bench(*f); });
}

}  // namespace iris::cli
