// Tokenizers against llama.cpp's golden tokenization (../shared/golden/
// tokenizer): every line, with and without special tokens, and detokenization.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace onellm {
namespace {

struct VocabCase {
  const char* golden;
  const char* model;
};

void PrintTo(const VocabCase& c, std::ostream* os) { *os << c.golden; }

class GoldenTokenizer : public ::testing::TestWithParam<VocabCase> {};

TEST_P(GoldenTokenizer, EveryLineMatches) {
  ONELLM_REQUIRE_SHARED();
  const std::string shared = test::shared_dir();
  std::ifstream in(shared + "/golden/tokenizer/" + GetParam().golden);
  nlohmann::json g = nlohmann::json::parse(in);
  auto file = GgufFile::open(shared + "/models/" + GetParam().model);
  auto tok = Tokenizer::from_gguf(*file);
  EXPECT_EQ(tok->n_vocab(), g["n_vocab"].get<int32_t>());
  EXPECT_EQ(tok->add_bos(), g["add_bos"].get<bool>());
  EXPECT_EQ(tok->add_eos(), g["add_eos"].get<bool>());
  EXPECT_EQ(tok->bos_id(), g["bos_id"].get<int32_t>());
  EXPECT_EQ(tok->eos_id(), g["eos_id"].get<int32_t>());
  int checked = 0;
  for (const auto& line : g["lines"]) {
    const std::string text = line["text"].get<std::string>();
    SCOPED_TRACE("line " + std::to_string(line["line"].get<int>()) + ": " + text);
    const auto ids = line["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false, false), ids);
    EXPECT_EQ(tok->encode(text, true, false), line["ids_add_special"].get<std::vector<int32_t>>());
    EXPECT_EQ(tok->encode(text, false, true), line["ids_parse_special"].get<std::vector<int32_t>>());
    EXPECT_EQ(tok->decode(ids), line["detok"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 100);
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenTokenizer,
                         ::testing::Values(VocabCase{"ggml-vocab-gpt-2.corpus1.json", "vocab/ggml-vocab-gpt-2.gguf"},
                                           VocabCase{"ggml-vocab-llama-spm.corpus1.json",
                                                     "vocab/ggml-vocab-llama-spm.gguf"},
                                           VocabCase{"tiny-qwen2-F32.pre-qwen2.corpus1.json",
                                                     "tiny-qwen2-F32.gguf"}),
                         [](const auto& info) {
                           std::string n = info.param.golden;
                           n = n.substr(0, n.find('.'));
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(StreamingDecoder, NeverSplitsACharacter) {
  EXPECT_EQ(utf8_complete_prefix("ab"), 2u);
  EXPECT_EQ(utf8_complete_prefix("a\xE2\x96"), 1u);      // 3-byte char, 2 present
  EXPECT_EQ(utf8_complete_prefix("a\xE2\x96\x81"), 4u);  // complete
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x98"), 0u);   // 4-byte emoji, 3 present
  EXPECT_EQ(utf8_complete_prefix("\xC3"), 0u);
}

TEST(StreamingDecoder, ByteTokensAssembleIntoCharacters) {
  ONELLM_REQUIRE_SHARED();
  auto file = GgufFile::open(test::shared_dir() + "/models/vocab/ggml-vocab-llama-spm.gguf");
  auto tok = Tokenizer::from_gguf(*file);
  // An emoji the vocabulary only has as byte-fallback tokens.
  std::vector<int32_t> ids = tok->encode("x \xF0\x9F\xA6\x99 y", false, false);
  StreamingDecoder dec(*tok);
  std::string all;
  for (int32_t id : ids) {
    std::string piece = dec.push(id);
    EXPECT_EQ(utf8_complete_prefix(piece), piece.size()) << "piece ends inside a character";
    all += piece;
  }
  all += dec.flush();
  EXPECT_EQ(all, " x \xF0\x9F\xA6\x99 y");
}

TEST(Tokenizer, BadVocabulariesNameTheKey) {
  auto build = [](const std::function<void(GgufWriter&)>& edit) {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::of_strings({"<unk>", "<s>", "</s>", "a"}));
    w.set("tokenizer.ggml.scores", GgufValue::of_f32s({0, 0, 0, -1}));
    w.set("tokenizer.ggml.token_type", GgufValue::of_i32s({2, 3, 3, 1}));
    edit(w);
    return w.to_bytes();
  };
  auto error_of = [](const std::vector<uint8_t>& bytes) -> std::string {
    try {
      auto f = GgufFile::parse(bytes.data(), bytes.size(), "vocab.gguf");
      Tokenizer::from_gguf(*f);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error_of(build([](GgufWriter&) {})), "(no error)");
  EXPECT_NE(error_of(build([](GgufWriter& w) { w.set("tokenizer.ggml.scores", GgufValue::of_f32s({0})); }))
                .find("tokenizer.ggml.scores"),
            std::string::npos);
  EXPECT_NE(error_of(build([](GgufWriter& w) { w.set("tokenizer.ggml.model", GgufValue::of_string("wordpiece")); }))
                .find("wordpiece"),
            std::string::npos);
  EXPECT_NE(error_of(build([](GgufWriter& w) { w.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(99)); }))
                .find("bos_token_id"),
            std::string::npos);
  EXPECT_NE(error_of(build([](GgufWriter& w) {
              w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
              w.set("tokenizer.ggml.merges", GgufValue::of_strings({}));
              w.set("tokenizer.ggml.pre", GgufValue::of_string("klingon"));
            })).find("klingon"),
            std::string::npos);
}

TEST(Tokenizer, LongInputIsLinear) {
  ONELLM_REQUIRE_SHARED();
  auto file = GgufFile::open(test::shared_dir() + "/models/vocab/ggml-vocab-gpt-2.gguf");
  auto tok = Tokenizer::from_gguf(*file);
  std::string text;
  while (text.size() < (1u << 20)) text += "The quick brown fox jumps over the lazy dog 12345. ";
  std::string word(200000, 'a');  // one pathological word
  auto ids = tok->encode(text + word, false, false);
  EXPECT_GT(ids.size(), 200000u);
  EXPECT_EQ(tok->decode(ids), text + word);
}

}  // namespace
}  // namespace onellm
