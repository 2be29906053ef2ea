// Memory maps: a whole file read-only, and anonymous buffers for data read on every step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"

namespace iris {

class MappedFile {
 public:
  // Maps `path` read-only. An empty file maps to an empty span.
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Zeroed anonymous memory, private to the process, aligned to 2 MiB and offered to the kernel
// as transparent huge pages (MADV_HUGEPAGE; the kernel's setting decides). For weights read on
// every token: a file's pages in the page cache are aged by the kernel while mapped (on some
// virtual machines each aging pass stalls every reader for tens of milliseconds, twice a
// second), and 4 KiB pages cost a TLB miss every 4 KiB of a stream; neither happens here.
class AnonymousBuffer {
 public:
  // The huge page size: buffers start on it and their size is rounded up to it.
  static constexpr size_t kPageBytes = size_t{2} << 20;

  // ResourceExhausted when the memory cannot be had.
  static Result<AnonymousBuffer> Allocate(size_t bytes);

  AnonymousBuffer() = default;
  AnonymousBuffer(AnonymousBuffer&& other) noexcept;
  AnonymousBuffer& operator=(AnonymousBuffer&& other) noexcept;
  AnonymousBuffer(const AnonymousBuffer&) = delete;
  AnonymousBuffer& operator=(const AnonymousBuffer&) = delete;
  ~AnonymousBuffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;  // bytes mapped (the request rounded up to 2 MiB)
};

// Tells the kernel the whole pages inside [data, data + n) of a read-only mapping will not be
// read again, so they leave the process's resident set (the page cache keeps them).
void ReleasePages(const void* data, size_t n);

// Reads a whole (small) file into a string.
Result<std::string> ReadFileToString(const std::string& path);

}  // namespace iris
