// iris.yaml → Config. yaml-cpp only parses (its one throwing call is caught right there); every
// check is ours and only records a problem, so one run reports every mistake in the file.
#include "gateway/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include "base/env.h"

namespace iris::gateway::config {
namespace {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Problems, collected.

struct Problem {
  int line = 0;  // 1-based; 0 when unknown
  std::string path;
  std::string message;
};

class Problems {
 public:
  void Add(const YAML::Node& at, std::string_view path, std::string message) {
    const YAML::Mark mark = at.Mark();
    Add(mark.is_null() ? 0 : mark.line + 1, path, std::move(message));
  }
  void Add(int line, std::string_view path, std::string message) {
    list_.push_back({line, std::string(path), std::move(message)});
  }
  bool empty() const { return list_.empty(); }

  Status ToStatus(std::string_view source) {
    std::stable_sort(list_.begin(), list_.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    std::string text = std::string(source) + ": " + std::to_string(list_.size()) +
                       (list_.size() == 1 ? " error" : " errors");
    for (const Problem& p : list_) {
      text += "\n";
      text += source;
      if (p.line > 0) text += ":" + std::to_string(p.line);
      text += ": ";
      if (!p.path.empty()) text += p.path + ": ";
      text += p.message;
    }
    return InvalidArgument(std::move(text));
  }

 private:
  std::vector<Problem> list_;
};

// ---------------------------------------------------------------------------------------------
// Did-you-mean.

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "; did you mean \"x\"?" for the closest candidate within a third of the word's length.
template <typename Names>
std::string DidYouMean(std::string_view word, const Names& candidates) {
  std::string_view best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  if (best.empty()) return "";
  return "; did you mean \"" + std::string(best) + "\"?";
}

template <typename Names>
std::string JoinNames(const Names& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out.empty() ? "none" : out;
}

// ---------------------------------------------------------------------------------------------
// Reading nodes without exceptions: maps are indexed once by iteration, scalars are parsed with
// from_chars.

std::string_view TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "empty";
    case YAML::NodeType::Undefined:
      break;
  }
  return "undefined";
}

struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

std::string Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

// The fields of one YAML map. Unknown and duplicate keys are reported when it is opened.
class MapView {
 public:
  // A null node is an empty map (`server:` with nothing under it).
  static std::optional<MapView> Open(const YAML::Node& node, std::string path, Problems& problems,
                                     std::initializer_list<std::string_view> allowed) {
    MapView view(node, std::move(path));
    if (!view.Index(problems)) return std::nullopt;
    if (allowed.size() > 0) {
      for (const Field& f : view.fields_) {
        if (std::find(allowed.begin(), allowed.end(), f.key) != allowed.end()) continue;
        problems.Add(
            f.key_node, Join(view.path_, f.key),
            "unknown key" + DidYouMean(f.key, allowed) + " (allowed: " + JoinNames(allowed) + ")");
      }
    }
    return view;
  }

  const Field* Find(std::string_view key) const {
    for (const Field& f : fields_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
  const std::vector<Field>& fields() const { return fields_; }
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }

 private:
  MapView(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  bool Index(Problems& problems) {
    if (node_.IsNull()) return true;
    if (!node_.IsMap()) {
      problems.Add(node_, path_, "expected a map, got " + std::string(TypeName(node_)));
      return false;
    }
    std::set<std::string, std::less<>> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      // Dereferencing a yaml-cpp iterator yields a temporary: copy the (cheap, shared) nodes.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        problems.Add(key, path_, "keys must be plain names, got " + std::string(TypeName(key)));
        continue;
      }
      if (!seen.insert(key.Scalar()).second) {
        problems.Add(key, Join(path_, key.Scalar()), "duplicate key");
        continue;
      }
      fields_.push_back({key.Scalar(), key, value});
    }
    return true;
  }

  YAML::Node node_;
  std::string path_;
  std::vector<Field> fields_;
};

std::optional<std::string> ReadString(const Field* f, std::string_view path, Problems& problems) {
  if (f == nullptr) return std::nullopt;
  if (!f->value.IsScalar()) {
    problems.Add(f->value.IsNull() ? f->key_node : f->value, path,
                 "expected a string, got " + std::string(TypeName(f->value)));
    return std::nullopt;
  }
  return f->value.Scalar();
}

std::optional<bool> ReadBool(const Field* f, std::string_view path, Problems& problems) {
  if (f == nullptr) return std::nullopt;
  if (f->value.IsScalar()) {
    const std::string& t = f->value.Scalar();
    if (t == "true") return true;
    if (t == "false") return false;
  }
  problems.Add(f->value.IsNull() ? f->key_node : f->value, path, "expected true or false");
  return std::nullopt;
}

std::optional<int64_t> ReadInt(const Field* f, std::string_view path, Problems& problems,
                               int64_t min, int64_t max) {
  if (f == nullptr) return std::nullopt;
  if (!f->value.IsScalar()) {
    problems.Add(f->value.IsNull() ? f->key_node : f->value, path,
                 "expected an integer, got " + std::string(TypeName(f->value)));
    return std::nullopt;
  }
  const std::string& text = f->value.Scalar();
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    problems.Add(f->value, path, "expected an integer, got \"" + text + "\"");
    return std::nullopt;
  }
  if (v < min || v > max) {
    problems.Add(
        f->value, path,
        "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + text);
    return std::nullopt;
  }
  return v;
}

std::optional<double> ReadNumber(const Field* f, std::string_view path, Problems& problems) {
  if (f == nullptr) return std::nullopt;
  if (!f->value.IsScalar()) {
    problems.Add(f->value.IsNull() ? f->key_node : f->value, path,
                 "expected a number, got " + std::string(TypeName(f->value)));
    return std::nullopt;
  }
  const std::string& text = f->value.Scalar();
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
    problems.Add(f->value, path, "expected a number, got \"" + text + "\"");
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::string>> ReadStringList(const Field* f, std::string_view path,
                                                       Problems& problems) {
  if (f == nullptr) return std::nullopt;
  if (!f->value.IsSequence()) {
    problems.Add(f->value.IsNull() ? f->key_node : f->value, path,
                 "expected a list of strings, got " + std::string(TypeName(f->value)));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < f->value.size(); ++i) {
    const YAML::Node item = f->value[i];
    const std::string item_path = std::string(path) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar() || item.Scalar().empty()) {
      problems.Add(item, item_path,
                   "expected a non-empty string, got " + std::string(TypeName(item)));
      continue;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

void ReadMs(const MapView& m, std::string_view key, milliseconds& out, Problems& problems,
            int64_t min_ms = 1) {
  const std::string path = Join(m.path(), key);
  if (auto v = ReadInt(m.Find(key), path, problems, min_ms, int64_t{24} * 3600 * 1000)) {
    out = milliseconds(*v);
  }
}

// ---------------------------------------------------------------------------------------------
// Sections.

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

// Values that are plainly API keys pasted into the file.
bool LooksLikeSecret(std::string_view v) {
  for (std::string_view prefix : {"sk-", "Bearer sk-", "AIza", "gsk_", "xai-", "Bearer gsk_"}) {
    if (v.substr(0, prefix.size()) == prefix && v.size() > prefix.size() + 8) return true;
  }
  return false;
}

constexpr std::string_view kSecretMessage =
    "secrets are referenced by environment variable: use api_key_env";

void ParseServer(const YAML::Node& node, ServerConfig& server, Problems& problems) {
  auto m = MapView::Open(
      node, "server", problems,
      {"listen", "threads", "max_body_bytes", "header_timeout_ms", "body_timeout_ms",
       "idle_timeout_ms", "shutdown_grace_ms", "allowed_hosts", "cors", "max_connections"});
  if (!m) return;
  if (auto hosts = ReadStringList(m->Find("allowed_hosts"), "server.allowed_hosts", problems)) {
    server.allowed_hosts = std::move(*hosts);
  }
  if (const Field* c = m->Find("cors")) {
    if (auto cm = MapView::Open(c->value, "server.cors", problems, {"allow_origins"})) {
      if (auto origins =
              ReadStringList(cm->Find("allow_origins"), "server.cors.allow_origins", problems)) {
        server.cors.allow_origins = std::move(*origins);
      }
    }
  }
  if (auto v =
          ReadInt(m->Find("max_connections"), "server.max_connections", problems, 0, 1'000'000)) {
    server.max_connections = static_cast<int>(*v);
  }
  if (auto listen = ReadString(m->Find("listen"), "server.listen", problems)) {
    Result<ListenAddress> parsed = ParseListenAddress(*listen);
    if (parsed.ok()) {
      server.listen = *parsed;
    } else {
      problems.Add(m->Find("listen")->value, "server.listen", parsed.status().message());
    }
  }
  if (auto v = ReadInt(m->Find("threads"), "server.threads", problems, 1, 1024)) {
    server.threads = static_cast<int>(*v);
  }
  if (auto v = ReadInt(m->Find("max_body_bytes"), "server.max_body_bytes", problems, 1,
                       int64_t{4} << 30)) {
    server.max_body_bytes = *v;
  }
  ReadMs(*m, "header_timeout_ms", server.header_timeout, problems);
  ReadMs(*m, "body_timeout_ms", server.body_timeout, problems);
  ReadMs(*m, "idle_timeout_ms", server.idle_timeout, problems);
  ReadMs(*m, "shutdown_grace_ms", server.shutdown_grace, problems, 0);
}

void ResolveKey(ProviderConfig& p, const EnvLookup& env, std::vector<std::string> candidates) {
  for (const std::string& var : candidates) {
    std::optional<std::string> value = env ? env(var) : std::nullopt;
    if (value && !value->empty()) {
      p.api_key_env = var;
      p.api_key = std::move(*value);
      return;
    }
  }
  p.api_key_env = candidates.empty() ? "" : candidates.front();
  p.enabled = false;
  std::string names;
  for (const std::string& var : candidates) names += (names.empty() ? "" : " or ") + var;
  p.disabled_reason = names + " not set";
}

void ParseProvider(const Field& entry, const EnvLookup& env, std::vector<ProviderConfig>& out,
                   Problems& problems) {
  const std::string path = "providers." + entry.key;
  ProviderConfig p;
  p.name = entry.key;
  if (p.name.empty() || !std::all_of(p.name.begin(), p.name.end(), IsNameChar)) {
    problems.Add(entry.key_node, path,
                 "provider names use letters, digits, '-', '_' and '.' (no '/')");
  }
  auto m = MapView::Open(entry.value, path, problems, {});
  if (!m) return;
  static constexpr std::array<std::string_view, 18> kAllowed = {
      "kind",       "base_url",         "api_key_env",        "headers",           "models",
      "model",      "threads",          "max_queue",          "max_batch",         "kv_cache_mb",
      "max_images", "max_image_pixels", "max_request_pixels", "account_resources", "adapters",
      "compute",    "kv_cache_dtype",   "step_tokens"};
  for (const Field& f : m->fields()) {
    if (std::find(kAllowed.begin(), kAllowed.end(), f.key) != kAllowed.end()) continue;
    if (f.key == "api_key" || f.key == "key" || f.key == "apiKey" || f.key == "token" ||
        f.key == "secret") {
      problems.Add(f.key_node, Join(path, f.key), std::string(kSecretMessage));
      continue;
    }
    problems.Add(
        f.key_node, Join(path, f.key),
        "unknown key" + DidYouMean(f.key, kAllowed) + " (allowed: " + JoinNames(kAllowed) + ")");
  }

  std::vector<std::string_view> kinds;
  for (const providers::ProviderFacts& f : providers::AllProviderKinds()) kinds.push_back(f.name);
  const Field* kind_field = m->Find("kind");
  if (kind_field == nullptr) {
    // The provider's name may be its kind ("openai: { api_key_env: ... }").
    if (auto kind = ParseProviderKind(p.name)) {
      p.kind = *kind;
    } else {
      problems.Add(entry.key_node, path + ".kind", "required (one of: " + JoinNames(kinds) + ")");
      return;
    }
  } else if (auto name = ReadString(kind_field, path + ".kind", problems)) {
    if (auto kind = ParseProviderKind(*name)) {
      p.kind = *kind;
    } else {
      problems.Add(kind_field->value, path + ".kind",
                   "unknown kind \"" + *name + "\" (one of: " + JoinNames(kinds) + ")" +
                       DidYouMean(*name, kinds));
      return;
    }
  } else {
    return;
  }

  const bool local = p.kind == ProviderKind::kLocal;
  auto only_for = [&](std::string_view key, bool allowed_here, std::string_view why) {
    const Field* f = m->Find(key);
    if (f != nullptr && !allowed_here) problems.Add(f->key_node, Join(path, key), std::string(why));
  };
  only_for("base_url", !local, "not used by kind local");
  only_for("api_key_env", !local, "not used by kind local");
  only_for("headers", !local, "not used by kind local");
  // (Only a kind that takes callers' bodies as written can be sent what names its account.)
  std::string as_is_kinds;
  for (const providers::ProviderFacts& f : providers::AllProviderKinds()) {
    if (!f.as_is_dialect) continue;
    as_is_kinds += std::string(as_is_kinds.empty() ? "" : " and ") + std::string(f.name);
  }
  only_for("account_resources", providers::FactsOf(p.kind).as_is_dialect.has_value(),
           "only for kinds " + as_is_kinds +
               " (files, vector stores, containers, skills and prompts of the provider's account)");
  only_for("model", local, "only for kind local (list upstream model ids under `models`)");
  only_for("threads", local, "only for kind local");
  only_for("compute", local, "only for kind local");
  only_for("max_queue", local, "only for kind local");
  only_for("max_batch", local, "only for kind local");
  only_for("step_tokens", local, "only for kind local");
  only_for("kv_cache_mb", local, "only for kind local");
  only_for("kv_cache_dtype", local, "only for kind local");
  only_for("max_images", local, "only for kind local");
  only_for("max_image_pixels", local, "only for kind local");
  only_for("max_request_pixels", local, "only for kind local");
  only_for("adapters", local, "only for kind local (LoRA adapters of the local model)");

  if (!local) {
    const Field* url_field = m->Find("base_url");
    if (auto url = ReadString(url_field, path + ".base_url", problems)) {
      if (url->rfind("https://", 0) != 0 && url->rfind("http://", 0) != 0) {
        problems.Add(url_field->value, path + ".base_url",
                     "must start with https:// or http://, got \"" + *url + "\"");
      } else if (url->find_first_not_of('/', url->find("://") + 3) == std::string::npos) {
        problems.Add(url_field->value, path + ".base_url", "has no host, got \"" + *url + "\"");
      }
      while (!url->empty() && url->back() == '/') url->pop_back();
      p.base_url = *url;
    } else if (url_field == nullptr) {
      p.base_url = std::string(providers::FactsOf(p.kind).default_base_url);
      if (p.base_url.empty()) {
        problems.Add(entry.key_node, path + ".base_url",
                     "required for kind " + std::string(ProviderKindName(p.kind)));
      }
    }

    const Field* env_field = m->Find("api_key_env");
    if (auto var = ReadString(env_field, path + ".api_key_env", problems)) {
      if (var->empty() || !std::all_of(var->begin(), var->end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
          })) {
        problems.Add(
            env_field->value, path + ".api_key_env",
            LooksLikeSecret(*var)
                ? "this looks like a key, not a variable name: " + std::string(kSecretMessage)
                : "expected an environment variable name, got \"" + *var + "\"");
      } else {
        ResolveKey(p, env, {*var});
      }
    } else if (env_field == nullptr) {
      const auto key_env = providers::FactsOf(p.kind).key_env;
      if (!key_env.empty()) ResolveKey(p, env, {key_env.begin(), key_env.end()});
    }

    if (auto v = ReadBool(m->Find("account_resources"), path + ".account_resources", problems)) {
      p.account_resources = *v;
    }
    if (const Field* h = m->Find("headers")) {
      auto hm = MapView::Open(h->value, path + ".headers", problems, {});
      if (hm) {
        for (const Field& f : hm->fields()) {
          const std::string hpath = Join(hm->path(), f.key);
          // What the upstream client will write (http::IsValidFieldName / IsValidFieldValue):
          // a header it would refuse must fail here, not on every request.
          const bool token =
              !f.key.empty() && f.key.size() <= 256 &&
              std::all_of(f.key.begin(), f.key.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
              });
          if (!token) problems.Add(f.key_node, hpath, "not a valid header name");
          auto value = ReadString(&f, hpath, problems);
          if (!value) continue;
          if (LooksLikeSecret(*value)) {
            problems.Add(f.value, hpath, std::string(kSecretMessage));
            continue;
          }
          if (std::any_of(value->begin(), value->end(), [](char ch) {
                const auto c = static_cast<unsigned char>(ch);
                return (c < 0x20 && c != '\t') || c == 0x7f;
              })) {
            problems.Add(f.value, hpath,
                         "header values may not contain line breaks or other control characters");
            continue;
          }
          if (value->size() > (64 << 10)) {
            problems.Add(f.value, hpath, "header values may not be longer than 64 KiB");
            continue;
          }
          p.headers[f.key] = *value;
        }
      }
    }
  } else {
    const Field* model_field = m->Find("model");
    if (auto model = ReadString(model_field, path + ".model", problems)) {
      if (model->empty()) problems.Add(model_field->value, path + ".model", "must not be empty");
      p.model = *model;
    } else if (model_field == nullptr) {
      problems.Add(entry.key_node, path + ".model",
                   "required for kind local (a checkpoint directory or a Hugging Face repo id)");
    }
    if (auto v = ReadInt(m->Find("threads"), path + ".threads", problems, 0, 1024)) {
      p.threads = static_cast<int>(*v);
    }
    if (const Field* cf = m->Find("compute")) {
      if (auto c = ReadString(cf, path + ".compute", problems)) {
        if (*c == "exact" || *c == "bf16") {
          p.compute = *c;
        } else {
          problems.Add(cf->value, path + ".compute",
                       "expected exact (f32 products, the default) or bf16 (every product of "
                       "float weights with bf16 inputs on AVX512-BF16 CPUs; measured by iris "
                       "verify --compute bf16)");
        }
      }
    }
    if (auto v = ReadInt(m->Find("max_queue"), path + ".max_queue", problems, 0, 1'000'000)) {
      p.max_queue = static_cast<int>(*v);
    }
    if (auto v = ReadInt(m->Find("max_batch"), path + ".max_batch", problems, 1, 256)) {
      p.max_batch = static_cast<int>(*v);
    }
    if (auto v = ReadInt(m->Find("step_tokens"), path + ".step_tokens", problems, 8, 4096)) {
      p.step_tokens = static_cast<int>(*v);
    }
    if (const Field* kf = m->Find("kv_cache_dtype")) {
      if (auto c = ReadString(kf, path + ".kv_cache_dtype", problems)) {
        if (*c == "f32" || *c == "f16") {  // runtime::kKvCacheDtypes
          p.kv_cache_dtype = *c;
        } else {
          problems.Add(kf->value, path + ".kv_cache_dtype",
                       "expected f32 (exact, the default) or f16 (keys and values in half the "
                       "memory; measured by iris verify --kv-cache-dtype f16)");
        }
      }
    }
    if (auto v = ReadInt(m->Find("kv_cache_mb"), path + ".kv_cache_mb", problems, 16,
                         int64_t{1} << 20)) {
      p.kv_cache_mb = *v;
    }
    if (auto v = ReadInt(m->Find("max_images"), path + ".max_images", problems, 0, 1000)) {
      p.max_images = static_cast<int>(*v);
    }
    if (auto v = ReadInt(m->Find("max_image_pixels"), path + ".max_image_pixels", problems, 1,
                         int64_t{1} << 32)) {
      p.max_image_pixels = *v;
    }
    if (auto v = ReadInt(m->Find("max_request_pixels"), path + ".max_request_pixels", problems, 1,
                         int64_t{1} << 34)) {
      p.max_request_pixels = *v;
    }
    if (const Field* a = m->Find("adapters")) {
      if (auto am = MapView::Open(a->value, path + ".adapters", problems, {})) {
        for (const Field& f : am->fields()) {
          const std::string apath = Join(am->path(), f.key);
          // Callers name it in the model id (local/<model>:<adapter>).
          const bool ok_name = !f.key.empty() && f.key.size() <= 64 &&
                               std::all_of(f.key.begin(), f.key.end(), [](char c) {
                                 return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                                        c == '_' || c == '.';
                               });
          if (!ok_name) {
            problems.Add(f.key_node, apath,
                         "adapter names use letters, digits, '-', '_' and '.' (at most 64)");
          }
          auto value = ReadString(&f, apath, problems);
          if (!value) continue;
          if (value->empty()) {
            problems.Add(f.value, apath, "an adapter directory or Hugging Face repo id");
            continue;
          }
          p.adapters[f.key] = *value;
        }
      }
    }
  }
  if (auto models = ReadStringList(m->Find("models"), path + ".models", problems)) {
    p.models = std::move(*models);
  }
  out.push_back(std::move(p));
}

void ParseTimeouts(const Field* f, std::string path, Timeouts& t, Problems& problems) {
  if (f == nullptr) return;
  auto m = MapView::Open(f->value, std::move(path), problems,
                         {"connect_ms", "first_token_ms", "idle_ms", "total_ms"});
  if (!m) return;
  ReadMs(*m, "connect_ms", t.connect, problems);
  ReadMs(*m, "first_token_ms", t.first_token, problems);
  ReadMs(*m, "idle_ms", t.idle, problems);
  ReadMs(*m, "total_ms", t.total, problems);
}

// Timeouts that cannot all hold: a per-attempt deadline longer than the whole request's.
void CheckTimeouts(const Timeouts& t, const YAML::Node& at, const std::string& path,
                   Problems& problems) {
  auto check = [&](milliseconds part, std::string_view name) {
    if (part > t.total) {
      problems.Add(at, path,
                   std::string(name) + " (" + std::to_string(part.count()) +
                       ") exceeds total_ms (" + std::to_string(t.total.count()) + ")");
    }
  };
  check(t.connect, "connect_ms");
  check(t.first_token, "first_token_ms");
}

// "provider/model" → {provider, model}; the model part may itself contain '/'.
std::optional<std::pair<std::string, std::string>> SplitTarget(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == s.size()) return std::nullopt;
  return std::pair{std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
}

void ParseAlias(const Field& entry, const std::vector<ProviderConfig>& providers,
                int default_retries, const Timeouts& default_timeouts, std::vector<ModelAlias>& out,
                Problems& problems) {
  const std::string path = "models." + entry.key;
  ModelAlias alias;
  alias.name = entry.key;
  alias.retries = default_retries;
  alias.timeouts = default_timeouts;
  if (alias.name.empty()) problems.Add(entry.key_node, path, "alias names must not be empty");
  auto m = MapView::Open(entry.value, path, problems,
                         {"strategy", "targets", "retries", "timeouts", "store_bodies"});
  if (!m) return;
  if (auto v = ReadBool(m->Find("store_bodies"), path + ".store_bodies", problems)) {
    alias.store_bodies = *v;
  }

  static constexpr std::array<std::string_view, 2> kStrategies = {"fallback", "weighted"};
  if (auto s = ReadString(m->Find("strategy"), path + ".strategy", problems)) {
    if (*s == "fallback") {
      alias.strategy = Strategy::kFallback;
    } else if (*s == "weighted") {
      alias.strategy = Strategy::kWeighted;
    } else {
      problems.Add(m->Find("strategy")->value, path + ".strategy",
                   "unknown strategy \"" + *s + "\" (one of: fallback, weighted)" +
                       DidYouMean(*s, kStrategies));
    }
  }
  if (auto v = ReadInt(m->Find("retries"), path + ".retries", problems, 0, 10)) {
    alias.retries = static_cast<int>(*v);
  }
  ParseTimeouts(m->Find("timeouts"), path + ".timeouts", alias.timeouts, problems);
  if (const Field* t = m->Find("timeouts")) {
    CheckTimeouts(alias.timeouts, t->value, path + ".timeouts", problems);
  }

  std::vector<std::string> provider_names;
  for (const ProviderConfig& p : providers) provider_names.push_back(p.name);

  const Field* targets = m->Find("targets");
  if (targets == nullptr) {
    problems.Add(entry.key_node, path + ".targets", "required: a list of provider/model targets");
    return;
  }
  if (!targets->value.IsSequence() || targets->value.size() == 0) {
    problems.Add(targets->value.IsNull() ? targets->key_node : targets->value, path + ".targets",
                 "expected a non-empty list of provider/model targets");
    return;
  }
  for (size_t i = 0; i < targets->value.size(); ++i) {
    const YAML::Node item = targets->value[i];
    const std::string item_path = path + ".targets[" + std::to_string(i) + "]";
    AliasTarget target;
    std::string spec;
    YAML::Node spec_node = item;
    if (item.IsScalar()) {
      spec = item.Scalar();
    } else if (item.IsMap()) {
      auto tm = MapView::Open(item, item_path, problems, {"target", "weight"});
      if (!tm) continue;
      const Field* tf = tm->Find("target");
      if (tf == nullptr) {
        problems.Add(item, item_path + ".target", "required: \"provider/model\"");
        continue;
      }
      auto s = ReadString(tf, item_path + ".target", problems);
      if (!s) continue;
      spec = *s;
      spec_node = tf->value;
      if (const Field* wf = tm->Find("weight")) {
        if (auto w = ReadNumber(wf, item_path + ".weight", problems)) {
          if (*w <= 0) {
            problems.Add(wf->value, item_path + ".weight", "weights must be > 0");
          } else {
            target.weight = *w;
          }
        }
        if (alias.strategy != Strategy::kWeighted) {
          problems.Add(wf->key_node, item_path + ".weight",
                       "only used with strategy: weighted (this alias falls back in order)");
        }
      }
    } else {
      problems.Add(item, item_path,
                   "expected \"provider/model\" or { target: provider/model, weight: N }");
      continue;
    }
    auto split = SplitTarget(spec);
    if (!split) {
      problems.Add(spec_node, item_path, "expected \"provider/model\", got \"" + spec + "\"");
      continue;
    }
    target.provider = split->first;
    target.model = split->second;
    if (std::find(provider_names.begin(), provider_names.end(), target.provider) ==
        provider_names.end()) {
      problems.Add(spec_node, item_path,
                   "unknown provider \"" + target.provider +
                       "\" (configured: " + JoinNames(provider_names) + ")" +
                       DidYouMean(target.provider, provider_names));
      continue;
    }
    // A local target may name one of the model's adapters: it must be configured.
    const auto p = std::find_if(providers.begin(), providers.end(),
                                [&](const ProviderConfig& c) { return c.name == target.provider; });
    if (const size_t colon = target.model.find(':');
        p != providers.end() && p->kind == ProviderKind::kLocal && colon != std::string::npos) {
      const std::string adapter = target.model.substr(colon + 1);
      if (p->adapters.count(adapter) == 0) {
        std::vector<std::string> names;
        for (const auto& [n, dir] : p->adapters) names.push_back(n);
        problems.Add(spec_node, item_path,
                     "unknown adapter \"" + adapter + "\" of provider " + p->name +
                         " (configured under providers." + p->name +
                         ".adapters: " + (names.empty() ? std::string("none") : JoinNames(names)) +
                         ")" + DidYouMean(adapter, names));
        continue;
      }
    }
    alias.targets.push_back(std::move(target));
  }
  out.push_back(std::move(alias));
}

void ParseDefaults(const YAML::Node& node, Config& config, Problems& problems) {
  auto m = MapView::Open(node, "defaults", problems, {"retries", "timeouts"});
  if (!m) return;
  if (auto v = ReadInt(m->Find("retries"), "defaults.retries", problems, 0, 10)) {
    config.default_retries = static_cast<int>(*v);
  }
  ParseTimeouts(m->Find("timeouts"), "defaults.timeouts", config.default_timeouts, problems);
  if (const Field* t = m->Find("timeouts")) {
    CheckTimeouts(config.default_timeouts, t->value, "defaults.timeouts", problems);
  }
}

void ParseRouting(const YAML::Node& node, RoutingConfig& routing, Problems& problems) {
  auto m = MapView::Open(node, "routing", problems,
                         {"backoff_base_ms", "backoff_max_ms", "max_retry_after_ms", "breaker"});
  if (!m) return;
  ReadMs(*m, "backoff_base_ms", routing.backoff_base, problems, 0);
  ReadMs(*m, "backoff_max_ms", routing.backoff_max, problems, 0);
  ReadMs(*m, "max_retry_after_ms", routing.max_retry_after, problems, 0);
  if (routing.backoff_max < routing.backoff_base) {
    problems.Add(
        m->node(), "routing.backoff_max_ms",
        "must be at least backoff_base_ms (" + std::to_string(routing.backoff_base.count()) + ")");
  }
  if (const Field* b = m->Find("breaker")) {
    auto bm =
        MapView::Open(b->value, "routing.breaker", problems, {"failure_threshold", "cooldown_ms"});
    if (bm) {
      if (auto v = ReadInt(bm->Find("failure_threshold"), "routing.breaker.failure_threshold",
                           problems, 1, 1000)) {
        routing.breaker.failure_threshold = static_cast<int>(*v);
      }
      ReadMs(*bm, "cooldown_ms", routing.breaker.cooldown, problems);
    }
  }
}

void ParseImageFetch(const YAML::Node& node, ImageFetchConfig& fetch, Problems& problems) {
  auto m = MapView::Open(node, "image_fetch", problems,
                         {"enabled", "allow_hosts", "allow_private", "use_proxy", "max_bytes",
                          "max_per_request", "timeout_ms"});
  if (!m) return;
  if (auto v = ReadBool(m->Find("enabled"), "image_fetch.enabled", problems)) fetch.enabled = *v;
  if (auto v = ReadStringList(m->Find("allow_hosts"), "image_fetch.allow_hosts", problems)) {
    fetch.allow_hosts = std::move(*v);
  }
  if (auto v = ReadBool(m->Find("allow_private"), "image_fetch.allow_private", problems)) {
    fetch.allow_private = *v;
  }
  if (auto v = ReadBool(m->Find("use_proxy"), "image_fetch.use_proxy", problems)) {
    fetch.use_proxy = *v;
  }
  if (auto v =
          ReadInt(m->Find("max_bytes"), "image_fetch.max_bytes", problems, 1, int64_t{1} << 30)) {
    fetch.max_bytes = *v;
  }
  if (auto v =
          ReadInt(m->Find("max_per_request"), "image_fetch.max_per_request", problems, 0, 1000)) {
    fetch.max_per_request = static_cast<int>(*v);
  }
  ReadMs(*m, "timeout_ms", fetch.timeout, problems);
}

void ParseLimits(const YAML::Node& node, LimitsConfig& limits, Problems& problems) {
  auto m = MapView::Open(
      node, "limits", problems,
      {"max_images", "max_image_bytes", "max_total_image_bytes", "max_fallback_models",
       "max_provider_hints", "max_attempts", "max_stream_event_bytes", "max_metric_models",
       "response_ttl_s", "max_conversation_bytes", "max_stored_body_bytes"});
  if (!m) return;
  auto read_int = [&](std::string_view key, auto& out, int64_t min, int64_t max) {
    if (auto v = ReadInt(m->Find(key), Join("limits", key), problems, min, max)) {
      out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    }
  };
  read_int("max_images", limits.max_images, 0, 10'000);
  read_int("max_image_bytes", limits.max_image_bytes, 1, int64_t{1} << 30);
  read_int("max_total_image_bytes", limits.max_total_image_bytes, 1, int64_t{4} << 30);
  read_int("max_fallback_models", limits.max_fallback_models, 0, 1000);
  read_int("max_provider_hints", limits.max_provider_hints, 0, 1000);
  read_int("max_attempts", limits.max_attempts, 1, 1000);
  read_int("max_stream_event_bytes", limits.max_stream_event_bytes, 1024, int64_t{1} << 30);
  read_int("max_metric_models", limits.max_metric_models, 1, 100'000);
  read_int("response_ttl_s", limits.response_ttl_s, 0, int64_t{365} * 24 * 3600);
  read_int("max_conversation_bytes", limits.max_conversation_bytes, 1024, int64_t{1} << 30);
  read_int("max_stored_body_bytes", limits.max_stored_body_bytes, 1024, int64_t{1} << 30);
}

void ParseAuth(const YAML::Node& node, AuthConfig& auth, Problems& problems) {
  auto m = MapView::Open(node, "auth", problems,
                         {"mode", "master_key_env", "default_max_tokens", "key_refresh_ms",
                          "reservation_ttl_ms", "lease_ms", "model_limits"});
  if (!m) return;
  if (const Field* f = m->Find("mode")) {
    if (auto v = ReadString(f, "auth.mode", problems)) {
      if (*v == "auto") {
        auth.mode = AuthMode::kAuto;
      } else if (*v == "keys") {
        auth.mode = AuthMode::kKeys;
      } else if (*v == "none") {
        auth.mode = AuthMode::kNone;
      } else {
        problems.Add(f->value, "auth.mode", "expected auto, keys or none, got \"" + *v + "\"");
      }
    }
  }
  if (const Field* f = m->Find("master_key_env")) {
    if (auto v = ReadString(f, "auth.master_key_env", problems)) auth.master_key_env = *v;
  }
  if (auto v = ReadInt(m->Find("default_max_tokens"), "auth.default_max_tokens", problems, 1,
                       10'000'000)) {
    auth.default_max_tokens = *v;
  }
  ReadMs(*m, "key_refresh_ms", auth.key_refresh, problems);
  ReadMs(*m, "reservation_ttl_ms", auth.reservation_ttl, problems);
  ReadMs(*m, "lease_ms", auth.lease, problems, /*min_ms=*/0);
  if (auth.lease.count() > 60'000 || auth.lease * 2 > auth.reservation_ttl) {
    // A slice's reservation must outlive the slice and the requests it let through (checked
    // whichever of the two the file sets).
    const Field* f = m->Find("lease_ms");
    if (f == nullptr) f = m->Find("reservation_ttl_ms");
    problems.Add(f != nullptr ? f->value : node, "auth.lease_ms",
                 "expected at most 60000 and at most half of auth.reservation_ttl_ms (" +
                     std::to_string(auth.reservation_ttl.count()) + ")");
  }
  if (const Field* f = m->Find("model_limits")) {
    if (auto lm = MapView::Open(f->value, "auth.model_limits", problems, {})) {
      for (const Field& entry : lm->fields()) {
        const std::string path = Join("auth.model_limits", entry.key);
        auto em = MapView::Open(entry.value, path, problems, {"rpm", "tpm"});
        if (!em) continue;
        ModelRateLimit limit;
        if (auto v = ReadInt(em->Find("rpm"), Join(path, "rpm"), problems, 0, 1'000'000'000)) {
          limit.rpm = *v;
        }
        if (auto v = ReadInt(em->Find("tpm"), Join(path, "tpm"), problems, 0, 1'000'000'000'000)) {
          limit.tpm = *v;
        }
        auth.model_limits[entry.key] = limit;
      }
    }
  }
  if (const Field* f = m->Find("master_key_env"); f != nullptr && auth.master_key_env.empty()) {
    problems.Add(f->value, "auth.master_key_env", "expected a variable name");
  }
}

// The master key from its variable. A short one is refused (it guards every key and
// budget): the reason is returned.
std::optional<std::string> ResolveMasterKey(AuthConfig& auth, const EnvLookup& env) {
  if (auth.master_key_env.empty()) return std::nullopt;
  std::optional<std::string> key = env(auth.master_key_env);
  if (!key || key->empty()) return std::nullopt;
  if (key->size() < 16) {
    return auth.master_key_env +
           " is shorter than 16 characters; use a long random value (openssl rand -hex 32)";
  }
  auth.master_key = *key;
  return std::nullopt;
}

void ParseStore(const Field& f, std::string& store, Problems& problems) {
  auto s = ReadString(&f, "store", problems);
  if (!s) return;
  const size_t scheme = s->find("://");
  if (scheme != std::string::npos) {
    const std::string name = s->substr(0, scheme);
    if (name != "postgres" && name != "postgresql" && name != "sqlite") {
      problems.Add(f.value, "store",
                   "unknown store \"" + name + "://\" (a SQLite file path or a postgres:// URL)");
      return;
    }
  }
  store = *s;
}

void ParsePricing(const YAML::Node& node, Config& config, Problems& problems) {
  auto m = MapView::Open(node, "pricing", problems, {});
  if (!m) return;
  for (const Field& entry : m->fields()) {
    const std::string path = Join("pricing", entry.key);
    auto pm =
        MapView::Open(entry.value, path, problems,
                      {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                       "cache_write_per_mtok", "cache_write_1h_per_mtok", "web_search_per_1k"});
    if (!pm) continue;
    ModelPrice price;
    bool complete = true;
    auto read = [&](std::string_view key, bool required) -> std::optional<double> {
      const Field* f = pm->Find(key);
      if (f == nullptr) {
        if (required) {
          problems.Add(entry.key_node, Join(path, key), "required (USD per million tokens)");
          complete = false;
        }
        return std::nullopt;
      }
      auto v = ReadNumber(f, Join(path, key), problems);
      if (v && *v < 0) {
        problems.Add(f->value, Join(path, key), "prices must be >= 0");
        return std::nullopt;
      }
      return v;
    };
    if (auto v = read("input_per_mtok", true)) price.input_per_mtok = *v;
    if (auto v = read("output_per_mtok", true)) price.output_per_mtok = *v;
    price.cached_input_per_mtok = read("cached_input_per_mtok", false);
    price.cache_write_per_mtok = read("cache_write_per_mtok", false);
    price.cache_write_1h_per_mtok = read("cache_write_1h_per_mtok", false);
    price.web_search_per_1k = read("web_search_per_1k", false);
    if (complete) config.pricing.emplace(entry.key, price);
  }
}

int HardwareThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

// ---------------------------------------------------------------------------------------------

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) { return GetEnv(name); };
}

std::string_view AuthModeName(AuthMode mode) {
  switch (mode) {
    case AuthMode::kKeys:
      return "keys";
    case AuthMode::kNone:
      return "none";
    case AuthMode::kAuto:
      break;
  }
  return "auto";
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const boost::asio::ip::address a = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return a.to_v6().to_bytes()[12] == 127;
  return a.is_loopback();
}

std::string_view StrategyName(Strategy strategy) {
  return strategy == Strategy::kWeighted ? "weighted" : "fallback";
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&](std::string why) {
    return InvalidArgument("bad listen address \"" + std::string(text) + "\": " + why +
                           " (expected host:port, [v6]:port or :port)");
  };
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    if (out.host.find(':') == std::string::npos) return bad("brackets are for IPv6 addresses");
    for (char c : out.host) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return bad("not an IPv6 address");
      }
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :port");
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad("put IPv6 addresses in brackets");
    if (out.host.empty()) out.host = "0.0.0.0";
    for (char c : out.host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
        return bad("not a host name or address");
      }
    }
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("port must be 0-65535");
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

const ProviderConfig* Config::FindLocal() const {
  for (const ProviderConfig& p : providers) {
    if (p.kind == ProviderKind::kLocal) return &p;
  }
  return nullptr;
}

std::vector<std::string> OperatorSecrets(const Config& config) {
  std::vector<std::string> out;
  // Header values only of headers that carry credentials (an api-version date is no secret,
  // and redacting it would scrub every such date from the text).
  auto secret_header = [](std::string name) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (std::string_view word :
         {"key", "token", "auth", "secret", "password", "cookie", "credential", "signature"}) {
      if (name.find(word) != std::string::npos) return true;
    }
    return false;
  };
  for (const ProviderConfig& p : config.providers) {
    if (!p.api_key.empty()) out.push_back(p.api_key);
    for (const auto& [name, value] : p.headers) {
      if (!value.empty() && secret_header(name)) out.push_back(value);
    }
  }
  if (!config.auth.master_key.empty()) out.push_back(config.auth.master_key);
  return out;
}

const ProviderConfig* Config::FindProvider(std::string_view name) const {
  for (const ProviderConfig& p : providers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ModelAlias* Config::FindAlias(std::string_view name) const {
  for (const ModelAlias& a : models) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

Result<std::shared_ptr<const Config>> LoadConfigString(std::string_view yaml, const EnvLookup& env,
                                                       std::string_view source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    std::string where = std::string(source_name);
    if (!e.mark.is_null()) {
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    return InvalidArgument(where + ": YAML syntax error: " + e.msg);
  }

  auto config = std::make_shared<Config>();
  config->server.threads = HardwareThreads();
  Problems problems;
  auto top = MapView::Open(root, "", problems,
                           {"server", "providers", "models", "defaults", "routing", "store",
                            "pricing", "image_fetch", "limits", "auth", "state", "state_failure"});
  if (!top) return problems.ToStatus(source_name);

  if (const Field* f = top->Find("server")) ParseServer(f->value, config->server, problems);
  if (const Field* f = top->Find("defaults")) ParseDefaults(f->value, *config, problems);
  if (const Field* f = top->Find("routing")) ParseRouting(f->value, config->routing, problems);
  if (const Field* f = top->Find("store")) ParseStore(*f, config->store, problems);
  if (const Field* f = top->Find("pricing")) ParsePricing(f->value, *config, problems);
  if (const Field* f = top->Find("image_fetch")) {
    ParseImageFetch(f->value, config->image_fetch, problems);
  }
  if (const Field* f = top->Find("limits")) ParseLimits(f->value, config->limits, problems);
  const Field* auth = top->Find("auth");
  if (auth != nullptr) ParseAuth(auth->value, config->auth, problems);
  if (auto why = ResolveMasterKey(config->auth, env)) {
    problems.Add(auth != nullptr ? auth->value : root, "auth.master_key_env", *why);
  }
  if (const Field* f = top->Find("state")) {
    if (auto v = ReadString(f, "state", problems)) {
      if (v->rfind("redis://", 0) != 0) {
        problems.Add(f->value, "state", "expected redis://HOST:PORT/DB, got \"" + *v + "\"");
      } else {
        config->state = *v;
      }
    }
  }
  if (const Field* f = top->Find("state_failure")) {
    if (auto v = ReadString(f, "state_failure", problems)) {
      if (*v == "closed") {
        config->state_failure = StateFailure::kClosed;
      } else if (*v == "open") {
        config->state_failure = StateFailure::kOpen;
      } else {
        problems.Add(f->value, "state_failure", "expected closed or open, got \"" + *v + "\"");
      }
    }
  }

  // Every configured name, even of a provider with errors, so a typo in one provider's body
  // does not also fail every alias that uses it.
  std::vector<ProviderConfig> provider_stubs;
  if (const Field* f = top->Find("providers")) {
    if (auto pm = MapView::Open(f->value, "providers", problems, {})) {
      for (const Field& entry : pm->fields()) {
        ParseProvider(entry, env, config->providers, problems);
        ProviderConfig& stub = provider_stubs.emplace_back();
        stub.name = entry.key;
        if (!config->providers.empty() && config->providers.back().name == entry.key) {
          stub.kind = config->providers.back().kind;  // (for the adapters routes may name)
          stub.adapters = config->providers.back().adapters;
        }
      }
    }
  }
  if (const Field* f = top->Find("models")) {
    if (auto mm = MapView::Open(f->value, "models", problems, {})) {
      for (const Field& entry : mm->fields()) {
        ParseAlias(entry, provider_stubs, config->default_retries, config->default_timeouts,
                   config->models, problems);
        if (config->FindProvider(entry.key) != nullptr) {
          problems.Add(entry.key_node, "models." + entry.key,
                       "an alias may not share a provider's name");
        }
      }
    }
  }
  if (!problems.empty()) return problems.ToStatus(source_name);
  return std::shared_ptr<const Config>(std::move(config));
}

Result<std::shared_ptr<const Config>> LoadConfigFile(const std::string& path,
                                                     const EnvLookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLoss("error reading config file " + path);
  return LoadConfigString(text.str(), env, path);
}

Result<std::shared_ptr<const Config>> ConfigFromEnvironment(const EnvLookup& env,
                                                            std::string local_model) {
  auto config = std::make_shared<Config>();
  config->server.threads = HardwareThreads();
  // Every cloud kind with a public endpoint and a key in the environment.
  for (const providers::ProviderFacts& f : providers::AllProviderKinds()) {
    if (f.default_base_url.empty() || f.key_env.empty()) continue;
    ProviderConfig p;
    p.name = std::string(f.name);
    p.kind = f.kind;
    p.base_url = std::string(f.default_base_url);
    ResolveKey(p, env, {f.key_env.begin(), f.key_env.end()});
    if (p.enabled) config->providers.push_back(std::move(p));
  }
  if (auto why = ResolveMasterKey(config->auth, env)) return InvalidArgument(*why);
  if (!local_model.empty()) {
    ProviderConfig p;
    p.name = "local";
    p.kind = ProviderKind::kLocal;
    p.model = std::move(local_model);
    config->providers.push_back(std::move(p));
  }
  return std::shared_ptr<const Config>(std::move(config));
}

}  // namespace iris::gateway::config
