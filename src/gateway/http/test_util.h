// Test helpers shared by the http and upstream tests: a blocking POSIX-socket client that
// speaks raw bytes (so tests see exactly what went over the wire) and polling with a limit.
// Header-only and test-only; nothing in the library includes it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace iris::gateway::http::testing {

// Polls `pred` every millisecond until it holds or `limit` passes.
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

struct RawResponse {
  int status = 0;
  std::string head;  // status line and fields, up to the blank line
  std::string body;  // decoded (chunked or Content-Length)
  bool ok = false;   // a complete response was read
};

// A blocking loopback client with a receive timeout, so a test never hangs on a read.
class RawClient {
 public:
  RawClient() = default;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient() { Close(); }

  // Connects to 127.0.0.1:port; false when refused.
  bool Connect(uint16_t port, int recv_timeout_ms = 5000) {
    Close();
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{recv_timeout_ms / 1000, (recv_timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    return true;
  }
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads more bytes into the buffer; false on EOF, error or timeout.
  bool Fill() {
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = (n == 0);
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
  // Reads until `needle` is buffered; false if it never comes.
  bool ReadUntil(std::string_view needle) {
    while (buffer_.find(needle) == std::string::npos) {
      if (!Fill()) return false;
    }
    return true;
  }
  // Reads everything until the peer closes (or the timeout).
  std::string ReadToClose() {
    while (Fill()) {
    }
    return std::exchange(buffer_, {});
  }
  // True when the peer closed the connection (read returns 0) within the timeout.
  bool SeesClose() {
    while (Fill()) {
    }
    return eof_;
  }
  // Reads one response (Content-Length, chunked, or until close).
  RawResponse ReadResponse() {
    RawResponse r;
    if (!ReadUntil("\r\n\r\n")) return r;
    size_t head_end = buffer_.find("\r\n\r\n");
    r.head = buffer_.substr(0, head_end);
    buffer_.erase(0, head_end + 4);
    r.status = std::atoi(r.head.c_str() + 9);
    std::string lower = r.head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (size_t cl = lower.find("content-length: "); cl != std::string::npos) {
      size_t length = std::stoul(lower.substr(cl + 16));
      while (buffer_.size() < length) {
        if (!Fill()) return r;
      }
      r.body = buffer_.substr(0, length);
      buffer_.erase(0, length);
      r.ok = true;
    } else if (lower.find("transfer-encoding: chunked") != std::string::npos) {
      for (;;) {
        if (!ReadUntil("\r\n")) return r;
        size_t line_end = buffer_.find("\r\n");
        size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
        while (buffer_.size() < line_end + 2 + size + 2) {
          if (!Fill()) return r;
        }
        r.body += buffer_.substr(line_end + 2, size);
        buffer_.erase(0, line_end + 2 + size + 2);
        if (size == 0) break;
      }
      r.ok = true;
    } else {
      r.body = ReadToClose();
      r.ok = true;
    }
    return r;
  }
  const std::string& buffered() const { return buffer_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
    eof_ = false;
  }
  // Closes with RST instead of FIN.
  void Reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    Close();
  }

 private:
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace iris::gateway::http::testing
