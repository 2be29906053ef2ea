#include "engine/model/vision_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "engine/formats/safetensors.h"
#include "engine/model/config.h"

namespace iris::model {
namespace {

// Closed form of SmolVLMConnector.pixel_shuffle (fixtures README): output token I·m + J is
// the concatenation over dh (outer), dw (inner) of the patch (I·s + dh, J·s + dw).
TEST(PixelShuffleTest, MatchesTheClosedForm) {
  for (int s : {2, 3, 4}) {
    const int n = 3 * s, dim = 5, m = n / s;
    std::vector<float> in(static_cast<size_t>(n * n * dim));
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
    std::vector<float> out(in.size(), -1.0f);
    PixelShuffle(in.data(), n, dim, s, out.data());
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < m; ++j) {
        for (int dh = 0; dh < s; ++dh) {
          for (int dw = 0; dw < s; ++dw) {
            for (int d = 0; d < dim; ++d) {
              const size_t o =
                  static_cast<size_t>((i * m + j) * s * s * dim + (dh * s + dw) * dim + d);
              const size_t src = static_cast<size_t>(((i * s + dh) * n + (j * s + dw)) * dim + d);
              ASSERT_EQ(out[o], in[src]) << "s=" << s;
            }
          }
        }
      }
    }
  }
}

TEST(MergeImageFeaturesTest, ReplacesImageRowsInOrderAndChecksCounts) {
  const std::vector<int32_t> ids = {1, 7, 7, 2, 7};
  std::vector<float> embeds(ids.size() * 2, 0.0f);
  const std::vector<float> features = {10, 11, 20, 21, 30, 31};
  ASSERT_TRUE(MergeImageFeatures(ids, 7, features, 2, embeds.data()).ok());
  EXPECT_EQ(embeds, (std::vector<float>{0, 0, 10, 11, 20, 21, 0, 0, 30, 31}));
  const std::vector<float> too_few = {10, 11};
  Status s = MergeImageFeatures(ids, 7, too_few, 2, embeds.data());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("3 <image> tokens"), std::string::npos) << s.message();
}

// Tiles reuse their scratch (a finished state keeps its buffers, EncodeTile one per thread):
// a tile's features do not depend on what was encoded before, on garbage left in a reused
// state, or on the number of threads.
TEST(VisionModelTest, ReusedScratchGivesEveryTileItsOwnNumbers) {
  const std::string dir = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";
  auto config = LoadModelConfig(dir);
  auto weights = formats::WeightStore::OpenDir(dir);
  ASSERT_TRUE(config.ok() && weights.ok());
  ThreadPool pool(2), one(1);
  auto vision = VisionModel::Load(*weights, *config, &pool);
  ASSERT_TRUE(vision.ok()) << vision.status().ToString();
  const size_t tile = static_cast<size_t>(vision->tile_size());
  const size_t floats = 3 * tile * tile;
  const size_t out = static_cast<size_t>(vision->tokens_per_tile() * vision->text_dim());
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> a(floats), b(floats);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  ops::ComputeContext ctx{&pool, false}, single{&one, false};
  std::vector<float> first(out), other(out), again(out), staged(out), threads(out);
  vision->EncodeTile(ctx, a.data(), nullptr, first.data());
  vision->EncodeTile(ctx, b.data(), nullptr, other.data());
  vision->EncodeTile(ctx, a.data(), nullptr, again.data());
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  VisionModel::TileState state;
  for (auto* buf : {&state.x, &state.h, &state.q, &state.k, &state.v, &state.attn, &state.mlp}) {
    buf->assign(1 << 16, std::numeric_limits<float>::quiet_NaN());
  }
  vision->BeginTile(ctx, a.data(), state);
  while (!vision->ContinueTile(ctx, state, 1)) {
  }
  vision->FinishTile(ctx, state, nullptr, staged.data());
  EXPECT_EQ(first, staged);
  vision->EncodeTile(single, a.data(), nullptr, threads.data());
  EXPECT_EQ(first, threads);
}

}  // namespace
}  // namespace iris::model
