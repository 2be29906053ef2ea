#include "engine/runtime/verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <span>

#include "base/json.h"
#include "engine/media/image.h"
#include "engine/media/image_processor.h"
#include "engine/media/video.h"
#include "engine/model/vision_model.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/sampler.h"

namespace iris::runtime {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

struct Golden {
  const formats::WeightStore* store;
  std::string case_name;
  Result<formats::TensorEntry> Get(const std::string& item) const {
    return store->Get(case_name + "." + item);
  }
  bool Has(const std::string& item) const { return store->Has(case_name + "." + item); }
};

std::vector<int32_t> ToIds(const tensor::TensorView& v) {
  std::vector<int32_t> ids(static_cast<size_t>(v.num_elements()));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = v.dtype == tensor::DType::kI64
                 ? static_cast<int32_t>(static_cast<const int64_t*>(v.data)[i])
                 : static_cast<int32_t>(v.GetF32(static_cast<int64_t>(i)));
  }
  return ids;
}

// KL(p || q) of the softmax distributions of two logit rows, in nats.
double KlDivergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  auto log_softmax = [](std::span<const float> x) {
    const double m = *std::max_element(x.begin(), x.end());
    double sum = 0;
    for (float v : x) sum += std::exp(v - m);
    std::vector<double> out(x.size());
    const double lse = m + std::log(sum);
    for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - lse;
    return out;
  };
  const std::vector<double> lp = log_softmax(p_logits), lq = log_softmax(q_logits);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(kl, 0.0);
}

VerifyLine Compare(const std::string& case_name, const std::string& item, const float* got,
                   size_t n, const tensor::TensorView& golden, double rel_tol) {
  VerifyLine line;
  line.case_name = case_name;
  line.item = item;
  if (static_cast<size_t>(golden.num_elements()) != n) {
    line.detail = "size mismatch: got " + std::to_string(n) + " values, golden has " +
                  std::to_string(golden.num_elements());
    return line;
  }
  double max_golden = 0, max_err = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = golden.GetF32(static_cast<int64_t>(i));
    max_golden = std::max(max_golden, std::fabs(g));
    const double err = std::fabs(g - got[i]);
    if (!(err <= max_err)) max_err = std::isnan(err) ? INFINITY : err;
  }
  line.max_abs_error = max_err;
  line.tolerance = rel_tol * max_golden;
  line.ok = max_err <= line.tolerance;
  return line;
}

}  // namespace

Result<std::vector<VerifyLine>> Verify(const std::string& model_dir, const VerifyOptions& options,
                                       const std::function<void(const VerifyLine&)>& on_line) {
  const fs::path dir(model_dir);
  IRIS_ASSIGN_OR_RETURN(json::value meta, ReadJsonFile((dir / "goldens.json").string()));
  const json::value* cases_v = meta.is_object() ? meta.as_object().if_contains("cases") : nullptr;
  if (!cases_v || !cases_v->is_object()) {
    return InvalidArgument((dir / "goldens.json").string() + ": no \"cases\" object");
  }
  const json::object& cases = cases_v->as_object();
  for (const std::string& c : options.cases) {
    if (!cases.contains(c)) {
      std::string known;
      for (const auto& [k, v] : cases) known += (known.empty() ? "" : ", ") + std::string(k);
      return NotFound("no case '" + c + "' in " + (dir / "goldens.json").string() +
                      " (cases: " + known + ")");
    }
  }
  IRIS_ASSIGN_OR_RETURN(formats::WeightStore goldens,
                        formats::WeightStore::OpenFiles({(dir / "goldens.safetensors").string()}));
  EngineOptions eo;
  eo.threads = options.threads;
  eo.mmproj = options.mmproj;
  eo.weights = options.weights;
  eo.compute = options.compute;
  eo.kv_cache_dtype = options.kv_cache_dtype;
  IRIS_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                        Engine::Load(options.model.empty() ? model_dir : options.model, eo));
  const model::TextModel& text = engine->text_model();
  const size_t vocab = static_cast<size_t>(text.vocab_size());
  const size_t dim = static_cast<size_t>(text.model_dim());

  std::vector<VerifyLine> lines;
  const bool bf16 = options.compute == "bf16";
  const bool kv16 = options.kv_cache_dtype == "f16";
  const bool measured = !options.weights.empty() || bf16 || kv16;
  std::string what;
  for (const std::string& part :
       {options.weights.empty() ? "" : options.weights + " weights",
        std::string(bf16 ? "bf16 products" : ""), std::string(kv16 ? "f16 KV cache" : "")}) {
    if (!part.empty()) what += (what.empty() ? "" : ", ") + part;
  }
  auto report = [&](VerifyLine line) {
    // What the text weights (and bf16 products, the vision tower's too) change is measured;
    // the rest (ids, pixels; the vision tower, which --weights leaves as stored) is still held
    // to the exact tolerance.
    // (An f16 KV cache changes what attention reads, never the embeddings.)
    const bool model_output =
        (line.item == "inputs_embeds" && (!options.weights.empty() || bf16)) ||
        line.item == "logits" || line.item == "generation_step_logits" ||
        line.item == "greedy_tokens";
    const bool vision_output =
        line.item == "vision_last_hidden_state" || line.item == "image_features";
    // (Never a non-finite error: NaN or Inf is a failure whatever the precision.)
    if (measured && !line.ok && std::isfinite(line.max_abs_error) &&
        (model_output || (bf16 && vision_output))) {
      line.ok = true;
      if (line.detail.empty()) {
        char buf[96];
        std::snprintf(buf, sizeof(buf), "max_abs_err %.3e (exact tolerance %.3e)",
                      line.max_abs_error, line.tolerance);
        line.detail = buf;
      }
      line.detail += " (" + what + ": measured)";
    }
    if (on_line) on_line(line);
    lines.push_back(std::move(line));
  };
  for (const auto& [key, value] : cases) {
    const std::string name(key);
    if (!options.cases.empty() &&
        std::find(options.cases.begin(), options.cases.end(), name) == options.cases.end()) {
      continue;
    }
    Golden g{&goldens, name};
    const json::object& c = value.as_object();
    IRIS_ASSIGN_OR_RETURN(formats::TensorEntry ids_t, g.Get("input_ids"));
    const std::vector<int32_t> ids = ToIds(ids_t.view);
    // 1. Tokenization of the exact prompt the processor tokenized.
    if (const json::value* ep = c.if_contains("expanded_prompt"); ep && ep->is_string()) {
      std::vector<int32_t> mine = engine->tokenizer().Encode(std::string(ep->as_string()));
      VerifyLine line;
      line.case_name = name;
      line.item = "input_ids";
      line.ok = mine == ids;
      line.detail = line.ok ? std::to_string(ids.size()) + " ids identical"
                            : "tokenizer gives " + std::to_string(mine.size()) +
                                  " ids that differ from the golden " + std::to_string(ids.size());
      report(line);
    }
    // 2. Vision tower and connector on the processor's pixel values, tile by tile.
    std::vector<float> features;  // [tiles * tokens_per_tile, dim]
    if (g.Has("pixel_values")) {
      if (!engine->vision_model()) {
        return FailedPrecondition(model_dir + ": case '" + name +
                                  "' has images but the checkpoint has no vision tower");
      }
      const model::VisionModel& vision = *engine->vision_model();
      IRIS_ASSIGN_OR_RETURN(formats::TensorEntry pv, g.Get("pixel_values"));
      const int64_t tile = vision.tile_size();
      if (pv.view.shape.size() != 5 || pv.view.shape[2] != 3 || pv.view.shape[3] != tile ||
          pv.view.shape[4] != tile || pv.view.dtype != tensor::DType::kF32) {
        return InvalidArgument("golden " + name + ".pixel_values has shape " +
                               tensor::ShapeString(pv.view.shape) + "; expected [1, N, 3, " +
                               std::to_string(tile) + ", " + std::to_string(tile) + "] F32");
      }
      const size_t tiles = static_cast<size_t>(pv.view.shape[1]);
      const size_t tile_floats = 3 * static_cast<size_t>(tile * tile);
      const auto* pixels = static_cast<const float*>(pv.view.data);
      // The processor: our decoding + preprocessing of the case's images or video frames must
      // give the golden pixel values bit for bit, and the prompt expanded for them the golden
      // ids.
      std::vector<float> ours;
      std::vector<Visual> visuals;
      const json::value* imgs = c.if_contains("images");
      const json::value* frames = c.if_contains("video_frames");
      if (!engine->image_config()) {
        return FailedPrecondition(model_dir + ": no preprocessor_config.json");
      }
      auto load = [&](const json::value& path) -> Result<media::Image> {
        if (!path.is_string()) return InvalidArgument(name + ": image paths must be strings");
        return media::LoadImageFile((dir.parent_path() / std::string(path.as_string())).string());
      };
      if (imgs && imgs->is_array()) {
        media::ImageProcessorConfig pc = *engine->image_config();
        if (const json::value* split = c.if_contains("do_image_splitting");
            split && split->is_bool()) {
          pc.do_image_splitting = split->as_bool();
        }
        for (const json::value& path : imgs->as_array()) {
          IRIS_ASSIGN_OR_RETURN(media::Image image, load(path));
          Visual v;
          IRIS_ASSIGN_OR_RETURN(v.pixels, media::PreprocessImage(image, pc));
          ours.insert(ours.end(), v.pixels.pixel_values.begin(), v.pixels.pixel_values.end());
          visuals.push_back(std::move(v));
        }
      } else if (frames && frames->is_array()) {
        std::vector<media::Image> decoded;
        for (const json::value& path : frames->as_array()) {
          IRIS_ASSIGN_OR_RETURN(media::Image image, load(path));
          decoded.push_back(std::move(image));
        }
        Visual v;
        v.is_video = true;
        IRIS_ASSIGN_OR_RETURN(v.pixels,
                              media::PreprocessVideoFrames(decoded, *engine->image_config()));
        const json::value* video_meta = c.if_contains("video_metadata");
        if (!video_meta || !video_meta->is_object())
          return InvalidArgument(name + ": no video_metadata");
        const json::object& m = video_meta->as_object();
        if (const json::value* idx = m.if_contains("frames_indices"); idx && idx->is_array()) {
          for (const json::value& i : idx->as_array()) {
            if (i.is_int64()) v.frame_indices.push_back(i.as_int64());
          }
        }
        if (const json::value* fps = m.if_contains("fps"); fps && fps->is_number()) {
          v.fps = fps->to_number<double>();
        }
        if (const json::value* d = m.if_contains("duration"); d && d->is_number()) {
          v.duration = d->to_number<double>();
        }
        ours = v.pixels.pixel_values;
        visuals.push_back(std::move(v));
      }
      if (!visuals.empty()) {
        VerifyLine pl = Compare(name, "pixel_values", ours.data(), ours.size(), pv.view, 0.0);
        report(pl);
        if (const json::value* pr = c.if_contains("prompt"); pr && pr->is_string()) {
          auto expanded = engine->TokenizePrompt(std::string(pr->as_string()), visuals);
          VerifyLine line;
          line.case_name = name;
          line.item = "prompt_expansion";
          line.ok = expanded.ok() && *expanded == ids;
          line.detail =
              !expanded.ok() ? expanded.status().message()
              : line.ok ? "prompt + media give the golden " + std::to_string(ids.size()) + " ids"
                        : "prompt + media give different ids";
          report(line);
        }
        if (pl.ok) pixels = ours.data();  // run the model on our own pixels from here on
      }
      const size_t hidden_floats =
          static_cast<size_t>(vision.num_patches()) * static_cast<size_t>(vision.hidden_size());
      const size_t feature_floats = static_cast<size_t>(vision.tokens_per_tile()) * dim;
      std::vector<float> hidden(tiles * hidden_floats);
      features.resize(tiles * feature_floats);
      for (size_t t = 0; t < tiles; ++t) {
        vision.EncodeTile(engine->compute(), pixels + t * tile_floats,
                          hidden.data() + t * hidden_floats, features.data() + t * feature_floats);
      }
      if (g.Has("vision_last_hidden_state")) {
        IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, g.Get("vision_last_hidden_state"));
        report(Compare(name, "vision_last_hidden_state", hidden.data(), hidden.size(), e.view,
                       options.relative_tolerance));
      }
      if (g.Has("image_features")) {
        IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, g.Get("image_features"));
        report(Compare(name, "image_features", features.data(), features.size(), e.view,
                       options.relative_tolerance));
      }
    }
    // 3. Token embeddings with the <image> rows replaced by the features, in order.
    std::vector<float> embeds(ids.size() * dim);
    text.Embed(ids, embeds.data());
    IRIS_RETURN_IF_ERROR(model::MergeImageFeatures(ids, engine->config().image_token_id, features,
                                                   dim, embeds.data())
                             .WithContext(name));
    if (g.Has("inputs_embeds")) {
      IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, g.Get("inputs_embeds"));
      report(Compare(name, "inputs_embeds", embeds.data(), embeds.size(), e.view,
                     options.relative_tolerance));
    }
    model::KvCache cache(engine->NewKvPool());
    std::vector<float> logits;
    IRIS_RETURN_IF_ERROR(
        text.Forward(engine->compute(), embeds.data(), ids.size(), cache, true, &logits)
            .WithContext(name));
    IRIS_ASSIGN_OR_RETURN(formats::TensorEntry lg, g.Get("logits"));
    report(
        Compare(name, "logits", logits.data(), logits.size(), lg.view, options.relative_tolerance));
    // The next-token distributions at every position against the golden ones.
    if (static_cast<size_t>(lg.view.num_elements()) == logits.size()) {
      const size_t positions = logits.size() / vocab;
      size_t agree = 0;
      double kl_sum = 0;
      std::vector<float> golden_row(vocab);
      for (size_t p = 0; p < positions; ++p) {
        for (size_t v = 0; v < vocab; ++v) {
          golden_row[v] = lg.view.GetF32(static_cast<int64_t>(p * vocab + v));
        }
        const std::span<const float> ours(logits.data() + p * vocab, vocab);
        agree += ArgMax(golden_row) == ArgMax(ours);
        kl_sum += KlDivergence(golden_row, ours);
      }
      VerifyLine line;
      line.case_name = name;
      line.item = "next_token";
      line.ok = measured || agree == positions;
      char buf[160];
      std::snprintf(buf, sizeof(buf), "top-1 agrees at %zu/%zu positions, mean KL %.3g nats", agree,
                    positions, kl_sum / static_cast<double>(std::max<size_t>(positions, 1)));
      line.detail = buf;
      report(line);
    }
    // 3. Greedy decoding with the KV cache.
    if (g.Has("generated_ids")) {
      IRIS_ASSIGN_OR_RETURN(formats::TensorEntry gen_t, g.Get("generated_ids"));
      const std::vector<int32_t> want = ToIds(gen_t.view);
      std::vector<float> step_logits;  // [steps, vocab]
      std::vector<int32_t> got;
      std::vector<float> last(logits.end() - static_cast<std::ptrdiff_t>(vocab), logits.end());
      std::vector<float> emb(dim);
      for (size_t s = 0; s < want.size(); ++s) {
        step_logits.insert(step_logits.end(), last.begin(), last.end());
        const int32_t id = ArgMax(last);
        got.push_back(id);
        if (s + 1 == want.size()) break;
        text.Embed(std::span<const int32_t>(&id, 1), emb.data());
        IRIS_RETURN_IF_ERROR(
            text.Forward(engine->compute(), emb.data(), 1, cache, false, &last).WithContext(name));
      }
      if (g.Has("generation_step_logits")) {
        IRIS_ASSIGN_OR_RETURN(formats::TensorEntry sl, g.Get("generation_step_logits"));
        report(Compare(name, "generation_step_logits", step_logits.data(), step_logits.size(),
                       sl.view, options.relative_tolerance));
      }
      size_t match = 0;
      while (match < want.size() && match < got.size() && want[match] == got[match]) ++match;
      VerifyLine line;
      line.case_name = name;
      line.item = "greedy_tokens";
      line.ok = got == want;
      line.detail = std::to_string(match) + "/" + std::to_string(want.size()) + " tokens match";
      report(line);
    }
  }
  return lines;
}

}  // namespace iris::runtime
