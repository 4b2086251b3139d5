// Training gradients against central finite differences of an independent
// double-precision reference forward (written here, llama2.c style), for
// every parameter tensor of tiny llama models (tied and untied output, GQA,
// partial rotary dims, Llama 3 rope factors) and of qwen2 (q/k/v biases) and
// qwen3 (per-head q/k norms, a head size apart from n_embd / n_head), both
// with NeoX rotary pairs.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "train/train.h"
#include "train_reference.h"

namespace onellm {
namespace {

using test::reference_loss;
using test::Vec;

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

TEST(TrainGradient, YarnRopeAndItsMagnitudeMatchFiniteDifferences) {
  ModelConfig c = tiny_config(2, 1, 8, 8, false);  // 4 rotary pairs: one kept, two ramped, one interpolated
  c.arch = "qwen2";
  c.rope_base = 100.0f;
  c.rope_freq_scale = 0.25f;
  c.yarn = true;
  c.yarn_low = 0.0f;
  c.yarn_high = 3.0f;
  c.rope_mscale = 1.3f;
  check_gradients(c, {}, 1);
}

TEST(TrainGradient, Qwen2BiasesAndNeoxRopeMatchFiniteDifferences) {
  ModelConfig c = tiny_config(4, 2, 4, 4, true);
  c.arch = "qwen2";
  c.qkv_bias = true;
  check_gradients(c, {}, 2);
}

TEST(TrainGradient, Qwen3HeadNormsAndWideHeadsMatchFiniteDifferences) {
  ModelConfig c = tiny_config(2, 1, 6, 4, false);  // 2 heads of 6 on n_embd 8, 4 rotary dims
  c.arch = "qwen3";
  c.qk_norm = true;
  c.rope_base = 100.0f;
  check_gradients(c, {}, 1);
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

// The loss is a sum over target rows, so a mask and its complement add up to
// the unmasked loss and gradients (the output projection runs only on the
// rows a mask keeps).
TEST(TrainGradient, MaskedAndComplementRowsAddUpToAllRows) {
  TrainModel m(tiny_config(4, 2, 8, 8, true));
  randomize(m, 9);
  std::vector<int32_t> tokens(25);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 5 + i / 4) % 11);
  const int64_t n = static_cast<int64_t>(tokens.size()) - 1;
  std::vector<uint8_t> mask(static_cast<size_t>(n)), complement(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) mask[static_cast<size_t>(t)] = (t % 3 == 1 || t > 18) ? 1 : 0;
  for (int64_t t = 0; t < n; ++t) complement[static_cast<size_t>(t)] = 1 - mask[static_cast<size_t>(t)];
  std::vector<float> all(m.size(), 0.0f), parts(m.size(), 0.0f);
  const double whole = forward_backward(m, tokens.data(), n, all.data(), 1.0f, nullptr);
  const double sum = forward_backward(m, tokens.data(), n, parts.data(), 1.0f, nullptr, mask.data()) +
                     forward_backward(m, tokens.data(), n, parts.data(), 1.0f, nullptr, complement.data());
  EXPECT_NEAR(sum, whole, 1e-6 * std::abs(whole));
  double worst = 0, scale = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(all[i] - parts[i])));
    scale = std::max(scale, static_cast<double>(std::abs(all[i])));
  }
  EXPECT_LT(worst, 1e-5 * scale);
  std::vector<uint8_t> none(static_cast<size_t>(n), 0);
  std::vector<float> zero(m.size(), 0.0f);
  EXPECT_EQ(forward_backward(m, tokens.data(), n, zero.data(), 1.0f, nullptr, none.data()), 0.0);
  EXPECT_EQ(zero, std::vector<float>(m.size(), 0.0f));
}

// A window of three documents (split after token 10) trains exactly like the
// three documents run as separate sequences: same summed loss, same
// gradients (up to float summation order), and nothing crosses a boundary.
TEST(TrainGradient, DocumentsInAWindowTrainLikeSeparateSequences) {
  TrainModel m(tiny_config(4, 2, 8, 8, false));
  randomize(m, 5);
  const int32_t kEnd = 10;
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, kEnd, 9, 2, 6, 5, 3, 5, kEnd, 8, 9, 7, 9, 3, 2};
  const int64_t n = static_cast<int64_t>(tokens.size()) - 1;
  ThreadPool pool(2);
  std::vector<float> together(m.size(), 0.0f), apart(m.size(), 0.0f);
  const double loss = forward_backward(m, tokens.data(), n, together.data(), 1.0f, &pool, nullptr, kEnd);
  // Each document with the next document's first token as its last target.
  double separate = 0;
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 6}, {6, 13}, {13, n}})
    separate += forward_backward(m, tokens.data() + begin, end - begin, apart.data(), 1.0f, nullptr);
  EXPECT_NEAR(loss, separate, 1e-5 * std::abs(separate));
  double worst = 0, scale = 0;
  for (size_t i = 0; i < together.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(together[i] - apart[i])));
    scale = std::max(scale, static_cast<double>(std::abs(apart[i])));
  }
  EXPECT_GT(scale, 1e-3);
  EXPECT_LT(worst, 1e-5 * scale);
  // Without the split, the later documents see the earlier ones.
  std::vector<float> window(m.size(), 0.0f);
  EXPECT_GT(std::abs(forward_backward(m, tokens.data(), n, window.data(), 1.0f, nullptr) - loss), 1e-4);
  EXPECT_NEAR(sequence_loss(m, tokens.data(), n, nullptr, nullptr, kEnd), loss, 1e-6 * std::abs(loss));
}

// Trainer::step leaves out a window's rows after its last target (a
// conversation cut off by the window's end): rows without loss that no
// earlier row attends to add exact zeros, so the shorter window gives the
// same loss and gradients bit for bit, with a document boundary inside the
// dropped rows or not, on one thread or several.
TEST(TrainGradient, RowsAfterTheLastTargetChangeNothing) {
  TrainModel m(tiny_config(4, 2, 8, 8, true));
  randomize(m, 13);
  const int32_t kEnd = 10;
  std::vector<int32_t> tokens(41);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7 + i / 5) % 10);
  tokens[12] = kEnd;
  tokens[31] = kEnd;
  const int64_t n = static_cast<int64_t>(tokens.size()) - 1;
  ThreadPool pool(2);
  for (int64_t last : {int64_t{20}, int64_t{33}}) {  // boundary at 31 dropped, then kept
    std::vector<uint8_t> mask(static_cast<size_t>(n), 0);
    for (int64_t t = 3; t < last; t += 2) mask[static_cast<size_t>(t)] = 1;
    mask[static_cast<size_t>(last - 1)] = 1;
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      std::vector<float> whole(m.size(), 0.0f), trimmed(m.size(), 0.0f);
      const double a = forward_backward(m, tokens.data(), n, whole.data(), 0.25f, p, mask.data(), kEnd);
      const double b = forward_backward(m, tokens.data(), last, trimmed.data(), 0.25f, p, mask.data(), kEnd);
      EXPECT_EQ(a, b) << last;
      EXPECT_EQ(whole, trimmed) << last;
      // One target row fewer is a different gradient: the comparison can fail.
      std::vector<float> shorter(m.size(), 0.0f);
      forward_backward(m, tokens.data(), last - 1, shorter.data(), 0.25f, p, mask.data(), kEnd);
      EXPECT_NE(whole, shorter) << last;
    }
  }
}

}  // namespace
}  // namespace onellm
