// Tokenizer behaviours on tiny vocabularies built in the test, with every
// expected id worked out by hand from the vocabulary (byte tokens sit at known
// ids): special-token splitting, Phi-3's space stripping, end-of-generation
// detection, clean-up of spaces, streaming, bad metadata, threads.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "base/error.h"
#include "gguf/gguf.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace onellm {
namespace {

struct Built {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
};

std::unique_ptr<Built> build(GgufWriter& w) {
  auto b = std::make_unique<Built>();
  b->bytes = w.to_bytes();
  b->file = GgufFile::parse(b->bytes.data(), b->bytes.size(), "tiny-vocab.gguf");
  b->tok = Tokenizer::from_gguf(*b->file);
  return b;
}

// Byte-level BPE: ids 0..255 are the bytes in order, then `extra` tokens.
std::unique_ptr<Built> tiny_bpe(const std::string& pre, const std::vector<std::pair<std::string, int32_t>>& extra,
                                const std::vector<std::string>& merges = {}) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    types.push_back(1);
  }
  for (const auto& [text, type] : extra) {
    tokens.push_back(text);
    types.push_back(type);
  }
  GgufWriter w;
  w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::of_string(pre));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::of_i32s(types));
  w.set("tokenizer.ggml.merges", GgufValue::of_strings(merges));
  return build(w);
}

// SentencePiece: <unk> <s> </s> <|end|>, then <0x00>..<0xFF> at ids 4..259,
// then "▁hi" (260) and "hi" (261); "hi" scores lower, so it merges first.
std::unique_ptr<Built> tiny_spm(const std::string& model_name) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|end|>"};
  std::vector<int32_t> types = {2, 3, 3, 3};
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    types.push_back(6);
  }
  tokens.push_back("\xE2\x96\x81hi");
  tokens.push_back("hi");
  types.push_back(1);
  types.push_back(1);
  std::vector<float> scores(tokens.size(), 0.0f);
  scores[260] = -1;
  scores[261] = -2;
  GgufWriter w;
  w.set("general.name", GgufValue::of_string(model_name));
  w.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(tokens));
  w.set("tokenizer.ggml.scores", GgufValue::of_f32s(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::of_i32s(types));
  return build(w);
}

// An independent check: is s well-formed UTF-8 (no overlongs, surrogates)?
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

TEST(TokenizerSpecial, LongestFirstAndUserDefinedAlways) {
  // 256 = "<|a|>" control, 257 = "<|a" user-defined.
  auto v = tiny_bpe("gpt-2", {{"<|a|>", 3}, {"<|a", 4}});
  const Tokenizer& t = *v->tok;
  EXPECT_EQ(t.encode("<|a|>", false, true), (std::vector<int32_t>{256}));
  EXPECT_EQ(t.encode("x<|a|>y", false, true), (std::vector<int32_t>{'x', 256, 'y'}));
  // Without parse_special only the user-defined token is split out.
  EXPECT_EQ(t.encode("<|a|>", false, false), (std::vector<int32_t>{257, '|', '>'}));
  EXPECT_EQ(t.token_to_piece(256, false), "");
  EXPECT_EQ(t.token_to_piece(256, true), "<|a|>");
  EXPECT_EQ(t.token_to_piece(257, false), "<|a");
  EXPECT_EQ(t.decode({'x', 256, 'y'}, false, false), "xy");
  EXPECT_EQ(t.decode({'x', 256, 'y'}, false, true), "x<|a|>y");
}

TEST(TokenizerSpecial, RepeatedTokensAndMergesResolveAsLlamaCpp) {
  // "ab" is both 256 and 257: its text means the last id. "a b" is merge 0
  // and merge 4: it keeps rank 0, so "abc" merges a+b before b+c (rank 1).
  auto v = tiny_bpe("gpt-2", {{"ab", 1}, {"ab", 1}, {"bc", 1}, {"abc", 1}}, {"a b", "b c", "ab c", "x y", "a b"});
  EXPECT_EQ(v->tok->encode("ab", false, false), (std::vector<int32_t>{257}));
  EXPECT_EQ(v->tok->encode("abc", false, false), (std::vector<int32_t>{259}));
  EXPECT_EQ(v->tok->encode("bc", false, false), (std::vector<int32_t>{258}));
  EXPECT_EQ(v->tok->find_token("ab"), 257);
  EXPECT_EQ(v->tok->token_text(256), "ab");
  EXPECT_FALSE(v->tok->find_token("abcd").has_value());
}

TEST(TokenizerSpecial, Phi3SpecialTokensEatFollowingSpaces) {
  // ▁ is not a token, so each stray space falls back to bytes E2 96 81 = ids 230 154 133.
  const std::vector<int32_t> space = {4 + 0xE2, 4 + 0x96, 4 + 0x81};
  auto plain = tiny_spm("tiny-llama");
  std::vector<int32_t> expect = {3};
  for (int i = 0; i < 3; ++i) expect.insert(expect.end(), space.begin(), space.end());
  expect.push_back(260);
  EXPECT_EQ(plain->tok->encode("<|end|>   hi", false, true), expect);
  auto phi = tiny_spm("Phi-3-mini-4k-instruct");
  EXPECT_EQ(phi->tok->encode("<|end|>   hi", false, true), (std::vector<int32_t>{3, 260}));
  EXPECT_EQ(phi->tok->encode("hi", true, false), (std::vector<int32_t>{1, 260}));  // BOS by default, space prefix
  // The first piece loses one leading space, even when it is the (empty) BOS.
  EXPECT_EQ(phi->tok->decode({1, 260}, false, false), " hi");
  EXPECT_EQ(phi->tok->decode({260, 260}, false, false), "hi hi");
}

TEST(TokenizerSpecial, EndOfGenerationByTextBecomesControl) {
  // 256 "<|im_end|>" and 257 "<|endoftext|>" typed as normal text in the file.
  auto v = tiny_bpe("qwen2", {{"<|im_end|>", 1}, {"<|endoftext|>", 1}, {"<|im_start|>", 3}});
  const Tokenizer& t = *v->tok;
  EXPECT_TRUE(t.is_eog(256));
  EXPECT_TRUE(t.is_eog(257));
  EXPECT_FALSE(t.is_eog(258));
  EXPECT_FALSE(t.is_eog('a'));
  EXPECT_TRUE(t.is_control(256));
  EXPECT_EQ(t.token_to_piece(256, false), "");
  EXPECT_EQ(t.encode("<|im_start|>hi<|im_end|>", false, true), (std::vector<int32_t>{258, 'h', 'i', 256}));
  EXPECT_FALSE(t.add_bos());  // byte-level BPE: no BOS unless the key says so
}

TEST(TokenizerSpecial, CleanUpSpacesOnlyWhereThePreTokenizerWantsIt) {
  auto gpt2 = tiny_bpe("gpt-2", {});
  auto qwen = tiny_bpe("qwen2", {});
  auto ids = [](const std::string& s) { return std::vector<int32_t>(s.begin(), s.end()); };
  EXPECT_EQ(gpt2->tok->decode(ids("a , b . c ! d ?")), "a, b. c! d?");
  EXPECT_EQ(gpt2->tok->decode(ids("it 's we 're they 've I 'm")), "it's we're they've I'm");
  EXPECT_EQ(gpt2->tok->decode(ids("don 't we 'll")), "don 't we 'll");
  EXPECT_EQ(gpt2->tok->decode(ids("a ' b")), "a'b");
  EXPECT_EQ(qwen->tok->decode(ids("a , b 's")), "a , b 's");
}

TEST(TokenizerSpecial, InvalidUtf8IsReadAsLlamaCppReadsIt) {
  auto v = tiny_bpe("qwen2", {});
  // Each bad byte becomes U+FFFD (EF BF BD) before byte-level encoding.
  EXPECT_EQ(v->tok->encode("a\xFF", false, false), (std::vector<int32_t>{'a', 0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(v->tok->decode(v->tok->encode("x\xC3", false, false)), "x\xEF\xBF\xBD");
  EXPECT_EQ(v->tok->decode(v->tok->encode("ok \xE2\x82\xAC", false, false)), "ok \xE2\x82\xAC");
}

TEST(TokenizerSpecial, StreamingNeverYieldsInvalidUtf8) {
  auto v = tiny_spm("x");
  StreamingDecoder dec(*v->tok);
  auto byte = [](int b) { return 4 + b; };
  std::string all;
  for (int b : {0xF0, 0x9F, 0x98}) {
    EXPECT_EQ(dec.push(byte(b)), "");  // first three bytes of U+1F600
  }
  EXPECT_EQ(dec.push(byte(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.push(byte(0xFF)), "\xEF\xBF\xBD");  // can never start a character
  EXPECT_EQ(dec.push(260), " hi");
  EXPECT_EQ(dec.push(byte(0xE2)), "");
  EXPECT_EQ(dec.push(byte('a')), "\xEF\xBF\xBD" "a");  // the unfinished E2 is cut short
  EXPECT_EQ(dec.push(byte(0xC3)), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.flush(), "");
  // Every split of a mixed text into byte tokens streams as valid UTF-8.
  const std::string text = "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80z";
  for (size_t cut = 0; cut < text.size(); ++cut) {
    StreamingDecoder d(*v->tok);
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      std::string piece = d.push(byte(static_cast<unsigned char>(text[i])));
      EXPECT_TRUE(valid_utf8(piece));
      out += piece;
    }
    out += d.flush();
    EXPECT_EQ(out, text);
  }
}

TEST(TokenizerSpecial, BadMetadataNamesTheKey) {
  auto error_of = [](const std::function<void(GgufWriter&)>& edit) -> std::string {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::of_strings({"<unk>", "<s>", "</s>", "a"}));
    w.set("tokenizer.ggml.scores", GgufValue::of_f32s({0, 0, 0, -1}));
    w.set("tokenizer.ggml.token_type", GgufValue::of_i32s({2, 3, 3, 1}));
    edit(w);
    try {
      std::vector<uint8_t> bytes = w.to_bytes();
      auto f = GgufFile::parse(bytes.data(), bytes.size(), "vocab.gguf");
      Tokenizer::from_gguf(*f);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto names = [&](const std::function<void(GgufWriter&)>& edit, const std::string& what) {
    const std::string msg = error_of(edit);
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  };
  EXPECT_EQ(error_of([](GgufWriter&) {}), "(no error)");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.tokens", GgufValue::of_f32s({1, 2, 3, 4})); }, "tokenizer.ggml.tokens");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.tokens", GgufValue::of_strings({})); }, "tokenizer.ggml.tokens");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.token_type", GgufValue::of_i32s({1})); }, "token_type");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.eos_token_id", GgufValue::of_u32(4)); }, "eos_token_id");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.eot_token_id", GgufValue::of_i32(1000)); }, "eot_token_id");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.model", GgufValue::of_string("bert")); }, "bert");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2")); }, "tokenizer.ggml.merges");
  names([](GgufWriter& w) { w.set("tokenizer.ggml.model", GgufValue::of_u32(1)); }, "tokenizer.ggml.model");
  // The converters' "none" marker keeps the default id instead of failing.
  EXPECT_EQ(error_of([](GgufWriter& w) { w.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(0xFFFFFFFF)); }),
            "(no error)");

  GgufWriter missing;
  missing.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
  std::vector<uint8_t> bytes = missing.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "vocab.gguf");
  try {
    Tokenizer::from_gguf(*f);
    ADD_FAILURE() << "no error for a file without tokens";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.tokens"), std::string::npos) << e.what();
  }
  auto v = tiny_spm("x");
  EXPECT_THROW(v->tok->token_to_piece(262), Error);
  EXPECT_THROW(v->tok->decode({-1}), Error);
}

TEST(TokenizerSpecial, RoundTripAndThreads) {
  ONELLM_REQUIRE_SHARED();
  auto file = GgufFile::open(test::shared_dir() + "/models/tiny-qwen2-F32.gguf");
  auto tok = Tokenizer::from_gguf(*file);  // qwen2: no space clean-up, so decoding restores every valid text
  const char* parts[] = {"Hello", " world", "  ", "\n", "\t", "123456", "'s", "é", "中文", "😀", "\xC2\xA0", "!!", "<", "|"};
  std::vector<std::string> texts;
  uint32_t seed = 12345;
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int k = 0; k < 12; ++k) {
      seed = seed * 1103515245u + 12345u;
      s += parts[(seed >> 16) % (sizeof parts / sizeof parts[0])];
    }
    texts.push_back(s);
  }
  std::vector<std::vector<int32_t>> expect;
  for (const std::string& s : texts) {
    expect.push_back(tok->encode(s, false, false));
    EXPECT_EQ(tok->decode(expect.back()), s);
  }
  // One tokenizer shared by several threads gives the same answers.
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (size_t i = 0; i < texts.size(); ++i)
        if (tok->encode(texts[i], false, false) != expect[i]) ++mismatches[static_cast<size_t>(th)];
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(TokenizerSpecial, LongSentencePiecePrompt) {
  ONELLM_REQUIRE_SHARED();
  auto file = GgufFile::open(test::shared_dir() + "/models/vocab/ggml-vocab-llama-spm.gguf");
  auto tok = Tokenizer::from_gguf(*file);
  std::string text;
  while (text.size() < (4u << 20)) text += "The quick brown fox jumps over the lazy dog, 12345 times. ";
  auto ids = tok->encode(text, true, false);
  EXPECT_GT(ids.size(), 500000u);
  // Dropping BOS keeps the space prefix of the first word (as llama.cpp).
  EXPECT_EQ(tok->decode(ids, true, false), " " + text);
  ids.erase(ids.begin());
  EXPECT_EQ(tok->decode(ids), text);
}

}  // namespace
}  // namespace onellm
