#include "engine/tensor/quant.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>

#include "engine/tensor/dtype.h"

// Every value below is the same sequence of f32 operations gguf-py's numpy code performs (a
// product, then a sum, each rounded): this file is compiled with -ffp-contract=off so that no
// multiply-add is fused where numpy rounds twice.

namespace iris::tensor {
namespace {

constexpr size_t kQK = 256;  // values per super-block of the K types

constexpr std::array<GgmlTypeInfo, 11> kTypes = {{
    {GgmlType::kF32, "F32", 1, 4},
    {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", 32, 2 + 16},
    {GgmlType::kQ4_1, "Q4_1", 32, 2 + 2 + 16},
    {GgmlType::kQ5_0, "Q5_0", 32, 2 + 4 + 16},
    {GgmlType::kQ5_1, "Q5_1", 32, 2 + 2 + 4 + 16},
    {GgmlType::kQ8_0, "Q8_0", 32, 2 + 32},
    {GgmlType::kQ4_K, "Q4_K", kQK, 2 + 2 + 12 + kQK / 2},
    {GgmlType::kQ5_K, "Q5_K", kQK, 2 + 2 + 12 + kQK / 8 + kQK / 2},
    {GgmlType::kQ6_K, "Q6_K", kQK, kQK / 2 + kQK / 4 + kQK / 16 + 2},
    {GgmlType::kBF16, "BF16", 1, 2},
}};

// ggml's names for the types iris does not read (numbers as in the GGUF files).
constexpr std::array<std::pair<uint32_t, std::string_view>, 26> kOtherNames = {{
    {4, "Q4_2"},      {5, "Q4_3"},      {9, "Q8_1"},      {10, "Q2_K"},    {11, "Q3_K"},
    {15, "Q8_K"},     {16, "IQ2_XXS"},  {17, "IQ2_XS"},   {18, "IQ3_XXS"}, {19, "IQ1_S"},
    {20, "IQ4_NL"},   {21, "IQ3_S"},    {22, "IQ2_S"},    {23, "IQ4_XS"},  {24, "I8"},
    {25, "I16"},      {26, "I32"},      {27, "I64"},      {28, "F64"},     {29, "IQ1_M"},
    {31, "Q4_0_4_4"}, {32, "Q4_0_4_8"}, {33, "Q4_0_8_8"}, {34, "TQ1_0"},   {35, "TQ2_0"},
    {39, "MXFP4"},
}};

float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
void ScaleMinK(const uint8_t* scales, size_t j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 2) & 0x30));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 2) & 0x30));
  }
}

// Low 4 bits of value i (0..31) of a 32-value block whose nibbles are packed 16 bytes wide.
int Nibble(const uint8_t* qs, size_t i) { return i < 16 ? qs[i] & 0x0F : qs[i - 16] >> 4; }

void BlockQ4_0(const uint8_t* b, float* y) {
  const float d = Half(b);
  for (size_t i = 0; i < 32; ++i) y[i] = d * static_cast<float>(Nibble(b + 2, i) - 8);
}

void BlockQ4_1(const uint8_t* b, float* y) {
  const float d = Half(b), m = Half(b + 2);
  for (size_t i = 0; i < 32; ++i) {
    const float p = d * static_cast<float>(Nibble(b + 4, i));
    y[i] = p + m;
  }
}

void BlockQ5_0(const uint8_t* b, float* y) {
  const float d = Half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (size_t i = 0; i < 32; ++i) {
    const int q = (Nibble(b + 6, i) | static_cast<int>(((qh >> i) & 1u) << 4)) - 16;
    y[i] = d * static_cast<float>(q);
  }
}

void BlockQ5_1(const uint8_t* b, float* y) {
  const float d = Half(b), m = Half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (size_t i = 0; i < 32; ++i) {
    const int q = Nibble(b + 8, i) | static_cast<int>(((qh >> i) & 1u) << 4);
    const float p = d * static_cast<float>(q);
    y[i] = p + m;
  }
}

void BlockQ8_0(const uint8_t* b, float* y) {
  const float d = Half(b);
  for (size_t i = 0; i < 32; ++i) y[i] = static_cast<float>(static_cast<int8_t>(b[2 + i])) * d;
}

// The level q of value i (0..31) of sub-block s (0..7) of a Q4_K (0..15: nibbles at byte 16)
// or Q5_K (0..31: a fifth bit from qh at byte 16, the nibbles at byte 48) super-block.
int K45Level(const uint8_t* b, bool q5, size_t s, size_t i) {
  const uint8_t* qs = b + (q5 ? 16 + kQK / 8 : 16);
  const int low = (qs[32 * (s / 2) + i] >> (4 * (s % 2))) & 0x0F;
  return q5 ? low | ((b[16 + i] >> s) & 1) << 4 : low;
}

// Q4_K and Q5_K: eight sub-blocks of 32 with 6-bit scales and mins.
void BlockK45(const uint8_t* b, bool q5, float* y) {
  const float d = Half(b), dmin = Half(b + 2);
  const uint8_t* scales = b + 4;
  for (size_t s = 0; s < 8; ++s) {
    uint8_t sc, m;
    ScaleMinK(scales, s, &sc, &m);
    const float ds = d * static_cast<float>(sc);
    const float dm = dmin * static_cast<float>(m);
    for (size_t i = 0; i < 32; ++i) {
      const float p = ds * static_cast<float>(K45Level(b, q5, s, i));
      y[32 * s + i] = p - dm;
    }
  }
}

// The level q (0..63) of value e (0..255) of a Q6_K super-block: 4 low bits in ql, 2 high
// bits in qh; the value is (d · scale[e / 16]) · (q − 32).
int Q6Level(const uint8_t* b, size_t e) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + kQK / 2;
  const size_t half = e / 128, r = e % 128;
  const int low = r < 64 ? ql[64 * half + r] & 0x0F : ql[64 * half + r - 64] >> 4;
  const int high = (qh[32 * half + r % 32] >> (2 * (r / 32))) & 3;
  return low | (high << 4);
}
int8_t Q6Scale(const uint8_t* b, size_t e) {
  return static_cast<int8_t>(b[kQK / 2 + kQK / 4 + e / 16]);
}
constexpr size_t kQ6SuperScale = kQK / 2 + kQK / 4 + kQK / 16;  // where d sits

void BlockQ6_K(const uint8_t* b, float* y) {
  const float d = Half(b + kQ6SuperScale);
  for (size_t e = 0; e < kQK; ++e) {
    const float ds = d * static_cast<float>(Q6Scale(b, e));
    y[e] = ds * static_cast<float>(Q6Level(b, e) - 32);
  }
}

}  // namespace

const GgmlTypeInfo* FindGgmlType(uint32_t id) {
  for (const GgmlTypeInfo& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return &t;
  }
  return nullptr;
}

const GgmlTypeInfo& GgmlInfo(GgmlType type) { return *FindGgmlType(static_cast<uint32_t>(type)); }

namespace {

constexpr std::array<std::pair<GgmlType, DType>, 8> kStored = {{
    {GgmlType::kF32, DType::kF32},
    {GgmlType::kF16, DType::kF16},
    {GgmlType::kBF16, DType::kBF16},
    {GgmlType::kQ8_0, DType::kQ8_0},
    {GgmlType::kQ4_0, DType::kQ4_0},
    {GgmlType::kQ4_K, DType::kQ4_K},
    {GgmlType::kQ5_K, DType::kQ5_K},
    {GgmlType::kQ6_K, DType::kQ6_K},
}};

}  // namespace

std::optional<DType> StoredDType(GgmlType type) {
  for (const auto& [g, d] : kStored) {
    if (g == type) return d;
  }
  return std::nullopt;
}

std::optional<GgmlType> StoredGgmlType(DType dtype) {
  for (const auto& [g, d] : kStored) {
    if (d == dtype) return g;
  }
  return std::nullopt;
}

std::string GgmlTypeName(uint32_t id) {
  if (const GgmlTypeInfo* t = FindGgmlType(id)) return std::string(t->name);
  for (const auto& [n, name] : kOtherNames) {
    if (n == id) return std::string(name);
  }
  return "type " + std::to_string(id);
}

bool ParseGgmlType(std::string_view name, GgmlType* type) {
  for (const GgmlTypeInfo& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::toupper(static_cast<unsigned char>(name[i])) == t.name[i];
    }
    if (same) {
      *type = t.type;
      return true;
    }
  }
  return false;
}

void DequantizeRow(GgmlType type, const void* src, size_t n, float* dst) {
  const auto* p = static_cast<const uint8_t*>(src);
  const GgmlTypeInfo& info = GgmlInfo(type);
  const size_t blocks = n / info.block_elems;
  for (size_t k = 0; k < blocks; ++k, p += info.block_bytes) {
    float* y = dst + k * info.block_elems;
    switch (type) {
      case GgmlType::kF32:
        std::memcpy(y, p, 4);
        break;
      case GgmlType::kF16:
        *y = Half(p);
        break;
      case GgmlType::kBF16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        *y = Bf16ToF32(h);
        break;
      }
      case GgmlType::kQ4_0:
        BlockQ4_0(p, y);
        break;
      case GgmlType::kQ4_1:
        BlockQ4_1(p, y);
        break;
      case GgmlType::kQ5_0:
        BlockQ5_0(p, y);
        break;
      case GgmlType::kQ5_1:
        BlockQ5_1(p, y);
        break;
      case GgmlType::kQ8_0:
        BlockQ8_0(p, y);
        break;
      case GgmlType::kQ4_K:
        BlockK45(p, /*q5=*/false, y);
        break;
      case GgmlType::kQ5_K:
        BlockK45(p, /*q5=*/true, y);
        break;
      case GgmlType::kQ6_K:
        BlockQ6_K(p, y);
        break;
    }
  }
}

void RepackRowQ8_0x(const uint8_t* q8_0_row, size_t n, uint8_t* dst) {
  const size_t scale_bytes = Q8xScaleBytes(n), value_bytes = Q8xValueBytes(n);
  std::memset(dst, 0, scale_bytes + value_bytes);
  for (size_t b = 0; b < n / 32; ++b) {
    std::memcpy(dst + 2 * b, q8_0_row + 34 * b, 2);
    std::memcpy(dst + scale_bytes + 32 * b, q8_0_row + 34 * b + 2, 32);
  }
}

void DequantizeRowQ8_0x(const uint8_t* row, size_t n, float* dst) {
  const size_t scale_bytes = Q8xScaleBytes(n);
  for (size_t b = 0; b < n / 32; ++b) {
    const float d = Half(row + 2 * b);
    for (size_t i = 0; i < 32; ++i) {
      dst[32 * b + i] = static_cast<float>(static_cast<int8_t>(row[scale_bytes + 32 * b + i])) * d;
    }
  }
}

namespace {

// Where each value of a block goes in a panel: the same places in every block, a block's
// bytes apart (PanelValueOffset and PanelValueShift, and PanelHighOffset and PanelHighShift
// for the bits above a nibble, worked out once per panel).
struct BlockPlaces {
  explicit BlockPlaces(DType panel_type)
      : block_bytes(PanelBlockBytes(panel_type)), high_bits(PanelHighBits(panel_type)) {
    for (size_t lane = 0; lane < kQ8PanelRows; ++lane) {
      for (size_t i = 0; i < 32; ++i) {
        offset[lane][i] = static_cast<uint16_t>(PanelValueOffset(panel_type, lane, i));
        if (high_bits > 0) {
          high_offset[lane][i] = static_cast<uint16_t>(PanelHighOffset(panel_type, lane, i));
        }
      }
    }
    for (size_t i = 0; i < 32; ++i) {
      shift[i] = static_cast<uint8_t>(PanelValueShift(panel_type, i));
      if (high_bits > 0) high_shift[i] = static_cast<uint8_t>(PanelHighShift(panel_type, i));
    }
  }
  // ORs the 32 stored values of row `lane`'s block into `block` (block_bytes, zeroed first).
  void Put(uint8_t* block, size_t lane, const uint8_t* stored) const {
    for (size_t i = 0; i < 32; ++i) {
      const int low = high_bits > 0 ? stored[i] & 0x0F : stored[i];
      block[offset[lane][i]] = static_cast<uint8_t>(block[offset[lane][i]] | low << shift[i]);
      if (high_bits > 0) {
        uint8_t& at = block[high_offset[lane][i]];
        at = static_cast<uint8_t>(at | stored[i] >> 4 << high_shift[i]);
      }
    }
  }
  size_t block_bytes, high_bits;
  uint16_t offset[kQ8PanelRows][32], high_offset[kQ8PanelRows][32] = {};
  uint8_t shift[32], high_shift[32] = {};
};

}  // namespace

void RepackPanel(DType panel_type, const uint8_t* rows, size_t row_stride, size_t n,
                 uint8_t* panel) {
  const BlockPlaces places(panel_type);
  const size_t nb = n / 32, values_bytes = nb * places.block_bytes;
  // The scales (and the padding after them) are zeroed, then written as they come; each
  // block of values is assembled in `block` and written once, whole.
  std::memset(panel + values_bytes, 0, PanelBytes(panel_type, n) - values_bytes);
  const bool k = IsKPanelType(panel_type);
  const bool q6 = panel_type == DType::kQ6_Kp, q5 = panel_type == DType::kQ5_Kp;
  const bool q4 = panel_type == DType::kQ4_0p;
  // Bytes per block of 32 (Q8_0, Q4_0) or per super-block of 256 (the K formats).
  const size_t unit_bytes = q6 ? 210 : q5 ? 176 : k ? 144 : q4 ? 18 : 34;
  alignas(64) uint8_t block[512];
  uint8_t stored[32];
  for (size_t b = 0; b < nb; ++b) {
    std::memset(block, 0, places.block_bytes);
    for (size_t lane = 0; lane < kQ8PanelRows; ++lane) {
      const uint8_t* row = rows + lane * row_stride;
      if (!k) {
        const uint8_t* blk = row + unit_bytes * b;
        std::memcpy(panel + PanelScaleOffset(panel_type, n, lane, b), blk, 2);
        // Stored unsigned: Q4_0's level (value + 8) as a nibble, Q8_0's value + 128.
        for (size_t i = 0; i < 32; ++i) {
          stored[i] = static_cast<uint8_t>(q4 ? Nibble(blk + 2, i) : blk[2 + i] ^ 0x80);
        }
        places.Put(block, lane, stored);
        continue;
      }
      const size_t sb = b / 8, s = b % 8;
      const uint8_t* sup = row + unit_bytes * sb;
      if (s == 0) {
        for (size_t which = 0; which < (q6 ? 1u : 2u); ++which) {
          std::memcpy(panel + PanelSuperScaleOffset(panel_type, n, lane, sb, which),
                      q6 ? sup + kQ6SuperScale : sup + 2 * which, 2);
        }
      }
      uint8_t first, second;
      if (q6) {
        first = static_cast<uint8_t>(Q6Scale(sup, 32 * s));
        second = static_cast<uint8_t>(Q6Scale(sup, 32 * s + 16));
      } else {
        ScaleMinK(sup + 4, s, &first, &second);
      }
      panel[PanelSubScaleOffset(panel_type, n, lane, b, 0)] = first;
      panel[PanelSubScaleOffset(panel_type, n, lane, b, 1)] = second;
      for (size_t i = 0; i < 32; ++i) {
        stored[i] = static_cast<uint8_t>(q6 ? Q6Level(sup, 32 * s + i) : K45Level(sup, q5, s, i));
      }
      places.Put(block, lane, stored);
    }
    std::memcpy(panel + b * places.block_bytes, block, places.block_bytes);
  }
}

float PanelValue(DType dtype, const void* data, size_t n, size_t row, size_t j) {
  const auto* panel = static_cast<const uint8_t*>(data) + row / kQ8PanelRows * PanelBytes(dtype, n);
  const size_t lane = row % kQ8PanelRows;
  const int stored = PanelLevel(dtype, panel, lane, j);
  switch (dtype) {
    case DType::kQ4_Kp:
    case DType::kQ5_Kp: {  // (d · sc) · q − dmin · m, as BlockK45
      const float d = Half(panel + PanelSuperScaleOffset(dtype, n, lane, j / kQK, 0));
      const float dmin = Half(panel + PanelSuperScaleOffset(dtype, n, lane, j / kQK, 1));
      const float ds =
          d * static_cast<float>(panel[PanelSubScaleOffset(dtype, n, lane, j / 32, 0)]);
      const float dm =
          dmin * static_cast<float>(panel[PanelSubScaleOffset(dtype, n, lane, j / 32, 1)]);
      const float p = ds * static_cast<float>(stored);
      return p - dm;
    }
    case DType::kQ6_Kp: {  // (d · sc) · (q − 32), as BlockQ6_K
      const float d = Half(panel + PanelSuperScaleOffset(dtype, n, lane, j / kQK, 0));
      const auto sc =
          static_cast<int8_t>(panel[PanelSubScaleOffset(dtype, n, lane, j / 32, j % 32 / 16)]);
      const float ds = d * static_cast<float>(sc);
      return ds * static_cast<float>(stored - 32);
    }
    default:
      break;
  }
  const float d = Half(panel + PanelScaleOffset(dtype, n, lane, j / 32));
  // kQ8_0p holds value + 128, kQ4_0p the Q4_0 level (value + 8) in a nibble.
  const int q = dtype == DType::kQ4_0p ? stored - 8 : stored - 128;
  // The products the Q4_0 and Q8_0 dequantizers compute: d · (q − 8) and q · d.
  return dtype == DType::kQ4_0p ? d * static_cast<float>(q) : static_cast<float>(q) * d;
}

void DequantizePanelRow(DType dtype, const void* data, size_t n, size_t row, float* dst) {
  for (size_t j = 0; j < n; ++j) dst[j] = PanelValue(dtype, data, n, row, j);
}

void QuantizeRowQ4_0(const float* x, size_t n, uint8_t* dst) {
  for (size_t b = 0; b < n / 32; ++b, x += 32, dst += 18) {
    float amax = 0, max = 0;
    for (size_t i = 0; i < 32; ++i) {
      if (amax < std::fabs(x[i])) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t h = F32ToF16(d);
    std::memcpy(dst, &h, 2);
    // min(15, trunc(x · id + 8.5)); x · id + 8.5 is in [0.5, 16.5] unless id overflowed
    // (a block whose largest value is below ~2.3e-38): clamped first, so the conversion is
    // always defined, and a NaN becomes 8 (the value 0).
    auto level = [&](float v) {
      const float r = v * id + 8.5f;
      return r == r ? static_cast<int>(std::clamp(r, 0.0f, 15.0f)) : 8;
    };
    for (size_t j = 0; j < 16; ++j) {
      dst[2 + j] = static_cast<uint8_t>(level(x[j]) | level(x[16 + j]) << 4);
    }
  }
}

void WidenRowToQ8_0(GgmlType type, const uint8_t* row, size_t n, uint8_t* q8_0_row) {
  const bool q5 = type == GgmlType::kQ5_0;
  const size_t block_bytes = q5 ? 22 : 18;
  for (size_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = row + block_bytes * b;
    uint8_t* out = q8_0_row + 34 * b;
    std::memcpy(out, blk, 2);
    uint32_t qh = 0;
    if (q5) std::memcpy(&qh, blk + 2, 4);
    for (size_t i = 0; i < 32; ++i) {
      const int q = q5 ? (Nibble(blk + 6, i) | static_cast<int>(((qh >> i) & 1u) << 4)) - 16
                       : Nibble(blk + 2, i) - 8;
      out[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

void QuantizeRowQ8_0(const float* x, size_t n, uint8_t* dst) {
  for (size_t b = 0; b < n / 32; ++b, x += 32, dst += 34) {
    float amax = 0;
    for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t h = F32ToF16(d);
    std::memcpy(dst, &h, 2);
    for (size_t i = 0; i < 32; ++i) {
      // Finite weights give |q| <= 127; a NaN or infinity becomes 0 or ±127, never a cast
      // out of range.
      const float q = std::round(x[i] * id);
      dst[2 + i] =
          static_cast<uint8_t>(static_cast<int8_t>(q == q ? std::clamp(q, -127.0f, 127.0f) : 0.0f));
    }
  }
}

}  // namespace iris::tensor
