// TensorView: a typed, shaped, non-owning view of bytes (usually a memory-mapped weight).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor/dtype.h"

namespace iris::tensor {

struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;

  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t num_bytes() const {
    if (shape.empty()) return RowBytes(dtype, 1);
    const size_t row = static_cast<size_t>(shape.back());
    return row == 0 ? 0 : static_cast<size_t>(num_elements()) / row * RowBytes(dtype, row);
  }
  int64_t dim(size_t i) const { return shape[i]; }
  // Element i converted to f32 (for the float dtypes).
  float GetF32(int64_t i) const;
};

// Whether every value of an F32 tensor is exactly a BF16 value (its low 16 bits are zero): then
// it can be held as BF16 with the same values.
bool ExactlyBf16(const TensorView& f32);

// "[2, 3]".
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace iris::tensor
