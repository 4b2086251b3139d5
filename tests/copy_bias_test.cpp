// Copy-aware decoding of tool-call arguments (engine/copy_bias.h): the
// vocabulary lookups against a brute-force scan, the JSON lexer that finds
// argument values in Hermes and Llama 3 calls, the adjustment checked token
// by token against the rule written out independently, and generation with a
// random-weight model that ends up copying a span of the request.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "base/error.h"
#include "engine/copy_bias.h"
#include "engine/engine.h"
#include "engine/tool_calls.h"
#include "support/tiny_qwen.h"

namespace onellm {
namespace {

class CopyBiasTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tiny_ = new test::TinyQwen;
    vocab_ = new std::shared_ptr<const GrammarVocab>(GrammarVocab::of(*tiny_->tokenizer));
  }
  static void TearDownTestSuite() {
    delete vocab_;
    delete tiny_;
  }
  static const GrammarVocab& vocab() { return **vocab_; }

  static ArgumentCopyBias follower(const std::string& source, float bias = 12,
                                   std::vector<std::string> triggers = {"<tool_call>"}) {
    CopyBiasOptions o;
    o.bias = bias;
    o.source = source;
    o.triggers = std::move(triggers);
    return ArgumentCopyBias(o, *vocab_);
  }
  // Feeds `text` in pieces of 1, 2, 3, ... bytes, as tokens would come.
  static void feed(ArgumentCopyBias& c, const std::string& text) {
    for (size_t at = 0, n = 1; at < text.size(); at += n, n = n % 4 + 1) c.feed(std::string_view(text).substr(at, n));
  }

  static inline test::TinyQwen* tiny_;
  static inline std::shared_ptr<const GrammarVocab>* vocab_;
};

bool is_word_byte(char c) {
  return static_cast<unsigned char>(c) >= 0x80 || std::isalnum(static_cast<unsigned char>(c));
}

TEST_F(CopyBiasTest, VocabularyLookupsMatchABruteForceScan) {
  const std::vector<std::string> texts = {"traffic is terrible", " the", "\"}}", "{\"name\"", "caf\xc3\xa9 ok", "", "zzzz"};
  for (const std::string& text : texts) {
    std::vector<int32_t> want_prefixes, want_starting;
    for (int32_t id = 0; id < vocab().n_vocab(); ++id) {
      const std::string& p = vocab().piece(id);
      if (!p.empty() && text.compare(0, p.size(), p) == 0 && p.size() <= text.size()) want_prefixes.push_back(id);
      if (!p.empty() && p.compare(0, text.size(), text) == 0) want_starting.push_back(id);
    }
    std::vector<int32_t> got = vocab().prefix_pieces(text);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want_prefixes) << text;
    auto span = vocab().pieces_starting_with(text);
    std::vector<int32_t> got_starting(span.begin(), span.end());
    std::sort(got_starting.begin(), got_starting.end());
    EXPECT_EQ(got_starting, want_starting) << text;
  }
  EXPECT_FALSE(vocab().prefix_pieces("the").empty());  // the scan above compared something
}

TEST_F(CopyBiasTest, FindsArgumentValuesInHermesCalls) {
  ArgumentCopyBias c = follower("x");
  feed(c, "Sure, \"quoted\" text {\"not\": \"a call\"} <tool_call>{\"name\": \"send");
  EXPECT_FALSE(c.in_argument_value()) << "the tool's name is at the top level";
  feed(c, "\", \"arguments\": {\"");
  EXPECT_FALSE(c.in_argument_value()) << "a key";
  feed(c, "to\": \"Be");
  EXPECT_TRUE(c.in_argument_value());
  EXPECT_EQ(c.value(), "Be");
  feed(c, "n\", \"body\": \"say \\\"hi");
  EXPECT_TRUE(c.in_argument_value());
  EXPECT_EQ(c.value(), "say \\\"hi") << "an escaped quote does not end the value";
  feed(c, "\", \"tags\": [\"a\", \"b");
  EXPECT_TRUE(c.in_argument_value());
  EXPECT_EQ(c.value(), "b");
  feed(c, "\"], \"n\": 3, \"o\": {\"k\": \"v");
  EXPECT_TRUE(c.in_argument_value());
  feed(c, "\"}}}</tool_call> and then \"text");
  EXPECT_FALSE(c.in_argument_value()) << "after the call";
  feed(c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": \"again");
  EXPECT_TRUE(c.in_argument_value()) << "a second call";
  EXPECT_EQ(c.value(), "again");
}

TEST_F(CopyBiasTest, FollowsCallsThatEndAndStartInsideOnePiece) {
  // A tokenizer with long pieces, or a replayed reply, can hand over several
  // calls at once: the text after each trigger is lexed, and after each
  // call's end the watch looks for the next trigger.
  ArgumentCopyBias c = follower("x");
  c.feed("ok <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"one\"}}</tool_call>"
         "<tool_call>{\"name\": \"g\", \"arguments\": {\"b\": \"tw");
  EXPECT_TRUE(c.in_argument_value());
  EXPECT_EQ(c.value(), "tw");
  c.feed("o\"}}</tool_call> done <tool_");
  EXPECT_FALSE(c.in_argument_value());
  c.feed("call>{\"name\": \"h\", \"arguments\": {\"c\": \"3");
  EXPECT_TRUE(c.in_argument_value()) << "a trigger split across pieces after two calls";
  EXPECT_EQ(c.value(), "3");
}

TEST_F(CopyBiasTest, FindsArgumentValuesInLlama3CallsThatStartInsideTheTrigger) {
  ArgumentCopyBias c = follower("x", 12, tool_call_triggers(ToolCallStyle::kLlama3));
  feed(c, "{\"name\": \"f\", \"parameters\": {\"q\": \"ab");
  EXPECT_TRUE(c.in_argument_value());
  EXPECT_EQ(c.value(), "ab");
  ArgumentCopyBias hermes = follower("x");
  feed(hermes, "{\"name\": \"f\", \"arguments\": {\"q\": \"ab");
  EXPECT_FALSE(hermes.in_argument_value()) << "no trigger, no call";
}

// The rule of copy_bias.h written out for one span end: the amount each token
// gets when the value so far is a span of the source ending before `next`.
std::map<int32_t, float> expected_amounts(const GrammarVocab& v, const std::string& value, const std::string& next,
                                          float b) {
  std::map<int32_t, float> out;
  const bool in_word = !value.empty() && is_word_byte(value.back()) && !next.empty() && is_word_byte(next[0]);
  for (int32_t id = 0; id < v.n_vocab(); ++id) {
    const std::string& p = v.piece(id);
    if (p.empty()) {
      out[id] = -b / 3;
      continue;
    }
    float amount = -b / 3;
    if (p.size() <= next.size() && next.compare(0, p.size(), p) == 0) amount = in_word ? b : b / 4;
    const size_t quote = p.find('"');
    if (amount < 0 && quote != std::string::npos && quote <= next.size() && next.compare(0, quote, p, 0, quote) == 0)
      amount = 0;
    out[id] = amount;
  }
  return out;
}

void expect_amounts(const ArgumentCopyBias& c, const std::map<int32_t, float>& want, const std::string& what) {
  const CopyAdjustment adj = c.adjustment();
  std::map<int32_t, float> got;
  for (const auto& [id, amount] : want) got[id] = adj.others;
  for (const auto& [id, amount] : adj.tokens) got[id] = amount;
  int wrong = 0;
  for (const auto& [id, amount] : want)
    if (got[id] != amount && ++wrong <= 5) ADD_FAILURE() << what << ": token " << id << " gets " << got[id] << ", not " << amount;
  EXPECT_EQ(wrong, 0) << what;
}

TEST_F(CopyBiasTest, KeepsACopyToTheWordAndLetsItStopAtWordEnds) {
  const std::string source = "tell Ben that traffic is terrible";
  const std::string call = "<tool_call>{\"name\": \"send_message\", \"arguments\": {\"body\": \"";
  struct Case {
    const char* value;  // generated so far
    const char* next;   // where the source goes on after it
    const char* what;
  };
  const Case cases[] = {{"traffic is terri", "ble", "mid-word"},
                        {"traffic is", " terrible", "word end"},
                        {"terrible", "", "end of the source"},
                        // A suffix of 3+ bytes is enough once the value has left the source.
                        {"zz traffic", " is terrible", "suffix"}};
  for (const Case& k : cases) {
    ArgumentCopyBias c = follower(source);
    feed(c, call + k.value);
    expect_amounts(c, expected_amounts(vocab(), k.value, k.next, 12), k.what);
  }
}

// copy_arguments: the rule above, but every other token gets -kHeldToSpan
// and the string closes only where a word of the source ends.
std::map<int32_t, float> expected_held_amounts(const GrammarVocab& v, const std::string& value,
                                               const std::string& next, float b) {
  std::map<int32_t, float> out = expected_amounts(v, value, next, b);
  for (auto& [id, amount] : out) {
    const std::string& p = v.piece(id);
    const size_t quote = p.find('"');
    const bool closes = amount == 0 && quote != std::string::npos;
    const char before = quote == 0 ? value.back() : closes ? p[quote - 1] : 'x';
    bool word_end = before != ' ';
    if (word_end && quote < next.size()) {
      const char c = next[quote];
      if (is_word_byte(c)) word_end = !is_word_byte(before);
      else if (c != ' ' && c != '\'') word_end = quote + 1 >= next.size() || !is_word_byte(next[quote + 1]);
    }
    if (amount < 0 || (closes && !word_end)) amount = -CopyBiasOptions::kHeldToSpan;
  }
  return out;
}

TEST_F(CopyBiasTest, CopyArgumentsAreHeldToASpanOfTheSource) {
  const std::string source = "tell Ben that traffic is terrible";
  auto held = [&](const std::string& text, const std::string& from = "") {
    CopyBiasOptions o;
    o.bias = 12;
    o.source = from.empty() ? source : from;
    o.triggers = {"<tool_call>"};
    o.copy_arguments = {"send_message.body", "call.contact"};
    ArgumentCopyBias c(o, *vocab_);
    feed(c, text);
    return c;
  };
  const std::string call = "<tool_call>{\"name\": \"send_message\", \"arguments\": {";
  expect_amounts(held(call + "\"body\": \"traffic is terri"),
                 expected_held_amounts(vocab(), "traffic is terri", "ble", 12), "mid-word: no closing");
  expect_amounts(held(call + "\"body\": \"traffic is"), expected_held_amounts(vocab(), "traffic is", " terrible", 12),
                 "word end: may close");
  expect_amounts(held(call + "\"body\": \"traffic is "), expected_held_amounts(vocab(), "traffic is ", "terrible", 12),
                 "not after a space");
  const std::string mail = "text Rosa's friend at hiro@studio.jp: done.";
  expect_amounts(held(call + "\"body\": \"Rosa", mail), expected_held_amounts(vocab(), "Rosa", "'s friend at hiro@studio.jp: done.", 12),
                 "before a possessive");
  expect_amounts(held(call + "\"body\": \"hiro@studio", mail), expected_held_amounts(vocab(), "hiro@studio", ".jp: done.", 12),
                 "not inside an address");
  expect_amounts(held(call + "\"body\": \"done", mail), expected_held_amounts(vocab(), "done", ".", 12),
                 "before the last full stop");
  // The first token: where a word of the source starts, nothing else.
  const CopyAdjustment start = held(call + "\"to\": \"Ben\", \"body\": \"").adjustment();
  EXPECT_EQ(start.others, -CopyBiasOptions::kHeldToSpan);
  std::set<int32_t> want, got;
  for (size_t at = 0; at != std::string::npos; at = source.find(' ', at), at += at != std::string::npos)
    for (int32_t id : vocab().prefix_pieces(source.substr(at))) want.insert(id);
  for (const auto& [id, amount] : start.tokens) got.insert(id);
  EXPECT_EQ(got, want);
  // Not held: another argument, the same name under another tool, a nested value.
  expect_amounts(held(call + "\"to\": \"traffic is terri"), expected_amounts(vocab(), "traffic is terri", "ble", 12),
                 "send_message.to");
  expect_amounts(held("<tool_call>{\"name\": \"note\", \"arguments\": {\"body\": \"traffic is terri"),
                 expected_amounts(vocab(), "traffic is terri", "ble", 12), "note.body");
  expect_amounts(held(call + "\"body\": {\"x\": \"traffic is terri"),
                 expected_amounts(vocab(), "traffic is terri", "ble", 12), "nested");
  // A value that has left the source is no longer held (nothing to hold it to).
  EXPECT_TRUE(held(call + "\"body\": \"qqq").adjustment().empty());
  EXPECT_THROW(checked_copy_arguments({"send_message"}, "--copy-arguments"), Error);
  EXPECT_THROW(checked_copy_arguments({".to"}, "--copy-arguments"), Error);
  EXPECT_NO_THROW(checked_copy_arguments({"send_message.to"}, "--copy-arguments"));
}

TEST_F(CopyBiasTest, AWholeValueContinuesWhereAWordStarts) {
  ArgumentCopyBias c = follower("web search population of canada");
  feed(c, "<tool_call>{\"name\": \"web_search\", \"arguments\": {\"query\": \"p");
  // "p" starts "population" and is also its third letter: only the word start counts.
  expect_amounts(c, expected_amounts(vocab(), "p", "opulation of canada", 12), "word start");
}

TEST_F(CopyBiasTest, NothingChangesOutsideACopy) {
  const std::string call = "<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": \"";
  ArgumentCopyBias not_a_span = follower("turn the lights off");
  feed(not_a_span, call + "qq");
  EXPECT_TRUE(not_a_span.in_argument_value());
  EXPECT_TRUE(not_a_span.adjustment().empty()) << "a value that is no span of the source";
  ArgumentCopyBias off = follower("turn the lights off", 0);
  feed(off, call + "tur");
  EXPECT_TRUE(off.adjustment().empty()) << "bias 0";
  ArgumentCopyBias outside = follower("turn the lights off");
  feed(outside, "turn the lig");
  EXPECT_TRUE(outside.adjustment().empty()) << "outside a call";
}

TEST_F(CopyBiasTest, AValueStartsPreferablyAtAWordOfTheSource) {
  ArgumentCopyBias c = follower("turn the lights off");
  feed(c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": \"");
  const CopyAdjustment adj = c.adjustment();
  EXPECT_EQ(adj.others, 0);
  std::set<int32_t> want;
  for (const char* word : {"turn the lights off", "the lights off", "lights off", "off"})
    for (int32_t id : vocab().prefix_pieces(word)) want.insert(id);
  std::set<int32_t> got;
  for (const auto& [id, amount] : adj.tokens) {
    got.insert(id);
    EXPECT_EQ(amount, 3.0f);
  }
  EXPECT_EQ(got, want);
}

TEST_F(CopyBiasTest, ApplyAddsTheAdjustmentToEveryLogit) {
  ArgumentCopyBias c = follower("tell Ben that traffic is terrible");
  feed(c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"body\": \"traffic is terri");
  const CopyAdjustment adj = c.adjustment();
  ASSERT_FALSE(adj.tokens.empty());
  std::vector<float> logits(size_t(vocab().n_vocab()), 1.0f);
  c.apply(logits.data(), logits.size());
  std::vector<float> want(logits.size(), 1.0f + adj.others);
  for (const auto& [id, amount] : adj.tokens) want[size_t(id)] = 1.0f + amount;
  EXPECT_EQ(logits, want);
}

TEST_F(CopyBiasTest, ASourceBeyondTheLimitIsCutNotScannedWhole) {
  std::string source(CopyBiasOptions::kMaxSource, 'a');
  source += " needle";
  ArgumentCopyBias c = follower(source);
  feed(c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": \"need");
  EXPECT_TRUE(c.adjustment().empty()) << "text past the limit is not searched";
}

TEST_F(CopyBiasTest, CopySourceIsTheLastRequestAndTheToolResultsAfterIt) {
  std::vector<ChatMessage> m = {{"system", "tools...", {}}, {"user", "old request", {}},
                                {"assistant", "ok", {}},     {"user", "call Ben", {}},
                                {"assistant", "", {}},       {"tool", "{\"phone\": \"555 1234\"}", {}}};
  EXPECT_EQ(tool_call_copy_source(m), "call Ben\n{\"phone\": \"555 1234\"}");
  EXPECT_EQ(tool_call_copy_source({{"system", "s", {}}}), "");
}

// Generation end to end with random weights: a grammar makes the model write a
// call with one free string argument; the bias makes that string a span of
// the request that starts at a word, which random weights alone do not do.
TEST_F(CopyBiasTest, GenerationCopiesASpanOfTheRequest) {
  const std::string source = "please remember the purple elephant";
  const std::string prefix = "<tool_call>{\"name\": \"note\", \"arguments\": {\"text\": \"";
  ThreadPool pool(1);
  auto run = [&](float bias, uint64_t seed) {
    Sequence seq(*tiny_->model, *tiny_->tokenizer, &pool);
    GenerationRequest r;
    r.prompt = tiny_->tokenizer->encode(source, true, true);
    r.max_tokens = 80;
    r.sampling.temperature = 1.0f;
    r.sampling.seed = seed;
    r.grammar = Grammar::parse(
        R"(root ::= "<tool_call>{\"name\": \"note\", \"arguments\": {\"text\": \"" [a-z ]{1,40} "\"}}</tool_call>")");
    r.copy.bias = bias;
    r.copy.source = source;
    r.copy.triggers = {"<tool_call>"};
    GenerationResult out = seq.generate(r);
    EXPECT_EQ(out.text.compare(0, prefix.size(), prefix), 0) << out.text;
    const size_t end = out.text.find('"', prefix.size());
    return out.text.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
  };
  int spans_without = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const std::string value = run(100, seed);
    const size_t at = source.find(value);
    EXPECT_FALSE(value.empty());
    EXPECT_NE(at, std::string::npos) << "'" << value << "' is no span of the request";
    if (at != std::string::npos) {
      EXPECT_TRUE(at == 0 || source[at - 1] == ' ') << value;
    }
    const std::string free = run(0, seed);
    spans_without += !free.empty() && source.find(free) != std::string::npos;
  }
  EXPECT_LT(spans_without, 5) << "random weights copy by themselves: the test shows nothing";
}

}  // namespace
}  // namespace onellm
