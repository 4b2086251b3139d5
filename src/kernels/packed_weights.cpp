// The packed weight layouts (see kernels.h): plain byte shuffles, done once
// at load, so no instruction set is needed here. Rows are grouped in panels
// of 16 (lane r = row r of the panel; rows past the matrix are zero), and
// within a panel every 4-byte group of one row's quants sits next to the
// same group of the other 15 rows: one 64-byte load gives a kernel the same
// 4 bytes of all 16 rows, which one vpdpbusd (or 4 sdot on NEON) multiplies
// by one broadcast dword of activations.
//
// Q4_0, panel of nb blocks (size rounded up to 64 bytes), blocks in pairs
// so that the panel is one stream (fast::q4_0_quants_at / q4_0_scales_at):
//   quants of block b: group m < 4, lane r at q4_0_quants_at(b) + 64 m + 4 r:
//                      qs[4m, 4m+4) of row r (low nibbles: elements 4m..4m+3,
//                      high nibbles: elements 16+4m..16+4m+3)
//   scales of block b: the 16 rows' fp16 d, lane r at q4_0_scales_at(nb, b) + 2 r
//   (pair p: 576 p + [0, 256) block 2p, [256, 512) block 2p+1, [512, 576)
//   their scales; an odd last block: quants, then scales at +256.) With the
//   scales after all of a panel's quants, decode read two streams, and the
//   scales of a long panel (1536 x 8960 down projections: 80 KiB) came
//   from memory one line per two blocks without prefetch.
// Q5_0, the same pairing (fast::q5_0_quants_at / q5_0_scales_at): Q4_0's
//   256 bytes of nibbles, then the fifth bits as one 64-byte bit plane at
//   q5_0_quants_at(b) + 256: bit j of byte 4 r + k is the fifth bit of the
//   level in byte lane 4 r + k of nibble group j (low nibbles for j < 4,
//   high for j >= 4). A kernel moves bit j to bit 4 with one shift and
//   masks it in: 3 instructions per 32 levels on AVX2, where expanding a
//   32-bit mask to bytes took 6. 352 bytes per 16 rows, as in the file.
// Q4_1 and Q5_1: Q4_0's and Q5_0's quants, paired the same way, with 64
//   bytes of scales per block: the 16 rows' fp16 d, then their fp16 m
//   (fast::legacy_quants_at / legacy_scales_at<kQuants, true>). 320 and 384
//   bytes per 16 rows, as in the file.
// Q8_0, the same pairing (fast::q8_0_quants_at / q8_0_scales_at) with 8
//   groups: group m < 8, lane r at q8_0_quants_at(b) + 64 m + 4 r:
//   qs[4m, 4m+4) of row r (signed, as in the file; pair p: 1088 p + [0, 512)
//   block 2p, [512, 1024) block 2p+1, [1024, 1088) their scales).
// Q4_K, panel of nb super-blocks, each 2368 bytes at 2368 s (one stream):
//   [0, 2048)          pair g < 4, group k < 8, lane r at
//                      512 g + 64 k + 4 r: qs[32g + 4k, +4) of row r
//                      (low nibbles: sub-block 2g, high: sub-block 2g+1)
//   [2048, 2368)       320 bytes: the 6-bit scales sc[j] of
//                      the 16 rows (j < 8, 16 bytes each), then mins mn[j]
//                      (same), then 16 fp16 d, then 16 fp16 dmin
// Q5_K, each super-block 2880 bytes (fast::K4Panel<true>): Q4_K's 2048
//   bytes of nibbles, then the fifth bits as 8 bit planes of 64 bytes (the
//   plane of pair g, nibble n at 2048 + 128 g + 64 n; bit k of byte 4 r + i
//   is the fifth bit of that lane's level in group k, as in Q5_0), then
//   Q4_K's 320 bytes of scales, mins, d and dmin.
// IQ4_NL: Q4_0's layout (the same block bytes: d, then 16 bytes of nibbles).
// IQ4_XS, panel of nb super-blocks, each 2176 bytes at 2176 s (one stream,
//   the file's size):
//   [0, 2048)          sub-block j < 8, group m < 4, lane r at 256 j + 64 m
//                      + 4 r: qs[16j + 4m, +4) of row r (as Q4_0's block)
//   [2048, 2176)       the 16 rows' scales_l (4 bytes each), scales_h (2
//                      bytes each), then fp16 d (fast::kIq4XsPanelBytes)
// Q2_K, panel of nb super-blocks, each 1344 bytes at 1344 s (one stream, the
//   file's 84 bytes per row):
//   [0, 1024)          group c < 16, lane r at 64 c + 4 r: qs[4c, +4) of row r
//   [1024, 1280)       group i < 4, lane r at 1024 + 64 i + 4 r: scales[4i, +4)
//   [1280, 1344)       the 16 rows' fp16 d, then their fp16 dmin
// Q3_K, panel of nb super-blocks, each 1792 bytes at 1792 s (one stream;
//   the file's 1760 bytes per 16 rows, padded to whole lines):
//   [0, 1024)          group c < 16, lane r at 64 c + 4 r: qs[4c, +4) of row r
//   [1024, 1536)       group k < 8, lane r at 1024 + 64 k + 4 r: hmask[4k, +4)
//   [1536, 1728)       group i < 3, lane r at 1536 + 64 i + 4 r: scales[4i, +4)
//   [1728, 1760)       the 16 rows' fp16 d (then 32 bytes of zeros)
// Q6_K, panel of nb super-blocks paired like Q4_0's blocks
// (fast::q6_k_levels_at / q6_k_meta_at):
//   levels of s:       32 groups of ql (group c, lane r at
//                      64 c + 4 r: ql[4c, +4) of row r), then 16
//                      groups of qh (at 2048 + 64 c: qh[4c, +4))
//   meta of s:         288 bytes: scales[j] of the 16 rows
//                      (j < 16, 16 bytes each), then 16 fp16 d
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "base/error.h"
#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

namespace onellm {
namespace {

constexpr int64_t kLanes = fast::kPanelRows;

size_t round_up_64(size_t n) { return (n + 63) / 64 * 64; }

// Panel bytes per block (Q4_0) or super-block (K-quants) of 16 rows, before
// rounding the panel to 64 bytes; 0: no packed layout.
size_t packed_block_bytes(TensorType type) {
  switch (type) {
    case TensorType::Q4_0: return 288;
    case TensorType::Q4_1: return 320;
    case TensorType::Q5_0: return 352;
    case TensorType::Q5_1: return 384;
    case TensorType::Q8_0: return 544;
    case TensorType::Q4_K: return fast::K4Panel<false>::kBytes;
    case TensorType::Q5_K: return fast::K4Panel<true>::kBytes;
    case TensorType::Q6_K: return 3360;
    case TensorType::IQ4_NL: return 288;
    case TensorType::IQ4_XS: return fast::kIq4XsPanelBytes;
    case TensorType::Q2_K: return fast::kQ2KPanelBytes;
    case TensorType::Q3_K: return fast::kQ3KPanelBytes;
    default: return 0;
  }
}

// Each layout once, as the byte runs of lane r: copy(panel offset, row
// offset, length) for every run of a row of nb blocks. pack_matrix and
// unpack_matrix_row walk the same runs in opposite directions. (Q4_K's
// 6-bit scales are re-coded, not copied: see pack_matrix / unpack.)
//
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: kGroups 4-byte groups of qs per row and
// block, then d (and m) (the qh of Q5_0 / Q5_1 is re-coded, not copied:
// pack_q5_high_bits below).
// n 4-byte groups of a row, from row byte `from`, to the panel at `at`:
// group c of lane r at at + 64 c + 4 r (one 64-byte load: 16 rows' group c).
template <class Copy>
void copy_groups(Copy& copy, int64_t at, int64_t r, size_t from, int n) {
  for (int c = 0; c < n; ++c) copy(at + 64 * c + 4 * r, from + 4 * c, 4);
}

template <class B, int64_t kQuants, int kGroups, bool kMin, class Copy>
void walk_paired(int64_t nb, int64_t r, Copy copy) {
  for (int64_t b = 0; b < nb; ++b) {
    const size_t row = sizeof(B) * static_cast<size_t>(b);
    copy_groups(copy, fast::legacy_quants_at<kQuants, kMin>(b), r, row + offsetof(B, qs), kGroups);
    const int64_t scales = fast::legacy_scales_at<kQuants, kMin>(nb, b);
    copy(scales + 2 * r, row + offsetof(B, d), 2);
    if constexpr (kMin) copy(scales + 32 + 2 * r, row + offsetof(B, m), 2);
  }
}

// The fifth bits of lane r's Q5_0 / Q5_1 block whose quants are at
// `quants`: the row's qh (32 bits, bit e for element e) <-> bytes 4 r + k
// (k < 4) of the bit plane; bit j of byte 4 r + k is element
// 16 (j / 4) + 4 (j % 4) + k.
int q5_element(int j, int k) { return 16 * (j / 4) + 4 * (j % 4) + k; }

void pack_q5_high_bits(const uint8_t* qh, int64_t quants, int64_t r, uint8_t* panel) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  for (int k = 0; k < 4; ++k) {
    int byte = 0;
    for (int j = 0; j < 8; ++j) byte |= static_cast<int>((bits >> q5_element(j, k)) & 1) << j;
    panel[quants + 256 + 4 * r + k] = static_cast<uint8_t>(byte);
  }
}

void unpack_q5_high_bits(const uint8_t* panel, int64_t quants, int64_t r, uint8_t* qh) {
  uint32_t bits = 0;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 8; ++j)
      bits |= static_cast<uint32_t>((panel[quants + 256 + 4 * r + k] >> j) & 1) << q5_element(j, k);
  std::memcpy(qh, &bits, 4);
}

// Q5_0 / Q5_1 block b of a row: where its qh is in the row and where its
// quants are in the panel; f(qh offset, quants offset) for every block.
template <class F>
void for_q5_blocks(TensorType type, int64_t nb, F f) {
  for (int64_t b = 0; b < nb; ++b) {
    if (type == TensorType::Q5_0)
      f(sizeof(quant::BlockQ5_0) * b + offsetof(quant::BlockQ5_0, qh), fast::q5_0_quants_at(b));
    else
      f(sizeof(quant::BlockQ5_1) * b + offsetof(quant::BlockQ5_1, qh), fast::legacy_quants_at<320, true>(b));
  }
}

// Q4_K, Q5_K, IQ4_XS, Q2_K, Q3_K: one super-block after another (kBytes
// each), each a few runs of 4-byte groups (copy_groups) and the 16 rows'
// 2-byte fields.
struct GroupRun {
  int64_t at;   // in the panel's super-block
  size_t from;  // in the row's block
  int n;        // 4-byte groups
};
struct WordField {
  int64_t at;  // lane r at at + 2 r
  size_t from;
};
template <class B, int64_t kBytes, class Copy>
void walk_super_blocks(int64_t nb, int64_t r, Copy copy, std::initializer_list<GroupRun> groups,
                       std::initializer_list<WordField> words) {
  for (int64_t s = 0; s < nb; ++s) {
    const size_t row = sizeof(B) * static_cast<size_t>(s);
    for (const GroupRun& g : groups) copy_groups(copy, kBytes * s + g.at, r, row + g.from, g.n);
    for (const WordField& w : words) copy(kBytes * s + w.at + 2 * r, row + w.from, 2);
  }
}

// Q4_K and Q5_K: qs, d and dmin (the 6-bit scales and Q5_K's qh are
// re-coded, not copied: see pack_matrix / unpack_matrix_row).
template <class B, class Copy>
void walk_k4(int64_t nb, int64_t r, Copy copy) {
  using P = fast::K4Panel<std::is_same_v<B, quant::BlockQ5_K>>;  // pair g, group k: group 8 g + k
  walk_super_blocks<B, P::kBytes>(nb, r, copy, {{0, offsetof(B, qs), 32}},
                                  {{P::kMeta + 256, offsetof(B, d)}, {P::kMeta + 288, offsetof(B, dmin)}});
}

// Q5_K super-block s of lane r: qh (32 bytes; bit 2g + n of qh[l] is the
// fifth bit of element 64 g + 32 n + l) <-> bytes 4 r + i (i < 4) of the 8
// bit planes (bit k of byte 4 r + i of the plane of (g, n) is element
// 64 g + 32 n + 4 k + i).
int64_t q5_k_plane_byte(int64_t s, int g, int n, int64_t r, int i) {
  using P = fast::K4Panel<true>;
  return P::kBytes * s + P::plane_at(g, n) + 4 * r + i;
}

void pack_q5_k_high_bits(const uint8_t* qh, int64_t s, int64_t r, uint8_t* panel) {
  for (int g = 0; g < 4; ++g)
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 4; ++i) {
        int byte = 0;
        for (int k = 0; k < 8; ++k) byte |= ((qh[4 * k + i] >> (2 * g + n)) & 1) << k;
        panel[q5_k_plane_byte(s, g, n, r, i)] = static_cast<uint8_t>(byte);
      }
}

void unpack_q5_k_high_bits(const uint8_t* panel, int64_t s, int64_t r, uint8_t* qh) {
  std::memset(qh, 0, 32);
  for (int g = 0; g < 4; ++g)
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 4; ++i) {
        const int byte = panel[q5_k_plane_byte(s, g, n, r, i)];
        for (int k = 0; k < 8; ++k)
          qh[4 * k + i] = static_cast<uint8_t>(qh[4 * k + i] | (((byte >> k) & 1) << (2 * g + n)));
      }
}

template <class Copy>
void walk_q6_k(int64_t nb, int64_t r, Copy copy) {
  using B = quant::BlockQ6_K;
  for (int64_t s = 0; s < nb; ++s) {
    const size_t row = sizeof(B) * static_cast<size_t>(s);
    const int64_t levels = fast::q6_k_levels_at(s), meta = fast::q6_k_meta_at(nb, s);
    copy_groups(copy, levels, r, row + offsetof(B, ql), 32);
    copy_groups(copy, levels + 2048, r, row + offsetof(B, qh), 16);
    for (int j = 0; j < 16; ++j) copy(meta + 16 * j + r, row + offsetof(B, scales) + j, 1);
    copy(meta + 256 + 2 * r, row + offsetof(B, d), 2);
  }
}

template <class Copy>
void walk_iq4_xs(int64_t nb, int64_t r, Copy copy) {
  using B = quant::BlockIQ4_XS;  // sub-block j, group m: group 4 j + m
  walk_super_blocks<B, fast::kIq4XsPanelBytes>(nb, r, copy, {{0, offsetof(B, qs), 32}, {2048, offsetof(B, scales_l), 1}},
                                               {{2112, offsetof(B, scales_h)}, {2144, offsetof(B, d)}});
}

template <class Copy>
void walk_q2_k(int64_t nb, int64_t r, Copy copy) {
  using B = quant::BlockQ2_K;
  walk_super_blocks<B, fast::kQ2KPanelBytes>(nb, r, copy, {{0, offsetof(B, qs), 16}, {1024, offsetof(B, scales), 4}},
                                             {{1280, offsetof(B, d)}, {1312, offsetof(B, dmin)}});
}

template <class Copy>
void walk_q3_k(int64_t nb, int64_t r, Copy copy) {
  using B = quant::BlockQ3_K;
  walk_super_blocks<B, fast::kQ3KPanelBytes>(
      nb, r, copy, {{0, offsetof(B, qs), 16}, {1024, offsetof(B, hmask), 8}, {1536, offsetof(B, scales), 3}},
      {{1728, offsetof(B, d)}});
}

template <class Copy>
void walk(TensorType type, int64_t nb, int64_t r, Copy copy) {
  if (type == TensorType::Q2_K) return walk_q2_k(nb, r, copy);
  if (type == TensorType::Q3_K) return walk_q3_k(nb, r, copy);
  if (type == TensorType::Q4_0) return walk_paired<quant::BlockQ4_0, 256, 4, false>(nb, r, copy);
  if (type == TensorType::Q4_1) return walk_paired<quant::BlockQ4_1, 256, 4, true>(nb, r, copy);
  if (type == TensorType::IQ4_NL) return walk_paired<quant::BlockIQ4_NL, 256, 4, false>(nb, r, copy);
  if (type == TensorType::IQ4_XS) return walk_iq4_xs(nb, r, copy);
  if (type == TensorType::Q5_0) return walk_paired<quant::BlockQ5_0, 320, 4, false>(nb, r, copy);
  if (type == TensorType::Q5_1) return walk_paired<quant::BlockQ5_1, 320, 4, true>(nb, r, copy);
  if (type == TensorType::Q8_0) return walk_paired<quant::BlockQ8_0, 512, 8, false>(nb, r, copy);
  if (type == TensorType::Q4_K) return walk_k4<quant::BlockQ4_K>(nb, r, copy);
  if (type == TensorType::Q5_K) return walk_k4<quant::BlockQ5_K>(nb, r, copy);
  walk_q6_k(nb, r, copy);
}

// Q4_K / Q5_K super-block s: lane r's scale (j < 8) or min (j - 8) byte in the panel.
template <class Byte>
Byte* k4_scale_byte(TensorType type, Byte* panel, int64_t s, int j, int64_t r) {
  if (type == TensorType::Q5_K) return panel + fast::K4Panel<true>::kBytes * s + fast::K4Panel<true>::kMeta + 16 * j + r;
  return panel + fast::K4Panel<false>::kBytes * s + fast::K4Panel<false>::kMeta + 16 * j + r;
}

// The 12 bytes of packed 6-bit scales and mins of Q4_K and Q5_K (the same
// field in both blocks).
template <class Block>
auto* k4_scales(Block* row, TensorType type, int64_t s) {
  using Byte = std::conditional_t<std::is_const_v<Block>, const uint8_t, uint8_t>;
  if (type == TensorType::Q5_K)
    return reinterpret_cast<Byte*>(row) + sizeof(quant::BlockQ5_K) * s + offsetof(quant::BlockQ5_K, scales);
  return reinterpret_cast<Byte*>(row) + sizeof(quant::BlockQ4_K) * s + offsetof(quant::BlockQ4_K, scales);
}

}  // namespace

size_t packed_panel_bytes(TensorType type, int64_t cols) {
  const size_t block_bytes = packed_block_bytes(type);
  if (cols <= 0 || block_bytes == 0 || cols % tensor_type_info(type).block_elems != 0) return 0;
  return round_up_64(static_cast<size_t>(cols / tensor_type_info(type).block_elems) * block_bytes);
}

size_t packed_matrix_bytes(TensorType type, int64_t rows, int64_t cols) {
  if (rows <= 0) return 0;
  return packed_panel_bytes(type, cols) * static_cast<size_t>((rows + kLanes - 1) / kLanes);
}

void pack_matrix(const MatrixView& w, uint8_t* out) {
  const size_t panel_bytes = packed_panel_bytes(w.type, w.cols);
  if (panel_bytes == 0 || w.rows <= 0)
    throw Error(std::string("pack_matrix: no packed layout for a ") + tensor_type_info(w.type).name + " matrix of " +
                std::to_string(w.rows) + " x " + std::to_string(w.cols));
  const size_t row_bytes = w.row_bytes();
  const int64_t nb = w.cols / tensor_type_info(w.type).block_elems;
  const size_t used = static_cast<size_t>(nb) * packed_block_bytes(w.type);
  for (int64_t r0 = 0; r0 < w.rows; r0 += kLanes) {
    uint8_t* panel = out + static_cast<size_t>(r0 / kLanes) * panel_bytes;
    const int64_t n = std::min(kLanes, w.rows - r0);
    // Zero what the rows do not write: a partial panel's missing lanes, and
    // the rounding to 64 bytes (the rest is overwritten; zeroing it all
    // again was a second pass over fresh, kernel-zeroed pages at load).
    std::memset(panel + (n < kLanes ? 0 : used), 0, n < kLanes ? panel_bytes : panel_bytes - used);
    for (int64_t r = 0; r < n; ++r) {
      const uint8_t* row = static_cast<const uint8_t*>(w.data) + (r0 + r) * row_bytes;
      walk(w.type, nb, r, [&](int64_t at, size_t from, size_t len) { std::memcpy(panel + at, row + from, len); });
      if (w.type == TensorType::Q5_0 || w.type == TensorType::Q5_1)
        for_q5_blocks(w.type, nb, [&](size_t qh, int64_t quants) { pack_q5_high_bits(row + qh, quants, r, panel); });
      if (w.type == TensorType::Q5_K)
        for (int64_t s = 0; s < nb; ++s)
          pack_q5_k_high_bits(row + sizeof(quant::BlockQ5_K) * s + offsetof(quant::BlockQ5_K, qh), s, r, panel);
      if (w.type != TensorType::Q4_K && w.type != TensorType::Q5_K) continue;
      for (int64_t s = 0; s < nb; ++s)
        for (int j = 0; j < 8; ++j)
          quant::k4_scale_min(k4_scales(row, w.type, s), j, k4_scale_byte(w.type, panel, s, j, r),
                              k4_scale_byte(w.type, panel, s, 8 + j, r));
    }
  }
}

void unpack_matrix_row(const MatrixView& w, int64_t row, uint8_t* out) {
  const size_t panel_bytes = packed_panel_bytes(w.type, w.cols);
  if (panel_bytes == 0 || w.packed == nullptr || row < 0 || row >= w.rows)
    throw Error("unpack_matrix_row: row " + std::to_string(row) + " of a " + tensor_type_info(w.type).name +
                " matrix that is not packed or has " + std::to_string(w.rows) + " rows");
  const int64_t nb = w.cols / tensor_type_info(w.type).block_elems, r = row % kLanes;
  const uint8_t* panel = w.packed + static_cast<size_t>(row / kLanes) * panel_bytes;
  walk(w.type, nb, r, [&](int64_t at, size_t to, size_t len) { std::memcpy(out + to, panel + at, len); });
  if (w.type == TensorType::Q5_0 || w.type == TensorType::Q5_1)
    for_q5_blocks(w.type, nb, [&](size_t qh, int64_t quants) { unpack_q5_high_bits(panel, quants, r, out + qh); });
  if (w.type == TensorType::Q5_K)
    for (int64_t s = 0; s < nb; ++s)
      unpack_q5_k_high_bits(panel, s, r, out + sizeof(quant::BlockQ5_K) * s + offsetof(quant::BlockQ5_K, qh));
  if (w.type != TensorType::Q4_K && w.type != TensorType::Q5_K) return;
  for (int64_t s = 0; s < nb; ++s) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = *k4_scale_byte(w.type, panel, s, j, r);
      mn[j] = *k4_scale_byte(w.type, panel, s, 8 + j, r);
    }
    quant::pack_k4_scales(sc, mn, k4_scales(out, w.type, s));
  }
}

bool packed_kernels_available(TensorType type) {
  const fast::PackedKernels* k = fast::packed_kernels_for(cpu_level());
  if (k == nullptr) return false;
  switch (type) {
    case TensorType::Q4_0: return k->tile[fast::kSlotQ4_0] != nullptr;
    case TensorType::Q4_1: return k->tile[fast::kSlotQ4_1] != nullptr;
    case TensorType::Q5_0: return k->tile[fast::kSlotQ5_0] != nullptr;
    case TensorType::Q5_1: return k->tile[fast::kSlotQ5_1] != nullptr;
    case TensorType::Q8_0: return k->tile[fast::kSlotQ8_0] != nullptr;
    case TensorType::Q4_K: return k->tile[fast::kSlotQ4_K] != nullptr;
    case TensorType::Q5_K: return k->tile[fast::kSlotQ5_K] != nullptr;
    case TensorType::Q6_K: return k->tile[fast::kSlotQ6_K] != nullptr;
    case TensorType::IQ4_NL: return k->tile[fast::kSlotIQ4_NL] != nullptr;
    case TensorType::IQ4_XS: return k->tile[fast::kSlotIQ4_XS] != nullptr;
    case TensorType::Q2_K: return k->tile[fast::kSlotQ2_K] != nullptr;
    case TensorType::Q3_K: return k->tile[fast::kSlotQ3_K] != nullptr;
    default: return false;
  }
}

}  // namespace onellm
