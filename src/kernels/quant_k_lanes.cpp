// The K-quant scale searches of quant_k_search.cpp for kSearchLanes
// sub-blocks at once, one lane per sub-block. A search tries its candidate
// scales one after another and each choice moves the next candidate's grid,
// so within a sub-block nothing can run ahead; but the sub-blocks of a
// super-block are independent. Each lane does exactly the scalar search's
// operations in its order (sums over the elements in sequence, no fused
// multiply-adds, a lane's choice taken with a select), so every lane's result
// is search_scale_min's or search_scale_symmetric's bits, while the lanes
// vectorize and their addition chains overlap.
#include <cstdint>
#include <cstring>

#include "kernels/quant_blocks.h"
#include "kernels/quant_lanes.h"

namespace onellm::quant {
namespace {

using namespace lanes;
static_assert(kSearchLanes == 8, "one vector of 8 floats");
constexpr int kMaxGroup = 32;  // elements per sub-block: 32 (Q4_K, Q5_K) or 16

// Element i of the 8 groups (x + g*n + i) as one vector.
void transpose(const float* x, int n, V* out) {
  for (int i = 0; i < n; ++i) {
    float lane[kSearchLanes];
    for (int g = 0; g < kSearchLanes; ++g) lane[g] = x[g * n + i];
    out[i] = load(lane);
  }
}

}  // namespace

ONELLM_LANE_CLONES void search_scale_min_lanes(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                                               float* neg_min, float* scales, float rmin, float rdelta, int nstep,
                                               bool use_mad) {
  V xt[kMaxGroup] = {}, wt[kMaxGroup] = {};
  transpose(x, n, xt);
  transpose(weights, n, wt);
  const auto error_of = [use_mad](V diff) { return use_mad ? fabs(diff) : diff * diff; };
  V mn = xt[0], mx = xt[0], sum_w = wt[0], sum_x = sum_w * xt[0];
  for (int i = 1; i < n; ++i) {
    mn = select(xt[i] < mn, xt[i], mn);  // std::min(mn, x)
    mx = select(mx < xt[i], xt[i], mx);  // std::max(mx, x)
    sum_w += wt[i];
    sum_x += wt[i] * xt[i];
  }
  mn = select(mn > 0.0f, splat(0.0f), mn);  // the offset only ever lowers values
  const V flat_min = mn;
  VI best_l[kMaxGroup], l_aux[kMaxGroup];
  V iscale = static_cast<float>(nmax) / (mx - mn), scale = 1.0f / iscale, best = splat(0.0f);
  for (int i = 0; i < n; ++i) {
    best_l[i] = clamp(round_small(iscale * (xt[i] - mn)), 0, nmax);
    best += wt[i] * error_of(scale * to_float(best_l[i]) + mn - xt[i]);
  }
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * step + nmax) / (mx - mn);
    V sum_l = splat(0.0f), sum_l2 = sum_l, sum_xl = sum_l;
    for (int i = 0; i < n; ++i) {
      l_aux[i] = clamp(round_small(iscale * (xt[i] - mn)), 0, nmax);
      const V l = to_float(l_aux[i]), wl = wt[i] * l;
      sum_l += wl;
      sum_l2 += wl * l;
      sum_xl += wl * xt[i];
    }
    // Weighted least squares for x ~= scale*l + m over each lane's levels.
    const V det = sum_w * sum_l2 - sum_l * sum_l;
    V this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    V this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    const VI positive = this_min > 0.0f;
    this_min = select(positive, splat(0.0f), this_min);
    this_scale = select(positive, sum_xl / sum_l2, this_scale);
    V error = splat(0.0f);
    for (int i = 0; i < n; ++i) error += wt[i] * error_of(this_scale * to_float(l_aux[i]) + this_min - xt[i]);
    const VI take = (det > 0.0f) & (error < best);
    best = select(take, error, best);
    scale = select(take, this_scale, scale);
    mn = select(take, this_min, mn);
    for (int i = 0; i < n; ++i) best_l[i] = select(take, l_aux[i], best_l[i]);
  }
  for (int g = 0; g < kSearchLanes; ++g) {
    const bool flat = mx[g] == flat_min[g];
    for (int i = 0; i < n; ++i) L[g * n + i] = flat ? 0 : static_cast<uint8_t>(best_l[i][g]);
    neg_min[g] = -(flat ? flat_min[g] : mn[g]);
    scales[g] = flat ? 0.0f : scale[g];
  }
}

ONELLM_LANE_CLONES void search_scale_symmetric_lanes(int n, int nmax, const float* x, int8_t* L, float* scales) {
  constexpr float kAllZero = 1e-15f;  // as search_scale_symmetric
  V xt[kMaxGroup] = {};
  transpose(x, n, xt);
  V amax = splat(0.0f), max = amax;
  for (int i = 0; i < n; ++i) {
    const VI larger = fabs(xt[i]) > amax;
    max = select(larger, xt[i], max);
    amax = select(larger, fabs(xt[i]), amax);
  }
  // Levels for inverse scale iscale and their weighted fit sums (w = x^2).
  VI levels[kMaxGroup], best_l[kMaxGroup];
  V sumlx, suml2;
  const auto fit = [&](V iscale) {
    sumlx = suml2 = splat(0.0f);
    for (int i = 0; i < n; ++i) {
      levels[i] = clamp(round_small(iscale * xt[i]), -nmax, nmax - 1);
      const V l = to_float(levels[i]), w = xt[i] * xt[i];
      sumlx += w * xt[i] * l;
      suml2 += w * l * l;
    }
  };
  fit(static_cast<float>(-nmax) / max);
  std::memcpy(best_l, levels, sizeof best_l);
  V scale = select(suml2 != 0.0f, sumlx / suml2, splat(0.0f));
  V best = scale * sumlx;  // the error reduction sumlx^2/suml2
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    fit(-(nmax + 0.1f * step) / max);
    const VI take = (suml2 > 0.0f) & (sumlx * sumlx > best * suml2);
    scale = select(take, sumlx / suml2, scale);
    best = select(take, scale * sumlx, best);
    for (int i = 0; i < n; ++i) best_l[i] = select(take, levels[i], best_l[i]);
  }
  for (int g = 0; g < kSearchLanes; ++g) {
    const bool zero = amax[g] < kAllZero;
    for (int i = 0; i < n; ++i) L[g * n + i] = zero ? 0 : static_cast<int8_t>(best_l[i][g] + nmax);
    scales[g] = zero ? 0.0f : scale[g];
  }
}

}  // namespace onellm::quant
