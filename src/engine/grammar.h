// Grammar-constrained decoding: a GBNF grammar (docs/grammar.md) compiled to
// a byte-level pushdown automaton, and a matcher that tells which tokens may
// come next. JSON Schemas are translated to GBNF first (json_schema.h).
//
// Why bytes, not characters: token pieces split UTF-8 characters freely, so
// the grammar's character classes are compiled into UTF-8 byte sequences once
// and the matcher never holds a partial character.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/sampler.h"

namespace onellm {

class Tokenizer;
class ThreadPool;

// A compiled grammar: immutable, shared by every request that uses it.
class Grammar {
 public:
  // Parses GBNF text; the start rule is `root`. Throws Error with line and
  // column for syntax errors, and names undefined rules, left recursion and
  // repetition bounds that are too large.
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf, std::string_view root = "root");

  // Element kinds of the flattened rule table.
  enum Kind : uint8_t { kBytes, kRule, kEnd };
  struct Element {
    Kind kind;
    int32_t value;  // kBytes: index into byte_sets; kRule: rule id; kEnd: unused
  };
  struct ByteSet {
    uint64_t bits[4];
    bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  };

  const std::vector<Element>& elements() const { return elements_; }
  const ByteSet& byte_set(int32_t i) const { return byte_sets_[i]; }
  // Positions in elements() where each alternative of a rule starts.
  const std::vector<int32_t>& alternatives(int32_t rule) const { return rules_[rule]; }
  int32_t root() const { return root_; }
  size_t n_rules() const { return rules_.size(); }

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;
  std::vector<ByteSet> byte_sets_;
  std::vector<std::vector<int32_t>> rules_;
  int32_t root_ = 0;
};

// The byte strings of a vocabulary, sorted, for fast whole-vocabulary masks.
// Control tokens have no bytes (they never match grammar text); end-of-
// generation tokens are allowed only where the grammar may end.
class GrammarVocab {
 public:
  static std::shared_ptr<const GrammarVocab> of(const Tokenizer& tokenizer);  // built once per tokenizer
  explicit GrammarVocab(const Tokenizer& tokenizer);

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  bool is_eog(int32_t id) const { return eog_[id]; }
  // The ids whose piece is a non-empty prefix of `text` (shortest first),
  // found by one walk down the trie.
  std::vector<int32_t> prefix_pieces(std::string_view text) const;
  // The ids whose piece starts with `prefix` (contiguous in piece order).
  std::span<const int32_t> pieces_starting_with(std::string_view prefix) const;
  size_t max_piece() const { return max_piece_; }

 private:
  friend class GrammarMatcher;
  std::vector<std::string> pieces_;  // empty: never matches
  std::vector<uint8_t> eog_;
  std::vector<int32_t> sorted_;  // ids with a piece, by piece bytes
  // The pieces as a byte trie in preorder, so that a walk skips a failed
  // prefix's whole subtree in one step. A node is one byte at `depth` of the
  // pieces sorted_[first...]; those whose piece is exactly the path to here
  // (several only for duplicate pieces) come first.
  struct TrieNode {
    uint32_t end;    // the index after this node's subtree
    uint32_t first;  // into sorted_
    uint16_t depth;
    uint8_t byte;
    uint8_t ends_here;
  };
  std::vector<TrieNode> trie_;
  uint32_t first_byte_nodes_[256] = {};  // size of the subtree of pieces starting with each byte
  size_t max_piece_ = 0;
  std::vector<int32_t> eog_ids_;
};

// One request's position in a grammar. Not thread-safe; cheap to create.
class GrammarMatcher : public TokenConstraint {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);

  // TokenConstraint: may this token come next? End-of-generation tokens are
  // allowed exactly when the text so far is a complete sentence.
  bool allows(int32_t id) override;
  void fill_allowed(std::vector<uint8_t>& allowed) override;
  // Cached, or a walk would visit few trie nodes (the next byte can only be
  // one of a few, as after `{` or in a number): then a walk costs less than
  // checking the most likely tokens one by one, most of which would fail.
  bool mask_is_cheap() override;
  const std::vector<int32_t>* few_allowed() override;

  // Advances over a chosen token / raw text. Throws Error if it does not fit.
  void accept_token(int32_t id);
  void accept_text(std::string_view bytes);
  bool would_accept_text(std::string_view bytes);  // without advancing
  bool can_end() const;   // the text so far is a complete sentence
  bool must_end() const;  // ... and nothing may follow it
  bool failed() const { return stacks_.empty(); }
  // Whole-vocabulary walks (fill_allowed on a state not seen before) are
  // split over this pool's threads; nullptr: on the calling thread.
  void set_thread_pool(ThreadPool* pool) { pool_ = pool; }

 private:
  using StackSet = std::vector<int32_t>;  // sorted interned stack ids
  struct Node {
    int32_t pos, parent;
  };
  struct OwnNodes;   // the matcher's node table
  class WalkNodes;   // a read-only view of it plus the nodes one walk chunk adds
  int32_t intern(int32_t pos, int32_t parent);
  // Pushes the stacks reached by resuming at `pos` under `parent`, expanding
  // rule references until each stack's top is a byte set (or it is complete).
  template <class Nodes>
  void expand(Nodes& nodes, int32_t pos, int32_t parent, StackSet& out) const;
  template <class Nodes>
  void advance(Nodes& nodes, const StackSet& from, uint8_t byte, StackSet& to) const;
  template <class Nodes>
  void walk_vocab(Nodes& nodes, size_t begin, size_t end, std::vector<StackSet>& levels,
                  std::vector<int32_t>& allowed) const;
  size_t reachable_trie_nodes() const;
  void walk_vocab_parallel(std::vector<int32_t>& allowed);
  // The tokens allowed in the current state: a bitset over the vocabulary,
  // and the ids themselves when they are few (compact, so that hundreds of
  // cached states cost little memory and no fresh pages per step).
  struct AllowedSet {
    std::vector<uint64_t> bits;
    std::vector<int32_t> ids;
    bool few = false;
  };
  const AllowedSet& allowed_set();
  bool advance_text(StackSet& stacks, std::string_view bytes);
  void compact_if_large();

  static constexpr int32_t kComplete = 0;  // the empty stack: the sentence may end here
  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const GrammarVocab> vocab_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> node_ids_;
  StackSet stacks_;
  // Allowed sets by stack set: states repeat (e.g. inside a JSON string), and
  // interning makes equal states equal sets.
  std::map<StackSet, AllowedSet> mask_cache_;
  std::vector<StackSet> levels_;  // scratch for fill_allowed
  std::vector<std::vector<StackSet>> chunk_levels_;  // ... per chunk of a parallel walk
  std::vector<int32_t> walk_ids_;                    // ... and the ids a walk allowed
  StackSet scratch_a_, scratch_b_;
  ThreadPool* pool_ = nullptr;
};

}  // namespace onellm
