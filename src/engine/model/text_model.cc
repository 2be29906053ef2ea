#include "engine/model/text_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>

#include "base/check.h"
#include "base/thread_pool.h"
#include "engine/kernels/kernels.h"
#include "engine/model/weights.h"

namespace iris::model {

namespace {

// A forward pass's activations, kept by the thread that runs it from one pass to the next: a
// decode step is a few rows, and fresh buffers each step cost the allocator's zeroed pages
// (page faults on a new mapping) and a fill that every value overwrites anyway. A buffer grows
// to the largest pass (to the size asked, not doubled) and stays; after a pass whose buffers
// hold more than kKeepBytes (a long prompt) they are given back. ForwardBatch must not be
// entered again on a thread while its pass runs, and the pool's tasks get the buffers'
// pointers, never the workspace (theirs would be another thread's).
struct ForwardWorkspace {
  static constexpr size_t kKeepBytes = size_t{64} << 20;
  std::vector<float> x, h, q, k, v, attn, tmp, gate, up, cos, sin;

  // n floats of buf, not zeroed: every pass writes each value before it reads it. Checked
  // builds fill them with NaN, so that a value read before it is written shows in the logits.
  static float* Take(std::vector<float>& buf, size_t n) {
    ops::GrowScratch(buf, n);
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__)
    std::fill_n(buf.data(), n, std::numeric_limits<float>::quiet_NaN());
#endif
    return buf.data();
  }
  void ReleaseIfLarge() {
    size_t bytes = 0;
    for (const auto* b : {&x, &h, &q, &k, &v, &attn, &tmp, &gate, &up, &cos, &sin}) {
      bytes += b->capacity() * sizeof(float);
    }
    if (bytes <= kKeepBytes) return;
    for (auto* b : {&x, &h, &q, &k, &v, &attn, &tmp, &gate, &up, &cos, &sin}) {
      std::vector<float>().swap(*b);
    }
  }
};

}  // namespace

Result<std::string> TextPrefix(const formats::WeightStore& weights) {
  for (const char* p : {"model.text_model.", "text_model.", "model."}) {
    if (weights.Has(std::string(p) + "embed_tokens.weight")) return std::string(p);
  }
  return NotFound(weights.description() +
                  ": no text model embeddings (model.text_model.embed_tokens.weight)");
}

Result<TextModel> TextModel::Load(const formats::WeightStore& weights, const TextConfig& config,
                                  bool tie_word_embeddings, const WeightOptions& options) {
  TextModel m;
  m.config_ = config;
  IRIS_ASSIGN_OR_RETURN(std::string p, TextPrefix(weights));
  const int64_t d = config.hidden_size, f = config.intermediate_size, v = config.vocab_size;
  const int64_t qd = static_cast<int64_t>(config.num_attention_heads) * config.head_dim;
  const int64_t kvd = static_cast<int64_t>(config.num_key_value_heads) * config.head_dim;
  WeightBinder w(weights, options);
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    return w.Bind(name, shape);
  };
  if (tie_word_embeddings) {
    // The output layer in panels where the options pack it, so that the logits of a token do
    // not depend on what shares its step either; the table is then read a few rows a token,
    // as an untied one. Else the table is read whole as the output layer every token: in the
    // model's memory.
    IRIS_ASSIGN_OR_RETURN(std::optional<tensor::TensorView> head,
                          w.BindPanelsCopy(p + "embed_tokens.weight", {v, d}));
    if (head) {
      m.lm_head_ = *head;
      IRIS_ASSIGN_OR_RETURN(m.embed_, w.BindRows(p + "embed_tokens.weight", {v, d}));
    } else {
      IRIS_ASSIGN_OR_RETURN(m.embed_, w.BindTable(p + "embed_tokens.weight", {v, d}));
      m.lm_head_ = m.embed_;
    }
  } else {
    IRIS_ASSIGN_OR_RETURN(m.embed_, w.BindRows(p + "embed_tokens.weight", {v, d}));
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

void TextModel::Embed(std::span<const int32_t> ids, float* out, const LoraAdapter* adapter) const {
  const size_t d = static_cast<size_t>(config_.hidden_size);
  const size_t row_bytes = tensor::RowBytes(embed_.dtype, d);
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto* row =
        static_cast<const uint8_t*>(embed_.data) + static_cast<size_t>(ids[t]) * row_bytes;
    kernels::ConvertRowToF32(row, embed_.dtype, d, out + t * d);
  }
  if (adapter != nullptr) ApplyLoraEmbed(*adapter, ids, d, out);
}

Status TextModel::Forward(ops::ComputeContext& ctx, const float* embeds, size_t num_tokens,
                          KvCache& cache, bool all_logits, std::vector<float>* logits) const {
  if (!cache.Reserve(cache.length() + num_tokens) || !cache.PrepareAppend(num_tokens)) {
    return ResourceExhausted("KV cache: no memory for positions " + std::to_string(cache.length()) +
                             " to " + std::to_string(cache.length() + num_tokens - 1) +
                             " (the pool's budget is spent, or the machine refused the memory)");
  }
  const ForwardChunk chunk{embeds, num_tokens, &cache,
                           all_logits ? ForwardChunk::Logits::kAll : ForwardChunk::Logits::kLast};
  ForwardBatch(ctx, std::span<const ForwardChunk>(&chunk, 1), logits);
  return OkStatus();
}

void TextModel::ForwardBatch(ops::ComputeContext& ctx, std::span<const ForwardChunk> chunks,
                             std::vector<float>* logits) const {
  const TextConfig& c = config_;
  const size_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
  const size_t nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const size_t qd = nh * hd, kvd = nkv * hd;
  const size_t half = hd / 2;

  // Row offsets of the chunks in the batch, and the rows whose logits are wanted.
  std::vector<size_t> row0(chunks.size());
  std::vector<size_t> wanted;
  size_t R = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ForwardChunk& ch = chunks[i];
    IRIS_CHECK(ch.cache != nullptr && ch.num_tokens > 0);
    IRIS_CHECK(ch.cache->PrepareAppend(ch.num_tokens));
    row0[i] = R;
    if (ch.logits == ForwardChunk::Logits::kAll) {
      for (size_t t = 0; t < ch.num_tokens; ++t) wanted.push_back(R + t);
    } else if (ch.logits == ForwardChunk::Logits::kLast) {
      wanted.push_back(R + ch.num_tokens - 1);
    }
    R += ch.num_tokens;
  }

  thread_local ForwardWorkspace ws;
  struct ReleaseAtEnd {
    ForwardWorkspace& ws;
    ~ReleaseAtEnd() { ws.ReleaseIfLarge(); }
  } release_at_end{ws};
  float* const x = ForwardWorkspace::Take(ws.x, R * d);  // [R, d] residual stream
  for (size_t i = 0; i < chunks.size(); ++i) {
    std::copy_n(chunks[i].embeds, chunks[i].num_tokens * d, x + row0[i] * d);
  }
  float* const h = ForwardWorkspace::Take(ws.h, R * d);
  float* const q = ForwardWorkspace::Take(ws.q, R * qd);
  float* const k = ForwardWorkspace::Take(ws.k, R * kvd);
  float* const v = ForwardWorkspace::Take(ws.v, R * kvd);
  float* const attn = ForwardWorkspace::Take(ws.attn, R * qd);
  float* const tmp = ForwardWorkspace::Take(ws.tmp, R * d);
  float* const gate = ForwardWorkspace::Take(ws.gate, R * f);
  float* const up = ForwardWorkspace::Take(ws.up, R * f);
  float* const cos = ForwardWorkspace::Take(ws.cos, R * half);
  float* const sin = ForwardWorkspace::Take(ws.sin, R * half);
  for (size_t i = 0; i < chunks.size(); ++i) {
    ops::RopeTables(c.rope_theta, hd, chunks[i].cache->length(), chunks[i].num_tokens,
                    cos + row0[i] * half, sin + row0[i] * half);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Decoding sequences (a few new rows each) share one attention loop; a prompt chunk
  // attends over its sequence's blocks with the blocked kernel.
  std::vector<ops::DecodeQueries> decoding;
  std::vector<size_t> decoding_chunk;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].num_tokens < 4) decoding_chunk.push_back(i);
  }
  std::vector<const void*> kb, vb;  // a prompt chunk's key and value blocks
  // One element type for every cache of the batch (a scheduler's sequences share a pool).
  const tensor::DType kv_dtype =
      chunks.empty() ? tensor::DType::kF32 : chunks[0].cache->pool().dtype();
  for (const ForwardChunk& ch : chunks) IRIS_CHECK(ch.cache->pool().dtype() == kv_dtype);

  // The adapters' low-rank terms of one linear layer: out[rows] += (in·Aᵀ)·(s·B)ᵀ, once per
  // run of neighbouring chunks that share an adapter (their rows are contiguous).
  const bool any_adapter = std::any_of(
      chunks.begin(), chunks.end(), [](const ForwardChunk& ch) { return ch.adapter != nullptr; });
  auto lora = [&](LoraSite site, size_t layer, const float* in, size_t in_dim, float* out,
                  size_t out_dim) {
    if (!any_adapter) return;
    for (size_t i = 0; i < chunks.size();) {
      const LoraAdapter* a = chunks[i].adapter;
      size_t j = i + 1, rows = chunks[i].num_tokens;
      while (j < chunks.size() && chunks[j].adapter == a) rows += chunks[j++].num_tokens;
      if (a != nullptr) {
        if (const LoraLinear* l = a->Find(site, layer)) {
          ApplyLora(ctx, *l, in + row0[i] * in_dim, rows, out + row0[i] * out_dim);
        }
      }
      i = j;
    }
  };

  // The row-wise steps (norms, residual adds, RoPE and the cache writes, the activation) split
  // across the pool by rows, as the vision tower's do: each row's numbers are those of one
  // call, and a batch of many rows leaves no core waiting on them. A few rows (one decoding
  // sequence) stay on the calling thread: chunks hold at least ~4K values.
  const size_t min_rows = std::max<size_t>(1, 4096 / d);
  auto by_rows = [&](const std::function<void(size_t begin, size_t end)>& fn) {
    ParallelFor(ctx.pool, R, min_rows, [&](size_t b, size_t e, int) { fn(b, e); });
  };
  std::vector<size_t> chunk_of(R);  // the chunk each row belongs to
  for (size_t i = 0; i < chunks.size(); ++i) {
    std::fill_n(chunk_of.begin() + static_cast<std::ptrdiff_t>(row0[i]), chunks[i].num_tokens, i);
  }
  if (!layers_.empty()) {
    by_rows([&](size_t b, size_t e) {
      ops::RmsNorm(x + b * d, e - b, d, layers_[0].input_norm.data(), c.rms_norm_eps, h + b * d);
    });
  }
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    const int layer = static_cast<int>(li);
    const ops::MatMulOut qkv[] = {{&l.q, q}, {&l.k, k}, {&l.v, v}};
    ops::MatMuls(ctx, h, R, qkv);
    lora(LoraSite::kTextQ, li, h, d, q, qd);
    lora(LoraSite::kTextK, li, h, d, k, kvd);
    lora(LoraSite::kTextV, li, h, d, v, kvd);
    by_rows([&](size_t b, size_t e) {
      ops::ApplyRope(q + b * qd, e - b, nh, hd, cos + b * half, sin + b * half);
      ops::ApplyRope(k + b * kvd, e - b, nkv, hd, cos + b * half, sin + b * half);
      for (size_t r = b; r < e; ++r) {  // (each row its own position: no two threads share one)
        const ForwardChunk& ch = chunks[chunk_of[r]];
        ch.cache->Write(layer, ch.cache->length() + (r - row0[chunk_of[r]]), k + r * kvd,
                        v + r * kvd);
      }
    });
    decoding.clear();
    for (size_t i : decoding_chunk) {
      const size_t r = row0[i];
      decoding.push_back(
          {q + r * qd, chunks[i].num_tokens, chunks[i].cache->length(), attn + r * qd});
    }
    if (!decoding.empty()) {
      ops::DecodeAttention(
          ctx, decoding, nh, nkv, hd, scale, KvPool::kBlockTokens, kv_dtype,
          [&](size_t s, std::vector<const void*>& keys, std::vector<const void*>& values) {
            const ops::DecodeQueries& dq = decoding[s];
            chunks[decoding_chunk[s]].cache->BlockRows(layer, dq.pos0 + dq.num_tokens, keys,
                                                       values);
          });
    }
    for (size_t i = 0; i < chunks.size(); ++i) {
      const ForwardChunk& ch = chunks[i];
      if (ch.num_tokens < 4) continue;
      const size_t r = row0[i], pos0 = ch.cache->length(), total = pos0 + ch.num_tokens;
      kb.clear();
      vb.clear();
      ch.cache->BlockRows(layer, total, kb, vb);
      ops::CausalAttentionPaged(ctx, q + r * qd, ch.num_tokens, pos0, kb, vb, kv_dtype,
                                KvPool::kBlockTokens, nh, nkv, hd, scale, attn + r * qd);
    }
    ops::MatMul(ctx, attn, R, l.o, tmp);
    lora(LoraSite::kTextO, li, attn, qd, tmp, d);
    by_rows([&](size_t b, size_t e) {
      ops::Add(x + b * d, tmp + b * d, (e - b) * d);
      ops::RmsNorm(x + b * d, e - b, d, l.post_norm.data(), c.rms_norm_eps, h + b * d);
    });
    const ops::MatMulOut gate_up[] = {{&l.gate, gate}, {&l.up, up}};
    ops::MatMuls(ctx, h, R, gate_up);
    lora(LoraSite::kTextGate, li, h, d, gate, f);
    lora(LoraSite::kTextUp, li, h, d, up, f);
    // Chunks of whole vectors of the widest target, so each value takes the path (vector or
    // scalar tail) it takes in one call; at least a row (one row stays on this thread).
    ParallelFor(
        ctx.pool, R * f, std::max<size_t>(size_t{1} << 14, f),
        [&](size_t b, size_t e, int) { ops::SiluMul(gate + b, up + b, e - b); },
        kernels::AttentionMaxLanes());
    ops::MatMul(ctx, gate, R, l.down, tmp);
    lora(LoraSite::kTextDown, li, gate, f, tmp, d);
    // The residual add, and the next layer's input norm on the same rows.
    const float* next_norm = li + 1 < layers_.size() ? layers_[li + 1].input_norm.data() : nullptr;
    by_rows([&](size_t b, size_t e) {
      ops::Add(x + b * d, tmp + b * d, (e - b) * d);
      if (next_norm != nullptr) {
        ops::RmsNorm(x + b * d, e - b, d, next_norm, c.rms_norm_eps, h + b * d);
      }
    });
  }
  for (const ForwardChunk& ch : chunks) ch.cache->set_length(ch.cache->length() + ch.num_tokens);

  for (size_t w = 0; w < wanted.size(); ++w) {
    ops::RmsNorm(x + wanted[w] * d, 1, d, final_norm_.data(), c.rms_norm_eps, h + w * d);
  }
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  logits->resize(wanted.size() * vocab);
  if (wanted.empty()) return;
  ops::MatMul(ctx, h, wanted.size(), lm_head_, logits->data());
  if (!any_adapter) return;
  // An adapter's lm_head (a whole table from modules_to_save, or low-rank terms) for the
  // logits rows of its chunks, which are contiguous too.
  size_t w0 = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    size_t n = 0;
    while (w0 + n < wanted.size() && wanted[w0 + n] >= row0[i] &&
           wanted[w0 + n] < row0[i] + chunks[i].num_tokens) {
      ++n;
    }
    const LoraAdapter* a = chunks[i].adapter;
    if (a != nullptr && n > 0) {
      float* out = logits->data() + w0 * vocab;
      if (!a->lm_head().empty()) {
        const tensor::TensorView table{
            tensor::DType::kF32, {c.vocab_size, c.hidden_size}, a->lm_head().data()};
        ops::MatMul(ctx, h + w0 * d, n, table, out);
      }
      if (const LoraLinear* l = a->Find(LoraSite::kLmHead, 0)) {
        ApplyLora(ctx, *l, h + w0 * d, n, out);
      }
    }
    w0 += n;
  }
}

}  // namespace iris::model
