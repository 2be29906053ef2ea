// EXIF/XMP Orientation: reading the tag (a small TIFF structure) and applying it the way
// PIL.ImageOps.exif_transpose does, which transformers' load_image calls before the processor.
#include <cstring>
#include <string_view>

#include "engine/media/decoders.h"

namespace iris::media::internal {
namespace {

constexpr uint16_t kOrientationTag = 0x0112;

class TiffReader {
 public:
  TiffReader(std::span<const uint8_t> data, bool big_endian)
      : data_(data), big_endian_(big_endian) {}

  bool U16(size_t offset, uint32_t* out) const {
    if (offset > data_.size() || data_.size() - offset < 2) return false;
    const uint8_t* p = data_.data() + offset;
    *out = big_endian_ ? (p[0] << 8 | p[1]) : (p[1] << 8 | p[0]);
    return true;
  }
  bool U32(size_t offset, uint32_t* out) const {
    if (offset > data_.size() || data_.size() - offset < 4) return false;
    const uint8_t* p = data_.data() + offset;
    *out = big_endian_ ? (uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3])
                       : (uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0]);
    return true;
  }
  bool U8(size_t offset, uint32_t* out) const {
    if (offset >= data_.size()) return false;
    *out = data_[offset];
    return true;
  }

 private:
  std::span<const uint8_t> data_;
  bool big_endian_;
};

}  // namespace

int ExifOrientation(std::span<const uint8_t> exif) {
  static constexpr uint8_t kExifPrefix[] = {'E', 'x', 'i', 'f', 0, 0};
  if (exif.size() >= 6 && std::memcmp(exif.data(), kExifPrefix, 6) == 0) exif = exif.subspan(6);
  if (exif.size() < 8) return 0;
  // Pillow accepts "MM\0*", "II*\0" and the byte-swapped magic of each; BigTIFF is not EXIF.
  bool big_endian;
  if (exif[0] == 'M' && exif[1] == 'M') {
    big_endian = true;
  } else if (exif[0] == 'I' && exif[1] == 'I') {
    big_endian = false;
  } else {
    return 0;
  }
  if (!((exif[2] == 0 && exif[3] == 0x2A) || (exif[2] == 0x2A && exif[3] == 0))) return 0;
  const TiffReader tiff(exif, big_endian);
  uint32_t ifd = 0, count = 0;
  if (!tiff.U32(4, &ifd) || !tiff.U16(ifd, &count)) return 0;
  int orientation = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t entry = static_cast<size_t>(ifd) + 2 + static_cast<size_t>(i) * 12;
    uint32_t tag = 0, type = 0, n = 0, value = 0;
    if (!tiff.U16(entry, &tag) || !tiff.U16(entry + 2, &type) || !tiff.U32(entry + 4, &n)) break;
    if (tag != kOrientationTag) continue;
    orientation = 0;  // a later duplicate replaces an earlier one, as in Pillow's dict
    if (n != 1) continue;
    bool ok = false;
    switch (type) {
      case 1:  // BYTE
      case 6:  // SBYTE
        ok = tiff.U8(entry + 8, &value);
        if (type == 6 && value > 127) ok = false;
        break;
      case 3:  // SHORT
      case 8:  // SSHORT
        ok = tiff.U16(entry + 8, &value);
        if (type == 8 && value > 0x7FFF) ok = false;
        break;
      case 4:  // LONG
      case 9:  // SLONG
        ok = tiff.U32(entry + 8, &value);
        break;
      default:
        break;
    }
    if (ok && value >= 1 && value <= 8) orientation = static_cast<int>(value);
  }
  return orientation;
}

int XmpOrientation(std::string_view xmp) {
  constexpr std::string_view kKey = "tiff:Orientation";
  size_t pos = 0;
  while ((pos = xmp.find(kKey, pos)) != std::string_view::npos) {
    size_t p = pos + kKey.size();
    if (xmp.substr(p, 2) == "=\"") {
      p += 2;
    } else if (xmp.substr(p, 1) == ">") {
      p += 1;
    } else {
      pos = p;
      continue;
    }
    if (p < xmp.size() && xmp[p] >= '0' && xmp[p] <= '9') return xmp[p] - '0';
    pos = p;
  }
  return 0;
}

// For output pixel (x, y) of the transposed image (size w' x h'), the source pixel in the
// w x h input:
//   2 FLIP_LEFT_RIGHT (w-1-x, y)      3 ROTATE_180 (w-1-x, h-1-y)   4 FLIP_TOP_BOTTOM (x, h-1-y)
//   5 TRANSPOSE (y, x)                6 ROTATE_270 (y, h-1-x)       7 TRANSVERSE (w-1-y, h-1-x)
//   8 ROTATE_90 (w-1-y, x)            (5..8 swap the sides)
void ApplyOrientation(int orientation, int channels, int& width, int& height,
                      std::vector<uint8_t>& pixels) {
  if (orientation < 2 || orientation > 8) return;
  const int w = width, h = height;
  const bool swap = orientation >= 5;
  const int out_w = swap ? h : w, out_h = swap ? w : h;
  std::vector<uint8_t> out(pixels.size());
  const size_t c = static_cast<size_t>(channels);
  for (int y = 0; y < out_h; ++y) {
    uint8_t* dst = out.data() + static_cast<size_t>(y) * out_w * c;
    for (int x = 0; x < out_w; ++x, dst += c) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          sy = y;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sx = x;
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
        default:
          break;
      }
      std::memcpy(dst, pixels.data() + (static_cast<size_t>(sy) * w + sx) * c, c);
    }
  }
  pixels = std::move(out);
  width = out_w;
  height = out_h;
}

}  // namespace iris::media::internal
