// WebP through libwebp: still images with the simple decoder, animations through
// WebPAnimDecoder (first frame on its canvas, as Pillow's WebPImagePlugin does); EXIF and XMP
// chunks through the demuxer. Pillow opens a file without the alpha flag as RGB.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>
#include <memory>

#include "engine/media/decoders.h"

namespace iris::media::internal {
namespace {

struct DemuxDeleter {
  void operator()(WebPDemuxer* d) const { WebPDemuxDelete(d); }
};
struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};

int Orientation(const WebPDemuxer* demux) {
  WebPChunkIterator it;
  int orientation = 0;
  if (WebPDemuxGetChunk(demux, "EXIF", 1, &it)) {
    orientation = ExifOrientation({it.chunk.bytes, it.chunk.size});
    WebPDemuxReleaseChunkIterator(&it);
  }
  if (orientation == 0 && WebPDemuxGetChunk(demux, "XMP ", 1, &it)) {
    orientation = XmpOrientation(
        std::string_view(reinterpret_cast<const char*>(it.chunk.bytes), it.chunk.size));
    WebPDemuxReleaseChunkIterator(&it);
  }
  return orientation;
}

std::string StatusName(VP8StatusCode code) {
  switch (code) {
    case VP8_STATUS_OK:
      return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "not enough data";
  }
  return "unknown error";
}

}  // namespace

Result<DecodedImage> DecodeWebp(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status == VP8_STATUS_NOT_ENOUGH_DATA) {
    // A VP8X header alone still gives the canvas size: refuse a huge one as such.
    if (features.width > 0 && features.height > 0) {
      IRIS_RETURN_IF_ERROR(CheckDimensions(features.width, features.height, options, "WebP"));
    }
    return DataLoss("WebP data is truncated");
  }
  if (status != VP8_STATUS_OK) return InvalidArgument("corrupt WebP: " + StatusName(status));
  IRIS_RETURN_IF_ERROR(CheckDimensions(features.width, features.height, options, "WebP"));

  const WebPData data = {bytes.data(), bytes.size()};
  std::unique_ptr<WebPDemuxer, DemuxDeleter> demux(WebPDemux(&data));
  if (demux == nullptr) return DataLoss("corrupt or truncated WebP container");

  DecodedImage image;
  image.width = features.width;
  image.height = features.height;
  image.orientation = Orientation(demux.get());
  const size_t n = static_cast<size_t>(features.width) * features.height;

  if (features.has_animation) {
    WebPAnimDecoderOptions anim_options;
    if (!WebPAnimDecoderOptionsInit(&anim_options)) return Internal("libwebp version mismatch");
    anim_options.color_mode = MODE_RGBA;
    anim_options.use_threads = 0;
    std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> decoder(
        WebPAnimDecoderNew(&data, &anim_options));
    if (decoder == nullptr) return DataLoss("corrupt animated WebP");
    WebPAnimInfo info;
    if (!WebPAnimDecoderGetInfo(decoder.get(), &info) ||
        info.canvas_width != static_cast<uint32_t>(features.width) ||
        info.canvas_height != static_cast<uint32_t>(features.height)) {
      return DataLoss("corrupt animated WebP: inconsistent canvas size");
    }
    uint8_t* frame = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder.get(), &frame, &timestamp) || frame == nullptr) {
      return DataLoss("corrupt animated WebP: the first frame does not decode");
    }
    if (features.has_alpha) {
      image.channels = 4;
      image.pixels.assign(frame, frame + n * 4);
    } else {
      image.channels = 3;
      image.pixels.resize(n * 3);
      for (size_t i = 0; i < n; ++i) std::memcpy(&image.pixels[i * 3], frame + i * 4, 3);
    }
    return image;
  }

  image.channels = features.has_alpha ? 4 : 3;
  image.pixels.resize(n * image.channels);
  const int stride = features.width * image.channels;
  const uint8_t* ok = features.has_alpha
                          ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), image.pixels.data(),
                                               image.pixels.size(), stride)
                          : WebPDecodeRGBInto(bytes.data(), bytes.size(), image.pixels.data(),
                                              image.pixels.size(), stride);
  if (ok == nullptr) return DataLoss("corrupt or truncated WebP image data");
  return image;
}

}  // namespace iris::media::internal
