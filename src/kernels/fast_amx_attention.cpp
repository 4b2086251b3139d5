// The AMX level's Kernels::attend_heads: prefill's attention on the BF16
// tiles, flash-style: per block of 32 keys, S = Q K^T on the tiles (two
// 16 x 16 C tiles), the online softmax on the vector unit (one query's 16
// scores per register), then P V on the tiles (a 16 x 16 C tile per 16
// dimensions of the head, four in flight), added into the F32 running
// output after its rescale. Each product is three tile products of BF16
// parts (below), so the result is within 1e-4 of the double reference.
//
// The AVX-512 kernel spends group x dim / 16 FMAs per key on the scores and
// as many on the values; here a 32-key block of up to 16 queries is 3 dim /
// 16 tile products for each. The keys and values come either prepared once
// per layer (prepare_kv_tiles, KvRows::bf16_tiles: what prefill does) or as
// F32 rows converted per call (a 16 x 16 dword transpose per 32 dimensions
// of 16 keys, key pairs interleaved for the values). Decode (F16 / Q8_0
// rows), few queries or keys of F32 rows and head sizes that are not a
// multiple of 32 go to the AVX-512 kernel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/fast_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, as in fast_avx512.cpp
#endif

namespace onellm::fast {
namespace {

#include "kernels/fast_amx_tiles.inc"

constexpr int64_t kKeyBlock = kKvTileKeys;  // keys per block: one A tile row of P

#include "kernels/fast_avx512_exp.inc"

// Every product is split in BF16 parts, x = hi + lo with hi = bf16(x) and
// lo = bf16(x - hi) (16 significant bits in all), and a b = hi hi' + hi lo'
// + lo hi': three tile products instead of one. With one BF16 product the
// scores were off by 2^-9 of their size and the softmax turned that into
// per-cent errors of the weights (logits of an F16 cache went from 2e-3 to
// 2e-2 of their scale off the F32 cache's: Q8_0's distance); split, the
// attention is as close to F32 as the F16 cache itself.
constexpr int64_t kHalfBytes = 32;  // x dim: one half block's keys, hi or lo


struct Scratch {
  uint8_t* q;     // dim / 32 A tiles of scale * q, hi; then lo (32 dim bytes each)
  uint8_t* k;     // a block's keys as B tiles (block_tiles: 128 dim bytes)
  uint8_t* v;     // a block's values as B tiles (128 dim bytes)
  uint8_t* p;     // two A tiles: 16 queries x 32 probabilities, hi and lo
  float* s;       // 16 x 32 scores
  float* part;    // four C tiles of P V
  float* keys;    // 32 x dim: a partial block's keys, zero-padded
  float* values;  // 32 x dim: its values
  float* lo;      // 32 x dim: key residuals x - bf16(x)
  float* o;       // 16 x dim running outputs
};

Scratch scratch_for(int64_t dim) {
  thread_local std::vector<uint8_t> storage;
  const size_t q = 64 * dim, k = 128 * dim, v = 128 * dim, p = 2048, s = 2048, part = 4096, rows = 128 * dim;
  uint8_t* base = aligned_bytes(storage, q + k + v + p + s + part + 3 * rows + 64 * dim);
  Scratch x;
  x.q = base;
  x.k = x.q + q;
  x.v = x.k + k;
  x.p = x.v + v;
  x.s = reinterpret_cast<float*>(x.p + p);
  x.part = x.s + 512;
  x.keys = x.part + 1024;
  x.values = x.keys + 32 * dim;
  x.lo = x.values + 32 * dim;
  x.o = x.lo + 32 * dim;
  return x;
}

// Rows j0 .. j0 + nb of r (nb <= 32) as 32 F32 rows of dim: in place when
// whole and a whole number of floats apart, else copied into buffer with
// zero rows after them.
const float* block_rows(KvRows r, int64_t j0, int64_t nb, int64_t dim, float* buffer, int64_t* stride) {
  if (nb == kKeyBlock && r.stride % sizeof(float) == 0) {
    *stride = static_cast<int64_t>(r.stride / sizeof(float));
    return reinterpret_cast<const float*>(r.data + j0 * r.stride);
  }
  for (int64_t j = 0; j < kKeyBlock; ++j) {
    float* dst = buffer + j * dim;
    if (j < nb)
      std::memcpy(dst, r.data + (j0 + j) * r.stride, dim * sizeof(float));
    else
      std::fill_n(dst, dim, 0.0f);
  }
  *stride = dim;
  return buffer;
}

// One block of 32 keys and values as B tiles. Keys: hi of keys 0-15, hi of
// 16-31, lo of 0-15, lo of 16-31, each dim / 32 tiles (32 dim bytes).
// Values: dim / 16 tiles hi, then as many lo (64 dim bytes each); row j of
// value tile c holds keys 2 j and 2 j + 1 of dimensions 16 c .. + 15. Key
// and value rows stride and v_stride floats apart; lo: 32 x dim floats of
// scratch.
void block_tiles(const float* keys, int64_t stride, const float* values, int64_t v_stride, int64_t dim, float* lo,
                 uint8_t* k_out, uint8_t* v_out) {
  for (int64_t j = 0; j < kKeyBlock; ++j)
    for (int64_t d = 0; d < dim; d += 16) {
      const __m512 x = _mm512_loadu_ps(keys + j * stride + d);
      _mm512_storeu_ps(lo + j * dim + d, _mm512_sub_ps(x, bf16_value(x)));
    }
  float_rows_to_pairs(keys, stride, dim, k_out);
  float_rows_to_pairs(keys + 16 * stride, stride, dim, k_out + kHalfBytes * dim);
  float_rows_to_pairs(lo, dim, dim, k_out + 2 * kHalfBytes * dim);
  float_rows_to_pairs(lo + 16 * dim, dim, dim, k_out + 3 * kHalfBytes * dim);
  for (int64_t c = 0; c < dim / kTile; ++c)
    for (int64_t j = 0; j < kTile; ++j) {
      const __m512 v0 = _mm512_loadu_ps(values + 2 * j * v_stride + kTile * c);
      const __m512 v1 = _mm512_loadu_ps(values + (2 * j + 1) * v_stride + kTile * c);
      _mm512_storeu_si512(v_out + 1024 * c + 64 * j, bf16_pairs(v0, v1));
      _mm512_storeu_si512(v_out + 64 * dim + 1024 * c + 64 * j,
                          bf16_pairs(_mm512_sub_ps(v0, bf16_value(v0)), _mm512_sub_ps(v1, bf16_value(v1))));
    }
}

void attend_heads_tiles(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                        int64_t dim, float scale, float* out, float* max_out, float* sum_out) {
  const Scratch x = scratch_for(dim);
  const int64_t n_dt = dim / kK;  // 32-dimension tiles of Q and K
  uint8_t* const q_lo = x.q + kHalfBytes * dim;
  // scale * q as A tiles (queries past n_q are zero rows).
  for (int64_t t = 0; t < n_dt; ++t)
    for (int64_t i = 0; i < kTile; ++i) {
      __m512 x0 = _mm512_setzero_ps(), x1 = x0;
      if (i < n_q) {
        const float* src = q + i * dim + kK * t;
        x0 = _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_loadu_ps(src));
        x1 = _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_loadu_ps(src + 16));
      }
      split_row(x0, x1, x.q + 1024 * t + 64 * i, q_lo + 1024 * t + 64 * i);
    }
  std::fill_n(x.o, kTile * dim, 0.0f);
  float running_max[kTile];
  __m512 total[kTile];  // per query, summed over lanes at the end
  int64_t limit[kTile];
  int64_t last_key = 0;
  for (int64_t i = 0; i < kTile; ++i) {
    running_max[i] = -std::numeric_limits<float>::infinity();
    total[i] = _mm512_setzero_ps();
    limit[i] = i < n_q ? (key_limits != nullptr ? key_limits[i] : n_keys) : 0;
    last_key = std::max(last_key, limit[i]);
  }
  const size_t block_bytes = kv_tile_bytes(kKeyBlock, dim);
  load_tile_config();
  for (int64_t j0 = 0; j0 < last_key; j0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n_keys - j0);
    // The block's keys and values as B tiles: prepared (bf16_tiles), or
    // converted now.
    const uint8_t* kt = x.k;
    const uint8_t* vt = x.v;
    if (k.bf16_tiles) {
      kt = k.data + (j0 / kKeyBlock) * block_bytes;
      vt = v.data + (j0 / kKeyBlock) * block_bytes;
    } else {
      int64_t k_stride, v_stride;
      const float* keys = block_rows(k, j0, nb, dim, x.keys, &k_stride);
      const float* values = block_rows(v, j0, nb, dim, x.values, &v_stride);
      block_tiles(keys, k_stride, values, v_stride, dim, x.lo, x.k, x.v);
    }
    // S = Qh Kh + Ql Kh + Qh Kl: keys 0-15 in tmm0, 16-31 in tmm1.
    ONELLM_TILE_ZERO(0);
    ONELLM_TILE_ZERO(1);
    for (int64_t t = 0; t < n_dt; ++t) {
      ONELLM_TILE_LOAD(4, x.q + 1024 * t, 64);
      ONELLM_TILE_LOAD(6, kt + 1024 * t, 64);
      ONELLM_TILE_LOAD(7, kt + kHalfBytes * dim + 1024 * t, 64);
      ONELLM_TILE_DP(0, 4, 6);
      ONELLM_TILE_DP(1, 4, 7);
      ONELLM_TILE_LOAD(5, q_lo + 1024 * t, 64);
      ONELLM_TILE_DP(0, 5, 6);
      ONELLM_TILE_DP(1, 5, 7);
      ONELLM_TILE_LOAD(6, kt + 2 * kHalfBytes * dim + 1024 * t, 64);
      ONELLM_TILE_LOAD(7, kt + 3 * kHalfBytes * dim + 1024 * t, 64);
      ONELLM_TILE_DP(0, 4, 6);
      ONELLM_TILE_DP(1, 4, 7);
    }
    ONELLM_TILE_STORE(0, x.s, 128);
    ONELLM_TILE_STORE(1, x.s + 16, 128);
    // The online softmax, one query per row; P as A tiles, hi and lo.
    float rescale[kTile];
    for (int64_t i = 0; i < kTile; ++i) {
      rescale[i] = 1.0f;
      const int64_t left = std::min(limit[i], n_keys) - j0;
      if (left <= 0) {  // past its own position (or a padding row): nothing to add
        _mm512_store_si512(x.p + 64 * i, _mm512_setzero_si512());
        _mm512_store_si512(x.p + 1024 + 64 * i, _mm512_setzero_si512());
        continue;
      }
      const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      const __mmask16 m1 =
          left >= 32 ? __mmask16(0xFFFF) : left <= 16 ? 0 : static_cast<__mmask16>((1u << (left - 16)) - 1);
      const __m512 minus_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      const __m512 s0 = _mm512_mask_blend_ps(m0, minus_inf, _mm512_load_ps(x.s + 32 * i));
      const __m512 s1 = _mm512_mask_blend_ps(m1, minus_inf, _mm512_load_ps(x.s + 32 * i + 16));
      const float block_max = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
      if (block_max > running_max[i]) {
        if (running_max[i] > -std::numeric_limits<float>::infinity()) {
          rescale[i] = _mm512_cvtss_f32(exp16(_mm512_set1_ps(running_max[i] - block_max)));
          total[i] = _mm512_mul_ps(total[i], _mm512_set1_ps(rescale[i]));
        }
        running_max[i] = block_max;
      }
      const __m512 mx = _mm512_set1_ps(running_max[i]);
      const __m512 p0 = exp16(_mm512_sub_ps(s0, mx)), p1 = exp16(_mm512_sub_ps(s1, mx));
      split_row(p0, p1, x.p + 64 * i, x.p + 1024 + 64 * i);
      total[i] = _mm512_add_ps(total[i], _mm512_add_ps(p0, p1));
    }
    // O = O rescale + Ph Vh + Pl Vh + Ph Vl, 16 dimensions per C tile, four
    // tiles in flight (a tile stored right after its products waited out
    // their latency: 18 % of the kernel).
    ONELLM_TILE_LOAD(4, x.p, 64);
    ONELLM_TILE_LOAD(5, x.p + 1024, 64);
    const uint8_t* v_lo = vt + 64 * dim;
    for (int64_t c0 = 0; c0 < dim / kTile; c0 += 4) {
      const int64_t n_c = std::min<int64_t>(4, dim / kTile - c0);
#define ONELLM_PV(ct, c)                                 \
  ONELLM_TILE_ZERO(ct);                                  \
  ONELLM_TILE_LOAD(6, vt + 1024 * (c), 64);              \
  ONELLM_TILE_DP(ct, 4, 6);                              \
  ONELLM_TILE_DP(ct, 5, 6);                              \
  ONELLM_TILE_LOAD(7, v_lo + 1024 * (c), 64);            \
  ONELLM_TILE_DP(ct, 4, 7);
      ONELLM_PV(0, c0);
      if (n_c > 1) { ONELLM_PV(1, c0 + 1); }
      if (n_c > 2) { ONELLM_PV(2, c0 + 2); }
      if (n_c > 3) { ONELLM_PV(3, c0 + 3); }
#undef ONELLM_PV
      ONELLM_TILE_STORE(0, x.part, 64);
      if (n_c > 1) ONELLM_TILE_STORE(1, x.part + 256, 64);
      if (n_c > 2) ONELLM_TILE_STORE(2, x.part + 512, 64);
      if (n_c > 3) ONELLM_TILE_STORE(3, x.part + 768, 64);
      for (int64_t c = 0; c < n_c; ++c)
        for (int64_t i = 0; i < n_q; ++i) {
          float* o = x.o + i * dim + kTile * (c0 + c);
          _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_loadu_ps(o), _mm512_set1_ps(rescale[i]),
                                              _mm512_load_ps(x.part + 256 * c + kTile * i)));
        }
    }
  }
  release_tiles();
  for (int64_t i = 0; i < n_q; ++i) {
    const float sum = _mm512_reduce_add_ps(total[i]);
    const float inv = max_out != nullptr ? 1.0f : sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = x.o[i * dim + d] * inv;
    if (max_out != nullptr) max_out[i] = running_max[i], sum_out[i] = sum;
  }
}

}  // namespace

void attend_heads_amx(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                      int64_t dim, float scale, float* out, float* max_out, float* sum_out) {
  if (k.bf16_tiles) {  // attend_group_impl let only a pair of prepared rows through
    if (dim % kK != 0 || dim > kAmxMaxHeadDim)
      throw Error("attention: no AMX tile layout for a head size of " + std::to_string(dim));
    return attend_heads_tiles(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
  }
  if (k.type == TensorType::F32 && n_q >= kAmxMinQueries && n_keys >= kAmxMinKeys && dim % kK == 0 &&
      dim <= kAmxMaxHeadDim)
    return attend_heads_tiles(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
  kernels_avx512()->attend_heads(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
}

}  // namespace onellm::fast

namespace onellm {

void prepare_kv_tiles(KvRows k, KvRows v, int64_t j0, int64_t j1, int64_t head_dim, uint8_t* k_out, uint8_t* v_out) {
  using namespace fast;
  if (!kv_tiles_supported(head_dim))
    throw Error("prepare_kv_tiles: the CPU level " + std::string(cpu_level_name(cpu_level())) +
                " has no tile layout for a head size of " + std::to_string(head_dim));
  if (j1 < j0 || (j1 > j0 && j0 % kKeyBlock != 0))
    throw Error("prepare_kv_tiles: keys [" + std::to_string(j0) + ", " + std::to_string(j1) +
                ") do not start a block of " + std::to_string(kKeyBlock));
  thread_local std::vector<float> rows;
  rows.resize(static_cast<size_t>(3 * kKeyBlock * head_dim));
  float* keys = rows.data();
  float* values = keys + kKeyBlock * head_dim;
  float* lo = values + kKeyBlock * head_dim;
  const size_t block_bytes = kv_tile_bytes(kKeyBlock, head_dim);
  for (int64_t b0 = j0; b0 < j1; b0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, j1 - b0);
    for (int64_t j = 0; j < kKeyBlock; ++j) {
      if (j < nb) {
        dequantize_row_fast(k.type, k.data + (b0 + j) * k.stride, keys + j * head_dim, head_dim);
        dequantize_row_fast(v.type, v.data + (b0 + j) * v.stride, values + j * head_dim, head_dim);
      } else {
        std::fill_n(keys + j * head_dim, head_dim, 0.0f);
        std::fill_n(values + j * head_dim, head_dim, 0.0f);
      }
    }
    const size_t at = static_cast<size_t>(b0 / kKeyBlock) * block_bytes;
    block_tiles(keys, head_dim, values, head_dim, head_dim, lo, k_out + at, v_out + at);
  }
}

}  // namespace onellm

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
namespace onellm {
void prepare_kv_tiles(KvRows, KvRows, int64_t, int64_t, int64_t, uint8_t*, uint8_t*) {
  throw Error("prepare_kv_tiles: no AMX tile layout on this architecture");
}
}  // namespace onellm
namespace onellm::fast {
void attend_heads_amx(const float*, int64_t, KvRows, KvRows, int64_t, const int64_t*, int64_t, float, float*, float*,
                      float*) {}
}  // namespace onellm::fast
#endif
