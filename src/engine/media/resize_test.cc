// ResizeLanczos against bytes Pillow 9.4 produced for the same inputs, and the orientation
// helpers against Pillow's transpose table.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "engine/media/decoders.h"
#include "engine/media/image.h"

namespace iris::media {
namespace {

// The test pattern that the Pillow reference values were computed from:
// byte i = (i * i * 31 + i * 7 + 3) & 255.
Image Pattern(int width, int height) {
  Image image{width, height, {}};
  image.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (uint64_t i = 0; i < image.rgb.size(); ++i) {
    image.rgb[i] = static_cast<uint8_t>((i * i * 31 + i * 7 + 3) & 255);
  }
  return image;
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

uint64_t Fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

TEST(ResizeLanczosTest, MatchesPillowOnSmallImages) {
  // PIL.Image.frombytes("RGB", (7, 5), pattern).resize((w, h), Image.LANCZOS).tobytes()
  struct Case {
    int width, height;
    const char* hex;
  };
  const Case cases[] = {
      {3, 4, "38248d7876b0c491a49249a680aa9189d1836866986a833a89b32fa750b5a54f6bae8963"},
      {7, 2,
       "94309b4f5080485da16e6fd7b9e7369fba96827faba56cad9561c5584352bd8a5d736d5a8fde25a6786f"},
      {1, 1, "877b82"},
      {11, 9,
       "002999001b4a37022a9e01c15c25ff0070f776c45dd3c6099f7751b236d0d524ff4835a541266740254b5f50bb"
       "544cfc4e4cf59cb462dedb2dd89294ac72e49175f1e63db4bc3b9c5261870ab29f4880dac533e7cea66eddf85e"
       "ffc7de95c5e439d7b8ff0dbae83fc86c83b211895b3d7b83b28ed0d3ca86affa617df29f59c38651a25ecc099e"
       "a94fc86d7dbf5523374e4e395fdf9d9de17971e13502fe274c8f2bab323376835e5c90a7457ad3602a5e7f3c27"
       "7c99475cad2a4ad40d67ff189f9a3bbe3d5161c8695f9e9e5a5fca594f8f9b4c48c74c285e5920579b20dfe42d"
       "deb369ae77919674ceb859c5bc39a8653e86866764e2745ca730827e4364b3b619baad5dac7dabc329fff925e3"
       "fd24916d2f76707774e79e89db25ca9a12917d9c0b92a54eab79b0"},
  };
  const Image source = Pattern(7, 5);
  for (const Case& c : cases) {
    Image out = ResizeLanczos(source, c.width, c.height);
    EXPECT_EQ(out.width, c.width);
    EXPECT_EQ(out.height, c.height);
    EXPECT_EQ(Hex(out.rgb), c.hex) << c.width << "x" << c.height;
  }
}

TEST(ResizeLanczosTest, MatchesPillowOnLargerImages) {
  // FNV-1a 64 of Pillow's bytes for a 64x48 pattern: down, up, one axis only.
  struct Case {
    int width, height;
    uint64_t fnv;
  };
  const Case cases[] = {{23, 31, 0x527d08525b90ed3aull},
                        {150, 97, 0xe37156fc8a6156f9ull},
                        {64, 13, 0xf8cc4909e5577c4bull},
                        {5, 48, 0x0208ce517068cc3dull},
                        {640, 3, 0x09eec4a7eaa0e0d9ull}};
  const Image source = Pattern(64, 48);
  for (const Case& c : cases) {
    EXPECT_EQ(Fnv1a(ResizeLanczos(source, c.width, c.height).rgb), c.fnv)
        << c.width << "x" << c.height;
  }
}

TEST(ResizeLanczosTest, WindowAtATimePathMatchesStoredCoefficients) {
  const Image strip = Pattern(3000, 2);
  // Pillow: frombytes("RGB", (3000, 2), pattern).resize((7, 2), LANCZOS)
  const std::string want =
      "81808080808080808080808080808080808080817f807f80808080808080808080808080808080817f80";
  EXPECT_EQ(Hex(ResizeLanczos(strip, 7, 2).rgb), want);
  EXPECT_EQ(Hex(internal::ResizeLanczos(strip, 7, 2, /*max_stored_coefficients=*/1).rgb), want);
  const Image source = Pattern(64, 48);
  EXPECT_EQ(internal::ResizeLanczos(source, 23, 31, 1).rgb, ResizeLanczos(source, 23, 31).rgb);
  EXPECT_EQ(internal::ResizeLanczos(source, 150, 97, 1).rgb, ResizeLanczos(source, 150, 97).rgb);
}

TEST(ResizeLanczosTest, SameSizeIsACopyAndConstantsStayConstant) {
  const Image source = Pattern(9, 4);
  EXPECT_EQ(ResizeLanczos(source, 9, 4).rgb, source.rgb);
  Image flat{5, 3, std::vector<uint8_t>(45, 0)};
  for (size_t i = 0; i < flat.rgb.size(); i += 3) {
    flat.rgb[i] = 255;
    flat.rgb[i + 1] = 1;
    flat.rgb[i + 2] = 77;
  }
  for (auto [w, h] : {std::pair{1, 1}, std::pair{100, 2}, std::pair{2, 100}, std::pair{4096, 1}}) {
    Image out = ResizeLanczos(flat, w, h);
    ASSERT_EQ(out.rgb.size(), static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < out.rgb.size(); i += 3) {
      ASSERT_EQ(out.rgb[i], 255);
      ASSERT_EQ(out.rgb[i + 1], 1);
      ASSERT_EQ(out.rgb[i + 2], 77);
    }
  }
}

TEST(ValidateImageTest, RejectsEmptyAndMismatchedBuffers) {
  EXPECT_EQ(ValidateImage(Image{}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ValidateImage(Image{2, 2, std::vector<uint8_t>(11)}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidateImage(Image{2, 2, std::vector<uint8_t>(12)}).ok());
}

TEST(OrientationTest, ApplyMatchesPillowTranspose) {
  // A 3x2 image whose pixel k (row-major) has value k; Pillow's results for
  // ImageOps.exif_transpose with orientations 2..8.
  const std::vector<std::vector<uint8_t>> want = {
      {},
      {},
      {2, 1, 0, 5, 4, 3},  // 2 FLIP_LEFT_RIGHT
      {5, 4, 3, 2, 1, 0},  // 3 ROTATE_180
      {3, 4, 5, 0, 1, 2},  // 4 FLIP_TOP_BOTTOM
      {0, 3, 1, 4, 2, 5},  // 5 TRANSPOSE (2 wide, 3 high)
      {3, 0, 4, 1, 5, 2},  // 6 ROTATE_270
      {5, 2, 4, 1, 3, 0},  // 7 TRANSVERSE
      {2, 5, 1, 4, 0, 3},  // 8 ROTATE_90
  };
  for (int o = 0; o <= 8; ++o) {
    int width = 3, height = 2;
    std::vector<uint8_t> pixels = {0, 1, 2, 3, 4, 5};
    internal::ApplyOrientation(o, 1, width, height, pixels);
    if (o < 2) {
      EXPECT_EQ(pixels, (std::vector<uint8_t>{0, 1, 2, 3, 4, 5}));
      continue;
    }
    EXPECT_EQ(pixels, want[o]) << "orientation " << o;
    EXPECT_EQ(width, o >= 5 ? 2 : 3);
    EXPECT_EQ(height, o >= 5 ? 3 : 2);
  }
}

std::vector<uint8_t> Tiff(bool big_endian, uint16_t type, uint32_t count, uint32_t value,
                          bool prefix) {
  std::vector<uint8_t> b;
  if (prefix) b = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](uint32_t v) {
    if (big_endian) {
      b.push_back(static_cast<uint8_t>(v >> 8));
      b.push_back(static_cast<uint8_t>(v));
    } else {
      b.push_back(static_cast<uint8_t>(v));
      b.push_back(static_cast<uint8_t>(v >> 8));
    }
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian) {
      u16(v >> 16);
      u16(v & 0xFFFF);
    } else {
      u16(v & 0xFFFF);
      u16(v >> 16);
    }
  };
  b.push_back(big_endian ? 'M' : 'I');
  b.push_back(big_endian ? 'M' : 'I');
  u16(42);
  u32(8);
  u16(2);  // two entries: ImageWidth, then Orientation
  u16(0x0100);
  u16(3);
  u32(1);
  u16(640);
  u16(0);
  u16(0x0112);
  u16(type);
  u32(count);
  if (type == 3) {
    u16(value);
    u16(0);
  } else {
    u32(value);
  }
  u32(0);
  return b;
}

TEST(OrientationTest, ParsesExifInBothByteOrders) {
  using internal::ExifOrientation;
  for (bool be : {false, true}) {
    for (bool prefix : {false, true}) {
      EXPECT_EQ(ExifOrientation(Tiff(be, 3, 1, 6, prefix)), 6);
      EXPECT_EQ(ExifOrientation(Tiff(be, 4, 1, 8, prefix)), 8);
      EXPECT_EQ(ExifOrientation(Tiff(be, 3, 2, 6, prefix)), 0);  // not a single value
      EXPECT_EQ(ExifOrientation(Tiff(be, 2, 1, 6, prefix)), 0);  // ASCII
      EXPECT_EQ(ExifOrientation(Tiff(be, 3, 1, 9, prefix)), 0);  // out of range
    }
  }
  std::vector<uint8_t> exif = Tiff(false, 3, 1, 3, true);
  for (size_t n = 0; n < exif.size(); ++n) {
    const int o = ExifOrientation({exif.data(), n});
    EXPECT_TRUE(o == 0 || o == 3) << n;
  }
  EXPECT_EQ(ExifOrientation(exif), 3);
  exif[8] = 'X';  // bad byte order mark
  EXPECT_EQ(ExifOrientation(exif), 0);
}

TEST(OrientationTest, ParsesXmpLikePillow) {
  using internal::XmpOrientation;
  EXPECT_EQ(XmpOrientation(R"(<x:xmpmeta><rdf:Description tiff:Orientation="6"/>)"), 6);
  EXPECT_EQ(XmpOrientation("<tiff:Orientation>3</tiff:Orientation>"), 3);
  EXPECT_EQ(XmpOrientation("tiff:OrientationX tiff:Orientation=\"8\""), 8);
  EXPECT_EQ(XmpOrientation("tiff:Orientation=6"), 0);
  EXPECT_EQ(XmpOrientation("tiff:Orientation=\""), 0);
  EXPECT_EQ(XmpOrientation(""), 0);
}

}  // namespace
}  // namespace iris::media
