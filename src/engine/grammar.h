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
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/sampler.h"

namespace onellm {

class Tokenizer;

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

 private:
  friend class GrammarMatcher;
  std::vector<std::string> pieces_;  // empty: never matches
  std::vector<uint8_t> eog_;
  std::vector<int32_t> sorted_;      // ids with a piece, by piece bytes
  std::vector<uint16_t> common_prefix_;  // with the previous id in sorted_
};

// One request's position in a grammar. Not thread-safe; cheap to create.
class GrammarMatcher : public TokenConstraint {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);

  // TokenConstraint: may this token come next? End-of-generation tokens are
  // allowed exactly when the text so far is a complete sentence.
  bool allows(int32_t id) override;
  void fill_allowed(std::vector<uint8_t>& allowed) override;

  // Advances over a chosen token / raw text. Throws Error if it does not fit.
  void accept_token(int32_t id);
  void accept_text(std::string_view bytes);
  bool would_accept_text(std::string_view bytes);  // without advancing
  bool can_end() const;   // the text so far is a complete sentence
  bool must_end() const;  // ... and nothing may follow it
  bool failed() const { return stacks_.empty(); }

 private:
  using StackSet = std::vector<int32_t>;  // sorted interned stack ids
  int32_t intern(int32_t pos, int32_t parent);
  // Pushes the stacks reached by resuming at `pos` under `parent`, expanding
  // rule references until each stack's top is a byte set (or it is complete).
  void expand(int32_t pos, int32_t parent, StackSet& out);
  void advance(const StackSet& from, uint8_t byte, StackSet& to);
  bool advance_text(StackSet& stacks, std::string_view bytes);
  void compact_if_large();

  struct Node {
    int32_t pos, parent;
  };
  static constexpr int32_t kComplete = 0;  // the empty stack: the sentence may end here
  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const GrammarVocab> vocab_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> node_ids_;
  StackSet stacks_;
  // Whole-vocabulary masks by stack set: states repeat (e.g. inside a JSON
  // string), and interning makes equal states equal sets.
  std::map<StackSet, std::vector<uint8_t>> mask_cache_;
  std::vector<StackSet> levels_;  // scratch for fill_allowed
  StackSet scratch_a_, scratch_b_;
};

}  // namespace onellm
