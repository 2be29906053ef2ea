// The engine facade: loads a SmolVLM2 checkpoint directory (config, memory-mapped weights,
// tokenizer, chat template, generation config) and generates text, streaming it as it is
// produced. Generate runs one generation; a Scheduler (scheduler.h) runs many at once. Use
// an Engine from one thread at a time (Generate is not reentrant).
#pragma once

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "engine/formats/safetensors.h"
#include "engine/media/image.h"
#include "engine/media/image_processor.h"
#include "engine/media/video.h"
#include "engine/model/config.h"
#include "engine/model/lora.h"
#include "engine/model/text_model.h"
#include "engine/model/vision_model.h"
#include "engine/runtime/sampler.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace iris::runtime {

// The values EngineOptions::weights takes besides "" (for command lines and messages).
inline const std::vector<std::string> kWeightChoices = {"q8_0", "q4_0"};
// EngineOptions::kv_cache_dtype's values ("" is f32) and the element types the KV pool keeps
// for them (gateway/config checks providers.local.kv_cache_dtype against the same names).
struct KvCacheDtype {
  std::string_view name;
  tensor::DType dtype;
};
inline constexpr std::array<KvCacheDtype, 2> kKvCacheDtypes = {{
    {"f32", tensor::DType::kF32},
    {"f16", tensor::DType::kF16},
}};
// Their names, for command-line checks.
std::vector<std::string> KvCacheDtypeNames();
// The name of the entry for `dtype` ("" when none).
std::string_view KvCacheDtypeName(tensor::DType dtype);

struct EngineOptions {
  int threads = 0;     // 0 = one per hardware thread
  std::string mmproj;  // a GGUF model's vision tower (mmproj file); "" = none or found beside it
  // "" keeps the file's weight types; "q8_0" or "q4_0" quantizes the text model's matrices at
  // load (int8 products; the vision tower stays as stored). kWeightChoices lists them.
  std::string weights;
  // "" or "exact": f32 products. "bf16" (opt-in, AVX512-BF16 CPUs): every product of float
  // weights (prompts, decode, image tiles, training) multiplies bf16-rounded inputs with f32
  // sums (ops::ComputeContext::bf16), the matrices packed for it at load. Its error is
  // measured by `iris verify --compute bf16`; when serving, the model's products give a
  // token what it gets alone (an adapter's low-rank products excepted: tiles or panels by
  // how many rows share them).
  std::string compute;
  // "" or "f32": keys and values kept as computed (exact). "f16" (opt-in): kept as f16, half
  // the memory and half the bytes attention reads at every token; rows are rounded as they
  // are stored, so answers change slightly (measured by `iris verify --kv-cache-dtype f16`).
  std::string kv_cache_dtype;
};

// A checkpoint directory's end-of-sequence ids: generation_config.json's eos_token_id (an int
// or a list), then the tokenizer's <end_of_utterance> when not among them.
std::vector<int32_t> FindEosIds(const std::string& dir, const tokenizer::Tokenizer& tok);
// video_sampling.{fps, max_frames} of a checkpoint's preprocessor_config.json (defaults: 1 fps,
// 64 frames).
Result<media::VideoSamplingConfig> ReadVideoSampling(const std::string& dir);

// One image or video of a prompt, in the order of its placeholder.
struct Visual {
  media::ProcessedImage pixels;  // an image's tiles, or a video's frames (one tile each)
  bool is_video = false;
  std::vector<int64_t> frame_indices;  // video: the sampled frame indices
  double fps = 0;                      // video: native frame rate
  double duration = 0;                 // video: seconds
};

struct GenerateOptions {
  SamplingParams sampling;
  int max_tokens = 256;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool stop_at_eos = true;        // stop on the checkpoint's end-of-utterance token(s)
  // A LoRA adapter of this engine's model (Engine::LoadAdapter); null runs the base model.
  std::shared_ptr<const model::LoraAdapter> adapter;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (the stop token included if it ended)
  std::string text;             // generated text, special tokens skipped, stop string cut
  std::string finish_reason;    // "stop" (eos or stop string) or "length"
  size_t prompt_tokens = 0;
  size_t image_tiles = 0;
  double vision_seconds = 0;  // encoding image tiles (part of the time to first token)
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Receives text as soon as it is safe to print; return false to cancel generation.
using TextCallback = std::function<bool(std::string_view)>;

class Engine {
 public:
  // `model` is a checkpoint directory (safetensors, or the GGUF files of ggml-org's SmolVLM2
  // repos: one text model and an mmproj*.gguf) or a GGUF text model file, whose vision tower
  // is options.mmproj.
  static Result<std::unique_ptr<Engine>> Load(const std::string& model,
                                              const EngineOptions& options);
  // How the weights are held, for logs: "BF16", "Q8_0+F32 (dequantized to F32 at load)", ...
  const std::string& weight_types() const { return weight_types_; }

  const model::ModelConfig& config() const { return config_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  const model::TextModel& text_model() const { return *text_; }
  // The vision tower and connector, or null for a checkpoint without one.
  const model::VisionModel* vision_model() const { return vision_ ? &*vision_ : nullptr; }
  ops::ComputeContext& compute() { return ctx_; }
  int threads() const { return pool_->num_threads(); }
  size_t weight_bytes() const { return weights_.total_bytes(); }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  // A pool for the keys and values of sequences on this engine, in the element type the
  // options chose (max_blocks 0: grows as needed).
  std::shared_ptr<model::KvPool> NewKvPool(size_t max_blocks = 0) const {
    return text_->NewPool(max_blocks, kv_dtype_);
  }
  tensor::DType kv_dtype() const { return kv_dtype_; }
  // The pool Generate's sequences take their blocks from.
  const model::KvPool& generate_kv_pool() const { return *kv_pool_; }

  // Loads a PEFT LoRA adapter directory for this model (checked against its layers).
  Result<std::shared_ptr<const model::LoraAdapter>> LoadAdapter(const std::string& dir) const;

  // Renders the checkpoint's chat template for `messages` (OpenAI-style content parts).
  Result<std::string> RenderChat(const boost::json::array& messages,
                                 bool add_generation_prompt = true) const;

  // The checkpoint's image processor settings (preprocessor_config.json), if it has them.
  const media::ImageProcessorConfig* image_config() const {
    return image_config_ ? &*image_config_ : nullptr;
  }

  // Loads and preprocesses an image file with the checkpoint's processor settings.
  Result<Visual> LoadImage(const std::string& path, const media::DecodeOptions& decode = {}) const;
  // Loads a video file, samples its frames as SmolVLM2's video processor does
  // (video_sampling of preprocessor_config.json) and preprocesses them.
  Result<Visual> LoadVideo(const std::string& path) const;
  // Preprocesses one decoded image with the checkpoint's processor settings.
  Result<media::ProcessedImage> PreprocessImage(const media::Image& image) const;

  // Expands each "<image>" / "<video>" placeholder of a rendered prompt, in order, into the
  // processor's token string for the matching visual and tokenizes the result. The
  // placeholders must match `visuals` in number, order and kind.
  Result<std::vector<int32_t>> TokenizePrompt(std::string_view prompt_text,
                                              std::span<const Visual> visuals) const;

  // Generates after `prompt` (token ids). The <image> tokens of the prompt receive the
  // features of the visuals' tiles and frames, in order. on_text may be empty.
  Result<GenerateResult> Generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const TextCallback& on_text = {},
                                  std::span<const Visual> visuals = {});

 private:
  Engine() = default;
  static Result<std::unique_ptr<Engine>> LoadGguf(const std::string& text_path,
                                                  const std::string& mmproj_path,
                                                  const EngineOptions& options);
  Status StartThreads(const EngineOptions& options);
  Status LoadText(const EngineOptions& options);
  model::WeightOptions weight_options_;
  model::ModelConfig config_;
  std::string weight_types_;
  formats::WeightStore weights_;
  std::optional<model::TextModel> text_;
  std::optional<model::VisionModel> vision_;
  std::optional<media::ImageProcessorConfig> image_config_;
  media::VideoSamplingConfig video_sampling_;
  std::optional<tokenizer::Tokenizer> tokenizer_;
  std::optional<tokenizer::ChatTemplate> chat_template_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<ThreadPool> pool_;
  ops::ComputeContext ctx_;
  tensor::DType kv_dtype_ = tensor::DType::kF32;
  std::shared_ptr<model::KvPool> kv_pool_;  // Generate's (grows as needed)
};

}  // namespace iris::runtime
