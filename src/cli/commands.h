// The iris subcommands. Each Add*Command registers its flags on the CLI11 app and sets the
// callback that runs it; `exit_code` receives the command's exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace iris::cli {

void AddRunCommand(CLI::App& app, int& exit_code);
void AddVerifyCommand(CLI::App& app, int& exit_code);
void AddMergeCommand(CLI::App& app, int& exit_code);
void AddFinetuneCommand(CLI::App& app, int& exit_code);
void AddTokenizeCommand(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);
void AddPullCommand(CLI::App& app, int& exit_code);
void AddModelsCommand(CLI::App& app, int& exit_code);
void AddServeCommand(CLI::App& app, int& exit_code);
void AddUsageCommand(CLI::App& app, int& exit_code);
void AddKeysCommand(CLI::App& app, int& exit_code);
void AddQuantizeCommand(CLI::App& app, int& exit_code);

// Pulls `model` (repo id[@revision] or short name) into the hub cache with a progress bar on
// stderr; returns the snapshot directory. Defined in pull_command.cc.
// `connect_timeout` bounds each connection attempt (serve uses a short one so that an
// unreachable hub does not hold up the start).
// `adapter`: the repo must hold a LoRA adapter (false: anything pull takes).
Result<std::string> PullModel(const std::string& model, bool offline,
                              std::chrono::milliseconds connect_timeout = std::chrono::seconds(30),
                              bool adapter = false);

// A model (or, with `adapter`, a LoRA adapter) from a directory or the hub cache; with `pull`,
// one missing from the cache is downloaded first (PullModel).
Result<std::string> FindModel(const std::string& spec, bool pull, bool offline,
                              bool adapter = false);

// The store `iris usage` and `iris keys` read: --db (a SQLite path or postgres://...), else
// the `store:` of --config's iris.yaml, else "" (the default SQLite file).
Result<std::string> StoreFromFlags(const std::string& config_path, const std::string& db);

// A window start for --since: "30m", "24h", "7d", "all" or a UTC date "YYYY-MM-DD" → unix ms.
// Defined in usage_command.cc.
Result<int64_t> ParseSince(const std::string& s, int64_t now_ms);

// Training data from the request log's stored prompts and answers (store_bodies routes): the
// answers of `model` since `since` written to `out_path` as JSONL, with a summary line on
// stderr. Defined in dataset_command.cc; `iris finetune --from-log` uses it too.
struct ExportFlags {
  std::string model;
  std::string since = "30d";
  std::string config_path;  // iris.yaml: its store and (for --redact-keys) its keys
  std::string store;        // a SQLite path or postgres://... (instead of --config)
  bool redact_keys = false;
};
// Returns the number of examples written.
Result<int64_t> ExportTrainingData(const ExportFlags& flags, const std::string& out_path);
void AddDatasetCommand(CLI::App& app, int& exit_code);

// --kv-cache-dtype f32|f16 (runtime::EngineOptions::kv_cache_dtype) on a command that loads
// the engine; `what` says where else it can be set ("" for nowhere).
void AddKvCacheDtypeOption(CLI::App* cmd, std::string& dtype, const std::string& what = "");

// Prints "iris <command>: <message>" on one line to stderr.
void PrintError(const char* command, const std::string& message);

// "512 B", "3.4 MB", "1.2 GB" (powers of 1000).
std::string HumanBytes(double bytes);

// A progress bar on stderr for long work: redrawn in place at most every 100 ms on a terminal,
// a line every 10 s otherwise, and always when done == total.
class ProgressBar {
 public:
  ProgressBar();
  // `what` follows the bar: "12/40 tensors", "310/540 MB".
  void Update(uint64_t done, uint64_t total, const std::string& what);

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace iris::cli
