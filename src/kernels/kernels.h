// The kernel layer: tensor element types (GGUF/ggml block layouts), scalar
// conversions, quantization, and the math the model layer composes. This is
// the narrow interface the CPU-performance work replaces underneath; model
// code never touches a block layout or an instruction set directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace onellm {

// Type ids exactly as GGUF/ggml number them.
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
};

struct TensorTypeInfo {
  const char* name;
  int64_t block_elems;  // elements per block (1 for plain types)
  size_t block_bytes;   // bytes per block
  bool computable;      // onellm can dequantize / multiply it
};

// Null for an id ggml does not define (the GGUF reader rejects those).
const TensorTypeInfo* tensor_type_info(uint32_t type_id);
const TensorTypeInfo& tensor_type_info(TensorType type);
std::string tensor_type_name(uint32_t type_id);  // "Q4_K", or "type#99"
// Parses "Q4_K", "q8_0", "F16" ... Throws Error for an unknown name.
TensorType tensor_type_from_name(const std::string& name);
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t tensor_row_bytes(TensorType type, int64_t n);

// ---- scalar conversions (IEEE half, bfloat16 with round-to-nearest-even)
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

// ---- rows of any computable type <-> F32. n is a multiple of the block size.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);
// The same values; F16 with the active CPU level's converter (F16C, NEON).
void dequantize_row_fast(TensorType type, const void* src, float* dst, int64_t n);
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);
// The same bits; F16 with the active CPU level's converter.
void quantize_row_fast(TensorType type, const float* src, void* dst, int64_t n);

// ---- threads
// A persistent pool; parallel_for splits [0, n) into contiguous ranges, runs
// them on the pool's threads and the caller, and returns when all are done.
class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  int size() const { return n_threads_; }
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct State;
  int n_threads_;
  State* state_;
};

// ---- math
// A weight matrix as stored in GGUF: `rows` rows of `cols` elements, each row
// tensor_row_bytes(type, cols) bytes (ggml ne[0] = cols, ne[1] = rows).
struct MatrixView {
  TensorType type = TensorType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  // Optional: the same weights re-laid by pack_matrix (below). matmul_fast
  // reads them where the level has kernels for the layout; everything else
  // (the reference path, embedding lookups, other levels) reads `data`.
  const uint8_t* packed = nullptr;
  size_t row_bytes() const { return tensor_row_bytes(type, cols); }
  size_t bytes() const { return row_bytes() * static_cast<size_t>(rows); }  // of `data`
};

// ---- packed weights
// Decode streams every weight once per token, so the GGUF block layout (one
// fp16 scale per 32 weights of one row) costs as many instructions per block
// as the integer dot itself. Packed, 16 rows are interleaved so one 512-bit
// vector holds the same 4 weights of all 16 rows and their 16 scales are
// contiguous (layout in packed_weights.cpp). It has the same size as the
// GGUF data (+3 % for Q4_K, + panel padding), so a loader that packs and
// releases the file pages keeps resident memory at about the file size.
// 0 if the type has no packed layout.
size_t packed_matrix_bytes(TensorType type, int64_t rows, int64_t cols);
// Rows interleaved in one panel of the packed layout.
constexpr int64_t kPackedPanelRows = 16;
// Bytes of one panel of kPackedPanelRows rows (a multiple of 64); 0 as above.
size_t packed_panel_bytes(TensorType type, int64_t cols);
// Writes w's weights in the packed layout to out (packed_matrix_bytes,
// 64-byte aligned). Throws Error if the type has none. Panels are
// independent: rows [r, r + n) of a matrix, r a multiple of
// kPackedPanelRows, pack to out + packed_matrix_bytes(type, r, cols).
void pack_matrix(const MatrixView& w, uint8_t* out);
// Row `row` of w.packed back in its GGUF bytes (row_bytes() of them).
void unpack_matrix_row(const MatrixView& w, int64_t row, uint8_t* out);
// Whether the active CPU level has kernels for packed weights of this type
// (a loader packs only then).
bool packed_kernels_available(TensorType type);

// y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens; x is n_tokens x cols,
// y is n_tokens x rows, both row-major F32. Exact F32 math on the
// dequantized weights (the reference path). pool may be null.
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
// Copies row `row` of w, dequantized, into dst (cols floats): embedding lookup.
void matrix_row(const MatrixView& w, int64_t row, float* dst);

// ---- CPU features and the fast path
// Instruction-set levels the fast kernels are built for. Each level needs all
// the features of the one below it on its architecture:
//   kAvx2:     AVX2 + FMA + F16C
//   kAvx2Vnni: kAvx2 + AVX-VNNI (256-bit vpdpbusd without AVX-512: Intel
//              Alder Lake and later client and Atom cores)
//   kAvx512:   kAvx2 + AVX-512 F/BW/VL/VNNI (512-bit registers, vpdpbusd)
//   kAmx:      kAvx512 + AVX512-BF16 + AMX-TILE/AMX-BF16, the tile data
//              granted by the OS (Intel Sapphire Rapids and later): prefill
//              matmuls (all but F32 weights) and prefill attention on the
//              BF16 tiles, the rest kAvx512's
//   kNeon:     AArch64 ASIMD (dotprod used when present)
enum class CpuLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3, kAvx2Vnni = 4, kAmx = 5 };
// Every level, lowest first within an architecture (tests run each one the
// machine supports).
inline constexpr CpuLevel kCpuLevels[] = {CpuLevel::kScalar, CpuLevel::kAvx2, CpuLevel::kAvx2Vnni, CpuLevel::kAvx512,
                                          CpuLevel::kAmx,    CpuLevel::kNeon};

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;  // and the OS saves YMM state
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool amx_permitted = false;  // Linux granted the tile-data state (arch_prctl)
  bool neon = false, dotprod = false, i8mm = false;
};
// Detected once (cpuid + xgetbv / getauxval); AMX permission is requested then.
const CpuFeatures& cpu_features();
std::string cpu_features_string();  // "avx2 fma f16c avx512f ..."
const char* cpu_level_name(CpuLevel level);  // "scalar", "avx2", "avx2-vnni", "avx512", "amx", "neon"
// Parses a level name; throws Error for an unknown one.
CpuLevel cpu_level_from_name(const std::string& name);
bool cpu_level_supported(CpuLevel level);  // by this machine
CpuLevel best_cpu_level();
// The level the fast kernels use: ONELLM_CPU (a level's name) if
// set, else the best one. Throws Error if ONELLM_CPU names an unknown level
// or one this machine cannot run.
CpuLevel cpu_level();
// Forces a level (tests, benchmarks); throws Error if unsupported here.
void set_cpu_level(CpuLevel level);

// Which matmul the model uses: kExact is `matmul` (F32 math on dequantized
// weights, the golden-test reference); kFast is `matmul_fast`.
enum class MathMode { kFast, kExact };

// Same contract as `matmul`, computed the way llama.cpp does by default: for
// quantized weights the activations are quantized once per call to 8-bit
// blocks (32-element blocks for Q4_0..Q8_0, 256-element blocks with 16-sums
// for K-quants) and dotted with integer instructions; F16/BF16/F32 weights
// use F32 FMA on the F32 activations.
// Decode (few tokens) streams each weight row once, rows split across
// threads; prefill tiles tokens x rows so weight rows are reused from cache.
// Shadow outliers (activation_outliers.cpp): prefill multiplies activations
// far above the rest of their token (64x its RMS) beside the int8 product
// instead of inside it. On unless ONELLM_SHADOW_OUTLIERS=0 or set here; rows
// are screened by the block maxima the quantizer finds anyway, so it costs
// nothing measurable (docs/benchmarks.md, session 12).
bool shadow_outliers_enabled();
void set_shadow_outliers(bool on);
void matmul_fast(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
// As matmul_fast, at a given level (tests compare levels).
void matmul_fast_at(CpuLevel level, const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                    ThreadPool* pool);
// ys[i] = matmul_fast(ws[i], x) for n matrices with the same input (Q/K/V,
// gate/up), bit for bit. Decode-sized inputs (< 16 tokens) with one
// activation format are quantized once and all matrices' rows run in one
// parallel loop: one synchronization instead of n, and longer streams.
void matmul_fast_group(const MatrixView* ws, float* const* ys, int n, const float* x, int64_t n_tokens,
                       ThreadPool* pool);
void matmul_fast_group_at(CpuLevel level, const MatrixView* ws, float* const* ys, int n, const float* x,
                          int64_t n_tokens, ThreadPool* pool);
inline void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool,
                   MathMode mode) {
  if (mode == MathMode::kExact)
    matmul(w, x, n_tokens, y, pool);
  else
    matmul_fast(w, x, n_tokens, y, pool);
}

// Rows per matmul call from which prefill at the active level runs at its
// full rate per row: 128 at the vector levels, which read (packed) weights
// in place; 256 at amx, which converts each call's weights into tiles
// (~0.13 ns a weight): 128 rows lost 8-17 % of pp512 against all 512 rows at
// once, 256 was within -6..+10 %.
int64_t matmul_rows_to_amortize();

// C (m x n, row stride ldc) += A (m x k) times B (k x n, row stride ldb),
// where A's element (i, p) is a[i * a_si + p * a_sk], so A or its transpose
// is read in place. For training's backward products. Every element sums p in
// ascending order in one accumulator whatever the thread count, so results
// are the same for a given CPU level.
void matmul_accumulate(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sk, const float* b,
                       int64_t ldb, float* c, int64_t ldc, ThreadPool* pool);
void matmul_accumulate_at(CpuLevel level, int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si,
                          int64_t a_sk, const float* b, int64_t ldb, float* c, int64_t ldc, ThreadPool* pool);

// C (m x n, row stride ldc) += A (m x k, row stride lda) times B (k x n,
// row stride ldb), F32 in and out, with A and B rounded to BF16 and the
// products summed in F32 on the AMX tile unit, one thread: training's
// backward through a frozen matrix (train_ops::linear_backward_input), where
// 8-bit mantissas are as fine as the forward's activations. Returns false
// and does nothing unless the active level is amx.
bool matmul_accumulate_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                            int64_t ldb, float* c, int64_t ldc);

// Vector helpers for attention at the active level. dot_f32 sums in an
// order that depends on the level (not bit-exact with the reference).
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a * x
// The wrapping sum of n 64-bit words read with the widest loads of `level`:
// a memory-bandwidth probe that reads as fast as the kernels do.
uint64_t sum_words_at(CpuLevel level, const uint64_t* w, int64_t n);

// ---- attention over a KV cache
// Rows of one KV head: row j starts at data + j * stride, head_dim elements of
// `type` (F32, F16 or Q8_0; Q8_0 needs head_dim a multiple of 32).
struct KvRows {
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;
  size_t stride = 0;
  // Set: data is not rows but a KV head's keys or values in the AMX level's
  // BF16 tile layout, written by prepare_kv_tiles (type and stride unused).
  // Only the amx level reads them; the others throw Error.
  bool bf16_tiles = false;
};
// Prefill at the amx level converts a KV head's keys and values once per
// layer into its tile layout instead of once per group of queries (each
// call converted every key it read). Whether the active level takes such
// rows for this head size:
bool kv_tiles_supported(int64_t head_dim);
// Bytes of the tile layout of n_keys keys (or values) of head_dim: blocks
// of kKvTileKeys keys, 128 head_dim bytes each (each value as two BF16 parts).
constexpr int64_t kKvTileKeys = 32;
size_t kv_tile_bytes(int64_t n_keys, int64_t head_dim);
// Keys and values [j0, j1) of k and v (F32, F16 or Q8_0 rows; j0 a multiple
// of kKvTileKeys, j1 one too or the last key) into k_out and v_out, which hold the
// head's blocks from key 0 (kv_tile_bytes(n_keys, head_dim) each); a last
// partial block is padded with zero keys. Throws Error unless
// kv_tiles_supported(head_dim).
void prepare_kv_tiles(KvRows k, KvRows v, int64_t j0, int64_t j1, int64_t head_dim, uint8_t* k_out, uint8_t* v_out);
// out (head_dim) = sum_j softmax_j(scale * q . k_j) v_j over j < n_keys, in
// one pass over the rows with an online softmax (blocks of 32 keys: the
// running maximum rescales the partial sum), so K and V are each read once
// and nothing of size n_keys x n_keys exists. If probs is not null it
// receives the n_keys attention probabilities (attention-mass tracking).
void attend(const float* q, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim, float scale, float* out,
            float* probs);
void attend_at(CpuLevel level, const float* q, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim, float scale,
               float* out, float* probs);
// The same for n_queries query heads that share one KV head (GQA), query i
// at q + i * head_dim, its output at out + i * head_dim. Each block of K and
// V rows is read (and converted to F32) once for all the queries, and the
// scores and weighted sums are small matrix products. No probs.
void attend_group(const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim,
                  float scale, float* out);
void attend_group_at(CpuLevel level, const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys,
                     int64_t head_dim, float scale, float* out);
// attend_group with a key count per query: query i attends to keys
// j < n_keys_of[i] (each at least 1). Prefill puts consecutive rows of one
// sequence in one call, each masked at its own position, so a KV head's key
// blocks are read (and, on AVX-512, transposed) once for up to 16 queries.
void attend_group_causal(const float* q, int64_t n_queries, const int64_t* n_keys_of, KvRows k, KvRows v,
                         int64_t head_dim, float scale, float* out);
void attend_group_causal_at(CpuLevel level, const float* q, int64_t n_queries, const int64_t* n_keys_of, KvRows k,
                            KvRows v, int64_t head_dim, float scale, float* out);
// attend_group over part of the keys, left unnormalized so that parts can be
// combined (flash-decoding: one sequence's keys split between threads):
// out (n_queries x head_dim) = sum_j e^(s_j - max) v_j, max_out[i] = the
// largest score s_j of query i, sum_out[i] = sum_j e^(s_j - max). n_keys 0
// gives zeros and max -inf. merge_attention combines the parts.
void attend_group_partial_at(CpuLevel level, const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys,
                             int64_t head_dim, float scale, float* out, float* max_out, float* sum_out);
void attend_group_partial(const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim,
                          float scale, float* out, float* max_out, float* sum_out);
// out (n_queries x head_dim) = the attention over all keys, from n_parts
// results of attend_group_partial laid out one after another: part p's
// output at parts + p * n_queries * head_dim, its max and sum at
// maxes / sums + p * n_queries.
void merge_attention(const float* parts, const float* maxes, const float* sums, int64_t n_parts, int64_t n_queries,
                     int64_t head_dim, float* out);
// The reference: rows dequantized to F32, scores summed in index order, a
// two-pass softmax, values accumulated in index order (golden comparisons).
void attend_exact(const float* q, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim, float scale, float* out,
                  float* probs);

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);
void softmax_inplace(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// The same with the CPU level's vector exp, split over the pool (fast path).
void swiglu_fast(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool);

}  // namespace onellm
