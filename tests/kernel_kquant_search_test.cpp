// The K-quant scale searches for a super-block's sub-blocks at once, one
// lane per sub-block (quant_k_lanes.cpp), checked bit for bit against the
// single searches (quant_k_search.cpp), which follow ggml's reference
// quantizers (make_qkx2_quants, make_qx_quants) one candidate at a time; and
// the IQ4 search's candidate scales 8 at a time against one at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/quant_blocks.h"

namespace onellm::quant {
namespace {

// Groups of values of the kinds a model has: Gaussian, all of one sign,
// with outliers, constant, zero, tiny, and with repeated values.
std::vector<float> group_of(int kind, int n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  switch (kind % 7) {
    case 1: for (float& v : x) v = std::fabs(v) + 0.5f; break;
    case 2: x[rng() % n] *= 40.0f; break;
    case 3: std::fill(x.begin(), x.end(), 0.25f); break;
    case 4: std::fill(x.begin(), x.end(), 0.0f); break;
    case 5: for (float& v : x) v *= 1e-6f; break;
    case 6: for (float& v : x) v = std::round(v * 2.0f) / 2.0f; break;
    default: break;
  }
  return x;
}

// kSearchLanes groups, each of another kind.
std::vector<float> lanes_of(int first_kind, int n, std::mt19937& rng) {
  std::vector<float> x;
  for (int g = 0; g < kSearchLanes; ++g) {
    const std::vector<float> group = group_of(first_kind + g * 3, n, rng);
    x.insert(x.end(), group.begin(), group.end());
  }
  return x;
}

TEST(KQuantSearch, LanesGiveTheSingleMinimumSearchesBits) {
  std::mt19937 rng(7);
  // (n, nmax, rmin, rdelta, nstep, use_mad) as Q4_K, Q5_K and Q2_K call it.
  struct Params { int n, nmax; float rmin, rdelta; int nstep; bool mad; };
  for (const Params& p : {Params{32, 15, -1.0f, 0.1f, 20, false}, Params{32, 31, -0.5f, 0.1f, 15, false},
                          Params{16, 3, -0.5f, 0.1f, 15, true}}) {
    for (int trial = 0; trial < 600; ++trial) {
      const std::vector<float> x = lanes_of(trial, p.n, rng);
      std::vector<float> w(x.size());
      for (size_t i = 0; i < x.size(); ++i) w[i] = 0.3f + std::fabs(x[i]);
      uint8_t L1[kSearchLanes * 32], L2[kSearchLanes * 32];
      float m1[kSearchLanes], m2[kSearchLanes], s1[kSearchLanes], s2[kSearchLanes];
      for (int g = 0; g < kSearchLanes; ++g)
        s1[g] = search_scale_min(p.n, p.nmax, &x[g * p.n], &w[g * p.n], L1 + g * p.n, &m1[g], p.rmin, p.rdelta,
                                 p.nstep, p.mad);
      search_scale_min_lanes(p.n, p.nmax, x.data(), w.data(), L2, m2, s2, p.rmin, p.rdelta, p.nstep, p.mad);
      ASSERT_EQ(std::memcmp(s1, s2, sizeof s1), 0) << "nmax " << p.nmax << " trial " << trial;
      ASSERT_EQ(std::memcmp(m1, m2, sizeof m1), 0) << "nmax " << p.nmax << " trial " << trial;
      ASSERT_EQ(std::memcmp(L1, L2, static_cast<size_t>(kSearchLanes * p.n)), 0)
          << "nmax " << p.nmax << " trial " << trial;
    }
  }
}

TEST(KQuantSearch, LanesGiveTheSingleSymmetricSearchesBits) {
  std::mt19937 rng(8);
  for (int trial = 0; trial < 1500; ++trial) {
    const std::vector<float> x = lanes_of(trial, 16, rng);
    int8_t L1[kSearchLanes * 16], L2[kSearchLanes * 16];
    float s1[kSearchLanes], s2[kSearchLanes];
    for (int g = 0; g < kSearchLanes; ++g) s1[g] = search_scale_symmetric(16, 32, &x[g * 16], L1 + g * 16);
    search_scale_symmetric_lanes(16, 32, x.data(), L2, s2);
    ASSERT_EQ(std::memcmp(s1, s2, sizeof s1), 0) << "trial " << trial;
    ASSERT_EQ(std::memcmp(L1, L2, sizeof L1), 0) << "trial " << trial;
  }
}

TEST(KQuantSearch, IQ4LanesGiveTheSingleSearchsBits) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 4000; ++trial) {
    const std::vector<float> x = group_of(trial, 32, rng);
    uint8_t L1[32] = {}, L2[32] = {};
    const float s1 = search_iq4_scale(x.data(), L1), s2 = search_iq4_scale_lanes(x.data(), L2);
    ASSERT_EQ(std::memcmp(&s1, &s2, sizeof s1), 0) << "trial " << trial << ": " << s1 << " vs " << s2;
    ASSERT_EQ(std::memcmp(L1, L2, sizeof L1), 0) << "trial " << trial;
  }
}

}  // namespace
}  // namespace onellm::quant
