// The forward pass of one sequence with every activation the backward needs
// kept, and the backward pass in exact reverse order. Same structure as
// Model::forward (src/model/transformer.cpp), without the KV cache.
#include <array>
#include <cmath>

#include "base/error.h"
#include "train/train.h"
#include "train/train_ops.h"

namespace onellm {
namespace {

using namespace train_ops;

// One layer's tensors inside a parameter (T = const float) or gradient
// (T = float) buffer.
template <typename T>
struct LayerTensors {
  T *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
};

// Offsets of each layer's tensors in the parameter buffer, in the layout
// TrainModel builds (the same offsets index the gradient buffer).
struct Layout {
  size_t embd, out_norm, output;
  std::vector<std::array<size_t, 9>> layers;  // attn_norm, q, k, v, o, ffn_norm, gate, up, down

  explicit Layout(const TrainModel& m) {
    embd = m.tensor("token_embd.weight").offset;
    out_norm = m.tensor("output_norm.weight").offset;
    output = m.config().tied_output ? embd : m.tensor("output.weight").offset;
    static const char* kNames[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                    "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
    for (int64_t l = 0; l < m.config().n_layer; ++l) {
      std::array<size_t, 9> o{};
      for (int i = 0; i < 9; ++i)
        o[static_cast<size_t>(i)] = m.tensor("blk." + std::to_string(l) + "." + kNames[i] + ".weight").offset;
      layers.push_back(o);
    }
  }
  template <typename T>
  LayerTensors<T> layer(T* base, int64_t l) const {
    const auto& o = layers[static_cast<size_t>(l)];
    return {base + o[0], base + o[1], base + o[2], base + o[3], base + o[4],
            base + o[5], base + o[6], base + o[7], base + o[8]};
  }
};

struct LayerActs {
  std::vector<float> x_in, xn1, rstd1, q, k, v, probs, att, x_mid, xn2, rstd2, gate, up, h;
};

struct Activations {
  std::vector<LayerActs> layers;
  std::vector<float> x_out, xnf, rstdf, logits;
};

std::vector<float> zeros(int64_t n) { return std::vector<float>(static_cast<size_t>(n), 0.0f); }

void check_tokens(const ModelConfig& c, const int32_t* tokens, int64_t count) {
  for (int64_t t = 0; t < count; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
      throw Error("train: token id " + std::to_string(tokens[t]) + " at position " + std::to_string(t) +
                  " is out of range (vocabulary has " + std::to_string(c.n_vocab) + " tokens)");
}

void forward(const TrainModel& m, const Layout& lay, const int32_t* tokens, int64_t n, const RopeTable& rope,
             Activations& a, ThreadPool* pool) {
  const ModelConfig& c = m.config();
  if (n <= 0) throw Error("train: a sequence needs at least one input token");
  check_tokens(c, tokens, n);
  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), F = c.n_ff;
  const float* P = m.data();
  std::vector<float> x = zeros(n * D), proj = zeros(n * D);
  for (int64_t t = 0; t < n; ++t) std::copy_n(P + lay.embd + tokens[t] * D, D, x.data() + t * D);

  a.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerTensors<const float> W = lay.layer(P, l);
    LayerActs& A = a.layers[static_cast<size_t>(l)];
    A.x_in = x;
    A.xn1 = zeros(n * D);
    A.rstd1 = zeros(n);
    rms_norm_forward(x.data(), W.attn_norm, n, D, c.rms_eps, A.xn1.data(), A.rstd1.data());
    A.q = zeros(n * QD);
    A.k = zeros(n * KVD);
    A.v = zeros(n * KVD);
    linear_forward(W.wq, QD, D, A.xn1.data(), n, A.q.data(), pool);
    linear_forward(W.wk, KVD, D, A.xn1.data(), n, A.k.data(), pool);
    linear_forward(W.wv, KVD, D, A.xn1.data(), n, A.v.data(), pool);
    rope_apply(c, rope, A.q.data(), n, c.n_head, false);
    rope_apply(c, rope, A.k.data(), n, c.n_head_kv, false);
    A.probs = zeros(c.n_head * n * n);
    A.att = zeros(n * QD);
    attention_forward(c, A.q.data(), A.k.data(), A.v.data(), n, A.probs.data(), A.att.data(), pool);
    linear_forward(W.wo, D, QD, A.att.data(), n, proj.data(), pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];

    A.x_mid = x;
    A.xn2 = zeros(n * D);
    A.rstd2 = zeros(n);
    rms_norm_forward(x.data(), W.ffn_norm, n, D, c.rms_eps, A.xn2.data(), A.rstd2.data());
    A.gate = zeros(n * F);
    A.up = zeros(n * F);
    A.h = zeros(n * F);
    linear_forward(W.w_gate, F, D, A.xn2.data(), n, A.gate.data(), pool);
    linear_forward(W.w_up, F, D, A.xn2.data(), n, A.up.data(), pool);
    swiglu(A.gate.data(), A.up.data(), A.h.data(), n * F);
    linear_forward(W.w_down, D, F, A.h.data(), n, proj.data(), pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];
  }
  a.x_out = std::move(x);
  a.xnf = zeros(n * D);
  a.rstdf = zeros(n);
  rms_norm_forward(a.x_out.data(), P + lay.out_norm, n, D, c.rms_eps, a.xnf.data(), a.rstdf.data());
  a.logits = zeros(n * c.n_vocab);
  linear_forward(P + lay.output, c.n_vocab, D, a.xnf.data(), n, a.logits.data(), pool);
}

// dlogits: scale * d(loss)/d(logits), n x n_vocab. Adds into grads.
void backward(const TrainModel& m, const Layout& lay, const int32_t* tokens, int64_t n, const RopeTable& rope,
              const Activations& a, const float* dlogits, float* grads, ThreadPool* pool) {
  const ModelConfig& c = m.config();
  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), F = c.n_ff;
  const float* P = m.data();

  std::vector<float> dxn = zeros(n * D), dx = zeros(n * D);
  linear_backward_weight(a.xnf.data(), D, dlogits, c.n_vocab, n, grads + lay.output, pool);
  linear_backward_input(P + lay.output, c.n_vocab, D, dlogits, n, dxn.data(), pool);
  rms_norm_backward(a.x_out.data(), P + lay.out_norm, a.rstdf.data(), dxn.data(), n, D, dx.data(),
                    grads + lay.out_norm);

  std::vector<float> dh = zeros(n * F), dgate = zeros(n * F), dup = zeros(n * F);
  std::vector<float> datt = zeros(n * QD), dq = zeros(n * QD), dk = zeros(n * KVD), dv = zeros(n * KVD);
  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    const LayerTensors<const float> W = lay.layer(P, l);
    const LayerTensors<float> G = lay.layer(grads, l);
    const LayerActs& A = a.layers[static_cast<size_t>(l)];

    // x += w_down h  (dx is the gradient of the layer output)
    linear_backward_weight(A.h.data(), F, dx.data(), D, n, G.w_down, pool);
    std::fill(dh.begin(), dh.end(), 0.0f);
    linear_backward_input(W.w_down, D, F, dx.data(), n, dh.data(), pool);
    swiglu_backward(A.gate.data(), A.up.data(), dh.data(), n * F, dgate.data(), dup.data());
    linear_backward_weight(A.xn2.data(), D, dgate.data(), F, n, G.w_gate, pool);
    linear_backward_weight(A.xn2.data(), D, dup.data(), F, n, G.w_up, pool);
    std::fill(dxn.begin(), dxn.end(), 0.0f);
    linear_backward_input(W.w_gate, F, D, dgate.data(), n, dxn.data(), pool);
    linear_backward_input(W.w_up, F, D, dup.data(), n, dxn.data(), pool);
    rms_norm_backward(A.x_mid.data(), W.ffn_norm, A.rstd2.data(), dxn.data(), n, D, dx.data(),
                      G.ffn_norm);

    // x += wo att
    linear_backward_weight(A.att.data(), QD, dx.data(), D, n, G.wo, pool);
    std::fill(datt.begin(), datt.end(), 0.0f);
    linear_backward_input(W.wo, D, QD, dx.data(), n, datt.data(), pool);
    std::fill(dq.begin(), dq.end(), 0.0f);
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    attention_backward(c, A.q.data(), A.k.data(), A.v.data(), A.probs.data(), datt.data(), n, dq.data(), dk.data(),
                       dv.data(), pool);
    rope_apply(c, rope, dq.data(), n, c.n_head, true);
    rope_apply(c, rope, dk.data(), n, c.n_head_kv, true);
    linear_backward_weight(A.xn1.data(), D, dq.data(), QD, n, G.wq, pool);
    linear_backward_weight(A.xn1.data(), D, dk.data(), KVD, n, G.wk, pool);
    linear_backward_weight(A.xn1.data(), D, dv.data(), KVD, n, G.wv, pool);
    std::fill(dxn.begin(), dxn.end(), 0.0f);
    linear_backward_input(W.wq, QD, D, dq.data(), n, dxn.data(), pool);
    linear_backward_input(W.wk, KVD, D, dk.data(), n, dxn.data(), pool);
    linear_backward_input(W.wv, KVD, D, dv.data(), n, dxn.data(), pool);
    rms_norm_backward(A.x_in.data(), W.attn_norm, A.rstd1.data(), dxn.data(), n, D, dx.data(),
                      G.attn_norm);
  }
  float* dembd = grads + lay.embd;
  for (int64_t t = 0; t < n; ++t) {
    float* row = dembd + tokens[t] * D;
    for (int64_t i = 0; i < D; ++i) row[i] += dx[t * D + i];
  }
}

double sum_in_order(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

double forward_backward(const TrainModel& model, const int32_t* tokens, int64_t n, float* grads, float grad_scale,
                        ThreadPool* pool, const uint8_t* target_mask) {
  const ModelConfig& c = model.config();
  check_tokens(c, tokens, n + 1);
  const Layout lay(model);
  const RopeTable rope(c, model.rope_freqs(), n);
  Activations a;
  forward(model, lay, tokens, n, rope, a, pool);
  std::vector<double> row_loss(static_cast<size_t>(n));
  std::vector<float> dlogits(static_cast<size_t>(n * c.n_vocab));
  cross_entropy(a.logits.data(), tokens + 1, n, c.n_vocab, grad_scale, row_loss.data(), dlogits.data(), pool,
                target_mask);
  backward(model, lay, tokens, n, rope, a, dlogits.data(), grads, pool);
  return sum_in_order(row_loss);
}

void forward_logits(const TrainModel& model, const int32_t* tokens, int64_t n, float* logits, ThreadPool* pool) {
  const Layout lay(model);
  const RopeTable rope(model.config(), model.rope_freqs(), n);
  Activations a;
  forward(model, lay, tokens, n, rope, a, pool);
  std::copy(a.logits.begin(), a.logits.end(), logits);
}

double sequence_loss(const TrainModel& model, const int32_t* tokens, int64_t n, ThreadPool* pool,
                     const uint8_t* target_mask) {
  const ModelConfig& c = model.config();
  check_tokens(c, tokens, n + 1);
  std::vector<float> logits(static_cast<size_t>(n * c.n_vocab));
  forward_logits(model, tokens, n, logits.data(), pool);
  std::vector<double> row_loss(static_cast<size_t>(n));
  cross_entropy(logits.data(), tokens + 1, n, c.n_vocab, 1.0f, row_loss.data(), nullptr, pool, target_mask);
  return sum_in_order(row_loss);
}

}  // namespace onellm
