// The SmolVLM image processor against transformers' goldens: pixel_values bit for bit for the
// tiny models, the real-settings photo (grid, stats, global tile, first row), the prompt
// expansion, and the config loader's errors.
#include "engine/media/image_processor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "engine/formats/safetensors.h"

namespace iris::media {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const std::string kDataDir = IRIS_TEST_DATA_DIR;
const std::string kSmolDir = kDataDir + "/smolvlm2";

Image LoadOrDie(const std::string& relative) {
  Result<Image> image = LoadImageFile(kSmolDir + "/" + relative);
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  return image.ok() ? std::move(image).value() : Image();
}

// Bitwise comparison; the message names the first differing element as (tile, c, y, x).
::testing::AssertionResult SameFloats(const float* got, const float* want, size_t n, int tile) {
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {  // NOLINT: bitwise on purpose
      const size_t plane = static_cast<size_t>(tile) * tile;
      return ::testing::AssertionFailure()
             << "first mismatch at element " << i << " (tile " << i / (3 * plane) << ", channel "
             << i / plane % 3 << ", y " << i % plane / tile << ", x " << i % tile << "): got "
             << got[i] << " want " << want[i] << " (of " << n << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

struct GoldenCase {
  std::string model;
  std::string name;
};

void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.model << "/" << c.name; }

class TinyModelGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(TinyModelGoldenTest, PixelValuesAreBitExact) {
  const GoldenCase& c = GetParam();
  const std::string dir = kSmolDir + "/" + c.model;
  Result<ImageProcessorConfig> config = LoadImageProcessorConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Result<json::value> goldens_json = ReadJsonFile(dir + "/goldens.json");
  ASSERT_TRUE(goldens_json.ok()) << goldens_json.status().ToString();
  const json::object& golden_case = goldens_json->at("cases").at(c.name).as_object();
  config->do_image_splitting = golden_case.at("do_image_splitting").as_bool();

  Result<formats::SafetensorsFile> goldens =
      formats::SafetensorsFile::Open(dir + "/goldens.safetensors");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const tensor::TensorView& want = goldens->tensors().at(c.name + ".pixel_values").view;
  ASSERT_EQ(want.dtype, tensor::DType::kF32);
  const int tile = config->tile_size;
  ASSERT_EQ(want.shape[3], tile);

  const json::array& images = golden_case.at("images").as_array();
  const json::array& rows = golden_case.at("rows").as_array();
  const json::array& cols = golden_case.at("cols").as_array();
  const json::array& geometry = golden_case.at("geometry").as_array();
  std::vector<float> got;
  std::string expanded;
  for (size_t i = 0; i < images.size(); ++i) {
    Image image = LoadOrDie(std::string(images[i].as_string()));
    const json::object& g = geometry[i].as_object();
    Result<ResizePlan> plan = PlanResize(image.height, image.width, *config);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(plan->resized_height, g.at("resize1_longest_edge_hw").at(0).as_int64());
    EXPECT_EQ(plan->resized_width, g.at("resize1_longest_edge_hw").at(1).as_int64());
    if (const json::value* hw = g.if_contains("resize2_vision_encoder_hw")) {
      EXPECT_EQ(plan->encoder_height, hw->at(0).as_int64());
      EXPECT_EQ(plan->encoder_width, hw->at(1).as_int64());
    }

    Result<ProcessedImage> processed = PreprocessImage(image, *config);
    ASSERT_TRUE(processed.ok()) << processed.status().ToString();
    EXPECT_EQ(processed->rows, rows[i].as_int64());
    EXPECT_EQ(processed->cols, cols[i].as_int64());
    EXPECT_EQ(processed->tile_size, tile);
    const int expected_tiles = processed->rows * processed->cols + 1;
    EXPECT_EQ(processed->num_tiles, expected_tiles);
    EXPECT_EQ(processed->pixel_values.size(),
              static_cast<size_t>(expected_tiles) * 3 * tile * tile);
    got.insert(got.end(), processed->pixel_values.begin(), processed->pixel_values.end());
    expanded += ExpandImagePrompt(processed->rows, processed->cols, config->image_seq_len);
  }
  ASSERT_EQ(static_cast<int64_t>(got.size()), want.num_elements());
  EXPECT_TRUE(SameFloats(got.data(), static_cast<const float*>(want.data), got.size(), tile));

  // Every image block appears, in order, in the prompt transformers tokenized.
  const std::string prompt(golden_case.at("expanded_prompt").as_string());
  size_t pos = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string block =
        ExpandImagePrompt(static_cast<int>(rows[i].as_int64()),
                          static_cast<int>(cols[i].as_int64()), config->image_seq_len);
    const size_t at = prompt.find(block, pos);
    ASSERT_NE(at, std::string::npos) << "image " << i << " block not found in " << prompt;
    pos = at + block.size();
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, TinyModelGoldenTest,
                         ::testing::Values(GoldenCase{"tiny-256m-style", "image_nosplit"},
                                           GoldenCase{"tiny-256m-style", "image_split"},
                                           GoldenCase{"tiny-256m-style", "two_images"},
                                           GoldenCase{"tiny-2.2b-style", "image_nosplit"},
                                           GoldenCase{"tiny-2.2b-style", "image_split"},
                                           GoldenCase{"tiny-2.2b-style", "two_images"}),
                         [](const ::testing::TestParamInfo<GoldenCase>& param_info) {
                           std::string name = param_info.param.model + "_" + param_info.param.name;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(ExpandImagePromptTest, MatchesTheGoldenPromptsExactly) {
  Result<json::value> goldens = ReadJsonFile(kSmolDir + "/tiny-256m-style/goldens.json");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const json::object& cases = goldens->at("cases").as_object();
  const std::string image4 = "<image><image><image><image>";
  const std::string fake = "<fake_token_around_image>";
  EXPECT_EQ(std::string(cases.at("image_nosplit").at("expanded_prompt").as_string()),
            "<|im_start|>User:" + ExpandImagePrompt(0, 0, 4) +
                "Can you describe this image?<end_of_utterance>\nAssistant:");
  EXPECT_EQ(ExpandImagePrompt(0, 0, 4), fake + "<global-img>" + image4 + fake);
  EXPECT_EQ(std::string(cases.at("image_split").at("expanded_prompt").as_string()),
            "<|im_start|>User:" + ExpandImagePrompt(3, 4, 4) +
                "Can you describe this image?<end_of_utterance>\nAssistant:");
  EXPECT_EQ(std::string(cases.at("two_images").at("expanded_prompt").as_string()),
            "<|im_start|>User: Compare " + ExpandImagePrompt(1, 4, 4) + " and " +
                ExpandImagePrompt(4, 1, 4) + ". What is different?<end_of_utterance>\nAssistant:");
  EXPECT_EQ(ExpandImagePrompt(2, 1, 1), fake + "<row_1_col_1><image>\n" + fake +
                                            "<row_2_col_1><image>\n\n" + fake +
                                            "<global-img><image>" + fake);
}

// real_preproc: images/photo.png (1000x667) at the real 256M/500M and 2.2B settings.
class RealPreprocTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealPreprocTest, MatchesTransformers) {
  const std::string family = GetParam();
  const std::string dir = kSmolDir + "/real_preproc/" + family;
  Result<json::value> index = ReadJsonFile(kSmolDir + "/real_preproc/index.json");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  const json::object& settings = index->at("settings").at(family).as_object();

  ImageProcessorConfig config;
  Result<json::value> preprocessor = ReadJsonFile(dir + "/preprocessor_config.json");
  ASSERT_TRUE(preprocessor.ok()) << preprocessor.status().ToString();
  ASSERT_TRUE(ApplyPreprocessorConfig(*preprocessor, "preprocessor_config.json", config).ok());
  config.image_seq_len = static_cast<int>(settings.at("image_seq_len").as_int64());

  Image photo = LoadOrDie("images/photo.png");
  ASSERT_EQ(photo.width, 1000);
  ASSERT_EQ(photo.height, 667);
  Result<ResizePlan> plan = PlanResize(photo.height, photo.width, config);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->resized_height, settings.at("resize_longest_edge_to_hw").at(0).as_int64());
  EXPECT_EQ(plan->resized_width, settings.at("resize_longest_edge_to_hw").at(1).as_int64());
  EXPECT_EQ(plan->encoder_height, settings.at("resize_for_vision_encoder_hw").at(0).as_int64());
  EXPECT_EQ(plan->encoder_width, settings.at("resize_for_vision_encoder_hw").at(1).as_int64());

  Result<ProcessedImage> processed = PreprocessImage(photo, config);
  ASSERT_TRUE(processed.ok()) << processed.status().ToString();
  const int tile = processed->tile_size;
  EXPECT_EQ(tile, settings.at("tile_hw").at(0).as_int64());
  EXPECT_EQ(processed->rows, settings.at("rows").as_int64());
  EXPECT_EQ(processed->cols, settings.at("cols").as_int64());
  ASSERT_EQ(processed->num_tiles, settings.at("num_tiles_including_global").as_int64());
  EXPECT_EQ(processed->num_tiles * config.image_seq_len,
            settings.at("num_image_tokens_in_prompt").as_int64());

  Result<formats::SafetensorsFile> goldens =
      formats::SafetensorsFile::Open(dir + "/preproc_goldens.safetensors");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const auto& tensors = goldens->tensors();
  const size_t plane = static_cast<size_t>(tile) * tile;
  const size_t tile_floats = 3 * plane;
  const float* values = processed->pixel_values.data();

  // Tile 0's first row, exactly.
  const tensor::TensorView& first_row = tensors.at("pixel_values_tile0_first_row_f32").view;
  ASSERT_EQ(first_row.num_elements(), 3 * tile);
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(SameFloats(
        values + c * plane,
        static_cast<const float*>(first_row.data) + static_cast<size_t>(c) * tile, tile, tile))
        << "channel " << c;
  }

  // The global tile as uint8, exactly: pixel_values = (u8 / 255 - 0.5) / 0.5.
  const tensor::TensorView& global = tensors.at("global_tile_uint8").view;
  ASSERT_EQ(static_cast<size_t>(global.num_elements()), tile_floats);
  const auto* global_u8 = static_cast<const uint8_t*>(global.data);
  std::vector<float> global_want(tile_floats);
  for (size_t i = 0; i < tile_floats; ++i) {
    const float r = static_cast<float>(static_cast<double>(global_u8[i]) * config.rescale_factor);
    global_want[i] = (r - 0.5f) / 0.5f;
  }
  EXPECT_TRUE(SameFloats(values + (processed->num_tiles - 1) * tile_floats, global_want.data(),
                         tile_floats, tile));

  // Per-tile statistics (f64 over the f32 values) and 32x32 block means.
  const tensor::TensorView& stats = tensors.at("tile_stats_f64").view;
  ASSERT_EQ(stats.num_elements(), processed->num_tiles * 8);
  const auto* want_stats = static_cast<const double*>(stats.data);
  const tensor::TensorView& blocks = tensors.at("tile_block32_means_f32").view;
  const auto* want_blocks = static_cast<const float*>(blocks.data);
  const int nb = tile / 32;
  ASSERT_EQ(blocks.num_elements(), processed->num_tiles * 3 * nb * nb);
  for (int t = 0; t < processed->num_tiles; ++t) {
    const float* v = values + t * tile_floats;
    double sum = 0, lo = 1e30, hi = -1e30, channel_sum[3] = {0, 0, 0};
    for (size_t i = 0; i < tile_floats; ++i) {
      sum += v[i];
      channel_sum[i / plane] += v[i];
      lo = std::min(lo, static_cast<double>(v[i]));
      hi = std::max(hi, static_cast<double>(v[i]));
    }
    const double mean = sum / tile_floats;
    double var = 0;
    for (size_t i = 0; i < tile_floats; ++i) var += (v[i] - mean) * (v[i] - mean);
    const double std_dev = std::sqrt(var / tile_floats);
    const double* w = want_stats + static_cast<size_t>(t) * 8;
    EXPECT_NEAR(mean, w[0], 1e-9) << "tile " << t;
    EXPECT_NEAR(std_dev, w[1], 1e-9) << "tile " << t;
    EXPECT_EQ(lo, w[2]) << "tile " << t;
    EXPECT_EQ(hi, w[3]) << "tile " << t;
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(channel_sum[c] / plane, w[4 + c], 1e-9) << "tile " << t;
    EXPECT_NEAR(sum, w[7], 1e-6 * tile_floats) << "tile " << t;
    for (int c = 0; c < 3; ++c) {
      for (int by = 0; by < nb; ++by) {
        for (int bx = 0; bx < nb; ++bx) {
          double block = 0;
          for (int y = 0; y < 32; ++y) {
            for (int x = 0; x < 32; ++x) block += v[c * plane + (by * 32 + y) * tile + bx * 32 + x];
          }
          EXPECT_NEAR(block / 1024, want_blocks[((t * 3 + c) * nb + by) * nb + bx], 1e-6)
              << "tile " << t << " channel " << c << " block " << by << "," << bx;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, RealPreprocTest,
                         ::testing::Values("smolvlm2-256m-500m", "smolvlm2-2.2b"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(PlanResizeTest, FollowsTheWorkedExamples) {
  // smolvlm2.md §3.4 (L = 2048, M = 512).
  ImageProcessorConfig config;
  struct Case {
    int w, h, w1, h1, w2, h2;
  };
  for (const Case& c :
       {Case{1024, 768, 2048, 1536, 2048, 1536}, Case{640, 480, 2048, 1536, 2048, 1536},
        Case{1920, 1080, 2048, 1152, 2048, 1536}, Case{800, 1200, 1366, 2048, 1536, 2048},
        Case{512, 512, 2048, 2048, 2048, 2048}, Case{4000, 1000, 2048, 512, 2048, 512},
        Case{1000, 4000, 512, 2048, 512, 2048}}) {
    Result<ResizePlan> plan = PlanResize(c.h, c.w, config);
    ASSERT_TRUE(plan.ok());
    EXPECT_EQ(plan->resized_width, c.w1) << c.w << "x" << c.h;
    EXPECT_EQ(plan->resized_height, c.h1) << c.w << "x" << c.h;
    EXPECT_EQ(plan->encoder_width, c.w2) << c.w << "x" << c.h;
    EXPECT_EQ(plan->encoder_height, c.h2) << c.w << "x" << c.h;
  }
  // Extreme strips: the short side never reaches 0.
  Result<ResizePlan> strip = PlanResize(1, 60000, config);
  ASSERT_TRUE(strip.ok());
  EXPECT_EQ(strip->resized_width, 2048);
  EXPECT_EQ(strip->resized_height, 1);
  EXPECT_EQ(strip->encoder_height, 512);
}

TEST(PreprocessImageTest, TinyAndStripImagesGiveWholeTiles) {
  ImageProcessorConfig config;
  config.longest_edge = 64;
  config.tile_size = 16;
  for (auto [w, h] : {std::pair{1, 1}, std::pair{1, 300}, std::pair{300, 1}, std::pair{17, 5}}) {
    Image image{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 200)};
    Result<ProcessedImage> p = PreprocessImage(image, config);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->num_tiles, p->rows * p->cols + 1) << w << "x" << h;
    EXPECT_EQ(p->pixel_values.size(), static_cast<size_t>(p->num_tiles) * 3 * 16 * 16);
    // A constant image stays constant through Lanczos (weights sum to one).
    const float want = (static_cast<float>(200.0 / 255.0) - 0.5f) / 0.5f;
    for (float v : p->pixel_values) ASSERT_EQ(v, want) << w << "x" << h;
  }
}

TEST(PreprocessImageTest, RejectsMalformedImagesAndConfigs) {
  ImageProcessorConfig config;
  EXPECT_EQ(PreprocessImage(Image{}, config).status().code(), ErrorCode::kInvalidArgument);
  Image bad{4, 4, std::vector<uint8_t>(10)};
  EXPECT_EQ(PreprocessImage(bad, config).status().code(), ErrorCode::kInvalidArgument);
  Image good{4, 4, std::vector<uint8_t>(48)};
  config.tile_size = 0;
  EXPECT_EQ(PreprocessImage(good, config).status().code(), ErrorCode::kInvalidArgument);
  config.tile_size = 16;
  config.resample = 3;
  EXPECT_EQ(PreprocessImage(good, config).status().code(), ErrorCode::kUnimplemented);
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("iris_media_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  fs::path dir_;
};

TEST_F(ConfigTest, LoadsBothTinyModels) {
  Result<ImageProcessorConfig> a = LoadImageProcessorConfig(kSmolDir + "/tiny-256m-style");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->longest_edge, 512);
  EXPECT_EQ(a->tile_size, 128);
  EXPECT_EQ(a->image_seq_len, 4);
  EXPECT_EQ(a->rescale_factor, 1.0 / 255.0);
  EXPECT_EQ(a->image_mean[1], 0.5f);
  Result<ImageProcessorConfig> b = LoadImageProcessorConfig(kSmolDir + "/tiny-2.2b-style");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->longest_edge, 528);
  EXPECT_EQ(b->tile_size, 132);
  EXPECT_EQ(b->image_seq_len, 9);
  EXPECT_TRUE(b->do_image_splitting);
}

TEST_F(ConfigTest, MissingFilesAreNotFoundNamingThem) {
  Result<ImageProcessorConfig> r = LoadImageProcessorConfig(dir_.string());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("preprocessor_config.json"), std::string::npos)
      << r.status().message();
  Write("preprocessor_config.json", "{}");
  r = LoadImageProcessorConfig(dir_.string());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("processor_config.json"), std::string::npos)
      << r.status().message();
  Write("processor_config.json", "{}");
  r = LoadImageProcessorConfig(dir_.string());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("image_seq_len"), std::string::npos);
  Write("processor_config.json", R"({"image_seq_len": 81})");
  r = LoadImageProcessorConfig(dir_.string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->image_seq_len, 81);
  EXPECT_EQ(r->longest_edge, 2048);  // defaults kept
}

TEST_F(ConfigTest, WrongTypesNameTheKey) {
  Write("processor_config.json", R"({"image_seq_len": 64})");
  const std::pair<const char*, const char*> cases[] = {
      {R"({"do_resize": "yes"})", "do_resize"},
      {R"({"size": {"longest_edge": "big"}})", "size.longest_edge"},
      {R"({"size": {"height": 10, "width": 10}})", "size.longest_edge"},
      {R"({"size": 512})", "size"},
      {R"({"max_image_size": {"longest_edge": 0}})", "max_image_size.longest_edge"},
      {R"({"max_image_size": {"longest_edge": 1.5}})", "max_image_size.longest_edge"},
      {R"({"rescale_factor": "1/255"})", "rescale_factor"},
      {R"({"image_mean": [0.5, 0.5]})", "image_mean"},
      {R"({"image_std": [0.5, "a", 0.5]})", "image_std"},
      {R"({"resample": "lanczos"})", "resample"},
      {R"([1, 2])", "preprocessor_config.json"},
      {R"({"do_resize": tru})", "preprocessor_config.json"},
  };
  for (const auto& [text, key] : cases) {
    Write("preprocessor_config.json", text);
    Result<ImageProcessorConfig> r = LoadImageProcessorConfig(dir_.string());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(key), std::string::npos)
        << text << " -> " << r.status().message();
  }
  Write("preprocessor_config.json", R"({"resample": 3})");
  EXPECT_EQ(LoadImageProcessorConfig(dir_.string()).status().code(), ErrorCode::kUnimplemented);
  Write("preprocessor_config.json", R"({"image_mean": 0.25, "image_std": [1, 2, 4]})");
  Result<ImageProcessorConfig> r = LoadImageProcessorConfig(dir_.string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->image_mean[2], 0.25f);
  EXPECT_EQ(r->image_std[2], 4.0f);
}

}  // namespace
}  // namespace iris::media
