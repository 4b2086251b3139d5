// The AArch64 level's vector exp (the x86 levels' polynomial, four lanes),
// with the softmax and SwiGLU built on it, and the attention kernel of the
// query heads that share one KV head (Kernels::attend_heads). Before these,
// the level took std::exp per score and attention's generic blocked path
// through the training product (on x86 that path cost ~2.7x the kernel per
// key, docs/benchmarks.md, session 30).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/fast_kernels.h"
#include "kernels/fast_neon.h"
#include "kernels/quant_blocks.h"

#if defined(__aarch64__)
namespace onellm::fast::neon {
namespace {

// exp(x) per lane: exp8's range reduction and polynomial
// (fast_x86_float.inc), within 2 ulp of libm's expf; exp(-inf) = 0.
inline float32x4_t exp4(float32x4_t x) {
  const uint32x4_t underflow = vcltq_f32(x, vdupq_n_f32(-87.3f));
  x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.7f)), vdupq_n_f32(-87.3f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  // n in [-126, 128]: split in two powers of two so 2^128 needs no inf.
  const int32x4_t ni = vcvtq_s32_f32(n);
  const int32x4_t half = vshrq_n_s32(ni, 1);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(half, vdupq_n_s32(127)), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vsubq_s32(ni, half), vdupq_n_s32(127)), 23));
  const float32x4_t e = vmulq_f32(vmulq_f32(p, s1), s2);
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), underflow));
}

// n < 4 floats through exp4 (the tail of a row).
inline void exp_tail(float* x, int64_t n) {
  float buf[4] = {};
  std::memcpy(buf, x, static_cast<size_t>(n) * sizeof(float));
  vst1q_f32(buf, exp4(vld1q_f32(buf)));
  std::memcpy(x, buf, static_cast<size_t>(n) * sizeof(float));
}

inline float32x4_t swiglu4(float32x4_t g, float32x4_t u) {
  const float32x4_t e = exp4(vnegq_f32(g));
  return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e)), u);
}

// ---- attention of a row's query heads (decode; prefill's rows in tiles):
// the queries sit in the lanes, so key j's scores are one vector per 4
// queries, and the online softmax's max, exp and sums are lane-wise. Keys go
// 16 at a time, converted once to F32 rows padded with zeros to a multiple
// of 4; values are added per 8 columns with one accumulator per query.

constexpr int64_t kKeyBlock = 16;

// Key row j of a KV head (F32, F16 or Q8_0) as dim floats.
void key_row_f32(TensorType type, const uint8_t* row, int64_t dim, float* out) {
  if (type == TensorType::F16) return f16_to_f32_neon(row, out, dim);
  if (type == TensorType::Q8_0) {  // dim is a multiple of 32
    const auto* blocks = reinterpret_cast<const quant::BlockQ8_0*>(row);
    for (int64_t b = 0; b < dim / 32; ++b) {
      const float32x4_t d = vdupq_n_f32(half_to_float(blocks[b].d));
      float32x4_t q[8];
      int8x16_to_f32(vld1q_s8(blocks[b].qs), q);
      int8x16_to_f32(vld1q_s8(blocks[b].qs + 16), q + 4);
      for (int k = 0; k < 8; ++k) vst1q_f32(out + 32 * b + 4 * k, vmulq_f32(d, q[k]));
    }
    return;
  }
  std::memcpy(out, row, static_cast<size_t>(dim) * sizeof(float));
}

// acc[r][v] += qt[d + L][4v .. 4v + 4) * k[r][L] (lane L of each key's four
// elements d .. d + 3).
template <int L, int R, int NV>
inline void scores_lane(const float* qt, const float32x4_t (&k)[R], int64_t d, float32x4_t (&acc)[R][NV]) {
  float32x4_t qd[NV];
  ONELLM_UNROLL for (int v = 0; v < NV; ++v) qd[v] = vld1q_f32(qt + ((d + L) * NV + v) * 4);
  ONELLM_UNROLL for (int r = 0; r < R; ++r)
    ONELLM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = vfmaq_laneq_f32(acc[r][v], qd[v], k[r], L);
}

// s[r * NV + v] = sum_d kb[r][d] * qt[d][4v .. 4v + 4) for r < R: R keys
// side by side so that R * NV FMA chains hide the latency; four elements of
// a key per load, each broadcast from its lane.
template <int R, int NV>
void scores_rows(const float* qt, const float* kb, int64_t dp, float32x4_t* s) {
  float32x4_t acc[R][NV];
  ONELLM_UNROLL for (int r = 0; r < R; ++r)
    ONELLM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int64_t d = 0; d < dp; d += 4) {
    float32x4_t k[R];
    ONELLM_UNROLL for (int r = 0; r < R; ++r) k[r] = vld1q_f32(kb + r * dp + d);
    scores_lane<0>(qt, k, d, acc);
    scores_lane<1>(qt, k, d, acc);
    scores_lane<2>(qt, k, d, acc);
    scores_lane<3>(qt, k, d, acc);
  }
  ONELLM_UNROLL for (int r = 0; r < R; ++r)
    ONELLM_UNROLL for (int v = 0; v < NV; ++v) s[r * NV + v] = acc[r][v];
}

template <int NV>
void block_scores(const float* qt, const float* kb, int64_t nb, int64_t dp, float32x4_t* s) {
  constexpr int R = NV == 1 ? 8 : 4;
  int64_t j = 0;
  for (; j + R <= nb; j += R) scores_rows<R, NV>(qt, kb + j * dp, dp, s + j * NV);
  for (; j < nb; ++j) scores_rows<1, NV>(qt, kb + j * dp, dp, s + j * NV);
}

// o[i][:] += sum_j p[j * p_stride + i] * vb[j][:] for i < NQ (o: NQ rows of dp).
template <int NQ>
void block_values(const float* p, int64_t p_stride, const float* vb, int64_t nb, int64_t dp, float* o) {
  int64_t c = 0;
  for (; c + 8 <= dp; c += 8) {
    float32x4_t acc[NQ][2];
    ONELLM_UNROLL for (int i = 0; i < NQ; ++i) acc[i][0] = vld1q_f32(o + i * dp + c), acc[i][1] = vld1q_f32(o + i * dp + c + 4);
    for (int64_t j = 0; j < nb; ++j) {
      const float32x4_t v0 = vld1q_f32(vb + j * dp + c), v1 = vld1q_f32(vb + j * dp + c + 4);
      ONELLM_UNROLL for (int i = 0; i < NQ; ++i) {
        const float pj = p[j * p_stride + i];
        acc[i][0] = vfmaq_n_f32(acc[i][0], v0, pj);
        acc[i][1] = vfmaq_n_f32(acc[i][1], v1, pj);
      }
    }
    ONELLM_UNROLL for (int i = 0; i < NQ; ++i) vst1q_f32(o + i * dp + c, acc[i][0]), vst1q_f32(o + i * dp + c + 4, acc[i][1]);
  }
  for (; c < dp; c += 4) {
    float32x4_t acc[NQ];
    ONELLM_UNROLL for (int i = 0; i < NQ; ++i) acc[i] = vld1q_f32(o + i * dp + c);
    for (int64_t j = 0; j < nb; ++j) {
      const float32x4_t v = vld1q_f32(vb + j * dp + c);
      ONELLM_UNROLL for (int i = 0; i < NQ; ++i) acc[i] = vfmaq_n_f32(acc[i], v, p[j * p_stride + i]);
    }
    ONELLM_UNROLL for (int i = 0; i < NQ; ++i) vst1q_f32(o + i * dp + c, acc[i]);
  }
}

using BlockValuesFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*);
constexpr BlockValuesFn kBlockValues[8] = {block_values<1>, block_values<2>, block_values<3>, block_values<4>,
                                           block_values<5>, block_values<6>, block_values<7>, block_values<8>};

template <int NV>
void attend_heads_nv(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                     int64_t dim, float scale, float* out, float* max_out, float* sum_out) {
  constexpr int64_t kLanes = 4 * NV;
  const int64_t dp = (dim + 3) / 4 * 4;
  thread_local std::vector<float> buffer;
  buffer.resize(static_cast<size_t>(dp * kLanes + 2 * kKeyBlock * dp + n_q * dp + kKeyBlock * kLanes));
  float* qt = buffer.data();        // dp x kLanes: scale * q_i[d] in lane i, zero padding
  float* kb = qt + dp * kLanes;     // kKeyBlock rows of dp
  float* vb = kb + kKeyBlock * dp;
  float* o = vb + kKeyBlock * dp;   // n_q rows of dp
  float* p = o + n_q * dp;          // kKeyBlock x kLanes probabilities
  std::fill(qt, qt + dp * kLanes, 0.0f);
  for (int64_t i = 0; i < n_q; ++i)
    for (int64_t d = 0; d < dim; ++d) qt[d * kLanes + i] = scale * q[i * dim + d];
  std::fill(kb, kb + 2 * kKeyBlock * dp, 0.0f);  // the rows' padding stays zero
  std::fill(o, o + n_q * dp, 0.0f);
  // Per-lane key limits (padding lanes: all keys). Key 0 is below every
  // limit, so each lane's running max is finite after the first block and
  // a block masked whole for a lane adds exp(-inf) = 0 there.
  int32_t limits[kLanes];
  int64_t fewest_keys = n_keys;
  for (int64_t i = 0; i < kLanes; ++i) {
    const int64_t limit = key_limits != nullptr && i < n_q ? std::min(key_limits[i], n_keys) : n_keys;
    limits[i] = static_cast<int32_t>(limit);
    fewest_keys = std::min(fewest_keys, limit);
  }
  const float32x4_t minus_inf = vdupq_n_f32(-std::numeric_limits<float>::infinity());
  float32x4_t running_max[NV], total[NV], s[kKeyBlock * NV];
  for (int w = 0; w < NV; ++w) running_max[w] = minus_inf, total[w] = vdupq_n_f32(0.0f);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n_keys - j0);
    for (int64_t j = 0; j < nb; ++j) key_row_f32(k.type, k.data + (j0 + j) * k.stride, dim, kb + j * dp);
    block_scores<NV>(qt, kb, nb, dp, s);
    if (j0 + nb > fewest_keys)
      for (int w = 0; w < NV; ++w) {
        const int32x4_t limit = vld1q_s32(limits + 4 * w);
        for (int64_t j = 0; j < nb; ++j) {
          const uint32x4_t below = vcgtq_s32(limit, vdupq_n_s32(static_cast<int32_t>(j0 + j)));
          s[j * NV + w] = vbslq_f32(below, s[j * NV + w], minus_inf);
        }
      }
    for (int w = 0; w < NV; ++w) {
      float32x4_t block_max = s[w];
      for (int64_t j = 1; j < nb; ++j) block_max = vmaxq_f32(block_max, s[j * NV + w]);
      const float32x4_t new_max = vmaxq_f32(running_max[w], block_max);
      if (vmaxvq_u32(vcgtq_f32(new_max, running_max[w])) != 0) {
        // exp(-inf) = 0 on the first block: nothing summed yet.
        float rescale[4];
        vst1q_f32(rescale, exp4(vsubq_f32(running_max[w], new_max)));
        total[w] = vmulq_f32(total[w], vld1q_f32(rescale));
        for (int64_t i = 4 * w; i < std::min<int64_t>(n_q, 4 * w + 4); ++i)
          for (int64_t c = 0; c < dp; c += 4) vst1q_f32(o + i * dp + c, vmulq_n_f32(vld1q_f32(o + i * dp + c), rescale[i - 4 * w]));
        running_max[w] = new_max;
      }
      for (int64_t j = 0; j < nb; ++j) {
        const float32x4_t pj = exp4(vsubq_f32(s[j * NV + w], running_max[w]));
        total[w] = vaddq_f32(total[w], pj);
        vst1q_f32(p + j * kLanes + 4 * w, pj);
      }
    }
    for (int64_t j = 0; j < nb; ++j) key_row_f32(v.type, v.data + (j0 + j) * v.stride, dim, vb + j * dp);
    for (int64_t i0 = 0; i0 < n_q; i0 += 8)
      kBlockValues[std::min<int64_t>(8, n_q - i0) - 1](p + i0, kLanes, vb, nb, dp, o + i0 * dp);
  }
  float sums[kLanes], maxes[kLanes];
  for (int w = 0; w < NV; ++w) vst1q_f32(sums + 4 * w, total[w]), vst1q_f32(maxes + 4 * w, running_max[w]);
  for (int64_t i = 0; i < n_q; ++i) {
    const float inv = max_out != nullptr ? 1.0f : sums[i] > 0.0f ? 1.0f / sums[i] : 0.0f;
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = o[i * dp + d] * inv;
    if (max_out != nullptr) max_out[i] = maxes[i], sum_out[i] = sums[i];
  }
}

}  // namespace

void exp_f32_neon(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, exp4(vld1q_f32(x + i)));
  if (i < n) exp_tail(x + i, n - i);
}

void swiglu_f32_neon(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
  for (; i < n; ++i) {
    float e = -gate[i];
    exp_tail(&e, 1);  // exp(-gate[i]) the same way as the vector lanes
    out[i] = gate[i] / (1.0f + e) * up[i];
  }
}

void attend_heads_neon(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                       int64_t dim, float scale, float* out, float* max_out, float* sum_out) {
  switch ((n_q + 3) / 4) {
    case 1: return attend_heads_nv<1>(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
    case 2: return attend_heads_nv<2>(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
    case 3: return attend_heads_nv<3>(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
    default: return attend_heads_nv<4>(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
  }
}

}  // namespace onellm::fast::neon
#endif
