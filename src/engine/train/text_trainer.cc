#include "engine/train/text_trainer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>

namespace iris::train {

namespace {

using model::LoraSite;

tensor::TensorView F32View(const float* data, int64_t rows, int64_t cols) {
  return {tensor::DType::kF32, {rows, cols}, data};
}

// out[cols, rows] = in[rows, cols]ᵀ.
void Transpose(const float* in, size_t rows, size_t cols, float* out) {
  constexpr size_t kTile = 32;
  for (size_t r0 = 0; r0 < rows; r0 += kTile) {
    for (size_t c0 = 0; c0 < cols; c0 += kTile) {
      const size_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (size_t r = r0; r < r1; ++r) {
        for (size_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
      }
    }
  }
}

// y[T, out] += s·(x·Aᵀ)·Bᵀ; u receives x·Aᵀ [T, rank] for the backward pass.
void LoraForward(ops::ComputeContext& ctx, const LoraParam* p, float s, const float* x, size_t T,
                 float* y, std::vector<float>& u, std::vector<float>& t) {
  if (p == nullptr) return;
  const size_t r = static_cast<size_t>(p->rank), out = static_cast<size_t>(p->out);
  u.resize(T * r);
  ops::MatMul(ctx, x, T, F32View(p->a.data(), p->rank, p->in), u.data());
  t.resize(T * out);
  ops::MatMul(ctx, u.data(), T, F32View(p->b.data(), p->out, p->rank), t.data());
  for (size_t i = 0; i < t.size(); ++i) y[i] += s * t[i];
}

// For y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ, given dy [T, out], x [T, in] (xt: its transpose [in, T]) and
// u = x·Aᵀ: accumulates dA and dB and adds the adapter's part of dx.
void LoraBackward(ops::ComputeContext& ctx, LoraParam* p, float s, const float* xt,
                  const std::vector<float>& u, const float* dy, size_t T, float* dx,
                  LoraScratch& w) {
  if (p == nullptr) return;
  const size_t r = static_cast<size_t>(p->rank), in = static_cast<size_t>(p->in),
               out = static_cast<size_t>(p->out);
  std::vector<float>&dyt = w.dyt, &ut = w.ut, &bt = w.bt, &du = w.du, &dut = w.dut, &at = w.at,
  &g = w.g;
  dyt.resize(out * T);
  ut.resize(r * T);
  bt.resize(r * out);
  du.resize(T * r);
  dut.resize(r * T);
  at.resize(in * r);
  Transpose(dy, T, out, dyt.data());
  Transpose(u.data(), T, r, ut.data());
  // dB[out, r] += s·dyᵀ·u
  g.resize(out * r);
  ops::MatMul(ctx, dyt.data(), out,
              F32View(ut.data(), static_cast<int64_t>(r), static_cast<int64_t>(T)), g.data());
  for (size_t i = 0; i < g.size(); ++i) p->grad_b[i] += s * g[i];
  // du[T, r] = s·dy·B
  Transpose(p->b.data(), out, r, bt.data());
  ops::MatMul(ctx, dy, T, F32View(bt.data(), static_cast<int64_t>(r), static_cast<int64_t>(out)),
              du.data());
  for (float& x : du) x *= s;
  // dA[r, in] += duᵀ·x
  Transpose(du.data(), T, r, dut.data());
  g.resize(r * in);
  ops::MatMul(ctx, dut.data(), r, F32View(xt, static_cast<int64_t>(in), static_cast<int64_t>(T)),
              g.data());
  for (size_t i = 0; i < g.size(); ++i) p->grad_a[i] += g[i];
  // dx[T, in] += du·A
  Transpose(p->a.data(), r, in, at.data());
  g.resize(T * in);
  ops::MatMul(ctx, du.data(), T,
              F32View(at.data(), static_cast<int64_t>(in), static_cast<int64_t>(r)), g.data());
  for (size_t i = 0; i < g.size(); ++i) dx[i] += g[i];
}

// dx += RMSNorm'(x)ᵀ·dy for y = w ⊙ x / √(mean(x²) + eps), row by row.
void RmsNormBackward(const float* x, size_t T, size_t d, const float* w, float eps, const float* dy,
                     float* dx) {
  for (size_t t = 0; t < T; ++t) {
    const float* xr = x + t * d;
    const float* dyr = dy + t * d;
    double ss = 0, dot = 0;
    for (size_t i = 0; i < d; ++i) {
      ss += static_cast<double>(xr[i]) * xr[i];
      dot += static_cast<double>(w[i]) * dyr[i] * xr[i];
    }
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    const double c = r * r * r * dot / static_cast<double>(d);
    float* dxr = dx + t * d;
    for (size_t i = 0; i < d; ++i) {
      dxr[i] += static_cast<float>(r * w[i] * dyr[i] - c * xr[i]);
    }
  }
}

// fn(begin, end) over [0, n) in chunks of at least `grain`, on the pool when there is one.
// For element-wise loops whose every element is computed the same way on any thread.
void ForRange(ops::ComputeContext& ctx, size_t n, size_t grain,
              const std::function<void(size_t, size_t)>& fn) {
  if (ctx.pool == nullptr || n <= grain) {
    fn(0, n);
    return;
  }
  ctx.pool->ParallelFor(n, grain, [&](size_t b, size_t e, int) { fn(b, e); });
}

// One head's rows out of [T, heads·hd] into [T, hd], and back (added).
void Gather(const float* in, size_t T, size_t stride, size_t off, size_t hd, float* out) {
  for (size_t t = 0; t < T; ++t) std::copy_n(in + t * stride + off, hd, out + t * hd);
}
void ScatterAdd(const float* in, size_t T, size_t stride, size_t off, size_t hd, float* out) {
  for (size_t t = 0; t < T; ++t) {
    for (size_t e = 0; e < hd; ++e) out[t * stride + off + e] += in[t * hd + e];
  }
}

}  // namespace

// Calls fn(h, scratch, inner) for every head. Up to 2048 positions the heads spread over the
// pool, each computed whole by one thread with single-threaded products (inner has no pool),
// so no product waits on a barrier; longer sequences go head by head with the products on the
// pool, so the [T, T] scratch exists once rather than once per thread. Every result is the
// same whichever thread computes it.
void TextTrainer::ForEachHead(ops::ComputeContext& ctx, size_t heads, size_t T,
                              const std::function<void(size_t, Attn&, ops::ComputeContext&)>& fn) {
  constexpr size_t kParallelHeadsMaxPositions = 2048;
  if (ctx.pool == nullptr || T > kParallelHeadsMaxPositions) {
    if (attn_.empty()) attn_.resize(1);
    for (size_t h = 0; h < heads; ++h) fn(h, attn_[0], ctx);
    return;
  }
  const size_t threads = static_cast<size_t>(ctx.pool->num_threads());
  if (attn_.size() < threads) attn_.resize(threads);
  ctx.pool->Run(heads, [&](size_t h, int thread) {
    ops::ComputeContext serial = ctx;  // (bf16 or not, as asked)
    serial.pool = nullptr;
    fn(h, attn_[static_cast<size_t>(thread)], serial);
  });
}

// Causal attention, one head per task as matrix products (the probabilities of a head are
// [T, T]): out [T, nh·hd] and the log-sum-exp of every query row, lse [nh, T].
void TextTrainer::AttentionForward(ops::ComputeContext& ctx, const float* q, const float* k,
                                   const float* v, size_t T, float* out, float* lse) {
  const model::TextConfig& c = model_->config();
  const size_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim;
  const size_t qd = nh * hd, kvd = nkv * hd, per_group = nh / nkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ForEachHead(ctx, nh, T, [&](size_t h, Attn& w, ops::ComputeContext& inner) {
    for (auto* b : {&w.qh, &w.kg, &w.vg, &w.vgt, &w.oh}) b->resize(T * hd);
    w.s.resize(T * T);
    const size_t g = h / per_group;
    Gather(k, T, kvd, g * hd, hd, w.kg.data());
    Gather(v, T, kvd, g * hd, hd, w.vg.data());
    Transpose(w.vg.data(), T, hd, w.vgt.data());
    Gather(q, T, qd, h * hd, hd, w.qh.data());
    ops::MatMul(inner, w.qh.data(), T, F32View(w.kg.data(), T, hd), w.s.data());
    for (size_t i = 0; i < T; ++i) {
      float* row = w.s.data() + i * T;
      float m = -INFINITY;
      for (size_t j = 0; j <= i; ++j) m = std::max(m, row[j] *= scale);
      double sum = 0;
      for (size_t j = 0; j <= i; ++j) sum += row[j] = std::exp(row[j] - m);
      const float inv = static_cast<float>(1.0 / sum);
      for (size_t j = 0; j <= i; ++j) row[j] *= inv;
      std::fill(row + i + 1, row + T, 0.0f);
      lse[h * T + i] = m + static_cast<float>(std::log(sum));
    }
    ops::MatMul(inner, w.s.data(), T, F32View(w.vgt.data(), hd, T), w.oh.data());
    for (size_t t = 0; t < T; ++t) std::copy_n(w.oh.data() + t * hd, hd, out + t * qd + h * hd);
  });
}

// The gradients of q, k, v (all post-RoPE) from dout, the probabilities recomputed from lse.
// Heads of one key/value group run on different threads: each writes its own share of dk and
// dv, summed afterwards in head order.
void TextTrainer::AttentionBackward(ops::ComputeContext& ctx, const float* q, const float* k,
                                    const float* v, const float* out, const float* lse,
                                    const float* dout, size_t T, float* dq, float* dk, float* dv) {
  const model::TextConfig& c = model_->config();
  const size_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim;
  const size_t qd = nh * hd, kvd = nkv * hd, per_group = nh / nkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  head_dk_.resize(nh * T * hd);
  head_dv_.resize(nh * T * hd);
  ForEachHead(ctx, nh, T, [&](size_t h, Attn& w, ops::ComputeContext& inner) {
    for (auto* b : {&w.qh, &w.qht, &w.kg, &w.kgt, &w.vg, &w.oh, &w.doh, &w.doht, &w.grad}) {
      b->resize(T * hd);
    }
    w.s.resize(T * T);
    w.dp.resize(T * T);
    w.st.resize(T * T);
    const size_t g = h / per_group;
    Gather(k, T, kvd, g * hd, hd, w.kg.data());
    Gather(v, T, kvd, g * hd, hd, w.vg.data());
    Transpose(w.kg.data(), T, hd, w.kgt.data());
    Gather(q, T, qd, h * hd, hd, w.qh.data());
    Gather(out, T, qd, h * hd, hd, w.oh.data());
    Gather(dout, T, qd, h * hd, hd, w.doh.data());
    // P, recomputed.
    ops::MatMul(inner, w.qh.data(), T, F32View(w.kg.data(), T, hd), w.s.data());
    // dP = dO·Vᵀ; dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale.
    ops::MatMul(inner, w.doh.data(), T, F32View(w.vg.data(), T, hd), w.dp.data());
    for (size_t i = 0; i < T; ++i) {
      float* p = w.s.data() + i * T;
      float* dp = w.dp.data() + i * T;
      float di = 0;
      for (size_t e = 0; e < hd; ++e) di += w.doh[i * hd + e] * w.oh[i * hd + e];
      const float l = lse[h * T + i];
      for (size_t j = 0; j <= i; ++j) {
        p[j] = std::exp(scale * p[j] - l);
        dp[j] = p[j] * (dp[j] - di) * scale;
      }
      std::fill(p + i + 1, p + T, 0.0f);
      std::fill(dp + i + 1, dp + T, 0.0f);
    }
    // dQ = dS·K (this head's columns of dq: no other head writes them)
    ops::MatMul(inner, w.dp.data(), T, F32View(w.kgt.data(), hd, T), w.grad.data());
    ScatterAdd(w.grad.data(), T, qd, h * hd, hd, dq);
    // dK = dSᵀ·Q
    Transpose(w.dp.data(), T, T, w.st.data());
    Transpose(w.qh.data(), T, hd, w.qht.data());
    ops::MatMul(inner, w.st.data(), T, F32View(w.qht.data(), hd, T), head_dk_.data() + h * T * hd);
    // dV = Pᵀ·dO
    Transpose(w.s.data(), T, T, w.st.data());
    Transpose(w.doh.data(), T, hd, w.doht.data());
    ops::MatMul(inner, w.st.data(), T, F32View(w.doht.data(), hd, T), head_dv_.data() + h * T * hd);
  });
  for (size_t h = 0; h < nh; ++h) {
    const size_t g = h / per_group;
    ScatterAdd(head_dk_.data() + h * T * hd, T, kvd, g * hd, hd, dk);
    ScatterAdd(head_dv_.data() + h * T * hd, T, kvd, g * hd, hd, dv);
  }
}

namespace {

size_t ElementBytes(tensor::DType t) {
  switch (t) {
    case tensor::DType::kF32:
      return 4;
    case tensor::DType::kBF16:
    case tensor::DType::kF16:
      return 2;
    default:
      return 0;
  }
}

}  // namespace

Result<TextTrainer> TextTrainer::Create(const model::TextModel& model, ops::ComputeContext& ctx) {
  TextTrainer t;
  t.model_ = &model;
  auto transpose = [&](const tensor::TensorView& w) -> Result<tensor::TensorView> {
    // Quantized weights (a Q8_0/Q4_0 file, or --weights) go backward as their f32 values.
    std::vector<float> values;
    const bool quantized = tensor::IsBlockType(w.dtype);
    if (quantized) values = ops::ToF32(w);
    // Panels packed at load go backward as the same values in rows.
    const bool half_panels = tensor::IsHalfPanelType(w.dtype);
    const tensor::DType dtype = quantized                          ? tensor::DType::kF32
                                : w.dtype == tensor::DType::kBF16p ? tensor::DType::kBF16
                                : w.dtype == tensor::DType::kF16p  ? tensor::DType::kF16
                                                                   : w.dtype;
    const size_t es = ElementBytes(dtype);
    if (es == 0 || w.shape.size() != 2) {
      return FailedPrecondition(
          "training needs the text model's weights as matrices of F32, "
          "BF16, F16 or int8 blocks; they are " +
          std::string(tensor::DTypeName(w.dtype)));
    }
    const size_t rows = static_cast<size_t>(w.shape[0]), cols = static_cast<size_t>(w.shape[1]);
    std::vector<uint8_t> bytes(rows * cols * es);
    const auto* src = quantized ? reinterpret_cast<const uint8_t*>(values.data())
                                : static_cast<const uint8_t*>(w.data);
    auto columns = [&](size_t task, int) {
      const size_t c0 = task * 64, c1 = std::min(cols, c0 + 64);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = c0; c < c1; ++c) {
          const size_t from =
              half_panels ? tensor::HalfPanelOffset(w.dtype, cols, r, c) : (r * cols + c) * es;
          std::memcpy(&bytes[(c * rows + r) * es], &src[from], es);
        }
      }
    };
    const size_t tasks = (cols + 63) / 64;
    if (ctx.pool != nullptr) {
      ctx.pool->Run(tasks, columns);
    } else {
      for (size_t i = 0; i < tasks; ++i) columns(i, 0);
    }
    tensor::TensorView out{dtype, {w.shape[1], w.shape[0]}, bytes.data()};
    t.owned_.push_back(std::move(bytes));
    return out;
  };
  for (const model::TextModel::Layer& l : model.layers()) {
    Transposed tr;
    IRIS_ASSIGN_OR_RETURN(tr.q, transpose(l.q));
    IRIS_ASSIGN_OR_RETURN(tr.k, transpose(l.k));
    IRIS_ASSIGN_OR_RETURN(tr.v, transpose(l.v));
    IRIS_ASSIGN_OR_RETURN(tr.o, transpose(l.o));
    IRIS_ASSIGN_OR_RETURN(tr.gate, transpose(l.gate));
    IRIS_ASSIGN_OR_RETURN(tr.up, transpose(l.up));
    IRIS_ASSIGN_OR_RETURN(tr.down, transpose(l.down));
    t.transposed_.push_back(std::move(tr));
  }
  IRIS_ASSIGN_OR_RETURN(t.lm_head_t_, transpose(model.lm_head()));
  return t;
}

SequenceLoss TextTrainer::Run(ops::ComputeContext& ctx, const float* embeds,
                              std::span<const int32_t> labels, LoraParams* lora, float grad_scale,
                              bool backward) {
  const model::TextConfig& c = model_->config();
  const size_t T = labels.size();
  const size_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
  const size_t nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const size_t qd = nh * hd, kvd = nkv * hd, half = hd / 2;
  const size_t V = static_cast<size_t>(c.vocab_size);
  const float s = lora ? lora->scale() : 0.0f;
  const auto& layers = model_->layers();
  auto find = [&](LoraSite site, size_t layer) -> LoraParam* {
    return lora ? lora->Find(site, layer) : nullptr;
  };

  // Kept between calls: the buffers keep their pages.
  std::vector<Acts>& acts = acts_;
  acts.resize(layers.size());
  Scratch& w0 = scratch_;
  std::vector<float>&x = w0.x, &h = w0.h, &tmp = w0.tmp, &cos = w0.cos, &sin = w0.sin;
  x.assign(embeds, embeds + T * d);
  h.resize(T * d);
  tmp.resize(T * d);
  cos.resize(T * half);
  sin.resize(T * half);
  ops::RopeTables(c.rope_theta, hd, 0, T, cos.data(), sin.data());

  for (size_t li = 0; li < layers.size(); ++li) {
    const model::TextModel::Layer& l = layers[li];
    Acts& a = acts[li];
    a.xin = x;
    ops::RmsNorm(x.data(), T, d, l.input_norm.data(), c.rms_norm_eps, h.data());
    a.q.resize(T * qd);
    a.k.resize(T * kvd);
    a.v.resize(T * kvd);
    ops::MatMul(ctx, h.data(), T, l.q, a.q.data());
    ops::MatMul(ctx, h.data(), T, l.k, a.k.data());
    ops::MatMul(ctx, h.data(), T, l.v, a.v.data());
    LoraForward(ctx, find(LoraSite::kTextQ, li), s, h.data(), T, a.q.data(), a.lu[0], w0.lora.t);
    LoraForward(ctx, find(LoraSite::kTextK, li), s, h.data(), T, a.k.data(), a.lu[1], w0.lora.t);
    LoraForward(ctx, find(LoraSite::kTextV, li), s, h.data(), T, a.v.data(), a.lu[2], w0.lora.t);
    ops::ApplyRope(a.q.data(), T, nh, hd, cos.data(), sin.data());
    ops::ApplyRope(a.k.data(), T, nkv, hd, cos.data(), sin.data());
    a.attn.resize(T * qd);
    a.lse.resize(nh * T);
    AttentionForward(ctx, a.q.data(), a.k.data(), a.v.data(), T, a.attn.data(), a.lse.data());
    ops::MatMul(ctx, a.attn.data(), T, l.o, tmp.data());
    LoraForward(ctx, find(LoraSite::kTextO, li), s, a.attn.data(), T, tmp.data(), a.lu[3],
                w0.lora.t);
    ops::Add(x.data(), tmp.data(), T * d);
    a.x2 = x;
    ops::RmsNorm(x.data(), T, d, l.post_norm.data(), c.rms_norm_eps, h.data());
    a.g.resize(T * f);
    a.u.resize(T * f);
    ops::MatMul(ctx, h.data(), T, l.gate, a.g.data());
    ops::MatMul(ctx, h.data(), T, l.up, a.u.data());
    LoraForward(ctx, find(LoraSite::kTextGate, li), s, h.data(), T, a.g.data(), a.lu[4], w0.lora.t);
    LoraForward(ctx, find(LoraSite::kTextUp, li), s, h.data(), T, a.u.data(), a.lu[5], w0.lora.t);
    a.m = a.g;
    ops::SiluMul(a.m.data(), a.u.data(), T * f);
    ops::MatMul(ctx, a.m.data(), T, l.down, tmp.data());
    LoraForward(ctx, find(LoraSite::kTextDown, li), s, a.m.data(), T, tmp.data(), a.lu[6],
                w0.lora.t);
    ops::Add(x.data(), tmp.data(), T * d);
  }

  // The labelled rows: final norm, lm_head, cross-entropy.
  std::vector<size_t> rows;
  for (size_t t = 0; t < T; ++t) {
    if (labels[t] >= 0) rows.push_back(t);
  }
  SequenceLoss loss;
  loss.tokens = rows.size();
  if (rows.empty()) return loss;
  const size_t R = rows.size();
  std::vector<float>&xr = w0.xr, &hf = w0.hf, &logits = w0.logits;
  xr.resize(R * d);
  hf.resize(R * d);
  logits.resize(R * V);
  for (size_t i = 0; i < R; ++i) std::copy_n(x.data() + rows[i] * d, d, xr.data() + i * d);
  ops::RmsNorm(xr.data(), R, d, model_->final_norm().data(), c.rms_norm_eps, hf.data());
  ops::MatMul(ctx, hf.data(), R, model_->lm_head(), logits.data());
  std::vector<double>& row_loss = w0.row_loss;
  row_loss.resize(R);
  ForRange(ctx, R, 4, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      float* z = logits.data() + i * V;
      const float m = *std::max_element(z, z + V);
      double sum = 0;
      for (size_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(z[j] - m));
      const double lse = m + std::log(sum);
      const size_t label = static_cast<size_t>(labels[rows[i]]);
      row_loss[i] = lse - z[label];
      if (backward) {  // z becomes dLoss/dz, times grad_scale
        for (size_t j = 0; j < V; ++j) {
          z[j] = static_cast<float>(std::exp(static_cast<double>(z[j]) - lse) * grad_scale);
        }
        z[label] -= grad_scale;
      }
    }
  });
  for (size_t i = 0; i < R; ++i) loss.sum += row_loss[i];  // in row order, whoever computed it
  if (!backward || lora == nullptr) return loss;

  // Backward: dx [T, d], the gradient of the residual stream.
  std::vector<float>&dhf = w0.dhf, &dx = w0.dx, &dxr = w0.dxr;
  dhf.resize(R * d);
  dx.assign(T * d, 0.0f);
  dxr.assign(R * d, 0.0f);
  ops::MatMul(ctx, logits.data(), R, lm_head_t_, dhf.data());
  RmsNormBackward(xr.data(), R, d, model_->final_norm().data(), c.rms_norm_eps, dhf.data(),
                  dxr.data());
  for (size_t i = 0; i < R; ++i) std::copy_n(dxr.data() + i * d, d, dx.data() + rows[i] * d);

  std::vector<float>&dm = w0.dm, &dg = w0.dg, &dup = w0.dup, &dh = w0.dh, &ht = w0.ht, &mt = w0.mt,
  &attnt = w0.attnt, &dattn = w0.dattn, &dq = w0.dq, &dk = w0.dk, &dv = w0.dv,
  &neg_sin = w0.neg_sin;
  for (auto* b : {&dm, &dg, &dup, &mt}) b->resize(T * f);
  for (auto* b : {&dh, &ht}) b->resize(T * d);
  for (auto* b : {&attnt, &dattn, &dq}) b->resize(T * qd);
  for (auto* b : {&dk, &dv}) b->resize(T * kvd);
  neg_sin.resize(sin.size());
  for (size_t i = 0; i < sin.size(); ++i) neg_sin[i] = -sin[i];
  for (size_t li = layers.size(); li-- > 0;) {
    const model::TextModel::Layer& l = layers[li];
    const Transposed& w = transposed_[li];
    Acts& a = acts[li];
    // x3 = x2 + down(silu(g) ⊙ u)
    ops::MatMul(ctx, dx.data(), T, w.down, dm.data());
    if (LoraParam* p = find(LoraSite::kTextDown, li)) {
      Transpose(a.m.data(), T, f, mt.data());
      LoraBackward(ctx, p, s, mt.data(), a.lu[6], dx.data(), T, dm.data(), w0.lora);
    }
    ForRange(ctx, T * f, 16384, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        const float g = a.g[i];
        const float sig = 1.0f / (1.0f + std::exp(-g));
        const float silu = g * sig;
        dup[i] = dm[i] * silu;
        dg[i] = dm[i] * a.u[i] * sig * (1.0f + g * (1.0f - sig));
      }
    });
    ops::MatMul(ctx, dg.data(), T, w.gate, dh.data());
    ops::MatMul(ctx, dup.data(), T, w.up, tmp.data());
    ops::Add(dh.data(), tmp.data(), T * d);
    LoraParam* pg = find(LoraSite::kTextGate, li);
    LoraParam* pu = find(LoraSite::kTextUp, li);
    if (pg || pu) {
      ops::RmsNorm(a.x2.data(), T, d, l.post_norm.data(), c.rms_norm_eps, h.data());
      Transpose(h.data(), T, d, ht.data());
      LoraBackward(ctx, pg, s, ht.data(), a.lu[4], dg.data(), T, dh.data(), w0.lora);
      LoraBackward(ctx, pu, s, ht.data(), a.lu[5], dup.data(), T, dh.data(), w0.lora);
    }
    RmsNormBackward(a.x2.data(), T, d, l.post_norm.data(), c.rms_norm_eps, dh.data(), dx.data());
    // x2 = xin + o(attention)
    ops::MatMul(ctx, dx.data(), T, w.o, dattn.data());
    if (LoraParam* p = find(LoraSite::kTextO, li)) {
      Transpose(a.attn.data(), T, qd, attnt.data());
      LoraBackward(ctx, p, s, attnt.data(), a.lu[3], dx.data(), T, dattn.data(), w0.lora);
    }
    std::fill(dq.begin(), dq.end(), 0.0f);
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    AttentionBackward(ctx, a.q.data(), a.k.data(), a.v.data(), a.attn.data(), a.lse.data(),
                      dattn.data(), T, dq.data(), dk.data(), dv.data());
    // RoPE is a rotation: its transpose rotates back.
    ops::ApplyRope(dq.data(), T, nh, hd, cos.data(), neg_sin.data());
    ops::ApplyRope(dk.data(), T, nkv, hd, cos.data(), neg_sin.data());
    ops::MatMul(ctx, dq.data(), T, w.q, dh.data());
    ops::MatMul(ctx, dk.data(), T, w.k, tmp.data());
    ops::Add(dh.data(), tmp.data(), T * d);
    ops::MatMul(ctx, dv.data(), T, w.v, tmp.data());
    ops::Add(dh.data(), tmp.data(), T * d);
    LoraParam* pq = find(LoraSite::kTextQ, li);
    LoraParam* pk = find(LoraSite::kTextK, li);
    LoraParam* pv = find(LoraSite::kTextV, li);
    if (pq || pk || pv) {
      ops::RmsNorm(a.xin.data(), T, d, l.input_norm.data(), c.rms_norm_eps, h.data());
      Transpose(h.data(), T, d, ht.data());
      LoraBackward(ctx, pq, s, ht.data(), a.lu[0], dq.data(), T, dh.data(), w0.lora);
      LoraBackward(ctx, pk, s, ht.data(), a.lu[1], dk.data(), T, dh.data(), w0.lora);
      LoraBackward(ctx, pv, s, ht.data(), a.lu[2], dv.data(), T, dh.data(), w0.lora);
    }
    RmsNormBackward(a.xin.data(), T, d, l.input_norm.data(), c.rms_norm_eps, dh.data(), dx.data());
  }
  return loss;
}

}  // namespace iris::train
