#include "engine/model/weights.h"

#include <cstring>
#include <optional>

#include "base/mapped_file.h"
#include "engine/kernels/kernels.h"
#include "engine/ops/ops.h"
#include "engine/tensor/quant.h"

namespace iris::model {
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

Result<tensor::TensorView> WeightBinder::Bind(const std::string& name,
                                              const std::vector<int64_t>& shape) {
  IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, store_.Get(name, shape));
  if (e.view.dtype != tensor::DType::kF32 && e.view.dtype != tensor::DType::kBF16 &&
      e.view.dtype != tensor::DType::kF16 && e.view.dtype != tensor::DType::kQ8_0) {
    return FailedPrecondition(e.file + ": tensor '" + name + "' has dtype " +
                              std::string(tensor::DTypeName(e.view.dtype)) +
                              "; weights must be F32, BF16, F16 (or Q8_0 from a GGUF file)");
  }
  const bool quantize = options_.quantize == tensor::DType::kQ8_0 &&
                        e.view.dtype != tensor::DType::kQ8_0 && shape.size() == 2 &&
                        shape[1] % 32 == 0;
  // Q8_0 rows (from the file or quantized now) are repacked when the int8 path prefers it.
  const bool repack = kernels::PrefersRepackedQ8() && shape.size() == 2 &&
                      (quantize || e.view.dtype == tensor::DType::kQ8_0);
  if (quantize || repack) {
    const size_t rows = static_cast<size_t>(shape[0]), cols = static_cast<size_t>(shape[1]);
    const tensor::DType out_type = repack ? tensor::DType::kQ8_0x : tensor::DType::kQ8_0;
    const size_t row_bytes = tensor::RowBytes(out_type, cols);
    // 64 bytes of slack, so the rows can start on a cache line.
    std::vector<uint32_t> q((rows * row_bytes + 3) / 4 + 16);
    auto* dst = reinterpret_cast<uint8_t*>(q.data());
    dst += (64 - reinterpret_cast<uintptr_t>(dst) % 64) % 64;
    const size_t src_row = tensor::RowBytes(e.view.dtype, cols);
    auto body = [&](size_t begin, size_t end, int) {
      std::vector<float> values(cols);
      std::vector<uint8_t> blocks(tensor::RowBytes(tensor::DType::kQ8_0, cols));
      for (size_t r = begin; r < end; ++r) {
        const uint8_t* src = static_cast<const uint8_t*>(e.view.data) + r * src_row;
        if (quantize) {
          kernels::ConvertRowToF32(src, e.view.dtype, cols, values.data());
          tensor::QuantizeRowQ8_0(values.data(), cols, blocks.data());
          src = blocks.data();
        }
        if (repack) {
          tensor::RepackRowQ8_0x(src, cols, dst + r * row_bytes);
        } else {
          std::memcpy(dst + r * row_bytes, src, row_bytes);
        }
      }
    };
    if (options_.pool != nullptr) {
      options_.pool->ParallelFor(rows, 64, body);
    } else {
      body(0, rows, 0);
    }
    owned_.push_back(std::move(q));
    if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
    tensor::TensorView converted = e.view;
    converted.dtype = out_type;
    converted.data = dst;
    return converted;
  }
  if (options_.narrow_exact_f32 && e.view.dtype == tensor::DType::kF32 && shape.size() >= 2) {
    if (auto narrowed = NarrowIfExact(e.view)) {
      owned_.push_back(std::move(*narrowed));
      if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
      tensor::TensorView narrow = e.view;
      narrow.dtype = tensor::DType::kBF16;
      narrow.data = owned_.back().data();
      return narrow;
    }
  }
  if (reinterpret_cast<uintptr_t>(e.view.data) % tensor::DTypeSize(e.view.dtype) != 0) {
    // A file may place a tensor at an offset that is not a multiple of its element size.
    std::vector<uint32_t> copy((e.view.num_bytes() + 3) / 4);
    std::memcpy(copy.data(), e.view.data, e.view.num_bytes());
    owned_.push_back(std::move(copy));
    tensor::TensorView aligned = e.view;
    aligned.data = owned_.back().data();
    return aligned;
  }
  return e.view;
}

Result<std::vector<float>> WeightBinder::BindF32(const std::string& name,
                                                 const std::vector<int64_t>& shape) {
  IRIS_ASSIGN_OR_RETURN(tensor::TensorView v, Bind(name, shape));
  return ops::ToF32(v);
}

}  // namespace iris::model
