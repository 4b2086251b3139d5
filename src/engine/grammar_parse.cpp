// GBNF text -> the byte-level rule table of Grammar (format: docs/grammar.md).
//
// Characters become UTF-8 bytes here: a literal is a sequence of single-byte
// sets, a character class a rule whose alternatives are byte-range sequences,
// and repetitions become helper rules. The matcher then only sees bytes.
#include <algorithm>
#include <map>
#include <set>

#include "base/error.h"
#include "base/utf8.h"
#include "engine/grammar.h"

namespace onellm {

class GrammarBuilder {
 public:
  using Sequence = std::vector<Grammar::Element>;
  using Rule = std::vector<Sequence>;

  explicit GrammarBuilder(std::string_view text) : text_(text) {}

  std::shared_ptr<const Grammar> build(std::string_view root_name) {
    skip_space();
    while (pos_ < text_.size()) {
      size_t name_at = pos_;
      std::string name = parse_name();
      skip_space();
      if (!consume("::=")) fail("expected '::=' after rule name '" + name + "'");
      int32_t id = rule_id(name);
      if (defined_.count(id)) fail_at(name_at, "rule '" + name + "' is defined twice");
      defined_.insert(id);
      rules_[id] = parse_alternatives(/*nested=*/false);
    }
    for (const auto& [name, id] : rule_ids_) {
      if (!defined_.count(id)) throw Error("grammar: rule '" + name + "' is used but never defined");
    }
    auto root = rule_ids_.find(std::string(root_name));
    if (root == rule_ids_.end()) throw Error("grammar: no '" + std::string(root_name) + "' rule");
    check_left_recursion();
    return flatten(root->second);
  }

 private:
  static constexpr size_t kMaxRepeat = 100000;
  static constexpr size_t kMaxElements = 4000000;

  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') ++line, col = 1;
      else ++col;
    }
    throw Error("grammar: " + what + " at line " + std::to_string(line) + ", column " + std::to_string(col));
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool consume(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }
  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }
  void skip_space() {
    while (!at_end()) {
      char c = peek();
      if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }
  std::string parse_name() {
    size_t start = pos_;
    while (!at_end() && is_name_char(peek())) ++pos_;
    if (start == pos_) fail(at_end() ? "expected a rule name, found the end" : "expected a rule name");
    return std::string(text_.substr(start, pos_ - start));
  }
  // A sequence ends before `name ::=`: rules may span lines without markers.
  bool at_rule_start() const {
    size_t p = pos_;
    while (p < text_.size() && is_name_char(text_[p])) ++p;
    if (p == pos_) return false;
    while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n' || text_[p] == '\r')) ++p;
    return text_.substr(p, 3) == "::=";
  }

  int32_t rule_id(const std::string& name) {
    auto [it, added] = rule_ids_.emplace(name, static_cast<int32_t>(rules_.size()));
    if (added) rules_.emplace_back(), names_.push_back(name);
    return it->second;
  }
  int32_t new_rule(Rule rule, const std::string& hint) {
    int32_t id = static_cast<int32_t>(rules_.size());
    rules_.push_back(std::move(rule));
    names_.push_back(hint);
    defined_.insert(id);
    return id;
  }
  Grammar::Element byte_element(Grammar::ByteSet set) {
    auto key = std::array<uint64_t, 4>{set.bits[0], set.bits[1], set.bits[2], set.bits[3]};
    auto [it, added] = byte_set_ids_.emplace(key, static_cast<int32_t>(byte_sets_.size()));
    if (added) byte_sets_.push_back(set);
    return {Grammar::kBytes, it->second};
  }
  Grammar::Element byte_range(uint8_t lo, uint8_t hi) {
    Grammar::ByteSet set{};
    for (int b = lo; b <= hi; ++b) set.bits[b >> 6] |= uint64_t{1} << (b & 63);
    return byte_element(set);
  }

  Rule parse_alternatives(bool nested) {
    Rule alts;
    alts.push_back(parse_sequence(nested));
    while (peek() == '|') {
      ++pos_;
      skip_space();
      alts.push_back(parse_sequence(nested));
    }
    return alts;
  }

  Sequence parse_sequence(bool nested) {
    Sequence seq;
    skip_space();
    while (!at_end()) {
      char c = peek();
      if (c == '|' || (c == ')' && nested)) break;
      if (!nested && at_rule_start()) break;
      if (c == ')') fail("unbalanced ')'");
      size_t item_start = seq.size();
      parse_item(seq);
      skip_space();
      parse_repetition(seq, item_start);
      skip_space();
    }
    if (nested && at_end()) fail("missing ')'");
    return seq;
  }

  void parse_item(Sequence& seq) {
    char c = peek();
    if (c == '"') {
      ++pos_;
      while (!at_end() && peek() != '"') append_code_point(seq, parse_char());
      if (!consume("\"")) fail("unterminated string literal");
    } else if (c == '[') {
      ++pos_;
      seq.push_back(parse_class());
    } else if (c == '.') {
      ++pos_;
      seq.push_back(class_element({{0, 0x10FFFF}}, "any"));
    } else if (c == '(') {
      ++pos_;
      skip_space();
      Rule group = parse_alternatives(/*nested=*/true);
      if (!consume(")")) fail("missing ')'");
      if (group.size() == 1) {
        seq.insert(seq.end(), group[0].begin(), group[0].end());
      } else {
        seq.push_back({Grammar::kRule, new_rule(std::move(group), "group")});
      }
    } else if (is_name_char(c)) {
      seq.push_back({Grammar::kRule, rule_id(parse_name())});
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
  }

  size_t parse_count() {
    size_t start = pos_, n = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      n = n * 10 + size_t(peek() - '0');
      if (n > kMaxRepeat) fail("repetition count above " + std::to_string(kMaxRepeat));
      ++pos_;
    }
    if (start == pos_) fail("expected a number in {...}");
    return n;
  }

  // x*, x+, x?, x{m}, x{m,}, x{m,n} applied to seq[item_start..].
  void parse_repetition(Sequence& seq, size_t item_start) {
    size_t min = 0, max = 0;
    bool unbounded = false;
    char c = peek();
    if (c == '*') min = 0, unbounded = true;
    else if (c == '+') min = 1, unbounded = true;
    else if (c == '?') min = 0, max = 1;
    else if (c != '{') return;
    ++pos_;
    if (c == '{') {
      skip_space();
      min = max = parse_count();
      skip_space();
      if (consume(",")) {
        skip_space();
        if (peek() == '}') unbounded = true;
        else max = parse_count();
        skip_space();
      }
      if (!consume("}")) fail("expected '}'");
      if (!unbounded && max < min) fail("repetition {m,n} with n < m");
    }
    Sequence item(seq.begin() + item_start, seq.end());
    seq.resize(item_start);
    Grammar::Element x = item.size() == 1 ? item[0] : Grammar::Element{Grammar::kRule, new_rule({item}, "item")};
    if ((min + (unbounded ? 1 : max)) * 1 > kMaxRepeat) fail("repetition too large");
    for (size_t i = 0; i < min; ++i) seq.push_back(x);
    if (unbounded) {
      // star ::= x star | (empty), referenced in tail position so stacks do not grow.
      int32_t star = new_rule({}, "star");
      rules_[star] = {{x, {Grammar::kRule, star}}, {}};
      seq.push_back({Grammar::kRule, star});
    } else if (max > min) {
      // opt_1 ::= x | (empty); opt_k ::= x opt_{k-1} | (empty)
      int32_t opt = new_rule({{x}, {}}, "opt");
      for (size_t k = 1; k < max - min; ++k) opt = new_rule({{x, {Grammar::kRule, opt}}, {}}, "opt");
      seq.push_back({Grammar::kRule, opt});
    }
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      char c = peek();
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) fail("expected " + std::to_string(digits) + " hex digits");
      v = v * 16 + uint32_t(d);
      ++pos_;
    }
    return v;
  }

  // One character of a literal or class: an escape or a UTF-8 character.
  uint32_t parse_char() {
    if (at_end()) fail("unexpected end of grammar");
    unsigned char c = static_cast<unsigned char>(peek());
    if (c == '\\') {
      ++pos_;
      char e = peek();
      ++pos_;
      switch (e) {
        case 'n': return '\n';
        case 't': return '\t';
        case 'r': return '\r';
        case '0': return 0;
        case '\\': case '"': case '[': case ']': case '-': case '^': return uint32_t(e);
        case 'x': return parse_hex(2);
        case 'u': return parse_hex(4);
        case 'U': return parse_hex(8);
        default: fail(std::string("unknown escape '\\") + e + "'");
      }
    }
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + len > text_.size()) fail("invalid UTF-8 in grammar");
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < len; ++i) {
      unsigned char b = static_cast<unsigned char>(text_[pos_ + i]);
      if ((b >> 6) != 2) fail("invalid UTF-8 in grammar");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += size_t(len);
    return cp;
  }

  void append_code_point(Sequence& seq, uint32_t cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("character U+" + std::to_string(cp) + " is not valid");
    std::string bytes;
    append_utf8(bytes, cp);
    for (char b : bytes) seq.push_back(byte_range(uint8_t(b), uint8_t(b)));
  }

  Grammar::Element parse_class() {
    bool negated = peek() == '^';
    if (negated) ++pos_;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    while (!at_end() && peek() != ']') {
      uint32_t lo = parse_char(), hi = lo;
      if (peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail("character range with end before start");
      }
      ranges.emplace_back(lo, std::min<uint32_t>(hi, 0x10FFFF));
    }
    if (!consume("]")) fail("unterminated character class");
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (auto r : ranges) {
      if (!merged.empty() && r.first <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, r.second);
      else merged.push_back(r);
    }
    if (negated) {
      std::vector<std::pair<uint32_t, uint32_t>> inverse;
      uint32_t next = 0;
      for (auto r : merged) {
        if (r.first > next) inverse.emplace_back(next, r.first - 1);
        next = r.second + 1;
      }
      if (next <= 0x10FFFF) inverse.emplace_back(next, 0x10FFFF);
      merged = std::move(inverse);
    }
    if (merged.empty()) fail("character class matches nothing");
    return class_element(merged, "class");
  }

  // Splits [lo, hi] into ranges whose UTF-8 encodings are products of byte
  // ranges (same length, and all but the first differing byte full ranges).
  void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<Sequence>& out) {
    if (lo > hi) return;
    for (uint32_t edge : {0x7Fu, 0x7FFu, 0xFFFFu}) {
      if (lo <= edge && hi > edge) {
        utf8_sequences(lo, edge, out);
        utf8_sequences(edge + 1, hi, out);
        return;
      }
    }
    if (lo <= 0xDFFF && hi >= 0xD800) {  // surrogates are not characters
      if (lo < 0xD800) utf8_sequences(lo, 0xD7FF, out);
      if (hi > 0xDFFF) utf8_sequences(0xE000, hi, out);
      return;
    }
    std::string a, b;
    append_utf8(a, lo);
    const int n = static_cast<int>(a.size());
    for (int i = 1; i < n; ++i) {
      uint32_t mask = (uint32_t{1} << (6 * i)) - 1;
      if ((lo & ~mask) != (hi & ~mask)) {
        if ((lo & mask) != 0) {
          utf8_sequences(lo, lo | mask, out);
          utf8_sequences((lo | mask) + 1, hi, out);
          return;
        }
        if ((hi & mask) != mask) {
          utf8_sequences(lo, (hi & ~mask) - 1, out);
          utf8_sequences(hi & ~mask, hi, out);
          return;
        }
      }
    }
    append_utf8(b, hi);  // same length as lo's: the range was split where lengths change
    Sequence seq;
    for (int i = 0; i < n; ++i) seq.push_back(byte_range(uint8_t(a[i]), uint8_t(b[i])));
    out.push_back(std::move(seq));
  }

  Grammar::Element class_element(const std::vector<std::pair<uint32_t, uint32_t>>& ranges, const char* hint) {
    std::vector<Sequence> seqs;
    for (auto [lo, hi] : ranges) utf8_sequences(lo, hi, seqs);
    // Merge all single-byte alternatives into one set.
    Grammar::ByteSet single{};
    Rule rule;
    for (Sequence& s : seqs) {
      if (s.size() == 1) {
        const Grammar::ByteSet& set = byte_sets_[s[0].value];
        for (int w = 0; w < 4; ++w) single.bits[w] |= set.bits[w];
      } else {
        rule.push_back(std::move(s));
      }
    }
    bool has_single = single.bits[0] | single.bits[1] | single.bits[2] | single.bits[3];
    if (rule.empty()) return byte_element(single);
    if (has_single) rule.insert(rule.begin(), Sequence{byte_element(single)});
    std::vector<std::vector<std::pair<int, int>>> key;  // reuse identical classes
    for (const Sequence& s : rule) {
      key.emplace_back();
      for (auto e : s) key.back().emplace_back(int(e.kind), e.value);
    }
    auto it = class_rules_.find(key);
    if (it != class_rules_.end()) return {Grammar::kRule, it->second};
    int32_t id = new_rule(std::move(rule), hint);
    class_rules_.emplace(std::move(key), id);
    return {Grammar::kRule, id};
  }

  // A rule whose expansion can reach itself without consuming a byte would
  // make the matcher loop forever; reject it here.
  void check_left_recursion() {
    std::vector<int8_t> nullable(rules_.size(), 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < rules_.size(); ++r) {
        if (nullable[r]) continue;
        for (const Sequence& s : rules_[r]) {
          bool all = std::all_of(s.begin(), s.end(), [&](auto e) { return e.kind == Grammar::kRule && nullable[e.value]; });
          if (all) nullable[r] = 1, changed = true;
        }
      }
    }
    std::vector<int8_t> state(rules_.size(), 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<int32_t, size_t>> path;
    for (size_t start = 0; start < rules_.size(); ++start) {
      if (state[start]) continue;
      visit_left(int32_t(start), nullable, state);
    }
  }
  void visit_left(int32_t r, const std::vector<int8_t>& nullable, std::vector<int8_t>& state) {
    state[r] = 1;
    for (const Sequence& s : rules_[r]) {
      for (auto e : s) {
        if (e.kind != Grammar::kRule) break;
        if (state[e.value] == 1) throw Error("grammar: rule '" + names_[e.value] + "' is left-recursive");
        if (state[e.value] == 0) visit_left(e.value, nullable, state);
        if (!nullable[e.value]) break;
      }
    }
    state[r] = 2;
  }

  std::shared_ptr<const Grammar> flatten(int32_t root) {
    auto g = std::make_shared<Grammar>();
    g->byte_sets_ = std::move(byte_sets_);
    g->rules_.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const Sequence& s : rules_[r]) {
        g->rules_[r].push_back(static_cast<int32_t>(g->elements_.size()));
        g->elements_.insert(g->elements_.end(), s.begin(), s.end());
        g->elements_.push_back({Grammar::kEnd, 0});
        if (g->elements_.size() > kMaxElements) throw Error("grammar: too large after expansion");
      }
    }
    g->root_ = root;
    return g;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::vector<Rule> rules_;
  std::vector<std::string> names_;
  std::map<std::string, int32_t> rule_ids_;
  std::set<int32_t> defined_;
  std::vector<Grammar::ByteSet> byte_sets_;
  std::map<std::array<uint64_t, 4>, int32_t> byte_set_ids_;
  std::map<std::vector<std::vector<std::pair<int, int>>>, int32_t> class_rules_;
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view root) {
  return GrammarBuilder(gbnf).build(root);
}

}  // namespace onellm
