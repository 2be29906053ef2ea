// `iris dataset export`: training data for `iris finetune` from the prompts and answers that
// store_bodies routes kept in the request log (docs/finetuning.md, "Distilling").
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/time.h"
#include "cli/commands.h"
#include "gateway/config/config.h"
#include "gateway/observe/dataset.h"
#include "gateway/observe/store.h"
#include "gateway/observe/usage.h"

namespace iris::cli {

namespace observe = gateway::observe;
namespace fs = std::filesystem;

Result<int64_t> ExportTrainingData(const ExportFlags& flags, const std::string& out_path) {
  if (flags.model.empty()) {
    return InvalidArgument("name the model whose answers to export (--model openai/gpt-4o-mini)");
  }
  const int64_t now = NowUnixMs();
  IRIS_ASSIGN_OR_RETURN(const int64_t since, ParseSince(flags.since, now));
  observe::DatasetExportOptions options;
  options.model = flags.model;
  options.since_unix_ms = since;
  options.until_unix_ms = now + 1;
  options.redact_keys = flags.redact_keys;
  std::string spec = flags.store;
  if (!flags.config_path.empty()) {
    IRIS_ASSIGN_OR_RETURN(
        auto config,
        gateway::config::LoadConfigFile(flags.config_path, gateway::config::ProcessEnvironment()));
    if (spec.empty()) spec = config->store;
    options.secrets = gateway::config::OperatorSecrets(*config);
  }
  auto store = observe::OpenStore(spec, observe::StoreOptions{.create = false});
  if (!store.ok()) {
    if (store.status().code() == ErrorCode::kNotFound) {
      return NotFound("no request log at " + observe::ParseStoreSpec(spec).location +
                      " (is --config or --store the one `iris serve` writes?)");
    }
    return store.status();
  }

  IRIS_ASSIGN_OR_RETURN(const observe::DatasetExportCounts counts,
                        observe::ExportDatasetFile(**store, options, out_path));
  std::fprintf(stderr, "iris dataset: %s since %s -> %s\n",
               observe::DescribeExport(counts, flags.model).c_str(),
               flags.since == "all" ? "the start" : observe::UtcDay(since).c_str(),
               out_path.c_str());
  return counts.written;
}

void AddDatasetCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("dataset", "Training data from the gateway's request log");
  cmd->require_subcommand(1);
  auto* exp = cmd->add_subcommand(
      "export",
      "Write the stored prompts and answers of one model as JSONL conversations for iris "
      "finetune (routes with store_bodies: true keep them)");
  struct Flags {
    ExportFlags e;
    std::string out;
  };
  auto f = std::make_shared<Flags>();
  exp->add_option("--model", f->e.model,
                  "the answering model: provider/model as in iris.yaml (openai/gpt-4o-mini) or "
                  "the bare model id")
      ->required();
  exp->add_option("--since", f->e.since, "window start: 30m, 24h, 7d, YYYY-MM-DD (UTC) or all")
      ->capture_default_str();
  exp->add_option("--out", f->out, "the JSONL file to write")->required();
  auto* store = exp->add_option("--store", f->e.store,
                                "the request log: a SQLite path or postgres://... (default: "
                                "--config's store, else the data directory's iris.db)");
  exp->add_option("--config", f->e.config_path,
                  "iris.yaml: its store, and with --redact-keys the keys it holds")
      ->check(CLI::ExistingFile);
  exp->add_flag("--redact-keys", f->e.redact_keys,
                "replace credentials in the text (API keys, tokens, private keys, and the keys "
                "of --config's iris.yaml) with [REDACTED]");
  (void)store;
  exp->callback([f, &exit_code] {
    Result<int64_t> n = ExportTrainingData(f->e, f->out);
    if (!n.ok()) {
      PrintError("dataset", n.status().message());
      exit_code = n.status().code() == ErrorCode::kInvalidArgument ? 2 : 1;
      return;
    }
    exit_code = 0;
  });
}

}  // namespace iris::cli
