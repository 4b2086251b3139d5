// Splits Jinja template source into text and tag tokens, applying the
// whitespace rules transformers renders chat templates with: trim_blocks and
// lstrip_blocks on, `-` / `+` modifiers, keep_trailing_newline off.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace onellm::jinja {

enum class TokenKind {
  Text,        // literal template text (already whitespace-adjusted)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // escapes already decoded
  Integer,
  Float,
  Operator,    // + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : |
  End,
};

struct Token {
  TokenKind kind;
  std::string text;  // text, name, decoded string or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws onellm::Error naming line and column on malformed input.
std::vector<Token> lex(const std::string& source, const LexOptions& options = {});

}  // namespace onellm::jinja
