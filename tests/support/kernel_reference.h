// Reference math shared by the kernel tests: the GoogleTest suites on the
// build machine and tests/arm/kernels_check.cpp (cross-built, under qemu),
// so no test framework here.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/kernels.h"

namespace onellm::test {

// Whether matmul_fast quantizes the activations for weights of type t (the
// int8 kernels), and the block size it quantizes them in.
inline bool quantized_activations(TensorType t) {
  return t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16;
}
inline int64_t activation_block(TensorType t) {
  return tensor_type_info(t).block_elems == 256 && t != TensorType::IQ4_XS ? 256 : 32;
}

// Every computable weight type but F32: the ones a row converts to and
// from (dequantize / quantize round trips, stored matrices).
inline constexpr TensorType kNonF32Types[] = {
    TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
    TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
    TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};

// Matmul test shapes, per weight block size: 1 block, odd block counts and
// a long row (F32/F16/BF16: element counts off the vector width).
inline std::vector<int64_t> matmul_test_col_counts(int64_t block_elems) {
  if (block_elems == 1) return {1, 7, 33, 200, 1031};
  if (block_elems == 32) return {32, 96, 224, 1056};
  return {256, 768};
}

// Attention test shapes: head sizes (some not a multiple of the vector
// width; Q8_0 rows take only multiples of 32) and key counts around the
// 32-key block edges.
inline constexpr int64_t kAttentionHeadDims[] = {32, 64, 128, 8, 20};
inline constexpr int64_t kAttentionKeyCounts[] = {1, 31, 32, 33, 100};

// For the dot of weight row w with activation row x (cols elements): how far
// the fast path may be from the exact one when x is quantized to 8-bit
// blocks of blk elements (|x - q*d| <= d/2, d = block amax / 127), i.e.
// sum |w_c| * amax / 254. Zero when not `quantized`. *magnitude receives
// sum |w_c * x_c|, the scale of the float rounding error.
inline double activation_quantization_bound(const float* w, const float* x, int64_t cols, int64_t blk, bool quantized,
                                            double* magnitude) {
  double bound = 0;
  *magnitude = 0;
  for (int64_t c0 = 0; c0 < cols; c0 += blk) {
    double amax = 0;
    for (int64_t c = c0; c < c0 + blk && c < cols; ++c) amax = std::max(amax, std::fabs(double(x[c])));
    for (int64_t c = c0; c < c0 + blk && c < cols; ++c) {
      *magnitude += std::fabs(double(w[c]) * x[c]);
      if (quantized) bound += std::fabs(double(w[c])) * amax / 127.0 * 0.5;
    }
  }
  return bound;
}

// For the dot of w and x (cols elements) computed with both rounded to BF16
// (the AMX level's prefill) and summed in F32. BF16 keeps 8 significant
// bits: each factor is off by at most 2^-8 of itself, and such errors have
// a standard deviation of at most 2^-8 / sqrt(3). They are independent
// across c, so the sum's error has a deviation of at most 2^-8 sqrt(2/3)
// sqrt(sum (w_c x_c)^2); the bound is six of those (a simulation of Q4_1
// rows: largest of 3000 at 3.4 deviations), plus the F32 summation's share
// of sum |w_c x_c|. The worst case, 2^-7 sum |w_c x_c|, would let a wrong
// element through on long rows; this one does not.
inline double bf16_product_bound(const float* w, const float* x, int64_t cols) {
  double squares = 0, magnitude = 0;
  for (int64_t c = 0; c < cols; ++c) {
    const double p = double(w[c]) * x[c];
    squares += p * p;
    magnitude += std::fabs(p);
  }
  return 6.0 * 0.8165 * std::ldexp(std::sqrt(squares), -8) + 2e-5 * magnitude + 1e-6;
}

// Attention of query q over n keys / values (dequantized rows of dim
// values): a two-pass softmax of scale * q . k_j in double precision.
inline void attention_reference(const float* q, const float* k_values, const float* v_values, int64_t n, int64_t dim,
                                float scale, std::vector<double>& out, std::vector<double>& probs) {
  probs.assign(static_cast<size_t>(n), 0.0);
  double mx = -1e300;
  for (int64_t j = 0; j < n; ++j) {
    double s = 0;
    for (int64_t d = 0; d < dim; ++d) s += double(q[d]) * k_values[j * dim + d];
    probs[j] = s * scale;
    mx = std::max(mx, probs[j]);
  }
  double total = 0;
  for (double& p : probs) total += (p = std::exp(p - mx));
  for (double& p : probs) p /= total;
  out.assign(static_cast<size_t>(dim), 0.0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = 0; d < dim; ++d) out[d] += probs[j] * v_values[j * dim + d];
}

// n KV rows of `dim` values, normal with the given spread, at a stride of a
// whole row plus 6 bytes from an odd offset (unaligned), and their values
// dequantized (what attention must use).
struct KvTestRows {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  KvRows view;

  KvTestRows(TensorType type, int64_t n, int64_t dim, uint32_t seed, float spread) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, spread);
    const size_t stride = tensor_row_bytes(type, dim) + 6;
    bytes.assign(stride * static_cast<size_t>(n) + 3, 0);
    values.resize(static_cast<size_t>(n * dim));
    std::vector<float> row(static_cast<size_t>(dim));
    for (int64_t j = 0; j < n; ++j) {
      for (float& x : row) x = dist(rng);
      uint8_t* at = bytes.data() + 3 + j * stride;
      quantize_row(type, row.data(), at, dim);
      dequantize_row(type, at, values.data() + j * dim, dim);
    }
    view = {type, bytes.data() + 3, stride};
  }
};

// Every attention test case: each KV row type, head size (Q8_0 only at
// multiples of 32) and key count, with keys of a large spread (later blocks
// raise the online softmax's running maximum) and values of spread 1.
struct AttentionCase {
  TensorType type;
  int64_t dim, n;
  const KvTestRows& k;
  const KvTestRows& v;
  float scale;
};
template <typename Fn>
void for_each_attention_case(const Fn& fn) {
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (int64_t dim : kAttentionHeadDims) {
      if (type == TensorType::Q8_0 && dim % 32 != 0) continue;
      for (int64_t n : kAttentionKeyCounts) {
        const KvTestRows k(type, n, dim, 11 + static_cast<uint32_t>(n), 3.0f);
        const KvTestRows v(type, n, dim, 99 + static_cast<uint32_t>(dim), 1.0f);
        fn(AttentionCase{type, dim, n, k, v, 1.0f / std::sqrt(static_cast<float>(dim))});
      }
    }
}

// Inputs of the vector exp and SwiGLU (Kernels::exp_f32, swiglu_f32), each
// from index 1 (unaligned), with libm's values in double: softmax-like
// inputs down to -inf and SiLU inputs of both signs. Lengths off the
// vector widths leave tails.
inline constexpr int64_t kExpLengths[] = {1, 3, 4, 5, 7, 8, 9, 23, 100};
struct ExpSwigluCase {
  std::vector<float> x, gate, up;     // n + 1 values; index 0 unused
  std::vector<double> exp_x, swiglu;  // the wanted values at the same indices
  ExpSwigluCase(int64_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> wide(-90.0f, 20.0f), g(-30.0f, 30.0f);
    const size_t size = static_cast<size_t>(n) + 1;
    x.resize(size), gate.resize(size), up.resize(size), exp_x.resize(size), swiglu.resize(size);
    for (size_t i = 0; i < size; ++i) {
      x[i] = i % 11 == 3 ? -INFINITY : wide(rng);
      gate[i] = g(rng);
      up[i] = g(rng);
      exp_x[i] = std::exp(double(x[i]));
      swiglu[i] = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
    }
  }
  // The tolerances: 2e-7 relative for exp (within 2 ulp of expf), 1e-6 for SwiGLU.
  double exp_tolerance(size_t i) const { return 2e-7 * exp_x[i] + 1e-37; }
  double swiglu_tolerance(size_t i) const { return 1e-6 * std::fabs(swiglu[i]) + 1e-30; }
};

// C (m x n, stride ldc) += A B (training's backward products), A(i, p) =
// a[i * a_si + p * a_sk]: row-major m x k, or stored as k x m when
// transposed. B and C rows are padded; values uniform in [-1, 1].
struct AccumulateProblem {
  int64_t m, n, k, ldb, ldc, a_si, a_sk;
  std::vector<float> a, b, c0;

  AccumulateProblem(int64_t m_, int64_t n_, int64_t k_, bool transposed, std::mt19937& rng)
      : m(m_), n(n_), k(k_), ldb(n_ + 3), ldc(n_ + 1), a_si(transposed ? 1 : k_), a_sk(transposed ? m_ : 1) {
    std::uniform_real_distribution<float> u(-1, 1);
    a.resize(static_cast<size_t>(m * k));
    b.resize(static_cast<size_t>(k * ldb));
    c0.resize(static_cast<size_t>(m * ldc));
    for (std::vector<float>* v : {&a, &b, &c0})
      for (float& x : *v) x = u(rng);
  }
  // Element (i, j) of c0 + A B in double precision.
  double want(int64_t i, int64_t j) const {
    double sum = c0[static_cast<size_t>(i * ldc + j)];
    for (int64_t p = 0; p < k; ++p) sum += double(a[i * a_si + p * a_sk]) * b[p * ldb + j];
    return sum;
  }
};
// Shapes that take every column path of the kernels (32-, 16-, 8-, 4-wide,
// masked and single columns) and the 6-, 12- and 24-row blocks and their
// remainders (23, 47: 8 + 8 + 4 + 2 + 1 after the 24-row blocks).
struct AccumulateShape {
  int64_t m, n, k;
};
inline constexpr AccumulateShape kAccumulateShapes[] = {{1, 1, 1},    {5, 7, 3},     {6, 16, 9},    {7, 21, 5},
                                                        {13, 29, 40}, {50, 100, 33}, {97, 130, 257},
                                                        {23, 48, 17}, {47, 31, 9},   {40, 17, 3}};

}  // namespace onellm::test
