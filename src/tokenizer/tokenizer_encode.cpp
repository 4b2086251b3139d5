// Encoding as llama_tokenize: special-token partition, then SentencePiece
// score merges or byte-level BPE rank merges on each piece of plain text.
// Both merge loops keep the symbols in a linked list and the candidate pairs
// in a heap, so a word of n characters costs O(n log n), never O(n^2).
#include <queue>

#include "base/error.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace onellm {
namespace {

// Bytes in the character a lead byte starts, as llama.cpp's unicode_len_utf8
// reads it (no validation: a stray byte is a symbol, 0xF8.. claims 4 bytes).
size_t lead_len(unsigned char lead) {
  static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// A symbol in the doubly linked list the merge loops work on.
struct Symbol {
  int prev, next;
  size_t begin, len;  // bytes of the text being merged; len 0 once merged away
};

std::vector<Symbol> split_chars(std::string_view text) {
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(lead_len(static_cast<unsigned char>(text[off])), text.size() - off);
    const int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, idx + 1, off, len});
    off += len;
  }
  if (!sym.empty()) sym.back().next = -1;
  return sym;
}

// A candidate merge of two neighbours. It is stale once either side changed,
// which shows as a different total length (symbols only ever grow).
template <typename Priority>
struct Pair {
  int left, right;
  Priority priority;
  size_t size;
};

// Merges the best pair while any pair is mergeable: the highest priority,
// among equals the leftmost. `priority(l, r, &p)` says whether the pair can
// merge and how good it is.
template <typename Priority, typename PriorityOf>
void merge_symbols(std::vector<Symbol>& sym, PriorityOf priority_of) {
  auto worse = [](const Pair<Priority>& a, const Pair<Priority>& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  };
  std::priority_queue<Pair<Priority>, std::vector<Pair<Priority>>, decltype(worse)> queue(worse);
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    Priority p;
    if (priority_of(left, right, &p)) queue.push({left, right, p, sym[left].len + sym[right].len});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!queue.empty()) {
    const Pair<Priority> b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
}

struct Fragment {
  int32_t token;       // >= 0: a special token; -1: raw text
  size_t begin, len;   // raw text, in the input
};

}  // namespace

int32_t Tokenizer::lookup(std::string_view text) const {
  return tokens_.find(text);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  // Split out special tokens, longest first, each everywhere before the next
  // (llama.cpp's tokenizer_st_partition). User-defined tokens are always
  // matched; control and unknown ones only with parse_special.
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : special_by_length_) {
    const TokenKind kind = kinds_[static_cast<size_t>(id)];
    if (!parse_special && kind != TokenKind::kUserDefined) continue;
    const std::string_view special = tokens_.at(id);
    const uint8_t strip = strip_[static_cast<size_t>(id)];
    bool found = false;
    next.clear();
    for (const Fragment& fr : fragments) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t pos = fr.begin;
      const size_t end = fr.begin + fr.len;
      while (pos < end) {
        const size_t m = text.substr(pos, end - pos).find(special);
        if (m == std::string_view::npos) break;
        found = true;
        size_t left_end = pos + m;
        if (strip & kStripLeft)
          while (left_end > pos && c_isspace(text[left_end - 1])) --left_end;
        if (left_end > pos) next.push_back({-1, pos, left_end - pos});
        next.push_back({id, 0, 0});
        pos += m + special.size();
        if (strip & kStripRight)
          while (pos < end && c_isspace(text[pos])) ++pos;
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    if (found) fragments.swap(next);
  }

  std::vector<int32_t> out;
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool prev_special = true;  // SentencePiece adds its space prefix at the start and after special tokens
  for (const Fragment& fr : fragments) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    const std::string_view piece = text.substr(fr.begin, fr.len);
    if (bpe_) encode_bpe(piece, out);
    else encode_spm(piece, add_space_prefix_ && prev_special, out);
    prev_special = false;
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

void Tokenizer::spm_byte_tokens(std::string_view bytes, std::vector<int32_t>& out) const {
  for (unsigned char c : bytes) {
    const int32_t id = spm_byte_ids_[c];
    // A vocabulary without byte tokens: llama.cpp fails here; the unknown
    // token is the honest stand-in.
    if (id >= 0) out.push_back(id);
    else if (unk_ >= 0) out.push_back(unk_);
  }
}

void Tokenizer::encode_spm(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const {
  static const std::string_view kSpace = "\xE2\x96\x81";  // U+2581 stands for a space
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 2 + 3);
  if (space_prefix) escaped += kSpace;
  for (char c : text) {
    if (c == ' ') escaped += kSpace;
    else escaped += c;
  }
  const std::vector<Symbol> all_sym = split_chars(escaped);
  const std::string_view all = escaped;
  // Merge word by word when no token can span two words (a word starts at a
  // U+2581 that follows another character): the same result as merging the
  // whole text at once, with small heaps instead of one of millions.
  std::vector<Symbol> sym;
  for (size_t first = 0; first < all_sym.size();) {
    size_t last = all_sym.size();
    if (spm_words_independent_) {
      auto is_space = [&](size_t i) { return all.substr(all_sym[i].begin, all_sym[i].len) == kSpace; };
      for (size_t i = first + 1; i < all_sym.size(); ++i) {
        if (is_space(i) && !is_space(i - 1)) {
          last = i;
          break;
        }
      }
    }
    sym.assign(all_sym.begin() + static_cast<std::ptrdiff_t>(first),
               all_sym.begin() + static_cast<std::ptrdiff_t>(last));
    for (size_t i = 0; i < sym.size(); ++i) {
      sym[i].prev = static_cast<int>(i) - 1;
      sym[i].next = i + 1 < sym.size() ? static_cast<int>(i) + 1 : -1;
    }
    first = last;
    merge_symbols<float>(sym, [&](int left, int right, float* score) {
      const int32_t id = lookup(all.substr(sym[left].begin, sym[left].len + sym[right].len));
      if (id < 0) return false;
      *score = scores_[static_cast<size_t>(id)];
      return true;
    });
    // Merged symbols are tokens by construction; a single character that
    // is not becomes its byte tokens.
    for (int i = 0; i != -1; i = sym[i].next) {
      const std::string_view s = all.substr(sym[i].begin, sym[i].len);
      const int32_t id = lookup(s);
      if (id >= 0) out.push_back(id);
      else spm_byte_tokens(s, out);
    }
  }
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::string mapped;
  for (const std::string& word : pre_->split(text)) {
    mapped.clear();
    for (unsigned char c : word) mapped += byte_to_unicode(c);
    bpe_word(mapped, out);
  }
}

void Tokenizer::bpe_word(const std::string& word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const int32_t id = lookup(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> sym = split_chars(word);
  if (sym.empty()) return;
  std::string key;
  merge_symbols<int64_t>(sym, [&](int left, int right, int64_t* priority) {
    key.assign(word, sym[left].begin, sym[left].len);
    key += ' ';
    key.append(word, sym[right].begin, sym[right].len);
    const int32_t rank = merges_.find(key);
    if (rank < 0) return false;
    *priority = -static_cast<int64_t>(rank);  // lower rank merges first
    return true;
  });
  const std::string_view all = word;
  for (int i = 0; i != -1; i = sym[i].next) {
    const std::string_view s = all.substr(sym[i].begin, sym[i].len);
    const int32_t id = lookup(s);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // Not a token (a vocabulary whose merges make non-tokens): llama.cpp
    // keeps whichever single bytes of the symbol are tokens.
    for (char c : s) {
      const int32_t b = lookup(std::string_view(&c, 1));
      if (b >= 0) out.push_back(b);
    }
  }
}

}  // namespace onellm
