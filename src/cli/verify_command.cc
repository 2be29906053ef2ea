// `iris verify`: compares the engine against Hugging Face golden outputs.
#include <cstdio>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/verify.h"

namespace iris::cli {

void AddVerifyCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "verify", "Check the engine against golden outputs in a fixture model directory");
  struct Flags {
    std::string dir;
    std::string cases;
    int threads = 0;
    std::string model;
    std::string mmproj;
    std::string weights;
    std::string compute;
    std::string kv_cache_dtype;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("model_dir", f->dir, "directory with goldens.safetensors + goldens.json")
      ->required();
  cmd->add_option("--cases", f->cases, "comma-separated case names (default: all)");
  cmd->add_option("--threads", f->threads, "compute threads (0 = all cores)");
  cmd->add_option("--model", f->model,
                  "check these weights instead of the directory's own: a GGUF text model (or "
                  "a directory of GGUF files) converted from the same checkpoint");
  cmd->add_option("--weights", f->weights,
                  "measure reduced-precision weights (q8_0, q4_0) against the goldens: top-1 "
                  "agreement and KL divergence of the next-token distributions")
      ->check(CLI::IsMember(runtime::kWeightChoices));
  cmd->add_option("--compute", f->compute,
                  "measure the bf16 products (--compute bf16) against the goldens: top-1 "
                  "agreement and KL divergence, and the error of every tensor")
      ->check(CLI::IsMember({"exact", "bf16"}));
  cmd->add_option("--kv-cache-dtype", f->kv_cache_dtype,
                  "measure keys and values kept as f16 (--kv-cache-dtype f16) against the "
                  "goldens: top-1 agreement and KL divergence")
      ->check(CLI::IsMember(runtime::KvCacheDtypeNames()));
  cmd->add_option("--mmproj", f->mmproj, "the GGUF vision tower (mmproj) that goes with --model");
  cmd->callback([f, &exit_code] {
    runtime::VerifyOptions vo;
    vo.threads = f->threads;
    vo.model = f->model;
    vo.mmproj = f->mmproj;
    vo.weights = f->weights;
    vo.compute = f->compute;
    vo.kv_cache_dtype = f->kv_cache_dtype;
    std::stringstream ss(f->cases);
    for (std::string c; std::getline(ss, c, ',');) {
      if (!c.empty()) vo.cases.push_back(c);
    }
    bool all_ok = true;
    size_t compared = 0;
    auto lines = runtime::Verify(f->dir, vo, [&](const runtime::VerifyLine& l) {
      ++compared;
      all_ok = all_ok && l.ok;
      if (l.detail.empty()) {
        std::printf("%-14s %-24s max_abs_err %.3e  tol %.3e  %s\n", l.case_name.c_str(),
                    l.item.c_str(), l.max_abs_error, l.tolerance, l.ok ? "ok" : "FAIL");
      } else {
        std::printf("%-14s %-24s %s  %s\n", l.case_name.c_str(), l.item.c_str(), l.detail.c_str(),
                    l.ok ? "ok" : "FAIL");
      }
      std::fflush(stdout);
    });
    if (!lines.ok()) {
      PrintError("verify", lines.status().message());
      exit_code = 2;
      return;
    }
    if (compared == 0) {
      PrintError("verify", "nothing was compared (goldens.json has no cases)");
      exit_code = 1;
      return;
    }
    std::printf("%s\n",
                all_ok ? "verify: all compared outputs within tolerance" : "verify: MISMATCH");
    exit_code = all_ok ? 0 : 1;
  });
}

}  // namespace iris::cli
