#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "engine/runtime/engine.h"
#include "engine/tokenizer/tokenize_tool.h"
#include "gateway/config/config.h"

namespace iris::cli {

void AddKvCacheDtypeOption(CLI::App* cmd, std::string& dtype, const std::string& what) {
  cmd->add_option("--kv-cache-dtype", dtype,
                  "keys and values of the text model kept as f32 (exact, the default) or f16 "
                  "(opt-in: half the memory and the bytes read per token; answers change "
                  "slightly, measured by iris verify --kv-cache-dtype f16)" +
                      (what.empty() ? std::string() : "; over " + what))
      ->check(CLI::IsMember(runtime::KvCacheDtypeNames()));
}

void PrintError(const char* command, const std::string& message) {
  std::fprintf(stderr, "iris %s: %s\n", command, message.c_str());
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

ProgressBar::ProgressBar()
    : tty_(isatty(STDERR_FILENO) == 1), last_(std::chrono::steady_clock::now()) {}

void ProgressBar::Update(uint64_t done, uint64_t total, const std::string& what) {
  done = std::min(done, total);
  const auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_ < std::chrono::milliseconds(tty_ ? 100 : 10000)) return;
  last_ = now;
  constexpr int kWidth = 30;
  const int filled =
      total == 0 ? kWidth : static_cast<int>(kWidth * static_cast<double>(done) / total);
  std::fprintf(stderr, tty_ ? "\r[%s%s] %s%s" : "[%s%s] %s%s\n",
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), what.c_str(),
               tty_ && done == total ? "\n" : "");
  std::fflush(stderr);
}

Result<std::string> StoreFromFlags(const std::string& config_path, const std::string& db) {
  if (!db.empty()) return db;
  if (config_path.empty()) return std::string();
  IRIS_ASSIGN_OR_RETURN(auto config, gateway::config::LoadConfigFile(
                                         config_path, gateway::config::ProcessEnvironment()));
  return config->store;
}

void AddTokenizeCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "tokenize", "Encode text from stdin to token ids (JSON array), or decode ids back");
  struct Flags {
    std::string path;
    bool decode = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--tokenizer", f->path, "tokenizer.json file")->required();
  cmd->add_flag("--decode", f->decode, "read a JSON array of ids on stdin and print the text");
  cmd->callback([f, &exit_code] {
    exit_code = tokenizer::RunTokenizeTool(f->path, f->decode, std::cin, std::cout, std::cerr);
  });
}

}  // namespace iris::cli
