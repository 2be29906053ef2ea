// `Pull`: the hub's REST API for the file list and commit, /resolve/ for the bytes, the
// huggingface_hub cache layout on disk. See pull.h for the guarantees on interruption.
#include "engine/hub/pull.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/mapped_file.h"
#include "base/sha256.h"
#include "engine/hub/cache.h"
#include "net/url.h"

namespace iris::hub {
namespace {

namespace fs = std::filesystem;

// The files the engine reads (weights handled apart: one file or index + shards).
constexpr const char* kWantedFiles[] = {
    "config.json",           "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json",     "chat_template.json",
    "chat_template.jinja",   "preprocessor_config.json",
    "processor_config.json", "generation_config.json",
};

struct RemoteFile {
  std::string name;
  uint64_t size = 0;   // from the API (0 when not given)
  std::string sha256;  // LFS files only
};

struct FileMeta {
  std::string etag;
  std::string commit;
  std::string url;  // where the bytes are (after redirects)
  uint64_t size = 0;
  bool has_size = false;
};

std::string NormalizeEtag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

class Puller {
 public:
  Puller(RepoSpec spec, const PullOptions& options)
      : spec_(std::move(spec)),
        options_(options),
        shown_(spec_.repo_id + (spec_.explicit_revision ? "@" + spec_.revision : "")),
        repo_dir_(RepoCacheDir(options.cache_dir, spec_.repo_id)) {
    if (!options_.token.empty()) auth_.emplace_back("Authorization", "Bearer " + options_.token);
    if (auto endpoint = net::ParseUrl(options_.endpoint); endpoint.ok()) endpoint_ = *endpoint;
  }

  Result<PullResult> Run() {
    PullResult result;
    result.repo_id = spec_.repo_id;
    result.revision = spec_.revision;
    std::vector<RemoteFile> files;
    IRIS_ASSIGN_OR_RETURN(result.commit, FetchRepoInfo(&files));
    const fs::path snapshot = repo_dir_ / "snapshots" / result.commit;
    result.snapshot_dir = snapshot.string();

    auto find = [&files](std::string_view name) -> const RemoteFile* {
      for (const RemoteFile& f : files) {
        if (f.name == name) return &f;
      }
      return nullptr;
    };
    const RemoteFile* config = find("config.json");
    using Expect = PullOptions::Expect;
    if (config && options_.expect == Expect::kAdapter) {
      return InvalidArgument(shown_ + " is a model checkpoint, not a LoRA adapter (no download)");
    }
    if (!config && find("adapter_config.json") && options_.expect == Expect::kModel) {
      return InvalidArgument(shown_ + " is a LoRA adapter, not a model: pass it as --adapter " +
                             "with its base model as --model (no download)");
    }
    if (!config) {
      if (const RemoteFile* adapter = find("adapter_config.json"))
        return PullAdapter(*adapter, find("adapter_model.safetensors"), result);
      return NotFound(shown_ +
                      " has no config.json nor adapter_config.json: not a checkpoint or LoRA "
                      "adapter iris can run");
    }
    std::vector<const RemoteFile*> plan;
    for (const char* name : kWantedFiles) {
      if (const RemoteFile* f = find(name); f && f != config) plan.push_back(f);
    }
    if (const RemoteFile* weights = find("model.safetensors")) {
      plan.push_back(weights);
    } else if (const RemoteFile* index = find("model.safetensors.index.json")) {
      IRIS_RETURN_IF_ERROR(Download(*index, result.commit, &result));
      auto json = ReadJsonFile((snapshot / index->name).string());
      if (!json.ok()) return json.status();
      const auto* map = json->is_object() ? json->as_object().if_contains("weight_map") : nullptr;
      if (!map || !map->is_object()) {
        return DataLoss(shown_ + ": model.safetensors.index.json has no weight_map");
      }
      std::set<std::string> shards;
      for (const auto& [tensor, file] : map->as_object()) {
        if (file.is_string()) shards.insert(std::string(file.as_string()));
      }
      for (const std::string& shard : shards) {
        const RemoteFile* f = find(shard);
        if (!f)
          return NotFound(shown_ + ": shard " + shard +
                          " is listed in the index but not in the repo");
        plan.push_back(f);
      }
    } else {
      return NotFound(shown_ + " has no model.safetensors nor model.safetensors.index.json");
    }
    for (const RemoteFile* f : plan) IRIS_RETURN_IF_ERROR(Download(*f, result.commit, &result));
    // config.json last: a snapshot without it is not taken for a checkpoint.
    IRIS_RETURN_IF_ERROR(Download(*config, result.commit, &result));
    if (spec_.revision != result.commit) IRIS_RETURN_IF_ERROR(WriteRef(result.commit));
    return result;
  }

 private:
  // A PEFT LoRA adapter repo: its weights, then adapter_config.json last.
  Result<PullResult> PullAdapter(const RemoteFile& config, const RemoteFile* weights,
                                 PullResult& result) {
    if (weights == nullptr) {
      return NotFound(shown_ +
                      " is a LoRA adapter without adapter_model.safetensors (iris reads "
                      "safetensors adapters, save_pretrained's default)");
    }
    IRIS_RETURN_IF_ERROR(Download(*weights, result.commit, &result));
    IRIS_RETURN_IF_ERROR(Download(config, result.commit, &result));
    if (spec_.revision != result.commit) IRIS_RETURN_IF_ERROR(WriteRef(result.commit));
    return result;
  }

  Status NetworkError(const Status& s) const {
    return Status(ErrorCode::kUnavailable, "cannot reach " + options_.endpoint + ": " +
                                               s.message() +
                                               " — check the connection or set HF_ENDPOINT");
  }

  Status HttpError(const HttpResponse& r, std::string_view what) const {
    const std::string code = r.Header("X-Error-Code");
    if (r.status == 401 || r.status == 403 || code == "GatedRepo") {
      return Status(ErrorCode::kPermissionDenied,
                    spec_.repo_id +
                        " is gated or private: accept its terms on the hub and set HF_TOKEN" +
                        (options_.token.empty() ? "" : " (the token given has no access)"));
    }
    if (r.status == 404) {
      if (code == "RevisionNotFound") {
        return NotFound(spec_.repo_id + ": revision '" + spec_.revision + "' not found on " +
                        options_.endpoint + " (check the branch, tag or commit)");
      }
      if (code == "EntryNotFound") {
        return NotFound(shown_ + ": " + std::string(what) + " not found on " + options_.endpoint);
      }
      return NotFound(shown_ + " not found on " + options_.endpoint +
                      ": check the repo id and revision");
    }
    std::string body = r.body.substr(0, 200);
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return Status(ErrorCode::kUnavailable,
                  options_.endpoint + " answered HTTP " + std::to_string(r.status) + " for " +
                      std::string(what) + (body.empty() ? "" : ": " + body));
  }

  // One request, following up to max_redirects redirects; `meta` collects X-Linked-Etag,
  // X-Linked-Size and X-Repo-Commit from the redirect hops (the hub sets them on the 302 to
  // its CDN) and ETag / Content-Length from the final answer.
  Result<HttpResponse> FetchFollowing(std::string_view method, std::string url,
                                      const HttpHeaders& extra, FileMeta* meta,
                                      const BodySink& sink) {
    for (int hop = 0;; ++hop) {
      HttpHeaders headers = extra;
      auto parsed = net::ParseUrl(url);
      if (!parsed.ok() && hop == 0) return parsed.status();
      if (!parsed.ok()) {
        return Status(ErrorCode::kUnavailable,
                      "redirected to a URL iris does not fetch: " + parsed.status().message());
      }
      if (endpoint_ && net::SameOrigin(*parsed, *endpoint_)) {  // never leak the token
        headers.insert(headers.end(), auth_.begin(), auth_.end());
      }
      auto r = HttpFetch(method, url, headers, options_.http, sink);
      if (!r.ok()) return r.status();
      if (meta) {
        if (meta->etag.empty()) meta->etag = NormalizeEtag(r->Header("X-Linked-Etag"));
        if (meta->commit.empty()) meta->commit = r->Header("X-Repo-Commit");
        if (!meta->has_size) meta->has_size = ParseU64(r->Header("X-Linked-Size"), &meta->size);
      }
      const bool redirect = r->status == 301 || r->status == 302 || r->status == 303 ||
                            r->status == 307 || r->status == 308;
      if (!redirect || r->Header("Location").empty()) {
        if (meta) {
          meta->url = url;
          if (meta->etag.empty()) meta->etag = NormalizeEtag(r->Header("ETag"));
          if (!meta->has_size && r->status == 200) {
            meta->has_size = ParseU64(r->Header("Content-Length"), &meta->size);
          }
        }
        return r;
      }
      if (hop >= options_.max_redirects) {
        return Status(
            ErrorCode::kUnavailable,
            "more than " + std::to_string(options_.max_redirects) + " redirects from " + url);
      }
      auto next = net::ResolveReference(url, r->Header("Location"));
      if (!next.ok()) {
        return Status(ErrorCode::kUnavailable,
                      "redirected to an invalid Location: " + next.status().message());
      }
      url = std::move(*next);
    }
  }

  Result<std::string> FetchRepoInfo(std::vector<RemoteFile>* files) {
    const std::string url = options_.endpoint + "/api/models/" + spec_.repo_id + "/revision/" +
                            net::PercentEncode(spec_.revision, false) + "?blobs=true";
    auto r = FetchFollowing("GET", url, {}, nullptr, nullptr);
    if (!r.ok()) return NetworkError(r.status());
    if (r->status != 200) return HttpError(*r, "the repo info");
    auto json = ParseJson(r->body, url);
    if (!json.ok() || !json->is_object()) {
      return DataLoss(options_.endpoint + " sent a repo info that is not JSON for " + shown_);
    }
    const auto& o = json->as_object();
    const auto* sha = o.if_contains("sha");
    if (!sha || !sha->is_string() || !IsCommitHash(std::string(sha->as_string()))) {
      return DataLoss(options_.endpoint + " sent no commit sha for " + shown_);
    }
    if (const auto* siblings = o.if_contains("siblings"); siblings && siblings->is_array()) {
      for (const auto& s : siblings->as_array()) {
        if (!s.is_object()) continue;
        const auto* name = s.as_object().if_contains("rfilename");
        if (!name || !name->is_string()) continue;
        RemoteFile f;
        f.name = std::string(name->as_string());
        if (f.name.find("..") != std::string::npos || f.name.empty() || f.name.front() == '/') {
          continue;  // never write outside the snapshot
        }
        if (const auto* size = s.as_object().if_contains("size"); size && size->is_int64()) {
          f.size = static_cast<uint64_t>(size->as_int64());
        }
        if (const auto* lfs = s.as_object().if_contains("lfs"); lfs && lfs->is_object()) {
          if (const auto* h = lfs->as_object().if_contains("sha256"); h && h->is_string()) {
            f.sha256 = std::string(h->as_string());
          }
          if (const auto* size = lfs->as_object().if_contains("size"); size && size->is_int64()) {
            f.size = static_cast<uint64_t>(size->as_int64());
          }
        }
        files->push_back(std::move(f));
      }
    }
    return std::string(sha->as_string());
  }

  Status DiskError(const fs::path& path, std::string_view doing, int err) const {
    return Status(ErrorCode::kFailedPrecondition, "disk error: cannot " + std::string(doing) + " " +
                                                      path.string() + ": " + std::strerror(err) +
                                                      " — free some space or set HF_HUB_CACHE");
  }

  Status Link(const fs::path& snapshot, const std::string& name, const std::string& etag) {
    const fs::path link = snapshot / name;
    std::string target;
    for (size_t i = 0, depth = 2 + static_cast<size_t>(std::count(name.begin(), name.end(), '/'));
         i < depth; ++i) {
      target += "../";
    }
    target += "blobs/" + etag;
    std::error_code ec;
    fs::create_directories(link.parent_path(), ec);
    if (ec) return DiskError(link.parent_path(), "create", ec.value());
    fs::remove(link, ec);
    fs::create_symlink(target, link, ec);
    if (ec) return DiskError(link, "create the link", ec.value());
    return OkStatus();
  }

  Status Download(const RemoteFile& f, const std::string& commit, PullResult* result) {
    const fs::path snapshot = repo_dir_ / "snapshots" / commit;
    std::error_code ec;
    if (fs::is_regular_file(snapshot / f.name, ec)) return OkStatus();  // linked and present
    const std::string resolve = options_.endpoint + "/" + spec_.repo_id + "/resolve/" + commit +
                                "/" + net::PercentEncode(f.name, true);
    FileMeta meta;
    auto head = FetchFollowing("HEAD", resolve, {}, &meta, nullptr);
    if (!head.ok()) return NetworkError(head.status());
    if (head->status != 200) return HttpError(*head, f.name);
    if (meta.etag.empty() || meta.etag.find('/') != std::string::npos || meta.etag == "." ||
        meta.etag == "..") {
      return DataLoss(options_.endpoint + " sent no usable ETag for " + f.name);
    }
    if (!meta.has_size && f.size > 0) {
      meta.size = f.size;
      meta.has_size = true;
    }
    const fs::path blobs = repo_dir_ / "blobs";
    const fs::path blob = blobs / meta.etag;
    fs::create_directories(blobs, ec);
    if (ec) return DiskError(blobs, "create", ec.value());
    if (!fs::is_regular_file(blob, ec)) {
      IRIS_RETURN_IF_ERROR(FetchBlob(f, meta, blob, result));
    }
    return Link(snapshot, f.name, meta.etag);
  }

  Status FetchBlob(const RemoteFile& f, const FileMeta& meta, const fs::path& blob,
                   PullResult* result) {
    const fs::path partial = blob.string() + ".incomplete";
    std::error_code ec;
    // One writer per blob, as huggingface_hub does with <cache>/.locks/<repo>/<etag>.lock.
    const fs::path lock_path = fs::path(options_.cache_dir) / ".locks" / repo_dir_.filename() /
                               (blob.filename().string() + ".lock");
    fs::create_directories(lock_path.parent_path(), ec);
    if (ec) return DiskError(lock_path.parent_path(), "create", ec.value());
    const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) return DiskError(lock_path, "open", errno);
    std::unique_ptr<int, void (*)(int*)> lock_guard(new int(lock_fd), [](int* fd) {
      ::close(*fd);
      delete fd;
    });
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return FailedPrecondition(f.name + ": another pull is downloading it (" + lock_path.string() +
                                " is locked); wait for it to finish");
    }
    if (fs::is_regular_file(blob, ec)) return OkStatus();  // finished by another pull
    uint64_t offset = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (ec) offset = 0;
    if (meta.has_size && offset > meta.size) offset = 0;
    const std::string again = "; run `" + PullCommandFor(shown_) + "` again";
    if (!meta.has_size || offset < meta.size || meta.size == 0) {
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(
          std::fopen(partial.c_str(), offset > 0 ? "ab" : "wb"), &std::fclose);
      if (!out) return DiskError(partial, "open", errno);
      HttpHeaders headers;
      if (offset > 0) headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
      uint64_t done = offset;
      bool first = true;
      Status write_error;
      PullProgress progress;
      progress.file = f.name;
      progress.total = meta.size;
      auto sink = [&](const HttpResponse& head, std::string_view chunk) -> Status {
        if (first) {
          first = false;
          if (head.status != 206 && done > 0) {  // the server ignored the range: start over
            if (std::fflush(out.get()) != 0 || ::ftruncate(fileno(out.get()), 0) != 0) {
              return DiskError(partial, "truncate", errno);
            }
            done = 0;
          }
        }
        if (std::fwrite(chunk.data(), 1, chunk.size(), out.get()) != chunk.size()) {
          return DiskError(partial, "write", errno);
        }
        done += chunk.size();
        result->bytes_downloaded += chunk.size();
        transferred_ += chunk.size();
        if (options_.on_progress) {
          progress.done = done;
          progress.transferred = transferred_;
          options_.on_progress(progress);
        }
        return OkStatus();
      };
      auto r = FetchFollowing("GET", meta.url, headers, nullptr, sink);
      if (std::fflush(out.get()) != 0) return DiskError(partial, "write", errno);
      out.reset();
      if (!r.ok()) {
        if (r.status().code() == ErrorCode::kFailedPrecondition) return r.status();  // disk
        if (first && done == offset) return NetworkError(r.status());
        return Status(ErrorCode::kUnavailable,
                      f.name + ": download interrupted after " + std::to_string(done) + " bytes (" +
                          r.status().message() + ")" + again + " to resume");
      }
      if (r->status == 416 && meta.has_size && offset == meta.size) {
        // Already complete on disk.
      } else if (r->status != 200 && r->status != 206) {
        return HttpError(*r, f.name);
      }
      if (options_.on_progress) {
        progress.done = done;
        progress.transferred = transferred_;
        progress.finished = true;
        options_.on_progress(progress);
      }
      ++result->files_downloaded;
    }
    const uint64_t size = fs::file_size(partial, ec);
    if (ec) return DiskError(partial, "stat", ec.value());
    if (meta.has_size && size != meta.size) {
      if (size > meta.size) fs::remove(partial, ec);
      return DataLoss(f.name + ": got " + std::to_string(size) + " bytes, expected " +
                      std::to_string(meta.size) + again);
    }
    if (!f.sha256.empty()) {
      IRIS_ASSIGN_OR_RETURN(std::string sha, Sha256File(partial.string()));
      if (sha != f.sha256) {
        fs::remove(partial, ec);
        return DataLoss(f.name + ": sha256 mismatch (expected " + f.sha256 + ", got " + sha +
                        "); the download was deleted" + again);
      }
    }
    fs::rename(partial, blob, ec);
    if (ec) return DiskError(blob, "rename to", ec.value());
    return OkStatus();
  }

  Status WriteRef(const std::string& commit) {
    const fs::path ref = repo_dir_ / "refs" / spec_.revision;
    std::error_code ec;
    fs::create_directories(ref.parent_path(), ec);
    if (ec) return DiskError(ref.parent_path(), "create", ec.value());
    const fs::path tmp = ref.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << commit;
      if (!out.flush()) return DiskError(tmp, "write", errno);
    }
    fs::rename(tmp, ref, ec);
    if (ec) return DiskError(ref, "rename to", ec.value());
    return OkStatus();
  }

  RepoSpec spec_;
  const PullOptions& options_;
  std::string shown_;
  fs::path repo_dir_;
  HttpHeaders auth_;
  std::optional<net::Url> endpoint_;  // the origin HF_TOKEN is sent to
  uint64_t transferred_ = 0;
};

}  // namespace

Result<PullOptions> PullOptionsFromEnv() {
  PullOptions o;
  o.endpoint = GetEnv("HF_ENDPOINT").value_or("https://huggingface.co");
  o.token = GetEnv("HF_TOKEN").value_or(GetEnv("HUGGING_FACE_HUB_TOKEN").value_or(""));
  const std::string offline = GetEnv("HF_HUB_OFFLINE").value_or("");
  o.offline = offline == "1" || offline == "true" || offline == "TRUE" || offline == "yes" ||
              offline == "ON" || offline == "on";
  o.cache_dir = DefaultHubCacheDir();
  IRIS_ASSIGN_OR_RETURN(o.http.proxy, net::ProxySettings::FromEnv(::getenv));
  return o;
}

Result<PullResult> Pull(std::string_view spec_text, const PullOptions& options) {
  IRIS_ASSIGN_OR_RETURN(RepoSpec spec, ParseRepoSpec(spec_text));
  if (options.offline) {
    ResolveOptions ro;
    ro.cache_dir = options.cache_dir;
    auto cached =
        ResolveModel(spec.repo_id + (spec.explicit_revision ? "@" + spec.revision : ""), ro);
    if (cached.ok()) {
      PullResult r;
      r.repo_id = spec.repo_id;
      r.revision = spec.revision;
      r.snapshot_dir = *cached;
      r.commit = std::filesystem::path(*cached).filename().string();
      return r;
    }
    return FailedPrecondition("offline mode (HF_HUB_OFFLINE=1 or --offline): not downloading " +
                              spec.repo_id +
                              ", which is not in the cache; unset HF_HUB_OFFLINE "
                              "or drop --offline to pull it");
  }
  PullOptions o = options;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (auto u = net::ParseUrl(o.endpoint); !u.ok()) {
    return InvalidArgument("bad hub endpoint (HF_ENDPOINT) '" + o.endpoint +
                           "': " + u.status().message());
  }
  // The token goes into a header line: nothing in it may end the line or the head.
  for (unsigned char c : o.token) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgument("HF_TOKEN holds a control character: set it to the token alone");
    }
  }
  Puller puller(std::move(spec), o);
  return puller.Run();
}

Result<std::string> Sha256File(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!in) return NotFound(path + ": " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0) h.Update(buf.data(), n);
  if (std::ferror(in.get())) return DataLoss(path + ": read error");
  return HexDigest(h.Finish());
}

}  // namespace iris::hub
