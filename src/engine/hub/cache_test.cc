// The resolver against a hub cache tree built here as huggingface_hub lays it out.
#include "engine/hub/cache.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace iris::hub {
namespace {

namespace fs = std::filesystem;

const std::string kMainCommit(40, 'a');
const std::string kOldCommit(40, 'b');

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Saves and restores an environment variable around a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("iris_hub_cache_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    cache_ = root_ / "hub";
    const fs::path repo = cache_ / "models--HuggingFaceTB--SmolVLM2-500M-Video-Instruct";
    WriteFile(repo / "blobs" / "cfg1",
              R"({"text_config": {"hidden_size": 960}, "torch_dtype": "bfloat16"})");
    WriteFile(repo / "blobs" / "w1", "weights");
    WriteFile(repo / "blobs" / "cfg2", R"({"text_config": {"hidden_size": 576}})");
    WriteFile(repo / "refs" / "main", kMainCommit + "\n");
    WriteFile(repo / "refs" / "v1", kOldCommit);
    for (const auto& [commit, cfg] :
         {std::pair{kMainCommit, "cfg1"}, std::pair{kOldCommit, "cfg2"}}) {
      const fs::path snap = repo / "snapshots" / commit;
      fs::create_directories(snap);
      fs::create_symlink(fs::path("../../blobs") / cfg, snap / "config.json");
      fs::create_symlink("../../blobs/w1", snap / "model.safetensors");
    }
    options_.cache_dir = cache_.string();
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
  fs::path cache_;
  ResolveOptions options_;
};

TEST_F(CacheTest, ParsesRepoSpecsAndShortNames) {
  auto r = ParseRepoSpec("org/name@v2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repo_id, "org/name");
  EXPECT_EQ(r->revision, "v2");
  EXPECT_TRUE(r->explicit_revision);
  EXPECT_EQ(ParseRepoSpec("org/name")->revision, "main");
  EXPECT_EQ(ParseRepoSpec("smolvlm2-256m")->repo_id, "HuggingFaceTB/SmolVLM2-256M-Video-Instruct");
  EXPECT_EQ(ParseRepoSpec("smolvlm2-500m")->repo_id, "HuggingFaceTB/SmolVLM2-500M-Video-Instruct");
  EXPECT_EQ(ParseRepoSpec("smolvlm2-2.2b")->repo_id, "HuggingFaceTB/SmolVLM2-2.2B-Instruct");
  EXPECT_FALSE(ParseRepoSpec("nodir").ok());
  EXPECT_FALSE(ParseRepoSpec("a/b/c").ok());
  EXPECT_FALSE(ParseRepoSpec("a/../b").ok());
  EXPECT_FALSE(ParseRepoSpec("org/name@").ok());
}

TEST_F(CacheTest, ResolvesMainThroughRefs) {
  auto dir = ResolveModel("HuggingFaceTB/SmolVLM2-500M-Video-Instruct", options_);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(fs::path(*dir).filename().string(), kMainCommit);
  EXPECT_TRUE(fs::is_regular_file(fs::path(*dir) / "config.json"));
}

TEST_F(CacheTest, ShortNameResolves) {
  auto dir = ResolveModel("smolvlm2-500m", options_);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(fs::path(*dir).filename().string(), kMainCommit);
}

TEST_F(CacheTest, RevisionAsBranchAndAsCommit) {
  auto by_tag = ResolveModel("HuggingFaceTB/SmolVLM2-500M-Video-Instruct@v1", options_);
  ASSERT_TRUE(by_tag.ok()) << by_tag.status().ToString();
  EXPECT_EQ(fs::path(*by_tag).filename().string(), kOldCommit);
  auto by_commit = ResolveModel("smolvlm2-500m@" + kOldCommit, options_);
  ASSERT_TRUE(by_commit.ok()) << by_commit.status().ToString();
  EXPECT_EQ(fs::path(*by_commit).filename().string(), kOldCommit);
  EXPECT_FALSE(ResolveModel("smolvlm2-500m@nosuchbranch", options_).ok());
  EXPECT_FALSE(ResolveModel("smolvlm2-500m@" + std::string(40, 'c'), options_).ok());
}

TEST_F(CacheTest, LocalDirectoryWins) {
  const fs::path local = root_ / "local";
  fs::create_directories(local);
  auto dir = ResolveModel(local.string(), options_);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(*dir, local.string());
}

TEST_F(CacheTest, NotFoundSuggestsPull) {
  auto dir = ResolveModel("smolvlm2-2.2b", options_);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(dir.status().message().find("iris pull HuggingFaceTB/SmolVLM2-2.2B-Instruct"),
            std::string::npos)
      << dir.status().message();
}

TEST_F(CacheTest, IncompleteSnapshotIsNotFound) {
  // A pull cut before config.json was linked: weights only.
  const fs::path repo = cache_ / "models--org--partial";
  WriteFile(repo / "refs" / "main", kMainCommit);
  WriteFile(repo / "blobs" / "w", "w");
  fs::create_directories(repo / "snapshots" / kMainCommit);
  fs::create_symlink("../../blobs/w", repo / "snapshots" / kMainCommit / "model.safetensors");
  auto dir = ResolveModel("org/partial", options_);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("iris pull org/partial"), std::string::npos);
}

TEST_F(CacheTest, CacheDirFromEnvironment) {
  ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
  {
    ScopedEnv home("HOME", "/home/someone");
    ScopedEnv hf_home("HF_HOME", nullptr);
    ScopedEnv hub_cache("HF_HUB_CACHE", nullptr);
    EXPECT_EQ(DefaultHubCacheDir(), "/home/someone/.cache/huggingface/hub");
  }
  {
    ScopedEnv hf_home("HF_HOME", "/data/hf");
    ScopedEnv hub_cache("HF_HUB_CACHE", nullptr);
    EXPECT_EQ(DefaultHubCacheDir(), "/data/hf/hub");
  }
  {
    ScopedEnv hf_home("HF_HOME", "/data/hf");
    ScopedEnv hub_cache("HF_HUB_CACHE", cache_.c_str());
    EXPECT_EQ(DefaultHubCacheDir(), cache_.string());
    // The default options follow the environment.
    EXPECT_TRUE(ResolveModel("smolvlm2-500m").ok());
  }
  {
    ScopedEnv hf_home("HF_HOME", root_.c_str());  // root_/hub == cache_
    ScopedEnv hub_cache("HF_HUB_CACHE", nullptr);
    EXPECT_TRUE(ResolveModel("smolvlm2-500m").ok());
  }
}

TEST_F(CacheTest, ListsSnapshots) {
  auto models = ListModels(cache_.string());
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  ASSERT_EQ(models->size(), 2u);
  const CachedModel& main = (*models)[0].commit == kMainCommit ? (*models)[0] : (*models)[1];
  const CachedModel& old = (*models)[0].commit == kMainCommit ? (*models)[1] : (*models)[0];
  EXPECT_EQ(main.repo_id, "HuggingFaceTB/SmolVLM2-500M-Video-Instruct");
  EXPECT_EQ(main.revision, "main");
  EXPECT_EQ(main.family, "500M");
  EXPECT_EQ(main.dtype, "bfloat16");
  EXPECT_TRUE(main.complete);
  EXPECT_GT(main.size_bytes, 7u);
  EXPECT_EQ(old.revision, "v1");
  EXPECT_EQ(old.family, "256M");
  EXPECT_FALSE(ListModels(cache_.string(), {(root_ / "nothing").string()}).ok());
  auto none = ListModels((root_ / "missing").string());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace iris::hub
