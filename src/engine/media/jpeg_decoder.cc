// JPEG through libjpeg(-turbo) with the library defaults Pillow uses (islow IDCT, fancy
// upsampling), so the pixels match PIL.Image.open(...).convert("RGB") on the same library.
// libjpeg reports errors by calling error_exit, which must not return: ours longjmps back.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

// clang-format off
#include <jpeglib.h>  // needs <cstdio> (FILE, size_t) first
#include <jerror.h>
// clang-format on

#include "engine/media/decoders.h"

namespace iris::media::internal {
namespace {

// A progressive file can hold any number of scans, each a pass over the whole image; cap them
// (libjpeg-turbo's TurboJPEG API suggests the same limit) so a tiny file cannot cost minutes.
constexpr int kMaxScans = 500;

struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  bool truncated = false;
  bool too_many_scans = false;
  bool header_done = false;
  DecodedImage image;
  std::vector<uint8_t> row;
};

JpegState* StateOf(j_common_ptr cinfo) { return reinterpret_cast<JpegState*>(cinfo->client_data); }

[[noreturn]] void OnError(j_common_ptr cinfo) {
  JpegState* s = StateOf(cinfo);
  (*cinfo->err->format_message)(cinfo, s->message);
  std::longjmp(s->jump, 1);
}

// Warnings are ignored as Pillow ignores them, except running out of data: Pillow refuses a
// truncated file ("image file is truncated") where libjpeg would pad it with grey.
void OnMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0 || cinfo->err->msg_code != JWRN_JPEG_EOF) return;
  JpegState* s = StateOf(cinfo);
  s->truncated = true;
  std::longjmp(s->jump, 1);
}

void OnOutput(j_common_ptr) {}

void OnProgress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    JpegState* s = StateOf(cinfo);
    s->too_many_scans = true;
    std::longjmp(s->jump, 1);
  }
}

void ReadOrientation(const jpeg_decompress_struct& cinfo, DecodedImage& image) {
  static constexpr char kExif[] = "Exif\0\0";
  static constexpr char kXmp[] = "http://ns.adobe.com/xap/1.0/";
  int exif = 0, xmp = 0;
  bool seen_exif = false;
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker != JPEG_APP0 + 1) continue;
    if (!seen_exif && m->data_length >= 6 && std::memcmp(m->data, kExif, 6) == 0) {
      // Pillow keeps the first EXIF segment.
      seen_exif = true;
      exif = ExifOrientation({m->data, m->data_length});
    } else if (xmp == 0 && m->data_length > sizeof(kXmp) &&
               std::memcmp(m->data, kXmp, sizeof(kXmp)) == 0) {
      xmp = XmpOrientation(std::string_view(reinterpret_cast<const char*>(m->data) + sizeof(kXmp),
                                            m->data_length - sizeof(kXmp)));
    }
  }
  image.orientation = exif != 0 ? exif : xmp;
}

// Pillow opens 4-component JPEGs as CMYK with Adobe polarity (stored values inverted) and
// converts to RGB with cmyk2rgb: nk = 255 - k; c' = clip(nk - c * nk / 255) with its
// rounding division by 255.
inline uint8_t MulDiv255(int a, int b) {
  const int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

void CmykRowToRgb(const uint8_t* in, int width, uint8_t* out) {
  for (int x = 0; x < width; ++x, in += 4, out += 3) {
    const int c = 255 - in[0], m = 255 - in[1], y = 255 - in[2], k = 255 - in[3];
    const int nk = 255 - k;
    out[0] = static_cast<uint8_t>(std::clamp(nk - MulDiv255(c, nk), 0, 255));
    out[1] = static_cast<uint8_t>(std::clamp(nk - MulDiv255(m, nk), 0, 255));
    out[2] = static_cast<uint8_t>(std::clamp(nk - MulDiv255(y, nk), 0, 255));
  }
}

}  // namespace

Result<DecodedImage> DecodeJpeg(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  // Everything libjpeg or the callbacks touch lives on the heap: locals changed between
  // setjmp and longjmp would be indeterminate afterwards.
  auto s = std::make_unique<JpegState>();
  jpeg_decompress_struct* cinfo = &s->cinfo;
  cinfo->err = jpeg_std_error(&s->err);
  s->err.error_exit = OnError;
  s->err.emit_message = OnMessage;
  s->err.output_message = OnOutput;
  if (setjmp(s->jump) != 0) {
    jpeg_destroy_decompress(cinfo);
    if (s->truncated) return DataLoss("JPEG data is truncated");
    if (s->too_many_scans) {
      return InvalidArgument("JPEG has more than " + std::to_string(kMaxScans) + " scans");
    }
    const std::string message = std::string("corrupt JPEG: ") + s->message;
    return s->header_done ? DataLoss(message) : InvalidArgument(message);
  }
  jpeg_create_decompress(cinfo);
  cinfo->client_data = s.get();
  s->progress.progress_monitor = OnProgress;
  cinfo->progress = &s->progress;
  jpeg_mem_src(cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(cinfo, TRUE);
  s->header_done = true;

  Status dims = CheckDimensions(cinfo->image_width, cinfo->image_height, options, "JPEG");
  if (!dims.ok()) {
    jpeg_destroy_decompress(cinfo);
    return dims;
  }
  // Pillow's modes by component count: 1 = L, 3 = RGB (libjpeg converts YCbCr), 4 = CMYK
  // (libjpeg converts YCCK); anything else is refused.
  bool cmyk = false;
  switch (cinfo->num_components) {
    case 1:
      cinfo->out_color_space = JCS_GRAYSCALE;
      break;
    case 3:
      cinfo->out_color_space = JCS_RGB;
      break;
    case 4:
      cinfo->out_color_space = JCS_CMYK;
      cmyk = true;
      break;
    default:
      jpeg_destroy_decompress(cinfo);
      return Unimplemented("JPEG with " + std::to_string(cinfo->num_components) +
                           " components is not supported");
  }
  ReadOrientation(*cinfo, s->image);
  jpeg_start_decompress(cinfo);

  DecodedImage& image = s->image;
  image.width = static_cast<int>(cinfo->output_width);
  image.height = static_cast<int>(cinfo->output_height);
  image.channels = 3;
  const size_t width = cinfo->output_width;
  image.pixels.resize(width * image.height * 3);
  s->row.resize(width * cinfo->output_components);
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* out = image.pixels.data() + static_cast<size_t>(cinfo->output_scanline) * width * 3;
    JSAMPROW row = cmyk || cinfo->output_components == 1 ? s->row.data() : out;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      jpeg_destroy_decompress(cinfo);
      return DataLoss("JPEG data is truncated");
    }
    if (cmyk) {
      CmykRowToRgb(row, image.width, out);
    } else if (cinfo->output_components == 1) {
      for (size_t x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
    }
  }
  // Trailing data after the last scanline (or a missing EOI) does not matter to Pillow either.
  jpeg_destroy_decompress(cinfo);
  return std::move(s->image);
}

}  // namespace iris::media::internal
