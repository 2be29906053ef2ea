// GIF through giflib's record-level API: only the first image is decompressed. Composition
// follows Pillow's GifImagePlugin for frame 0: the canvas is the logical screen grown to hold
// the frame, pixels outside the frame take the transparent index (else 0), and palette
// indices past the colour table map to grey (Pillow's palette starts as a grey ramp).
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "engine/media/decoders.h"

namespace iris::media::internal {
namespace {

struct Reader {
  std::span<const uint8_t> data;
  size_t pos = 0;
};

int Read(GifFileType* gif, GifByteType* out, int length) {
  auto* r = static_cast<Reader*>(gif->UserData);
  if (length <= 0) return 0;
  const size_t n = std::min(static_cast<size_t>(length), r->data.size() - r->pos);
  std::memcpy(out, r->data.data() + r->pos, n);
  r->pos += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

Status GifError(const GifFileType* gif, std::string_view what) {
  const char* detail = GifErrorString(gif->Error);
  return DataLoss("corrupt GIF (" + std::string(what) +
                  "): " + (detail != nullptr ? detail : "unknown error"));
}

}  // namespace

Result<DecodedImage> DecodeGif(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  Reader reader{bytes, 0};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&reader, Read, &error));
  if (gif == nullptr) {
    const char* detail = GifErrorString(error);
    return InvalidArgument(std::string("corrupt GIF header: ") +
                           (detail != nullptr ? detail : "unknown error"));
  }
  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) return GifError(gif.get(), "record");
    if (type == TERMINATE_RECORD_TYPE) return InvalidArgument("GIF contains no image");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) {
        return GifError(gif.get(), "extension");
      }
      // Graphic control: flags, delay (2 bytes), transparent index; the last one before the
      // image applies.
      if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && ext[0] >= 4) {
        transparent = (ext[1] & 1) != 0 ? ext[4] : -1;
      }
      while (ext != nullptr) {
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) {
          return GifError(gif.get(), "extension");
        }
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) return GifError(gif.get(), "image descriptor");
    break;
  }

  const GifImageDesc& desc = gif->Image;
  const int64_t left = desc.Left, top = desc.Top, fw = desc.Width, fh = desc.Height;
  if (fw <= 0 || fh <= 0) {
    return InvalidArgument("GIF frame has an empty size (" + std::to_string(fw) + "x" +
                           std::to_string(fh) + ")");
  }
  const int64_t width = std::max<int64_t>(gif->SWidth, left + fw);
  const int64_t height = std::max<int64_t>(gif->SHeight, top + fh);
  IRIS_RETURN_IF_ERROR(CheckDimensions(width, height, options, "GIF"));

  std::vector<uint8_t> indices(static_cast<size_t>(width) * height,
                               static_cast<uint8_t>(transparent >= 0 ? transparent : 0));
  std::vector<GifPixelType> line(static_cast<size_t>(fw));
  // Interlaced rows arrive in four passes: every 8th from 0, every 8th from 4, every 4th
  // from 2, every 2nd from 1.
  static constexpr int kStart[4] = {0, 4, 2, 1};
  static constexpr int kStep[4] = {8, 8, 4, 2};
  const int passes = desc.Interlace ? 4 : 1;
  for (int pass = 0; pass < passes; ++pass) {
    const int start = desc.Interlace ? kStart[pass] : 0;
    const int step = desc.Interlace ? kStep[pass] : 1;
    for (int64_t y = start; y < fh; y += step) {
      if (DGifGetLine(gif.get(), line.data(), static_cast<int>(fw)) == GIF_ERROR) {
        return GifError(gif.get(), "image data");
      }
      std::memcpy(&indices[static_cast<size_t>(top + y) * width + left], line.data(),
                  static_cast<size_t>(fw));
    }
  }

  const ColorMapObject* map = desc.ColorMap != nullptr ? desc.ColorMap : gif->SColorMap;
  uint8_t palette[256][3];
  for (int i = 0; i < 256; ++i)
    palette[i][0] = palette[i][1] = palette[i][2] = static_cast<uint8_t>(i);
  if (map != nullptr && map->Colors != nullptr) {
    for (int i = 0; i < std::min(map->ColorCount, 256); ++i) {
      palette[i][0] = map->Colors[i].Red;
      palette[i][1] = map->Colors[i].Green;
      palette[i][2] = map->Colors[i].Blue;
    }
  }

  DecodedImage image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  // A transparent index is alpha only when compositing; convert("RGB") keeps palette colours.
  image.channels = transparent >= 0 && options.alpha == AlphaMode::kCompositeOnWhite ? 4 : 3;
  image.pixels.resize(indices.size() * image.channels);
  uint8_t* out = image.pixels.data();
  for (uint8_t index : indices) {
    *out++ = palette[index][0];
    *out++ = palette[index][1];
    *out++ = palette[index][2];
    if (image.channels == 4) *out++ = index == transparent ? 0 : 255;
  }
  return image;
}

}  // namespace iris::media::internal
