// The packed weight layouts (see kernels.h): plain byte shuffles, done once
// at load, so no instruction set is needed here. Rows are grouped in panels
// of 16 (lane r = row r of the panel; rows past the matrix are zero), and
// within a panel every 4-byte group of one row's quants sits next to the
// same group of the other 15 rows: one 64-byte load gives a kernel the same
// 4 bytes of all 16 rows, which one vpdpbusd (or 4 sdot on NEON) multiplies
// by one broadcast dword of activations.
//
// Q4_0, panel of nb blocks (size rounded up to 64 bytes):
//   [0, 256 nb)        block b, group m < 4, lane r at 256 b + 64 m + 4 r:
//                      qs[4m, 4m+4) of row r (low nibbles: elements 4m..4m+3,
//                      high nibbles: elements 16+4m..16+4m+3)
//   [256 nb, 288 nb)   block b: the 16 rows' fp16 scales d, lane r at 32 b + 2 r
// Q4_K, panel of nb super-blocks:
//   [0, 2048 nb)       super-block s, pair g < 4, group k < 8, lane r at
//                      2048 s + 512 g + 64 k + 4 r: qs[32g + 4k, +4) of row r
//                      (low nibbles: sub-block 2g, high: sub-block 2g+1)
//   [2048 nb, 2368 nb) super-block s, 320 bytes: the 6-bit scales sc[j] of
//                      the 16 rows (j < 8, 16 bytes each), then mins mn[j]
//                      (same), then 16 fp16 d, then 16 fp16 dmin
// Q6_K, panel of nb super-blocks:
//   [0, 3072 nb)       super-block s: 32 groups of ql (group c, lane r at
//                      3072 s + 64 c + 4 r: ql[4c, +4) of row r), then 16
//                      groups of qh (at 3072 s + 2048 + 64 c: qh[4c, +4))
//   [3072 nb, 3360 nb) super-block s, 288 bytes: scales[j] of the 16 rows
//                      (j < 16, 16 bytes each), then 16 fp16 d
#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

namespace onellm {
namespace {

constexpr int64_t kLanes = fast::kPanelRows;

size_t round_up_64(size_t n) { return (n + 63) / 64 * 64; }

void pack_q4_0_panel(const uint8_t* rows, size_t row_bytes, int64_t n_rows, int64_t nb, uint8_t* panel) {
  uint8_t* scales = panel + 256 * nb;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* row = reinterpret_cast<const quant::BlockQ4_0*>(rows + r * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      for (int m = 0; m < 4; ++m) std::memcpy(panel + 256 * b + 64 * m + 4 * r, row[b].qs + 4 * m, 4);
      std::memcpy(scales + 32 * b + 2 * r, row[b].d, 2);
    }
  }
}

void pack_q4_k_panel(const uint8_t* rows, size_t row_bytes, int64_t n_rows, int64_t nb, uint8_t* panel) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* row = reinterpret_cast<const quant::BlockQ4_K*>(rows + r * row_bytes);
    for (int64_t s = 0; s < nb; ++s) {
      const quant::BlockQ4_K& blk = row[s];
      uint8_t* levels = panel + 2048 * s;
      for (int g = 0; g < 4; ++g)
        for (int k = 0; k < 8; ++k) std::memcpy(levels + 512 * g + 64 * k + 4 * r, blk.qs + 32 * g + 4 * k, 4);
      uint8_t* meta = panel + 2048 * nb + 320 * s;
      for (int j = 0; j < 8; ++j) quant::k4_scale_min(blk.scales, j, &meta[16 * j + r], &meta[128 + 16 * j + r]);
      std::memcpy(meta + 256 + 2 * r, blk.d, 2);
      std::memcpy(meta + 288 + 2 * r, blk.dmin, 2);
    }
  }
}

void pack_q6_k_panel(const uint8_t* rows, size_t row_bytes, int64_t n_rows, int64_t nb, uint8_t* panel) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* row = reinterpret_cast<const quant::BlockQ6_K*>(rows + r * row_bytes);
    for (int64_t s = 0; s < nb; ++s) {
      const quant::BlockQ6_K& blk = row[s];
      uint8_t* levels = panel + 3072 * s;
      for (int c = 0; c < 32; ++c) std::memcpy(levels + 64 * c + 4 * r, blk.ql + 4 * c, 4);
      for (int c = 0; c < 16; ++c) std::memcpy(levels + 2048 + 64 * c + 4 * r, blk.qh + 4 * c, 4);
      uint8_t* meta = panel + 3072 * nb + 288 * s;
      for (int j = 0; j < 16; ++j) std::memcpy(&meta[16 * j + r], &blk.scales[j], 1);
      std::memcpy(meta + 256 + 2 * r, blk.d, 2);
    }
  }
}

}  // namespace

size_t packed_panel_bytes(TensorType type, int64_t cols) {
  if (cols <= 0) return 0;
  switch (type) {
    case TensorType::Q4_0: return cols % 32 ? 0 : round_up_64(static_cast<size_t>(cols / 32) * 288);
    case TensorType::Q4_K: return cols % 256 ? 0 : static_cast<size_t>(cols / 256) * 2368;
    case TensorType::Q6_K: return cols % 256 ? 0 : round_up_64(static_cast<size_t>(cols / 256) * 3360);
    default: return 0;
  }
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
  const auto* data = static_cast<const uint8_t*>(w.data);
  const size_t per_block = w.type == TensorType::Q4_0 ? 288 : w.type == TensorType::Q4_K ? 2368 : 3360;
  const size_t used = static_cast<size_t>(nb) * per_block;
  for (int64_t r0 = 0; r0 < w.rows; r0 += kLanes) {
    uint8_t* panel = out + static_cast<size_t>(r0 / kLanes) * panel_bytes;
    const int64_t n = std::min(kLanes, w.rows - r0);
    // Zero what the rows do not write: a partial panel's missing lanes, and
    // the rounding to 64 bytes (the rest is overwritten; zeroing it all
    // again was a second pass over fresh, kernel-zeroed pages at load).
    std::memset(panel + (n < kLanes ? 0 : used), 0, n < kLanes ? panel_bytes : panel_bytes - used);
    if (w.type == TensorType::Q4_0)
      pack_q4_0_panel(data + r0 * row_bytes, row_bytes, n, nb, panel);
    else if (w.type == TensorType::Q4_K)
      pack_q4_k_panel(data + r0 * row_bytes, row_bytes, n, nb, panel);
    else
      pack_q6_k_panel(data + r0 * row_bytes, row_bytes, n, nb, panel);
  }
}

void unpack_matrix_row(const MatrixView& w, int64_t row, uint8_t* out) {
  const size_t panel_bytes = packed_panel_bytes(w.type, w.cols);
  if (panel_bytes == 0 || w.packed == nullptr || row < 0 || row >= w.rows)
    throw Error("unpack_matrix_row: row " + std::to_string(row) + " of a " + tensor_type_info(w.type).name +
                " matrix that is not packed or has " + std::to_string(w.rows) + " rows");
  const int64_t nb = w.cols / tensor_type_info(w.type).block_elems, r = row % kLanes;
  const uint8_t* panel = w.packed + static_cast<size_t>(row / kLanes) * panel_bytes;
  if (w.type == TensorType::Q4_0) {
    auto* blocks = reinterpret_cast<quant::BlockQ4_0*>(out);
    for (int64_t b = 0; b < nb; ++b) {
      for (int m = 0; m < 4; ++m) std::memcpy(blocks[b].qs + 4 * m, panel + 256 * b + 64 * m + 4 * r, 4);
      std::memcpy(blocks[b].d, panel + 256 * nb + 32 * b + 2 * r, 2);
    }
    return;
  }
  if (w.type == TensorType::Q6_K) {
    auto* blocks = reinterpret_cast<quant::BlockQ6_K*>(out);
    for (int64_t s = 0; s < nb; ++s) {
      const uint8_t* levels = panel + 3072 * s;
      for (int c = 0; c < 32; ++c) std::memcpy(blocks[s].ql + 4 * c, levels + 64 * c + 4 * r, 4);
      for (int c = 0; c < 16; ++c) std::memcpy(blocks[s].qh + 4 * c, levels + 2048 + 64 * c + 4 * r, 4);
      const uint8_t* meta = panel + 3072 * nb + 288 * s;
      for (int j = 0; j < 16; ++j) std::memcpy(&blocks[s].scales[j], &meta[16 * j + r], 1);
      std::memcpy(blocks[s].d, meta + 256 + 2 * r, 2);
    }
    return;
  }
  auto* blocks = reinterpret_cast<quant::BlockQ4_K*>(out);
  for (int64_t s = 0; s < nb; ++s) {
    quant::BlockQ4_K& blk = blocks[s];
    for (int g = 0; g < 4; ++g)
      for (int k = 0; k < 8; ++k) std::memcpy(blk.qs + 32 * g + 4 * k, panel + 2048 * s + 512 * g + 64 * k + 4 * r, 4);
    const uint8_t* meta = panel + 2048 * nb + 320 * s;
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = meta[16 * j + r];
      mn[j] = meta[128 + 16 * j + r];
    }
    quant::pack_k4_scales(sc, mn, blk.scales);
    std::memcpy(blk.d, meta + 256 + 2 * r, 2);
    std::memcpy(blk.dmin, meta + 288 + 2 * r, 2);
  }
}

bool packed_kernels_available(TensorType type) {
  const fast::PackedKernels* k = fast::packed_kernels_for(cpu_level());
  if (k == nullptr) return false;
  switch (type) {
    case TensorType::Q4_0: return k->tile[fast::kSlotQ4_0] != nullptr;
    case TensorType::Q4_K: return k->tile[fast::kSlotQ4_K] != nullptr;
    case TensorType::Q6_K: return k->tile[fast::kSlotQ6_K] != nullptr;
    default: return false;
  }
}

}  // namespace onellm
