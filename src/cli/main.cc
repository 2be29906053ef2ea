// iris: one binary, several subcommands (serve, usage, run, verify, tokenize, bench, pull, models).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"iris — an AI gateway and a local SmolVLM2 engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "iris 0.1.0");
  int exit_code = 0;
  iris::cli::AddServeCommand(app, exit_code);
  iris::cli::AddUsageCommand(app, exit_code);
  iris::cli::AddDatasetCommand(app, exit_code);
  iris::cli::AddKeysCommand(app, exit_code);
  iris::cli::AddRunCommand(app, exit_code);
  iris::cli::AddVerifyCommand(app, exit_code);
  iris::cli::AddMergeCommand(app, exit_code);
  iris::cli::AddQuantizeCommand(app, exit_code);
  iris::cli::AddFinetuneCommand(app, exit_code);
  iris::cli::AddTokenizeCommand(app, exit_code);
  iris::cli::AddBenchCommand(app, exit_code);
  iris::cli::AddPullCommand(app, exit_code);
  iris::cli::AddModelsCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::bad_alloc&) {
    // A command's own memory errors are reported where they happen (weights, KV cache); this
    // is any other allocation the machine refused.
    std::fprintf(stderr,
                 "iris: out of memory: the machine refused an allocation (free some memory, or "
                 "raise this process's limit: ulimit -v)\n");
    return 1;
  }
  return exit_code;
}
