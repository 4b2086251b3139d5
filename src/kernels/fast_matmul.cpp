// matmul_fast: picks the kernel table for the CPU level, quantizes the
// activations once, and splits the work. Rows are split across threads in
// contiguous ranges (decode: each weight row is streamed from memory exactly
// once). Within a thread, tokens go in blocks whose quantized activations fit
// in half of L2, and each block of rows is run against a whole token block
// while the rows are in L1 (prefill: weights are reused across tokens).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "kernels/fast_kernels.h"

namespace onellm {
namespace fast {

const Kernels& kernels_for(CpuLevel level) {
  const Kernels* k = nullptr;
  switch (level) {
    case CpuLevel::kScalar: k = kernels_scalar(); break;
    case CpuLevel::kAvx2: k = kernels_avx2(); break;
    case CpuLevel::kAvx2Vnni: k = kernels_avx2_vnni(); break;
    case CpuLevel::kAvx512: k = kernels_avx512(); break;
    case CpuLevel::kAmx: k = kernels_amx(); break;
    case CpuLevel::kNeon: k = kernels_neon(); break;
  }
  if (k == nullptr) throw Error(std::string("CPU level ") + cpu_level_name(level) + " is not built for this architecture");
  return *k;
}

void dequantize_row_with(const Kernels& k, TensorType type, const void* src, float* dst, int64_t n) {
  if (type == TensorType::F16) return k.f16_to_f32(static_cast<const uint8_t*>(src), dst, n);
  if (k.dequantize != nullptr && n % tensor_type_info(type).block_elems == 0 && k.dequantize(type, src, dst, n)) return;
  dequantize_row(type, src, dst, n);
}

const PanelKernels* panel_kernels_for(CpuLevel level) {
  switch (level) {
    case CpuLevel::kAvx2: return panel_kernels_avx2();
    case CpuLevel::kAvx2Vnni: return panel_kernels_avx2_vnni();
    case CpuLevel::kAvx512: case CpuLevel::kAmx: return panel_kernels_avx512();
    default: return nullptr;
  }
}

const PackedKernels* packed_kernels_for(CpuLevel level) {
  switch (level) {
    case CpuLevel::kAvx2: return packed_kernels_avx2();
    case CpuLevel::kAvx2Vnni: return packed_kernels_avx2_vnni();
    case CpuLevel::kAvx512: case CpuLevel::kAmx: return packed_kernels_avx512();
    default: return nullptr;
  }
}

}  // namespace fast

namespace {

using namespace fast;

constexpr int64_t kRowBlock = 16;          // weight rows kept in L1 while a token block runs
constexpr size_t kActCacheBytes = 512 << 10;  // quantized activations of one token block (half of L2)
// From this many tokens the panel kernels (if the level has them) pay for
// re-laying the weights: the packing is amortized over the tokens.
constexpr int64_t kPanelMinTokens = 16;

int slot_of(TensorType type) {
  switch (type) {
    case TensorType::F32: return kSlotF32;
    case TensorType::F16: return kSlotF16;
    case TensorType::BF16: return kSlotBF16;
    case TensorType::Q4_0: return kSlotQ4_0;
    case TensorType::Q4_1: return kSlotQ4_1;
    case TensorType::Q5_0: return kSlotQ5_0;
    case TensorType::Q5_1: return kSlotQ5_1;
    case TensorType::Q8_0: return kSlotQ8_0;
    case TensorType::Q4_K: return kSlotQ4_K;
    case TensorType::Q5_K: return kSlotQ5_K;
    case TensorType::Q6_K: return kSlotQ6_K;
    case TensorType::IQ4_NL: return kSlotIQ4_NL;
    case TensorType::IQ4_XS: return kSlotIQ4_XS;
    case TensorType::Q2_K: return kSlotQ2_K;
    case TensorType::Q3_K: return kSlotQ3_K;
    default: return -1;
  }
}

ActFormat act_format(int slot) {
  switch (slot) {
    case kSlotF32: case kSlotF16: case kSlotBF16: return ActFormat::kF32;
    case kSlotQ2_K: case kSlotQ3_K: case kSlotQ4_K: case kSlotQ5_K: case kSlotQ6_K: return ActFormat::kQ8K;
    default: return ActFormat::kQ8;
  }
}

void check_matrix(const MatrixView& w, int64_t n_tokens) {
  const TensorTypeInfo& info = tensor_type_info(w.type);
  if (!info.computable) throw Error(std::string("matmul_fast: tensor type ") + info.name + " is not supported");
  if (w.rows < 0 || w.cols < 0)
    throw Error("matmul_fast: bad matrix shape " + std::to_string(w.rows) + " x " + std::to_string(w.cols));
  w.row_bytes();  // throws unless cols is a whole number of blocks
  if (w.data == nullptr && w.rows > 0 && w.cols > 0) throw Error("matmul_fast: matrix has no data");
  if (n_tokens < 0) throw Error("matmul_fast: negative token count " + std::to_string(n_tokens));
}

template <typename Fn>
void run_parallel(ThreadPool* pool, int64_t n, const Fn& fn) {
  if (pool != nullptr && n > 1)
    pool->parallel_for(n, fn);
  else
    fn(0, n);
}

// Prefill with a panel kernel: each thread packs 16 rows at a time into a
// thread-local panel and runs every token against it.
void matmul_panels(const PanelKernels& panels, int slot, const MatrixView& w, const uint8_t* act, size_t act_stride,
                   int64_t n_blocks, int64_t n_tokens, float* y, ThreadPool* pool) {
  const size_t panel_bytes = panels.block_bytes[slot] * static_cast<size_t>(n_blocks);
  const size_t w_stride = w.row_bytes();
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const int64_t n_panels = (w.rows + kPanelRows - 1) / kPanelRows;
  run_parallel(pool, n_panels, [&](int64_t begin, int64_t end) {
    thread_local std::vector<uint8_t> panel;
    panel.resize(panel_bytes);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t r0 = p * kPanelRows, nr = std::min(kPanelRows, w.rows - r0);
      if (nr < kPanelRows) std::fill(panel.begin(), panel.end(), uint8_t{0});
      panels.pack[slot](wbase + r0 * w_stride, w_stride, nr, n_blocks, panel.data());
      panels.tile[slot](panel.data(), nr, act, act_stride, n_tokens, n_blocks, y + r0, w.rows);
    }
  });
}

// Prefill with F32/F16/BF16 weights: a cache-blocked GEMM on the level's
// accumulate kernel (register tiles of tokens x 16/32 weight rows). Each
// thread takes blocks of kGemmRows weight rows; per chunk of kGemmCols
// columns those rows are converted to F32 panels of kGemmPanel rows
// ([column][row], 64 KiB in all, in L2), and the tokens go kGemmTokens at a
// time so their slice of the activations stays in L1 for every panel.
constexpr int64_t kGemmRows = 64, kGemmCols = 256, kGemmTokens = 48, kGemmPanel = 32;

void matmul_float_gemm(const Kernels& k, const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                       ThreadPool* pool) {
  const size_t row_bytes = w.row_bytes();
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const int64_t n_blocks = (w.rows + kGemmRows - 1) / kGemmRows;
  run_parallel(pool, n_blocks, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> panels, row;
    panels.resize(static_cast<size_t>(kGemmRows * kGemmCols));
    row.resize(static_cast<size_t>(kGemmCols));
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * kGemmRows, nr = std::min(kGemmRows, w.rows - r0);
      for (int64_t t = 0; t < n_tokens; ++t) std::fill_n(y + t * w.rows + r0, nr, 0.0f);
      for (int64_t c0 = 0; c0 < w.cols; c0 += kGemmCols) {
        const int64_t nc = std::min(kGemmCols, w.cols - c0);
        for (int64_t r = 0; r < nr; ++r) {
          // Copied, not read in place: F32 rows may be misaligned.
          dequantize_row_with(k, w.type, wbase + (r0 + r) * row_bytes + tensor_row_bytes(w.type, c0), row.data(), nc);
          float* panel = panels.data() + r / kGemmPanel * kGemmPanel * kGemmCols + r % kGemmPanel;
          for (int64_t c = 0; c < nc; ++c) panel[c * kGemmPanel] = row[c];
        }
        for (int64_t t0 = 0; t0 < n_tokens; t0 += kGemmTokens) {
          const int64_t nt = std::min(kGemmTokens, n_tokens - t0);
          for (int64_t p0 = 0; p0 < nr; p0 += kGemmPanel)
            k.accumulate_f32(nt, std::min(kGemmPanel, nr - p0), nc, x + t0 * w.cols + c0, w.cols, 1,
                             panels.data() + p0 * kGemmCols, kGemmPanel, y + t0 * w.rows + r0 + p0, w.rows);
        }
      }
    }
  });
}

int64_t blocks_per_row(const MatrixView& w, ActFormat format) {
  return format == ActFormat::kF32 ? w.cols : w.cols / tensor_type_info(w.type).block_elems;
}

// One token's activations in `format` (kQ8 or kQ8K).
void quantize_token(const Kernels& k, ActFormat format, const float* x, int64_t cols, uint8_t* out) {
  if (format == ActFormat::kQ8)
    k.quantize_q8(x, reinterpret_cast<ActQ8*>(out), cols / 32);
  else
    k.quantize_q8k(x, reinterpret_cast<ActQ8K*>(out), cols / 256);
}

// x (n_tokens x cols) in `format`, in a thread-local buffer (or x itself
// for F32); *stride receives the bytes per token.
const uint8_t* activations_for(const Kernels& k, ActFormat format, const float* x, int64_t cols, int64_t n_tokens,
                               ThreadPool* pool, size_t* stride) {
  *stride = static_cast<size_t>(cols) * sizeof(float);
  if (format == ActFormat::kF32) return reinterpret_cast<const uint8_t*>(x);
  thread_local std::vector<uint8_t> buffer;
  const int64_t act_blocks = format == ActFormat::kQ8 ? cols / 32 : cols / 256;
  const size_t act_stride =
      static_cast<size_t>(act_blocks) * (format == ActFormat::kQ8 ? sizeof(ActQ8) : sizeof(ActQ8K));
  buffer.resize(act_stride * static_cast<size_t>(n_tokens));
  uint8_t* out = buffer.data();
  run_parallel(n_tokens >= 8 ? pool : nullptr, n_tokens, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize_token(k, format, x + t * cols, cols, out + t * act_stride);
  });
  *stride = act_stride;
  return buffer.data();
}

// Packed weights (kernels.h): the packed kernels run on each panel in place,
// for decode and prefill alike.
void matmul_packed(const PackedKernels& packed, int slot, const MatrixView& w, const uint8_t* act,
                   size_t act_stride, int64_t n_blocks, int64_t n_tokens, float* y, ThreadPool* pool) {
  const size_t packed_bytes = packed_panel_bytes(w.type, w.cols);
  const int64_t n_panels = (w.rows + kPanelRows - 1) / kPanelRows;
  // Long rows, one token: 4 panels per call (PackedDecode4Fn). Panels of
  // 1536-wide Q4_0 rows (13.5 KiB) streamed as fast alone, and 4 streams at
  // once ran 25 % slower there.
  constexpr size_t kDecode4PanelBytes = 24 << 10;
  const bool long_rows = packed_bytes >= kDecode4PanelBytes;
  const PackedDecode4Fn decode4 = n_tokens == 1 && long_rows ? packed.decode4[slot] : nullptr;
  const PackedFew4Fn few4 = n_tokens >= 2 && n_tokens <= 4 && long_rows ? packed.few4[slot] : nullptr;
  run_parallel(pool, n_panels, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t r0 = p * kPanelRows, nr = std::min(kPanelRows, w.rows - r0);
      const uint8_t* src = w.packed + static_cast<size_t>(p) * packed_bytes;
      if ((decode4 != nullptr || few4 != nullptr) && p + 4 <= end && r0 + 4 * kPanelRows <= w.rows) {
        if (decode4 != nullptr) decode4(src, packed_bytes, act, n_blocks, y + r0);
        else few4(src, packed_bytes, act, act_stride, n_tokens, n_blocks, y + r0, w.rows);
        p += 3;
        continue;
      }
      packed.tile[slot](src, nr, act, act_stride, n_tokens, n_blocks, y + r0, w.rows);
    }
  });
}

// The integer kernels on activations in the slot's format (activations_for).
void matmul_int8(CpuLevel level, const Kernels& k, int slot, const MatrixView& w, const uint8_t* act,
                 size_t act_stride, int64_t n_tokens, float* y, ThreadPool* pool) {
  const int64_t n_blocks = blocks_per_row(w, act_format(slot));

  if (w.packed != nullptr) {
    const PackedKernels* packed = packed_kernels_for(level);
    if (packed != nullptr && packed->tile[slot] != nullptr)
      return matmul_packed(*packed, slot, w, act, act_stride, n_blocks, n_tokens, y, pool);
  }
  const PanelKernels* panels = n_tokens >= kPanelMinTokens ? panel_kernels_for(level) : nullptr;
  if (panels != nullptr && panels->block_bytes[slot] != 0)
    return matmul_panels(*panels, slot, w, act, act_stride, n_blocks, n_tokens, y, pool);

  const int64_t token_block = std::max<int64_t>(4, static_cast<int64_t>(kActCacheBytes / act_stride) / 4 * 4);
  const TileFn tile = k.tile[slot];
  const size_t w_stride = w.row_bytes();
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const int64_t n_row_blocks = (w.rows + kRowBlock - 1) / kRowBlock;
  run_parallel(pool, n_row_blocks, [&](int64_t begin, int64_t end) {
    for (int64_t t0 = 0; t0 < n_tokens; t0 += token_block) {
      const int64_t nt = std::min(token_block, n_tokens - t0);
      for (int64_t b = begin; b < end; ++b) {
        const int64_t r0 = b * kRowBlock, nr = std::min(kRowBlock, w.rows - r0);
        tile(wbase + r0 * w_stride, w_stride, nr, act + t0 * act_stride, act_stride, nt, n_blocks,
             y + t0 * w.rows + r0, w.rows);
      }
    }
  });
}

}  // namespace

void matmul_fast_at(CpuLevel level, const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                    ThreadPool* pool) {
  check_matrix(w, n_tokens);
  if (n_tokens == 0 || w.rows == 0) return;
  const Kernels& k = kernels_for(level);
  if (w.cols == 0) {
    std::fill_n(y, n_tokens * w.rows, 0.0f);
    return;
  }
  const int slot = slot_of(w.type);
  if (slot < 0)  // check_matrix passed, so the type table and slot_of disagree
    throw Error(std::string("matmul_fast: no kernel for computable type ") + tensor_type_info(w.type).name);
  // Prefill on the AMX tiles (fast_amx.cpp): quantized weights in BF16, F16
  // and BF16 weights in split BF16 parts (as precise as the F32 GEMM). F32
  // weights stay on the F32 GEMM, whose bits are the same at every level:
  // training (all F32) reproduces the bundled model bit for bit on any CPU.
  if (level == CpuLevel::kAmx && n_tokens >= kAmxMinTokens && w.type != TensorType::F32)
    return matmul_amx(w, x, n_tokens, y, pool);
  if (slot <= kSlotBF16 && n_tokens >= kPanelMinTokens) return matmul_float_gemm(k, w, x, n_tokens, y, pool);
  const ActFormat format = act_format(slot);
  size_t act_stride;
  const uint8_t* act = activations_for(k, format, x, w.cols, n_tokens, pool, &act_stride);
  // Prefill: outliers in a second product (activation_outliers.cpp). Decode
  // keeps them in int8: there the second product would stream the weights a
  // second time.
  if (n_tokens >= kPanelMinTokens && format != ActFormat::kF32 && shadow_outliers_enabled()) {
    // Screened by the block maxima the quantizer found (|d| * 127): a row
    // whose largest block stands far above its average block may have one.
    const size_t block_bytes = format == ActFormat::kQ8 ? sizeof(ActQ8) : sizeof(ActQ8K);
    const int64_t n_act_blocks = static_cast<int64_t>(act_stride / block_bytes);
    auto candidate = [&](int64_t t) {
      if (n_act_blocks < 8) return true;  // too few blocks to compare: the float screen decides
      float peak = 0.0f, sum = 0.0f;
      for (int64_t b = 0; b < n_act_blocks; ++b) {
        float d;
        std::memcpy(&d, act + t * act_stride + b * block_bytes, sizeof d);
        peak = std::max(peak, std::fabs(d));
        sum += std::fabs(d);
      }
      return peak > 4.0f * sum / static_cast<float>(n_act_blocks);
    };
    thread_local ActivationOutliers outliers;  // recycled
    if (find_activation_outliers(x, n_tokens, w.cols, candidate, &outliers)) {
      auto* mutable_act = const_cast<uint8_t*>(act);  // activations_for's buffer: re-quantize those rows
      const auto n_spiked = static_cast<int64_t>(outliers.tokens.size());
      for (int64_t i = 0; i < n_spiked; ++i)
        quantize_token(k, format, outliers.inliers.data() + i * w.cols, w.cols,
                       mutable_act + outliers.tokens[static_cast<size_t>(i)] * act_stride);
      matmul_int8(level, k, slot, w, act, act_stride, n_tokens, y, pool);
      size_t spiked_stride;
      const uint8_t* spiked_act =  // the same buffer: the first product is done with it
          activations_for(k, format, outliers.spikes.data(), w.cols, n_spiked, pool, &spiked_stride);
      std::vector<float> spiked_y(static_cast<size_t>(n_spiked * w.rows));
      matmul_int8(level, k, slot, w, spiked_act, spiked_stride, n_spiked, spiked_y.data(), pool);
      for (int64_t i = 0; i < n_spiked; ++i) {
        float* dst = y + outliers.tokens[static_cast<size_t>(i)] * w.rows;
        const float* src = spiked_y.data() + i * w.rows;
        for (int64_t r = 0; r < w.rows; ++r) dst[r] += src[r];
      }
      return;
    }
  }
  matmul_int8(level, k, slot, w, act, act_stride, n_tokens, y, pool);
}

void matmul_fast(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  matmul_fast_at(cpu_level(), w, x, n_tokens, y, pool);
}

// Decode-sized inputs: every matrix's 16-row units (packed panels or row
// tiles, the same kernels as matmul_fast_at) in one parallel loop.
void matmul_fast_group_at(CpuLevel level, const MatrixView* ws, float* const* ys, int n, const float* x,
                          int64_t n_tokens, ThreadPool* pool) {
  if (n <= 0) return;
  const int slot0 = slot_of(ws[0].type);
  bool fuse = n > 1 && n_tokens > 0 && n_tokens < kPanelMinTokens && slot0 >= 0;
  for (int i = 0; fuse && i < n; ++i) {
    check_matrix(ws[i], n_tokens);
    const int slot = slot_of(ws[i].type);
    fuse = slot >= 0 && ws[i].cols == ws[0].cols && ws[i].cols > 0 && act_format(slot) == act_format(slot0);
  }
  if (!fuse) {
    for (int i = 0; i < n; ++i) matmul_fast_at(level, ws[i], x, n_tokens, ys[i], pool);
    return;
  }
  const Kernels& k = kernels_for(level);
  const PackedKernels* packed = packed_kernels_for(level);
  const ActFormat format = act_format(slot0);
  size_t act_stride;
  const uint8_t* act = activations_for(k, format, x, ws[0].cols, n_tokens, pool, &act_stride);
  // Per matrix: its first unit, and what each unit needs (looked up once:
  // per unit, the lookups were ~1 % of a decode step).
  struct Unit {
    int64_t first;
    PanelTileFn packed_tile;  // null: row tiles (tile) over the file layout
    TileFn tile;
    const uint8_t* base;
    size_t stride;  // bytes from one unit's weights to the next one's
    int64_t n_blocks;
  };
  std::vector<Unit> units(static_cast<size_t>(n) + 1, Unit{0, nullptr, nullptr, nullptr, 0, 0});
  for (int i = 0; i < n; ++i) {
    const MatrixView& w = ws[i];
    const int slot = slot_of(w.type);
    Unit& m = units[static_cast<size_t>(i)];
    m.n_blocks = blocks_per_row(w, format);
    if (w.packed != nullptr && packed != nullptr && packed->tile[slot] != nullptr) {
      m.packed_tile = packed->tile[slot];
      m.base = w.packed;
      m.stride = packed_panel_bytes(w.type, w.cols);
    } else {
      m.tile = k.tile[slot];
      m.base = static_cast<const uint8_t*>(w.data);
      m.stride = kRowBlock * w.row_bytes();
    }
    units[static_cast<size_t>(i) + 1].first = m.first + (w.rows + kRowBlock - 1) / kRowBlock;
  }
  static_assert(kRowBlock == kPanelRows, "a unit is one packed panel or one row tile");
  run_parallel(pool, units[static_cast<size_t>(n)].first, [&](int64_t begin, int64_t end) {
    size_t i = 0;
    for (int64_t u = begin; u < end; ++u) {
      while (u >= units[i + 1].first) ++i;
      const Unit& m = units[i];
      const MatrixView& w = ws[i];
      const int64_t p = u - m.first, r0 = p * kRowBlock, nr = std::min(kRowBlock, w.rows - r0);
      const uint8_t* weights = m.base + static_cast<size_t>(p) * m.stride;
      if (m.packed_tile != nullptr)
        m.packed_tile(weights, nr, act, act_stride, n_tokens, m.n_blocks, ys[i] + r0, w.rows);
      else
        m.tile(weights, w.row_bytes(), nr, act, act_stride, n_tokens, m.n_blocks, ys[i] + r0, w.rows);
    }
  });
}

void matmul_fast_group(const MatrixView* ws, float* const* ys, int n, const float* x, int64_t n_tokens,
                       ThreadPool* pool) {
  matmul_fast_group_at(cpu_level(), ws, ys, n, x, n_tokens, pool);
}

void matmul_accumulate_at(CpuLevel level, int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si,
                          int64_t a_sk, const float* b, int64_t ldb, float* c, int64_t ldc, ThreadPool* pool) {
  if (m < 0 || n < 0 || k < 0) throw Error("matmul_accumulate: negative size");
  if (m == 0 || n == 0 || k == 0) return;
  const AccumulateFn kernel = kernels_for(level).accumulate_f32;
  // Work items are (column strip, row chunk), strip-major, so a thread's
  // consecutive items reuse one strip of B from cache. Strips are a multiple
  // of the kernel's 16 columns so the split never changes which kernel path
  // (16-wide, 8-wide or scalar) computes a column.
  constexpr int64_t kStrip = 64, kRowChunk = 48;
  const int64_t n_strips = (n + kStrip - 1) / kStrip, n_chunks = (m + kRowChunk - 1) / kRowChunk;
  auto work = [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t j0 = item / n_chunks * kStrip, i0 = item % n_chunks * kRowChunk;
      kernel(std::min(kRowChunk, m - i0), std::min(kStrip, n - j0), k, a + i0 * a_si, a_si, a_sk, b + j0, ldb,
             c + i0 * ldc + j0, ldc);
    }
  };
  const bool small = m * n * k < (int64_t{1} << 16);
  run_parallel(small ? nullptr : pool, n_strips * n_chunks, work);
}

void matmul_accumulate(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sk, const float* b,
                       int64_t ldb, float* c, int64_t ldc, ThreadPool* pool) {
  matmul_accumulate_at(cpu_level(), m, n, k, a, a_si, a_sk, b, ldb, c, ldc, pool);
}

bool matmul_accumulate_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                            int64_t ldb, float* c, int64_t ldc) {
  if (cpu_level() != CpuLevel::kAmx) return false;
  if (m > 0 && n > 0 && k > 0) fast::accumulate_bf16_amx(m, n, k, a, lda, b, ldb, c, ldc);
  return true;
}

void swiglu_fast(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool) {
  const auto kernel = kernels_for(cpu_level()).swiglu_f32;
  constexpr int64_t kChunk = 16384;  // elements per work item
  run_parallel(n > kChunk ? pool : nullptr, (n + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end) {
    const int64_t i0 = begin * kChunk, i1 = std::min(n, end * kChunk);
    kernel(gate + i0, up + i0, out + i0, i1 - i0);
  });
}

void dequantize_row_fast(TensorType type, const void* src, float* dst, int64_t n) {
  fast::dequantize_row_with(kernels_for(cpu_level()), type, src, dst, n);
}

void quantize_row_fast(TensorType type, const float* src, void* dst, int64_t n) {
  if (type == TensorType::F16) return kernels_for(cpu_level()).f32_to_f16(src, static_cast<uint8_t*>(dst), n);
  quantize_row(type, src, dst, n);
}

float dot_f32(const float* a, const float* b, int64_t n) { return kernels_for(cpu_level()).dot_f32(a, b, n); }

void axpy_f32(float a, const float* x, float* y, int64_t n) { kernels_for(cpu_level()).axpy_f32(a, x, y, n); }

int64_t matmul_rows_to_amortize() {
  return cpu_level() == CpuLevel::kAmx ? 256 : 128;
}

uint64_t sum_words_at(CpuLevel level, const uint64_t* w, int64_t n) { return kernels_for(level).sum_words(w, n); }

}  // namespace onellm
