// ggml's tensor types: the block formats GGUF files store weights in (F32, F16, BF16 and the
// quantized Q4_0 … Q6_K families), their sizes, and dequantization to f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor/dtype.h"

namespace iris::tensor {

// The ggml types iris reads, numbered as GGUF files number them.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // "Q4_K"
  size_t block_elems;     // values per block (1 for the plain floats)
  size_t block_bytes;     // bytes per block
};

// The type numbered `id` if iris reads it, else nullptr.
const GgmlTypeInfo* FindGgmlType(uint32_t id);
// The info of a type iris reads.
const GgmlTypeInfo& GgmlInfo(GgmlType type);
// ggml's name of any type number ("IQ2_XXS", "Q8_1"), for errors about types iris does not
// read; "type N" when ggml defines none.
std::string GgmlTypeName(uint32_t id);
// Whether a weight of `shape` can be held in 32-value blocks (Q8_0, Q4_0): a matrix whose rows
// are whole blocks. `--weights` quantizes exactly these at load, and `iris quantize` in its
// files, so the two give the same numbers.
inline bool WholeBlockMatrix(const std::vector<int64_t>& shape) {
  return shape.size() == 2 && shape[1] % 32 == 0;
}

// Parses a name as written on a command line ("q8_0", "Q4_K", "bf16"); false if unknown.
bool ParseGgmlType(std::string_view name, GgmlType* type);

// The types iris holds as a GGUF file stores them (F32, F16, BF16, Q8_0, Q4_0 and the K
// formats), in both directions: the DType of a tensor of ggml type `type` read as stored
// (nullopt: iris converts it when reading), and the ggml type of such a DType (nullopt for
// the layouts iris makes itself and the safetensors-only types).
std::optional<DType> StoredDType(GgmlType type);
std::optional<GgmlType> StoredGgmlType(DType dtype);

// dst[0, n) = the values of one row of `n` elements stored as `type` (n a multiple of the
// type's block_elems), computed as gguf-py's numpy dequantization computes them: the same
// f32 roundings in the same order, so the results agree bit for bit.
void DequantizeRow(GgmlType type, const void* src, size_t n, float* dst);

// dst = one row of n values (a multiple of 32) quantized to Q8_0 as ggml's reference quantizer
// does: per block d = max|x| / 127 stored as f16, q = round(x / d) (ties away from zero).
// gguf-py's quantizer writes the same bytes.
void QuantizeRowQ8_0(const float* x, size_t n, uint8_t* dst);

// One Q8_0 row of n values in the kQ8_0x layout (dtype.h): the same scales and values, moved.
void RepackRowQ8_0x(const uint8_t* q8_0_row, size_t n, uint8_t* dst);
// dst[0, n) = the values of one kQ8_0x row (as DequantizeRow gives them for the Q8_0 row).
void DequantizeRowQ8_0x(const uint8_t* row, size_t n, float* dst);
// Sixteen consecutive rows of n values (row_stride bytes apart) as one panel (dtype.h): Q8_0
// rows for kQ8_0p, Q4_0 rows for kQ4_0p, Q4_K, Q5_K and Q6_K rows for kQ4_Kp, kQ5_Kp and
// kQ6_Kp (n a multiple of 256 for the K layouts).
void RepackPanel(DType panel_type, const uint8_t* rows, size_t row_stride, size_t n,
                 uint8_t* panel);
// Value j of row `row` of a matrix of n columns in a panel layout, and dst[0, n) = the whole
// row: the values DequantizeRow gives for the rows the panels were made of, bit for bit.
float PanelValue(DType dtype, const void* data, size_t n, size_t row, size_t j);
void DequantizePanelRow(DType dtype, const void* data, size_t n, size_t row, float* dst);
// dst = one row of n values (a multiple of 32) quantized to Q4_0 as ggml's reference quantizer
// does: per block d = m / −8 where m is the value of largest magnitude (stored as f16),
// q = min(15, trunc(x / d + 8.5)).
void QuantizeRowQ4_0(const float* x, size_t n, uint8_t* dst);
// One row of n values (a multiple of 32) of Q4_0 or Q5_0 (d · (q − 8), d · (q − 16)) as the
// Q8_0 row of the same values: the same f16 scales and the signed integers, exactly.
void WidenRowToQ8_0(GgmlType type, const uint8_t* row, size_t n, uint8_t* q8_0_row);

}  // namespace iris::tensor
