// Training gradients against central finite differences of an independent
// double-precision reference forward (written here, llama2.c style), for
// every parameter tensor of tiny llama models (tied and untied output, GQA,
// partial rotary dims, Llama 3 rope factors).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "train/train.h"

namespace onellm {
namespace {

using Vec = std::vector<double>;

// Reads tensors by name from a double copy of a TrainModel's buffer.
struct RefParams {
  const TrainModel* model;
  const Vec* values;
  const double* operator()(const std::string& name) const { return values->data() + model->tensor(name).offset; }
};

// y = W x for W rows x cols.
Vec matvec(const double* w, int64_t rows, int64_t cols, const Vec& x) {
  Vec y(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r] += w[r * cols + c] * x[c];
  return y;
}

Vec rmsnorm(const Vec& x, const double* w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

// Llama ("normal") rotary layout: pairs (2i, 2i+1) of the first n_rot dims.
void rope(const ModelConfig& c, const std::vector<float>& factors, double* head, int64_t pos) {
  for (int64_t i = 0; i < c.n_rot / 2; ++i) {
    double freq = std::pow(static_cast<double>(c.rope_base), -2.0 * static_cast<double>(i) / static_cast<double>(c.n_rot));
    if (!factors.empty()) freq /= factors[static_cast<size_t>(i)];
    const double angle = static_cast<double>(pos) * freq * c.rope_freq_scale;
    const double x0 = head[2 * i], x1 = head[2 * i + 1];
    head[2 * i] = x0 * std::cos(angle) - x1 * std::sin(angle);
    head[2 * i + 1] = x0 * std::sin(angle) + x1 * std::cos(angle);
  }
}

// Summed next-token loss of tokens[0..n] in double precision.
double reference_loss(const TrainModel& m, const Vec& p, const std::vector<int32_t>& tokens) {
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

// Weights large enough that every path carries a visible gradient.
void randomize(TrainModel& m, uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto uniform = [&] { return static_cast<double>(gen() >> 11) / 9007199254740992.0; };
  for (const ParamTensor& t : m.tensors())
    for (size_t i = 0; i < t.size; ++i)
      m.data()[t.offset + i] = static_cast<float>(t.is_matrix() ? (uniform() * 2 - 1) * 0.6 : 0.7 + 0.6 * uniform());
}

void check_gradients(const ModelConfig& config, const std::vector<float>& rope_freqs, int n_threads) {
  TrainModel m(config);
  m.set_rope_freqs(rope_freqs);
  randomize(m, 7);
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5};
  const int64_t n = static_cast<int64_t>(tokens.size()) - 1;

  std::vector<float> grads(m.size(), 0.0f);
  std::unique_ptr<ThreadPool> pool = n_threads > 1 ? std::make_unique<ThreadPool>(n_threads) : nullptr;
  const double loss = forward_backward(m, tokens.data(), n, grads.data(), 1.0f, pool.get());

  Vec p(m.params().begin(), m.params().end());
  const double ref = reference_loss(m, p, tokens);
  EXPECT_NEAR(loss, ref, 1e-5 * std::abs(ref)) << "training forward vs double reference";
  EXPECT_NEAR(sequence_loss(m, tokens.data(), n, nullptr), loss, 1e-9);

  const double h = 1e-5;
  for (const ParamTensor& t : m.tensors()) {
    double err2 = 0, norm2 = 0, worst = 0;
    for (size_t i = t.offset; i < t.offset + t.size; ++i) {
      const double saved = p[i];
      p[i] = saved + h;
      const double up = reference_loss(m, p, tokens);
      p[i] = saved - h;
      const double down = reference_loss(m, p, tokens);
      p[i] = saved;
      const double numeric = (up - down) / (2 * h);
      const double diff = std::abs(grads[i] - numeric);
      err2 += diff * diff;
      norm2 += numeric * numeric;
      worst = std::max(worst, diff / (1e-4 + std::abs(numeric)));
    }
    SCOPED_TRACE(t.name);
    EXPECT_GT(norm2, 1e-8) << "no gradient reaches this tensor";
    EXPECT_LT(std::sqrt(err2 / norm2), 1e-4) << "relative L2 error of the gradient";
    EXPECT_LT(worst, 1e-2) << "worst element error relative to 1e-4 + |numeric|";
  }
}

ModelConfig tiny_config(int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t n_rot, bool tied) {
  ModelConfig c;
  c.arch = "llama";
  c.n_vocab = 11;
  c.n_embd = 8;
  c.n_layer = 2;
  c.n_head = n_head;
  c.n_head_kv = n_head_kv;
  c.head_dim = head_dim;
  c.n_rot = n_rot;
  c.n_ff = 12;
  c.n_ctx_train = 64;
  c.tied_output = tied;
  return c;
}

TEST(TrainGradient, TiedOutputMultiQueryMatchesFiniteDifferences) {
  check_gradients(tiny_config(2, 1, 4, 4, true), {}, 1);
}

TEST(TrainGradient, UntiedOutputGqaPartialRopeMatchesFiniteDifferences) {
  ModelConfig c = tiny_config(4, 2, 3 * 2, 4, false);
  c.rope_base = 100.0f;  // large angles at these few positions
  check_gradients(c, {}, 2);
}

TEST(TrainGradient, RopeFrequencyFactorsAndScalingMatchFiniteDifferences) {
  ModelConfig c = tiny_config(2, 2, 4, 4, false);
  c.rope_freq_scale = 0.5f;
  check_gradients(c, {1.0f, 3.0f}, 1);
}

TEST(TrainGradient, ThreadCountDoesNotChangeGradients) {
  TrainModel m(tiny_config(4, 2, 8, 8, false));
  randomize(m, 3);
  std::vector<int32_t> tokens(40);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7 + i / 3) % 11);
  std::vector<float> g1(m.size(), 0.0f), g3(m.size(), 0.0f);
  ThreadPool pool(3);
  const double l1 = forward_backward(m, tokens.data(), 39, g1.data(), 0.5f, nullptr);
  const double l3 = forward_backward(m, tokens.data(), 39, g3.data(), 0.5f, &pool);
  EXPECT_EQ(l1, l3);
  EXPECT_EQ(g1, g3);
}

}  // namespace
}  // namespace onellm
