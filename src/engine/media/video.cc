// SmolVLMVideoProcessor's frame sampling and preprocessing, and SmolVLMProcessor's <video>
// prompt expansion (smolvlm2.md §6); decoding lives in video_decode.cc.
#include "engine/media/video.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace iris::media {
namespace {

// English words for 0 <= n < 1,000,000 as num2words(n) writes them: "twenty-one",
// "one hundred and five", "one thousand, two hundred and thirty-four".
std::string NumberToWords(int64_t n) {
  static const char* const kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                                      "five",    "six",     "seven",     "eight",    "nine",
                                      "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                      "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char* const kTens[] = {"",      "",      "twenty",  "thirty", "forty",
                                      "fifty", "sixty", "seventy", "eighty", "ninety"};
  auto below_hundred = [&](int64_t v) -> std::string {
    if (v < 20) return kOnes[v];
    std::string s = kTens[v / 10];
    if (v % 10 != 0) s += std::string("-") + kOnes[v % 10];
    return s;
  };
  auto below_thousand = [&](int64_t v) -> std::string {
    if (v < 100) return below_hundred(v);
    std::string s = std::string(kOnes[v / 100]) + " hundred";
    if (v % 100 != 0) s += " and " + below_hundred(v % 100);
    return s;
  };
  if (n < 0 || n >= 1000000) return std::to_string(n);
  if (n < 1000) return below_thousand(n);
  std::string s = below_thousand(n / 1000) + " thousand";
  const int64_t rest = n % 1000;
  if (rest == 0) return s;
  return s + (rest < 100 ? " and " : ", ") + below_thousand(rest);
}

// Python's str(timedelta(seconds=s)) for s >= 0: "H:MM:SS", or "D day(s), H:MM:SS".
std::string FormatTimedelta(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  const int64_t days = seconds / 86400;
  const int64_t rest = seconds % 86400;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(rest / 3600),
                static_cast<long long>(rest / 60 % 60), static_cast<long long>(rest % 60));
  if (days == 0) return buf;
  return std::to_string(days) + (days == 1 ? " day, " : " days, ") + buf;
}

// ---- torch's antialiased bicubic resize (float path) -------------------------------------
//
// torchvision (0.14, torch 1.13, as used for the goldens) resizes a uint8 tensor by casting it
// to float32, calling interpolate(mode="bicubic", antialias=True, align_corners=False), i.e.
// torch's _upsample_bicubic2d_aa CPU kernel, then clamp(0, 255), round half to even and cast
// back. The kernel is separable (width first, then height; an unchanged side is skipped), and
// for output i with scale = in / out (float32):
//   center = scale * (i + 0.5), support = 2 * max(scale, 1),
//   taps j in [int(center - support + 0.5), int(center + support + 0.5)) clipped to [0, in),
//   w_j = K((j - center + 0.5) / max(scale, 1)) normalised to sum 1 (float32),
//   K = Keys cubic with a = -0.5.
// Which roundings happen is set by how GCC compiled that kernel for AVX2 (Debian's torch 1.13;
// its AVX-512 build rounds the same, its no-AVX build differently), and matching it bit for
// bit takes all three of these (aten/src/ATen/native/cpu/UpSampleKernel.cpp):
//  * K's argument is float32; K's |x| < 1 branch is evaluated in float64 (its constants are
//    double), but the 1 <= |x| < 2 branch, `(((x - 5) * x + 8) * x - 4) * a` with integer
//    constants, in float32 with its two multiply-adds fused.
//  * The weights are summed and divided in float32.
//  * Each output is `acc = x0 * w0; acc += xj * wj` (j = 1 ..) in float32. The compiler
//    vectorises the products of taps 1 .. in groups of four, so those products are rounded
//    before their (in-order) adds; only the (count - 1) % 4 taps left over at the end are
//    fused multiply-adds.

float CubicAaFilter(float xf) {
  const float x = xf < 0.0f ? -xf : xf;
  if (x < 1.0f) {
    const double xd = x;  // ((a + 2.0) * x - (a + 3.0)) * x * x + 1 with a = -0.5
    return static_cast<float>(std::fma(std::fma(1.5, xd, -2.5) * xd, xd, 1.0));
  }
  if (x < 2.0f) {
    const float t = std::fma(std::fma(x - 5.0f, x, 8.0f), x, -4.0f);
    return static_cast<float>(static_cast<double>(t) * -0.5);
  }
  return 0.0f;
}

// sum_j src[j * stride] * w[j] over n >= 1 taps, rounded as torch's kernel rounds it.
float TapSum(const float* src, size_t stride, const float* w, int n) {
  float acc = src[0] * w[0];
  const int rounded_end = 1 + (n - 1) / 4 * 4;
  int j = 1;
  for (; j < rounded_end; ++j) {
    const float product = src[j * stride] * w[j];
    acc += product;
  }
  for (; j < n; ++j) acc = std::fma(src[j * stride], w[j], acc);
  return acc;
}

struct AxisWeights {
  int taps = 0;                // weights per output (padded with zeros)
  std::vector<int> first;      // [out] first input index
  std::vector<int> count;      // [out] number of inputs used
  std::vector<float> weights;  // [out, taps]
};

AxisWeights ComputeAxisWeights(int in_size, int out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float support =
      static_cast<float>(scale >= 1.0f ? (4 * 0.5) * static_cast<double>(scale) : 4 * 0.5);
  AxisWeights aw;
  aw.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  aw.first.resize(out_size);
  aw.count.resize(out_size);
  aw.weights.assign(static_cast<size_t>(out_size) * aw.taps, 0.0f);
  const float invscale =
      scale >= 1.0f ? static_cast<float>(1.0 / static_cast<double>(scale)) : 1.0f;
  for (int i = 0; i < out_size; ++i) {
    const float center = static_cast<float>(static_cast<double>(scale) * (i + 0.5));
    const int64_t xmin =
        std::max<int64_t>(static_cast<int64_t>(static_cast<double>(center - support) + 0.5), 0);
    const int64_t xmax = std::min<int64_t>(
        static_cast<int64_t>(static_cast<double>(center + support) + 0.5), in_size);
    const int64_t xsize = std::max<int64_t>(xmax - xmin, 0);
    float* w = &aw.weights[static_cast<size_t>(i) * aw.taps];
    float total = 0.0f;
    for (int64_t j = 0; j < xsize && j < aw.taps; ++j) {
      const float d = static_cast<float>(j + xmin) - center;
      w[j] = CubicAaFilter(
          static_cast<float>((static_cast<double>(d) + 0.5) * static_cast<double>(invscale)));
      total += w[j];
    }
    for (int64_t j = 0; j < xsize && j < aw.taps; ++j) {
      if (total != 0.0f) w[j] /= total;
    }
    aw.first[i] = static_cast<int>(xmin);
    aw.count[i] = static_cast<int>(std::min<int64_t>(xsize, aw.taps));
  }
  return aw;
}

// Planar float resize of one channel plane along x then y, as torch runs it.
std::vector<float> ResizePlane(const std::vector<float>& in, int in_w, int in_h, int out_w,
                               int out_h) {
  std::vector<float> cur = in;
  int cur_w = in_w;
  if (out_w != in_w) {
    const AxisWeights aw = ComputeAxisWeights(in_w, out_w);
    std::vector<float> next(static_cast<size_t>(out_w) * in_h);
    for (int y = 0; y < in_h; ++y) {
      const float* row = &cur[static_cast<size_t>(y) * cur_w];
      for (int x = 0; x < out_w; ++x) {
        next[static_cast<size_t>(y) * out_w + x] = TapSum(
            row + aw.first[x], 1, &aw.weights[static_cast<size_t>(x) * aw.taps], aw.count[x]);
      }
    }
    cur.swap(next);
    cur_w = out_w;
  }
  if (out_h != in_h) {
    const AxisWeights aw = ComputeAxisWeights(in_h, out_h);
    std::vector<float> next(static_cast<size_t>(cur_w) * out_h);
    for (int y = 0; y < out_h; ++y) {
      const float* w = &aw.weights[static_cast<size_t>(y) * aw.taps];
      for (int x = 0; x < cur_w; ++x) {
        next[static_cast<size_t>(y) * cur_w + x] =
            TapSum(&cur[static_cast<size_t>(aw.first[y]) * cur_w + x], cur_w, w, aw.count[y]);
      }
    }
    cur.swap(next);
  }
  return cur;
}

}  // namespace

Image ResizeBicubicAntialias(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  const size_t in_plane = static_cast<size_t>(image.width) * image.height;
  std::vector<float> plane(in_plane);
  for (int c = 0; c < 3; ++c) {
    for (size_t p = 0; p < in_plane; ++p) plane[p] = image.rgb[p * 3 + c];
    const std::vector<float> res = ResizePlane(plane, image.width, image.height, width, height);
    for (size_t p = 0; p < res.size(); ++p) {
      const float v = std::clamp(res[p], 0.0f, 255.0f);
      out.rgb[p * 3 + c] = static_cast<uint8_t>(std::nearbyint(v));
    }
  }
  return out;
}

namespace {

// video_processing_smolvlm.get_resize_output_image_size: the longest edge becomes
// min(4096, longest_edge), the other side is truncated and rounded up to even.
void VideoResizeSize(int height, int width, int longest_edge, int& out_h, int& out_w) {
  const int max_side = std::min(4096, longest_edge);
  const double aspect = static_cast<double>(width) / height;
  if (width >= height) {
    out_w = max_side;
    out_h = static_cast<int>(out_w / aspect);
    if (out_h % 2 != 0) ++out_h;
  } else {
    out_h = max_side;
    out_w = static_cast<int>(out_h * aspect);
    if (out_w % 2 != 0) ++out_w;
  }
  out_h = std::max(out_h, 1);
  out_w = std::max(out_w, 1);
}

}  // namespace

std::vector<int64_t> SampleFrameIndices(const VideoMetadata& metadata,
                                        const VideoSamplingConfig& config) {
  std::vector<int64_t> indices;
  const int64_t total = metadata.total_num_frames;
  if (total <= 0) return indices;
  // int(round(fps * duration)): Python rounds half to even, as nearbyint does by default.
  const double estimated_d = std::nearbyint(config.fps * metadata.duration);
  int64_t estimated = std::isfinite(estimated_d) && estimated_d > 0
                          ? static_cast<int64_t>(std::min(estimated_d, 1e15))
                          : 0;
  const int64_t desired = std::max<int64_t>(1, std::min<int64_t>(estimated, config.max_frames));
  // numpy.linspace(0, total - 1, desired) in float64: i * step, the last value exactly stop.
  const double stop = static_cast<double>(total - 1);
  for (int64_t i = 0; i < desired; ++i) {
    double v = 0.0;
    if (desired > 1) {
      const double step = stop / static_cast<double>(desired - 1);
      v = (i == desired - 1) ? stop : static_cast<double>(i) * step;
    }
    const int64_t idx = static_cast<int64_t>(v);  // astype(int) truncates
    if (indices.empty() || indices.back() != idx) indices.push_back(idx);
  }
  // linspace is non-decreasing, so removing adjacent duplicates is numpy.unique.
  return indices;
}

Result<ProcessedImage> PreprocessVideoFrames(const std::vector<Image>& frames,
                                             const ImageProcessorConfig& config) {
  if (frames.empty()) return InvalidArgument("video preprocessing: no frames");
  if (config.tile_size <= 0 || config.longest_edge <= 0) {
    return InvalidArgument("video preprocessing: tile_size and longest_edge must be positive");
  }
  const int tile = config.tile_size;
  ProcessedImage out;
  out.rows = 0;
  out.cols = 0;
  out.num_tiles = static_cast<int>(frames.size());
  out.tile_size = tile;
  const size_t plane = static_cast<size_t>(tile) * tile;
  out.pixel_values.resize(frames.size() * 3 * plane);
  // transformers fuses rescale and normalise: mean' = mean / rescale, std' = std / rescale,
  // then (x - mean') / std' in float32 on the uint8 values.
  float mean[3];
  float std_dev[3];
  float rescale = static_cast<float>(config.rescale_factor);
  for (int c = 0; c < 3; ++c) {
    mean[c] = static_cast<float>(config.image_mean[c] * (1.0 / config.rescale_factor));
    std_dev[c] = static_cast<float>(config.image_std[c] * (1.0 / config.rescale_factor));
  }
  for (size_t f = 0; f < frames.size(); ++f) {
    IRIS_RETURN_IF_ERROR(ValidateImage(frames[f]));
    Image img = frames[f];
    if (config.do_resize) {
      int h = 0;
      int w = 0;
      VideoResizeSize(img.height, img.width, config.longest_edge, h, w);
      img = ResizeBicubicAntialias(img, w, h);
      img = ResizeBicubicAntialias(img, tile, tile);
    } else if (img.width != tile || img.height != tile) {
      return InvalidArgument("video preprocessing: do_resize is off and frame " +
                             std::to_string(f) + " is not " + std::to_string(tile) + "x" +
                             std::to_string(tile));
    }
    float* dst = &out.pixel_values[f * 3 * plane];
    for (int c = 0; c < 3; ++c) {
      for (size_t p = 0; p < plane; ++p) {
        float v = static_cast<float>(img.rgb[p * 3 + c]);
        if (config.do_rescale && config.do_normalize) {
          v = (v - mean[c]) / std_dev[c];
        } else if (config.do_rescale) {
          v = v * rescale;
        } else if (config.do_normalize) {
          v = (v - config.image_mean[c]) / config.image_std[c];
        }
        dst[c * plane + p] = v;
      }
    }
  }
  return out;
}

std::string ExpandVideoPrompt(const std::vector<int64_t>& indices, double native_fps,
                              double duration_seconds, int image_seq_len) {
  const int64_t duration = std::isfinite(duration_seconds) && duration_seconds > 0
                               ? static_cast<int64_t>(std::min(duration_seconds, 1e15))
                               : 0;
  std::string out = "You are provided the following series of " +
                    NumberToWords(static_cast<int64_t>(indices.size())) + " frames from a " +
                    FormatTimedelta(duration) + " [H:MM:SS] video.\n";
  const std::string block = ExpandImagePrompt(0, 0, image_seq_len);
  for (int64_t idx : indices) {
    const double sec = native_fps > 0 ? static_cast<double>(idx) / native_fps : 0.0;
    // Python: int(sec // 60), int(sec % 60) on non-negative floats.
    const double mod = std::fmod(sec, 60.0);
    const double minutes = std::floor((sec - mod) / 60.0);
    char buf[64];
    std::snprintf(buf, sizeof(buf), "\nFrame from %02lld:%02lld:", static_cast<long long>(minutes),
                  static_cast<long long>(mod));
    out += buf;
    out += block;
  }
  out += "\n\n";
  return out;
}

}  // namespace iris::media
