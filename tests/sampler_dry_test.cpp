// DRY (engine/dry_penalty.h) against a brute-force reading of its definition
// written here, breakers from a byte-level vocabulary built here, and
// top-n-sigma (engine/sampler.h) on distributions worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "base/error.h"
#include "engine/dry_penalty.h"
#include "engine/sampler.h"
#include "support/byte_vocab.h"
#include "support/sampling_params.h"

namespace onellm {
namespace {

SamplingParams dry(float multiplier, float base, int32_t allowed, int32_t last_n) {
  SamplingParams p = filters_off(1.0f);
  p.dry_multiplier = multiplier;
  p.dry_base = base;
  p.dry_allowed_length = allowed;
  p.dry_penalty_last_n = last_n;
  return p;
}

std::vector<float> penalized(DryPenalty& d, int32_t n_vocab, const std::vector<int32_t>& history) {
  std::vector<float> logits(static_cast<size_t>(n_vocab), 0.0f);
  d.apply(logits.data(), n_vocab, history);
  return logits;
}

// The definition, by brute force: within the window w (the history's last
// tokens), a token t that followed an earlier stretch equal to the window's
// end, of length L (the stretch ends right before t), would repeat L + 1
// tokens. L counts only tokens after the newest complete breaker in w.
// Penalty for the largest such L >= allowed: multiplier * base^(L - allowed).
std::vector<float> brute_force(const SamplingParams& p, const DryBreakers& breakers, int32_t n_vocab,
                               const std::vector<int32_t>& history) {
  std::vector<float> out(static_cast<size_t>(n_vocab), 0.0f);
  size_t n = history.size();
  if (p.dry_penalty_last_n >= 0) n = std::min(n, size_t(p.dry_penalty_last_n));
  if (p.dry_multiplier == 0 || p.dry_penalty_last_n == 0 || n <= size_t(p.dry_allowed_length)) return out;
  const std::vector<int32_t> w(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  // The newest breaker head whose whole sequence is in w (longest if several).
  size_t limit = n;
  for (size_t head = n; head-- > 0 && limit == n;) {
    size_t best_len = 0;
    for (const auto& seq : breakers) {
      if (seq[0] != w[head] || head + seq.size() > n) continue;
      if (std::equal(seq.begin(), seq.end(), w.begin() + static_cast<std::ptrdiff_t>(head)))
        best_len = std::max(best_len, seq.size());
    }
    if (best_len > 0) limit = n - head - best_len;
  }
  if (limit < size_t(p.dry_allowed_length)) return out;
  std::map<int32_t, size_t> longest;
  for (size_t end = 0; end + 1 < n; ++end) {  // the stretch ending at w[end], followed by w[end + 1]
    size_t len = 0;
    while (len <= end && w[end - len] == w[n - 1 - len]) ++len;
    len = std::min(len, limit);
    const int32_t next = w[end + 1];
    if (len >= size_t(p.dry_allowed_length)) longest[next] = std::max(longest[next], len);
  }
  for (const auto& [t, len] : longest) {
    if (std::find(breakers.begin(), breakers.end(), std::vector<int32_t>{t}) != breakers.end()) continue;
    out[size_t(t)] -= static_cast<float>(p.dry_multiplier *
                                         std::pow(double(p.dry_base), double(len) - p.dry_allowed_length));
  }
  return out;
}

TEST(SamplerDry, PenalizesTheTokensThatWouldExtendARepeat) {
  // a b c c b c y a b c: the end "a b c" also came before "c" (3 tokens),
  // "b c" before "y" (2), "c" before "b" (1, allowed).
  const std::vector<int32_t> h = {0, 1, 2, 2, 1, 2, 3, 0, 1, 2};
  DryPenalty d(dry(0.8f, 1.75f, 2, -1));
  const std::vector<float> got = penalized(d, 5, h);
  EXPECT_FLOAT_EQ(got[2], -0.8f * 1.75f);
  EXPECT_FLOAT_EQ(got[3], -0.8f);
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_EQ(got[1], 0.0f);
  EXPECT_EQ(got[4], 0.0f);
}

TEST(SamplerDry, MatchesTheDefinitionOnRandomHistories) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 600; ++trial) {
    const int32_t n_vocab = 2 + static_cast<int32_t>(rng() % 4);
    std::vector<int32_t> h(1 + rng() % 60);
    for (int32_t& t : h) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(n_vocab));
    const int32_t last_n = static_cast<int32_t>(rng() % 4 == 0 ? -1 : rng() % 70);
    const SamplingParams p = dry(0.5f + float(rng() % 4), 1.0f + float(rng() % 3) * 0.5f,
                                 static_cast<int32_t>(rng() % 4), last_n);
    DryBreakers breakers;
    if (trial % 3 == 1) breakers = {{n_vocab - 1}};  // one single-token breaker
    if (trial % 3 == 2) breakers = {{0, 1}, {0, 1, 1}};  // two-token and three-token ones
    std::sort(breakers.begin(), breakers.end());
    DryPenalty d(p);
    d.set_breakers(std::make_shared<const DryBreakers>(breakers));
    const std::vector<float> want = brute_force(p, breakers, n_vocab, h);
    const std::vector<float> got = penalized(d, n_vocab, h);
    for (int32_t t = 0; t < n_vocab; ++t)
      ASSERT_NEAR(got[size_t(t)], want[size_t(t)], 1e-4 * (1 + std::abs(want[size_t(t)])))
          << "trial " << trial << " token " << t;
  }
}

TEST(SamplerDry, BreakersStopRepeatsAndAreNotPenalized) {
  // 9 5 6 7 9 5 6: the end "9 5 6" came before 7. With 9 a breaker, the
  // repeat cannot reach back past it: "5 6" is 2 tokens, not above 3.
  const std::vector<int32_t> h = {9, 5, 6, 7, 9, 5, 6};
  DryPenalty d(dry(1.0f, 2.0f, 3, -1));
  EXPECT_EQ(penalized(d, 10, h)[7], -1.0f);
  d.set_breakers(std::make_shared<const DryBreakers>(DryBreakers{{9}}));
  EXPECT_EQ(penalized(d, 10, h)[7], 0.0f);
  // The earlier stretch may lie before a breaker; only the end's length counts.
  DryPenalty two(dry(1.0f, 2.0f, 2, -1));
  two.set_breakers(std::make_shared<const DryBreakers>(DryBreakers{{9}}));
  EXPECT_EQ(penalized(two, 10, h)[7], -1.0f);
  // A breaker token is never penalized itself: "5 6" went on with 9 before.
  EXPECT_EQ(penalized(two, 10, {5, 6, 9, 1, 5, 6})[9], 0.0f);
  // A two-token breaker only counts complete: 9 alone is no breaker.
  DryPenalty f(dry(1.0f, 2.0f, 3, -1));
  f.set_breakers(std::make_shared<const DryBreakers>(DryBreakers{{9, 4}}));
  EXPECT_EQ(penalized(f, 10, h)[7], -1.0f);
  EXPECT_EQ(penalized(f, 10, {9, 4, 5, 6, 7, 9, 4, 5, 6})[7], 0.0f);
  EXPECT_EQ(penalized(f, 10, {9, 4, 5, 6, 7, 9, 5, 5, 6})[7], 0.0f);  // 5 6 only: 2 tokens
  EXPECT_EQ(penalized(f, 10, {1, 9, 5, 6, 7, 1, 9, 5, 6})[7], -2.0f);
}

TEST(SamplerDry, WindowAllowedLengthAndHugeRepeats) {
  const std::vector<int32_t> h = {1, 2, 3, 0, 0, 0, 1, 2};
  DryPenalty whole(dry(1.0f, 2.0f, 2, -1));
  EXPECT_LT(penalized(whole, 4, h)[3], 0.0f);
  DryPenalty window(dry(1.0f, 2.0f, 2, 5));  // 0 0 0 1 2: "1 2" came once
  EXPECT_EQ(penalized(window, 4, h)[3], 0.0f);
  DryPenalty off(dry(1.0f, 2.0f, 2, 0));
  EXPECT_EQ(penalized(off, 4, h)[3], 0.0f);
  // 400 equal tokens: the exponent is clamped where pow would pass FLT_MAX.
  DryPenalty big(dry(1.0f, 2.0f, 0, -1));
  const float worst = penalized(big, 2, std::vector<int32_t>(400, 1))[1];
  EXPECT_TRUE(std::isfinite(worst));
  EXPECT_LT(worst, -1e37f);
}

TEST(SamplerDry, RefusesBadSettings) {
  EXPECT_THROW(DryPenalty(dry(-1.0f, 1.75f, 2, -1)), Error);
  EXPECT_THROW(DryPenalty(dry(1.0f, 0.5f, 2, -1)), Error);
  EXPECT_THROW(DryPenalty(dry(1.0f, 1.75f, -1, -1)), Error);
  EXPECT_THROW(DryPenalty(dry(1.0f, 1.75f, 2, -2)), Error);
  DryPenalty d(dry(1.0f, 1.75f, 2, -1));
  std::vector<float> logits(4, 0.0f);
  EXPECT_THROW(d.apply(logits.data(), 4, {1, 2, 7, 1, 2}), Error);
}

TEST(SamplerDry, RunsInTheSamplerAfterThePenalties) {
  // repeat penalty 2 halves the positive logit of 2 first, then DRY subtracts 1.
  SamplingParams p = dry(1.0f, 1.75f, 2, -1);
  p.repeat_penalty = 2.0f;
  Sampler s(p, 3);
  std::vector<float> logits = {0.0f, 0.0f, 4.0f};
  std::map<int32_t, double> got;
  for (const TokenProb& t : s.distribution(logits.data(), {0, 1, 2, 0, 1})) got[t.id] = t.p;
  // Penalties: the window holds 0, 1, 2 -> logits 0, 0, 2; DRY: "0 1" came before 2 -> 1.
  const double z = 2 + std::exp(1.0);
  EXPECT_NEAR(got[2], std::exp(1.0) / z, 1e-5);
  EXPECT_NEAR(got[0], 1 / z, 1e-5);
}

TEST(SamplerDry, BreakerStringsBecomeTokenSequences) {
  // 256 "xE" (ends with the start of END), 257 "EN", 258 "ENDS" (contains
  // it), 259 "Q" + newline (contains the newline).
  test::ByteVocabOptions plain;  // normal tokens, no BOS
  plain.extra_type = 1;
  plain.with_bos = false;
  auto v = test::byte_vocab({"xE", "EN", "ENDS", "Q" + byte_to_unicode('\n')}, plain);
  const auto got = dry_breakers(*v->tok, {"\n", "END", ""});
  DryBreakers want = {{'\n'}, {259}, {258}, {'E', 'N', 'D'}, {256, 'N', 'D'}, {257, 'D'}};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*got, want);
  EXPECT_EQ(dry_breakers(*v->tok, {"\n", "END", ""}).get(), got.get());  // built once
}

TEST(SamplerTopNSigma, KeepsTheTokensNearTheBest) {
  // Logits 0 1 2 3 10: mean 3.2, deviation sqrt((3.2^2 + 2.2^2 + 1.2^2 +
  // 0.2^2 + 6.8^2) / 5) = 3.544; n = 1: floor 6.46 keeps only 10; n = 2:
  // floor 2.91 keeps 3 too.
  const std::vector<float> base = {0, 1, 2, 3, 10};
  SamplingParams p = filters_off(1.0f);
  p.top_n_sigma = 1.0f;
  Sampler one(p, 5);
  std::vector<float> logits = base;
  EXPECT_EQ(one.distribution(logits.data(), {}).size(), 1u);
  p.top_n_sigma = 2.0f;
  Sampler two(p, 5);
  logits = base;
  std::map<int32_t, double> got;
  for (const TokenProb& t : two.distribution(logits.data(), {})) got[t.id] = t.p;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NEAR(got[3], 1 / (1 + std::exp(7.0)), 1e-6);
  // A banned token is not in the statistics: logits -20 1 2 3 10 with -20
  // banned have deviation 3.536, so n = 1 keeps 10 alone; counting -20
  // (deviation 10.1) would keep four.
  const std::vector<float> outlier = {-20, 1, 2, 3, 10};
  p.logit_bias = {{0, -INFINITY}};
  p.top_n_sigma = 1.0f;
  Sampler banned(p, 5);
  logits = outlier;
  EXPECT_EQ(banned.distribution(logits.data(), {}).size(), 1u);
  p.top_n_sigma = -1.0f;  // off
  Sampler off(p, 5);
  logits = outlier;
  EXPECT_EQ(off.distribution(logits.data(), {}).size(), 4u);
}

}  // namespace
}  // namespace onellm
