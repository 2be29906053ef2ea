#include "engine/model/lora.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>

#include "base/json.h"

namespace iris::model {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::string_view kPeftPrefix = "base_model.model.";
constexpr int64_t kMaxRank = 1 << 16;

bool Strip(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "N." at the front of s: the layer number (at most 6 digits).
bool TakeLayer(std::string_view& s, size_t* layer) {
  const size_t dot = s.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 6) return false;
  size_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + dot, v);
  if (ec != std::errc() || p != s.data() + dot) return false;
  *layer = v;
  s.remove_prefix(dot + 1);
  return true;
}

template <size_t N>
bool Lookup(std::string_view s, const std::pair<std::string_view, LoraSite> (&table)[N],
            LoraSite* site) {
  for (const auto& [name, value] : table) {
    if (s == name) {
      *site = value;
      return true;
    }
  }
  return false;
}

constexpr std::pair<std::string_view, LoraSite> kTextLinears[] = {
    {"self_attn.q_proj", LoraSite::kTextQ}, {"self_attn.k_proj", LoraSite::kTextK},
    {"self_attn.v_proj", LoraSite::kTextV}, {"self_attn.o_proj", LoraSite::kTextO},
    {"mlp.gate_proj", LoraSite::kTextGate}, {"mlp.up_proj", LoraSite::kTextUp},
    {"mlp.down_proj", LoraSite::kTextDown},
};
constexpr std::pair<std::string_view, LoraSite> kVisionLinears[] = {
    {"self_attn.q_proj", LoraSite::kVisionQ}, {"self_attn.k_proj", LoraSite::kVisionK},
    {"self_attn.v_proj", LoraSite::kVisionV}, {"self_attn.out_proj", LoraSite::kVisionO},
    {"mlp.fc1", LoraSite::kVisionFc1},        {"mlp.fc2", LoraSite::kVisionFc2},
};

// A module path as PEFT names it (relative to the model, no "base_model.model.").
bool ParseModule(std::string_view m, LoraModule* out) {
  std::string_view s = m;
  if (Strip(s, "model.vision_model.") || Strip(s, "vision_model.")) {
    return Strip(s, "encoder.layers.") && TakeLayer(s, &out->layer) &&
           Lookup(s, kVisionLinears, &out->site);
  }
  if (Strip(s, "model.connector.") || Strip(s, "connector.")) {
    out->layer = 0;
    out->site = LoraSite::kConnector;
    return s == "modality_projection.proj";
  }
  if (s == "lm_head") {
    out->layer = 0;
    out->site = LoraSite::kLmHead;
    return true;
  }
  if (Strip(s, "model.text_model.") || Strip(s, "text_model.") || Strip(s, "model.")) {
    if (s == "embed_tokens") {
      out->layer = 0;
      out->site = LoraSite::kEmbed;
      return true;
    }
    return Strip(s, "layers.") && TakeLayer(s, &out->layer) && Lookup(s, kTextLinears, &out->site);
  }
  return false;
}

bool IsVisionSite(LoraSite s) { return s >= LoraSite::kVisionQ && s <= LoraSite::kConnector; }

// [out, in] of the layer at a site (the embeddings: [dim, vocab], as lora_embedding_B·A).
std::pair<int64_t, int64_t> SiteShape(const ModelConfig& c, LoraSite site) {
  const int64_t d = c.text.hidden_size, f = c.text.intermediate_size, v = c.text.vocab_size;
  const int64_t qd = int64_t{c.text.num_attention_heads} * c.text.head_dim;
  const int64_t kvd = int64_t{c.text.num_key_value_heads} * c.text.head_dim;
  const int64_t vd = c.vision.hidden_size, vi = c.vision.intermediate_size;
  const int64_t s = c.scale_factor;
  switch (site) {
    case LoraSite::kTextQ:
      return {qd, d};
    case LoraSite::kTextK:
    case LoraSite::kTextV:
      return {kvd, d};
    case LoraSite::kTextO:
      return {d, qd};
    case LoraSite::kTextGate:
    case LoraSite::kTextUp:
      return {f, d};
    case LoraSite::kTextDown:
      return {d, f};
    case LoraSite::kVisionQ:
    case LoraSite::kVisionK:
    case LoraSite::kVisionV:
    case LoraSite::kVisionO:
      return {vd, vd};
    case LoraSite::kVisionFc1:
      return {vi, vd};
    case LoraSite::kVisionFc2:
      return {vd, vi};
    case LoraSite::kConnector:
      return {d, vd * s * s};
    case LoraSite::kLmHead:
      return {v, d};
    case LoraSite::kEmbed:
      return {d, v};
    case LoraSite::kCount:
      break;
  }
  return {0, 0};
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The first pattern of rank_pattern / alpha_pattern that matches a module as PEFT matches it
// (the pattern, optionally after "anything.", to the end of the name).
Result<const json::value*> PatternValue(const json::object* patterns, const std::string& module) {
  if (patterns == nullptr) return static_cast<const json::value*>(nullptr);
  for (const auto& [key, value] : *patterns) {
    // Module paths, dots escaped or not: what PEFT writes. Other operators (repetition,
    // groups, alternation) are refused: an adapter may come from anywhere, and a pattern
    // that backtracks without end would hang the server that loads it.
    const bool plain =
        !key.empty() && key.size() <= 256 && std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
                 c == '\\';
        });
    if (!plain) {
      return Unimplemented("pattern '" + std::string(key).substr(0, 80) +
                           "': iris reads module paths there (letters, digits, '.', '_', '-')");
    }
    try {
      const std::regex re("(.*\\.)?(" + std::string(key) + ")");
      if (std::regex_match(module, re)) return &value;
    } catch (const std::regex_error&) {
      return InvalidArgument("pattern '" + std::string(key) + "' is not a regular expression");
    }
  }
  return static_cast<const json::value*>(nullptr);
}

std::optional<double> Number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_double()) return v.as_double();
  return std::nullopt;
}

struct AdapterConfig {
  int64_t r = 8;
  double alpha = 8;
  bool rslora = false;
  const json::object* rank_pattern = nullptr;
  const json::object* alpha_pattern = nullptr;
};

Result<AdapterConfig> ParseAdapterConfig(const json::value& root, const std::string& what) {
  if (!root.is_object()) return InvalidArgument(what + ": not a JSON object");
  const json::object& o = root.as_object();
  AdapterConfig c;
  auto flag = [&](const char* key) -> Result<bool> {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return false;
    if (!v->is_bool()) return InvalidArgument(what + ": \"" + key + "\" must be true or false");
    return v->as_bool();
  };
  if (const json::value* t = o.if_contains("peft_type"); t && !t->is_null()) {
    if (!t->is_string() || t->as_string() != "LORA") {
      return Unimplemented(what + ": peft_type " + json::serialize(*t) +
                           "; iris serves LoRA adapters (peft_type \"LORA\")");
    }
  }
  if (const json::value* v = o.if_contains("r")) {
    if (!v->is_int64() || v->as_int64() < 1 || v->as_int64() > kMaxRank) {
      return InvalidArgument(what + ": \"r\" must be an integer in [1, " +
                             std::to_string(kMaxRank) + "]");
    }
    c.r = v->as_int64();
  }
  if (const json::value* v = o.if_contains("lora_alpha")) {
    auto a = Number(*v);
    if (!a || !std::isfinite(*a))
      return InvalidArgument(what + ": \"lora_alpha\" must be a number");
    c.alpha = *a;
  }
  IRIS_ASSIGN_OR_RETURN(c.rslora, flag("use_rslora"));
  IRIS_ASSIGN_OR_RETURN(bool dora, flag("use_dora"));
  if (dora) return Unimplemented(what + ": DoRA adapters (use_dora) are not supported");
  IRIS_ASSIGN_OR_RETURN(bool fifo, flag("fan_in_fan_out"));
  if (fifo) {
    return Unimplemented(what + ": fan_in_fan_out is for GPT-2 style Conv1D layers, which " +
                         "SmolVLM2 does not have");
  }
  if (const json::value* v = o.if_contains("layer_replication"); v && !v->is_null()) {
    return Unimplemented(what + ": layer_replication is not supported");
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) continue;
    if (!v->is_object()) return InvalidArgument(what + ": \"" + key + "\" must be an object");
    for (const auto& [k, value] : v->as_object()) {
      if (!Number(value)) {
        return InvalidArgument(what + ": " + key + "[\"" + std::string(k) + "\"] is not a number");
      }
    }
    (std::string_view(key) == "rank_pattern" ? c.rank_pattern : c.alpha_pattern) = &v->as_object();
  }
  return c;
}

Result<std::vector<float>> ToFiniteF32(const formats::TensorEntry& e, const std::string& name) {
  using tensor::DType;
  if (e.view.dtype != DType::kF32 && e.view.dtype != DType::kF16 && e.view.dtype != DType::kBF16) {
    return InvalidArgument(e.file + ": tensor '" + name + "' is " +
                           std::string(tensor::DTypeName(e.view.dtype)) +
                           "; adapter weights must be F32, F16 or BF16");
  }
  std::vector<float> v = ops::ToF32(e.view);
  for (float x : v) {
    if (!std::isfinite(x)) {
      return InvalidArgument(e.file + ": tensor '" + name + "' holds a NaN or infinity");
    }
  }
  return v;
}

std::atomic<uint64_t> next_serial{1};

}  // namespace

bool FindLoraModule(const std::string& weight_name, LoraModule* module) {
  std::string_view s = weight_name;
  if (!s.ends_with(".weight")) return false;
  s.remove_suffix(std::string_view(".weight").size());
  return ParseModule(s, module);
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::Load(const std::string& dir,
                                                             const LoraBase& base) {
  const fs::path d(dir);
  std::error_code ec;
  const fs::path config_path = d / "adapter_config.json";
  const fs::path weights_path = d / "adapter_model.safetensors";
  if (!fs::is_regular_file(config_path, ec)) {
    return NotFound(dir +
                    ": no adapter_config.json (a PEFT LoRA adapter is a directory of "
                    "adapter_config.json and adapter_model.safetensors)");
  }
  if (!fs::is_regular_file(weights_path, ec)) {
    if (fs::is_regular_file(d / "adapter_model.bin", ec)) {
      return Unimplemented(dir +
                           ": adapter_model.bin (a pickle) is not read; save the adapter "
                           "as safetensors (save_pretrained's default)");
    }
    return NotFound(dir + ": no adapter_model.safetensors");
  }
  IRIS_ASSIGN_OR_RETURN(json::value root, ReadJsonFile(config_path.string()));
  IRIS_ASSIGN_OR_RETURN(AdapterConfig cfg, ParseAdapterConfig(root, config_path.string()));
  IRIS_ASSIGN_OR_RETURN(formats::SafetensorsFile file,
                        formats::SafetensorsFile::Open(weights_path.string()));
  const std::string what = weights_path.string();
  const ModelConfig& mc = base.config;

  auto adapter = std::make_shared<LoraAdapter>();
  adapter->dir_ = dir;
  adapter->serial_ = next_serial.fetch_add(1);
  for (size_t s = 0; s < kNumLoraSites; ++s) {
    const LoraSite site = static_cast<LoraSite>(s);
    size_t layers = 1;
    if (site <= LoraSite::kTextDown) layers = static_cast<size_t>(mc.text.num_hidden_layers);
    if (site >= LoraSite::kVisionQ && site <= LoraSite::kVisionFc2) {
      layers = static_cast<size_t>(mc.vision.num_hidden_layers);
    }
    adapter->index_[s].assign(layers, -1);
  }

  struct Pair {
    std::string peft_module;  // as the file names it (for rank_pattern / alpha_pattern)
    LoraModule where;
    const formats::TensorEntry* a = nullptr;
    const formats::TensorEntry* b = nullptr;
  };
  std::map<std::pair<LoraSite, size_t>, Pair> pairs;
  for (const auto& [name, entry] : file.tensors()) {
    std::string_view s = name;
    if (!Strip(s, kPeftPrefix)) {
      return InvalidArgument(what + ": tensor '" + name +
                             "' is not named as PEFT names adapter weights "
                             "(base_model.model.…)");
    }
    if (s.find("lora_magnitude_vector") != std::string_view::npos) {
      return Unimplemented(what + ": '" + name + "' is a DoRA magnitude; DoRA is not supported");
    }
    if (s.ends_with(".lora_B.bias")) {
      return Unimplemented(what + ": '" + name + "' is a LoRA bias (lora_bias); not supported");
    }
    bool is_a = false, embedding = false, whole = false;
    std::string_view module = s;
    if (module.ends_with(".lora_A.weight") || module.ends_with(".lora_B.weight")) {
      is_a = module.ends_with(".lora_A.weight");
      module.remove_suffix(std::string_view(".lora_A.weight").size());
    } else if (module.ends_with(".lora_embedding_A") || module.ends_with(".lora_embedding_B")) {
      is_a = module.ends_with(".lora_embedding_A");
      embedding = true;
      module.remove_suffix(std::string_view(".lora_embedding_A").size());
    } else if (module.ends_with(".weight")) {
      whole = true;
      module.remove_suffix(std::string_view(".weight").size());
    } else {
      return Unimplemented(what + ": tensor '" + name + "' is not a LoRA weight iris knows");
    }
    // (A targeted embedding saved whole is named after its base layer.)
    if (whole && module.ends_with(".base_layer")) {
      module.remove_suffix(std::string_view(".base_layer").size());
    }
    LoraModule where;
    if (!ParseModule(module, &where)) {
      return InvalidArgument(what + ": '" + name + "' adapts '" + std::string(module) +
                             "', which is not a layer of a SmolVLM2 model iris can adapt");
    }
    const size_t si = static_cast<size_t>(where.site);
    if (where.layer >= adapter->index_[si].size()) {
      return InvalidArgument(what + ": '" + name + "' adapts layer " + std::to_string(where.layer) +
                             " but the model has " + std::to_string(adapter->index_[si].size()));
    }
    if (IsVisionSite(where.site) && !base.has_vision) {
      return InvalidArgument(what + ": '" + name +
                             "' adapts the vision tower, which this model does not have");
    }
    if (whole) {
      // modules_to_save: a whole table in place of the base's.
      const auto [rows_expected, cols_expected] = SiteShape(mc, where.site);
      std::vector<int64_t> want = {rows_expected, cols_expected};
      if (where.site == LoraSite::kEmbed) want = {cols_expected, rows_expected};
      if (where.site != LoraSite::kLmHead && where.site != LoraSite::kEmbed) {
        return Unimplemented(what + ": '" + name +
                             "' replaces a whole layer (modules_to_save); iris takes whole "
                             "replacements of lm_head and embed_tokens only");
      }
      if (entry.view.shape != want) {
        return InvalidArgument(what + ": '" + name + "' has shape " + ShapeText(entry.view.shape) +
                               ", expected " + ShapeText(want));
      }
      IRIS_ASSIGN_OR_RETURN(std::vector<float> table, ToFiniteF32(entry, name));
      (where.site == LoraSite::kLmHead ? adapter->lm_head_ : adapter->embed_tokens_) =
          std::move(table);
      continue;
    }
    if (embedding != (where.site == LoraSite::kEmbed)) {
      return InvalidArgument(what + ": '" + name + "': " +
                             (embedding ? "lora_embedding_A/B on a linear layer"
                                        : "lora_A/B on the embeddings (PEFT writes "
                                          "lora_embedding_A/B there)"));
    }
    Pair& p = pairs[{where.site, where.layer}];
    const formats::TensorEntry*& slot = is_a ? p.a : p.b;
    if (slot != nullptr) {
      return InvalidArgument(what + ": two weights for '" + std::string(module) + "' " +
                             (is_a ? "A" : "B") + " (" + name + ")");
    }
    slot = &entry;
    p.where = where;
    p.peft_module = std::string(module);
  }

  for (auto& [key, p] : pairs) {
    const std::string& m = p.peft_module;
    if (p.a == nullptr || p.b == nullptr) {
      return InvalidArgument(what + ": '" + m + "' has lora_" + (p.a ? "A" : "B") +
                             " but no lora_" + (p.a ? "B" : "A"));
    }
    const auto [out, in] = SiteShape(mc, p.where.site);
    const std::vector<int64_t>& as = p.a->view.shape;
    const std::vector<int64_t>& bs = p.b->view.shape;
    const int64_t rank = as.size() == 2 ? as[0] : 0;
    if (as.size() != 2 || as[1] != in || rank < 1 || rank > kMaxRank || bs.size() != 2 ||
        bs[0] != out || bs[1] != rank) {
      return InvalidArgument(what + ": '" + m + "' has A " + ShapeText(as) + " and B " +
                             ShapeText(bs) + "; this model needs A [r, " + std::to_string(in) +
                             "] and B [" + std::to_string(out) + ", r]");
    }
    IRIS_ASSIGN_OR_RETURN(const json::value* rank_v, PatternValue(cfg.rank_pattern, m));
    IRIS_ASSIGN_OR_RETURN(const json::value* alpha_v, PatternValue(cfg.alpha_pattern, m));
    const double r_cfg = rank_v ? *Number(*rank_v) : static_cast<double>(cfg.r);
    const double alpha = alpha_v ? *Number(*alpha_v) : cfg.alpha;
    if (r_cfg != static_cast<double>(rank)) {
      return InvalidArgument(
          what + ": '" + m + "' has rank " + std::to_string(rank) +
          " but adapter_config.json says r = " + json::serialize(json::value(r_cfg)));
    }
    LoraLinear l;
    l.module = m;
    l.rank = rank;
    l.in = in;
    l.out = out;
    const double scale = cfg.rslora ? alpha / std::sqrt(r_cfg) : alpha / r_cfg;
    l.scale = static_cast<float>(scale);
    IRIS_ASSIGN_OR_RETURN(l.a, ToFiniteF32(*p.a, m + ".lora_A"));
    IRIS_ASSIGN_OR_RETURN(l.b, ToFiniteF32(*p.b, m + ".lora_B"));
    for (float& x : l.b) x = static_cast<float>(static_cast<double>(x) * scale);
    adapter->index_[static_cast<size_t>(p.where.site)][p.where.layer] =
        static_cast<int32_t>(adapter->linears_.size());
    adapter->touches_vision_ |= IsVisionSite(p.where.site);
    adapter->linears_.push_back(std::move(l));
  }
  if (adapter->linears_.empty() && adapter->lm_head_.empty() && adapter->embed_tokens_.empty()) {
    return InvalidArgument(what + ": holds no LoRA weights");
  }
  return std::shared_ptr<const LoraAdapter>(std::move(adapter));
}

std::string LoraAdapter::Describe() const {
  int64_t lo = 0, hi = 0;
  bool text = false, vision = false;
  for (const LoraLinear& l : linears_) {
    lo = lo == 0 ? l.rank : std::min(lo, l.rank);
    hi = std::max(hi, l.rank);
  }
  for (size_t s = 0; s < kNumLoraSites; ++s) {
    for (int32_t i : index_[s]) {
      if (i < 0) continue;
      (IsVisionSite(static_cast<LoraSite>(s)) ? vision : text) = true;
    }
  }
  std::string out = "rank " + std::to_string(lo) + (hi != lo ? "-" + std::to_string(hi) : "") +
                    ", " + std::to_string(linears_.size()) + " layers (";
  out += text ? (vision ? "text, vision" : "text") : (vision ? "vision" : "none");
  out += ")";
  if (!lm_head_.empty()) out += ", lm_head";
  if (!embed_tokens_.empty()) out += ", embed_tokens";
  return out;
}

void ApplyLora(ops::ComputeContext& ctx, const LoraLinear& l, const float* x, size_t rows,
               float* out) {
  const size_t r = static_cast<size_t>(l.rank), n = static_cast<size_t>(l.out);
  std::vector<float> xa(rows * r), delta(rows * n);
  ops::MatMul(ctx, x, rows, l.A(), xa.data());
  ops::MatMul(ctx, xa.data(), rows, l.B(), delta.data());
  ops::Add(out, delta.data(), rows * n);
}

void ApplyLoraEmbed(const LoraAdapter& adapter, std::span<const int32_t> ids, size_t dim,
                    float* out) {
  if (!adapter.embed_tokens().empty()) {
    for (size_t t = 0; t < ids.size(); ++t) {
      std::memcpy(out + t * dim, adapter.embed_tokens().data() + static_cast<size_t>(ids[t]) * dim,
                  dim * sizeof(float));
    }
  }
  const LoraLinear* l = adapter.Find(LoraSite::kEmbed, 0);
  if (l == nullptr) return;
  const size_t r = static_cast<size_t>(l->rank), vocab = static_cast<size_t>(l->in);
  std::vector<float> after_a(r);
  for (size_t t = 0; t < ids.size(); ++t) {
    for (size_t j = 0; j < r; ++j) after_a[j] = l->a[j * vocab + static_cast<size_t>(ids[t])];
    for (size_t d = 0; d < dim; ++d) {
      float acc = 0;
      for (size_t j = 0; j < r; ++j) acc += after_a[j] * l->b[d * r + j];
      out[t * dim + d] += acc;
    }
  }
}

Status MergeLora(const std::string& base_dir, const LoraAdapter& adapter,
                 const std::string& out_dir,
                 const std::function<void(size_t, size_t)>& on_progress) {
  std::error_code ec;
  const fs::path out(out_dir);
  if (fs::exists(out, ec) && !fs::is_empty(out, ec)) {
    return FailedPrecondition(out_dir + " exists and is not empty");
  }
  if (fs::exists(out, ec) && fs::equivalent(out, fs::path(base_dir), ec)) {
    return InvalidArgument("the output directory is the base checkpoint");
  }
  IRIS_ASSIGN_OR_RETURN(formats::WeightStore store, formats::WeightStore::OpenDir(base_dir));
  IRIS_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(base_dir));
  // Tied embeddings are one table read twice; merged, a change to either would change both,
  // which the adapter applied on the fly does not.
  const bool changes_embed = !adapter.embed_tokens().empty() || adapter.Find(LoraSite::kEmbed, 0);
  const bool changes_head = !adapter.lm_head().empty() || adapter.Find(LoraSite::kLmHead, 0);
  if ((config.tie_word_embeddings || !store.Has("lm_head.weight")) &&
      (changes_embed || changes_head)) {
    return Unimplemented(base_dir +
                         ": the checkpoint ties lm_head to the embeddings; an adapter that "
                         "changes either cannot be merged into it (serve it with --adapter)");
  }
  std::vector<formats::TensorToWrite> tensors;
  size_t merged = 0, done = 0;
  const size_t total = store.entries().size();
  for (const auto& [name, entry] : store.entries()) {
    LoraModule where;
    const LoraLinear* l = nullptr;
    const std::vector<float>* whole = nullptr;
    if (FindLoraModule(name, &where)) {
      l = adapter.Find(where.site, where.layer);
      if (where.site == LoraSite::kLmHead && !adapter.lm_head().empty()) whole = &adapter.lm_head();
      if (where.site == LoraSite::kEmbed && !adapter.embed_tokens().empty()) {
        whole = &adapter.embed_tokens();
      }
    }
    formats::TensorToWrite t;
    t.name = name;
    t.shape = entry.view.shape;
    if (l == nullptr && whole == nullptr) {
      t.dtype = entry.view.dtype;
      t.bytes.assign(static_cast<const char*>(entry.view.data), entry.view.num_bytes());
    } else {
      std::vector<float> w = whole ? *whole : ops::ToF32(entry.view);
      if (l != nullptr) {
        const size_t r = static_cast<size_t>(l->rank), in = static_cast<size_t>(l->in);
        const size_t rows = static_cast<size_t>(l->out);
        std::vector<double> acc(in);
        for (size_t i = 0; i < rows; ++i) {
          std::fill(acc.begin(), acc.end(), 0.0);
          for (size_t j = 0; j < r; ++j) {
            const double bij = l->b[i * r + j];
            const float* a = l->a.data() + j * in;
            for (size_t k = 0; k < in; ++k) acc[k] += bij * a[k];
          }
          if (where.site == LoraSite::kEmbed) {
            // B·A is [dim, vocab]; the table is [vocab, dim].
            for (size_t k = 0; k < in; ++k) {
              float& x = w[k * rows + i];
              x = static_cast<float>(static_cast<double>(x) + acc[k]);
            }
          } else {
            for (size_t k = 0; k < in; ++k) {
              float& x = w[i * in + k];
              x = static_cast<float>(static_cast<double>(x) + acc[k]);
            }
          }
        }
        ++merged;
      }
      t.dtype = tensor::DType::kF32;
      t.bytes.assign(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float));
    }
    tensors.push_back(std::move(t));
    if (on_progress) on_progress(++done, total);
  }
  if (merged != adapter.linears().size()) {
    return InvalidArgument(base_dir + ": the checkpoint lacks " +
                           std::to_string(adapter.linears().size() - merged) +
                           " of the layers the adapter changes");
  }
  fs::create_directories(out, ec);
  if (ec) return Internal("cannot create " + out_dir + ": " + ec.message());
  for (const fs::directory_entry& e : fs::directory_iterator(base_dir, ec)) {
    const std::string file = e.path().filename().string();
    if (file.ends_with(".safetensors") || file == "model.safetensors.index.json") continue;
    std::error_code e2;
    if (!fs::is_regular_file(e.path(), e2)) continue;  // (follows the hub cache's links)
    fs::copy_file(e.path(), out / file, fs::copy_options::overwrite_existing, e2);
    if (e2) return Internal("cannot copy " + e.path().string() + ": " + e2.message());
  }
  if (ec) return Internal("cannot list " + base_dir + ": " + ec.message());
  return formats::WriteSafetensors((out / "model.safetensors").string(), tensors,
                                   {{"format", "pt"}, {"merged_lora", adapter.dir()}});
}

}  // namespace iris::model
