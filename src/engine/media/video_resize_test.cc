// The video frame resize against torch: hundreds of frames of many sizes (portrait, landscape,
// square, up- and down-scaling, 1-2 px sides, the processor's longest-edge and tile targets),
// generated here from a seed exactly as tests/data/video_resize/generate.py generates them, and
// compared by hash with the outputs torch 1.13 / torchvision 0.14 produced for that script.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/media/image.h"
#include "engine/media/image_processor.h"
#include "engine/media/video.h"

namespace iris::media {
namespace {

struct Case {
  char kind = 'R';  // R: one resize to a x b; P: PreprocessVideoFrames, longest edge a, tile b
  int in_w = 0;
  int in_h = 0;
  int a = 0;
  int b = 0;
  int style = 0;
  uint64_t seed = 0;
  uint64_t want = 0;
  std::string line;
};

std::vector<uint8_t> SplitMix64Bytes(uint64_t state, size_t n) {
  std::vector<uint8_t> out;
  out.reserve(n + 8);
  while (out.size() < n) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(z >> (8 * i)));
  }
  out.resize(n);
  return out;
}

// generate.py's make_frame: 0 uniform noise, 1 black/white noise, 2 random 8x8 blocks.
Image MakeFrame(int w, int h, int style, uint64_t seed) {
  Image image{w, h, {}};
  const size_t n = static_cast<size_t>(w) * h * 3;
  if (style == 2) {
    const int bw = (w + 7) / 8;
    const std::vector<uint8_t> blocks =
        SplitMix64Bytes(seed, static_cast<size_t>(bw) * ((h + 7) / 8) * 3);
    image.rgb.resize(n);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < 3; ++c) {
          image.rgb[(static_cast<size_t>(y) * w + x) * 3 + c] =
              blocks[(static_cast<size_t>(y / 8) * bw + x / 8) * 3 + c];
        }
      }
    }
    return image;
  }
  image.rgb = SplitMix64Bytes(seed, n);
  if (style == 1) {
    for (uint8_t& v : image.rgb) v = (v & 1) ? 255 : 0;
  }
  return image;
}

uint64_t Fnv1a64(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001B3ull;
  return h;
}

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  std::ifstream in(std::string(IRIS_TEST_DATA_DIR) + "/video_resize/cases.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Case c;
    std::string want;
    fields >> c.kind >> c.in_w >> c.in_h >> c.a >> c.b >> c.style >> c.seed >> want;
    if (!fields) {
      ADD_FAILURE() << "bad line in cases.txt: " << line;
      continue;
    }
    c.want = std::stoull(want, nullptr, 16);
    c.line = line;
    cases.push_back(c);
  }
  return cases;
}

// The bytes a case produces, row-major RGB.
std::vector<uint8_t> RunCase(const Case& c) {
  const Image frame = MakeFrame(c.in_w, c.in_h, c.style, c.seed);
  if (c.kind == 'R') return ResizeBicubicAntialias(frame, c.a, c.b).rgb;
  ImageProcessorConfig config;
  config.do_rescale = false;
  config.do_normalize = false;
  config.longest_edge = c.a;
  config.tile_size = c.b;
  Result<ProcessedImage> got = PreprocessVideoFrames({frame}, config);
  if (!got.ok()) {
    ADD_FAILURE() << c.line << ": " << got.status().ToString();
    return {};
  }
  // [1, 3, tile, tile] of uint8 values back to interleaved bytes.
  const size_t plane = static_cast<size_t>(c.b) * c.b;
  std::vector<uint8_t> out(plane * 3);
  for (size_t p = 0; p < plane; ++p) {
    for (int ch = 0; ch < 3; ++ch) {
      out[p * 3 + ch] = static_cast<uint8_t>(got->pixel_values[ch * plane + p]);
    }
  }
  return out;
}

TEST(VideoResizeTest, CasesCoverWhatTheyClaim) {
  const std::vector<Case> cases = LoadCases();
  EXPECT_GE(cases.size(), 300u);
  bool portrait_128 = false;
  int tiny = 0;
  int portrait = 0;
  int landscape = 0;
  int square = 0;
  int up = 0;
  int down = 0;
  for (const Case& c : cases) {
    if (c.kind == 'R' && c.in_w == 160 && c.in_h == 200 && c.a == 102 && c.b == 128) {
      portrait_128 = true;
    }
    if (c.in_w <= 2 || c.in_h <= 2) ++tiny;
    (c.in_w < c.in_h ? portrait : c.in_w > c.in_h ? landscape : square)++;
    if (c.kind == 'R') {
      if (c.a > c.in_w || c.b > c.in_h) ++up;
      if (c.a < c.in_w || c.b < c.in_h) ++down;
    }
  }
  EXPECT_TRUE(portrait_128);
  EXPECT_GE(tiny, 10);
  EXPECT_GE(portrait, 50);
  EXPECT_GE(landscape, 50);
  EXPECT_GE(square, 10);
  EXPECT_GE(up, 50);
  EXPECT_GE(down, 50);
}

TEST(VideoResizeTest, MatchesTorchBitForBit) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_FALSE(cases.empty()) << "no cases in " << IRIS_TEST_DATA_DIR << "/video_resize";
  int failed = 0;
  for (const Case& c : cases) {
    const uint64_t got = Fnv1a64(RunCase(c));
    if (got != c.want) {
      ++failed;
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016" PRIx64, got);
      ADD_FAILURE() << "case \"" << c.line << "\" gives " << hex;
    }
  }
  EXPECT_EQ(failed, 0) << "of " << cases.size() << " cases";
}

}  // namespace
}  // namespace iris::media
