// More vocabularies, when a checkout of llama.cpp's models/ folder is at hand
// (ONELLM_LLAMA_VOCAB_DIR): each ggml-vocab-*.gguf with its .inp/.out pair
// holds test strings and the ids Hugging Face's own tokenizers give them
// (written by llama.cpp's convert_hf_to_gguf_update.py), so this checks the
// tokenizers against a third implementation. Skipped when the folder is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace onellm {
namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The .inp format: cases separated by "\n__ggml_vocab_test__\n"; .out: one
// line of space-separated ids per case.
std::vector<std::pair<std::string, std::vector<int32_t>>> read_cases(const std::filesystem::path& gguf) {
  const std::string inp = read_all(gguf.string() + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream out(gguf.string() + ".out");
  std::vector<std::pair<std::string, std::vector<int32_t>>> cases;
  std::string line;
  for (size_t i = 0; i < texts.size() && std::getline(out, line); ++i) {
    std::istringstream ids(line);
    std::vector<int32_t> v;
    for (int32_t id; ids >> id;) v.push_back(id);
    cases.emplace_back(texts[i], v);
  }
  return cases;
}

TEST(TokenizerVocabs, HuggingFaceReferenceIds) {
  const char* dir = std::getenv("ONELLM_LLAMA_VOCAB_DIR");
  if (dir == nullptr || !std::filesystem::is_directory(dir))
    GTEST_SKIP() << "set ONELLM_LLAMA_VOCAB_DIR to llama.cpp's models/ folder to run this test";
  int vocabs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto& path = entry.path();
    if (path.extension() != ".gguf" || !std::filesystem::exists(path.string() + ".out")) continue;
    std::unique_ptr<GgufFile> file;
    std::unique_ptr<Tokenizer> tok;
    try {
      file = GgufFile::open(path.string());
      tok = Tokenizer::from_gguf(*file);
    } catch (const Error& e) {
      // WordPiece/Unigram vocabularies are out of scope; anything else must load.
      const std::string model = file ? file->get_string_or("tokenizer.ggml.model", "") : "";
      EXPECT_TRUE(model != "llama" && model != "gpt2") << path << ": " << e.what();
      continue;
    }
    ++vocabs;
    for (const auto& [text, ids] : read_cases(path)) {
      EXPECT_EQ(tok->encode(text, false, false), ids) << path.filename() << " text '" << text << "'";
    }
  }
  EXPECT_GT(vocabs, 0);
}

}  // namespace
}  // namespace onellm
