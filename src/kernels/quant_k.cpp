// The K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: 256-element super-blocks of
// 16- or 32-element sub-blocks with quantized per-sub-block scales.
// Dequantization does the float operations in ggml's order ((d*sc)*q - dmin*m)
// so results are bit-identical to ggml's reference. Quantization follows
// ggml's reference (no importance matrix) algorithms: a scale search per
// sub-block, the sub-block scales quantized against the super-block scale,
// then every value requantized with its final, rounded scale.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.h"

namespace onellm::quant {
namespace {

int clamp(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// Q2_K and Q3_K store 2-bit levels for each 128-element half as 32 bytes:
// byte l holds elements l, l+32, l+64, l+96 in bit pairs 0..3.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < kSuperBlock; h += 128, qs += 32)
    for (int l = 0; l < 32; ++l)
      qs[l] = static_cast<uint8_t>(L[h + l] | (L[h + l + 32] << 2) | (L[h + l + 64] << 4) | (L[h + l + 96] << 6));
}

// Shared by Q4_K and Q5_K: per 32-element sub-block scale/min search, then
// the 6-bit quantization of scales and mins, then the final levels in L.
void quantize_k4_levels(const float* x, int nmax, float rmin, float rdelta, int nstep, Half& d_out,
                        Half& dmin_out, uint8_t* packed, uint8_t* L) {
  float scales[8], mins[8], weights[8 * 32];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + std::fabs(xs[l]);
  }
  static_assert(kSearchLanes == 8, "one lane per sub-block");
  search_scale_min_lanes(32, nmax, x, weights, L, mins, scales, rmin, rdelta, nstep, false);
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
    lm[j] = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
  }
  std::memset(packed, 0, 12);
  pack_k4_scales(ls, lm, packed);
  store_half(d_out, max_scale / 63.f);
  store_half(dmin_out, max_min / 63.f);
  const float d_all = load_half(d_out), dmin_all = load_half(dmin_out);
  for (int j = 0; j < 8; ++j) {
    const float d = d_all * ls[j];
    if (d == 0) continue;
    const float dm = dmin_all * lm[j];
    for (int l = 0; l < 32; ++l) L[32 * j + l] = static_cast<uint8_t>(clamp(nearest_int((x[32 * j + l] + dm) / d), 0, nmax));
  }
}

}  // namespace

// ---- dequantization

void dequantize_Q2_K(const BlockQ2_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ2_K& blk = src[b];
    const float d = load_half(blk.d), dmin = load_half(blk.dmin);
    for (int j = 0; j < 16; ++j) {  // sub-block j: elements 16j..16j+15
      const float dl = d * static_cast<float>(blk.scales[j] & 0xF);
      const float ml = dmin * static_cast<float>(blk.scales[j] >> 4);
      const uint8_t* q = blk.qs + 32 * (j / 8) + 16 * (j % 2);
      const int shift = 2 * ((j % 8) / 2);
      for (int l = 0; l < 16; ++l) *dst++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
    }
  }
}

void dequantize_Q3_K(const BlockQ3_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ3_K& blk = src[b];
    const float d_all = load_half(blk.d);
    for (int j = 0; j < 16; ++j) {
      const float dl = d_all * static_cast<float>(q3_k_scale(blk.scales, j));
      const int offset = 32 * (j / 8) + 16 * (j % 2);  // into qs, and into hmask
      const int shift = 2 * ((j % 8) / 2);
      const uint8_t high_bit = static_cast<uint8_t>(1u << (j / 2));  // bit e/32 of hmask[e%32]
      for (int l = 0; l < 16; ++l) {
        const int low = (blk.qs[offset + l] >> shift) & 3;
        const int q = low - ((blk.hmask[16 * (j % 2) + l] & high_bit) ? 0 : 4);
        *dst++ = dl * static_cast<float>(q);
      }
    }
  }
}

void dequantize_Q4_K(const BlockQ4_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ4_K& blk = src[b];
    const float d = load_half(blk.d), dmin = load_half(blk.dmin);
    for (int j = 0; j < 8; ++j) {  // sub-block j: nibble j%2 of qs[32*(j/2) ..]
      uint8_t sc, m;
      k4_scale_min(blk.scales, j, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) *dst++ = d1 * static_cast<float>((q[l] >> shift) & 0xF) - m1;
    }
  }
}

void dequantize_Q5_K(const BlockQ5_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ5_K& blk = src[b];
    const float d = load_half(blk.d), dmin = load_half(blk.dmin);
    for (int j = 0; j < 8; ++j) {  // as Q4_K, plus bit j of qh[l] as the fifth bit
      uint8_t sc, m;
      k4_scale_min(blk.scales, j, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int level = ((q[l] >> shift) & 0xF) + (((blk.qh[l] >> j) & 1) << 4);
        *dst++ = d1 * static_cast<float>(level) - m1;
      }
    }
  }
}

void dequantize_Q6_K(const BlockQ6_K* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ6_K& blk = src[b];
    const float d = load_half(blk.d);
    // Each 128-element half h: element 32k + l (k = 0..3) takes its low 4
    // bits from nibble k/2 of ql[64h + 32*(k%2) + l], its top 2 bits from
    // bit pair k of qh[32h + l], its scale from scales[8h + 2k + l/16].
    for (int h = 0; h < 2; ++h, dst += 128) {
      const uint8_t* ql = blk.ql + 64 * h;
      const uint8_t* qh = blk.qh + 32 * h;
      const int8_t* sc = blk.scales + 8 * h;
      for (int g = 0; g < 2; ++g) {  // scales are per 16 values of l
        const float d0 = d * static_cast<float>(sc[g]), d1 = d * static_cast<float>(sc[g + 2]);
        const float d2 = d * static_cast<float>(sc[g + 4]), d3 = d * static_cast<float>(sc[g + 6]);
        for (int l = 16 * g; l < 16 * g + 16; ++l) {
          const int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          dst[l] = d0 * static_cast<float>(q0);
          dst[l + 32] = d1 * static_cast<float>(q1);
          dst[l + 64] = d2 * static_cast<float>(q2);
          dst[l + 96] = d3 * static_cast<float>(q3);
        }
      }
    }
  }
}

// ---- quantization

void quantize_Q2_K(const float* src, BlockQ2_K* dst, int64_t n_blocks) {
  constexpr float kLevels = 15.f;  // 4-bit scales and mins
  for (int64_t b = 0; b < n_blocks; ++b, src += kSuperBlock) {
    BlockQ2_K& blk = dst[b];
    uint8_t L[kSuperBlock];
    float scales[16], mins[16], weights[kSuperBlock];
    for (int e = 0; e < kSuperBlock; ++e) weights[e] = std::fabs(src[e]);
    for (int j = 0; j < 16; j += kSearchLanes)
      search_scale_min_lanes(16, 3, src + 16 * j, weights + 16 * j, L + 16 * j, mins + j, scales + j, -0.5f, 0.1f, 15,
                             true);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    std::memset(blk.scales, 0, sizeof blk.scales);
    if (max_scale > 0) {
      const float iscale = kLevels / max_scale;
      for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    }
    store_half(blk.d, max_scale > 0 ? max_scale / kLevels : 0.f);
    if (max_min > 0) {
      const float iscale = kLevels / max_min;
      for (int j = 0; j < 16; ++j) blk.scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
    }
    store_half(blk.dmin, max_min > 0 ? max_min / kLevels : 0.f);
    const float d_all = load_half(blk.d), dmin_all = load_half(blk.dmin);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(blk.scales[j] & 0xF);
      if (d == 0) continue;
      const float dm = dmin_all * static_cast<float>(blk.scales[j] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(clamp(nearest_int((src[16 * j + l] + dm) / d), 0, 3));
    }
    pack_2bit(L, blk.qs);
  }
}

void quantize_Q3_K(const float* src, BlockQ3_K* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kSuperBlock) {
    BlockQ3_K& blk = dst[b];
    int8_t L[kSuperBlock];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = search_scale_symmetric_refined(16, 4, src + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(blk.scales, 0, sizeof blk.scales);
    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
        if (j < 8)
          blk.scales[j] = static_cast<uint8_t>(l & 0xF);
        else
          blk.scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        blk.scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      store_half(blk.d, 1 / iscale);
    } else {
      store_half(blk.d, 0.f);
    }
    const float d_all = load_half(blk.d);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(q3_k_scale(blk.scales, j));
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<int8_t>(clamp(nearest_int(src[16 * j + l] / d), -4, 3) + 4);
    }
    // Level bit 2 goes to hmask[e % 32] bit e / 32; the low 2 bits to qs.
    std::memset(blk.hmask, 0, sizeof blk.hmask);
    uint8_t low[kSuperBlock];
    for (int e = 0; e < kSuperBlock; ++e) {
      if (L[e] > 3) blk.hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
      low[e] = static_cast<uint8_t>(L[e] & 3);
    }
    pack_2bit(low, blk.qs);
  }
}

void quantize_Q4_K(const float* src, BlockQ4_K* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kSuperBlock) {
    BlockQ4_K& blk = dst[b];
    uint8_t L[kSuperBlock];
    quantize_k4_levels(src, 15, -1.f, 0.1f, 20, blk.d, blk.dmin, blk.scales, L);
    for (int c = 0; c < 4; ++c)  // chunk c of 64: low nibbles then high nibbles
      for (int l = 0; l < 32; ++l)
        blk.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void quantize_Q5_K(const float* src, BlockQ5_K* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kSuperBlock) {
    BlockQ5_K& blk = dst[b];
    uint8_t L[kSuperBlock];
    quantize_k4_levels(src, 31, -0.5f, 0.1f, 15, blk.d, blk.dmin, blk.scales, L);
    std::memset(blk.qh, 0, sizeof blk.qh);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        blk.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        blk.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

void quantize_Q6_K(const float* src, BlockQ6_K* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kSuperBlock) {
    BlockQ6_K& blk = dst[b];
    int8_t L[kSuperBlock];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < 16; j += kSearchLanes)
      search_scale_symmetric_lanes(16, 32, src + 16 * j, L + 16 * j, scales + j);
    for (int j = 0; j < 16; ++j) {
      if (std::fabs(scales[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(&blk, 0, sizeof blk);
    if (max_abs_scale < 1e-15f) continue;  // an all-zero block: d = 0
    const float iscale = -128.f / max_scale;
    store_half(blk.d, 1 / iscale);
    for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
    const float d_all = load_half(blk.d);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(blk.scales[j]);
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<int8_t>(clamp(nearest_int(src[16 * j + l] / d), -32, 31) + 32);
    }
    for (int e = 0; e < kSuperBlock; ++e) {  // the layout of dequantize_Q6_K
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      blk.ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((L[e] & 0xF) << (4 * (k / 2)));
      blk.qh[32 * h + l] |= static_cast<uint8_t>(((L[e] >> 4) & 3) << (2 * k));
    }
  }
}

}  // namespace onellm::quant
