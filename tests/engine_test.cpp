// The engine: generation is deterministic, interleaving Generations in steps
// gives exactly what running each alone gives, and stop conditions hold.
#include <gtest/gtest.h>

#include "base/error.h"
#include "engine/engine.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModelSpec spec;
    spec.arch = "qwen2";
    write_tiny_model(spec, dir_.file("m.gguf"));
    model_ = Model::load(dir_.file("m.gguf"));
    tok_ = Tokenizer::from_gguf(model_->gguf());
  }
  GenerationRequest request(const std::string& text, int64_t n) {
    GenerationRequest r;
    r.prompt = tok_->encode(text, true, true);
    r.max_tokens = n;
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    return r;
  }
  test::TempDir dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  ThreadPool pool_{2};
};

TEST_F(EngineTest, InterleavedStepsEqualSeparateRuns) {
  Sequence a(*model_, *tok_, &pool_), b(*model_, *tok_, &pool_);
  GenerationResult alone_a = a.generate(request("the little dog", 12));
  GenerationResult alone_b = b.generate(request("once upon a time there was", 12));
  EXPECT_EQ(alone_a.tokens.size(), 12u);

  Sequence a2(*model_, *tok_, &pool_), b2(*model_, *tok_, &pool_);
  Generation ga(a2, request("the little dog", 12)), gb(b2, request("once upon a time there was", 12));
  while (!ga.done() || !gb.done()) {
    ga.step(2);  // prompt in chunks of 2 tokens, interleaved with the other request
    gb.step(3);
  }
  EXPECT_EQ(ga.result().tokens, alone_a.tokens);
  EXPECT_EQ(gb.result().tokens, alone_b.tokens);
  EXPECT_EQ(gb.result().text, alone_b.text);
}

TEST_F(EngineTest, SecondTurnReusesTheCachedPrefix) {
  Sequence s(*model_, *tok_, &pool_);
  GenerationResult first = s.generate(request("the little dog said", 4));
  GenerationRequest second = request("the little dog said", 4);
  second.prompt.insert(second.prompt.end(), first.tokens.begin(), first.tokens.end() - 1);
  second.prompt.push_back(tok_->encode(" play", false, false)[0]);
  GenerationResult r = s.generate(second);
  EXPECT_EQ(r.n_prompt_evaluated, 1);  // only the new token
  Sequence fresh(*model_, *tok_, &pool_);
  EXPECT_EQ(fresh.generate(second).tokens, r.tokens);
}

TEST_F(EngineTest, StopStringsMaxTokensAndCancel) {
  Sequence s(*model_, *tok_, &pool_);
  GenerationResult full = s.generate(request("the cat", 16));
  ASSERT_GE(full.text.size(), 4u);
  GenerationRequest req = request("the cat", 16);
  req.stop = {full.text.substr(2, 2)};
  GenerationResult stopped = s.generate(req);
  EXPECT_EQ(stopped.finish, FinishReason::kStopString);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(req.stop[0])));

  int pieces = 0;
  GenerationResult cancelled = s.generate(request("the cat", 16), [&](std::string_view) { return ++pieces < 3; });
  EXPECT_EQ(cancelled.finish, FinishReason::kCancelled);
  EXPECT_LT(cancelled.tokens.size(), 16u);
  EXPECT_EQ(s.generate(request("the cat", 0)).tokens.size(), 0u);
}

TEST_F(EngineTest, PromptLongerThanContextIsAnError) {
  SequenceOptions o;
  o.n_ctx = 8;
  Sequence s(*model_, *tok_, &pool_, o);
  EXPECT_THROW(s.generate(request("the little dog and the little cat and the dog", 4)), Error);
  EXPECT_THROW(s.generate(GenerationRequest{}), Error);
  GenerationResult r = s.generate(request("the", 100));
  EXPECT_EQ(r.finish, FinishReason::kContextFull);
}

}  // namespace
}  // namespace onellm
