// Shadow outliers (llm.npu's "shadow outlier execution"), for prefill. The
// integer kernels quantize activations with one scale per block of 32 (or
// 256) values, so a single value far above the rest of its block (LLMs have
// a few such "massive activation" channels) leaves the other values of that block
// one or two int8 levels: their products are mostly lost. Such values are
// taken out before quantizing and multiplied in a second, small product over
// only the tokens that have them, where each sits alone (or among other
// outliers) in its block and so quantizes exactly; the results are added.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cmath>
#include <cstring>

#include "kernels/fast_kernels.h"

namespace onellm::fast {
namespace {

// A value is an outlier above this many times the RMS of its token's other
// values: at 64x it costs the other values of its int8 block ~25x their
// error. Gaussian-like activations never get there, massive activations
// (hundreds to thousands of times the RMS) always do. The heavy tails of a
// SwiGLU output mostly stay below: in onellm's own model 12 % of the down
// projection's input rows reach 20x, 0.6 % reach 50x (max ~60x); handling
// everything above 20x bought ~10 % less KL divergence from the exact path
// and cost (with the first, unscreened scan) 25 % of its prefill speed.
constexpr float kOutlierRatio = 64.0f;

// max |x| of a row through the float bits: with the sign cleared, finite
// floats order as their bit patterns, so this is an integer max the
// compiler vectorizes (a float max reduction it may not reorder). Inf and
// NaN come out >= 0x7f800000.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))  // SSE2 has no 32-bit max
#endif
uint32_t peak_bits(const float* row, int64_t cols) {
  uint32_t peak = 0;
  for (int64_t j = 0; j < cols; ++j) {
    uint32_t bits;
    std::memcpy(&bits, row + j, sizeof bits);
    peak = std::max(peak, bits & 0x7fffffffu);
  }
  return peak;
}

// The limit above which a value of this token is an outlier, or 0 if none
// can be. Screened first with two vectorized passes (max |x|, sum of
// squares): most rows stop there. A massive value dominates the plain RMS
// (its ratio to it is at most sqrt(cols)), so the RMS is then taken again
// without the values above 8x the last one, until nothing more is left out
// (a smaller spike hides behind a larger one for one round).
float outlier_limit(const float* row, int64_t cols) {
  const uint32_t bits = peak_bits(row, cols);
  if (bits >= 0x7f800000u || bits == 0) return 0.0f;  // inf/nan (left to the int8 path) or all zero
  float peak;
  std::memcpy(&peak, &bits, sizeof peak);
  double rms = std::sqrt(static_cast<double>(dot_f32(row, row, cols)) / static_cast<double>(cols));
  // A spike of kOutlierRatio times the rest's RMS is at least
  // sqrt(cols R^2 / (R^2 + cols)) times the plain RMS; half of that still
  // finds four equal spikes in one row. Gaussian-like rows (max ~4-5 RMS)
  // stop here.
  const double r2 = static_cast<double>(kOutlierRatio) * kOutlierRatio;
  const double screen = std::max(4.0, 0.5 * std::sqrt(static_cast<double>(cols) * r2 / (r2 + static_cast<double>(cols))));
  if (!(peak > screen * rms)) return 0.0f;
  for (int round = 0; round < 4; ++round) {
    const double cut = 8.0 * rms;
    double sum_sq = 0.0, peak_kept = 0.0;
    int64_t kept = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const double v = std::fabs(row[j]);
      if (v > cut) continue;
      sum_sq += v * v;
      peak_kept = std::max(peak_kept, v);
      ++kept;
    }
    if (kept == 0) return 0.0f;
    rms = std::sqrt(sum_sq / static_cast<double>(kept));
    if (!(rms > 0.0) || peak_kept <= 8.0 * rms) break;  // nothing more to leave out
  }
  return peak > kOutlierRatio * rms ? kOutlierRatio * static_cast<float>(rms) : 0.0f;
}

std::atomic<bool>& shadow_flag() {
  static std::atomic<bool> flag{[] {
    const char* e = std::getenv("ONELLM_SHADOW_OUTLIERS");
    return e == nullptr || std::strcmp(e, "0") != 0;
  }()};
  return flag;
}

}  // namespace

bool find_activation_outliers(const float* x, int64_t n_tokens, int64_t cols,
                              const std::function<bool(int64_t token)>& candidate, ActivationOutliers* out) {
  out->tokens.clear();
  out->inliers.clear();
  out->spikes.clear();
  // The second product costs tokens / n_tokens of the first (or one weight
  // stream for a few tokens); past an eighth of the tokens the rest keep
  // their outliers in int8.
  const int64_t max_tokens = std::max<int64_t>(8, n_tokens / 8);
  for (int64_t t = 0; t < n_tokens && static_cast<int64_t>(out->tokens.size()) < max_tokens; ++t) {
    if (!candidate(t)) continue;
    const float* row = x + t * cols;
    const float limit = outlier_limit(row, cols);
    if (!(limit > 0.0f)) continue;
    bool found = false;
    for (int64_t j = 0; j < cols; ++j) {
      if (!(std::fabs(row[j]) > limit)) continue;
      if (!found) {
        out->tokens.push_back(t);
        out->inliers.insert(out->inliers.end(), row, row + cols);
        out->spikes.resize(out->inliers.size(), 0.0f);
        found = true;
      }
      const size_t at = (out->tokens.size() - 1) * static_cast<size_t>(cols) + static_cast<size_t>(j);
      out->spikes[at] = row[j];
      out->inliers[at] = 0.0f;
    }
  }
  return !out->tokens.empty();
}

}  // namespace onellm::fast

namespace onellm {
bool shadow_outliers_enabled() { return fast::shadow_flag().load(std::memory_order_relaxed); }
void set_shadow_outliers(bool on) { fast::shadow_flag().store(on, std::memory_order_relaxed); }
}  // namespace onellm
