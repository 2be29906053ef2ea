// A throwaway PostgreSQL server for the request log's tests: a cluster in a temp directory
// (a copy of one made once by initdb), postgres on a free loopback port, one fresh database
// per test, stopped at exit. As root (CI containers) the server runs as the `postgres` user,
// since postgres refuses root.
// Test-only and header-only, so it stays out of the library.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "base/env.h"
#include "base/free_port.h"
#include "base/status.h"

namespace iris::gateway::observe::testing {

class PostgresTestServer {
 public:
  // The process-wide server, started on first use. status() says why it is not running.
  static PostgresTestServer& Get() {
    static PostgresTestServer server;
    return server;
  }

  const Status& status() const { return status_; }

  // A new empty database on the server; returns its libpq URI.
  Result<std::string> NewDatabase() {
    if (!status_.ok()) return status_;
    const std::string name = "iris_test_" + std::to_string(++databases_);
    PGconn* conn = PQconnectdb(Uri("postgres").c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn);
      PQfinish(conn);
      return Status(ErrorCode::kUnavailable, "test server: " + msg);
    }
    PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string msg = PQerrorMessage(conn);
    PQclear(r);
    PQfinish(conn);
    if (!ok) return Status(ErrorCode::kUnavailable, "test server: CREATE DATABASE: " + msg);
    return Uri(name);
  }

  std::string Uri(const std::string& db) const {
    return "postgresql://iris@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

  ~PostgresTestServer() {
    if (pid_ > 0) {
      kill(pid_, SIGINT);  // fast shutdown: disconnects clients, no checkpoint wait
      int wstatus = 0;
      waitpid(pid_, &wstatus, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

 private:
  PostgresTestServer() { status_ = Start(); }

  static std::string FindBinDir() {
    if (auto env = GetEnv("IRIS_PG_BIN")) return *env;
    std::string best;
    int best_version = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      int v = std::atoi(e.path().filename().c_str());
      if (v > best_version && std::filesystem::exists(e.path() / "bin" / "postgres")) {
        best_version = v;
        best = (e.path() / "bin").string();
      }
    }
    return best;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Forks and execs `args` with stdout/stderr to `log`, as uid_/gid_ when running as root.
  pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const bool drop = geteuid() == 0;
    const uid_t uid = uid_;
    const gid_t gid = gid_;
    pid_t pid = fork();
    if (pid != 0) return pid;
    // Child: only async-signal-safe calls until exec.
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (drop) {
      if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(126);
    }
    // Set after the uid change (which clears it): the server dies with the test binary.
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    execv(argv[0], argv.data());
    _exit(127);
  }

  Status Start() {
    const std::string bin = FindBinDir();
    if (bin.empty() || !std::filesystem::exists(bin + "/postgres") ||
        !std::filesystem::exists(bin + "/initdb")) {
      return FailedPrecondition(
          "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install "
          "Debian's `postgresql` package, or set IRIS_PG_BIN); the PostgreSQL tests need a "
          "real server");
    }
    char tmpl[] = "/tmp/iris-pg-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Internal("mkdtemp failed");
    dir_ = tmpl;
    uid_ = geteuid();
    gid_ = getegid();
    if (geteuid() == 0) {
      // postgres will not run as root: hand the directory to an unprivileged user.
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr) pw = getpwnam("nobody");
      if (pw == nullptr) return FailedPrecondition("running as root and no postgres user");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (chown(dir_.c_str(), uid_, gid_) != 0) return Internal("chown " + dir_ + " failed");
    }
    chmod(dir_.c_str(), 0700);
    const std::string data = dir_ + "/data";
    const std::string log = dir_ + "/server.log";

    IRIS_ASSIGN_OR_RETURN(const std::string copied_from, MakeCluster(bin, data, log));
    if (RunServer(bin, data, log)) return OkStatus();
    if (!copied_from.empty()) {
      // A damaged template (a crash mid-write: initdb runs with --no-sync) must not fail every
      // later run: this server makes its own cluster, and the template is made again next time.
      std::error_code ec;
      std::filesystem::remove_all(copied_from, ec);
      std::filesystem::remove_all(data, ec);
      IRIS_RETURN_IF_ERROR(InitDb(bin, data, log));
      if (RunServer(bin, data, log)) return OkStatus();
    }
    return Internal("postgres did not start:\n" + ReadFile(log));
  }

  // Starts postgres on `data` (three tries, each on a new free port); true once it answers.
  bool RunServer(const std::string& bin, const std::string& data, const std::string& log) {
    int wstatus = 0;
    for (int tries = 0; tries < 3 && pid_ <= 0; ++tries) {
      port_ = FreeLoopbackPort();
      pid_t pid = Spawn({bin + "/postgres", "-D", data, "-k", dir_, "-p", std::to_string(port_),
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                         "synchronous_commit=off", "-c", "full_page_writes=off"},
                        log);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      const std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                               " user=iris dbname=postgres connect_timeout=2";
      bool up = false;
      bool exited = false;
      while (std::chrono::steady_clock::now() < deadline) {
        if (PQping(ping.c_str()) == PQPING_OK) {
          up = true;
          break;
        }
        if (waitpid(pid, &wstatus, WNOHANG) == pid) {  // exited (port taken, ...)
          exited = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (up) {
        pid_ = pid;
      } else if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &wstatus, 0);
      }
    }
    return pid_ > 0;
  }

  static std::vector<std::string> InitDbArgs(const std::string& bin, const std::string& data) {
    return {bin + "/initdb",    "-D", data, "-A", "trust", "-U", "iris", "-E", "UTF8", "--no-sync",
            "--no-instructions"};
  }

  // Runs `args` as the server's user to its end; returns its wait status.
  int RunToEnd(const std::vector<std::string>& args, const std::string& log) {
    int wstatus = 0;
    waitpid(Spawn(args, log), &wstatus, 0);
    return wstatus;
  }

  static bool Succeeded(int wstatus) { return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0; }

  // Runs `bin`/initdb into `data` as the server's user; `log` gets its output.
  Status InitDb(const std::string& bin, const std::string& data, const std::string& log) {
    const int wstatus = RunToEnd(InitDbArgs(bin, data), log);
    if (!Succeeded(wstatus)) {
      return Internal("initdb failed (status " + std::to_string(wstatus) + "):\n" + ReadFile(log));
    }
    return OkStatus();
  }

  // The template for this user, PostgreSQL build, initdb command and locale: any of them
  // changed names another template.
  std::string Template(const std::string& bin) const {
    std::error_code ec;
    const auto stamp = std::filesystem::last_write_time(bin + "/postgres", ec);
    std::vector<std::string> parts = InitDbArgs(bin, "");
    parts.push_back(std::to_string(stamp.time_since_epoch().count()));
    for (const char* var : {"LC_ALL", "LC_CTYPE", "LC_COLLATE", "LANG"}) {
      parts.push_back(GetEnv(var).value_or(""));
    }
    std::string key;
    for (const std::string& part : parts) {
      key += part;
      key += '|';
    }
    return "/tmp/iris-pg-template-" + std::to_string(uid_) + "-" +
           std::to_string(std::hash<std::string>{}(key));
  }

  // Whether `path` is a directory (not a link) of the server's user that no one else may
  // write: /tmp is shared, and a template planted by another user (a postgresql.conf of theirs)
  // would run their code as this one.
  bool OwnTemplate(const std::string& path) const {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid_ &&
           (st.st_mode & 077) == 0;
  }

  // Makes the cluster in `data`; returns the template it copied ("" when initdb made it). initdb is
  // half of a server's start (1 of about 2 s), and ctest starts a test binary, hence a server, per
  // test: the first server of a user and a PostgreSQL build runs initdb into a template under /tmp,
  // once, and every server copies it. A template is renamed into place only after initdb
  // succeeded, so a half-made one is never copied; one that is not the user's own, or that
  // cannot be copied, is not used: initdb runs here.
  Result<std::string> MakeCluster(const std::string& bin, const std::string& data,
                                  const std::string& log) {
    std::error_code ec;
    const std::string tmpl = Template(bin);
    if (!std::filesystem::exists(tmpl + "/data/PG_VERSION", ec)) {
      char fresh[] = "/tmp/iris-pg-template-new-XXXXXX";
      if (mkdtemp(fresh) != nullptr) {
        const bool made = (geteuid() != 0 || chown(fresh, uid_, gid_) == 0) &&
                          InitDb(bin, std::string(fresh) + "/data", log).ok();
        // When another test binary's template got there first, rename fails; that one is kept.
        if (!made || rename(fresh, tmpl.c_str()) != 0) std::filesystem::remove_all(fresh, ec);
      }
    }
    if (OwnTemplate(tmpl)) {
      if (Succeeded(RunToEnd({"/bin/cp", "-a", tmpl + "/data", data}, log))) return tmpl;
      std::filesystem::remove_all(data, ec);
    }
    IRIS_RETURN_IF_ERROR(InitDb(bin, data, log));
    return std::string();
  }

  Status status_;
  std::string dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
  int databases_ = 0;
};

}  // namespace iris::gateway::observe::testing
