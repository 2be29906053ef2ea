// Everything `iris serve` runs, wired from one configuration: the local engine (with the
// bounds and threads of providers.local), the request log, the gateway and its HTTP server
// (not started), and the gauges /metrics reads at scrape time. The CLI finds the model and the
// configuration, and handles signals; the wiring is here, where a test can check it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/status.h"
#include "gateway/config/config.h"
#include "gateway/http/server.h"
#include "gateway/observe/request_log.h"
#include "gateway/providers/local/local_provider.h"
#include "gateway/proxy/gateway.h"
#include "gateway/upstream/client.h"

namespace iris::gateway::proxy {

struct AssembleFlags {
  std::string listen;                // overrides server.listen when set ("host:port")
  std::string db;                    // overrides `store` when set; "none" turns the request log off
  std::string local_model_dir;       // a checkpoint directory or GGUF file; "" for no local model
  std::string local_mmproj;          // the vision tower of a GGUF model given as a file
  std::string local_weights;         // "q8_0": the text model quantized at load ("" as stored)
  std::string local_compute;         // "bf16" / "exact" over providers.local.compute ("": that)
  std::string local_kv_cache_dtype;  // "f16" / "f32" over providers.local.kv_cache_dtype
  std::string local_model_name = "smolvlm2";  // the id callers see (local/<name>)
  // What adapters trained here name as their base (a repo id, or the directory).
  std::string local_base_model;
  // Where /admin/finetune writes adapters ("": <data directory>/adapters).
  std::string adapters_dir;
  // The local model's LoRA adapters (providers.local.adapters), resolved to directories.
  std::map<std::string, std::string> local_adapter_dirs;
  int threads = 0;                // gateway workers, when > 0 (else server.threads)
  int engine_threads = 0;         // local engine compute threads, when > 0 (else providers.local)
  upstream::ProxySettings proxy;  // outbound proxies (normally from the environment)
};

// Declared so that destruction runs server -> gateway -> local engine -> request log: the
// server's coroutines use the gateway, which uses the engine, and every finished request
// reaches the log before it closes.
struct Assembly {
  std::shared_ptr<const config::Config> config;  // as served (--listen applied)
  std::string store;                             // the request log's spec; "none" when off
  http::ServerOptions server_options;
  int64_t descriptor_limit = 0;  // the soft RLIMIT_NOFILE after raising it
  std::unique_ptr<observe::RequestLog> request_log;
  std::unique_ptr<providers::LocalProvider> local;
  std::unique_ptr<access::Access> access;  // keys, budgets, limits
  std::unique_ptr<tuning::Jobs> finetune;  // /admin/finetune's jobs (with a local model)
  std::shared_ptr<Gateway> gateway;
  std::unique_ptr<http::Server> server;
};

// Shares circuit breakers through the state (several instances): publishes the breakers open
// here and opens here those another instance opened.
void ShareBreakers(routing::BreakerRegistry& breakers, access::SharedState& state);

// kInvalidArgument for a bad flag (exit 2 in the CLI); other errors for what failed to open
// or load (the request log, the model).
Result<std::unique_ptr<Assembly>> AssembleGateway(std::shared_ptr<const config::Config> config,
                                                  const AssembleFlags& flags);

}  // namespace iris::gateway::proxy
