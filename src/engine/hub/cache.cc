// The hub cache layout, as huggingface_hub writes it:
//   <cache>/models--org--name/refs/<branch>            the commit, one line
//   <cache>/models--org--name/snapshots/<commit>/<file> -> ../../blobs/<etag>
//   <cache>/models--org--name/blobs/<etag>
#include "engine/hub/cache.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/env.h"
#include "base/json.h"
#include "base/mapped_file.h"

namespace iris::hub {
namespace {

namespace fs = std::filesystem;

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool IsFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows symlinks: a dangling link is not a file
}

bool HasWeights(const fs::path& dir) {
  return IsFile(dir / "model.safetensors") || IsFile(dir / "model.safetensors.index.json");
}

// The safetensors dtype of the first tensor in `path`'s header, in torch's spelling.
std::string SafetensorsDtype(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) return "";
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  if (len == 0 || len > (100u << 20)) return "";
  std::string header(len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(len))) return "";
  auto json = ParseJson(header, path.string());
  if (!json.ok() || !json->is_object()) return "";
  for (const auto& [key, value] : json->as_object()) {
    if (key == "__metadata__" || !value.is_object()) continue;
    const auto* dt = value.as_object().if_contains("dtype");
    if (!dt || !dt->is_string()) continue;
    const std::string d(dt->as_string());
    if (d == "BF16") return "bfloat16";
    if (d == "F16") return "float16";
    if (d == "F32") return "float32";
    return d;
  }
  return "";
}

std::string StringField(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

std::string ExpandShortName(std::string_view name) {
  if (name == "smolvlm2-256m") return "HuggingFaceTB/SmolVLM2-256M-Video-Instruct";
  if (name == "smolvlm2-500m") return "HuggingFaceTB/SmolVLM2-500M-Video-Instruct";
  if (name == "smolvlm2-2.2b") return "HuggingFaceTB/SmolVLM2-2.2B-Instruct";
  return std::string(name);
}

bool IsCommitHash(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<RepoSpec> ParseRepoSpec(std::string_view spec) {
  RepoSpec r;
  std::string_view name = spec;
  if (const size_t at = spec.find('@'); at != std::string_view::npos) {
    name = spec.substr(0, at);
    r.revision = std::string(spec.substr(at + 1));
    r.explicit_revision = true;
    if (r.revision.empty())
      return InvalidArgument("empty revision after '@' in " + std::string(spec));
  }
  r.repo_id = ExpandShortName(name);
  const size_t slash = r.repo_id.find('/');
  const bool valid_chars = std::all_of(r.repo_id.begin(), r.repo_id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
  if (slash == std::string::npos || slash == 0 || slash + 1 == r.repo_id.size() ||
      r.repo_id.find('/', slash + 1) != std::string::npos || !valid_chars ||
      r.repo_id.find("..") != std::string::npos) {
    return InvalidArgument("'" + std::string(spec) +
                           "' is not a model directory nor a Hugging Face repo id "
                           "(org/name[@revision]) nor a short name (smolvlm2-256m, "
                           "smolvlm2-500m, smolvlm2-2.2b)");
  }
  if (r.revision.find("..") != std::string::npos || r.revision.front() == '/') {
    return InvalidArgument("bad revision '" + r.revision + "'");
  }
  return r;
}

std::string DefaultHubCacheDir() {
  if (auto v = GetEnv("HF_HUB_CACHE")) return *v;
  if (auto v = GetEnv("HF_HOME")) return (fs::path(*v) / "hub").string();
  if (auto v = GetEnv("XDG_CACHE_HOME")) {
    return (fs::path(*v) / "huggingface" / "hub").string();
  }
  return (fs::path(GetEnv("HOME").value_or("")) / ".cache" / "huggingface" / "hub").string();
}

std::string RepoCacheDir(const std::string& cache_dir, std::string_view repo_id) {
  std::string folder = "models--";
  for (char c : repo_id) {
    if (c == '/') {
      folder += "--";
    } else {
      folder += c;
    }
  }
  return (fs::path(cache_dir) / folder).string();
}

std::string PullCommandFor(std::string_view model) { return "iris pull " + std::string(model); }

namespace {

// The cached snapshot of a repo id, if `complete` says it is whole.
Result<std::string> CachedSnapshot(std::string_view name, const ResolveOptions& options,
                                   bool (*complete)(const fs::path&)) {
  IRIS_ASSIGN_OR_RETURN(RepoSpec spec, ParseRepoSpec(name));
  const std::string cache = options.cache_dir.empty() ? DefaultHubCacheDir() : options.cache_dir;
  const fs::path repo_dir = RepoCacheDir(cache, spec.repo_id);
  const std::string shown = spec.repo_id + (spec.explicit_revision ? "@" + spec.revision : "");
  std::error_code ec;
  std::string commit;
  if (IsCommitHash(spec.revision) && fs::is_directory(repo_dir / "snapshots" / spec.revision, ec)) {
    commit = spec.revision;
  } else if (IsFile(repo_dir / "refs" / spec.revision)) {
    auto text = ReadFileToString((repo_dir / "refs" / spec.revision).string());
    if (text.ok()) commit = Trim(*text);
  }
  const fs::path snapshot = repo_dir / "snapshots" / commit;
  if (commit.empty() || !complete(snapshot)) {
    return NotFound(shown + " is not in the Hugging Face cache (" + cache +
                    "): download it with `" + PullCommandFor(shown) + "` (or pass --pull)");
  }
  return snapshot.string();
}

}  // namespace

Result<std::string> ResolveModel(std::string_view model, const ResolveOptions& options) {
  std::error_code ec;
  if (!model.empty() && fs::is_directory(fs::path(model), ec)) return std::string(model);
  // A GGUF text model is named by its file.
  if (std::string_view(model).ends_with(".gguf") && fs::is_regular_file(fs::path(model), ec)) {
    return std::string(model);
  }
  return CachedSnapshot(model, options, [](const fs::path& snapshot) {
    return IsFile(snapshot / "config.json") && HasWeights(snapshot);
  });
}

Result<std::string> ResolveAdapter(std::string_view adapter, const ResolveOptions& options) {
  std::error_code ec;
  if (!adapter.empty() && fs::is_directory(fs::path(adapter), ec)) return std::string(adapter);
  if (!ParseRepoSpec(adapter).ok()) {
    return InvalidArgument("'" + std::string(adapter) +
                           "' is not an adapter directory nor a Hugging Face repo id "
                           "(org/name[@revision])");
  }
  return CachedSnapshot(adapter, options, [](const fs::path& snapshot) {
    return IsFile(snapshot / "adapter_config.json") &&
           IsFile(snapshot / "adapter_model.safetensors");
  });
}

CachedModel DescribeCheckpoint(const std::string& dir) {
  CachedModel m;
  m.path = dir;
  m.repo_id = dir;
  m.dtype = "?";
  m.family = "other";
  const fs::path d(dir);
  m.complete = IsFile(d / "config.json") && HasWeights(d);
  std::error_code ec;
  std::set<std::string> seen;  // blobs shared by several snapshots count once per entry
  for (fs::recursive_directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    const fs::path real = fs::canonical(it->path(), e2);
    if (e2 || !fs::is_regular_file(real, e2)) continue;
    if (!seen.insert(real.string()).second) continue;
    m.size_bytes += fs::file_size(real, e2);
  }
  auto config = ReadJsonFile((d / "config.json").string());
  if (config.ok() && config->is_object()) {
    const auto& top = config->as_object();
    const boost::json::object* text = &top;
    if (const auto* tc = top.if_contains("text_config"); tc && tc->is_object()) {
      text = &tc->as_object();
    }
    for (const auto* o : {text, &top}) {
      for (const char* key : {"dtype", "torch_dtype"}) {
        if (m.dtype == "?" && !StringField(*o, key).empty()) m.dtype = StringField(*o, key);
      }
    }
    if (const auto* hs = text->if_contains("hidden_size"); hs && hs->is_int64()) {
      switch (hs->as_int64()) {
        case 576:
          m.family = "256M";
          break;
        case 960:
          m.family = "500M";
          break;
        case 2048:
          m.family = "2.2B";
          break;
        default:
          break;
      }
    }
  }
  if (m.dtype == "?") {
    std::string from_file = SafetensorsDtype(d / "model.safetensors");
    if (!from_file.empty()) m.dtype = from_file;
  }
  return m;
}

Result<std::vector<CachedModel>> ListModels(const std::string& cache_dir,
                                            const std::vector<std::string>& extra_dirs) {
  std::vector<CachedModel> out;
  std::error_code ec;
  if (fs::is_directory(cache_dir, ec)) {
    std::vector<fs::path> repos;
    for (const auto& entry : fs::directory_iterator(cache_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("models--", 0) == 0 && entry.is_directory()) repos.push_back(entry.path());
    }
    std::sort(repos.begin(), repos.end());
    for (const fs::path& repo : repos) {
      std::string repo_id = repo.filename().string().substr(8);
      if (const size_t sep = repo_id.find("--"); sep != std::string::npos) {
        repo_id.replace(sep, 2, "/");
      }
      std::vector<std::pair<std::string, std::string>> refs;  // name, commit
      for (fs::recursive_directory_iterator it(repo / "refs", ec), end; !ec && it != end;
           it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        auto text = ReadFileToString(it->path().string());
        if (text.ok()) {
          refs.emplace_back(fs::relative(it->path(), repo / "refs").string(), Trim(*text));
        }
      }
      ec.clear();
      std::vector<fs::path> snapshots;
      for (const auto& entry : fs::directory_iterator(repo / "snapshots", ec)) {
        if (entry.is_directory()) snapshots.push_back(entry.path());
      }
      ec.clear();
      std::sort(snapshots.begin(), snapshots.end());
      for (const fs::path& snap : snapshots) {
        CachedModel m = DescribeCheckpoint(snap.string());
        m.repo_id = repo_id;
        m.commit = snap.filename().string();
        for (const auto& [ref, commit] : refs) {
          if (commit == m.commit) m.revision += (m.revision.empty() ? "" : ",") + ref;
        }
        out.push_back(std::move(m));
      }
    }
  }
  for (const std::string& dir : extra_dirs) {
    if (!IsFile(fs::path(dir) / "config.json")) {
      return NotFound(dir + ": no config.json (not a model directory)");
    }
    out.push_back(DescribeCheckpoint(dir));
  }
  return out;
}

}  // namespace iris::hub
