// `iris models`: the checkpoints in the Hugging Face cache (and --dir directories), as a
// table or JSON.
#include <boost/json.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/hub/cache.h"

namespace iris::cli {
namespace {}  // namespace

void AddModelsCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("models", "List the models in the Hugging Face cache");
  struct Flags {
    std::vector<std::string> dirs;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--dir", f->dirs, "also list this model directory (repeatable)");
  cmd->add_flag("--json", f->json, "print a JSON array");
  cmd->callback([f, &exit_code] {
    const std::string cache = hub::DefaultHubCacheDir();
    auto models = hub::ListModels(cache, f->dirs);
    if (!models.ok()) {
      PrintError("models", models.status().message());
      exit_code = 1;
      return;
    }
    exit_code = 0;
    if (f->json) {
      boost::json::array out;
      for (const hub::CachedModel& m : *models) {
        out.push_back(boost::json::object{{"repo_id", m.repo_id},
                                          {"revision", m.revision},
                                          {"commit", m.commit},
                                          {"path", m.path},
                                          {"size_bytes", m.size_bytes},
                                          {"dtype", m.dtype},
                                          {"family", m.family},
                                          {"complete", m.complete}});
      }
      std::printf("%s\n", boost::json::serialize(out).c_str());
      return;
    }
    if (models->empty()) {
      std::printf("no models in %s; fetch one with `iris pull smolvlm2-256m`\n", cache.c_str());
      return;
    }
    std::printf("%-48s %-14s %10s %-9s %-6s\n", "MODEL", "REVISION", "SIZE", "DTYPE", "FAMILY");
    for (const hub::CachedModel& m : *models) {
      std::string rev =
          m.revision.empty() ? m.commit.substr(0, 10) : m.revision + " " + m.commit.substr(0, 7);
      if (!m.complete) rev += " (partial)";
      std::printf("%-48s %-14s %10s %-9s %-6s\n", m.repo_id.c_str(), rev.c_str(),
                  HumanBytes(static_cast<double>(m.size_bytes)).c_str(), m.dtype.c_str(),
                  m.family.c_str());
    }
  });
}

}  // namespace iris::cli
