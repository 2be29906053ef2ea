// Internal to the media module: one decoder per container format, each producing 8-bit RGB or
// RGBA exactly as Pillow's plugin + convert() would, the metadata that DecodeImage needs, and
// test hooks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/media/image.h"

namespace iris::media::internal {

struct DecodedImage {
  int width = 0;
  int height = 0;
  int channels = 3;             // 3 = RGB, 4 = RGBA (alpha not premultiplied)
  std::vector<uint8_t> pixels;  // [height, width, channels]
  // EXIF/XMP Orientation (1..8; 1 = as stored), 0 when the file has none.
  int orientation = 0;
};

// ResourceExhausted / InvalidArgument unless 0 < width, height and the image is within the
// limits of `options`. Every decoder calls it on the header's dimensions before allocating.
Status CheckDimensions(int64_t width, int64_t height, const DecodeOptions& options,
                       std::string_view format);

Result<DecodedImage> DecodeJpeg(std::span<const uint8_t> bytes, const DecodeOptions& options);
Result<DecodedImage> DecodePng(std::span<const uint8_t> bytes, const DecodeOptions& options);
Result<DecodedImage> DecodeWebp(std::span<const uint8_t> bytes, const DecodeOptions& options);
Result<DecodedImage> DecodeGif(std::span<const uint8_t> bytes, const DecodeOptions& options);
Result<DecodedImage> DecodeBmp(std::span<const uint8_t> bytes, const DecodeOptions& options);

// The Orientation tag (0x0112) of IFD0 of a TIFF/EXIF block ("Exif\0\0" prefix optional);
// 0 when absent, malformed or not a single integer in 1..8.
int ExifOrientation(std::span<const uint8_t> exif);
// Pillow's fallback when EXIF has no orientation: the digit after `tiff:Orientation="` or
// `tiff:Orientation>` in XMP; 0 if none.
int XmpOrientation(std::string_view xmp);

// Applies an orientation (2..8) to interleaved pixels with `channels` bytes per pixel, as
// PIL.ImageOps.exif_transpose does; 0 and 1 leave the image as is.
void ApplyOrientation(int orientation, int channels, int& width, int& height,
                      std::vector<uint8_t>& pixels);

// ResizeLanczos with a chosen limit on stored horizontal coefficients (tests exercise the
// window-at-a-time path with a small one).
Image ResizeLanczos(const Image& image, int width, int height, int64_t max_stored_coefficients);

}  // namespace iris::media::internal
