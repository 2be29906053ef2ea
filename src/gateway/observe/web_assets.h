// The dashboard's files (web/), compiled into the binary so `iris serve` serves them with no
// files on disk and nothing fetched from a CDN. cmake/EmbedAssets.cmake generates the definitions.
#pragma once

#include <span>
#include <string_view>

namespace iris::gateway::observe {

struct Asset {
  std::string_view path;          // "/index.html", "/app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::span<const unsigned char> bytes;
};

// The asset served at `path` ("/" is "/index.html"), or null. Thread-safe; no allocation.
const Asset* FindAsset(std::string_view path);

// Every embedded asset, sorted by path.
std::span<const Asset> AllAssets();

}  // namespace iris::gateway::observe
