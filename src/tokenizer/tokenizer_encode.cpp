// Encoding: special-token partition, then SentencePiece score merges or
// byte-level BPE rank merges on each piece of plain text.
#include <functional>
#include <optional>
#include <queue>

#include "base/error.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace onellm {
namespace {

size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;  // stray continuation or invalid byte: a symbol of its own
}

// A symbol in the doubly linked list the merge loops work on.
struct Symbol {
  int prev, next;
  size_t begin, len;  // bytes in the text being merged
};

std::vector<Symbol> split_utf8(std::string_view text) {
  std::vector<Symbol> sym;
  for (size_t off = 0; off < text.size();) {
    size_t len = std::min(utf8_len(static_cast<unsigned char>(text[off])), text.size() - off);
    int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, idx + 1, off, len});
    off += len;
  }
  if (!sym.empty()) sym.back().next = -1;
  return sym;
}

// Merges adjacent symbols while any pair is mergeable, best pair first: the
// highest priority, and among equals the leftmost. priority(left, right)
// returns nullopt for a pair that is not a token. SentencePiece ranks pairs
// by token score, BPE by negated merge rank.
template <typename Priority>
void merge_symbols(std::vector<Symbol>& sym, Priority priority) {
  struct Pair {
    int left, right;
    float priority;
    size_t size;
  };
  auto worse = [](const Pair& a, const Pair& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> queue(worse);
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    if (std::optional<float> p = priority(left, right)) queue.push({left, right, *p, sym[left].len + sym[right].len});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!queue.empty()) {
    Pair b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // Stale: one side was merged into something else since it was queued.
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
}

struct Fragment {
  bool is_token;
  int32_t token;
  std::string_view text;
};

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  // Split out special tokens, longest first (llama.cpp's
  // tokenizer_st_partition). User-defined tokens are always matched; control
  // and unknown ones only with parse_special.
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({false, -1, text});
  for (int32_t id : special_by_length_) {
    const TokenKind kind = kinds_[static_cast<size_t>(id)];
    if (!parse_special && kind != TokenKind::kUserDefined) continue;
    const std::string& special = tokens_[static_cast<size_t>(id)];
    std::vector<Fragment> next;
    for (const Fragment& fr : fragments) {
      if (fr.is_token) {
        next.push_back(fr);
        continue;
      }
      std::string_view rest = fr.text;
      for (size_t pos; (pos = rest.find(special)) != std::string_view::npos;) {
        if (pos > 0) next.push_back({false, -1, rest.substr(0, pos)});
        next.push_back({true, id, {}});
        rest.remove_prefix(pos + special.size());
      }
      if (!rest.empty()) next.push_back({false, -1, rest});
    }
    fragments = std::move(next);
  }

  std::vector<int32_t> out;
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool prev_special = true;  // SentencePiece adds its space prefix at the start and after special tokens
  for (const Fragment& fr : fragments) {
    if (fr.is_token) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    if (bpe_) {
      encode_bpe(fr.text, out);
    } else {
      std::string piece;
      if (add_space_prefix_ && prev_special) piece += ' ';
      piece.append(fr.text);
      encode_spm(std::move(piece), out);
    }
    prev_special = false;
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

int32_t Tokenizer::byte_token(uint8_t byte) const {
  if (bpe_) {
    auto it = token_ids_.find(byte_to_unicode(byte));
    if (it != token_ids_.end()) return it->second;
  } else {
    static const char* hex = "0123456789ABCDEF";
    const char name[7] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>', 0};
    auto it = token_ids_.find(name);
    if (it != token_ids_.end()) return it->second;
    it = token_ids_.find(std::string(1, static_cast<char>(byte)));
    if (it != token_ids_.end()) return it->second;
  }
  if (unk_ >= 0) return unk_;
  throw Error(source_ + ": the vocabulary has no token for byte " + std::to_string(byte) + " and no unknown token");
}

void Tokenizer::encode_spm(std::string text, std::vector<int32_t>& out) const {
  // Spaces become U+2581.
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 2);
  for (char c : text) {
    if (c == ' ') escaped += "\xE2\x96\x81";
    else escaped += c;
  }
  std::vector<Symbol> sym = split_utf8(escaped);
  if (sym.empty()) return;
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  merge_symbols(sym, [&](int left, int right) -> std::optional<float> {
    std::string s = escaped.substr(sym[left].begin, sym[left].len + sym[right].len);
    auto it = token_ids_.find(s);
    if (it == token_ids_.end()) return std::nullopt;
    rev_merge[s] = {left, right};
    return scores_[static_cast<size_t>(it->second)];
  });
  // Symbols that are tokens are emitted; others are split back along the
  // merges that built them, down to bytes.
  std::function<void(int, size_t)> resegment = [&](int i, size_t len) {
    std::string s = escaped.substr(sym[i].begin, len);
    auto it = token_ids_.find(s);
    if (it != token_ids_.end()) {
      out.push_back(it->second);
      return;
    }
    auto m = rev_merge.find(s);
    if (m == rev_merge.end()) {
      for (char c : s) out.push_back(byte_token(static_cast<uint8_t>(c)));
      return;
    }
    const int a = m->second.first, b = m->second.second;
    const size_t a_len = sym[b].begin - sym[a].begin;
    resegment(a, a_len);
    resegment(b, len - a_len);
  };
  for (int i = 0; i != -1; i = sym[i].next) resegment(i, sym[i].len);
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& word : pre_->split(text)) {
    std::string mapped;
    mapped.reserve(word.size() * 2);
    for (unsigned char c : word) mapped += byte_to_unicode(c);
    bpe_word(mapped, out);
  }
}

void Tokenizer::bpe_word(const std::string& word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = token_ids_.find(word);
    if (it != token_ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> sym = split_utf8(word);
  if (sym.empty()) return;
  std::string key;
  merge_symbols(sym, [&](int left, int right) -> std::optional<float> {
    key.assign(word, sym[left].begin, sym[left].len);
    key += ' ';
    key.append(word, sym[right].begin, sym[right].len);
    auto it = merge_ranks_.find(key);
    if (it == merge_ranks_.end()) return std::nullopt;
    return -static_cast<float>(it->second);
  });
  for (int i = 0; i != -1; i = sym[i].next) {
    std::string s = word.substr(sym[i].begin, sym[i].len);
    auto it = token_ids_.find(s);
    if (it != token_ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    // Not a token: one token per original byte of it.
    for (uint8_t byte : unicode_to_bytes(s)) out.push_back(byte_token(byte));
  }
}

}  // namespace onellm
