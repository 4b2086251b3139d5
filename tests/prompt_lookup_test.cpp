// Prompt-lookup decoding (engine/prompt_lookup.h): the draft found in the
// context, and generation that checks the drafts giving exactly what plain
// decoding gives (greedy and seeded sampling, grammar and stop strings), on a
// tiny random model whose greedy text repeats itself (so guesses come right).
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/prompt_lookup.h"
#include "support/tiny_qwen.h"

namespace onellm {
namespace {

TEST(PromptLookup, DraftFollowsTheLatestLongestMatch) {
  // The end "7 8" occurs at 1 and 5; the latest (5) is followed by 9 4.
  EXPECT_EQ(lookup_draft({1, 7, 8, 2, 3, 7, 8, 9, 4, 7, 8}, 4), (std::vector<int32_t>{9, 4, 7, 8}));
  EXPECT_EQ(lookup_draft({1, 7, 8, 2, 3, 7, 8, 9, 4, 7, 8}, 1), (std::vector<int32_t>{9}));
  // A 3-gram match wins over a later 2-gram one: "6 7 8" at 0 beats "7 8" at 5.
  EXPECT_EQ(lookup_draft({6, 7, 8, 1, 2, 7, 8, 3, 6, 7, 8}, 2), (std::vector<int32_t>{1, 2}));
  // Overlapping: a run of one token guesses more of it.
  EXPECT_EQ(lookup_draft({5, 5, 5, 5}, 3), (std::vector<int32_t>{5}));
  EXPECT_TRUE(lookup_draft({1, 2, 3, 4}, 4).empty());  // the end never occurred before
  EXPECT_TRUE(lookup_draft({1, 2, 1}, 4).empty());     // single tokens are too weak a match
  EXPECT_TRUE(lookup_draft({}, 4).empty());
  EXPECT_TRUE(lookup_draft({3, 4, 3, 4}, 0).empty());
}

TEST(PromptLookup, PredictionDraftFollowsTheOutputThroughThePrediction) {
  const std::vector<int32_t> predicted = {10, 11, 12, 13, 11, 12, 14, 15};
  size_t cursor = 0;
  // Nothing generated yet: the prediction's start.
  EXPECT_EQ(predicted_draft(predicted, {}, 3, &cursor), (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(cursor, 0u);
  // The output so far, "10 11 12", is found at 0: the guess is what follows ...
  EXPECT_EQ(predicted_draft(predicted, {10, 11, 12}, 8, &cursor), (std::vector<int32_t>{13, 11, 12, 14, 15}));
  EXPECT_EQ(cursor, 3u);
  // ... and then "12 13 11 12", the longest tail that occurs (at 2).
  EXPECT_EQ(predicted_draft(predicted, {10, 11, 12, 13, 11, 12}, 2, &cursor), (std::vector<int32_t>{14, 15}));
  EXPECT_EQ(cursor, 6u);
  // The longest tail that occurs: "99 12 13" nowhere, "12 13" at 2.
  cursor = 0;
  EXPECT_EQ(predicted_draft(predicted, {99, 12, 13}, 1, &cursor), (std::vector<int32_t>{11}));
  // A single token is enough (the caller vouches for the text); an edit the
  // output made (99 for 13) is skipped by matching what comes after it.
  cursor = 0;
  EXPECT_EQ(predicted_draft(predicted, {10, 11, 12, 99, 11}, 2, &cursor), (std::vector<int32_t>{12, 13}));
  EXPECT_EQ(predicted_draft(predicted, {7, 14}, 4, &cursor), (std::vector<int32_t>{15}));
  // Behind the cursor only if nothing matches ahead of it: the latest there.
  cursor = 7;
  EXPECT_EQ(predicted_draft(predicted, {5, 11}, 1, &cursor), (std::vector<int32_t>{12}));
  EXPECT_EQ(cursor, 5u);
  EXPECT_TRUE(predicted_draft(predicted, {15}, 4, &cursor).empty());  // nothing follows the match
  EXPECT_TRUE(predicted_draft(predicted, {42}, 4, &cursor).empty());
  EXPECT_TRUE(predicted_draft({}, {1}, 4, &cursor).empty());
  EXPECT_TRUE(predicted_draft(predicted, {10}, 0, &cursor).empty());
}

struct Generated {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish;
  int64_t drafted, accepted;
};

Generated generate(const test::TinyQwen& t, GenerationRequest req, int32_t lookup, int64_t n_ctx = 0) {
  SequenceOptions so;
  so.math = MathMode::kExact;  // F32 reference math: a pass of many tokens computes each as a pass of one
  so.n_ctx = n_ctx;
  Sequence seq(*t.model, *t.tokenizer, nullptr, so);
  req.lookup_draft = lookup;
  std::string streamed;
  GenerationResult r = seq.generate(req, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  EXPECT_EQ(streamed, r.text);
  // What stays cached is what was generated: a later prompt reuses it.
  std::vector<int32_t> kept = req.prompt;
  kept.insert(kept.end(), r.tokens.begin(), r.tokens.end());
  EXPECT_LE(seq.tokens().size(), kept.size());
  EXPECT_TRUE(std::equal(seq.tokens().begin(), seq.tokens().end(), kept.begin()));
  return {r.tokens, r.text, r.finish, r.draft_tokens, r.draft_accepted};
}

void expect_same(const Generated& plain, const Generated& guessed) {
  EXPECT_EQ(guessed.tokens, plain.tokens);
  EXPECT_EQ(guessed.text, plain.text);
  EXPECT_EQ(guessed.finish, plain.finish);
}

GenerationRequest request(const test::TinyQwen& t, const std::string& prompt, int64_t n, float temperature) {
  GenerationRequest req;
  req.prompt = t.tokenizer->encode(prompt, true, true);
  req.max_tokens = n;
  req.ignore_eos = true;
  req.sampling.temperature = temperature;
  req.sampling.seed = 42;
  return req;
}

TEST(PromptLookup, GreedyAndSampledOutputIsUnchanged) {
  test::TinyQwen t;
  for (float temperature : {0.0f, 0.3f, 0.7f}) {
    const GenerationRequest req = request(t, "the cat sat on the mat and the cat", 80, temperature);
    const Generated plain = generate(t, req, 0);
    ASSERT_EQ(plain.drafted, 0);
    for (int32_t lookup : {1, 4, 16}) {
      const Generated guessed = generate(t, req, lookup);
      expect_same(plain, guessed);
      if (temperature < 0.5f) EXPECT_GT(guessed.drafted, 0) << "temperature " << temperature << ", lookup " << lookup;
      if (temperature == 0.0f) EXPECT_GT(guessed.accepted, 0) << "lookup " << lookup;
    }
  }
}

TEST(PromptLookup, APredictionIsGuessedFromAndChangesNothing) {
  test::TinyQwen t;
  for (float temperature : {0.0f, 0.7f}) {
    GenerationRequest req = request(t, "the cat sat on", 60, temperature);
    const Generated plain = generate(t, req, 0);
    // The output itself as the prediction: nearly every token is guessed right.
    req.predicted = plain.tokens;
    const Generated exact = generate(t, req, 8);
    expect_same(plain, exact);
    if (temperature == 0.0f)
      EXPECT_GE(exact.accepted, static_cast<int64_t>(plain.tokens.size()) - 8) << exact.drafted << " guesses";
    // An edited prediction (every 7th token replaced) and an unrelated one.
    for (size_t i = 3; i < req.predicted.size(); i += 7) req.predicted[i] = (req.predicted[i] + 17) % 200;
    expect_same(plain, generate(t, req, 8));
    req.predicted.assign(40, 5);
    expect_same(plain, generate(t, req, 4));
  }
}

TEST(PromptLookup, EndsWhereDecodingEnds) {
  test::TinyQwen t;
  // The token budget, a stop string inside a run of right guesses, and a
  // context that fills up: each ends the text exactly where plain decoding does.
  GenerationRequest req = request(t, "abc abc abc abc", 23, 0.0f);
  expect_same(generate(t, req, 0), generate(t, req, 8));
  const Generated plain = generate(t, req, 0);
  ASSERT_GT(plain.text.size(), 12u);
  req.stop = {plain.text.substr(6, 3)};
  expect_same(generate(t, req, 0), generate(t, req, 8));
  req.stop.clear();
  req.max_tokens = -1;
  const Generated full = generate(t, req, 0, 48);
  EXPECT_EQ(full.finish, FinishReason::kContextFull);
  expect_same(full, generate(t, req, 8, 48));
  // A grammar holds the guesses' tokens as it holds the sampled ones.
  req.max_tokens = 40;
  req.grammar = Grammar::parse("root ::= (\"ab\" | \"c\" | \" \")+");
  expect_same(generate(t, req, 0), generate(t, req, 8));
}

}  // namespace
}  // namespace onellm
