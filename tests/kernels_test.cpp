// Kernel layer: half/bfloat16 conversions, the legacy block types built byte
// by byte from the GGUF spec, quantization error bounds, and size checks.
// K-quants are in kernel_kquant_test.cpp, the math and threads in
// kernel_ops_test.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

// ---- helpers (test-side, from the spec)

void put_half(std::vector<uint8_t>& b, size_t at, uint16_t h) {
  b[at] = static_cast<uint8_t>(h & 0xFF);
  b[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> dequant(TensorType type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(type, bytes.data(), out.data(), n);
  return out;
}

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double rms(const std::vector<float>& a) {
  double s = 0;
  for (float x : a) s += static_cast<double>(x) * x;
  return std::sqrt(s / static_cast<double>(a.size()));
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(tensor_row_bytes(type, static_cast<int64_t>(x.size())));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return dequant(type, q, static_cast<int64_t>(x.size()));
}

// ---- half and bfloat16

TEST(Fp16, ExactValuesBothWays) {
  struct Case { uint16_t h; float f; };
  const Case cases[] = {
      {0x0000, 0.0f},          {0x3C00, 1.0f},           {0xC000, -2.0f},
      {0x3555, 0.333251953125f}, {0x7BFF, 65504.0f},     {0x0400, 6.103515625e-05f},  // smallest normal
      {0x0001, 5.9604644775390625e-08f},                 // smallest subnormal, 2^-24
      {0x03FF, 6.097555160522461e-05f},                  // largest subnormal
      {0x8001, -5.9604644775390625e-08f}, {0x3800, 0.5f}, {0x4248, 3.140625f},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(fp16_to_f32(c.h), c.f) << std::hex << c.h;
    EXPECT_EQ(f32_to_fp16(c.f), c.h) << c.f;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_f32(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(f32_to_fp16(-0.0f), 0x8000);
}

TEST(Fp16, InfinityNanAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp16_to_f32(0x7C00), inf);
  EXPECT_EQ(fp16_to_f32(0xFC00), -inf);
  EXPECT_TRUE(std::isnan(fp16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_f32(0x7C01)));  // signalling NaN stays NaN
  EXPECT_EQ(f32_to_fp16(inf), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-inf), 0xFC00);
  const uint16_t nan = f32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  EXPECT_NE(f32_to_fp16(std::bit_cast<float>(0x7F800001u)) & 0x03FF, 0);  // tiny payload must not become inf
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7C00);  // halfway to 2^16 rounds (to even) up to inf
  EXPECT_EQ(f32_to_fp16(65519.99f), 0x7BFF);
  EXPECT_EQ(f32_to_fp16(1e10f), 0x7C00);
}

TEST(Fp16, RoundsToNearestEven) {
  // Around 1.0 the half step is 2^-10; the float ulp there is 2^-23.
  const float step = std::ldexp(1.0f, -10);
  EXPECT_EQ(f32_to_fp16(1.0f + step / 2), 0x3C00);                      // tie -> even (down)
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * step / 2), 0x3C02);                  // tie -> even (up)
  EXPECT_EQ(f32_to_fp16(1.0f + step / 2 + std::ldexp(1.0f, -23)), 0x3C01);  // just above the tie
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);                // tie between 0 and 2^-24 -> 0
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);                // 1.5 * 2^-24: tie -> even
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // top subnormal rounds into the smallest normal
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(Fp16, RowConversionMatchesScalarForEveryHalf) {
  std::vector<uint8_t> bytes;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    bytes.push_back(static_cast<uint8_t>(h & 0xFF));
    bytes.push_back(static_cast<uint8_t>(h >> 8));
  }
  const std::vector<float> row = dequant(TensorType::F16, bytes, 0x10000);
  for (uint32_t h = 0; h < 0x10000; ++h)
    ASSERT_EQ(std::bit_cast<uint32_t>(row[h]), std::bit_cast<uint32_t>(fp16_to_f32(static_cast<uint16_t>(h)))) << std::hex << h;
  const std::vector<float> brow = dequant(TensorType::BF16, bytes, 0x10000);
  for (uint32_t h = 0; h < 0x10000; ++h)
    ASSERT_EQ(std::bit_cast<uint32_t>(brow[h]), std::bit_cast<uint32_t>(bf16_to_f32(static_cast<uint16_t>(h)))) << std::hex << h;
}

TEST(Fp16, MatchesCorrectlyRoundedReference) {
  // Reference: the nearest half by exhaustive comparison in double, ties to even.
  std::vector<double> halves;
  for (uint32_t h = 0; h < 0x7C00; ++h) halves.push_back(fp16_to_f32(static_cast<uint16_t>(h)));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-27.0f, 16.5f);
  for (int i = 0; i < 20000; ++i) {
    const float f = std::exp2(exponent(rng));
    const auto it = std::lower_bound(halves.begin(), halves.end(), static_cast<double>(f));
    uint32_t expect;
    if (it == halves.end()) {
      expect = f < 65520.0f ? 0x7BFF : 0x7C00;  // 65520 is halfway to 2^16, where inf sits
    } else if (*it == f || it == halves.begin()) {
      expect = static_cast<uint32_t>(it - halves.begin());
    } else {
      const uint32_t hi = static_cast<uint32_t>(it - halves.begin()), lo = hi - 1;
      const double dlo = f - halves[lo], dhi = halves[hi] - f;
      expect = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
    }
    ASSERT_EQ(f32_to_fp16(f), expect) << f;
    ASSERT_EQ(f32_to_fp16(-f), expect | 0x8000) << -f;
  }
}

TEST(Bf16, ConversionsRoundToNearestEven) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC040), -3.0f);
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));  // subnormal
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even (down)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX rounds to inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  const uint16_t nan = f32_to_bf16(std::bit_cast<float>(0x7F800001u));  // payload only in the low bits
  EXPECT_TRUE(std::isnan(bf16_to_f32(nan)));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h);
  }
}

TEST(PlainRows, F16AndBf16RowsAreLittleEndian) {
  const std::vector<uint8_t> f16 = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00};
  EXPECT_EQ(dequant(TensorType::F16, f16, 3), (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  const std::vector<uint8_t> bf16 = {0x80, 0x3F, 0x40, 0xC0};
  EXPECT_EQ(dequant(TensorType::BF16, bf16, 2), (std::vector<float>{1.0f, -3.0f}));
  const std::vector<float> x = {0.1f, -7.25f, 65504.0f};
  std::vector<uint8_t> q(6);
  quantize_row(TensorType::F16, x.data(), q.data(), 3);
  EXPECT_EQ(q, (std::vector<uint8_t>{0x66, 0x2E, 0x40, 0xC7, 0xFF, 0x7B}));
}

// ---- legacy blocks, built from chosen quants and scales

TEST(LegacyBlocks, Q4_0LowNibblesFirstHalf) {
  // Two blocks: d = 0.5, then d = -0.333251953125 (half 0xB555).
  std::vector<uint8_t> b(36);
  put_half(b, 0, 0x3800);
  put_half(b, 18, 0xB555);
  std::vector<int> q(64);
  for (int i = 0; i < 64; ++i) q[i] = (i * 7 + 3) % 16;
  for (int blk = 0; blk < 2; ++blk)
    for (int j = 0; j < 16; ++j) b[18 * blk + 2 + j] = static_cast<uint8_t>(q[32 * blk + j] | (q[32 * blk + 16 + j] << 4));
  const std::vector<float> y = dequant(TensorType::Q4_0, b, 64);
  for (int i = 0; i < 64; ++i) {
    const float d = i < 32 ? 0.5f : -0.333251953125f;
    EXPECT_EQ(y[i], static_cast<float>(q[i] - 8) * d) << i;
  }
  EXPECT_EQ(y[0], -2.5f);  // q = 3
}

TEST(LegacyBlocks, Q4_1AddsMin) {
  std::vector<uint8_t> b(20);
  put_half(b, 0, 0x3400);  // d = 0.25
  put_half(b, 2, 0xBC00);  // m = -1
  for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequant(TensorType::Q4_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], j * 0.25f - 1.0f);
    EXPECT_EQ(y[16 + j], (15 - j) * 0.25f - 1.0f);
  }
}

// Q5: bit 4 of element i is bit i of the little-endian 32-bit qh.
std::vector<uint8_t> q5_block(bool with_min, const std::vector<int>& q, uint16_t d, uint16_t m) {
  const size_t qh_at = with_min ? 4 : 2;
  std::vector<uint8_t> b(qh_at + 4 + 16);
  put_half(b, 0, d);
  if (with_min) put_half(b, 2, m);
  for (int i = 0; i < 32; ++i)
    if (q[i] & 16) b[qh_at + i / 8] |= static_cast<uint8_t>(1 << (i % 8));
  for (int j = 0; j < 16; ++j) b[qh_at + 4 + j] = static_cast<uint8_t>((q[j] & 15) | ((q[16 + j] & 15) << 4));
  return b;
}

TEST(LegacyBlocks, Q5_0AndQ5_1FifthBit) {
  std::vector<int> q(32);
  for (int i = 0; i < 32; ++i) q[i] = (i * 13 + 5) % 32;
  const std::vector<float> y0 = dequant(TensorType::Q5_0, q5_block(false, q, 0x3C00, 0), 32);
  const std::vector<float> y1 = dequant(TensorType::Q5_1, q5_block(true, q, 0x3800, 0x4000), 32);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(y0[i], static_cast<float>(q[i] - 16)) << i;
    EXPECT_EQ(y1[i], q[i] * 0.5f + 2.0f) << i;
  }
  // A single high bit: element 17 (high nibble of byte 1, qh bit 17).
  std::vector<uint8_t> b(22, 0);
  put_half(b, 0, 0x3C00);
  b[2 + 2] = 0x02;
  const std::vector<float> y = dequant(TensorType::Q5_0, b, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], i == 17 ? 0.0f : -16.0f) << i;
}

TEST(LegacyBlocks, Q8_0SignedQuants) {
  std::vector<uint8_t> b(68);
  put_half(b, 0, 0x2E66);   // 0.0999755859375
  put_half(b, 34, 0xC200);  // -3
  for (int i = 0; i < 64; ++i) b[(i / 32) * 34 + 2 + i % 32] = static_cast<uint8_t>(static_cast<int8_t>(i * 4 - 128));
  const std::vector<float> y = dequant(TensorType::Q8_0, b, 64);
  for (int i = 0; i < 64; ++i) {
    const float d = i < 32 ? 0.0999755859375f : -3.0f;
    EXPECT_EQ(y[i], static_cast<float>((i % 32) * 4 + (i >= 32 ? 128 : 0) - 128) * d) << i;
  }
}

// ---- quantization

TEST(Quantize, Q8_0AndQ4_0ExactOnRepresentableInput) {
  // A block whose values are integers times a scale that is exact in half
  // precision quantizes without any error.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>((i * 11) % 255 - 127) * 0.03125f;
  x[5] = 127 * 0.03125f;
  EXPECT_EQ(round_trip(TensorType::Q8_0, x), x);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>((i * 5) % 16 - 8) * 0.25f;
  x[3] = -8 * 0.25f;
  EXPECT_EQ(round_trip(TensorType::Q4_0, x), x);
}

TEST(Quantize, Q4_0RoundsToNearestLevel) {
  // max |x| = -4 gives d = 0.5; 1.2 -> level 2 (1.0), 1.3 -> 1.5.
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;
  x[1] = 1.2f;
  x[2] = 1.3f;
  x[20] = 3.9f;  // the top level is +7*d = 3.5
  std::vector<uint8_t> q(18);
  quantize_row(TensorType::Q4_0, x.data(), q.data(), 32);
  EXPECT_EQ(q[0] | (q[1] << 8), 0x3800);  // d = max / -8 = 0.5
  const std::vector<float> y = dequant(TensorType::Q4_0, q, 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], 1.5f);
  EXPECT_EQ(y[20], 3.5f);
}

TEST(Quantize, ZeroRowsStayZero) {
  const std::vector<float> zero(512, 0.0f);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                       TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                       TensorType::IQ4_NL, TensorType::IQ4_XS})
    EXPECT_EQ(round_trip(t, zero), zero) << tensor_type_info(t).name;
}

struct ErrorBound { TensorType type; double max_relative_rmse; };

// Relative RMSE (rmse / rms of the data) for unit Gaussian data. The bounds
// sit ~25% above what these quantizers reach (which is about step/sqrt(12)
// for each type's step size, e.g. Q8_0: max|x|/127 ~ 2.2/127 -> 0.005); a
// broken layout or a wrong scale gives errors of order 1.
TEST(Quantize, GaussianErrorWithinBounds) {
  const ErrorBound bounds[] = {
      {TensorType::F16, 0.00025}, {TensorType::BF16, 0.0021}, {TensorType::Q8_0, 0.0068},
      {TensorType::Q6_K, 0.022},  {TensorType::Q5_1, 0.048},  {TensorType::Q5_0, 0.054},
      {TensorType::Q5_K, 0.045},  {TensorType::Q4_1, 0.097},  {TensorType::Q4_0, 0.11},
      {TensorType::Q4_K, 0.089},  {TensorType::Q3_K, 0.19},   {TensorType::Q2_K, 0.37},
      {TensorType::IQ4_NL, 0.095}, {TensorType::IQ4_XS, 0.095},
  };
  const std::vector<float> x = gaussian(256 * 24, 42);
  for (const ErrorBound& b : bounds) {
    const double rel = rmse(x, round_trip(b.type, x)) / rms(x);
    EXPECT_LT(rel, b.max_relative_rmse) << tensor_type_info(b.type).name;
    EXPECT_GT(rel, 0.0) << tensor_type_info(b.type).name;
    std::printf("  %-5s relative rmse %.5f (bound %.4f)\n", tensor_type_info(b.type).name, rel, b.max_relative_rmse);
  }
}

TEST(Quantize, ScaleInvarianceAndOutliers) {
  // With an outlier every 61 values, tiny and huge magnitudes lose the same
  // relative precision (half-precision scales have range enough for both).
  std::vector<float> base = gaussian(256 * 4, 9);
  for (size_t i = 0; i < base.size(); i += 61) base[i] *= 8;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K, TensorType::IQ4_NL,
                       TensorType::IQ4_XS}) {
    double rel[2];
    for (int k = 0; k < 2; ++k) {
      std::vector<float> x = base;
      for (float& v : x) v *= k == 0 ? 1e-3f : 30.0f;
      rel[k] = rmse(x, round_trip(t, x)) / rms(x);
    }
    EXPECT_LT(rel[1], t == TensorType::Q8_0 || t == TensorType::Q6_K ? 0.04 : 0.2) << tensor_type_info(t).name;
    EXPECT_NEAR(rel[0], rel[1], 0.05 * rel[1]) << tensor_type_info(t).name;
  }
}

// ---- sizes and unsupported types

TEST(Rows, BadSizesAndTypesThrow) {
  std::vector<float> f(512);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(dequantize_row(TensorType::Q4_0, q.data(), f.data(), 33), Error);
  EXPECT_THROW(quantize_row(TensorType::Q8_0, f.data(), q.data(), 48), Error);
  EXPECT_THROW(dequantize_row(TensorType::Q4_K, q.data(), f.data(), 128), Error);
  EXPECT_THROW(quantize_row(TensorType::Q6_K, f.data(), q.data(), 300), Error);
  EXPECT_THROW(dequantize_row(TensorType::Q4_0, q.data(), f.data(), -32), Error);
  EXPECT_THROW(dequantize_row(TensorType::IQ2_XXS, q.data(), f.data(), 256), Error);
  EXPECT_THROW(quantize_row(TensorType::Q8_1, f.data(), q.data(), 32), Error);
  EXPECT_THROW(dequantize_row(static_cast<TensorType>(99), q.data(), f.data(), 32), Error);
  try {
    dequantize_row(TensorType::Q5_K, q.data(), f.data(), 100);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q5_K"), std::string::npos) << e.what();
  }
  // Zero elements is a valid, empty row.
  EXPECT_NO_THROW(dequantize_row(TensorType::Q4_0, q.data(), f.data(), 0));
}

TEST(Rows, MultipleBlocksAreIndependent) {
  // Each block of a long row decodes as if it were alone.
  const std::vector<float> x = gaussian(256 * 3, 5);
  for (TensorType t : {TensorType::Q4_1, TensorType::Q5_0, TensorType::Q3_K, TensorType::Q5_K}) {
    const int64_t be = tensor_type_info(t).block_elems;
    const size_t bb = tensor_type_info(t).block_bytes;
    std::vector<uint8_t> whole(tensor_row_bytes(t, 768));
    quantize_row(t, x.data(), whole.data(), 768);
    for (int64_t blk = 0; blk * be < 768; ++blk) {
      std::vector<uint8_t> one(bb);
      quantize_row(t, x.data() + blk * be, one.data(), be);
      ASSERT_EQ(0, std::memcmp(one.data(), whole.data() + blk * bb, bb)) << tensor_type_info(t).name << " " << blk;
    }
  }
}

}  // namespace
}  // namespace onellm
