#include "engine/runtime/gguf_export.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/mapped_file.h"
#include "engine/formats/gguf.h"
#include "engine/formats/safetensors.h"
#include "engine/kernels/kernels.h"
#include "engine/media/image_processor.h"
#include "engine/model/config.h"
#include "engine/model/gguf_checkpoint.h"
#include "engine/model/text_model.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/gguf_tokenizer.h"
#include "engine/tensor/quant.h"
#include "engine/tensor/tensor.h"
#include "engine/tokenizer/chat_template.h"

namespace iris::runtime {
namespace fs = std::filesystem;
namespace json = boost::json;
using formats::GgufString;
using formats::GgufU32;
using formats::GgufValue;
using tensor::DType;
using tensor::GgmlType;
using Metadata = std::vector<std::pair<std::string, GgufValue>>;

namespace {

// llama.cpp's general.file_type (enum llama_ftype) for a file whose matrices are `type`.
uint32_t FileType(GgmlType type) {
  switch (type) {
    case GgmlType::kF16:
      return 1;
    case GgmlType::kQ4_0:
      return 2;
    case GgmlType::kQ8_0:
      return 7;
    case GgmlType::kBF16:
      return 32;
    default:
      return 0;  // all F32
  }
}

// One tensor of a file being written: where its values come from and how they are stored.
struct Planned {
  formats::TensorEntry entry;  // under the checkpoint's own name
  std::string gguf_name;
  GgmlType type = GgmlType::kF32;
  size_t heads = 0;  // > 0: the Q/K rows are permuted over that many heads
  int order = 0;     // files list top-level tensors, then the layers in order
};

// The checkpoint's tensor name under the names OpenGgufCheckpoint gives (model.text_model.*,
// model.vision_model.*, model.connector.*, lm_head.weight).
std::string CanonicalName(const std::string& name, const std::string& text_prefix) {
  for (const char* p : {"model.vision_model.", "model.connector.", "model.text_model."}) {
    if (name.starts_with(p)) return name;
  }
  if (name.starts_with("vision_model.") || name.starts_with("connector.")) return "model." + name;
  if (name.starts_with(text_prefix)) return "model.text_model." + name.substr(text_prefix.size());
  return name;
}

// The layer number in "blk.N.*" / "v.blk.N.*", or -1.
int LayerOf(const std::string& gguf_name) {
  const std::string p = gguf_name.starts_with("v.blk.") ? "v.blk." : "blk.";
  if (!gguf_name.starts_with(p)) return -1;
  return std::atoi(gguf_name.c_str() + p.size());
}

// The values of `t`'s tensor as its type, rows permuted per head when heads > 0 (file row
// UnpermutedRow(o) holds the checkpoint's row o).
std::vector<uint8_t> Encode(const Planned& t, ThreadPool* pool) {
  const tensor::TensorView& v = t.entry.view;
  const size_t cols = v.shape.empty() ? 1 : static_cast<size_t>(v.shape.back());
  const size_t rows = cols == 0 ? 0 : static_cast<size_t>(v.num_elements()) / cols;
  const size_t src_row = tensor::RowBytes(v.dtype, cols);
  const size_t dst_row =
      cols / tensor::GgmlInfo(t.type).block_elems * tensor::GgmlInfo(t.type).block_bytes;
  std::vector<uint8_t> out(rows * dst_row);
  const auto* src = static_cast<const uint8_t*>(v.data);
  ParallelFor(pool, rows, 16, [&](size_t begin, size_t end, int) {
    std::vector<float> values(cols);
    for (size_t o = begin; o < end; ++o) {
      const uint8_t* in = src + o * src_row;
      const size_t r = t.heads > 0 ? model::UnpermutedRow(o, rows, t.heads) : o;
      uint8_t* dst = out.data() + r * dst_row;
      if (tensor::StoredGgmlType(v.dtype) == t.type) {
        std::memcpy(dst, in, src_row);
        continue;
      }
      kernels::ConvertRowToF32(in, v.dtype, cols, values.data());
      switch (t.type) {
        case GgmlType::kQ8_0:
          tensor::QuantizeRowQ8_0(values.data(), cols, dst);
          break;
        case GgmlType::kQ4_0:
          tensor::QuantizeRowQ4_0(values.data(), cols, dst);
          break;
        case GgmlType::kBF16:  // only for F32 values that are exactly bf16
          for (size_t i = 0; i < cols; ++i) {
            uint32_t w;
            std::memcpy(&w, &values[i], 4);
            const auto h = static_cast<uint16_t>(w >> 16);
            std::memcpy(dst + 2 * i, &h, 2);
          }
          break;
        default:  // kF32
          std::memcpy(dst, values.data(), cols * sizeof(float));
          break;
      }
    }
  });
  return out;
}

// The type a tensor is stored as: `matrices` (the quantized type) for a text matrix of whole
// blocks; F32 for vectors and the patch and position embeddings; else the checkpoint's type,
// F32 holding bf16 values narrowed to BF16.
Result<GgmlType> TypeFor(const Planned& t, std::optional<GgmlType> matrices) {
  const tensor::TensorView& v = t.entry.view;
  if (v.dtype != DType::kF32 && v.dtype != DType::kBF16 && v.dtype != DType::kF16) {
    return Unimplemented(t.entry.file + ": tensor '" + t.entry.name + "' is " +
                         std::string(tensor::DTypeName(v.dtype)) +
                         " (a SmolVLM2 checkpoint holds F32, BF16 or F16 weights)");
  }
  const bool matrix = v.shape.size() == 2;
  if (matrices && tensor::WholeBlockMatrix(v.shape)) return *matrices;
  if (!matrix || t.gguf_name.starts_with("v.patch_embd.") ||
      t.gguf_name.starts_with("v.position_embd.")) {
    return GgmlType::kF32;
  }
  if (v.dtype == DType::kF32) {
    const bool narrow = tensor::ExactlyBf16(v);
    // Read once here, again when written: not kept resident in between.
    if (t.entry.mapped) ReleasePages(v.data, v.num_bytes());
    if (narrow) return GgmlType::kBF16;
  }
  return *tensor::StoredGgmlType(v.dtype);
}

// Writes `tensors` with `metadata` to `path`, a tensor at a time.
Result<uint64_t> WriteFile(const std::string& path, const Metadata& metadata,
                           const std::vector<Planned>& tensors, ThreadPool* pool,
                           const std::function<void(uint64_t)>& done) {
  std::vector<formats::GgufTensorInfo> infos;
  for (const Planned& t : tensors) infos.push_back({t.gguf_name, t.type, t.entry.view.shape});
  IRIS_ASSIGN_OR_RETURN(std::unique_ptr<formats::GgufWriter> w,
                        formats::GgufWriter::Create(path, metadata, infos));
  for (const Planned& t : tensors) {
    const std::vector<uint8_t> bytes = Encode(t, pool);
    IRIS_RETURN_IF_ERROR(w->Append(bytes));
    // Read once: its pages of the checkpoint's mapping can go (a 2.2B checkpoint need not
    // stay resident while it is written).
    if (t.entry.mapped) ReleasePages(t.entry.view.data, t.entry.view.num_bytes());
    if (done) done(t.entry.view.num_bytes());
  }
  IRIS_RETURN_IF_ERROR(w->Finish());
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return DataLoss(path + ": written but cannot be read back (" + ec.message() + ")");
  return static_cast<uint64_t>(size);
}

GgufValue Floats(std::vector<double> v) {
  return formats::GgufNumbers(formats::GgufValueType::kF32, std::move(v));
}

// An id of generation_config.json (bos_token_id, pad_token_id) when it is one.
std::optional<uint32_t> GenerationId(const json::value* gen, const char* key, int vocab) {
  const json::value* v =
      gen != nullptr && gen->is_object() ? gen->as_object().if_contains(key) : nullptr;
  if (v == nullptr || !v->is_int64() || v->as_int64() < 0 || v->as_int64() >= vocab) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(v->as_int64());
}

}  // namespace

std::string CheckpointName(const std::string& model_dir) {
  fs::path p = fs::path(model_dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  // A Hugging Face cache snapshot: .../models--Org--Name/snapshots/<revision>.
  if (p.parent_path().filename() == "snapshots") {
    const std::string repo = p.parent_path().parent_path().filename().string();
    const size_t sep = repo.rfind("--");
    if (repo.starts_with("models--") && sep != std::string::npos && sep + 2 < repo.size()) {
      return repo.substr(sep + 2);
    }
  }
  const std::string name = p.filename().string();
  return name.empty() || name == "." || name == ".." ? "model" : name;
}

Status CheckFileName(const std::string& name) {
  const bool plain = !name.empty() && name.size() <= 200 && name[0] != '.' &&
                     std::all_of(name.begin(), name.end(), [](char ch) {
                       return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
                              ch == '_' || ch == '.' || ch == '+';
                     });
  if (!plain || name.starts_with("mmproj")) {
    return InvalidArgument(
        "the files' name '" + name +
        "' must be 1 to 200 letters, digits, '-', '_', '.' or '+', not start with '.' or "
        "\"mmproj\" (an mmproj file's prefix): pass --name");
  }
  return OkStatus();
}

namespace {

// A few texts of every kind a prompt holds: the GGUF tokenizer must split them as tokenizer.json.
constexpr const char* kTokenizerProbes[] = {
    "<|im_start|>User: What is the capital of France?<end_of_utterance>\nAssistant:",
    "<fake_token_around_image><global-img><image><image><fake_token_around_image>",
    "Digits 12345 and 3.14159, unicode: naïve café 日本語 🙂, code: x->y != z;",
    "   leading spaces\t\ttabs\n\nnewlines  ",
    "<row_1_col_2><image>",
};

// The written files, loaded as `iris run` loads them, against the checkpoint's own reading:
// the same tokens, end ids and image settings (`images`: the checkpoint's, if it reads images).
// A difference names what GGUF could not carry.
Status CheckWritten(const GgufExport& files, const std::string& model_dir,
                    const tokenizer::Tokenizer& tok, const std::vector<int32_t>& eos,
                    const std::optional<media::ImageProcessorConfig>& images, ThreadPool* pool) {
  EngineOptions o;
  o.threads = pool != nullptr ? pool->num_threads() : 1;
  o.mmproj = files.mmproj_path;
  auto loaded = Engine::Load(files.text_path, o);
  if (!loaded.ok()) return loaded.status().WithContext("the written files do not load");
  const Engine& e = **loaded;
  for (const char* text : kTokenizerProbes) {
    if (e.tokenizer().Encode(text) != tok.Encode(text)) {
      return Unimplemented(model_dir + ": the GGUF tokenizer splits '" + text +
                           "' otherwise than tokenizer.json");
    }
  }
  std::vector<int32_t> want = eos, got = e.eos_ids();
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  if (want != got) {
    return Unimplemented(model_dir + ": generation_config.json ends answers at " +
                         std::to_string(eos.size()) +
                         " ids; a GGUF model carries two (eos, eot) and <end_of_utterance>");
  }
  if (files.mmproj_path.empty()) return OkStatus();
  if (!images) return OkStatus();  // the checkpoint reads no images; the files can
  const media::ImageProcessorConfig& a = *images;
  const media::ImageProcessorConfig* b = e.image_config();
  const bool same = b != nullptr && a.do_convert_rgb == b->do_convert_rgb &&
                    a.do_resize == b->do_resize && a.do_image_splitting == b->do_image_splitting &&
                    a.do_rescale == b->do_rescale && a.do_normalize == b->do_normalize &&
                    a.longest_edge == b->longest_edge && a.tile_size == b->tile_size &&
                    a.resample == b->resample && a.rescale_factor == b->rescale_factor &&
                    std::equal(a.image_mean, a.image_mean + 3, b->image_mean) &&
                    std::equal(a.image_std, a.image_std + 3, b->image_std);
  if (!same) {
    return Unimplemented(model_dir +
                         ": preprocessor_config.json has settings an mmproj cannot carry (it "
                         "holds the longest edge, mean and std; SmolVLM2's defaults for the rest)");
  }
  IRIS_ASSIGN_OR_RETURN(media::VideoSamplingConfig video, ReadVideoSampling(model_dir));
  if (video.fps != media::VideoSamplingConfig{}.fps ||
      video.max_frames != media::VideoSamplingConfig{}.max_frames) {
    return Unimplemented(model_dir +
                         ": video_sampling differs from 1 frame a second, at most 64, which is "
                         "what a GGUF model samples (an mmproj has no key for it)");
  }
  return OkStatus();
}

}  // namespace

Result<GgufExport> ExportGguf(const std::string& model_dir, const std::string& out_dir,
                              const GgufExportOptions& options) {
  GgmlType matrices;
  if (options.weights == "q8_0") {
    matrices = GgmlType::kQ8_0;
  } else if (options.weights == "q4_0") {
    matrices = GgmlType::kQ4_0;
  } else {
    return InvalidArgument("weights '" + options.weights + "' are not supported: q8_0 or q4_0");
  }
  const std::string name = options.name.empty() ? CheckpointName(model_dir) : options.name;
  IRIS_RETURN_IF_ERROR(CheckFileName(name));
  std::error_code ec;
  const fs::path out(out_dir);
  if (fs::exists(out, ec) && (!fs::is_directory(out, ec) || !fs::is_empty(out, ec))) {
    return FailedPrecondition(out_dir + " exists and is not an empty directory");
  }
  if (!fs::is_regular_file(fs::path(model_dir) / "config.json", ec)) {
    return FailedPrecondition(model_dir +
                              " is not a safetensors checkpoint (no config.json); quantize "
                              "writes GGUF from the Hugging Face files");
  }
  IRIS_ASSIGN_OR_RETURN(model::ModelConfig config, model::LoadModelConfig(model_dir));
  const model::TextConfig& tc = config.text;
  const model::VisionConfig& vc = config.vision;
  if (tc.vocab_size > model::kMaxGgufVocab) {
    return InvalidArgument(model_dir + ": a vocabulary of " + std::to_string(tc.vocab_size) +
                           " ids is more than a GGUF model may have (" +
                           std::to_string(model::kMaxGgufVocab) + ")");
  }
  IRIS_ASSIGN_OR_RETURN(formats::WeightStore store, formats::WeightStore::OpenDir(model_dir));
  IRIS_ASSIGN_OR_RETURN(std::string text_prefix, model::TextPrefix(store));
  const bool has_vision = store.Has("model.vision_model.embeddings.patch_embedding.weight") ||
                          store.Has("vision_model.embeddings.patch_embedding.weight");
  if (has_vision && (vc.hidden_act != "gelu_pytorch_tanh" || vc.num_channels != 3)) {
    return Unimplemented(model_dir + ": a vision tower of activation '" + vc.hidden_act + "' and " +
                         std::to_string(vc.num_channels) +
                         " channels (an mmproj is gelu_pytorch_tanh over RGB)");
  }

  // Every tensor gets its place in one of the two files, or the checkpoint is refused.
  std::vector<Planned> text, vision;
  std::map<std::string, std::string> placed;  // GGUF name → the checkpoint's
  for (const auto& [tensor_name, entry] : store.entries()) {
    Planned t;
    t.entry = entry;
    const std::string canonical = CanonicalName(tensor_name, text_prefix);
    // Tied embeddings are one table: the loader reads no lm_head, and neither does a file
    // without output.weight.
    if (canonical == "lm_head.weight" && config.tie_word_embeddings) continue;
    const model::GgufName place =
        model::GgufTensorName(canonical, tc.num_hidden_layers, vc.num_hidden_layers);
    if (place.name.empty()) {
      return Unimplemented(entry.file + ": tensor '" + tensor_name +
                           "' has no place in the GGUF layout of SmolVLM2 (another model, or a "
                           "layer beyond the config's count?)");
    }
    if (auto [it, fresh] = placed.emplace(place.name, tensor_name); !fresh) {
      return InvalidArgument(model_dir + ": tensors '" + it->second + "' and '" + tensor_name +
                             "' are the same weight (" + place.name + ")");
    }
    t.gguf_name = place.name;
    if (place.name.ends_with(".attn_q.weight") && !place.mmproj) t.heads = tc.num_attention_heads;
    if (place.name.ends_with(".attn_k.weight") && !place.mmproj) t.heads = tc.num_key_value_heads;
    if (t.heads > 0 && (entry.view.shape.size() != 2 ||
                        entry.view.shape[0] % static_cast<int64_t>(2 * t.heads) != 0)) {
      return FailedPrecondition(entry.file + ": tensor '" + tensor_name + "' of shape " +
                                tensor::ShapeString(entry.view.shape) + " is not " +
                                std::to_string(t.heads) + " heads of even size");
    }
    if (entry.view.shape.empty() || entry.view.shape.size() > 4) {
      return Unimplemented(entry.file + ": tensor '" + tensor_name + "' has " +
                           std::to_string(entry.view.shape.size()) +
                           " dimensions (GGUF holds 1 to 4)");
    }
    const int layer = LayerOf(place.name);
    t.order = layer < 0 ? (place.name.starts_with("output") || place.name.starts_with("v.post") ||
                                   place.name.starts_with("mm.")
                               ? 1 << 30
                               : -1)
                        : layer;
    IRIS_ASSIGN_OR_RETURN(
        t.type, TypeFor(t, place.mmproj ? std::nullopt : std::optional<GgmlType>(matrices)));
    (place.mmproj ? vision : text).push_back(std::move(t));
  }
  if (!config.tie_word_embeddings && !placed.count("output.weight")) {
    return FailedPrecondition(model_dir +
                              ": no lm_head.weight, and config.json does not tie it to the "
                              "embeddings");
  }
  for (auto* list : {&text, &vision}) {
    std::stable_sort(list->begin(), list->end(),
                     [](const Planned& a, const Planned& b) { return a.order < b.order; });
  }

  // The text model's metadata: hyperparameters, tokenizer, chat template, special ids.
  const std::string tokenizer_path = (fs::path(model_dir) / "tokenizer.json").string();
  IRIS_ASSIGN_OR_RETURN(json::value tokenizer_json, ReadJsonFile(tokenizer_path));
  IRIS_ASSIGN_OR_RETURN(Metadata tokenizer_meta,
                        GgufTokenizerMetadata(tokenizer_json, tc.vocab_size, tokenizer_path));
  IRIS_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, tokenizer::Tokenizer::FromFile(tokenizer_path));
  // End ids outside the vocabulary can never be generated: they are left out.
  std::vector<int32_t> eos;
  for (int32_t id : FindEosIds(model_dir, tok)) {
    if (id >= 0 && id < tc.vocab_size) eos.push_back(id);
  }
  const std::string type_name(tensor::GgmlInfo(matrices).name);
  Metadata meta = {
      {"general.architecture", GgufString("llama")},
      {"general.name", GgufString(name)},
      {"general.file_type", GgufU32(FileType(matrices))},
      {"general.quantization_version", GgufU32(2)},
      {"llama.block_count", GgufU32(static_cast<uint32_t>(tc.num_hidden_layers))},
      {"llama.context_length", GgufU32(static_cast<uint32_t>(tc.max_position_embeddings))},
      {"llama.embedding_length", GgufU32(static_cast<uint32_t>(tc.hidden_size))},
      {"llama.feed_forward_length", GgufU32(static_cast<uint32_t>(tc.intermediate_size))},
      {"llama.attention.head_count", GgufU32(static_cast<uint32_t>(tc.num_attention_heads))},
      {"llama.attention.head_count_kv", GgufU32(static_cast<uint32_t>(tc.num_key_value_heads))},
      {"llama.rope.freq_base", formats::GgufF32(static_cast<float>(tc.rope_theta))},
      {"llama.attention.layer_norm_rms_epsilon", formats::GgufF32(tc.rms_norm_eps)},
      {"llama.attention.key_length", GgufU32(static_cast<uint32_t>(tc.head_dim))},
      {"llama.attention.value_length", GgufU32(static_cast<uint32_t>(tc.head_dim))},
      {"llama.rope.dimension_count", GgufU32(static_cast<uint32_t>(tc.head_dim))},
      {"llama.vocab_size", GgufU32(static_cast<uint32_t>(tc.vocab_size))},
  };
  for (auto& kv : tokenizer_meta) meta.push_back(std::move(kv));
  auto gen = ReadJsonFile((fs::path(model_dir) / "generation_config.json").string());
  const json::value* gen_json = gen.ok() ? &*gen : nullptr;
  if (auto bos = GenerationId(gen_json, "bos_token_id", tc.vocab_size)) {
    meta.emplace_back("tokenizer.ggml.bos_token_id", GgufU32(*bos));
  }
  if (!eos.empty()) {
    meta.emplace_back("tokenizer.ggml.eos_token_id", GgufU32(static_cast<uint32_t>(eos[0])));
  }
  if (eos.size() > 1) {
    meta.emplace_back("tokenizer.ggml.eot_token_id", GgufU32(static_cast<uint32_t>(eos[1])));
  }
  if (auto pad = GenerationId(gen_json, "pad_token_id", tc.vocab_size)) {
    meta.emplace_back("tokenizer.ggml.padding_token_id", GgufU32(*pad));
  }
  meta.emplace_back("tokenizer.ggml.add_bos_token", formats::GgufBool(false));
  auto chat = tokenizer::ChatTemplate::SourceFromModelDir(model_dir);
  if (chat.ok()) {
    meta.emplace_back("tokenizer.chat_template", GgufString(chat->source));
  } else if (chat.status().code() != ErrorCode::kNotFound) {
    return chat.status();
  }

  // The mmproj's metadata: the tower's shape and the image processor's settings.
  Metadata vision_meta;
  GgmlType vision_type = GgmlType::kF32;
  std::optional<media::ImageProcessorConfig> images;
  if (!vision.empty()) {
    const std::optional<int32_t> image = tok.TokenId("<image>");
    if (!image || *image != config.image_token_id) {
      return FailedPrecondition(
          model_dir + ": the image token id " + std::to_string(config.image_token_id) +
          " is not the tokenizer's <image>, which is how a GGUF model finds it");
    }
    for (const Planned& t : vision) {
      if (t.gguf_name.starts_with("v.blk.") && t.entry.view.shape.size() == 2) {
        vision_type = t.type;
        break;
      }
    }
    vision_meta = {
        {"general.architecture", GgufString("clip")},
        {"general.name", GgufString(name)},
        {"general.file_type", GgufU32(FileType(vision_type))},
        {"clip.has_vision_encoder", formats::GgufBool(true)},
        {"clip.projector_type", GgufString("idefics3")},
        {"clip.use_gelu", formats::GgufBool(true)},
        {"clip.vision.projection_dim", GgufU32(static_cast<uint32_t>(tc.hidden_size))},
        {"clip.vision.image_size", GgufU32(static_cast<uint32_t>(vc.image_size))},
        {"clip.vision.patch_size", GgufU32(static_cast<uint32_t>(vc.patch_size))},
        {"clip.vision.embedding_length", GgufU32(static_cast<uint32_t>(vc.hidden_size))},
        {"clip.vision.feed_forward_length", GgufU32(static_cast<uint32_t>(vc.intermediate_size))},
        {"clip.vision.block_count", GgufU32(static_cast<uint32_t>(vc.num_hidden_layers))},
        {"clip.vision.attention.head_count",
         GgufU32(static_cast<uint32_t>(vc.num_attention_heads))},
        {"clip.vision.attention.layer_norm_epsilon", formats::GgufF32(vc.layer_norm_eps)},
        {"clip.vision.projector.scale_factor", GgufU32(static_cast<uint32_t>(config.scale_factor))},
    };
    auto ic = media::LoadImageProcessorConfig(model_dir);
    if (ic.ok()) {
      images = *ic;
      vision_meta.emplace_back("clip.vision.image_mean",
                               Floats({ic->image_mean[0], ic->image_mean[1], ic->image_mean[2]}));
      vision_meta.emplace_back("clip.vision.image_std",
                               Floats({ic->image_std[0], ic->image_std[1], ic->image_std[2]}));
      vision_meta.emplace_back("clip.vision.preproc_image_size",
                               GgufU32(static_cast<uint32_t>(ic->longest_edge)));
    } else if (ic.status().code() != ErrorCode::kNotFound) {
      return ic.status();
    }
  }

  // Write, each file through its .partial name, and load the result; on any failure the
  // directory is left as it was found.
  const bool existed = fs::exists(out, ec);
  fs::create_directories(out, ec);
  if (ec) return Internal("cannot create " + out_dir + ": " + ec.message());
  GgufExport result;
  result.text_path = (out / (name + "-" + type_name + ".gguf")).string();
  if (!vision.empty()) {
    result.mmproj_path =
        (out / ("mmproj-" + name + "-" + std::string(tensor::GgmlInfo(vision_type).name) + ".gguf"))
            .string();
  }
  for (const auto* list : {&text, &vision}) {
    for (const Planned& t : *list) result.checkpoint_bytes += t.entry.view.num_bytes();
  }
  uint64_t done = 0;
  const auto advance = [&](uint64_t bytes) {
    done += bytes;
    if (options.progress) options.progress(done, result.checkpoint_bytes);
  };
  Status status = OkStatus();
  auto written = WriteFile(result.text_path, meta, text, options.pool, advance);
  if (!written.ok()) status = written.status();
  if (status.ok() && !vision.empty()) {
    auto mm = WriteFile(result.mmproj_path, vision_meta, vision, options.pool, advance);
    if (mm.ok()) result.mmproj_bytes = *mm;
    if (!mm.ok()) status = mm.status();
  }
  if (status.ok()) {
    result.text_bytes = *written;
    status = CheckWritten(result, model_dir, tok, eos, images, options.pool);
  }
  if (!status.ok()) {
    std::error_code ignored;
    fs::remove(result.text_path, ignored);
    if (!result.mmproj_path.empty()) fs::remove(result.mmproj_path, ignored);
    if (!existed) fs::remove(out, ignored);
    return status;
  }
  return result;
}

}  // namespace iris::runtime
