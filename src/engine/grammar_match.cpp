// The grammar matcher: a set of parse stacks advanced byte by byte.
//
// A stack is a chain of (resume position, parent) nodes, hash-consed so that
// equal stacks have equal ids: a state is a sorted vector of ids, duplicates
// vanish, and whole-vocabulary masks can be cached by state. References in
// tail position reuse their parent (no frame), so `x*` and JSON strings keep
// a constant stack depth.
#include <algorithm>

#include "base/error.h"
#include "base/recent_cache.h"
#include "engine/grammar.h"
#include "kernels/kernels.h"
#include "tokenizer/tokenizer.h"

namespace onellm {

GrammarVocab::GrammarVocab(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  pieces_.resize(size_t(n));
  eog_.assign(size_t(n), 0);
  for (int32_t id = 0; id < n; ++id) {
    eog_[id] = tok.is_eog(id);
    if (eog_[id]) eog_ids_.push_back(id);
    if (eog_[id] || tok.is_control(id)) continue;
    TokenKind kind = tok.token_kind(id);
    if (kind == TokenKind::kUnknown || kind == TokenKind::kUnused || kind == TokenKind::kUndefined) continue;
    pieces_[id] = tok.token_to_piece(id, /*special=*/true);
    if (pieces_[id].size() > UINT16_MAX) pieces_[id].clear();  // deeper than the trie counts; no real vocabulary has one
    if (!pieces_[id].empty()) sorted_.push_back(id);
  }
  std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) { return pieces_[a] < pieces_[b]; });
  std::vector<uint32_t> path;  // open trie nodes, one per depth
  for (size_t i = 0; i < sorted_.size(); ++i) {
    const std::string& piece = pieces_[sorted_[i]];
    size_t common = 0;
    if (i > 0) {
      const std::string& prev = pieces_[sorted_[i - 1]];
      while (common < std::min(prev.size(), piece.size()) && prev[common] == piece[common]) ++common;
    }
    while (path.size() > common) {
      trie_[path.back()].end = static_cast<uint32_t>(trie_.size());
      path.pop_back();
    }
    for (size_t d = common; d < piece.size(); ++d) {
      path.push_back(static_cast<uint32_t>(trie_.size()));
      trie_.push_back({0, static_cast<uint32_t>(i), static_cast<uint16_t>(d), uint8_t(piece[d]),
                       uint8_t(d + 1 == piece.size())});
    }
    max_piece_ = std::max(max_piece_, piece.size());
  }
  for (uint32_t open : path) trie_[open].end = static_cast<uint32_t>(trie_.size());
  for (size_t k = 0; k < trie_.size(); k = trie_[k].end) first_byte_nodes_[trie_[k].byte] = trie_[k].end - uint32_t(k);
}

std::vector<int32_t> GrammarVocab::prefix_pieces(std::string_view text) const {
  std::vector<int32_t> ids;
  size_t k = 0, end = trie_.size();  // the siblings at the current depth: [k, end)
  for (size_t d = 0; d < text.size() && k < end; ++d) {
    while (k < end && trie_[k].byte != uint8_t(text[d])) k = trie_[k].end;
    if (k >= end) break;
    if (trie_[k].ends_here)
      for (size_t i = trie_[k].first; i < sorted_.size() && pieces_[sorted_[i]] == text.substr(0, d + 1); ++i)
        ids.push_back(sorted_[i]);
    end = trie_[k].end;
    ++k;
  }
  return ids;
}

std::span<const int32_t> GrammarVocab::pieces_starting_with(std::string_view prefix) const {
  auto first = std::lower_bound(sorted_.begin(), sorted_.end(), prefix,
                                [&](int32_t id, std::string_view p) { return std::string_view(pieces_[id]) < p; });
  auto last = std::upper_bound(first, sorted_.end(), prefix, [&](std::string_view p, int32_t id) {
    return p < std::string_view(pieces_[id]).substr(0, p.size());
  });
  return {first, last};
}

std::shared_ptr<const GrammarVocab> GrammarVocab::of(const Tokenizer& tokenizer) {
  // Keyed by instance id: a new tokenizer at a freed one's address must not
  // get the old vocabulary.
  static RecentCache<uint64_t, GrammarVocab> built;
  return built.get(tokenizer.instance_id(), [&] { return GrammarVocab(tokenizer); });
}

// The matcher's own node table, which the walk on the calling thread grows.
struct GrammarMatcher::OwnNodes {
  GrammarMatcher& m;
  Node at(int32_t id) const { return m.nodes_[size_t(id)]; }
  int32_t intern(int32_t pos, int32_t parent) { return m.intern(pos, parent); }
};

// One chunk of a parallel walk: reads the matcher's table (frozen while the
// walk runs, so concurrent reads are safe) and keeps the nodes it creates to
// itself, numbered from the table's end. Chunks never exchange stack ids, so
// two chunks giving the same new node different ids is harmless.
class GrammarMatcher::WalkNodes {
 public:
  explicit WalkNodes(const GrammarMatcher& m)
      : base_(m.nodes_), base_ids_(m.node_ids_), n_base_(static_cast<int32_t>(m.nodes_.size())) {}
  Node at(int32_t id) const { return id < n_base_ ? base_[size_t(id)] : added_[size_t(id - n_base_)]; }
  int32_t intern(int32_t pos, int32_t parent) {
    const uint64_t key = (uint64_t(uint32_t(pos)) << 32) | uint32_t(parent);
    if (auto it = base_ids_.find(key); it != base_ids_.end()) return it->second;
    auto [it, fresh] = added_ids_.emplace(key, n_base_ + static_cast<int32_t>(added_.size()));
    if (fresh) added_.push_back({pos, parent});
    return it->second;
  }
  // Copies the added nodes into the matcher's table (a parent always comes
  // before its children), so later walks and accepts find them there.
  void merge_into(GrammarMatcher& m) const {
    std::vector<int32_t> ids(added_.size());
    for (size_t i = 0; i < added_.size(); ++i) {
      const int32_t parent = added_[i].parent;
      ids[i] = m.intern(added_[i].pos, parent < n_base_ ? parent : ids[size_t(parent - n_base_)]);
    }
  }

 private:
  const std::vector<Node>& base_;
  const std::unordered_map<uint64_t, int32_t>& base_ids_;
  const int32_t n_base_;
  std::vector<Node> added_;
  std::unordered_map<uint64_t, int32_t> added_ids_;
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)) {
  nodes_.push_back({-1, -1});  // kComplete
  OwnNodes own{*this};
  for (int32_t alt : grammar_->alternatives(grammar_->root())) expand(own, alt, kComplete, stacks_);
  std::sort(stacks_.begin(), stacks_.end());
  stacks_.erase(std::unique(stacks_.begin(), stacks_.end()), stacks_.end());
}

int32_t GrammarMatcher::intern(int32_t pos, int32_t parent) {
  uint64_t key = (uint64_t(uint32_t(pos)) << 32) | uint32_t(parent);
  auto [it, added] = node_ids_.emplace(key, static_cast<int32_t>(nodes_.size()));
  if (added) nodes_.push_back({pos, parent});
  return it->second;
}

template <class Nodes>
void GrammarMatcher::expand(Nodes& nodes, int32_t pos, int32_t parent, StackSet& out) const {
  const auto& elements = grammar_->elements();
  for (;;) {
    const Grammar::Element e = elements[pos];
    if (e.kind == Grammar::kBytes) {
      out.push_back(nodes.intern(pos, parent));
      return;
    }
    if (e.kind == Grammar::kEnd) {
      if (parent == kComplete) {
        out.push_back(kComplete);
        return;
      }
      const Node p = nodes.at(parent);  // a copy: intern() may grow the table
      pos = p.pos, parent = p.parent;
      continue;
    }
    const int32_t next = pos + 1;
    const int32_t cont = elements[next].kind == Grammar::kEnd ? parent : nodes.intern(next, parent);
    const auto& alts = grammar_->alternatives(e.value);
    for (size_t i = 0; i + 1 < alts.size(); ++i) expand(nodes, alts[i], cont, out);
    pos = alts.back(), parent = cont;  // the last alternative without recursion
  }
}

template <class Nodes>
void GrammarMatcher::advance(Nodes& nodes, const StackSet& from, uint8_t byte, StackSet& to) const {
  to.clear();
  const auto& elements = grammar_->elements();
  for (int32_t s : from) {
    if (s == kComplete) continue;
    const Node n = nodes.at(s);
    if (grammar_->byte_set(elements[n.pos].value).has(byte)) expand(nodes, n.pos + 1, n.parent, to);
  }
  if (to.size() > 1) {
    std::sort(to.begin(), to.end());
    to.erase(std::unique(to.begin(), to.end()), to.end());
  }
}

bool GrammarMatcher::advance_text(StackSet& stacks, std::string_view bytes) {
  OwnNodes own{*this};
  for (char c : bytes) {
    advance(own, stacks, uint8_t(c), scratch_b_);
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

// Walks trie nodes [begin, end) in preorder, appending the ids of the allowed
// tokens; levels[d] holds the state after the first d bytes of the current
// path (levels[0]: the current state). A byte that fails skips its whole
// subtree.
template <class Nodes>
void GrammarMatcher::walk_vocab(Nodes& nodes, size_t begin, size_t end, std::vector<StackSet>& levels,
                                std::vector<int32_t>& allowed) const {
  const auto& trie = vocab_->trie_;
  const auto& sorted = vocab_->sorted_;
  if (begin >= end) return;
  if (levels.size() < vocab_->max_piece_ + 1) levels.resize(vocab_->max_piece_ + 1);
  levels[0] = stacks_;
  // A slice may start inside a subtree: rebuild the states along its path,
  // and skip what hangs below a byte of it that already fails.
  size_t k = begin;
  const std::string& path = vocab_->pieces_[sorted[trie[k].first]];
  for (size_t d = 0; d < trie[k].depth; ++d) {
    advance(nodes, levels[d], uint8_t(path[d]), levels[d + 1]);
    if (!levels[d + 1].empty()) continue;
    while (k < end && trie[k].depth > d) k = trie[k].end;
    break;
  }
  while (k < end) {
    const GrammarVocab::TrieNode& node = trie[k];
    StackSet& next = levels[node.depth + 1u];
    advance(nodes, levels[node.depth], node.byte, next);
    if (next.empty()) {
      k = node.end;
      continue;
    }
    if (node.ends_here) {
      const std::string& piece = vocab_->pieces_[sorted[node.first]];
      allowed.push_back(sorted[node.first]);
      for (size_t j = node.first + 1; j < sorted.size() && vocab_->pieces_[sorted[j]] == piece; ++j)
        allowed.push_back(sorted[j]);
    }
    ++k;
  }
}

// How many trie nodes lie below the bytes the current state accepts next (the
// union of its stacks' next byte sets): an upper bound on what a walk visits.
size_t GrammarMatcher::reachable_trie_nodes() const {
  Grammar::ByteSet next{};
  for (int32_t s : stacks_) {
    if (s == kComplete) continue;
    const Grammar::ByteSet& b = grammar_->byte_set(grammar_->elements()[nodes_[size_t(s)].pos].value);
    for (int w = 0; w < 4; ++w) next.bits[w] |= b.bits[w];
  }
  size_t nodes = 0;
  for (int byte = 0; byte < 256; ++byte)
    if (next.has(uint8_t(byte))) nodes += vocab_->first_byte_nodes_[byte];
  return nodes;
}

// Equal slices of the trie, several per thread because failed prefixes make
// their cost uneven; each slice adds nodes only to its own WalkNodes.
void GrammarMatcher::walk_vocab_parallel(std::vector<int32_t>& allowed) {
  const size_t n = vocab_->trie_.size();
  const size_t n_chunks = size_t(pool_->size()) * 4;
  std::vector<WalkNodes> chunk_nodes;
  chunk_nodes.reserve(n_chunks);
  for (size_t c = 0; c < n_chunks; ++c) chunk_nodes.emplace_back(*this);
  std::vector<std::vector<int32_t>> chunk_allowed(n_chunks);
  if (chunk_levels_.size() < n_chunks) chunk_levels_.resize(n_chunks);
  pool_->parallel_for(int64_t(n_chunks), [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      walk_vocab(chunk_nodes[size_t(c)], n * size_t(c) / n_chunks, n * size_t(c + 1) / n_chunks,
                 chunk_levels_[size_t(c)], chunk_allowed[size_t(c)]);
    }
  });
  for (const WalkNodes& added : chunk_nodes) added.merge_into(*this);
  for (const auto& ids : chunk_allowed) allowed.insert(allowed.end(), ids.begin(), ids.end());
}

const GrammarMatcher::AllowedSet& GrammarMatcher::allowed_set() {
  auto cached = mask_cache_.find(stacks_);
  if (cached != mask_cache_.end()) return cached->second;
  // Walks much smaller than this take less than waking the pool's threads.
  constexpr size_t kMinParallelWalk = 32768;
  walk_ids_.clear();
  if (pool_ && pool_->size() > 1 && reachable_trie_nodes() >= kMinParallelWalk) {
    walk_vocab_parallel(walk_ids_);
  } else {
    OwnNodes own{*this};
    walk_vocab(own, 0, vocab_->trie_.size(), levels_, walk_ids_);
  }
  if (can_end()) walk_ids_.insert(walk_ids_.end(), vocab_->eog_ids_.begin(), vocab_->eog_ids_.end());
  const size_t n_vocab = size_t(vocab_->n_vocab());
  AllowedSet set;
  set.bits.assign((n_vocab + 63) / 64, 0);
  for (int32_t id : walk_ids_) set.bits[size_t(id) >> 6] |= uint64_t{1} << (id & 63);
  // A list no longer than an eighth of the vocabulary (half a byte mask's size).
  set.few = walk_ids_.size() <= n_vocab / 8;
  if (set.few) {
    set.ids.reserve(walk_ids_.size());
    for (size_t w = 0; w < set.bits.size(); ++w)
      for (uint64_t b = set.bits[w]; b; b &= b - 1) set.ids.push_back(int32_t(w * 64 + size_t(__builtin_ctzll(b))));
  }
  if (mask_cache_.size() >= 512) mask_cache_.clear();
  return mask_cache_.emplace(stacks_, std::move(set)).first->second;
}

bool GrammarMatcher::mask_is_cheap() {
  if (mask_cache_.count(stacks_)) return true;
  // Measured on a 2k-token vocabulary: a walk of this many nodes takes about
  // as long as the ~100 single-token checks a failing best-first search makes.
  constexpr size_t kCheapWalkNodes = 4096;
  return reachable_trie_nodes() <= kCheapWalkNodes;
}

const std::vector<int32_t>* GrammarMatcher::few_allowed() {
  const AllowedSet& set = allowed_set();
  return set.few ? &set.ids : nullptr;
}

void GrammarMatcher::fill_allowed(std::vector<uint8_t>& allowed) {
  const AllowedSet& set = allowed_set();
  const size_t n = std::min(allowed.size(), size_t(vocab_->n_vocab()));
  for (size_t id = 0; id < n; ++id) allowed[id] = uint8_t((set.bits[id >> 6] >> (id & 63)) & 1);
  std::fill(allowed.begin() + ptrdiff_t(n), allowed.end(), 0);
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
