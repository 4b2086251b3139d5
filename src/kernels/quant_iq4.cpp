// The non-linear 4-bit types IQ4_NL and IQ4_XS: levels index the 16 values
// of kIq4Values, so a block spends its 16 codes where weights are dense
// (near zero) instead of on an even grid. Dequantization follows ggml's
// operation order (d * (ls - 32) first, then times the value) so a row
// dequantizes to the same floats as in ggml.
//
// Quantization is onellm's own: per 32 elements, a small search over
// scales, each scored by the least-squares error weighted by x^2 (the large
// weights matter most to a matmul), with every element on its nearest value.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.h"
#include "kernels/quant_lanes.h"

namespace onellm::quant {
namespace {

constexpr int kSub = 32;  // elements per scale

// Index of the value of kIq4Values nearest to v (ties to the lower index).
int nearest_iq4(float v) {
  int lo = 0, hi = 15;
  while (hi - lo > 1) {  // the values are sorted
    const int mid = (lo + hi) / 2;
    (v < kIq4Values[mid] ? hi : lo) = mid;
  }
  return v - kIq4Values[lo] <= kIq4Values[hi] - v ? lo : hi;
}

// The element of largest |x| (max) and the weights x^2 of a search; false
// (and L all 0) for 32 zeros.
bool iq4_weights(const float* x, uint8_t* L, float& max, float* w) {
  float amax = 0;
  max = 0;
  for (int i = 0; i < kSub; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax == 0) {
    std::fill(L, L + kSub, uint8_t{0});
    return false;
  }
  for (int i = 0; i < kSub; ++i) w[i] = x[i] * x[i];
  return true;
}

// Levels of 32 elements at the stored scale (after rounding it), as nibbles:
// qs[l] holds element l (low) and l + 16 (high).
void pack_levels(const float* x, float scale, uint8_t* qs) {
  const float inv = scale != 0 ? 1.0f / scale : 0.0f;
  for (int l = 0; l < kSub / 2; ++l) {
    const int lo = nearest_iq4(x[l] * inv), hi = nearest_iq4(x[l + kSub / 2] * inv);
    qs[l] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

void unpack_levels(const uint8_t* qs, float scale, float* y) {
  for (int l = 0; l < kSub / 2; ++l) {
    y[l] = scale * kIq4Values[qs[l] & 0xF];
    y[l + kSub / 2] = scale * kIq4Values[qs[l] >> 4];
  }
}

}  // namespace

// Best scale for 32 elements: x ~= scale * kIq4Values[L]. Tries inverse
// scales within 7 levels of the one that puts the largest |x| on -127 or on
// +113, refits each assignment by least squares, keeps the
// least weighted error. Writes the levels of the best scale to L.
float search_iq4_scale(const float* x, uint8_t* L) {
  float max, w[kSub];
  if (!iq4_weights(x, L, max, w)) return 0;
  float best_scale = 0, best_score = -1;
  uint8_t trial[kSub];
  // The extreme level: -127 for the largest element, or +113 on its side
  // (the table is asymmetric, so either sign can fit better).
  for (const float extreme : {static_cast<float>(kIq4Values[0]), static_cast<float>(kIq4Values[15])}) {
    for (int step = -7; step <= 7; ++step) {
      const float inv = (extreme + static_cast<float>(step)) / max;
      float sum_xv = 0, sum_vv = 0;
      for (int i = 0; i < kSub; ++i) {
        trial[i] = static_cast<uint8_t>(nearest_iq4(x[i] * inv));
        const float v = kIq4Values[trial[i]];
        sum_xv += w[i] * x[i] * v;
        sum_vv += w[i] * v * v;
      }
      // Weighted error at the least-squares scale sum_xv / sum_vv is
      // sum(w x^2) - sum_xv^2 / sum_vv: maximize sum_xv^2 / sum_vv.
      if (sum_vv <= 0) continue;
      const float score = sum_xv * sum_xv / sum_vv;
      if (score > best_score) {
        best_score = score;
        best_scale = sum_xv / sum_vv;
        std::copy(trial, trial + kSub, L);
      }
    }
  }
  return best_scale;
}


namespace {

using namespace lanes;

// The IQ4 value nearest_iq4 picks for each lane's v: the binary search ends
// with lo the last index in 1..14 whose value is <= v (else 0) and hi = lo + 1,
// so lo's value is the largest such value and hi's the next one; the tie
// test is nearest_iq4's, in the same float operations.
V nearest_iq4_value(V v) {
  V lo = splat(static_cast<float>(kIq4Values[0])), hi = splat(static_cast<float>(kIq4Values[15]));
  for (int k = 1; k <= 14; ++k) {
    const V value = splat(static_cast<float>(kIq4Values[k]));
    lo = select(value <= v, value, lo);
  }
  for (int k = 14; k >= 1; --k) {
    const V value = splat(static_cast<float>(kIq4Values[k]));
    hi = select(value > v, value, hi);
  }
  return select(v - lo <= hi - v, lo, hi);
}

}  // namespace

// search_iq4_scale's 30 trial scales 8 at a time, one lane each; the trials
// are independent until the best is chosen, which is done in their order.
ONELLM_LANE_CLONES float search_iq4_scale_lanes(const float* x, uint8_t* L) {
  float max, w[kSub];
  if (!iq4_weights(x, L, max, w)) return 0;
  constexpr int kTrials = 30, kPadded = 32;  // -127 then +113 as the extreme, steps -7..7
  float inv[kPadded], sum_xv[kPadded], sum_vv[kPadded];
  for (int c = 0; c < kPadded; ++c) {
    const int t = c < kTrials ? c : 0;
    const float extreme = static_cast<float>(t < 15 ? kIq4Values[0] : kIq4Values[15]);
    inv[c] = (extreme + static_cast<float>(t % 15 - 7)) / max;
  }
  for (int c0 = 0; c0 < kPadded; c0 += 8) {
    const V vinv = load(inv + c0);
    V sxv = splat(0.0f), svv = sxv;
    for (int i = 0; i < kSub; ++i) {
      const V v = nearest_iq4_value(x[i] * vinv);
      sxv += w[i] * x[i] * v;
      svv += w[i] * v * v;
    }
    std::memcpy(sum_xv + c0, &sxv, sizeof sxv);
    std::memcpy(sum_vv + c0, &svv, sizeof svv);
  }
  float best_scale = 0, best_score = -1;
  int chosen = -1;
  for (int c = 0; c < kTrials; ++c) {
    if (sum_vv[c] <= 0) continue;
    const float score = sum_xv[c] * sum_xv[c] / sum_vv[c];
    if (score > best_score) {
      best_score = score;
      best_scale = sum_xv[c] / sum_vv[c];
      chosen = c;
    }
  }
  if (chosen >= 0)
    for (int i = 0; i < kSub; ++i) L[i] = static_cast<uint8_t>(nearest_iq4(x[i] * inv[chosen]));
  return best_scale;
}

void dequantize_IQ4_NL(const BlockIQ4_NL* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kSub) unpack_levels(src[b].qs, load_half(src[b].d), dst);
}

void quantize_IQ4_NL(const float* src, BlockIQ4_NL* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kSub) {
    uint8_t L[kSub];
    store_half(dst[b].d, search_iq4_scale_lanes(src, L));
    pack_levels(src, load_half(dst[b].d), dst[b].qs);
  }
}

void dequantize_IQ4_XS(const BlockIQ4_XS* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float d = load_half(src[b].d);
    for (int j = 0; j < kSuperBlock / kSub; ++j, dst += kSub)
      unpack_levels(src[b].qs + 16 * j, d * static_cast<float>(iq4_xs_scale(src[b], j)), dst);
  }
}

// Each sub-block's best float scale, then one d for the super-block such
// that the 6-bit d * (ls - 32) come closest: the largest |scale| maps to -32
// (ls = 0) on its own sign, the others round to the nearest step.
void quantize_IQ4_XS(const float* src, BlockIQ4_XS* dst, int64_t n_blocks) {
  constexpr int kSubs = kSuperBlock / kSub;
  for (int64_t b = 0; b < n_blocks; ++b, src += kSuperBlock) {
    float scales[kSubs], max_scale = 0;
    uint8_t L[kSub];
    for (int j = 0; j < kSubs; ++j) {
      scales[j] = search_iq4_scale_lanes(src + kSub * j, L);
      if (std::fabs(scales[j]) > std::fabs(max_scale)) max_scale = scales[j];
    }
    store_half(dst[b].d, max_scale / -32);
    const float d = load_half(dst[b].d), inv = d != 0 ? 1.0f / d : 0.0f;
    dst[b].scales_h[0] = dst[b].scales_h[1] = 0;
    for (int j = 0; j < kSubs; ++j) {
      const int ls = std::clamp(nearest_int(inv * scales[j]), -32, 31) + 32;
      if (j % 2 == 0) dst[b].scales_l[j / 2] = static_cast<uint8_t>(ls & 0xF);
      else dst[b].scales_l[j / 2] |= static_cast<uint8_t>((ls & 0xF) << 4);
      dst[b].scales_h[j / 4] |= static_cast<uint8_t>((ls >> 4) << (2 * (j % 4)));
      pack_levels(src + kSub * j, d * static_cast<float>(ls - 32), dst[b].qs + 16 * j);
    }
  }
}

}  // namespace onellm::quant
