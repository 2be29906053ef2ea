// SmolVLMImageProcessor's slow (PIL/numpy) path and SmolVLMProcessor's <image> expansion,
// mirroring transformers' image_processing_smolvlm.py and processing_smolvlm.py
// (smolvlm2.md §3.2, §4.1).
#include "engine/media/image_processor.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "base/check.h"
#include "base/json.h"

namespace iris::media {
namespace {

namespace json = boost::json;

// transformers' MAX_IMAGE_SIZE: no side may exceed this after the longest-edge resize.
constexpr int kMaxImageSize = 4096;
// Sanity bounds for sizes read from a config.
constexpr int kMaxConfigEdge = 16384;

std::string KeyError(std::string_view what, std::string_view key, std::string_view expected) {
  return std::string(what) + ": \"" + std::string(key) + "\" must be " + std::string(expected);
}

Status ReadBool(const json::object& o, std::string_view key, std::string_view what, bool& out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return OkStatus();
  if (!v->is_bool()) return InvalidArgument(KeyError(what, key, "true or false"));
  out = v->get_bool();
  return OkStatus();
}

// An integer JSON value in [lo, hi].
Status ReadIntValue(const json::value& v, std::string_view key, std::string_view what, int lo,
                    int hi, int& out) {
  int64_t n = 0;
  if (v.is_int64()) {
    n = v.get_int64();
  } else if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v.get_uint64());
  } else {
    return InvalidArgument(KeyError(what, key, "an integer"));
  }
  if (n < lo || n > hi) {
    return InvalidArgument(KeyError(
        what, key,
        "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(n)));
  }
  out = static_cast<int>(n);
  return OkStatus();
}

Status ReadNumberValue(const json::value& v, std::string_view key, std::string_view what,
                       double& out) {
  if (v.is_double()) {
    out = v.get_double();
  } else if (v.is_int64()) {
    out = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    out = static_cast<double>(v.get_uint64());
  } else {
    return InvalidArgument(KeyError(what, key, "a number"));
  }
  return OkStatus();
}

// {"longest_edge": N}.
Status ReadLongestEdge(const json::object& o, std::string_view key, std::string_view what,
                       int& out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return OkStatus();
  const std::string full_key = std::string(key) + ".longest_edge";
  if (!v->is_object()) return InvalidArgument(KeyError(what, key, "an object"));
  const json::value* edge = v->get_object().if_contains("longest_edge");
  if (edge == nullptr) {
    return InvalidArgument(KeyError(what, full_key, "present (SmolVLM sizes are longest_edge)"));
  }
  return ReadIntValue(*edge, full_key, what, 1, kMaxConfigEdge, out);
}

// A number (broadcast) or an array of 3 numbers.
Status ReadTriple(const json::object& o, std::string_view key, std::string_view what,
                  float (&out)[3]) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return OkStatus();
  double values[3];
  if (v->is_array()) {
    const json::array& a = v->get_array();
    if (a.size() != 3) return InvalidArgument(KeyError(what, key, "an array of 3 numbers"));
    for (int c = 0; c < 3; ++c) IRIS_RETURN_IF_ERROR(ReadNumberValue(a[c], key, what, values[c]));
  } else {
    IRIS_RETURN_IF_ERROR(ReadNumberValue(*v, key, what, values[0]));
    values[1] = values[2] = values[0];
  }
  // numpy casts the list to the image's float32 dtype before (x - mean) / std.
  for (int c = 0; c < 3; ++c) out[c] = static_cast<float>(values[c]);
  return OkStatus();
}

Status ValidateConfig(const ImageProcessorConfig& c) {
  if (c.longest_edge < 1 || c.longest_edge > kMaxConfigEdge) {
    return InvalidArgument("image processor: longest_edge " + std::to_string(c.longest_edge) +
                           " is out of range");
  }
  if (c.tile_size < 1 || c.tile_size > kMaxConfigEdge) {
    return InvalidArgument("image processor: tile_size " + std::to_string(c.tile_size) +
                           " is out of range");
  }
  if (c.resample != 1) {
    return Unimplemented("image processor: resample " + std::to_string(c.resample) +
                         " is not supported (only 1 = LANCZOS)");
  }
  return OkStatus();
}

// _resize_output_size_rescale_to_max_len then _resize_output_size_scale_below_upper_bound:
// the long side becomes max_len, the other keeps the aspect (truncated, then made even).
void LongestEdgeSize(int height, int width, int max_len, int* out_height, int* out_width) {
  double aspect = static_cast<double>(width) / height;
  if (width >= height) {
    width = max_len;
    height = static_cast<int>(width / aspect);
    if (height % 2 != 0) ++height;
  } else {
    height = max_len;
    width = static_cast<int>(height * aspect);
    if (width % 2 != 0) ++width;
  }
  height = std::max(height, 1);
  width = std::max(width, 1);

  aspect = static_cast<double>(width) / height;
  if (width >= height && width > kMaxImageSize) {
    width = kMaxImageSize;
    height = static_cast<int>(width / aspect);
  } else if (height > width && height > kMaxImageSize) {
    height = kMaxImageSize;
    width = static_cast<int>(height * aspect);
  }
  *out_height = std::max(height, 1);
  *out_width = std::max(width, 1);
}

int CeilToMultiple(int v, int m) { return (v + m - 1) / m * m; }

// A (x - tile) square of `image` starting at (x0, y0), written channels-first as floats.
void WriteTile(const Image& image, int x0, int y0, int tile, const float (&lut)[3][256],
               float* out) {
  const size_t plane = static_cast<size_t>(tile) * tile;
  for (int y = 0; y < tile; ++y) {
    const uint8_t* src = image.rgb.data() + (static_cast<size_t>(y0 + y) * image.width + x0) * 3;
    float* r = out + static_cast<size_t>(y) * tile;
    float* g = r + plane;
    float* b = g + plane;
    for (int x = 0; x < tile; ++x) {
      r[x] = lut[0][src[3 * x + 0]];
      g[x] = lut[1][src[3 * x + 1]];
      b[x] = lut[2][src[3 * x + 2]];
    }
  }
}

}  // namespace

Status ApplyPreprocessorConfig(const json::value& value, std::string_view what,
                               ImageProcessorConfig& config) {
  if (!value.is_object()) return InvalidArgument(std::string(what) + ": expected a JSON object");
  const json::object& o = value.get_object();
  IRIS_RETURN_IF_ERROR(ReadBool(o, "do_convert_rgb", what, config.do_convert_rgb));
  IRIS_RETURN_IF_ERROR(ReadBool(o, "do_resize", what, config.do_resize));
  IRIS_RETURN_IF_ERROR(ReadBool(o, "do_image_splitting", what, config.do_image_splitting));
  IRIS_RETURN_IF_ERROR(ReadBool(o, "do_rescale", what, config.do_rescale));
  IRIS_RETURN_IF_ERROR(ReadBool(o, "do_normalize", what, config.do_normalize));
  IRIS_RETURN_IF_ERROR(ReadLongestEdge(o, "size", what, config.longest_edge));
  IRIS_RETURN_IF_ERROR(ReadLongestEdge(o, "max_image_size", what, config.tile_size));
  if (const json::value* v = o.if_contains("resample")) {
    IRIS_RETURN_IF_ERROR(ReadIntValue(*v, "resample", what, 0, 5, config.resample));
    if (config.resample != 1) {
      return Unimplemented(std::string(what) + ": \"resample\" " + std::to_string(config.resample) +
                           " is not supported (only 1 = LANCZOS, as in every SmolVLM2 repo)");
    }
  }
  if (const json::value* v = o.if_contains("rescale_factor")) {
    IRIS_RETURN_IF_ERROR(ReadNumberValue(*v, "rescale_factor", what, config.rescale_factor));
  }
  IRIS_RETURN_IF_ERROR(ReadTriple(o, "image_mean", what, config.image_mean));
  IRIS_RETURN_IF_ERROR(ReadTriple(o, "image_std", what, config.image_std));
  return OkStatus();
}

Result<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& dir) {
  ImageProcessorConfig config;
  const std::string preprocessor_path = dir + "/preprocessor_config.json";
  IRIS_ASSIGN_OR_RETURN(json::value preprocessor, ReadJsonFile(preprocessor_path));
  IRIS_RETURN_IF_ERROR(ApplyPreprocessorConfig(preprocessor, preprocessor_path, config));

  const std::string processor_path = dir + "/processor_config.json";
  IRIS_ASSIGN_OR_RETURN(json::value processor, ReadJsonFile(processor_path));
  if (!processor.is_object()) return InvalidArgument(processor_path + ": expected a JSON object");
  const json::value* seq_len = processor.get_object().if_contains("image_seq_len");
  // transformers would fall back to SmolVLMProcessor's default (169), which fits no SmolVLM2
  // checkpoint; a missing key is an error instead.
  if (seq_len == nullptr) return InvalidArgument(processor_path + ": \"image_seq_len\" is missing");
  IRIS_RETURN_IF_ERROR(
      ReadIntValue(*seq_len, "image_seq_len", processor_path, 1, 1 << 16, config.image_seq_len));
  return config;
}

Result<ResizePlan> PlanResize(int height, int width, const ImageProcessorConfig& config) {
  IRIS_RETURN_IF_ERROR(ValidateConfig(config));
  if (height <= 0 || width <= 0) return InvalidArgument("image has an empty side");
  ResizePlan plan;
  plan.resized_height = height;
  plan.resized_width = width;
  if (config.do_resize) {
    LongestEdgeSize(height, width, config.longest_edge, &plan.resized_height, &plan.resized_width);
  }
  // resize_for_vision_encoder: the long side rounds up to a multiple of the tile, the other
  // follows the aspect (truncated) and then rounds up too (the image may stretch).
  const int m = config.tile_size;
  const int h = plan.resized_height, w = plan.resized_width;
  const double aspect = static_cast<double>(w) / h;
  if (w >= h) {
    plan.encoder_width = CeilToMultiple(w, m);
    plan.encoder_height = CeilToMultiple(static_cast<int>(plan.encoder_width / aspect), m);
  } else {
    plan.encoder_height = CeilToMultiple(h, m);
    plan.encoder_width = CeilToMultiple(static_cast<int>(plan.encoder_height * aspect), m);
  }
  if (plan.encoder_height <= 0 || plan.encoder_width <= 0) {
    return InvalidArgument("image of " + std::to_string(width) + "x" + std::to_string(height) +
                           " has an aspect ratio the processor cannot tile");
  }
  return plan;
}

Result<ProcessedImage> PreprocessImage(const Image& image, const ImageProcessorConfig& config) {
  IRIS_RETURN_IF_ERROR(ValidateImage(image));
  IRIS_ASSIGN_OR_RETURN(ResizePlan plan, PlanResize(image.height, image.width, config));
  const int tile = config.tile_size;

  // Each step resizes the previous step's uint8 result, as HF does (smolvlm2.md §3.3); PIL
  // returns the image unchanged when the size already matches.
  Image resized, encoder, global;
  auto resize = [](const Image* from, int width, int height, Image& storage) {
    if (from->width == width && from->height == height) return from;
    storage = ResizeLanczos(*from, width, height);
    return static_cast<const Image*>(&storage);
  };
  const Image* current = resize(&image, plan.resized_width, plan.resized_height, resized);
  ProcessedImage out;
  out.tile_size = tile;
  struct TileSource {
    const Image* image;
    int x0, y0;
  };
  std::vector<TileSource> tiles;
  if (config.do_image_splitting) {
    current = resize(current, plan.encoder_width, plan.encoder_height, encoder);
    if (current->height > tile || current->width > tile) {
      // split_image: crops of ceil(side / n) pixels, which is exactly `tile` here because both
      // sides are multiples of it; then the whole image resized to tile x tile, last.
      out.rows = (current->height + tile - 1) / tile;
      out.cols = (current->width + tile - 1) / tile;
      for (int r = 0; r < out.rows; ++r) {
        for (int c = 0; c < out.cols; ++c) tiles.push_back({current, c * tile, r * tile});
      }
      tiles.push_back({resize(current, tile, tile, global), 0, 0});
    } else {
      IRIS_CHECK(current->width == tile && current->height == tile);  // PlanResize's multiples
      tiles.push_back({current, 0, 0});
    }
  } else {
    tiles.push_back({resize(current, tile, tile, global), 0, 0});
  }

  // rescale: float32(float64(u8) * rescale_factor); normalize: (v - mean) / std in float32.
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float x = config.do_rescale
                    ? static_cast<float>(static_cast<double>(v) * config.rescale_factor)
                    : static_cast<float>(v);
      if (config.do_normalize) x = (x - config.image_mean[c]) / config.image_std[c];
      lut[c][v] = x;
    }
  }
  out.num_tiles = static_cast<int>(tiles.size());
  const size_t tile_floats = static_cast<size_t>(3) * tile * tile;
  out.pixel_values.resize(tile_floats * tiles.size());
  for (size_t i = 0; i < tiles.size(); ++i) {
    WriteTile(*tiles[i].image, tiles[i].x0, tiles[i].y0, tile, lut,
              out.pixel_values.data() + i * tile_floats);
  }
  return out;
}

std::string ExpandImagePrompt(int rows, int cols, int image_seq_len) {
  constexpr std::string_view kFake = "<fake_token_around_image>";
  constexpr std::string_view kGlobal = "<global-img>";
  constexpr std::string_view kImage = "<image>";
  std::string image_tokens;
  image_tokens.reserve(kImage.size() * std::max(image_seq_len, 0));
  for (int i = 0; i < image_seq_len; ++i) image_tokens += kImage;

  std::string text;
  if (rows <= 0 && cols <= 0) {
    // _prompt_single_image
    text.append(kFake).append(kGlobal).append(image_tokens).append(kFake);
    return text;
  }
  // _prompt_split_image: no closing <fake> after a crop; "\n" ends each row and another
  // "\n" starts the global part.
  for (int r = 1; r <= rows; ++r) {
    for (int c = 1; c <= cols; ++c) {
      text.append(kFake);
      text += "<row_" + std::to_string(r) + "_col_" + std::to_string(c) + ">";
      text += image_tokens;
    }
    text += "\n";
  }
  text += "\n";
  text.append(kFake).append(kGlobal).append(image_tokens).append(kFake);
  return text;
}

}  // namespace iris::media
