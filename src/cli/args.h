// A small command-line parser: "-m FILE", "--temp 0.5", "--flag", repeated
// options, positional arguments. Unknown options are errors that name them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace onellm::cli {

class Args {
 public:
  // `with_value` lists options that take a value (every alias), `flags` the
  // boolean ones; anything else starting with '-' is rejected.
  Args(int argc, char** argv, int first, const std::set<std::string>& with_value, const std::set<std::string>& flags);

  bool has(const std::string& name) const;
  std::optional<std::string> get(std::initializer_list<const char*> names) const;
  std::vector<std::string> get_all(const std::string& name) const;
  std::string get_or(std::initializer_list<const char*> names, const std::string& fallback) const;
  long long get_int(std::initializer_list<const char*> names, long long fallback) const;
  double get_double(std::initializer_list<const char*> names, double fallback) const;
  bool flag(std::initializer_list<const char*> names) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// The model a command uses: -m/--model, else $ONELLM_MODEL, else onellm's
// bundled model (models/onellm-device.gguf beside the executable's build or
// install tree, or in the source tree it was built from). Throws Error naming
// every place looked at when none exists.
std::string model_path_or_default(const Args& a);

// Expands \n \t \r \\ \' \" \xHH like llama-cli's default escape processing.
std::string process_escapes(const std::string& s);

// "1048576", "64K", "256M", "2G" (binary units) -> bytes; throws Error naming the option.
uint64_t parse_byte_size(const std::string& text, const std::string& option);


}  // namespace onellm::cli
