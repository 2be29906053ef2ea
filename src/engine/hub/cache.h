// Finds checkpoints the way transformers and huggingface-cli store them: a local directory,
// or a Hugging Face repo id in the hub cache (models--org--name/{refs,snapshots,blobs}).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace iris::hub {

// A repo id with an optional revision: "org/name" or "org/name@rev".
struct RepoSpec {
  std::string repo_id;
  std::string revision = "main";
  bool explicit_revision = false;
};

// Maps the short names (smolvlm2-256m, smolvlm2-500m, smolvlm2-2.2b) to their repo ids;
// returns other names unchanged.
std::string ExpandShortName(std::string_view name);
// Parses "org/name[@rev]" (short names expanded). kInvalidArgument for anything else.
Result<RepoSpec> ParseRepoSpec(std::string_view spec);
// True for a 40-character lowercase hex string (a git commit).
bool IsCommitHash(std::string_view s);

// The hub cache directory: $HF_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::string DefaultHubCacheDir();
// "models--org--name" inside `cache_dir`.
std::string RepoCacheDir(const std::string& cache_dir, std::string_view repo_id);

struct ResolveOptions {
  std::string cache_dir;  // empty: DefaultHubCacheDir()
};

// Resolves `model` to a directory holding config.json and the weights: an existing directory
// (or a .gguf file) is returned as given; otherwise a repo id or short name is looked up in the
// cache (a revision may be a branch or tag in refs/ or a commit). kNotFound, with the `iris pull`
// command to run, when the cache does not hold a complete snapshot of it.
Result<std::string> ResolveModel(std::string_view model, const ResolveOptions& options = {});

// Resolves a LoRA adapter the same way: a directory as given, else a repo id whose cached
// snapshot holds adapter_config.json and adapter_model.safetensors.
Result<std::string> ResolveAdapter(std::string_view adapter, const ResolveOptions& options = {});

// The command that fetches `model` ("iris pull org/name[@rev]").
std::string PullCommandFor(std::string_view model);

// One checkpoint found on disk.
struct CachedModel {
  std::string repo_id;      // "org/name", or the directory for --dir entries
  std::string revision;     // ref names pointing at the commit ("main"), or ""
  std::string commit;       // the snapshot's commit, or "" for plain directories
  std::string path;         // directory with config.json
  uint64_t size_bytes = 0;  // bytes on disk of the files (blobs counted once)
  std::string dtype;        // "bfloat16", "float32", ... or "?"
  std::string family;       // "256M", "500M", "2.2B" or "other"
  bool complete = false;    // config.json and weights present
};

// Lists every snapshot in the hub cache (sorted by repo id) and, after them, each of
// `extra_dirs` that holds a config.json. A missing cache directory gives an empty list.
Result<std::vector<CachedModel>> ListModels(const std::string& cache_dir,
                                            const std::vector<std::string>& extra_dirs = {});

// Describes one checkpoint directory (dtype, family, size); used by ListModels.
CachedModel DescribeCheckpoint(const std::string& dir);

}  // namespace iris::hub
