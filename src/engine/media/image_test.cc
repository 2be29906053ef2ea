// DecodeImage on files made at test time with each format's own encoder (libpng, libjpeg,
// libwebp, giflib; BMP and containers by hand): every pixel layout the decoders convert, EXIF
// orientation, alpha handling, and hostile input (truncation at every length, corrupt bytes,
// absurd header sizes). Expected values are Pillow's, as noted per test.
#include "engine/media/image.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

// clang-format off
#include <jpeglib.h>  // needs <cstdio> (FILE, size_t) first
// clang-format on

namespace iris::media {
namespace {

using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------- small helpers

struct Rgb {
  int r, g, b;
};

Rgb At(const Image& image, int x, int y) {
  const uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
  return {p[0], p[1], p[2]};
}

::testing::AssertionResult Near(const Rgb& got, const Rgb& want, int tolerance = 0) {
  if (std::abs(got.r - want.r) <= tolerance && std::abs(got.g - want.g) <= tolerance &&
      std::abs(got.b - want.b) <= tolerance) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got (" << got.r << ", " << got.g << ", " << got.b << ") want (" << want.r << ", "
         << want.g << ", " << want.b << ") +- " << tolerance;
}

Image Decode(const Bytes& bytes, AlphaMode alpha = AlphaMode::kCompositeOnWhite) {
  DecodeOptions options;
  options.alpha = alpha;
  Result<Image> image = DecodeImage(bytes, options);
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  if (!image.ok()) return Image{};
  EXPECT_EQ(image->rgb.size(), static_cast<size_t>(image->width) * image->height * 3);
  return std::move(image).value();
}

ErrorCode DecodeError(const Bytes& bytes, const DecodeOptions& options = {}) {
  Result<Image> image = DecodeImage(bytes, options);
  return image.ok() ? ErrorCode::kOk : image.status().code();
}

void Append(Bytes& out, std::string_view s) {
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
}
void Le16(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
void Le24(Bytes& out, uint32_t v) {
  Le16(out, v & 0xFFFF);
  out.push_back(static_cast<uint8_t>(v >> 16));
}
void Le32(Bytes& out, uint32_t v) {
  Le16(out, v & 0xFFFF);
  Le16(out, v >> 16);
}
void Be32(Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// "Exif\0\0" + little-endian TIFF with IFD0 = {Orientation: SHORT orientation}.
Bytes ExifBlock(int orientation, bool with_prefix = true) {
  Bytes b;
  if (with_prefix) Append(b, std::string_view("Exif\0\0", 6));
  Append(b, "II");
  Le16(b, 42);
  Le32(b, 8);
  Le16(b, 1);
  Le16(b, 0x0112);
  Le16(b, 3);
  Le32(b, 1);
  Le16(b, static_cast<uint32_t>(orientation));
  Le16(b, 0);
  Le32(b, 0);
  return b;
}

std::string XmpPacket(int orientation) {
  return "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF><rdf:Description tiff:Orientation=\"" +
         std::to_string(orientation) + "\"/></rdf:RDF></x:xmpmeta>";
}

// A width x height image of 8x8 blocks; block (bx, by) has colour kBlockColours[by * 3 + bx].
constexpr Rgb kBlockColours[6] = {{255, 0, 0},   {0, 255, 0},   {0, 0, 255},
                                  {255, 255, 0}, {0, 255, 255}, {255, 255, 255}};

Bytes BlockPattern(int blocks_x, int blocks_y) {
  Bytes rgb;
  for (int y = 0; y < blocks_y * 8; ++y) {
    for (int x = 0; x < blocks_x * 8; ++x) {
      const Rgb& c = kBlockColours[(y / 8) * blocks_x + x / 8];
      rgb.push_back(static_cast<uint8_t>(c.r));
      rgb.push_back(static_cast<uint8_t>(c.g));
      rgb.push_back(static_cast<uint8_t>(c.b));
    }
  }
  return rgb;
}

// ---------------------------------------------------------------- PNG encoder (libpng)

struct PngSpec {
  int width = 0, height = 0, bit_depth = 8, color_type = PNG_COLOR_TYPE_RGB;
  bool interlace = false;
  Bytes rows;  // packed rows as stored in the file (16-bit samples big-endian)
  std::vector<png_color> palette;
  Bytes trns_alpha;                                        // palette tRNS
  int trns_grey = -1;                                      // grey tRNS
  Bytes exif;                                              // eXIf payload (no "Exif\0\0")
  std::vector<std::pair<std::string, std::string>> texts;  // (key, text), zTXt
  std::vector<std::pair<std::string, std::string>> itxts;  // (key, text), iTXt
};

void PngWrite(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void PngFlush(png_structp) {}

Bytes EncodePng(const PngSpec& spec) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, PngWrite, PngFlush);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) {
    png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  }
  if (!spec.trns_alpha.empty()) {
    png_set_tRNS(png, info, spec.trns_alpha.data(), static_cast<int>(spec.trns_alpha.size()),
                 nullptr);
  }
  if (spec.trns_grey >= 0) {
    png_color_16 c{};
    c.gray = static_cast<png_uint_16>(spec.trns_grey);
    png_set_tRNS(png, info, nullptr, 0, &c);
  }
  if (!spec.exif.empty()) {
    png_set_eXIf_1(png, info, static_cast<png_uint_32>(spec.exif.size()),
                   const_cast<png_bytep>(spec.exif.data()));
  }
  std::vector<png_text> texts;
  for (const auto& [key, text] : spec.texts) {
    png_text t{};
    t.compression = PNG_TEXT_COMPRESSION_zTXt;
    t.key = const_cast<char*>(key.c_str());
    t.text = const_cast<char*>(text.c_str());
    t.text_length = text.size();
    texts.push_back(t);
  }
  for (const auto& [key, text] : spec.itxts) {
    png_text t{};
    t.compression = PNG_ITXT_COMPRESSION_NONE;
    t.key = const_cast<char*>(key.c_str());
    t.text = const_cast<char*>(text.c_str());
    t.itxt_length = text.size();
    t.lang = const_cast<char*>("");
    t.lang_key = const_cast<char*>("");
    texts.push_back(t);
  }
  if (!texts.empty()) png_set_text(png, info, texts.data(), static_cast<int>(texts.size()));
  png_write_info(png, info);
  const size_t row_bytes = spec.rows.size() / spec.height;
  std::vector<png_bytep> rows(spec.height);
  for (int y = 0; y < spec.height; ++y) {
    rows[y] = const_cast<png_bytep>(spec.rows.data() + y * row_bytes);
  }
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

PngSpec RgbPng(int width, int height, const Bytes& rgb) {
  PngSpec s;
  s.width = width;
  s.height = height;
  s.rows = rgb;
  return s;
}

// ---------------------------------------------------------------- JPEG encoder (libjpeg)

struct JpegSpec {
  int width = 0, height = 0;
  int components = 3;  // 1 grey, 3 RGB, 4 CMYK
  Bytes samples;
  bool progressive = false;
  std::vector<Bytes> app1;  // APP1 payloads
};

JpegSpec MakeJpeg(int width, int height, int components, Bytes samples) {
  JpegSpec spec;
  spec.width = width;
  spec.height = height;
  spec.components = components;
  spec.samples = std::move(samples);
  return spec;
}

Bytes EncodeJpeg(const JpegSpec& spec) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = spec.width;
  cinfo.image_height = spec.height;
  cinfo.input_components = spec.components;
  cinfo.in_color_space = spec.components == 1   ? JCS_GRAYSCALE
                         : spec.components == 3 ? JCS_RGB
                                                : JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 100, TRUE);
  for (int c = 0; c < cinfo.num_components; ++c) {
    cinfo.comp_info[c].h_samp_factor = 1;
    cinfo.comp_info[c].v_samp_factor = 1;
  }
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  for (const Bytes& m : spec.app1) {
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, m.data(), static_cast<unsigned>(m.size()));
  }
  const size_t stride = static_cast<size_t>(spec.width) * spec.components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(spec.samples.data() + cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

// ---------------------------------------------------------------- WebP (libwebp + RIFF by hand)

Bytes WebpLossless(int width, int height, const Bytes& pixels, bool alpha) {
  uint8_t* out = nullptr;
  const size_t n = alpha ? WebPEncodeLosslessRGBA(pixels.data(), width, height, width * 4, &out)
                         : WebPEncodeLosslessRGB(pixels.data(), width, height, width * 3, &out);
  Bytes bytes(out, out + n);
  WebPFree(out);
  return bytes;
}

void Chunk(Bytes& out, std::string_view fourcc, const Bytes& payload) {
  Append(out, fourcc);
  Le32(out, static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  if (payload.size() % 2 != 0) out.push_back(0);
}

Bytes Riff(const Bytes& chunks) {
  Bytes out;
  Append(out, "RIFF");
  Le32(out, static_cast<uint32_t>(chunks.size() + 4));
  Append(out, "WEBP");
  out.insert(out.end(), chunks.begin(), chunks.end());
  return out;
}

Bytes Vp8x(uint8_t flags, int width, int height) {
  Bytes p = {flags, 0, 0, 0};
  Le24(p, width - 1);
  Le24(p, height - 1);
  return p;
}

// The image chunk ("VP8L" + size + data) of a simple-format file.
Bytes ImageChunk(const Bytes& simple_webp) {
  return Bytes(simple_webp.begin() + 12, simple_webp.end());
}

// ---------------------------------------------------------------- GIF encoder (giflib)

int GifWrite(GifFileType* gif, const GifByteType* data, int n) {
  auto* out = static_cast<Bytes*>(gif->UserData);
  out->insert(out->end(), data, data + n);
  return n;
}

struct GifFrame {
  int left = 0, top = 0, width = 0, height = 0;
  bool interlace = false;
  Bytes indices;                    // row-major
  std::vector<GifColorType> local;  // empty: none
  int transparent = -1;
};

Bytes EncodeGif(int width, int height, const std::vector<GifColorType>& global,
                const std::vector<GifFrame>& frames) {
  Bytes out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, GifWrite, &error);
  EGifSetGifVersion(gif, true);
  ColorMapObject* map =
      global.empty() ? nullptr : GifMakeMapObject(static_cast<int>(global.size()), global.data());
  EGifPutScreenDesc(gif, width, height, 8, 0, map);
  for (const GifFrame& f : frames) {
    if (f.transparent >= 0) {
      GraphicsControlBlock gcb{};
      gcb.DisposalMode = DISPOSAL_UNSPECIFIED;
      gcb.TransparentColor = f.transparent;
      GifByteType ext[4];
      EGifGCBToExtension(&gcb, ext);
      EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, ext);
    }
    ColorMapObject* local =
        f.local.empty() ? nullptr
                        : GifMakeMapObject(static_cast<int>(f.local.size()), f.local.data());
    EGifPutImageDesc(gif, f.left, f.top, f.width, f.height, f.interlace, local);
    std::vector<int> order;
    if (f.interlace) {
      for (int pass = 0; pass < 4; ++pass) {
        static constexpr int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
        for (int y = kStart[pass]; y < f.height; y += kStep[pass]) order.push_back(y);
      }
    } else {
      for (int y = 0; y < f.height; ++y) order.push_back(y);
    }
    for (int y : order) {
      EGifPutLine(gif,
                  const_cast<GifPixelType*>(f.indices.data() + static_cast<size_t>(y) * f.width),
                  f.width);
    }
    if (local != nullptr) GifFreeMapObject(local);
  }
  EGifCloseFile(gif, &error);
  if (map != nullptr) GifFreeMapObject(map);
  return out;
}

// ---------------------------------------------------------------- BMP writer

// A BITMAPINFOHEADER (40 bytes) or V5 (124) file; `pixels` is the raw pixel array.
Bytes Bmp(int width, int height, int bits, uint32_t compression, const Bytes& palette_bgrx,
          const Bytes& pixels, int header_size = 40, const std::vector<uint32_t>& masks = {}) {
  Bytes b;
  Append(b, "BM");
  const bool masks_after_header = header_size == 40 && !masks.empty();
  const uint32_t offset =
      14 + header_size + (masks_after_header ? 12 : 0) + static_cast<uint32_t>(palette_bgrx.size());
  Le32(b, offset + static_cast<uint32_t>(pixels.size()));
  Le32(b, 0);
  Le32(b, offset);
  Le32(b, header_size);
  Le32(b, static_cast<uint32_t>(width));
  Le32(b, static_cast<uint32_t>(height));
  Le16(b, 1);
  Le16(b, bits);
  Le32(b, compression);
  Le32(b, static_cast<uint32_t>(pixels.size()));
  Le32(b, 2835);
  Le32(b, 2835);
  Le32(b, static_cast<uint32_t>(palette_bgrx.size() / 4));
  Le32(b, 0);
  if (header_size > 40) {
    for (size_t i = 0; i < 4; ++i) Le32(b, i < masks.size() ? masks[i] : 0);
    while (b.size() < 14u + header_size) b.push_back(0);
  } else if (masks_after_header) {
    for (size_t i = 0; i < 3; ++i) Le32(b, masks[i]);
  }
  b.insert(b.end(), palette_bgrx.begin(), palette_bgrx.end());
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

// ================================================================ PNG

TEST(DecodePngTest, Rgb8RoundTripsExactly) {
  Bytes rgb(13 * 7 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 37 + 11);
  Image image = Decode(EncodePng(RgbPng(13, 7, rgb)));
  EXPECT_EQ(image.width, 13);
  EXPECT_EQ(image.height, 7);
  EXPECT_EQ(image.rgb, rgb);
  // Adam7 interlacing gives the same pixels.
  PngSpec interlaced = RgbPng(13, 7, rgb);
  interlaced.interlace = true;
  EXPECT_EQ(Decode(EncodePng(interlaced)).rgb, rgb);
}

TEST(DecodePngTest, RgbaCompositesOnWhiteLikePillowOrDiscardsAlpha) {
  // Pillow: Image.alpha_composite(white, im).convert("RGB") and im.convert("RGB").
  PngSpec s;
  s.width = 5;
  s.height = 1;
  s.color_type = PNG_COLOR_TYPE_RGBA;
  s.rows = {200, 100, 50, 128, 10, 20, 30, 0, 255, 0, 1, 1, 0, 0, 0, 254, 7, 77, 177, 255};
  const Bytes png = EncodePng(s);
  const Image composite = Decode(png);
  const Rgb want_composite[5] = {
      {227, 177, 152}, {255, 255, 255}, {255, 254, 254}, {1, 1, 1}, {7, 77, 177}};
  for (int x = 0; x < 5; ++x) EXPECT_TRUE(Near(At(composite, x, 0), want_composite[x])) << x;
  const Image discard = Decode(png, AlphaMode::kDiscard);
  const Rgb want_discard[5] = {{200, 100, 50}, {10, 20, 30}, {255, 0, 1}, {0, 0, 0}, {7, 77, 177}};
  for (int x = 0; x < 5; ++x) EXPECT_TRUE(Near(At(discard, x, 0), want_discard[x])) << x;
}

TEST(DecodePngTest, GreyDepthsExpandLikePillow) {
  // Pillow's L;1 / L;2 / L;4 unpackers scale to 0..255 (x 255, x 85, x 17).
  for (int depth : {1, 2, 4, 8}) {
    PngSpec s;
    s.width = 8;
    s.height = 1;
    s.bit_depth = depth;
    s.color_type = PNG_COLOR_TYPE_GRAY;
    const int max = (1 << depth) - 1;
    uint32_t bits = 0;
    int nbits = 0;
    std::vector<int> values;
    for (int x = 0; x < 8; ++x) {
      const int v = (x * 3 + 1) % (max + 1);
      values.push_back(v);
      bits = bits << depth | v;
      nbits += depth;
      while (nbits >= 8) {
        s.rows.push_back(static_cast<uint8_t>(bits >> (nbits - 8)));
        nbits -= 8;
      }
    }
    const Image image = Decode(EncodePng(s));
    for (int x = 0; x < 8; ++x) {
      const int g = values[x] * 255 / max;
      EXPECT_TRUE(Near(At(image, x, 0), {g, g, g})) << "depth " << depth << " x " << x;
    }
  }
}

TEST(DecodePngTest, GreyAlphaAndGreyTransparency) {
  PngSpec la;
  la.width = 2;
  la.height = 1;
  la.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  la.rows = {200, 128, 90, 255};
  const Bytes png = EncodePng(la);
  // Grey 200 at alpha 128 composites like RGB (200, 200, 200, 128): 227 (see RGBA test).
  EXPECT_TRUE(Near(At(Decode(png), 0, 0), {227, 227, 227}));
  EXPECT_TRUE(Near(At(Decode(png), 1, 0), {90, 90, 90}));
  EXPECT_TRUE(Near(At(Decode(png, AlphaMode::kDiscard), 0, 0), {200, 200, 200}));

  PngSpec trns;
  trns.width = 2;
  trns.height = 1;
  trns.color_type = PNG_COLOR_TYPE_GRAY;
  trns.rows = {40, 41};
  trns.trns_grey = 40;
  const Bytes png2 = EncodePng(trns);
  EXPECT_TRUE(Near(At(Decode(png2), 0, 0), {255, 255, 255}));
  EXPECT_TRUE(Near(At(Decode(png2), 1, 0), {41, 41, 41}));
  EXPECT_TRUE(Near(At(Decode(png2, AlphaMode::kDiscard), 0, 0), {40, 40, 40}));
}

TEST(DecodePngTest, PaletteWithTransparency) {
  PngSpec s;
  s.width = 4;
  s.height = 1;
  s.bit_depth = 8;
  s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{10, 20, 30}, {200, 100, 50}, {1, 2, 3}};
  s.trns_alpha = {255, 128, 0};
  s.rows = {0, 1, 2, 0};
  const Bytes png = EncodePng(s);
  const Image composite = Decode(png);
  EXPECT_TRUE(Near(At(composite, 0, 0), {10, 20, 30}));
  EXPECT_TRUE(Near(At(composite, 1, 0), {227, 177, 152}));
  EXPECT_TRUE(Near(At(composite, 2, 0), {255, 255, 255}));
  // convert("RGB") of a P image ignores transparency and uses the palette colours.
  const Image discard = Decode(png, AlphaMode::kDiscard);
  EXPECT_TRUE(Near(At(discard, 1, 0), {200, 100, 50}));
  EXPECT_TRUE(Near(At(discard, 2, 0), {1, 2, 3}));

  // 4-bit palette indices.
  PngSpec p4 = s;
  p4.bit_depth = 4;
  p4.trns_alpha.clear();
  p4.rows = {0x12, 0x01};
  const Image image = Decode(EncodePng(p4));
  EXPECT_TRUE(Near(At(image, 0, 0), {200, 100, 50}));
  EXPECT_TRUE(Near(At(image, 1, 0), {1, 2, 3}));
  EXPECT_TRUE(Near(At(image, 3, 0), {200, 100, 50}));
}

TEST(DecodePngTest, SixteenBitFollowsPillow) {
  // RGB;16B / RGBA;16B / LA;16B keep the high byte.
  PngSpec rgb;
  rgb.width = 1;
  rgb.height = 1;
  rgb.bit_depth = 16;
  rgb.color_type = PNG_COLOR_TYPE_RGB;
  rgb.rows = {0x12, 0xFF, 0xAB, 0x01, 0x00, 0x80};
  EXPECT_TRUE(Near(At(Decode(EncodePng(rgb)), 0, 0), {0x12, 0xAB, 0x00}));

  PngSpec rgba = rgb;
  rgba.color_type = PNG_COLOR_TYPE_RGBA;
  rgba.rows = {0xC8, 0x00, 0x64, 0xFF, 0x32, 0x10, 0x80, 0xFF};  // (200, 100, 50) at alpha 128
  EXPECT_TRUE(Near(At(Decode(EncodePng(rgba)), 0, 0), {227, 177, 152}));

  PngSpec la = rgb;
  la.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  la.rows = {0xC8, 0xFF, 0x80, 0x00};
  EXPECT_TRUE(Near(At(Decode(EncodePng(la)), 0, 0), {227, 227, 227}));
  EXPECT_TRUE(Near(At(Decode(EncodePng(la), AlphaMode::kDiscard), 0, 0), {200, 200, 200}));

  // Grey 16 opens as I;16 and converts by clipping to 255 (0, 100, 255, 256, 1000, 65535 ->
  // 0, 100, 255, 255, 255, 255), checked against Pillow 9.4.
  PngSpec grey = rgb;
  grey.width = 6;
  grey.color_type = PNG_COLOR_TYPE_GRAY;
  grey.rows = {0, 0, 0, 100, 0, 255, 1, 0, 3, 232, 255, 255};
  const Image g = Decode(EncodePng(grey));
  const int want[6] = {0, 100, 255, 255, 255, 255};
  for (int x = 0; x < 6; ++x) EXPECT_TRUE(Near(At(g, x, 0), {want[x], want[x], want[x]})) << x;
  grey.trns_grey = 100;
  EXPECT_TRUE(Near(At(Decode(EncodePng(grey)), 1, 0), {255, 255, 255}));
  EXPECT_TRUE(Near(At(Decode(EncodePng(grey), AlphaMode::kDiscard), 1, 0), {100, 100, 100}));
}

TEST(DecodePngTest, OrientationFromExifRawProfileAndXmp) {
  const Bytes rgb = BlockPattern(3, 2);
  PngSpec s = RgbPng(24, 16, rgb);
  s.exif = ExifBlock(6, /*with_prefix=*/false);
  Image image = Decode(EncodePng(s));
  ASSERT_EQ(image.width, 16);
  ASSERT_EQ(image.height, 24);
  // ROTATE_270 (clockwise): the top-left block becomes the bottom-left one (colour 3).
  EXPECT_TRUE(Near(At(image, 4, 4), kBlockColours[3]));
  EXPECT_TRUE(Near(At(image, 12, 4), kBlockColours[0]));

  PngSpec raw = RgbPng(24, 16, rgb);
  std::string hex;
  for (uint8_t b : ExifBlock(3)) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  raw.texts = {{"Raw profile type exif", "\nexif\n      " + std::to_string(hex.size() / 2) + "\n" +
                                             hex.substr(0, 20) + "\n" + hex.substr(20) + "\n"}};
  image = Decode(EncodePng(raw));
  ASSERT_EQ(image.width, 24);
  EXPECT_TRUE(Near(At(image, 4, 4), kBlockColours[5]));  // ROTATE_180

  PngSpec xmp = RgbPng(24, 16, rgb);
  xmp.itxts = {{"XML:com.adobe.xmp", XmpPacket(8)}};
  image = Decode(EncodePng(xmp));
  ASSERT_EQ(image.width, 16);
  EXPECT_TRUE(Near(At(image, 4, 4), kBlockColours[2]));  // ROTATE_90

  DecodeOptions keep;
  keep.apply_orientation = false;
  Result<Image> stored = DecodeImage(EncodePng(s), keep);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->rgb, rgb);
}

// ================================================================ JPEG

TEST(DecodeJpegTest, ColourGreyAndProgressive) {
  const Bytes rgb = BlockPattern(3, 2);
  JpegSpec spec = MakeJpeg(24, 16, 3, rgb);
  for (bool progressive : {false, true}) {
    spec.progressive = progressive;
    const Image image = Decode(EncodeJpeg(spec));
    ASSERT_EQ(image.width, 24);
    ASSERT_EQ(image.height, 16);
    for (int b = 0; b < 6; ++b) {
      EXPECT_TRUE(Near(At(image, (b % 3) * 8 + 4, (b / 3) * 8 + 4), kBlockColours[b], 3)) << b;
    }
  }
  JpegSpec grey = MakeJpeg(8, 8, 1, Bytes(64, 77));
  const Image g = Decode(EncodeJpeg(grey));
  EXPECT_TRUE(Near(At(g, 3, 3), {77, 77, 77}, 1));
}

TEST(DecodeJpegTest, CmykUsesAdobePolarity) {
  // Stored (inverted) CMYK s: Pillow reads c = 255 - s, then R = nk - c * nk / 255 with
  // nk = 255 - k, i.e. about s_c * s_k / 255.
  Bytes cmyk;
  for (int i = 0; i < 64; ++i) cmyk.insert(cmyk.end(), {255, 128, 0, 128});
  const Image image = Decode(EncodeJpeg(MakeJpeg(8, 8, 4, cmyk)));
  EXPECT_TRUE(Near(At(image, 4, 4), {128, 64, 0}, 3));
}

TEST(DecodeJpegTest, ExifOrientationAllEightLikePillow) {
  // Block index grids after exif_transpose of a 3x2 block image (from Pillow's transpose).
  const std::vector<std::vector<int>> grids = {{},
                                               {0, 1, 2, 3, 4, 5},
                                               {2, 1, 0, 5, 4, 3},
                                               {5, 4, 3, 2, 1, 0},
                                               {3, 4, 5, 0, 1, 2},
                                               {0, 3, 1, 4, 2, 5},
                                               {3, 0, 4, 1, 5, 2},
                                               {5, 2, 4, 1, 3, 0},
                                               {2, 5, 1, 4, 0, 3}};
  for (int o = 1; o <= 8; ++o) {
    JpegSpec spec = MakeJpeg(24, 16, 3, BlockPattern(3, 2));
    spec.app1 = {ExifBlock(o)};
    const Image image = Decode(EncodeJpeg(spec));
    const int bw = o >= 5 ? 2 : 3;
    ASSERT_EQ(image.width, bw * 8) << o;
    for (int b = 0; b < 6; ++b) {
      EXPECT_TRUE(
          Near(At(image, (b % bw) * 8 + 4, (b / bw) * 8 + 4), kBlockColours[grids[o][b]], 3))
          << "orientation " << o << " block " << b;
    }
  }
  // XMP is the fallback when EXIF has no orientation.
  JpegSpec xmp = MakeJpeg(24, 16, 3, BlockPattern(3, 2));
  Bytes packet;
  Append(packet, std::string_view("http://ns.adobe.com/xap/1.0/\0", 29));
  Append(packet, XmpPacket(3));
  xmp.app1 = {packet};
  EXPECT_TRUE(Near(At(Decode(EncodeJpeg(xmp)), 4, 4), kBlockColours[5], 3));
}

TEST(DecodeJpegTest, TruncatedAndCorruptAreErrors) {
  const Bytes jpeg = EncodeJpeg(MakeJpeg(24, 16, 3, BlockPattern(3, 2)));
  EXPECT_EQ(DecodeError(Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() / 2)), ErrorCode::kDataLoss);
  EXPECT_EQ(DecodeError(Bytes(jpeg.begin(), jpeg.begin() + 3)), ErrorCode::kDataLoss);
  Bytes corrupt = jpeg;
  for (size_t i = 4; i < 40; ++i) corrupt[i] = 0x5A;
  EXPECT_NE(DecodeError(corrupt), ErrorCode::kOk);
  // An SOF claiming 65500 x 65500 is refused from the header.
  Bytes huge = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xFF, 0xDC, 0xFF, 0xDC, 1, 1,
                0x11, 0,    0xFF, 0xDA, 0, 8,  1, 1,    0,    0,    63,   0};
  EXPECT_EQ(DecodeError(huge), ErrorCode::kResourceExhausted);
}

// ================================================================ WebP

TEST(DecodeWebpTest, LosslessRoundTripsAndAlpha) {
  Bytes rgb(9 * 5 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 29 + 5);
  EXPECT_EQ(Decode(WebpLossless(9, 5, rgb, false)).rgb, rgb);

  const Bytes rgba = {200, 100, 50, 128, 10, 20, 30, 0, 7, 77, 177, 255};
  const Bytes webp = WebpLossless(3, 1, rgba, true);
  const Image composite = Decode(webp);
  EXPECT_TRUE(Near(At(composite, 0, 0), {227, 177, 152}));
  EXPECT_TRUE(Near(At(composite, 1, 0), {255, 255, 255}));
  EXPECT_TRUE(Near(At(composite, 2, 0), {7, 77, 177}));
  EXPECT_TRUE(Near(At(Decode(webp, AlphaMode::kDiscard), 0, 0), {200, 100, 50}));
}

TEST(DecodeWebpTest, LossyDecodes) {
  const Bytes rgb = BlockPattern(3, 2);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeRGB(rgb.data(), 24, 16, 24 * 3, 100, &out);
  const Bytes webp(out, out + n);
  WebPFree(out);
  const Image image = Decode(webp);
  ASSERT_EQ(image.width, 24);
  // Lossy 4:2:0 bleeds chroma at block edges; the centres stay close.
  EXPECT_TRUE(Near(At(image, 12, 4), kBlockColours[1], 40));
}

TEST(DecodeWebpTest, ExtendedContainerWithExifAndAnimation) {
  const Bytes rgb = BlockPattern(3, 2);
  const Bytes simple = WebpLossless(24, 16, rgb, false);
  Bytes chunks;
  Chunk(chunks, "VP8X", Vp8x(0x08, 24, 16));  // EXIF flag
  const Bytes image_chunk = ImageChunk(simple);
  chunks.insert(chunks.end(), image_chunk.begin(), image_chunk.end());
  Chunk(chunks, "EXIF", ExifBlock(6, /*with_prefix=*/false));
  const Image rotated = Decode(Riff(chunks));
  ASSERT_EQ(rotated.width, 16);
  EXPECT_TRUE(Near(At(rotated, 4, 4), kBlockColours[3]));

  // An animation whose first frame (2x1 RGBA, lossless) sits at (2, 2) on a 6x4 canvas:
  // the rest of the canvas is transparent black.
  const Bytes frame = WebpLossless(2, 1, {200, 100, 50, 255, 1, 2, 3, 255}, true);
  Bytes anmf;
  Le24(anmf, 1);  // x / 2
  Le24(anmf, 1);  // y / 2
  Le24(anmf, 1);  // width - 1
  Le24(anmf, 0);  // height - 1
  Le24(anmf, 100);
  anmf.push_back(0);
  const Bytes frame_chunk = ImageChunk(frame);
  anmf.insert(anmf.end(), frame_chunk.begin(), frame_chunk.end());
  Bytes anim_chunks;
  Chunk(anim_chunks, "VP8X", Vp8x(0x02 | 0x10, 6, 4));  // animation + alpha
  Chunk(anim_chunks, "ANIM", {0, 0, 0, 0, 0, 0});
  Chunk(anim_chunks, "ANMF", anmf);
  const Bytes animated = Riff(anim_chunks);
  const Image composite = Decode(animated);
  ASSERT_EQ(composite.width, 6);
  ASSERT_EQ(composite.height, 4);
  EXPECT_TRUE(Near(At(composite, 2, 2), {200, 100, 50}));
  EXPECT_TRUE(Near(At(composite, 3, 2), {1, 2, 3}));
  EXPECT_TRUE(Near(At(composite, 0, 0), {255, 255, 255}));
  EXPECT_TRUE(Near(At(Decode(animated, AlphaMode::kDiscard), 0, 0), {0, 0, 0}));
}

TEST(DecodeWebpTest, HostileHeaders) {
  const Bytes webp = WebpLossless(9, 5, Bytes(9 * 5 * 3, 1), false);
  EXPECT_NE(DecodeError(Bytes(webp.begin(), webp.end() - 5)), ErrorCode::kOk);
  Bytes chunks;
  Chunk(chunks, "VP8X", Vp8x(0, 16384, 16384));
  EXPECT_EQ(DecodeError(Riff(chunks)), ErrorCode::kResourceExhausted);
}

// ================================================================ GIF

TEST(DecodeGifTest, FirstFrameOnTheScreenWithTransparency) {
  const std::vector<GifColorType> global = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  GifFrame first;
  first.left = 1;
  first.top = 1;
  first.width = 3;
  first.height = 2;
  first.indices = {1, 2, 3, 3, 2, 1};
  first.transparent = 2;
  GifFrame second = first;
  second.indices = {3, 3, 3, 3, 3, 3};
  const Bytes gif = EncodeGif(6, 4, global, {first, second});
  const Image composite = Decode(gif);
  ASSERT_EQ(composite.width, 6);
  ASSERT_EQ(composite.height, 4);
  EXPECT_TRUE(Near(At(composite, 1, 1), {255, 0, 0}));
  EXPECT_TRUE(Near(At(composite, 2, 1), {255, 255, 255}));  // transparent index
  EXPECT_TRUE(Near(At(composite, 3, 1), {0, 0, 255}));
  EXPECT_TRUE(Near(At(composite, 0, 0), {255, 255, 255}));  // outside: transparent fill
  // convert("RGB"): palette colours, the fill is the transparent index's colour.
  const Image discard = Decode(gif, AlphaMode::kDiscard);
  EXPECT_TRUE(Near(At(discard, 2, 1), {0, 255, 0}));
  EXPECT_TRUE(Near(At(discard, 0, 0), {0, 255, 0}));

  // Without transparency the fill is index 0; a local palette wins over the global one.
  GifFrame local = first;
  local.transparent = -1;
  local.local = {{9, 9, 9}, {10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
  const Image l = Decode(EncodeGif(6, 4, global, {local}));
  EXPECT_TRUE(Near(At(l, 0, 0), {9, 9, 9}));
  EXPECT_TRUE(Near(At(l, 2, 1), {40, 50, 60}));
}

TEST(DecodeGifTest, InterlacedAndGrowingFrames) {
  const std::vector<GifColorType> palette = {{0, 0, 0}, {255, 255, 255}};
  GifFrame f;
  f.width = 3;
  f.height = 11;
  f.interlace = true;
  for (int y = 0; y < 11; ++y) {
    for (int x = 0; x < 3; ++x) f.indices.push_back(static_cast<uint8_t>((y + x) % 2));
  }
  const Image image = Decode(EncodeGif(3, 11, palette, {f}));
  for (int y = 0; y < 11; ++y) {
    const int v = y % 2 ? 255 : 0;
    EXPECT_TRUE(Near(At(image, 0, y), {v, v, v})) << y;
  }
  // A frame larger than the screen grows the canvas, as in Pillow.
  GifFrame big;
  big.left = 2;
  big.width = 3;
  big.height = 2;
  big.indices = Bytes(6, 1);
  const Image grown = Decode(EncodeGif(2, 1, palette, {big}));
  EXPECT_EQ(grown.width, 5);
  EXPECT_EQ(grown.height, 2);
}

TEST(DecodeGifTest, HostileInput) {
  const std::vector<GifColorType> palette = {{0, 0, 0}, {255, 255, 255}};
  GifFrame f;
  f.width = 40;
  f.height = 40;
  f.indices = Bytes(1600, 1);
  for (size_t i = 0; i < f.indices.size(); i += 7) f.indices[i] = 0;
  const Bytes gif = EncodeGif(40, 40, palette, {f});
  EXPECT_EQ(DecodeError(Bytes(gif.begin(), gif.begin() + gif.size() - 20)), ErrorCode::kDataLoss);
  EXPECT_NE(DecodeError(Bytes(gif.begin(), gif.begin() + 8)), ErrorCode::kOk);
  // No image before the trailer.
  const Bytes empty = EncodeGif(4, 4, palette, {});
  EXPECT_EQ(DecodeError(empty), ErrorCode::kInvalidArgument);
  // A 65535 x 65535 frame.
  Bytes huge = gif;
  const size_t desc = 13 + 6;  // header + screen descriptor + 2-entry palette
  ASSERT_EQ(huge[desc], 0x2C);
  huge[desc + 5] = huge[desc + 6] = huge[desc + 7] = huge[desc + 8] = 0xFF;
  EXPECT_EQ(DecodeError(huge), ErrorCode::kResourceExhausted);
}

// ================================================================ BMP

TEST(DecodeBmpTest, TrueColourLayouts) {
  // 24-bit, bottom-up, rows padded to 4 bytes: 2x2 image.
  const Bytes px24 = {/*row y=1*/ 1,  2,  3,  4,  5,  6,  0, 0,
                      /*row y=0*/ 10, 20, 30, 40, 50, 60, 0, 0};
  const Image a = Decode(Bmp(2, 2, 24, 0, {}, px24));
  EXPECT_TRUE(Near(At(a, 0, 0), {30, 20, 10}));
  EXPECT_TRUE(Near(At(a, 1, 1), {6, 5, 4}));
  // Negative height: top-down.
  const Image td = Decode(Bmp(2, -2, 24, 0, {}, px24));
  EXPECT_TRUE(Near(At(td, 0, 0), {3, 2, 1}));

  // 32-bit without bitfields: BGRX, the fourth byte is not alpha.
  const Bytes px32 = {10, 20, 30, 0};
  EXPECT_TRUE(Near(At(Decode(Bmp(1, 1, 32, 0, {}, px32)), 0, 0), {30, 20, 10}));
  // 32-bit BITFIELDS with an alpha mask (V5 header): BGRA.
  const Bytes bgra = {50, 100, 200, 128};
  const Image alpha = Decode(Bmp(1, 1, 32, 3, {}, bgra, 124, {0xFF0000, 0xFF00, 0xFF, 0xFF000000}));
  EXPECT_TRUE(Near(At(alpha, 0, 0), {227, 177, 152}));
  // 40-byte header with three masks: XBGR layout, no alpha.
  const Bytes xbgr = {99, 10, 20, 30};
  EXPECT_TRUE(Near(At(Decode(Bmp(1, 1, 32, 3, {}, xbgr, 40, {0xFF000000, 0xFF0000, 0xFF00})), 0, 0),
                   {30, 20, 10}));

  // 16-bit: 5-5-5 by default, 5-6-5 with bitfields; v * 255 / max truncated (Pillow's
  // BGR;15 and BGR;16 unpackers).
  const Bytes px16 = {0x5A, 0x3C, 0, 0};  // 0x3C5A
  const uint32_t p = 0x3C5A;
  EXPECT_TRUE(
      Near(At(Decode(Bmp(1, 1, 16, 0, {}, px16)), 0, 0),
           {static_cast<int>(((p >> 10) & 31) * 255 / 31),
            static_cast<int>(((p >> 5) & 31) * 255 / 31), static_cast<int>((p & 31) * 255 / 31)}));
  EXPECT_TRUE(
      Near(At(Decode(Bmp(1, 1, 16, 3, {}, px16, 40, {0xF800, 0x7E0, 0x1F})), 0, 0),
           {static_cast<int>(((p >> 11) & 31) * 255 / 31),
            static_cast<int>(((p >> 5) & 63) * 255 / 63), static_cast<int>((p & 31) * 255 / 31)}));
  EXPECT_EQ(DecodeError(Bmp(1, 1, 16, 3, {}, px16, 40, {0xF00, 0xF0, 0xF})),
            ErrorCode::kUnimplemented);
}

TEST(DecodeBmpTest, PaletteLayoutsAndRle) {
  const Bytes palette = {30, 20, 10, 0, 60, 50, 40, 0, 90, 80, 70, 0};  // BGRX
  // 8-bit: indices 0, 2, 1 and 5 (past the palette: grey ramp, as in Pillow).
  const Image p8 = Decode(Bmp(4, 1, 8, 0, palette, {0, 2, 1, 5}));
  EXPECT_TRUE(Near(At(p8, 0, 0), {10, 20, 30}));
  EXPECT_TRUE(Near(At(p8, 1, 0), {70, 80, 90}));
  EXPECT_TRUE(Near(At(p8, 2, 0), {40, 50, 60}));
  EXPECT_TRUE(Near(At(p8, 3, 0), {5, 5, 5}));
  // 4-bit and 1-bit.
  const Image p4 = Decode(Bmp(3, 1, 4, 0, palette, {0x21, 0x00, 0, 0}));
  EXPECT_TRUE(Near(At(p4, 0, 0), {70, 80, 90}));
  EXPECT_TRUE(Near(At(p4, 1, 0), {40, 50, 60}));
  EXPECT_TRUE(Near(At(p4, 2, 0), {10, 20, 30}));
  const Image p1 = Decode(
      Bmp(9, 1, 1, 0, Bytes(palette.begin(), palette.begin() + 8), {0b10100000, 0b10000000, 0, 0}));
  EXPECT_TRUE(Near(At(p1, 0, 0), {40, 50, 60}));
  EXPECT_TRUE(Near(At(p1, 1, 0), {10, 20, 30}));
  EXPECT_TRUE(Near(At(p1, 8, 0), {40, 50, 60}));
  // RLE8, bottom-up: row 0 of the file (the image's last row) = 3 x index 1, then end of line;
  // row 1 = absolute run (2, 0, 1), end of bitmap.
  const Bytes rle8 = {3, 1, 0, 0, 0, 3, 2, 0, 1, 0, 0, 1};
  const Image r = Decode(Bmp(3, 2, 8, 1, palette, rle8));
  EXPECT_TRUE(Near(At(r, 0, 1), {40, 50, 60}));
  EXPECT_TRUE(Near(At(r, 0, 0), {70, 80, 90}));
  EXPECT_TRUE(Near(At(r, 2, 0), {40, 50, 60}));
  // RLE4: 3 pixels alternating indices 2 and 1.
  const Image r4 = Decode(Bmp(3, 1, 4, 2, palette, {3, 0x21, 0, 1}));
  EXPECT_TRUE(Near(At(r4, 0, 0), {70, 80, 90}));
  EXPECT_TRUE(Near(At(r4, 1, 0), {40, 50, 60}));
}

TEST(DecodeBmpTest, HostileHeaders) {
  const Bytes px24 = {1, 2, 3, 0};
  EXPECT_EQ(DecodeError(Bmp(100000, 100000, 24, 0, {}, px24)), ErrorCode::kResourceExhausted);
  EXPECT_EQ(DecodeError(Bmp(0, 1, 24, 0, {}, px24)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeError(Bmp(-4, 1, 24, 0, {}, px24)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeError(Bmp(4, 4, 24, 0, {}, px24)), ErrorCode::kDataLoss);
  EXPECT_EQ(DecodeError(Bmp(1, 1, 7, 0, {}, px24)), ErrorCode::kUnimplemented);
  EXPECT_EQ(DecodeError(Bmp(1, 1, 24, 9, {}, px24)), ErrorCode::kUnimplemented);
  EXPECT_EQ(DecodeError(Bmp(4, 4, 8, 1, Bytes(8), {4, 1})), ErrorCode::kDataLoss);
}

// ================================================================ hostile input, all formats

TEST(DecodeImageTest, EmptyZeroAndRandomBytesAreInvalid) {
  EXPECT_EQ(DecodeError({}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeError(Bytes(64, 0)), ErrorCode::kInvalidArgument);
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    Bytes random(1 + rng() % 300);
    for (uint8_t& b : random) b = static_cast<uint8_t>(rng());
    EXPECT_NE(DecodeError(random), ErrorCode::kOk);
  }
  // Random bytes after each format's magic.
  for (std::string_view magic :
       {std::string_view("\xFF\xD8\xFF", 3), std::string_view("\x89PNG\r\n\x1A\n", 8),
        std::string_view("GIF89a"), std::string_view("BM"),
        std::string_view("RIFF\x10\0\0\0WEBPVP8 ", 16)}) {
    for (int i = 0; i < 100; ++i) {
      Bytes b;
      Append(b, magic);
      const size_t n = rng() % 200;
      for (size_t k = 0; k < n; ++k) b.push_back(static_cast<uint8_t>(rng()));
      const Result<Image> image = DecodeImage(b);
      if (image.ok()) {
        EXPECT_EQ(image->rgb.size(), static_cast<size_t>(image->width) * image->height * 3);
      }
    }
  }
}

TEST(DecodeImageTest, EveryTruncationFailsCleanly) {
  const Bytes rgb = BlockPattern(3, 2);
  PngSpec png = RgbPng(24, 16, rgb);
  png.exif = ExifBlock(6, false);
  JpegSpec jpeg = MakeJpeg(24, 16, 3, rgb);
  jpeg.app1 = {ExifBlock(6)};
  GifFrame f;
  f.width = 24;
  f.height = 16;
  for (int i = 0; i < 24 * 16; ++i) f.indices.push_back(static_cast<uint8_t>(i % 3));
  const std::vector<std::pair<std::string, Bytes>> files = {
      {"png", EncodePng(png)},
      {"jpeg", EncodeJpeg(jpeg)},
      {"webp", WebpLossless(24, 16, rgb, false)},
      {"gif", EncodeGif(24, 16, {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}}, {f})},
      {"bmp", Bmp(24, 16, 24, 0, {}, rgb)},
  };
  for (const auto& [name, file] : files) {
    ASSERT_EQ(DecodeError(file), ErrorCode::kOk) << name;
    // Only a cut in trailing metadata (PNG's eXIf written after IDAT and IEND, a JPEG's EOI,
    // GIF's trailer) may still decode; a cut anywhere in the pixel data must not.
    for (size_t n = 0; n < file.size(); ++n) {
      const Result<Image> image = DecodeImage(Bytes(file.begin(), file.begin() + n));
      if (image.ok()) {
        EXPECT_GE(n + 64, file.size()) << name << " decoded from " << n << " of " << file.size();
        EXPECT_EQ(image->rgb.size(), static_cast<size_t>(image->width) * image->height * 3);
      } else {
        EXPECT_FALSE(image.status().message().empty());
      }
    }
  }
}

TEST(DecodePngTest, CorruptChunksAreErrors) {
  const Bytes png = EncodePng(RgbPng(24, 16, BlockPattern(3, 2)));
  Bytes bad_ihdr = png;
  bad_ihdr[24] = 3;  // bit depth 3 (and a CRC mismatch)
  EXPECT_EQ(DecodeError(bad_ihdr), ErrorCode::kInvalidArgument);
  Bytes bad_idat = png;
  bad_idat[8 + 25 + 8 + 4] ^= 0xFF;  // first bytes of IDAT's data: CRC mismatch
  ASSERT_EQ(std::string(bad_idat.begin() + 8 + 25 + 4, bad_idat.begin() + 8 + 25 + 8), "IDAT");
  EXPECT_EQ(DecodeError(bad_idat), ErrorCode::kDataLoss);
  Bytes not_ihdr = png;
  not_ihdr[12] = 'X';
  EXPECT_EQ(DecodeError(not_ihdr), ErrorCode::kInvalidArgument);
}

// A PNG whose IHDR claims 100000 x 100000 (CRC correct) followed by a tiny IDAT: refused from
// the header, before any pixel buffer exists.
TEST(DecodeImageTest, AbsurdPngDimensionsAreRefusedBeforeAllocating) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  Append(ihdr, "IHDR");
  Be32(ihdr, 100000);
  Be32(ihdr, 100000);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  Be32(png, 13);
  png.insert(png.end(), ihdr.begin(), ihdr.end());
  Be32(png, static_cast<uint32_t>(crc32(0, ihdr.data(), static_cast<unsigned>(ihdr.size()))));
  Bytes idat;
  Append(idat, "IDAT");
  idat.insert(idat.end(), {0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  Be32(png, 8);
  png.insert(png.end(), idat.begin(), idat.end());
  Be32(png, static_cast<uint32_t>(crc32(0, idat.data(), static_cast<unsigned>(idat.size()))));
  Result<Image> image = DecodeImage(png);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(image.status().message().find("100000x100000"), std::string::npos)
      << image.status().message();
  // The header alone (no IDAT) is refused the same way.
  EXPECT_EQ(DecodeError(Bytes(png.begin(), png.begin() + 33)), ErrorCode::kResourceExhausted);
}

TEST(DecodeImageTest, LimitsComeFromOptions) {
  const Bytes png = EncodePng(RgbPng(24, 16, BlockPattern(3, 2)));
  DecodeOptions options;
  options.max_pixels = 24 * 16 - 1;
  EXPECT_EQ(DecodeError(png, options), ErrorCode::kResourceExhausted);
  options.max_pixels = 24 * 16;
  EXPECT_EQ(DecodeError(png, options), ErrorCode::kOk);
  options.max_side = 23;
  EXPECT_EQ(DecodeError(png, options), ErrorCode::kResourceExhausted);
  const Bytes gif = EncodeGif(24, 16, {{0, 0, 0}, {1, 1, 1}},
                              {GifFrame{0, 0, 24, 16, false, Bytes(384, 1), {}, -1}});
  EXPECT_EQ(DecodeError(gif, options), ErrorCode::kResourceExhausted);
  EXPECT_EQ(DecodeError(EncodeJpeg(MakeJpeg(24, 16, 3, BlockPattern(3, 2))), options),
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(DecodeError(WebpLossless(24, 16, BlockPattern(3, 2), false), options),
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(DecodeError(Bmp(24, 16, 24, 0, {}, BlockPattern(3, 2)), options),
            ErrorCode::kResourceExhausted);
}

TEST(LoadImageFileTest, ReadsFilesAndNamesMissingOnes) {
  Result<Image> photo =
      LoadImageFile(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/images/small.png");
  ASSERT_TRUE(photo.ok()) << photo.status().ToString();
  EXPECT_EQ(photo->width, 160);
  EXPECT_EQ(photo->height, 120);
  Result<Image> missing = LoadImageFile("/nonexistent/iris/image.png");
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/iris/image.png"), std::string::npos);
  // Errors from the decoder name the file too.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("iris_media_bad_" + std::to_string(::getpid()) + ".png"))
                               .string();
  std::ofstream(path, std::ios::binary) << "not an image";
  Result<Image> bad = LoadImageFile(path);
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(path), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace iris::media
