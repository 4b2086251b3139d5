// The tokenizer layer: text <-> token ids exactly as the model was trained,
// built from GGUF metadata. SentencePiece-style ("llama") and byte-level BPE
// ("gpt2") vocabularies; chat templates live in chat_template.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"

namespace onellm {

// GGUF tokenizer.ggml.token_type values.
enum class TokenKind : int32_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4,
                                 kUnused = 5, kByte = 6 };

class PreTokenizer;

class Tokenizer {
 public:
  // Throws Error naming the key when the vocabulary is missing or malformed,
  // or the model/pre-tokenizer type is not supported.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  ~Tokenizer();

  // As llama_tokenize: add_special adds BOS/EOS where the vocabulary says so;
  // parse_special turns control-token text (e.g. "<|im_end|>") into its id.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The bytes of one token (llama_token_to_piece with lstrip 0). Control and
  // unknown tokens give their text only when `special` is true.
  std::string token_to_piece(int32_t id, bool special = true) const;
  // As llama_detokenize, including the space clean-up some BPE vocabularies use.
  std::string decode(const std::vector<int32_t>& ids, bool remove_special = false, bool unparse_special = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;
  const std::string& token_text(int32_t id) const;
  TokenKind token_kind(int32_t id) const;
  bool is_bpe() const { return bpe_; }
  const std::string& pre_tokenizer_name() const { return pre_name_; }

 private:
  Tokenizer() = default;
  void encode_spm(std::string text, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void bpe_word(const std::string& word, std::vector<int32_t>& out) const;
  int32_t byte_token(uint8_t byte) const;
  void check_id(int32_t id) const;

  std::string source_;  // file name, for error messages
  bool bpe_ = false;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<TokenKind> kinds_;
  std::unordered_map<std::string, int32_t> token_ids_;
  std::unordered_map<std::string, int32_t> merge_ranks_;  // "left right" -> rank
  std::vector<int32_t> special_by_length_;  // control/user-defined/unknown ids, longest text first
  std::vector<bool> eog_;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  bool clean_spaces_ = false, ignore_merges_ = false;
  std::string pre_name_;
  std::unique_ptr<PreTokenizer> pre_;
};

// Turns a stream of token ids into text without ever splitting a UTF-8
// character: bytes of an incomplete character are held until it completes.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool special = false)
      : tokenizer_(tokenizer), special_(special) {}
  std::string push(int32_t id);  // complete characters decoded so far
  std::string flush();           // whatever is left (possibly invalid UTF-8)

 private:
  const Tokenizer& tokenizer_;
  bool special_;
  std::string pending_;
};

// Length of the longest prefix of s that does not end inside a UTF-8
// character that more bytes could still complete.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace onellm
