// The tokenizer layer: text <-> token ids exactly as llama.cpp computes them,
// built from GGUF metadata. SentencePiece-style ("llama") and byte-level BPE
// ("gpt2") vocabularies; chat templates live in chat_template.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/text_table.h"

namespace onellm {

// GGUF tokenizer.ggml.token_type values. Values a file uses outside 1..6
// read as kUndefined (such tokens decode to nothing, as in llama.cpp).
enum class TokenKind : int32_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4,
                                 kUnused = 5, kByte = 6 };

class PreTokenizer;

// Fill-in-the-middle tokens of code models (Qwen2.5-Coder, StarCoder,
// CodeLlama, DeepSeek-Coder...): from the GGUF keys, else found by their
// text as llama.cpp finds them; -1 where the vocabulary has none.
struct FimTokens {
  int32_t pre = -1, suf = -1, mid = -1;  // prefix, suffix, middle: what infilling needs
  int32_t pad = -1, rep = -1, sep = -1;  // padding, repository name, file separator
  bool usable() const { return pre >= 0 && suf >= 0 && mid >= 0; }
};

class Tokenizer {
 public:
  // Throws Error naming the key when the vocabulary is missing or malformed
  // (no tokens, scores or token types of the wrong length, special token ids
  // outside the vocabulary), or the model/pre-tokenizer type is not supported.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  ~Tokenizer();

  // As llama_tokenize: add_special adds BOS/EOS where the vocabulary says so;
  // parse_special turns control-token text (e.g. "<|im_end|>") into its id.
  // User-defined tokens are always matched whole. Never throws on any input.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The bytes of one token (llama_token_to_piece with lstrip 0). Control and
  // unknown tokens give their text only when `special` is true.
  std::string token_to_piece(int32_t id, bool special = true) const;
  // As llama_detokenize, including the space clean-up some BPE vocabularies use.
  std::string decode(const std::vector<int32_t>& ids, bool remove_special = false, bool unparse_special = false) const;

  int32_t n_vocab() const { return tokens_.size(); }
  int32_t bos_id() const { return bos_; }  // -1: none
  int32_t eos_id() const { return eos_; }
  int32_t eot_id() const { return eot_; }
  int32_t unk_id() const { return unk_; }
  int32_t pad_id() const { return pad_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  const FimTokens& fim() const { return fim_; }
  // EOS, EOT, EOM and the other end-of-generation tokens llama.cpp knows by
  // text (<|im_end|>, <|eot_id|>, <|endoftext|>, <end_of_turn> ...).
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;
  std::string_view token_text(int32_t id) const;  // throws Error for an id outside the vocabulary
  TokenKind token_kind(int32_t id) const;
  bool is_bpe() const { return bpe_; }
  const std::string& pre_tokenizer_name() const { return pre_name_; }
  // Distinct for every tokenizer the process creates. Caches keyed by
  // tokenizer use it, not the address: a destroyed tokenizer's address is
  // reused by the next one.
  uint64_t instance_id() const { return instance_id_; }

 private:
  Tokenizer() = default;
  static uint64_t next_instance_id();
  void encode_spm(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void bpe_word(const std::string& word, std::vector<int32_t>& out) const;
  void spm_byte_tokens(std::string_view bytes, std::vector<int32_t>& out) const;
  int32_t lookup(std::string_view text) const;  // -1 if not a token
  void check_id(int32_t id) const;

  std::string source_;  // file name, for error messages
  bool bpe_ = false;
  TextTable tokens_;  // by id; find() gives the last id of a text, as llama.cpp
  std::vector<float> scores_;
  std::vector<TokenKind> kinds_;
  static constexpr uint8_t kStripLeft = 1, kStripRight = 2;
  std::vector<uint8_t> strip_;  // kStripLeft / kStripRight: spaces a special token swallows
  TextTable merges_;  // "left right" by rank; find() gives the first rank of a text, as llama.cpp
  std::vector<int32_t> special_by_length_;  // control/user-defined/unknown ids, longest text first
  std::vector<bool> eog_;
  std::vector<int32_t> spm_byte_ids_;  // SPM: token of each byte (<0xXX>, else the byte itself), -1 if none
  // SPM: no token has a U+2581 right after another character, so no merge
  // crosses the start of a word and words can be merged one at a time.
  bool spm_words_independent_ = false;
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, unk_ = -1, pad_ = -1;
  FimTokens fim_;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  bool clean_spaces_ = false, ignore_merges_ = false;
  std::string pre_name_;
  std::unique_ptr<PreTokenizer> pre_;
  uint64_t instance_id_ = next_instance_id();
};

// Turns a stream of token ids into text that is always valid UTF-8 and never
// splits a character: bytes of an incomplete character are held until it
// completes; bytes that can never form a character become U+FFFD.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool special = false)
      : tokenizer_(tokenizer), special_(special) {}
  std::string push(int32_t id);  // complete characters decoded so far
  std::string flush();           // the rest: an unfinished character becomes U+FFFD

 private:
  const Tokenizer& tokenizer_;
  bool special_;
  std::string pending_;
};

// Length of the longest prefix of s that does not end inside a UTF-8
// character that more bytes could still complete.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace onellm
