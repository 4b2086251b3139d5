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
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

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
  size_t row_bytes() const { return tensor_row_bytes(type, cols); }
};

// y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens; x is n_tokens x cols,
// y is n_tokens x rows, both row-major F32. Exact F32 math on the
// dequantized weights (the reference path). pool may be null.
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
// Copies row `row` of w, dequantized, into dst (cols floats): embedding lookup.
void matrix_row(const MatrixView& w, int64_t row, float* dst);

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);
void softmax_inplace(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n);

}  // namespace onellm
