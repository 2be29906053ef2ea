// `iris keys create|list|show|update|revoke`: the gateway's API keys, in the store the request
// log uses (found through --config's `store:` or --db). The admin API /admin/keys does the same.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/time.h"
#include "cli/commands.h"
#include "gateway/access/key_admin.h"
#include "gateway/observe/store.h"

namespace iris::cli {
namespace {

namespace access = gateway::access;
namespace observe = gateway::observe;

struct KeyFlags {
  std::string config_path;
  std::string db;
  bool json = false;
  // create / update
  std::string name;
  std::optional<double> budget_usd;
  bool no_budget = false;
  std::string budget_period;
  std::optional<int64_t> rpm;
  std::optional<int64_t> tpm;
  std::string models;
  std::string expires;
  // show / update / revoke
  std::string id;
};

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string part = s.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

void AddStoreFlags(CLI::App* cmd, KeyFlags& f) {
  auto* config =
      cmd->add_option("--config", f.config_path, "iris.yaml: its `store:` holds the keys");
  cmd->add_option("--db", f.db,
                  "the store: a SQLite path or postgres://... (default: the data "
                  "directory's iris.db)")
      ->excludes(config);
  cmd->add_flag("--json", f.json, "print JSON (the /admin/keys shape)");
}

void AddChangeFlags(CLI::App* cmd, KeyFlags& f) {
  cmd->add_option("--budget-usd", f.budget_usd, "spend limit in USD for each budget period");
  cmd->add_option("--budget-period", f.budget_period, "day, month (UTC) or total (default)")
      ->check(CLI::IsMember({"day", "month", "total"}));
  cmd->add_option("--rpm", f.rpm, "requests per minute (0: no limit)");
  cmd->add_option("--tpm", f.tpm, "tokens per minute (0: no limit)");
  cmd->add_option("--models", f.models,
                  "the model names it may call, comma-separated "
                  "(\"openai/*\" for a provider's; \"\": any)");
  cmd->add_option("--expires", f.expires, "YYYY-MM-DD (UTC midnight), or never");
}

Result<access::KeyChanges> Changes(const KeyFlags& f, const CLI::App* cmd) {
  access::KeyChanges c;
  if (!f.name.empty()) c.name = f.name;
  if (f.budget_usd) c.budget_usd = std::optional<double>(*f.budget_usd);
  if (f.no_budget) c.budget_usd = std::optional<double>();
  if (!f.budget_period.empty()) c.budget_period = f.budget_period;
  if (f.rpm) c.rpm = *f.rpm;
  if (f.tpm) c.tpm = *f.tpm;
  if (cmd->count("--models") > 0) c.models = SplitCommas(f.models);
  if (cmd->count("--expires") > 0) {
    IRIS_ASSIGN_OR_RETURN(int64_t expires, access::ParseExpiry(f.expires));
    c.expires_unix_ms = expires;
  }
  return c;
}

// The store of --db, else of --config's `store:`, else the default file.
Result<std::unique_ptr<observe::Store>> OpenKeyStore(const KeyFlags& f) {
  IRIS_ASSIGN_OR_RETURN(std::string spec, StoreFromFlags(f.config_path, f.db));
  if (spec == "none") return InvalidArgument("the store is off (none): keys live in the store");
  return observe::OpenStore(spec);
}

std::string Money(const std::optional<double>& v) {
  if (!v) return "-";
  char buf[48];
  std::snprintf(buf, sizeof(buf), "$%.2f", *v);
  return buf;
}

std::string Limit(int64_t v) { return v > 0 ? std::to_string(v) : "-"; }

void PrintKeys(const std::vector<gateway::observe::KeyRecord>& keys, int64_t now) {
  std::printf("%-20s %-20s %-8s %-24s %10s %-6s %8s %10s %s\n", "ID", "NAME", "STATUS", "KEY",
              "BUDGET", "PERIOD", "RPM", "TPM", "MODELS");
  for (const auto& k : keys) {
    const std::string status = k.revoked_unix_ms != 0                                 ? "revoked"
                               : (k.expires_unix_ms != 0 && now >= k.expires_unix_ms) ? "expired"
                                                                                      : "active";
    std::string models;
    for (const std::string& m : k.models) models += (models.empty() ? "" : ",") + m;
    std::printf("%-20s %-20s %-8s %-24s %10s %-6s %8s %10s %s\n", k.id.c_str(), k.name.c_str(),
                status.c_str(), k.hint.c_str(), Money(k.budget_usd).c_str(),
                k.budget_period.c_str(), Limit(k.rpm).c_str(), Limit(k.tpm).c_str(),
                models.empty() ? "any" : models.c_str());
  }
}

void PrintOne(const gateway::observe::KeyRecord& k, int64_t now, bool json) {
  if (json) {
    std::printf("%s\n", SerializeJson(access::KeyJson(k, now)).c_str());
  } else {
    PrintKeys({k}, now);
  }
}

template <typename Fn>
void Run(const char* what, int& exit_code, Fn fn) {
  Status st = fn();
  if (!st.ok()) {
    PrintError(what, st.message());
    exit_code = st.code() == ErrorCode::kInvalidArgument ? 2 : 1;
    return;
  }
  exit_code = 0;
}

}  // namespace

void AddKeysCommand(CLI::App& app, int& exit_code) {
  auto* keys = app.add_subcommand("keys", "Create, list, change and revoke the gateway's API keys");
  keys->require_subcommand(1);
  auto f = std::make_shared<KeyFlags>();

  auto* create = keys->add_subcommand("create", "Make a key; it is printed once, never again");
  create->add_option("--name", f->name, "a label: letters, digits, . _ -")->required();
  AddChangeFlags(create, *f);
  AddStoreFlags(create, *f);
  create->callback([f, create, &exit_code] {
    Run("keys create", exit_code, [&]() -> Status {
      IRIS_ASSIGN_OR_RETURN(access::KeyChanges c, Changes(*f, create));
      IRIS_ASSIGN_OR_RETURN(auto store, OpenKeyStore(*f));
      const int64_t now = NowUnixMs();
      IRIS_ASSIGN_OR_RETURN(access::CreatedKey k, access::CreateKey(*store, c, now));
      if (f->json) {
        std::printf(
            "%s\n",
            SerializeJson(boost::json::object{{"id", k.record.id}, {"key", k.plaintext}}).c_str());
      } else {
        std::printf("%s\n", k.plaintext.c_str());
        std::fprintf(stderr,
                     "iris keys: created %s (\"%s\"). The key above is shown only now: store it "
                     "somewhere safe.\n",
                     k.record.id.c_str(), k.record.name.c_str());
      }
      return OkStatus();
    });
  });

  auto* list = keys->add_subcommand("list", "Every key (revoked ones too)");
  AddStoreFlags(list, *f);
  list->callback([f, &exit_code] {
    Run("keys list", exit_code, [&]() -> Status {
      IRIS_ASSIGN_OR_RETURN(auto store, OpenKeyStore(*f));
      IRIS_ASSIGN_OR_RETURN(auto all, store->FetchKeys());
      const int64_t now = NowUnixMs();
      if (f->json) {
        boost::json::array a;
        for (const auto& k : all) a.push_back(access::KeyJson(k, now));
        std::printf("%s\n", SerializeJson(a).c_str());
      } else if (all.empty()) {
        std::printf("no keys yet (iris keys create --name NAME)\n");
      } else {
        PrintKeys(all, now);
      }
      return OkStatus();
    });
  });

  auto* show = keys->add_subcommand("show", "One key by id or name");
  show->add_option("key", f->id, "its id (key_...) or name")->required();
  AddStoreFlags(show, *f);
  show->callback([f, &exit_code] {
    Run("keys show", exit_code, [&]() -> Status {
      IRIS_ASSIGN_OR_RETURN(auto store, OpenKeyStore(*f));
      IRIS_ASSIGN_OR_RETURN(auto k, access::FindKey(*store, f->id));
      PrintOne(k, NowUnixMs(), f->json);
      return OkStatus();
    });
  });

  auto* update = keys->add_subcommand("update", "Change a key's name, budget, limits or models");
  update->add_option("key", f->id, "its id (key_...) or name")->required();
  update->add_option("--name", f->name, "a new label");
  update->add_flag("--no-budget", f->no_budget, "remove the budget");
  AddChangeFlags(update, *f);
  AddStoreFlags(update, *f);
  update->callback([f, update, &exit_code] {
    Run("keys update", exit_code, [&]() -> Status {
      IRIS_ASSIGN_OR_RETURN(access::KeyChanges c, Changes(*f, update));
      IRIS_ASSIGN_OR_RETURN(auto store, OpenKeyStore(*f));
      const int64_t now = NowUnixMs();
      IRIS_ASSIGN_OR_RETURN(auto k, access::UpdateKey(*store, f->id, c, now));
      PrintOne(k, now, f->json);
      return OkStatus();
    });
  });

  auto* revoke = keys->add_subcommand("revoke",
                                      "Refuse a key from now on (every instance "
                                      "within auth.key_refresh_ms)");
  revoke->add_option("key", f->id, "its id (key_...) or name")->required();
  AddStoreFlags(revoke, *f);
  revoke->callback([f, &exit_code] {
    Run("keys revoke", exit_code, [&]() -> Status {
      IRIS_ASSIGN_OR_RETURN(auto store, OpenKeyStore(*f));
      const int64_t now = NowUnixMs();
      IRIS_ASSIGN_OR_RETURN(auto k, access::RevokeKey(*store, f->id, now));
      PrintOne(k, now, f->json);
      return OkStatus();
    });
  });
}

}  // namespace iris::cli
