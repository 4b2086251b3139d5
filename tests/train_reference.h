// An independent double-precision forward of a TrainModel (llama2.c style,
// one token at a time; llama, and qwen2's q/k/v biases, qwen3's per-head q/k
// norms, their NeoX rotary pairs), for finite-difference gradient checks.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "train/train.h"

namespace onellm::test {

using Vec = std::vector<double>;

// Reads tensors by name from a double copy of a TrainModel's buffer.
struct RefParams {
  const TrainModel* model;
  const Vec* values;
  const double* operator()(const std::string& name) const { return values->data() + model->tensor(name).offset; }
};

// y = W x for W rows x cols.
inline Vec matvec(const double* w, int64_t rows, int64_t cols, const Vec& x) {
  Vec y(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r] += w[r * cols + c] * x[c];
  return y;
}

inline Vec rmsnorm(const Vec& x, const double* w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

// Rotary pairs of the first n_rot dims: llama's (2i, 2i+1), or the NeoX
// layout's (i, i + n_rot/2) that qwen2 and qwen3 use.
inline void rope(const ModelConfig& c, const std::vector<float>& factors, double* head, int64_t pos) {
  const bool neox = c.arch != "llama";
  for (int64_t i = 0; i < c.n_rot / 2; ++i) {
    double freq = std::pow(static_cast<double>(c.rope_base), -2.0 * static_cast<double>(i) / static_cast<double>(c.n_rot));
    if (!factors.empty()) freq /= factors[static_cast<size_t>(i)];
    double scale = c.rope_freq_scale;
    if (c.yarn) {  // YaRN: pairs below yarn_low keep their frequency, a linear ramp to yarn_high
      const double y = (static_cast<double>(i) - c.yarn_low) / std::max(0.001, double{c.yarn_high} - c.yarn_low);
      const double keep = 1.0 - std::clamp(y, 0.0, 1.0);
      scale = scale * (1.0 - keep) + keep;
    }
    const double angle = static_cast<double>(pos) * freq * scale, m = c.rope_mscale;
    double& x0 = head[neox ? i : 2 * i];
    double& x1 = head[neox ? i + c.n_rot / 2 : 2 * i + 1];
    const double a = x0, b = x1;
    x0 = m * (a * std::cos(angle) - b * std::sin(angle));
    x1 = m * (a * std::sin(angle) + b * std::cos(angle));
  }
}

// qwen2's bias b (n values) added to y, and qwen3's RMSNorm of each head.
inline void add_to(Vec& y, const double* b) {
  for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
}
inline void norm_heads(Vec& y, int64_t heads, int64_t hd, const double* w, double eps) {
  for (int64_t h = 0; h < heads; ++h) {
    const Vec normed = rmsnorm(Vec(y.begin() + h * hd, y.begin() + (h + 1) * hd), w, eps);
    std::copy(normed.begin(), normed.end(), y.begin() + h * hd);
  }
}

// Summed next-token loss of tokens[0..n] in double precision.
inline double reference_loss(const TrainModel& m, const Vec& p, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = m.config();
  const RefParams P{&m, &p};
  const int64_t n = static_cast<int64_t>(tokens.size()) - 1, D = c.n_embd, HD = c.head_dim;
  std::vector<Vec> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) x[t].assign(P("token_embd.weight") + tokens[t] * D, P("token_embd.weight") + (tokens[t] + 1) * D);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    std::vector<Vec> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      Vec xn = rmsnorm(x[t], P(b + "attn_norm.weight"), c.rms_eps);
      q[t] = matvec(P(b + "attn_q.weight"), c.q_dim(), D, xn);
      k[t] = matvec(P(b + "attn_k.weight"), c.kv_dim(), D, xn);
      v[t] = matvec(P(b + "attn_v.weight"), c.kv_dim(), D, xn);
      if (c.qkv_bias) {
        add_to(q[t], P(b + "attn_q.bias"));
        add_to(k[t], P(b + "attn_k.bias"));
        add_to(v[t], P(b + "attn_v.bias"));
      }
      if (c.qk_norm) {
        norm_heads(q[t], c.n_head, HD, P(b + "attn_q_norm.weight"), c.rms_eps);
        norm_heads(k[t], c.n_head_kv, HD, P(b + "attn_k_norm.weight"), c.rms_eps);
      }
      for (int64_t h = 0; h < c.n_head; ++h) rope(c, m.rope_freqs(), q[t].data() + h * HD, t);
      for (int64_t h = 0; h < c.n_head_kv; ++h) rope(c, m.rope_freqs(), k[t].data() + h * HD, t);
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec att(static_cast<size_t>(c.q_dim()), 0.0);
      for (int64_t h = 0; h < c.n_head; ++h) {
        const int64_t kvh = h / (c.n_head / c.n_head_kv);
        Vec s(static_cast<size_t>(t + 1));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < HD; ++i) d += q[t][h * HD + i] * k[j][kvh * HD + i];
          s[j] = d / std::sqrt(static_cast<double>(HD));
          mx = std::max(mx, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < HD; ++i) att[h * HD + i] += s[j] / sum * v[j][kvh * HD + i];
      }
      Vec o = matvec(P(b + "attn_output.weight"), D, c.q_dim(), att);
      for (int64_t i = 0; i < D; ++i) x[t][i] += o[i];
      Vec xn = rmsnorm(x[t], P(b + "ffn_norm.weight"), c.rms_eps);
      Vec g = matvec(P(b + "ffn_gate.weight"), c.n_ff, D, xn), u = matvec(P(b + "ffn_up.weight"), c.n_ff, D, xn);
      for (int64_t i = 0; i < c.n_ff; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      Vec f = matvec(P(b + "ffn_down.weight"), D, c.n_ff, g);
      for (int64_t i = 0; i < D; ++i) x[t][i] += f[i];
    }
  }
  const double* out = c.tied_output ? P("token_embd.weight") : P("output.weight");
  double loss = 0;
  for (int64_t t = 0; t < n; ++t) {
    Vec z = matvec(out, c.n_vocab, D, rmsnorm(x[t], P("output_norm.weight"), c.rms_eps));
    double mx = *std::max_element(z.begin(), z.end()), sum = 0;
    for (double e : z) sum += std::exp(e - mx);
    loss += std::log(sum) + mx - z[tokens[t + 1]];
  }
  return loss;
}

}  // namespace onellm::test
