// Fine-tuning jobs the server runs for its operator (POST /admin/finetune, docs/finetuning.md):
// one at a time, on a thread of their own with an engine of their own (the served model is
// never paused or shared), training a LoRA adapter for the local model on a JSONL file of the
// server's or on the gateway's own stored answers (the request log's store_bodies). Each job's
// progress (status, step, loss and eval loss per step) is kept for the dashboard's loss curve.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/train/finetune.h"
#include "gateway/observe/dataset.h"

namespace iris::gateway::tuning {

// What POST /admin/finetune asks for (ParseJobRequest reads and bounds it).
struct JobRequest {
  std::string name;  // the adapter's name: OUT = <adapters_dir>/<name>
  std::string data;  // a JSONL file on the server (absolute path), or from_log
  std::string eval;  // optional held-out JSONL (absolute path)
  struct FromLog {
    std::string model;  // the answering provider/model
    std::string since = "30d";
    bool redact_keys = true;
  };
  std::optional<FromLog> from_log;
  train::FinetuneOptions options;  // lora, lr, epochs, steps, batch tokens, seed, ...
  size_t max_seq_tokens = 0;
  // Lines that cannot be used are left out and listed in the job (bad_lines: "skip", the
  // default), or fail it (bad_lines: "fail").
  bool skip_bad_lines = true;
  bool resume = false;
};

// The body of POST /admin/finetune. Unknown keys, wrong types and values out of bounds are
// InvalidArgument naming the field.
Result<JobRequest> ParseJobRequest(const boost::json::value& body);

struct JobsOptions {
  std::string model_dir;     // the local model's checkpoint directory (a job loads its own)
  std::string mmproj;        // its vision tower, for a GGUF model given as a file
  std::string base_model;    // adapter_config.json's base_model_name_or_path
  std::string adapters_dir;  // where adapters go: <adapters_dir>/<name>
  std::string store;         // the request log's spec for from_log jobs; "none": refused
  // The operator's keys as the configuration holds them when a job starts (a reload may have
  // rotated them), redacted from exported data.
  // An error fails the job (nothing is exported unredacted).
  std::function<Result<std::vector<std::string>>()> secrets;
  // An http(s) image URL's bytes in a job's data (under the gateway's image_fetch policy,
  // cached); unset: such lines are refused.
  std::function<Result<std::string>(const std::string& url)> fetch_url;
  int threads = 0;           // compute threads of a job (0: the engine decides)
  std::string compute;       // EngineOptions::compute of a job's engine (providers.local.compute)
  size_t max_points = 1000;  // loss points kept per job (older ones thinned)
  size_t max_jobs = 20;      // finished jobs remembered
};

enum class JobState { kQueued, kExporting, kLoading, kTraining, kDone, kFailed, kCancelled };
std::string_view JobStateName(JobState state);

struct LossPoint {
  int64_t step = 0;
  double loss = 0;
  std::optional<double> eval_loss;
  double lr = 0;
};

// A job as the API shows it.
struct JobView {
  std::string id;
  std::string name;
  std::string out_dir;
  JobState state = JobState::kQueued;
  std::string error;    // kFailed: why; otherwise empty
  std::string message;  // what the job is doing or did, for a person
  int64_t created_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  int64_t step = 0;
  int64_t total_steps = 0;
  int epoch = 0;
  double tokens_per_second = 0;
  double eta_seconds = 0;
  size_t examples = 0;
  size_t skipped_lines = 0;
  std::vector<std::string> skipped;  // the first few skipped lines: "FILE:LINE: why"
  std::vector<LossPoint> points;     // thinned to at most max_points, oldest first
};
boost::json::object JobJson(const JobView& job, bool with_points);

class Jobs {
 public:
  explicit Jobs(JobsOptions options);
  ~Jobs();  // cancels a running job and waits for it to stop at a step boundary
  Jobs(const Jobs&) = delete;
  Jobs& operator=(const Jobs&) = delete;

  // Starts a job. FailedPrecondition (409) while another runs, or when the adapter's directory
  // already holds an adapter and `resume` is off; InvalidArgument for unreadable data paths and
  // from_log without a request log. Thread-safe.
  Result<JobView> Start(JobRequest request);
  // The job with this id; NotFound. Thread-safe.
  Result<JobView> Get(const std::string& id, bool with_points = true) const;
  // Newest first: the running job and the finished ones remembered. Thread-safe.
  std::vector<JobView> List(bool with_points = false) const;
  // Asks a job to stop at its next step boundary (its checkpoint and adapter are written; a
  // later job with resume continues it). NotFound; a finished job is returned as it is.
  Result<JobView> Cancel(const std::string& id);

  const JobsOptions& options() const { return options_; }

 private:
  struct Job;
  void Run(std::shared_ptr<Job> job, JobRequest request);
  Status RunJob(Job& job, JobRequest& request);
  static JobView ViewOf(const Job& job, bool with_points);

  const JobsOptions options_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Job>> jobs_;  // guarded by mu_; newest first
  std::shared_ptr<Job> running_;           // guarded by mu_
  std::thread worker_;                     // the running (or last) job's thread
};

}  // namespace iris::gateway::tuning
