// LoadVideo: decodes only the frames SmolVLM2 samples from a video file with FFmpeg's
// libraries (libavformat demuxing, libavcodec decoding, libswscale conversion to RGB24).
//
// Strategy: read the container's frame count, rate and duration (counting packets when the
// container has no count), sample the indices, then decode forward, seeking to the keyframe
// before a wanted frame whenever it lies more than kSeekGapFrames ahead of the decoder. A
// frame's index comes from its timestamp ((pts - start) * fps, rounded) when timestamps exist,
// else from a running count. If the container's count was wrong (fewer frames decoded than
// announced), the indices are resampled from the real count and the file is decoded again
// sequentially. Only the sampled frames are kept, so memory is bounded by them.
//
// Colour: frames are converted to full-range RGB24 with the source's matrix (BT.601 unless the
// stream says BT.709 / BT.2020 / ...) and range (limited unless tagged full or yuvj*), bilinear
// chroma upsampling with accurate rounding -- what PyAV's to_ndarray("rgb24") does for tagged
// streams; untagged HD streams are treated as BT.601, as swscale does by default.
// Rotation: the display matrix's rotation (multiples of 90 degrees) is applied like ffmpeg's
// autorotate; flips in the matrix are ignored.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/time.h"
#include "engine/media/video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace iris::media {
namespace {

// Decoding a video (counting, seeking and decoding included) must finish within this time.
constexpr std::chrono::seconds kDecodeTimeLimit{120};
// A wanted frame further ahead than this is reached by seeking instead of decoding forward.
constexpr int64_t kSeekGapFrames = 48;
// Refuse frames larger than this (decompression bombs): 8K UHD is 33 Mpixel.
constexpr int64_t kMaxFramePixels = 64LL * 1024 * 1024;
// Packets the decoder may reject as invalid before the file counts as corrupt.
constexpr int kMaxInvalidPackets = 64;

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketCloser {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameCloser {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsCloser {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

int InterruptCallback(void* opaque) {
  const auto* deadline = static_cast<const SteadyClock::time_point*>(opaque);
  return SteadyClock::now() > *deadline ? 1 : 0;
}

int SwsColorspace(AVColorSpace cs) {
  switch (cs) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    default:
      return SWS_CS_ITU601;
  }
}

bool IsFullRange(const AVFrame& frame) {
  if (frame.color_range == AVCOL_RANGE_JPEG) return true;
  switch (frame.format) {
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
    case AV_PIX_FMT_YUVJ440P:
    case AV_PIX_FMT_YUVJ411P:
      return true;
    default:
      break;
  }
  // RGB, palette (GIF) and grey sources are full range already.
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
  return desc != nullptr && (desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) != 0;
}

// Rotates an RGB image clockwise by 90, 180 or 270 degrees.
Image Rotate(const Image& in, int degrees_clockwise) {
  if (degrees_clockwise == 0) return in;
  Image out;
  const bool swap = degrees_clockwise == 90 || degrees_clockwise == 270;
  out.width = swap ? in.height : in.width;
  out.height = swap ? in.width : in.height;
  out.rgb.resize(in.rgb.size());
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) {
      int ox = x;
      int oy = y;
      if (degrees_clockwise == 90) {
        ox = in.height - 1 - y;
        oy = x;
      } else if (degrees_clockwise == 180) {
        ox = in.width - 1 - x;
        oy = in.height - 1 - y;
      } else {  // 270
        ox = y;
        oy = in.width - 1 - x;
      }
      std::memcpy(&out.rgb[(static_cast<size_t>(oy) * out.width + ox) * 3],
                  &in.rgb[(static_cast<size_t>(y) * in.width + x) * 3], 3);
    }
  }
  return out;
}

class VideoReader {
 public:
  explicit VideoReader(std::string path) : path_(std::move(path)) {}

  Status Open(SteadyClock::time_point* deadline) {
    AVFormatContext* fmt = avformat_alloc_context();
    if (fmt == nullptr) return ResourceExhausted(path_ + ": cannot allocate a demuxer");
    fmt->interrupt_callback.callback = &InterruptCallback;
    fmt->interrupt_callback.opaque = deadline;
    deadline_ = deadline;
    int err = avformat_open_input(&fmt, path_.c_str(), nullptr, nullptr);
    if (err < 0) {  // avformat_open_input frees fmt on failure
      if (err == AVERROR(ENOENT)) return NotFound(path_ + ": no such file");
      if (TimedOut()) return TimeoutStatus();
      return InvalidArgument(path_ + ": not a readable video container (" + AvError(err) + ")");
    }
    fmt_.reset(fmt);
    err = avformat_find_stream_info(fmt, nullptr);
    if (err < 0) {
      if (TimedOut()) return TimeoutStatus();
      return InvalidArgument(path_ + ": cannot read stream info (" + AvError(err) + ")");
    }
    const AVCodec* codec = nullptr;
    stream_index_ = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_index_ == AVERROR_STREAM_NOT_FOUND) {
      return InvalidArgument(path_ + ": no video stream (audio-only or not a video)");
    }
    if (stream_index_ < 0 || codec == nullptr) {
      const AVStream* st = stream_index_ >= 0 ? fmt->streams[stream_index_] : nullptr;
      return Unimplemented(path_ + ": unsupported video codec" +
                           (st != nullptr
                                ? std::string(" '") + avcodec_get_name(st->codecpar->codec_id) + "'"
                                : std::string()));
    }
    stream_ = fmt->streams[stream_index_];
    // The file may hold attached pictures (cover art) as "video"; they are not a video.
    if ((stream_->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) {
      return InvalidArgument(path_ + ": no video stream (only an attached picture)");
    }
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
      if (static_cast<int>(i) != stream_index_) fmt->streams[i]->discard = AVDISCARD_ALL;
    }
    const AVCodecParameters* par = stream_->codecpar;
    if (par->width <= 0 || par->height <= 0) {
      return InvalidArgument(path_ + ": video stream has no frame size");
    }
    if (static_cast<int64_t>(par->width) * par->height > kMaxFramePixels) {
      return ResourceExhausted(path_ + ": frames of " + std::to_string(par->width) + "x" +
                               std::to_string(par->height) + " exceed the pixel limit");
    }
    AVCodecContext* ctx = avcodec_alloc_context3(codec);
    if (ctx == nullptr) return ResourceExhausted(path_ + ": cannot allocate a decoder");
    codec_.reset(ctx);
    err = avcodec_parameters_to_context(ctx, par);
    if (err < 0) return InvalidArgument(path_ + ": bad codec parameters (" + AvError(err) + ")");
    ctx->thread_count = 1;  // the engine's threads do the heavy work; keep decoding lean
    err = avcodec_open2(ctx, codec, nullptr);
    if (err < 0) {
      return Unimplemented(path_ + ": cannot open the '" + std::string(codec->name) +
                           "' decoder (" + AvError(err) + ")");
    }
    packet_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    if (!packet_ || !frame_) return ResourceExhausted(path_ + ": out of memory");

    // Rotation from the display matrix: ffmpeg's autorotate angle, clockwise.
    if (const uint8_t* matrix =
            av_stream_get_side_data(stream_, AV_PKT_DATA_DISPLAYMATRIX, nullptr)) {
      double theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
      if (std::isfinite(theta)) {
        theta -= 360.0 * std::floor(theta / 360.0 + 0.9 / 360.0);
        const int rounded = static_cast<int>(std::lround(theta / 90.0)) * 90 % 360;
        rotation_ = rounded;
      }
    }
    return OkStatus();
  }

  // Fills metadata from the container; counts packets when the frame count is missing.
  Status ReadMetadata(VideoMetadata& metadata) {
    AVRational rate = stream_->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = stream_->r_frame_rate;
    fps_ = (rate.num > 0 && rate.den > 0) ? av_q2d(rate) : 0.0;
    double duration = 0.0;
    if (stream_->duration > 0 && stream_->duration != AV_NOPTS_VALUE) {
      duration = static_cast<double>(stream_->duration) * av_q2d(stream_->time_base);
    } else if (fmt_->duration > 0 && fmt_->duration != AV_NOPTS_VALUE) {
      duration = static_cast<double>(fmt_->duration) / AV_TIME_BASE;
    }
    int64_t total = stream_->nb_frames;
    if (total <= 0) {
      IRIS_ASSIGN_OR_RETURN(total, CountPackets());
    }
    if (fps_ <= 0.0 && duration > 0.0) fps_ = static_cast<double>(total) / duration;
    if (duration <= 0.0 && fps_ > 0.0) duration = static_cast<double>(total) / fps_;
    metadata.total_num_frames = total;
    metadata.fps = fps_;
    metadata.duration = duration;
    const bool swap = rotation_ == 90 || rotation_ == 270;
    metadata.width = swap ? stream_->codecpar->height : stream_->codecpar->width;
    metadata.height = swap ? stream_->codecpar->width : stream_->codecpar->height;
    return OkStatus();
  }

  // Decodes the frames at `indices` (sorted, unique) into `frames`. Returns how many frames the
  // stream really had when it ended before the last wanted index (else -1) in `short_total`.
  Status Decode(const std::vector<int64_t>& indices, std::vector<Image>& frames,
                int64_t& short_total) {
    short_total = -1;
    frames.clear();
    frames.reserve(indices.size());
    int64_t counter = -1;       // index of the last decoded frame by count (sequential mode)
    bool counter_valid = true;  // false after a seek
    int64_t current = -1;       // index of the last decoded frame
    for (int64_t want : indices) {
      if (want - current > kSeekGapFrames && CanSeek()) {
        IRIS_RETURN_IF_ERROR(SeekTo(want));
        counter_valid = false;
      }
      bool got = false;
      while (!got) {
        IRIS_ASSIGN_OR_RETURN(bool have, NextFrame());
        if (!have) {
          if (counter_valid)
            short_total = counter + 1;
          else
            short_total = std::max<int64_t>(current + 1, 0);
          return OkStatus();
        }
        ++counter;
        const int64_t index = FrameIndex(counter_valid, counter);
        current = index;
        if (index >= want) {
          IRIS_ASSIGN_OR_RETURN(Image image, Convert());
          frames.push_back(Rotate(image, rotation_));
          got = true;
        }
      }
    }
    return OkStatus();
  }

  bool TimedOut() const { return deadline_ != nullptr && SteadyClock::now() > *deadline_; }
  Status TimeoutStatus() const {
    return ResourceExhausted(path_ + ": decoding took longer than " +
                             std::to_string(kDecodeTimeLimit.count()) + " s");
  }

 private:
  bool HasTimestamps() const {
    return fps_ > 0.0 && stream_->time_base.num > 0 && stream_->time_base.den > 0;
  }
  bool CanSeek() const {
    return HasTimestamps() && (fmt_->iformat->flags & AVFMT_NOTIMESTAMPS) == 0 &&
           fmt_->pb != nullptr && (fmt_->pb->seekable & AVIO_SEEKABLE_NORMAL) != 0;
  }
  int64_t StartPts() const {
    return stream_->start_time != AV_NOPTS_VALUE ? stream_->start_time : 0;
  }

  int64_t FrameIndex(bool counter_valid, int64_t counter) const {
    const int64_t pts = frame_->best_effort_timestamp;
    if (!counter_valid && pts != AV_NOPTS_VALUE && HasTimestamps()) {
      const double sec = static_cast<double>(pts - StartPts()) * av_q2d(stream_->time_base);
      return std::max<int64_t>(std::llround(sec * fps_), 0);
    }
    return counter;
  }

  Status SeekTo(int64_t index) {
    const double sec = static_cast<double>(index) / fps_;
    const int64_t ts =
        StartPts() + static_cast<int64_t>(std::floor(sec / av_q2d(stream_->time_base)));
    int err = av_seek_frame(fmt_.get(), stream_index_, ts, AVSEEK_FLAG_BACKWARD);
    if (err < 0) {
      if (TimedOut()) return TimeoutStatus();
      return DataLoss(path_ + ": cannot seek to frame " + std::to_string(index) + " (" +
                      AvError(err) + ")");
    }
    avcodec_flush_buffers(codec_.get());
    flushing_ = false;
    return OkStatus();
  }

  // Demuxes the whole video stream once to count its packets, then rewinds.
  Result<int64_t> CountPackets() {
    int64_t count = 0;
    while (true) {
      const int err = av_read_frame(fmt_.get(), packet_.get());
      if (err == AVERROR_EOF) break;
      if (err < 0) {
        if (TimedOut()) return TimeoutStatus();
        break;  // a truncated or damaged tail: count what was readable
      }
      if (packet_->stream_index == stream_index_) ++count;
      av_packet_unref(packet_.get());
    }
    const int err = avformat_seek_file(fmt_.get(), stream_index_, INT64_MIN, StartPts(), StartPts(),
                                       AVSEEK_FLAG_BACKWARD);
    if (err < 0) {
      return DataLoss(path_ + ": cannot rewind after counting frames (" + AvError(err) + ")");
    }
    avcodec_flush_buffers(codec_.get());
    return count;
  }

  // The next decoded frame in frame_, or false at the end of the stream.
  Result<bool> NextFrame() {
    while (true) {
      if (TimedOut()) return TimeoutStatus();
      int err = avcodec_receive_frame(codec_.get(), frame_.get());
      if (err == 0) {
        if (frame_->width <= 0 || frame_->height <= 0 ||
            static_cast<int64_t>(frame_->width) * frame_->height > kMaxFramePixels) {
          return DataLoss(path_ + ": decoded a frame of invalid size");
        }
        return true;
      }
      if (err == AVERROR_EOF) return false;
      if (err != AVERROR(EAGAIN)) {
        if (++invalid_packets_ > kMaxInvalidPackets) {
          return DataLoss(path_ + ": corrupt video data (" + AvError(err) + ")");
        }
        continue;
      }
      if (flushing_) return false;
      err = av_read_frame(fmt_.get(), packet_.get());
      if (err < 0) {
        if (TimedOut()) return TimeoutStatus();
        // End of file, or a truncated / damaged tail: drain what the decoder holds.
        flushing_ = true;
        err = avcodec_send_packet(codec_.get(), nullptr);
        if (err < 0 && err != AVERROR_EOF) return false;
        continue;
      }
      if (packet_->stream_index != stream_index_) {
        av_packet_unref(packet_.get());
        continue;
      }
      err = avcodec_send_packet(codec_.get(), packet_.get());
      av_packet_unref(packet_.get());
      if (err < 0 && err != AVERROR(EAGAIN)) {
        if (++invalid_packets_ > kMaxInvalidPackets) {
          return DataLoss(path_ + ": corrupt video data (" + AvError(err) + ")");
        }
      }
    }
  }

  Result<Image> Convert() {
    const AVFrame& f = *frame_;
    const auto src_format = static_cast<AVPixelFormat>(f.format);
    SwsContext* sws = sws_getCachedContext(
        sws_.release(), f.width, f.height, src_format, f.width, f.height, AV_PIX_FMT_RGB24,
        SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
    if (sws == nullptr) {
      const char* name = av_get_pix_fmt_name(src_format);
      return Unimplemented(path_ + ": cannot convert pixel format '" +
                           std::string(name != nullptr ? name : "?") + "' to RGB");
    }
    sws_.reset(sws);
    const int* coefficients = sws_getCoefficients(SwsColorspace(f.colorspace));
    sws_setColorspaceDetails(sws, coefficients, IsFullRange(f) ? 1 : 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    Image image;
    image.width = f.width;
    image.height = f.height;
    image.rgb.resize(static_cast<size_t>(f.width) * f.height * 3);
    uint8_t* dst[4] = {image.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {f.width * 3, 0, 0, 0};
    const int rows = sws_scale(sws, f.data, f.linesize, 0, f.height, dst, dst_stride);
    if (rows != f.height) return DataLoss(path_ + ": pixel conversion failed");
    return image;
  }

  std::string path_;
  SteadyClock::time_point* deadline_ = nullptr;
  std::unique_ptr<AVFormatContext, FormatCloser> fmt_;
  std::unique_ptr<AVCodecContext, CodecCloser> codec_;
  std::unique_ptr<AVPacket, PacketCloser> packet_;
  std::unique_ptr<AVFrame, FrameCloser> frame_;
  std::unique_ptr<SwsContext, SwsCloser> sws_;
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
  int rotation_ = 0;  // clockwise degrees: 0, 90, 180, 270
  double fps_ = 0.0;
  bool flushing_ = false;
  int invalid_packets_ = 0;
};

}  // namespace

Result<SampledVideo> LoadVideo(const std::string& path, const VideoSamplingConfig& config) {
  static std::once_flag quiet_once;
  // FFmpeg logs every damaged packet to stderr; errors reach the caller as Status instead.
  std::call_once(quiet_once, [] { av_log_set_level(AV_LOG_FATAL); });
  if (config.max_frames <= 0 || !(config.fps > 0.0)) {
    return InvalidArgument("video sampling: fps and max_frames must be positive");
  }
  SteadyClock::time_point deadline = SteadyClock::now() + kDecodeTimeLimit;
  SampledVideo out;
  {
    VideoReader reader(path);
    IRIS_RETURN_IF_ERROR(reader.Open(&deadline));
    IRIS_RETURN_IF_ERROR(reader.ReadMetadata(out.metadata));
    if (out.metadata.total_num_frames <= 0) return InvalidArgument(path + ": video has no frames");
    out.indices = SampleFrameIndices(out.metadata, config);
    int64_t short_total = -1;
    IRIS_RETURN_IF_ERROR(reader.Decode(out.indices, out.frames, short_total));
    if (short_total < 0) return out;
    if (short_total == 0) return DataLoss(path + ": no frame could be decoded");
    // The container announced more frames than the stream holds: resample from the real
    // count and decode again from the start (next block).
    out.metadata.total_num_frames = short_total;
  }
  {
    VideoReader reader(path);
    IRIS_RETURN_IF_ERROR(reader.Open(&deadline));
    out.indices = SampleFrameIndices(out.metadata, config);
    int64_t short_total = -1;
    IRIS_RETURN_IF_ERROR(reader.Decode(out.indices, out.frames, short_total));
    if (short_total >= 0) {
      return DataLoss(path + ": the video stream ended early on the second pass (" +
                      std::to_string(short_total) + " frames)");
    }
  }
  return out;
}

}  // namespace iris::media
