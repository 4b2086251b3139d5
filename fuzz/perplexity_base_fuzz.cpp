// Feeds arbitrary bytes, as a file, to the reader of `onellm perplexity`'s
// KL-divergence base files (engine/perplexity.h): the raw input, and the
// input behind a valid magic and version so that the header's sizes are the
// fuzzer's. Every input must end in a value or onellm::Error; the reader
// must never allocate by a header it has not checked against the file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "base/error.h"
#include "engine/perplexity.h"

namespace {

// One scratch file per process, removed when the fuzzer exits.
struct ScratchFile {
  ScratchFile() {
    char name[] = "/tmp/onellm-kl-fuzz-XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path = name;
  }
  ~ScratchFile() { ::unlink(path.c_str()); }
  std::string path;
};

const std::string& scratch_path() {
  static const ScratchFile file;
  return file.path;
}

void try_file(const std::string& bytes) {
  std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  try {
    (void)onellm::perplexity_base_context(scratch_path());
  } catch (const onellm::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  try_file(input);
  try_file(std::string("ONELLMKL\x01\0\0\0", 12) + input);
  return 0;
}
