// The iris subcommands. Each Add*Command registers its flags on the CLI11 app and sets the
// callback that runs it; `exit_code` receives the command's exit status.
#pragma once

#include <CLI/CLI.hpp>

namespace iris::cli {

void AddRunCommand(CLI::App& app, int& exit_code);
void AddVerifyCommand(CLI::App& app, int& exit_code);
void AddTokenizeCommand(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);

// Prints "iris <command>: <message>" on one line to stderr.
void PrintError(const char* command, const std::string& message);

}  // namespace iris::cli
