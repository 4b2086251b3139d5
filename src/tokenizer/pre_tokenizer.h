// Splits text into words before BPE merges, with the regexes of the
// pre-tokenizer named by tokenizer.ggml.pre (private to the tokenizer layer).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace onellm {

struct PreTokenizerTraits {
  bool clean_spaces = true;    // detokenize drops the space in " ?", " 's" ...
  bool ignore_merges = false;  // a word that is a whole token is taken as is
  bool add_bos = false;        // default of tokenizer.ggml.add_bos_token
  bool no_bos = false;         // the vocabulary has no BOS unless the key names one
};

class PreTokenizer {
 public:
  // Throws Error for an unknown name; "" and "default" are the default rules.
  explicit PreTokenizer(const std::string& name);
  ~PreTokenizer();
  // Each regex is applied in turn to every piece; matches and the text
  // between them both become pieces (llama.cpp's unicode_regex_split).
  // Invalid UTF-8 is first replaced as llama.cpp does (U+FFFD per bad byte),
  // so the words hold exactly the bytes the merges must see. Thread-safe.
  std::vector<std::string> split(std::string_view text) const;
  const PreTokenizerTraits& traits() const { return traits_; }
  const std::string& name() const { return name_; }

  // Every name the table knows (for error messages and tests).
  static std::vector<std::string> known_names();

 private:
  struct Regex;
  std::string name_;
  std::vector<std::unique_ptr<Regex>> regexes_;
  PreTokenizerTraits traits_;
};

// llama.cpp's reading of UTF-8 (unicode_cpts_from_utf8 + re-encoding): each
// byte that does not start a well-formed sequence becomes U+FFFD, overlong
// forms are re-encoded in their short form.
std::string sanitize_utf8_like_llama(std::string_view text);

}  // namespace onellm
