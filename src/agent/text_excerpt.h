// Small text helpers shared inside the agent layer (not part of its API).
#pragma once

#include <string>
#include <string_view>

namespace onellm::agent {

// The first `max` bytes of `text` for an error message, control characters escaped.
inline std::string excerpt(std::string_view text, size_t max = 120) {
  std::string out;
  for (char c : text.substr(0, max)) {
    if (static_cast<unsigned char>(c) < 0x20) out += "\\x" + std::string(1, "0123456789abcdef"[(c >> 4) & 15]) +
                                                   std::string(1, "0123456789abcdef"[c & 15]);
    else out += c;
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace onellm::agent
