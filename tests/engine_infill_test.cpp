// Fill-in-the-middle prompts (engine/infill.h) on a byte-level vocabulary
// built here: ids 0..255 are the bytes, so every expected id is the byte's
// value; the FIM tokens follow at 256.. and are found by their text or by
// the GGUF keys.
#include <gtest/gtest.h>

#include "base/error.h"
#include "engine/infill.h"
#include "support/byte_vocab.h"

namespace onellm {
namespace {

// extra: control tokens after the 256 bytes; keys: integer metadata (e.g.
// tokenizer.ggml.fim_pre_token_id).
std::unique_ptr<test::ByteVocab> vocab(const std::vector<std::string>& extra,
                                       std::vector<std::pair<std::string, int32_t>> keys = {}, bool add_bos = false) {
  test::ByteVocabOptions o;
  o.keys = std::move(keys);
  o.add_bos = add_bos;
  return test::byte_vocab(extra, o);
}

const std::vector<std::string> kQwenFim = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",
                                           "<|repo_name|>", "<|file_sep|>"};
constexpr int32_t kPre = 256, kSuf = 257, kMid = 258, kRep = 260, kSep = 261;

std::vector<int32_t> bytes_of(const std::string& s) { return std::vector<int32_t>(s.begin(), s.end()); }

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(Infill, FindsTheFimTokensByTextAndBuildsPrefixSuffixMiddle) {
  auto v = vocab(kQwenFim);
  const FimTokens& f = v->tok->fim();
  EXPECT_EQ(f.pre, kPre);
  EXPECT_EQ(f.suf, kSuf);
  EXPECT_EQ(f.mid, kMid);
  EXPECT_EQ(f.pad, 259);
  EXPECT_EQ(f.rep, kRep);
  EXPECT_EQ(f.sep, kSep);
  InfillInput in;
  in.prefix = "def f(x):\n    ";
  in.suffix = "\n    return y\n";
  EXPECT_EQ(infill_tokens(*v->tok, in, 1000),
            cat({{kPre}, bytes_of(in.prefix), {kSuf}, bytes_of(in.suffix), {kMid}}));
  in.prompt = "y =";  // the start of the middle comes after MID
  EXPECT_EQ(infill_tokens(*v->tok, in, 1000),
            cat({{kPre}, bytes_of(in.prefix), {kSuf}, bytes_of(in.suffix), {kMid}, bytes_of("y =")}));
}

TEST(Infill, OtherFilesGoFirstInTheRepositoryPattern) {
  auto v = vocab(kQwenFim);
  InfillInput in;
  in.prefix = "a";
  in.suffix = "b";
  in.project = "demo";
  in.file = "main.py";
  in.extra = {{"util.py", "X=1"}, {"io.py", "Y"}};
  EXPECT_EQ(infill_tokens(*v->tok, in, 1000),
            cat({{kRep}, bytes_of("demo\n"), {kSep}, bytes_of("util.py\nX=1\n"), {kSep}, bytes_of("io.py\nY\n"),
                 {kSep}, bytes_of("main.py\n"), {kPre}, bytes_of("a"), {kSuf}, bytes_of("b"), {kMid}}));
  // Without REP/SEP tokens the files are set apart by a separator line.
  auto plain = vocab({"<fim-prefix>", "<fim-suffix>", "<fim-middle>"});
  in.extra = {{"util.py", "X=1"}};
  EXPECT_EQ(infill_tokens(*plain->tok, in, 1000),
            cat({bytes_of("\n\n--- util.py ---\n\nX=1"), {kPre}, bytes_of("a"), {kSuf}, bytes_of("b"), {kMid}}));
}

TEST(Infill, KeysOverrideTextsAndBosComesFirst) {
  // Ids from the GGUF keys, on tokens whose text says nothing.
  auto v = vocab({"P", "S", "M"},
                 {{"tokenizer.ggml.fim_pre_token_id", 256}, {"tokenizer.ggml.fim_suf_token_id", 257},
                  {"tokenizer.ggml.fim_mid_token_id", 258}},
                 true);
  InfillInput in;
  in.prefix = "x";
  in.suffix = "y";
  EXPECT_EQ(infill_tokens(*v->tok, in, 100),
            cat({{v->tok->bos_id()}, {256}, bytes_of("x"), {257}, bytes_of("y"), {258}}));
}

TEST(Infill, ALongInputKeepsTheCodeNearestTheCursor) {
  auto v = vocab(kQwenFim);
  InfillInput in;
  in.prefix = std::string(100, 'p') + "NEAR";
  in.suffix = "next" + std::string(100, 's');
  in.extra = {{"f", std::string(50, 'e')}};
  // 3 FIM tokens + 37 tokens of code: the other files go, the suffix gets at
  // most a quarter unless the prefix is short.
  const std::vector<int32_t> t = infill_tokens(*v->tok, in, 40);
  ASSERT_EQ(t.size(), 40u);
  EXPECT_EQ(t.front(), kPre);
  const auto suf = std::find(t.begin(), t.end(), kSuf);
  ASSERT_NE(suf, t.end());
  EXPECT_EQ(std::vector<int32_t>(suf - 4, suf), bytes_of("NEAR"));  // the prefix's end is kept
  EXPECT_EQ(std::vector<int32_t>(suf + 1, suf + 5), bytes_of("next"));  // the suffix's start
  EXPECT_EQ(suf - t.begin() - 1, 28);  // prefix 28, suffix 9 (37 / 4)
  EXPECT_EQ(t.back(), kMid);
  // A short prefix leaves its room to the suffix.
  in.prefix = "p";
  const std::vector<int32_t> u = infill_tokens(*v->tok, in, 40);
  EXPECT_EQ(std::count(u.begin(), u.end(), static_cast<int32_t>('s')), 36 - 4);
  // The other files fill what the code leaves, their end kept: the last 25
  // of the 50 'e's, its newline, then SEP and the current file's name.
  in.suffix = "s";
  const std::vector<int32_t> w = infill_tokens(*v->tok, in, 40);
  ASSERT_EQ(w.size(), 40u);
  EXPECT_EQ(std::vector<int32_t>(w.end() - 5, w.end()), cat({{kPre}, bytes_of("p"), {kSuf}, bytes_of("s"), {kMid}}));
  EXPECT_EQ(std::vector<int32_t>(w.end() - 14, w.end() - 5), cat({{kSep}, bytes_of("current\n")}));
  EXPECT_EQ(std::vector<int32_t>(w.begin(), w.end() - 14), cat({std::vector<int32_t>(25, 'e'), bytes_of("\n")}));
}

TEST(Infill, RefusesAModelWithoutFimTokensAndATooSmallBudget) {
  auto none = vocab({"<|im_start|>"});
  EXPECT_FALSE(none->tok->fim().usable());
  InfillInput in;
  in.prefix = "a";
  try {
    infill_tokens(*none->tok, in, 100);
    FAIL() << "no FIM tokens accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fill-in-the-middle"), std::string::npos) << e.what();
  }
  auto v = vocab(kQwenFim);
  in.prompt = "abcdef";
  EXPECT_THROW(infill_tokens(*v->tok, in, 8), Error);  // 3 FIM tokens + 6 of prompt
  EXPECT_NO_THROW(infill_tokens(*v->tok, in, 9));
}

}  // namespace
}  // namespace onellm
