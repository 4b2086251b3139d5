#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "base/error.h"
#include "engine/sampler.h"
#include "support/sampling_params.h"

namespace onellm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();


// Logits whose softmax at temperature 1 is exactly probs.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(float(std::log(p)));
  return out;
}

std::map<int32_t, float> distribution_of(Sampler& s, std::vector<float> logits, std::vector<int32_t> history = {}) {
  std::map<int32_t, float> out;
  for (const TokenProb& t : s.distribution(logits.data(), history)) out[t.id] = t.p;
  return out;
}

std::set<int32_t> ids_of(const std::map<int32_t, float>& dist) {
  std::set<int32_t> ids;
  for (const auto& [id, p] : dist) ids.insert(id);
  return ids;
}

std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> row = logits;
    freq[s.sample(row.data(), {})] += 1.0 / draws;
  }
  return freq;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  std::vector<double> p;
  double total = 0.0;
  for (float l : logits) total += std::exp(l / temperature);
  for (float l : logits) p.push_back(std::exp(l / temperature) / total);
  return p;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s(filters_off(0.0f), 5);
  std::vector<float> logits = {1.0f, 3.0f, 0.5f, 3.0f, -kInf};
  for (int i = 0; i < 10; ++i) {
    std::vector<float> row = logits;
    EXPECT_EQ(s.sample(row.data(), {}), 1);
  }
  std::vector<float> flat(5, 0.25f);
  EXPECT_EQ(s.sample(flat.data(), {}), 0);
  Sampler negative(filters_off(-1.0f), 3);
  std::vector<float> row = {-5.0f, -2.0f, -2.0f};
  EXPECT_EQ(negative.sample(row.data(), {}), 1);
}

TEST(Sampler, TopKOneEqualsGreedyAtAnyTemperature) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(1000);
  for (float& l : logits) l = normal(rng);
  logits[700] = logits[300] = 20.0f;  // a tie at the top: lowest id wins
  for (float temperature : {0.1f, 1.0f, 5.0f, 100.0f}) {
    SamplingParams p = filters_off(temperature);
    p.top_k = 1;
    Sampler s(p, 1000);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> row = logits;
      EXPECT_EQ(s.sample(row.data(), {}), 300) << "temperature " << temperature;
    }
  }
}

TEST(Sampler, SeedReproducibility) {
  std::vector<float> logits(50, 0.0f);
  auto draws = [&](uint64_t seed) {
    Sampler s(filters_off(1.0f, seed), 50);
    std::vector<int32_t> out;
    for (int i = 0; i < 100; ++i) {
      std::vector<float> row = logits;
      out.push_back(s.sample(row.data(), {}));
    }
    return out;
  };
  EXPECT_EQ(draws(1), draws(1));
  EXPECT_EQ(draws(0), draws(0));
  EXPECT_NE(draws(1), draws(2));
  // The "random" seed still samples valid tokens.
  for (int32_t id : draws(SamplingParams::kRandomSeed)) EXPECT_LT(id, 50);
}

TEST(Sampler, EmpiricalFrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 3.0f};
  for (double temperature : {1.0, 0.5, 2.0}) {
    Sampler s(filters_off(float(temperature), 99), 4);
    std::vector<double> freq = frequencies(s, logits, 20000);
    std::vector<double> expected = softmax(logits, temperature);
    for (size_t i = 0; i < 4; ++i)
      EXPECT_NEAR(freq[i], expected[i], 0.015) << "token " << i << " temperature " << temperature;
  }
  // Lower temperature sharpens towards the best token, higher flattens.
  Sampler cold(filters_off(0.5f, 5), 4), warm(filters_off(2.0f, 5), 4);
  EXPECT_GT(frequencies(cold, logits, 5000)[3], 0.8);
  EXPECT_LT(frequencies(warm, logits, 5000)[3], 0.5);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  // Token 3 is most likely; ids are shuffled relative to probability order.
  const std::vector<float> logits = logits_of({0.2, 0.3, 0.1, 0.4});
  SamplingParams p = filters_off(1.0f);
  p.top_p = 0.65f;  // 0.4 + 0.3 = 0.7 >= 0.65
  Sampler two(p, 4);
  auto dist = distribution_of(two, logits);
  EXPECT_EQ(ids_of(dist), (std::set<int32_t>{1, 3}));
  EXPECT_NEAR(dist[3], 0.4 / 0.7, 1e-5);
  EXPECT_NEAR(dist[1], 0.3 / 0.7, 1e-5);

  p.top_p = 0.75f;  // needs 0.2 too
  Sampler three(p, 4);
  EXPECT_EQ(ids_of(distribution_of(three, logits)), (std::set<int32_t>{0, 1, 3}));

  p.top_p = 0.0f;  // always keeps one token
  Sampler one(p, 4);
  EXPECT_EQ(ids_of(distribution_of(one, logits)), (std::set<int32_t>{3}));

  // After top-k = 3 the probabilities renormalize to 4/9, 3/9, 2/9, so 0.75 needs only two.
  p.top_p = 0.75f;
  p.top_k = 3;
  Sampler after_top_k(p, 4);
  EXPECT_EQ(ids_of(distribution_of(after_top_k, logits)), (std::set<int32_t>{1, 3}));
}

TEST(Sampler, TopPOnLargeFlatVocabularyKeepsLowestIds) {
  const int32_t n = 5000;
  SamplingParams p = filters_off(1.0f);
  p.top_p = 0.5001f;  // each token has 1/5000: 2501 tokens are needed
  Sampler s(p, n);
  auto dist = distribution_of(s, std::vector<float>(n, 0.0f));
  ASSERT_EQ(dist.size(), 2501u);
  EXPECT_EQ(dist.begin()->first, 0);
  EXPECT_EQ(dist.rbegin()->first, 2500);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> row(n, 0.0f);
    EXPECT_LE(s.sample(row.data(), {}), 2500);
  }
}

// Against a plain reference: sort everything, cut where the cumulative softmax reaches top_p.
TEST(Sampler, TopPOnLargeRandomVocabularyMatchesFullSort) {
  const int32_t n = 20000;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(n);
  for (float& l : logits) l = normal(rng);
  std::vector<int32_t> order(n);
  for (int32_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  double total = 0.0;
  for (float l : logits) total += std::exp(double(l));
  for (float top_p : {0.3f, 0.9f, 0.99f}) {
    std::set<int32_t> expected;
    double cumulative = 0.0;
    for (int32_t id : order) {
      expected.insert(id);
      cumulative += std::exp(double(logits[id])) / total;
      if (cumulative >= top_p) break;
    }
    // The cut must not hinge on rounding.
    ASSERT_GT(cumulative - top_p, 1e-7);
    ASSERT_LT(cumulative - std::exp(double(logits[order[expected.size() - 1]])) / total, top_p - 1e-7);

    SamplingParams p = filters_off(1.0f);
    p.top_p = top_p;
    Sampler s(p, n);
    EXPECT_EQ(ids_of(distribution_of(s, logits)), expected) << "top_p " << top_p;
  }
}

TEST(Sampler, MinPDropsTokensBelowFractionOfBest) {
  const std::vector<float> logits = logits_of({0.5, 0.2, 0.04, 0.26});
  SamplingParams p = filters_off(1.0f);
  p.min_p = 0.1f;  // threshold 0.05
  Sampler s(p, 4);
  auto dist = distribution_of(s, logits);
  EXPECT_EQ(ids_of(dist), (std::set<int32_t>{0, 1, 3}));
  EXPECT_NEAR(dist[0], 0.5 / 0.96, 1e-5);

  p.min_p = 0.5f;  // threshold 0.25
  Sampler half(p, 4);
  EXPECT_EQ(ids_of(distribution_of(half, logits)), (std::set<int32_t>{0, 3}));

  // Combined with top-p, the smaller of the two cuts wins.
  p.min_p = 0.3f;  // threshold 0.15: drops token 2 only
  p.top_p = 0.6f;  // 0.5 + 0.26 reaches it
  Sampler both(p, 4);
  EXPECT_EQ(ids_of(distribution_of(both, logits)), (std::set<int32_t>{0, 3}));
  p.top_p = 0.99f;
  Sampler min_p_wins(p, 4);
  EXPECT_EQ(ids_of(distribution_of(min_p_wins, logits)), (std::set<int32_t>{0, 1, 3}));
}

TEST(Sampler, TemperatureAppliesAfterTruncation) {
  const std::vector<float> logits = logits_of({0.5, 0.3, 0.2});
  SamplingParams p = filters_off(0.5f);
  p.top_k = 2;
  Sampler s(p, 3);
  auto dist = distribution_of(s, logits);
  // Temperature 0.5 squares the kept probabilities before renormalizing.
  EXPECT_NEAR(dist[0], 0.25 / (0.25 + 0.09), 1e-5);
  EXPECT_NEAR(dist[1], 0.09 / (0.25 + 0.09), 1e-5);
  EXPECT_EQ(dist.count(2), 0u);
}

TEST(Sampler, PenaltiesChangeExactlyTheWindowTokens) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, -2.0f, 3.0f, 1.0f};
  const std::vector<int32_t> history = {0, 1, 1, 3, 5};
  SamplingParams p = filters_off(0.0f);
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 4;  // window {1, 1, 3, 5}: token 0 is too old
  std::vector<float> row = logits;
  Sampler(p, 6).sample(row.data(), history);
  EXPECT_EQ(row, (std::vector<float>{2.0f, -2.0f, 0.5f, -4.0f, 3.0f, 0.5f}));

  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  row = logits;
  Sampler(p, 6).sample(row.data(), history);
  EXPECT_EQ(row, (std::vector<float>{2.0f, -2.0f - 1.0f - 0.25f, 0.5f, -4.0f - 0.75f, 3.0f, 0.5f - 0.75f}));

  p.repeat_last_n = -1;  // whole history
  p.frequency_penalty = p.presence_penalty = 0.0f;
  row = logits;
  Sampler(p, 6).sample(row.data(), history);
  EXPECT_EQ(row, (std::vector<float>{1.0f, -2.0f, 0.5f, -4.0f, 3.0f, 0.5f}));

  p.repeat_last_n = 0;  // off
  row = logits;
  Sampler(p, 6).sample(row.data(), history);
  EXPECT_EQ(row, logits);

  // The penalty can change the greedy choice.
  p.repeat_last_n = 64;
  p.repeat_penalty = 4.0f;
  row = logits;
  EXPECT_EQ(Sampler(p, 6).sample(row.data(), {4}), 0);
}

TEST(Sampler, LogitBiasAddsAndBans) {
  SamplingParams p = filters_off(1.0f);
  p.logit_bias = {{2, 100.0f}};
  Sampler forced(p, 4);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> row(4, 0.0f);
    EXPECT_EQ(forced.sample(row.data(), {}), 2);
  }
  SamplingParams g = filters_off(0.0f);
  g.logit_bias = {{0, -kInf}, {1, 0.5f}};
  std::vector<float> row = {5.0f, 4.0f, 4.4f};
  EXPECT_EQ(Sampler(g, 3).sample(row.data(), {}), 1);
  EXPECT_EQ(row[1], 4.5f);

  g.logit_bias = {{3, 1.0f}};
  EXPECT_THROW(Sampler(g, 3), Error);
}

TEST(Sampler, TokenFilterMasksDisallowedTokens) {
  Sampler s(filters_off(1.0f), 10);
  s.set_token_filter([](int32_t id) { return id % 2 == 0; });
  std::vector<float> logits = {0, 5, 1, 5, 2, 5, 3, 5, 1, 5};
  for (int i = 0; i < 500; ++i) {
    std::vector<float> row = logits;
    EXPECT_EQ(s.sample(row.data(), {}) % 2, 0);
  }
  Sampler greedy(filters_off(0.0f), 10);
  greedy.set_token_filter([](int32_t id) { return id % 2 == 0; });
  std::vector<float> row = logits;
  EXPECT_EQ(greedy.sample(row.data(), {}), 6);
  greedy.set_token_filter({});
  row = logits;
  EXPECT_EQ(greedy.sample(row.data(), {}), 1);

  greedy.set_token_filter([](int32_t) { return false; });
  row = logits;
  EXPECT_THROW(greedy.sample(row.data(), {}), Error);
  s.set_token_filter([](int32_t) { return false; });
  row = logits;
  EXPECT_THROW(s.sample(row.data(), {}), Error);
}

TEST(Sampler, BadInputThrows) {
  EXPECT_THROW(Sampler(SamplingParams{}, 0), Error);
  Sampler s(SamplingParams{}, 3);
  std::vector<float> row = {0.0f, std::nanf(""), 1.0f};
  EXPECT_THROW(s.sample(row.data(), {}), Error);
  SamplingParams p;
  p.repeat_penalty = 1.1f;
  Sampler penalized(p, 3);
  row = {0.0f, 1.0f, 2.0f};
  EXPECT_THROW(penalized.sample(row.data(), {7}), Error);
  EXPECT_THROW(penalized.sample(row.data(), {-1, 1}), Error);
  EXPECT_EQ(row, (std::vector<float>{0.0f, 1.0f, 2.0f}));  // nothing penalized before the throw
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler(p, 3), Error);
}

TEST(Sampler, DefaultParamsOnLargeVocabulary) {
  const int32_t n = 150000;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(n);
  for (float& l : logits) l = normal(rng);
  SamplingParams p;
  p.seed = 11;
  p.repeat_penalty = 1.1f;
  Sampler s(p, n);
  std::vector<int32_t> history;
  for (int i = 0; i < 50; ++i) {
    std::vector<float> row = logits;
    int32_t id = s.sample(row.data(), history);
    ASSERT_GE(id, 0);
    ASSERT_LT(id, n);
    history.push_back(id);
  }
  // Top-k 40 at most, and every survivor is among the 40 best raw logits
  // (penalties only lower logits here since they are > 1 and applied to few tokens).
  std::vector<float> sorted = logits;
  std::nth_element(sorted.begin(), sorted.begin() + 39, sorted.end(), std::greater<float>());
  std::vector<float> row = logits;
  auto dist = s.distribution(row.data(), {});
  EXPECT_LE(dist.size(), 40u);
  for (const TokenProb& t : dist) EXPECT_GE(logits[t.id], sorted[39]);
}

}  // namespace
}  // namespace onellm
