#include "tokenizer/unicode_bytes.h"

#include <array>
#include <unordered_map>

namespace onellm {
namespace {

bool printable_as_is(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

struct Tables {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, uint8_t> to_byte;  // code point -> byte
  Tables() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      uint32_t cp = printable_as_is(b) ? static_cast<uint32_t>(b) : next++;
      to_unicode[static_cast<size_t>(b)] = utf8(cp);
      to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return tables().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) {
  const auto& to_byte = tables().to_byte;
  auto it = to_byte.find(cp);
  return it == to_byte.end() ? -1 : it->second;
}

std::vector<uint8_t> unicode_to_bytes(std::string_view text) {
  std::vector<uint8_t> out;
  const auto& to_byte = tables().to_byte;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (i + len > text.size()) len = 1;
    uint32_t cp = c;
    if (len == 2) cp = ((c & 0x1Fu) << 6) | (text[i + 1] & 0x3Fu);
    if (len == 3) cp = ((c & 0x0Fu) << 12) | ((text[i + 1] & 0x3Fu) << 6) | (text[i + 2] & 0x3Fu);
    if (len == 4) cp = ((c & 0x07u) << 18) | ((text[i + 1] & 0x3Fu) << 12) | ((text[i + 2] & 0x3Fu) << 6) | (text[i + 3] & 0x3Fu);
    auto it = to_byte.find(cp);
    if (it != to_byte.end()) {
      out.push_back(it->second);
    } else {
      for (size_t k = 0; k < len; ++k) out.push_back(static_cast<uint8_t>(text[i + k]));
    }
    i += len;
  }
  return out;
}

}  // namespace onellm
