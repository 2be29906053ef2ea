// The text model's keys and values in fixed blocks of positions. One KvPool holds the blocks
// of every sequence a scheduler runs, under one memory budget, so sequences of any length
// share it without fragmenting; a KvCache is one sequence's list of blocks. Blocks are
// reference-counted: sequences with the same prefix can share its blocks, and a shared block
// is copied before it is written. Neither class is thread-safe: one thread (the engine's)
// allocates, and the compute threads only read and write rows of blocks it handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/mapped_file.h"
#include "engine/tensor/dtype.h"

namespace iris::model {

class KvPool {
 public:
  static constexpr size_t kBlockTokens = 16;  // positions per block

  // max_blocks == 0: the pool grows as blocks are needed (one caller, e.g. the CLI); else it
  // never holds more than max_blocks. Memory is taken in slabs as it is first needed. Keys
  // and values are kept as `dtype` (kernels::IsKvDType): f32 (exact), or f16 (opt-in: half
  // the memory and the bytes attention reads; rows are rounded as they are written).
  KvPool(int num_layers, size_t num_kv_heads, size_t head_dim, size_t max_blocks,
         tensor::DType dtype = tensor::DType::kF32);
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  // Bytes of one block (keys and values of every layer).
  static size_t BlockBytes(int num_layers, size_t kv_dim, tensor::DType dtype) {
    return 2 * kBlockTokens * kv_dim * static_cast<size_t>(num_layers) * tensor::DTypeSize(dtype);
  }
  size_t block_bytes() const { return BlockBytes(num_layers_, kv_dim_, dtype_); }
  // Blocks per slab: at least 32, and as many as fill the slab's last 2 MiB page (slabs are
  // mapped in huge pages; at 256M, 32 blocks are 22.5 MiB, so 34 fill 24 MiB).
  static size_t SlabBlocks(size_t block_bytes);
  tensor::DType dtype() const { return dtype_; }

  // A block with one reference, or nothing when the budget is spent or the memory for a new
  // slab cannot be had (mmap refused: strict overcommit, a ulimit on the address space).
  std::optional<int32_t> Allocate();
  void Retain(int32_t block);
  void Release(int32_t block);  // frees the block with its last reference
  int refs(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

  // One layer's keys or values in a block, head by head: [num_kv_heads, kBlockTokens,
  // head_dim], so that one kv head's positions in a block are contiguous (decode attention
  // reads a head at a time; position-major rows put 256 bytes of a head every kv_dim floats).
  // Elements of dtype().
  void* keys(int32_t block, int layer) { return Row(block, layer, 0); }
  void* values(int32_t block, int layer) { return Row(block, layer, 1); }
  const void* keys(int32_t block, int layer) const { return Row(block, layer, 0); }
  const void* values(int32_t block, int layer) const { return Row(block, layer, 1); }

  size_t in_use() const { return in_use_; }
  size_t max_blocks() const { return max_blocks_; }  // 0: unbounded
  // Blocks that can still be allocated (SIZE_MAX when unbounded).
  size_t available() const { return max_blocks_ == 0 ? SIZE_MAX : max_blocks_ - in_use_; }
  // Tests: the pool maps at most this many slabs, as if the memory ran out after them.
  void set_slab_limit_for_testing(size_t slabs) { slab_limit_ = slabs; }
  int num_layers() const { return num_layers_; }
  size_t num_kv_heads() const { return num_kv_heads_; }
  size_t head_dim() const { return head_dim_; }
  size_t kv_dim() const { return kv_dim_; }

 private:
  std::byte* Row(int32_t block, int layer, int which) const;

  int num_layers_;
  size_t num_kv_heads_;
  size_t head_dim_;
  size_t kv_dim_;
  size_t max_blocks_;
  tensor::DType dtype_;
  size_t slab_blocks_;
  size_t slab_limit_ = SIZE_MAX;
  size_t in_use_ = 0;
  std::vector<AnonymousBuffer> slabs_;
  std::vector<int> refs_;      // per block ever created
  std::vector<int32_t> free_;  // created blocks with no reference
};

// One sequence's positions, in blocks of a pool. Move-only; releases its blocks when
// destroyed or cleared.
class KvCache {
 public:
  explicit KvCache(std::shared_ptr<KvPool> pool) : pool_(std::move(pool)) {}
  ~KvCache() { Clear(); }
  KvCache(KvCache&& other) noexcept;
  KvCache& operator=(KvCache&& other) noexcept;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  size_t length() const { return length_; }
  // Ensures blocks for `tokens` positions in total. False (and nothing more held) when the
  // pool cannot give them.
  bool Reserve(size_t tokens);
  // Blocks Reserve(tokens) would still take from the pool.
  size_t BlocksToReserve(size_t tokens) const;
  // Makes positions [length, length + n) writable: a block shared with another sequence is
  // copied first. False when the pool has no block for the copy. Needs Reserve first.
  bool PrepareAppend(size_t n);
  // Forgets everything after `length` positions; the blocks stay reserved.
  void Truncate(size_t length) { length_ = std::min(length, length_); }
  void set_length(size_t n) { length_ = n; }
  void Clear();  // releases every block

  // Shares `blocks` (full blocks of another cache, in order) as this empty cache's first
  // blocks.size() * kBlockTokens positions.
  void AdoptPrefix(std::span<const int32_t> blocks);

  // Stores position `pos` of one layer: `key` and `value` are rows of kv_dim floats
  // (num_kv_heads heads of head_dim), spread into the block's heads (rounded to f16 in an f16
  // pool).
  void Write(int layer, size_t pos, const float* key, const float* value);
  // Appends where positions [0, n) of one layer's keys and values are, block by block (each
  // in KvPool's layout: [num_kv_heads, kBlockTokens, head_dim]), for attention that reads
  // them in place.
  void BlockRows(int layer, size_t n, std::vector<const void*>& keys,
                 std::vector<const void*>& values) const;

  std::span<const int32_t> blocks() const { return blocks_; }
  const KvPool& pool() const { return *pool_; }
  size_t bytes() const { return blocks_.size() * pool_->block_bytes(); }

 private:
  std::shared_ptr<KvPool> pool_;
  std::vector<int32_t> blocks_;
  size_t length_ = 0;
};

}  // namespace iris::model
