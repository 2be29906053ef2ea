#include "engine/model/text_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "engine/kernels/kernels.h"
#include "engine/model/weights.h"

namespace iris::model {

void KvCache::Reserve(size_t tokens) {
  if (tokens <= capacity_) return;
  size_t cap = std::max<size_t>(tokens, capacity_ * 2);
  for (int l = 0; l < num_layers_; ++l) {
    k_[l].resize(cap * kv_dim_);
    v_[l].resize(cap * kv_dim_);
  }
  capacity_ = cap;
}

Result<std::string> TextPrefix(const formats::WeightStore& weights) {
  for (const char* p : {"model.text_model.", "text_model.", "model."}) {
    if (weights.Has(std::string(p) + "embed_tokens.weight")) return std::string(p);
  }
  return NotFound(weights.description() +
                  ": no text model embeddings (model.text_model.embed_tokens.weight)");
}

Result<TextModel> TextModel::Load(const formats::WeightStore& weights, const TextConfig& config,
                                  bool tie_word_embeddings, bool narrow_exact_f32) {
  TextModel m;
  m.config_ = config;
  IRIS_ASSIGN_OR_RETURN(std::string p, TextPrefix(weights));
  const int64_t d = config.hidden_size, f = config.intermediate_size, v = config.vocab_size;
  const int64_t qd = static_cast<int64_t>(config.num_attention_heads) * config.head_dim;
  const int64_t kvd = static_cast<int64_t>(config.num_key_value_heads) * config.head_dim;
  WeightBinder w(weights, narrow_exact_f32);
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    return w.Bind(name, shape);
  };
  IRIS_ASSIGN_OR_RETURN(m.embed_, get(p + "embed_tokens.weight", {v, d}));
  if (tie_word_embeddings) {
    m.lm_head_ = m.embed_;
  } else {
    // Untied (every SmolVLM2): a missing lm_head is an error, not a silent fallback.
    IRIS_ASSIGN_OR_RETURN(m.lm_head_, get("lm_head.weight", {v, d}));
  }
  IRIS_ASSIGN_OR_RETURN(m.final_norm_, w.BindF32(p + "norm.weight", {d}));
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string lp = p + "layers." + std::to_string(i) + ".";
    Layer l;
    IRIS_ASSIGN_OR_RETURN(l.q, get(lp + "self_attn.q_proj.weight", {qd, d}));
    IRIS_ASSIGN_OR_RETURN(l.k, get(lp + "self_attn.k_proj.weight", {kvd, d}));
    IRIS_ASSIGN_OR_RETURN(l.v, get(lp + "self_attn.v_proj.weight", {kvd, d}));
    IRIS_ASSIGN_OR_RETURN(l.o, get(lp + "self_attn.o_proj.weight", {d, qd}));
    IRIS_ASSIGN_OR_RETURN(l.gate, get(lp + "mlp.gate_proj.weight", {f, d}));
    IRIS_ASSIGN_OR_RETURN(l.up, get(lp + "mlp.up_proj.weight", {f, d}));
    IRIS_ASSIGN_OR_RETURN(l.down, get(lp + "mlp.down_proj.weight", {d, f}));
    IRIS_ASSIGN_OR_RETURN(l.input_norm, w.BindF32(lp + "input_layernorm.weight", {d}));
    IRIS_ASSIGN_OR_RETURN(l.post_norm, w.BindF32(lp + "post_attention_layernorm.weight", {d}));
    m.layers_.push_back(std::move(l));
  }
  m.owned_ = w.TakeOwned();
  return m;
}

void TextModel::Embed(std::span<const int32_t> ids, float* out) const {
  const size_t d = static_cast<size_t>(config_.hidden_size);
  const size_t row_bytes = d * tensor::DTypeSize(embed_.dtype);
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto* row =
        static_cast<const uint8_t*>(embed_.data) + static_cast<size_t>(ids[t]) * row_bytes;
    kernels::ConvertRowToF32(row, embed_.dtype, d, out + t * d);
  }
}

void TextModel::Forward(ops::ComputeContext& ctx, const float* embeds, size_t num_tokens,
                        KvCache& cache, bool all_logits, std::vector<float>* logits) const {
  const TextConfig& c = config_;
  const size_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
  const size_t nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const size_t qd = nh * hd, kvd = nkv * hd;
  const size_t pos0 = cache.length();
  const size_t T = num_tokens;
  cache.Reserve(pos0 + T);

  std::vector<float> x(embeds, embeds + T * d);  // [T, d] residual stream
  std::vector<float> h(T * d), q(T * qd), attn(T * qd), tmp(T * d);
  std::vector<float> gate(T * f), up(T * f);
  std::vector<float> cos((T * hd) / 2), sin((T * hd) / 2);
  ops::RopeTables(c.rope_theta, hd, pos0, T, cos.data(), sin.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    float* kc = cache.keys(static_cast<int>(li));
    float* vc = cache.values(static_cast<int>(li));
    ops::RmsNorm(x.data(), T, d, l.input_norm.data(), c.rms_norm_eps, h.data());
    ops::MatMul(ctx, h.data(), T, l.q, q.data());
    ops::MatMul(ctx, h.data(), T, l.k, kc + pos0 * kvd);
    ops::MatMul(ctx, h.data(), T, l.v, vc + pos0 * kvd);
    ops::ApplyRope(q.data(), T, nh, hd, cos.data(), sin.data());
    ops::ApplyRope(kc + pos0 * kvd, T, nkv, hd, cos.data(), sin.data());
    ops::CausalAttention(ctx, q.data(), T, pos0, kc, vc, nh, nkv, hd, scale, attn.data());
    ops::MatMul(ctx, attn.data(), T, l.o, tmp.data());
    ops::Add(x.data(), tmp.data(), T * d);

    ops::RmsNorm(x.data(), T, d, l.post_norm.data(), c.rms_norm_eps, h.data());
    ops::MatMul(ctx, h.data(), T, l.gate, gate.data());
    ops::MatMul(ctx, h.data(), T, l.up, up.data());
    ops::SiluMul(gate.data(), up.data(), T * f);
    ops::MatMul(ctx, gate.data(), T, l.down, tmp.data());
    ops::Add(x.data(), tmp.data(), T * d);
  }
  cache.set_length(pos0 + T);

  const size_t first = all_logits ? 0 : T - 1;
  const size_t rows = T - first;
  ops::RmsNorm(x.data() + first * d, rows, d, final_norm_.data(), c.rms_norm_eps, h.data());
  logits->resize(rows * static_cast<size_t>(c.vocab_size));
  ops::MatMul(ctx, h.data(), rows, lm_head_, logits->data());
}

}  // namespace iris::model
