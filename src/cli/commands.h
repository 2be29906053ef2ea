// The iris subcommands. Each Add*Command registers its flags on the CLI11 app and sets the
// callback that runs it; `exit_code` receives the command's exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"

namespace iris::cli {

void AddRunCommand(CLI::App& app, int& exit_code);
void AddVerifyCommand(CLI::App& app, int& exit_code);
void AddTokenizeCommand(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);
void AddPullCommand(CLI::App& app, int& exit_code);
void AddModelsCommand(CLI::App& app, int& exit_code);

// Pulls `model` (repo id[@revision] or short name) into the hub cache with a progress bar on
// stderr; returns the snapshot directory. Defined in pull_command.cc.
Result<std::string> PullModel(const std::string& model, bool offline);

// Prints "iris <command>: <message>" on one line to stderr.
void PrintError(const char* command, const std::string& message);

}  // namespace iris::cli
