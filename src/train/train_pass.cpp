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

// Sizes a buffer kept between calls; its contents are whatever the last call
// left (every user below overwrites or clears what it reads).
float* sized(std::vector<float>& v, int64_t n) {
  v.resize(static_cast<size_t>(n));
  return v.data();
}
float* zeroed(std::vector<float>& v, int64_t n) {
  v.assign(static_cast<size_t>(n), 0.0f);
  return v.data();
}

// One layer's tensors inside a parameter (T = const float) or gradient
// (T = float) buffer; the q/k/v biases (qwen2) and the per-head q/k norms
// (qwen3) are null where the model has none.
template <typename T>
struct LayerTensors {
  T *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
  T *bq, *bk, *bv, *q_norm, *k_norm;
};

// Each layer's tensors, as indices into the model's tensors(), in
// LayerTensors' order; the same offsets index the parameter and gradient
// buffers. A mapped matrix (TrainModel::map_gguf) is read through its
// MatrixView and has no place in either buffer.
struct Layout {
  static constexpr int kTensors = 14;  // every model has the first kMatrices: its norms and matrices
  static constexpr size_t kMatrices = 9;
  static constexpr size_t kAbsent = static_cast<size_t>(-1);
  const TrainModel& model;
  size_t embd, out_norm, output;
  std::vector<std::array<size_t, kTensors>> layers;

  explicit Layout(const TrainModel& m) : model(m) {
    const ModelConfig& c = m.config();
    auto index = [&](const std::string& name) { return static_cast<size_t>(&m.tensor(name) - m.tensors().data()); };
    embd = index("token_embd.weight");
    out_norm = index("output_norm.weight");
    output = c.tied_output ? embd : index("output.weight");
    static const char* kNames[kTensors] = {
        "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
        "ffn_norm.weight",  "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", "attn_q.bias",
        "attn_k.bias",      "attn_v.bias",   "attn_q_norm.weight", "attn_k_norm.weight"};
    for (int64_t l = 0; l < c.n_layer; ++l) {
      std::array<size_t, kTensors> o{};
      for (int i = 0; i < kTensors; ++i) {
        const bool present = i < static_cast<int>(kMatrices) || (i < 12 ? c.qkv_bias : c.qk_norm);
        o[static_cast<size_t>(i)] = present ? index("blk." + std::to_string(l) + "." + kNames[i]) : kAbsent;
      }
      layers.push_back(o);
    }
  }
  // Tensor `index` inside a parameter or gradient buffer (null: mapped).
  template <typename T>
  T* in(T* buffer, size_t index) const {
    const ParamTensor& t = model.tensors()[index];
    return t.mapped != nullptr ? nullptr : buffer + t.offset;
  }
  MatrixView matrix(size_t index) const { return model.matrix(model.tensors()[index]); }
  // Layer l's matrices in LayerTensors' first kMatrices slots (the norms'
  // slots stay empty).
  std::array<MatrixView, kMatrices> matrices(int64_t l) const {
    std::array<MatrixView, kMatrices> out{};
    for (size_t i : {1, 2, 3, 4, 6, 7, 8}) out[i] = matrix(layers[static_cast<size_t>(l)][i]);
    return out;
  }
  // The adapters on layer l's matrices (LayerTensors' first kMatrices
  // slots; null where none), from sites keyed by the adapted matrix's index.
  std::array<const LoraSite*, kMatrices> adapters(const AdapterSites* sites, int64_t l) const {
    std::array<const LoraSite*, kMatrices> out{};
    if (sites == nullptr) return out;
    for (size_t i = 0; i < kMatrices; ++i) {
      auto it = sites->find(layers[static_cast<size_t>(l)][i]);
      if (it != sites->end()) out[i] = &it->second;
    }
    return out;
  }
  // Layer l's tensors in buffer (null where absent or mapped).
  template <typename T>
  LayerTensors<T> layer(T* buffer, int64_t l) const {
    const auto& o = layers[static_cast<size_t>(l)];
    auto at = [&](int i) {
      const size_t index = o[static_cast<size_t>(i)];
      return index == kAbsent ? nullptr : in(buffer, index);
    };
    return {at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10), at(11), at(12), at(13)};
  }
};

struct LayerActs {
  std::vector<float> x_in, xn1, rstd1, q, k, v, probs, att, x_mid, xn2, rstd2, gate, up, h;
  std::vector<float> q_raw, k_raw, q_rstd, k_rstd;  // before the q/k norms (qwen3)
};

// rows x n of y += bias (n) in each row.
void add_bias(float* y, const float* bias, int64_t rows, int64_t n) {
  if (bias == nullptr) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) y[r * n + i] += bias[i];
}

// d(bias) += the column sums of dy (rows x n), rows in order.
void bias_backward(const float* dy, int64_t rows, int64_t n, float* dbias) {
  if (dbias == nullptr) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) dbias[i] += dy[r * n + i];
}

// The per-head RMSNorm of qwen3's q and k (x: rows x heads x hd, in place),
// keeping the input and 1/rms of every head for the backward.
void head_norm_forward(const float* w, int64_t rows, int64_t heads, int64_t hd, float eps, std::vector<float>& x,
                       std::vector<float>& x_raw, std::vector<float>& rstd) {
  x_raw = x;
  rms_norm_forward(x_raw.data(), w, rows * heads, hd, eps, x.data(), sized(rstd, rows * heads));
}

// dx holds d(loss)/d(normed heads); on return d(loss)/d(x_raw). dw += the
// norm weight's gradient.
void head_norm_backward(const float* w, const std::vector<float>& x_raw, const std::vector<float>& rstd,
                        int64_t rows, int64_t heads, int64_t hd, std::vector<float>& dx, std::vector<float>& scratch,
                        float* dw) {
  zeroed(scratch, rows * heads * hd);
  rms_norm_backward(x_raw.data(), w, rstd.data(), dx.data(), rows * heads, hd, scratch.data(), dw);
  dx.swap(scratch);
}

struct Activations {
  std::vector<LayerActs> layers;
  std::vector<float> x_out, proj, xnf, rstdf;
};

// The buffers of one forward and backward, kept per thread between calls: a
// fresh allocation per window cost page faults and zeroing that took ~40% of
// the training time.
struct Workspace {
  Activations acts;
  std::vector<float> head_in, logits, dlogits, dhead_in, dxn, dx, dh, dgate, dup, datt, dq, dk, dv, dnorm, lora;
  std::vector<int32_t> head_targets;
  std::vector<double> row_loss;
};
Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

void check_tokens(const ModelConfig& c, const int32_t* tokens, int64_t count) {
  for (int64_t t = 0; t < count; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
      throw Error("train: token id " + std::to_string(tokens[t]) + " at position " + std::to_string(t) +
                  " is out of range (vocabulary has " + std::to_string(c.n_vocab) + " tokens)");
}

// Where the documents of tokens[0..n) start (after each document_end token;
// one document if document_end < 0) and each token's position in its own.
struct Documents {
  DocumentStarts starts;
  std::vector<int64_t> positions;
  Documents(const int32_t* tokens, int64_t n, int32_t document_end) : starts{0} {
    for (int64_t t = 1; t < n; ++t)
      if (document_end >= 0 && tokens[t - 1] == document_end) starts.push_back(t);
    positions.resize(static_cast<size_t>(n));
    for (size_t d = 0; d < starts.size(); ++d) {
      const int64_t end = d + 1 < starts.size() ? starts[d + 1] : n;
      for (int64_t t = starts[d]; t < end; ++t) positions[static_cast<size_t>(t)] = t - starts[d];
    }
  }
};

// y = W x (+ its adapter's scale B A x).
void project(const MatrixView& w, const LoraSite* adapter, const float* x, int64_t n, float* y,
             std::vector<float>& scratch, ThreadPool* pool) {
  linear_forward(w, x, n, y, pool);
  if (adapter != nullptr) lora_forward(*adapter, w.rows, w.cols, x, n, y, scratch, pool);
}

// The backward of project: dw += dy^T x unless W is frozen (dw null), the
// adapter's gradients, and dx += d(loss)/dx.
void project_backward(const MatrixView& w, float* dw, const LoraSite* adapter, const float* x, const float* dy,
                      int64_t n, float* dx, std::vector<float>& scratch, ThreadPool* pool) {
  if (dw != nullptr) linear_backward_weight(x, w.cols, dy, w.rows, n, dw, pool);
  linear_backward_input(w, dy, n, dx, pool);
  if (adapter != nullptr) lora_backward(*adapter, w.rows, w.cols, x, dy, n, dx, scratch, pool);
}

void forward(const TrainModel& m, const Layout& lay, const int32_t* tokens, int64_t n, const RopeTable& rope,
             const Documents& docs, const AdapterSites* sites, Activations& a, ThreadPool* pool) {
  const ModelConfig& c = m.config();
  if (n <= 0) throw Error("train: a sequence needs at least one input token");
  check_tokens(c, tokens, n);
  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), F = c.n_ff;
  const float* P = m.data();
  std::vector<float>& x = a.x_out;  // the residual stream, ends as the last layer's output
  std::vector<float>& proj = a.proj;
  sized(x, n * D);
  sized(proj, n * D);
  const MatrixView embd = lay.matrix(lay.embd);
  for (int64_t t = 0; t < n; ++t) matrix_row(embd, tokens[t], x.data() + t * D);

  a.layers.resize(static_cast<size_t>(c.n_layer));
  std::vector<float>& scratch = workspace().lora;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerTensors<const float> W = lay.layer(P, l);
    const std::array<MatrixView, Layout::kMatrices> M = lay.matrices(l);
    const std::array<const LoraSite*, Layout::kMatrices> ad = lay.adapters(sites, l);
    LayerActs& A = a.layers[static_cast<size_t>(l)];
    A.x_in = x;
    rms_norm_forward(x.data(), W.attn_norm, n, D, c.rms_eps, sized(A.xn1, n * D), sized(A.rstd1, n));
    project(M[1], ad[1], A.xn1.data(), n, sized(A.q, n * QD), scratch, pool);
    project(M[2], ad[2], A.xn1.data(), n, sized(A.k, n * KVD), scratch, pool);
    project(M[3], ad[3], A.xn1.data(), n, sized(A.v, n * KVD), scratch, pool);
    add_bias(A.q.data(), W.bq, n, QD);
    add_bias(A.k.data(), W.bk, n, KVD);
    add_bias(A.v.data(), W.bv, n, KVD);
    if (W.q_norm != nullptr) {
      head_norm_forward(W.q_norm, n, c.n_head, c.head_dim, c.rms_eps, A.q, A.q_raw, A.q_rstd);
      head_norm_forward(W.k_norm, n, c.n_head_kv, c.head_dim, c.rms_eps, A.k, A.k_raw, A.k_rstd);
    }
    rope_apply(c, rope, A.q.data(), n, c.n_head, false, docs.positions.data());
    rope_apply(c, rope, A.k.data(), n, c.n_head_kv, false, docs.positions.data());
    attention_forward(c, A.q.data(), A.k.data(), A.v.data(), n, docs.starts, sized(A.probs, c.n_head * n * n),
                      sized(A.att, n * QD), pool);
    project(M[4], ad[4], A.att.data(), n, proj.data(), scratch, pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];

    A.x_mid = x;
    rms_norm_forward(x.data(), W.ffn_norm, n, D, c.rms_eps, sized(A.xn2, n * D), sized(A.rstd2, n));
    project(M[6], ad[6], A.xn2.data(), n, sized(A.gate, n * F), scratch, pool);
    project(M[7], ad[7], A.xn2.data(), n, sized(A.up, n * F), scratch, pool);
    swiglu(A.gate.data(), A.up.data(), sized(A.h, n * F), n * F);
    project(M[8], ad[8], A.h.data(), n, proj.data(), scratch, pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];
  }
  rms_norm_forward(a.x_out.data(), lay.in(P, lay.out_norm), n, D, c.rms_eps, sized(a.xnf, n * D),
                   sized(a.rstdf, n));
}

// w.dxn holds d(loss)/d(final norm output), from the output projection in
// forward_backward. Adds into grads, or with grads null (a frozen base) only
// into the adapters of sites.
void backward(const TrainModel& m, const Layout& lay, const int32_t* tokens, int64_t n, const RopeTable& rope,
              const Documents& docs, const AdapterSites* sites, const Activations& a, float* grads, Workspace& w,
              ThreadPool* pool) {
  const ModelConfig& c = m.config();
  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), F = c.n_ff;
  const float* P = m.data();

  std::vector<float>&dxn = w.dxn, &dx = w.dx, &dh = w.dh, &dgate = w.dgate, &dup = w.dup, &datt = w.datt,
  &dq = w.dq, &dk = w.dk, &dv = w.dv;
  zeroed(dx, n * D);
  rms_norm_backward(a.x_out.data(), lay.in(P, lay.out_norm), a.rstdf.data(), dxn.data(), n, D, dx.data(),
                    grads != nullptr ? lay.in(grads, lay.out_norm) : nullptr);

  sized(dh, n * F);
  sized(dgate, n * F);
  sized(dup, n * F);
  sized(datt, n * QD);
  sized(dq, n * QD);
  sized(dk, n * KVD);
  sized(dv, n * KVD);
  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    const LayerTensors<const float> W = lay.layer(P, l);
    const LayerTensors<float> G = grads != nullptr ? lay.layer(grads, l) : LayerTensors<float>{};
    const std::array<MatrixView, Layout::kMatrices> M = lay.matrices(l);
    const std::array<const LoraSite*, Layout::kMatrices> ad = lay.adapters(sites, l);
    const LayerActs& A = a.layers[static_cast<size_t>(l)];

    // x += w_down h  (dx is the gradient of the layer output)
    std::fill(dh.begin(), dh.end(), 0.0f);
    project_backward(M[8], G.w_down, ad[8], A.h.data(), dx.data(), n, dh.data(), w.lora, pool);
    swiglu_backward(A.gate.data(), A.up.data(), dh.data(), n * F, dgate.data(), dup.data());
    std::fill(dxn.begin(), dxn.end(), 0.0f);
    project_backward(M[6], G.w_gate, ad[6], A.xn2.data(), dgate.data(), n, dxn.data(), w.lora, pool);
    project_backward(M[7], G.w_up, ad[7], A.xn2.data(), dup.data(), n, dxn.data(), w.lora, pool);
    rms_norm_backward(A.x_mid.data(), W.ffn_norm, A.rstd2.data(), dxn.data(), n, D, dx.data(),
                      G.ffn_norm);

    // x += wo att
    std::fill(datt.begin(), datt.end(), 0.0f);
    project_backward(M[4], G.wo, ad[4], A.att.data(), dx.data(), n, datt.data(), w.lora, pool);
    std::fill(dq.begin(), dq.end(), 0.0f);
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    attention_backward(c, A.q.data(), A.k.data(), A.v.data(), A.probs.data(), datt.data(), n, docs.starts,
                       dq.data(), dk.data(), dv.data(), pool);
    rope_apply(c, rope, dq.data(), n, c.n_head, true, docs.positions.data());
    rope_apply(c, rope, dk.data(), n, c.n_head_kv, true, docs.positions.data());
    if (W.q_norm != nullptr) {
      head_norm_backward(W.q_norm, A.q_raw, A.q_rstd, n, c.n_head, c.head_dim, dq, w.dnorm, G.q_norm);
      head_norm_backward(W.k_norm, A.k_raw, A.k_rstd, n, c.n_head_kv, c.head_dim, dk, w.dnorm, G.k_norm);
    }
    bias_backward(dq.data(), n, QD, G.bq);
    bias_backward(dk.data(), n, KVD, G.bk);
    bias_backward(dv.data(), n, KVD, G.bv);
    std::fill(dxn.begin(), dxn.end(), 0.0f);
    project_backward(M[1], G.wq, ad[1], A.xn1.data(), dq.data(), n, dxn.data(), w.lora, pool);
    project_backward(M[2], G.wk, ad[2], A.xn1.data(), dk.data(), n, dxn.data(), w.lora, pool);
    project_backward(M[3], G.wv, ad[3], A.xn1.data(), dv.data(), n, dxn.data(), w.lora, pool);
    rms_norm_backward(A.x_in.data(), W.attn_norm, A.rstd1.data(), dxn.data(), n, D, dx.data(),
                      G.attn_norm);
  }
  if (grads == nullptr) return;
  float* dembd = lay.in(grads, lay.embd);
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

// forward_backward, and with sites and grads null its frozen-base form
// (adapter_forward_backward).
double pass(const TrainModel& model, const AdapterSites* sites, const int32_t* tokens, int64_t n, float* grads,
            float grad_scale, ThreadPool* pool, const uint8_t* target_mask, int32_t document_end) {
  const ModelConfig& c = model.config();
  check_tokens(c, tokens, n + 1);
  const Layout lay(model);
  const RopeTable rope(c, model.rope_freqs(), n);
  const Documents docs(tokens, n, document_end);
  Workspace& w = workspace();
  Activations& a = w.acts;
  forward(model, lay, tokens, n, rope, docs, sites, a, pool);

  // The output projection runs only on the rows whose target counts (a third
  // of them with loss on replies): the others have no loss and no gradient.
  const int64_t D = c.n_embd, V = c.n_vocab;
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < n; ++t)
    if (target_mask == nullptr || target_mask[t] != 0) rows.push_back(t);
  const auto k = static_cast<int64_t>(rows.size());
  float* head_in = sized(w.head_in, k * D);
  w.head_targets.resize(rows.size());
  for (int64_t r = 0; r < k; ++r) {
    std::copy_n(a.xnf.data() + rows[static_cast<size_t>(r)] * D, D, head_in + r * D);
    w.head_targets[static_cast<size_t>(r)] = tokens[rows[static_cast<size_t>(r)] + 1];
  }
  w.row_loss.resize(rows.size());
  float* dhead_in = zeroed(w.dhead_in, k * D);
  if (k > 0) {
    const MatrixView output = lay.matrix(lay.output);
    linear_forward(output, head_in, k, sized(w.logits, k * V), pool);
    cross_entropy(w.logits.data(), w.head_targets.data(), k, V, grad_scale, w.row_loss.data(),
                  sized(w.dlogits, k * V), pool);
    if (grads != nullptr) linear_backward_weight(head_in, D, w.dlogits.data(), V, k, lay.in(grads, lay.output), pool);
    linear_backward_input(output, w.dlogits.data(), k, dhead_in, pool);
  }
  float* dxn = zeroed(w.dxn, n * D);
  for (int64_t r = 0; r < k; ++r) std::copy_n(dhead_in + r * D, D, dxn + rows[static_cast<size_t>(r)] * D);

  backward(model, lay, tokens, n, rope, docs, sites, a, grads, w, pool);
  return sum_in_order(w.row_loss);
}

}  // namespace

double forward_backward(const TrainModel& model, const int32_t* tokens, int64_t n, float* grads, float grad_scale,
                        ThreadPool* pool, const uint8_t* target_mask, int32_t document_end) {
  return pass(model, nullptr, tokens, n, grads, grad_scale, pool, target_mask, document_end);
}

double train_ops::adapter_forward_backward(const TrainModel& base, const AdapterSites& sites, const int32_t* tokens,
                                           int64_t n, float grad_scale, ThreadPool* pool, const uint8_t* target_mask,
                                           int32_t document_end) {
  return pass(base, &sites, tokens, n, nullptr, grad_scale, pool, target_mask, document_end);
}

namespace {

void logits_with(const TrainModel& model, const AdapterSites* sites, const int32_t* tokens, int64_t n, float* logits,
                 ThreadPool* pool, int32_t document_end) {
  const Layout lay(model);
  const RopeTable rope(model.config(), model.rope_freqs(), n);
  const Documents docs(tokens, n, document_end);
  Activations& a = workspace().acts;
  forward(model, lay, tokens, n, rope, docs, sites, a, pool);
  linear_forward(lay.matrix(lay.output), a.xnf.data(), n, logits, pool);
}

}  // namespace

void forward_logits(const TrainModel& model, const int32_t* tokens, int64_t n, float* logits, ThreadPool* pool,
                    int32_t document_end) {
  logits_with(model, nullptr, tokens, n, logits, pool, document_end);
}

double train_ops::adapted_sequence_loss(const TrainModel& model, const AdapterSites* sites, const int32_t* tokens,
                                        int64_t n, ThreadPool* pool, const uint8_t* target_mask,
                                        int32_t document_end) {
  const ModelConfig& c = model.config();
  check_tokens(c, tokens, n + 1);
  std::vector<float> logits(static_cast<size_t>(n * c.n_vocab));
  logits_with(model, sites, tokens, n, logits.data(), pool, document_end);
  std::vector<double> row_loss(static_cast<size_t>(n));
  cross_entropy(logits.data(), tokens + 1, n, c.n_vocab, 1.0f, row_loss.data(), nullptr, pool, target_mask);
  return sum_in_order(row_loss);
}

double sequence_loss(const TrainModel& model, const int32_t* tokens, int64_t n, ThreadPool* pool,
                     const uint8_t* target_mask, int32_t document_end) {
  return train_ops::adapted_sequence_loss(model, nullptr, tokens, n, pool, target_mask, document_end);
}

}  // namespace onellm
