#include "engine/model/vision_model.h"

#include <gtest/gtest.h>

#include <vector>

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

}  // namespace
}  // namespace iris::model
