// Video input for SmolVLM2: streaming decode with FFmpeg's libraries, the frame sampling
// of transformers' SmolVLMVideoProcessor, its frame preprocessing, and the <video> prompt.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/media/image.h"
#include "engine/media/image_processor.h"

namespace iris::media {

struct VideoMetadata {
  int64_t total_num_frames = 0;
  double fps = 0;       // native frame rate
  double duration = 0;  // seconds
  int width = 0;
  int height = 0;
};

struct VideoSamplingConfig {
  double fps = 1.0;     // video_sampling.fps
  int max_frames = 64;  // video_sampling.max_frames
};

// Frame indices transformers samples for a clip (smolvlm2.md §6.1, skip_secs = 0).
std::vector<int64_t> SampleFrameIndices(const VideoMetadata& metadata,
                                        const VideoSamplingConfig& config);

struct SampledVideo {
  VideoMetadata metadata;
  std::vector<int64_t> indices;
  std::vector<Image> frames;  // RGB, one per index, rotation metadata applied
};

// Decodes only the sampled frames of a video file (MP4/H.264, WebM/VP8/VP9, MOV, MKV,
// animated GIF), seeking where the container allows; memory is bounded by the sampled
// frames. Corrupt, truncated, zero-length, audio-only or unsupported input gives a clear
// Status; decoding is time-bounded.
Result<SampledVideo> LoadVideo(const std::string& path, const VideoSamplingConfig& config);

// SmolVLMVideoProcessor's preprocessing of sampled frames for a checkpoint (one tile per
// frame): [num_frames, 3, tile, tile] in ProcessedImage (rows = cols = 0).
Result<ProcessedImage> PreprocessVideoFrames(const std::vector<Image>& frames,
                                             const ImageProcessorConfig& config);

// torchvision's resize of a uint8 RGB frame with BICUBIC + antialias, as SmolVLMVideoProcessor
// runs it (torch's float32 kernel, clamp, round half to even), bit-exact with torch's AVX2
// kernels. width and height must be at least 1.
Image ResizeBicubicAntialias(const Image& image, int width, int height);

// The text that replaces <video>: intro with the frame count in English words and the
// H:MM:SS duration, one "\nFrame from MM:SS:" + image block per frame, and "\n\n".
std::string ExpandVideoPrompt(const std::vector<int64_t>& indices, double native_fps,
                              double duration_seconds, int image_seq_len);

}  // namespace iris::media
