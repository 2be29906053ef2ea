#include "engine/formats/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <string_view>

#include "engine/tensor/tensor.h"

namespace iris::formats {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read little-endian
constexpr size_t kMaxKeyBytes = 65535;
constexpr size_t kMaxTensorNameBytes = 256;
constexpr int kMaxArrayDepth = 4;
// Metadata values held in memory, over all arrays of a file (a vocabulary of 150k tokens with
// merges, types and scores is under a million): a count the file could hold but no tokenizer
// needs cannot make the reader allocate gigabytes.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 25;
constexpr size_t kReserveAtMost = 1 << 16;
constexpr uint32_t kMaxDims = 4;

std::string TypeName(GgufValueType t) {
  static constexpr const char* kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                           "int32",  "float32", "bool",   "string", "array",
                                           "uint64", "int64",   "float64"};
  const auto n = static_cast<uint32_t>(t);
  return n < 13 ? kNames[n] : "type " + std::to_string(n);
}

// Bytes of one scalar of type t (0 for string and array).
size_t ScalarBytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

// A bounds-checked little-endian cursor over the image; every failure says what it was
// reading and where.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  size_t pos() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }

  Status Need(size_t n, const std::string& what) const {
    if (n > left()) {
      return DataLossIn(path_, what + " at byte " + std::to_string(pos_) +
                                   " runs past the end of the " + std::to_string(bytes_.size()) +
                                   "-byte file (truncated?)");
    }
    return OkStatus();
  }
  template <typename T>
  Result<T> Read(const std::string& what) {
    IRIS_RETURN_IF_ERROR(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string> String(const std::string& what, size_t max_bytes) {
    IRIS_ASSIGN_OR_RETURN(uint64_t n, Read<uint64_t>(what + " length"));
    if (n > max_bytes) {
      return DataLossIn(path_, what + " at byte " + std::to_string(pos_ - 8) + " claims " +
                                   std::to_string(n) + " bytes (at most " +
                                   std::to_string(max_bytes) + ")");
    }
    IRIS_RETURN_IF_ERROR(Need(static_cast<size_t>(n), what));
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  Status Value(GgufValueType type, const std::string& what, int depth, GgufValue* out);
  const std::string& path() const { return path_; }

 private:
  uint64_t values_ = 0;  // array elements read so far (kMaxMetadataValues)
  std::span<const uint8_t> bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

Status Reader::Value(GgufValueType type, const std::string& what, int depth, GgufValue* out) {
  out->type = type;
  switch (type) {
    case GgufValueType::kU8: {
      IRIS_ASSIGN_OR_RETURN(uint8_t v, Read<uint8_t>(what));
      out->u = v;
      return OkStatus();
    }
    case GgufValueType::kBool: {
      IRIS_ASSIGN_OR_RETURN(uint8_t v, Read<uint8_t>(what));
      if (v > 1)
        return DataLossIn(path_, what + ": bool value " + std::to_string(v) + " is not 0 or 1");
      out->u = v;
      return OkStatus();
    }
    case GgufValueType::kU16: {
      IRIS_ASSIGN_OR_RETURN(uint16_t v, Read<uint16_t>(what));
      out->u = v;
      return OkStatus();
    }
    case GgufValueType::kU32: {
      IRIS_ASSIGN_OR_RETURN(uint32_t v, Read<uint32_t>(what));
      out->u = v;
      return OkStatus();
    }
    case GgufValueType::kU64: {
      IRIS_ASSIGN_OR_RETURN(uint64_t v, Read<uint64_t>(what));
      out->u = v;
      return OkStatus();
    }
    case GgufValueType::kI8: {
      IRIS_ASSIGN_OR_RETURN(int8_t v, Read<int8_t>(what));
      out->i = v;
      return OkStatus();
    }
    case GgufValueType::kI16: {
      IRIS_ASSIGN_OR_RETURN(int16_t v, Read<int16_t>(what));
      out->i = v;
      return OkStatus();
    }
    case GgufValueType::kI32: {
      IRIS_ASSIGN_OR_RETURN(int32_t v, Read<int32_t>(what));
      out->i = v;
      return OkStatus();
    }
    case GgufValueType::kI64: {
      IRIS_ASSIGN_OR_RETURN(int64_t v, Read<int64_t>(what));
      out->i = v;
      return OkStatus();
    }
    case GgufValueType::kF32: {
      IRIS_ASSIGN_OR_RETURN(float v, Read<float>(what));
      out->f = v;
      return OkStatus();
    }
    case GgufValueType::kF64: {
      IRIS_ASSIGN_OR_RETURN(double v, Read<double>(what));
      out->f = v;
      return OkStatus();
    }
    case GgufValueType::kString: {
      IRIS_ASSIGN_OR_RETURN(out->s, String(what, left()));
      return OkStatus();
    }
    case GgufValueType::kArray:
      break;
  }
  if (type != GgufValueType::kArray) {
    return DataLossIn(path_,
                      what + ": unknown value type " + std::to_string(static_cast<uint32_t>(type)));
  }
  if (depth >= kMaxArrayDepth) {
    return DataLossIn(path_,
                      what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  }
  IRIS_ASSIGN_OR_RETURN(uint32_t elem, Read<uint32_t>(what + " element type"));
  if (elem > static_cast<uint32_t>(GgufValueType::kF64)) {
    return DataLossIn(path_, what + ": unknown array element type " + std::to_string(elem));
  }
  out->elem = static_cast<GgufValueType>(elem);
  IRIS_ASSIGN_OR_RETURN(uint64_t count, Read<uint64_t>(what + " element count"));
  // Every element takes at least a byte (a string or an array at least 8): a count the rest
  // of the file cannot hold is refused before anything is allocated for it.
  const size_t min_bytes = ScalarBytes(out->elem) == 0 ? 8 : ScalarBytes(out->elem);
  if (count > left() / min_bytes) {
    return DataLossIn(path_, what + ": array of " + std::to_string(count) + " " +
                                 TypeName(out->elem) +
                                 " values does not fit in the rest of the file (truncated?)");
  }
  values_ += count;
  if (values_ > kMaxMetadataValues) {
    return DataLossIn(path_, what + ": the metadata holds more than " +
                                 std::to_string(kMaxMetadataValues) + " array values");
  }
  const size_t reserve = static_cast<size_t>(std::min<uint64_t>(count, kReserveAtMost));
  if (out->elem == GgufValueType::kString) {
    out->strings.reserve(reserve);
    for (uint64_t k = 0; k < count; ++k) {
      IRIS_ASSIGN_OR_RETURN(std::string s, String(what + "[" + std::to_string(k) + "]", left()));
      out->strings.push_back(std::move(s));
    }
  } else if (out->elem == GgufValueType::kArray) {
    out->items.reserve(reserve);
    for (uint64_t k = 0; k < count; ++k) {
      GgufValue item;
      IRIS_RETURN_IF_ERROR(
          Value(GgufValueType::kArray, what + "[" + std::to_string(k) + "]", depth + 1, &item));
      out->items.push_back(std::move(item));
    }
  } else {
    out->numbers.reserve(reserve);
    GgufValue v;
    for (uint64_t k = 0; k < count; ++k) {
      IRIS_RETURN_IF_ERROR(Value(out->elem, what, depth + 1, &v));
      switch (out->elem) {
        case GgufValueType::kF32:
        case GgufValueType::kF64:
          out->numbers.push_back(v.f);
          break;
        case GgufValueType::kI8:
        case GgufValueType::kI16:
        case GgufValueType::kI32:
        case GgufValueType::kI64:
          out->numbers.push_back(static_cast<double>(v.i));
          break;
        default:
          out->numbers.push_back(static_cast<double>(v.u));
      }
    }
  }
  return OkStatus();
}

bool IsInteger(GgufValueType t) {
  return t != GgufValueType::kF32 && t != GgufValueType::kF64 && t != GgufValueType::kString &&
         t != GgufValueType::kArray;
}
bool IsSigned(GgufValueType t) {
  return t == GgufValueType::kI8 || t == GgufValueType::kI16 || t == GgufValueType::kI32 ||
         t == GgufValueType::kI64;
}

}  // namespace

int64_t GgufTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t GgufTensor::row_bytes() const {
  const tensor::GgmlTypeInfo& info = tensor::GgmlInfo(type);
  return static_cast<size_t>(row_elems()) / info.block_elems * info.block_bytes;
}

namespace {

Result<const GgufValue*> FindValue(const GgufContents& c, const std::string& key) {
  auto it = c.metadata.find(key);
  if (it == c.metadata.end()) return NotFound(c.path + ": no metadata key '" + key + "'");
  return &it->second;
}

Status WrongType(const GgufContents& c, const std::string& key, const GgufValue& v,
                 const std::string& want) {
  std::string got = TypeName(v.type);
  if (v.type == GgufValueType::kArray) got = "array of " + TypeName(v.elem);
  return DataLoss(c.path + ": metadata '" + key + "' is " + got + ", expected " + want);
}
}  // namespace

Result<uint64_t> GgufContents::Uint(const std::string& key) const {
  IRIS_ASSIGN_OR_RETURN(const GgufValue* v, FindValue(*this, key));
  if (!IsInteger(v->type)) return WrongType(*this, key, *v, "an integer");
  if (IsSigned(v->type)) {
    if (v->i < 0) {
      return DataLoss(path + ": metadata '" + key + "' is " + std::to_string(v->i) +
                      ", expected a value >= 0");
    }
    return static_cast<uint64_t>(v->i);
  }
  return v->u;
}

Result<double> GgufContents::Float(const std::string& key) const {
  IRIS_ASSIGN_OR_RETURN(const GgufValue* v, FindValue(*this, key));
  if (v->type == GgufValueType::kF32 || v->type == GgufValueType::kF64) return v->f;
  if (!IsInteger(v->type)) return WrongType(*this, key, *v, "a number");
  return IsSigned(v->type) ? static_cast<double>(v->i) : static_cast<double>(v->u);
}

Result<std::string> GgufContents::String(const std::string& key) const {
  IRIS_ASSIGN_OR_RETURN(const GgufValue* v, FindValue(*this, key));
  if (v->type != GgufValueType::kString) return WrongType(*this, key, *v, "a string");
  return v->s;
}

Result<bool> GgufContents::Bool(const std::string& key) const {
  IRIS_ASSIGN_OR_RETURN(const GgufValue* v, FindValue(*this, key));
  if (v->type != GgufValueType::kBool) return WrongType(*this, key, *v, "a bool");
  return v->u != 0;
}

Result<const std::vector<std::string>*> GgufContents::Strings(const std::string& key) const {
  IRIS_ASSIGN_OR_RETURN(const GgufValue* v, FindValue(*this, key));
  if (v->type != GgufValueType::kArray || v->elem != GgufValueType::kString) {
    return WrongType(*this, key, *v, "an array of strings");
  }
  return &v->strings;
}

Result<const std::vector<double>*> GgufContents::Numbers(const std::string& key) const {
  IRIS_ASSIGN_OR_RETURN(const GgufValue* v, FindValue(*this, key));
  if (v->type != GgufValueType::kArray || v->elem == GgufValueType::kString ||
      v->elem == GgufValueType::kArray) {
    return WrongType(*this, key, *v, "an array of numbers");
  }
  return &v->numbers;
}

Result<const GgufTensor*> GgufContents::Tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) return NotFound(path + ": missing tensor '" + name + "'");
  return &it->second;
}

Result<GgufContents> ParseGguf(std::span<const uint8_t> bytes, const std::string& path) {
  GgufContents c;
  c.path = path;
  Reader r(bytes, path);
  if (bytes.size() < 4) {
    return DataLossIn(path,
                      "file is " + std::to_string(bytes.size()) + " bytes, too short for GGUF");
  }
  IRIS_ASSIGN_OR_RETURN(uint32_t magic, r.Read<uint32_t>("magic"));
  if (magic != kMagic) return DataLossIn(path, "not a GGUF file (no GGUF magic)");
  IRIS_ASSIGN_OR_RETURN(c.version, r.Read<uint32_t>("version"));
  if (c.version == 1) {
    return DataLossIn(path,
                      "GGUF version 1 is not supported (convert the model again with a current "
                      "llama.cpp)");
  }
  if (c.version != 2 && c.version != 3) {
    const bool swapped = (c.version & 0xffff) == 0 && (c.version >> 24) <= 3;
    return DataLossIn(path,
                      "GGUF version " + std::to_string(c.version) + " is not supported" +
                          (swapped ? " (a big-endian file? iris reads little-endian GGUF)" : ""));
  }
  IRIS_ASSIGN_OR_RETURN(uint64_t num_tensors, r.Read<uint64_t>("tensor count"));
  IRIS_ASSIGN_OR_RETURN(uint64_t num_kv, r.Read<uint64_t>("metadata count"));
  // A key takes at least 12 bytes (length, type), a tensor entry at least 24.
  if (num_kv > r.left() / 12) {
    return DataLossIn(path, "metadata count " + std::to_string(num_kv) +
                                " does not fit in the file (truncated or corrupt)");
  }
  for (uint64_t k = 0; k < num_kv; ++k) {
    const std::string what = "metadata key " + std::to_string(k);
    IRIS_ASSIGN_OR_RETURN(std::string key, r.String(what, kMaxKeyBytes));
    const std::string where = "metadata '" + key + "'";
    IRIS_ASSIGN_OR_RETURN(uint32_t type, r.Read<uint32_t>(where + " type"));
    if (type > static_cast<uint32_t>(GgufValueType::kF64)) {
      return DataLossIn(path, where + ": unknown value type " + std::to_string(type));
    }
    GgufValue v;
    IRIS_RETURN_IF_ERROR(r.Value(static_cast<GgufValueType>(type), where, 0, &v));
    if (c.metadata.count(key)) return DataLossIn(path, where + " appears twice");
    c.metadata.emplace(key, std::move(v));
  }
  if (c.Has("general.alignment")) {
    const GgufValue& a = c.metadata.at("general.alignment");
    if (a.type != GgufValueType::kU32 || a.u == 0 || (a.u & (a.u - 1)) != 0) {
      return DataLossIn(path, "general.alignment must be a uint32 power of two");
    }
    c.alignment = a.u;
  }
  if (num_tensors > r.left() / 24) {
    return DataLossIn(path, "tensor count " + std::to_string(num_tensors) +
                                " does not fit in the file (truncated or corrupt)");
  }
  struct Pending {
    std::string name;
    uint64_t offset, bytes;
  };
  std::vector<Pending> pending;
  for (uint64_t k = 0; k < num_tensors; ++k) {
    IRIS_ASSIGN_OR_RETURN(std::string name,
                          r.String("tensor " + std::to_string(k) + " name", kMaxTensorNameBytes));
    const std::string where = "tensor '" + name + "'";
    IRIS_ASSIGN_OR_RETURN(uint32_t n_dims, r.Read<uint32_t>(where + " dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return DataLossIn(path,
                        where + ": " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    GgufTensor t;
    t.name = name;
    uint64_t elems = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      IRIS_ASSIGN_OR_RETURN(uint64_t ne, r.Read<uint64_t>(where + " dimension"));
      if (ne > (uint64_t{1} << 40) || (ne > 0 && elems > (uint64_t{1} << 50) / ne)) {
        return DataLossIn(path, where + ": dimension " + std::to_string(ne) + " is absurd");
      }
      elems *= ne;
      t.shape.insert(t.shape.begin(), static_cast<int64_t>(ne));
    }
    IRIS_ASSIGN_OR_RETURN(uint32_t type, r.Read<uint32_t>(where + " type"));
    const tensor::GgmlTypeInfo* info = tensor::FindGgmlType(type);
    if (info == nullptr) {
      return DataLossIn(path,
                        where + " has type " + tensor::GgmlTypeName(type) +
                            ", which iris does not read (it reads F32, F16, BF16, Q8_0, Q4_0, "
                            "Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K)");
    }
    t.type = info->type;
    if (static_cast<uint64_t>(t.shape.back()) % info->block_elems != 0) {
      return DataLossIn(path, where + ": rows of " + std::to_string(t.shape.back()) +
                                  " values are not whole " + std::string(info->name) +
                                  " blocks of " + std::to_string(info->block_elems));
    }
    IRIS_ASSIGN_OR_RETURN(uint64_t offset, r.Read<uint64_t>(where + " offset"));
    if (offset % c.alignment != 0) {
      return DataLossIn(path, where + ": offset " + std::to_string(offset) +
                                  " is not a multiple of the " + std::to_string(c.alignment) +
                                  "-byte alignment");
    }
    if (c.tensors.count(name)) return DataLossIn(path, where + " appears twice");
    const uint64_t nbytes = elems / info->block_elems * info->block_bytes;
    pending.push_back({name, offset, nbytes});
    c.tensors.emplace(name, std::move(t));
  }
  const uint64_t data_start = (r.pos() + c.alignment - 1) / c.alignment * c.alignment;
  const uint64_t data_size = data_start <= bytes.size() ? bytes.size() - data_start : 0;
  if (!pending.empty() && data_start > bytes.size()) {
    return DataLossIn(path, "the data section would start at byte " + std::to_string(data_start) +
                                ", past the end of the " + std::to_string(bytes.size()) +
                                "-byte file (truncated?)");
  }
  for (const Pending& p : pending) {
    if (p.offset > data_size || p.bytes > data_size - p.offset) {
      return DataLossIn(path, "tensor '" + p.name + "': " + std::to_string(p.bytes) +
                                  " bytes at offset " + std::to_string(p.offset) +
                                  " run past the " + std::to_string(data_size) +
                                  "-byte data section (truncated?)");
    }
    GgufTensor& t = c.tensors.at(p.name);
    t.data = bytes.data() + data_start + p.offset;
    t.bytes = static_cast<size_t>(p.bytes);
  }
  std::sort(pending.begin(), pending.end(),
            [](const Pending& a, const Pending& b) { return a.offset < b.offset; });
  const Pending* prev = nullptr;
  for (const Pending& p : pending) {
    if (p.bytes == 0) continue;
    if (prev != nullptr && p.offset < prev->offset + prev->bytes) {
      return DataLossIn(
          path, "tensors '" + prev->name + "' and '" + p.name + "' overlap in the data section");
    }
    prev = &p;
  }
  return c;
}

Result<GgufFile> GgufFile::Open(const std::string& path) {
  GgufFile f;
  IRIS_ASSIGN_OR_RETURN(f.file_, MappedFile::Open(path));
  IRIS_ASSIGN_OR_RETURN(f.contents_, ParseGguf(f.file_.bytes(), path));
  return f;
}

bool LooksLikeGguf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[4] = {};
  return in.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

}  // namespace iris::formats

namespace iris::formats {
namespace {

template <typename T>
void Put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void PutString(std::string& out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out += s;
}

// One scalar of type t from a number (the writer's arrays hold doubles).
void PutNumber(std::string& out, GgufValueType t, double v) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kBool:
      Put<uint8_t>(out, static_cast<uint8_t>(v));
      break;
    case GgufValueType::kI8:
      Put<int8_t>(out, static_cast<int8_t>(v));
      break;
    case GgufValueType::kU16:
      Put<uint16_t>(out, static_cast<uint16_t>(v));
      break;
    case GgufValueType::kI16:
      Put<int16_t>(out, static_cast<int16_t>(v));
      break;
    case GgufValueType::kU32:
      Put<uint32_t>(out, static_cast<uint32_t>(v));
      break;
    case GgufValueType::kI32:
      Put<int32_t>(out, static_cast<int32_t>(v));
      break;
    case GgufValueType::kF32:
      Put<float>(out, static_cast<float>(v));
      break;
    case GgufValueType::kU64:
      Put<uint64_t>(out, static_cast<uint64_t>(v));
      break;
    case GgufValueType::kI64:
      Put<int64_t>(out, static_cast<int64_t>(v));
      break;
    case GgufValueType::kF64:
      Put<double>(out, v);
      break;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      break;
  }
}

void PutValue(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::kString:
      PutString(out, v.s);
      return;
    case GgufValueType::kArray:
      Put<uint32_t>(out, static_cast<uint32_t>(v.elem));
      if (v.elem == GgufValueType::kString) {
        Put<uint64_t>(out, v.strings.size());
        for (const std::string& s : v.strings) PutString(out, s);
      } else if (v.elem == GgufValueType::kArray) {
        Put<uint64_t>(out, v.items.size());
        for (const GgufValue& item : v.items) PutValue(out, item);
      } else {
        Put<uint64_t>(out, v.numbers.size());
        for (double d : v.numbers) PutNumber(out, v.elem, d);
      }
      return;
    case GgufValueType::kF32:
      Put<float>(out, static_cast<float>(v.f));
      return;
    case GgufValueType::kF64:
      Put<double>(out, v.f);
      return;
    case GgufValueType::kI8:
      Put<int8_t>(out, static_cast<int8_t>(v.i));
      return;
    case GgufValueType::kI16:
      Put<int16_t>(out, static_cast<int16_t>(v.i));
      return;
    case GgufValueType::kI32:
      Put<int32_t>(out, static_cast<int32_t>(v.i));
      return;
    case GgufValueType::kI64:
      Put<int64_t>(out, v.i);
      return;
    case GgufValueType::kU8:
    case GgufValueType::kBool:
      Put<uint8_t>(out, static_cast<uint8_t>(v.u));
      return;
    case GgufValueType::kU16:
      Put<uint16_t>(out, static_cast<uint16_t>(v.u));
      return;
    case GgufValueType::kU32:
      Put<uint32_t>(out, static_cast<uint32_t>(v.u));
      return;
    case GgufValueType::kU64:
      Put<uint64_t>(out, v.u);
      return;
  }
}

// The header and tensor table of a GGUF version 3 image, padded to `alignment`; `offsets` gets
// each tensor's offset in the data section and `data_bytes` the section's size.
Result<std::string> HeaderAndTable(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                                   const std::vector<GgufTensorInfo>& tensors, uint32_t alignment,
                                   std::vector<uint64_t>* offsets, uint64_t* data_bytes) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return InvalidArgument("GGUF writer: alignment " + std::to_string(alignment) +
                           " is not a power of two");
  }
  std::string out;
  Put<uint32_t>(out, kMagic);
  Put<uint32_t>(out, 3);
  Put<uint64_t>(out, tensors.size());
  Put<uint64_t>(out, metadata.size());
  for (const auto& [key, value] : metadata) {
    if (key == "general.alignment" && (value.type != GgufValueType::kU32 || value.u != alignment)) {
      return InvalidArgument("GGUF writer: general.alignment differs from the alignment used");
    }
    PutString(out, key);
    Put<uint32_t>(out, static_cast<uint32_t>(value.type));
    PutValue(out, value);
  }
  uint64_t offset = 0;
  offsets->clear();
  for (const GgufTensorInfo& t : tensors) {
    if (t.shape.empty() || t.shape.size() > kMaxDims ||
        t.shape.back() % static_cast<int64_t>(tensor::GgmlInfo(t.type).block_elems) != 0 ||
        t.name.empty() || t.name.size() > kMaxTensorNameBytes) {
      return InvalidArgument("GGUF writer: tensor '" + t.name + "' cannot be " +
                             std::string(tensor::GgmlInfo(t.type).name) + " " +
                             tensor::ShapeString(t.shape));
    }
    PutString(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) Put<uint64_t>(out, *it);
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(out, offset);
    offsets->push_back(offset);
    offset = (offset + t.num_bytes() + alignment - 1) / alignment * alignment;
  }
  out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
  *data_bytes = offset;
  return out;
}

bool WriteZeros(std::FILE* f, uint64_t n) {
  static constexpr char kZeros[256] = {};
  while (n > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof(kZeros)));
    if (std::fwrite(kZeros, 1, k, f) != k) return false;
    n -= k;
  }
  return true;
}

}  // namespace

size_t GgufTensorInfo::num_bytes() const {
  const tensor::GgmlTypeInfo& info = tensor::GgmlInfo(type);
  uint64_t elems = 1;
  for (int64_t d : shape) elems *= static_cast<uint64_t>(d);
  return static_cast<size_t>(elems / info.block_elems * info.block_bytes);
}

Result<std::string> SerializeGguf(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                                  const std::vector<GgufTensorToWrite>& tensors,
                                  uint32_t alignment) {
  std::vector<GgufTensorInfo> infos;
  for (const GgufTensorToWrite& t : tensors) {
    GgufTensorInfo info{t.name, t.type, t.shape};
    if (t.shape.empty() || t.shape.size() > kMaxDims ||
        t.shape.back() % static_cast<int64_t>(tensor::GgmlInfo(t.type).block_elems) != 0 ||
        info.num_bytes() != t.bytes.size()) {
      return InvalidArgument("SerializeGguf: tensor '" + t.name + "' has " +
                             std::to_string(t.bytes.size()) + " bytes for " +
                             std::string(tensor::GgmlInfo(t.type).name) + " " +
                             tensor::ShapeString(t.shape));
    }
    infos.push_back(std::move(info));
  }
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  IRIS_ASSIGN_OR_RETURN(std::string out,
                        HeaderAndTable(metadata, infos, alignment, &offsets, &data_bytes));
  const size_t data_start = out.size();
  out.resize(data_start + data_bytes, '\0');
  for (size_t k = 0; k < tensors.size(); ++k) {
    if (!tensors[k].bytes.empty()) {
      std::memcpy(out.data() + data_start + offsets[k], tensors[k].bytes.data(),
                  tensors[k].bytes.size());
    }
  }
  return out;
}

Status WriteGguf(const std::string& path,
                 const std::vector<std::pair<std::string, GgufValue>>& metadata,
                 const std::vector<GgufTensorToWrite>& tensors, uint32_t alignment) {
  std::vector<GgufTensorInfo> infos;
  for (const GgufTensorToWrite& t : tensors) infos.push_back({t.name, t.type, t.shape});
  // A tensor of the wrong size is refused by Append (and the partial file removed).
  IRIS_ASSIGN_OR_RETURN(std::unique_ptr<GgufWriter> w,
                        GgufWriter::Create(path, metadata, infos, alignment));
  for (const GgufTensorToWrite& t : tensors) IRIS_RETURN_IF_ERROR(w->Append(t.bytes));
  return w->Finish();
}

struct GgufWriter::State {
  std::string path, partial;
  std::FILE* file = nullptr;
  std::vector<GgufTensorInfo> tensors;
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  uint32_t alignment = 32;
  size_t next = 0;       // the tensor Append writes next
  uint64_t written = 0;  // bytes of the data section so far
};

GgufWriter::GgufWriter() : s_(std::make_unique<State>()) {}

GgufWriter::~GgufWriter() {
  if (s_ && s_->file != nullptr) {
    std::fclose(s_->file);
    std::remove(s_->partial.c_str());
  }
}

Result<std::unique_ptr<GgufWriter>> GgufWriter::Create(
    const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
    std::vector<GgufTensorInfo> tensors, uint32_t alignment) {
  // A file that readers refuse is never written (SerializeGguf writes what it is given, so
  // tests can make such images).
  std::set<std::string_view> seen;
  for (const auto& [key, value] : metadata) {
    if (!seen.insert(key).second) {
      return InvalidArgument("GGUF writer: metadata key '" + key + "' appears twice");
    }
  }
  seen.clear();
  for (const GgufTensorInfo& t : tensors) {
    if (!seen.insert(t.name).second) {
      return InvalidArgument("GGUF writer: tensor '" + t.name + "' appears twice");
    }
  }
  std::unique_ptr<GgufWriter> w(new GgufWriter());
  State& s = *w->s_;
  IRIS_ASSIGN_OR_RETURN(std::string head,
                        HeaderAndTable(metadata, tensors, alignment, &s.offsets, &s.data_bytes));
  s.path = path;
  s.partial = path + ".partial";
  s.tensors = std::move(tensors);
  s.alignment = alignment;
  s.file = std::fopen(s.partial.c_str(), "wb");
  if (s.file == nullptr) {
    return Status(ErrorCode::kPermissionDenied,
                  s.partial + ": cannot create (" + std::strerror(errno) + ")");
  }
  if (std::fwrite(head.data(), 1, head.size(), s.file) != head.size()) {
    return DataLoss(s.partial + ": write failed (disk full?)");
  }
  return w;
}

Status GgufWriter::Append(std::span<const uint8_t> bytes) {
  State& s = *s_;
  if (s.file == nullptr || s.next >= s.tensors.size()) {
    return FailedPrecondition(s.path + ": every tensor is written (or the writer failed)");
  }
  const GgufTensorInfo& t = s.tensors[s.next];
  if (bytes.size() != t.num_bytes()) {
    return InvalidArgument(
        s.path + ": tensor '" + t.name + "' has " + std::to_string(bytes.size()) + " bytes for " +
        std::string(tensor::GgmlInfo(t.type).name) + " " + tensor::ShapeString(t.shape));
  }
  const uint64_t pad = s.offsets[s.next] - s.written;  // the previous tensor's alignment
  if (!WriteZeros(s.file, pad) ||
      std::fwrite(bytes.data(), 1, bytes.size(), s.file) != bytes.size()) {
    std::fclose(s.file);
    s.file = nullptr;
    std::remove(s.partial.c_str());
    return DataLoss(s.partial + ": write failed (disk full?)");
  }
  s.written = s.offsets[s.next] + bytes.size();
  ++s.next;
  return OkStatus();
}

Status GgufWriter::Finish() {
  State& s = *s_;
  if (s.file == nullptr) return FailedPrecondition(s.path + ": the writer failed or finished");
  if (s.next != s.tensors.size()) {
    return FailedPrecondition(s.path + ": " + std::to_string(s.tensors.size() - s.next) +
                              " tensors not written (the next is '" + s.tensors[s.next].name +
                              "')");
  }
  const bool ok = WriteZeros(s.file, s.data_bytes - s.written) && std::fflush(s.file) == 0;
  const bool closed = std::fclose(s.file) == 0;
  s.file = nullptr;
  if (!ok || !closed) {
    std::remove(s.partial.c_str());
    return DataLoss(s.partial + ": write failed (disk full?)");
  }
  if (std::rename(s.partial.c_str(), s.path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(s.partial.c_str());
    return DataLoss(s.path + ": cannot rename " + s.partial + " into place (" + why + ")");
  }
  return OkStatus();
}

GgufValue GgufString(std::string s) {
  GgufValue v;
  v.type = GgufValueType::kString;
  v.s = std::move(s);
  return v;
}
GgufValue GgufU32(uint32_t x) {
  GgufValue v;
  v.type = GgufValueType::kU32;
  v.u = x;
  return v;
}
GgufValue GgufF32(float x) {
  GgufValue v;
  v.type = GgufValueType::kF32;
  v.f = x;
  return v;
}
GgufValue GgufBool(bool x) {
  GgufValue v;
  v.type = GgufValueType::kBool;
  v.u = x ? 1 : 0;
  return v;
}
GgufValue GgufStrings(std::vector<std::string> x) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.elem = GgufValueType::kString;
  v.strings = std::move(x);
  return v;
}
GgufValue GgufNumbers(GgufValueType elem, std::vector<double> x) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.elem = elem;
  v.numbers = std::move(x);
  return v;
}

}  // namespace iris::formats
