// Images as the engine sees them: 8-bit RGB decoded from the formats people have, and the
// Pillow-exact resampling that SmolVLM2's processor relies on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace iris::media {

// 8-bit RGB, interleaved, row-major, no padding: rgb.size() == width * height * 3.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

struct DecodeOptions {
  // Refuse images with more pixels than this (decompression bombs); Pillow's default
  // warning threshold is 89,478,485 pixels.
  int64_t max_pixels = 89478485;
};

// Decodes JPEG, PNG (8/16-bit, palette, grey, alpha), WebP, GIF (first frame) or BMP from
// memory, applies EXIF orientation as transformers' load_image does, and converts to RGB as
// PIL's convert("RGB") does (alpha composited as transformers does). Corrupt, truncated,
// zero-size, unknown or oversized input gives InvalidArgument / ResourceExhausted with a
// message a person can act on; never a crash.
Result<Image> DecodeImage(std::span<const uint8_t> bytes, const DecodeOptions& options = {});
Result<Image> LoadImageFile(const std::string& path, const DecodeOptions& options = {});

// Pillow's Image.resize(..., LANCZOS) on uint8 RGB, bit-exact (separable fixed-point
// convolution with Pillow's rounding and clamping).
Image ResizeLanczos(const Image& image, int width, int height);

}  // namespace iris::media
