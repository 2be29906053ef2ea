// A throwaway redis-server for the tests: on a free loopback port, appending every write to
// its file before answering (appendfsync always), so that Restart() proves what survives a
// restart. Stopped at exit. Test-only and header-only.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/free_port.h"
#include "base/status.h"

namespace iris::gateway::access::testing {

class RedisTestServer {
 public:
  RedisTestServer() { status_ = Start(); }
  ~RedisTestServer() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  const Status& status() const { return status_; }
  std::string url(int db = 0) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

  // Kills the server (SIGKILL: nothing is flushed at exit) and starts it again on the same
  // port from its append-only file.
  Status Restart() {
    Stop();
    return Launch();
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int wstatus = 0;
      waitpid(pid_, &wstatus, 0);
      pid_ = -1;
    }
  }

 private:
  Status Start() {
    const char* bin = "/usr/bin/redis-server";
    if (!std::filesystem::exists(bin)) {
      return FailedPrecondition(
          "redis-server not found (install Debian's `redis-server` package: scripts/setup.sh "
          "does); the shared-state tests need a real Redis");
    }
    char tmpl[] = "/tmp/iris-redis-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Internal("mkdtemp failed");
    dir_ = tmpl;
    port_ = FreeLoopbackPort();
    return Launch();
  }

  Status Launch() {
    const std::vector<std::string> args = {"/usr/bin/redis-server",
                                           "--port",
                                           std::to_string(port_),
                                           "--bind",
                                           "127.0.0.1",
                                           "--dir",
                                           dir_,
                                           "--save",
                                           "",
                                           "--appendonly",
                                           "yes",
                                           "--appendfsync",
                                           "always",
                                           "--daemonize",
                                           "no",
                                           "--logfile",
                                           dir_ + "/redis.log"};
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) {
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execv(argv[0], argv.data());
      _exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      timeval tv{0, 200'000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      bool up = false;
      if (c != nullptr && c->err == 0) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        up = r != nullptr && r->type == REDIS_REPLY_STATUS;
        if (r != nullptr) freeReplyObject(r);
      }
      if (c != nullptr) redisFree(c);
      if (up) return OkStatus();
      int wstatus = 0;
      if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        return Internal("redis-server exited at start (see " + dir_ + "/redis.log)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Internal("redis-server did not answer within 20 s");
  }

  Status status_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace iris::gateway::access::testing
