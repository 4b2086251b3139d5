// Private to the AArch64 level (fast_neon.cpp, fast_neon_int8.cpp): loads
// that accept any address, the unpacking of weight blocks to int8 levels,
// and the tile driver that runs a kernel over groups of weight rows x
// tokens. Included before any target pragma, so nothing here is compiled
// with dotprod and a plain ARMv8.0 core can run all of it.
#pragma once

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

// Before the loops over the rows, tokens and vectors of a tile: GCC at -O2
// keeps such loops rolled and the accumulator arrays they index in memory;
// unrolled, the arrays live in registers.
#define ONELLM_UNROLL _Pragma("GCC unroll 16")

namespace onellm::fast::neon {

// Fills tile[kSlotQ4_0 .. kSlotQ3_K] with the int8 kernels
// (fast_neon_int8.cpp): vmull_s8 + vpadalq_s16 on any ARMv8.0 core,
// vdotq_s32 with dotprod, and with i8mm also vmmlaq_s32 (2 rows x 2 tokens
// per instruction) for the legacy blocks' token pairs.
enum class Int8Level { kPlain, kDotprod, kI8mm };
void fill_int8_tiles(Int8Level level, TileFn* tile);

// fast_neon.cpp: out[i] = row[i] for an F16 row (Kernels::f16_to_f32).
void f16_to_f32_neon(const uint8_t* row, float* out, int64_t n);

// fast_neon_dequantize.cpp: Kernels::dequantize (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K).
bool dequantize_neon(TensorType type, const void* src, float* dst, int64_t n);

// fast_neon_math.cpp: the vector exp (the x86 levels' polynomial) and what
// is built on it, and Kernels::attend_heads.
void exp_f32_neon(float* x, int64_t n);
void swiglu_f32_neon(const float* gate, const float* up, float* out, int64_t n);
void attend_heads_neon(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                       int64_t dim, float scale, float* out, float* max_out, float* sum_out);

// AArch64 converts halves in one instruction (fcvt), exactly.
inline float half_to_float(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return h;
}

// Weight rows may start at any byte (GGUF blocks are 18, 34 ... bytes), so
// float lanes are loaded as bytes.
inline float32x4_t load4_f32(const uint8_t* p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }
inline float32x4_t load4_f16(const uint8_t* p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p))); }
inline float32x4_t load4_bf16(const uint8_t* p) {
  return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(p)), 16));
}

// 16 signed bytes -> 4 x 4 floats, lane order kept.
inline void int8x16_to_f32(int8x16_t q, float32x4_t* out) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
  out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
  out[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
  out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
  out[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

// ---- legacy blocks as 32 signed levels (two vectors, element order). The
// Q4_0 / Q5_0 offset is subtracted here: dot(q - 8, a) is exactly the
// scalar level's dot(q, a) - 8 * sum(a), so no sum(a) term is needed.

inline void nibbles(const uint8_t* qs, uint8x16_t* lo, uint8x16_t* hi) {
  const uint8x16_t v = vld1q_u8(qs);
  *lo = vandq_u8(v, vdupq_n_u8(0x0F));
  *hi = vshrq_n_u8(v, 4);
}

// 0x10 in lane i where bit i of the 16 bits at qh (little-endian) is set.
inline uint8x16_t fifth_bits(const uint8_t* qh) {
  static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t spread = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
  return vandq_u8(vtstq_u8(spread, vld1q_u8(kBit)), vdupq_n_u8(0x10));
}

inline int8x16_t minus(uint8x16_t v, int8_t offset) { return vsubq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(offset)); }

// Q4_0 / Q4_1 / Q5_0 / Q5_1: nibbles, a fifth bit from qh (Q5), minus
// kOffset (Q4_0: 8, Q5_0: 16). The types without an offset have a min: the
// block adds m * d_x * sum(x), m from min().
template <class B, bool kFifthBit, int8_t kOffset>
struct LevelsNibbles {
  using Block = B;
  static constexpr bool kHasMin = kOffset == 0;
  static void levels(const Block& b, int8x16_t* q) {
    uint8x16_t lo, hi;
    nibbles(b.qs, &lo, &hi);
    if constexpr (kFifthBit) {
      lo = vorrq_u8(lo, fifth_bits(b.qh));
      hi = vorrq_u8(hi, fifth_bits(b.qh + 2));
    }
    q[0] = minus(lo, kOffset);
    q[1] = minus(hi, kOffset);
  }
  static float min(const Block& b) {
    if constexpr (kHasMin) return half_to_float(b.m);
    return 0.0f;
  }
};
using LevelsQ4_0 = LevelsNibbles<quant::BlockQ4_0, false, 8>;
using LevelsQ4_1 = LevelsNibbles<quant::BlockQ4_1, false, 0>;
using LevelsQ5_0 = LevelsNibbles<quant::BlockQ5_0, true, 16>;
using LevelsQ5_1 = LevelsNibbles<quant::BlockQ5_1, true, 0>;
struct LevelsQ8_0 {
  using Block = quant::BlockQ8_0;
  static constexpr bool kHasMin = false;
  static void levels(const Block& b, int8x16_t* q) {
    q[0] = vld1q_s8(b.qs);
    q[1] = vld1q_s8(b.qs + 16);
  }
  static float min(const Block&) { return 0.0f; }
};

// IQ4_NL: the nibbles index kIq4Values (signed, no offset, no min).
inline int8x16_t iq4_values(uint8x16_t nibbles) { return vqtbl1q_s8(vld1q_s8(quant::kIq4Values), nibbles); }
struct LevelsIQ4_NL {
  using Block = quant::BlockIQ4_NL;
  static constexpr bool kHasMin = false;
  static void levels(const Block& b, int8x16_t* q) {
    uint8x16_t lo, hi;
    nibbles(b.qs, &lo, &hi);
    q[0] = iq4_values(lo);
    q[1] = iq4_values(hi);
  }
  static float min(const Block&) { return 0.0f; }
};

// ---- the tile driver. A Kernel has types Weight (what a row pointer points
// at) and Act (an activation row), kRows (1 or 2), and
//   template <int NR, int NT> static void run(const Weight* const* rows,
//       const Act* const* acts, int64_t n_blocks, float (&out)[NR][NT]);
// Rows go kRows at a time (pairs: each activation vector is loaded once for
// both rows), tokens in fours (each weight block is unpacked once for all).

template <class Kernel, int NR, int NT>
void run_group(const typename Kernel::Weight* const* rows, const uint8_t* a, size_t a_stride, int64_t n_blocks,
               float* y, int64_t y_stride) {
  const typename Kernel::Act* acts[NT];
  ONELLM_UNROLL for (int t = 0; t < NT; ++t) acts[t] = reinterpret_cast<const typename Kernel::Act*>(a + t * a_stride);
  float out[NR][NT];
  Kernel::template run<NR, NT>(rows, acts, n_blocks, out);
  ONELLM_UNROLL for (int t = 0; t < NT; ++t)
    ONELLM_UNROLL for (int r = 0; r < NR; ++r) y[t * y_stride + r] = out[r][t];
}

template <class Kernel, int NR>
void run_rows(const uint8_t* w, size_t w_stride, const uint8_t* a, size_t a_stride, int64_t n_tok, int64_t n_blocks,
              float* y, int64_t y_stride) {
  const typename Kernel::Weight* rows[NR];
  ONELLM_UNROLL for (int r = 0; r < NR; ++r)
    rows[r] = reinterpret_cast<const typename Kernel::Weight*>(w + r * w_stride);
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4)
    run_group<Kernel, NR, 4>(rows, a + t * a_stride, a_stride, n_blocks, y + t * y_stride, y_stride);
  const uint8_t* at = a + t * a_stride;
  float* yt = y + t * y_stride;
  switch (n_tok - t) {
    case 3: run_group<Kernel, NR, 3>(rows, at, a_stride, n_blocks, yt, y_stride); break;
    case 2: run_group<Kernel, NR, 2>(rows, at, a_stride, n_blocks, yt, y_stride); break;
    case 1: run_group<Kernel, NR, 1>(rows, at, a_stride, n_blocks, yt, y_stride); break;
    default: break;
  }
}

// A TileFn (fast_kernels.h) for Kernel.
template <class Kernel>
void tile(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a, size_t a_stride, int64_t n_tok,
          int64_t n_blocks, float* y, int64_t y_stride) {
  int64_t r = 0;
  if constexpr (Kernel::kRows == 2)
    for (; r + 2 <= n_rows; r += 2)
      run_rows<Kernel, 2>(w + r * w_stride, w_stride, a, a_stride, n_tok, n_blocks, y + r, y_stride);
  for (; r < n_rows; ++r)
    run_rows<Kernel, 1>(w + r * w_stride, w_stride, a, a_stride, n_tok, n_blocks, y + r, y_stride);
}

}  // namespace onellm::fast::neon
#endif
