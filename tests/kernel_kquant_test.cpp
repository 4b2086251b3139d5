// K-quant blocks (Q2_K..Q6_K): hand-computed bytes, and random blocks packed
// here from the ggml layout description (element e of a super-block, its
// sub-block, bit positions), decoded by dequantize_row and compared exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"

namespace onellm {
namespace {

constexpr int kQK = 256;

void put_half(std::vector<uint8_t>& b, size_t at, uint16_t h) {
  b[at] = static_cast<uint8_t>(h & 0xFF);
  b[at + 1] = static_cast<uint8_t>(h >> 8);
}

// Sets `width` bits of byte `at` starting at bit `shift`.
void set_bits(std::vector<uint8_t>& b, size_t at, int shift, int width, int value) {
  const int mask = ((1 << width) - 1) << shift;
  b[at] = static_cast<uint8_t>((b[at] & ~mask) | ((value << shift) & mask));
}

std::vector<float> dequant(TensorType type, const std::vector<uint8_t>& bytes) {
  std::vector<float> out(kQK);
  dequantize_row(type, bytes.data(), out.data(), kQK);
  return out;
}

// ---- hand-computed examples

TEST(KQuantBlocks, Q4_KHandComputed) {
  std::vector<uint8_t> b(144, 0);
  put_half(b, 0, 0x3C00);  // d = 1
  put_half(b, 2, 0x3800);  // dmin = 0.5
  const uint8_t scales[12] = {0x41, 2, 3, 4, 5, 6, 7, 8, 0x21, 0x43, 0x65, 0x87};
  std::memcpy(&b[4], scales, 12);
  b[16 + 0] = 0x5A;
  const std::vector<float> y = dequant(TensorType::Q4_K, b);
  EXPECT_EQ(y[0], 7.5f);     // sub-block 0: sc 1, m 5 -> 10*1 - 2.5
  EXPECT_EQ(y[1], -2.5f);    // q 0
  EXPECT_EQ(y[32], 7.0f);    // sub-block 1 (high nibble of qs[0]): sc 2, m 6 -> 5*2 - 3
  EXPECT_EQ(y[128], -1.0f);  // sub-block 4: sc 1|1<<4 = 17, m 2 -> -1
  EXPECT_EQ(y[160], -2.0f);  // sub-block 5: sc 3, m 4|0 -> -2
  EXPECT_EQ(y[255], -0.5f * ((0x87 >> 4) | ((8 >> 6) << 4)));  // sub-block 7: m 8
}

TEST(KQuantBlocks, Q6_KHandComputed) {
  std::vector<uint8_t> b(210, 0);
  b[0] = 0x3F;    // ql[0]: element 0 low bits 15, element 64 low bits 3
  b[128] = 0xE4;  // qh[0]: elements 0, 32, 64, 96 high bits 0, 1, 2, 3
  for (int j = 0; j < 16; ++j) b[192 + j] = 1;
  b[192] = 2;
  b[193] = static_cast<uint8_t>(-3);
  put_half(b, 208, 0x3800);  // d = 0.5
  const std::vector<float> y = dequant(TensorType::Q6_K, b);
  EXPECT_EQ(y[0], -17.0f);  // 0.5 * 2 * (15 - 32)
  EXPECT_EQ(y[32], -8.0f);  // 0.5 * 1 * (16 - 32)
  EXPECT_EQ(y[64], 1.5f);   // 0.5 * 1 * (35 - 32)
  EXPECT_EQ(y[96], 8.0f);   // 0.5 * 1 * (48 - 32)
  EXPECT_EQ(y[16], 48.0f);  // 0.5 * -3 * (0 - 32)
  EXPECT_EQ(y[200], -16.0f);
}

TEST(KQuantBlocks, Q2_KHandComputed) {
  std::vector<uint8_t> b(84, 0);
  b[0] = 0x32;  // sub-block 0: scale 2, min 3
  b[2] = 0x01;
  b[4] = 0x04;
  b[6] = 0xF0;
  b[16 + 0] = 0xE4;  // qs[0]: elements 0, 32, 64, 96 -> 0, 1, 2, 3
  put_half(b, 80, 0x3C00);  // d = 1
  put_half(b, 82, 0x3400);  // dmin = 0.25
  const std::vector<float> y = dequant(TensorType::Q2_K, b);
  EXPECT_EQ(y[0], -0.75f);
  EXPECT_EQ(y[32], 1.0f);
  EXPECT_EQ(y[64], 8.0f);
  EXPECT_EQ(y[96], -3.75f);
  EXPECT_EQ(y[1], -0.75f);
  EXPECT_EQ(y[128], 0.0f);
}

TEST(KQuantBlocks, Q3_KHandComputed) {
  std::vector<uint8_t> b(110, 0);
  for (int i = 0; i < 32; ++i) b[i] = 0xFF;  // hmask: high bit set = no -4
  b[0] = 0xFE;                               // element 0 loses it
  b[32 + 32] = 0x03;                         // qs[32]: element 128 low bits 3
  b[96 + 0] = 0x31;                          // scales 0 and 8: low nibbles 1 and 3
  b[96 + 8] = 0xA8;                          // top bits: scale 0 -> 0, scales 4, 8, 12 -> 2
  b[96 + 9] = b[96 + 10] = b[96 + 11] = 0xAA;
  put_half(b, 108, 0x3800);  // d = 0.5
  const std::vector<float> y = dequant(TensorType::Q3_K, b);
  EXPECT_EQ(y[0], 62.0f);    // 0.5 * (1 - 32) * (0 - 4)
  EXPECT_EQ(y[1], 0.0f);     // 0.5 * -31 * 0
  EXPECT_EQ(y[128], 4.5f);   // 0.5 * (3 | 2<<4 - 32 = 3) * 3
  EXPECT_EQ(y[16], 0.0f);    // scale 1: 0 | 2<<4 - 32 = 0
}

// ---- random blocks packed from the layout description

struct KBlock {
  std::vector<int> q = std::vector<int>(kQK);  // unsigned levels as stored
  std::vector<int> sc, m;                     // per sub-block
  uint16_t d = 0, dmin = 0;
};

// Q4_K/Q5_K 6-bit scales and mins: sub-blocks 0-3 in the low 6 bits of bytes
// 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 low nibbles in bytes 8-11 (scale
// low, min high), their top 2 bits in bits 6-7 of bytes 0-3 (scales) and 4-7
// (mins).
void pack_k_scales(std::vector<uint8_t>& b, size_t at, const KBlock& k) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      set_bits(b, at + j, 0, 6, k.sc[j]);
      set_bits(b, at + 4 + j, 0, 6, k.m[j]);
    } else {
      set_bits(b, at + 4 + j, 0, 4, k.sc[j] & 15);
      set_bits(b, at + 4 + j, 4, 4, k.m[j] & 15);
      set_bits(b, at + j - 4, 6, 2, k.sc[j] >> 4);
      set_bits(b, at + j, 6, 2, k.m[j] >> 4);
    }
  }
}

KBlock random_block(std::mt19937& rng, int n_sub, int q_max, int sc_lo, int sc_hi, int m_hi) {
  KBlock k;
  for (int& v : k.q) v = std::uniform_int_distribution<int>(0, q_max)(rng);
  for (int j = 0; j < n_sub; ++j) {
    k.sc.push_back(std::uniform_int_distribution<int>(sc_lo, sc_hi)(rng));
    k.m.push_back(std::uniform_int_distribution<int>(0, m_hi)(rng));
  }
  // Random finite halves of either sign, exponents 5..20.
  auto half = [&] { return static_cast<uint16_t>(std::uniform_int_distribution<int>(0x1400, 0x53FF)(rng) | (rng() & 1 ? 0x8000 : 0)); };
  k.d = half();
  k.dmin = half();
  return k;
}

TEST(KQuantBlocks, Q4_KAndQ5_KRandomBlocks) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    for (bool five : {false, true}) {
      const KBlock k = random_block(rng, 8, five ? 31 : 15, 0, 63, 63);
      std::vector<uint8_t> b(five ? 176 : 144, 0);
      put_half(b, 0, k.d);
      put_half(b, 2, k.dmin);
      pack_k_scales(b, 4, k);
      const size_t qs_at = five ? 48 : 16;
      for (int e = 0; e < kQK; ++e) {
        // Element e: chunk e/64 of 32 bytes, nibble (e/32)%2 of byte e%32.
        set_bits(b, qs_at + 32 * (e / 64) + e % 32, 4 * ((e / 32) % 2), 4, k.q[e] & 15);
        if (five) set_bits(b, 16 + e % 32, e / 32, 1, k.q[e] >> 4);  // qh: bit e/32 of byte e%32
      }
      const std::vector<float> y = dequant(five ? TensorType::Q5_K : TensorType::Q4_K, b);
      const float d = fp16_to_f32(k.d), dmin = fp16_to_f32(k.dmin);
      for (int e = 0; e < kQK; ++e) {
        const float expect = (d * static_cast<float>(k.sc[e / 32])) * static_cast<float>(k.q[e]) -
                             dmin * static_cast<float>(k.m[e / 32]);
        ASSERT_EQ(y[e], expect) << (five ? "Q5_K" : "Q4_K") << " element " << e;
      }
    }
  }
}

TEST(KQuantBlocks, Q6_KRandomBlocks) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 50; ++trial) {
    const KBlock k = random_block(rng, 16, 63, -128, 127, 0);
    std::vector<uint8_t> b(210, 0);
    for (int e = 0; e < kQK; ++e) {
      // e = 128h + 32g + l: low 4 bits in ql[64h + 32(g%2) + l] nibble g/2,
      // high 2 bits in qh[32h + l] bits 2g..2g+1.
      const int h = e / 128, g = (e / 32) % 4, l = e % 32;
      set_bits(b, 64 * h + 32 * (g % 2) + l, 4 * (g / 2), 4, k.q[e] & 15);
      set_bits(b, 128 + 32 * h + l, 2 * g, 2, k.q[e] >> 4);
    }
    for (int j = 0; j < 16; ++j) b[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(k.sc[j]));
    put_half(b, 208, k.d);
    const std::vector<float> y = dequant(TensorType::Q6_K, b);
    const float d = fp16_to_f32(k.d);
    for (int e = 0; e < kQK; ++e)
      ASSERT_EQ(y[e], (d * static_cast<float>(k.sc[e / 16])) * static_cast<float>(k.q[e] - 32)) << e;
  }
}

TEST(KQuantBlocks, Q2_KAndQ3_KRandomBlocks) {
  std::mt19937 rng(13);
  for (int trial = 0; trial < 50; ++trial) {
    // Both: 2-bit fields; element e = 128h + 32g + l sits in qs[32h + l] bits 2g.
    const KBlock k2 = random_block(rng, 16, 3, 0, 15, 15);
    std::vector<uint8_t> b2(84, 0);
    for (int j = 0; j < 16; ++j) b2[j] = static_cast<uint8_t>(k2.sc[j] | (k2.m[j] << 4));
    for (int e = 0; e < kQK; ++e) set_bits(b2, 16 + 32 * (e / 128) + e % 32, 2 * ((e / 32) % 4), 2, k2.q[e]);
    put_half(b2, 80, k2.d);
    put_half(b2, 82, k2.dmin);
    const std::vector<float> y2 = dequant(TensorType::Q2_K, b2);
    for (int e = 0; e < kQK; ++e) {
      const float expect = (fp16_to_f32(k2.d) * static_cast<float>(k2.sc[e / 16])) * static_cast<float>(k2.q[e]) -
                           fp16_to_f32(k2.dmin) * static_cast<float>(k2.m[e / 16]);
      ASSERT_EQ(y2[e], expect) << "Q2_K " << e;
    }

    // Q3_K: 3-bit levels 0..7 meaning q-4; bit 2 in hmask[e%32] bit e/32;
    // scales 6-bit (stored +32): low nibble in byte j (j<8) or high nibble
    // of byte j-8, top 2 bits in byte 8 + j%4 at bit 2*(j/4).
    const KBlock k3 = random_block(rng, 16, 7, 0, 63, 0);
    std::vector<uint8_t> b3(110, 0);
    for (int e = 0; e < kQK; ++e) {
      set_bits(b3, e % 32, e / 32, 1, k3.q[e] >> 2);
      set_bits(b3, 32 + 32 * (e / 128) + e % 32, 2 * ((e / 32) % 4), 2, k3.q[e] & 3);
    }
    for (int j = 0; j < 16; ++j) {
      set_bits(b3, 96 + j % 8, 4 * (j / 8), 4, k3.sc[j] & 15);
      set_bits(b3, 96 + 8 + j % 4, 2 * (j / 4), 2, k3.sc[j] >> 4);
    }
    put_half(b3, 108, k3.d);
    const std::vector<float> y3 = dequant(TensorType::Q3_K, b3);
    for (int e = 0; e < kQK; ++e) {
      const float expect = (fp16_to_f32(k3.d) * static_cast<float>(k3.sc[e / 16] - 32)) * static_cast<float>(k3.q[e] - 4);
      ASSERT_EQ(y3[e], expect) << "Q3_K " << e;
    }
  }
}

// Quantizing a row that is exactly a dequantized block gives it back (to
// rounding), whatever scales the search picks: checks quantize/dequantize
// agree on the layout for every type.
TEST(KQuantBlocks, QuantizeReproducesAGridRow) {
  std::mt19937 rng(14);
  for (TensorType t : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    std::vector<float> x(kQK);
    std::normal_distribution<float> dist;
    for (float& v : x) v = dist(rng);
    std::vector<uint8_t> q(tensor_row_bytes(t, kQK));
    quantize_row(t, x.data(), q.data(), kQK);
    std::vector<float> y(kQK), y2(kQK);
    dequantize_row(t, q.data(), y.data(), kQK);
    quantize_row(t, y.data(), q.data(), kQK);  // requantize the grid values
    dequantize_row(t, q.data(), y2.data(), kQK);
    double err = 0, ref = 0;
    for (int i = 0; i < kQK; ++i) {
      err += (y2[i] - y[i]) * (y2[i] - y[i]);
      ref += (x[i] - y[i]) * (x[i] - y[i]);
    }
    EXPECT_LT(err, ref) << tensor_type_info(t).name;  // the second pass loses much less
  }
}

}  // namespace
}  // namespace onellm
