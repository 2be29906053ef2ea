#include "engine/ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

#include "base/check.h"
#include "engine/kernels/kernels.h"
#include "engine/tensor/quant.h"

namespace iris::ops {

namespace {

// Runs body over [0, n) in chunks of at least `grain` on the context's pool (inline
// without one).
void Parallel(ComputeContext& ctx, size_t grain, size_t n,
              const std::function<void(size_t, size_t, int)>& body, size_t align = 1) {
  ParallelFor(ctx.pool, n, grain, body, align);
}

// True when products with weights a and b take their activations the same way, so that one
// MatMulsWithBias runs both: the same type, or two panel layouts (a Q4_K file's v is Q6_K
// where its q and k are Q4_K).
bool SharesActivations(tensor::DType a, tensor::DType b) {
  return a == b || (tensor::IsPanelType(a) && tensor::IsPanelType(b));
}

// The products of MatMuls; `bias` (one product only) is added to its rows.
void MatMulsWithBias(ComputeContext& ctx, const float* x, size_t num_tokens,
                     std::span<const MatMulOut> products, const float* bias) {
  IRIS_CHECK(!products.empty());
  IRIS_CHECK(bias == nullptr || products.size() == 1);
  const tensor::TensorView& w = *products[0].w;
  IRIS_CHECK(w.shape.size() == 2);
  const size_t k_dim = static_cast<size_t>(w.shape[1]);
  // Rows of every product, end to end: product i holds rows [first[i], first[i + 1]).
  thread_local std::vector<size_t> first;
  first.assign(1, 0);
  for (const MatMulOut& p : products) {
    IRIS_CHECK(p.w->shape.size() == 2 && static_cast<size_t>(p.w->shape[1]) == k_dim &&
               SharesActivations(p.w->dtype, w.dtype));
    first.push_back(first.back() + static_cast<size_t>(p.w->shape[0]));
  }
  const size_t n_total = first.back();
  // Grain: enough rows that a task is worth a wake-up; a multiple of the 16-row block.
  const size_t grain = std::max<size_t>(16, (64 * 1024 / std::max<size_t>(k_dim, 1)) & ~size_t{15});
  // Q8_0 weights: the activations are quantized once here, then every row range multiplies
  // int8 by int8 (kernels::MatMulRowsQ8_0).
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> xd;
  thread_local std::vector<int32_t> xs, xs16;
  const bool q8 = w.dtype == tensor::DType::kQ8_0;
  const bool q8x = w.dtype == tensor::DType::kQ8_0x;
  const bool q8p = tensor::IsPanelType(w.dtype);  // the panel layouts: activations with sums
  // kQ6_Kp also takes the sums of each half block.
  const bool halves = std::any_of(products.begin(), products.end(), [](const MatMulOut& p) {
    return p.w->dtype == tensor::DType::kQ6_Kp;
  });
  // Block types the binder never leaves unconverted (kQ4_0 rows, the K formats as files hold
  // them) have no kernel here.
  IRIS_CHECK_MSG(!tensor::IsBlockType(w.dtype) || q8 || q8x || q8p,
                 "MatMul: no kernel multiplies weights of this block type");
  if (q8 || q8x || q8p) {
    IRIS_CHECK(k_dim % 32 == 0);
    // Rows of activations as the weights lay theirs out (kQ8_0x: padded with zeros).
    const size_t qs = q8x ? tensor::Q8xValueBytes(k_dim) : k_dim;
    const size_t ds = q8x ? tensor::Q8xScaleBytes(k_dim) / 2 : k_dim / 32;
    // Grown, never shrunk: a decode step after a prefill rewrites no more than it uses.
    if (xq.size() < num_tokens * qs) xq.resize(num_tokens * qs);
    if (xd.size() < num_tokens * ds) xd.resize(num_tokens * ds);
    if (q8p && xs.size() < num_tokens * ds) xs.resize(num_tokens * ds);
    for (size_t t = 0; t < num_tokens; ++t) {
      kernels::QuantizeRowsQ8(x + t * k_dim, k_dim, 1, k_dim, xq.data() + t * qs,
                              xd.data() + t * ds, q8p ? xs.data() + t * ds : nullptr);
      std::fill(xq.data() + t * qs + k_dim, xq.data() + (t + 1) * qs, int8_t{0});
      std::fill(xd.data() + t * ds + k_dim / 32, xd.data() + (t + 1) * ds, 0.0f);
    }
    if (halves) {
      if (xs16.size() < num_tokens * k_dim / 16) xs16.resize(num_tokens * k_dim / 16);
      kernels::SumsPer16(xq.data(), num_tokens * k_dim, xs16.data());
    }
  }
  const int8_t* q = xq.data();
  const float* d = xd.data();
  const int32_t* sums = xs.data();
  const int32_t* half_sums = halves ? xs16.data() : nullptr;
  const bool float_weights = !q8 && !q8x && !q8p;
  const bool bf16 = ctx.bf16 && float_weights;  // any number of tokens
  // Weights packed at load (WeightOptions::panels) go through their panels at every number of
  // tokens; other float weights through panels packed per call from a number of tokens on
  // (cut ranges at whole panels).
  const bool packed = tensor::IsHalfPanelType(w.dtype);
  const bool panels = float_weights && !packed &&
                      num_tokens >= (bf16 ? kernels::kBf16GemmMinTokens : kernels::kGemmMinTokens);
  // bf16 products: the activations rounded once, read by every range of features.
  thread_local std::vector<uint32_t> xb;
  if (bf16) {
    xb.resize(num_tokens * kernels::Bf16Pairs(k_dim));
    kernels::PackActivationsBf16(x, k_dim, num_tokens, k_dim, xb.data());
  }
  const uint32_t* xbp = xb.data();
  const size_t* firsts = first.data();
  auto rows_of = [&](size_t i, size_t b, size_t e) {  // rows [b, e) of product i
    const void* wd = products[i].w->data;
    const size_t n_dim = firsts[i + 1] - firsts[i];
    float* out = products[i].out;
    if (q8p) {
      kernels::MatMulRowsPanels(products[i].w->dtype, q, d, sums, num_tokens, wd, k_dim, b, e,
                                out + b, n_dim, half_sums);
    } else if (q8x) {
      kernels::MatMulRowsQ8_0x(q, d, num_tokens, wd, k_dim, b, e, out + b, n_dim);
    } else if (q8) {
      kernels::MatMulRowsQ8_0(q, d, num_tokens, wd, k_dim, b, e, out + b, n_dim);
    } else if (bf16) {
      kernels::MatMulRowsBf16Packed(xbp, num_tokens, wd, w.dtype, k_dim, b, e, out + b, n_dim);
    } else {
      kernels::MatMulRows(x, k_dim, num_tokens, wd, w.dtype, k_dim, b, e, out + b, n_dim);
    }
    if (bias) {
      for (size_t t = 0; t < num_tokens; ++t) {
        float* o = out + t * n_dim;
        for (size_t n = b; n < e; ++n) o[n] += bias[n];
      }
    }
  };
  auto body = [&](size_t b, size_t e, int) {
    for (size_t i = 0; i < products.size(); ++i) {
      const size_t lo = std::max(b, firsts[i]), hi = std::min(e, firsts[i + 1]);
      if (lo < hi) rows_of(i, lo - firsts[i], hi - firsts[i]);
    }
  };
  // A prompt's float weights go through packed panels: cut the range at whole panels (of
  // each product where the products before it have whole panels of rows; elsewhere a cut
  // costs one partial panel, the numbers are the same).
  // Panel ranges are whole panels of 16 rows (every product has whole panels).
  // Packed weights are whole groups of 16 rows (every product has whole groups).
  Parallel(ctx, grain, n_total, body,
           panels || packed ? kernels::kMatMulRowAlign
           : q8p            ? tensor::kQ8PanelRows
                            : 1);
}

}  // namespace

void MatMul(ComputeContext& ctx, const float* x, size_t num_tokens, const tensor::TensorView& w,
            float* out, const float* bias) {
  const MatMulOut one{&w, out};
  MatMulsWithBias(ctx, x, num_tokens, std::span<const MatMulOut>(&one, 1), bias);
}

void MatMuls(ComputeContext& ctx, const float* x, size_t num_tokens,
             std::span<const MatMulOut> products) {
  const bool one_dtype = std::all_of(products.begin(), products.end(), [&](const MatMulOut& p) {
    return SharesActivations(p.w->dtype, products.front().w->dtype);
  });
  if (one_dtype) {
    MatMulsWithBias(ctx, x, num_tokens, products, nullptr);
    return;
  }
  for (const MatMulOut& p : products) MatMul(ctx, x, num_tokens, *p.w, p.out);
}

void RmsNorm(const float* x, size_t num_tokens, size_t dim, const float* weight, float eps,
             float* out) {
  for (size_t t = 0; t < num_tokens; ++t) {
    const float* xr = x + t * dim;
    float* o = out + t * dim;
    float ss = kernels::DotF32(xr, xr, dim);
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (size_t i = 0; i < dim; ++i) o[i] = weight[i] * (xr[i] * inv);
  }
}

void LayerNorm(const float* x, size_t num_tokens, size_t dim, const float* weight,
               const float* bias, float eps, float* out) {
  for (size_t t = 0; t < num_tokens; ++t) {
    const float* xr = x + t * dim;
    float* o = out + t * dim;
    double mean = 0;
    for (size_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= static_cast<double>(dim);
    double var = 0;
    for (size_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(dim);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (size_t i = 0; i < dim; ++i) o[i] = (xr[i] - m) * inv * weight[i] + bias[i];
  }
}

// HF "default" RoPE: inv_freq[i] = 1 / θ^(2i/d) in f32, angle = f32(pos) · inv_freq[i].
void RopeTables(double theta, size_t head_dim, size_t pos0, size_t num_tokens, float* cos_out,
                float* sin_out) {
  const size_t half = head_dim / 2;
  std::vector<float> inv_freq(half);
  for (size_t i = 0; i < half; ++i) {
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / static_cast<float>(std::pow(static_cast<double>(static_cast<float>(theta)),
                                                     static_cast<double>(expo)));
  }
  for (size_t t = 0; t < num_tokens; ++t) {
    const float pos = static_cast<float>(pos0 + t);
    for (size_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];
      cos_out[t * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin_out[t * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

void ApplyRope(float* x, size_t num_tokens, size_t num_heads, size_t head_dim, const float* cos,
               const float* sin) {
  const size_t half = head_dim / 2;
  for (size_t t = 0; t < num_tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (size_t h = 0; h < num_heads; ++h) {
      float* v = x + (t * num_heads + h) * head_dim;
      for (size_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void SiluMul(float* gate, const float* up, size_t n) { kernels::SiluMul(gate, up, n); }

void GeluTanh(float* x, size_t n) { kernels::GeluTanh(x, n); }

void Add(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void Softmax(float* x, size_t n) {
  float m = -INFINITY;
  for (size_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

void GrowScratch(std::vector<float>& buf, size_t n) {
  if (buf.size() >= n) return;
  std::vector<float>().swap(buf);
  buf.resize(n);
}

namespace {

size_t RoundUp(size_t n, size_t m) { return (n + m - 1) / m * m; }

// Row stride of transposed keys: a multiple of the vector width, but never a multiple of
// 4 KiB, whose rows would all fall into the same L1 sets as the kernel walks down them.
size_t KeyStride(size_t num_keys) {
  size_t stride = RoundUp(num_keys, kernels::AttentionMaxLanes());
  if ((stride * sizeof(float)) % 4096 == 0) stride += kernels::AttentionMaxLanes();
  return stride;
}

// Scratch kept across calls (attention's packed keys and values): at most this many floats
// stay allocated after a call.
constexpr size_t kKeepScratchFloats = size_t{8} << 20;  // 32 MiB

// Where key (or value) j of kv head h is: blocks[j / block_keys] + h * head_step +
// (j % block_keys) * row_step elements of `dtype` (kernels::IsKvDType). Rows of one array, kv
// heads side by side, are one block of every key (Rows); a paged cache is blocks of block_keys
// positions, head by head (Paged).
struct KvRows {
  const void* const* blocks;
  size_t block_keys, head_step, row_step;
  tensor::DType dtype = tensor::DType::kF32;

  // `one` points at the rows' start (f32).
  static KvRows Rows(const void* const* one, size_t stride, size_t head_dim) {
    return {one, SIZE_MAX, head_dim, stride};
  }
  static KvRows Paged(const void* const* blocks, size_t block_keys, size_t head_dim,
                      tensor::DType dtype) {
    return {blocks, block_keys, block_keys * head_dim, head_dim, dtype};
  }
  // Where kv head h's rows of block b start.
  const void* Head(size_t b, size_t h) const {
    return static_cast<const char*>(blocks[b]) + h * head_step * tensor::DTypeSize(dtype);
  }
  const void* Row(size_t j, size_t h) const {
    return static_cast<const char*>(Head(j / block_keys, h)) +
           j % block_keys * row_step * tensor::DTypeSize(dtype);
  }
};

// Packs kv head h's keys (j < num_keys) into the panel layout of kernels::AttentionHead for
// `stride` keys; padding keys are zero.
void PackKeys(const KvRows& k, size_t h, size_t num_keys, size_t head_dim, size_t stride,
              float* kt) {
  constexpr size_t kP = kernels::AttentionMaxLanes();
  thread_local std::vector<float> widened;  // an f16 row widened (empty for f32 rows)
  widened.resize(k.dtype == tensor::DType::kF32 ? 0 : head_dim);
  for (size_t j0 = 0; j0 < stride; j0 += kP) {
    float* panel = kt + (j0 / kP) * head_dim * kP;
    for (size_t jj = 0; jj < kP; ++jj) {
      const size_t j = j0 + jj;
      const float* row = nullptr;
      if (j < num_keys && widened.empty()) {
        row = static_cast<const float*>(k.Row(j, h));
      } else if (j < num_keys) {
        kernels::ConvertRowToF32(k.Row(j, h), k.dtype, head_dim, widened.data());
        row = widened.data();
      }
      for (size_t d = 0; d < head_dim; ++d) panel[d * kP + jj] = row != nullptr ? row[d] : 0.0f;
    }
  }
}

// Kv head h's values copied contiguous [j * head_dim + d] (widened to f32).
void PackValues(const KvRows& v, size_t h, size_t num_keys, size_t head_dim, float* out) {
  for (size_t j = 0; j < num_keys; ++j) {
    kernels::ConvertRowToF32(v.Row(j, h), v.dtype, head_dim, out + j * head_dim);
  }
}

// Attention of num_q queries (rows of q_stride floats, heads side by side) over num_keys
// keys and values (where KvRows says): keys packed and values made contiguous once per kv
// head, then blocks of queries per head. Query i sees keys [0, causal_base + i] (all keys
// when causal_base is SIZE_MAX). out rows like q.
void BlockAttention(ComputeContext& ctx, const float* q, size_t q_stride, size_t num_q,
                    const KvRows& k, const KvRows& v, size_t num_keys, size_t num_heads,
                    size_t num_kv_heads, size_t head_dim, float scale, size_t causal_base,
                    float* out) {
  const size_t group = num_heads / num_kv_heads;
  const size_t padded = KeyStride(num_keys);
  // Kept from call to call, grown and never shrunk below 32 MiB (every element used is written
  // below, so they are not zeroed again): a vision tile's layers, or a prompt's chunks, would
  // otherwise each take and zero megabytes of fresh pages. (Pointers, not the thread_local
  // names, go into the loops: on a worker the names would be the worker's own buffers.)
  thread_local std::vector<float> kt_buf, vp_buf;
  GrowScratch(kt_buf, num_kv_heads * head_dim * padded);
  GrowScratch(vp_buf, num_kv_heads * head_dim * num_keys);
  float* const kt = kt_buf.data();
  float* const vp = vp_buf.data();
  Parallel(ctx, 1, num_kv_heads, [&](size_t b, size_t e, int) {
    for (size_t kvh = b; kvh < e; ++kvh) {
      PackKeys(k, kvh, num_keys, head_dim, padded, kt + kvh * head_dim * padded);
      PackValues(v, kvh, num_keys, head_dim, vp + kvh * head_dim * num_keys);
    }
  });
  constexpr size_t kQueryBlock = 16;
  const size_t blocks = (num_q + kQueryBlock - 1) / kQueryBlock;
  Parallel(ctx, 1, num_heads * blocks, [&](size_t b, size_t e, int) {
    thread_local std::vector<float> scratch;
    GrowScratch(scratch, kernels::AttentionScratchRows() * padded);
    for (size_t task = b; task < e; ++task) {
      const size_t h = task % num_heads, kvh = h / group;
      const size_t t0 = (task / num_heads) * kQueryBlock;
      const size_t nq = std::min(kQueryBlock, num_q - t0);
      kernels::AttentionHead(q + t0 * q_stride + h * head_dim, q_stride, nq,
                             kt + kvh * head_dim * padded, padded, vp + kvh * head_dim * num_keys,
                             head_dim, num_keys, head_dim, scale,
                             causal_base == SIZE_MAX ? SIZE_MAX : causal_base + t0, scratch.data(),
                             out + t0 * q_stride + h * head_dim, q_stride);
    }
  });
  // A long prompt's buffers are not kept for the rest of the thread's life.
  for (std::vector<float>* buf : {&kt_buf, &vp_buf}) {
    if (buf->size() > kKeepScratchFloats) std::vector<float>().swap(*buf);
  }
}

}  // namespace

void CausalAttention(ComputeContext& ctx, const float* q, size_t num_tokens, size_t pos0,
                     const float* k_cache, const float* v_cache, size_t num_heads,
                     size_t num_kv_heads, size_t head_dim, float scale, float* out) {
  const size_t kv_stride = num_kv_heads * head_dim;
  const size_t q_stride = num_heads * head_dim;
  const size_t total = pos0 + num_tokens;
  const void* const k_rows = k_cache;
  const void* const v_rows = v_cache;
  BlockAttention(ctx, q, q_stride, num_tokens, KvRows::Rows(&k_rows, kv_stride, head_dim),
                 KvRows::Rows(&v_rows, kv_stride, head_dim), total, num_heads, num_kv_heads,
                 head_dim, scale, pos0, out);
}

void CausalAttentionPaged(ComputeContext& ctx, const float* q, size_t num_tokens, size_t pos0,
                          std::span<const void* const> k_blocks,
                          std::span<const void* const> v_blocks, tensor::DType kv_dtype,
                          size_t block_keys, size_t num_heads, size_t num_kv_heads, size_t head_dim,
                          float scale, float* out) {
  const size_t total = pos0 + num_tokens;
  IRIS_CHECK(k_blocks.size() * block_keys >= total && v_blocks.size() * block_keys >= total);
  IRIS_CHECK(kernels::IsKvDType(kv_dtype));
  BlockAttention(ctx, q, num_heads * head_dim, num_tokens,
                 KvRows::Paged(k_blocks.data(), block_keys, head_dim, kv_dtype),
                 KvRows::Paged(v_blocks.data(), block_keys, head_dim, kv_dtype), total, num_heads,
                 num_kv_heads, head_dim, scale, pos0, out);
}

void DecodeAttention(ComputeContext& ctx, std::span<const DecodeQueries> seqs, size_t num_heads,
                     size_t num_kv_heads, size_t head_dim, float scale, size_t block_keys,
                     tensor::DType kv_dtype, const KvBlocks& blocks) {
  IRIS_CHECK(kernels::IsKvDType(kv_dtype));
  const size_t group = num_heads / num_kv_heads;
  const size_t q_stride = num_heads * head_dim;
  // Tasks are (sequence, query head) pairs; the heads of a task that share a kv head go to the
  // kernel together (they read each key and value row once from memory). A batch splits at
  // whole kv heads; one sequence (3 kv heads, say, on 2 threads) splits at query heads, so
  // that its heads spread evenly. A query's numbers do not depend on the split.
  const size_t align = seqs.size() > 1 ? group : 1;
  Parallel(
      ctx, 1, seqs.size() * num_heads,
      [&](size_t b, size_t e, int) {
        std::vector<const void*> k, v, kh, vh;
        std::vector<float> scratch;
        size_t listed = SIZE_MAX;  // the sequence whose blocks k and v hold
        for (size_t task = b; task < e;) {
          const size_t s = task / num_heads, h0 = task % num_heads, kvh = h0 / group;
          // The heads of this task in sequence s that share kv head kvh.
          const size_t h1 = std::min({(kvh + 1) * group, num_heads, h0 + (e - task)});
          const DecodeQueries& sq = seqs[s];
          if (listed != s) {
            k.clear();
            v.clear();
            blocks(s, k, v);
            listed = s;
          }
          // This kv head's rows of every block.
          const KvRows paged_k = KvRows::Paged(k.data(), block_keys, head_dim, kv_dtype);
          const KvRows paged_v = KvRows::Paged(v.data(), block_keys, head_dim, kv_dtype);
          kh.resize(k.size());
          vh.resize(v.size());
          for (size_t i = 0; i < k.size(); ++i) kh[i] = paged_k.Head(i, kvh);
          for (size_t i = 0; i < v.size(); ++i) vh[i] = paged_v.Head(i, kvh);
          const size_t total = sq.pos0 + sq.num_tokens;
          scratch.resize((h1 - h0) * RoundUp(total, kernels::AttentionMaxLanes()));
          for (size_t t = 0; t < sq.num_tokens; ++t) {
            kernels::AttentionDecodeBlocks(sq.q + t * q_stride + h0 * head_dim, head_dim, h1 - h0,
                                           kh.data(), vh.data(), kv_dtype, block_keys, head_dim,
                                           sq.pos0 + t + 1, head_dim, scale, scratch.data(),
                                           sq.out + t * q_stride + h0 * head_dim, head_dim);
          }
          task += h1 - h0;
        }
      },
      align);
}

void FullAttention(ComputeContext& ctx, const float* q, const float* k, const float* v,
                   size_t num_tokens, size_t num_heads, size_t head_dim, float scale, float* out) {
  const size_t stride = num_heads * head_dim;
  const void* const k_rows = k;
  const void* const v_rows = v;
  BlockAttention(ctx, q, stride, num_tokens, KvRows::Rows(&k_rows, stride, head_dim),
                 KvRows::Rows(&v_rows, stride, head_dim), num_tokens, num_heads, num_heads,
                 head_dim, scale, SIZE_MAX, out);
}

std::vector<float> ToF32(const tensor::TensorView& w) {
  std::vector<float> out(static_cast<size_t>(w.num_elements()));
  if (tensor::IsHalfPanelType(w.dtype)) {  // rows spread over groups of 16
    for (size_t i = 0; i < out.size(); ++i) out[i] = w.GetF32(static_cast<int64_t>(i));
    return out;
  }
  if (tensor::IsPanelType(w.dtype)) {  // rows spread over panels of 16
    const size_t n = static_cast<size_t>(w.shape.back());
    for (size_t r = 0; r < out.size() / n; ++r) {
      tensor::DequantizePanelRow(w.dtype, w.data, n, r, out.data() + r * n);
    }
    return out;
  }
  // Row by row: a repacked Q8_0 row carries its own scales (tensor::DType::kQ8_0x).
  const size_t n = w.shape.empty() ? 1 : static_cast<size_t>(w.shape.back());
  const size_t row_bytes = tensor::RowBytes(w.dtype, n);
  for (size_t r = 0; n > 0 && r < out.size() / n; ++r) {
    kernels::ConvertRowToF32(static_cast<const uint8_t*>(w.data) + r * row_bytes, w.dtype, n,
                             out.data() + r * n);
  }
  return out;
}

}  // namespace iris::ops
