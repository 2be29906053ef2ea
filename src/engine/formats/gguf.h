// GGUF reader: validates a whole .gguf file (header, metadata, tensor table, data layout)
// without reading the tensor data, and hands out views into the memory-mapped file. GGUF is
// llama.cpp's format: a text model (arch "llama" for SmolVLM2) and a vision "mmproj" file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "engine/tensor/quant.h"

namespace iris::formats {

// Metadata value types, numbered as in the file.
enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// One metadata value. Scalars: unsigned integers and bool in `u`, signed ones in `i`, floats
// in `f`, strings in `s`. Arrays: `elem` is the element type; strings in `strings`, numbers
// (any numeric or bool element type, as double) in `numbers`, arrays of arrays in `items`.
struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  GgufValueType elem = GgufValueType::kU8;
  std::vector<std::string> strings;
  std::vector<double> numbers;
  std::vector<GgufValue> items;
};

// One tensor: its type, its shape outermost first (the reverse of ggml's ne order, so a
// [rows, cols] matrix reads as safetensors writes it) and its bytes in the mapped file.
struct GgufTensor {
  std::string name;
  tensor::GgmlType type = tensor::GgmlType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;

  int64_t num_elements() const;
  int64_t row_elems() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const { return row_elems() == 0 ? 0 : num_elements() / row_elems(); }
  size_t row_bytes() const;
};

// What one GGUF image holds. Metadata accessors fail with a message naming the file and key
// (missing key, or a value of another type).
class GgufContents {
 public:
  std::map<std::string, GgufValue> metadata;
  std::map<std::string, GgufTensor> tensors;
  std::string path;
  uint32_t version = 0;
  uint64_t alignment = 32;

  bool Has(const std::string& key) const { return metadata.count(key) != 0; }
  // Any integer type (or bool) holding a value >= 0.
  Result<uint64_t> Uint(const std::string& key) const;
  // Any numeric type.
  Result<double> Float(const std::string& key) const;
  Result<std::string> String(const std::string& key) const;
  Result<bool> Bool(const std::string& key) const;
  Result<const std::vector<std::string>*> Strings(const std::string& key) const;
  Result<const std::vector<double>*> Numbers(const std::string& key) const;
  Result<const GgufTensor*> Tensor(const std::string& name) const;
};

// Checks a whole GGUF image: magic, version (2 or 3), every metadata key and value within the
// image and within bounds, known tensor types, at most 4 dimensions, rows whole blocks,
// aligned offsets inside the data section, and no two tensors overlapping. Types ggml has but
// iris does not read are an error naming the tensor and the type. `path` labels errors; the
// tensor views point into `bytes`, which must outlive them.
Result<GgufContents> ParseGguf(std::span<const uint8_t> bytes, const std::string& path);

// One .gguf file, memory-mapped and checked by ParseGguf.
class GgufFile {
 public:
  static Result<GgufFile> Open(const std::string& path);
  const GgufContents& contents() const { return contents_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  GgufContents contents_;
};

// True if the file starts with the GGUF magic (cheap: reads 4 bytes).
bool LooksLikeGguf(const std::string& path);

}  // namespace iris::formats

namespace iris::formats {

// One tensor to write: `bytes` hold its rows in ggml's layout for `type`.
struct GgufTensorToWrite {
  std::string name;
  tensor::GgmlType type = tensor::GgmlType::kF32;
  std::vector<int64_t> shape;  // outermost first, as GgufTensor::shape
  std::span<const uint8_t> bytes;
};

// A tensor's entry in the table a streaming writer writes first.
struct GgufTensorInfo {
  std::string name;
  tensor::GgmlType type = tensor::GgmlType::kF32;
  std::vector<int64_t> shape;  // outermost first
  size_t num_bytes() const;    // of its data, in ggml's layout for `type`
};

// A GGUF version 3 image: the metadata in the order given (general.alignment, when present,
// must be the `alignment` used), then the tensor table, then the data, each tensor aligned.
// Names and keys are written as given, twice if given twice (tests make damaged images so).
Result<std::string> SerializeGguf(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                                  const std::vector<GgufTensorToWrite>& tensors,
                                  uint32_t alignment = 32);
// The same image written to `path` (through GgufWriter).
Status WriteGguf(const std::string& path,
                 const std::vector<std::pair<std::string, GgufValue>>& metadata,
                 const std::vector<GgufTensorToWrite>& tensors, uint32_t alignment = 32);

// A GGUF file written a tensor at a time, so a model need not fit in memory twice: Create
// writes the metadata and the tensor table (sizes from each tensor's type and shape) to
// `path`.partial; Append writes the next tensor's bytes, in table order; Finish checks every
// tensor was written and renames the file into place. A writer destroyed before Finish, or one
// whose write failed, removes its partial file. A key or tensor name given twice is refused.
class GgufWriter {
 public:
  static Result<std::unique_ptr<GgufWriter>> Create(
      const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
      std::vector<GgufTensorInfo> tensors, uint32_t alignment = 32);
  Status Append(std::span<const uint8_t> bytes);
  Status Finish();
  ~GgufWriter();

 private:
  GgufWriter();
  struct State;
  std::unique_ptr<State> s_;
};

// Metadata values for writers.
GgufValue GgufString(std::string s);
GgufValue GgufU32(uint32_t v);
GgufValue GgufF32(float v);
GgufValue GgufBool(bool v);
GgufValue GgufStrings(std::vector<std::string> v);
GgufValue GgufNumbers(GgufValueType elem, std::vector<double> v);

}  // namespace iris::formats
