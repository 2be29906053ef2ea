// Binds a model's tensors from a checkpoint: checks name, shape and dtype, uses weights in
// place in the memory map where it can, and owns the few copies it must make.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/formats/safetensors.h"

namespace iris::model {

class WeightBinder {
 public:
  // narrow_exact_f32: F32 matrices whose values are all exactly BF16 (the published
  // SmolVLM2 files were trained in bf16 and saved as f32) are stored as BF16 once and their
  // mapped pages released: half the bytes per token, the same results bit for bit.
  WeightBinder(const formats::WeightStore& store, bool narrow_exact_f32)
      : store_(store), narrow_exact_f32_(narrow_exact_f32) {}

  // A weight of exactly `shape` in F32, BF16 or F16; errors name the file and the tensor.
  Result<tensor::TensorView> Bind(const std::string& name, const std::vector<int64_t>& shape);
  // A small weight (norm, bias, position table) converted to f32.
  Result<std::vector<float>> BindF32(const std::string& name, const std::vector<int64_t>& shape);

  // The copies made so far (narrowed or realigned tensors); the model keeps them alive.
  std::vector<std::vector<uint32_t>> TakeOwned() { return std::move(owned_); }

 private:
  const formats::WeightStore& store_;
  bool narrow_exact_f32_;
  std::vector<std::vector<uint32_t>> owned_;  // 32-bit words keep every copy aligned
};

}  // namespace iris::model
