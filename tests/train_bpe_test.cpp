// The byte-level BPE trainer: merges equal a naive reference trainer written
// here (recount every pair after every merge), vocabularies load in the
// runtime Tokenizer and round-trip held-out text, training is deterministic,
// special tokens keep their ids and kinds, and the chat template renders
// tools and calls as written out by hand below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>

#include "base/error.h"
#include "support/test_paths.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"
#include "train/train.h"

namespace onellm {
namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string device_text(bool heldout, int64_t n, uint64_t seed = 5) {
  DeviceCorpusOptions o;
  o.seed = seed;
  ChatTemplate tpl(onellm_chat_template());
  std::string text;
  for (const DeviceExample& ex : make_device_examples(o, heldout, n)) {
    ChatTemplateOptions t;
    t.add_generation_prompt = false;
    t.tools = ex.tools;
    text += tpl.render(ex.messages, t) + "<|endoftext|>";
  }
  return text;
}

std::unique_ptr<Tokenizer> load(const BpeVocabulary& v, const test::TempDir& dir, std::unique_ptr<GgufFile>& file) {
  write_tokenizer_gguf(bpe_tokenizer_metadata(v, onellm_chat_template()), dir.file("tok.gguf"));
  file = GgufFile::open(dir.file("tok.gguf"));
  return Tokenizer::from_gguf(*file);
}

// Naive BPE: words as lists of token texts; every round recounts all pairs
// and merges the most frequent (ties: smaller merged text, then smaller ids).
std::vector<std::string> naive_merges(const std::string& text, const std::string& pre_name, size_t n_tokens,
                                      int64_t min_count) {
  PreTokenizer pre(pre_name);
  std::map<std::string, int64_t> word_counts;
  for (const std::string& w : pre.split(text)) ++word_counts[w];
  std::vector<std::string> tokens;
  std::map<std::string, int> ids;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    ids[tokens.back()] = b;
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, c] : word_counts) {
    std::vector<std::string> syms;
    for (unsigned char ch : w) syms.push_back(byte_to_unicode(ch));
    words.emplace_back(syms, c);
  }
  std::vector<std::string> merges;
  while (tokens.size() < n_tokens) {
    std::map<std::pair<int, int>, int64_t> counts;
    for (const auto& [syms, c] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) counts[{ids[syms[i]], ids[syms[i + 1]]}] += c;
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second != best->second) {
        if (it->second > best->second) best = it;
        continue;
      }
      std::string a = tokens[it->first.first] + tokens[it->first.second];
      std::string b = tokens[best->first.first] + tokens[best->first.second];
      if (a < b || (a == b && it->first < best->first)) best = it;
    }
    if (best->second < min_count) break;
    const std::string l = tokens[best->first.first], r = tokens[best->first.second];
    merges.push_back(l + " " + r);
    if (!ids.count(l + r)) {
      ids[l + r] = static_cast<int>(tokens.size());
      tokens.push_back(l + r);
    }
    for (auto& [syms, c] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == l && syms[i + 1] == r) {
          out.push_back(l + r);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms = out;
    }
  }
  return merges;
}

TEST(BpeTrainer, MergesEqualNaiveReference) {
  const std::string text = device_text(false, 150) + " héllo wörld ünïcode naïve café 東京 🙂🙂 ";
  BpeTrainOptions o;
  o.vocab_size = 700;
  o.control_tokens = {"<|endoftext|>"};
  o.user_tokens = {};
  // Specials are cut out of the text before counting; do the same here.
  std::string plain;
  for (size_t at = 0, next; at < text.size(); at = next + 13) {
    next = text.find("<|endoftext|>", at);
    if (next == std::string::npos) next = text.size();
    plain += text.substr(at, next - at);
    if (next == text.size()) break;
  }
  BpeVocabulary v = train_bpe(plain, o);
  std::vector<std::string> want = naive_merges(plain, "qwen2", 699, o.min_pair_count);
  ASSERT_GT(want.size(), 300u);
  EXPECT_EQ(v.merges, want);
  EXPECT_EQ(v.tokens.size(), 700u);
}

TEST(BpeTrainer, VocabularyIsSaneAndRoundTripsHeldOutText) {
  BpeTrainOptions o;
  o.vocab_size = 1024;
  BpeVocabulary v = train_bpe(device_text(false, 2000), o);
  ASSERT_EQ(v.tokens.size(), 1024u);
  // Bytes first, each merge joins two earlier tokens into one that exists.
  std::map<std::string, size_t> ids;
  for (size_t i = 0; i < v.tokens.size(); ++i) ids.emplace(v.tokens[i], i);
  EXPECT_EQ(ids.size(), v.tokens.size()) << "token texts are unique";
  std::set<std::string> seen;
  for (const std::string& m : v.merges) {
    EXPECT_TRUE(seen.insert(m).second) << "duplicate merge " << m;
    size_t sp = m.find(' ');
    ASSERT_NE(sp, std::string::npos);
    std::string l = m.substr(0, sp), r = m.substr(sp + 1);
    ASSERT_TRUE(ids.count(l) && ids.count(r) && ids.count(l + r)) << m;
    EXPECT_LT(ids[l], ids[l + r]);
    EXPECT_LT(ids[r], ids[l + r]);
    EXPECT_EQ(l.find(' '), std::string::npos);
  }
  test::TempDir dir;
  std::unique_ptr<GgufFile> file;
  auto tok = load(v, dir, file);
  ASSERT_EQ(tok->n_vocab(), 1024);
  EXPECT_EQ(tok->token_text(tok->eos_id()), "<|endoftext|>");
  EXPECT_FALSE(tok->add_bos());

  const std::string heldout = device_text(true, 300);
  std::vector<int32_t> ids_out = tok->encode(heldout, false, true);
  EXPECT_EQ(tok->decode(ids_out, false, true), heldout);
  EXPECT_GT(static_cast<double>(heldout.size()) / ids_out.size(), 3.0) << "merges learned from the corpus compress it";
  // Text the corpus never had falls back to bytes and still round-trips.
  const std::string odd = "Ünïcödé 東京 🙂 \t tabs\r\n  spaces   and 12345 digits {\"x\": [1,2]}";
  EXPECT_EQ(tok->decode(tok->encode(odd, false, false)), odd);
  // Specials are single tokens; tool-call markers are visible text.
  for (const char* s : {"<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<|endoftext|>"}) {
    std::vector<int32_t> one = tok->encode(s, false, true);
    ASSERT_EQ(one.size(), 1u) << s;
    EXPECT_EQ(tok->token_text(one[0]), s);
  }
  auto call = tok->encode("<tool_call>{}</tool_call><|im_end|>", false, true);
  EXPECT_EQ(tok->decode(call, true), "<tool_call>{}</tool_call>");
  EXPECT_TRUE(tok->is_eog(*tok->find_token("<|im_end|>")));
}

TEST(BpeTrainer, Deterministic) {
  const std::string text = device_text(false, 500);
  BpeTrainOptions o;
  o.vocab_size = 800;
  BpeVocabulary a = train_bpe(text, o), b = train_bpe(text, o);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  test::TempDir dir;
  write_tokenizer_gguf(bpe_tokenizer_metadata(a, onellm_chat_template()), dir.file("a.gguf"));
  write_tokenizer_gguf(bpe_tokenizer_metadata(b, onellm_chat_template()), dir.file("b.gguf"));
  EXPECT_EQ(file_bytes(dir.file("a.gguf")), file_bytes(dir.file("b.gguf")));
}

TEST(BpeTrainer, RefusesTooSmallVocabularyAndStopsOnRarePairs) {
  BpeTrainOptions o;
  o.vocab_size = 100;
  EXPECT_THROW(train_bpe("abc", o), Error);
  o.vocab_size = 5000;
  BpeVocabulary v = train_bpe("ab ab ab cd", o);  // only pairs seen twice merge
  // Words "ab", " ab" x2, " cd": a+b (3 times), then Ġ+ab (twice); the rest occur once.
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "Ġ ab"}));
  EXPECT_EQ(v.tokens.size(), 256u + 2 + 5);
}

// How many of the held-out argument values that follow a space in their
// request are not spelled there by the tokens the value has on its own (as
// after the quote that opens it in a call), and how many were checked.
std::pair<int, int> values_spelled_differently(const Tokenizer& tok) {
  DeviceCorpusOptions o;
  o.seed = 3;
  int differ = 0, checked = 0;
  for (const DeviceExample& ex : make_device_examples(o, true, 400)) {
    const std::string& request = ex.messages[ex.messages[0].role == "system" ? 1 : 0].content;
    const std::vector<int32_t> in_request = tok.encode(request, false, false);
    for (const std::string& v : ex.values) {
      // Only values that end a word: "late reply.?" splits differently for
      // reasons that are not about the space.
      const size_t at = request.find(" " + v);
      if (v.empty() || at == std::string::npos || !std::isalnum(static_cast<unsigned char>(v.back()))) continue;
      const size_t end = at + 1 + v.size();
      if (end < request.size() && std::isalnum(static_cast<unsigned char>(request[end]))) continue;
      const std::vector<int32_t> alone = tok.encode(v, false, false);
      ++checked;
      differ += std::search(in_request.begin(), in_request.end(), alone.begin(), alone.end()) == in_request.end();
    }
  }
  return {differ, checked};
}

TEST(BpeTrainer, SpaceApartGivesAWordTheSameTokensAfterASpaceAsAlone) {
  const std::string text = device_text(false, 2000);
  BpeTrainOptions o;
  o.vocab_size = 1024;
  o.space_apart = true;
  BpeVocabulary apart = train_bpe(text, o);
  for (const std::string& t : apart.tokens) {
    const bool space_then_letter = t.rfind("Ġ", 0) == 0 && t.size() > 2 && std::isalpha(static_cast<unsigned char>(t[2]));
    EXPECT_FALSE(space_then_letter) << t;
  }
  test::TempDir dir;
  std::unique_ptr<GgufFile> file;
  auto tok = load(apart, dir, file);
  const std::string heldout = device_text(true, 300);
  EXPECT_EQ(tok->decode(tok->encode(heldout, false, true), false, true), heldout);
  auto [differ, checked] = values_spelled_differently(*tok);
  EXPECT_GT(checked, 200);
  EXPECT_EQ(differ, 0) << "of " << checked << " values";

  // The usual vocabulary spells most values' first word differently.
  o.space_apart = false;
  BpeVocabulary joined = train_bpe(text, o);
  test::TempDir dir2;
  std::unique_ptr<GgufFile> file2;
  auto [joined_differ, joined_checked] = values_spelled_differently(*load(joined, dir2, file2));
  EXPECT_GT(joined_differ, joined_checked / 2) << joined_differ << " of " << joined_checked;
}

TEST(OnellmChatTemplate, RendersToolsCallsAndResults) {
  ChatTemplate tpl(onellm_chat_template());
  ChatJson tools = ChatJson::parse(R"([{"type": "function", "function": {"name": "set_timer",
      "parameters": {"type": "object", "properties": {"duration": {"type": "string"}, "label": {"type": "string"}},
      "required": ["duration"]}}}])");
  ChatJson calls = ChatJson::parse(
      R"([{"type": "function", "function": {"name": "set_timer", "arguments": {"duration": "5 minutes"}}}])");
  std::vector<ChatMessage> m = {{"system", "Be brief."},
                                {"user", "timer 5 min"},
                                {"assistant", "", ChatJson{{"tool_calls", calls}}},
                                {"tool", "ok"},
                                {"assistant", "Started."}};
  ChatTemplateOptions o;
  o.tools = tools;
  o.add_generation_prompt = false;
  EXPECT_EQ(tpl.render(m, o),
            "<|im_start|>system\nBe brief.\nTools:\n- set_timer(duration, label?)\n"
            "Call tools as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call><|im_end|>\n"
            "<|im_start|>user\ntimer 5 min<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>{\"name\": \"set_timer\", \"arguments\": {\"duration\": \"5 minutes\"}}"
            "</tool_call><|im_end|>\n"
            "<|im_start|>tool\nok<|im_end|>\n<|im_start|>assistant\nStarted.<|im_end|>\n");
  ChatTemplateOptions plain;
  EXPECT_EQ(tpl.render({{"user", "hi"}}, plain), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace onellm
