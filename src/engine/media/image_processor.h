// SmolVLMImageProcessor (the slow PIL path) and SmolVLMProcessor's prompt expansion: an
// image becomes rows × cols tiles plus a global tile of normalised pixel values, and its
// <image> placeholder becomes the exact token string transformers builds.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/media/image.h"

namespace iris::media {

struct ImageProcessorConfig {
  bool do_convert_rgb = true;
  bool do_resize = true;
  bool do_image_splitting = true;
  bool do_rescale = true;
  bool do_normalize = true;
  int longest_edge = 2048;  // size.longest_edge
  int tile_size = 512;      // max_image_size.longest_edge
  int resample = 1;         // PIL code; 1 = LANCZOS (the only one the checkpoints use)
  double rescale_factor = 1.0 / 255.0;
  float image_mean[3] = {0.5f, 0.5f, 0.5f};
  float image_std[3] = {0.5f, 0.5f, 0.5f};
  int image_seq_len = 64;  // processor_config.json; tokens per tile
};

// Reads DIR/preprocessor_config.json (and image_seq_len from processor_config.json). A missing
// file is NotFound naming it; a key of the wrong type or out of range is InvalidArgument naming
// the file and the key; a resample filter other than LANCZOS is Unimplemented.
Result<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& dir);

// Applies the keys of a parsed preprocessor_config.json to `config` (absent keys keep their
// value); `what` names the source in errors. LoadImageProcessorConfig's validation.
Status ApplyPreprocessorConfig(const boost::json::value& json, std::string_view what,
                               ImageProcessorConfig& config);

struct ProcessedImage {
  int rows = 0;  // 0 × 0 when not split
  int cols = 0;
  int num_tiles = 0;  // rows * cols + 1 (global last), or 1
  int tile_size = 0;
  std::vector<float> pixel_values;  // [num_tiles, 3, tile_size, tile_size]
};

// The processor's output for one image, bit-exact with transformers' slow path: up to three
// chained LANCZOS resizes (longest edge -> multiples of the tile -> global tile), crops in
// row-major order, global tile last, then rescale and normalise in float32. The image is
// already RGB (DecodeImage), so do_convert_rgb has nothing left to do. InvalidArgument for a
// malformed image or config, Unimplemented for a resample filter other than LANCZOS.
// Thread-safe; cost is dominated by the resizes (about 90 ms for a 1000x667 photo at the
// 256M/500M settings, 13 tiles, on one core).
Result<ProcessedImage> PreprocessImage(const Image& image, const ImageProcessorConfig& config);

// The sizes the slow processor resizes to, (height, width) as transformers computes them.
struct ResizePlan {
  int resized_height = 0;  // after the longest-edge resize (or the input size)
  int resized_width = 0;
  int encoder_height = 0;  // after resize_for_vision_encoder (multiples of tile_size)
  int encoder_width = 0;
};
// The encoder sizes are filled in even when do_image_splitting is off (then unused).
// InvalidArgument / Unimplemented for a bad config (as PreprocessImage), InvalidArgument when a
// side would become 0 (HF would fail inside PIL there too).
Result<ResizePlan> PlanResize(int height, int width, const ImageProcessorConfig& config);

// The text that replaces one <image> placeholder (smolvlm2.md §4.1).
std::string ExpandImagePrompt(int rows, int cols, int image_seq_len);

}  // namespace iris::media
