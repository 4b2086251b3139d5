// Attention over KV rows (F32, F16, Q8_0) at every CPU level against a
// double-precision softmax on the same dequantized rows: the online softmax
// must give the same output and probabilities as the two-pass reference,
// for key counts around the 32-key block edges and head sizes that are not
// a multiple of the vector width (F16/F32), with rows at unaligned strides.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

struct Rows {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // dequantized, what attention must use
  KvRows view;
};

// n rows of `dim` values each at a stride of a whole row plus 6 bytes (unaligned).
Rows make_rows(TensorType type, int64_t n, int64_t dim, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, spread);
  Rows r;
  const size_t rb = tensor_row_bytes(type, dim), stride = rb + 6;
  r.bytes.assign(stride * static_cast<size_t>(n) + 3, 0);
  r.values.resize(static_cast<size_t>(n * dim));
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t j = 0; j < n; ++j) {
    for (float& x : row) x = dist(rng);
    uint8_t* at = r.bytes.data() + 3 + j * stride;
    quantize_row(type, row.data(), at, dim);
    dequantize_row(type, at, r.values.data() + j * dim, dim);
  }
  r.view = {type, r.bytes.data() + 3, stride};
  return r;
}

void reference(const std::vector<float>& q, const Rows& k, const Rows& v, int64_t n, int64_t dim, float scale,
               std::vector<double>& out, std::vector<double>& probs) {
  probs.assign(static_cast<size_t>(n), 0.0);
  double mx = -1e300;
  for (int64_t j = 0; j < n; ++j) {
    double s = 0;
    for (int64_t d = 0; d < dim; ++d) s += double(q[d]) * k.values[j * dim + d];
    probs[j] = s * scale;
    mx = std::max(mx, probs[j]);
  }
  double total = 0;
  for (double& p : probs) total += (p = std::exp(p - mx));
  for (double& p : probs) p /= total;
  out.assign(static_cast<size_t>(dim), 0.0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = 0; d < dim; ++d) out[d] += probs[j] * v.values[j * dim + d];
}

TEST(Attention, OnlineSoftmaxMatchesTwoPassAtEveryLevelAndType) {
  const CpuLevel saved = cpu_level();
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (int64_t dim : {32, 64, 128, 8, 20}) {
      if (type == TensorType::Q8_0 && dim % 32 != 0) continue;
      for (int64_t n : {1, 31, 32, 33, 100}) {
        // A large spread makes later blocks raise the running maximum.
        const Rows k = make_rows(type, n, dim, 11 + static_cast<uint32_t>(n), 3.0f);
        const Rows v = make_rows(type, n, dim, 99 + static_cast<uint32_t>(dim), 1.0f);
        std::vector<float> q(static_cast<size_t>(dim));
        std::mt19937 rng(5);
        std::normal_distribution<float> dist;
        for (float& x : q) x = dist(rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
        std::vector<double> want, want_p;
        reference(q, k, v, n, dim, scale, want, want_p);
        std::vector<float> out(static_cast<size_t>(dim)), probs(static_cast<size_t>(n));
        auto check = [&](const char* what) {
          for (int64_t d = 0; d < dim; ++d) ASSERT_NEAR(out[d], want[d], 2e-5) << what << " d=" << d;
          double sum = 0;
          for (int64_t j = 0; j < n; ++j) {
            ASSERT_NEAR(probs[j], want_p[j], 2e-6) << what << " j=" << j;
            sum += probs[j];
          }
          EXPECT_NEAR(sum, 1.0, 1e-5) << what;
        };
        for (CpuLevel level : {CpuLevel::kScalar, CpuLevel::kAvx2, CpuLevel::kAvx512, CpuLevel::kNeon}) {
          if (!cpu_level_supported(level)) continue;
          attend_at(level, q.data(), k.view, v.view, n, dim, scale, out.data(), probs.data());
          check(cpu_level_name(level));
        }
        attend_exact(q.data(), k.view, v.view, n, dim, scale, out.data(), probs.data());
        check("exact");
      }
    }
  set_cpu_level(saved);
}

TEST(Attention, UnsupportedRowsAreErrors) {
  std::vector<float> q(20), out(20);
  std::vector<uint8_t> bytes(1024);
  KvRows q8{TensorType::Q8_0, bytes.data(), 34};
  EXPECT_THROW(attend(q.data(), q8, q8, 1, 20, 1.0f, out.data(), nullptr), Error);  // 20 is not a block multiple
  KvRows q4{TensorType::Q4_0, bytes.data(), 18};
  EXPECT_THROW(attend(q.data(), q4, q4, 1, 32, 1.0f, out.data(), nullptr), Error);
}

}  // namespace
}  // namespace onellm
