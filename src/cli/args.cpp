#include "cli/args.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace onellm::cli {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return ss.str();
}

std::string model_path_or_default(const Args& a) {
  if (auto m = a.get({"-m", "--model"})) return *m;
  if (const char* env = std::getenv("ONELLM_MODEL"); env != nullptr && *env != '\0') return env;
  std::vector<std::string> candidates;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path dir = exe.parent_path();
    candidates.push_back((dir / "../models/onellm-device.gguf").lexically_normal().string());
    candidates.push_back((dir / "../share/onellm/onellm-device.gguf").lexically_normal().string());
  }
  candidates.push_back(ONELLM_SOURCE_MODEL);
  std::string looked;
  for (const std::string& c : candidates) {
    if (std::filesystem::is_regular_file(c, ec)) return c;
    looked += (looked.empty() ? "" : ", ") + c;
  }
  throw Error("no model given (-m MODEL or ONELLM_MODEL) and the bundled model is not at " + looked +
              " (scripts/train-default-model builds it)");
}

Args::Args(int argc, char** argv, int first, const std::set<std::string>& with_value,
           const std::set<std::string>& flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.'))) {
      std::string name = a, value;
      bool inline_value = false;
      if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
      if (with_value.count(name) != 0) {
        if (!inline_value) {
          if (i + 1 >= argc) throw Error("option " + name + " needs a value");
          value = argv[++i];
        }
        values_.emplace(name, value);
      } else if (flags.count(name) != 0) {
        values_.emplace(name, "1");
      } else {
        throw Error("unknown option " + name);
      }
    } else {
      positional_.push_back(a);
    }
  }
}

bool Args::has(const std::string& name) const { return values_.count(name) != 0; }

std::optional<std::string> Args::get(std::initializer_list<const char*> names) const {
  std::optional<std::string> out;
  for (const char* n : names) {
    auto range = values_.equal_range(n);
    for (auto it = range.first; it != range.second; ++it) out = it->second;  // last one wins
  }
  return out;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

std::string Args::get_or(std::initializer_list<const char*> names, const std::string& fallback) const {
  auto v = get(names);
  return v ? *v : fallback;
}

long long Args::get_int(std::initializer_list<const char*> names, long long fallback) const {
  auto v = get(names);
  if (!v) return fallback;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != 0) throw Error("option " + std::string(*names.begin()) + ": '" + *v + "' is not an integer");
  return x;
}

double Args::get_double(std::initializer_list<const char*> names, double fallback) const {
  auto v = get(names);
  if (!v) return fallback;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != 0) throw Error("option " + std::string(*names.begin()) + ": '" + *v + "' is not a number");
  return x;
}

bool Args::flag(std::initializer_list<const char*> names) const {
  for (const char* n : names)
    if (has(n)) return true;
  return false;
}

std::string process_escapes(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'x':
        if (i + 2 < s.size() + 0 && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
          out += static_cast<char>(std::strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
          i += 2;
          break;
        }
        [[fallthrough]];
      default:
        out += '\\';
        out += c;
    }
  }
  return out;
}

uint64_t parse_byte_size(const std::string& text, const std::string& option) {
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  uint64_t unit = 1;
  const std::string suffix = text.substr(std::min(used, text.size()));
  if (suffix == "K" || suffix == "k") unit = 1ull << 10;
  else if (suffix == "M" || suffix == "m") unit = 1ull << 20;
  else if (suffix == "G" || suffix == "g") unit = 1ull << 30;
  else if (!suffix.empty()) value = -1;
  if (!(value > 0) || value * static_cast<double>(unit) > 1e18)
    throw Error(option + " wants a positive size in bytes (K, M, G suffixes), got '" + text + "'");
  return static_cast<uint64_t>(value * static_cast<double>(unit));
}

}  // namespace onellm::cli
