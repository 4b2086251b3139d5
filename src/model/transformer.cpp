// The forward pass shared by llama, qwen2 and qwen3: pre-norm decoder blocks
// with GQA attention over the KV cache and a SwiGLU feed-forward. Reads like
// llama2.c's forward(), but all tokens of a batch go through each matmul
// together (prefill is matrix-matrix work).
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "model/model.h"
#include "model/pass_state.h"

namespace onellm {
namespace {

// Rotates the first n_rot dims of each head of x (n_heads x head_dim) by
// the angles of rope_cos_sin.
void apply_rope(const ModelConfig& c, const float* cos_sin, float* x, int64_t n_heads) {
  const int64_t half = c.n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * c.head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float cs = cos_sin[2 * i], sn = cos_sin[2 * i + 1];
      const int64_t a = c.rope_style == RopeStyle::kNormal ? 2 * i : i;
      const int64_t b = c.rope_style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs - x1 * sn;
      v[b] = x0 * sn + x1 * cs;
    }
  }
}

void add_bias(float* x, const std::vector<float>& bias, int64_t n_tokens) {
  if (bias.empty()) return;
  const int64_t n = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < n; ++i) x[t * n + i] += bias[static_cast<size_t>(i)];
}

}  // namespace

void Model::forward(const int32_t* tokens, int64_t n, KvCache& cache, float* logits, bool all_logits,
                    ThreadPool* pool) const {
  forward(tokens, n, cache, logits, all_logits, pool, MathMode::kFast);
}

void Model::forward(const int32_t* tokens, int64_t n, KvCache& cache, float* logits, bool all_logits,
                    ThreadPool* pool, MathMode mode) const {
  const ForwardSegment segment{tokens, n, &cache, logits, all_logits};
  forward_batch(&segment, 1, pool, mode);
}

void Model::forward_batch(const ForwardSegment* segments, int64_t n_segments, ThreadPool* pool, MathMode mode) const {
  Pass pass = begin_pass(segments, n_segments, pool, mode);
  while (!pass.done()) pass.step();
}

namespace {

// Activation buffers of finished passes, handed to the next ones. A 512-token
// pass of a 0.5B model needs ~30 MB of them; fresh from the allocator every
// pass, their page faults and zeroing were ~8 % of prefill. Stale contents do
// not matter (each is written before it is read). A few sets are kept (the
// service runs a paused prompt chunk beside decode passes).
class ActivationRecycler {
 public:
  void take(ActivationBuffers& into) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return;
    into.swap(free_.back());
    free_.pop_back();
  }
  void give(ActivationBuffers& from) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() >= kKeep) return;
    free_.emplace_back();
    free_.back().swap(from);
  }

 private:
  static constexpr size_t kKeep = 2;
  std::mutex mu_;
  std::vector<ActivationBuffers> free_;
};

ActivationRecycler& recycler() {
  static ActivationRecycler r;
  return r;
}

}  // namespace

Model::Pass::State::~State() { recycler().give(buffers); }

Model::Pass::Pass(std::unique_ptr<State> state) : state_(std::move(state)) {}
Model::Pass::Pass(Pass&&) noexcept = default;
Model::Pass& Model::Pass::operator=(Pass&&) noexcept = default;
Model::Pass::~Pass() = default;
int64_t Model::Pass::steps() const { return state_->model.config_.n_layer + 1; }
int64_t Model::Pass::steps_done() const { return state_->next_step; }

void Model::Pass::step() {
  State& s = *state_;
  if (done()) throw Error("forward: the pass is already complete");
  if (s.next_step < s.model.config_.n_layer) s.layer(s.next_step);
  else s.output_head();
  ++s.next_step;
}

Model::Pass Model::begin_pass(const ForwardSegment* segments, int64_t n_segments, ThreadPool* pool,
                              MathMode mode) const {
  return Pass(std::make_unique<Pass::State>(*this, segments, n_segments, pool, mode));
}

Model::Pass::State::State(const Model& m, const ForwardSegment* segs, int64_t n_segs, ThreadPool* p, MathMode md)
    : model(m), pool(p), mode(md) {
  recycler().take(buffers);
  const ModelConfig& c = m.config_;
  if (n_segs <= 0) throw Error("forward: no sequences to evaluate");
  segments.assign(segs, segs + n_segs);
  row0.assign(static_cast<size_t>(n_segs) + 1, 0);
  pos0.assign(static_cast<size_t>(n_segs), 0);
  for (int64_t s = 0; s < n_segs; ++s) {
    const ForwardSegment& g = segments[static_cast<size_t>(s)];
    KvCache& cache = *g.cache;
    if (g.n <= 0) throw Error("forward: no tokens to evaluate");
    if (g.lora != nullptr && g.lora->base() != &m)
      throw Error("forward: a sequence's LoRA adapter was loaded for another model");
    for (int64_t o = 0; o < s; ++o)
      if (segments[static_cast<size_t>(o)].cache == g.cache) throw Error("forward: a KV cache appears twice in one batch");
    const int64_t p0 = cache.size();
    if (p0 + g.n > cache.capacity())
      throw Error("context full: " + std::to_string(p0) + " + " + std::to_string(g.n) +
                  " tokens exceed the context of " + std::to_string(cache.capacity()));
    for (int64_t t = 0; t < g.n; ++t)
      if (g.tokens[t] < 0 || g.tokens[t] >= c.n_vocab)
        throw Error("token id " + std::to_string(g.tokens[t]) + " is out of range (vocabulary has " +
                    std::to_string(c.n_vocab) + " tokens)");
    pos0[static_cast<size_t>(s)] = p0;
    row0[static_cast<size_t>(s) + 1] = row0[static_cast<size_t>(s)] + g.n;
  }
  for (const ForwardSegment& g : segments) {
    KvCache& cache = *g.cache;
    const int64_t p0 = cache.size();
    // Grows by doubling so token-by-token decoding re-lays the cache rarely.
    if (p0 + g.n > cache.reserved())
      cache.reserve(std::min(cache.capacity(), std::max(p0 + g.n, std::max<int64_t>(64, 2 * cache.reserved()))));
  }
  n = row0.back();
  seg_of.resize(static_cast<size_t>(n));
  pos_of.resize(static_cast<size_t>(n));
  for (int64_t s = 0; s < n_segs; ++s)
    for (int64_t r = row0[static_cast<size_t>(s)]; r < row0[static_cast<size_t>(s) + 1]; ++r) {
      seg_of[static_cast<size_t>(r)] = s;
      pos_of[static_cast<size_t>(r)] = pos0[static_cast<size_t>(s)] + (r - row0[static_cast<size_t>(s)]);
    }
  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim();
  x.resize(static_cast<size_t>(n * D));
  xn.resize(x.size());
  q.resize(static_cast<size_t>(n * QD));
  k.resize(static_cast<size_t>(n * KVD));
  v.resize(k.size());
  att_out.resize(q.size());
  const int64_t ffn_chunks = (n + matmul_rows_to_amortize() - 1) / matmul_rows_to_amortize();
  ffn_rows = (n + ffn_chunks - 1) / ffn_chunks;
  gate.resize(static_cast<size_t>(ffn_rows * c.n_ff));
  up.resize(gate.size());
  for (int64_t s = 0; s < n_segs; ++s)
    for (int64_t t = 0; t < segments[static_cast<size_t>(s)].n; ++t)
      matrix_row(m.token_embd_, segments[static_cast<size_t>(s)].tokens[t], x.data() + (row0[static_cast<size_t>(s)] + t) * D);
  for (const ForwardSegment& g : segments) g.cache->age_attention(g.n);
  rope_angles.resize(static_cast<size_t>(n * c.n_rot));
  for (int64_t r = 0; r < n; ++r)
    rope_cos_sin(c, m.rope_freqs_, pos_of[static_cast<size_t>(r)], &rope_angles[static_cast<size_t>(r * c.n_rot)]);
}

void Model::Pass::State::layer(int64_t l) {
  const ModelConfig& c = model.config_;
  const LayerWeights& L = model.layers_[static_cast<size_t>(l)];
  const int64_t QD = c.q_dim(), KVD = c.kv_dim(), HD = c.head_dim;
  norm_rows(L.attn_norm);
  const MatrixView qkv[3] = {L.wq, L.wk, L.wv};
  float* const qkv_out[3] = {q.data(), k.data(), v.data()};
  matmul_group(qkv, qkv_out, 3, xn.data(), n);
  for (size_t kind = 0; kind < 3; ++kind) add_lora(l, kind, xn.data(), qkv_out[kind]);
  add_bias(q.data(), L.bq, n);
  add_bias(k.data(), L.bk, n);
  add_bias(v.data(), L.bv, n);
  for_each_row([&](int64_t t) {
    if (c.qk_norm) {
      for (int64_t h = 0; h < c.n_head; ++h)
        rms_norm(&q[t * QD + h * HD], L.q_norm.data(), &q[t * QD + h * HD], HD, c.rms_eps);
      for (int64_t h = 0; h < c.n_head_kv; ++h)
        rms_norm(&k[t * KVD + h * HD], L.k_norm.data(), &k[t * KVD + h * HD], HD, c.rms_eps);
    }
    const float* cos_sin = &rope_angles[static_cast<size_t>(t * c.n_rot)];
    apply_rope(c, cos_sin, &q[t * QD], c.n_head);
    apply_rope(c, cos_sin, &k[t * KVD], c.n_head_kv);
  });
  for (size_t s = 0; s < segments.size(); ++s) {
    const int64_t r0 = row0[s];
    segments[s].cache->write_k(l, pos0[s], segments[s].n, &k[r0 * KVD]);
    segments[s].cache->write_v(l, pos0[s], segments[s].n, &v[r0 * KVD]);
  }
  attention(l);

  // The attention's projection into xn (Q/K/V and their adapters have read it).
  matmul(L.wo, att_out.data(), n, xn.data(), pool, mode);
  add_lora(l, 3, att_out.data(), xn.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] += xn[i];

  norm_rows(L.ffn_norm);
  for (int64_t r0 = 0; r0 < n; r0 += ffn_rows) ffn(l, r0, std::min(ffn_rows, n - r0));
  for (size_t i = 0; i < x.size(); ++i) x[i] += xn[i];
}

// xn = the FFN of xn, rows [first, first + rows): gate and up have read a
// row before down writes it.
void Model::Pass::State::ffn(int64_t l, int64_t first, int64_t rows) {
  const ModelConfig& c = model.config_;
  const LayerWeights& L = model.layers_[static_cast<size_t>(l)];
  const float* in = xn.data() + first * c.n_embd;
  const MatrixView gate_up[2] = {L.w_gate, L.w_up};
  float* const gate_up_out[2] = {gate.data(), up.data()};
  matmul_group(gate_up, gate_up_out, 2, in, rows);
  for (size_t kind = 4; kind < 6; ++kind) add_lora(l, kind, in, gate_up_out[kind - 4], first, rows);
  if (mode == MathMode::kExact) swiglu(gate.data(), up.data(), gate.data(), rows * c.n_ff);
  else swiglu_fast(gate.data(), up.data(), gate.data(), rows * c.n_ff, pool);
  float* out = xn.data() + first * c.n_embd;
  matmul(L.w_down, gate.data(), rows, out, pool, mode);
  add_lora(l, 6, gate.data(), out, first, rows);
}

void Model::Pass::State::output_head() {
  const ModelConfig& c = model.config_;
  const int64_t D = c.n_embd;
  const int64_t n_segments = static_cast<int64_t>(segments.size());
  for (size_t s = 0; s < segments.size(); ++s) segments[s].cache->set_size(pos0[s] + segments[s].n);

  // The output head over the rows whose logits are wanted, in one matmul;
  // the normed rows themselves to segments that want hidden states.
  std::vector<int64_t> rows;
  for (int64_t s = 0; s < n_segments; ++s) {
    const int64_t first = segments[s].all_logits ? 0 : segments[s].n - 1;
    for (int64_t t = first; segments[s].hidden != nullptr && t < segments[s].n; ++t)
      rms_norm(&x[(row0[static_cast<size_t>(s)] + t) * D], model.output_norm_.data(),
               segments[s].hidden + (t - first) * D, D, c.rms_eps);
    for (int64_t t = first; segments[s].logits != nullptr && t < segments[s].n; ++t)
      rows.push_back(row0[static_cast<size_t>(s)] + t);
  }
  const int64_t n_out = static_cast<int64_t>(rows.size()), V = c.n_vocab;
  if (n_out == 0) return;
  for (int64_t i = 0; i < n_out; ++i) rms_norm(&x[rows[static_cast<size_t>(i)] * D], model.output_norm_.data(), &xn[i * D], D, c.rms_eps);
  if (n_segments == 1) {  // straight into the caller's buffer
    matmul(model.output_, xn.data(), n_out, segments[0].logits, pool, mode);
    return;
  }
  // A recycled buffer: fresh, 64 sequences' rows of a 152K vocabulary were
  // 39 MB of page faults and zeroing per pass, a quarter of the pass.
  std::vector<float>& all = buffers.logits;
  all.resize(static_cast<size_t>(n_out * V));
  matmul(model.output_, xn.data(), n_out, all.data(), pool, mode);
  int64_t at = 0;
  for (int64_t s = 0; s < n_segments; ++s) {
    if (segments[s].logits == nullptr) continue;
    const int64_t count = segments[s].all_logits ? segments[s].n : 1;
    std::copy_n(all.data() + at * V, count * V, segments[s].logits);
    at += count;
  }
}

}  // namespace onellm
