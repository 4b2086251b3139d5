// A read-only memory mapping of a whole file. Weights are used in place from
// the mapping, so loading a model copies nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace onellm {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Faults the whole mapping in, chunk by chunk, calling progress(fraction)
  // after each chunk, so the first forward pass does not stall on disk reads
  // and a loading bar can show how far it got.
  void prefetch(const std::function<void(double)>& progress) const;
  // The same for [p, p + n) only (clipped to the mapping).
  void prefetch_range(const void* p, size_t n) const;

  // Drops the whole pages inside [p, p + n) from this process's memory
  // (the data stays readable: a later read faults it back in from the
  // file). For data that has been copied elsewhere, e.g. re-laid weights.
  void release(const void* p, size_t n) const;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void reset();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Zeroed anonymous memory from mmap, page aligned, with transparent huge
// pages requested (weights streamed every token: fewer TLB misses).
class AnonymousMemory {
 public:
  AnonymousMemory() = default;
  explicit AnonymousMemory(size_t size);  // throws Error if it cannot be mapped
  ~AnonymousMemory();
  AnonymousMemory(AnonymousMemory&& other) noexcept;
  AnonymousMemory& operator=(AnonymousMemory&& other) noexcept;
  AnonymousMemory(const AnonymousMemory&) = delete;
  AnonymousMemory& operator=(const AnonymousMemory&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace onellm
