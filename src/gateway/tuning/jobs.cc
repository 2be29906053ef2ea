// The fine-tuning job runner behind /admin/finetune.
#include "gateway/tuning/jobs.h"

#include <algorithm>
#include <boost/json/object.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "base/time.h"
#include "engine/runtime/engine.h"
#include "gateway/api/json_fields.h"
#include "gateway/observe/usage.h"

namespace iris::gateway::tuning {

namespace json = boost::json;
namespace fs = std::filesystem;

struct Jobs::Job {
  mutable std::mutex mu;
  JobView view;  // guarded by mu
  std::atomic<bool> stop{false};
  int64_t stride = 1;  // guarded by mu: keep one point in `stride`
};

namespace {

Status NameError(std::string_view name) {
  return InvalidArgument("name: " + api::Quote(name.substr(0, 64)) +
                         " is not a usable adapter name (1 to 64 of A-Z a-z 0-9 . _ -, not "
                         "starting with a dot)");
}

Status CheckName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return NameError(name);
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return NameError(name);
    }
  }
  return OkStatus();
}

Status CheckDataPath(const std::string& path, std::string_view field) {
  const std::string f(field);
  if (path.empty() || path.size() > 4096 || path.front() != '/') {
    return InvalidArgument(f + ": an absolute path of a JSONL file on the server");
  }
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return InvalidArgument(f + ": " + path.substr(0, 200) + " is not a readable file");
  }
  return OkStatus();
}

// A diverging run's NaN or infinity as JSON null (JSON has no such numbers).
json::value Finite(double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); }

std::string NewJobId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string id = "ft_";
  for (int i = 0; i < 4; ++i) {
    uint32_t r = rd();
    for (int k = 0; k < 4; ++k, r >>= 4) id += kHex[r & 15];
  }
  return id;
}

}  // namespace

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kExporting:
      return "exporting";
    case JobState::kLoading:
      return "loading";
    case JobState::kTraining:
      return "training";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Result<JobRequest> ParseJobRequest(const json::value& body) {
  IRIS_ASSIGN_OR_RETURN(const json::object* o, api::AsObject(body, "body"));
  static constexpr std::string_view kKnown[] = {
      "name",           "data",      "eval",         "from_log",      "rank",         "alpha",
      "target_modules", "lr",        "epochs",       "max_steps",     "batch_tokens", "grad_accum",
      "warmup",         "seed",      "weight_decay", "max_grad_norm", "save_every",   "eval_every",
      "max_seq_tokens", "bad_lines", "resume"};
  for (const auto& [key, value] : *o) {
    if (std::find(std::begin(kKnown), std::end(kKnown), std::string_view(key)) ==
        std::end(kKnown)) {
      return InvalidArgument(api::Quote(std::string_view(key).substr(0, 64)) +
                             ": not a field of a fine-tuning job (name, data or from_log, eval, "
                             "rank, alpha, target_modules, lr, epochs, max_steps, batch_tokens, "
                             "grad_accum, warmup, seed, weight_decay, max_grad_norm, save_every, "
                             "eval_every, max_seq_tokens, bad_lines, resume)");
    }
  }
  JobRequest r;
  IRIS_ASSIGN_OR_RETURN(r.name, api::RequiredString(*o, "name", ""));
  IRIS_RETURN_IF_ERROR(CheckName(r.name));
  if (const json::value* v = api::FindField(*o, "data")) {
    IRIS_ASSIGN_OR_RETURN(r.data, api::AsString(*v, "data"));
  }
  if (const json::value* v = api::FindField(*o, "eval")) {
    IRIS_ASSIGN_OR_RETURN(r.eval, api::AsString(*v, "eval"));
  }
  if (const json::value* v = api::FindField(*o, "from_log")) {
    IRIS_ASSIGN_OR_RETURN(const json::object* f, api::AsObject(*v, "from_log"));
    for (const auto& [key, value] : *f) {
      if (key != "model" && key != "since" && key != "redact_keys") {
        return InvalidArgument("from_log." + std::string(std::string_view(key).substr(0, 64)) +
                               ": not a field (model, since, redact_keys)");
      }
    }
    JobRequest::FromLog from;
    IRIS_ASSIGN_OR_RETURN(from.model, api::RequiredString(*f, "model", "from_log"));
    if (from.model.empty() || from.model.size() > 256) {
      return InvalidArgument("from_log.model: the answering provider/model (1 to 256 bytes)");
    }
    if (const json::value* s = api::FindField(*f, "since")) {
      IRIS_ASSIGN_OR_RETURN(from.since, api::AsString(*s, "from_log.since"));
    }
    IRIS_RETURN_IF_ERROR(observe::ParseSince(from.since, 0, "from_log.since").status());
    if (const json::value* s = api::FindField(*f, "redact_keys")) {
      IRIS_ASSIGN_OR_RETURN(from.redact_keys, api::AsBool(*s, "from_log.redact_keys"));
    }
    r.from_log = std::move(from);
  }
  if (r.data.empty() == !r.from_log.has_value()) {
    return InvalidArgument(
        "give the training data: \"data\" (a JSONL file on the server) or \"from_log\" "
        "({\"model\": \"openai/gpt-4o-mini\"}), one of them");
  }
  if (!r.data.empty()) IRIS_RETURN_IF_ERROR(CheckDataPath(r.data, "data"));
  if (!r.eval.empty()) IRIS_RETURN_IF_ERROR(CheckDataPath(r.eval, "eval"));

  train::FinetuneOptions& t = r.options;
  auto integer = [&](std::string_view key, int64_t lo, int64_t hi, auto& out) -> Status {
    const json::value* v = api::FindField(*o, key);
    if (v == nullptr) return OkStatus();
    IRIS_ASSIGN_OR_RETURN(const int64_t n, api::AsInt(*v, key));
    if (n < lo || n > hi) {
      return InvalidArgument(std::string(key) + ": must be between " + std::to_string(lo) +
                             " and " + std::to_string(hi));
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(n);
    return OkStatus();
  };
  auto number = [&](std::string_view key, double lo, double hi, double& out) -> Status {
    IRIS_ASSIGN_OR_RETURN(const std::optional<double> v,
                          api::OptionalNumberInRange(*o, key, lo, hi));
    if (v) out = *v;
    return OkStatus();
  };
  IRIS_RETURN_IF_ERROR(integer("rank", 1, 256, t.lora.rank));
  IRIS_RETURN_IF_ERROR(number("alpha", 1e-6, 1e6, t.lora.alpha));
  if (const json::value* v = api::FindField(*o, "target_modules")) {
    IRIS_ASSIGN_OR_RETURN(t.lora.targets, api::AsStringList(*v, "target_modules"));
    if (t.lora.targets.size() > 16) return InvalidArgument("target_modules: at most 16 names");
  }
  IRIS_RETURN_IF_ERROR(number("lr", 1e-9, 1.0, t.lr));
  IRIS_RETURN_IF_ERROR(integer("epochs", 1, 1000, t.epochs));
  IRIS_RETURN_IF_ERROR(integer("max_steps", 0, 10'000'000, t.max_steps));
  IRIS_RETURN_IF_ERROR(integer("batch_tokens", 16, 1'000'000, t.batch_tokens));
  IRIS_RETURN_IF_ERROR(integer("grad_accum", 1, 1024, t.grad_accum));
  IRIS_RETURN_IF_ERROR(integer("warmup", -1, 10'000'000, t.warmup));
  IRIS_RETURN_IF_ERROR(integer("seed", 0, int64_t{1} << 53, t.seed));
  IRIS_RETURN_IF_ERROR(number("weight_decay", 0, 10, t.weight_decay));
  IRIS_RETURN_IF_ERROR(number("max_grad_norm", 0, 1e6, t.max_grad_norm));
  IRIS_RETURN_IF_ERROR(integer("save_every", 0, 10'000'000, t.save_every));
  IRIS_RETURN_IF_ERROR(integer("eval_every", 0, 10'000'000, t.eval_every));
  IRIS_RETURN_IF_ERROR(integer("max_seq_tokens", 0, 1'000'000, r.max_seq_tokens));
  if (const json::value* v = api::FindField(*o, "bad_lines")) {
    IRIS_ASSIGN_OR_RETURN(const std::string b, api::AsString(*v, "bad_lines"));
    if (b != "skip" && b != "fail") return InvalidArgument("bad_lines: \"skip\" or \"fail\"");
    r.skip_bad_lines = b == "skip";
  }
  if (const json::value* v = api::FindField(*o, "resume")) {
    IRIS_ASSIGN_OR_RETURN(r.resume, api::AsBool(*v, "resume"));
  }
  return r;
}

json::object JobJson(const JobView& j, bool with_points) {
  json::object o;
  o["id"] = j.id;
  o["object"] = "fine_tuning.job";
  o["name"] = j.name;
  o["status"] = JobStateName(j.state);
  if (!j.error.empty()) o["error"] = j.error;
  o["message"] = j.message;
  o["out"] = j.out_dir;
  o["created_at_ms"] = j.created_unix_ms;
  if (j.finished_unix_ms > 0) o["finished_at_ms"] = j.finished_unix_ms;
  o["step"] = j.step;
  o["total_steps"] = j.total_steps;
  o["epoch"] = j.epoch;
  o["tokens_per_second"] = std::round(j.tokens_per_second * 10) / 10;
  o["eta_seconds"] = std::round(j.eta_seconds);
  o["examples"] = j.examples;
  o["skipped_lines"] = j.skipped_lines;
  if (!j.skipped.empty()) {
    json::array skipped;
    for (const std::string& line : j.skipped) skipped.push_back(json::string(line));
    o["skipped"] = std::move(skipped);
  }
  if (!j.points.empty()) {
    o["loss"] = Finite(j.points.back().loss);
    for (auto it = j.points.rbegin(); it != j.points.rend(); ++it) {
      if (it->eval_loss) {
        o["eval_loss"] = Finite(*it->eval_loss);
        break;
      }
    }
  }
  if (with_points) {
    json::array points;
    for (const LossPoint& p : j.points) {
      json::object po{{"step", p.step}, {"loss", Finite(p.loss)}, {"lr", p.lr}};
      if (p.eval_loss) po["eval_loss"] = Finite(*p.eval_loss);
      points.push_back(std::move(po));
    }
    o["points"] = std::move(points);
  }
  return o;
}

Jobs::Jobs(JobsOptions options) : options_(std::move(options)) {}

Jobs::~Jobs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) running_->stop.store(true);
  }
  if (worker_.joinable()) worker_.join();
}

JobView Jobs::ViewOf(const Job& job, bool with_points) {
  std::lock_guard<std::mutex> lock(job.mu);
  JobView v = job.view;
  if (!with_points) v.points.clear();
  return v;
}

Result<JobView> Jobs::Start(JobRequest request) {
  if (options_.model_dir.empty()) {
    return FailedPrecondition("this server has no local model to fine-tune");
  }
  if (request.from_log && options_.store == "none") {
    return InvalidArgument("from_log: the request log is off (--db none) on this server");
  }
  const std::string out = (fs::path(options_.adapters_dir) / request.name).string();
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) {
    std::string id;
    {
      std::lock_guard<std::mutex> jl(running_->mu);
      id = running_->view.id;
    }
    return FailedPrecondition("a fine-tuning job is running (" + id +
                              "); one runs at a time: wait for it or DELETE /admin/finetune/" + id);
  }
  std::error_code ec;
  if (!request.resume && fs::exists(fs::path(out) / "adapter_config.json", ec)) {
    return FailedPrecondition("an adapter named " + request.name + " exists (" + out +
                              "); choose another name, or send \"resume\": true to continue its "
                              "training");
  }
  if (worker_.joinable()) worker_.join();  // (the last job's thread has finished)
  auto job = std::make_shared<Job>();
  job->view.id = NewJobId();
  job->view.name = request.name;
  job->view.out_dir = out;
  job->view.created_unix_ms = NowUnixMs();
  job->view.total_steps = request.options.max_steps;
  job->view.message = "queued";
  JobView view = job->view;
  try {
    worker_ =
        std::thread([this, job, r = std::move(request)]() mutable { Run(job, std::move(r)); });
  } catch (const std::system_error& e) {
    return Status(ErrorCode::kUnavailable,
                  std::string("cannot start a thread for the job: ") + e.what());
  }
  // (The thread takes mu_ only when it ends, so it cannot finish before these.)
  running_ = job;
  jobs_.push_front(job);
  while (jobs_.size() > options_.max_jobs + 1) jobs_.pop_back();
  return view;
}

Result<JobView> Jobs::Get(const std::string& id, bool with_points) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& j : jobs_) {
    std::lock_guard<std::mutex> jl(j->mu);
    if (j->view.id == id) {
      JobView v = j->view;
      if (!with_points) v.points.clear();
      return v;
    }
  }
  return NotFound("no fine-tuning job " + id.substr(0, 64));
}

std::vector<JobView> Jobs::List(bool with_points) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobView> out;
  for (const auto& j : jobs_) out.push_back(ViewOf(*j, with_points));
  return out;
}

Result<JobView> Jobs::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& j : jobs_) {
    std::lock_guard<std::mutex> jl(j->mu);
    if (j->view.id != id) continue;
    if (j == running_) {
      j->stop.store(true);
      j->view.message = "stopping at the next step boundary";
    }
    JobView v = j->view;
    v.points.clear();
    return v;
  }
  return NotFound("no fine-tuning job " + id.substr(0, 64));
}

void Jobs::Run(std::shared_ptr<Job> job, JobRequest request) {
  Status st;
  // Nothing a job meets (memory for a huge batch, a file system error) may end the server.
  try {
    st = RunJob(*job, request);
  } catch (const std::bad_alloc&) {
    st = ResourceExhausted(
        "out of memory (a smaller batch_tokens, rank or max_seq_tokens needs less)");
  } catch (const std::exception& e) {
    st = Internal(std::string("the job stopped: ") + e.what());
  }
  // The final state and the end of running_ change under both locks (mu_ first, as Start and
  // Cancel take them): a caller who sees the job ended may start the next at once.
  std::lock_guard<std::mutex> lock(mu_);
  {
    std::lock_guard<std::mutex> jl(job->mu);
    JobView& v = job->view;
    v.finished_unix_ms = NowUnixMs();
    if (!st.ok()) {
      v.state = JobState::kFailed;
      v.error = st.message();
      v.message = "failed";
    } else if (job->stop.load() && (v.total_steps == 0 || v.step < v.total_steps)) {
      v.state = JobState::kCancelled;
      v.message = "stopped after step " + std::to_string(v.step) +
                  "; the adapter and a checkpoint "
                  "are in " +
                  v.out_dir + " (resume: true continues)";
    } else {
      v.state = JobState::kDone;
      v.message = "done: the adapter is in " + v.out_dir;
    }
    v.eta_seconds = 0;
  }
  if (running_ == job) running_.reset();
}

Status Jobs::RunJob(Job& job, JobRequest& request) {
  auto set = [&job](JobState state, std::string message) {
    std::lock_guard<std::mutex> jl(job.mu);
    job.view.state = state;
    job.view.message = std::move(message);
  };
  const std::string out = job.view.out_dir;  // (set once, before the thread started)
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Internal("cannot create " + out + ": " + ec.message());
  std::string data = request.data;
  if (request.from_log) {
    data = (fs::path(out) / "from-log.jsonl").string();
    if (request.resume && fs::exists(data, ec)) {
      set(JobState::kExporting, "training on " + data + " as exported the first time");
    } else {
      set(JobState::kExporting, "exporting the answers of " + request.from_log->model);
      const int64_t now = NowUnixMs();
      observe::DatasetExportOptions eo;
      eo.model = request.from_log->model;
      IRIS_ASSIGN_OR_RETURN(eo.since_unix_ms,
                            observe::ParseSince(request.from_log->since, now, "from_log.since"));
      eo.until_unix_ms = now + 1;
      eo.redact_keys = request.from_log->redact_keys;
      if (options_.secrets) {
        IRIS_ASSIGN_OR_RETURN(eo.secrets, options_.secrets());
      }
      IRIS_ASSIGN_OR_RETURN(
          auto store, observe::OpenStore(options_.store, observe::StoreOptions{.create = false}));
      IRIS_ASSIGN_OR_RETURN(const observe::DatasetExportCounts counts,
                            observe::ExportDatasetFile(*store, eo, data));
      set(JobState::kExporting, observe::DescribeExport(counts, eo.model));
    }
  }
  if (job.stop.load()) return OkStatus();

  set(JobState::kLoading, "loading the model and the data");
  runtime::EngineOptions engine_options;
  engine_options.threads = options_.threads;
  engine_options.compute = options_.compute;
  engine_options.mmproj = options_.mmproj;
  IRIS_ASSIGN_OR_RETURN(auto engine, runtime::Engine::Load(options_.model_dir, engine_options));
  train::DatasetOptions dopt;
  dopt.max_tokens = request.max_seq_tokens;
  dopt.fetch_url = options_.fetch_url;
  dopt.no_fetch_reason = "image URLs are not fetched: image_fetch.enabled is off in iris.yaml";
  dopt.stop = [&job] { return job.stop.load(); };
  auto load = [&](const std::string& path) -> Result<train::Dataset> {
    IRIS_ASSIGN_OR_RETURN(train::Dataset d, train::LoadDataset(path, *engine, dopt));
    if (!d.problems.empty()) {
      const train::DataProblem& first = d.problems.front();
      if (!request.skip_bad_lines) {
        return InvalidArgument(std::to_string(d.problems.size()) + " line(s) of " + path +
                               " cannot be used; the first, line " + std::to_string(first.line) +
                               ": " + first.message + " (bad_lines: \"skip\" trains without them)");
      }
      std::lock_guard<std::mutex> jl(job.mu);
      job.view.skipped_lines += d.problems.size();
      for (const train::DataProblem& p : d.problems) {
        if (job.view.skipped.size() >= 10) break;
        job.view.skipped.push_back(path + ":" + std::to_string(p.line) + ": " + p.message);
      }
    }
    if (d.examples.empty()) return InvalidArgument(path + " holds no usable conversation");
    return d;
  };
  auto loaded = load(data);
  if (!loaded.ok() && job.stop.load()) return OkStatus();  // cancelled while loading
  IRIS_ASSIGN_OR_RETURN(train::Dataset train, std::move(loaded));
  std::optional<train::Dataset> eval;
  if (!request.eval.empty()) {
    auto e = load(request.eval);
    if (!e.ok() && job.stop.load()) return OkStatus();
    IRIS_ASSIGN_OR_RETURN(eval, std::move(e));
  }
  if (job.stop.load()) return OkStatus();
  request.options.base_model = options_.base_model;
  request.options.max_seq_tokens = request.max_seq_tokens;
  const size_t examples = train.examples.size();
  IRIS_ASSIGN_OR_RETURN(train::Finetune run,
                        train::Finetune::Create(*engine, std::move(train), std::move(eval),
                                                request.options, out, request.resume));
  {
    std::lock_guard<std::mutex> jl(job.mu);
    job.view.examples = examples;
    job.view.total_steps = run.total_steps();
    job.view.step = run.step();
    job.view.state = JobState::kTraining;
    job.view.message = "training";
  }
  double seconds = 0;
  size_t tokens = 0;
  const size_t max_points = std::max<size_t>(options_.max_points, 16);
  return run.Run(
      [&](const train::StepReport& r) {
        seconds += r.seconds;
        tokens += r.tokens;
        std::lock_guard<std::mutex> jl(job.mu);
        JobView& v = job.view;
        v.step = r.step;
        v.total_steps = r.total_steps;
        v.epoch = r.epoch;
        v.tokens_per_second = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
        v.eta_seconds = r.step > 0 ? seconds / static_cast<double>(r.step) *
                                         static_cast<double>(r.total_steps - r.step)
                                   : 0;
        // Every stride-th step (and every eval) is kept; when the curve is full, every other
        // point goes and the stride doubles, so a long run keeps its whole shape.
        if (r.step % job.stride == 0 || r.eval_loss || r.step == r.total_steps) {
          v.points.push_back({r.step, r.loss, r.eval_loss, r.lr});
        }
        if (v.points.size() >= max_points) {
          std::vector<LossPoint> kept;
          for (size_t i = 0; i < v.points.size(); ++i) {
            if (i % 2 == 0 || v.points[i].eval_loss) kept.push_back(v.points[i]);
          }
          if (kept.size() >= max_points * 3 / 4) {  // (evals at nearly every step)
            std::vector<LossPoint> even;
            for (size_t i = 0; i < kept.size(); i += 2) even.push_back(kept[i]);
            kept = std::move(even);
          }
          v.points = std::move(kept);
          job.stride *= 2;
        }
      },
      &job.stop);
}

}  // namespace iris::gateway::tuning
