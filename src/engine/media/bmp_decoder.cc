// BMP, decoded here (a small format) to the layouts Pillow's BmpImagePlugin accepts: OS/2 v1
// and Windows v3/v4/v5 headers; 1/4/8-bit palette, 16-bit 5-5-5 or 5-6-5, 24-bit, 32-bit with
// or without alpha bitfields; RLE8 and RLE4. 16-bit channels expand as Pillow's unpackers do
// (v * 255 / max, truncated); 32-bit without bitfields ignores the fourth byte (BGRX).
#include <algorithm>
#include <cstring>

#include "engine/media/decoders.h"

namespace iris::media::internal {
namespace {

enum Compression : uint32_t { kRaw = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3 };

uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint32_t Le16(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8; }

// Byte index (0..3, little-endian) of an 8-bit-aligned mask, or -1.
int ByteOf(uint32_t mask) {
  for (int i = 0; i < 4; ++i) {
    if (mask == 0xFFu << (8 * i)) return i;
  }
  return -1;
}

// Run-length decoding into palette indices, rows stored bottom-up as in the file. Pixels no
// run reaches stay 0.
Status DecodeRle(std::span<const uint8_t> src, bool rle4, int width, int height,
                 std::vector<uint8_t>& indices) {
  size_t pos = 0;
  int64_t x = 0, y = 0;
  auto put = [&](uint8_t v) {
    if (x < width && y < height) indices[static_cast<size_t>(y) * width + x] = v;
    ++x;
  };
  while (y < height) {
    if (src.size() - pos < 2) return DataLoss("BMP RLE data is truncated");
    const uint8_t count = src[pos], value = src[pos + 1];
    pos += 2;
    if (count > 0) {
      for (int i = 0; i < count; ++i) put(rle4 ? ((i & 1) ? value & 0x0F : value >> 4) : value);
      continue;
    }
    if (value == 0) {  // end of line
      x = 0;
      ++y;
    } else if (value == 1) {  // end of bitmap
      break;
    } else if (value == 2) {  // delta: move right and up (the file's rows go bottom-up)
      if (src.size() - pos < 2) return DataLoss("BMP RLE data is truncated");
      x += src[pos];
      y += src[pos + 1];
      pos += 2;
    } else {  // absolute run of `value` pixels, padded to a 16-bit boundary
      const size_t bytes = rle4 ? (value + 1u) / 2 : value;
      if (src.size() - pos < bytes) return DataLoss("BMP RLE data is truncated");
      for (int i = 0; i < value; ++i) {
        const uint8_t b = src[pos + (rle4 ? i / 2 : i)];
        put(rle4 ? ((i & 1) ? b & 0x0F : b >> 4) : b);
      }
      pos += bytes + (bytes & 1);
      if (pos > src.size()) pos = src.size();
    }
  }
  return OkStatus();
}

}  // namespace

Result<DecodedImage> DecodeBmp(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  if (bytes.size() < 14 + 4) return DataLoss("BMP data is truncated in the header");
  const uint32_t data_offset = Le32(&bytes[10]);
  const uint32_t header_size = Le32(&bytes[14]);
  if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 &&
      header_size != 124) {
    return Unimplemented("BMP header type " + std::to_string(header_size) + " is not supported");
  }
  if (bytes.size() < 14 + static_cast<size_t>(header_size)) {
    return DataLoss("BMP data is truncated in the header");
  }
  const uint8_t* h = &bytes[18];  // the header after its size field
  int64_t width, height;
  bool top_down = false;
  uint32_t bits, compression = kRaw, colors = 0, palette_entry = 4;
  uint32_t masks[4] = {0, 0, 0, 0};
  size_t pos = 14 + header_size;
  if (header_size == 12) {
    width = Le16(h);
    height = Le16(h + 2);
    bits = Le16(h + 6);
    palette_entry = 3;
  } else {
    width = static_cast<int32_t>(Le32(h));
    height = static_cast<int32_t>(Le32(h + 4));
    if (height < 0) {
      top_down = true;
      height = -height;
    }
    bits = Le16(h + 10);
    compression = Le32(h + 12);
    colors = Le32(h + 28);
    if (compression == kBitfields) {
      if (header_size >= 56) {
        for (int i = 0; i < 4; ++i) masks[i] = Le32(h + 36 + static_cast<size_t>(4 * i));
      } else {
        // A 40-byte header is followed by three masks; the fourth byte is not alpha.
        if (bytes.size() < pos + 12) return DataLoss("BMP data is truncated in the bitfields");
        for (int i = 0; i < 3; ++i) masks[i] = Le32(&bytes[pos + static_cast<size_t>(4 * i)]);
        pos += 12;
      }
    }
  }
  IRIS_RETURN_IF_ERROR(CheckDimensions(width, height, options, "BMP"));
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32) {
    return Unimplemented("BMP with " + std::to_string(bits) + " bits per pixel is not supported");
  }
  if (compression != kRaw && compression != kBitfields && compression != kRle8 &&
      compression != kRle4) {
    return Unimplemented("BMP compression " + std::to_string(compression) + " is not supported");
  }
  if ((compression == kRle8 && bits != 8) || (compression == kRle4 && bits != 4)) {
    return InvalidArgument("corrupt BMP: RLE compression with " + std::to_string(bits) + " bits");
  }

  // Channel extraction for 16/24/32 bits: byte positions (or 5/6-bit fields for 16 bits).
  int byte_r = 2, byte_g = 1, byte_b = 0, byte_a = -1;  // BGR(X)
  bool rgb565 = false;
  if (compression == kBitfields) {
    if (bits == 32) {
      if (masks[0] == 0 && masks[1] == 0 && masks[2] == 0 && masks[3] == 0) {
        byte_a = 3;  // Pillow reads all-zero masks as BGRA
      } else {
        const bool supported = (masks[0] == 0xFF0000 && masks[1] == 0xFF00 && masks[2] == 0xFF &&
                                (masks[3] == 0 || masks[3] == 0xFF000000u)) ||
                               (masks[0] == 0xFF000000u && masks[1] == 0xFF0000 &&
                                masks[2] == 0xFF00 && (masks[3] == 0 || masks[3] == 0xFF)) ||
                               (masks[0] == 0xFF && masks[1] == 0xFF00 && masks[2] == 0xFF0000 &&
                                masks[3] == 0xFF000000u);
        if (!supported) return Unimplemented("BMP bitfields layout is not supported");
        byte_r = ByteOf(masks[0]);
        byte_g = ByteOf(masks[1]);
        byte_b = ByteOf(masks[2]);
        byte_a = masks[3] != 0 ? ByteOf(masks[3]) : -1;
      }
    } else if (bits == 24) {
      if (!(masks[0] == 0xFF0000 && masks[1] == 0xFF00 && masks[2] == 0xFF)) {
        return Unimplemented("BMP bitfields layout is not supported");
      }
    } else if (bits == 16) {
      if (masks[0] == 0xF800 && masks[1] == 0x7E0 && masks[2] == 0x1F) {
        rgb565 = true;
      } else if (!(masks[0] == 0x7C00 && masks[1] == 0x3E0 && masks[2] == 0x1F)) {
        return Unimplemented("BMP bitfields layout is not supported");
      }
    } else {
      return InvalidArgument("corrupt BMP: bitfields with " + std::to_string(bits) + " bits");
    }
  }

  // Palette (indices past it map to grey, as in Pillow).
  uint8_t palette[256][3];
  for (int i = 0; i < 256; ++i)
    palette[i][0] = palette[i][1] = palette[i][2] = static_cast<uint8_t>(i);
  if (bits <= 8) {
    if (colors == 0) colors = 1u << bits;
    if (colors > 65536) {
      return InvalidArgument("corrupt BMP: palette of " + std::to_string(colors) + " colours");
    }
    const size_t have = pos <= bytes.size() ? (bytes.size() - pos) / palette_entry : 0;
    const size_t n = std::min<size_t>({colors, 256, have});
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* e = &bytes[pos + i * palette_entry];
      palette[i][0] = e[2];
      palette[i][1] = e[1];
      palette[i][2] = e[0];
    }
  }
  size_t offset = data_offset;
  // Some writers point the offset at the palette; Pillow skips it then.
  if (offset == 14 + header_size && bits <= 8) offset += 4 * static_cast<size_t>(colors);
  if (offset == 0) offset = pos + (bits <= 8 ? static_cast<size_t>(colors) * palette_entry : 0);
  if (offset > bytes.size()) return DataLoss("BMP data is truncated before the pixels");
  const std::span<const uint8_t> src = bytes.subspan(offset);

  DecodedImage image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.channels = byte_a >= 0 ? 4 : 3;
  const size_t w = static_cast<size_t>(width);
  image.pixels.resize(w * height * image.channels);
  auto out_row = [&](int64_t file_row) {
    const int64_t y = top_down ? file_row : height - 1 - file_row;
    return image.pixels.data() + static_cast<size_t>(y) * w * image.channels;
  };

  if (compression == kRle8 || compression == kRle4) {
    std::vector<uint8_t> indices(w * height, 0);
    IRIS_RETURN_IF_ERROR(DecodeRle(src, compression == kRle4, image.width, image.height, indices));
    for (int64_t r = 0; r < height; ++r) {
      uint8_t* out = out_row(r);
      const uint8_t* in = &indices[static_cast<size_t>(r) * w];
      for (size_t x = 0; x < w; ++x, out += 3) std::memcpy(out, palette[in[x]], 3);
    }
    return image;
  }

  const size_t stride = ((w * bits + 31) >> 3) & ~size_t{3};
  // The last row needs only its pixels, not its padding.
  const size_t last_row = (w * bits + 7) >> 3;
  if (src.size() < stride * (height - 1) + last_row) return DataLoss("BMP pixel data is truncated");
  for (int64_t r = 0; r < height; ++r) {
    const uint8_t* in = src.data() + static_cast<size_t>(r) * stride;
    uint8_t* out = out_row(r);
    if (bits <= 8) {
      const int per_byte = 8 / static_cast<int>(bits);
      const uint32_t value_mask = (1u << bits) - 1;
      for (size_t x = 0; x < w; ++x, out += 3) {
        const int shift = 8 - static_cast<int>(bits) * (1 + static_cast<int>(x % per_byte));
        const uint8_t index = static_cast<uint8_t>((in[x / per_byte] >> shift) & value_mask);
        std::memcpy(out, palette[index], 3);
      }
    } else if (bits == 16) {
      for (size_t x = 0; x < w; ++x, out += 3) {
        const uint32_t p = Le16(in + 2 * x);
        out[2] = static_cast<uint8_t>((p & 31) * 255 / 31);
        if (rgb565) {
          out[1] = static_cast<uint8_t>(((p >> 5) & 63) * 255 / 63);
          out[0] = static_cast<uint8_t>(((p >> 11) & 31) * 255 / 31);
        } else {
          out[1] = static_cast<uint8_t>(((p >> 5) & 31) * 255 / 31);
          out[0] = static_cast<uint8_t>(((p >> 10) & 31) * 255 / 31);
        }
      }
    } else {
      const size_t bpp = bits / 8;
      for (size_t x = 0; x < w; ++x, in += bpp) {
        *out++ = in[byte_r];
        *out++ = in[byte_g];
        *out++ = in[byte_b];
        if (byte_a >= 0) *out++ = in[byte_a];
      }
    }
  }
  return image;
}

}  // namespace iris::media::internal
