// Byte-level BPE training: counts the words the runtime pre-tokenizer makes,
// then merges the most frequent adjacent pair until the vocabulary is full.
// The merge list is what Tokenizer applies by rank, so a trained vocabulary
// encodes its training text with the merges learned on it.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "base/error.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"
#include "train/train.h"

namespace onellm {
namespace {

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
  uint32_t visited = 0;  // merge number that last rewrote it
};

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
int32_t pair_left(uint64_t k) { return static_cast<int32_t>(k >> 32); }
int32_t pair_right(uint64_t k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

// Text between special tokens, which are never part of a learned word.
std::vector<std::string_view> split_out_specials(std::string_view text, const std::vector<std::string>& specials) {
  std::vector<std::string_view> out;
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    size_t hit = 0;
    if (text[pos] == '<')
      for (const std::string& s : specials)
        if (!s.empty() && text.compare(pos, s.size(), s) == 0) hit = std::max(hit, s.size());
    if (hit == 0) {
      ++pos;
      continue;
    }
    if (pos > start) out.push_back(text.substr(start, pos - start));
    pos += hit;
    start = pos;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

class BpeLearner {
 public:
  BpeLearner(std::vector<Word> words, std::vector<std::string> tokens)
      : words_(std::move(words)), tokens_(std::move(tokens)) {
    for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int32_t>(i));
    for (size_t w = 0; w < words_.size(); ++w) add_pairs(static_cast<int32_t>(w), +1);
    for (const auto& [key, count] : counts_) heap_.push({count, key});
  }

  // Merges until `n_tokens` tokens exist or no pair occurs min_count times.
  void run(size_t n_tokens, int64_t min_count) {
    while (tokens_.size() < n_tokens && !heap_.empty()) {
      Candidate best = heap_.top();
      heap_.pop();
      auto it = counts_.find(best.key);
      if (it == counts_.end() || it->second != best.count) continue;  // stale entry
      if (best.count < min_count) break;
      merge(best.key);
    }
  }
  std::vector<std::string>& tokens() { return tokens_; }
  const std::vector<std::string>& merges() const { return merges_; }

 private:
  struct Candidate {
    int64_t count;
    uint64_t key;
  };
  // Most frequent first; ties go to the pair whose merged text sorts first,
  // then to the lower ids, so the result depends only on the counts.
  struct Order {
    const BpeLearner* self;
    bool operator()(const Candidate& x, const Candidate& y) const {
      if (x.count != y.count) return x.count < y.count;
      const std::string& xl = self->tokens_[pair_left(x.key)];
      const std::string& yl = self->tokens_[pair_left(y.key)];
      std::string xt = xl + self->tokens_[pair_right(x.key)], yt = yl + self->tokens_[pair_right(y.key)];
      if (xt != yt) return xt > yt;
      return x.key > y.key;
    }
  };

  void add_pairs(int32_t w, int sign) {
    const Word& word = words_[static_cast<size_t>(w)];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      uint64_t k = pair_key(word.symbols[i], word.symbols[i + 1]);
      counts_[k] += sign * word.count;
      if (sign > 0) where_[k].push_back(w);
      touched_.push_back(k);
    }
  }

  void merge(uint64_t key) {
    const int32_t a = pair_left(key), b = pair_right(key);
    const std::string text = tokens_[a] + tokens_[b];
    merges_.push_back(tokens_[a] + " " + tokens_[b]);
    // Two merge paths can spell the same text ("a bc", "ab c"): one token.
    int32_t z;
    if (auto found = ids_.find(text); found != ids_.end()) {
      z = found->second;
    } else {
      z = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(text);
      ids_.emplace(text, z);
    }
    ++merge_number_;
    touched_.clear();
    std::vector<int32_t> word_ids = std::move(where_[key]);
    where_.erase(key);
    for (int32_t w : word_ids) {
      Word& word = words_[static_cast<size_t>(w)];
      if (word.visited == merge_number_) continue;
      word.visited = merge_number_;
      add_pairs(w, -1);
      std::vector<int32_t>& s = word.symbols;
      size_t out = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[out++] = z;
          ++i;
        } else {
          s[out++] = s[i];
        }
      }
      s.resize(out);
      add_pairs(w, +1);
    }
    counts_.erase(key);
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    for (uint64_t k : touched_) {
      auto it = counts_.find(k);
      if (it == counts_.end()) continue;
      if (it->second <= 0) {
        counts_.erase(it);
        continue;
      }
      heap_.push({it->second, k});
    }
  }

  std::vector<Word> words_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> merges_;
  std::unordered_map<uint64_t, int64_t> counts_;
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;  // may hold stale word ids
  std::vector<uint64_t> touched_;
  uint32_t merge_number_ = 0;
  std::priority_queue<Candidate, std::vector<Candidate>, Order> heap_{Order{this}};
};

// A space or tab followed by a letter (ASCII, or any multi-byte character:
// the pre-tokenizers attach one leading character only to letter runs and
// punctuation, and splitting punctuation off costs nothing in correctness).
bool space_before_word(std::string_view piece) {
  if (piece.size() < 2 || (piece[0] != ' ' && piece[0] != '\t')) return false;
  const unsigned char c = static_cast<unsigned char>(piece[1]);
  return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

BpeVocabulary train_bpe(std::string_view text, const BpeTrainOptions& options) {
  std::vector<std::string> specials = options.control_tokens;
  specials.insert(specials.end(), options.user_tokens.begin(), options.user_tokens.end());
  if (options.control_tokens.empty()) throw Error("train-tokenizer: at least one control token (EOS) is needed");
  const size_t n_special = specials.size();
  if (options.vocab_size < static_cast<int64_t>(256 + n_special))
    throw Error("train-tokenizer: vocabulary size " + std::to_string(options.vocab_size) + " is below the " +
                std::to_string(256 + n_special) + " byte and special tokens");

  // Word counts, in first-seen order so that word ids are deterministic.
  PreTokenizer pre(options.pre);
  std::unordered_map<std::string, int32_t> word_ids;
  std::vector<Word> words;
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
  auto count = [&](std::string piece) {
    auto [it, fresh] = word_ids.emplace(std::move(piece), static_cast<int32_t>(words.size()));
    if (fresh) {
      Word w;
      for (unsigned char c : it->first) w.symbols.push_back(c);
      words.push_back(std::move(w));
    }
    ++words[static_cast<size_t>(it->second)].count;
  };
  for (std::string_view segment : split_out_specials(text, specials)) {
    for (std::string& piece : pre.split(segment)) {
      // Counting the space and the word apart is the same as never merging
      // across them: no pair of the two is ever seen.
      if (options.space_apart && space_before_word(piece)) {
        count(piece.substr(0, 1));
        count(piece.substr(1));
      } else {
        count(std::move(piece));
      }
    }
  }

  BpeLearner learner(std::move(words), std::move(tokens));
  learner.run(static_cast<size_t>(options.vocab_size) - n_special, std::max<int64_t>(options.min_pair_count, 1));

  BpeVocabulary v;
  v.tokens = std::move(learner.tokens());
  v.token_types.assign(v.tokens.size(), static_cast<int32_t>(TokenKind::kNormal));
  v.merges = learner.merges();
  v.pre = options.pre;
  v.eos_id = static_cast<int32_t>(v.tokens.size());
  for (const std::string& s : options.control_tokens) {
    v.tokens.push_back(s);
    v.token_types.push_back(static_cast<int32_t>(TokenKind::kControl));
  }
  for (const std::string& s : options.user_tokens) {
    v.tokens.push_back(s);
    v.token_types.push_back(static_cast<int32_t>(TokenKind::kUserDefined));
  }
  return v;
}

GgufMetadata bpe_tokenizer_metadata(const BpeVocabulary& vocab, const std::string& chat_template) {
  GgufMetadata m = tokenizer_metadata_from_tokens(vocab.tokens, vocab.token_types, vocab.merges, vocab.eos_id,
                                                  vocab.eos_id, vocab.pre);
  m.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::of_u32(static_cast<uint32_t>(vocab.eos_id)));
  if (!chat_template.empty()) m.emplace_back("tokenizer.chat_template", GgufValue::of_string(chat_template));
  return m;
}

void write_tokenizer_gguf(const GgufMetadata& tokenizer, const std::string& path) {
  GgufWriter w;
  // Vocabulary-only files carry an architecture too, as llama.cpp's do.
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("general.type", GgufValue::of_string("vocab"));
  w.set("general.name", GgufValue::of_string("onellm-tokenizer"));
  for (const auto& [key, value] : tokenizer) w.set(key, value);
  w.write(path);
}

}  // namespace onellm
