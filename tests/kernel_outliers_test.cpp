// Shadow outliers in prefill: activations far above the rest of their token
// are multiplied on their own beside the int8 product. Checked against a double
// precision product with the same (dequantized) weights: with outliers of
// hundreds of times the RMS, the fast path's error stays what it is without
// them, at every level, for packed and GGUF-layout weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/fast_kernels.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

struct Weights {
  std::vector<uint8_t> gguf;
  std::vector<uint8_t> packed_storage;
  std::vector<float> deq;
  MatrixView plain, packed;
};

Weights make_weights(TensorType type, int64_t rows, int64_t cols, uint32_t seed) {
  Weights w;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> f(static_cast<size_t>(cols));
  const size_t row_bytes = tensor_row_bytes(type, cols);
  w.gguf.resize(row_bytes * static_cast<size_t>(rows));
  w.deq.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : f) v = normal(rng);
    quantize_row(type, f.data(), w.gguf.data() + r * row_bytes, cols);
    dequantize_row(type, w.gguf.data() + r * row_bytes, w.deq.data() + r * cols, cols);
  }
  w.plain = MatrixView{type, w.gguf.data(), rows, cols};
  w.packed = w.plain;
  if (const size_t n = packed_matrix_bytes(type, rows, cols); n > 0) {
    w.packed_storage.assign(n + 64, 0);
    auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(w.packed_storage.data()) + 63) / 64 * 64);
    pack_matrix(w.plain, aligned);
    w.packed.packed = aligned;
  }
  return w;
}

// Largest |fast - exact| over all outputs.
float max_error(CpuLevel level, const MatrixView& m, const std::vector<float>& deq, const std::vector<float>& x,
                int64_t n_tokens, ThreadPool* pool) {
  std::vector<float> y(static_cast<size_t>(n_tokens * m.rows));
  matmul_fast_at(level, m, x.data(), n_tokens, y.data(), pool);
  float worst = 0.0f;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < m.rows; ++r) {
      double exact = 0.0;
      for (int64_t c = 0; c < m.cols; ++c) exact += static_cast<double>(deq[r * m.cols + c]) * x[t * m.cols + c];
      worst = std::max(worst, static_cast<float>(std::fabs(y[t * m.rows + r] - exact)));
    }
  return worst;
}

TEST(ShadowOutliers, KeepThePrefillErrorOfActivationsWithoutOutliers) {
  ThreadPool pool(2);
  const bool was = shadow_outliers_enabled();
  set_shadow_outliers(true);
  const int64_t rows = 40, cols = 512, n_tokens = 20;  // a partial panel; prefill-sized
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> clean(static_cast<size_t>(n_tokens * cols));
  for (float& v : clean) v = normal(rng);
  std::vector<float> spiked = clean;
  spiked[3 * cols + 5] = 500.0f;     // channel 5 on two tokens (one column, two uses)
  spiked[12 * cols + 5] = -300.0f;
  spiked[7 * cols + 300] = 800.0f;   // and another channel
  spiked[19 * cols + 511] = 450.0f;  // the last column
  for (TensorType type : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K}) {
    const Weights w = make_weights(type, rows, cols, 11);
    for (CpuLevel level : kCpuLevels) {
      if (!cpu_level_supported(level)) continue;
      for (const MatrixView* m : {&w.plain, &w.packed}) {
        const float base = max_error(level, *m, w.deq, clean, n_tokens, &pool);
        const float with = max_error(level, *m, w.deq, spiked, n_tokens, &pool);
        // Without the shadow path, an outlier's int8 block keeps ~1 level for
        // its other values: errors of ~14 instead of ~0.9 here.
        EXPECT_LE(with, 2.0f * base + 1e-3f) << tensor_type_info(type).name << " " << cpu_level_name(level)
                                             << (m->packed != nullptr ? " packed" : " gguf rows");
      }
    }
  }
  set_shadow_outliers(was);
}

TEST(ShadowOutliers, FindsOnlyFarOutliersAndCapsTheTokens) {
  const int64_t cols = 256, n = 64;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (float& v : x) v = normal(rng) * 6.0f;
  fast::ActivationOutliers o;
  const auto every = [](int64_t) { return true; };
  EXPECT_FALSE(fast::find_activation_outliers(x.data(), n, cols, every, &o)) << "Gaussian activations have none";
  std::fill(x.begin(), x.begin() + cols, 0.0f);  // an all-zero token
  x[cols + 3] = std::nanf("");                  // a token with a NaN: left to the int8 path
  x[2 * cols + 3] = 1e4f;                       // one spike: 16x the plain RMS of its token, 1600x the rest
  x[2 * cols + 200] = -2e3f;
  ASSERT_TRUE(fast::find_activation_outliers(x.data(), n, cols, every, &o));
  ASSERT_EQ(o.tokens, std::vector<int64_t>{2});
  ASSERT_EQ(o.spikes.size(), static_cast<size_t>(cols));
  ASSERT_EQ(o.inliers.size(), static_cast<size_t>(cols)) << "only the rows of tokens with outliers";
  for (int64_t j = 0; j < cols; ++j) {
    const bool spike = j == 3 || j == 200;
    EXPECT_EQ(o.spikes[j], spike ? x[2 * cols + j] : 0.0f) << j;
    EXPECT_EQ(o.inliers[j], spike ? 0.0f : x[2 * cols + j]) << j;
  }
  for (int64_t t = 10; t < 50; ++t) x[t * cols + t] = 1e4f * (t % 2 ? 1.0f : -1.0f);  // 40 more tokens
  ASSERT_TRUE(fast::find_activation_outliers(x.data(), n, cols, every, &o));
  ASSERT_EQ(o.tokens.size(), 8u) << "at most max(8, n / 8) tokens; the rest keep their outliers in int8";
  EXPECT_EQ(o.tokens.back(), 16) << "tokens 49 and the others past the cap are left to the int8 path";
  EXPECT_EQ(o.inliers[1 * cols + 10], 0.0f) << "token 10's outlier zeroed in its row";
  EXPECT_EQ(o.spikes[1 * cols + 10], 1e4f * -1.0f);
}

}  // namespace
}  // namespace onellm
