#include "engine/model/gguf_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/tensor/quant.h"

namespace iris::model {
namespace fs = std::filesystem;
using formats::GgufContents;
using formats::GgufTensor;
using formats::TensorEntry;
using tensor::GgmlType;

namespace {

// An integer hyperparameter in [lo, hi]; `fallback` when absent (lo - 1: required).
Result<int> IntKey(const GgufContents& c, const std::string& key, int64_t lo, int64_t hi,
                   int64_t fallback) {
  if (!c.Has(key)) {
    if (fallback >= lo) return static_cast<int>(fallback);
    return NotFound(c.path + ": no metadata key '" + key + "' (not a SmolVLM2 GGUF?)");
  }
  IRIS_ASSIGN_OR_RETURN(uint64_t v, c.Uint(key));
  if (v < static_cast<uint64_t>(lo) || v > static_cast<uint64_t>(hi)) {
    return InvalidArgument(c.path + ": metadata '" + key + "' is " + std::to_string(v) +
                           ", outside " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<int>(v);
}

Result<double> FloatKey(const GgufContents& c, const std::string& key, double fallback) {
  if (!c.Has(key)) return fallback;
  IRIS_ASSIGN_OR_RETURN(double v, c.Float(key));
  if (!(v > 0) || !(v < 1e12)) {
    return InvalidArgument(c.path + ": metadata '" + key + "' is " + std::to_string(v) +
                           ", expected a positive number");
  }
  return v;
}

Status Expect(const GgufContents& c, const std::string& key, const std::string& want) {
  IRIS_ASSIGN_OR_RETURN(std::string got, c.String(key));
  if (got != want) {
    return FailedPrecondition(c.path + ": " + key + " is '" + got + "', expected '" + want +
                              "' (iris reads SmolVLM2 GGUF files)");
  }
  return OkStatus();
}

class Converter {
 public:
  explicit Converter(GgufCheckpoint& out) : out_(out) {}

  // `t` under `name`; heads > 0 undoes the Q/K permutation over that many heads.
  Status Add(const formats::GgufFile& file, const GgufTensor& t, const std::string& name,
             size_t heads) {
    TensorEntry e;
    e.name = name;
    e.file = file.path() + " (" + t.name + ")";  // errors name the tensor as the file does
    e.mapped = false;                            // set below when used in place
    e.view.shape = t.shape;
    types_.insert(std::string(tensor::GgmlInfo(t.type).name));
    const size_t rows = static_cast<size_t>(t.rows());
    const size_t row_bytes = t.row_bytes();
    const auto src_row = [&](size_t o) {
      const size_t r = heads > 0 ? UnpermutedRow(o, rows, heads) : o;
      return t.data + r * row_bytes;
    };
    if (heads > 0 && (rows % (2 * heads) != 0)) {
      return FailedPrecondition(file.path() + ": tensor '" + t.name + "' has " +
                                std::to_string(rows) + " rows, not a whole number of " +
                                std::to_string(heads) + " heads of even size");
    }
    if (const std::optional<tensor::DType> stored = tensor::StoredDType(t.type)) {
      // The kernels take these as they are (the block types with int8 products, kernels.h;
      // the binder gives those no kernel takes as they are their f32 values).
      e.view.dtype = *stored;
      // Without the panel kernels the binder gives K matrices their f32 values: say so.
      if (tensor::IsKFileType(e.view.dtype) &&
          !kernels::MultipliesPanels(tensor::KPanelType(e.view.dtype))) {
        out_.dequantized = true;
      }
      if (heads == 0) {
        e.view.data = t.data;
        e.mapped = true;
      } else {
        auto copy = std::make_shared<std::vector<uint32_t>>((t.bytes + 3) / 4);
        auto* dst = reinterpret_cast<uint8_t*>(copy->data());
        for (size_t o = 0; o < rows; ++o) std::memcpy(dst + o * row_bytes, src_row(o), row_bytes);
        e.view.data = copy->data();
        owners_.push_back(std::move(copy));
      }
    } else if (t.type == GgmlType::kQ5_0) {
      // d · (q − 16) is a Q8_0 block of the same values (the same scale, the integers in
      // int8): rewritten as Q8_0 it gets the int8 kernels, exactly.
      const size_t blocks = static_cast<size_t>(t.row_elems()) / 32;
      const size_t q8_row = blocks * 34;
      auto copy = std::make_shared<std::vector<uint8_t>>(rows * q8_row);
      for (size_t o = 0; o < rows; ++o) {
        tensor::WidenRowToQ8_0(GgmlType::kQ5_0, src_row(o), blocks * 32, copy->data() + o * q8_row);
      }
      e.view.dtype = tensor::DType::kQ8_0;
      e.view.data = copy->data();
      owners_.push_back(std::move(copy));
    } else {
      // Quantized: f32 values, exactly as gguf-py dequantizes them.
      const size_t n = static_cast<size_t>(t.row_elems());
      auto copy = std::make_shared<std::vector<float>>(rows * n);
      for (size_t o = 0; o < rows; ++o) {
        tensor::DequantizeRow(t.type, src_row(o), n, copy->data() + o * n);
      }
      e.view.dtype = tensor::DType::kF32;
      e.view.data = copy->data();
      owners_.push_back(std::move(copy));
      out_.dequantized = true;
    }
    if (!entries_.emplace(name, std::move(e)).second) {
      return DataLoss(file.path() + ": tensor '" + t.name + "' is a second " + name);
    }
    return OkStatus();
  }

  void Finish(std::string description) {
    std::string types;
    for (const std::string& t : types_) types += (types.empty() ? "" : "+") + t;
    out_.weight_types = types;
    out_.weights = formats::WeightStore::FromEntries(std::move(entries_), std::move(owners_),
                                                     std::move(description));
  }
  void Keep(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

 private:
  GgufCheckpoint& out_;
  std::map<std::string, TensorEntry> entries_;
  std::vector<std::shared_ptr<const void>> owners_;
  std::set<std::string> types_;
};

// The layout's names, GGUF → Hugging Face (the names OpenGgufCheckpoint gives; GgufTensorName
// reads them the other way). Per layer: blk.N.<key> ↔ model.text_model.layers.N.<value>, and
// v.blk.N.<key>.{weight,bias} ↔ model.vision_model.encoder.layers.N.<value>.{weight,bias}.
using NamePair = std::pair<std::string_view, std::string_view>;  // GGUF, Hugging Face
constexpr NamePair kTextLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
constexpr NamePair kTextTop[] = {
    {"token_embd.weight", "model.text_model.embed_tokens.weight"},
    {"output_norm.weight", "model.text_model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
constexpr NamePair kVisionLayer[] = {
    {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"},
    {"ffn_up", "mlp.fc1"},          {"ffn_down", "mlp.fc2"},
    {"ln1", "layer_norm1"},         {"ln2", "layer_norm2"},
};
constexpr NamePair kVisionTop[] = {
    {"v.patch_embd.weight", "model.vision_model.embeddings.patch_embedding.weight"},
    {"v.patch_embd.bias", "model.vision_model.embeddings.patch_embedding.bias"},
    {"v.position_embd.weight", "model.vision_model.embeddings.position_embedding.weight"},
    {"v.post_ln.weight", "model.vision_model.post_layernorm.weight"},
    {"v.post_ln.bias", "model.vision_model.post_layernorm.bias"},
    {"mm.model.fc.weight", "model.connector.modality_projection.proj.weight"},
};

// The Hugging Face name `table` gives the GGUF name `gguf`, or nullopt.
template <size_t N>
std::optional<std::string> HfName(const NamePair (&table)[N], std::string_view gguf) {
  for (const NamePair& p : table) {
    if (p.first == gguf) return std::string(p.second);
  }
  return std::nullopt;
}

// "blk.12.attn_q.weight" → 12 and "attn_q.weight"; false for other names or layers >= count.
bool SplitLayer(const std::string& name, const std::string& prefix, int count, int* layer,
                std::string* rest) {
  if (!name.starts_with(prefix)) return false;
  size_t i = prefix.size(), start = i;
  int v = 0;
  while (i < name.size() && i - start < 5 && name[i] >= '0' && name[i] <= '9') {
    v = v * 10 + (name[i++] - '0');
  }
  // One spelling per layer ("blk.1", never "blk.01"), so no two tensors map to one name.
  if (i == start || (name[start] == '0' && i - start > 1)) return false;
  if (i >= name.size() || name[i] != '.' || v >= count) return false;
  *layer = v;
  *rest = name.substr(i + 1);
  return true;
}

Status ReadText(const formats::GgufFile& file, GgufCheckpoint& out, Converter& conv) {
  const GgufContents& c = file.contents();
  IRIS_RETURN_IF_ERROR(Expect(c, "general.architecture", "llama"));
  if (c.Has("llama.rope.scaling.type")) {
    IRIS_ASSIGN_OR_RETURN(std::string scaling, c.String("llama.rope.scaling.type"));
    if (scaling != "none") {
      return Unimplemented(c.path + ": rope scaling '" + scaling + "' (SmolVLM2 has none)");
    }
  }
  TextConfig& t = out.config.text;
  IRIS_ASSIGN_OR_RETURN(t.num_hidden_layers, IntKey(c, "llama.block_count", 1, 1024, 0));
  IRIS_ASSIGN_OR_RETURN(t.hidden_size, IntKey(c, "llama.embedding_length", 1, 1 << 16, 0));
  IRIS_ASSIGN_OR_RETURN(t.intermediate_size, IntKey(c, "llama.feed_forward_length", 1, 1 << 18, 0));
  IRIS_ASSIGN_OR_RETURN(t.num_attention_heads, IntKey(c, "llama.attention.head_count", 1, 1024, 0));
  IRIS_ASSIGN_OR_RETURN(t.num_key_value_heads,
                        IntKey(c, "llama.attention.head_count_kv", 1, 1024, t.num_attention_heads));
  IRIS_ASSIGN_OR_RETURN(t.head_dim, IntKey(c, "llama.attention.key_length", 1, 4096,
                                           t.hidden_size / t.num_attention_heads));
  IRIS_ASSIGN_OR_RETURN(int value_dim,
                        IntKey(c, "llama.attention.value_length", 1, 4096, t.head_dim));
  if (value_dim != t.head_dim) {
    return Unimplemented(c.path + ": key_length " + std::to_string(t.head_dim) +
                         " differs from value_length " + std::to_string(value_dim));
  }
  IRIS_ASSIGN_OR_RETURN(t.max_position_embeddings,
                        IntKey(c, "llama.context_length", 1, 1 << 20, 8192));
  IRIS_ASSIGN_OR_RETURN(double eps, FloatKey(c, "llama.attention.layer_norm_rms_epsilon", 1e-5));
  t.rms_norm_eps = static_cast<float>(eps);
  IRIS_ASSIGN_OR_RETURN(t.rope_theta, FloatKey(c, "llama.rope.freq_base", 10000.0));
  IRIS_ASSIGN_OR_RETURN(const std::vector<std::string>* tokens, c.Strings("tokenizer.ggml.tokens"));
  IRIS_ASSIGN_OR_RETURN(t.vocab_size, IntKey(c, "llama.vocab_size", 1, kMaxGgufVocab,
                                             static_cast<int64_t>(tokens->size())));
  if (c.Has("llama.rope.dimension_count")) {
    IRIS_ASSIGN_OR_RETURN(int rope_dims, IntKey(c, "llama.rope.dimension_count", 1, 4096, 0));
    if (rope_dims != t.head_dim) {
      return Unimplemented(c.path + ": partial rotary embedding (" + std::to_string(rope_dims) +
                           " of " + std::to_string(t.head_dim) + " dimensions)");
    }
  }
  t.hidden_act = "silu";
  out.config.tie_word_embeddings = c.tensors.count("output.weight") == 0;
  const auto image = std::find(tokens->begin(), tokens->end(), "<image>");
  out.config.image_token_id =
      image == tokens->end() ? 0 : static_cast<int>(image - tokens->begin());

  for (const auto& [name, tensor] : c.tensors) {
    int layer;
    std::string rest;
    if (const std::optional<std::string> top = HfName(kTextTop, name)) {
      IRIS_RETURN_IF_ERROR(conv.Add(file, tensor, *top, 0));
    } else if (SplitLayer(name, "blk.", t.num_hidden_layers, &layer, &rest) &&
               HfName(kTextLayer, rest)) {
      const size_t heads = rest == "attn_q.weight"   ? t.num_attention_heads
                           : rest == "attn_k.weight" ? t.num_key_value_heads
                                                     : 0;
      IRIS_RETURN_IF_ERROR(conv.Add(
          file, tensor,
          "model.text_model.layers." + std::to_string(layer) + "." + *HfName(kTextLayer, rest),
          heads));
    } else {
      return Unimplemented(c.path + ": tensor '" + name +
                           "' is not part of a SmolVLM2 text model (llama layout)");
    }
  }
  return OkStatus();
}

Status ReadVision(const formats::GgufFile& file, GgufCheckpoint& out, Converter& conv) {
  const GgufContents& c = file.contents();
  IRIS_RETURN_IF_ERROR(Expect(c, "general.architecture", "clip"));
  const std::string projector_key =
      c.Has("clip.vision.projector_type") ? "clip.vision.projector_type" : "clip.projector_type";
  IRIS_RETURN_IF_ERROR(Expect(c, projector_key, "idefics3"));
  if (c.Has("clip.has_vision_encoder")) {
    IRIS_ASSIGN_OR_RETURN(bool has_encoder, c.Bool("clip.has_vision_encoder"));
    if (!has_encoder) return FailedPrecondition(c.path + ": the mmproj has no vision encoder");
  }
  VisionConfig& v = out.config.vision;
  IRIS_ASSIGN_OR_RETURN(v.hidden_size, IntKey(c, "clip.vision.embedding_length", 1, 1 << 16, 0));
  IRIS_ASSIGN_OR_RETURN(v.intermediate_size,
                        IntKey(c, "clip.vision.feed_forward_length", 1, 1 << 18, 0));
  IRIS_ASSIGN_OR_RETURN(v.num_hidden_layers, IntKey(c, "clip.vision.block_count", 1, 1024, 0));
  IRIS_ASSIGN_OR_RETURN(v.num_attention_heads,
                        IntKey(c, "clip.vision.attention.head_count", 1, 1024, 0));
  IRIS_ASSIGN_OR_RETURN(v.image_size, IntKey(c, "clip.vision.image_size", 1, 8192, 0));
  IRIS_ASSIGN_OR_RETURN(v.patch_size, IntKey(c, "clip.vision.patch_size", 1, 1024, 0));
  IRIS_ASSIGN_OR_RETURN(double eps, FloatKey(c, "clip.vision.attention.layer_norm_epsilon", 1e-6));
  v.layer_norm_eps = static_cast<float>(eps);
  IRIS_ASSIGN_OR_RETURN(out.config.scale_factor,
                        IntKey(c, "clip.vision.projector.scale_factor", 1, 64, 2));
  v.num_channels = 3;
  v.hidden_act = "gelu_pytorch_tanh";
  if (c.Has("clip.vision.projection_dim")) {
    IRIS_ASSIGN_OR_RETURN(int dim, IntKey(c, "clip.vision.projection_dim", 1, 1 << 16, 0));
    if (dim != out.config.text.hidden_size) {
      return FailedPrecondition(c.path + ": the mmproj projects to " + std::to_string(dim) +
                                " dimensions but the text model has " +
                                std::to_string(out.config.text.hidden_size) +
                                " (an mmproj of another model?)");
    }
  }
  const std::string pre = "model.vision_model.";
  for (const auto& [name, tensor] : c.tensors) {
    int layer;
    std::string rest;
    if (const std::optional<std::string> top = HfName(kVisionTop, name)) {
      IRIS_RETURN_IF_ERROR(conv.Add(file, tensor, *top, 0));
    } else if (SplitLayer(name, "v.blk.", v.num_hidden_layers, &layer, &rest) &&
               (rest.ends_with(".weight") || rest.ends_with(".bias")) &&
               HfName(kVisionLayer, rest.substr(0, rest.rfind('.')))) {
      const std::string kind = rest.substr(rest.rfind('.'));
      std::string hf = *HfName(kVisionLayer, rest.substr(0, rest.rfind('.')));
      // Some converted files have ffn_up and ffn_down the other way round (llama.cpp's clip
      // loader corrects it by shape too): fc1 maps hidden → intermediate, fc2 back.
      if ((hf == "mlp.fc1" || hf == "mlp.fc2") && v.hidden_size != v.intermediate_size) {
        const int64_t out_dim = tensor.shape.empty() ? 0 : tensor.shape[0];
        if (out_dim == v.intermediate_size) hf = "mlp.fc1";
        if (out_dim == v.hidden_size) hf = "mlp.fc2";
      }
      IRIS_RETURN_IF_ERROR(conv.Add(
          file, tensor, pre + "encoder.layers." + std::to_string(layer) + "." + hf + kind, 0));
    } else {
      return Unimplemented(c.path + ": tensor '" + name +
                           "' is not part of a SmolVLM2 vision tower (idefics3 mmproj)");
    }
  }
  return OkStatus();
}

}  // namespace

GgufName GgufTensorName(const std::string& hf, int text_layers, int vision_layers) {
  for (const NamePair& p : kTextTop) {
    if (p.second == hf) return {std::string(p.first), false};
  }
  for (const NamePair& p : kVisionTop) {
    if (p.second == hf) return {std::string(p.first), true};
  }
  // "<prefix><layer>.<rest>" (SplitLayer's reading) with rest one of `table`'s names
  // (+ ".weight"/".bias" when `kinds`): "<layer>.<GGUF name>".
  const auto layer = [&](const std::string& prefix, std::span<const NamePair> table, bool kinds,
                         int count) -> std::string {
    int n;
    std::string rest, kind;
    if (!SplitLayer(hf, prefix, count, &n, &rest)) return "";
    if (kinds) {
      const size_t k = rest.rfind('.');
      if (k == std::string::npos) return "";
      kind = rest.substr(k);
      if (kind != ".weight" && kind != ".bias") return "";
      rest.resize(k);
    }
    for (const NamePair& p : table) {
      if (p.second == rest) return std::to_string(n) + "." + std::string(p.first) + kind;
    }
    return "";
  };
  if (std::string t = layer("model.text_model.layers.", kTextLayer, false, text_layers);
      !t.empty()) {
    return {"blk." + t, false};
  }
  if (std::string v =
          layer("model.vision_model.encoder.layers.", kVisionLayer, true, vision_layers);
      !v.empty()) {
    return {"v.blk." + v, true};
  }
  return {};
}

size_t UnpermutedRow(size_t o, size_t rows, size_t heads) {
  const size_t hd = rows / heads, half = hd / 2;
  const size_t h = o / hd, r = o % hd;
  return h * hd + 2 * (r % half) + r / half;
}

Result<GgufCheckpoint> OpenGgufCheckpoint(const std::string& text_path,
                                          const std::string& mmproj_path) {
  GgufCheckpoint out;
  Converter conv(out);
  IRIS_ASSIGN_OR_RETURN(formats::GgufFile text, formats::GgufFile::Open(text_path));
  out.text = std::make_shared<const formats::GgufFile>(std::move(text));
  conv.Keep(out.text);
  out.config.model_type = "smolvlm";
  out.config.weights_dtype = "gguf";
  IRIS_RETURN_IF_ERROR(ReadText(*out.text, out, conv));
  std::string description = text_path;
  if (!mmproj_path.empty()) {
    IRIS_ASSIGN_OR_RETURN(formats::GgufFile mmproj, formats::GgufFile::Open(mmproj_path));
    out.mmproj = std::make_shared<const formats::GgufFile>(std::move(mmproj));
    conv.Keep(out.mmproj);
    IRIS_RETURN_IF_ERROR(ReadVision(*out.mmproj, out, conv));
    description += " + " + mmproj_path;
    if (out.config.image_token_id == 0) {
      return FailedPrecondition(text_path + ": the vocabulary has no <image> token, so the " +
                                "mmproj's images cannot be placed in a prompt");
    }
  }
  IRIS_RETURN_IF_ERROR(ValidateModelConfig(out.config, description));
  conv.Finish(description);
  return out;
}

Result<GgufPaths> FindGgufFiles(const std::string& dir) {
  std::vector<std::string> text, mmproj;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (p.extension() != ".gguf" || !fs::is_regular_file(p, ec)) continue;
    (p.filename().string().starts_with("mmproj") ? mmproj : text).push_back(p.string());
  }
  if (ec) return NotFound(dir + ": cannot list (" + ec.message() + ")");
  if (text.empty()) return NotFound(dir + ": no GGUF text model (*.gguf not named mmproj*)");
  std::sort(text.begin(), text.end());
  std::sort(mmproj.begin(), mmproj.end());
  auto several = [&](const std::vector<std::string>& files, const std::string& what) {
    std::string list;
    for (const std::string& f : files)
      list += (list.empty() ? "" : ", ") + fs::path(f).filename().string();
    return InvalidArgument(dir + " holds " + std::to_string(files.size()) + " " + what + " (" +
                           list + "): pass the one to use as --model FILE --mmproj FILE");
  };
  if (text.size() > 1) return several(text, "GGUF text models");
  if (mmproj.size() > 1) return several(mmproj, "mmproj files");
  return GgufPaths{text[0], mmproj.empty() ? "" : mmproj[0]};
}

}  // namespace iris::model
