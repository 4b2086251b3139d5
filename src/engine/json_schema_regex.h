// Private to engine/: JSON Schema `pattern` (an ECMA-262 regular expression)
// as GBNF for the inside of a JSON string.
#pragma once

#include <string>

namespace onellm::schema_regex {

// GBNF for the encoded characters of a JSON string (without its quotes) whose
// value matches `pattern` — anywhere, unless anchored with ^ and/or $, as the
// JSON Schema spec says. Supported: literals and escapes (\d \w \s \D \W \S
// \t \n \r \uHHHH and escaped punctuation), `.`, classes with ranges and
// negation, groups (capturing or (?:...)), `|`, `* + ? {n} {n,} {n,m}` (lazy
// forms too), ^ first and $ last. Characters that JSON must escape (quote,
// backslash, controls) are produced from literals as their escape sequences
// and left out of `.`, classes and negated escapes, so a generated string
// always matches but some matching strings (with such characters in a class
// position) cannot be generated. Anything else (backreferences, lookaround,
// \b, anchors elsewhere) throws Error naming the construct and its offset.
std::string pattern_to_gbnf(const std::string& pattern);

}  // namespace onellm::schema_regex
