// FetchImageCached: training data's image URLs, fetched under the image_fetch policy from a real
// HTTP server on a loopback port and kept in a cache directory.
#include "gateway/proxy/image_fetch.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/mapped_file.h"
#include "base/sha256.h"
#include "gateway/proxy/test_util.h"

namespace iris::gateway::proxy {
namespace {

using testing_util::FakeUpstream;

class FetchImageCachedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto png = ReadFileToString(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/images/small.png");
    ASSERT_TRUE(png.ok());
    png_ = *png;
    dir_ = std::filesystem::temp_directory_path() /
           ("iris-image-cache-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    policy_.allow_private = true;  // the test server is on loopback
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<std::string> Fetch(const std::string& url, bool offline = false) {
    return FetchImageCached(policy_, ImageFetchClientOptions(policy_, {}), dir_.string(), url,
                            offline);
  }

  std::string png_;
  std::filesystem::path dir_;
  config::ImageFetchConfig policy_;
};

testing_util::FakeHandler Serve(const std::string& bytes, std::string type) {
  return [bytes, type](http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
    http::Headers headers;  // (built outside co_await: GCC 12)
    headers.Set("content-type", type);
    co_await w.Send(200, std::move(headers), bytes);
  };
}

TEST_F(FetchImageCachedTest, FetchedOnceThenReadFromTheCacheEvenOffline) {
  FakeUpstream server(Serve(png_, "image/png"));
  const std::string url = server.base_url() + "/cat.png?sig=1";
  auto first = Fetch(url);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, png_);
  // Named by the URL and the address policy that fetched it; the directory is the user's alone.
  EXPECT_TRUE(std::filesystem::exists(dir_ / Sha256::HexOf("private\n" + url)));
  EXPECT_EQ(std::filesystem::status(dir_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  auto again = Fetch(url);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, png_);
  auto offline = Fetch(url, /*offline=*/true);
  ASSERT_TRUE(offline.ok());
  EXPECT_EQ(*offline, png_);
  EXPECT_EQ(server.requests(), 1);

  // Another URL is not in the cache: offline says so, naming the host, and fetches nothing.
  auto other = Fetch(server.base_url() + "/dog.png", /*offline=*/true);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(other.status().message().find("127.0.0.1"), std::string::npos);
  EXPECT_NE(other.status().message().find("--offline"), std::string::npos);
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(FetchImageCachedTest, ADamagedCacheFileIsFetchedAgain) {
  FakeUpstream server(Serve(png_, "image/png"));
  const std::string url = server.base_url() + "/cat.png";
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / Sha256::HexOf("private\n" + url)) << "<html>not an image</html>";
  auto got = Fetch(url);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, png_);
  EXPECT_EQ(server.requests(), 1);
}

// What a looser policy fetched is not handed to a stricter one from the cache.
TEST_F(FetchImageCachedTest, TheCacheAnswersOnlyWhatThePolicyWouldFetch) {
  FakeUpstream server(Serve(png_, "image/png"));
  const std::string url = server.base_url() + "/cat.png";
  ASSERT_TRUE(Fetch(url).ok());  // allow_private
  config::ImageFetchConfig public_only;
  auto refused = FetchImageCached(public_only, ImageFetchClientOptions(public_only, {}),
                                  dir_.string(), url, /*offline=*/true);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kNotFound);
  policy_.allow_hosts = {"images.example.com"};
  auto host = Fetch(url, /*offline=*/true);
  ASSERT_FALSE(host.ok());
  EXPECT_NE(host.status().message().find("allow_hosts"), std::string::npos);
  EXPECT_EQ(server.requests(), 1);
}

// A planted link is neither read nor written through; without a cache directory nothing is
// cached and every fetch goes to the network.
TEST_F(FetchImageCachedTest, LinksAreNotFollowedAndNoDirectoryCachesNothing) {
  FakeUpstream server(Serve(png_, "image/png"));
  const std::string url = server.base_url() + "/cat.png";
  std::filesystem::create_directories(dir_);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
  const std::filesystem::path victim = dir_.string() + "-victim.png";
  std::ofstream(victim) << "the victim's own file";
  std::filesystem::create_symlink(victim, dir_ / Sha256::HexOf("private\n" + url));
  auto got = Fetch(url);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(server.requests(), 1);  // the link was not read as a cached image
  EXPECT_TRUE(std::filesystem::is_symlink(dir_ / Sha256::HexOf("private\n" + url)) ||
              std::filesystem::is_regular_file(dir_ / Sha256::HexOf("private\n" + url)));
  auto victim_bytes = ReadFileToString(victim.string());
  ASSERT_TRUE(victim_bytes.ok());
  EXPECT_EQ(*victim_bytes, "the victim's own file");
  std::filesystem::remove(victim);

  auto a = FetchImageCached(policy_, ImageFetchClientOptions(policy_, {}), "", url, false);
  auto b = FetchImageCached(policy_, ImageFetchClientOptions(policy_, {}), "", url, false);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(server.requests(), 3);
}

TEST_F(FetchImageCachedTest, ThePolicyHoldsAndNothingBadIsCached) {
  FakeUpstream png(Serve(png_, "image/png"));
  FakeUpstream html(Serve("<html>login</html>", "text/html"));
  FakeUpstream liar(Serve("GIF? no", "image/gif"));

  // Loopback is not a public address: refused before connecting.
  config::ImageFetchConfig public_only;
  auto refused = FetchImageCached(public_only, ImageFetchClientOptions(public_only, {}),
                                  dir_.string(), png.base_url() + "/a.png", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("fetching the image at 127.0.0.1"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(png.requests(), 0);

  policy_.allow_hosts = {"images.example.com"};
  auto host = Fetch(png.base_url() + "/a.png");
  ASSERT_FALSE(host.ok());
  EXPECT_NE(host.status().message().find("allow_hosts"), std::string::npos);
  policy_.allow_hosts.clear();

  auto page = Fetch(html.base_url() + "/a.png");
  ASSERT_FALSE(page.ok());
  EXPECT_NE(page.status().message().find("not an image"), std::string::npos);
  auto fake = Fetch(liar.base_url() + "/a.gif");
  ASSERT_FALSE(fake.ok());
  EXPECT_NE(fake.status().message().find("not a JPEG, PNG"), std::string::npos);

  policy_.max_bytes = static_cast<int64_t>(png_.size()) - 1;
  auto big = Fetch(png.base_url() + "/big.png");
  ASSERT_FALSE(big.ok());

  auto long_url = Fetch(png.base_url() + "/" + std::string(9000, 'a'));
  ASSERT_FALSE(long_url.ok());
  EXPECT_EQ(long_url.status().code(), ErrorCode::kInvalidArgument);

  auto not_url = Fetch("http://");
  ASSERT_FALSE(not_url.ok());

  std::error_code ec;
  EXPECT_TRUE(!std::filesystem::exists(dir_, ec) || std::filesystem::is_empty(dir_, ec));
}

// A fetch client keeps nothing of a caller's beyond the fetch: no idle connection, no URL
// (which may carry a presigned credential).
TEST(ImageFetchClientOptionsTest, KeepNeitherConnectionsNorUrls) {
  upstream::ClientOptions providers;
  providers.verify_tls = false;
  const upstream::ClientOptions o = ImageFetchClientOptions({}, providers);
  EXPECT_EQ(o.max_idle_per_host, 0u);
  EXPECT_FALSE(o.remember_urls);
  EXPECT_TRUE(providers.remember_urls);  // (the providers' client does remember its URLs)
  EXPECT_FALSE(o.verify_tls);
}

}  // namespace
}  // namespace iris::gateway::proxy
