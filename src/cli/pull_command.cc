// `iris pull REPO[@REVISION]`: downloads a checkpoint into the Hugging Face cache, with a
// progress bar on stderr.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "base/time.h"
#include "cli/commands.h"
#include "engine/hub/cache.h"
#include "engine/hub/pull.h"

namespace iris::cli {
namespace {

// Draws "file  done/total  speed  ETA" in place on a terminal; otherwise prints a line at
// most every 10 seconds and when a file completes.
class DownloadBar {
 public:
  DownloadBar() : tty_(isatty(STDERR_FILENO) == 1), start_(SteadyClock::now()), last_(start_) {}

  void Update(const hub::PullProgress& p) {
    const auto now = SteadyClock::now();
    const auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
    if (!p.finished && now - last_ < interval) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double speed = elapsed > 0 ? p.transferred / elapsed : 0;
    std::string line = p.file + "  " + HumanBytes(static_cast<double>(p.done));
    if (p.total > 0) {
      char pct[16];
      std::snprintf(pct, sizeof(pct), " (%3.0f%%)", 100.0 * p.done / p.total);
      line += " / " + HumanBytes(static_cast<double>(p.total)) + pct;
    }
    line += "  " + HumanBytes(speed) + "/s";
    if (p.total > p.done && speed > 0) {
      const int eta = static_cast<int>((p.total - p.done) / speed);
      char buf[32];
      std::snprintf(buf, sizeof(buf), "  ETA %d:%02d", eta / 60, eta % 60);
      line += buf;
    }
    if (tty_) {
      std::fprintf(stderr, "\r%-78s%s", line.c_str(), p.finished ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool tty_;
  SteadyClock::time_point start_;
  SteadyClock::time_point last_;
};

}  // namespace

Result<std::string> PullModel(const std::string& model, bool offline,
                              std::chrono::milliseconds connect_timeout, bool adapter) {
  IRIS_ASSIGN_OR_RETURN(hub::PullOptions options, hub::PullOptionsFromEnv());
  if (adapter) options.expect = hub::PullOptions::Expect::kAdapter;
  options.http.connect_timeout = connect_timeout;
  options.offline = options.offline || offline;
  auto bar = std::make_shared<DownloadBar>();
  options.on_progress = [bar](const hub::PullProgress& p) { bar->Update(p); };
  IRIS_ASSIGN_OR_RETURN(hub::PullResult r, hub::Pull(model, options));
  std::fprintf(stderr, "iris pull: %s@%s (%s) in %s: %d files downloaded (%s)\n", r.repo_id.c_str(),
               r.revision.c_str(), r.commit.substr(0, 12).c_str(), r.snapshot_dir.c_str(),
               r.files_downloaded, HumanBytes(static_cast<double>(r.bytes_downloaded)).c_str());
  return r.snapshot_dir;
}

Result<std::string> FindModel(const std::string& spec, bool pull, bool offline, bool adapter) {
  auto dir = adapter ? hub::ResolveAdapter(spec) : hub::ResolveModel(spec);
  if (!dir.ok() && pull && dir.status().code() == ErrorCode::kNotFound) {
    return PullModel(spec, offline, std::chrono::seconds(30), adapter);
  }
  return dir;
}

void AddPullCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "pull", "Download a model from the Hugging Face hub into its cache (HF_HOME, HF_HUB_CACHE)");
  struct Flags {
    std::string model;
    bool offline = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("model", f->model,
                  "repo id (org/name[@revision]) or short name: smolvlm2-256m, smolvlm2-500m, "
                  "smolvlm2-2.2b")
      ->required();
  cmd->add_flag("--offline", f->offline, "never use the network (as HF_HUB_OFFLINE=1)");
  cmd->callback([f, &exit_code] {
    auto dir = PullModel(f->model, f->offline);
    if (!dir.ok()) {
      PrintError("pull", dir.status().message());
      exit_code = 1;
      return;
    }
    std::printf("%s\n", dir->c_str());
    exit_code = 0;
  });
}

}  // namespace iris::cli
