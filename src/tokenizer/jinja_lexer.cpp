#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/utf8.h"

namespace onellm::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& options) : src_(std::move(source)), opt_(options) {
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (true) {
      size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, tag - pos);
      bool at_line_start = pos == 0 || src_[pos - 1] == '\n';
      if (trim_next_newline_ && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
        at_line_start = true;
      }
      if (strip_next_leading_) {
        size_t n = 0;
        while (n < text.size() && is_space(text[n])) ++n;
        text.erase(0, n);
      }
      trim_next_newline_ = strip_next_leading_ = false;
      if (tag < src_.size()) {
        char kind = src_[tag + 1];
        char modifier = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
        if (modifier == '-') {
          rstrip(text);
        } else if (opt_.lstrip_blocks && kind != '{' && modifier != '+') {
          lstrip_block(text, at_line_start);
        }
      }
      if (!text.empty()) push(TokenKind::Text, text, pos);
      if (tag >= src_.size()) break;
      char kind = src_[tag + 1];
      if (kind == '#') {
        pos = skip_comment(tag);
      } else {
        pos = lex_tag(tag, kind == '{');
      }
    }
    push(TokenKind::End, "", src_.size());
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  static void rstrip(std::string& text) {
    size_t n = text.size();
    while (n > 0 && is_space(text[n - 1])) --n;
    text.resize(n);
  }

  // lstrip_blocks: drop spaces and tabs between the line start and a tag.
  static void lstrip_block(std::string& text, bool text_at_line_start) {
    size_t nl = text.rfind('\n');
    size_t from = nl == std::string::npos ? 0 : nl + 1;
    if (nl == std::string::npos && !text_at_line_start) return;
    for (size_t i = from; i < text.size(); ++i) {
      if (text[i] != ' ' && text[i] != '\t') return;
    }
    text.resize(from);
  }

  void position(size_t offset, int& line, int& column) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    line = static_cast<int>(it - line_starts_.begin()) + 1;
    size_t start = it == line_starts_.begin() ? 0 : *(it - 1);
    column = static_cast<int>(offset - start) + 1;
  }

  [[noreturn]] void fail(size_t offset, const std::string& message) const {
    int line, column;
    position(offset, line, column);
    throw Error("chat template syntax error at line " + std::to_string(line) + ", column " +
                std::to_string(column) + ": " + message);
  }

  Token& push(TokenKind kind, std::string text, size_t offset) {
    Token t{kind, std::move(text)};
    position(offset, t.line, t.column);
    tokens_.push_back(std::move(t));
    return tokens_.back();
  }

  // After a `%}` or `#}`: `-` strips following whitespace, `+` keeps it,
  // otherwise trim_blocks removes one newline.
  void after_block_end(char modifier) {
    if (modifier == '-') strip_next_leading_ = true;
    else if (modifier != '+') trim_next_newline_ = opt_.trim_blocks;
  }

  size_t skip_comment(size_t tag) {
    size_t end = src_.find("#}", tag + 2);
    if (end == std::string::npos) fail(tag, "unclosed comment '{#'");
    char modifier = end > tag + 2 ? src_[end - 1] : '\0';
    after_block_end(modifier);
    return end + 2;
  }

  size_t lex_tag(size_t tag, bool is_var) {
    size_t i = tag + 2;
    if (i < src_.size() && (src_[i] == '-' || (!is_var && src_[i] == '+'))) ++i;
    push(is_var ? TokenKind::VarBegin : TokenKind::BlockBegin, is_var ? "{{" : "{%", tag);
    size_t first_token = tokens_.size();
    int depth = 0;
    while (true) {
      while (i < src_.size() && is_space(src_[i])) ++i;
      if (i >= src_.size()) fail(tag, std::string("unclosed tag '") + (is_var ? "{{" : "{%") + "'");
      if (depth == 0) {
        const char* close = is_var ? "}}" : "%}";
        char c = src_[i];
        bool modified = (c == '-' || (!is_var && c == '+')) && src_.compare(i + 1, 2, close) == 0;
        if (modified || src_.compare(i, 2, close) == 0) {
          push(is_var ? TokenKind::VarEnd : TokenKind::BlockEnd, close, i);
          size_t end = i + (modified ? 3 : 2);
          if (is_var) {
            if (modified) strip_next_leading_ = true;
          } else {
            after_block_end(modified ? c : '\0');
            if (tokens_.size() == first_token + 2 && tokens_[first_token].kind == TokenKind::Name &&
                tokens_[first_token].text == "raw") {
              tokens_.resize(first_token - 1);  // the raw tag itself emits nothing
              return lex_raw(tag, end);
            }
          }
          return end;
        }
      }
      i = lex_expression_token(i, depth);
    }
  }

  // Text up to {% endraw %} is literal; the tags' whitespace modifiers apply.
  size_t lex_raw(size_t tag, size_t body) {
    for (size_t i = body; i + 1 < src_.size(); ++i) {
      if (src_[i] != '{' || src_[i + 1] != '%') continue;
      size_t j = i + 2;
      char open_mod = j < src_.size() ? src_[j] : '\0';
      if (open_mod == '-' || open_mod == '+') ++j;
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_space(src_[j])) ++j;
      char close_mod = j < src_.size() ? src_[j] : '\0';
      if (close_mod == '-' || close_mod == '+') ++j;
      if (src_.compare(j, 2, "%}") != 0) continue;
      std::string text = src_.substr(body, i - body);
      if (trim_next_newline_ && !text.empty() && text[0] == '\n') text.erase(0, 1);
      if (strip_next_leading_) {
        size_t n = 0;
        while (n < text.size() && is_space(text[n])) ++n;
        text.erase(0, n);
      }
      trim_next_newline_ = strip_next_leading_ = false;
      if (open_mod == '-') rstrip(text);
      else if (opt_.lstrip_blocks && open_mod != '+') lstrip_block(text, false);
      if (!text.empty()) push(TokenKind::Text, text, body);
      after_block_end(close_mod == '-' || close_mod == '+' ? close_mod : '\0');
      return j + 2;
    }
    fail(tag, "unclosed '{% raw %}' block");
  }

  size_t lex_expression_token(size_t i, int& depth) {
    char c = src_[i];
    if (is_name_start(c)) {
      size_t j = i;
      while (j < src_.size() && is_name_char(src_[j])) ++j;
      push(TokenKind::Name, src_.substr(i, j - i), i);
      return j;
    }
    if (is_digit(c)) return lex_number(i);
    if (c == '\'' || c == '"') return lex_string(i);
    static const char* kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwoChar) {
      if (src_.compare(i, 2, op) == 0) {
        push(TokenKind::Operator, op, i);
        return i + 2;
      }
    }
    if (std::strchr("+-*/%~<>=()[]{},.:|", c) == nullptr || c == '\0') {
      fail(i, std::string("unexpected character '") + c + "'");
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) fail(i, std::string("unbalanced '") + c + "'");
      --depth;
    }
    push(TokenKind::Operator, std::string(1, c), i);
    return i + 1;
  }

  size_t lex_number(size_t i) {
    auto digits = [&](size_t j) {
      while (j < src_.size() && (is_digit(src_[j]) || (src_[j] == '_' && j + 1 < src_.size() && is_digit(src_[j + 1])))) ++j;
      return j;
    };
    size_t j = digits(i);
    bool after_dot = !tokens_.empty() && tokens_.back().kind == TokenKind::Operator && tokens_.back().text == ".";
    bool is_float = false;
    if (!after_dot && j + 1 < src_.size() && src_[j] == '.' && is_digit(src_[j + 1])) {
      j = digits(j + 1);
      is_float = true;
    }
    if (!after_dot && j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      size_t k = j + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        j = digits(k);
        is_float = true;
      }
    }
    std::string text;
    for (size_t k = i; k < j; ++k) {
      if (src_[k] != '_') text += src_[k];
    }
    Token& t = push(is_float ? TokenKind::Float : TokenKind::Integer, text, i);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
      if (errno != 0 || v > static_cast<unsigned long long>(INT64_MAX)) fail(i, "integer literal too large");
      t.int_value = static_cast<int64_t>(v);
    }
    return j;
  }

  // Python string escapes (Jinja decodes literals with unicode-escape).
  size_t lex_string(size_t i) {
    char quote = src_[i];
    std::string out;
    size_t j = i + 1;
    auto hex = [&](size_t at, int n) -> uint32_t {
      if (at + n > src_.size()) fail(at, "truncated escape");
      uint32_t v = 0;
      for (int k = 0; k < n; ++k) {
        char h = src_[at + k];
        int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
        if (d < 0) fail(at, "bad hex escape");
        v = v * 16 + d;
      }
      return v;
    };
    while (true) {
      if (j >= src_.size()) fail(i, "unterminated string literal");
      char c = src_[j];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++j;
        continue;
      }
      if (j + 1 >= src_.size()) fail(i, "unterminated string literal");
      char e = src_[j + 1];
      j += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': append_utf8(out, hex(j, 2)); j += 2; break;
        case 'u': append_utf8(out, hex(j, 4)); j += 4; break;
        case 'U': {
          uint32_t cp = hex(j, 8);
          if (cp > 0x10FFFF) fail(j, "escape outside Unicode");
          append_utf8(out, cp);
          j += 8;
          break;
        }
        default: out += '\\'; out += e;  // Python keeps unknown escapes
      }
    }
    push(TokenKind::String, out, i);
    return j + 1;
  }

  std::string src_;
  LexOptions opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  bool strip_next_leading_ = false;
  bool trim_next_newline_ = false;
};

std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

}  // namespace

std::vector<Token> lex(const std::string& source, const LexOptions& options) {
  return Lexer(normalize_newlines(source), options).run();
}

}  // namespace onellm::jinja
