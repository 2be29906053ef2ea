#include "cli/commands.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "engine/tokenizer/tokenize_tool.h"
#include "gateway/config/config.h"

namespace iris::cli {

void PrintError(const char* command, const std::string& message) {
  std::fprintf(stderr, "iris %s: %s\n", command, message.c_str());
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
