// Where tests find ../shared (golden data, real tiny models) and temp files.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace onellm::test {

inline std::string shared_dir() {
  if (const char* env = std::getenv("ONELLM_SHARED_DIR")) return env;
  return std::string(ONELLM_SOURCE_DIR) + "/../shared";
}

inline bool shared_available() { return std::filesystem::exists(shared_dir() + "/golden/README.md"); }

#define ONELLM_REQUIRE_SHARED()                                                              \
  do {                                                                                       \
    if (!::onellm::test::shared_available())                                                 \
      GTEST_SKIP() << "shared data not found at " << ::onellm::test::shared_dir()            \
                   << " (set ONELLM_SHARED_DIR)";                                            \
  } while (0)

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "onellm-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The whole file; empty if it cannot be read.
inline std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace onellm::test
