// The AArch64 level: 128-bit ASIMD, which every AArch64 core has. Float
// kernels (F32/F16/BF16 weights, attention rows, the training product) and
// the activation quantizers live here; the int8 kernels are in
// fast_neon_int8.cpp, built plain, with dotprod and with dotprod + i8mm.
// Three tables result, "neon", "neon-dotprod" and "neon-i8mm";
// kernels_neon() returns the best one the CPU runs. Every float sum uses
// FMA (vfmaq), so results differ from the scalar level only in rounding and
// summation order.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/fast_kernels.h"
#include "kernels/fast_neon.h"
#include "kernels/quant_blocks.h"

#if defined(__aarch64__)
namespace onellm::fast {
namespace neon {
namespace {

// ---- activation quantization (bit-identical to fast_scalar.cpp)

// vmaxnmq, like std::fmax, ignores a NaN operand.
float amax_of(const float* x, int n) {
  float32x4_t m = vdupq_n_f32(0.0f);
  for (int i = 0; i < n; i += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + i)));
  return vmaxnmvq_f32(m);
}

// 16 values x * id -> int8, rounded half to even (vcvtnq: what nearbyint
// does in the default rounding mode); returns their sum.
int quantize16(const float* x, float id, int8_t* out) {
  int32x4_t q[4];
  ONELLM_UNROLL for (int k = 0; k < 4; ++k) q[k] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4 * k), id));
  const int16x8_t lo = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
  vst1q_s8(out, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
  return vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
}

void quantize_q8_neon(const float* x, ActQ8* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, x += 32) {
    const float d = amax_of(x, 32) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    const int s0 = quantize16(x, id, out[b].qs);
    out[b].sum = s0 + quantize16(x + 16, id, out[b].qs + 16);
    out[b].d = d;
  }
}

void quantize_q8k_neon(const float* x, ActQ8K* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, x += 256) {
    const float d = amax_of(x, 256) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int g = 0; g < 16; ++g) out[b].bsums[g] = static_cast<int16_t>(quantize16(x + 16 * g, id, out[b].qs + 16 * g));
    out[b].d = d;
  }
}

// ---- float weights against F32 activations

struct F32Elements {
  static constexpr int kBytes = 4;
  static float32x4_t load4(const uint8_t* p) { return load4_f32(p); }
  static float at(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
};
struct F16Elements {
  static constexpr int kBytes = 2;
  static float32x4_t load4(const uint8_t* p) { return load4_f16(p); }
  static float at(const uint8_t* p) { return half_to_float(p); }
};
struct BF16Elements {
  static constexpr int kBytes = 2;
  static float32x4_t load4(const uint8_t* p) { return load4_bf16(p); }
  static float at(const uint8_t* p) {  // inline, not bf16_to_f32: a call would spill the accumulators
    const uint32_t bits = static_cast<uint32_t>(p[0] | (p[1] << 8)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
};

// NR rows of n elements against NT tokens.
template <class E>
struct FloatKernel {
  using Weight = uint8_t;
  using Act = float;
  static constexpr int kRows = 2;

  template <int NR, int NT>
  static void run(const uint8_t* const* w, const float* const* a, int64_t n, float (&out)[NR][NT]) {
    // Vectors per step: with few (row, token) pairs, more independent FMA
    // chains per pair hide the FMA latency.
    constexpr int V = NR * NT <= 2 ? 4 : 2;
    float32x4_t acc[NR][NT][V];
    ONELLM_UNROLL for (int r = 0; r < NR; ++r)
      ONELLM_UNROLL for (int t = 0; t < NT; ++t)
        ONELLM_UNROLL for (int v = 0; v < V; ++v) acc[r][t][v] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 * V <= n; i += 4 * V) {
      float32x4_t wv[NR][V];
      ONELLM_UNROLL for (int r = 0; r < NR; ++r)
        ONELLM_UNROLL for (int v = 0; v < V; ++v) wv[r][v] = E::load4(w[r] + E::kBytes * (i + 4 * v));
      ONELLM_UNROLL for (int t = 0; t < NT; ++t)
        ONELLM_UNROLL for (int v = 0; v < V; ++v) {
          const float32x4_t x = vld1q_f32(a[t] + i + 4 * v);
          ONELLM_UNROLL for (int r = 0; r < NR; ++r) acc[r][t][v] = vfmaq_f32(acc[r][t][v], wv[r][v], x);
        }
    }
    for (; i + 4 <= n; i += 4)
      ONELLM_UNROLL for (int r = 0; r < NR; ++r) {
        const float32x4_t wv = E::load4(w[r] + E::kBytes * i);
        ONELLM_UNROLL for (int t = 0; t < NT; ++t) acc[r][t][0] = vfmaq_f32(acc[r][t][0], wv, vld1q_f32(a[t] + i));
      }
    ONELLM_UNROLL for (int r = 0; r < NR; ++r)
      ONELLM_UNROLL for (int t = 0; t < NT; ++t) {
        ONELLM_UNROLL for (int v = 1; v < V; ++v) acc[r][t][0] = vaddq_f32(acc[r][t][0], acc[r][t][v]);
        float sum = vaddvq_f32(acc[r][t][0]);
        for (int64_t j = i; j < n; ++j) sum = std::fma(E::at(w[r] + E::kBytes * j), a[t][j], sum);
        out[r][t] = sum;
      }
  }
};

template <class E>
float dot_row(const float* a, const uint8_t* row, int64_t n) {
  const uint8_t* rows[1] = {row};
  const float* acts[1] = {a};
  float out[1][1];
  FloatKernel<E>::template run<1, 1>(rows, acts, n, out);
  return out[0][0];
}

float dot_f32_neon(const float* a, const float* b, int64_t n) {
  return dot_row<F32Elements>(a, reinterpret_cast<const uint8_t*>(b), n);
}
float dot_f16_neon(const float* a, const uint8_t* row, int64_t n) { return dot_row<F16Elements>(a, row, n); }

// y += s * row
template <class E>
void axpy_row(float s, const uint8_t* row, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t y0 = vfmaq_n_f32(vld1q_f32(y + i), E::load4(row + E::kBytes * i), s);
    const float32x4_t y1 = vfmaq_n_f32(vld1q_f32(y + i + 4), E::load4(row + E::kBytes * (i + 4)), s);
    vst1q_f32(y + i, y0);
    vst1q_f32(y + i + 4, y1);
  }
  for (; i < n; ++i) y[i] = std::fma(s, E::at(row + E::kBytes * i), y[i]);
}

void axpy_f32_neon(float s, const float* x, float* y, int64_t n) {
  axpy_row<F32Elements>(s, reinterpret_cast<const uint8_t*>(x), y, n);
}
void axpy_f16_neon(float s, const uint8_t* row, float* y, int64_t n) { axpy_row<F16Elements>(s, row, y, n); }

}  // namespace

// Also fast_neon_math.cpp's conversion of F16 cache rows.
void f16_to_f32_neon(const uint8_t* row, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, F16Elements::load4(row + 2 * i));
  for (; i < n; ++i) out[i] = F16Elements::at(row + 2 * i);
}

namespace {

// FCVTN rounds to nearest even (FPCR's default) and quiets a NaN keeping its
// top payload bits: the same bits as f32_to_fp16.
void f32_to_f16_neon(const float* x, uint8_t* row, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1_u16(reinterpret_cast<uint16_t*>(row + 2 * i), vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) {
    const uint16_t h = f32_to_fp16(x[i]);
    std::memcpy(row + 2 * i, &h, 2);
  }
}

// ---- Q8_0 attention rows (n a multiple of 32)

float dot_q8_0_neon(const float* a, const uint8_t* row, int64_t n) {
  const auto* blocks = reinterpret_cast<const quant::BlockQ8_0*>(row);
  float32x4_t total = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < n / 32; ++b, a += 32) {
    float32x4_t q[8];
    int8x16_to_f32(vld1q_s8(blocks[b].qs), q);
    int8x16_to_f32(vld1q_s8(blocks[b].qs + 16), q + 4);
    float32x4_t s0 = vmulq_f32(q[0], vld1q_f32(a)), s1 = vmulq_f32(q[1], vld1q_f32(a + 4));
    ONELLM_UNROLL for (int k = 2; k < 8; k += 2) {
      s0 = vfmaq_f32(s0, q[k], vld1q_f32(a + 4 * k));
      s1 = vfmaq_f32(s1, q[k + 1], vld1q_f32(a + 4 * k + 4));
    }
    total = vfmaq_n_f32(total, vaddq_f32(s0, s1), half_to_float(blocks[b].d));
  }
  return vaddvq_f32(total);
}

void axpy_q8_0_neon(float s, const uint8_t* row, float* y, int64_t n) {
  const auto* blocks = reinterpret_cast<const quant::BlockQ8_0*>(row);
  for (int64_t b = 0; b < n / 32; ++b, y += 32) {
    const float d = s * half_to_float(blocks[b].d);
    float32x4_t q[8];
    int8x16_to_f32(vld1q_s8(blocks[b].qs), q);
    int8x16_to_f32(vld1q_s8(blocks[b].qs + 16), q + 4);
    ONELLM_UNROLL for (int k = 0; k < 8; ++k) vst1q_f32(y + 4 * k, vfmaq_n_f32(vld1q_f32(y + 4 * k), q[k], d));
  }
}

// ---- C += A * B for training: NI rows of C by NV vectors of 4 columns in
// registers, one pass over k. Every path (16 / 4 columns, single column)
// fuses each multiply-add, so a column's result is the same whichever path
// the caller's split sends it down.

template <int NI, int NV>
void accumulate_block(int64_t k, const float* a, int64_t a_si, int64_t a_sk, const float* b, int64_t ldb, float* c,
                      int64_t ldc) {
  float32x4_t acc[NI][NV];
  ONELLM_UNROLL for (int i = 0; i < NI; ++i)
    ONELLM_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = vdupq_n_f32(0.0f);
  for (int64_t p = 0; p < k; ++p) {
    float32x4_t bv[NV];
    ONELLM_UNROLL for (int v = 0; v < NV; ++v) bv[v] = vld1q_f32(b + p * ldb + 4 * v);
    const float* ap = a + p * a_sk;
    ONELLM_UNROLL for (int i = 0; i < NI; ++i) {
      const float ai = ap[i * a_si];
      ONELLM_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = vfmaq_n_f32(acc[i][v], bv[v], ai);
    }
  }
  ONELLM_UNROLL for (int i = 0; i < NI; ++i)
    ONELLM_UNROLL for (int v = 0; v < NV; ++v) {
      float* ci = c + i * ldc + 4 * v;
      vst1q_f32(ci, vaddq_f32(vld1q_f32(ci), acc[i][v]));
    }
}

// All rows of one column block: 6 rows at a time (24 accumulators), then the rest.
template <int NV>
void accumulate_columns(int64_t m, int64_t k, const float* a, int64_t a_si, int64_t a_sk, const float* b,
                        int64_t ldb, float* c, int64_t ldc) {
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) accumulate_block<6, NV>(k, a + i * a_si, a_si, a_sk, b, ldb, c + i * ldc, ldc);
  const float* ai = a + i * a_si;
  float* ci = c + i * ldc;
  switch (m - i) {
    case 5: accumulate_block<5, NV>(k, ai, a_si, a_sk, b, ldb, ci, ldc); break;
    case 4: accumulate_block<4, NV>(k, ai, a_si, a_sk, b, ldb, ci, ldc); break;
    case 3: accumulate_block<3, NV>(k, ai, a_si, a_sk, b, ldb, ci, ldc); break;
    case 2: accumulate_block<2, NV>(k, ai, a_si, a_sk, b, ldb, ci, ldc); break;
    case 1: accumulate_block<1, NV>(k, ai, a_si, a_sk, b, ldb, ci, ldc); break;
    default: break;
  }
}

void accumulate_f32_neon(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sk,
                         const float* b, int64_t ldb, float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) accumulate_columns<4>(m, k, a, a_si, a_sk, b + j, ldb, c + j, ldc);
  for (; j + 4 <= n; j += 4) accumulate_columns<1>(m, k, a, a_si, a_sk, b + j, ldb, c + j, ldc);
  for (; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      float sum = 0.0f;
      for (int64_t p = 0; p < k; ++p) sum = std::fma(a[i * a_si + p * a_sk], b[p * ldb + j], sum);
      c[i * ldc + j] += sum;
    }
}

uint64_t sum_words_neon(const uint64_t* w, int64_t n) {
  uint64x2_t s0 = vdupq_n_u64(0), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = vaddq_u64(s0, vld1q_u64(w + i));
    s1 = vaddq_u64(s1, vld1q_u64(w + i + 2));
    s2 = vaddq_u64(s2, vld1q_u64(w + i + 4));
    s3 = vaddq_u64(s3, vld1q_u64(w + i + 6));
  }
  uint64_t total = vaddvq_u64(vaddq_u64(vaddq_u64(s0, s1), vaddq_u64(s2, s3)));
  for (; i < n; ++i) total += w[i];
  return total;
}

Kernels make_table(const char* name, Int8Level int8) {
  Kernels k{};
  k.name = name;
  k.quantize_q8 = quantize_q8_neon;
  k.quantize_q8k = quantize_q8k_neon;
  k.tile[kSlotF32] = tile<FloatKernel<F32Elements>>;
  k.tile[kSlotF16] = tile<FloatKernel<F16Elements>>;
  k.tile[kSlotBF16] = tile<FloatKernel<BF16Elements>>;
  fill_int8_tiles(int8, k.tile);
  k.dot_f32 = dot_f32_neon;
  k.axpy_f32 = axpy_f32_neon;
  k.accumulate_f32 = accumulate_f32_neon;
  k.dot_f16 = dot_f16_neon;
  k.axpy_f16 = axpy_f16_neon;
  k.dot_q8_0 = dot_q8_0_neon;
  k.axpy_q8_0 = axpy_q8_0_neon;
  k.f16_to_f32 = f16_to_f32_neon;
  k.f32_to_f16 = f32_to_f16_neon;
  k.exp_f32 = exp_f32_neon;
  k.swiglu_f32 = swiglu_f32_neon;
  k.attend_heads = attend_heads_neon;
  k.sum_words = sum_words_neon;
  k.dequantize = dequantize_neon;
  return k;
}

}  // namespace
}  // namespace neon

const Kernels* kernels_neon_plain() {
  static const Kernels table = neon::make_table("neon", neon::Int8Level::kPlain);
  return &table;
}
const Kernels* kernels_neon_dotprod() {
  if (!cpu_features().dotprod) return nullptr;
  static const Kernels table = neon::make_table("neon-dotprod", neon::Int8Level::kDotprod);
  return &table;
}
const Kernels* kernels_neon_i8mm() {
  if (!cpu_features().dotprod || !cpu_features().i8mm) return nullptr;
  static const Kernels table = neon::make_table("neon-i8mm", neon::Int8Level::kI8mm);
  return &table;
}
const Kernels* kernels_neon() {
  if (const Kernels* best = kernels_neon_i8mm()) return best;
  if (const Kernels* best = kernels_neon_dotprod()) return best;
  return kernels_neon_plain();
}
}  // namespace onellm::fast
#else
namespace onellm::fast {
const Kernels* kernels_neon() { return nullptr; }
const Kernels* kernels_neon_plain() { return nullptr; }
const Kernels* kernels_neon_dotprod() { return nullptr; }
const Kernels* kernels_neon_i8mm() { return nullptr; }
}  // namespace onellm::fast
#endif
