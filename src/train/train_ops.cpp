// Forward and backward of the blocks of a llama model. The big products are
// the kernels' matmul_fast / matmul_accumulate (per-CPU-level SIMD); the rest
// are plain loops that GCC vectorizes. Work is split so that each output
// element is written by one thread in one order.
#include "train/train_ops.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

namespace onellm::train_ops {

void run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool != nullptr) pool->parallel_for(n, fn);
  else fn(0, n);
}

void linear_forward(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
                    ThreadPool* pool) {
  // The matmul `run` and `serve` use by default, so trained and served
  // logits agree.
  matmul_fast(MatrixView{TensorType::F32, w, rows, cols}, x, n, y, pool);
}

void linear_backward_input(const float* w, int64_t rows, int64_t cols, const float* dy, int64_t n, float* dx,
                           ThreadPool* pool) {
  // dx[t][c] += sum_r dy[t][r] * w[r][c]: A = dy (n x rows), B = w.
  matmul_accumulate(n, cols, rows, dy, rows, 1, w, cols, dx, cols, pool);
}

void linear_forward(const MatrixView& w, const float* x, int64_t n, float* y, ThreadPool* pool) {
  matmul_fast(w, x, n, y, pool);
}

void linear_backward_input(const MatrixView& w, const float* dy, int64_t n, float* dx, ThreadPool* pool) {
  if (w.type == TensorType::F32) {
    linear_backward_input(static_cast<const float*>(w.data), w.rows, w.cols, dy, n, dx, pool);
    return;
  }
  // Each thread owns strips of dx's columns and walks W's rows in tiles of
  // rows_per_tile, in order, dequantizing only the tile's part of its strip (a
  // whole block of the stored type at a time). A dx element's sum thus
  // depends on the tile size, never on the strip width or the thread count.
  // The strips are narrow enough to give each thread several. On the amx
  // level the tiles of block-quantized types multiply on the tile unit in
  // BF16 (matmul_accumulate_bf16; 1.46x a LoRA step on a 1.5B Q4_K_M base),
  // over taller tiles; F16 and BF16 bases keep the F32 product.
  const TensorTypeInfo& info = tensor_type_info(w.type);
  constexpr int64_t kPrefetchRows = 8;
  const bool bf16 = cpu_level() == CpuLevel::kAmx && info.block_elems > 1;
  const int64_t rows_per_tile = bf16 ? 512 : 128;
  const int64_t threads = pool != nullptr ? pool->size() : 1;
  const int64_t unit = std::lcm<int64_t>(info.block_elems, 32);
  const int64_t strip = std::clamp<int64_t>(w.cols / (4 * threads) / unit * unit, unit, 16 * unit);
  const size_t row_bytes = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data);
  run(pool, (w.cols + strip - 1) / strip, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> tile;
    tile.resize(static_cast<size_t>(rows_per_tile * strip));
    for (int64_t s = begin; s < end; ++s) {
      const int64_t c0 = s * strip, width = std::min(strip, w.cols - c0);
      const size_t skip = static_cast<size_t>(c0 / info.block_elems) * info.block_bytes;
      const size_t segment_bytes = static_cast<size_t>(width / info.block_elems) * info.block_bytes;
      for (int64_t r0 = 0; r0 < w.rows; r0 += rows_per_tile) {
        const int64_t tile_rows = std::min(rows_per_tile, w.rows - r0);
        for (int64_t r = 0; r < tile_rows; ++r) {
          // The strip's part of a row is a few cache lines, a row apart: ask
          // for those of a row ahead, which the hardware would not guess.
          if (r0 + r + kPrefetchRows < w.rows) {
            const uint8_t* ahead = base + static_cast<size_t>(r0 + r + kPrefetchRows) * row_bytes + skip;
            for (size_t b = 0; b < segment_bytes; b += 64) __builtin_prefetch(ahead + b);
          }
          dequantize_row_fast(w.type, base + static_cast<size_t>(r0 + r) * row_bytes + skip, tile.data() + r * width,
                              width);
        }
        // dx[:, c0 : c0 + width] += dy[:, r0 : r0 + tile_rows] times the tile.
        if (!bf16 || !matmul_accumulate_bf16(n, width, tile_rows, dy + r0, w.rows, tile.data(), width, dx + c0, w.cols))
          matmul_accumulate(n, width, tile_rows, dy + r0, w.rows, 1, tile.data(), width, dx + c0, w.cols, nullptr);
      }
    }
  });
}

void linear_backward_weight(const float* x, int64_t cols, const float* dy, int64_t rows, int64_t n, float* dw,
                            ThreadPool* pool) {
  // dw[r][c] += sum_t dy[t][r] * x[t][c]: A = dy^T (rows x n), B = x.
  matmul_accumulate(rows, cols, n, dy, 1, rows, x, cols, dw, cols, pool);
}

void rms_norm_forward(const float* x, const float* w, int64_t n, int64_t d, float eps, float* y, float* rstd) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    double sum = 0.0;
    for (int64_t i = 0; i < d; ++i) sum += static_cast<double>(xt[i] * xt[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(d));
    const float scale = 1.0f / std::sqrt(mean + eps);
    rstd[t] = scale;
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = (xt[i] * scale) * w[i];
  }
}

void rms_norm_backward(const float* x, const float* w, const float* rstd, const float* dy, int64_t n, int64_t d,
                       float* dx, float* dw) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    const float* gt = dy + t * d;
    const float r = rstd[t];
    double dot = 0.0;  // sum_i dy_i w_i x_i
    if (dw != nullptr)
      for (int64_t i = 0; i < d; ++i) dw[i] += gt[i] * xt[i] * r;
    for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(gt[i] * w[i]) * xt[i];
    const float k = static_cast<float>(dot / static_cast<double>(d)) * r * r * r;
    for (int64_t i = 0; i < d; ++i) dx[t * d + i] += r * gt[i] * w[i] - xt[i] * k;
  }
}

void lora_forward(const LoraSite& s, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
                  std::vector<float>& scratch, ThreadPool* pool) {
  scratch.resize(static_cast<size_t>(n * (s.rank + rows)));
  float* u = scratch.data();               // n x rank: scale x A^T
  float* delta = u + n * s.rank;           // n x rows: u B^T
  linear_forward(s.a, s.rank, cols, x, n, u, pool);
  for (int64_t i = 0; i < n * s.rank; ++i) u[i] *= s.scale;
  linear_forward(s.b, rows, s.rank, u, n, delta, pool);
  for (int64_t i = 0; i < n * rows; ++i) y[i] += delta[i];
}

void lora_backward(const LoraSite& s, int64_t rows, int64_t cols, const float* x, const float* dy, int64_t n,
                   float* dx, std::vector<float>& scratch, ThreadPool* pool) {
  scratch.assign(static_cast<size_t>(2 * n * s.rank), 0.0f);
  float* u = scratch.data();      // n x rank: scale x A^T, as in the forward
  float* v = u + n * s.rank;      // n x rank: scale dy B
  linear_forward(s.a, s.rank, cols, x, n, u, pool);
  for (int64_t i = 0; i < n * s.rank; ++i) u[i] *= s.scale;
  linear_backward_weight(u, s.rank, dy, rows, n, s.db, pool);   // dB += dy^T u
  linear_backward_input(s.b, rows, s.rank, dy, n, v, pool);     // v = dy B
  for (int64_t i = 0; i < n * s.rank; ++i) v[i] *= s.scale;
  linear_backward_weight(x, cols, v, s.rank, n, s.da, pool);    // dA += v^T x
  linear_backward_input(s.a, s.rank, cols, v, n, dx, pool);     // dx += v A
}

RopeTable::RopeTable(const ModelConfig& c, const std::vector<float>& freq_factors, int64_t n_pos) : half(c.n_rot / 2) {
  cos_sin.resize(static_cast<size_t>(n_pos * half * 2));
  for (int64_t pos = 0; pos < n_pos; ++pos) rope_cos_sin(c, freq_factors, pos, cos_sin.data() + pos * half * 2);
}

void rope_apply(const ModelConfig& c, const RopeTable& table, float* x, int64_t n, int64_t n_heads, bool inverse,
                const int64_t* positions) {
  const int64_t half = table.half;
  const float sign = inverse ? -1.0f : 1.0f;
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = table.cos_sin.data() + positions[t] * half * 2;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * c.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float co = cs[2 * i], sn = sign * cs[2 * i + 1];
        const int64_t a = c.rope_style == RopeStyle::kNormal ? 2 * i : i;
        const int64_t b = c.rope_style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * co - x1 * sn;
        v[b] = x0 * sn + x1 * co;
      }
    }
  }
}

namespace {

// dst (HD x n) = the head's columns of src (n rows of `stride`), transposed,
// so products with K^T / V^T read B row by row.
void transpose_head(const float* src, int64_t stride, int64_t n, int64_t HD, float* dst) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = 0; d < HD; ++d) dst[d * n + j] = src[j * stride + d];
}

}  // namespace

// Per head and document, as matrix products: S = Q K^T, P = causal
// softmax(S * scale), O = P V. The products cover each document's whole
// square (the masked half is zeroed), which costs less than a triangular loop
// of scalar dot products; nothing is computed across documents.
void attention_forward(const ModelConfig& c, const float* q, const float* k, const float* v, int64_t n,
                       const DocumentStarts& docs, float* probs, float* out, ThreadPool* pool) {
  const int64_t HD = c.head_dim, QD = c.q_dim(), KVD = c.kv_dim(), group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  run(pool, c.n_head, [&](int64_t begin, int64_t end) {
    std::vector<float> kt(static_cast<size_t>(HD * n));
    for (int64_t h = begin; h < end; ++h) {
      const int64_t kvh = h / group;
      for (size_t d = 0; d < docs.size(); ++d) {
        const int64_t a = docs[d], m = (d + 1 < docs.size() ? docs[d + 1] : n) - a;
        float* p = probs + h * n * n + a * n + a;  // the document's block, row stride n
        for (int64_t t = 0; t < m; ++t) std::fill_n(p + t * n, m, 0.0f);
        transpose_head(k + a * KVD + kvh * HD, KVD, m, HD, kt.data());
        matmul_accumulate(m, m, HD, q + a * QD + h * HD, QD, 1, kt.data(), m, p, n, nullptr);
        for (int64_t t = 0; t < m; ++t) {
          float* row = p + t * n;
          for (int64_t j = 0; j <= t; ++j) row[j] *= scale;
          softmax_inplace(row, t + 1);
          std::fill(row + t + 1, row + m, 0.0f);
        }
        for (int64_t t = a; t < a + m; ++t) std::fill_n(out + t * QD + h * HD, HD, 0.0f);
        matmul_accumulate(m, HD, m, p, n, 1, v + a * KVD + kvh * HD, KVD, out + a * QD + h * HD, QD, nullptr);
      }
    }
  });
}

// dV += P^T dO;  dP = dO V^T;  dS = P * (dP - rowsum(P * dP)) * scale;
// dQ += dS K;  dK += dS^T Q. One KV head per work item: it owns its dk/dv
// and its query heads' dq.
void attention_backward(const ModelConfig& c, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, int64_t n, const DocumentStarts& docs, float* dq, float* dk, float* dv,
                        ThreadPool* pool) {
  const int64_t HD = c.head_dim, QD = c.q_dim(), KVD = c.kv_dim(), group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  run(pool, c.n_head_kv, [&](int64_t begin, int64_t end) {
    std::vector<float> vt(static_cast<size_t>(HD * n)), ds(static_cast<size_t>(n * n));
    for (int64_t kvh = begin; kvh < end; ++kvh) {
      for (size_t d = 0; d < docs.size(); ++d) {
        const int64_t a = docs[d], m = (d + 1 < docs.size() ? docs[d + 1] : n) - a;
        transpose_head(v + a * KVD + kvh * HD, KVD, m, HD, vt.data());
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          const float* p = probs + h * n * n + a * n + a;  // row stride n
          const float* go = dout + a * QD + h * HD;
          matmul_accumulate(m, HD, m, p, 1, n, go, QD, dv + a * KVD + kvh * HD, KVD, nullptr);
          std::fill_n(ds.data(), m * m, 0.0f);
          matmul_accumulate(m, m, HD, go, QD, 1, vt.data(), m, ds.data(), m, nullptr);
          for (int64_t t = 0; t < m; ++t) {
            const float* pt = p + t * n;
            float* dst = ds.data() + t * m;
            double weighted = 0.0;  // sum_j p_j dp_j
            for (int64_t j = 0; j <= t; ++j) weighted += static_cast<double>(pt[j]) * dst[j];
            const float w = static_cast<float>(weighted);
            for (int64_t j = 0; j <= t; ++j) dst[j] = pt[j] * (dst[j] - w) * scale;
            std::fill(dst + t + 1, dst + m, 0.0f);
          }
          matmul_accumulate(m, HD, m, ds.data(), m, 1, k + a * KVD + kvh * HD, KVD, dq + a * QD + h * HD, QD,
                            nullptr);
          matmul_accumulate(m, HD, m, ds.data(), 1, m, q + a * QD + h * HD, QD, dk + a * KVD + kvh * HD, KVD,
                            nullptr);
        }
      }
    }
  });
}

void swiglu_backward(const float* gate, const float* up, const float* dh, int64_t n, float* dgate, float* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float s = 1.0f / (1.0f + std::exp(-g));
    dup[i] = dh[i] * g * s;
    dgate[i] = dh[i] * up[i] * s * (1.0f + g * (1.0f - s));
  }
}

void cross_entropy(const float* logits, const int32_t* targets, int64_t n, int64_t vocab, float scale,
                   double* row_loss, float* dlogits, ThreadPool* pool, const uint8_t* mask) {
  run(pool, n, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      if (mask != nullptr && mask[t] == 0) {
        row_loss[t] = 0.0;
        if (dlogits != nullptr) std::fill_n(dlogits + t * vocab, vocab, 0.0f);
        continue;
      }
      const float* z = logits + t * vocab;
      const float max = *std::max_element(z, z + vocab);
      double sum = 0.0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(z[i] - max));
      const int32_t target = targets[t];
      row_loss[t] = std::log(sum) + max - z[target];
      if (dlogits == nullptr) continue;
      float* d = dlogits + t * vocab;
      for (int64_t i = 0; i < vocab; ++i)
        d[i] = static_cast<float>(std::exp(static_cast<double>(z[i] - max)) / sum) * scale;
      d[target] -= scale;
    }
  });
}

}  // namespace onellm::train_ops
