// `iris serve`: the gateway. Loads iris.yaml (or the environment alone), loads the local
// SmolVLM2 model when one is available, listens, and drains gracefully on SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "base/time.h"
#include "cli/commands.h"
#include "engine/hub/cache.h"
#include "engine/model/lora.h"
#include "engine/runtime/engine.h"
#include "gateway/config/config.h"
#include "gateway/http/server.h"
#include "gateway/providers/local/local_provider.h"
#include "gateway/providers/provider_table.h"
#include "gateway/proxy/assemble.h"

namespace iris::cli {
namespace {

namespace gw = iris::gateway;

struct ServeFlags {
  std::string config_path;
  std::string listen;
  std::string db;       // request log: a SQLite path or postgres:// URL (default: config store)
  std::string model;    // local model: directory, GGUF file, repo id or short name; "none": off
  std::string mmproj;   // the vision tower of a GGUF model file
  std::string weights;  // "q8_0": the local text model quantized at load
  std::string compute;  // "bf16": every product of float weights with bf16 inputs
  std::string kv_cache_dtype;  // "f16": the local model's keys and values in f16
  bool pull = false;
  bool offline = false;
  int threads = 0;         // gateway workers (0: config / hardware)
  int engine_threads = 0;  // local engine compute threads (0: all cores)
};

constexpr const char* kDefaultLocalModel = "smolvlm2-256m";

bool EnvSet(const char* name) {
  const std::optional<std::string> v = GetEnv(name);
  return v && *v != "0";
}

// Finds (or pulls) the local model. An explicitly named model that cannot be found is an
// error; the default one only makes the local provider unavailable, with a note saying how
// to get it.
Result<std::string> LocateLocalModel(const std::string& spec, bool explicit_spec,
                                     const ServeFlags& f) {
  auto dir = hub::ResolveModel(spec);
  if (dir.ok() || dir.status().code() != ErrorCode::kNotFound) return dir;
  const bool offline = f.offline || EnvSet("HF_HUB_OFFLINE");
  if (offline || (explicit_spec && !f.pull)) {
    std::string msg = dir.status().message();
    if (explicit_spec && !offline) msg += " (or start with --pull)";
    return Status(ErrorCode::kNotFound, msg);
  }
  std::fprintf(stderr, "iris serve: %s is not in the Hugging Face cache; downloading it\n",
               spec.c_str());
  return PullModel(spec, /*offline=*/false, std::chrono::seconds(5));
}

// SIGHUP: reads and validates the config file again; on success the gateway switches to it
// for new requests (those in flight finish under the old one), on any error nothing changes.
// Settings the running server cannot change are named. `running` is the configuration the
// server started with.
void ReloadConfig(const ServeFlags& f, const gw::config::EnvLookup& env,
                  const gw::config::Config& running, gw::proxy::Gateway& gateway) {
  if (f.config_path.empty()) {
    std::fprintf(stderr, "iris serve: SIGHUP ignored: there is no --config file to reload\n");
    return;
  }
  auto loaded = gw::config::LoadConfigFile(f.config_path, env);
  if (!loaded.ok()) {
    std::fprintf(stderr, "iris serve: reload of %s failed; the running configuration stays:\n%s\n",
                 f.config_path.c_str(), loaded.status().message().c_str());
    return;
  }
  auto next = std::make_shared<gw::config::Config>(*loaded.value());
  // What only a restart changes keeps its running value, and is named.
  std::vector<std::string> restart;
  const auto& a = running.server;
  const auto& b = next->server;
  if (!f.listen.empty() || (a.listen.host == b.listen.host && a.listen.port == b.listen.port)) {
    next->server.listen = a.listen;
  } else {
    restart.push_back("server.listen");
    next->server.listen = a.listen;
  }
  if (a.threads != b.threads || a.max_body_bytes != b.max_body_bytes ||
      a.header_timeout != b.header_timeout || a.body_timeout != b.body_timeout ||
      a.idle_timeout != b.idle_timeout || a.max_connections != b.max_connections) {
    restart.push_back("server (threads, limits, timeouts)");
  }
  if (running.store != next->store) restart.push_back("store");
  const auto* la = running.FindLocal();
  const auto* lb = next->FindLocal();
  if ((la == nullptr) != (lb == nullptr) || (la && lb && la->model != lb->model)) {
    restart.push_back("the local model");
  }
  if (la && lb && la->adapters != lb->adapters) {
    // Routes of the new file may name adapters the engine has not loaded: keep the running
    // configuration whole rather than serve routes that cannot work.
    std::fprintf(stderr,
                 "iris serve: reload of %s refused: providers.%s.adapters changed; restart to "
                 "load them (the running configuration stays)\n",
                 f.config_path.c_str(), la->name.c_str());
    return;
  }
  gateway.Reload(std::move(next));
  std::fprintf(stderr, "iris serve: reloaded %s\n", f.config_path.c_str());
  for (const std::string& what : restart) {
    std::fprintf(stderr, "  %s changed: it takes effect at the next restart\n", what.c_str());
  }
  std::fflush(stderr);
}

int Serve(const ServeFlags& f) {
  const auto t0 = SteadyClock::now();
  // Signals are taken by this thread alone (sigwait), so block them before any thread starts
  // (the engine's thread pool included); threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto env = gw::config::ProcessEnvironment();

  // 1. The configuration, from the file or the environment.
  std::shared_ptr<const gw::config::Config> config;
  std::string local_spec = f.model;
  bool explicit_local = !f.model.empty();
  if (!f.config_path.empty()) {
    auto loaded = gw::config::LoadConfigFile(f.config_path, env);
    if (!loaded.ok()) {
      std::fprintf(stderr, "iris serve: %s has errors:\n%s\n", f.config_path.c_str(),
                   loaded.status().message().c_str());
      return 2;
    }
    config = std::move(loaded).value();
    const gw::config::ProviderConfig* local = config->FindLocal();
    if (local != nullptr && local_spec.empty()) {
      local_spec = local->model.empty() ? kDefaultLocalModel : local->model;
      explicit_local = !local->model.empty();
    }
  } else if (local_spec.empty()) {
    local_spec = kDefaultLocalModel;
  }
  if (local_spec == "none") local_spec.clear();

  // 2. The local model: found (or pulled) here, loaded by AssembleGateway.
  std::string local_dir;
  std::string local_note;
  if (!local_spec.empty()) {
    auto dir = LocateLocalModel(local_spec, explicit_local, f);
    if (!dir.ok() && explicit_local) {
      PrintError("serve", dir.status().message());
      return 1;
    }
    if (dir.ok()) {
      local_dir = *dir;
      local_note = local_spec == *dir ? *dir : local_spec + " (" + *dir + ")";
    } else {
      local_note = "unavailable (the server runs without it): " + dir.status().message();
      if (local_note.find("iris pull") == std::string::npos) {
        local_note += "; get it with `iris pull " + local_spec + "` when the hub is reachable";
      }
    }
  }
  if (f.config_path.empty()) {
    auto cfg = gw::config::ConfigFromEnvironment(env, local_dir.empty() ? "" : local_spec);
    if (!cfg.ok()) {
      PrintError("serve", cfg.status().message());
      return 2;
    }
    config = std::move(cfg).value();
  }

  // 3. The gateway and its server.
  gw::proxy::AssembleFlags af;
  af.listen = f.listen;
  af.db = f.db;
  af.local_model_dir = local_dir;
  af.local_mmproj = f.mmproj;
  af.local_weights = f.weights;
  af.local_compute = f.compute;
  af.local_kv_cache_dtype = f.kv_cache_dtype;
  af.local_base_model = hub::ExpandShortName(local_spec);
  if (const gw::config::ProviderConfig* local = config->FindLocal(); local && !local_dir.empty()) {
    // Adapters are named in iris.yaml: one that cannot be found stops the start.
    for (const auto& [name, spec] : local->adapters) {
      auto dir = hub::ResolveAdapter(spec);
      if (!dir.ok() && dir.status().code() == ErrorCode::kNotFound && f.pull && !f.offline) {
        dir = PullModel(spec, /*offline=*/false, std::chrono::seconds(5), /*adapter=*/true);
      }
      if (!dir.ok()) {
        PrintError("serve", "providers.local.adapters." + name + ": " + dir.status().message());
        return 1;
      }
      af.local_adapter_dirs[name] = *dir;
    }
  }
  af.threads = f.threads;
  af.engine_threads = f.engine_threads;
  auto proxy = gw::upstream::ProxySettings::FromEnv(::getenv);
  if (!proxy.ok()) {
    PrintError("serve", proxy.status().message());
    return 2;
  }
  af.proxy = std::move(proxy).value();
  if (!f.listen.empty()) {
    if (auto addr = gw::config::ParseListenAddress(f.listen); !addr.ok()) {
      PrintError("serve", "--listen: " + addr.status().message());
      return 2;
    }
  }
  auto assembled = gw::proxy::AssembleGateway(config, af);
  if (!assembled.ok()) {
    PrintError("serve", assembled.status().message());
    return 1;
  }
  std::unique_ptr<gw::proxy::Assembly> assembly = std::move(assembled).value();
  config = assembly->config;
  gw::http::Server& server = *assembly->server;
  gw::proxy::Gateway& gateway = *assembly->gateway;
  const gw::http::ServerOptions& so = assembly->server_options;
  const gw::providers::LocalProvider* local = assembly->local.get();
  const std::string& store = assembly->store;
  const bool request_log = assembly->request_log != nullptr;

  Status started = server.Start();
  if (!started.ok()) {
    PrintError("serve", started.message());
    return 1;
  }

  // 4. Say what is running and how to use it.
  const double start_s = SecondsSince(t0);
  const std::string host = so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host;
  const std::string url = "http://" + host + ":" + std::to_string(server.port());
  std::fprintf(stderr, "iris serve: listening on %s (%d worker threads, ready in %.2f s)\n",
               url.c_str(), so.threads, start_s);
  if (request_log) {
    const auto spec = gw::observe::ParseStoreSpec(store);
    std::fprintf(stderr, "  request log %s (dashboard %s/, metrics %s/metrics)\n",
                 spec.kind == gw::observe::StoreSpec::Kind::kSqlite
                     ? spec.location.c_str()
                     : "PostgreSQL (store: postgres://...)",
                 url.c_str(), url.c_str());
  } else {
    std::fprintf(stderr, "  request log off (--db none); metrics %s/metrics\n", url.c_str());
  }
  if (const gw::access::Access* access = assembly->access.get()) {
    const size_t keys = access->Keys().size();
    const bool loopback = gw::config::IsLoopbackHost(so.host);
    if (access->Required()) {
      std::fprintf(
          stderr, "  auth     keys required (%zu in the store); admin API and dashboard %s\n", keys,
          access->HasMasterKey() ? "with the master key"
                                 : "off (no master key: set IRIS_MASTER_KEY)");
    } else if (config->auth.mode == gw::config::AuthMode::kNone && !loopback) {
      std::fprintf(stderr,
                   "  WARNING: auth: { mode: none } on %s: anyone who can reach this port spends "
                   "your provider keys\n",
                   host.c_str());
    } else {
      std::fprintf(stderr,
                   "  auth     open on loopback (no keys yet; `iris keys create --name NAME` turns "
                   "keys on)\n");
    }
  }
  std::string example_model;
  for (const auto& p : config->providers) {
    if (p.enabled) {
      std::fprintf(
          stderr, "  provider %-12s %-18s %s\n", p.name.c_str(),
          std::string(gw::config::ProviderKindName(p.kind)).c_str(),
          p.kind == gw::config::ProviderKind::kLocal ? local_note.c_str() : p.base_url.c_str());
    } else {
      std::fprintf(stderr, "  provider %-12s disabled: %s\n", p.name.c_str(),
                   p.disabled_reason.c_str());
    }
  }
  if (!local && !local_spec.empty() && !local_note.empty()) {
    std::fprintf(stderr, "  local model %s\n", local_note.c_str());
  }
  if (local) {
    for (const auto& [name, adapter] : local->options().adapters) {
      std::fprintf(stderr, "  adapter  local/%s:%-10s %s (%s)\n", local->model_name().c_str(),
                   name.c_str(), adapter->dir().c_str(), adapter->Describe().c_str());
    }
  }
  for (const auto& a : config->models) {
    std::string targets;
    for (const auto& t : a.targets)
      targets += (targets.empty() ? "" : ", ") + t.provider + "/" + t.model;
    std::fprintf(stderr, "  model    %-12s -> %s\n", a.name.c_str(), targets.c_str());
    if (example_model.empty()) example_model = a.name;
  }
  if (example_model.empty()) {
    if (local) {
      example_model = "local/" + local->model_name();
    } else {
      for (const auto& p : config->providers) {
        if (!p.enabled) continue;
        const std::string_view example = gw::providers::FactsOf(p.kind).example_model;
        example_model = p.name + "/" +
                        (!p.models.empty()  ? p.models[0]
                         : !example.empty() ? std::string(example)
                                            : std::string("MODEL"));
        break;
      }
    }
  }
  if (example_model.empty()) {
    std::string keys;  // the first key variable of every cloud kind with a public endpoint
    for (const auto& kind : gw::providers::AllProviderKinds()) {
      if (kind.key_env.empty() || kind.default_base_url.empty()) continue;
      if (!keys.empty()) keys += ", ";
      keys += kind.key_env.front();
    }
    std::fprintf(stderr,
                 "  no provider is enabled: set one of %s, or give a local model with --model\n",
                 keys.c_str());
  } else {
    std::fprintf(
        stderr,
        "try:\n  curl %s/v1/chat/completions -H 'content-type: application/json' \\\n"
        "    -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'\n",
        url.c_str(), example_model.c_str());
  }
  std::fflush(stderr);

  // 5. Run until SIGINT/SIGTERM, then drain; SIGHUP reloads iris.yaml.
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    ReloadConfig(f, env, *config, gateway);
  }
  std::fprintf(stderr, "iris serve: %s received; finishing requests in flight (up to %lld ms)\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM",
               static_cast<long long>(config->server.shutdown_grace.count()));
  // A second signal means "now": exit at once without waiting for the drain.
  std::thread([] {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    int again = 0;
    sigwait(&stop, &again);
    std::fprintf(stderr, "iris serve: second signal; exiting now\n");
    std::fflush(stderr);
    std::_Exit(130);
  }).detach();
  gateway.SetDraining();
  server.Shutdown(config->server.shutdown_grace);
  server.Wait();
  // Every finished request is in the store before exit.
  if (assembly->request_log) assembly->request_log->Close();
  assembly.reset();
  std::fprintf(stderr, "iris serve: stopped\n");
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Run the gateway: an OpenAI- and Anthropic-compatible API over cloud providers "
      "and the local model");
  auto f = std::make_shared<ServeFlags>();
  cmd->add_option("--config", f->config_path, "iris.yaml with providers, models and routes");
  cmd->add_option("--listen", f->listen, "address to listen on (default 127.0.0.1:8080)");
  cmd->add_option("--db", f->db,
                  "request log: a SQLite file or postgres://... URL, or none (default: iris.yaml "
                  "`store`, else $IRIS_DATA_DIR/iris.db or ~/.local/share/iris/iris.db)");
  cmd->add_option("--model", f->model,
                  "local model: a directory, a Hugging Face repo id or smolvlm2-256m / -500m / "
                  "-2.2b, or a GGUF text model file (default smolvlm2-256m; 'none' to disable)");
  cmd->add_option("--weights", f->weights,
                  "the local model's text weights quantized at load: q8_0 or q4_0 (int8 products)")
      ->check(CLI::IsMember(runtime::kWeightChoices));
  cmd->add_option("--compute", f->compute,
                  "the local model's matrix products: exact or bf16 (over "
                  "providers.local.compute; bf16 needs an AVX512-BF16 CPU)")
      ->check(CLI::IsMember({"exact", "bf16"}));
  AddKvCacheDtypeOption(cmd, f->kv_cache_dtype, "providers.local.kv_cache_dtype");
  cmd->add_option("--mmproj", f->mmproj,
                  "the vision tower (mmproj GGUF) of a GGUF text model given as --model FILE");
  cmd->add_flag("--pull", f->pull, "download the local model when it is not in the cache");
  cmd->add_flag("--offline", f->offline, "never use the network for models (as HF_HUB_OFFLINE=1)");
  cmd->add_option("--threads", f->threads, "gateway worker threads (default: one per core)");
  cmd->add_option("--engine-threads", f->engine_threads,
                  "local engine compute threads (default: one per core)");
  cmd->callback([f, &exit_code] { exit_code = Serve(*f); });
}

}  // namespace iris::cli
