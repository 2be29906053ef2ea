// Safetensors reader: validates the header of one file, or of the shards of a checkpoint
// (model.safetensors.index.json), and hands out views into the memory-mapped data.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "engine/tensor/tensor.h"

namespace iris::formats {

struct TensorEntry {
  std::string name;
  tensor::TensorView view;  // points into the mapped file
  std::string file;         // which file holds it (for error messages)
  // The bytes are a read-only file mapping (their pages may be released once copied); false
  // for bytes some other owner holds in memory.
  bool mapped = false;
};

// What one safetensors image holds: its tensors (views into the image) and __metadata__.
struct SafetensorsContents {
  std::map<std::string, TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Checks a whole safetensors file image (header and data) without reading the data: header
// length within the image, valid JSON, known dtypes, offsets in range, sizes that match
// dtype × shape, and no two tensors overlapping. The views point into `bytes`, which must
// outlive them; `name` labels errors and TensorEntry::file.
Result<SafetensorsContents> ParseSafetensors(std::span<const uint8_t> bytes,
                                             const std::string& name);

// One .safetensors file, memory-mapped and checked by ParseSafetensors.
class SafetensorsFile {
 public:
  static Result<SafetensorsFile> Open(const std::string& path);

  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a checkpoint directory: model.safetensors, or the shards named by
// model.safetensors.index.json (every shard opened and checked against the index).
class WeightStore {
 public:
  static Result<WeightStore> OpenDir(const std::string& dir);
  // A store over explicit files (tests, tools).
  static Result<WeightStore> OpenFiles(const std::vector<std::string>& paths);
  // A store over tensors from elsewhere (a GGUF file, copies converted at load): `owners`
  // keep the bytes the views point at alive as long as the store (or a copy of it) lives.
  static WeightStore FromEntries(std::map<std::string, TensorEntry> entries,
                                 std::vector<std::shared_ptr<const void>> owners,
                                 std::string description);

  bool Has(const std::string& name) const { return entries_.count(name) != 0; }
  // The tensor `name`; NotFound naming the checkpoint if absent.
  Result<TensorEntry> Get(const std::string& name) const;
  // Like Get, and checks the shape: FailedPrecondition naming file, tensor, both shapes.
  Result<TensorEntry> Get(const std::string& name, const std::vector<int64_t>& shape) const;

  const std::map<std::string, TensorEntry>& entries() const { return entries_; }
  // Total bytes of tensor data.
  size_t total_bytes() const;
  const std::string& description() const { return description_; }

 private:
  std::vector<std::shared_ptr<const void>> owners_;  // the mapped files, or other owners
  std::map<std::string, TensorEntry> entries_;
  std::string description_;
};

}  // namespace iris::formats

namespace iris::formats {

// One tensor to write: raw little-endian bytes of dtype × shape.
struct TensorToWrite {
  std::string name;
  tensor::DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// Writes a safetensors file: header padded to 8 bytes, tensors ordered by element size
// (widest first) so that each is aligned to it.
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace iris::formats
