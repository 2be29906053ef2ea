// Fuzz harness: bytes as iris.yaml through LoadConfigString, with an environment in which every
// variable holds the same fake key. A refusal must say why; an accepted config must be
// consistent: unique provider names without '/', base URLs that start with http(s):// and do not
// end in '/', extra headers that can be written on the wire as they are. Seeds in
// tests/data/fuzz/config_corpus/; ctest fuzz_config, or libFuzzer with -DIRIS_BUILD_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool IsToken(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f ||
        std::string_view("\"(),/:;<=>?@[\\]{}").find(static_cast<char>(c)) !=
            std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Visible ASCII, obs-text, space and tab, at most 64 KiB: what the upstream client sends.
bool IsFieldValue(std::string_view s) {
  if (s.size() > (64 << 10)) return false;
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris::gateway::config;
  static const EnvLookup kEnv = [](std::string_view) -> std::optional<std::string> {
    return std::string("sk-fuzz-0123456789abcdef");
  };
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  iris::Result<std::shared_ptr<const Config>> config = LoadConfigString(yaml, kEnv, "fuzz");
  if (!config.ok()) {
    Check(!config.status().message().empty());
    return 0;
  }
  Check(*config != nullptr);
  const Config& c = **config;
  for (const ProviderConfig& p : c.providers) {
    Check(!p.name.empty() && p.name.find('/') == std::string::npos);
    Check(c.FindProvider(p.name) == &p);
    if (p.kind != ProviderKind::kLocal) {
      Check(p.base_url.starts_with("https://") || p.base_url.starts_with("http://"));
      Check(!p.base_url.ends_with("/"));
    }
    for (const auto& [name, value] : p.headers) Check(IsToken(name) && IsFieldValue(value));
  }
  for (const ModelAlias& a : c.models) Check(c.FindAlias(a.name) == &a);
  Check(c.server.threads >= 1);
  return 0;
}
