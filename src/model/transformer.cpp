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

// Rotates the first n_rot dims of each head of x (n_heads x head_dim) at
// position pos. Angles are built the way ggml builds them (a running product
// of theta_scale in float) so results agree with llama.cpp to float precision.
void apply_rope(const ModelConfig& c, const std::vector<float>& freq_factors, float* x, int64_t n_heads,
                int64_t pos, std::vector<float>& cos_sin) {
  const int64_t half = c.n_rot / 2;
  cos_sin.resize(static_cast<size_t>(c.n_rot));
  const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const float ff = freq_factors.empty() ? 1.0f : freq_factors[static_cast<size_t>(i)];
    const float angle = c.rope_freq_scale * (theta / ff);
    cos_sin[2 * i] = std::cos(angle);
    cos_sin[2 * i + 1] = std::sin(angle);
    theta *= theta_scale;
  }
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
  const bool exact = mode == MathMode::kExact;
  const ModelConfig& c = config_;
  if (n_segments <= 0) throw Error("forward: no sequences to evaluate");
  // Rows of all segments, concatenated: every matmul runs once over them all,
  // so B decoding sequences read the weights once instead of B times.
  std::vector<int64_t> row0(static_cast<size_t>(n_segments) + 1, 0), pos0(static_cast<size_t>(n_segments));
  for (int64_t s = 0; s < n_segments; ++s) {
    const ForwardSegment& g = segments[s];
    KvCache& cache = *g.cache;
    if (g.n <= 0) throw Error("forward: no tokens to evaluate");
    for (int64_t o = 0; o < s; ++o)
      if (segments[o].cache == g.cache) throw Error("forward: a KV cache appears twice in one batch");
    const int64_t p0 = cache.size();
    if (p0 + g.n > cache.capacity())
      throw Error("context full: " + std::to_string(p0) + " + " + std::to_string(g.n) +
                  " tokens exceed the context of " + std::to_string(cache.capacity()));
    // Grows by doubling so token-by-token decoding re-lays the cache rarely.
    if (p0 + g.n > cache.reserved())
      cache.reserve(std::min(cache.capacity(), std::max(p0 + g.n, std::max<int64_t>(64, 2 * cache.reserved()))));
    for (int64_t t = 0; t < g.n; ++t)
      if (g.tokens[t] < 0 || g.tokens[t] >= c.n_vocab)
        throw Error("token id " + std::to_string(g.tokens[t]) + " is out of range (vocabulary has " +
                    std::to_string(c.n_vocab) + " tokens)");
    pos0[static_cast<size_t>(s)] = p0;
    row0[static_cast<size_t>(s) + 1] = row0[static_cast<size_t>(s)] + g.n;
  }
  const int64_t n = row0.back();
  // Row r belongs to segment seg_of[r], at position pos_of[r] of its cache.
  std::vector<int64_t> seg_of(static_cast<size_t>(n)), pos_of(static_cast<size_t>(n));
  for (int64_t s = 0; s < n_segments; ++s)
    for (int64_t r = row0[static_cast<size_t>(s)]; r < row0[static_cast<size_t>(s) + 1]; ++r) {
      seg_of[static_cast<size_t>(r)] = s;
      pos_of[static_cast<size_t>(r)] = pos0[static_cast<size_t>(s)] + (r - row0[static_cast<size_t>(s)]);
    }

  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), HD = c.head_dim;
  std::vector<float> x(static_cast<size_t>(n * D)), xn(x.size()), q(static_cast<size_t>(n * QD));
  std::vector<float> k(static_cast<size_t>(n * KVD)), v(k.size()), att_out(q.size()), proj(x.size());
  std::vector<float> gate(static_cast<size_t>(n * c.n_ff)), up(gate.size());
  std::vector<float> cos_sin;

  for (int64_t s = 0; s < n_segments; ++s)
    for (int64_t t = 0; t < segments[s].n; ++t)
      matrix_row(token_embd_, segments[s].tokens[t], x.data() + (row0[static_cast<size_t>(s)] + t) * D);

  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const int64_t group = c.n_head / c.n_head_kv;
  std::mutex attention_mu;  // merges the attention-tracking partial sums
  for (int64_t s = 0; s < n_segments; ++s) segments[s].cache->age_attention(segments[s].n);

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = layers_[static_cast<size_t>(l)];
    for (int64_t t = 0; t < n; ++t) rms_norm(&x[t * D], L.attn_norm.data(), &xn[t * D], D, c.rms_eps);
    matmul(L.wq, xn.data(), n, q.data(), pool, mode);
    matmul(L.wk, xn.data(), n, k.data(), pool, mode);
    matmul(L.wv, xn.data(), n, v.data(), pool, mode);
    add_bias(q.data(), L.bq, n);
    add_bias(k.data(), L.bk, n);
    add_bias(v.data(), L.bv, n);
    for (int64_t t = 0; t < n; ++t) {
      if (c.qk_norm) {
        for (int64_t h = 0; h < c.n_head; ++h)
          rms_norm(&q[t * QD + h * HD], L.q_norm.data(), &q[t * QD + h * HD], HD, c.rms_eps);
        for (int64_t h = 0; h < c.n_head_kv; ++h)
          rms_norm(&k[t * KVD + h * HD], L.k_norm.data(), &k[t * KVD + h * HD], HD, c.rms_eps);
      }
      apply_rope(c, rope_freqs_, &q[t * QD], c.n_head, pos_of[static_cast<size_t>(t)], cos_sin);
      apply_rope(c, rope_freqs_, &k[t * KVD], c.n_head_kv, pos_of[static_cast<size_t>(t)], cos_sin);
    }
    for (int64_t s = 0; s < n_segments; ++s) {
      const int64_t r0 = row0[static_cast<size_t>(s)];
      segments[s].cache->write_k(l, pos0[static_cast<size_t>(s)], segments[s].n, &k[r0 * KVD]);
      segments[s].cache->write_v(l, pos0[static_cast<size_t>(s)], segments[s].n, &v[r0 * KVD]);
    }

    // Attention: one (row, head) pair per work item; a row sees positions
    // 0 .. its own of its own cache (causal).
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
        const int64_t r = item / c.n_head, h = item % c.n_head, kvh = h / group;
        const int64_t s = seg_of[static_cast<size_t>(r)];
        KvCache& cache = *segments[s].cache;
        const bool track = cache.tracking_attention();
        const int64_t n_keys = pos_of[static_cast<size_t>(r)] + 1;
        if (track && tracked != s) {
          merge();
          tracked = s;
          const size_t span = static_cast<size_t>(pos0[static_cast<size_t>(s)] + segments[s].n);
          probs.assign(span, 0.0f);
          received.assign(span, 0.0);
          queries.assign(span, 0.0);
        }
        const size_t head_offset = tensor_row_bytes(cache.type(), kvh * HD);
        const KvRows keys{cache.type(), cache.k_row(l, 0) + head_offset, cache.row_bytes()};
        const KvRows values{cache.type(), cache.v_row(l, 0) + head_offset, cache.row_bytes()};
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
    // Without tracking, the fast path takes the query heads of one KV head
    // together: one work item per (token, KV head).
    auto attend_groups = [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t r = item / c.n_head_kv, kvh = item % c.n_head_kv, h0 = kvh * group;
        const KvCache& cache = *segments[seg_of[static_cast<size_t>(r)]].cache;
        const size_t head_offset = tensor_row_bytes(cache.type(), kvh * HD);
        const KvRows keys{cache.type(), cache.k_row(l, 0) + head_offset, cache.row_bytes()};
        const KvRows values{cache.type(), cache.v_row(l, 0) + head_offset, cache.row_bytes()};
        attend_group(&q[r * QD + h0 * HD], group, keys, values, pos_of[static_cast<size_t>(r)] + 1, HD, scale,
                     &att_out[r * QD + h0 * HD]);
      }
    };
    bool grouped = !exact;
    for (int64_t s = 0; s < n_segments; ++s) grouped = grouped && !segments[s].cache->tracking_attention();
    const int64_t n_items = n * (grouped ? c.n_head_kv : c.n_head);
    if (pool != nullptr) {
      if (grouped) pool->parallel_for(n_items, attend_groups);
      else pool->parallel_for(n_items, attend_items);
    } else if (grouped) {
      attend_groups(0, n_items);
    } else {
      attend_items(0, n_items);
    }

    matmul(L.wo, att_out.data(), n, proj.data(), pool, mode);
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];

    for (int64_t t = 0; t < n; ++t) rms_norm(&x[t * D], L.ffn_norm.data(), &xn[t * D], D, c.rms_eps);
    matmul(L.w_gate, xn.data(), n, gate.data(), pool, mode);
    matmul(L.w_up, xn.data(), n, up.data(), pool, mode);
    swiglu(gate.data(), up.data(), gate.data(), n * c.n_ff);
    matmul(L.w_down, gate.data(), n, proj.data(), pool, mode);
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];
  }
  for (int64_t s = 0; s < n_segments; ++s) segments[s].cache->set_size(pos0[static_cast<size_t>(s)] + segments[s].n);

  // The output head over the rows whose logits are wanted, in one matmul.
  std::vector<int64_t> rows;
  for (int64_t s = 0; s < n_segments; ++s)
    for (int64_t t = segments[s].all_logits ? 0 : segments[s].n - 1; t < segments[s].n; ++t)
      rows.push_back(row0[static_cast<size_t>(s)] + t);
  const int64_t n_out = static_cast<int64_t>(rows.size()), V = c.n_vocab;
  for (int64_t i = 0; i < n_out; ++i) rms_norm(&x[rows[static_cast<size_t>(i)] * D], output_norm_.data(), &xn[i * D], D, c.rms_eps);
  if (n_segments == 1) {  // straight into the caller's buffer
    matmul(output_, xn.data(), n_out, segments[0].logits, pool, mode);
    return;
  }
  std::vector<float> all(static_cast<size_t>(n_out * V));
  matmul(output_, xn.data(), n_out, all.data(), pool, mode);
  int64_t at = 0;
  for (int64_t s = 0; s < n_segments; ++s) {
    const int64_t count = segments[s].all_logits ? segments[s].n : 1;
    std::copy_n(all.data() + at * V, count * V, segments[s].logits);
    at += count;
  }
}

}  // namespace onellm
