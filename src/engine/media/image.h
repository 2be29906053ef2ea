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

// What happens to an alpha channel (RGBA, grey+alpha, or tRNS / GIF transparency).
enum class AlphaMode {
  // Composite over opaque white with Pillow's Image.alpha_composite arithmetic: what
  // SmolVLMImageProcessor's convert_to_rgb does to an RGBA image (smolvlm2.md §3.2 step 3).
  // HF composites after its resizes (which Pillow runs premultiplied); compositing at decode
  // differs from that only at the edges of partly transparent regions.
  kCompositeOnWhite,
  // Drop alpha and keep the stored colours: PIL's convert("RGB"), which is what
  // transformers.image_utils.load_image (a URL, path or base64 string) hands the processor.
  kDiscard,
};

struct DecodeOptions {
  // Refuse images with more pixels than this (decompression bombs); Pillow's default
  // warning threshold is 89,478,485 pixels. Checked on the header's dimensions, before the
  // pixel buffer is allocated.
  int64_t max_pixels = 89478485;
  // Refuse images with a longer side than this. Pillow has no such limit; it bounds the cost of
  // resampling a 1-pixel-high strip (the filter window grows with the downscale factor).
  int max_side = 65535;
  AlphaMode alpha = AlphaMode::kCompositeOnWhite;
  // Apply the EXIF (or XMP) Orientation tag like PIL.ImageOps.exif_transpose.
  bool apply_orientation = true;
};

// Decodes JPEG, PNG (8/16-bit, palette, grey, alpha), WebP, GIF (first frame) or BMP from
// memory, applies EXIF orientation as transformers' load_image does, and converts to RGB as
// PIL's convert("RGB") does, with alpha handled per options.alpha. Conversions follow Pillow:
// 16-bit RGB(A) keeps the high byte, 16-bit grey is clipped to 255 (PIL's I;16 -> RGB), CMYK
// JPEG uses Adobe (inverted) polarity. Corrupt, truncated, zero-size or unknown input gives
// InvalidArgument (DataLoss when a valid header is followed by missing or broken data), an
// oversized image ResourceExhausted, a valid but unsupported variant Unimplemented; never a
// crash. Thread-safe.
Result<Image> DecodeImage(std::span<const uint8_t> bytes, const DecodeOptions& options = {});
// Reads `path` and decodes it; NotFound if it does not exist. Errors name the path.
Result<Image> LoadImageFile(const std::string& path, const DecodeOptions& options = {});

// Pillow's Image.resize(..., LANCZOS) on uint8 RGB, bit-exact (separable fixed-point
// convolution with Pillow's rounding and clamping). Precondition: a well-formed image
// (rgb.size() == width * height * 3, both sides > 0) and width, height > 0; IRIS_CHECKed.
// Returns a copy when the size does not change. Cost: O((width + in_width) * in_height * taps).
Image ResizeLanczos(const Image& image, int width, int height);

// Checks that `image` is well formed (sides > 0, buffer size matches); InvalidArgument if not.
Status ValidateImage(const Image& image);

}  // namespace iris::media
