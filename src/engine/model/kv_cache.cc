#include "engine/model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/check.h"
#include "engine/kernels/kernels.h"

namespace iris::model {

KvPool::KvPool(int num_layers, size_t num_kv_heads, size_t head_dim, size_t max_blocks,
               tensor::DType dtype)
    : num_layers_(num_layers),
      num_kv_heads_(num_kv_heads),
      head_dim_(head_dim),
      kv_dim_(num_kv_heads * head_dim),
      max_blocks_(max_blocks),
      dtype_(dtype) {
  IRIS_CHECK(num_layers > 0 && num_kv_heads > 0 && head_dim > 0);
  IRIS_CHECK(kernels::IsKvDType(dtype));
  slab_blocks_ = SlabBlocks(block_bytes());
}

size_t KvPool::SlabBlocks(size_t block_bytes) {
  constexpr size_t kMinBlocks = 32, kPage = AnonymousBuffer::kPageBytes;
  const size_t mapped = (kMinBlocks * block_bytes + kPage - 1) / kPage * kPage;
  return std::max(kMinBlocks, mapped / block_bytes);
}

std::optional<int32_t> KvPool::Allocate() {
  if (max_blocks_ != 0 && in_use_ >= max_blocks_) return std::nullopt;
  if (free_.empty()) {
    // A new slab; its blocks join the free list, lowest id last so it is taken first. Not
    // zeroed: a row is written before anything reads it (attention reads positions below a
    // cache's length only; a copied block's unwritten rows stay unread). Zeroing a slab
    // (24 MB at 256M) cost a serving step 60 ms of fresh pages; now each page is first
    // touched when a position is written. Huge pages (AnonymousBuffer): a 256M prompt of 512
    // tokens writes 24 MB of keys and values, and taking them as 4 KiB pages, one fault each,
    // was a fifth of the prompt's time on a VM.
    if (slabs_.size() >= slab_limit_) return std::nullopt;
    auto slab = AnonymousBuffer::Allocate(slab_blocks_ * block_bytes());
    if (!slab.ok()) return std::nullopt;  // as a spent budget: the caller waits or refuses
    slabs_.push_back(*std::move(slab));
    const size_t first = refs_.size();
    refs_.resize(first + slab_blocks_, 0);
    for (size_t i = slab_blocks_; i-- > 0;) free_.push_back(static_cast<int32_t>(first + i));
  }
  const int32_t b = free_.back();
  free_.pop_back();
#if defined(__SANITIZE_ADDRESS__) || !defined(NDEBUG) || defined(IRIS_POISON_KV)
  // Checked builds (and -DIRIS_POISON_KV) fill every block they hand out, new or reused, with
  // NaN, so that a row read before it is written turns the numbers of every test that reaches
  // it into NaN.
  if (dtype_ == tensor::DType::kF16) {
    std::fill_n(static_cast<uint16_t*>(keys(b, 0)), block_bytes() / 2, uint16_t{0x7e00});
  } else {
    std::fill_n(static_cast<float*>(keys(b, 0)), block_bytes() / sizeof(float),
                std::numeric_limits<float>::quiet_NaN());
  }
#endif
  refs_[static_cast<size_t>(b)] = 1;
  ++in_use_;
  return b;
}

void KvPool::Retain(int32_t block) {
  IRIS_DCHECK(refs_[static_cast<size_t>(block)] > 0);
  ++refs_[static_cast<size_t>(block)];
}

void KvPool::Release(int32_t block) {
  int& r = refs_[static_cast<size_t>(block)];
  IRIS_CHECK(r > 0);
  if (--r == 0) {
    free_.push_back(block);
    --in_use_;
  }
}

std::byte* KvPool::Row(int32_t block, int layer, int which) const {
  const size_t b = static_cast<size_t>(block);
  // Bytes of one layer's keys (or values) in a block.
  const size_t per_layer = kBlockTokens * kv_dim_ * tensor::DTypeSize(dtype_);
  IRIS_DCHECK(b < refs_.size() && layer >= 0 && layer < num_layers_);
  std::byte* slab = reinterpret_cast<std::byte*>(slabs_[b / slab_blocks_].data());
  return slab + (b % slab_blocks_) * block_bytes() +
         (static_cast<size_t>(layer) * 2 + static_cast<size_t>(which)) * per_layer;
}

KvCache::KvCache(KvCache&& other) noexcept
    : pool_(std::move(other.pool_)), blocks_(std::move(other.blocks_)), length_(other.length_) {
  other.blocks_.clear();
  other.length_ = 0;
}

KvCache& KvCache::operator=(KvCache&& other) noexcept {
  if (this != &other) {
    Clear();
    pool_ = std::move(other.pool_);
    blocks_ = std::move(other.blocks_);
    length_ = other.length_;
    other.blocks_.clear();
    other.length_ = 0;
  }
  return *this;
}

void KvCache::Clear() {
  if (pool_) {
    for (int32_t b : blocks_) pool_->Release(b);
  }
  blocks_.clear();
  length_ = 0;
}

size_t KvCache::BlocksToReserve(size_t tokens) const {
  const size_t need = (tokens + KvPool::kBlockTokens - 1) / KvPool::kBlockTokens;
  return need > blocks_.size() ? need - blocks_.size() : 0;
}

bool KvCache::Reserve(size_t tokens) {
  const size_t more = BlocksToReserve(tokens);
  if (more == 0) return true;
  if (more > pool_->available()) return false;
  const size_t had = blocks_.size();
  for (size_t i = 0; i < more; ++i) {
    auto b = pool_->Allocate();
    if (!b) {  // the budget had room, the machine did not: give back what this call took
      for (size_t j = had; j < blocks_.size(); ++j) pool_->Release(blocks_[j]);
      blocks_.resize(had);
      return false;
    }
    blocks_.push_back(*b);
  }
  return true;
}

bool KvCache::PrepareAppend(size_t n) {
  if (n == 0) return true;
  IRIS_CHECK(length_ + n <= blocks_.size() * KvPool::kBlockTokens);
  const size_t first = length_ / KvPool::kBlockTokens;
  const size_t last = (length_ + n - 1) / KvPool::kBlockTokens;
  for (size_t i = first; i <= last; ++i) {
    const int32_t b = blocks_[i];
    if (pool_->refs(b) == 1) continue;
    // Shared with another sequence: this one writes into its own copy.
    auto copy = pool_->Allocate();
    if (!copy) return false;
    for (int l = 0; l < pool_->num_layers(); ++l) {
      const size_t bytes =
          KvPool::kBlockTokens * pool_->kv_dim() * tensor::DTypeSize(pool_->dtype());
      std::memcpy(pool_->keys(*copy, l), pool_->keys(b, l), bytes);
      std::memcpy(pool_->values(*copy, l), pool_->values(b, l), bytes);
    }
    pool_->Release(b);
    blocks_[i] = *copy;
  }
  return true;
}

void KvCache::AdoptPrefix(std::span<const int32_t> blocks) {
  IRIS_CHECK(blocks_.empty() && length_ == 0);
  for (int32_t b : blocks) {
    pool_->Retain(b);
    blocks_.push_back(b);
  }
  length_ = blocks.size() * KvPool::kBlockTokens;
}

void KvCache::Write(int layer, size_t pos, const float* key, const float* value) {
  const size_t hd = pool_->head_dim(), row = pos % KvPool::kBlockTokens;
  const int32_t b = blocks_[pos / KvPool::kBlockTokens];
  const bool half = pool_->dtype() == tensor::DType::kF16;
  const size_t es = tensor::DTypeSize(pool_->dtype());
  // One head's row of head_dim values, at element `at` of a layer's keys or values.
  auto store = [&](const float* src, void* layer_rows, size_t at) {
    void* dst = static_cast<std::byte*>(layer_rows) + at * es;
    if (half) {
      kernels::NarrowRowF16(src, hd, dst);
    } else {
      std::memcpy(dst, src, hd * sizeof(float));
    }
  };
  for (size_t h = 0; h < pool_->num_kv_heads(); ++h) {
    const size_t at = (h * KvPool::kBlockTokens + row) * hd;
    store(key + h * hd, pool_->keys(b, layer), at);
    store(value + h * hd, pool_->values(b, layer), at);
  }
}

void KvCache::BlockRows(int layer, size_t n, std::vector<const void*>& keys,
                        std::vector<const void*>& values) const {
  for (size_t start = 0, i = 0; start < n; start += KvPool::kBlockTokens, ++i) {
    keys.push_back(pool_->keys(blocks_[i], layer));
    values.push_back(pool_->values(blocks_[i], layer));
  }
}

}  // namespace iris::model
