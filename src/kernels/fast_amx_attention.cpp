// The AMX level's Kernels::attend_heads: prefill's attention (F32 key and
// value rows, converted from the cache once per layer) on the BF16 tiles,
// flash-style: per block of 32 keys, S = Q K^T on the tiles (two 16 x 16 C
// tiles), the online softmax on the vector unit (one query's 16 scores per
// register), then P V on the tiles (a 16 x 16 C tile per 16 dimensions of
// the head), added into the F32 running output after its rescale.
//
// The AVX-512 kernel spends group x dim / 16 FMAs per key on the scores and
// as many on the values; here a 32-key block of up to 16 queries is dim / 16
// tile products for each, plus converting the block's keys (a 16 x 16 dword
// transpose per 32 dimensions) and values (pairs of keys interleaved) to
// BF16. Rounding Q, K, P and V to BF16 costs about what a Q8_0 cache costs
// (8 significant bits); the scores and sums stay F32.
// Decode (F16 / Q8_0 rows), few queries, short rows and head sizes that
// are not a multiple of 32 go to the AVX-512 kernel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

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

constexpr int64_t kKeyBlock = 32;  // keys per block: one A tile row of P

#include "kernels/fast_avx512_exp.inc"

struct Scratch {
  uint8_t* q;    // dim / 32 A tiles: 16 queries x 32 dimensions of scale * q
  uint8_t* k;    // the block's keys as B tiles: 2 halves x dim / 32 tiles
  uint8_t* v;    // the block's values as B tiles: dim / 16 tiles of 16 key pairs x 16 dimensions
  uint8_t* p;    // one A tile: 16 queries x 32 probabilities
  float* s;      // 16 x 32 scores
  float* part;   // four C tiles of P V
  float* rows;   // 32 x dim: a partial block's keys or values, zero-padded
  float* o;      // 16 x dim running outputs
};

Scratch scratch_for(int64_t dim) {
  thread_local std::vector<uint8_t> storage;
  const size_t q = 32 * dim, k = 64 * dim, v = 64 * dim, p = 1024, s = 2048, part = 4096, rows = 128 * dim;
  uint8_t* base = aligned_bytes(storage, q + k + v + p + s + part + rows + 64 * dim);
  Scratch x;
  x.q = base;
  x.k = x.q + q;
  x.v = x.k + k;
  x.p = x.v + v;
  x.s = reinterpret_cast<float*>(x.p + p);
  x.part = x.s + 512;
  x.rows = x.part + 1024;
  x.o = x.rows + 32 * dim;
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

void attend_heads_tiles(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                        int64_t dim, float scale, float* out, float* max_out, float* sum_out) {
  const Scratch x = scratch_for(dim);
  const int64_t n_dt = dim / kK;  // 32-dimension tiles of Q and K
  // Q as A tiles (queries past n_q are zero rows).
  for (int64_t t = 0; t < n_dt; ++t)
    for (int64_t i = 0; i < kTile; ++i) {
      __m512i row = _mm512_setzero_si512();
      if (i < n_q) {
        const float* src = q + i * dim + kK * t;
        const __m512 s = _mm512_set1_ps(scale);
        row = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(_mm512_mul_ps(s, _mm512_loadu_ps(src + 16)),
                                                            _mm512_mul_ps(s, _mm512_loadu_ps(src))));
      }
      _mm512_store_si512(x.q + 1024 * t + 64 * i, row);
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
  load_tile_config();
  for (int64_t j0 = 0; j0 < last_key; j0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n_keys - j0);
    int64_t stride;
    const float* keys = block_rows(k, j0, nb, dim, x.rows, &stride);
    float_rows_to_pairs(keys, stride, dim, x.k);
    float_rows_to_pairs(keys + 16 * stride, stride, dim, x.k + 32 * dim);
    // S: keys 0-15 in tmm0, 16-31 in tmm1.
    ONELLM_TILE_ZERO(0);
    ONELLM_TILE_ZERO(1);
    for (int64_t t = 0; t < n_dt; ++t) {
      ONELLM_TILE_LOAD(4, x.q + 1024 * t, 64);
      ONELLM_TILE_LOAD(6, x.k + 1024 * t, 64);
      ONELLM_TILE_LOAD(7, x.k + 32 * dim + 1024 * t, 64);
      ONELLM_TILE_DP(0, 4, 6);
      ONELLM_TILE_DP(1, 4, 7);
    }
    // The values as B tiles while the score products run: row j of tile c
    // holds keys 2 j and 2 j + 1 of dimensions 16 c .. + 15.
    const float* values = block_rows(v, j0, nb, dim, x.rows, &stride);
    for (int64_t c = 0; c < dim / kTile; ++c)
      for (int64_t j = 0; j < kTile; ++j)
        _mm512_store_si512(x.v + 1024 * c + 64 * j,
                           bf16_pairs(_mm512_loadu_ps(values + 2 * j * stride + kTile * c),
                                      _mm512_loadu_ps(values + (2 * j + 1) * stride + kTile * c)));
    ONELLM_TILE_STORE(0, x.s, 128);
    ONELLM_TILE_STORE(1, x.s + 16, 128);
    // The online softmax, one query per row; P as an A tile.
    float rescale[kTile];
    for (int64_t i = 0; i < kTile; ++i) {
      rescale[i] = 1.0f;
      const int64_t left = std::min(limit[i], n_keys) - j0;
      if (left <= 0) {  // past its own position (or a padding row): nothing to add
        _mm512_store_si512(x.p + 64 * i, _mm512_setzero_si512());
        continue;
      }
      const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      const __mmask16 m1 = left >= 32 ? __mmask16(0xFFFF) : left <= 16 ? 0 : static_cast<__mmask16>((1u << (left - 16)) - 1);
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
      // The sum takes the probabilities as P V will see them (BF16).
      const __m512i pb = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(p1, p0));
      _mm512_store_si512(x.p + 64 * i, pb);
      const __m512 q0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(pb)), 16));
      const __m512 q1 =
          _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(pb, 1)), 16));
      total[i] = _mm512_add_ps(total[i], _mm512_add_ps(q0, q1));
    }
    // O = O rescale + P V, 16 dimensions per C tile, four tiles in flight
    // (a tile stored right after its product waited out the product's
    // latency: 18 % of the kernel).
    ONELLM_TILE_LOAD(5, x.p, 64);
    for (int64_t c0 = 0; c0 < dim / kTile; c0 += 4) {
      const int64_t n_c = std::min<int64_t>(4, dim / kTile - c0);
      const uint8_t* vt = x.v + 1024 * c0;
      ONELLM_TILE_ZERO(0);
      ONELLM_TILE_LOAD(6, vt, 64);
      ONELLM_TILE_DP(0, 5, 6);
      if (n_c > 1) {
        ONELLM_TILE_ZERO(1);
        ONELLM_TILE_LOAD(7, vt + 1024, 64);
        ONELLM_TILE_DP(1, 5, 7);
      }
      if (n_c > 2) {
        ONELLM_TILE_ZERO(2);
        ONELLM_TILE_LOAD(4, vt + 2048, 64);
        ONELLM_TILE_DP(2, 5, 4);
      }
      if (n_c > 3) {
        ONELLM_TILE_ZERO(3);
        ONELLM_TILE_LOAD(6, vt + 3072, 64);
        ONELLM_TILE_DP(3, 5, 6);
      }
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
  if (k.type == TensorType::F32 && n_q >= kAmxMinQueries && n_keys >= kAmxMinKeys && dim % kK == 0 &&
      dim <= kAmxMaxHeadDim)
    return attend_heads_tiles(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
  kernels_avx512()->attend_heads(q, n_q, k, v, n_keys, key_limits, dim, scale, out, max_out, sum_out);
}

}  // namespace onellm::fast

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
namespace onellm::fast {
void attend_heads_amx(const float*, int64_t, KvRows, KvRows, int64_t, const int64_t*, int64_t, float, float*, float*,
                      float*) {}
}  // namespace onellm::fast
#endif
