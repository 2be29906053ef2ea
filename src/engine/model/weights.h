// Binds a model's tensors from a checkpoint: checks name, shape and dtype, and copies the
// weights (narrowed, quantized or as stored) into memory the model owns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "engine/formats/safetensors.h"

namespace iris::model {

// How a model holds its weights once loaded.
struct WeightOptions {
  // F32 matrices whose values are all exactly BF16 (the published SmolVLM2 files were trained
  // in bf16 and saved as f32) are stored as BF16 once and their mapped pages released: half
  // the bytes per token, the same results bit for bit.
  bool narrow_exact_f32 = true;
  // kQ8_0 or kQ4_0: matrices whose rows are whole blocks of 32 are quantized at load (ggml's
  // quantizers; a file's Q4_0 becomes Q8_0 exactly, a K file's matrices are quantized from
  // their values) and multiplied as int8; kF32 (the default) keeps the file's types.
  tensor::DType quantize = tensor::DType::kF32;
  // Float matrices multiplied whole, of a multiple of 16 rows, packed once at load as the
  // products read them (tensor::DType::kBF16p, kF16p, which every number of tokens multiplies
  // alike): kExact, the default, BF16 and F16 ones and F32 ones narrowed as above, their
  // values unchanged; kBf16 (`--compute bf16`) every F32, F16 and BF16 one, rounded to bf16 as
  // those products round (kBF16p); kNone keeps them in rows. Matrices quantized at load stay
  // int8.
  enum class Panels { kNone, kExact, kBf16 };
  Panels panels = Panels::kExact;
  ThreadPool* pool = nullptr;  // copies, narrows and quantizes in parallel when set
};

// The memory a model's weights live in: 64-byte aligned pieces of large anonymous buffers
// (AnonymousBuffer: huge pages, never aged like a file's page cache). Not thread-safe.
class WeightMemory {
 public:
  // `bytes` of zeroed memory, valid as long as this object or the one it is moved into.
  Result<uint8_t*> Allocate(size_t bytes);
  size_t bytes_used() const { return used_; }

 private:
  std::vector<AnonymousBuffer> chunks_;  // small pieces, packed
  std::vector<AnonymousBuffer> large_;   // one piece each
  size_t chunk_used_ = 0;                // of chunks_.back()
  size_t used_ = 0;
};

class WeightBinder {
 public:
  WeightBinder(const formats::WeightStore& store, const WeightOptions& options)
      : store_(store), options_(options) {}

  // A weight of exactly `shape`: F32, BF16, F16 as the file holds it (F32 narrowed to BF16
  // where exact); a matrix in Q8_0 or Q4_0 when the options ask for it or the file holds it
  // (quantized or converted here), in panels (kQ8_0p, kQ4_0p) or rows (kQ8_0x, kQ8_0) as
  // below; a file's Q4_K, Q5_K or Q6_K matrix in K panels (kQ4_Kp, kQ5_Kp, kQ6_Kp: the file's
  // values), or as its f32 values where no kernel takes it; errors name the file and the
  // tensor.
  // Int8 matrices of a multiple of 16 rows go in panels (kQ8_0p) where the kernels prefer it:
  // they are only ever multiplied whole; so do float ones as options.panels says (kBF16p).
  Result<tensor::TensorView> Bind(const std::string& name, const std::vector<int64_t>& shape);
  // As Bind, for a matrix also read a row at a time (tied token embeddings): never in panels.
  Result<tensor::TensorView> BindTable(const std::string& name, const std::vector<int64_t>& shape);
  // A table read a few rows at a time (untied token embeddings): as Bind, except that a
  // BF16/F16 table the options leave as it is stays in the file's mapping, in place: a row or
  // two per token does not suffer the mapping's stalls, and its pages are read only as used.
  Result<tensor::TensorView> BindRows(const std::string& name, const std::vector<int64_t>& shape);
  // A tied embedding table's output layer: the matrix in panels where the options pack it
  // (the table is then bound with BindRows); nullopt where they leave it in rows (BindTable
  // serves both then).
  Result<std::optional<tensor::TensorView>> BindPanelsCopy(const std::string& name,
                                                           const std::vector<int64_t>& shape);
  // A small weight (norm, bias, position table) converted to f32.
  Result<std::vector<float>> BindF32(const std::string& name, const std::vector<int64_t>& shape);

  // The memory of the weights bound so far; the model keeps it alive.
  WeightMemory TakeOwned() { return std::move(owned_); }

 private:
  const formats::WeightStore& store_;
  WeightOptions options_;
  // The tensor `name` of exactly `shape`, if its dtype is one a weight may have.
  Result<formats::TensorEntry> Entry(const std::string& name,
                                     const std::vector<int64_t>& shape) const;
  Result<tensor::TensorView> BindMatrix(const std::string& name, const std::vector<int64_t>& shape,
                                        bool rows_read);
  // Whether options_.panels packs this float matrix; and the packing.
  bool Packs(const formats::TensorEntry& e, const std::vector<int64_t>& shape) const;
  Result<tensor::TensorView> Pack(const formats::TensorEntry& e);
  // Copies `v`'s bytes into owned_ (in parallel on options_.pool) and returns the copy.
  Result<tensor::TensorView> Copy(const tensor::TensorView& v);

  WeightMemory owned_;
};

}  // namespace iris::model
