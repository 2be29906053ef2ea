// Pillow's LANCZOS resampling (libImaging/Resample.c, 8-bit path), reimplemented so that
// SmolVLM2's chain of uint8 resizes reproduces transformers' slow processor bit for bit.
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/check.h"
#include "engine/media/decoders.h"
#include "engine/media/image.h"

namespace iris::media {
namespace {

// Fixed-point fraction bits of the 8-bit path: 32 bits minus 8 for the pixel value minus 2
// for the headroom that Lanczos' negative lobes need.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kLanczosSupport = 3.0;
// Above this many coefficients (out_size * window), the horizontal pass computes each output
// column's window when it needs it instead of storing all of them.
constexpr int64_t kDefaultMaxStoredCoefficients = int64_t{1} << 22;

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

// K(t) = sinc(t) * sinc(t / 3) on [-3, 3), 0 elsewhere.
double Lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return Sinc(x) * Sinc(x / 3);
  return 0.0;
}

// The sampling geometry of one axis: for output index i the window starts at input
// first(i) and has count(i) taps; weights come from Window().
//
//   scale = in / out, filterscale = max(scale, 1), support = 3 * filterscale
//   center = (i + 0.5) * scale
//   first = max(int(center - support + 0.5), 0), last = min(int(center + support + 0.5), in)
//   w_j = K((j - center + 0.5) / filterscale), normalised to sum 1, then
//   fixed = int(w * 2^22 +- 0.5) (rounded half away from zero)
class Axis {
 public:
  Axis(int in_size, int out_size) : out_size_(out_size) {
    // Pillow passes the box as C floats: in1 - in0 is float(in_size).
    const float in0 = 0.0f;
    const float in1 = static_cast<float>(in_size);
    in_size_ = in_size;
    scale_ = static_cast<double>(in1 - in0) / out_size;
    filterscale_ = scale_ < 1.0 ? 1.0 : scale_;
    support_ = kLanczosSupport * filterscale_;
    max_taps_ = static_cast<int>(std::ceil(support_)) * 2 + 1;
  }

  int out_size() const { return out_size_; }
  int max_taps() const { return max_taps_; }

  // Fills weights[0, count) (fixed point) for output index i; returns the first input index.
  int Window(int i, int32_t* weights, int* count, std::vector<double>& scratch) const {
    const double center = 0.0 + (i + 0.5) * scale_;
    const double ss = 1.0 / filterscale_;
    // Pillow's truncating casts (not lround): part of the bit-exact contract.
    int xmin = static_cast<int>(center - support_ + 0.5);  // NOLINT(bugprone-incorrect-roundings)
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support_ + 0.5);  // NOLINT(bugprone-incorrect-roundings)
    if (xmax > in_size_) xmax = in_size_;
    xmax -= xmin;
    if (xmax < 0) xmax = 0;
    scratch.resize(static_cast<size_t>(xmax));
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = Lanczos((x + xmin - center + 0.5) * ss);
      scratch[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      double k = scratch[x];
      if (ww != 0.0) k /= ww;
      // Half away from zero, as Pillow's normalize_coeffs_8bpc.
      weights[x] = k < 0 ? static_cast<int32_t>(-0.5 + k * (1 << kPrecisionBits))
                         : static_cast<int32_t>(0.5 + k * (1 << kPrecisionBits));  // NOLINT
    }
    *count = xmax;
    return xmin;
  }

 private:
  int in_size_ = 0;
  int out_size_ = 0;
  double scale_ = 1.0;
  double filterscale_ = 1.0;
  double support_ = 0.0;
  int max_taps_ = 0;
};

inline uint8_t Clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Sums of |fixed weight| stay below 2^31 / 255 for Lanczos, so int32 accumulation (as in
// Pillow) cannot overflow.
inline void HorizontalPixel(const uint8_t* row, int first, int count, const int32_t* k,
                            uint8_t* out) {
  int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
  const uint8_t* p = row + static_cast<size_t>(first) * 3;
  for (int t = 0; t < count; ++t, p += 3) {
    s0 += p[0] * k[t];
    s1 += p[1] * k[t];
    s2 += p[2] * k[t];
  }
  out[0] = Clip8(s0);
  out[1] = Clip8(s1);
  out[2] = Clip8(s2);
}

Image ResizeHorizontal(const Image& in, int width, int64_t max_stored_coefficients) {
  const Axis axis(in.width, width);
  Image out;
  out.width = width;
  out.height = in.height;
  out.rgb.resize(static_cast<size_t>(width) * in.height * 3);
  const size_t in_stride = static_cast<size_t>(in.width) * 3;
  const size_t out_stride = static_cast<size_t>(width) * 3;
  std::vector<double> scratch;
  const int max_taps = axis.max_taps();
  if (static_cast<int64_t>(width) * max_taps <= max_stored_coefficients) {
    std::vector<int32_t> weights(static_cast<size_t>(width) * max_taps);
    std::vector<int> first(width), count(width);
    for (int x = 0; x < width; ++x) {
      first[x] = axis.Window(x, &weights[static_cast<size_t>(x) * max_taps], &count[x], scratch);
    }
    for (int y = 0; y < in.height; ++y) {
      const uint8_t* row = in.rgb.data() + y * in_stride;
      uint8_t* dst = out.rgb.data() + y * out_stride;
      for (int x = 0; x < width; ++x) {
        HorizontalPixel(row, first[x], count[x], &weights[static_cast<size_t>(x) * max_taps],
                        dst + static_cast<size_t>(x) * 3);
      }
    }
  } else {
    // Very long rows shrunk a lot (a strip a few pixels high): one window at a time.
    std::vector<int32_t> weights(max_taps);
    for (int x = 0; x < width; ++x) {
      int count = 0;
      const int first = axis.Window(x, weights.data(), &count, scratch);
      for (int y = 0; y < in.height; ++y) {
        HorizontalPixel(in.rgb.data() + y * in_stride, first, count, weights.data(),
                        out.rgb.data() + y * out_stride + static_cast<size_t>(x) * 3);
      }
    }
  }
  return out;
}

Image ResizeVertical(const Image& in, int height) {
  const Axis axis(in.height, height);
  Image out;
  out.width = in.width;
  out.height = height;
  const size_t stride = static_cast<size_t>(in.width) * 3;
  out.rgb.resize(stride * height);
  std::vector<double> scratch;
  std::vector<int32_t> weights(axis.max_taps());
  std::vector<int32_t> acc(stride);
  for (int y = 0; y < height; ++y) {
    int count = 0;
    const int first = axis.Window(y, weights.data(), &count, scratch);
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    // Integer sums are exact, so accumulating tap by tap over the whole row gives Pillow's
    // per-pixel result while vectorising.
    for (int t = 0; t < count; ++t) {
      const uint8_t* src = in.rgb.data() + static_cast<size_t>(first + t) * stride;
      const int32_t k = weights[t];
      for (size_t i = 0; i < stride; ++i) acc[i] += src[i] * k;
    }
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * stride;
    for (size_t i = 0; i < stride; ++i) dst[i] = Clip8(acc[i]);
  }
  return out;
}

}  // namespace

namespace internal {

// Pillow resizes horizontally first (when the width changes) into a uint8 image, then
// vertically (when the height changes); the same size gives a copy.
Image ResizeLanczos(const Image& image, int width, int height, int64_t max_stored_coefficients) {
  IRIS_CHECK(ValidateImage(image).ok());
  IRIS_CHECK(width > 0 && height > 0);
  if (width == image.width && height == image.height) return image;
  if (width == image.width) return ResizeVertical(image, height);
  Image horizontal = ResizeHorizontal(image, width, max_stored_coefficients);
  if (height == image.height) return horizontal;
  return ResizeVertical(horizontal, height);
}

}  // namespace internal

Status ValidateImage(const Image& image) {
  if (image.width <= 0 || image.height <= 0) {
    return InvalidArgument("image has size " + std::to_string(image.width) + "x" +
                           std::to_string(image.height) + "; both sides must be positive");
  }
  const uint64_t expected = static_cast<uint64_t>(image.width) * image.height * 3;
  if (image.rgb.size() != expected) {
    return InvalidArgument(
        "image " + std::to_string(image.width) + "x" + std::to_string(image.height) + " has " +
        std::to_string(image.rgb.size()) + " bytes of RGB, expected " + std::to_string(expected));
  }
  return OkStatus();
}

Image ResizeLanczos(const Image& image, int width, int height) {
  return internal::ResizeLanczos(image, width, height, kDefaultMaxStoredCoefficients);
}

}  // namespace iris::media
