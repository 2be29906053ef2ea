// DecodeImage: sniffs the container, runs its decoder, then does what transformers' load_image
// does next: exif_transpose, then the conversion to RGB (alpha per DecodeOptions::alpha).
#include "engine/media/image.h"

#include <cstring>

#include "base/mapped_file.h"
#include "engine/media/decoders.h"

namespace iris::media {
namespace internal {

Status CheckDimensions(int64_t width, int64_t height, const DecodeOptions& options,
                       std::string_view format) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0) {
    return InvalidArgument(std::string(format) + " image has an empty size (" + size + ")");
  }
  if (width > options.max_side || height > options.max_side) {
    return ResourceExhausted(std::string(format) + " image of " + size +
                             " has a side longer than the limit of " +
                             std::to_string(options.max_side) + " pixels");
  }
  if (width * height > options.max_pixels) {
    return ResourceExhausted(std::string(format) + " image of " + size + " has " +
                             std::to_string(width * height) + " pixels, more than the limit of " +
                             std::to_string(options.max_pixels));
  }
  return OkStatus();
}

}  // namespace internal

namespace {

enum class Format { kUnknown, kJpeg, kPng, kWebp, kGif, kBmp };

Format Sniff(std::span<const uint8_t> b) {
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return Format::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return Format::kPng;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return Format::kWebp;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::kGif;
  if (starts("BM", 2)) return Format::kBmp;
  return Format::kUnknown;
}

// Pillow's Image.alpha_composite(white, rgba) for one channel: with an opaque destination the
// blend coefficients are a * 128 and (255 - a) * 128 (7 fraction bits), and the division by
// 255 is ((t >> 8) + t) >> 8 after adding half.
inline uint8_t CompositeOnWhite(uint32_t v, uint32_t a) {
  if (a == 0) return 255;
  constexpr uint32_t kPrecisionBits = 7;
  const uint32_t blend = 255 * (255 - a);
  const uint32_t out_a255 = a * 255 + blend;
  const uint32_t coef1 = a * 255 * 255 * (1u << kPrecisionBits) / out_a255;
  const uint32_t coef2 = 255 * (1u << kPrecisionBits) - coef1;
  const uint32_t t = v * coef1 + 255 * coef2 + (0x80u << kPrecisionBits);
  return static_cast<uint8_t>((((t >> 8) + t) >> 8) >> kPrecisionBits);
}

void ToRgb(internal::DecodedImage& d, AlphaMode mode) {
  if (d.channels == 3) return;
  const size_t n = static_cast<size_t>(d.width) * d.height;
  uint8_t* p = d.pixels.data();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* s = p + i * 4;
    uint8_t* o = p + i * 3;  // o <= s, and s's bytes are read before o's are written
    const uint8_t r = s[0], g = s[1], b = s[2], a = s[3];
    if (mode == AlphaMode::kCompositeOnWhite) {
      o[0] = CompositeOnWhite(r, a);
      o[1] = CompositeOnWhite(g, a);
      o[2] = CompositeOnWhite(b, a);
    } else {
      o[0] = r;
      o[1] = g;
      o[2] = b;
    }
  }
  d.pixels.resize(n * 3);
  d.pixels.shrink_to_fit();
  d.channels = 3;
}

}  // namespace

Result<Image> DecodeImage(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  if (bytes.empty()) return InvalidArgument("image data is empty");
  Result<internal::DecodedImage> decoded = InvalidArgument("unreachable");
  switch (Sniff(bytes)) {
    case Format::kJpeg:
      decoded = internal::DecodeJpeg(bytes, options);
      break;
    case Format::kPng:
      decoded = internal::DecodePng(bytes, options);
      break;
    case Format::kWebp:
      decoded = internal::DecodeWebp(bytes, options);
      break;
    case Format::kGif:
      decoded = internal::DecodeGif(bytes, options);
      break;
    case Format::kBmp:
      decoded = internal::DecodeBmp(bytes, options);
      break;
    case Format::kUnknown:
      return InvalidArgument("image data (" + std::to_string(bytes.size()) +
                             " bytes) is not JPEG, PNG, WebP, GIF or BMP");
  }
  if (!decoded.ok()) return decoded.status();
  internal::DecodedImage& d = *decoded;
  ToRgb(d, options.alpha);
  if (options.apply_orientation) {
    internal::ApplyOrientation(d.orientation, 3, d.width, d.height, d.pixels);
  }
  Image image;
  image.width = d.width;
  image.height = d.height;
  image.rgb = std::move(d.pixels);
  return image;
}

Result<Image> LoadImageFile(const std::string& path, const DecodeOptions& options) {
  IRIS_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  Result<Image> image = DecodeImage(file.bytes(), options);
  if (!image.ok()) return image.status().WithContext(path);
  return image;
}

}  // namespace iris::media
