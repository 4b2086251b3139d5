// Private to src/kernels: the quantized-activation blocks and the table of
// kernels each instruction-set file (fast_scalar.cpp, fast_avx2.cpp,
// fast_avx512.cpp, fast_neon.cpp) fills in. fast_matmul.cpp picks the table
// for the active CpuLevel and does the threading and cache blocking; the
// kernels only see plain pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/kernels.h"

namespace onellm::fast {

// Activations for Q4_0..Q8_0 weights: 32 values q*d. sum = sum(q), which
// the offset (Q4_0, Q5_0: exact, in integers) and min (Q4_1, Q5_1) terms need.
struct ActQ8 {
  float d;
  int32_t sum;
  int8_t qs[32];
};
// Activations for K-quant weights: 256 values q*d, and the sums of each 16
// (the min / offset terms of the sub-blocks).
struct ActQ8K {
  float d;
  int16_t bsums[16];
  int8_t qs[256];
};
static_assert(sizeof(ActQ8) == 40 && sizeof(ActQ8K) == 292);

enum class ActFormat { kF32, kQ8, kQ8K };

// A slot per computable weight type (every level fills every tile).
// Slots after Q6_K were added later, at the end, so the panel and packed
// tables that have no kernel for them end with their zero entries. IQ4_NL
// and IQ4_XS take 32-element activation blocks (IQ4_XS has a scale per 32
// elements: 8 activation blocks per super-block), Q2_K and Q3_K 256-element
// ones with 16-sums, like the other K-quants.
enum WeightSlot { kSlotF32, kSlotF16, kSlotBF16, kSlotQ4_0, kSlotQ4_1, kSlotQ5_0, kSlotQ5_1, kSlotQ8_0,
                  kSlotQ4_K, kSlotQ5_K, kSlotQ6_K, kSlotIQ4_NL, kSlotIQ4_XS, kSlotQ2_K, kSlotQ3_K, kSlotCount };

// y[t * y_stride + r] = dot(weight row r, activation row t) for r < n_rows,
// t < n_tok. Weight row r starts at w + r * w_stride, activation row t at
// a + t * a_stride; n_blocks = blocks of the weight type per row (elements
// for F32/F16/BF16).
using TileFn = void (*)(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a, size_t a_stride,
                        int64_t n_tok, int64_t n_blocks, float* y, int64_t y_stride);

// c[i * ldc + j] += sum over p < k of A(i, p) * b[p * ldb + j], for i < m and
// j < n, where A(i, p) = a[i * a_si + p * a_sk]. Each element sums p in
// ascending order in one accumulator, so the result does not depend on how
// the caller splits the rows and columns.
using AccumulateFn = void (*)(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sk,
                              const float* b, int64_t ldb, float* c, int64_t ldc);

struct Kernels {
  const char* name;
  void (*quantize_q8)(const float* x, ActQ8* out, int64_t n_blocks);
  void (*quantize_q8k)(const float* x, ActQ8K* out, int64_t n_blocks);
  TileFn tile[kSlotCount];
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);
  AccumulateFn accumulate_f32;
  // Attention over KV-cache rows stored as F16 or Q8_0 (n a multiple of 32
  // for Q8_0): a . row, and y += s * row.
  float (*dot_f16)(const float* a, const uint8_t* row, int64_t n);
  void (*axpy_f16)(float s, const uint8_t* row, float* y, int64_t n);
  float (*dot_q8_0)(const float* a, const uint8_t* row, int64_t n);
  void (*axpy_q8_0)(float s, const uint8_t* row, float* y, int64_t n);
  // out[i] = row[i] for an F16 row (prefill attention converts key and
  // value blocks once per block of queries).
  void (*f16_to_f32)(const uint8_t* row, float* out, int64_t n);
  // row[i] = x[i] as F16, rounded to nearest even: the bits of f32_to_fp16
  // at every level (KV cache writes).
  void (*f32_to_f16)(const float* x, uint8_t* row, int64_t n);
  // x[i] = exp(x[i]) (exp(-inf) = 0), and out[i] = silu(gate[i]) * up[i]:
  // softmax and SwiGLU of the fast path (the x86 levels use a polynomial
  // within 2 ulp of libm's expf; the reference path keeps std::exp).
  void (*exp_f32)(float* x, int64_t n);
  void (*swiglu_f32)(const float* gate, const float* up, float* out, int64_t n);
  // attend_group for n_q <= 16 queries sharing one KV head, K and V rows of
  // one type (F32, F16 or Q8_0); with max_out and sum_out, the unnormalized
  // part of attend_group_partial. key_limits (may be null): query i reads
  // keys j < key_limits[i] only, 1 <= key_limits[i] <= n_keys (prefill's
  // rows of one sequence in one call, each masked at its own position).
  // null: attend_group's generic blocked path.
  void (*attend_heads)(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                       int64_t dim, float scale, float* out, float* max_out, float* sum_out);
  // The wrapping sum of n 64-bit words, read with the level's widest loads:
  // the memory-bandwidth probe (`onellm bench`'s decode bound), which must
  // read as fast as the kernels do. A scalar loop reads ~35 % slower from
  // DRAM on a Xeon with AVX-512 (22 vs 35 GB/s, 2 threads).
  uint64_t (*sum_words)(const uint64_t* w, int64_t n);
  // dst = row `src` of n elements (a whole number of blocks) as F32, the
  // values of dequantize_row; false if the level has no routine for the type
  // (null: none for any).
  bool (*dequantize)(TensorType type, const void* src, float* dst, int64_t n);
};
// dequantize_row with the table's vector routines (the same values).
void dequantize_row_with(const Kernels& k, TensorType type, const void* src, float* dst, int64_t n);
// The std::exp versions (scalar level; levels without their own).
void exp_f32_scalar(float* x, int64_t n);
void swiglu_f32_scalar(const float* gate, const float* up, float* out, int64_t n);

// Prefill over weights re-laid in panels of 16 rows (fast_avx512_panel.inc,
// fast_avx2_panel.inc; each level its own layout):
// pack writes rows [0, n_rows) of w (n_rows <= 16, n_blocks blocks of the
// weight type) into a zeroed panel of block_bytes[slot] * n_blocks bytes;
// tile computes y[t * y_stride + r] for r < n_rows, t < n_tok, from the
// panel and the activations in the slot's format. block_bytes 0: no panel
// kernel for that weight type.
constexpr int64_t kPanelRows = kPackedPanelRows;
using PanelPackFn = void (*)(const uint8_t* w, size_t w_stride, int64_t n_rows, int64_t n_blocks, uint8_t* panel);
using PanelTileFn = void (*)(const uint8_t* panel, int64_t n_rows, const uint8_t* a, size_t a_stride, int64_t n_tok,
                             int64_t n_blocks, float* y, int64_t y_stride);
struct PanelKernels {
  size_t block_bytes[kSlotCount];
  PanelPackFn pack[kSlotCount];
  PanelTileFn tile[kSlotCount];
};

// Packed Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 panels (packed_weights.cpp): blocks
// go in pairs, [quants of block 2p][quants of 2p+1][scales of 2p][scales of
// 2p+1], an odd last block as [quants][scales], so a panel is read as one
// forward stream. kQuants: the 16 rows' quant bytes of one block (Q4_0 256:
// 576 bytes, nine cache lines per pair; Q5_0 320: eleven; Q8_0 512:
// seventeen); kScales: the 16 rows' fp16 d (32 bytes), for Q4_1 / Q5_1
// followed by their fp16 m (64). Byte offsets of block b's quants and scales:
template <int64_t kQuants, int64_t kScales = 32>
inline int64_t paired_quants_at(int64_t b) {
  return 2 * (kQuants + kScales) * (b >> 1) + kQuants * (b & 1);
}
template <int64_t kQuants, int64_t kScales = 32>
inline int64_t paired_scales_at(int64_t nb, int64_t b) {
  return 2 * (kQuants + kScales) * (b >> 1) + kScales * (b & 1) + ((b | 1) < nb ? 2 * kQuants : kQuants);
}
inline int64_t q4_0_quants_at(int64_t b) { return paired_quants_at<256>(b); }
inline int64_t q4_0_scales_at(int64_t nb, int64_t b) { return paired_scales_at<256>(nb, b); }
inline int64_t q8_0_quants_at(int64_t b) { return paired_quants_at<512>(b); }
inline int64_t q8_0_scales_at(int64_t nb, int64_t b) { return paired_scales_at<512>(nb, b); }
// Q5_0: Q4_0's 256 bytes of nibbles, then 64 bytes of fifth bits.
inline int64_t q5_0_quants_at(int64_t b) { return paired_quants_at<320>(b); }
inline int64_t q5_0_scales_at(int64_t nb, int64_t b) { return paired_scales_at<320>(nb, b); }
// Q4_1 / Q5_1: Q4_0's / Q5_0's quants; scales d, then m (at scales + 32).
// kMin selects them in the kernels shared with Q4_0 / Q5_0.
template <int64_t kQuants, bool kMin>
inline int64_t legacy_quants_at(int64_t b) { return paired_quants_at<kQuants, kMin ? 64 : 32>(b); }
template <int64_t kQuants, bool kMin>
inline int64_t legacy_scales_at(int64_t nb, int64_t b) { return paired_scales_at<kQuants, kMin ? 64 : 32>(nb, b); }

// Packed IQ4_XS super-block of 16 rows (packed_weights.cpp): 8 Q4_0-like
// groups of nibbles (256 bytes each), then scales_l, scales_h and d.
constexpr int64_t kIq4XsPanelBytes = 2176;

// Packed Q2_K super-block of 16 rows (packed_weights.cpp): 16 groups of qs
// dwords, 4 of scale dwords, the 16 fp16 d, then dmin (the file's size).
constexpr int64_t kQ2KPanelBytes = 1344;

// Packed Q3_K super-block of 16 rows (packed_weights.cpp): 16 groups of qs
// dwords, 8 of hmask dwords, 3 of the packed scales, the 16 fp16 d, padding.
constexpr int64_t kQ3KPanelBytes = 1792;

// Packed Q4_K / Q5_K panel: one super-block after another, each [levels
// (2048 bytes)][Q5_K only: fifth bits (512)][scales, mins, d, dmin (320)].
template <bool kFifth>
struct K4Panel {
  static constexpr int64_t kPlanes = 2048;                  // fifth-bit planes (Q5_K)
  static constexpr int64_t kMeta = kFifth ? 2560 : 2048;    // scales, mins, d, dmin
  static constexpr int64_t kBytes = kMeta + 320;            // one super-block of 16 rows
  // The 64-byte bit plane of pair g, nibble n (0: low): bit k of byte lane
  // 4 r + i is the fifth bit of that lane's level in group k (< 8).
  static constexpr int64_t plane_at(int g, int n) { return kPlanes + 128 * g + 64 * n; }
};

// Packed Q6_K panel: the same pairing of super-blocks, [levels of 2p (3072
// bytes)][levels of 2p+1][scales and d of 2p (288)][of 2p+1] (6720 bytes).
inline int64_t q6_k_levels_at(int64_t s) { return 6720 * (s >> 1) + 3072 * (s & 1); }
inline int64_t q6_k_meta_at(int64_t nb, int64_t s) {
  return 6720 * (s >> 1) + 288 * (s & 1) + ((s | 1) < nb ? 6144 : 3072);
}

// Kernels over weights in the packed layout (kernels.h, packed_weights.cpp).
// tile: y[t * y_stride + r] for r < n_rows, t < n_tok, from one packed
// panel of n_blocks blocks, at every token count (prefill too).
// One token against 4 whole panels (64 rows) that start panel_bytes apart:
// y[0, 64). Each block's activations are loaded once for the 4 panels. On
// long rows (4864 or 8960 columns) every panel re-read the whole activation
// row as a second stream beside the weights, and one panel at a time ran
// at 75 % of a plain read loop; 4 at a time reads it once per 64 rows.
using PackedDecode4Fn = void (*)(const uint8_t* panel, size_t panel_bytes, const uint8_t* act, int64_t n_blocks,
                                 float* y);
// 2 to 4 tokens against 4 whole panels, as decode4 for one: token t's
// outputs at y + t * y_stride, [0, 64).
using PackedFew4Fn = void (*)(const uint8_t* panel, size_t panel_bytes, const uint8_t* act, size_t act_stride,
                              int64_t n_tokens, int64_t n_blocks, float* y, int64_t y_stride);
struct PackedKernels {
  PanelTileFn tile[kSlotCount];
  PackedDecode4Fn decode4[kSlotCount];  // null: `tile` panel by panel
  PackedFew4Fn few4[kSlotCount];        // null: `tile` panel by panel
};

// Shadow outliers (activation_outliers.cpp): activations far above the rest
// of their token, taken out of the int8 product and multiplied on their own.
struct ActivationOutliers {
  std::vector<int64_t> tokens;  // the tokens that had outliers
  std::vector<float> inliers;   // tokens.size() x cols: their rows with the outliers zeroed
  std::vector<float> spikes;    // tokens.size() x cols: only their outliers
};
// True if x (n_tokens x cols) has outliers; then those tokens' rows are
// quantized from out->inliers, and y gains the product of out->spikes.
// Only tokens for which candidate(t) holds are examined (a cheap screen).
bool find_activation_outliers(const float* x, int64_t n_tokens, int64_t cols,
                              const std::function<bool(int64_t token)>& candidate, ActivationOutliers* out);

// Null when the level is not compiled in for this architecture.
const Kernels* kernels_scalar();
const Kernels* kernels_avx2();
const Kernels* kernels_avx2_vnni();
const Kernels* kernels_avx512();
const Kernels* kernels_amx();  // kernels_avx512's, under the level's name
const Kernels* kernels_neon();  // the best of the three tables below that the CPU runs
// The AArch64 tables, for tests: plain ASIMD (any ARMv8.0 core), SDOT (null
// unless the CPU reports dotprod), and SDOT + SMMLA (null unless it reports
// dotprod and i8mm).
const Kernels* kernels_neon_plain();
const Kernels* kernels_neon_dotprod();
const Kernels* kernels_neon_i8mm();
const Kernels& kernels_for(CpuLevel level);  // throws Error if not built here
const PanelKernels* panel_kernels_avx2();       // null unless built for x86-64
const PanelKernels* panel_kernels_avx2_vnni();  // null unless built for x86-64
const PanelKernels* panel_kernels_avx512();     // null unless built for x86-64
const PanelKernels* panel_kernels_for(CpuLevel level);  // null: the level has none
const PackedKernels* packed_kernels_avx2();                  // null unless built for x86-64
const PackedKernels* packed_kernels_avx2_vnni();             // null unless built for x86-64
const PackedKernels* packed_kernels_avx512();                // null unless built for x86-64
const PackedKernels* packed_kernels_for(CpuLevel level);    // null: the level has none

// The AMX level's prefill (fast_amx.cpp): y = W x on the BF16 tiles,
// quantized weights (file or packed layout) in BF16, float weights in split
// BF16 parts; matmul_fast's contract. Only where
// cpu_level_supported(CpuLevel::kAmx); a no-op elsewhere.
void matmul_amx(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
// matmul_accumulate_bf16 (kernels.h) on the tile unit, one thread.
void accumulate_bf16_amx(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                         float* c, int64_t ldc);
// From this many tokens the AMX level runs matmul_amx.
constexpr int64_t kAmxMinTokens = 32;
// The AMX level's Kernels::attend_heads (fast_amx_attention.cpp), on the
// BF16 tiles: rows prepared by prepare_kv_tiles, and F32 rows of at least
// kAmxMinQueries queries over kAmxMinKeys keys, head sizes a multiple of 32
// up to kAmxMaxHeadDim; the rest as at the AVX-512 level.
void attend_heads_amx(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                      int64_t dim, float scale, float* out, float* max_out, float* sum_out);
constexpr int64_t kAmxMinQueries = 4, kAmxMinKeys = 64, kAmxMaxHeadDim = 256;

}  // namespace onellm::fast
