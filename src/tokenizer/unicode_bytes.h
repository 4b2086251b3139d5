// GPT-2's byte-level alphabet: every byte maps to a printable code point, so
// byte-level BPE vocabularies are valid UTF-8 text (private to tokenizer/).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace onellm {

// The UTF-8 text of the code point byte b stands for.
const std::string& byte_to_unicode(uint8_t b);
// The byte a code point of the alphabet stands for, -1 for any other.
int unicode_to_byte(uint32_t cp);
// The inverse over a whole token text; characters outside the alphabet are
// kept as their own UTF-8 bytes.
std::vector<uint8_t> unicode_to_bytes(std::string_view text);

}  // namespace onellm
