// Element types of checkpoint tensors and conversions between the 16-bit floats and f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace iris::tensor {

// kQ8_0 is ggml's block format (blocks of 32 int8 values and an f16 scale, 34 bytes): weights
// read from GGUF files or quantized at load; it never comes from a safetensors file.
// kQ8_0x is the same values repacked at load for the AVX-512 int8 kernel (never in a file):
// each row holds its blocks' f16 scales, padded to 64 bytes, then its int8 values, padded to
// a multiple of 64 with zeros, so rows stay 64-byte aligned and two blocks fill a register.
// kQ8_0p is the same values in panels of 16 rows for the AVX-512 int8 GEMM (never in a file;
// only matrices of a multiple of 16 rows, multiplied whole, never read a row at a time). A
// panel holds, for each block of 32 columns, 8 groups of 64 bytes: rows 0..15 × 4 consecutive
// values, each stored as value + 128 (an unsigned byte, what vpdpbusd multiplies); then the
// panel's f16 scales, 16 per block (row order), block after block, padded to 64 bytes.
// kQ4_0 is ggml's 4-bit block format (an f16 scale and 32 values q in 0..15 as nibbles, 18
// bytes; the value is d · (q − 8)), read from GGUF files or quantized at load. kQ4_0p is its
// panel layout, as kQ8_0p but with the values q (not q + 128) as nibbles: for each block,
// 4 groups of 64 bytes, byte j of group i holding value group 2i (low nibble) and 2i + 1
// (high nibble) of row j / 4, value j % 4; then the scales as in kQ8_0p.
// kQ4_K, kQ5_K and kQ6_K are ggml's K formats (super-blocks of 256 values, 144, 176 and 210
// bytes), read from GGUF files. kQ4_Kp, kQ5_Kp and kQ6_Kp are their panel layouts, with the
// levels q (0..15, 0..31, 0..63) as kQ4_0p holds its values: their low 4 bits as nibbles
// (256 bytes a block), and for kQ5_Kp and kQ6_Kp their high bits after them, as many bytes
// as the nibbles' groups cover, byte j of each holding row j / 4, value j % 4, of 8 groups
// of 4 values one bit each (kQ5_Kp, 64 bytes a block) or 4 groups two bits each (kQ6_Kp, 128
// bytes a block: groups 0–3, then 4–7), group g at bit g times the bits (g % 4 for kQ6_Kp):
// 6.5625 bits a weight for kQ6_Kp as in the file; then the scales as the file has them: per block
// of 32, 16 bytes of the rows' first scales and 16 of their second (kQ4_Kp, kQ5_Kp: the 6-bit
// sub-block scale and min; kQ6_Kp: the int8 scales of the two halves of 16), block after
// block; then per super-block of 256 the rows' f16 super-scales (16 d, then 16 dmin; kQ6_Kp:
// 16 d). The value is (d · sc) · q − dmin · m (kQ4_K, kQ5_K) and (d · sc) · (q − 32) (kQ6_K),
// as in the file.
// kBF16p and kF16p are a matrix of 16-bit floats laid out as the products read it, packed at
// load (never in a file; matrices of a multiple of 16 rows, multiplied whole, never read a
// row at a time): groups of 16 rows, each group holding, for every pair of columns
// (2p, 2p + 1), 64 bytes; a zero after an odd row length, and zero pairs up to a multiple of
// 16 pairs (what an AMX tile reads). kBF16p holds bf16 values (a BF16 matrix as stored, or a
// float one rounded to nearest even as AVX512-BF16 converts, for the opt-in bf16 products),
// a pair's 64 bytes as 16 words, row 16g + i's pair in word i with column 2p in its low half
// (vdpbf16ps's operand). kF16p holds an F16 matrix's values as stored, the pair's 64 bytes
// column 2p of the 16 rows, then column 2p + 1: the group column by column, each column one
// conversion to f32 lanes. HalfPanelOffset addresses both.
enum class DType {
  kF32,
  kF16,
  kBF16,
  kF64,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kQ8_0,
  kQ8_0x,
  kQ8_0p,
  kQ4_0,
  kQ4_0p,
  kQ4_K,
  kQ4_Kp,
  kQ5_K,
  kQ5_Kp,
  kQ6_K,
  kQ6_Kp,
  kBF16p,
  kF16p
};

// Bytes per element; 1 for the block formats (use RowBytes for their sizes).
size_t DTypeSize(DType dtype);
// Bytes of a row of n elements (n a multiple of the block size for the block formats).
size_t RowBytes(DType dtype, size_t n);
// True for the K panel layouts (scales per block of 32 and per super-block of 256).
constexpr bool IsKPanelType(DType dtype) {
  return dtype == DType::kQ4_Kp || dtype == DType::kQ5_Kp || dtype == DType::kQ6_Kp;
}
// True for the panel layouts (rows in groups of kQ8PanelRows, never read a row at a time).
inline bool IsPanelType(DType dtype) {
  return dtype == DType::kQ8_0p || dtype == DType::kQ4_0p || IsKPanelType(dtype);
}
// True for the K formats as a file holds them.
inline bool IsKFileType(DType dtype) {
  return dtype == DType::kQ4_K || dtype == DType::kQ5_K || dtype == DType::kQ6_K;
}
// The K panel layout of a K file type (kQ4_K → kQ4_Kp, kQ5_K → kQ5_Kp, kQ6_K → kQ6_Kp).
inline DType KPanelType(DType k_file) {
  return k_file == DType::kQ4_K   ? DType::kQ4_Kp
         : k_file == DType::kQ5_K ? DType::kQ5_Kp
                                  : DType::kQ6_Kp;
}
// True for the block formats (kQ8_0, kQ8_0x, kQ4_0, the K formats and the panel layouts).
inline bool IsBlockType(DType dtype) {
  return dtype == DType::kQ8_0 || dtype == DType::kQ8_0x || dtype == DType::kQ4_0 ||
         IsKFileType(dtype) || IsPanelType(dtype);
}
// The parts of a kQ8_0x row of n values (n a multiple of 32).
inline size_t Q8xScaleBytes(size_t n) { return (n / 32 + 31) / 32 * 64; }
inline size_t Q8xValueBytes(size_t n) { return (n + 63) / 64 * 64; }
// Rows per panel (every panel layout).
inline constexpr size_t kQ8PanelRows = 16;
// Values per super-block of the K formats (a K matrix's rows are whole super-blocks).
inline constexpr size_t kKSuperBlock = 256;
// The panel layouts' addressing, in one place (n values per row: a multiple of 32, of 256 for
// the K layouts): bytes of values per block, of a panel (a multiple of 64, so panels stay
// 64-byte aligned; RowBytes is a sixteenth of it), and where row `lane`'s value j and its
// scales sit within the panel (the nibble layouts' value is the nibble at PanelValueShift,
// with kQ5_Kp's and kQ6_Kp's high bits at PanelHighOffset).
constexpr bool IsNibblePanel(DType dtype) { return dtype == DType::kQ4_0p || IsKPanelType(dtype); }
// Bits of each level above its nibble: kQ5_Kp 1, kQ6_Kp 2, other layouts 0.
constexpr size_t PanelHighBits(DType dtype) {
  return dtype == DType::kQ5_Kp ? 1 : dtype == DType::kQ6_Kp ? 2 : 0;
}
constexpr size_t PanelBlockBytes(DType dtype) {
  return IsNibblePanel(dtype) ? 256 + 64 * PanelHighBits(dtype) : 512;
}
// The K panels: bytes of f16 super-scales per super-block (16 rows × 2, kQ6_Kp × 1).
inline size_t PanelSuperBytes(DType dtype) { return dtype == DType::kQ6_Kp ? 32 : 64; }
inline size_t PanelBytes(DType dtype, size_t n) {
  const size_t scales =
      IsKPanelType(dtype) ? n / 32 * 32 + n / kKSuperBlock * PanelSuperBytes(dtype) : n / 32 * 32;
  return n / 32 * PanelBlockBytes(dtype) + (scales + 63) / 64 * 64;
}
constexpr size_t PanelValueOffset(DType dtype, size_t lane, size_t j) {
  const size_t g = j % 32 / 4;  // the group of 4 values within the block
  return j / 32 * PanelBlockBytes(dtype) + (IsNibblePanel(dtype) ? g / 2 : g) * 64 + lane * 4 +
         j % 4;
}
constexpr int PanelValueShift(DType dtype, size_t j) {
  return IsNibblePanel(dtype) ? static_cast<int>(4 * (j % 32 / 4 % 2)) : 0;
}
// kQ5_Kp, kQ6_Kp: where row `lane`'s value j keeps its high bits (PanelHighBits of them, at
// PanelHighShift), above the nibble at PanelValueOffset. Other layouts have none (0 and 0).
constexpr size_t PanelHighOffset(DType dtype, size_t lane, size_t j) {
  const size_t bits = PanelHighBits(dtype);
  if (bits == 0) return 0;
  const size_t g = j % 32 / 4, per_byte = 8 / bits;
  return j / 32 * PanelBlockBytes(dtype) + 256 + g / per_byte * 64 + lane * 4 + j % 4;
}
constexpr int PanelHighShift(DType dtype, size_t j) {
  const size_t bits = PanelHighBits(dtype);
  if (bits == 0) return 0;
  const size_t g = j % 32 / 4;
  return static_cast<int>(bits * (g % (8 / bits)));
}
// The level row `lane`'s value j has in its panel (`panel`: where the panel starts): the
// byte (kQ8_0p), else the nibble, with kQ5_Kp's and kQ6_Kp's high bits above it.
inline int PanelLevel(DType dtype, const uint8_t* panel, size_t lane, size_t j) {
  const int byte = panel[PanelValueOffset(dtype, lane, j)] >> PanelValueShift(dtype, j);
  if (!IsNibblePanel(dtype)) return byte;
  const size_t bits = PanelHighBits(dtype);
  if (bits == 0) return byte & 0x0F;
  const int high = panel[PanelHighOffset(dtype, lane, j)] >> PanelHighShift(dtype, j);
  return (byte & 0x0F) | (high & ((1 << bits) - 1)) << 4;
}
// kQ8_0p, kQ4_0p: the f16 scale of row `lane`'s block.
inline size_t PanelScaleOffset(DType dtype, size_t n, size_t lane, size_t block) {
  return n / 32 * PanelBlockBytes(dtype) + 32 * block + 2 * lane;
}
// The K panels: row `lane`'s scale `which` (0 or 1: the scale and min, kQ6_Kp's halves) of a
// block, one byte; and its f16 super-scale `which` (0 d, 1 dmin) of super-block `super`.
inline size_t PanelSubScaleOffset(DType dtype, size_t n, size_t lane, size_t block, size_t which) {
  return n / 32 * PanelBlockBytes(dtype) + 32 * block + 16 * which + lane;
}
inline size_t PanelSuperScaleOffset(DType dtype, size_t n, size_t lane, size_t super,
                                    size_t which) {
  return n / 32 * PanelBlockBytes(dtype) + n / 32 * 32 + PanelSuperBytes(dtype) * super +
         32 * which + 2 * lane;
}

// kBF16p and kF16p: rows per group, pairs per row (padded), the byte offset of row r's value
// j in a matrix of n columns, and which types these are.
inline constexpr size_t kHalfPanelRows = 16;
constexpr size_t HalfPanelPairs(size_t n) { return ((n + 1) / 2 + 15) / 16 * 16; }
constexpr size_t HalfPanelOffset(DType dtype, size_t n, size_t r, size_t j) {
  const size_t pair = 4 * (r / kHalfPanelRows * HalfPanelPairs(n) + j / 2) * kHalfPanelRows;
  return dtype == DType::kF16p ? pair + 2 * ((j % 2) * kHalfPanelRows + r % kHalfPanelRows)
                               : pair + 4 * (r % kHalfPanelRows) + 2 * (j % 2);
}
constexpr bool IsHalfPanelType(DType dtype) {
  return dtype == DType::kBF16p || dtype == DType::kF16p;
}

// The safetensors spelling ("F32", "BF16", ...).
std::string_view DTypeName(DType dtype);
// Parses a safetensors dtype string; false if unknown.
bool ParseDType(std::string_view name, DType* dtype);

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Round-to-nearest-even, NaN kept quiet (what torch's .to(bfloat16) does).
inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);  // round to nearest even; beyond f16's range → ±inf
// f16's largest finite value.
inline constexpr float kF16Max = 65504.0f;
// As F32ToF16, but values beyond ±kF16Max become ±kF16Max (NaN stays NaN): what a KV cache
// in f16 stores, so that an outlier costs precision, never an infinity.
inline uint16_t F32ToF16Saturated(float f) {
  return F32ToF16(f > kF16Max ? kF16Max : f < -kF16Max ? -kF16Max : f);
}

}  // namespace iris::tensor
