// Pull against a fake hub on loopback that speaks the hub's wire format: the revision API,
// /resolve/ with a 302 to a CDN path for LFS files, ETag / X-Linked-Etag / X-Repo-Commit,
// Range requests, plus cut connections, corrupt bytes, 401 and 404; over plain HTTP, and over
// TLS directly or through the loopback forward proxy of net/test_util.h.
#include "engine/hub/pull.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/hub/cache.h"
#include "net/test_util.h"

namespace iris::hub {
namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

const std::string kRepo = "org/tiny";
const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct HubFile {
  std::string bytes;
  std::string etag;  // quoted on the wire
  bool lfs = false;
};

// A hub on 127.0.0.1 (port 0): one connection at a time, Connection: close; over TLS with
// `tls` (which must outlive the hub).
class FakeHub {
 public:
  explicit FakeHub(ssl::context* tls = nullptr)
      : tls_(tls), acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeHub() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(ioc_);
    poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    thread_.join();
  }
  std::string scheme() const { return tls_ ? "https" : "http"; }
  unsigned short port() const { return port_; }
  std::string endpoint(const std::string& host = "127.0.0.1") const {
    return scheme() + "://" + host + ":" + std::to_string(port_);
  }

  std::mutex mu;
  std::map<std::string, HubFile> files;
  std::string corrupt_file;  // served with one byte flipped
  std::string cut_file;      // connection closed after cut_after bytes, once
  size_t cut_after = 0;
  bool ignore_range = false;           // answer 200 with the whole file to a Range request
  int api_status = 200;                // 401 / 404 for the revision API
  bool relative_redirect = false;      // Location: /cdn/... instead of an absolute URL
  std::string cdn_host = "127.0.0.1";  // host named in absolute redirects
  int stall_ms = 0;                    // wait this long before answering
  std::vector<std::string> log;        // "METHOD target [range] [auth]"

 private:
  void Loop() {
    while (!stop_) {
      tcp::socket sock(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (stop_ || ec) continue;
      if (tls_ == nullptr) {
        Serve(sock);
        continue;
      }
      ssl::stream<tcp::socket&> stream(sock, *tls_);
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) Serve(stream);
    }
  }

  static std::string Response(int status, const std::string& reason,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              size_t content_length) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    out += "Content-Length: " + std::to_string(content_length) + "\r\nConnection: close\r\n\r\n";
    return out;
  }

  template <typename Stream>
  void Serve(Stream& sock) {
    beast::flat_buffer buffer;
    http::request<http::empty_body> req;
    boost::system::error_code ec;
    http::read(sock, buffer, req, ec);
    if (ec) return;
    const std::string method(req.method_string());
    const std::string target(req.target());
    const std::string range(req[http::field::range]);
    const bool head = req.method() == http::verb::head;
    std::string out;
    std::string body;
    size_t send_body = std::string::npos;  // bytes of body to send before closing
    {
      std::lock_guard<std::mutex> lock(mu);
      log.push_back(method + " " + target + (range.empty() ? "" : " " + range) +
                    (req[http::field::authorization].empty()
                         ? ""
                         : " " + std::string(req[http::field::authorization])));
      const std::string api = "/api/models/" + kRepo + "/revision/";
      const std::string resolve = "/" + kRepo + "/resolve/";
      if (target.rfind("/api/models/", 0) == 0) {
        if (target.rfind(api, 0) != 0) {
          body = R"({"error":"Repository not found"})";
          out = Response(404, "Not Found", {{"X-Error-Code", "RepoNotFound"}}, body.size());
        } else if (api_status != 200) {
          body = R"({"error":"Access to model org/tiny is restricted."})";
          out = Response(api_status, "Unauthorized", {{"X-Error-Code", "GatedRepo"}}, body.size());
        } else {
          boost::json::array siblings;
          for (const auto& [name, f] : files) {
            boost::json::object s{{"rfilename", name}, {"size", f.bytes.size()}};
            if (f.lfs) {
              s["lfs"] = boost::json::object{{"sha256", f.etag}, {"size", f.bytes.size()}};
            }
            siblings.push_back(s);
          }
          siblings.push_back(boost::json::object{{"rfilename", "README.md"}, {"size", 5}});
          body =
              boost::json::serialize(boost::json::object{{"sha", kCommit}, {"siblings", siblings}});
          out = Response(200, "OK", {{"Content-Type", "application/json"}}, body.size());
        }
      } else if (target.rfind(resolve, 0) == 0) {
        std::string rest = target.substr(resolve.size());  // <rev>/<file>
        const std::string name = rest.substr(rest.find('/') + 1);
        auto it = files.find(name);
        if (it == files.end()) {
          out = Response(404, "Not Found", {{"X-Error-Code", "EntryNotFound"}}, 0);
        } else if (it->second.lfs) {
          out = Response(302, "Found",
                         {{"Location", (relative_redirect ? ""
                                                          : scheme() + "://" + cdn_host + ":" +
                                                                std::to_string(port_)) +
                                           "/cdn/" + it->second.etag},
                          {"ETag", "\"not-the-blob\""},
                          {"X-Linked-Etag", "\"" + it->second.etag + "\""},
                          {"X-Linked-Size", std::to_string(it->second.bytes.size())},
                          {"X-Repo-Commit", kCommit}},
                         0);
        } else {
          body = it->second.bytes;
          out = Response(200, "OK",
                         {{"ETag", "W/\"" + it->second.etag + "\""}, {"X-Repo-Commit", kCommit}},
                         body.size());
        }
      } else if (target.rfind("/cdn/", 0) == 0) {
        const std::string etag = target.substr(5);
        const HubFile* f = nullptr;
        std::string name;
        for (const auto& [n, file] : files) {
          if (file.etag == etag) f = &file, name = n;
        }
        if (!f) {
          out = Response(404, "Not Found", {}, 0);
        } else {
          body = f->bytes;
          if (name == corrupt_file) body[body.size() / 2] ^= 0x5a;
          size_t from = 0;
          if (!range.empty() && !ignore_range && range.rfind("bytes=", 0) == 0) {
            from = std::stoul(range.substr(6));
          }
          if (from > 0) {
            out = Response(206, "Partial Content",
                           {{"ETag", "\"" + etag + "\""},
                            {"Content-Range", "bytes " + std::to_string(from) + "-" +
                                                  std::to_string(body.size() - 1) + "/" +
                                                  std::to_string(body.size())}},
                           body.size() - from);
            body = body.substr(from);
          } else {
            out = Response(200, "OK", {{"ETag", "\"" + etag + "\""}}, body.size());
          }
          if (name == cut_file && !head) {
            send_body = cut_after;
            cut_file.clear();
          }
        }
      } else {
        out = Response(404, "Not Found", {}, 0);
      }
    }
    if (!head) out += body.substr(0, send_body);
    int stall_ms_now = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      stall_ms_now = stall_ms;
    }
    if (stall_ms_now > 0) std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms_now));
    asio::write(sock, asio::buffer(out), ec);
    beast::get_lowest_layer(sock).shutdown(tcp::socket::shutdown_both, ec);
  }

  ssl::context* tls_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("iris_hub_pull_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    const fs::path src = fs::path(IRIS_TEST_DATA_DIR) / "smolvlm2" / "tiny-256m-style";
    int n = 0;
    for (const char* name :
         {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
          "added_tokens.json", "chat_template.json", "preprocessor_config.json",
          "processor_config.json", "generation_config.json", "model.safetensors", "vocab.json"}) {
      HubFile f;
      f.bytes = ReadAll(src / name);
      f.lfs = std::string(name) == "model.safetensors";
      if (f.lfs) {
        auto sha = Sha256File((src / name).string());
        ASSERT_TRUE(sha.ok());
        f.etag = *sha;
      } else {
        f.etag = "e" + std::to_string(++n) + "b1a2c3";
      }
      hub_.files[name] = f;
    }
    options_.endpoint = hub_.endpoint();
    options_.cache_dir = (root_ / "hub").string();
    options_.token = "hf_secret";
    options_.http.connect_timeout = std::chrono::milliseconds(5000);
    options_.http.idle_timeout = std::chrono::milliseconds(5000);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path RepoDir() const { return fs::path(options_.cache_dir) / "models--org--tiny"; }
  fs::path Snapshot() const { return RepoDir() / "snapshots" / kCommit; }
  bool LooksComplete() const {
    ResolveOptions ro;
    ro.cache_dir = options_.cache_dir;
    return ResolveModel(kRepo, ro).ok();
  }
  std::vector<std::string> Log() {
    std::lock_guard<std::mutex> lock(hub_.mu);
    return hub_.log;
  }

  fs::path root_;
  FakeHub hub_;
  PullOptions options_;
};

TEST_F(PullTest, CompletePullHasTheHuggingFaceHubLayout) {
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->commit, kCommit);
  EXPECT_EQ(r->snapshot_dir, Snapshot().string());
  EXPECT_EQ(ReadAll(RepoDir() / "refs" / "main"), kCommit);
  for (const auto& [name, f] : hub_.files) {
    const fs::path link = Snapshot() / name;
    if (name == "vocab.json") {  // not needed by the engine
      EXPECT_FALSE(fs::exists(link));
      continue;
    }
    ASSERT_TRUE(fs::is_symlink(link)) << name;
    EXPECT_EQ(fs::read_symlink(link).string(), "../../blobs/" + f.etag) << name;
    EXPECT_EQ(ReadAll(link), f.bytes) << name;
    EXPECT_TRUE(fs::is_regular_file(RepoDir() / "blobs" / f.etag)) << name;
  }
  EXPECT_FALSE(fs::exists(Snapshot() / "README.md"));
  for (const auto& entry : fs::directory_iterator(RepoDir() / "blobs")) {
    EXPECT_EQ(entry.path().extension(), "") << entry.path();  // no .incomplete left
  }
  EXPECT_TRUE(LooksComplete());
  const auto log = Log();
  bool redirected = false, auth = false;
  for (const std::string& line : log) {
    redirected |= line.rfind("GET /cdn/" + hub_.files["model.safetensors"].etag, 0) == 0;
    auth |=
        line.rfind("GET /api/models/org/tiny/revision/main?blobs=true Bearer hf_secret", 0) == 0;
  }
  EXPECT_TRUE(redirected);
  EXPECT_TRUE(auth);

  // A second pull finds everything in place.
  auto again = Pull(kRepo, options_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->files_downloaded, 0);
  EXPECT_EQ(again->bytes_downloaded, 0u);
}

TEST_F(PullTest, FollowsRelativeRedirects) {
  hub_.relative_redirect = true;
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(fs::read_symlink(Snapshot() / "model.safetensors").string(),
            "../../blobs/" + hub_.files["model.safetensors"].etag);
  EXPECT_EQ(ReadAll(Snapshot() / "model.safetensors"), hub_.files["model.safetensors"].bytes);
}

TEST_F(PullTest, TokenIsNotSentToAnotherHost) {
  hub_.cdn_host = "localhost";
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int cdn_requests = 0;
  for (const std::string& line : Log()) {
    if (line.find(" /cdn/") == std::string::npos) continue;
    ++cdn_requests;
    EXPECT_EQ(line.find("Bearer"), std::string::npos) << line;
  }
  EXPECT_GT(cdn_requests, 0);
}

TEST_F(PullTest, ShardedCheckpoint) {
  hub_.files.erase("model.safetensors");
  const std::string shard1 = "model-00001-of-00002.safetensors";
  const std::string shard2 = "model-00002-of-00002.safetensors";
  HubFile index;
  index.bytes = R"({"metadata": {}, "weight_map": {"a": ")" + shard1 + R"(", "b": ")" + shard2 +
                R"(", "c": ")" + shard1 + R"("}})";
  index.etag = "index0etag";
  hub_.files["model.safetensors.index.json"] = index;
  for (const std::string& name : {shard1, shard2}) {
    HubFile f;
    f.bytes = std::string(70000, name[10]) + name;
    f.lfs = true;
    const fs::path tmp = root_ / "shard.tmp";
    fs::create_directories(root_);
    std::ofstream(tmp, std::ios::binary) << f.bytes;
    f.etag = *Sha256File(tmp.string());
    hub_.files[name] = f;
  }
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const std::string& name : {shard1, shard2, std::string("model.safetensors.index.json")}) {
    EXPECT_EQ(ReadAll(Snapshot() / name), hub_.files[name].bytes) << name;
    EXPECT_EQ(fs::read_symlink(Snapshot() / name).string(), "../../blobs/" + hub_.files[name].etag);
  }
  EXPECT_TRUE(LooksComplete());
}

TEST_F(PullTest, LoraAdapterRepo) {
  hub_.files.clear();
  HubFile config, weights, readme;
  config.bytes = R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8})";
  config.etag = "adaptercfg1";
  weights.bytes = std::string(5000, 'w');
  weights.lfs = true;
  const fs::path tmp = root_ / "adapter.tmp";
  fs::create_directories(root_);
  std::ofstream(tmp, std::ios::binary) << weights.bytes;
  weights.etag = *Sha256File(tmp.string());
  readme.bytes = "# adapter";
  readme.etag = "readme1";
  hub_.files["adapter_config.json"] = config;
  hub_.files["adapter_model.safetensors"] = weights;
  hub_.files["README.md"] = readme;
  ResolveOptions ro;
  ro.cache_dir = options_.cache_dir;
  EXPECT_EQ(ResolveAdapter(kRepo, ro).status().code(), ErrorCode::kNotFound);
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(Snapshot() / "adapter_config.json"), config.bytes);
  EXPECT_EQ(ReadAll(Snapshot() / "adapter_model.safetensors"), weights.bytes);
  EXPECT_FALSE(fs::exists(Snapshot() / "README.md"));
  auto dir = ResolveAdapter(kRepo, ro);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*dir, Snapshot().string());
  EXPECT_FALSE(LooksComplete());  // not a checkpoint

  // A caller that wants a model is told, before any download, that this is an adapter; and
  // one that wants an adapter, that a checkpoint is not one.
  fs::remove_all(options_.cache_dir);
  PullOptions want_model = options_;
  want_model.expect = PullOptions::Expect::kModel;
  auto wrong = Pull(kRepo, want_model);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("is a LoRA adapter, not a model"), std::string::npos);
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs"));

  // Without safetensors weights it says what is missing.
  fs::remove_all(options_.cache_dir);
  hub_.files.erase("adapter_model.safetensors");
  auto bad = Pull(kRepo, options_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("without adapter_model.safetensors"), std::string::npos);
}

TEST_F(PullTest, ACheckpointIsNotTakenForAnAdapter) {
  PullOptions want_adapter = options_;
  want_adapter.expect = PullOptions::Expect::kAdapter;
  auto r = Pull(kRepo, want_adapter);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is a model checkpoint, not a LoRA adapter"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs"));
}

TEST_F(PullTest, DiskErrorsAreReported) {
  fs::create_directories(root_);
  std::ofstream(root_ / "file") << "x";
  options_.cache_dir = (root_ / "file").string();  // a file where the cache should be
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("disk error: cannot create", 0), 0u) << r.status().message();
}

TEST_F(PullTest, ConcurrentPullOfTheSameBlobIsRefused) {
  const fs::path lock = fs::path(options_.cache_dir) / ".locks" / "models--org--tiny" /
                        (hub_.files["model.safetensors"].etag + ".lock");
  fs::create_directories(lock.parent_path());
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto r = Pull(kRepo, options_);
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("another pull is downloading it"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(LooksComplete());
  EXPECT_TRUE(Pull(kRepo, options_).ok());  // lock released
}

TEST_F(PullTest, StalledServerTimesOut) {
  hub_.stall_ms = 1500;
  options_.http.idle_timeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
}

TEST_F(PullTest, CommitRevisionWritesNoRef) {
  auto r = Pull(kRepo + "@" + kCommit, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(fs::exists(RepoDir() / "refs" / kCommit));
  ResolveOptions ro;
  ro.cache_dir = options_.cache_dir;
  EXPECT_TRUE(ResolveModel(kRepo + "@" + kCommit, ro).ok());
}

TEST_F(PullTest, CutDownloadResumesWithRange) {
  hub_.cut_file = "model.safetensors";
  hub_.cut_after = 100000;
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("again to resume"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(LooksComplete());
  EXPECT_FALSE(fs::exists(Snapshot() / "config.json"));
  const fs::path partial =
      RepoDir() / "blobs" / (hub_.files["model.safetensors"].etag + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), 100000u);

  auto resumed = Pull(kRepo, options_);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(ReadAll(Snapshot() / "model.safetensors"), hub_.files["model.safetensors"].bytes);
  EXPECT_EQ(resumed->bytes_downloaded, hub_.files["model.safetensors"].bytes.size() - 100000 +
                                           hub_.files["config.json"].bytes.size());
  bool ranged = false;
  for (const std::string& line : Log()) ranged |= line.find(" bytes=100000-") != std::string::npos;
  EXPECT_TRUE(ranged);
  EXPECT_TRUE(LooksComplete());
}

TEST_F(PullTest, ResumeWhenTheServerIgnoresTheRange) {
  hub_.cut_file = "model.safetensors";
  hub_.cut_after = 4096;
  ASSERT_FALSE(Pull(kRepo, options_).ok());
  hub_.ignore_range = true;
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(Snapshot() / "model.safetensors"), hub_.files["model.safetensors"].bytes);
}

TEST_F(PullTest, CorruptWeightsAreCaughtBySha256) {
  hub_.corrupt_file = "model.safetensors";
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(r.status().message().find("sha256 mismatch"), std::string::npos);
  EXPECT_NE(r.status().message().find("iris pull org/tiny"), std::string::npos);
  EXPECT_FALSE(LooksComplete());
  EXPECT_FALSE(fs::exists(Snapshot() / "config.json"));
  EXPECT_FALSE(fs::exists(Snapshot() / "model.safetensors"));
  const std::string etag = hub_.files["model.safetensors"].etag;
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / etag));
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / (etag + ".incomplete")));
}

TEST_F(PullTest, GatedRepoSays401) {
  hub_.api_status = 401;
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("org/tiny is gated or private"), std::string::npos);
  EXPECT_NE(r.status().message().find("set HF_TOKEN"), std::string::npos);
}

TEST_F(PullTest, UnknownRepoIsNotFound) {
  auto r = Pull("org/missing", options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("org/missing not found"), std::string::npos)
      << r.status().message();
}

TEST_F(PullTest, UnreachableEndpointSaysCheckTheConnection) {
  unsigned short port = 0;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  options_.endpoint = "http://127.0.0.1:" + std::to_string(port);
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(r.status().message().rfind("cannot reach " + options_.endpoint + ": ", 0), 0u)
      << r.status().message();
  EXPECT_NE(r.status().message().find("set HF_ENDPOINT"), std::string::npos);
}

TEST_F(PullTest, OfflineNeverTouchesTheNetwork) {
  options_.offline = true;
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("HF_HUB_OFFLINE"), std::string::npos);
  EXPECT_TRUE(Log().empty());
  // Once cached, an offline pull answers from the cache.
  options_.offline = false;
  ASSERT_TRUE(Pull(kRepo, options_).ok());
  const size_t requests = Log().size();
  options_.offline = true;
  auto cached = Pull(kRepo, options_);
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  EXPECT_EQ(cached->snapshot_dir, Snapshot().string());
  EXPECT_EQ(Log().size(), requests);
}

TEST_F(PullTest, ControlCharactersInTheTokenAreRefused) {
  options_.token = "hf_secret\r\nX-Planted: 1";
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("HF_TOKEN"), std::string::npos);
  EXPECT_EQ(r.status().message().find("hf_secret"), std::string::npos);
  EXPECT_TRUE(Log().empty());
}

// Sets the proxy variables of the process environment for one test (the others unset) and
// puts the previous values back afterwards.
class ScopedProxyEnv {
 public:
  explicit ScopedProxyEnv(const std::map<std::string, std::string>& values) {
    for (const char* name :
         {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"}) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      auto it = values.find(name);
      if (it == values.end()) {
        ::unsetenv(name);
      } else {
        ::setenv(name, it->second.c_str(), 1);
      }
    }
  }
  ScopedProxyEnv(const ScopedProxyEnv&) = delete;
  ScopedProxyEnv& operator=(const ScopedProxyEnv&) = delete;
  ~ScopedProxyEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The proxy settings `iris pull` takes from an environment holding `values`.
net::ProxySettings ProxyFromEnv(const std::map<std::string, std::string>& values) {
  ScopedProxyEnv env(values);
  Result<PullOptions> options = PullOptionsFromEnv();
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return options.ok() ? options->http.proxy : net::ProxySettings();
}

TEST(PullOptionsTest, ProxiesComeFromTheEnvironment) {
  net::ProxySettings proxy = ProxyFromEnv({{"HTTPS_PROXY", "http://upper:1"},
                                           {"https_proxy", "http://lower:3128"},
                                           {"NO_PROXY", "internal.example"}});
  ASSERT_TRUE(proxy.https_proxy.has_value());
  EXPECT_EQ(proxy.https_proxy->host, "lower");
  EXPECT_EQ(proxy.https_proxy->port, 3128);
  EXPECT_EQ(proxy.ProxyFor("https", "huggingface.co"), &*proxy.https_proxy);
  EXPECT_EQ(proxy.ProxyFor("https", "cdn.internal.example"), nullptr);
  EXPECT_EQ(proxy.ProxyFor("http", "huggingface.co"), nullptr);
  ScopedProxyEnv bad(std::map<std::string, std::string>{{"HTTPS_PROXY", "socks5://p:1080"}});
  Result<PullOptions> refused = PullOptionsFromEnv();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("HTTPS_PROXY"), std::string::npos);
}

TEST_F(PullTest, PlainHttpGoesToTheProxyInAbsoluteForm) {
  net::testing::LoopbackProxy proxy;
  const std::string proxy_url = "http://user:pass@127.0.0.1:" + std::to_string(proxy.port());
  options_.http.proxy = ProxyFromEnv({{"http_proxy", proxy_url}});
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(Snapshot() / "model.safetensors"), hub_.files["model.safetensors"].bytes);
  const std::vector<std::string> heads = proxy.heads();
  ASSERT_EQ(heads.size(), Log().size());  // every request the hub saw came through the proxy
  const std::string origin = "http://127.0.0.1:" + std::to_string(hub_.port());
  EXPECT_EQ(heads[0].rfind("GET " + origin + "/api/models/org/tiny/revision/main?blobs=true ", 0),
            0u)
      << heads[0];
  for (const std::string& head : heads) {
    EXPECT_NE(head.find(" " + origin + "/"), std::string::npos) << head;
    EXPECT_NE(head.find("Proxy-Authorization: Basic dXNlcjpwYXNz"), std::string::npos) << head;
  }
}

// The hub over TLS (a certificate for localhost made at test time), reached through the
// loopback CONNECT proxy or directly.
class PullOverTlsTest : public PullTest {
 protected:
  void SetUp() override {
    PullTest::SetUp();
    ASSERT_TRUE(certificate_.ok());
    tls_.use_certificate_chain_file(certificate_.cert());
    tls_.use_private_key_file(certificate_.key(), ssl::context::pem);
    tls_hub_ = std::make_unique<FakeHub>(&tls_);
    tls_hub_->files = hub_.files;
    tls_hub_->cdn_host = "localhost";
    options_.endpoint = tls_hub_->endpoint("localhost");
    options_.http.ca_file = certificate_.cert();
  }
  void TearDown() override {
    tls_hub_.reset();
    PullTest::TearDown();
  }
  std::vector<std::string> TlsLog() {
    std::lock_guard<std::mutex> lock(tls_hub_->mu);
    return tls_hub_->log;
  }
  std::string Connect() const {
    return "CONNECT localhost:" + std::to_string(tls_hub_->port()) + " HTTP/1.1";
  }

  net::testing::TempCertificate certificate_;
  ssl::context tls_{ssl::context::tls_server};
  std::unique_ptr<FakeHub> tls_hub_;
};

TEST_F(PullOverTlsTest, DownloadsThroughAConnectProxy) {
  net::testing::LoopbackProxy proxy;
  options_.http.proxy = ProxyFromEnv({{"HTTPS_PROXY", proxy.url()}});
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(Snapshot() / "model.safetensors"), hub_.files["model.safetensors"].bytes);
  EXPECT_TRUE(LooksComplete());
  // One tunnel per request (Connection: close), each to the hub, and the hub saw them all.
  const std::vector<std::string> lines = proxy.request_lines();
  const std::vector<std::string> served = TlsLog();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.size(), served.size());
  for (const std::string& line : lines) EXPECT_EQ(line, Connect());
  bool cdn = false, token = false;
  for (const std::string& line : served) {
    cdn |= line.rfind("GET /cdn/" + hub_.files["model.safetensors"].etag, 0) == 0;
    token |= line.find("Bearer hf_secret") != std::string::npos;
  }
  EXPECT_TRUE(cdn);
  EXPECT_TRUE(token);  // inside the tunnel: the proxy never sees it
  for (const std::string& head : proxy.heads()) {
    EXPECT_EQ(head.find("hf_secret"), std::string::npos) << head;
  }
  EXPECT_TRUE(Log().empty());  // the plain hub was never asked
}

TEST_F(PullOverTlsTest, NoProxyGoesDirect) {
  net::testing::LoopbackProxy proxy;
  options_.http.proxy =
      ProxyFromEnv({{"https_proxy", proxy.url()}, {"no_proxy", "example.org,localhost"}});
  auto r = Pull(kRepo, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(Snapshot() / "model.safetensors"), hub_.files["model.safetensors"].bytes);
  EXPECT_TRUE(proxy.request_lines().empty());
  EXPECT_FALSE(TlsLog().empty());
}

TEST_F(PullOverTlsTest, ProxyRefusalSaysWhoRefused) {
  net::testing::LoopbackProxy proxy(/*refuse_status=*/407);
  options_.http.proxy = ProxyFromEnv({{"HTTPS_PROXY", proxy.url()}});
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot reach " + options_.endpoint), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find(
                "proxy 127.0.0.1:" + std::to_string(proxy.port()) +
                " refused CONNECT to localhost:" + std::to_string(tls_hub_->port()) + ": HTTP 407"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(proxy.request_lines().size(), 1u);
  EXPECT_TRUE(TlsLog().empty());
}

TEST_F(PullOverTlsTest, UntrustedCertificateIsRefused) {
  options_.http.ca_file.clear();  // the system store does not know the test certificate
  auto r = Pull(kRepo, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("not trusted"), std::string::npos) << r.status().message();
  EXPECT_TRUE(TlsLog().empty());
}

TEST(Sha256Test, KnownDigest) {
  const fs::path p = fs::temp_directory_path() / ("iris_sha_" + std::to_string(::getpid()));
  std::ofstream(p, std::ios::binary) << "abc";
  auto sha = Sha256File(p.string());
  fs::remove(p);
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace iris::hub
