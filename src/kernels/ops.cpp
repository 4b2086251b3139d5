// The scalar reference math: matmul over any computable weight type, row
// lookup, RMS norm, softmax, SwiGLU. Plain C++ written so GCC can vectorize
// it; the SIMD work replaces these behind the same interface and tests
// against them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

// Weight rows dequantized together: each activation row is then read once
// per tile instead of once per weight row, which matters for prefill.
constexpr int64_t kRowTile = 8;

// Sixteen independent accumulators: no reassociation is needed to vectorize,
// so the result is deterministic for a given n, whatever the thread count.
float dot(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
  return acc[0] + tail;
}

void check_matrix(const MatrixView& w, const char* what) {
  const TensorTypeInfo& info = tensor_type_info(w.type);
  if (!info.computable) throw Error(std::string(what) + ": tensor type " + info.name + " is not supported");
  if (w.rows < 0 || w.cols < 0)
    throw Error(std::string(what) + ": bad matrix shape " + std::to_string(w.rows) + " x " + std::to_string(w.cols));
  w.row_bytes();  // throws unless cols is a whole number of blocks
  if (w.data == nullptr && w.rows > 0 && w.cols > 0) throw Error(std::string(what) + ": matrix has no data");
}

}  // namespace

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  check_matrix(w, "matmul");
  if (n_tokens < 0) throw Error("matmul: negative token count " + std::to_string(n_tokens));
  const int64_t rows = w.rows, cols = w.cols;
  const size_t row_bytes = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data);
  // F32 rows are used in place when aligned (GGUF data always is); an
  // unaligned view is copied row by row like any other type.
  const bool is_f32 = w.type == TensorType::F32 && reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0;

  auto run_tiles = [&](int64_t tile_begin, int64_t tile_end) {
    thread_local std::vector<float> scratch;
    if (!is_f32) scratch.resize(static_cast<size_t>(kRowTile * cols));
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t r0 = tile * kRowTile;
      const int64_t r1 = std::min(rows, r0 + kRowTile);
      const float* tile_rows;
      if (is_f32) {
        tile_rows = reinterpret_cast<const float*>(base + static_cast<size_t>(r0) * row_bytes);
      } else {
        for (int64_t r = r0; r < r1; ++r)
          dequantize_row(w.type, base + static_cast<size_t>(r) * row_bytes, scratch.data() + (r - r0) * cols, cols);
        tile_rows = scratch.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * cols;
        float* yt = y + t * rows;
        for (int64_t r = r0; r < r1; ++r) yt[r] = dot(tile_rows + (r - r0) * cols, xt, cols);
      }
    }
  };

  const int64_t n_tiles = (rows + kRowTile - 1) / kRowTile;
  if (pool != nullptr)
    pool->parallel_for(n_tiles, run_tiles);
  else
    run_tiles(0, n_tiles);
}

void matrix_row(const MatrixView& w, int64_t row, float* dst) {
  check_matrix(w, "matrix_row");
  if (row < 0 || row >= w.rows)
    throw Error("matrix_row: row " + std::to_string(row) + " is outside a matrix of " + std::to_string(w.rows) +
                " rows");
  if (w.packed != nullptr) {  // read the copy in memory, not the released file pages
    thread_local std::vector<uint8_t> gguf_row;
    gguf_row.resize(w.row_bytes());
    unpack_matrix_row(w, row, gguf_row.data());
    dequantize_row(w.type, gguf_row.data(), dst, w.cols);
    return;
  }
  dequantize_row(w.type, static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row) * w.row_bytes(), dst,
                 w.cols);
}

// As ggml: squares summed in double, the scale applied, then the weight.
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  if (n <= 0) return;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
}

void softmax_inplace(float* x, int64_t n) {
  if (n <= 0) return;
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace onellm
