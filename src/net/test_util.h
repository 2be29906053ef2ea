// Test helpers shared by the tests of every outbound client (net, the gateway's upstream
// client, the hub download): a self-signed certificate made at test time, a raw TCP server
// on loopback, and a forward proxy on loopback that records what it was asked. Header-only and
// test-only; nothing in the libraries includes it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace iris::net::testing {

// Writes a self-signed P-256 certificate for localhost and 127.0.0.1 (a CA too, so that it is
// its own trust anchor: pass `cert_path` as the CA file) and its key, as PEM files. Valid
// from a minute ago for an hour. Returns false when OpenSSL or the files fail.
inline bool WriteSelfSignedCertificate(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  bool ok = key != nullptr && x != nullptr;
  if (ok) {
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      ok = ok && ext != nullptr && X509_add_ext(x, ext, -1) == 1;
      X509_EXTENSION_free(ext);
    }
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
  }
  if (ok) {
    FILE* f = std::fopen(cert_path.c_str(), "w");
    ok = f != nullptr && PEM_write_X509(f, x) == 1;
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  }
  if (ok) {
    FILE* f = std::fopen(key_path.c_str(), "w");
    ok = f != nullptr && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  }
  X509_free(x);
  EVP_PKEY_free(key);
  return ok;
}

// A self-signed certificate (WriteSelfSignedCertificate) in a fresh temporary directory,
// removed with it.
class TempCertificate {
 public:
  TempCertificate() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("iris_test_cert_" + std::to_string(::getpid()) + "_" + std::to_string(++counter));
    std::filesystem::create_directories(dir_);
    cert_ = (dir_ / "cert.pem").string();
    key_ = (dir_ / "key.pem").string();
    ok_ = WriteSelfSignedCertificate(cert_, key_);
  }
  ~TempCertificate() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempCertificate(const TempCertificate&) = delete;
  TempCertificate& operator=(const TempCertificate&) = delete;

  bool ok() const { return ok_; }                    // the files were written
  const std::string& cert() const { return cert_; }  // PEM certificate (and CA file)
  const std::string& key() const { return key_; }    // PEM private key
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string cert_, key_;
  bool ok_ = false;
};

// A raw TCP peer on 127.0.0.1 (port 0): each accepted connection runs `serve(server, fd,
// index)` on a thread of its own, and is closed when it returns. Stalls inside `serve` should
// use Sleep() (or poll stopping()) so that the destructor can end them.
class LoopbackServer {
 public:
  using Serve = std::function<void(LoopbackServer&, int fd, int index)>;
  explicit LoopbackServer(Serve serve) : serve_(std::move(serve)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("LoopbackServer");
      std::abort();
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      for (int index = 0;; ++index) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0 || stop_) {
          if (fd >= 0) ::close(fd);
          return;
        }
        ++accepts_;
        std::lock_guard lock(mu_);
        threads_.emplace_back([this, fd, index] {
          serve_(*this, fd, index);
          ::close(fd);
        });
      }
    });
  }
  ~LoopbackServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    std::lock_guard lock(mu_);
    for (std::thread& t : threads_) t.join();
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  uint16_t port() const { return port_; }
  int accepts() const { return accepts_; }
  bool stopping() const { return stop_; }
  // Sleeps up to `d`, returning early when the server stops.
  void Sleep(std::chrono::milliseconds d) const {
    const auto end = std::chrono::steady_clock::now() + d;
    while (!stop_ && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Reads until "\r\n\r\n" (and `body_bytes` more), 5 s at most per read; returns what was
  // read.
  static std::string ReadRequest(int fd, size_t body_bytes = 0) {
    std::string in;
    char buf[4096];
    while (true) {
      const size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos && in.size() >= end + 4 + body_bytes) return in;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return in;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return in;
      in.append(buf, static_cast<size_t>(n));
    }
  }
  // Writes all of `bytes` unless the peer goes away.
  static void Send(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }

 private:
  Serve serve_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// An HTTP forward proxy on 127.0.0.1 (port 0) for tests. Whatever host a request names, it
// connects to 127.0.0.1 at the port named (a test has only loopback peers):
// - "CONNECT host:port" is answered "200 Connection established", then bytes are piped both
//   ways until either side closes;
// - an absolute-form request ("GET http://host:port/path HTTP/1.1") is forwarded in origin
//   form ("GET /path HTTP/1.1") with the rest of the bytes as they are, and the answer piped
//   back.
// With `refuse_status` other than 0 every request is answered with that status instead.
class LoopbackProxy {
 public:
  explicit LoopbackProxy(int refuse_status = 0)
      : refuse_status_(refuse_status),
        server_([this](LoopbackServer& server, int fd, int) { Handle(server, fd); }) {}

  uint16_t port() const { return server_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // The request line of every request received, in order ("CONNECT localhost:443 HTTP/1.1").
  std::vector<std::string> request_lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  // The head (request line and fields) of every request received, in order.
  std::vector<std::string> heads() const {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  // The port at the end of "host:port" / "[v6]:port", or `fallback` when there is none.
  static uint16_t PortOf(std::string_view authority, uint16_t fallback) {
    const size_t colon = authority.rfind(':');
    const size_t bracket = authority.rfind(']');
    if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
      return fallback;
    }
    return static_cast<uint16_t>(std::stoul(std::string(authority.substr(colon + 1))));
  }

  // Copies bytes both ways until either side closes, 10 s pass idle, or the proxy stops.
  static void Pipe(const LoopbackServer& server, int a, int b) {
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[16384];
    int idle_ms = 0;
    while (!server.stopping() && idle_ms < 10000) {
      const int ready = ::poll(fds, 2, 50);
      if (ready < 0) return;
      if (ready == 0) {
        idle_ms += 50;
        continue;
      }
      idle_ms = 0;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        LoopbackServer::Send(fds[1 - i].fd, std::string_view(buf, static_cast<size_t>(n)));
      }
    }
  }

  void Handle(const LoopbackServer& server, int fd) {
    const std::string in = LoopbackServer::ReadRequest(fd);
    const size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos) return;
    const std::string line = in.substr(0, in.find("\r\n"));
    {
      std::lock_guard lock(mu_);
      lines_.push_back(line);
      heads_.push_back(in.substr(0, head_end));
    }
    if (refuse_status_ != 0) {
      LoopbackServer::Send(fd, "HTTP/1.1 " + std::to_string(refuse_status_) +
                                   " Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 <= sp1) return;
    const std::string method = line.substr(0, sp1);
    const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    uint16_t port = 0;
    std::string forward;  // bytes for the destination before piping
    if (method == "CONNECT") {
      port = PortOf(target, 0);
      forward = in.substr(head_end + 4);
    } else if (target.starts_with("http://")) {
      const size_t path = target.find('/', 7);
      port = PortOf(std::string_view(target).substr(7, path - 7), 80);
      forward = method + " " + (path == std::string::npos ? "/" : target.substr(path)) +
                line.substr(sp2) + in.substr(line.size());
    } else {
      LoopbackServer::Send(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = LoopbackServer::Loopback(port);
    if (port == 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      LoopbackServer::Send(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      ::close(upstream);
      return;
    }
    if (method == "CONNECT")
      LoopbackServer::Send(fd, "HTTP/1.1 200 Connection established\r\n\r\n");
    LoopbackServer::Send(upstream, forward);
    Pipe(server, fd, upstream);
    ::close(upstream);
  }

  const int refuse_status_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::vector<std::string> heads_;
  LoopbackServer server_;  // last: its threads use the members above until it is destroyed
};

}  // namespace iris::net::testing
