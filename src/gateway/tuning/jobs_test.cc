// The server's fine-tuning jobs on the tiny checkpoint: the request body is read strictly, a
// job trains to the end and keeps its loss curve, one runs at a time, a stopped job keeps its
// checkpoint and a resumed one continues it, and from_log trains on the request log's stored
// answers.
#include "gateway/tuning/jobs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/test_data.h"
#include "base/time.h"
#include "gateway/observe/store.h"

namespace iris::gateway::tuning {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class JobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("iris_jobs_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string s;
    for (int i = 0; i < 6; ++i) {
      s += R"({"messages": [{"role": "user", "content": "Box )" + std::to_string(i) +
           R"(?"}, {"role": "assistant", "content": "Box )" + std::to_string(i) + " is red.\"}]}\n";
    }
    s += "not json\n";
    data_ = (dir_ / "train.jsonl").string();
    std::ofstream(data_) << s;
  }
  void TearDown() override { fs::remove_all(dir_); }

  JobsOptions Options() const {
    JobsOptions o;
    o.model_dir = TestData("smolvlm2/tiny-256m-style");
    o.base_model = "tiny";
    o.adapters_dir = (dir_ / "adapters").string();
    o.store = "none";
    o.threads = 2;
    return o;
  }
  JobRequest Request(const std::string& body) const {
    auto r = ParseJobRequest(json::parse(body));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : JobRequest{};
  }
  // Waits until the job has finished (or `until` holds), at most 120 s.
  static JobView Wait(Jobs& jobs, const std::string& id,
                      const std::function<bool(const JobView&)>& until = nullptr) {
    JobView v;
    for (int i = 0; i < 12000; ++i) {
      v = *jobs.Get(id);
      if (until ? until(v)
                : v.state == JobState::kDone || v.state == JobState::kFailed ||
                      v.state == JobState::kCancelled) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return v;
  }

  fs::path dir_;
  std::string data_;
};

TEST_F(JobsTest, TheRequestIsReadStrictly) {
  const std::string good = R"({"name": "mine", "data": ")" + data_ + R"("})";
  struct Case {
    std::string body, error;
  };
  const Case cases[] = {
      {R"({"data": ")" + data_ + R"("})", "name"},
      {R"({"name": "../etc", "data": ")" + data_ + R"("})", "not a usable adapter name"},
      {R"({"name": ".hidden", "data": ")" + data_ + R"("})", "not a usable adapter name"},
      {R"({"name": ")" + std::string(65, 'a') + R"(", "data": ")" + data_ + R"("})",
       "not a usable adapter name"},
      {R"({"name": "a"})", "give the training data"},
      {R"({"name": "a", "data": ")" + data_ + R"(", "from_log": {"model": "m"}})", "one of them"},
      {R"({"name": "a", "data": "relative.jsonl"})", "data: an absolute path"},
      {R"({"name": "a", "data": "/nonexistent/x.jsonl"})", "is not a readable file"},
      {R"({"name": "a", "from_log": {"model": "m", "since": "yesterday"}})",
       "from_log.since yesterday: expected a duration"},
      {R"({"name": "a", "from_log": {"model": "m", "extra": 1}})", "from_log.extra: not a field"},
      {R"({"name": "a", "from_log": {}})", "from_log.model"},
      {R"({"name": "a", "data": ")" + data_ + R"(", "rank": 0})", "rank: must be between 1"},
      {R"({"name": "a", "data": ")" + data_ + R"(", "lr": 5})", "lr"},
      {R"({"name": "a", "data": ")" + data_ + R"(", "epochs": "3"})", "epochs"},
      {R"({"name": "a", "data": ")" + data_ + R"(", "bad_lines": "ignore"})", "bad_lines"},
      {R"({"name": "a", "data": ")" + data_ + R"(", "output_dir": "/tmp"})",
       "\"output_dir\": not a field"},
      {R"([1, 2])", "body"},
  };
  for (const Case& c : cases) {
    auto r = ParseJobRequest(json::parse(c.body));
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << c.body;
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << c.body << " -> " << r.status().message();
  }
  JobRequest r = Request(R"({"name": "mine", "data": ")" + data_ +
                         R"(", "rank": 4, "alpha": 8, "lr": 0.001, "max_steps": 7,
                            "target_modules": ["q_proj", "v_proj"], "bad_lines": "fail",
                            "seed": 3, "resume": true})");
  EXPECT_EQ(r.name, "mine");
  EXPECT_EQ(r.options.lora.rank, 4);
  EXPECT_EQ(r.options.lora.alpha, 8);
  EXPECT_EQ(r.options.max_steps, 7);
  EXPECT_EQ(r.options.lora.targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_FALSE(r.skip_bad_lines);
  EXPECT_TRUE(r.resume);
  JobRequest log = Request(R"({"name": "d", "from_log": {"model": "openai/gpt-4o-mini"}})");
  ASSERT_TRUE(log.from_log.has_value());
  EXPECT_EQ(log.from_log->since, "30d");
  EXPECT_TRUE(log.from_log->redact_keys);  // (on unless turned off)
  (void)good;
}

TEST_F(JobsTest, AJobTrainsKeepsItsCurveAndRunsAlone) {
  Jobs jobs(Options());
  auto started = jobs.Start(Request(R"({"name": "mine", "data": ")" + data_ +
                                    R"(", "max_steps": 6, "rank": 2, "lr": 0.01})"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  // A second one while it runs: refused with the running job's id.
  auto second = jobs.Start(Request(R"({"name": "other", "data": ")" + data_ + R"("})"));
  if (jobs.Get(started->id)->state != JobState::kDone) {
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find(started->id), std::string::npos);
  }
  JobView v = Wait(jobs, started->id);
  ASSERT_EQ(v.state, JobState::kDone) << v.error;
  EXPECT_EQ(v.step, 6);
  EXPECT_EQ(v.total_steps, 6);
  EXPECT_EQ(v.examples, 6u);
  EXPECT_EQ(v.skipped_lines, 1u);  // "not json" (bad_lines defaults to skip here)
  ASSERT_EQ(v.skipped.size(), 1u);
  EXPECT_NE(v.skipped[0].find("train.jsonl:7: "), std::string::npos) << v.skipped[0];
  ASSERT_EQ(v.points.size(), 6u);
  for (size_t i = 0; i < v.points.size(); ++i) {
    EXPECT_EQ(v.points[i].step, static_cast<int64_t>(i + 1));
    EXPECT_GT(v.points[i].loss, 0);
  }
  EXPECT_TRUE(fs::exists(dir_ / "adapters/mine/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "adapters/mine/adapter_config.json"));
  const json::object o = JobJson(v, true);
  EXPECT_EQ(o.at("status"), "done");
  EXPECT_EQ(o.at("points").as_array().size(), 6u);
  EXPECT_DOUBLE_EQ(o.at("loss").as_double(), v.points.back().loss);

  // The name is taken now: another job of that name must say resume.
  auto again = jobs.Start(Request(R"({"name": "mine", "data": ")" + data_ + R"("})"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("\"resume\": true"), std::string::npos);
  // A job failing on its data says why, by line.
  auto strict =
      jobs.Start(Request(R"({"name": "strict", "data": ")" + data_ + R"(", "bad_lines": "fail"})"));
  ASSERT_TRUE(strict.ok());
  JobView failed = Wait(jobs, strict->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_NE(failed.error.find("line 7"), std::string::npos) << failed.error;
  ASSERT_EQ(jobs.List().size(), 2u);
  EXPECT_EQ(jobs.List()[0].id, strict->id);  // newest first
  EXPECT_TRUE(jobs.List()[0].points.empty());
  EXPECT_EQ(jobs.Get("ft_nope").status().code(), ErrorCode::kNotFound);
}

TEST_F(JobsTest, AStoppedJobKeepsItsCheckpointAndResumes) {
  Jobs jobs(Options());
  auto started = jobs.Start(Request(R"({"name": "long", "data": ")" + data_ +
                                    R"(", "max_steps": 100000, "rank": 2, "save_every": 0})"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Wait(jobs, started->id,
       [](const JobView& v) { return v.step >= 2 || v.state >= JobState::kDone; });
  ASSERT_TRUE(jobs.Cancel(started->id).ok());
  JobView v = Wait(jobs, started->id);
  ASSERT_EQ(v.state, JobState::kCancelled) << v.error;
  EXPECT_GE(v.step, 2);
  EXPECT_LT(v.step, 100000);
  EXPECT_NE(v.message.find("resume: true"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "adapters/long/adapter_config.json"));
  auto resumed = jobs.Start(Request(R"({"name": "long", "data": ")" + data_ +
                                    R"(", "max_steps": 100000, "rank": 2, "save_every": 0,
                                       "resume": true})"));
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  const JobView r = Wait(jobs, resumed->id, [&](const JobView& x) {
    return x.step > v.step || x.state >= JobState::kDone;
  });
  EXPECT_GT(r.step, v.step);  // it continued where the first stopped
  ASSERT_TRUE(jobs.Cancel(resumed->id).ok());
  // (The destructor would stop it too; a cancelled job is reported as it is.)
  EXPECT_EQ(Wait(jobs, resumed->id).state, JobState::kCancelled);
}

TEST_F(JobsTest, FromLogTrainsOnTheStoredAnswers) {
  const std::string store = "sqlite:" + (dir_ / "log.db").string();
  {
    auto s = observe::OpenStore(store);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    std::vector<observe::RequestSummary> batch;
    for (int i = 0; i < 3; ++i) {
      observe::RequestSummary r;
      r.request_id = "req_" + std::to_string(i);
      r.start_unix_ms = NowUnixMs() - 1000 + i;
      r.provider = "openai";
      r.model = "gpt-4o-mini";
      r.http_status = 200;
      r.request_body = R"({"messages":[{"role":"user","content":"key OPERATOR-KEY-123 box )" +
                       std::to_string(i) + R"("}]})";
      r.response_body =
          R"({"choices":[{"message":{"role":"assistant","content":"Box is red."},"finish_reason":"stop"}]})";
      batch.push_back(r);
    }
    ASSERT_TRUE((*s)->Insert(batch).ok());
  }
  JobsOptions o = Options();
  o.store = store;
  o.secrets = []() -> Result<std::vector<std::string>> {
    return std::vector<std::string>{"OPERATOR-KEY-123"};
  };
  Jobs jobs(o);
  auto off = Jobs(Options()).Start(
      Request(R"({"name": "x", "from_log": {"model": "openai/gpt-4o-mini"}})"));
  ASSERT_FALSE(off.ok());
  EXPECT_NE(off.status().message().find("the request log is off"), std::string::npos);
  auto started = jobs.Start(Request(
      R"({"name": "distilled", "from_log": {"model": "openai/gpt-4o-mini", "since": "1h"},
          "max_steps": 2, "rank": 2})"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  JobView v = Wait(jobs, started->id);
  ASSERT_EQ(v.state, JobState::kDone) << v.error;
  EXPECT_EQ(v.examples, 3u);
  std::ifstream exported(dir_ / "adapters/distilled/from-log.jsonl");
  std::stringstream text;
  text << exported.rdbuf();
  EXPECT_EQ(text.str().find("OPERATOR-KEY"), std::string::npos);  // redacted by default
  EXPECT_NE(text.str().find("[REDACTED]"), std::string::npos);
  // Nothing stored from that model: the job fails and says why.
  auto none = jobs.Start(Request(R"({"name": "none", "from_log": {"model": "anthropic/x"}})"));
  ASSERT_TRUE(none.ok());
  JobView nv = Wait(jobs, none->id);
  EXPECT_EQ(nv.state, JobState::kFailed);
  EXPECT_NE(nv.error.find("nothing to export"), std::string::npos) << nv.error;
}

}  // namespace
}  // namespace iris::gateway::tuning
