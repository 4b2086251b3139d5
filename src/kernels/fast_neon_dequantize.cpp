// Whole rows of the common weight types to F32 on AArch64
// (Kernels::dequantize): the NEON twin of fast_x86_dequantize.inc, with the
// same values as dequantize_row (every multiply and subtract rounded
// separately: quant_blocks.h turns contraction off). LoRA's backward reads
// its mapped base through these a tile at a time.
#include <cstdint>

#include "kernels/fast_kernels.h"
#include "kernels/fast_neon.h"
#include "kernels/quant_blocks.h"

#if defined(__aarch64__)
namespace onellm::fast::neon {
namespace {

// dst[0..16) = scale * q (- offset), q as 16 signed bytes.
inline void store16(int8x16_t q, float32x4_t scale, float* dst) {
  float32x4_t f[4];
  int8x16_to_f32(q, f);
  for (int i = 0; i < 4; ++i) vst1q_f32(dst + 4 * i, vmulq_f32(f[i], scale));
}
inline void store16(int8x16_t q, float32x4_t scale, float32x4_t offset, float* dst) {
  float32x4_t f[4];
  int8x16_to_f32(q, f);
  for (int i = 0; i < 4; ++i) vst1q_f32(dst + 4 * i, vsubq_f32(vmulq_f32(f[i], scale), offset));
}

void dequantize_q8_0(const quant::BlockQ8_0* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += 32) {
    const float32x4_t d = vdupq_n_f32(quant::load_half(src[b].d));
    store16(vld1q_s8(src[b].qs), d, dst);
    store16(vld1q_s8(src[b].qs + 16), d, dst + 16);
  }
}

void dequantize_q4_0(const quant::BlockQ4_0* src, float* dst, int64_t n_blocks) {
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t b = 0; b < n_blocks; ++b, dst += 32) {
    const float32x4_t d = vdupq_n_f32(quant::load_half(src[b].d));
    const uint8x16_t q = vld1q_u8(src[b].qs);  // element j: low nibble of qs[j]; j + 16: its high nibble
    store16(vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0xF))), eight), d, dst);
    store16(vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight), d, dst + 16);
  }
}

void dequantize_q5_0(const quant::BlockQ5_0* src, float* dst, int64_t n_blocks) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit), fifth = vdupq_n_u8(0x10);
  const int8x16_t sixteen = vdupq_n_s8(16);
  for (int64_t b = 0; b < n_blocks; ++b, dst += 32) {
    const float32x4_t d = vdupq_n_f32(quant::load_half(src[b].d));
    const uint8_t* qh = src[b].qh;  // bit j (little-endian) is element j's fifth bit
    const uint8x16_t q = vld1q_u8(src[b].qs);
    const uint8x16_t top_lo = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), bit), fifth);
    const uint8x16_t top_hi = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), bit), fifth);
    store16(vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0xF)), top_lo)), sixteen), d, dst);
    store16(vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), top_hi)), sixteen), d, dst + 16);
  }
}

void dequantize_q4_k(const quant::BlockQ4_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const quant::BlockQ4_K& blk = src[b];
    const float d = quant::load_half(blk.d), dmin = quant::load_half(blk.dmin);
    for (int j = 0; j < 8; ++j, dst += 32) {  // sub-block j: nibble j % 2 of qs[32 (j / 2) ..]
      uint8_t sc, m;
      quant::k4_scale_min(blk.scales, j, &sc, &m);
      const float32x4_t d1 = vdupq_n_f32(d * static_cast<float>(sc)), m1 = vdupq_n_f32(dmin * static_cast<float>(m));
      for (int l = 0; l < 32; l += 16) {
        const uint8x16_t q = vld1q_u8(blk.qs + 32 * (j / 2) + l);
        const uint8x16_t level = j % 2 == 0 ? vandq_u8(q, vdupq_n_u8(0xF)) : vshrq_n_u8(q, 4);
        store16(vreinterpretq_s8_u8(level), d1, m1, dst + l);
      }
    }
  }
}

// Q4_K plus bit j of qh[l] as the fifth bit of element l of sub-block j.
void dequantize_q5_k(const quant::BlockQ5_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const quant::BlockQ5_K& blk = src[b];
    const float d = quant::load_half(blk.d), dmin = quant::load_half(blk.dmin);
    for (int j = 0; j < 8; ++j, dst += 32) {
      uint8_t sc, m;
      quant::k4_scale_min(blk.scales, j, &sc, &m);
      const float32x4_t d1 = vdupq_n_f32(d * static_cast<float>(sc)), m1 = vdupq_n_f32(dmin * static_cast<float>(m));
      const int8x16_t down = vdupq_n_s8(static_cast<int8_t>(-j));  // a right shift by j
      for (int l = 0; l < 32; l += 16) {
        const uint8x16_t q = vld1q_u8(blk.qs + 32 * (j / 2) + l);
        const uint8x16_t nibble = j % 2 == 0 ? vandq_u8(q, vdupq_n_u8(0xF)) : vshrq_n_u8(q, 4);
        const uint8x16_t fifth = vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(blk.qh + l), down), vdupq_n_u8(1)), 4);
        store16(vreinterpretq_s8_u8(vorrq_u8(nibble, fifth)), d1, m1, dst + l);
      }
    }
  }
}

void dequantize_q6_k(const quant::BlockQ6_K* src, float* dst, int64_t n_blocks) {
  const uint8x16_t low = vdupq_n_u8(0xF), two = vdupq_n_u8(3);
  const int8x16_t offset = vdupq_n_s8(32);
  // (low | high pair << 4) - 32 as signed bytes.
  auto level = [&](uint8x16_t low_bits, uint8x16_t high_pair) {
    return vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low_bits, vshlq_n_u8(high_pair, 4))), offset);
  };
  for (int64_t b = 0; b < n_blocks; ++b) {
    const quant::BlockQ6_K& blk = src[b];
    const float d = quant::load_half(blk.d);
    for (int h = 0; h < 2; ++h, dst += 128) {  // the layout of dequantize_Q6_K
      const uint8_t* ql = blk.ql + 64 * h;
      const uint8_t* qh = blk.qh + 32 * h;
      const int8_t* sc = blk.scales + 8 * h;
      for (int l = 0; l < 32; l += 16) {
        const int g = l / 16;
        const uint8x16_t a = vld1q_u8(ql + l), c = vld1q_u8(ql + l + 32), top = vld1q_u8(qh + l);
        store16(level(vandq_u8(a, low), vandq_u8(top, two)), vdupq_n_f32(d * static_cast<float>(sc[g])), dst + l);
        store16(level(vandq_u8(c, low), vandq_u8(vshrq_n_u8(top, 2), two)),
                vdupq_n_f32(d * static_cast<float>(sc[g + 2])), dst + l + 32);
        store16(level(vshrq_n_u8(a, 4), vandq_u8(vshrq_n_u8(top, 4), two)),
                vdupq_n_f32(d * static_cast<float>(sc[g + 4])), dst + l + 64);
        store16(level(vshrq_n_u8(c, 4), vshrq_n_u8(top, 6)), vdupq_n_f32(d * static_cast<float>(sc[g + 6])),
                dst + l + 96);
      }
    }
  }
}

}  // namespace

bool dequantize_neon(TensorType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case TensorType::Q8_0: dequantize_q8_0(static_cast<const quant::BlockQ8_0*>(src), dst, n / 32); return true;
    case TensorType::Q4_0: dequantize_q4_0(static_cast<const quant::BlockQ4_0*>(src), dst, n / 32); return true;
    case TensorType::Q5_0: dequantize_q5_0(static_cast<const quant::BlockQ5_0*>(src), dst, n / 32); return true;
    case TensorType::Q4_K: dequantize_q4_k(static_cast<const quant::BlockQ4_K*>(src), dst, n / 256); return true;
    case TensorType::Q5_K: dequantize_q5_k(static_cast<const quant::BlockQ5_K*>(src), dst, n / 256); return true;
    case TensorType::Q6_K: dequantize_q6_k(static_cast<const quant::BlockQ6_K*>(src), dst, n / 256); return true;
    default: return false;
  }
}

}  // namespace onellm::fast::neon
#endif
