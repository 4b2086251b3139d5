// Model::Pass::State, the private state of a forward pass: shared by the
// files that implement the pass (transformer.cpp: the layers and the output
// head; pass_attention.cpp: attention over the KV cache). Not a public header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "kernels/kernels.h"
#include "model/model.h"

namespace onellm {

// A pass's activations, recycled between passes (transformer.cpp). Every
// buffer is fully written before it is read.
struct ActivationBuffers {
  // No buffer of its own for a projection's output (O, FFN down): it goes to
  // xn's rows, which the projection's input no longer needs (the next
  // norm_rows writes them again). 1.75 MiB at 512 rows of Qwen2.5-0.5B.
  std::vector<float> x, xn, q, k, v, att_out, gate, up;
  std::vector<float> logits;  // the output head's rows of a pass of several segments
  void swap(ActivationBuffers& o) {
    x.swap(o.x), xn.swap(o.xn), q.swap(o.q), k.swap(o.k), v.swap(o.v);
    att_out.swap(o.att_out), gate.swap(o.gate), up.swap(o.up);
    logits.swap(o.logits);
  }
};

// Everything a pass carries from one layer to the next: the rows of all
// segments concatenated (every matmul runs once over them all, so B decoding
// sequences read the weights once instead of B times) and the scratch.
struct Model::Pass::State {
  const Model& model;
  std::vector<ForwardSegment> segments;
  ThreadPool* pool;
  MathMode mode;
  int64_t n = 0;  // rows
  std::vector<int64_t> row0, pos0;     // per segment: first row, first position
  std::vector<int64_t> seg_of, pos_of;  // per row: segment, position in its cache
  ActivationBuffers buffers;  // recycled between passes
  std::vector<float>&x = buffers.x, &xn = buffers.xn, &q = buffers.q, &k = buffers.k, &v = buffers.v,
                     &att_out = buffers.att_out, &gate = buffers.gate, &up = buffers.up;
  // Per row, the RoPE cos/sin at its position (n_rot floats): the same for
  // every layer and for Q and K, so computed once per pass (their cos/sin
  // calls were ~1 % of a decode step).
  std::vector<float> rope_angles;  // cos and sin per row (rope_cos_sin)
  std::mutex attention_mu;  // merges the attention-tracking partial sums
  int64_t next_step = 0;

  State(const Model& m, const ForwardSegment* segs, int64_t n_segs, ThreadPool* p, MathMode md);
  // Matrices that read the same rows (Q/K/V, gate/up): one call in fast mode.
  void matmul_group(const MatrixView* ws, float* const* ys, int count, const float* in, int64_t rows) {
    if (mode == MathMode::kFast) return matmul_fast_group(ws, ys, count, in, rows, pool);
    for (int i = 0; i < count; ++i) matmul(ws[i], in, rows, ys[i], pool, mode);
  }
  // The FFN takes the pass's rows in even chunks of at most
  // matmul_rows_to_amortize(): its gate and up activations (2 x n_ff floats
  // a row) are a prefill's largest buffers, 2 x 17.5 MiB at 512 rows of
  // Qwen2.5-1.5B, and more rows a call would not run faster.
  int64_t ffn_rows = 0;
  void ffn(int64_t l, int64_t first, int64_t rows);
  ~State();  // gives the buffers back for the next pass
  const LoraWeights* lora_of(size_t s) const {
    return segments[s].lora != nullptr ? segments[s].lora : model.lora_.get();
  }
  // out += scale * B (A in) on the rows of every segment whose adapter
  // adapts layer l's matrix `kind`; neighbouring segments with the same
  // adapter take one product. in and out hold rows [first, first + count)
  // of the pass (all of them by default).
  void add_lora(int64_t l, size_t kind, const float* in, float* out, int64_t first = 0, int64_t count = -1) {
    if (count < 0) count = n - first;
    for (size_t s0 = 0, s1; s0 < segments.size(); s0 = s1) {
      const LoraWeights* lora = lora_of(s0);
      for (s1 = s0 + 1; s1 < segments.size() && lora_of(s1) == lora;) ++s1;
      const LoraWeights::Pair* p = lora != nullptr ? lora->find(l, kind) : nullptr;
      const int64_t r0 = std::max(row0[s0], first), r1 = std::min(row0[s1], first + count);
      if (p == nullptr || r0 >= r1) continue;
      const int64_t rows = r1 - r0;
      lora_mid.resize(static_cast<size_t>(rows * p->a.rows));
      lora_delta.resize(static_cast<size_t>(rows * p->b.rows));
      matmul(p->a, in + (r0 - first) * p->a.cols, rows, lora_mid.data(), pool, mode);
      matmul(p->b, lora_mid.data(), rows, lora_delta.data(), pool, mode);
      const float scale = lora->scale();
      float* o = out + (r0 - first) * p->b.rows;
      for (size_t i = 0; i < lora_delta.size(); ++i) o[i] += scale * lora_delta[i];
    }
  }
  std::vector<float> lora_mid, lora_delta;  // A x and B (A x), kept for the pass's 7 x n_layer calls
  // fn(t) for every row t; a prompt chunk's rows on the pool (RMSNorm,
  // QK-norm and RoPE ran on one thread: ~2 % of a 512-token prefill).
  template <typename Fn>
  void for_each_row(const Fn& fn) {
    constexpr int64_t kParallelRows = 8;
    if (pool == nullptr || n < kParallelRows) {
      for (int64_t t = 0; t < n; ++t) fn(t);
      return;
    }
    pool->parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) fn(t);
    });
  }
  void norm_rows(const std::vector<float>& weight) {
    const int64_t D = model.config_.n_embd;
    for_each_row([&](int64_t t) { rms_norm(&x[t * D], weight.data(), &xn[t * D], D, model.config_.rms_eps); });
  }
  void layer(int64_t l);
  void attention(int64_t l);
  void output_head();
};

}  // namespace onellm
