#include "engine/model/text_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "base/mapped_file.h"
#include "engine/kernels/kernels.h"

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

namespace {

// The BF16 bits of an F32 tensor whose every value has zero low 16 bits (two per 32-bit
// word, in element order), else nothing.
std::optional<std::vector<uint32_t>> NarrowIfExact(const tensor::TensorView& v) {
  const size_t n = static_cast<size_t>(v.num_elements());
  auto word = [&](size_t i) {
    uint32_t w;
    std::memcpy(&w, static_cast<const uint8_t*>(v.data) + 4 * i, 4);  // may be unaligned
    return w;
  };
  for (size_t i = 0; i < n; ++i) {
    if (word(i) & 0xffffu) return std::nullopt;
  }
  std::vector<uint32_t> out((n + 1) / 2);
  auto* half = reinterpret_cast<uint16_t*>(out.data());
  for (size_t i = 0; i < n; ++i) half[i] = static_cast<uint16_t>(word(i) >> 16);
  return out;
}

}  // namespace

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
  auto get = [&](const std::string& name, std::vector<int64_t> shape) -> Result<tensor::TensorView> {
    IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, weights.Get(name, shape));
    if (e.view.dtype != tensor::DType::kF32 && e.view.dtype != tensor::DType::kBF16 &&
        e.view.dtype != tensor::DType::kF16) {
      return FailedPrecondition(e.file + ": tensor '" + name + "' has dtype " +
                                std::string(tensor::DTypeName(e.view.dtype)) +
                                "; weights must be F32, BF16 or F16");
    }
    if (narrow_exact_f32 && e.view.dtype == tensor::DType::kF32 && shape.size() == 2) {
      if (auto narrowed = NarrowIfExact(e.view)) {
        m.owned_.push_back(std::move(*narrowed));
        ReleasePages(e.view.data, e.view.num_bytes());
        tensor::TensorView narrow = e.view;
        narrow.dtype = tensor::DType::kBF16;
        narrow.data = m.owned_.back().data();
        return narrow;
      }
    }
    if (reinterpret_cast<uintptr_t>(e.view.data) % tensor::DTypeSize(e.view.dtype) != 0) {
      std::vector<uint32_t> copy((e.view.num_bytes() + 3) / 4);
      std::memcpy(copy.data(), e.view.data, e.view.num_bytes());
      m.owned_.push_back(std::move(copy));
      tensor::TensorView aligned = e.view;
      aligned.data = m.owned_.back().data();
      return aligned;
    }
    return e.view;
  };
  IRIS_ASSIGN_OR_RETURN(m.embed_, get(p + "embed_tokens.weight", {v, d}));
  if (tie_word_embeddings) {
    m.lm_head_ = m.embed_;
  } else {
    // Untied (every SmolVLM2): a missing lm_head is an error, not a silent fallback.
    IRIS_ASSIGN_OR_RETURN(m.lm_head_, get("lm_head.weight", {v, d}));
  }
  IRIS_ASSIGN_OR_RETURN(tensor::TensorView norm, get(p + "norm.weight", {d}));
  m.final_norm_ = ops::ToF32(norm);
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
    IRIS_ASSIGN_OR_RETURN(tensor::TensorView n1, get(lp + "input_layernorm.weight", {d}));
    IRIS_ASSIGN_OR_RETURN(tensor::TensorView n2, get(lp + "post_attention_layernorm.weight", {d}));
    l.input_norm = ops::ToF32(n1);
    l.post_norm = ops::ToF32(n2);
    m.layers_.push_back(std::move(l));
  }
  return m;
}

void TextModel::Embed(std::span<const int32_t> ids, float* out) const {
  const size_t d = static_cast<size_t>(config_.hidden_size);
  const size_t row_bytes = d * tensor::DTypeSize(embed_.dtype);
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto* row = static_cast<const uint8_t*>(embed_.data) + static_cast<size_t>(ids[t]) * row_bytes;
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
