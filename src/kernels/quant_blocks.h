// Private to src/kernels: the byte layouts of the quantized block types,
// exactly as GGUF/ggml store them (little-endian, no padding), and the
// per-type row converters that dequantize_row / quantize_row dispatch to.
//
// Every field is a byte array so a block may sit at any address (GGUF data is
// only guaranteed 32-byte aligned per tensor, and a Q4_0 block is 18 bytes);
// halves are read and written through load_half / store_half.
#pragma once

// Bit-exactness with ggml's reference needs every multiply and add rounded
// separately; GCC would otherwise fuse them whenever FMA is enabled (e.g.
// -march=native), even in ISO mode.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

namespace onellm::quant {

constexpr int kLegacyBlock = 32;  // elements per Q4_0..Q8_0 block
constexpr int kSuperBlock = 256;  // elements per K-quant super-block (QK_K)

using Half = uint8_t[2];  // an IEEE half, little-endian

// Exact half -> float without branches, so row loops vectorize: place the
// exponent and mantissa in a float and rescale by 2^112 (exact for normals
// and subnormals alike), then force the exponent of inf/NaN to all ones.
inline float half_bits_to_float(uint16_t h) {
  const uint32_t magnitude = static_cast<uint32_t>(h & 0x7FFF) << 13;
  float f;
  std::memcpy(&f, &magnitude, 4);
  f *= 0x1p112f;
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t special = 0u - static_cast<uint32_t>((h & 0x7C00) == 0x7C00);  // all ones for inf/NaN
  bits = (bits & ~special) | ((magnitude | 0x7F800000) & special);
  bits |= static_cast<uint32_t>(h & 0x8000) << 16;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float load_half(const Half& h) { return half_bits_to_float(static_cast<uint16_t>(h[0] | (h[1] << 8))); }
inline void store_half(Half& h, float v) {
  const uint16_t bits = f32_to_fp16(v);
  h[0] = static_cast<uint8_t>(bits & 0xFF);
  h[1] = static_cast<uint8_t>(bits >> 8);
}

// value = (q - 8) * d; qs[j] low nibble = element j, high nibble = element j+16.
struct BlockQ4_0 { Half d; uint8_t qs[16]; };
// value = q * d + m
struct BlockQ4_1 { Half d; Half m; uint8_t qs[16]; };
// 5-bit q: low 4 bits as Q4_0, bit 4 of element j is bit j of the LE u32 qh.
struct BlockQ5_0 { Half d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { Half d; Half m; uint8_t qh[4]; uint8_t qs[16]; };
// value = q * d, q signed
struct BlockQ8_0 { Half d; int8_t qs[32]; };

// 16 sub-blocks of 16; value = d*(sc&15)*q - dmin*(sc>>4), q 2-bit.
struct BlockQ2_K { uint8_t scales[16]; uint8_t qs[64]; Half d; Half dmin; };
// 16 sub-blocks of 16; value = d*(sc-32)*(q-4), q 3-bit (2 low bits in qs,
// high bit in hmask), sc 6-bit packed into 12 bytes.
struct BlockQ3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; Half d; };
// 8 sub-blocks of 32; value = d*sc*q - dmin*m, sc/m 6-bit packed in 12 bytes.
struct BlockQ4_K { Half d; Half dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5_K { Half d; Half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
// 16 sub-blocks of 16; value = d*sc*(q-32), q 6-bit, sc signed 8-bit.
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; Half d; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
// The non-linear 4-bit types: a level is an index into kIq4Values (16 signed
// values, denser near zero, as ggml defines them). IQ4_NL: value = d *
// kIq4Values[q], qs laid out as Q4_0's. IQ4_XS: 8 sub-blocks of 32, value =
// d * (ls_j - 32) * kIq4Values[q], ls_j 6-bit (low 4 bits in nibble j%2 of
// scales_l[j/2], high 2 bits at bit 2j of the LE u16 scales_h); sub-block j's
// nibbles are qs[16j..16j+16) (low: element l, high: element l+16).
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
struct BlockIQ4_NL { Half d; uint8_t qs[16]; };
struct BlockIQ4_XS { Half d; uint8_t scales_h[2]; uint8_t scales_l[4]; uint8_t qs[128]; };
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136);

// IQ4_XS: sub-block j's scale ls_j - 32, in [-32, 31].
inline int iq4_xs_scale(const BlockIQ4_XS& b, int j) {
  const int low = (b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF;
  const int high = ((b.scales_h[j / 4] >> (2 * (j % 4))) & 3) << 4;
  return (low | high) - 32;
}

static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// Q3_K's sixteen 6-bit signed scales (stored +32): low nibbles in bytes 0..7
// (sub-blocks 0-7 low half, 8-15 high half), top 2 bits in bytes 8..11.
inline int q3_k_scale(const uint8_t* packed, int j) {
  const int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
  const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q2_K / Q3_K element 32 g + l (g < 8, l < 32; sub-block 2 g + l / 16) has
// its 2 low bits at bit 2 (g % 4) of qs[32 (g / 4) + l]; Q3_K's third bit is
// bit g of hmask[l].

// Q4_K / Q5_K: sub-block j's 6-bit scale and min from the 12 packed bytes.
inline void k4_scale_min(const uint8_t* packed, int j, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// The inverse: eight 6-bit scales ls and mins lm into the 12 bytes.
inline void pack_k4_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* packed) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>((ls[j] & 63) | ((ls[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<uint8_t>((lm[j] & 63) | ((lm[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
  }
}

// ggml's nearest_int: round half to even (the default FP rounding mode).
int nearest_int(float x);

// Row converters; n_blocks whole blocks. Declared per type so the SIMD work
// can replace any one of them.
#define ONELLM_DECLARE_ROW_CONVERTERS(T)                                    \
  void dequantize_##T(const Block##T* src, float* dst, int64_t n_blocks); \
  void quantize_##T(const float* src, Block##T* dst, int64_t n_blocks);
ONELLM_DECLARE_ROW_CONVERTERS(Q4_0)
ONELLM_DECLARE_ROW_CONVERTERS(Q4_1)
ONELLM_DECLARE_ROW_CONVERTERS(Q5_0)
ONELLM_DECLARE_ROW_CONVERTERS(Q5_1)
ONELLM_DECLARE_ROW_CONVERTERS(Q8_0)
ONELLM_DECLARE_ROW_CONVERTERS(Q2_K)
ONELLM_DECLARE_ROW_CONVERTERS(Q3_K)
ONELLM_DECLARE_ROW_CONVERTERS(Q4_K)
ONELLM_DECLARE_ROW_CONVERTERS(Q5_K)
ONELLM_DECLARE_ROW_CONVERTERS(Q6_K)
ONELLM_DECLARE_ROW_CONVERTERS(IQ4_NL)
ONELLM_DECLARE_ROW_CONVERTERS(IQ4_XS)
#undef ONELLM_DECLARE_ROW_CONVERTERS

// Scale searches shared by the K-quant quantizers (quant_k_search.cpp).
// Asymmetric: x ~= scale*L - min with L in [0, nmax]; returns scale, sets
// *neg_min = -min >= 0. Tries nstep+1 candidate inverse scales
// (rmin + rdelta*i + nmax)/(max-min) and keeps the least weighted error
// (absolute error if use_mad, squared otherwise).
float search_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                       float rmin, float rdelta, int nstep, bool use_mad);
// Symmetric, weights x^2: x ~= scale*(L - nmax), L in [0, 2*nmax); tries
// inverse scales -(nmax + 0.1*i)/max for i in -9..9. Returns scale.
float search_scale_symmetric(int n, int nmax, const float* x, int8_t* L);
// Symmetric with coordinate descent on the levels (Q3_K). L in [0, 2*nmax).
float search_scale_symmetric_refined(int n, int nmax, const float* x, int8_t* L);
// The first two for kSearchLanes consecutive groups of n <= 32 values at once
// (group g: x + g*n, weights + g*n, L + g*n; its scale in scales[g], its
// -min in neg_min[g]), with the single searches' bits (quant_k_lanes.cpp).
constexpr int kSearchLanes = 8;
void search_scale_min_lanes(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                            float* scales, float rmin, float rdelta, int nstep, bool use_mad);
void search_scale_symmetric_lanes(int n, int nmax, const float* x, int8_t* L, float* scales);
// IQ4_NL / IQ4_XS (quant_iq4.cpp): the best scale for 32 elements, x ~=
// scale * kIq4Values[L], and the levels; _lanes tries the 30 candidate scales
// 8 at a time with the same bits (finite x).
float search_iq4_scale(const float* x, uint8_t* L);
float search_iq4_scale_lanes(const float* x, uint8_t* L);

}  // namespace onellm::quant
