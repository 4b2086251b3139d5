// Kernel math against naive double-precision loops, and the thread pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

const TensorType kAllComputable[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                     TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                     TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                                     TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};

struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> dequantized;  // rows x cols, what the kernel must multiply by
  MatrixView view;
};

Matrix make_matrix(TensorType type, int64_t rows, int64_t cols, uint32_t seed) {
  Matrix m;
  const std::vector<float> w = gaussian(static_cast<size_t>(rows * cols), seed);
  const size_t rb = tensor_row_bytes(type, cols);
  m.bytes.resize(rb * static_cast<size_t>(rows));
  m.dequantized.resize(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, w.data() + r * cols, m.bytes.data() + r * rb, cols);
    dequantize_row(type, m.bytes.data() + r * rb, m.dequantized.data() + r * cols, cols);
  }
  m.view = MatrixView{type, m.bytes.data(), rows, cols};
  return m;
}

TEST(Matmul, MatchesDoubleLoopOnAllTypes) {
  ThreadPool pool(3);
  for (TensorType type : kAllComputable) {
    const int64_t block = tensor_type_info(type).block_elems;
    const int64_t cols = block == 1 ? 77 : block * 3;  // odd where the type allows
    const int64_t rows = 13;
    const Matrix m = make_matrix(type, rows, cols, 100 + static_cast<uint32_t>(type));
    for (int64_t n_tokens = 1; n_tokens <= 7; ++n_tokens) {
      const std::vector<float> x = gaussian(static_cast<size_t>(n_tokens * cols), 7 + static_cast<uint32_t>(n_tokens));
      std::vector<float> y(static_cast<size_t>(n_tokens * rows), -1.0f);
      matmul(m.view, x.data(), n_tokens, y.data(), n_tokens % 2 ? &pool : nullptr);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          double ref = 0, mag = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const double p = static_cast<double>(m.dequantized[r * cols + c]) * x[t * cols + c];
            ref += p;
            mag += std::fabs(p);
          }
          // Float summation of `cols` terms: error ~ cols * eps * sum |p|.
          ASSERT_NEAR(y[t * rows + r], ref, 1e-6 * static_cast<double>(cols) * mag + 1e-30)
              << tensor_type_info(type).name << " t=" << t << " r=" << r;
        }
      }
    }
  }
}

TEST(Matmul, ThreadCountDoesNotChangeResults) {
  const Matrix m = make_matrix(TensorType::Q4_K, 67, 512, 3);
  const std::vector<float> x = gaussian(5 * 512, 4);
  std::vector<float> y1(5 * 67), y;
  matmul(m.view, x.data(), 5, y1.data(), nullptr);
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    y.assign(y1.size(), 0.0f);
    matmul(m.view, x.data(), 5, y.data(), &pool);
    EXPECT_EQ(y, y1) << threads << " threads";
  }
}

TEST(Matmul, EmptyAndBadShapes) {
  const Matrix m = make_matrix(TensorType::Q8_0, 4, 64, 5);
  std::vector<float> x(64), y(4);
  EXPECT_NO_THROW(matmul(m.view, x.data(), 0, y.data(), nullptr));
  MatrixView bad = m.view;
  bad.cols = 48;  // not a whole number of Q8_0 blocks
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), nullptr), Error);
  bad = m.view;
  bad.type = TensorType::I8;  // a ggml type onellm does not multiply with
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), nullptr), Error);
  bad = m.view;
  bad.data = nullptr;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), nullptr), Error);
}

TEST(MatrixRow, DequantizesOneRow) {
  const Matrix m = make_matrix(TensorType::Q5_1, 9, 96, 6);
  std::vector<float> row(96);
  matrix_row(m.view, 7, row.data());
  EXPECT_EQ(row, std::vector<float>(m.dequantized.begin() + 7 * 96, m.dequantized.begin() + 8 * 96));
  EXPECT_THROW(matrix_row(m.view, 9, row.data()), Error);
  EXPECT_THROW(matrix_row(m.view, -1, row.data()), Error);
}

TEST(Ops, RmsNorm) {
  const std::vector<float> x = gaussian(37, 8), w = gaussian(37, 9);
  std::vector<float> out(37);
  rms_norm(x.data(), w.data(), out.data(), 37, 1e-6f);
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  const double inv = 1.0 / std::sqrt(ss / 37 + 1e-6);
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], x[i] * inv * w[i], 1e-6 * std::fabs(x[i] * inv * w[i]) + 1e-7);
  // eps matters for tiny inputs: x = 0 gives 0, not NaN.
  std::vector<float> zero(8, 0.0f), ones(8, 1.0f), z(8);
  rms_norm(zero.data(), ones.data(), z.data(), 8, 1e-5f);
  for (float v : z) EXPECT_EQ(v, 0.0f);
}

TEST(Ops, SoftmaxIsStable) {
  std::vector<float> x = {1000.0f, 999.0f, 998.0f, -1e30f, -std::numeric_limits<float>::infinity()};
  softmax_inplace(x.data(), 5);
  const double e1 = std::exp(-1.0), e2 = std::exp(-2.0), s = 1 + e1 + e2;
  EXPECT_NEAR(x[0], 1 / s, 1e-6);
  EXPECT_NEAR(x[1], e1 / s, 1e-6);
  EXPECT_NEAR(x[2], e2 / s, 1e-6);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_EQ(x[4], 0.0f);
  std::vector<float> r = gaussian(1000, 10);
  softmax_inplace(r.data(), 1000);
  double sum = 0;
  for (float v : r) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(Ops, Swiglu) {
  const std::vector<float> g = {0.0f, 1.0f, -2.0f, 20.0f, -100.0f}, u = {3.0f, 2.0f, 1.0f, 0.5f, 1.0f};
  std::vector<float> out(5);
  swiglu(g.data(), u.data(), out.data(), 5);
  for (int i = 0; i < 5; ++i) {
    const double silu = g[i] / (1.0 + std::exp(-static_cast<double>(g[i])));
    EXPECT_NEAR(out[i], silu * u[i], 1e-6 * std::fabs(silu * u[i]) + 1e-30) << i;
  }
}

// ---- thread pool

TEST(ThreadPool, CoversTheRangeExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 5, 31, 32, 33, 64, 96, 1000, 8960, 200003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> calls{0};
      std::mutex mu;
      std::vector<int64_t> sizes;
      pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        EXPECT_LT(begin, end);
        ++calls;
        for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
        std::lock_guard<std::mutex> lock(mu);
        sizes.push_back(end - begin);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << n << " " << i;
      // Pieces of at least 1/16 of a share, plus the remainders steals leave.
      EXPECT_LE(calls, std::max(1, threads * 32));
      if (threads > 1 && n >= threads * 16) {
        // Pieces halve what is left of a share, down to 1/16 of it, so the
        // first is at most half a share and the threads end close together.
        // (Beyond 65535 items a range is cut in units of n / 65535 items.)
        const int64_t unit = n / 65535 + 1;
        const auto [smallest, largest] = std::minmax_element(sizes.begin(), sizes.end());
        EXPECT_LE(*largest, n / (2 * threads) + unit) << n;
        EXPECT_LE(*smallest, n / (16 * threads) + unit) << n;
      }
    }
  }
}

// A worker held up in its first piece (descheduled, say) does not hold up
// the job: the caller steals the rest of that worker's share.
TEST(ThreadPool, CallerStealsTheShareOfAStalledWorker) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int64_t> caller_units{0}, worker_units{0};
  std::atomic<bool> stalled{false};
  pool.parallel_for(64, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) {
      caller_units += e - b;
      return;
    }
    if (!stalled.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    worker_units += e - b;
  });
  EXPECT_EQ(caller_units + worker_units, 64);
  // The worker's first piece is half its share (16 units); the caller runs
  // its own 32 and steals the other 16 while the worker sleeps. (A worker
  // that never started at all leaves the caller all 64.)
  EXPECT_GE(caller_units, 48);
}

TEST(ThreadPool, ManyCallsAndNesting) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  for (int call = 0; call < 5000; ++call)
    pool.parallel_for(8, [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total, 5000 * 8);
  // A nested parallel_for runs inline instead of deadlocking.
  std::atomic<int64_t> inner{0};
  pool.parallel_for(4, [&](int64_t, int64_t) { pool.parallel_for(10, [&](int64_t b, int64_t e) { inner += e - b; }); });
  EXPECT_EQ(inner, 40);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(9, [](int64_t b, int64_t) { if (b > 0) throw std::runtime_error("worker"); }),
               std::runtime_error);
  EXPECT_THROW(pool.parallel_for(9, [](int64_t b, int64_t) { if (b == 0) throw Error("caller"); }), Error);
  int64_t sum = 0;  // still usable afterwards
  pool.parallel_for(1, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum, 1);
  EXPECT_THROW(ThreadPool(0), Error);
}

}  // namespace
}  // namespace onellm
