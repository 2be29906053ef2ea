#include "engine/model/config.h"

#include <filesystem>

#include "base/json.h"
#include "base/mapped_file.h"

namespace iris::model {
namespace json = boost::json;

namespace {

// Reads optional typed keys from one JSON object, remembering the first type error with its
// key path.
class Reader {
 public:
  Reader(const json::object* o, std::string path, Status* error)
      : o_(o), path_(std::move(path)), error_(error) {}

  void Int(const char* key, int* out) {
    const json::value* v = Find(key);
    if (!v) return;
    if (v->is_int64()) {
      *out = static_cast<int>(v->as_int64());
    } else if (v->is_uint64()) {
      *out = static_cast<int>(v->as_uint64());
    } else if (v->is_double() && v->as_double() == static_cast<int>(v->as_double())) {
      *out = static_cast<int>(v->as_double());
    } else {
      Fail(key, "an integer");
    }
  }
  void Double(const char* key, double* out) {
    const json::value* v = Find(key);
    if (!v) return;
    if (v->is_number()) {
      *out = v->to_number<double>();
    } else {
      Fail(key, "a number");
    }
  }
  void Float(const char* key, float* out) {
    double d = *out;
    Double(key, &d);
    *out = static_cast<float>(d);
  }
  void String(const char* key, std::string* out) {
    const json::value* v = Find(key);
    if (!v) return;
    if (v->is_string()) {
      *out = std::string(v->as_string());
    } else {
      Fail(key, "a string");
    }
  }
  void Bool(const char* key, bool* out) {
    const json::value* v = Find(key);
    if (!v) return;
    if (v->is_bool()) {
      *out = v->as_bool();
    } else {
      Fail(key, "true or false");
    }
  }
  bool Has(const char* key) const { return Find(key) != nullptr; }

 private:
  const json::value* Find(const char* key) const {
    if (!o_) return nullptr;
    const json::value* v = o_->if_contains(key);
    return (v && !v->is_null()) ? v : nullptr;
  }
  void Fail(const char* key, const char* expected) {
    if (error_->ok()) *error_ = InvalidArgument(path_ + key + " must be " + expected);
  }
  const json::object* o_;
  std::string path_;
  Status* error_;
};

Status Positive(const std::string& what, const std::string& key, int v) {
  if (v <= 0)
    return InvalidArgument(what + ": " + key + " must be positive, got " + std::to_string(v));
  return OkStatus();
}

}  // namespace

Result<ModelConfig> ParseModelConfig(std::string_view json_text, const std::string& what) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(json_text, what));
  if (!root.is_object()) return InvalidArgument(what + ": not a JSON object");
  const json::object& top = root.as_object();
  ModelConfig c;
  Status err;
  Reader r(&top, "", &err);
  r.String("model_type", &c.model_type);
  if (c.model_type != "smolvlm" && c.model_type != "idefics3") {
    return FailedPrecondition(what + ": model_type is '" + c.model_type +
                              "', not a SmolVLM2 checkpoint (expected 'smolvlm')");
  }
  // transformers >= 4.56 writes "dtype"; the published files say "torch_dtype".
  r.String("torch_dtype", &c.weights_dtype);
  r.String("dtype", &c.weights_dtype);
  r.Int("image_token_id", &c.image_token_id);
  r.Int("scale_factor", &c.scale_factor);
  r.Bool("tie_word_embeddings", &c.tie_word_embeddings);
  // Top-level pad_token_id (128002 in the real files) is a leftover and is ignored.

  const json::value* tv = top.if_contains("text_config");
  const json::value* vv = top.if_contains("vision_config");
  if (tv && !tv->is_object()) return InvalidArgument(what + ": text_config must be an object");
  if (vv && !vv->is_object()) return InvalidArgument(what + ": vision_config must be an object");
  const json::object* to = tv ? &tv->as_object() : nullptr;
  const json::object* vo = vv ? &vv->as_object() : nullptr;

  TextConfig& t = c.text;
  Reader tr(to, "text_config.", &err);
  tr.Int("vocab_size", &t.vocab_size);
  if (!tr.Has("vocab_size")) r.Int("vocab_size", &t.vocab_size);
  tr.Int("hidden_size", &t.hidden_size);
  tr.Int("intermediate_size", &t.intermediate_size);
  tr.Int("num_hidden_layers", &t.num_hidden_layers);
  tr.Int("num_attention_heads", &t.num_attention_heads);
  t.num_key_value_heads = t.num_attention_heads;
  tr.Int("num_key_value_heads", &t.num_key_value_heads);
  t.head_dim = t.num_attention_heads > 0 ? t.hidden_size / t.num_attention_heads : 0;
  tr.Int("head_dim", &t.head_dim);
  tr.Float("rms_norm_eps", &t.rms_norm_eps);
  tr.Double("rope_theta", &t.rope_theta);
  tr.Int("max_position_embeddings", &t.max_position_embeddings);
  tr.String("hidden_act", &t.hidden_act);
  if (to) {
    const json::value* rs = to->if_contains("rope_scaling");
    if (rs && !rs->is_null()) {
      return Unimplemented(what +
                           ": text_config.rope_scaling is set; iris supports only "
                           "the default RoPE that SmolVLM2 uses");
    }
  }

  VisionConfig& v = c.vision;
  Reader vr(vo, "vision_config.", &err);
  vr.Int("hidden_size", &v.hidden_size);
  vr.Int("intermediate_size", &v.intermediate_size);
  vr.Int("num_hidden_layers", &v.num_hidden_layers);
  vr.Int("num_attention_heads", &v.num_attention_heads);
  vr.Int("num_channels", &v.num_channels);
  vr.Int("image_size", &v.image_size);
  vr.Int("patch_size", &v.patch_size);
  vr.Float("layer_norm_eps", &v.layer_norm_eps);
  vr.String("hidden_act", &v.hidden_act);
  if (!err.ok()) return err.WithContext(what);
  IRIS_RETURN_IF_ERROR(ValidateModelConfig(c, what));
  return c;
}

Status ValidateModelConfig(const ModelConfig& c, const std::string& what) {
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  for (auto [key, val] : {std::pair<const char*, int>{"text_config.vocab_size", t.vocab_size},
                          {"text_config.hidden_size", t.hidden_size},
                          {"text_config.intermediate_size", t.intermediate_size},
                          {"text_config.num_hidden_layers", t.num_hidden_layers},
                          {"text_config.num_attention_heads", t.num_attention_heads},
                          {"text_config.num_key_value_heads", t.num_key_value_heads},
                          {"text_config.head_dim", t.head_dim},
                          {"vision_config.hidden_size", v.hidden_size},
                          {"vision_config.num_attention_heads", v.num_attention_heads},
                          {"vision_config.patch_size", v.patch_size},
                          {"vision_config.image_size", v.image_size},
                          {"scale_factor", c.scale_factor}}) {
    IRIS_RETURN_IF_ERROR(Positive(what, key, val));
  }
  if (t.num_attention_heads % t.num_key_value_heads != 0) {
    return InvalidArgument(what + ": text_config.num_attention_heads (" +
                           std::to_string(t.num_attention_heads) +
                           ") is not a multiple of num_key_value_heads (" +
                           std::to_string(t.num_key_value_heads) + ")");
  }
  if (t.head_dim % 2 != 0) return InvalidArgument(what + ": text_config.head_dim must be even");
  if (t.hidden_act != "silu") {
    return Unimplemented(what + ": text_config.hidden_act '" + t.hidden_act + "' (only silu)");
  }
  if (!(t.rope_theta > 0)) return InvalidArgument(what + ": text_config.rope_theta must be > 0");
  if (c.image_token_id < 0 || c.image_token_id >= t.vocab_size) {
    return InvalidArgument(what + ": image_token_id " + std::to_string(c.image_token_id) +
                           " is outside the vocabulary");
  }
  return OkStatus();
}

Result<ModelConfig> LoadModelConfig(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  IRIS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseModelConfig(text, path);
}

}  // namespace iris::model
