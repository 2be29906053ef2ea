#include "engine/tensor/dtype.h"

#include <cmath>

namespace iris::tensor {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kBF16p:
    case DType::kF16p:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
    case DType::kQ8_0:
    case DType::kQ8_0x:
    case DType::kQ8_0p:
    case DType::kQ4_0:
    case DType::kQ4_0p:
    case DType::kQ4_K:
    case DType::kQ4_Kp:
    case DType::kQ5_K:
    case DType::kQ5_Kp:
    case DType::kQ6_K:
    case DType::kQ6_Kp:
      return 1;
  }
  return 0;
}

size_t RowBytes(DType dtype, size_t n) {
  if (dtype == DType::kQ8_0) return n / 32 * 34;
  if (dtype == DType::kQ8_0x) return Q8xScaleBytes(n) + Q8xValueBytes(n);
  if (IsPanelType(dtype)) return PanelBytes(dtype, n) / kQ8PanelRows;
  if (dtype == DType::kQ4_0) return n / 32 * 18;
  if (dtype == DType::kQ4_K) return n / kKSuperBlock * 144;
  if (dtype == DType::kQ5_K) return n / kKSuperBlock * 176;
  if (dtype == DType::kQ6_K) return n / kKSuperBlock * 210;
  if (IsHalfPanelType(dtype)) return 4 * HalfPanelPairs(n);
  return n * DTypeSize(dtype);
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kF64:
      return "F64";
    case DType::kI64:
      return "I64";
    case DType::kI32:
      return "I32";
    case DType::kI16:
      return "I16";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kBool:
      return "BOOL";
    case DType::kQ8_0:
      return "Q8_0";
    case DType::kQ8_0x:
      return "Q8_0x";
    case DType::kQ8_0p:
      return "Q8_0p";
    case DType::kQ4_0:
      return "Q4_0";
    case DType::kQ4_0p:
      return "Q4_0p";
    case DType::kQ4_K:
      return "Q4_K";
    case DType::kQ4_Kp:
      return "Q4_Kp";
    case DType::kQ5_K:
      return "Q5_K";
    case DType::kQ5_Kp:
      return "Q5_Kp";
    case DType::kQ6_K:
      return "Q6_K";
    case DType::kQ6_Kp:
      return "Q6_Kp";
    case DType::kBF16p:
      return "BF16p";
    case DType::kF16p:
      return "F16p";
  }
  return "?";
}

bool ParseDType(std::string_view name, DType* dtype) {
  static constexpr struct {
    std::string_view name;
    DType dtype;
  } kTable[] = {{"F32", DType::kF32},  {"F16", DType::kF16}, {"BF16", DType::kBF16},
                {"F64", DType::kF64},  {"I64", DType::kI64}, {"I32", DType::kI32},
                {"I16", DType::kI16},  {"I8", DType::kI8},   {"U8", DType::kU8},
                {"BOOL", DType::kBool}};
  for (const auto& e : kTable) {
    if (e.name == name) {
      *dtype = e.dtype;
      return true;
    }
  }
  return false;
}

float F16ToF32(uint16_t h) {
  uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::nanf("") : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

uint16_t F32ToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow → inf
  if (abs < 0x38800000u) {                                               // subnormal
    float a;
    std::memcpy(&a, &abs, sizeof(a));
    uint32_t m = static_cast<uint32_t>(std::nearbyint(a * 16777216.0f));  // 2^24
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t rounding = 0xfffu + ((abs >> 13) & 1u);
  abs += rounding;
  return static_cast<uint16_t>(sign | ((abs - 0x38000000u) >> 13));
}

}  // namespace iris::tensor
