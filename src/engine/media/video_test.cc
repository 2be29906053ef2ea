// Video support against transformers: frame sampling, the <video> prompt and the frame
// preprocessing against the goldens of both tiny models, and LoadVideo on small videos that the
// ffmpeg command line tool writes at test time (each frame's colour encodes its number).
#include "engine/media/video.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/test_data.h"
#include "engine/formats/safetensors.h"

namespace iris::media {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// ---- sampling -----------------------------------------------------------------------------

std::vector<int64_t> Sample(int64_t total, double native_fps, double duration, double fps,
                            int max_frames = 64) {
  VideoMetadata m;
  m.total_num_frames = total;
  m.fps = native_fps;
  m.duration = duration;
  VideoSamplingConfig c;
  c.fps = fps;
  c.max_frames = max_frames;
  return SampleFrameIndices(m, c);
}

TEST(VideoSamplingTest, LinspaceTruncated) {
  // numpy: np.linspace(0, 79, 10).astype(int)
  EXPECT_EQ(Sample(80, 8, 10, 1), (std::vector<int64_t>{0, 8, 17, 26, 35, 43, 52, 61, 70, 79}));
  EXPECT_EQ(Sample(4, 1, 4, 1), (std::vector<int64_t>{0, 1, 2, 3}));
  // np.linspace(0, 99, 7).astype(int) = [0, 16, 33, 49, 66, 82, 99]
  EXPECT_EQ(Sample(100, 10, 7.2, 1), (std::vector<int64_t>{0, 16, 33, 49, 66, 82, 99}));
}

TEST(VideoSamplingTest, RoundsHalfToEvenAndClamps) {
  EXPECT_EQ(Sample(100, 10, 2.5, 1).size(), 2u);                  // round(2.5) == 2
  EXPECT_EQ(Sample(100, 10, 3.5, 1).size(), 4u);                  // round(3.5) == 4
  EXPECT_EQ(Sample(100, 10, 0.2, 1), (std::vector<int64_t>{0}));  // at least one frame
  EXPECT_EQ(Sample(100000, 30, 3000, 1).size(), 64u);             // max_frames
  EXPECT_EQ(Sample(100000, 30, 3000, 1, 8).size(), 8u);
  EXPECT_EQ(Sample(1, 1, 1, 1), (std::vector<int64_t>{0}));
  // More frames wanted than exist: unique() drops the repeats.
  EXPECT_EQ(Sample(3, 0.3, 10, 1), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(Sample(0, 1, 1, 1).empty());
}

// ---- prompt -------------------------------------------------------------------------------

TEST(VideoPromptTest, NumbersDurationsAndTimestamps) {
  auto intro = [](size_t n, double duration) {
    std::string s = ExpandVideoPrompt(std::vector<int64_t>(n, 0), 1.0, duration, 1);
    return s.substr(0, s.find('\n'));
  };
  EXPECT_EQ(intro(9, 9),
            "You are provided the following series of nine frames from a 0:00:09 "
            "[H:MM:SS] video.");
  EXPECT_NE(intro(21, 0).find(" twenty-one frames from a 0:00:00 "), std::string::npos);
  EXPECT_NE(intro(64, 3661.9).find(" sixty-four frames from a 1:01:01 "), std::string::npos);
  EXPECT_NE(intro(40, 0).find(" forty frames"), std::string::npos);
  EXPECT_NE(intro(13, 0).find(" thirteen frames"), std::string::npos);
  EXPECT_NE(intro(105, 0).find(" one hundred and five frames"), std::string::npos);
  EXPECT_NE(intro(1, 90061).find(" 1 day, 1:01:01 "), std::string::npos);
  const std::string s = ExpandVideoPrompt({0, 61, 3599 * 2}, 2.0, 3600, 1);
  EXPECT_NE(s.find("\nFrame from 00:00:<fake"), std::string::npos);
  EXPECT_NE(s.find("\nFrame from 00:30:<fake"), std::string::npos);
  EXPECT_NE(s.find("\nFrame from 59:59:<fake"), std::string::npos);
  EXPECT_EQ(s.substr(s.size() - 3), ">\n\n");
}

class VideoGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VideoGoldenTest, ExpandedPromptMatches) {
  const std::string dir = TestData("smolvlm2/" + GetParam());
  Result<ImageProcessorConfig> config = LoadImageProcessorConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Result<json::value> goldens = ReadJsonFile(dir + "/goldens.json");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const json::object& c = goldens->at("cases").at("video").as_object();
  const json::object& meta = c.at("video_metadata").as_object();
  std::vector<int64_t> indices;
  for (const json::value& v : meta.at("frames_indices").as_array()) indices.push_back(v.as_int64());
  VideoMetadata m;
  m.total_num_frames = meta.at("total_num_frames").as_int64();
  m.fps = meta.at("fps").to_number<double>();
  m.duration = meta.at("duration").to_number<double>();
  EXPECT_EQ(SampleFrameIndices(m, VideoSamplingConfig{}), indices);
  std::string prompt(c.at("prompt").as_string());
  const size_t pos = prompt.find("<video>");
  ASSERT_NE(pos, std::string::npos);
  prompt.replace(pos, 7, ExpandVideoPrompt(indices, m.fps, m.duration, config->image_seq_len));
  EXPECT_EQ(prompt, std::string(c.at("expanded_prompt").as_string()));
}

TEST_P(VideoGoldenTest, PixelValuesMatch) {
  const std::string dir = TestData("smolvlm2/" + GetParam());
  Result<ImageProcessorConfig> config = LoadImageProcessorConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  std::vector<Image> frames;
  for (int i = 0; i < 4; ++i) {
    Result<Image> image =
        LoadImageFile(TestData("smolvlm2/images/video_frame" + std::to_string(i) + ".png"));
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    frames.push_back(std::move(image).value());
  }
  Result<ProcessedImage> got = PreprocessVideoFrames(frames, *config);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  Result<formats::SafetensorsFile> goldens =
      formats::SafetensorsFile::Open(dir + "/goldens.safetensors");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const tensor::TensorView& want = goldens->tensors().at("video.pixel_values").view;
  ASSERT_EQ(want.dtype, tensor::DType::kF32);
  ASSERT_EQ(want.shape, (std::vector<int64_t>{1, 4, 3, config->tile_size, config->tile_size}));
  EXPECT_EQ(got->num_tiles, 4);
  EXPECT_EQ(got->rows, 0);
  ASSERT_EQ(got->pixel_values.size(), static_cast<size_t>(want.num_elements()));
  const float* w = static_cast<const float*>(want.data);
  double max_diff = 0;
  size_t mismatches = 0;
  for (size_t i = 0; i < got->pixel_values.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got->pixel_values[i]) - w[i]);
    max_diff = std::max(max_diff, d);
    if (d != 0) ++mismatches;
  }
  std::cout << GetParam() << ": video pixel_values max |diff| " << max_diff << ", " << mismatches
            << " of " << got->pixel_values.size() << " differ\n";
  EXPECT_LE(max_diff, 0.008);
  EXPECT_EQ(mismatches, 0u);  // bit-exact on this implementation
}

INSTANTIATE_TEST_SUITE_P(TinyModels, VideoGoldenTest,
                         ::testing::Values("tiny-256m-style", "tiny-2.2b-style"));

TEST(VideoPreprocessTest, RejectsBadInput) {
  EXPECT_FALSE(PreprocessVideoFrames({}, ImageProcessorConfig{}).ok());
  Image bad;
  bad.width = 2;
  bad.height = 2;  // empty buffer
  EXPECT_FALSE(PreprocessVideoFrames({bad}, ImageProcessorConfig{}).ok());
}

// ---- decoding -----------------------------------------------------------------------------

bool HaveFfmpeg() {
  static const bool have = std::system("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
  return have;
}

bool HaveEncoder(const std::string& name) {
  return std::system(
             ("ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' " + name + " '").c_str()) == 0;
}

class VideoDecodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveFfmpeg()) GTEST_SKIP() << "the ffmpeg command line tool is not installed";
    char tmpl[] = "/tmp/iris_video_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Writes a 64x48 clip whose frame N has colour (25 * (N % 10), 25 * (N / 10 % 10),
  // 25 * (N / 100)); returns the path, or "" if ffmpeg failed.
  std::string Make(const std::string& name, int fps, double seconds, const std::string& codec_args,
                   const std::string& extra_filter = "") {
    const std::string path = dir_ + "/" + name;
    const std::string cmd =
        "ffmpeg -hide_banner -loglevel error -y -f lavfi -i \"color=c=black:s=64x48:r=" +
        std::to_string(fps) + ":d=" + std::to_string(seconds) +
        ",format=rgb24,geq=r='25*mod(N\\,10)':g='25*mod(floor(N/10)\\,10)':b='25*floor(N/100)'" +
        extra_filter + "\" " + codec_args + " \"" + path + "\" 2>" + dir_ + "/ffmpeg.log";
    if (std::system(cmd.c_str()) != 0) {
      std::ifstream log(dir_ + "/ffmpeg.log");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      ADD_FAILURE() << "ffmpeg failed: " << cmd << "\n" << text;
      return "";
    }
    return path;
  }

  // The frame number a decoded frame's centre colour encodes.
  static int FrameNumber(const Image& image) {
    const size_t p = (static_cast<size_t>(image.height / 2) * image.width + image.width / 2) * 3;
    auto digit = [](uint8_t v) { return static_cast<int>(std::lround(v / 25.0)); };
    return digit(image.rgb[p]) + 10 * digit(image.rgb[p + 1]) + 100 * digit(image.rgb[p + 2]);
  }

  static void ExpectFrames(const SampledVideo& v) {
    ASSERT_EQ(v.frames.size(), v.indices.size());
    for (size_t i = 0; i < v.frames.size(); ++i) {
      EXPECT_EQ(FrameNumber(v.frames[i]), v.indices[i]) << "frame " << i;
    }
  }

  std::string dir_;
};

const std::string kX264 = "-c:v libx264 -pix_fmt yuv420p -qp 0 -g 16";

TEST_F(VideoDecodeTest, Mp4H264SampledFramesAndMetadata) {
  if (!HaveEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  const std::string path = Make("clip.mp4", 8, 10, kX264);
  ASSERT_FALSE(path.empty());
  Result<SampledVideo> v = LoadVideo(path, VideoSamplingConfig{});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->metadata.total_num_frames, 80);
  EXPECT_DOUBLE_EQ(v->metadata.fps, 8.0);
  EXPECT_NEAR(v->metadata.duration, 10.0, 0.01);
  EXPECT_EQ(v->metadata.width, 64);
  EXPECT_EQ(v->metadata.height, 48);
  EXPECT_EQ(v->indices, (std::vector<int64_t>{0, 8, 17, 26, 35, 43, 52, 61, 70, 79}));
  ExpectFrames(*v);
  EXPECT_EQ(v->frames[0].width, 64);
  EXPECT_EQ(v->frames[0].height, 48);
  const std::string prompt =
      ExpandVideoPrompt(v->indices, v->metadata.fps, v->metadata.duration, 1);
  EXPECT_NE(prompt.find("series of ten frames from a 0:00:10 "), std::string::npos);
  EXPECT_NE(prompt.find("\nFrame from 00:09:"), std::string::npos);  // 79 / 8 = 9.875 s
}

TEST_F(VideoDecodeTest, LongVideoIsSeeked) {
  if (!HaveEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  // 100 s at 8 fps = 800 frames, keyframes every 16; 5 samples are > 100 frames apart.
  const std::string path = Make("long.mp4", 8, 100, kX264);
  ASSERT_FALSE(path.empty());
  VideoSamplingConfig config;
  config.max_frames = 5;
  Result<SampledVideo> v = LoadVideo(path, config);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->metadata.total_num_frames, 800);
  EXPECT_EQ(v->indices, (std::vector<int64_t>{0, 199, 399, 599, 799}));
  ExpectFrames(*v);
}

TEST_F(VideoDecodeTest, WebmVp9) {
  if (!HaveEncoder("libvpx-vp9")) GTEST_SKIP() << "ffmpeg has no libvpx-vp9 encoder";
  const std::string path =
      Make("clip.webm", 8, 4, "-c:v libvpx-vp9 -lossless 1 -g 8 -deadline realtime");
  ASSERT_FALSE(path.empty());
  Result<SampledVideo> v = LoadVideo(path, VideoSamplingConfig{});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->metadata.total_num_frames, 32);  // WebM has no frame count: counted
  EXPECT_EQ(v->indices, (std::vector<int64_t>{0, 10, 20, 31}));
  ExpectFrames(*v);
}

TEST_F(VideoDecodeTest, LongWebmIsSeeked) {
  if (!HaveEncoder("libvpx-vp9")) GTEST_SKIP() << "ffmpeg has no libvpx-vp9 encoder";
  // 60 s at 8 fps = 480 frames; 4 samples 160 frames apart, keyframes every 32.
  const std::string path =
      Make("long.webm", 8, 60, "-c:v libvpx-vp9 -lossless 1 -g 32 -deadline realtime");
  ASSERT_FALSE(path.empty());
  VideoSamplingConfig config;
  config.max_frames = 4;
  Result<SampledVideo> v = LoadVideo(path, config);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->metadata.total_num_frames, 480);
  EXPECT_EQ(v->indices, (std::vector<int64_t>{0, 159, 319, 479}));
  ExpectFrames(*v);
}

TEST_F(VideoDecodeTest, MkvAndMov) {
  if (!HaveEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  for (const char* name : {"clip.mkv", "clip.mov"}) {
    const std::string path = Make(name, 8, 3, kX264);
    ASSERT_FALSE(path.empty());
    Result<SampledVideo> v = LoadVideo(path, VideoSamplingConfig{});
    ASSERT_TRUE(v.ok()) << name << ": " << v.status().ToString();
    EXPECT_EQ(v->metadata.total_num_frames, 24) << name;
    EXPECT_EQ(v->indices, (std::vector<int64_t>{0, 11, 23})) << name;
    ExpectFrames(*v);
  }
}

TEST_F(VideoDecodeTest, AnimatedGif) {
  const std::string path = Make("clip.gif", 5, 2, "-f gif");
  ASSERT_FALSE(path.empty());
  Result<SampledVideo> v = LoadVideo(path, VideoSamplingConfig{});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->metadata.total_num_frames, 10);
  ASSERT_FALSE(v->indices.empty());
  ExpectFrames(*v);
}

TEST_F(VideoDecodeTest, RotationIsApplied) {
  if (!HaveEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  // A white marker in the stored image's top-left corner (8x8) shows where its origin went.
  const std::string src =
      Make("rot_src.mp4", 4, 2, kX264, ",drawbox=x=0:y=0:w=8:h=8:color=white:t=fill");
  ASSERT_FALSE(src.empty());
  // Stream copy with the rotate tag writes a display matrix (re-encoding would drop it).
  const std::string path = dir_ + "/rot.mp4";
  const std::string ref = dir_ + "/rot_ref.png";
  ASSERT_EQ(std::system(("ffmpeg -hide_banner -loglevel error -y -i \"" + src +
                         "\" -c copy -metadata:s:v:0 rotate=90 \"" + path + "\"")
                            .c_str()),
            0);
  // The ffmpeg tool autorotates: its first frame is the reference orientation.
  ASSERT_EQ(std::system(("ffmpeg -hide_banner -loglevel error -y -i \"" + path +
                         "\" -frames:v 1 \"" + ref + "\"")
                            .c_str()),
            0);
  Result<Image> want = LoadImageFile(ref);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  ASSERT_EQ(want->width, 48);
  ASSERT_EQ(want->height, 64);

  Result<SampledVideo> v = LoadVideo(path, VideoSamplingConfig{});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->metadata.width, 48);
  EXPECT_EQ(v->metadata.height, 64);
  ASSERT_FALSE(v->frames.empty());
  const Image& f = v->frames[0];
  ASSERT_EQ(f.width, 48);
  ASSERT_EQ(f.height, 64);
  int white_corners = 0;
  for (int y : {2, 61}) {
    for (int x : {2, 45}) {
      const size_t p = (static_cast<size_t>(y) * f.width + x) * 3 + 1;
      EXPECT_NEAR(f.rgb[p], want->rgb[p], 16) << "x " << x << " y " << y;
      if (f.rgb[p] > 200) ++white_corners;
    }
  }
  EXPECT_EQ(white_corners, 1);
}

TEST_F(VideoDecodeTest, Errors) {
  Result<SampledVideo> missing = LoadVideo(dir_ + "/nope.mp4", VideoSamplingConfig{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);

  const std::string empty = dir_ + "/empty.mp4";
  std::ofstream(empty).close();
  Result<SampledVideo> e = LoadVideo(empty, VideoSamplingConfig{});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), ErrorCode::kInvalidArgument) << e.status().ToString();

  const std::string garbage = dir_ + "/garbage.mp4";
  {
    std::ofstream out(garbage, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 7919) % 251));
  }
  Result<SampledVideo> g = LoadVideo(garbage, VideoSamplingConfig{});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), ErrorCode::kInvalidArgument) << g.status().ToString();

  const std::string audio = dir_ + "/audio.wav";
  ASSERT_EQ(std::system(("ffmpeg -hide_banner -loglevel error -y -f lavfi -i "
                         "\"sine=frequency=440:duration=1\" \"" +
                         audio + "\"")
                            .c_str()),
            0);
  Result<SampledVideo> a = LoadVideo(audio, VideoSamplingConfig{});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("no video stream"), std::string::npos)
      << a.status().ToString();

  // A PNG is an image, not a video, yet FFmpeg demuxes it as one frame: either is acceptable,
  // but it must not crash.
  (void)LoadVideo(TestData("smolvlm2/images/video_frame0.png"), VideoSamplingConfig{}).ok();
}

TEST_F(VideoDecodeTest, TruncatedFilesGiveStatusOrFewerFrames) {
  if (!HaveEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  // moov at the end (default): cutting the file loses the index -> an error.
  const std::string path = Make("cut.mp4", 8, 10, kX264);
  ASSERT_FALSE(path.empty());
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  EXPECT_FALSE(LoadVideo(path, VideoSamplingConfig{}).ok());

  // faststart (moov first): the index promises 80 frames the data no longer holds.
  const std::string fast = Make("fast.mp4", 8, 10, kX264 + " -movflags +faststart");
  ASSERT_FALSE(fast.empty());
  fs::resize_file(fast, fs::file_size(fast) / 2);
  Result<SampledVideo> v = LoadVideo(fast, VideoSamplingConfig{});
  std::cout << "truncated faststart mp4: "
            << (v.ok() ? std::to_string(v->metadata.total_num_frames) + " frames"
                       : v.status().ToString())
            << "\n";
  if (v.ok()) {
    EXPECT_LT(v->metadata.total_num_frames, 80);
    ExpectFrames(*v);
  } else {
    EXPECT_NE(v.status().code(), ErrorCode::kOk);
  }

  // MKV cut in the middle: counted frames are what remains.
  const std::string mkv = Make("cut.mkv", 8, 10, kX264);
  ASSERT_FALSE(mkv.empty());
  fs::resize_file(mkv, fs::file_size(mkv) / 2);
  Result<SampledVideo> m = LoadVideo(mkv, VideoSamplingConfig{});
  std::cout << "truncated mkv: "
            << (m.ok() ? std::to_string(m->metadata.total_num_frames) + " frames"
                       : m.status().ToString())
            << "\n";
  if (m.ok()) {
    EXPECT_GT(m->metadata.total_num_frames, 0);
    EXPECT_LT(m->metadata.total_num_frames, 80);
    ExpectFrames(*m);
  }
}

}  // namespace
}  // namespace iris::media
