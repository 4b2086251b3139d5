// Arbitrary bytes as GBNF text, as a JSON Schema and as a schema's string
// `pattern` (a regular expression): parsing and conversion end in a grammar
// or onellm::Error. A grammar that parses is then driven by
// the rest of the input as text (first byte splits the input).
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "engine/grammar.h"
#include "engine/json_schema.h"
#include "fuzz_tokenizer.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

// The byte-level matcher needs a vocabulary.
const onellm::Tokenizer& tokenizer() { return fuzz_tokenizer("/tmp/onellm-grammar-fuzz.gguf"); }

void drive(const std::shared_ptr<const onellm::Grammar>& g, std::string_view text) {
  onellm::GrammarMatcher m(g, onellm::GrammarVocab::of(tokenizer()));
  std::vector<uint8_t> mask(size_t(tokenizer().n_vocab()));
  m.fill_allowed(mask);
  for (char c : text) {
    try {
      m.accept_text(std::string_view(&c, 1));
    } catch (const onellm::Error&) {
      return;
    }
  }
  m.fill_allowed(mask);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = size_t(data[0]) % size;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view text = std::string_view(body).substr(std::min(split, body.size()));
  const std::string source = body.substr(0, std::min(split, body.size()));
  try {
    drive(onellm::Grammar::parse(source), text);
  } catch (const onellm::Error&) {
  }
  try {
    drive(onellm::Grammar::parse(onellm::json_schema_text_to_gbnf(source)), text);
  } catch (const onellm::Error&) {
  }
  const std::string pattern_schema =
      nlohmann::json{{"type", "string"}, {"pattern", source}}.dump(-1, ' ', false,
                                                                  nlohmann::json::error_handler_t::replace);
  try {
    drive(onellm::Grammar::parse(onellm::json_schema_text_to_gbnf(pattern_schema)), text);
  } catch (const onellm::Error&) {
  }
  return 0;
}
