#include "engine/tensor/tensor.h"

#include <cstring>

#include "engine/tensor/quant.h"

namespace iris::tensor {

bool ExactlyBf16(const TensorView& f32) {
  const size_t n = static_cast<size_t>(f32.num_elements());
  for (size_t i = 0; i < n; ++i) {
    uint32_t w;
    std::memcpy(&w, static_cast<const uint8_t*>(f32.data) + 4 * i, 4);  // may be unaligned
    if (w & 0xffffu) return false;
  }
  return true;
}

float TensorView::GetF32(int64_t i) const {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(data)[i];
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(data)[i]);
    case DType::kBF16p:
    case DType::kF16p: {
      const size_t n = static_cast<size_t>(shape.back()), at = static_cast<size_t>(i);
      uint16_t h;
      std::memcpy(&h, static_cast<const uint8_t*>(data) + HalfPanelOffset(dtype, n, at / n, at % n),
                  2);
      return dtype == DType::kBF16p ? Bf16ToF32(h) : F16ToF32(h);
    }
    case DType::kF64:
      return static_cast<float>(static_cast<const double*>(data)[i]);
    case DType::kI64:
      return static_cast<float>(static_cast<const int64_t*>(data)[i]);
    case DType::kI32:
      return static_cast<float>(static_cast<const int32_t*>(data)[i]);
    case DType::kU8:
      return static_cast<const uint8_t*>(data)[i];
    case DType::kQ8_0x: {
      const size_t n = static_cast<size_t>(shape.back());
      const auto* row = static_cast<const uint8_t*>(data) +
                        static_cast<size_t>(i) / n * RowBytes(DType::kQ8_0x, n);
      const size_t j = static_cast<size_t>(i) % n;
      uint16_t h;
      std::memcpy(&h, row + 2 * (j / 32), 2);
      return static_cast<float>(static_cast<int8_t>(row[Q8xScaleBytes(n) + j])) * F16ToF32(h);
    }
    case DType::kQ8_0p:
    case DType::kQ4_0p:
    case DType::kQ4_Kp:
    case DType::kQ5_Kp:
    case DType::kQ6_Kp: {
      const size_t n = static_cast<size_t>(shape.back());
      return PanelValue(dtype, data, n, static_cast<size_t>(i) / n, static_cast<size_t>(i) % n);
    }
    case DType::kQ8_0:  // the block formats as a GGUF file stores them: the element's block
    case DType::kQ4_0:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K: {
      const GgmlTypeInfo& info = GgmlInfo(*StoredGgmlType(dtype));
      const size_t at = static_cast<size_t>(i);
      float block[kKSuperBlock];
      DequantizeRow(info.type,
                    static_cast<const uint8_t*>(data) + at / info.block_elems * info.block_bytes,
                    info.block_elems, block);
      return block[at % info.block_elems];
    }
    default:
      return 0.f;
  }
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace iris::tensor
