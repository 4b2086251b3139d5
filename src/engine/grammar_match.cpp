// The grammar matcher: a set of parse stacks advanced byte by byte.
//
// A stack is a chain of (resume position, parent) nodes, hash-consed so that
// equal stacks have equal ids: a state is a sorted vector of ids, duplicates
// vanish, and whole-vocabulary masks can be cached by state. References in
// tail position reuse their parent (no frame), so `x*` and JSON strings keep
// a constant stack depth.
#include <algorithm>
#include <mutex>

#include "base/error.h"
#include "engine/grammar.h"
#include "tokenizer/tokenizer.h"

namespace onellm {

GrammarVocab::GrammarVocab(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  pieces_.resize(size_t(n));
  eog_.assign(size_t(n), 0);
  for (int32_t id = 0; id < n; ++id) {
    eog_[id] = tok.is_eog(id);
    if (eog_[id] || tok.is_control(id)) continue;
    TokenKind kind = tok.token_kind(id);
    if (kind == TokenKind::kUnknown || kind == TokenKind::kUnused || kind == TokenKind::kUndefined) continue;
    pieces_[id] = tok.token_to_piece(id, /*special=*/true);
    if (!pieces_[id].empty()) sorted_.push_back(id);
  }
  std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) { return pieces_[a] < pieces_[b]; });
  common_prefix_.assign(sorted_.size(), 0);
  for (size_t i = 1; i < sorted_.size(); ++i) {
    const std::string &a = pieces_[sorted_[i - 1]], &b = pieces_[sorted_[i]];
    size_t k = 0, m = std::min<size_t>({a.size(), b.size(), 65535});
    while (k < m && a[k] == b[k]) ++k;
    common_prefix_[i] = uint16_t(k);
  }
}

std::shared_ptr<const GrammarVocab> GrammarVocab::of(const Tokenizer& tokenizer) {
  // One per tokenizer for the life of the process (a daemon has one model).
  static std::mutex mutex;
  static std::vector<std::pair<const Tokenizer*, std::shared_ptr<const GrammarVocab>>> built;
  std::lock_guard lock(mutex);
  for (auto& [t, v] : built)
    if (t == &tokenizer) return v;
  auto vocab = std::make_shared<const GrammarVocab>(tokenizer);
  built.emplace_back(&tokenizer, vocab);
  return vocab;
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)) {
  nodes_.push_back({-1, -1});  // kComplete
  for (int32_t alt : grammar_->alternatives(grammar_->root())) expand(alt, kComplete, stacks_);
  std::sort(stacks_.begin(), stacks_.end());
  stacks_.erase(std::unique(stacks_.begin(), stacks_.end()), stacks_.end());
}

int32_t GrammarMatcher::intern(int32_t pos, int32_t parent) {
  uint64_t key = (uint64_t(uint32_t(pos)) << 32) | uint32_t(parent);
  auto [it, added] = node_ids_.emplace(key, static_cast<int32_t>(nodes_.size()));
  if (added) nodes_.push_back({pos, parent});
  return it->second;
}

void GrammarMatcher::expand(int32_t pos, int32_t parent, StackSet& out) {
  const auto& elements = grammar_->elements();
  for (;;) {
    const Grammar::Element e = elements[pos];
    if (e.kind == Grammar::kBytes) {
      out.push_back(intern(pos, parent));
      return;
    }
    if (e.kind == Grammar::kEnd) {
      if (parent == kComplete) {
        out.push_back(kComplete);
        return;
      }
      const Node p = nodes_[parent];  // copy: intern() may grow nodes_
      pos = p.pos, parent = p.parent;
      continue;
    }
    const int32_t next = pos + 1;
    const int32_t cont = elements[next].kind == Grammar::kEnd ? parent : intern(next, parent);
    const auto& alts = grammar_->alternatives(e.value);
    for (size_t i = 0; i + 1 < alts.size(); ++i) expand(alts[i], cont, out);
    pos = alts.back(), parent = cont;  // the last alternative without recursion
  }
}

void GrammarMatcher::advance(const StackSet& from, uint8_t byte, StackSet& to) {
  to.clear();
  const auto& elements = grammar_->elements();
  for (int32_t s : from) {
    if (s == kComplete) continue;
    const Node n = nodes_[s];
    if (grammar_->byte_set(elements[n.pos].value).has(byte)) expand(n.pos + 1, n.parent, to);
  }
  if (to.size() > 1) {
    std::sort(to.begin(), to.end());
    to.erase(std::unique(to.begin(), to.end()), to.end());
  }
}

bool GrammarMatcher::advance_text(StackSet& stacks, std::string_view bytes) {
  for (char c : bytes) {
    advance(stacks, uint8_t(c), scratch_b_);
    stacks.swap(scratch_b_);
    if (stacks.empty()) return false;
  }
  return true;
}

bool GrammarMatcher::can_end() const { return !stacks_.empty() && stacks_.front() == kComplete; }
bool GrammarMatcher::must_end() const { return stacks_.size() == 1 && stacks_.front() == kComplete; }

bool GrammarMatcher::allows(int32_t id) {
  if (id < 0 || id >= vocab_->n_vocab()) return false;
  if (vocab_->is_eog(id)) return can_end();
  const std::string& piece = vocab_->piece(id);
  if (piece.empty()) return false;
  scratch_a_ = stacks_;
  return advance_text(scratch_a_, piece);
}

// Walks the vocabulary in byte order: a token shares its first
// common_prefix_ bytes with the previous one, so only the rest is advanced,
// and once a prefix fails every following token with that prefix is skipped.
void GrammarMatcher::fill_allowed(std::vector<uint8_t>& allowed) {
  const size_t n_out = allowed.size();
  auto cached = mask_cache_.find(stacks_);
  if (cached == mask_cache_.end()) {
    std::vector<uint8_t> mask(size_t(vocab_->n_vocab()), 0);
    const auto& sorted = vocab_->sorted_;
    const auto& lcp = vocab_->common_prefix_;
    if (levels_.empty()) levels_.resize(1);
    levels_[0] = stacks_;
    size_t valid = 0;  // levels_[0..valid] hold the states along the last walked piece
    bool dead = false;  // levels_[valid] is empty
    size_t run_min = SIZE_MAX;
    for (size_t i = 0; i < sorted.size(); ++i) {
      run_min = std::min<size_t>(run_min, lcp[i]);
      const size_t common = std::min(run_min, valid);
      if (dead && common >= valid) continue;  // starts with a prefix that already failed
      const std::string& piece = vocab_->pieces_[sorted[i]];
      if (levels_.size() < piece.size() + 1) levels_.resize(piece.size() + 1);
      dead = false;
      size_t d = common;
      for (; d < piece.size(); ++d) {
        advance(levels_[d], uint8_t(piece[d]), levels_[d + 1]);
        if (levels_[d + 1].empty()) break;
      }
      if (d < piece.size()) {
        dead = true, valid = d + 1;
      } else {
        valid = piece.size();
        mask[sorted[i]] = 1;
      }
      run_min = SIZE_MAX;
    }
    if (can_end()) {
      for (int32_t id = 0; id < vocab_->n_vocab(); ++id)
        if (vocab_->is_eog(id)) mask[id] = 1;
    }
    if (mask_cache_.size() >= 512) mask_cache_.clear();
    cached = mask_cache_.emplace(stacks_, std::move(mask)).first;
  }
  const std::vector<uint8_t>& mask = cached->second;
  std::fill(allowed.begin(), allowed.end(), 0);
  std::copy_n(mask.begin(), std::min(n_out, mask.size()), allowed.begin());
}

void GrammarMatcher::accept_token(int32_t id) {
  if (id < 0 || id >= vocab_->n_vocab()) throw Error("grammar: token " + std::to_string(id) + " is outside the vocabulary");
  if (vocab_->is_eog(id)) {
    if (!can_end()) throw Error("grammar: end of generation before the grammar is complete");
    stacks_ = {kComplete};
    return;
  }
  const std::string& piece = vocab_->piece(id);
  StackSet next = stacks_;
  if (piece.empty() || !advance_text(next, piece))
    throw Error("grammar: token " + std::to_string(id) + " does not fit the grammar here");
  stacks_ = std::move(next);
  compact_if_large();
}

bool GrammarMatcher::would_accept_text(std::string_view bytes) {
  scratch_a_ = stacks_;
  return advance_text(scratch_a_, bytes);
}

void GrammarMatcher::accept_text(std::string_view bytes) {
  StackSet next = stacks_;
  if (!advance_text(next, bytes)) throw Error("grammar: text '" + std::string(bytes.substr(0, 40)) + "' does not fit the grammar");
  stacks_ = std::move(next);
  compact_if_large();
}

// Interned nodes accumulate (every state the vocabulary walk visits); past a
// limit, keep only the chains of the current state.
void GrammarMatcher::compact_if_large() {
  constexpr size_t kMaxNodes = size_t{1} << 21;
  if (nodes_.size() < kMaxNodes) return;
  std::vector<Node> old = std::move(nodes_);
  nodes_.clear();
  node_ids_.clear();
  mask_cache_.clear();
  nodes_.push_back({-1, -1});
  std::unordered_map<int32_t, int32_t> moved{{kComplete, kComplete}};
  auto copy = [&](auto&& self, int32_t id) -> int32_t {
    auto it = moved.find(id);
    if (it != moved.end()) return it->second;
    int32_t parent = self(self, old[id].parent);
    int32_t now = intern(old[id].pos, parent);
    moved.emplace(id, now);
    return now;
  };
  for (int32_t& s : stacks_) s = copy(copy, s);
  std::sort(stacks_.begin(), stacks_.end());
}

}  // namespace onellm
