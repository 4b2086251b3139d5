// The legacy 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
// Dequantization does the float operations in ggml's order (q*d, q*d + m) so
// results are bit-identical to ggml's reference. Quantization is the
// deterministic round-to-nearest scheme llama-quantize uses without an
// importance matrix, including its exact scale and rounding arithmetic, so the
// bytes match its output.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/quant_blocks.h"

namespace onellm::quant {
namespace {

constexpr int kHalf = kLegacyBlock / 2;

uint32_t load_qh(const uint8_t (&qh)[4]) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

void store_qh(uint8_t (&qh)[4], uint32_t v) {
  for (int i = 0; i < 4; ++i) qh[i] = static_cast<uint8_t>(v >> (8 * i));
}

// The signed value of largest magnitude (the first one on ties).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kLegacyBlock; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < kLegacyBlock; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}

// x*inv + offset truncated toward zero (as a C cast to int8 does), capped at
// top: round-to-nearest for the non-negative values that reach it. The
// multiply and add are rounded separately: with a fused multiply-add, 1 of
// the 212736 Q4_0 blocks of tiny-qwen2 no longer matches llama-quantize.
uint8_t round_level(float x, float inv, float offset, int top) {
  return static_cast<uint8_t>(std::min(top, static_cast<int>(static_cast<int8_t>(x * inv + offset))));
}

}  // namespace

void dequantize_Q4_0(const BlockQ4_0* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kLegacyBlock) {
    const float d = load_half(src[b].d);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>((src[b].qs[j] & 0xF) - 8) * d;
      dst[j + kHalf] = static_cast<float>((src[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_Q4_1(const BlockQ4_1* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kLegacyBlock) {
    const float d = load_half(src[b].d), m = load_half(src[b].m);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>(src[b].qs[j] & 0xF) * d + m;
      dst[j + kHalf] = static_cast<float>(src[b].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_Q5_0(const BlockQ5_0* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kLegacyBlock) {
    const float d = load_half(src[b].d);
    const uint32_t qh = load_qh(src[b].qh);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = (src[b].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (src[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
      dst[j] = static_cast<float>(lo - 16) * d;
      dst[j + kHalf] = static_cast<float>(hi - 16) * d;
    }
  }
}

void dequantize_Q5_1(const BlockQ5_1* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kLegacyBlock) {
    const float d = load_half(src[b].d), m = load_half(src[b].m);
    const uint32_t qh = load_qh(src[b].qh);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = (src[b].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (src[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
      dst[j] = static_cast<float>(lo) * d + m;
      dst[j + kHalf] = static_cast<float>(hi) * d + m;
    }
  }
}

void dequantize_Q8_0(const BlockQ8_0* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kLegacyBlock) {
    const float d = load_half(src[b].d);
    for (int j = 0; j < kLegacyBlock; ++j) dst[j] = static_cast<float>(src[b].qs[j]) * d;
  }
}

// Symmetric 4-bit: the largest-magnitude value maps to level 0 (-8*d), so the
// sign of d follows it and the full [-8, 7] range is used.
void quantize_Q4_0(const float* src, BlockQ4_0* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kLegacyBlock) {
    const float d = signed_absmax(src) / -8;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(dst[b].d, d);
    for (int j = 0; j < kHalf; ++j) {
      const uint8_t lo = round_level(src[j], inv, 8.5f, 15);
      const uint8_t hi = round_level(src[j + kHalf], inv, 8.5f, 15);
      dst[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_Q4_1(const float* src, BlockQ4_1* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kLegacyBlock) {
    float min, max;
    min_max(src, &min, &max);
    const float d = (max - min) / 15;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(dst[b].d, d);
    store_half(dst[b].m, min);
    for (int j = 0; j < kHalf; ++j) {
      const uint8_t lo = round_level(src[j] - min, inv, 0.5f, 15);
      const uint8_t hi = round_level(src[j + kHalf] - min, inv, 0.5f, 15);
      dst[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_Q5_0(const float* src, BlockQ5_0* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kLegacyBlock) {
    const float d = signed_absmax(src) / -16;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(dst[b].d, d);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const uint8_t lo = round_level(src[j], inv, 16.5f, 31);
      const uint8_t hi = round_level(src[j + kHalf], inv, 16.5f, 31);
      dst[b].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + kHalf);
    }
    store_qh(dst[b].qh, qh);
  }
}

void quantize_Q5_1(const float* src, BlockQ5_1* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kLegacyBlock) {
    float min, max;
    min_max(src, &min, &max);
    const float d = (max - min) / 31;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(dst[b].d, d);
    store_half(dst[b].m, min);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const uint8_t lo = round_level(src[j] - min, inv, 0.5f, 31);
      const uint8_t hi = round_level(src[j + kHalf] - min, inv, 0.5f, 31);
      dst[b].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + kHalf);
    }
    store_qh(dst[b].qh, qh);
  }
}

void quantize_Q8_0(const float* src, BlockQ8_0* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kLegacyBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kLegacyBlock; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(dst[b].d, d);
    // roundf: halves away from zero, as ggml's reference does.
    for (int j = 0; j < kLegacyBlock; ++j) dst[b].qs[j] = static_cast<int8_t>(std::round(src[j] * inv));
  }
}

}  // namespace onellm::quant
