#include "engine/model/vision_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "base/thread_pool.h"
#include "engine/kernels/kernels.h"
#include "engine/model/weights.h"

namespace iris::model {

namespace {

Result<std::string> VisionPrefix(const formats::WeightStore& w) {
  for (const char* p : {"model.vision_model.", "vision_model."}) {
    if (w.Has(std::string(p) + "embeddings.patch_embedding.weight")) return std::string(p);
  }
  return NotFound(w.description() +
                  ": no vision tower (model.vision_model.embeddings.patch_embedding.weight)");
}

}  // namespace

Status MergeImageFeatures(std::span<const int32_t> ids, int32_t image_token_id,
                          std::span<const float> features, size_t dim, float* embeds) {
  const size_t rows = features.size() / dim;
  size_t next = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != image_token_id) continue;
    if (next == rows) break;
    std::memcpy(embeds + i * dim, features.data() + next * dim, dim * sizeof(float));
    ++next;
  }
  const size_t count = static_cast<size_t>(std::count(ids.begin(), ids.end(), image_token_id));
  if (count != rows) {
    return InvalidArgument("the prompt has " + std::to_string(count) +
                           " <image> tokens but the "
                           "images give " +
                           std::to_string(rows) + " feature rows");
  }
  return OkStatus();
}

void PixelShuffle(const float* in, int n, int dim, int s, float* out) {
  const int m = n / s;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < m; ++j) {
      float* o = out + static_cast<size_t>(i * m + j) * s * s * dim;
      for (int dh = 0; dh < s; ++dh) {
        for (int dw = 0; dw < s; ++dw) {
          const float* src = in + static_cast<size_t>((i * s + dh) * n + (j * s + dw)) * dim;
          std::memcpy(o + static_cast<size_t>(dh * s + dw) * dim, src, dim * sizeof(float));
        }
      }
    }
  }
}

Result<VisionModel> VisionModel::Load(const formats::WeightStore& weights,
                                      const ModelConfig& config, ThreadPool* pool,
                                      WeightOptions::Panels panels) {
  VisionModel m;
  m.config_ = config.vision;
  m.scale_factor_ = config.scale_factor;
  m.text_dim_ = config.text.hidden_size;
  const VisionConfig& c = config.vision;
  const int64_t d = c.hidden_size, inter = c.intermediate_size, p = c.patch_size;
  const int64_t n = c.image_size / c.patch_size;
  if (n % config.scale_factor != 0) {
    return InvalidArgument("config: " + std::to_string(n) +
                           " patches per side is not a multiple "
                           "of scale_factor " +
                           std::to_string(config.scale_factor));
  }
  if (d % c.num_attention_heads != 0) {
    return InvalidArgument(
        "config: vision_config.hidden_size is not a multiple of num_attention_heads");
  }
  if (c.num_channels != 3) return Unimplemented("config: vision_config.num_channels must be 3");
  if (c.hidden_act != "gelu_pytorch_tanh") {
    return Unimplemented("config: vision_config.hidden_act '" + c.hidden_act +
                         "' (only gelu_pytorch_tanh)");
  }
  IRIS_ASSIGN_OR_RETURN(std::string pre, VisionPrefix(weights));
  // Real hub checkpoints are F32 with bf16 values: narrow them as the text model does.
  WeightOptions options;
  options.pool = pool;
  options.panels = panels;
  WeightBinder w(weights, options);
  auto matrix = [&](const std::string& name, std::vector<int64_t> shape) {
    return w.Bind(name, shape);
  };
  auto vec = [&](const std::string& name, int64_t size) { return w.BindF32(name, {size}); };
  IRIS_ASSIGN_OR_RETURN(tensor::TensorView conv,
                        matrix(pre + "embeddings.patch_embedding.weight", {d, 3, p, p}));
  m.patch_weight_ = conv;
  m.patch_weight_.shape = {d, 3 * p * p};  // same bytes: the kernel flattened (c, ky, kx)
  IRIS_ASSIGN_OR_RETURN(m.patch_bias_, vec(pre + "embeddings.patch_embedding.bias", d));
  IRIS_ASSIGN_OR_RETURN(m.positions_,
                        w.BindF32(pre + "embeddings.position_embedding.weight", {n * n, d}));
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    const std::string lp = pre + "encoder.layers." + std::to_string(i) + ".";
    Layer l;
    IRIS_ASSIGN_OR_RETURN(l.q, matrix(lp + "self_attn.q_proj.weight", {d, d}));
    IRIS_ASSIGN_OR_RETURN(l.k, matrix(lp + "self_attn.k_proj.weight", {d, d}));
    IRIS_ASSIGN_OR_RETURN(l.v, matrix(lp + "self_attn.v_proj.weight", {d, d}));
    IRIS_ASSIGN_OR_RETURN(l.o, matrix(lp + "self_attn.out_proj.weight", {d, d}));
    IRIS_ASSIGN_OR_RETURN(l.fc1, matrix(lp + "mlp.fc1.weight", {inter, d}));
    IRIS_ASSIGN_OR_RETURN(l.fc2, matrix(lp + "mlp.fc2.weight", {d, inter}));
    IRIS_ASSIGN_OR_RETURN(l.q_bias, vec(lp + "self_attn.q_proj.bias", d));
    IRIS_ASSIGN_OR_RETURN(l.k_bias, vec(lp + "self_attn.k_proj.bias", d));
    IRIS_ASSIGN_OR_RETURN(l.v_bias, vec(lp + "self_attn.v_proj.bias", d));
    IRIS_ASSIGN_OR_RETURN(l.o_bias, vec(lp + "self_attn.out_proj.bias", d));
    IRIS_ASSIGN_OR_RETURN(l.fc1_bias, vec(lp + "mlp.fc1.bias", inter));
    IRIS_ASSIGN_OR_RETURN(l.fc2_bias, vec(lp + "mlp.fc2.bias", d));
    IRIS_ASSIGN_OR_RETURN(l.ln1_w, vec(lp + "layer_norm1.weight", d));
    IRIS_ASSIGN_OR_RETURN(l.ln1_b, vec(lp + "layer_norm1.bias", d));
    IRIS_ASSIGN_OR_RETURN(l.ln2_w, vec(lp + "layer_norm2.weight", d));
    IRIS_ASSIGN_OR_RETURN(l.ln2_b, vec(lp + "layer_norm2.bias", d));
    m.layers_.push_back(std::move(l));
  }
  IRIS_ASSIGN_OR_RETURN(m.post_ln_w_, vec(pre + "post_layernorm.weight", d));
  IRIS_ASSIGN_OR_RETURN(m.post_ln_b_, vec(pre + "post_layernorm.bias", d));
  const int64_t s = config.scale_factor;
  std::string proj = "model.connector.modality_projection.proj.weight";
  if (!weights.Has(proj) && weights.Has("connector.modality_projection.proj.weight")) {
    proj = "connector.modality_projection.proj.weight";
  }
  IRIS_ASSIGN_OR_RETURN(m.projection_, matrix(proj, {config.text.hidden_size, d * s * s}));
  m.owned_ = w.TakeOwned();
  return m;
}

void VisionModel::EncodeTile(ops::ComputeContext& ctx, const float* pixels, float* hidden,
                             float* features, const LoraAdapter* adapter) const {
  // The scratch of the previous tile on this thread (tens of MB: fresh pages for every tile
  // cost more than its norms and activations).
  thread_local TileState state;
  BeginTile(ctx, pixels, state, adapter);
  ContinueTile(ctx, state, layers_.size());
  FinishTile(ctx, state, hidden, features);
}

void VisionModel::BeginTile(ops::ComputeContext& ctx, const float* pixels, TileState& state,
                            const LoraAdapter* adapter) const {
  const VisionConfig& c = config_;
  const size_t d = c.hidden_size, p = c.patch_size;
  const size_t n = c.image_size / c.patch_size, num = n * n, tile = c.image_size;
  const size_t kdim = 3 * p * p;

  // Patches as rows in the conv kernel's (channel, ky, kx) order. Pixels past n·p (the 2.2B
  // tower's last 6 rows and columns) are never read, as in the valid convolution.
  std::vector<float>& patches = state.mlp;  // free until the first layer
  patches.resize(std::max(patches.size(), num * kdim));
  for (size_t py = 0; py < n; ++py) {
    for (size_t px = 0; px < n; ++px) {
      float* row = patches.data() + (py * n + px) * kdim;
      for (size_t ch = 0; ch < 3; ++ch) {
        for (size_t ky = 0; ky < p; ++ky) {
          const float* src = pixels + (ch * tile + py * p + ky) * tile + px * p;
          std::memcpy(row + (ch * p + ky) * p, src, p * sizeof(float));
        }
      }
    }
  }
  state.x.resize(num * d);  // [num_patches, d] residual stream, written whole below
  state.next_layer = 0;
  state.adapter = adapter;
  ops::MatMul(ctx, patches.data(), num, patch_weight_, state.x.data(), patch_bias_.data());
  ops::Add(state.x.data(), positions_.data(), num * d);  // position ids 0..num-1 (full tiles)
}

bool VisionModel::ContinueTile(ops::ComputeContext& ctx, TileState& state,
                               size_t max_layers) const {
  const VisionConfig& c = config_;
  const size_t d = c.hidden_size, inter = c.intermediate_size;
  const size_t n = c.image_size / c.patch_size, num = n * n;
  const size_t heads = c.num_attention_heads, head_dim = d / heads;
  float* x = state.x.data();
  // Scratch kept in the state from layer to layer and tile to tile (fresh pages cost more than
  // a layer's norms and activations on some machines).
  for (std::vector<float>* buf : {&state.h, &state.q, &state.k, &state.v, &state.attn}) {
    buf->resize(num * d);
  }
  state.mlp.resize(num * inter);
  std::vector<float>&h = state.h, &q = state.q, &k = state.k, &v = state.v, &attn = state.attn;
  std::vector<float>& mlp = state.mlp;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const LoraAdapter* adapter = state.adapter;
  // The row-wise steps (norms, the residual adds, the activation) split across the pool by
  // rows: the same numbers, and no core left waiting on them.
  auto by_rows = [&](const std::function<void(size_t begin, size_t end)>& fn) {
    ParallelFor(ctx.pool, num, 64, [&](size_t b, size_t e, int) { fn(b, e); });
  };
  for (size_t ran = 0; ran < max_layers && state.next_layer < layers_.size(); ++ran) {
    const size_t li = state.next_layer++;
    const Layer& l = layers_[li];
    auto lora = [&](LoraSite site, const float* in, float* out) {
      if (adapter == nullptr) return;
      if (const LoraLinear* a = adapter->Find(site, li)) ApplyLora(ctx, *a, in, num, out);
    };
    by_rows([&](size_t b, size_t e) {
      ops::LayerNorm(x + b * d, e - b, d, l.ln1_w.data(), l.ln1_b.data(), c.layer_norm_eps,
                     h.data() + b * d);
    });
    ops::MatMul(ctx, h.data(), num, l.q, q.data(), l.q_bias.data());
    ops::MatMul(ctx, h.data(), num, l.k, k.data(), l.k_bias.data());
    ops::MatMul(ctx, h.data(), num, l.v, v.data(), l.v_bias.data());
    lora(LoraSite::kVisionQ, h.data(), q.data());
    lora(LoraSite::kVisionK, h.data(), k.data());
    lora(LoraSite::kVisionV, h.data(), v.data());
    ops::FullAttention(ctx, q.data(), k.data(), v.data(), num, heads, head_dim, scale, attn.data());
    ops::MatMul(ctx, attn.data(), num, l.o, h.data(), l.o_bias.data());
    lora(LoraSite::kVisionO, attn.data(), h.data());
    by_rows([&](size_t b, size_t e) {
      ops::Add(x + b * d, h.data() + b * d, (e - b) * d);
      ops::LayerNorm(x + b * d, e - b, d, l.ln2_w.data(), l.ln2_b.data(), c.layer_norm_eps,
                     h.data() + b * d);
    });
    ops::MatMul(ctx, h.data(), num, l.fc1, mlp.data(), l.fc1_bias.data());
    lora(LoraSite::kVisionFc1, h.data(), mlp.data());
    // Chunks of whole vectors of the widest target, so each value takes the path (vector or
    // scalar tail) it takes in one call.
    ParallelFor(
        ctx.pool, num * inter, 1 << 14,
        [&](size_t b, size_t e, int) { ops::GeluTanh(mlp.data() + b, e - b); },
        kernels::AttentionMaxLanes());
    ops::MatMul(ctx, mlp.data(), num, l.fc2, h.data(), l.fc2_bias.data());
    lora(LoraSite::kVisionFc2, mlp.data(), h.data());
    by_rows([&](size_t b, size_t e) { ops::Add(x + b * d, h.data() + b * d, (e - b) * d); });
  }
  return state.next_layer == layers_.size();
}

void VisionModel::FinishTile(ops::ComputeContext& ctx, TileState& state, float* hidden,
                             float* features) const {
  const VisionConfig& c = config_;
  const size_t d = c.hidden_size;
  const size_t n = c.image_size / c.patch_size, num = n * n;
  std::vector<float>& h = state.h;         // num × d since ContinueTile
  std::vector<float>& shuffled = state.q;  // [(n/s)², s²·d]: num × d too
  h.resize(num * d);
  shuffled.resize(num * d);
  ops::LayerNorm(state.x.data(), num, d, post_ln_w_.data(), post_ln_b_.data(), c.layer_norm_eps,
                 h.data());
  if (hidden) std::memcpy(hidden, h.data(), num * d * sizeof(float));
  const size_t s = static_cast<size_t>(scale_factor_);
  PixelShuffle(h.data(), static_cast<int>(n), static_cast<int>(d), static_cast<int>(s),
               shuffled.data());
  ops::MatMul(ctx, shuffled.data(), num / (s * s), projection_, features);
  if (state.adapter != nullptr) {
    if (const LoraLinear* a = state.adapter->Find(LoraSite::kConnector, 0)) {
      ApplyLora(ctx, *a, shuffled.data(), num / (s * s), features);
    }
  }
  state.next_layer = 0;  // the buffers stay for the next tile
  state.adapter = nullptr;
}

}  // namespace iris::model
