// Typical sampling, XTC and Mirostat v1/v2 (engine/sampler.h) on small
// distributions whose expected survivors are worked out here from the
// definitions (the same ones llama.cpp implements).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "base/error.h"
#include "engine/sampler.h"
#include "support/sampling_params.h"

namespace onellm {
namespace {

SamplingParams plain(uint64_t seed = 7) { return filters_off(1.0f, seed); }

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double q : probs) out.push_back(static_cast<float>(std::log(q)));
  return out;
}

std::map<int32_t, double> dist(Sampler& s, std::vector<float> logits) {
  std::map<int32_t, double> out;
  for (const TokenProb& t : s.distribution(logits.data(), {})) out[t.id] = t.p;
  return out;
}

void expect_dist(const std::map<int32_t, double>& got, const std::map<int32_t, double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [id, p] : want) {
    ASSERT_TRUE(got.count(id)) << "token " << id << " missing";
    EXPECT_NEAR(got.at(id), p, 1e-5) << "token " << id;
  }
}

const std::vector<double> kFive = {0.5, 0.2, 0.15, 0.1, 0.05};

TEST(SamplerTypical, KeepsTheTokensNearestTheEntropy) {
  // Entropy 1.3331 nats; surprises 0.693 1.609 1.897 2.303 2.996: distances
  // 0.640 0.276 0.564 0.970 1.663, so the order is ids 1, 2, 0, 3, 4.
  double entropy = 0;
  for (double q : kFive) entropy -= q * std::log(q);
  ASSERT_NEAR(entropy, 1.3331, 1e-4);
  SamplingParams p = plain();
  p.typical_p = 0.3f;  // 0.2 + 0.15 reach it
  Sampler a(p, 5);
  expect_dist(dist(a, logits_of(kFive)), {{1, 0.2 / 0.35}, {2, 0.15 / 0.35}});
  p.typical_p = 0.6f;  // then the most likely token too
  Sampler b(p, 5);
  expect_dist(dist(b, logits_of(kFive)), {{1, 0.2 / 0.85}, {2, 0.15 / 0.85}, {0, 0.5 / 0.85}});
  p.typical_p = 1.0f;  // off
  Sampler c(p, 5);
  EXPECT_EQ(dist(c, logits_of(kFive)).size(), 5u);
}

TEST(SamplerXtc, DropsTheTopChoicesButTheLeastLikelyOfThem) {
  const std::vector<double> four = {0.4, 0.3, 0.2, 0.1};
  SamplingParams p = plain();
  p.xtc_probability = 1.0f;
  p.xtc_threshold = 0.15f;  // 0.4, 0.3, 0.2 are at or above: only 0.2 of them stays
  Sampler a(p, 4);
  expect_dist(dist(a, logits_of(four)), {{2, 0.2 / 0.3}, {3, 0.1 / 0.3}});
  p.xtc_threshold = 0.35f;  // one token above: nothing to exclude
  Sampler b(p, 4);
  EXPECT_EQ(dist(b, logits_of(four)).size(), 4u);
  p.xtc_threshold = 0.6f;  // above 0.5: off, as in llama.cpp
  Sampler c(p, 4);
  EXPECT_EQ(dist(c, logits_of(four)).size(), 4u);
  // With probability 0.5 about half the steps exclude; the same seed repeats them.
  p.xtc_threshold = 0.15f;
  p.xtc_probability = 0.5f;
  Sampler d(p, 4), e(p, 4);
  int excluded = 0;
  for (int i = 0; i < 2000; ++i) {
    const size_t n = dist(d, logits_of(four)).size();
    EXPECT_EQ(n, dist(e, logits_of(four)).size());
    excluded += n == 2;
  }
  EXPECT_NEAR(excluded / 2000.0, 0.5, 0.05);
}

TEST(SamplerMirostat, V2TruncatesAtMuAndSteersItAfterEachDraw) {
  // Surprises 1, 2, 3, 3 bits; tau 1 starts mu at 2 bits: tokens 0 and 1 stay.
  const std::vector<double> probs = {0.5, 0.25, 0.125, 0.125};
  SamplingParams p = plain(3);
  p.mirostat = 2;
  p.mirostat_tau = 1.0f;
  p.mirostat_eta = 0.5f;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    p.seed = seed;
    Sampler s(p, 4);
    expect_dist(dist(s, logits_of(probs)), {{0, 2.0 / 3}, {1, 1.0 / 3}});
    std::vector<float> row = logits_of(probs);
    const int32_t first = s.sample(row.data(), {});
    ASSERT_TRUE(first == 0 || first == 1);
    // mu -= eta * (surprise - tau): token 0 (log2 1.5 = 0.585 bits) raises it to
    // 2.21, token 1 (log2 3 = 1.585 bits) lowers it to 1.71, below token 1's 2 bits.
    const auto next = dist(s, logits_of(probs));
    if (first == 0) expect_dist(next, {{0, 2.0 / 3}, {1, 1.0 / 3}});
    else expect_dist(next, {{0, 1.0}});
  }
}

TEST(SamplerMirostat, V1KeepsTheTopKOfAZipfFit) {
  // p_i proportional to (i + 1)^-1.5 over 50 tokens: the fit gives s = 1.5, and
  // with tau 2 (mu 4 bits) k = (0.5 * 2^4 / (1 - 50^-0.5))^(1 / 1.5) = 4.43.
  std::vector<double> probs(50);
  for (size_t i = 0; i < probs.size(); ++i) probs[i] = std::pow(double(i + 1), -1.5);
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  for (double& q : probs) q /= total;
  const double k = std::pow(0.5 * 16 / (1 - std::pow(50.0, -0.5)), 1 / 1.5);
  ASSERT_NEAR(k, 4.43, 0.01);
  SamplingParams p = plain();
  p.mirostat = 1;
  p.mirostat_tau = 2.0f;
  Sampler s(p, 50);
  const auto d = dist(s, logits_of(probs));
  ASSERT_EQ(d.size(), 4u);
  const double kept = probs[0] + probs[1] + probs[2] + probs[3];
  for (int32_t id = 0; id < 4; ++id) EXPECT_NEAR(d.at(id), probs[static_cast<size_t>(id)] / kept, 1e-5);
}

TEST(SamplerMirostat, IgnoresTopKHonoursFiltersAndGreedy) {
  const std::vector<double> probs = {0.5, 0.25, 0.125, 0.125};
  SamplingParams p = plain();
  p.mirostat = 2;
  p.mirostat_tau = 1.6f;  // mu 3.2 bits: all four stay, top_k 1 notwithstanding
  p.top_k = 1;
  Sampler s(p, 4);
  EXPECT_EQ(dist(s, logits_of(probs)).size(), 4u);
  s.set_token_filter([](int32_t id) { return id != 0; });
  for (int i = 0; i < 50; ++i) {
    std::vector<float> row = logits_of(probs);
    EXPECT_NE(s.sample(row.data(), {}), 0);
  }
  p.temperature = 0;
  Sampler g(p, 4);
  std::vector<float> row = logits_of({0.1, 0.5, 0.3, 0.1});
  EXPECT_EQ(g.sample(row.data(), {}), 1);
}

TEST(SamplerTypical, BadSettingsAreRefused) {
  SamplingParams p = plain();
  p.typical_p = 0;
  EXPECT_THROW(Sampler(p, 4), Error);
  p = plain();
  p.mirostat = 3;
  EXPECT_THROW(Sampler(p, 4), Error);
  p = plain();
  p.xtc_probability = 1.5f;
  EXPECT_THROW(Sampler(p, 4), Error);
  p = plain();
  p.mirostat = 2;
  p.mirostat_tau = 0;
  EXPECT_THROW(Sampler(p, 4), Error);
}

}  // namespace
}  // namespace onellm
