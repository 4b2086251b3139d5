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
  const bool exact = mode == MathMode::kExact;
  const ModelConfig& c = config_;
  if (n <= 0) throw Error("forward: no tokens to evaluate");
  const int64_t pos0 = cache.size();
  if (pos0 + n > cache.capacity())
    throw Error("context full: " + std::to_string(pos0) + " + " + std::to_string(n) + " tokens exceed the context of " +
                std::to_string(cache.capacity()));
  // Grows by doubling so token-by-token decoding re-lays the cache rarely.
  if (pos0 + n > cache.reserved())
    cache.reserve(std::min(cache.capacity(), std::max(pos0 + n, std::max<int64_t>(64, 2 * cache.reserved()))));
  for (int64_t t = 0; t < n; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
      throw Error("token id " + std::to_string(tokens[t]) + " is out of range (vocabulary has " +
                  std::to_string(c.n_vocab) + " tokens)");

  const int64_t D = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), HD = c.head_dim;
  std::vector<float> x(static_cast<size_t>(n * D)), xn(x.size()), q(static_cast<size_t>(n * QD));
  std::vector<float> k(static_cast<size_t>(n * KVD)), v(k.size()), att_out(q.size()), proj(x.size());
  std::vector<float> gate(static_cast<size_t>(n * c.n_ff)), up(gate.size());
  std::vector<float> cos_sin;

  for (int64_t t = 0; t < n; ++t) matrix_row(token_embd_, tokens[t], x.data() + t * D);

  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const int64_t group = c.n_head / c.n_head_kv;
  std::mutex attention_mu;  // merges the attention-tracking partial sums
  cache.age_attention(n);

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
      apply_rope(c, rope_freqs_, &q[t * QD], c.n_head, pos0 + t, cos_sin);
      apply_rope(c, rope_freqs_, &k[t * KVD], c.n_head_kv, pos0 + t, cos_sin);
    }
    cache.write_k(l, pos0, n, k.data());
    cache.write_v(l, pos0, n, v.data());

    // Attention: one (token, head) pair per work item; token t sees positions
    // 0 .. pos0 + t (causal).
    const size_t head_offset = tensor_row_bytes(cache.type(), HD);
    auto attend_items = [&](int64_t begin, int64_t end) {
      const bool track = cache.tracking_attention();
      std::vector<float> probs(track ? static_cast<size_t>(pos0 + n) : 0);
      std::vector<double> received(probs.size());
      std::vector<double> queries(probs.size());
      for (int64_t item = begin; item < end; ++item) {
        const int64_t t = item / c.n_head, h = item % c.n_head, kvh = h / group;
        const int64_t n_keys = pos0 + t + 1;
        const KvRows keys{cache.type(), cache.k_row(l, 0) + kvh * head_offset, cache.row_bytes()};
        const KvRows values{cache.type(), cache.v_row(l, 0) + kvh * head_offset, cache.row_bytes()};
        float* out = &att_out[t * QD + h * HD];
        if (exact) attend_exact(&q[t * QD + h * HD], keys, values, n_keys, HD, scale, out, track ? probs.data() : nullptr);
        else attend(&q[t * QD + h * HD], keys, values, n_keys, HD, scale, out, track ? probs.data() : nullptr);
        if (track) {
          const double weight = std::pow(KvCache::attention_decay(), static_cast<double>(n - 1 - t));
          for (int64_t j = 0; j < n_keys; ++j) {
            received[static_cast<size_t>(j)] += weight * probs[static_cast<size_t>(j)] * static_cast<double>(n_keys);
            queries[static_cast<size_t>(j)] += weight;
          }
        }
      }
      if (track) {
        std::lock_guard<std::mutex> lock(attention_mu);
        cache.add_attention(received.data(), queries.data(), static_cast<int64_t>(received.size()));
      }
    };
    // Without tracking, the fast path takes the query heads of one KV head
    // together: one work item per (token, KV head).
    auto attend_groups = [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t t = item / c.n_head_kv, kvh = item % c.n_head_kv, h0 = kvh * group;
        const KvRows keys{cache.type(), cache.k_row(l, 0) + kvh * head_offset, cache.row_bytes()};
        const KvRows values{cache.type(), cache.v_row(l, 0) + kvh * head_offset, cache.row_bytes()};
        attend_group(&q[t * QD + h0 * HD], group, keys, values, pos0 + t + 1, HD, scale, &att_out[t * QD + h0 * HD]);
      }
    };
    const bool grouped = !exact && !cache.tracking_attention();
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
  cache.set_size(pos0 + n);

  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t t = first; t < n; ++t) rms_norm(&x[t * D], output_norm_.data(), &xn[(t - first) * D], D, c.rms_eps);
  matmul(output_, xn.data(), rows, logits, pool, mode);
}

}  // namespace onellm
