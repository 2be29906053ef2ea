#include "engine/formats/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "base/json.h"

namespace iris::formats {
namespace fs = std::filesystem;
namespace json = boost::json;
using tensor::DType;

namespace {

// Guard against absurd headers (the format's reference implementation caps at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

Result<SafetensorsContents> ParseSafetensors(std::span<const uint8_t> bytes,
                                             const std::string& path) {
  SafetensorsContents f;
  const size_t size = bytes.size();
  if (size < 8) {
    return DataLossIn(path, "file is " + std::to_string(size) +
                                " bytes, too short for a safetensors header (truncated?)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes.data()[i];
  if (header_len > kMaxHeaderBytes) {
    return DataLossIn(path, "header length " + std::to_string(header_len) +
                                " is absurd (corrupt file or not safetensors)");
  }
  if (8 + header_len > size) {
    return DataLossIn(path, "header length " + std::to_string(header_len) +
                                " runs past the end of the " + std::to_string(size) +
                                "-byte file (truncated?)");
  }
  std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, header_len);
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(header, path + " header"));
  if (!root.is_object()) return DataLossIn(path, "header is not a JSON object");

  const uint8_t* data_start = bytes.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [key, val] : root.as_object()) {
    std::string name(key);
    if (name == "__metadata__") {
      if (!val.is_object()) return DataLossIn(path, "__metadata__ is not an object");
      for (const auto& [mk, mv] : val.as_object()) {
        if (mv.is_string()) f.metadata[std::string(mk)] = std::string(mv.as_string());
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!val.is_object()) return DataLossIn(path, where + ": entry is not an object");
    const json::object& o = val.as_object();
    const json::value* dt = o.if_contains("dtype");
    const json::value* shape = o.if_contains("shape");
    const json::value* offsets = o.if_contains("data_offsets");
    if (!dt || !dt->is_string()) return DataLossIn(path, where + ": missing or non-string dtype");
    if (!shape || !shape->is_array()) return DataLossIn(path, where + ": missing or invalid shape");
    if (!offsets || !offsets->is_array() || offsets->as_array().size() != 2) {
      return DataLossIn(path, where + ": data_offsets must be [begin, end]");
    }
    TensorEntry e;
    e.name = name;
    e.file = path;
    std::string dtype_name(dt->as_string());
    if (!tensor::ParseDType(dtype_name, &e.view.dtype)) {
      return DataLossIn(path, where + ": unknown dtype '" + dtype_name + "'");
    }
    uint64_t num_elements = 1;
    for (const json::value& d : shape->as_array()) {
      if (!d.is_int64() && !d.is_uint64())
        return DataLossIn(path, where + ": non-integer dimension");
      int64_t v = d.is_int64() ? d.as_int64() : static_cast<int64_t>(d.as_uint64());
      if (v < 0 || (v > 0 && num_elements > (std::numeric_limits<uint64_t>::max() >> 8) /
                                                static_cast<uint64_t>(v))) {
        return DataLossIn(path, where + ": invalid dimension " + std::to_string(v));
      }
      e.view.shape.push_back(v);
      num_elements *= static_cast<uint64_t>(v);
    }
    uint64_t off[2];
    for (int i = 0; i < 2; ++i) {
      const json::value& v = offsets->as_array()[i];
      if (v.is_uint64()) {
        off[i] = v.as_uint64();
      } else if (v.is_int64() && v.as_int64() >= 0) {
        off[i] = static_cast<uint64_t>(v.as_int64());
      } else {
        return DataLossIn(path, where + ": data_offsets must be non-negative integers");
      }
    }
    if (off[1] < off[0]) return DataLossIn(path, where + ": data_offsets end before they begin");
    if (off[1] > data_size) {
      return DataLossIn(path, where + ": data_offsets [" + std::to_string(off[0]) + ", " +
                                  std::to_string(off[1]) + "] run past the " +
                                  std::to_string(data_size) + "-byte data section (truncated?)");
    }
    uint64_t expected = num_elements * tensor::DTypeSize(e.view.dtype);
    if (off[1] - off[0] != expected) {
      return DataLossIn(path, where + ": " + std::to_string(off[1] - off[0]) +
                                  " bytes of data but " + dtype_name + " " +
                                  tensor::ShapeString(e.view.shape) + " needs " +
                                  std::to_string(expected));
    }
    e.view.data = data_start + off[0];
    spans.push_back({off[0], off[1], name});
    f.tensors.emplace(name, std::move(e));
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  // Empty tensors overlap nothing, and must not hide an overlap between their neighbours.
  const Span* prev = nullptr;
  for (const Span& span : spans) {
    if (span.begin == span.end) continue;
    if (prev != nullptr && span.begin < prev->end) {
      return DataLossIn(
          path, "tensors '" + prev->name + "' and '" + span.name + "' overlap in the data section");
    }
    prev = &span;
  }
  return f;
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile f;
  IRIS_ASSIGN_OR_RETURN(f.file_, MappedFile::Open(path));
  IRIS_ASSIGN_OR_RETURN(SafetensorsContents contents, ParseSafetensors(f.file_.bytes(), path));
  f.tensors_ = std::move(contents.tensors);
  for (auto& [name, e] : f.tensors_) e.mapped = true;
  f.metadata_ = std::move(contents.metadata);
  return f;
}

Result<WeightStore> WeightStore::OpenFiles(const std::vector<std::string>& paths) {
  WeightStore store;
  for (const std::string& p : paths) {
    IRIS_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open(p));
    auto shared = std::make_shared<SafetensorsFile>(std::move(f));
    for (const auto& [name, entry] : shared->tensors()) {
      if (!store.entries_.emplace(name, entry).second) {
        return DataLoss(p + ": tensor '" + name + "' also appears in " +
                        store.entries_.at(name).file);
      }
    }
    store.owners_.push_back(std::move(shared));
  }
  store.description_ = paths.size() == 1 ? paths[0] : std::to_string(paths.size()) + " shards";
  return store;
}

WeightStore WeightStore::FromEntries(std::map<std::string, TensorEntry> entries,
                                     std::vector<std::shared_ptr<const void>> owners,
                                     std::string description) {
  WeightStore store;
  store.entries_ = std::move(entries);
  store.owners_ = std::move(owners);
  store.description_ = std::move(description);
  return store;
}

Result<WeightStore> WeightStore::OpenDir(const std::string& dir) {
  const fs::path base(dir);
  const fs::path single = base / "model.safetensors";
  const fs::path index = base / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    IRIS_ASSIGN_OR_RETURN(json::value root, ReadJsonFile(index.string()));
    const json::value* map =
        root.is_object() ? root.as_object().if_contains("weight_map") : nullptr;
    if (!map || !map->is_object()) {
      return DataLoss(index.string() + ": missing \"weight_map\" object");
    }
    std::set<std::string> shard_names;
    for (const auto& [name, file] : map->as_object()) {
      if (!file.is_string()) {
        return DataLoss(index.string() + ": weight_map entry for '" + std::string(name) +
                        "' is not a file name");
      }
      std::string shard(file.as_string());
      if (shard.find('/') != std::string::npos || shard == "..") {
        return DataLoss(index.string() + ": shard name '" + shard + "' is not a plain file name");
      }
      shard_names.insert(shard);
    }
    std::vector<std::string> paths;
    for (const std::string& s : shard_names) paths.push_back((base / s).string());
    IRIS_ASSIGN_OR_RETURN(WeightStore store, OpenFiles(paths));
    for (const auto& [name, file] : map->as_object()) {
      auto it = store.entries_.find(std::string(name));
      if (it == store.entries_.end()) {
        return DataLoss(index.string() + ": tensor '" + std::string(name) + "' is listed in " +
                        std::string(file.as_string()) + " but that shard does not contain it");
      }
    }
    store.description_ = index.string();
    return store;
  }
  if (fs::exists(single, ec)) return OpenFiles({single.string()});
  return NotFound(dir + ": no model.safetensors or model.safetensors.index.json");
}

Result<TensorEntry> WeightStore::Get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return NotFound(description_ + ": missing tensor '" + name + "'");
  return it->second;
}

Result<TensorEntry> WeightStore::Get(const std::string& name,
                                     const std::vector<int64_t>& shape) const {
  IRIS_ASSIGN_OR_RETURN(TensorEntry e, Get(name));
  if (e.view.shape != shape) {
    return FailedPrecondition(e.file + ": tensor '" + name + "' has shape " +
                              tensor::ShapeString(e.view.shape) + ", expected " +
                              tensor::ShapeString(shape));
  }
  return e;
}

size_t WeightStore::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, e] : entries_) n += e.view.num_bytes();
  return n;
}

}  // namespace iris::formats

namespace iris::formats {

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  json::object header;
  if (!metadata.empty()) {
    json::object m;
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  // Widest dtypes first, as the reference writer does, so every tensor is aligned to its
  // element size.
  std::vector<const TensorToWrite*> order;
  for (const TensorToWrite& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    return tensor::DTypeSize(a->dtype) > tensor::DTypeSize(b->dtype);
  });
  uint64_t offset = 0;
  for (const TensorToWrite* tp : order) {
    const TensorToWrite& t = *tp;
    json::array shape;
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      shape.push_back(d);
      n *= static_cast<uint64_t>(d);
    }
    if (n * tensor::DTypeSize(t.dtype) != t.bytes.size()) {
      return InvalidArgument("WriteSafetensors: tensor '" + t.name + "' has " +
                             std::to_string(t.bytes.size()) + " bytes for its shape");
    }
    header[t.name] = json::object{{"dtype", std::string(tensor::DTypeName(t.dtype))},
                                  {"shape", std::move(shape)},
                                  {"data_offsets", json::array{offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = json::serialize(header);
  while (h.size() % 8 != 0) h.push_back(' ');
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status(ErrorCode::kPermissionDenied, path + ": cannot create");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (const TensorToWrite* t : order) {
    ok = ok && std::fwrite(t->bytes.data(), 1, t->bytes.size(), f) == t->bytes.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return DataLoss(path + ": write failed (disk full?)");
  return OkStatus();
}

}  // namespace iris::formats
