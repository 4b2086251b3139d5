// The fast path's algorithm in plain C++: activations quantized to 8-bit
// blocks, integer dot products per block, one float multiply-add per block.
// It is the fallback on CPUs without a SIMD level and the reference the SIMD
// kernels are tested against (same integers, only the float summation order
// differs). The activation quantizers here define the bits every level must
// produce: d = amax/127, q = round-half-even(x * (1/d)).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

namespace onellm::fast {
namespace {

using namespace quant;

void quantize_q8_scalar(const float* x, ActQ8* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, x += 32) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = static_cast<int>(std::nearbyint(x[i] * id));
      out[b].qs[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = sum;
  }
}

void quantize_q8k_scalar(const float* x, ActQ8K* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, x += 256) {
    float amax = 0;
    for (int i = 0; i < 256; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int q = static_cast<int>(std::nearbyint(x[i] * id));
        out[b].qs[i] = static_cast<int8_t>(q);
        sum += q;
      }
      out[b].bsums[g] = static_cast<int16_t>(sum);
    }
    out[b].d = d;
  }
}

int dot32(const uint8_t* w, const int8_t* a) {
  int sum = 0;
  for (int i = 0; i < 32; ++i) sum += w[i] * a[i];
  return sum;
}

// Levels of a legacy block, element order.
void q4_levels(const uint8_t* qs, uint8_t* out) {
  for (int i = 0; i < 16; ++i) {
    out[i] = qs[i] & 0xF;
    out[i + 16] = qs[i] >> 4;
  }
}
void q5_levels(const uint8_t* qs, const uint8_t* qh_bytes, uint8_t* out) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  q4_levels(qs, out);
  for (int i = 0; i < 32; ++i) out[i] |= static_cast<uint8_t>(((qh >> i) & 1) << 4);
}

// One block's contribution to a dot product, per weight type.
float block_q4_0(const BlockQ4_0& w, const ActQ8& a) {
  uint8_t q[32];
  q4_levels(w.qs, q);
  const float d = load_half(w.d);
  return d * (a.d * static_cast<float>(dot32(q, a.qs) - 8 * a.sum));
}
float block_q4_1(const BlockQ4_1& w, const ActQ8& a) {
  uint8_t q[32];
  q4_levels(w.qs, q);
  return load_half(w.d) * (a.d * static_cast<float>(dot32(q, a.qs))) + load_half(w.m) * (a.d * static_cast<float>(a.sum));
}
float block_q5_0(const BlockQ5_0& w, const ActQ8& a) {
  uint8_t q[32];
  q5_levels(w.qs, w.qh, q);
  const float d = load_half(w.d);
  return d * (a.d * static_cast<float>(dot32(q, a.qs) - 16 * a.sum));
}
float block_q5_1(const BlockQ5_1& w, const ActQ8& a) {
  uint8_t q[32];
  q5_levels(w.qs, w.qh, q);
  return load_half(w.d) * (a.d * static_cast<float>(dot32(q, a.qs))) + load_half(w.m) * (a.d * static_cast<float>(a.sum));
}
float block_q8_0(const BlockQ8_0& w, const ActQ8& a) {
  int sum = 0;
  for (int i = 0; i < 32; ++i) sum += w.qs[i] * a.qs[i];
  return load_half(w.d) * (a.d * static_cast<float>(sum));
}

// Q4_K / Q5_K: sum_j d*sc_j*dot_j - dmin*m_j*sum_j(a).
template <typename Block, bool kFifthBit>
float block_k4(const Block& w, const ActQ8K& a) {
  int isum = 0, msum = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(w.scales, j, &sc, &m);
    const uint8_t* q = w.qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    int dot = 0;
    for (int l = 0; l < 32; ++l) {
      int level = (q[l] >> shift) & 0xF;
      if constexpr (kFifthBit) level |= ((w.qh[l] >> j) & 1) << 4;
      dot += level * a.qs[32 * j + l];
    }
    isum += sc * dot;
    msum += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  }
  return load_half(w.d) * a.d * static_cast<float>(isum) - load_half(w.dmin) * a.d * static_cast<float>(msum);
}

float block_q6_k(const BlockQ6_K& w, const ActQ8K& a) {
  int isum = 0, offset = 0;
  for (int e = 0; e < 256; ++e) {  // the layout of dequantize_Q6_K; scale index e/16
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int lo = (w.ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
    const int hi = (w.qh[32 * h + l] >> (2 * k)) & 3;
    isum += w.scales[e / 16] * (lo | (hi << 4)) * a.qs[e];
  }
  for (int g = 0; g < 16; ++g) offset += w.scales[g] * a.bsums[g];
  return load_half(w.d) * a.d * static_cast<float>(isum - 32 * offset);
}

// Q2_K: sum_j d*(sc_j&15)*dot_j - dmin*(sc_j>>4)*sum_j(a), 16-element
// sub-blocks; Q3_K: sum_j d*(sc_j-32)*dot_j(q - 4), q 3-bit.
template <bool kQ3>
float block_low_bit_k(const std::conditional_t<kQ3, BlockQ3_K, BlockQ2_K>& w, const ActQ8K& a) {
  int isum = 0;
  for (int j = 0; j < 16; ++j) {  // sub-block j: elements 16 j .. 16 j + 15
    const int g = j / 2, scale = kQ3 ? q3_k_scale(w.scales, j) : w.scales[j] & 0xF;
    for (int l = 16 * (j % 2); l < 16 * (j % 2) + 16; ++l) {
      int q = (w.qs[32 * (g / 4) + l] >> (2 * (g % 4))) & 3;
      if constexpr (kQ3) q -= (w.hmask[l] >> g) & 1 ? 0 : 4;
      isum += scale * q * a.qs[32 * g + l];
    }
  }
  if constexpr (kQ3) {
    return load_half(w.d) * a.d * static_cast<float>(isum);
  } else {
    int msum = 0;
    for (int j = 0; j < 16; ++j) msum += (w.scales[j] >> 4) * a.bsums[j];
    return load_half(w.d) * a.d * static_cast<float>(isum) - load_half(w.dmin) * a.d * static_cast<float>(msum);
  }
}

// IQ4_NL / IQ4_XS: levels are values of kIq4Values, signed, no offset.
int dot_iq4(const uint8_t* qs, const int8_t* a) {
  int sum = 0;
  for (int l = 0; l < 16; ++l) sum += kIq4Values[qs[l] & 0xF] * a[l] + kIq4Values[qs[l] >> 4] * a[l + 16];
  return sum;
}
float block_iq4_nl(const BlockIQ4_NL& w, const ActQ8& a) {
  return load_half(w.d) * (a.d * static_cast<float>(dot_iq4(w.qs, a.qs)));
}
// IQ4_XS against the 8 activation blocks of its 256 elements.
float block_iq4_xs(const BlockIQ4_XS& w, const ActQ8* a) {
  const float d = load_half(w.d);
  float sum = 0;
  for (int j = 0; j < 8; ++j)
    sum += d * static_cast<float>(iq4_xs_scale(w, j)) * (a[j].d * static_cast<float>(dot_iq4(w.qs + 16 * j, a[j].qs)));
  return sum;
}

template <typename Block, typename Act, float (*kBlockDot)(const Block&, const Act&)>
void tile_blocks(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a, size_t a_stride,
                 int64_t n_tok, int64_t n_blocks, float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* wr = reinterpret_cast<const Block*>(w + r * w_stride);
    for (int64_t t = 0; t < n_tok; ++t) {
      const auto* at = reinterpret_cast<const Act*>(a + t * a_stride);
      float sum = 0;
      for (int64_t b = 0; b < n_blocks; ++b) sum += kBlockDot(wr[b], at[b]);
      y[t * y_stride + r] = sum;
    }
  }
}

void tile_iq4_xs(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a, size_t a_stride, int64_t n_tok,
                 int64_t n_blocks, float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* wr = reinterpret_cast<const BlockIQ4_XS*>(w + r * w_stride);
    for (int64_t t = 0; t < n_tok; ++t) {
      const auto* at = reinterpret_cast<const ActQ8*>(a + t * a_stride);
      float sum = 0;
      for (int64_t b = 0; b < n_blocks; ++b) sum += block_iq4_xs(wr[b], at + 8 * b);
      y[t * y_stride + r] = sum;
    }
  }
}

float dot_f32_scalar(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float sum = 0;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (float v : acc) sum += v;
  return sum;
}

void axpy_f32_scalar(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

void accumulate_f32_scalar(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sk,
                           const float* b, int64_t ldb, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
      const int64_t nj = std::min<int64_t>(16, n - j0);
      float acc[16] = {};
      for (int64_t p = 0; p < k; ++p) {
        const float av = a[i * a_si + p * a_sk];
        const float* bp = b + p * ldb + j0;
        for (int64_t j = 0; j < nj; ++j) acc[j] += av * bp[j];
      }
      for (int64_t j = 0; j < nj; ++j) c[i * ldc + j0 + j] += acc[j];
    }
  }
}

float dot_f16_scalar(const float* a, const uint8_t* row, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * half_bits_to_float(static_cast<uint16_t>(row[2 * (i + k)] | (row[2 * (i + k) + 1] << 8)));
  float sum = 0;
  for (; i < n; ++i) sum += a[i] * half_bits_to_float(static_cast<uint16_t>(row[2 * i] | (row[2 * i + 1] << 8)));
  for (float v : acc) sum += v;
  return sum;
}

void axpy_f16_scalar(float s, const uint8_t* row, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * half_bits_to_float(static_cast<uint16_t>(row[2 * i] | (row[2 * i + 1] << 8)));
}

void f16_to_f32_scalar(const uint8_t* row, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = half_bits_to_float(static_cast<uint16_t>(row[2 * i] | (row[2 * i + 1] << 8)));
}

void f32_to_f16_scalar(const float* x, uint8_t* row, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_fp16(x[i]);
    row[2 * i] = static_cast<uint8_t>(h & 0xFF);
    row[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
}

uint64_t sum_words_scalar(const uint64_t* w, int64_t n) {
  uint64_t s[4] = {0, 0, 0, 0};  // four chains: not bound by the add latency
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += w[i + j];
  for (; i < n; ++i) s[0] += w[i];
  return s[0] + s[1] + s[2] + s[3];
}

float dot_q8_0_scalar(const float* a, const uint8_t* row, int64_t n) {
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(row);
  float sum = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    float acc = 0;
    for (int i = 0; i < 32; ++i) acc += a[b * 32 + i] * static_cast<float>(blocks[b].qs[i]);
    sum += acc * load_half(blocks[b].d);
  }
  return sum;
}

void axpy_q8_0_scalar(float s, const uint8_t* row, float* y, int64_t n) {
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(row);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float d = s * load_half(blocks[b].d);
    for (int i = 0; i < 32; ++i) y[b * 32 + i] += d * static_cast<float>(blocks[b].qs[i]);
  }
}

// Plain-float weights: element i of a row as float.
float f32_at(const uint8_t* row, int64_t i) {
  float v;
  std::memcpy(&v, row + 4 * i, 4);
  return v;
}
float f16_at(const uint8_t* row, int64_t i) { return half_bits_to_float(static_cast<uint16_t>(row[2 * i] | (row[2 * i + 1] << 8))); }
float bf16_at(const uint8_t* row, int64_t i) { return bf16_to_f32(static_cast<uint16_t>(row[2 * i] | (row[2 * i + 1] << 8))); }

template <float (*kAt)(const uint8_t*, int64_t)>
void tile_float(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a, size_t a_stride, int64_t n_tok,
                int64_t n, float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* wr = w + r * w_stride;
    for (int64_t t = 0; t < n_tok; ++t) {
      const auto* at = reinterpret_cast<const float*>(a + t * a_stride);
      float acc[8] = {};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += kAt(wr, i + k) * at[i + k];
      float sum = 0;
      for (; i < n; ++i) sum += kAt(wr, i) * at[i];
      for (float v : acc) sum += v;
      y[t * y_stride + r] = sum;
    }
  }
}

const Kernels kScalar = {
    "scalar",
    quantize_q8_scalar,
    quantize_q8k_scalar,
    {
        tile_float<f32_at>,
        tile_float<f16_at>,
        tile_float<bf16_at>,
        tile_blocks<BlockQ4_0, ActQ8, block_q4_0>,
        tile_blocks<BlockQ4_1, ActQ8, block_q4_1>,
        tile_blocks<BlockQ5_0, ActQ8, block_q5_0>,
        tile_blocks<BlockQ5_1, ActQ8, block_q5_1>,
        tile_blocks<BlockQ8_0, ActQ8, block_q8_0>,
        tile_blocks<BlockQ4_K, ActQ8K, block_k4<BlockQ4_K, false>>,
        tile_blocks<BlockQ5_K, ActQ8K, block_k4<BlockQ5_K, true>>,
        tile_blocks<BlockQ6_K, ActQ8K, block_q6_k>,
        tile_blocks<BlockIQ4_NL, ActQ8, block_iq4_nl>,
        tile_iq4_xs,
        tile_blocks<BlockQ2_K, ActQ8K, block_low_bit_k<false>>,
        tile_blocks<BlockQ3_K, ActQ8K, block_low_bit_k<true>>,
    },
    dot_f32_scalar,
    axpy_f32_scalar,
    accumulate_f32_scalar,
    dot_f16_scalar,
    axpy_f16_scalar,
    dot_q8_0_scalar,
    axpy_q8_0_scalar,
    f16_to_f32_scalar,
    f32_to_f16_scalar,
    exp_f32_scalar,
    swiglu_f32_scalar,
    nullptr,  // attend_heads: the generic path
    sum_words_scalar,
    nullptr,  // dequantize: dequantize_row is the scalar routine
};

}  // namespace

void exp_f32_scalar(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

void swiglu_f32_scalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

const Kernels* kernels_scalar() { return &kScalar; }

}  // namespace onellm::fast
