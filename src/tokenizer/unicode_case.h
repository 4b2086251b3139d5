// Python's str.upper / lower / title / capitalize / isupper / islower on
// UTF-8 text, for chat templates: per code point through the C library's
// Unicode tables (the C.UTF-8 locale), so "ünï".upper() is "ÜNÏ" as in
// transformers. Special casing beyond ß -> SS is not modelled.
#pragma once

#include <string>

namespace onellm {

std::string unicode_upper(const std::string& s);
std::string unicode_lower(const std::string& s);
// str.title(): each run of cased letters starts upper, the rest lower
// ("hello2world" -> "Hello2World"); str.capitalize(): only the first
// character upper.
std::string unicode_title(const std::string& s);
// Jinja2's title filter: a word starts after whitespace, '-', '(', '{', '['
// or '<' ("hello2world" -> "Hello2world").
std::string unicode_title_words(const std::string& s);
std::string unicode_capitalize(const std::string& s);
// At least one cased character, and all cased characters upper (lower).
bool unicode_isupper(const std::string& s);
bool unicode_islower(const std::string& s);
// str.isdigit / isalpha / isalnum / isspace: non-empty, every character of
// the class (Unicode letters and digits through the C library's tables).
enum class CharClass { kDigit, kAlpha, kAlnum, kSpace };
bool unicode_is_all(const std::string& s, CharClass what);
// Runs of word characters (letters, digits, '_'): Jinja2's wordcount, re \w+.
size_t unicode_word_count(const std::string& s);

}  // namespace onellm
