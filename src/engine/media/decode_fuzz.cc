// libFuzzer harness: arbitrary bytes through DecodeImage and, when they decode, through
// PreprocessImage at a small tile size. Built with -DIRIS_BUILD_FUZZ=ON (Clang); seeds in
// tests/data/fuzz/image_corpus/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "engine/media/image.h"
#include "engine/media/image_processor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iris::media;
  DecodeOptions options;
  options.max_pixels = 1 << 20;  // keep each run fast; the limit itself is what is tested
  options.max_side = 8192;
  options.alpha = size % 2 == 0 ? AlphaMode::kCompositeOnWhite : AlphaMode::kDiscard;
  iris::Result<Image> image = DecodeImage(std::span<const uint8_t>(data, size), options);
  if (!image.ok()) {
    if (image.status().message().empty()) std::abort();
    return 0;
  }
  if (!ValidateImage(*image).ok()) std::abort();
  if (static_cast<int64_t>(image->width) * image->height > options.max_pixels) std::abort();

  ImageProcessorConfig config;
  config.longest_edge = 64;
  config.tile_size = 32;
  config.do_image_splitting = size % 3 != 0;
  iris::Result<ProcessedImage> processed = PreprocessImage(*image, config);
  if (!processed.ok()) return 0;
  const size_t tile_floats = static_cast<size_t>(3) * 32 * 32;
  if (processed->pixel_values.size() != tile_floats * processed->num_tiles) std::abort();
  if (processed->num_tiles != (processed->rows * processed->cols) + 1) std::abort();
  for (float v : processed->pixel_values) {
    if (!(v >= -1.0f && v <= 1.0f)) std::abort();
  }
  return 0;
}
