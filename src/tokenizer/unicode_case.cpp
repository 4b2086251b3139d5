#include "tokenizer/unicode_case.h"

#include <locale.h>
#include <cctype>
#include <wctype.h>

#include "tokenizer/jinja_value.h"

namespace onellm {
namespace {

using jinja::utf8_decode;
using jinja::utf8_encode;

// C.UTF-8 is built into glibc 2.35+; elsewhere (or if refused) only ASCII
// letters change case, as before.
locale_t utf8_locale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
  locale_t loc = utf8_locale();
  return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  locale_t loc = utf8_locale();
  return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

// Cased: has another case form, or is a letter the tables call upper or
// lower (ß has no single-letter upper form but is lower case).
bool is_cased(char32_t c) {
  if (to_upper(c) != c || to_lower(c) != c) return true;
  locale_t loc = utf8_locale();
  return c >= 0x80 && loc && (iswlower_l(static_cast<wint_t>(c), loc) || iswupper_l(static_cast<wint_t>(c), loc));
}

// Unicode decimal digits (category Nd) beyond ASCII: each block is ten code
// points from its zero. glibc files them under "alpha" (ISO C keeps "digit"
// to 0-9), Python's isdigit counts them as digits.
bool is_decimal_digit(char32_t c) {
  static constexpr char32_t kZeros[] = {
      0x660,   0x6F0,   0x7C0,   0x966,   0x9E6,   0xA66,   0xAE6,   0xB66,   0xBE6,   0xC66,   0xCE6,  0xD66,
      0xDE6,   0xE50,   0xED0,   0xF20,   0x1040,  0x1090,  0x17E0,  0x1810,  0x1946,  0x19D0,  0x1A80, 0x1A90,
      0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,  0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0, 0xFF10,
      0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0,
      0x11730, 0x118E0, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16B50, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0};
  if (c >= '0' && c <= '9') return true;
  for (char32_t zero : kZeros)
    if (c >= zero && c < zero + 10) return true;
  return c >= 0x1D7CE && c <= 0x1D7FF;  // mathematical digits
}

bool in_class(char32_t c, CharClass what) {
  if (c < 0x80) {
    const int a = static_cast<int>(c);
    switch (what) {
      case CharClass::kDigit: return std::isdigit(a) != 0;
      case CharClass::kAlpha: return std::isalpha(a) != 0;
      case CharClass::kAlnum: return std::isalnum(a) != 0;
      case CharClass::kSpace: return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
    }
  }
  locale_t loc = utf8_locale();
  if (!loc) return false;
  const auto w = static_cast<wint_t>(c);
  switch (what) {
    case CharClass::kDigit: return is_decimal_digit(c);
    case CharClass::kAlpha: return iswalpha_l(w, loc) && !is_decimal_digit(c);
    case CharClass::kAlnum: return iswalnum_l(w, loc) || is_decimal_digit(c);
    case CharClass::kSpace: return iswspace_l(w, loc) || c == 0x85 || c == 0xA0 || c == 0x2007 || c == 0x202F;
  }
  return false;
}

void append_upper(std::u32string& out, char32_t c) {
  if (c == U'\u00DF') {
    out += U"SS";  // Python's special casing of ß
    return;
  }
  out += to_upper(c);
}

}  // namespace

std::string unicode_upper(const std::string& s) {
  std::u32string out;
  for (char32_t c : utf8_decode(s)) append_upper(out, c);
  return utf8_encode(out);
}

std::string unicode_lower(const std::string& s) {
  std::u32string text = utf8_decode(s);
  for (char32_t& c : text) c = to_lower(c);
  return utf8_encode(text);
}

std::string unicode_title(const std::string& s) {
  std::u32string out;
  bool previous_cased = false;
  for (char32_t c : utf8_decode(s)) {
    if (previous_cased) out += to_lower(c);
    else append_upper(out, c);
    previous_cased = is_cased(c);
  }
  return utf8_encode(out);
}

std::string unicode_title_words(const std::string& s) {
  std::u32string out;
  bool word_start = true;
  locale_t loc = utf8_locale();
  for (char32_t c : utf8_decode(s)) {
    const bool space =
        c < 0x80 ? (c == ' ' || (c >= '\t' && c <= '\r')) : loc && iswspace_l(static_cast<wint_t>(c), loc);
    const bool separator = space || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) out += c;
    else if (word_start) append_upper(out, c);
    else out += to_lower(c);
    word_start = separator;
  }
  return utf8_encode(out);
}

std::string unicode_capitalize(const std::string& s) {
  std::u32string out;
  bool first = true;
  for (char32_t c : utf8_decode(s)) {
    if (first) append_upper(out, c);
    else out += to_lower(c);
    first = false;
  }
  return utf8_encode(out);
}

bool unicode_isupper(const std::string& s) {
  bool cased = false;
  for (char32_t c : utf8_decode(s)) {
    if (to_upper(c) != c) return false;  // has an upper form: it is lower
    cased = cased || to_lower(c) != c;
  }
  return cased;
}

bool unicode_islower(const std::string& s) {
  bool cased = false;
  for (char32_t c : utf8_decode(s)) {
    if (to_lower(c) != c) return false;
    cased = cased || to_upper(c) != c;
  }
  return cased;
}

bool unicode_is_all(const std::string& s, CharClass what) {
  const std::u32string text = utf8_decode(s);
  if (text.empty()) return false;
  for (char32_t c : text)
    if (!in_class(c, what)) return false;
  return true;
}

size_t unicode_word_count(const std::string& s) {
  locale_t loc = utf8_locale();
  size_t words = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(s)) {
    const bool word = c < 0x80 ? (std::isalnum(static_cast<int>(c)) != 0 || c == '_')
                               : loc && iswalnum_l(static_cast<wint_t>(c), loc);
    words += word && !in_word;
    in_word = word;
  }
  return words;
}

}  // namespace onellm
