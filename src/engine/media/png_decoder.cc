// PNG through libpng, with the transformations chosen to give what Pillow's PngImagePlugin and
// convert("RGB") give: palette and low-bit grey expanded, 16-bit samples cut to their high
// byte (Pillow's RGB;16B / RGBA;16B / LA;16B unpackers), except 16-bit grey, which Pillow opens
// as I;16 and clips to 255 when converting. libpng reports errors through a callback that must
// not return: ours longjmps back.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <memory>
#include <string>

#include "engine/media/decoders.h"

namespace iris::media::internal {
namespace {

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  jmp_buf jump;
  std::string message;
  bool truncated = false;
  bool header_done = false;
  bool image_done = false;
  std::span<const uint8_t> data;
  size_t pos = 0;
  DecodedImage image;
  std::vector<uint8_t> raw;  // 16-bit grey rows before conversion
  std::vector<png_bytep> rows;

  ~PngState() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

[[noreturn]] void OnError(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  if (s->message.empty()) s->message = message != nullptr ? message : "unknown error";
  std::longjmp(s->jump, 1);
}

void OnWarning(png_structp, png_const_charp) {}

void ReadData(png_structp png, png_bytep out, png_size_t length) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (s->data.size() - s->pos < length) {
    s->truncated = true;
    png_error(png, "PNG data is truncated");
  }
  std::memcpy(out, s->data.data() + s->pos, length);
  s->pos += length;
}

uint32_t BigEndian32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// The text of ImageMagick's "Raw profile type exif": three header lines, then hex digits
// split over lines (Pillow drops the first three lines and calls bytes.fromhex).
std::vector<uint8_t> RawProfileBytes(std::string_view text) {
  std::vector<uint8_t> out;
  for (int i = 0; i < 3; ++i) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return out;
    text.remove_prefix(nl + 1);
  }
  int high = -1;
  for (char ch : text) {
    int v;
    if (ch >= '0' && ch <= '9') {
      v = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      v = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      v = ch - 'A' + 10;
    } else if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') {
      if (high >= 0) return {};  // whitespace inside a byte: fromhex fails
      continue;
    } else {
      return {};
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  if (high >= 0) return {};
  return out;
}

// Pillow's getexif order: the eXIf chunk, else the raw-profile text; XMP only when neither
// has an orientation.
int Orientation(png_structp png, png_infop info) {
  int orientation = 0;
  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &exif_size, &exif) != 0 && exif != nullptr) {
    orientation = ExifOrientation({exif, exif_size});
  }
  png_textp text = nullptr;
  int num_text = 0;
  png_get_text(png, info, &text, &num_text);
  if (exif == nullptr) {
    for (int i = 0; i < num_text; ++i) {
      if (std::strcmp(text[i].key, "Raw profile type exif") == 0 && text[i].text != nullptr) {
        size_t n = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
        std::vector<uint8_t> bytes = RawProfileBytes({text[i].text, n});
        orientation = ExifOrientation(bytes);
        break;
      }
    }
  }
  if (orientation == 0) {
    for (int i = 0; i < num_text; ++i) {
      if (std::strcmp(text[i].key, "XML:com.adobe.xmp") == 0 && text[i].text != nullptr) {
        size_t n = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
        orientation = XmpOrientation({text[i].text, n});
        break;
      }
    }
  }
  return orientation;
}

}  // namespace

Result<DecodedImage> DecodePng(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  // The IHDR chunk must come first; check its size before libpng reads any further.
  if (bytes.size() < 8 + 8 + 13) return DataLoss("PNG data is truncated in the header");
  if (std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) {
    return InvalidArgument("corrupt PNG: the first chunk is not IHDR");
  }
  IRIS_RETURN_IF_ERROR(CheckDimensions(BigEndian32(bytes.data() + 16),
                                       BigEndian32(bytes.data() + 20), options, "PNG"));

  // Everything libpng or the callbacks touch lives on the heap: locals changed between
  // setjmp and longjmp would be indeterminate afterwards.
  auto s = std::make_unique<PngState>();
  s->data = bytes;
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s.get(), OnError, OnWarning);
  if (s->png == nullptr) return Internal("png_create_read_struct failed");
  s->info = png_create_info_struct(s->png);
  if (s->info == nullptr) return Internal("png_create_info_struct failed");

  if (setjmp(s->jump) != 0) {
    if (!s->image_done) {
      if (s->truncated) return DataLoss("PNG data is truncated");
      const std::string message = "corrupt PNG: " + s->message;
      return s->header_done ? DataLoss(message) : InvalidArgument(message);
    }
    // Damage after the image data (trailing chunks) is ignored, as Pillow's load_end does.
    return std::move(s->image);
  }
  png_set_read_fn(s->png, s.get(), ReadData);
  png_set_user_limits(s->png, 0x7fffffff, 0x7fffffff);  // CheckDimensions decides
  png_set_chunk_malloc_max(s->png, 16 << 20);
  png_read_info(s->png, s->info);
  s->header_done = true;

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(s->png, s->info, &width, &height, &bit_depth, &color_type, &interlace, nullptr,
               nullptr);
  const bool grey16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
  const bool has_trns = png_get_valid(s->png, s->info, PNG_INFO_tRNS) != 0;
  DecodedImage& image = s->image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  uint16_t trns_grey = 0;
  if (grey16) {
    // Read raw big-endian samples and convert below.
    if (has_trns) {
      png_color_16p trns = nullptr;
      png_get_tRNS(s->png, s->info, nullptr, nullptr, &trns);
      if (trns != nullptr) trns_grey = trns->gray;
    }
  } else {
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    // Transparency becomes alpha; AlphaMode::kDiscard drops it again, which is what
    // convert("RGB") does with tRNS and palette transparency.
    if (has_trns) png_set_tRNS_to_alpha(s->png);
    if (bit_depth == 16) png_set_strip_16(s->png);
    png_set_gray_to_rgb(s->png);
  }
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);

  const size_t row_bytes = png_get_rowbytes(s->png, s->info);
  const int channels = png_get_channels(s->png, s->info);
  if (grey16) {
    if (row_bytes != static_cast<size_t>(width) * 2) png_error(s->png, "unexpected row size");
    s->raw.resize(row_bytes * height);
    s->rows.resize(height);
    for (png_uint_32 y = 0; y < height; ++y) s->rows[y] = s->raw.data() + y * row_bytes;
  } else {
    if ((channels != 3 && channels != 4) || row_bytes != static_cast<size_t>(width) * channels) {
      png_error(s->png, "unexpected pixel layout after expansion");
    }
    image.channels = channels;
    image.pixels.resize(row_bytes * height);
    s->rows.resize(height);
    for (png_uint_32 y = 0; y < height; ++y) s->rows[y] = image.pixels.data() + y * row_bytes;
  }
  png_read_image(s->png, s->rows.data());

  if (grey16) {
    // PIL's I;16 -> RGB: values above 255 clip to 255 (not a shift).
    const bool alpha = has_trns && options.alpha == AlphaMode::kCompositeOnWhite;
    image.channels = alpha ? 4 : 3;
    image.pixels.resize(static_cast<size_t>(width) * height * image.channels);
    const uint8_t* in = s->raw.data();
    uint8_t* out = image.pixels.data();
    for (size_t i = 0, n = static_cast<size_t>(width) * height; i < n; ++i, in += 2) {
      const uint16_t v = static_cast<uint16_t>(in[0] << 8 | in[1]);
      const uint8_t g = v > 255 ? 255 : static_cast<uint8_t>(v);
      *out++ = g;
      *out++ = g;
      *out++ = g;
      if (alpha) *out++ = v == trns_grey ? 0 : 255;
    }
    s->raw = {};
  }
  image.orientation = Orientation(s->png, s->info);
  s->image_done = true;
  // Chunks after the image data can carry eXIf or XMP too.
  png_read_end(s->png, s->info);
  image.orientation = Orientation(s->png, s->info);
  return std::move(s->image);
}

}  // namespace iris::media::internal
