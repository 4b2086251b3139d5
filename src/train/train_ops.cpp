// Forward and backward of the blocks of a llama model. Plain loops that GCC
// vectorizes; the big products run on the thread pool, split so that each
// output element is written by one thread in one order.
#include "train/train_ops.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace onellm::train_ops {
namespace {

constexpr int64_t kTile = 4;  // rows sharing one pass over the other operand

void run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool != nullptr) pool->parallel_for(n, fn);
  else fn(0, n);
}

}  // namespace

void linear_forward(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
                    ThreadPool* pool) {
  // The inference matmul itself, so trained and served logits agree.
  matmul(MatrixView{TensorType::F32, w, rows, cols}, x, n, y, pool);
}

void linear_backward_input(const float* w, int64_t rows, int64_t cols, const float* dy, int64_t n, float* dx,
                           ThreadPool* pool) {
  run(pool, (n + kTile - 1) / kTile, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t t0 = tile * kTile, t1 = std::min(n, t0 + kTile);
      for (int64_t r = 0; r < rows; ++r) {
        const float* wr = w + r * cols;
        for (int64_t t = t0; t < t1; ++t) {
          const float a = dy[t * rows + r];
          float* d = dx + t * cols;
          for (int64_t c = 0; c < cols; ++c) d[c] += a * wr[c];
        }
      }
    }
  });
}

void linear_backward_weight(const float* x, int64_t cols, const float* dy, int64_t rows, int64_t n, float* dw,
                            ThreadPool* pool) {
  run(pool, (rows + kTile - 1) / kTile, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t r0 = tile * kTile, r1 = std::min(rows, r0 + kTile);
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = x + t * cols;
        for (int64_t r = r0; r < r1; ++r) {
          const float a = dy[t * rows + r];
          float* d = dw + r * cols;
          for (int64_t c = 0; c < cols; ++c) d[c] += a * xt[c];
        }
      }
    }
  });
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
    for (int64_t i = 0; i < d; ++i) {
      dw[i] += gt[i] * xt[i] * r;
      dot += static_cast<double>(gt[i] * w[i]) * xt[i];
    }
    const float k = static_cast<float>(dot / static_cast<double>(d)) * r * r * r;
    for (int64_t i = 0; i < d; ++i) dx[t * d + i] += r * gt[i] * w[i] - xt[i] * k;
  }
}

RopeTable::RopeTable(const ModelConfig& c, const std::vector<float>& freq_factors, int64_t n_pos) : half(c.n_rot / 2) {
  cos_sin.resize(static_cast<size_t>(n_pos * half * 2));
  const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.n_rot));
  for (int64_t pos = 0; pos < n_pos; ++pos) {
    float theta = static_cast<float>(pos);
    float* cs = cos_sin.data() + pos * half * 2;
    for (int64_t i = 0; i < half; ++i) {
      const float ff = freq_factors.empty() ? 1.0f : freq_factors[static_cast<size_t>(i)];
      const float angle = c.rope_freq_scale * (theta / ff);
      cs[2 * i] = std::cos(angle);
      cs[2 * i + 1] = std::sin(angle);
      theta *= theta_scale;
    }
  }
}

void rope_apply(const ModelConfig& c, const RopeTable& table, float* x, int64_t n, int64_t n_heads, bool inverse) {
  const int64_t half = table.half;
  const float sign = inverse ? -1.0f : 1.0f;
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = table.cos_sin.data() + t * half * 2;
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

void attention_forward(const ModelConfig& c, const float* q, const float* k, const float* v, int64_t n, float* probs,
                       float* out, ThreadPool* pool) {
  const int64_t HD = c.head_dim, QD = c.q_dim(), KVD = c.kv_dim(), group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  // One (token, head) pair per work item, the order Model::forward uses.
  run(pool, n * c.n_head, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / c.n_head, h = item % c.n_head, kvh = h / group;
      const float* qh = q + t * QD + h * HD;
      float* p = probs + (h * n + t) * n;
      for (int64_t j = 0; j <= t; ++j) {
        const float* kj = k + j * KVD + kvh * HD;
        float s = 0.0f;
        for (int64_t d = 0; d < HD; ++d) s += qh[d] * kj[d];
        p[j] = s * scale;
      }
      softmax_inplace(p, t + 1);
      float* o = out + t * QD + h * HD;
      std::fill_n(o, HD, 0.0f);
      for (int64_t j = 0; j <= t; ++j) {
        const float* vj = v + j * KVD + kvh * HD;
        for (int64_t d = 0; d < HD; ++d) o[d] += p[j] * vj[d];
      }
    }
  });
}

void attention_backward(const ModelConfig& c, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, int64_t n, float* dq, float* dk, float* dv, ThreadPool* pool) {
  const int64_t HD = c.head_dim, QD = c.q_dim(), KVD = c.kv_dim(), group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  // One KV head per work item: it owns its dk/dv and its query heads' dq.
  run(pool, c.n_head_kv, [&](int64_t begin, int64_t end) {
    std::vector<float> dp(static_cast<size_t>(n));
    for (int64_t kvh = begin; kvh < end; ++kvh) {
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t t = 0; t < n; ++t) {
          const float* p = probs + (h * n + t) * n;
          const float* go = dout + t * QD + h * HD;
          double weighted = 0.0;  // sum_j p_j dp_j
          for (int64_t j = 0; j <= t; ++j) {
            const float* vj = v + j * KVD + kvh * HD;
            float s = 0.0f;
            for (int64_t d = 0; d < HD; ++d) s += go[d] * vj[d];
            dp[j] = s;
            weighted += static_cast<double>(p[j]) * s;
            float* dvj = dv + j * KVD + kvh * HD;
            for (int64_t d = 0; d < HD; ++d) dvj[d] += p[j] * go[d];
          }
          const float w = static_cast<float>(weighted);
          const float* qt = q + t * QD + h * HD;
          float* dqt = dq + t * QD + h * HD;
          for (int64_t j = 0; j <= t; ++j) {
            const float ds = p[j] * (dp[j] - w) * scale;
            const float* kj = k + j * KVD + kvh * HD;
            float* dkj = dk + j * KVD + kvh * HD;
            for (int64_t d = 0; d < HD; ++d) {
              dqt[d] += ds * kj[d];
              dkj[d] += ds * qt[d];
            }
          }
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
                   double* row_loss, float* dlogits, ThreadPool* pool) {
  run(pool, n, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
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
