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

namespace onellm {
namespace {

// cos and sin of every rotated pair's angle at position pos (n_rot floats).
// Angles are built the way ggml builds them (a running product of
// theta_scale in float) so results agree with llama.cpp to float precision.
void rope_angles(const ModelConfig& c, const std::vector<float>& freq_factors, int64_t pos, float* cos_sin) {
  const int64_t half = c.n_rot / 2;
  const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const float ff = freq_factors.empty() ? 1.0f : freq_factors[static_cast<size_t>(i)];
    const float angle = c.rope_freq_scale * (theta / ff);
    cos_sin[2 * i] = std::cos(angle);
    cos_sin[2 * i + 1] = std::sin(angle);
    theta *= theta_scale;
  }
}

// Rotates the first n_rot dims of each head of x (n_heads x head_dim) by
// the angles of rope_angles.
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
// pass, their page faults and zeroing were ~8 % of prefill. Every buffer is
// fully written before it is read, so stale contents do not matter. A few
// sets are kept (the service runs a paused prompt chunk beside decode passes).
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
  std::vector<float> rope_cos_sin;
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
  ~State() { recycler().give(buffers); }
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
  rope_cos_sin.resize(static_cast<size_t>(n * c.n_rot));
  for (int64_t r = 0; r < n; ++r)
    rope_angles(c, m.rope_freqs_, pos_of[static_cast<size_t>(r)], &rope_cos_sin[static_cast<size_t>(r * c.n_rot)]);
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
    const float* cos_sin = &rope_cos_sin[static_cast<size_t>(t * c.n_rot)];
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

// Attention: a row sees positions 0 .. its own of its own cache (causal).
// Rows whose attention a tracking cache records (KvCache::add_attention) go
// one (row, head) pair per work item and keep their probabilities; the
// others take the fast path, the query heads of one KV head together. A
// query's record weighs attention_decay() per later query, so only a chunk's
// last kTrackedRows rows are recorded: together the rows before them would
// weigh ~1e-3 of the total (0.9^88 / 0.1), and recording every row of a long
// chunk cost more than the rest of the pass.
void Model::Pass::State::attention(int64_t l) {
  constexpr int64_t kTrackedRows = 88;
  const ModelConfig& c = model.config_;
  const bool exact = mode == MathMode::kExact;
  const int64_t QD = c.q_dim(), HD = c.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const int64_t group = c.n_head / c.n_head_kv;
  // Whether row r's attention is recorded: its cache tracks, and fewer than
  // kTrackedRows rows of its segment come after it.
  auto records = [&](int64_t r) {
    const size_t s = static_cast<size_t>(seg_of[static_cast<size_t>(r)]);
    return segments[s].cache->tracking_attention() && row0[s] + segments[s].n - 1 - r < kTrackedRows;
  };
  std::vector<int64_t> slow_rows, fast_rows;
  for (int64_t r = 0; r < n; ++r) (exact || records(r) ? slow_rows : fast_rows).push_back(r);
  auto attend_items = [&](int64_t begin, int64_t end) {
    std::vector<float> probs;
    std::vector<double> received, queries;
    int64_t tracked = -1;  // the segment whose partial sums `received` holds
    auto merge = [&] {
      if (tracked < 0) return;
      std::lock_guard<std::mutex> lock(attention_mu);
      segments[tracked].cache->add_attention(received.data(), queries.data(), static_cast<int64_t>(received.size()));
    };
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = slow_rows[static_cast<size_t>(item / c.n_head)], h = item % c.n_head, kvh = h / group;
      const int64_t s = seg_of[static_cast<size_t>(r)];
      KvCache& cache = *segments[s].cache;
      const bool track = records(r);
      const int64_t n_keys = pos_of[static_cast<size_t>(r)] + 1;
      if (track && tracked != s) {
        merge();
        tracked = s;
        const size_t span = static_cast<size_t>(pos0[static_cast<size_t>(s)] + segments[s].n);
        probs.assign(span, 0.0f);
        received.assign(span, 0.0);
        queries.assign(span, 0.0);
      }
      const KvRows keys = cache.k_rows(l, kvh), values = cache.v_rows(l, kvh);
      float* out = &att_out[r * QD + h * HD];
      float* p = track ? probs.data() : nullptr;
      if (exact) attend_exact(&q[r * QD + h * HD], keys, values, n_keys, HD, scale, out, p);
      else attend(&q[r * QD + h * HD], keys, values, n_keys, HD, scale, out, p);
      if (track) {
        const int64_t t = r - row0[static_cast<size_t>(s)];
        const double weight = std::pow(KvCache::attention_decay(), static_cast<double>(segments[s].n - 1 - t));
        for (int64_t j = 0; j < n_keys; ++j) {
          received[static_cast<size_t>(j)] += weight * probs[static_cast<size_t>(j)] * static_cast<double>(n_keys);
          queries[static_cast<size_t>(j)] += weight;
        }
      }
    }
    merge();
  };
  // Prefill over an F16/Q8_0 cache: attend_group converts the rows it reads
  // to F32 on every call, i.e. once per row of the chunk (quadratic; ~12 %
  // of an F16 model's pp512). A segment with several fast rows has its
  // keys and values up to its last position converted once per layer, up
  // to kMaxF32KvBytes (the buffers stay allocated for the next pass; longer
  // contexts convert per row as before).
  constexpr int64_t kMaxF32KvBytes = int64_t{16} << 20;
  // A sequence that decodes (fewer than kSplitRowsBelow rows in this pass)
  // over a long context splits its keys in chunks (below).
  constexpr int64_t kSplitRowsBelow = 4, kKeyChunk = 1024;
  // At the amx level a prefilling segment's keys and values go into the
  // tiles' BF16 layout instead (prepare_kv_tiles: half the bytes of F32),
  // once per layer rather than once per call of every tile of rows.
  const bool kv_tiles = kv_tiles_supported(HD);
  const int64_t KVD = c.kv_dim();
  std::vector<const float*> f32_k(segments.size(), nullptr), f32_v(segments.size(), nullptr);
  std::vector<int64_t> f32_keys(segments.size(), 0);  // positions per head in f32_k / f32_v or tiles_k / tiles_v
  std::vector<const uint8_t*> tiles_k(segments.size(), nullptr), tiles_v(segments.size(), nullptr);
  thread_local std::vector<std::vector<float>> f32_rows;  // capacity kept between layers and passes
  thread_local std::vector<std::vector<uint8_t>> tile_rows;
  f32_rows.resize(std::max(f32_rows.size(), 2 * segments.size()));
  tile_rows.resize(std::max(tile_rows.size(), 2 * segments.size()));
  for (size_t s = 0; s < segments.size(); ++s) {
    const KvCache& cache = *segments[s].cache;
    const bool as_tiles = kv_tiles && segments[s].n >= kSplitRowsBelow;
    if ((cache.type() == TensorType::F32 && !as_tiles) || segments[s].n < 2) continue;
    int64_t n_keys = 0, n_rows = 0;
    for (int64_t r : fast_rows)
      if (seg_of[static_cast<size_t>(r)] == static_cast<int64_t>(s)) {
        n_keys = std::max(n_keys, pos_of[static_cast<size_t>(r)] + 1);
        ++n_rows;
      }
    if (n_rows < 2 || 2 * n_keys * KVD * static_cast<int64_t>(sizeof(float)) > kMaxF32KvBytes) continue;
    f32_keys[s] = n_keys;
    if (as_tiles) {
      const size_t head_bytes = kv_tile_bytes(n_keys, HD);
      std::vector<uint8_t>& kb = tile_rows[2 * s];
      std::vector<uint8_t>& vb = tile_rows[2 * s + 1];
      kb.resize(head_bytes * static_cast<size_t>(c.n_head_kv));
      vb.resize(kb.size());
      const int64_t n_blocks = (n_keys + kKvTileKeys - 1) / kKvTileKeys;
      auto prepare = [&](int64_t b0, int64_t b1) {
        for (int64_t h = 0; h < c.n_head_kv; ++h)
          prepare_kv_tiles(cache.k_rows(l, h), cache.v_rows(l, h), kKvTileKeys * b0,
                           std::min(kKvTileKeys * b1, n_keys), HD, kb.data() + h * head_bytes,
                           vb.data() + h * head_bytes);
      };
      if (pool != nullptr && n_blocks > 1) pool->parallel_for(n_blocks, prepare);
      else prepare(0, n_blocks);
      tiles_k[s] = kb.data();
      tiles_v[s] = vb.data();
      continue;
    }
    std::vector<float>& kb = f32_rows[2 * s];
    std::vector<float>& vb = f32_rows[2 * s + 1];
    kb.resize(static_cast<size_t>(n_keys * KVD));
    vb.resize(static_cast<size_t>(n_keys * KVD));
    // [head][position][head_dim], as the cache: a head's positions convert
    // as one run.
    auto convert = [&](int64_t j0, int64_t j1) {
      for (int64_t h = 0; h < c.n_head_kv; ++h) {
        const size_t at = static_cast<size_t>((h * n_keys + j0) * HD);
        dequantize_row_fast(cache.type(), cache.k_at(l, h, j0), &kb[at], (j1 - j0) * HD);
        dequantize_row_fast(cache.type(), cache.v_at(l, h, j0), &vb[at], (j1 - j0) * HD);
      }
    };
    if (pool != nullptr && n_keys * KVD > (int64_t{1} << 16)) pool->parallel_for(n_keys, convert);
    else convert(0, n_keys);
    f32_k[s] = kb.data();
    f32_v[s] = vb.data();
  }
  // The fast rows go in tiles; a work item is a tile's KV head (or a chunk
  // of its keys). A sequence that decodes (fewer than kSplitRowsBelow rows
  // in this pass) over a long context has one row per tile, its keys in
  // chunks of kKeyChunk, and the unnormalized parts are merged after: with
  // one item per KV head, a model whose KV heads do not divide among the
  // threads left one idle. Whether a row is split depends only on its own
  // sequence, not on the thread count or on the other sequences of a batch,
  // so neither do its results.
  // A prefill's tile holds up to 16 / group consecutive rows of its
  // sequence, whose queries of one KV head go in one call, each masked at
  // its row's position: the key blocks are read (and on AVX-512 transposed)
  // once per tile, not once per row (SmolLM2's 3 heads per KV head spent
  // most of the call on the transpose).
  // Chunks of 1024 keys: with each head's keys contiguous, SmolLM2's decode
  // @ d2048-4096 ran 8-12 % faster than with 512 (session 31).
  const int64_t rows_per_tile = std::max<int64_t>(1, 16 / group);
  struct Tile {
    size_t first;  // index into fast_rows
    int64_t n_rows, chunks;
  };
  std::vector<Tile> tiles;
  for (size_t i = 0; i < fast_rows.size();) {
    const int64_t s = seg_of[static_cast<size_t>(fast_rows[i])];
    const int64_t n_keys = pos_of[static_cast<size_t>(fast_rows[i])] + 1;
    if (segments[static_cast<size_t>(s)].n < kSplitRowsBelow) {
      tiles.push_back({i, 1, n_keys > kKeyChunk ? (n_keys + kKeyChunk - 1) / kKeyChunk : 1});
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < fast_rows.size() && static_cast<int64_t>(end - i) < rows_per_tile &&
           seg_of[static_cast<size_t>(fast_rows[end])] == s)
      ++end;
    tiles.push_back({i, static_cast<int64_t>(end - i), 1});
    i = end;
  }
  // A causal prefill's tiles grow in cost with their position, and
  // parallel_for hands each thread a contiguous range of items: taken
  // first, last, second, second to last, ..., every range costs about the
  // same (one thread had three quarters of a pp512's attention).
  std::vector<Tile> ordered;
  ordered.reserve(tiles.size());
  for (size_t a = 0, b = tiles.size(); a < b;) {
    ordered.push_back(tiles[a++]);
    if (a < b) ordered.push_back(tiles[--b]);
  }
  tiles.swap(ordered);
  const size_t n_tiles = tiles.size();
  // Items go KV head by KV head (item = kvh * n_chunks + the tile's first
  // chunk + chunk): a thread's run reads one head's keys, contiguous in the
  // cache, and for prefill reused from the CPU cache by every tile of the
  // run (tile by tile, every head's rows passed through it: +3-7 % pp512 @
  // d4096). The F32 copies of prefill are laid out per head as well.
  std::vector<int64_t> first_chunk(n_tiles + 1, 0), first_part(n_tiles + 1, 0);
  for (size_t i = 0; i < n_tiles; ++i) {
    first_chunk[i + 1] = first_chunk[i] + tiles[i].chunks;
    first_part[i + 1] = first_part[i] + (tiles[i].chunks > 1 ? tiles[i].chunks * c.n_head_kv : 0);
  }
  const int64_t n_chunks = first_chunk.back();
  // Parts of tile i, KV head kvh, chunk k at first_part[i] + kvh * chunks + k.
  const int64_t part_floats = group * HD;
  // Kept between layers and passes (the caller's thread; the workers get
  // the pointers: a thread_local named in the lambda would be their own).
  thread_local std::vector<float> part_buffer;
  part_buffer.resize(static_cast<size_t>(first_part.back() * (part_floats + 2 * group)));
  float* const parts = part_buffer.data();
  float* const part_max = parts + first_part.back() * part_floats;
  float* const part_sum = part_max + first_part.back() * group;
  auto attend_groups = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> tile_q, tile_out;  // this thread's own
    thread_local std::vector<int64_t> tile_keys;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t kvh = item / n_chunks, h0 = kvh * group, at = item % n_chunks;
      const size_t i =
          static_cast<size_t>(std::upper_bound(first_chunk.begin(), first_chunk.end(), at) - first_chunk.begin()) - 1;
      const Tile& tile = tiles[i];
      const int64_t r = fast_rows[tile.first], chunk = at - first_chunk[i];
      const size_t s = static_cast<size_t>(seg_of[static_cast<size_t>(r)]);
      const KvCache& cache = *segments[s].cache;
      KvRows keys = cache.k_rows(l, kvh), values = cache.v_rows(l, kvh);
      if (f32_k[s] != nullptr) {  // [head][position][head_dim], as the cache
        const size_t f32_stride = static_cast<size_t>(HD) * sizeof(float), head_floats = f32_keys[s] * HD;
        keys = {TensorType::F32, reinterpret_cast<const uint8_t*>(f32_k[s] + kvh * head_floats), f32_stride};
        values = {TensorType::F32, reinterpret_cast<const uint8_t*>(f32_v[s] + kvh * head_floats), f32_stride};
      } else if (tiles_k[s] != nullptr) {  // [head][block of 32 keys], the tiles' layout
        const size_t head_bytes = kv_tile_bytes(f32_keys[s], HD);
        keys = KvRows{TensorType::BF16, tiles_k[s] + kvh * head_bytes, 0, true};
        values = KvRows{TensorType::BF16, tiles_v[s] + kvh * head_bytes, 0, true};
      }
      const int64_t n_keys = pos_of[static_cast<size_t>(r)] + 1;
      if (tile.n_rows > 1) {
        const int64_t n_q = tile.n_rows * group, head_floats = group * HD;
        tile_q.resize(static_cast<size_t>(n_q * HD));
        tile_out.resize(tile_q.size());
        tile_keys.resize(static_cast<size_t>(n_q));
        for (int64_t t = 0; t < tile.n_rows; ++t) {
          const int64_t row = fast_rows[tile.first + static_cast<size_t>(t)];
          std::copy_n(&q[row * QD + h0 * HD], head_floats, &tile_q[static_cast<size_t>(t * head_floats)]);
          std::fill_n(&tile_keys[static_cast<size_t>(t * group)], group, pos_of[static_cast<size_t>(row)] + 1);
        }
        attend_group_causal(tile_q.data(), n_q, tile_keys.data(), keys, values, HD, scale, tile_out.data());
        for (int64_t t = 0; t < tile.n_rows; ++t) {
          const int64_t row = fast_rows[tile.first + static_cast<size_t>(t)];
          std::copy_n(&tile_out[static_cast<size_t>(t * head_floats)], head_floats, &att_out[row * QD + h0 * HD]);
        }
        continue;
      }
      if (tile.chunks == 1) {
        attend_group(&q[r * QD + h0 * HD], group, keys, values, n_keys, HD, scale, &att_out[r * QD + h0 * HD]);
        continue;
      }
      const int64_t j0 = chunk * kKeyChunk, part = first_part[i] + kvh * tile.chunks + chunk;
      keys.data += static_cast<size_t>(j0) * keys.stride;
      values.data += static_cast<size_t>(j0) * values.stride;
      attend_group_partial(&q[r * QD + h0 * HD], group, keys, values, std::min(kKeyChunk, n_keys - j0), HD, scale,
                           parts + part * part_floats, part_max + part * group, part_sum + part * group);
    }
  };
  const int64_t n_fast = n_chunks * c.n_head_kv;
  const int64_t n_slow = static_cast<int64_t>(slow_rows.size()) * c.n_head;
  if (n_fast > 0) {
    if (pool != nullptr) pool->parallel_for(n_fast, attend_groups);
    else attend_groups(0, n_fast);
  }
  for (size_t i = 0; i < n_tiles; ++i) {
    if (tiles[i].chunks == 1) continue;
    const int64_t r = fast_rows[tiles[i].first];
    for (int64_t kvh = 0; kvh < c.n_head_kv; ++kvh) {
      const int64_t part = first_part[i] + kvh * tiles[i].chunks;
      merge_attention(parts + part * part_floats, part_max + part * group, part_sum + part * group, tiles[i].chunks,
                      group, HD, &att_out[r * QD + kvh * group * HD]);
    }
  }
  if (n_slow > 0) {
    if (pool != nullptr) pool->parallel_for(n_slow, attend_items);
    else attend_items(0, n_slow);
  }
}

void Model::Pass::State::output_head() {
  const ModelConfig& c = model.config_;
  const int64_t D = c.n_embd;
  const int64_t n_segments = static_cast<int64_t>(segments.size());
  for (size_t s = 0; s < segments.size(); ++s) segments[s].cache->set_size(pos0[s] + segments[s].n);

  // The output head over the rows whose logits are wanted, in one matmul.
  std::vector<int64_t> rows;
  for (int64_t s = 0; s < n_segments; ++s)
    for (int64_t t = segments[s].all_logits ? 0 : segments[s].n - 1; t < segments[s].n; ++t)
      rows.push_back(row0[static_cast<size_t>(s)] + t);
  const int64_t n_out = static_cast<int64_t>(rows.size()), V = c.n_vocab;
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
    const int64_t count = segments[s].all_logits ? segments[s].n : 1;
    std::copy_n(all.data() + at * V, count * V, segments[s].logits);
    at += count;
  }
}

}  // namespace onellm
