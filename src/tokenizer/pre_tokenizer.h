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
};

class PreTokenizer {
 public:
  // Throws Error for an unknown name; "" and "default" are the default rules.
  explicit PreTokenizer(const std::string& name);
  ~PreTokenizer();
  // Each regex is applied in turn to every piece; matches and the text
  // between them both become pieces (llama.cpp's unicode_regex_split).
  std::vector<std::string> split(std::string_view text) const;
  const PreTokenizerTraits& traits() const { return traits_; }

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
  PreTokenizerTraits traits_;
};

}  // namespace onellm
