// UTF-8 encoding and decoding of one code point, shared by every layer that
// builds text from code points (tokenizer byte maps, the Jinja engine,
// grammar character classes, XML entities) or reads it back. Encoding does no
// validation: callers that take code points from untrusted input check the
// range first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace onellm {

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Reads the code point starting at s[i] and advances i past it. Returns false
// (i unchanged) for a bad lead byte, a truncated sequence or a bad
// continuation byte; surrogates and overlong forms are not rejected.
inline bool decode_utf8(std::string_view s, size_t& i, uint32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t len;
  if (b < 0x80) len = 1, cp = b;
  else if (b >= 0xC0 && b < 0xE0) len = 2, cp = b & 0x1Fu;
  else if (b >= 0xE0 && b < 0xF0) len = 3, cp = b & 0x0Fu;
  else if (b >= 0xF0 && b < 0xF8) len = 4, cp = b & 0x07u;
  else return false;
  if (i + len > s.size()) return false;
  for (size_t k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  i += len;
  return true;
}

}  // namespace onellm
