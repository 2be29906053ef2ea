#include "engine/runtime/engine.h"

#include <algorithm>
#include <filesystem>

#include "base/json.h"
#include "base/time.h"
#include "engine/kernels/kernels.h"
#include "engine/model/gguf_checkpoint.h"
#include "engine/runtime/gguf_tokenizer.h"
#include "engine/runtime/scheduler.h"

namespace iris::runtime {
namespace fs = std::filesystem;
namespace json = boost::json;

Result<media::VideoSamplingConfig> ReadVideoSampling(const std::string& dir) {
  media::VideoSamplingConfig config;
  const std::string path = (fs::path(dir) / "preprocessor_config.json").string();
  IRIS_ASSIGN_OR_RETURN(json::value root, ReadJsonFile(path));
  const json::value* vs =
      root.is_object() ? root.as_object().if_contains("video_sampling") : nullptr;
  if (!vs || !vs->is_object()) return config;
  if (const json::value* fps = vs->as_object().if_contains("fps")) {
    if (!fps->is_number() || !(fps->to_number<double>() > 0)) {
      return InvalidArgument(path + ": video_sampling.fps must be a positive number");
    }
    config.fps = fps->to_number<double>();
  }
  if (const json::value* mf = vs->as_object().if_contains("max_frames")) {
    if (!mf->is_int64() || mf->as_int64() < 1 || mf->as_int64() > 4096) {
      return InvalidArgument(path + ": video_sampling.max_frames must be an integer in 1..4096");
    }
    config.max_frames = static_cast<int>(mf->as_int64());
  }
  return config;
}

std::vector<int32_t> FindEosIds(const std::string& dir, const tokenizer::Tokenizer& tok) {
  std::vector<int32_t> ids;
  auto gen = ReadJsonFile((fs::path(dir) / "generation_config.json").string());
  if (gen.ok() && gen->is_object()) {
    if (const json::value* e = gen->as_object().if_contains("eos_token_id")) {
      if (e->is_int64()) ids.push_back(static_cast<int32_t>(e->as_int64()));
      if (e->is_array()) {
        for (const json::value& x : e->as_array()) {
          if (x.is_int64()) ids.push_back(static_cast<int32_t>(x.as_int64()));
        }
      }
    }
  }
  if (auto eou = tok.TokenId("<end_of_utterance>")) {
    if (std::find(ids.begin(), ids.end(), *eou) == ids.end()) ids.push_back(*eou);
  }
  return ids;
}

Result<std::unique_ptr<Engine>> Engine::Load(const std::string& model_dir,
                                             const EngineOptions& options) {
  std::error_code ec;
  if (fs::is_regular_file(model_dir, ec)) {
    if (!formats::LooksLikeGguf(model_dir)) {
      return InvalidArgument(model_dir +
                             ": not a GGUF file (pass a GGUF text model or a "
                             "checkpoint directory)");
    }
    return LoadGguf(model_dir, options.mmproj, options);
  }
  if (!fs::is_directory(model_dir, ec)) {
    return NotFound(model_dir + ": not a model directory");
  }
  if (!fs::exists(fs::path(model_dir) / "config.json", ec)) {
    auto gguf = model::FindGgufFiles(model_dir);
    if (gguf.ok()) {
      return LoadGguf(gguf->text, options.mmproj.empty() ? gguf->mmproj : options.mmproj, options);
    }
    if (gguf.status().code() != ErrorCode::kNotFound) return gguf.status();
  }
  if (!options.mmproj.empty()) {
    return InvalidArgument(model_dir +
                           " is a safetensors checkpoint: an mmproj goes with a "
                           "GGUF text model");
  }
  std::unique_ptr<Engine> e(new Engine());
  IRIS_RETURN_IF_ERROR(e->StartThreads(options));
  IRIS_ASSIGN_OR_RETURN(e->config_, model::LoadModelConfig(model_dir));
  e->weight_types_ = e->config_.weights_dtype;
  IRIS_ASSIGN_OR_RETURN(e->weights_, formats::WeightStore::OpenDir(model_dir));
  IRIS_RETURN_IF_ERROR(e->LoadText(options));
  if (e->weights_.Has("model.vision_model.embeddings.patch_embedding.weight") ||
      e->weights_.Has("vision_model.embeddings.patch_embedding.weight")) {
    IRIS_ASSIGN_OR_RETURN(model::VisionModel vision,
                          model::VisionModel::Load(e->weights_, e->config_, e->pool_.get(),
                                                   e->weight_options_.panels));
    e->vision_.emplace(std::move(vision));
    auto image_config = media::LoadImageProcessorConfig(model_dir);
    if (image_config.ok()) {
      if (image_config->tile_size != e->vision_->tile_size()) {
        return FailedPrecondition(model_dir + ": preprocessor_config.json tiles are " +
                                  std::to_string(image_config->tile_size) +
                                  " px but the vision tower takes " +
                                  std::to_string(e->vision_->tile_size()));
      }
      image_config->image_seq_len = e->vision_->tokens_per_tile();
      IRIS_ASSIGN_OR_RETURN(e->video_sampling_, ReadVideoSampling(model_dir));
      e->image_config_.emplace(std::move(image_config).value());
    } else if (image_config.status().code() != ErrorCode::kNotFound) {
      return image_config.status();
    }
  }
  IRIS_ASSIGN_OR_RETURN(
      tokenizer::Tokenizer tok,
      tokenizer::Tokenizer::FromFile((fs::path(model_dir) / "tokenizer.json").string()));
  if (tok.vocab_size() > e->config_.text.vocab_size) {
    return FailedPrecondition(model_dir + ": tokenizer has " + std::to_string(tok.vocab_size()) +
                              " ids but the model only " +
                              std::to_string(e->config_.text.vocab_size));
  }
  e->tokenizer_.emplace(std::move(tok));
  auto tmpl = tokenizer::ChatTemplate::FromModelDir(model_dir);
  if (tmpl.ok()) {
    e->chat_template_.emplace(std::move(tmpl).value());
  } else if (tmpl.status().code() != ErrorCode::kNotFound) {
    return tmpl.status();
  }
  e->eos_ids_ = FindEosIds(model_dir, *e->tokenizer_);
  return e;
}

std::vector<std::string> KvCacheDtypeNames() {
  std::vector<std::string> names;
  for (const KvCacheDtype& k : kKvCacheDtypes) names.emplace_back(k.name);
  return names;
}

std::string_view KvCacheDtypeName(tensor::DType dtype) {
  for (const KvCacheDtype& k : kKvCacheDtypes) {
    if (k.dtype == dtype) return k.name;
  }
  return "";
}

Status Engine::StartThreads(const EngineOptions& options) {
  if (!options.weights.empty() && std::find(kWeightChoices.begin(), kWeightChoices.end(),
                                            options.weights) == kWeightChoices.end()) {
    return InvalidArgument("weights '" + options.weights +
                           "' are not supported: q8_0 or q4_0 (or leave it out for the file's "
                           "types)");
  }
  if (!options.compute.empty() && options.compute != "exact" && options.compute != "bf16") {
    return InvalidArgument("compute '" + options.compute + "' is not supported: exact or bf16");
  }
  if (options.compute == "bf16" && !kernels::Bf16ProductsAvailable()) {
    return FailedPrecondition(
        "compute bf16 needs a CPU with AVX512-BF16, which this one lacks (CPU features: " +
        kernels::CpuFeatures() + "); leave it out for the exact f32 products");
  }
  kv_dtype_ = tensor::DType::kF32;
  if (!options.kv_cache_dtype.empty()) {
    const auto* kv =
        std::find_if(kKvCacheDtypes.begin(), kKvCacheDtypes.end(),
                     [&](const KvCacheDtype& k) { return k.name == options.kv_cache_dtype; });
    if (kv == kKvCacheDtypes.end()) {
      std::string names;
      for (const std::string& name : KvCacheDtypeNames())
        names += (names.empty() ? "" : " or ") + name;
      return InvalidArgument("kv cache dtype '" + options.kv_cache_dtype +
                             "' is not supported: " + names);
    }
    kv_dtype_ = kv->dtype;
  }
  pool_ = std::make_unique<ThreadPool>(options.threads);
  ctx_.pool = pool_.get();
  ctx_.bf16 = options.compute == "bf16";
  weight_options_.pool = pool_.get();
  if (ctx_.bf16) weight_options_.panels = model::WeightOptions::Panels::kBf16;
  if (options.weights == "q8_0") weight_options_.quantize = tensor::DType::kQ8_0;
  if (options.weights == "q4_0") weight_options_.quantize = tensor::DType::kQ4_0;
  return OkStatus();
}

// The text model from weights_ as the options ask, and the KV pool for Generate.
Status Engine::LoadText(const EngineOptions& options) {
  IRIS_ASSIGN_OR_RETURN(
      model::TextModel text,
      model::TextModel::Load(weights_, config_.text, config_.tie_word_embeddings, weight_options_));
  text_.emplace(std::move(text));
  kv_pool_ = NewKvPool();
  if (!options.weights.empty()) weight_types_ += ", text model quantized to " + options.weights;
  return OkStatus();
}

Result<std::unique_ptr<Engine>> Engine::LoadGguf(const std::string& text_path,
                                                 const std::string& mmproj_path,
                                                 const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine());
  IRIS_RETURN_IF_ERROR(e->StartThreads(options));
  IRIS_ASSIGN_OR_RETURN(model::GgufCheckpoint ckpt,
                        model::OpenGgufCheckpoint(text_path, mmproj_path));
  e->config_ = ckpt.config;
  e->weights_ = ckpt.weights;
  e->weight_types_ = ckpt.weight_types +
                     (ckpt.dequantized ? " (quantized weights dequantized to F32 at load)" : "");
  IRIS_RETURN_IF_ERROR(e->LoadText(options));
  if (ckpt.mmproj) {
    IRIS_ASSIGN_OR_RETURN(model::VisionModel vision,
                          model::VisionModel::Load(e->weights_, e->config_, e->pool_.get(),
                                                   e->weight_options_.panels));
    e->vision_.emplace(std::move(vision));
    // The processor settings an mmproj carries; the rest are SmolVLM2's (smolvlm2.md §5).
    const formats::GgufContents& m = ckpt.mmproj->contents();
    media::ImageProcessorConfig ic;
    ic.tile_size = e->vision_->tile_size();
    ic.longest_edge = 4 * ic.tile_size;
    if (m.Has("clip.vision.preproc_image_size")) {
      IRIS_ASSIGN_OR_RETURN(uint64_t edge, m.Uint("clip.vision.preproc_image_size"));
      if (edge < static_cast<uint64_t>(ic.tile_size) || edge > 16384) {
        return InvalidArgument(m.path + ": clip.vision.preproc_image_size " + std::to_string(edge) +
                               " is outside " + std::to_string(ic.tile_size) + "..16384");
      }
      ic.longest_edge = static_cast<int>(edge);
    }
    for (const auto& [key, dst] :
         {std::pair<const char*, float*>{"clip.vision.image_mean", ic.image_mean},
          {"clip.vision.image_std", ic.image_std}}) {
      if (!m.Has(key)) continue;
      IRIS_ASSIGN_OR_RETURN(const std::vector<double>* v, m.Numbers(key));
      if (v->size() != 3) {
        return InvalidArgument(m.path + ": " + key + " has " + std::to_string(v->size()) +
                               " values, expected 3");
      }
      for (int i = 0; i < 3; ++i) {
        if (std::string_view(key).ends_with("std") && !((*v)[i] > 0)) {
          return InvalidArgument(m.path + ": " + key + " values must be positive");
        }
        dst[i] = static_cast<float>((*v)[i]);
      }
    }
    ic.image_seq_len = e->vision_->tokens_per_tile();
    e->image_config_.emplace(ic);
  }
  const formats::GgufContents& t = ckpt.text->contents();
  IRIS_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, TokenizerFromGguf(t));
  if (tok.vocab_size() > e->config_.text.vocab_size) {
    return FailedPrecondition(text_path + ": tokenizer has " + std::to_string(tok.vocab_size()) +
                              " ids but the model only " +
                              std::to_string(e->config_.text.vocab_size));
  }
  e->tokenizer_.emplace(std::move(tok));
  if (t.Has("tokenizer.chat_template")) {
    IRIS_ASSIGN_OR_RETURN(std::string source, t.String("tokenizer.chat_template"));
    auto tmpl = tokenizer::ChatTemplate::Parse(source);
    if (!tmpl.ok()) return tmpl.status().WithContext(text_path + ": tokenizer.chat_template");
    e->chat_template_.emplace(std::move(tmpl).value());
  }
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (!t.Has(key)) continue;
    IRIS_ASSIGN_OR_RETURN(uint64_t id, t.Uint(key));
    if (id >= static_cast<uint64_t>(e->config_.text.vocab_size)) {
      return InvalidArgument(text_path + ": " + key + " " + std::to_string(id) +
                             " is outside the vocabulary");
    }
    if (std::find(e->eos_ids_.begin(), e->eos_ids_.end(), static_cast<int32_t>(id)) ==
        e->eos_ids_.end()) {
      e->eos_ids_.push_back(static_cast<int32_t>(id));
    }
  }
  if (auto eou = e->tokenizer_->TokenId("<end_of_utterance>")) {
    if (std::find(e->eos_ids_.begin(), e->eos_ids_.end(), *eou) == e->eos_ids_.end()) {
      e->eos_ids_.push_back(*eou);
    }
  }
  return e;
}

Result<std::string> Engine::RenderChat(const json::array& messages,
                                       bool add_generation_prompt) const {
  if (!chat_template_) {
    return FailedPrecondition(
        "the model directory has no chat template "
        "(chat_template.json or tokenizer_config.json)");
  }
  json::object ctx;
  ctx["messages"] = messages;
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = "<|im_start|>";
  ctx["eos_token"] = "<end_of_utterance>";
  return chat_template_->Render(ctx);
}

Result<media::ProcessedImage> Engine::PreprocessImage(const media::Image& image) const {
  if (!vision_ || !image_config_) {
    return FailedPrecondition(
        "this model cannot read images (no vision tower or no "
        "preprocessor_config.json)");
  }
  return media::PreprocessImage(image, *image_config_);
}

Result<Visual> Engine::LoadImage(const std::string& path,
                                 const media::DecodeOptions& decode) const {
  IRIS_ASSIGN_OR_RETURN(media::Image image, media::LoadImageFile(path, decode));
  Visual v;
  auto pixels = PreprocessImage(image);
  if (!pixels.ok()) return pixels.status().WithContext(path);
  v.pixels = std::move(pixels).value();
  return v;
}

Result<Visual> Engine::LoadVideo(const std::string& path) const {
  if (!vision_ || !image_config_) {
    return FailedPrecondition(
        "this model cannot read videos (no vision tower or no "
        "preprocessor_config.json)");
  }
  IRIS_ASSIGN_OR_RETURN(media::SampledVideo video, media::LoadVideo(path, video_sampling_));
  // Frames are independent: preprocess them on every core, then concatenate in order.
  std::vector<Result<media::ProcessedImage>> parts(video.frames.size(),
                                                   Status(ErrorCode::kInternal, "not run"));
  pool_->Run(video.frames.size(), [&](size_t i, int) {
    parts[i] = media::PreprocessVideoFrames({video.frames[i]}, *image_config_);
  });
  Visual v;
  for (auto& part : parts) {
    if (!part.ok()) return part.status().WithContext(path);
    if (v.pixels.num_tiles == 0) {
      v.pixels = std::move(part).value();
    } else {
      v.pixels.pixel_values.insert(v.pixels.pixel_values.end(), part->pixel_values.begin(),
                                   part->pixel_values.end());
      v.pixels.num_tiles += part->num_tiles;
    }
  }
  if (v.pixels.num_tiles == 0) return InvalidArgument(path + ": no frames were sampled");
  v.is_video = true;
  v.frame_indices = std::move(video.indices);
  v.fps = video.metadata.fps;
  v.duration = video.metadata.duration;
  return v;
}

Result<std::shared_ptr<const model::LoraAdapter>> Engine::LoadAdapter(
    const std::string& dir) const {
  return model::LoraAdapter::Load(dir, {config_, vision_.has_value()});
}

Result<std::vector<int32_t>> Engine::TokenizePrompt(std::string_view prompt_text,
                                                    std::span<const Visual> visuals) const {
  static constexpr std::string_view kImage = "<image>", kVideo = "<video>";
  if (!visuals.empty() && !vision_) return FailedPrecondition("this model has no vision tower");
  std::string expanded;
  size_t used = 0, pos = 0;
  for (;;) {
    const size_t at_image = prompt_text.find(kImage, pos);
    const size_t at_video = prompt_text.find(kVideo, pos);
    const size_t at = std::min(at_image, at_video);
    if (at == std::string_view::npos) break;
    const bool video = at == at_video;
    if (used == visuals.size()) {
      return InvalidArgument("the prompt has more <image>/<video> placeholders than the " +
                             std::to_string(visuals.size()) + " images and videos given");
    }
    const Visual& v = visuals[used++];
    if (v.is_video != video) {
      return InvalidArgument("placeholder " + std::to_string(used) + " of the prompt is " +
                             std::string(video ? kVideo : kImage) + " but visual " +
                             std::to_string(used) + " is " + (v.is_video ? "a video" : "an image"));
    }
    expanded.append(prompt_text.substr(pos, at - pos));
    const int n = vision_->tokens_per_tile();
    expanded += video ? media::ExpandVideoPrompt(v.frame_indices, v.fps, v.duration, n)
                      : media::ExpandImagePrompt(v.pixels.rows, v.pixels.cols, n);
    pos = at + (video ? kVideo.size() : kImage.size());
  }
  if (used != visuals.size()) {
    return InvalidArgument(std::to_string(visuals.size()) +
                           " images/videos were given but the "
                           "prompt has " +
                           std::to_string(used) + " <image>/<video> placeholders");
  }
  expanded.append(prompt_text.substr(pos));
  return tokenizer_->Encode(expanded);
}

Result<GenerateResult> Engine::Generate(std::span<const int32_t> prompt,
                                        const GenerateOptions& options, const TextCallback& on_text,
                                        std::span<const Visual> visuals) {
  // A batch of one: the same code path as a served request, the prompt in one chunk.
  SchedulerOptions so;
  so.max_batch = 1;
  so.max_queue = 1;
  so.prefill_chunk = SIZE_MAX;
  so.prefix_cache = false;
  so.image_cache_bytes = 0;
  Scheduler scheduler(*this, kv_pool_, so);
  std::optional<Result<GenerateResult>> out;
  SequenceRequest request;
  request.prompt.assign(prompt.begin(), prompt.end());
  request.visuals.assign(visuals.begin(), visuals.end());
  request.options = options;
  request.on_text = on_text;
  request.on_done = [&](Result<GenerateResult> r) { out = std::move(r); };
  IRIS_RETURN_IF_ERROR(scheduler.Add(std::move(request)));
  while (!out) {
    if (scheduler.Step() == 0 && !out) return Internal("the generation stalled");
  }
  return std::move(*out);
}

}  // namespace iris::runtime
