// SmolVLMImageProcessor (the slow PIL path) and SmolVLMProcessor's prompt expansion: an
// image becomes rows × cols tiles plus a global tile of normalised pixel values, and its
// <image> placeholder becomes the exact token string transformers builds.
#pragma once

#include <string>
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
  int longest_edge = 2048;    // size.longest_edge
  int tile_size = 512;        // max_image_size.longest_edge
  int resample = 1;           // PIL code; 1 = LANCZOS (the only one the checkpoints use)
  double rescale_factor = 1.0 / 255.0;
  float image_mean[3] = {0.5f, 0.5f, 0.5f};
  float image_std[3] = {0.5f, 0.5f, 0.5f};
  int image_seq_len = 64;     // processor_config.json; tokens per tile
};

// Reads DIR/preprocessor_config.json (and image_seq_len from processor_config.json).
Result<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& dir);

struct ProcessedImage {
  int rows = 0;  // 0 × 0 when not split
  int cols = 0;
  int num_tiles = 0;                // rows * cols + 1 (global last), or 1
  int tile_size = 0;
  std::vector<float> pixel_values;  // [num_tiles, 3, tile_size, tile_size]
};

// The processor's output for one image, bit-exact with transformers' slow path.
Result<ProcessedImage> PreprocessImage(const Image& image, const ImageProcessorConfig& config);

// The text that replaces one <image> placeholder (smolvlm2.md §4.1).
std::string ExpandImagePrompt(int rows, int cols, int image_seq_len);

}  // namespace iris::media
