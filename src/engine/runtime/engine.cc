#include "engine/runtime/engine.h"

#include <algorithm>
#include <filesystem>

#include "base/json.h"
#include "base/time.h"

namespace iris::runtime {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// eos ids from generation_config.json (an int or a list), falling back to the tokenizer's
// <end_of_utterance>.
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

// Length of the longest suffix of `text` that is a proper prefix of a stop string: that
// much output is held back until the next token decides.
size_t HeldBack(std::string_view text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    for (size_t n = std::min(s.size() - 1, text.size()); n > held; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        held = n;
        break;
      }
    }
  }
  return held;
}

// video_sampling.{fps, max_frames} of preprocessor_config.json (defaults: 1 fps, 64).
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

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Load(const std::string& model_dir,
                                             const EngineOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return NotFound(model_dir + ": not a model directory");
  }
  std::unique_ptr<Engine> e(new Engine());
  IRIS_ASSIGN_OR_RETURN(e->config_, model::LoadModelConfig(model_dir));
  IRIS_ASSIGN_OR_RETURN(e->weights_, formats::WeightStore::OpenDir(model_dir));
  IRIS_ASSIGN_OR_RETURN(
      model::TextModel text,
      model::TextModel::Load(e->weights_, e->config_.text, e->config_.tie_word_embeddings));
  e->text_.emplace(std::move(text));
  if (e->weights_.Has("model.vision_model.embeddings.patch_embedding.weight") ||
      e->weights_.Has("vision_model.embeddings.patch_embedding.weight")) {
    IRIS_ASSIGN_OR_RETURN(model::VisionModel vision,
                          model::VisionModel::Load(e->weights_, e->config_));
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
  e->pool_ = std::make_unique<ThreadPool>(options.threads);
  e->ctx_.pool = e->pool_.get();
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
  IRIS_RETURN_IF_ERROR(options.sampling.Validate());
  if (prompt.empty()) return InvalidArgument("the prompt is empty");
  if (options.max_tokens < 0) return InvalidArgument("max_tokens must be >= 0");
  const int vocab = config_.text.vocab_size;
  for (int32_t id : prompt) {
    if (id < 0 || id >= vocab) {
      return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary");
    }
  }
  const size_t max_pos = static_cast<size_t>(config_.text.max_position_embeddings);
  if (prompt.size() >= max_pos) {
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                      " tokens; the model's context is " + std::to_string(max_pos));
  }
  const size_t budget =
      std::min<size_t>(static_cast<size_t>(options.max_tokens), max_pos - prompt.size());

  GenerateResult result;
  result.prompt_tokens = prompt.size();
  model::KvCache cache = text_->NewCache();
  cache.Reserve(prompt.size() + budget);
  const size_t dim = static_cast<size_t>(text_->model_dim());
  std::vector<float> embeds(prompt.size() * dim);
  text_->Embed(prompt, embeds.data());
  auto tv = SteadyClock::now();
  std::vector<float> features;  // [tiles * tokens_per_tile, dim]
  if (!visuals.empty()) {
    if (!vision_) return FailedPrecondition("this model has no vision tower");
    const size_t tile = static_cast<size_t>(vision_->tile_size());
    const size_t per_tile = static_cast<size_t>(vision_->tokens_per_tile()) * dim;
    for (const Visual& v : visuals) {
      const media::ProcessedImage& im = v.pixels;
      if (static_cast<size_t>(im.tile_size) != tile ||
          im.pixel_values.size() != static_cast<size_t>(im.num_tiles) * 3 * tile * tile) {
        return InvalidArgument("an image was preprocessed for " + std::to_string(im.tile_size) +
                               " px tiles; this model takes " + std::to_string(tile));
      }
      result.image_tiles += static_cast<size_t>(im.num_tiles);
    }
    features.resize(result.image_tiles * per_tile);
    size_t t = 0;
    for (const Visual& v : visuals) {
      const media::ProcessedImage& im = v.pixels;
      for (int i = 0; i < im.num_tiles; ++i, ++t) {
        vision_->EncodeTile(ctx_, im.pixel_values.data() + static_cast<size_t>(i) * 3 * tile * tile,
                            nullptr, features.data() + t * per_tile);
      }
    }
  }
  IRIS_RETURN_IF_ERROR(
      model::MergeImageFeatures(prompt, config_.image_token_id, features, dim, embeds.data()));
  result.vision_seconds = SecondsSince(tv);
  std::vector<float> logits;
  auto t0 = SteadyClock::now();
  text_->Forward(ctx_, embeds.data(), prompt.size(), cache, /*all_logits=*/false, &logits);
  result.prefill_seconds = SecondsSince(t0);

  Sampler sampler(options.sampling);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  tokenizer::StreamDecoder decoder(*tokenizer_, /*skip_special=*/true);
  std::string text;    // everything decoded so far
  size_t printed = 0;  // bytes of `text` already handed to on_text
  bool cancelled = false;
  bool stopped_by_string = false;
  auto emit = [&](size_t upto) {
    if (upto > printed) {
      if (on_text && !on_text(std::string_view(text).substr(printed, upto - printed))) {
        cancelled = true;
      }
      printed = upto;
    }
  };
  result.finish_reason = "length";
  auto t1 = SteadyClock::now();
  std::vector<float> next(text_->model_dim());
  for (size_t step = 0; step < budget && !cancelled; ++step) {
    const int32_t id = sampler.Sample(logits, history);
    result.tokens.push_back(id);
    history.push_back(id);
    if (options.stop_at_eos && std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end()) {
      result.finish_reason = "stop";
      break;
    }
    text += decoder.Push(id);
    bool stopped = false;
    for (const std::string& s : options.stop) {
      if (s.empty()) continue;
      size_t from = printed > s.size() ? printed - s.size() : 0;
      size_t pos = text.find(s, from);
      if (pos != std::string::npos) {
        text.resize(pos);
        stopped = true;
      }
    }
    if (stopped) {
      stopped_by_string = true;
      emit(text.size());
      result.finish_reason = "stop";
      break;
    }
    emit(text.size() - HeldBack(text, options.stop));
    if (step + 1 == budget) break;
    text_->Embed(std::span<const int32_t>(&id, 1), next.data());
    text_->Forward(ctx_, next.data(), 1, cache, false, &logits);
  }
  if (!stopped_by_string && !cancelled) {
    text += decoder.Flush();
    emit(text.size());
  }
  result.decode_seconds = SecondsSince(t1);
  result.text = std::move(text);
  return result;
}

}  // namespace iris::runtime
