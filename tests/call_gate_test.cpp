// The confidence gate on starting a tool call (engine/call_gate.h): which
// tokens count as starting a call, the probability rule on hand-made logits,
// and generation with a random-weight model that never starts a call when
// gated but does without the gate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "base/error.h"
#include "engine/call_gate.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "support/tiny_qwen.h"

namespace onellm {
namespace {

class CallGateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tiny_ = new test::TinyQwen; }
  static void TearDownTestSuite() { delete tiny_; }
  static const Tokenizer& tok() { return *tiny_->tokenizer; }
  static CallGate gate(float p, std::vector<std::string> triggers = {"<tool_call>"}) {
    return CallGate(CallGateOptions{p, std::move(triggers)}, tok());
  }
  static inline test::TinyQwen* tiny_;
};

TEST_F(CallGateTest, CallStartsAreThePiecesThatCanBeginATrigger) {
  const CallGate g = gate(0.5f, {"<tool_call>", "{\"name\""});
  ASSERT_TRUE(g.enabled());
  std::set<int32_t> starts(g.call_starts().begin(), g.call_starts().end());
  int lt = -1, brace = -1;
  for (int32_t id = 0; id < tok().n_vocab(); ++id) {
    const std::string piece = tok().token_to_piece(id, true);
    if (piece == "<") lt = id;
    if (piece == "{") brace = id;
    // A piece counts when it could be the first token of a trigger.
    const bool begins = !tok().is_eog(id) && !piece.empty() &&
                        (std::string("<tool_call>").rfind(piece, 0) == 0 || std::string("{\"name\"").rfind(piece, 0) == 0 ||
                         piece.rfind("<tool_call>", 0) == 0 || piece.rfind("{\"name\"", 0) == 0);
    EXPECT_EQ(starts.count(id) > 0, begins) << "'" << piece << "'";
  }
  ASSERT_GE(lt, 0);
  ASSERT_GE(brace, 0);
  EXPECT_TRUE(starts.count(lt) && starts.count(brace));
  EXPECT_FALSE(gate(0.0f).enabled()) << "0 is off";
}

TEST_F(CallGateTest, TheVocabularyIsScannedOncePerTokenizerAndTriggers) {
  // A daemon builds a gate per request; the scan of every token's bytes is shared.
  const CallGate a = gate(0.5f), b = gate(0.7f);
  EXPECT_EQ(&a.call_starts(), &b.call_starts());
  const CallGate other = gate(0.5f, {"{\"name\""});
  EXPECT_NE(&a.call_starts(), &other.call_starts());
  EXPECT_NE(a.call_starts(), other.call_starts());
  test::TinyQwen second;  // same vocabulary, another tokenizer instance
  const CallGate c(CallGateOptions{0.5f, {"<tool_call>"}}, *second.tokenizer);
  EXPECT_NE(&a.call_starts(), &c.call_starts());
  EXPECT_EQ(a.call_starts(), c.call_starts());
}

TEST_F(CallGateTest, MasksCallStartsOnlyBelowTheThreshold) {
  const CallGate g = gate(0.6f);
  const size_t n = static_cast<size_t>(tok().n_vocab());
  const auto& starts = g.call_starts();
  // Every call-start token at logit c, every other at 0: the call's
  // probability is k e^c / (k e^c + (n - k)).
  const double k = static_cast<double>(starts.size());
  auto logits_with = [&](double p_call) {
    const float c = static_cast<float>(std::log(p_call * (n - k) / ((1 - p_call) * k)));
    std::vector<float> l(n, 0.0f);
    for (int32_t id : starts) l[static_cast<size_t>(id)] = c;
    return l;
  };
  std::vector<float> sure = logits_with(0.65), before = sure;
  EXPECT_FALSE(g.apply(sure.data(), n, true));
  EXPECT_EQ(sure, before);
  std::vector<float> unsure = logits_with(0.55);
  EXPECT_TRUE(g.apply(unsure.data(), n, true));
  for (size_t id = 0; id < n; ++id) {
    const bool call = std::find(starts.begin(), starts.end(), int32_t(id)) != starts.end();
    if (call || tok().is_eog(int32_t(id))) EXPECT_EQ(unsure[id], -std::numeric_limits<float>::infinity()) << id;
    else EXPECT_EQ(unsure[id], 0.0f) << id;
  }
  // After the first token an end of generation stays possible.
  std::vector<float> later = logits_with(0.55);
  EXPECT_TRUE(g.apply(later.data(), n, false));
  for (size_t id = 0; id < n; ++id) {
    if (tok().is_eog(int32_t(id))) {
      EXPECT_EQ(later[id], 0.0f);
    }
  }
}

TEST_F(CallGateTest, NothingIsMaskedOnceACallIsWritten) {
  CallGate g = gate(0.9f);
  const size_t n = static_cast<size_t>(tok().n_vocab());
  std::vector<float> flat(n, 0.0f);
  EXPECT_TRUE(g.apply(flat.data(), n, false));
  for (const char* piece : {"Sure", " ", "<to", "ol_c", "all>"}) g.feed(piece);
  std::vector<float> inside(n, 0.0f);
  EXPECT_FALSE(g.apply(inside.data(), n, false));
  EXPECT_EQ(inside, std::vector<float>(n, 0.0f));
}

TEST_F(CallGateTest, GatedGenerationNeverStartsACall) {
  // A trigger the random model writes often, so that the ungated runs do.
  const std::vector<std::string> triggers = {" t"};
  ThreadPool pool(1);
  const CallGate probe = gate(0.5f, triggers);
  auto starts_call = [&](float min_p, uint64_t seed, bool& empty) {
    Sequence seq(*tiny_->model, *tiny_->tokenizer, &pool);
    GenerationRequest r;
    r.prompt = tok().encode("what is the weather like", true, true);
    r.max_tokens = 60;
    r.sampling.temperature = 1.5f;
    r.sampling.seed = seed;
    r.call_gate = {min_p, triggers};
    GenerationResult out = seq.generate(r);
    empty = out.tokens.empty();
    // A call-start token while the text so far holds no trigger: what the
    // gate forbids (after a trigger it is a call already).
    std::string text;
    for (int32_t t : out.tokens) {
      const bool start = std::find(probe.call_starts().begin(), probe.call_starts().end(), t) !=
                         probe.call_starts().end();
      if (start && text.find(triggers[0]) == std::string::npos) return true;
      text += tok().token_to_piece(t, true);
    }
    return false;
  };
  int free_calls = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    bool empty = false;
    EXPECT_FALSE(starts_call(0.9f, seed, empty)) << "seed " << seed;
    EXPECT_FALSE(empty) << "a gated first token is never the end";
    free_calls += starts_call(0.0f, seed, empty);
  }
  EXPECT_GT(free_calls, 0) << "random weights never start a call: the test shows nothing";
}

TEST(CallGateSetting, ChecksTheRangeAndReadsTheModelsKey) {
  EXPECT_EQ(checked_min_call_probability(0.5, "x"), 0.5f);
  EXPECT_THROW(checked_min_call_probability(1.0, "--min-call-prob"), Error);
  EXPECT_THROW(checked_min_call_probability(-0.1, "--min-call-prob"), Error);
  EXPECT_THROW(checked_min_call_probability(std::nan(""), "--min-call-prob"), Error);
  try {
    checked_min_call_probability(2, "--min-call-prob");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--min-call-prob"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace onellm
