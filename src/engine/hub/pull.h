// Downloads a checkpoint from the Hugging Face hub (or a mirror) into the hub cache exactly
// as huggingface_hub lays it out, so transformers and iris share one copy.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "engine/hub/http_client.h"

namespace iris::hub {

struct PullProgress {
  std::string file;          // the file being downloaded
  uint64_t done = 0;         // bytes of it on disk (resumed bytes included)
  uint64_t total = 0;        // its size, 0 when unknown
  uint64_t transferred = 0;  // bytes received in this pull so far (for the speed)
  bool finished = false;     // the last report of this file
};

struct PullOptions {
  std::string endpoint;   // e.g. https://huggingface.co (no trailing slash)
  std::string token;      // sent as "Authorization: Bearer <token>" when not empty
  std::string cache_dir;  // the hub cache (models--org--name inside)
  bool offline = false;   // refuse any network access
  HttpOptions http;       // timeouts, proxies, CA file
  int max_redirects = 10;
  // Called from the pulling thread as bytes arrive (often; throttle display yourself).
  std::function<void(const PullProgress&)> on_progress;
  // What the caller will load: a repo of the other kind is refused before any download.
  enum class Expect { kAny, kModel, kAdapter } expect = Expect::kAny;
};

// Options from the environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN or
// HUGGING_FACE_HUB_TOKEN, HF_HUB_OFFLINE=1, the cache from DefaultHubCacheDir(), and the
// proxies of https_proxy / HTTPS_PROXY, http_proxy / HTTP_PROXY, no_proxy / NO_PROXY (curl's
// conventions, lower case wins; net::ProxySettings::FromEnv). kInvalidArgument for a proxy
// variable that is not an http:// URL.
Result<PullOptions> PullOptionsFromEnv();

struct PullResult {
  std::string repo_id;
  std::string revision;
  std::string commit;
  std::string snapshot_dir;  // the checkpoint directory, ready for Engine::Load
  uint64_t bytes_downloaded = 0;
  int files_downloaded = 0;  // files fetched (others were already in the cache)
};

// Pulls "org/name[@revision]" (or a short name): config, weights (one file or the shards of
// model.safetensors.index.json), tokenizer, processor and generation files. Blobs are
// downloaded to blobs/<etag>.incomplete, resumed with a Range request on a later pull,
// checked against their size and (for LFS files) sha256, then renamed; a snapshot file is
// linked only once its blob is complete, and config.json is linked last, so an interrupted
// pull never leaves a snapshot that looks complete. Errors are one line saying what to do.
// A repo holding a PEFT LoRA adapter (adapter_config.json, no config.json) is pulled as
// adapter_model.safetensors, then adapter_config.json.
Result<PullResult> Pull(std::string_view spec, const PullOptions& options);

// Lowercase hex SHA-256 of a file (OpenSSL EVP).
Result<std::string> Sha256File(const std::string& path);

}  // namespace iris::hub
