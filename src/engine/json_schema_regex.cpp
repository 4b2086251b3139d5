// Regular expression -> GBNF, by recursive descent over the pattern's code
// points: alternation := sequence ('|' sequence)*, sequence := (atom
// quantifier?)*. Character sets are kept as code point ranges so that the
// characters JSON must escape can be taken out before they become classes.
#include "engine/json_schema_regex.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "base/error.h"
#include "base/utf8.h"
#include "engine/json_schema.h"

namespace onellm::schema_regex {
namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // inclusive, sorted after normalize()

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr int kMaxRepeat = 1000;

Ranges normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (auto [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) out.back().second = std::max(out.back().second, hi);
    else out.emplace_back(lo, hi);
  }
  return out;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (auto [lo, hi] : normalize(r)) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

// Characters a JSON string holds only as escapes: controls, quote, backslash.
Ranges json_safe(const Ranges& r) {
  Ranges out;
  for (auto [lo, hi] : normalize(r)) {
    lo = std::max<uint32_t>(lo, 0x20);
    for (uint32_t cut : {uint32_t('"'), uint32_t('\\')}) {
      if (lo <= cut && cut <= hi) {
        if (lo < cut) out.emplace_back(lo, cut - 1);
        lo = cut + 1;
      }
    }
    if (lo <= hi) out.emplace_back(lo, hi);
  }
  return out;
}

const Ranges kDigits = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const Ranges kSpace = {{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                       {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};

std::string hex_escape(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  return buf;
}

// One encoded JSON character for a literal code point: itself, or its escape.
std::string literal_char(uint32_t cp) {
  std::string text;
  switch (cp) {
    case '"': text = "\\\""; break;
    case '\\': text = "\\\\"; break;
    case '\n': text = "\\n"; break;
    case '\t': text = "\\t"; break;
    case '\r': text = "\\r"; break;
    case '\b': text = "\\b"; break;
    case '\f': text = "\\f"; break;
    default:
      if (cp < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
        text = buf;
      } else {
        append_utf8(text, cp);
      }
  }
  return gbnf_literal(text);
}

class Converter {
 public:
  explicit Converter(const std::string& pattern) : source_(pattern) {
    for (size_t i = 0; i < pattern.size();) {
      uint32_t cp;
      if (!decode_utf8(pattern, i, cp)) throw Error("pattern: not valid UTF-8 at byte " + std::to_string(i));
      p_.push_back(cp);
    }
  }

  std::string convert() {
    const bool start_anchor = !p_.empty() && p_.front() == '^';
    if (start_anchor) pos_ = 1;
    // A final '$' is an anchor unless an odd number of backslashes escapes it.
    size_t end = p_.size(), backslashes = 0;
    while (end >= 2 + backslashes && p_[end - 2 - backslashes] == '\\') ++backslashes;
    const bool end_anchor = end > pos_ && p_[end - 1] == '$' && backslashes % 2 == 0;
    if (end_anchor) p_.pop_back();
    std::string body = alternation();
    if (pos_ != p_.size()) fail("unbalanced ')'");
    const std::string any = "json-char*";
    return (start_anchor ? "" : any + " ") + "( " + (body.empty() ? "\"\"" : body) + " )" + (end_anchor ? "" : " " + any);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("pattern '" + source_ + "': " + what + " at character " + std::to_string(pos_));
  }
  bool at_end() const { return pos_ >= p_.size(); }
  uint32_t peek() const { return p_[pos_]; }

  std::string alternation() {
    std::vector<std::string> alts{sequence()};
    while (!at_end() && peek() == '|') {
      ++pos_;
      alts.push_back(sequence());
    }
    if (alts.size() == 1) return alts[0];
    std::string out;
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + ("( " + (alts[i].empty() ? "\"\"" : alts[i]) + " )");
    return out;
  }

  std::string sequence() {
    std::string out;
    while (!at_end() && peek() != '|' && peek() != ')') {
      std::string item = atom();
      item += quantifier();
      out += (out.empty() ? "" : " ") + item;
    }
    return out;
  }

  std::string quantifier() {
    if (at_end()) return "";
    std::string q;
    const uint32_t c = peek();
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      q = std::string(1, static_cast<char>(c));
    } else if (c == '{' && is_repeat()) {
      ++pos_;
      const int lo = number();
      int hi = lo;
      bool open = false;
      if (peek() == ',') {
        ++pos_;
        if (peek() == '}') open = true;
        else hi = number();
      }
      ++pos_;  // '}'
      if (!open && hi < lo) fail("{n,m} with m < n");
      if (lo > kMaxRepeat || hi > kMaxRepeat) fail("repetition above " + std::to_string(kMaxRepeat));
      q = "{" + std::to_string(lo) + (open ? "," : lo == hi ? "" : "," + std::to_string(hi)) + "}";
    } else {
      return "";
    }
    if (!at_end() && peek() == '?') ++pos_;  // lazy: the same strings
    if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?' || (peek() == '{' && is_repeat())))
      fail("a quantifier after a quantifier");
    return q;
  }

  // "{n}", "{n,}" or "{n,m}" starts here (otherwise '{' is a literal).
  bool is_repeat() const {
    size_t i = pos_ + 1, digits = 0;
    while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9') ++i, ++digits;
    if (digits == 0) return false;
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9') ++i;
    }
    return i < p_.size() && p_[i] == '}';
  }

  int number() {
    long v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<long>(peek() - '0');
      if (v > 1000000) fail("repetition count too large");
      ++pos_;
    }
    return static_cast<int>(v);
  }

  std::string atom() {
    const uint32_t c = p_[pos_++];
    switch (c) {
      case '(': {
        if (!at_end() && peek() == '?') {
          if (pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') pos_ += 2;
          else fail("lookaround and named groups are not supported");
        }
        std::string inner = alternation();
        if (at_end() || peek() != ')') fail("unbalanced '('");
        ++pos_;
        return "( " + (inner.empty() ? "\"\"" : inner) + " )";
      }
      case '[': return char_class();
      case '.': return set(complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
      case '\\': return escape();
      case '^': case '$': --pos_; fail("anchors are only supported at the start and end of the pattern");
      case '*': case '+': case '?': --pos_; fail("a quantifier with nothing to repeat");
      default: return literal_char(c);
    }
  }

  std::string set(const Ranges& r) {
    const Ranges safe = json_safe(r);
    if (safe.empty()) fail("a character set with no character a JSON string holds unescaped");
    std::string out = "[";
    for (auto [lo, hi] : safe) out += hex_escape(lo) + (lo == hi ? "" : "-" + hex_escape(hi));
    return out + "]";
  }

  // After a backslash: a class escape (as ranges, for sets) or one literal.
  bool class_escape(Ranges& out) {
    const uint32_t c = p_[pos_];
    const Ranges* r = nullptr;
    bool negate = false;
    switch (c) {
      case 'd': r = &kDigits; break;
      case 'D': r = &kDigits, negate = true; break;
      case 'w': r = &kWord; break;
      case 'W': r = &kWord, negate = true; break;
      case 's': r = &kSpace; break;
      case 'S': r = &kSpace, negate = true; break;
      default: return false;
    }
    ++pos_;
    const Ranges add = negate ? complement(*r) : *r;
    out.insert(out.end(), add.begin(), add.end());
    return true;
  }

  uint32_t escaped_char() {
    const uint32_t c = p_[pos_++];
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case 'f': return '\f';
      case 'v': return '\v';
      case '0': return 0;
      case 'u': {
        if (pos_ + 4 > p_.size()) fail("\\u needs four hex digits");
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
          const uint32_t h = p_[pos_++];
          const int d = h >= '0' && h <= '9' ? int(h - '0') : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                      : h >= 'A' && h <= 'F' ? int(h - 'A' + 10) : -1;
          if (d < 0) fail("\\u needs four hex digits");
          v = v * 16 + static_cast<uint32_t>(d);
        }
        return v;
      }
      case 'b': case 'B': --pos_; fail("word boundaries are not supported");
      default:
        if (c >= '1' && c <= '9') { --pos_; fail("backreferences are not supported"); }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) { --pos_; fail("unknown escape"); }
        return c;  // escaped punctuation stands for itself
    }
  }

  std::string escape() {
    if (at_end()) fail("a pattern cannot end with a backslash");
    Ranges r;
    if (class_escape(r)) return set(r);
    return literal_char(escaped_char());
  }

  std::string char_class() {
    bool negate = false;
    if (!at_end() && peek() == '^') negate = true, ++pos_;
    Ranges r;
    bool first = true;
    while (true) {
      if (at_end()) fail("unterminated character class");
      uint32_t c = p_[pos_];
      if (c == ']' && !first) break;
      first = false;
      ++pos_;
      if (c == '\\') {
        if (at_end()) fail("unterminated character class");
        if (class_escape(r)) continue;
        c = p_[pos_] == 'b' ? (++pos_, uint32_t('\b')) : escaped_char();
      }
      uint32_t hi = c;
      if (pos_ + 1 < p_.size() && p_[pos_] == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        hi = p_[pos_++];
        if (hi == '\\') {
          if (at_end()) fail("unterminated character class");
          hi = escaped_char();
        }
        if (hi < c) fail("a class range out of order");
      }
      r.emplace_back(c, hi);
    }
    ++pos_;  // ']'
    return set(negate ? complement(r) : r);
  }

  std::string source_;
  std::vector<uint32_t> p_;
  size_t pos_ = 0;
};

}  // namespace

std::string pattern_to_gbnf(const std::string& pattern) { return Converter(pattern).convert(); }

}  // namespace onellm::schema_regex
