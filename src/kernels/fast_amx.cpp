// The AMX level: the AVX-512 kernels, and prefill of quantized weights on the
// AMX tile unit (Intel Sapphire Rapids and later) in BF16.
//
// Why BF16 tiles and not INT8 ones: a TDPBSSD sums 64 products along k, but
// every weight type here has its own scale per 32 (or 16) elements, so an
// INT8 tile product would have to be stored and rescaled after every block,
// and that rescaling (AVX-512, per 16 x 16 tile and block) costs more than
// the tile product itself. In BF16 the weights are dequantized once per call
// (scale applied), the C tiles accumulate in F32 over the whole row, and the
// result is stored straight into y. BF16 keeps each activation's own
// exponent, so an outlier costs its neighbours nothing (the reason the int8
// paths multiply outliers apart); its 8-bit mantissa is as fine as the
// int8 activations of the other levels.
//
// Per call: the activations are converted to BF16 once (tokens padded to 16,
// columns to 32, with zeros). Threads take units of 2 panels (32 weight
// rows); a unit's panels are dequantized into BF16 "VNNI pairs" (row p of a
// panel = k pair p, lane n = the 2 values of row n: the B-tile layout), then
// every pair of 16-token tiles runs through the whole row with 4 C tiles
// (2 tokens x 2 rows: tmm0-3), A tiles tmm4-5 and B tiles tmm6-7.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

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

// ---- B tiles: a panel of 16 weight rows as BF16 k pairs

// Byte i (< 4) of each dword lane, as F32.
inline __m512 signed_byte(__m512i v, int i) {
  switch (i) {
    case 0: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 24), 24));
    case 1: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 16), 24));
    case 2: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 8), 24));
    default: return _mm512_cvtepi32_ps(_mm512_srai_epi32(v, 24));
  }
}
inline __m512 unsigned_byte(__m512i v, int i) {
  const __m512i b =
      i == 3 ? _mm512_srli_epi32(v, 24) : _mm512_and_si512(_mm512_srli_epi32(v, 8 * i), _mm512_set1_epi32(0xFF));
  return _mm512_cvtepi32_ps(b);
}

// A packed group (lane n: 4 consecutive levels of row n) as two B-tile rows:
// levels * scale - offset (per lane), k pairs (0, 1) at out, (2, 3) at out + 64.
template <bool kSigned>
inline void group_to_pairs(__m512i levels, __m512 scale, __m512 offset, uint8_t* out) {
  __m512 f[4];
  for (int i = 0; i < 4; ++i)
    f[i] = _mm512_fmsub_ps(kSigned ? signed_byte(levels, i) : unsigned_byte(levels, i), scale, offset);
  _mm512_storeu_si512(out, bf16_pairs(f[0], f[1]));
  _mm512_storeu_si512(out + 64, bf16_pairs(f[2], f[3]));
}

inline __m512 fp16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Packed Q8_0 (packed_weights.cpp): block b's group m holds k = 32 b + 4 m .. + 3.
void q8_0_pairs(const uint8_t* panel, int64_t nb, int64_t first, int64_t last, uint8_t* out) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t b = first; b < last; ++b) {
    const uint8_t* q = panel + q8_0_quants_at(b);
    const __m512 d = fp16x16(panel + q8_0_scales_at(nb, b));
    for (int m = 0; m < 8; ++m)
      group_to_pairs<true>(_mm512_loadu_si512(q + 64 * m), d, zero, out + (16 * (b - first) + 2 * m) * 64);
  }
}

// Bit j of each byte of plane, moved to bit 4 (a fifth level bit).
inline __m512i plane_bit(__m512i plane, int j) {
  return _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(plane, j), _mm512_set1_epi8(1)), 4);
}

// Packed Q4_0 / Q4_1 (kMin) and Q5_0 / Q5_1 (kFifth): group m's low nibbles
// are k = 32 b + 4 m .. + 3, its high nibbles k + 16; Q5's fifth bits are
// bit m (low) and 4 + m (high) of the block's plane. Q4_0's values are
// (q - 8) d = q d - 8 d, Q5_0's q d - 16 d, Q4_1's and Q5_1's q d + m.
template <bool kMin, bool kFifth>
void legacy_pairs(const uint8_t* panel, int64_t nb, int64_t first, int64_t last, uint8_t* out) {
  constexpr int64_t kQuants = kFifth ? 320 : 256;
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t b = first; b < last; ++b) {
    const uint8_t* q = panel + legacy_quants_at<kQuants, kMin>(b);
    const uint8_t* s = panel + legacy_scales_at<kQuants, kMin>(nb, b);
    const __m512 d = fp16x16(s);
    const __m512 offset = kMin ? _mm512_sub_ps(_mm512_setzero_ps(), fp16x16(s + 32))
                               : _mm512_mul_ps(d, _mm512_set1_ps(kFifth ? 16.0f : 8.0f));
    const __m512i plane = kFifth ? _mm512_loadu_si512(q + 256) : _mm512_setzero_si512();
    for (int m = 0; m < 4; ++m) {
      const __m512i v = _mm512_loadu_si512(q + 64 * m);
      __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), low);
      if (kFifth) {
        lo = _mm512_or_si512(lo, plane_bit(plane, m));
        hi = _mm512_or_si512(hi, plane_bit(plane, 4 + m));
      }
      group_to_pairs<false>(lo, d, offset, out + (16 * (b - first) + 2 * m) * 64);
      group_to_pairs<false>(hi, d, offset, out + (16 * (b - first) + 8 + 2 * m) * 64);
    }
  }
}

// Packed IQ4_NL (Q4_0's layout): a nibble indexes kIq4Values.
void iq4_nl_pairs(const uint8_t* panel, int64_t nb, int64_t first, int64_t last, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4Values)));
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t b = first; b < last; ++b) {
    const uint8_t* q = panel + q4_0_quants_at(b);
    const __m512 d = fp16x16(panel + q4_0_scales_at(nb, b));
    for (int m = 0; m < 4; ++m) {
      const __m512i v = _mm512_loadu_si512(q + 64 * m);
      const __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(v, low));
      const __m512i hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi32(v, 4), low));
      group_to_pairs<true>(lo, d, zero, out + (16 * (b - first) + 2 * m) * 64);
      group_to_pairs<true>(hi, d, zero, out + (16 * (b - first) + 8 + 2 * m) * 64);
    }
  }
}

// Packed Q4_K / Q5_K (fast::K4Panel): pair g, group k holds the low nibbles
// of sub-block 2 g (k = 64 g + 4 k .. + 3) and the high ones of 2 g + 1
// (+ 32); Q5_K's fifth bits are bit k of the planes of (g, 0) and (g, 1). A
// value is d sc q - dmin mn with its sub-block's 6-bit scale and min.
template <bool kFifth>
void k4_pairs(const uint8_t* panel, int64_t nb, int64_t first, int64_t last, uint8_t* out) {
  using P = K4Panel<kFifth>;
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t s = first; s < last; ++s) {
    const uint8_t* sb = panel + P::kBytes * s;
    const uint8_t* meta = sb + P::kMeta;
    const __m512 d = fp16x16(meta + 256), dmin = fp16x16(meta + 288);
    __m512 scale[8], offset[8];
    for (int j = 0; j < 8; ++j) {
      const auto bytes = [&](int at) {
        return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(meta + at))));
      };
      scale[j] = _mm512_mul_ps(d, bytes(16 * j));
      offset[j] = _mm512_mul_ps(dmin, bytes(128 + 16 * j));
    }
    for (int g = 0; g < 4; ++g) {
      const __m512i plane0 = kFifth ? _mm512_loadu_si512(sb + P::plane_at(g, 0)) : _mm512_setzero_si512();
      const __m512i plane1 = kFifth ? _mm512_loadu_si512(sb + P::plane_at(g, 1)) : _mm512_setzero_si512();
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(sb + 512 * g + 64 * k);
        __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), low);
        if (kFifth) {
          lo = _mm512_or_si512(lo, plane_bit(plane0, k));
          hi = _mm512_or_si512(hi, plane_bit(plane1, k));
        }
        uint8_t* row = out + (128 * (s - first) + 32 * g + 2 * k) * 64;
        group_to_pairs<false>(lo, scale[2 * g], offset[2 * g], row);
        group_to_pairs<false>(hi, scale[2 * g + 1], offset[2 * g + 1], row + 16 * 64);
      }
    }
  }
}

// Packed Q6_K (fast::q6_k_levels_at): half h, l-group g takes ql groups
// 16 h + g and 16 h + 8 + g and qh group 8 h + g; their four 6-bit levels
// are elements 128 h + 4 g + 32 i (i < 4) .. + 3, each d sc (q - 32) with
// the signed scale of its 16 elements.
void q6_k_pairs(const uint8_t* panel, int64_t nb, int64_t first, int64_t last, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8(0x30);
  for (int64_t s = first; s < last; ++s) {
    const uint8_t* lv = panel + q6_k_levels_at(s);
    const uint8_t* meta = panel + q6_k_meta_at(nb, s);
    const __m512 d = fp16x16(meta + 256);
    for (int h = 0; h < 2; ++h)
      for (int g = 0; g < 8; ++g) {
        const __m512i v1 = _mm512_loadu_si512(lv + 64 * (16 * h + g));
        const __m512i v2 = _mm512_loadu_si512(lv + 64 * (16 * h + 8 + g));
        const __m512i vh = _mm512_loadu_si512(lv + 2048 + 64 * (8 * h + g));
        const __m512i q[4] = {
            _mm512_or_si512(_mm512_and_si512(v1, low), _mm512_and_si512(_mm512_slli_epi32(vh, 4), high)),
            _mm512_or_si512(_mm512_and_si512(v2, low), _mm512_and_si512(_mm512_slli_epi32(vh, 2), high)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v1, 4), low), _mm512_and_si512(vh, high)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v2, 4), low),
                            _mm512_and_si512(_mm512_srli_epi32(vh, 2), high))};
        for (int i = 0; i < 4; ++i) {
          const int e = 128 * h + 32 * i + 4 * g;  // first element of the four
          const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(meta + 16 * (e / 16)));
          const __m512 sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(scales)));
          group_to_pairs<false>(q[i], sc, _mm512_mul_ps(sc, _mm512_set1_ps(32.0f)),
                                out + (128 * (s - first) + e / 2) * 64);
        }
      }
  }
}

// Any type: rows dequantized to F32 (from the file layout, or unpacked from
// the packed one), then 16 x 16 dword transposes of their BF16 pairs. The
// file layout comes here for unpacked matrices, e.g. the mapped base of a
// LoRA fine-tuning (TrainModel::map_gguf).
void generic_pairs(const MatrixView& w, int64_t r0, int64_t nr, int64_t k0, int64_t kn, uint8_t* out) {
  thread_local std::vector<float> rows;
  thread_local std::vector<uint8_t> bytes;
  const int64_t kn_padded = round_up(kn, kK);
  rows.assign(static_cast<size_t>(16 * kn_padded), 0.0f);
  bytes.resize(w.row_bytes());
  for (int64_t n = 0; n < nr; ++n) {
    const uint8_t* src = static_cast<const uint8_t*>(w.data) + (r0 + n) * w.row_bytes();
    if (w.packed != nullptr) {
      unpack_matrix_row(w, r0 + n, bytes.data());
      src = bytes.data();
    }
    dequantize_row_fast(w.type, src + tensor_row_bytes(w.type, k0), rows.data() + n * kn_padded,
                        std::min(kn, w.cols - k0));
  }
  float_rows_to_pairs(rows.data(), kn_padded, kn_padded, out);
}

// F32 / F16 / BF16 weights (the float types): columns [k0, k0 + kn) of
// panel p as B tiles of their BF16 parts, hi at out and lo (x - bf16(x);
// none for BF16, which has no rest) at out_lo.
void float_panel_pairs(const MatrixView& w, int64_t p, int64_t k0, int64_t kn, uint8_t* out, uint8_t* out_lo) {
  thread_local std::vector<float> rows;
  const int64_t r0 = p * kTile, nr = std::min(kTile, w.rows - r0), kn_padded = round_up(kn, kK);
  rows.assign(static_cast<size_t>(16 * kn_padded), 0.0f);
  for (int64_t n = 0; n < nr; ++n)
    dequantize_row_fast(w.type, static_cast<const uint8_t*>(w.data) + (r0 + n) * w.row_bytes() +
                                    tensor_row_bytes(w.type, k0),
                        rows.data() + n * kn_padded, std::min(kn, w.cols - k0));
  float_rows_to_pairs(rows.data(), kn_padded, kn_padded, out);
  if (w.type == TensorType::BF16) return;
  for (size_t i = 0; i < rows.size(); i += 16) {  // kn_padded is a multiple of 32
    const __m512 v = _mm512_loadu_ps(rows.data() + i);
    _mm512_storeu_ps(rows.data() + i, _mm512_sub_ps(v, bf16_value(v)));
  }
  float_rows_to_pairs(rows.data(), kn_padded, kn_padded, out_lo);
}

// Columns [k0, k0 + kn) of panel p of w (k0 and kn multiples of 256, or kn
// the rest of the row) as B tiles: kn / 2 rows of 64 bytes.
void panel_pairs(const MatrixView& w, int64_t p, int64_t k0, int64_t kn, uint8_t* out) {
  const int64_t r0 = p * kTile, nr = std::min(kTile, w.rows - r0);
  if (w.packed != nullptr && w.cols % kK == 0) {
    const uint8_t* panel = w.packed + static_cast<size_t>(p) * packed_panel_bytes(w.type, w.cols);
    const int64_t b0 = k0 / 32, b1 = (k0 + kn) / 32, s0 = k0 / 256, s1 = (k0 + kn) / 256;
    switch (w.type) {  // packed panels are whole: rows past the matrix are zero
      case TensorType::Q8_0: return q8_0_pairs(panel, w.cols / 32, b0, b1, out);
      case TensorType::Q4_0: return legacy_pairs<false, false>(panel, w.cols / 32, b0, b1, out);
      case TensorType::Q4_1: return legacy_pairs<true, false>(panel, w.cols / 32, b0, b1, out);
      case TensorType::Q5_0: return legacy_pairs<false, true>(panel, w.cols / 32, b0, b1, out);
      case TensorType::Q5_1: return legacy_pairs<true, true>(panel, w.cols / 32, b0, b1, out);
      case TensorType::IQ4_NL: return iq4_nl_pairs(panel, w.cols / 32, b0, b1, out);
      case TensorType::Q4_K: return k4_pairs<false>(panel, w.cols / 256, s0, s1, out);
      case TensorType::Q5_K: return k4_pairs<true>(panel, w.cols / 256, s0, s1, out);
      case TensorType::Q6_K: return q6_k_pairs(panel, w.cols / 256, s0, s1, out);
      default: break;
    }
  }
  generic_pairs(w, r0, nr, k0, kn, out);
}

// ---- the tile products

// C tiles of nt (1, 2) token tiles x np (1, 2) weight tiles over kn
// columns: a, a1 = the two token tiles' A tiles, b, b1 = the two panels'
// B tiles, 1 KiB per k step of 32 columns. C starts at zero, or with
// `accumulate` at y's values. Results to y (rows tokens, ldy floats apart)
// for n_tok x n_rows of each 16 x 16 tile's lanes.
// kSplit (float weights; kNt 1): a1 is the token tile's lo part, and the
// products are a b + a1 b + a b_lo (b_lo, b1_lo: the panels' lo parts, null
// for BF16 weights).
template <int kNt, int kNp, bool kSplit = false>
void tile_product(const uint8_t* a, const uint8_t* a1, const uint8_t* b, const uint8_t* b1, int64_t kn,
                  bool accumulate, float* y, int64_t ldy, int64_t n_tok, int64_t n_rows,
                  const uint8_t* b_lo = nullptr, const uint8_t* b1_lo = nullptr) {
  static_assert(!kSplit || kNt == 1, "a split product has one token tile");
  const int64_t tok0 = std::min(kTile, n_tok), tok1 = n_tok - tok0;
  const int64_t rows0 = std::min(kTile, n_rows), rows1 = n_rows - rows0;
  // A whole tile moves straight between y and C; a partial one through a
  // buffer.
  alignas(64) float part[kTile * kTile];
  auto load = [&](int tile, const float* src, int64_t tokens, int64_t rows) {
    const bool whole = tokens == kTile && rows == kTile;
    if (!whole) {
      std::fill_n(part, kTile * kTile, 0.0f);
      for (int64_t t = 0; t < tokens; ++t) std::memcpy(part + t * kTile, src + t * ldy, rows * sizeof(float));
    }
    const float* from = whole ? src : part;
    const int64_t stride = whole ? ldy * 4 : 64;
    switch (tile) {
      case 0: ONELLM_TILE_LOAD(0, from, stride); break;
      case 1: ONELLM_TILE_LOAD(1, from, stride); break;
      case 2: ONELLM_TILE_LOAD(2, from, stride); break;
      default: ONELLM_TILE_LOAD(3, from, stride); break;
    }
  };
  if (accumulate) {
    load(0, y, tok0, rows0);
    if (kNp == 2) load(1, y + kTile, tok0, rows1);
    if (kNt == 2) load(2, y + kTile * ldy, tok1, rows0);
    if (kNt == 2 && kNp == 2) load(3, y + kTile * ldy + kTile, tok1, rows1);
  } else {
    ONELLM_TILE_ZERO(0);
    if (kNp == 2) ONELLM_TILE_ZERO(1);
    if (kNt == 2) ONELLM_TILE_ZERO(2);
    if (kNt == 2 && kNp == 2) ONELLM_TILE_ZERO(3);
  }
  // The C rows' lines of y, asked for writing now: they arrive while the
  // products run (12-15 % of a 4864 x 896 x 512 product otherwise).
  {
    for (int64_t t = 0; t < std::min<int64_t>(n_tok, kNt * kTile); ++t) {
      _mm_prefetch(reinterpret_cast<const char*>(y + t * ldy), _MM_HINT_ET0);
      if (kNp == 2) _mm_prefetch(reinterpret_cast<const char*>(y + t * ldy + kTile), _MM_HINT_ET0);
    }
  }
  for (int64_t k = 0; k < kn; k += kK) {
    ONELLM_TILE_LOAD(4, a + 32 * k, 64);
    ONELLM_TILE_LOAD(6, b + 32 * k, 64);
    if (kNp == 2) ONELLM_TILE_LOAD(7, b1 + 32 * k, 64);
    ONELLM_TILE_DP(0, 4, 6);
    if (kNp == 2) ONELLM_TILE_DP(1, 4, 7);
    if constexpr (kSplit) {  // + a_lo b + a b_lo into the same C tiles
      ONELLM_TILE_LOAD(5, a1 + 32 * k, 64);
      ONELLM_TILE_DP(0, 5, 6);
      if (kNp == 2) ONELLM_TILE_DP(1, 5, 7);
      if (b_lo != nullptr) {
        ONELLM_TILE_LOAD(6, b_lo + 32 * k, 64);
        if (kNp == 2) ONELLM_TILE_LOAD(7, b1_lo + 32 * k, 64);
        ONELLM_TILE_DP(0, 4, 6);
        if (kNp == 2) ONELLM_TILE_DP(1, 4, 7);
      }
    } else if (kNt == 2) {  // the second token tile
      ONELLM_TILE_LOAD(5, a1 + 32 * k, 64);
      ONELLM_TILE_DP(2, 5, 6);
      if (kNp == 2) ONELLM_TILE_DP(3, 5, 7);
    }
  }
  auto store = [&](int tile, float* dst, int64_t tokens, int64_t rows) {
    const bool whole = tokens == kTile && rows == kTile;
    float* to = whole ? dst : part;
    const int64_t stride = whole ? ldy * 4 : 64;
    switch (tile) {
      case 0: ONELLM_TILE_STORE(0, to, stride); break;
      case 1: ONELLM_TILE_STORE(1, to, stride); break;
      case 2: ONELLM_TILE_STORE(2, to, stride); break;
      default: ONELLM_TILE_STORE(3, to, stride); break;
    }
    if (!whole)
      for (int64_t t = 0; t < tokens; ++t) std::memcpy(dst + t * ldy, part + t * kTile, rows * sizeof(float));
  };
  store(0, y, tok0, rows0);
  if (kNp == 2 && rows1 > 0) store(1, y + kTile, tok0, rows1);
  if (kNt == 2 && tok1 > 0) store(2, y + kTile * ldy, tok1, rows0);
  if (kNt == 2 && kNp == 2 && tok1 > 0 && rows1 > 0) store(3, y + kTile * ldy + kTile, tok1, rows1);
}

// Rows [t0, t1) of x (n_tokens rows of `cols` floats, ld apart; rows past
// n_tokens and columns past cols are zeros) as BF16 A tiles: token tile i's
// k step j at 1 KiB (i kp / 32 + j) of hi. With lo, split: hi gets bf16(x)
// and lo the rest, x - bf16(x), in the same layout.
void rows_to_a_tiles(const float* x, int64_t ld, int64_t n_tokens, int64_t cols, int64_t kp, int64_t t0, int64_t t1,
                     uint16_t* hi, uint16_t* lo) {
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t at = t / kTile * kTile * kp + t % kTile * kK;
    const float* src = x + t * ld;
    for (int64_t c = 0; c < kp; c += kK) {
      const int64_t n = t < n_tokens ? std::min<int64_t>(kK, cols - c) : 0;
      const __mmask16 m0 = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
      const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(m0, src + c), x1 = _mm512_maskz_loadu_ps(m1, src + c + 16);
      if (lo != nullptr)
        split_row(x0, x1, hi + at + c * kTile, lo + at + c * kTile);
      else
        _mm512_storeu_si512(hi + at + c * kTile, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(x1, x0)));
    }
  }
}

}  // namespace

void matmul_amx(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  // Float weights (F16, BF16; F32 too, though matmul_fast keeps those on
  // its level-independent F32 GEMM) keep their precision: activations and
  // weights are split in BF16 parts, x = hi + lo, and each product is hi hi'
  // + lo hi' + hi lo' (16 significant bits; BF16 weights have no lo).
  const bool split =
      w.type == TensorType::F32 || w.type == TensorType::F16 || w.type == TensorType::BF16;
  const bool weight_lo = split && w.type != TensorType::BF16;
  const int64_t kp = round_up(w.cols, kK);
  const int64_t padded_tokens = round_up(n_tokens, kTile);
  const size_t act_bytes = static_cast<size_t>(2 * padded_tokens * kp);
  // A tiles: token tile i's k step j (16 tokens x 32 columns, 1 KiB) at
  // 1024 (i kp / 32 + j): each tile load reads 1 KiB in a row. Split: the lo
  // parts act_bytes on.
  thread_local std::vector<uint8_t> act;  // the caller's: pool threads get its pointer
  auto* const act_data = reinterpret_cast<uint16_t*>(aligned_bytes(act, split ? 2 * act_bytes : act_bytes));
  const uint8_t* a = reinterpret_cast<const uint8_t*>(act_data);
  auto convert = [&](int64_t t0, int64_t t1) {
    rows_to_a_tiles(x, w.cols, n_tokens, w.cols, kp, t0, t1, act_data, split ? act_data + act_bytes / 2 : nullptr);
  };
  if (pool != nullptr && padded_tokens >= 8)
    pool->parallel_for(padded_tokens, convert);
  else
    convert(0, padded_tokens);

  // Cache blocking. Columns go in blocks of kc whose A tiles (all tokens)
  // fit in half of L2, so that every unit of the block reads them from L2:
  // a 4864-wide row of 512 tokens is 5 MiB of A tiles, which each unit
  // otherwise streamed from L3 (1.6x the time of a 896-wide row per
  // product). Over several column blocks C goes back to y and is loaded
  // again. Work items are groups of up to kGroupUnits units (32 rows each)
  // whose B tiles of one column block fit in a quarter of L2: each token
  // pair runs across the group, so y's rows of those tokens are written in
  // runs of up to 1 KiB rather than 128 bytes.
  constexpr int64_t kABytes = 1 << 20, kBBytes = 512 << 10, kGroupUnits = 8;
  const int64_t parts = split ? 2 : 1;  // BF16 parts of the activations and of each weight
  const int64_t kc = std::min(kp, std::max<int64_t>(256, kABytes / (2 * parts * padded_tokens) / 256 * 256));
  const int64_t n_panels = (w.rows + kTile - 1) / kTile, n_units = (n_panels + 1) / 2;
  const int64_t n_threads = pool != nullptr ? pool->size() : 1;
  const int64_t max_group = std::clamp<int64_t>(kBBytes / (64 * parts * kc), 1, kGroupUnits);
  const int64_t group = std::clamp<int64_t>(n_units / (4 * n_threads), 1, max_group);
  const int64_t n_groups = (n_units + group - 1) / group;
  const int64_t a_tile_bytes = 32 * kp;  // one token tile's A tiles
  auto work = [&](int64_t begin, int64_t end) {
    thread_local std::vector<uint8_t> weight_storage;
    const int64_t b_part = 32 * kc;          // bytes of one panel's B tiles of a column block
    const int64_t b_panel = parts * b_part;  // with the lo part after the hi one (split)
    uint8_t* const weights = aligned_bytes(weight_storage, static_cast<size_t>(2 * group * b_panel));
    load_tile_config();
    for (int64_t k0 = 0; k0 < kp; k0 += kc) {
      const int64_t kn = std::min(kc, kp - k0);
      for (int64_t g = begin; g < end; ++g) {
        const int64_t u0 = g * group, u1 = std::min(n_units, u0 + group);
        for (int64_t p = 2 * u0; p < std::min(2 * u1, n_panels); ++p) {
          uint8_t* out = weights + (p - 2 * u0) * b_panel;
          if (split)
            float_panel_pairs(w, p, k0, kn, out, out + b_part);
          else
            panel_pairs(w, p, k0, kn, out);
        }
        if (split) {
          for (int64_t t0 = 0; t0 < n_tokens; t0 += kTile) {
            const uint8_t* at = a + t0 / kTile * a_tile_bytes + 32 * k0;
            for (int64_t u = u0; u < u1; ++u) {
              const int64_t p0 = 2 * u, np = std::min<int64_t>(2, n_panels - p0);
              const int64_t r0 = p0 * kTile, n_rows = std::min(np * kTile, w.rows - r0);
              const uint8_t* b = weights + (p0 - 2 * u0) * b_panel;
              const uint8_t* b_lo = weight_lo ? b + b_part : nullptr;
              const uint8_t* b1_lo = weight_lo ? b + b_panel + b_part : nullptr;
              const auto product = np == 2 ? tile_product<1, 2, true> : tile_product<1, 1, true>;
              product(at, at + act_bytes, b, b + b_panel, kn, k0 > 0, y + t0 * w.rows + r0, w.rows,
                      std::min(kTile, n_tokens - t0), n_rows, b_lo, b1_lo);
            }
          }
          continue;
        }
        for (int64_t t0 = 0; t0 < n_tokens; t0 += 2 * kTile) {
          const int64_t n_tok = std::min(2 * kTile, n_tokens - t0);
          const uint8_t* at = a + t0 / kTile * a_tile_bytes + 32 * k0;
          for (int64_t u = u0; u < u1; ++u) {
            const int64_t p0 = 2 * u, np = std::min<int64_t>(2, n_panels - p0);
            const int64_t r0 = p0 * kTile, n_rows = std::min(np * kTile, w.rows - r0);
            const uint8_t* b = weights + (p0 - 2 * u0) * b_panel;
            float* yt = y + t0 * w.rows + r0;
            const auto product = n_tok > kTile ? (np == 2 ? tile_product<2, 2> : tile_product<2, 1>)
                                               : (np == 2 ? tile_product<1, 2> : tile_product<1, 1>);
            product(at, at + a_tile_bytes, b, b + b_panel, kn, k0 > 0, yt, w.rows, n_tok, n_rows, nullptr, nullptr);
          }
        }
      }
    }
    release_tiles();
  };
  if (pool != nullptr && n_groups > 1)
    pool->parallel_for(n_groups, work);
  else
    work(0, n_groups);
}

void accumulate_bf16_amx(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                         float* c, int64_t ldc) {
  // A tiles as matmul_amx's (token tile i's k step j at 1 KiB (i kp / 32 +
  // j)); B tiles straight from b's rows: k pair p of columns [j0, j0 + 16)
  // is one 64-byte tile row (b[2p][j], b[2p + 1][j] per lane), so no
  // transposition is needed.
  const int64_t kp = round_up(k, kK), padded = round_up(m, kTile), panels = (n + kTile - 1) / kTile;
  thread_local std::vector<uint8_t> a_storage, b_storage;
  auto* const at = reinterpret_cast<uint16_t*>(aligned_bytes(a_storage, static_cast<size_t>(2 * padded * kp)));
  uint8_t* const bt = aligned_bytes(b_storage, static_cast<size_t>(round_up(panels, 2) * 32 * kp));
  rows_to_a_tiles(a, lda, m, k, kp, 0, padded, at, nullptr);
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t p = 0; p < round_up(panels, 2); ++p) {
    const int64_t j0 = p * kTile, cols = std::clamp<int64_t>(n - j0, 0, kTile);
    const __mmask16 mask = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
    uint8_t* out = bt + p * 32 * kp;
    for (int64_t pair = 0; pair < kp / 2; ++pair) {
      const int64_t r = 2 * pair;
      const __m512 w0 = r < k ? _mm512_maskz_loadu_ps(mask, b + r * ldb + j0) : _mm512_setzero_ps();
      const __m512 w1 = r + 1 < k ? _mm512_maskz_loadu_ps(mask, b + (r + 1) * ldb + j0) : _mm512_setzero_ps();
      const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(w1, w0));  // w0 low, w1 high
      _mm512_storeu_si512(out + pair / 16 * 1024 + pair % 16 * 64, _mm512_permutexvar_epi16(interleave, both));
    }
  }
  load_tile_config();
  const int64_t a_tile_bytes = 32 * kp;
  for (int64_t t0 = 0; t0 < m; t0 += 2 * kTile) {
    const int64_t n_tok = std::min(2 * kTile, m - t0);
    const uint8_t* a0 = reinterpret_cast<const uint8_t*>(at) + t0 / kTile * a_tile_bytes;
    for (int64_t p = 0; p < panels; p += 2) {
      const int64_t n_rows = std::min(2 * kTile, n - p * kTile);
      const uint8_t* b0 = bt + p * a_tile_bytes;
      const auto product = n_tok > kTile ? (n_rows > kTile ? tile_product<2, 2> : tile_product<2, 1>)
                                         : (n_rows > kTile ? tile_product<1, 2> : tile_product<1, 1>);
      product(a0, a0 + a_tile_bytes, b0, b0 + a_tile_bytes, kp, true, c + t0 * ldc + p * kTile, ldc, n_tok, n_rows,
              nullptr, nullptr);
    }
  }
  release_tiles();
}

const Kernels* kernels_amx() {
  static const Kernels table = [] {
    cpu_features();  // asks Linux for the tile data, without which a tile instruction faults
    Kernels k = *kernels_avx512();
    k.name = "amx";
    k.attend_heads = attend_heads_amx;
    return k;
  }();
  return &table;
}

}  // namespace onellm::fast

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
namespace onellm::fast {
void matmul_amx(const MatrixView&, const float*, int64_t, float*, ThreadPool*) {}
void accumulate_bf16_amx(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t) {}
const Kernels* kernels_amx() { return nullptr; }
}  // namespace onellm::fast
#endif
