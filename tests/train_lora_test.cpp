// LoRA: adapter gradients against finite differences of the double reference
// with W + (alpha/r) B A merged independently here, fine-tuning that lowers
// the loss while the base stays frozen, and the adapter GGUF round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "base/error.h"
#include "support/test_paths.h"
#include "train/train.h"
#include "train_reference.h"

namespace onellm {
namespace {

using test::TempDir;
using test::Vec;

ModelConfig tiny_config() {
  ModelConfig c;
  c.arch = "llama";
  c.n_vocab = 11;
  c.n_embd = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.n_ff = 12;
  c.n_ctx_train = 64;
  return c;
}

void fill_uniform(float* p, size_t n, double lo, double hi, uint64_t seed) {
  std::mt19937_64 gen(seed);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(lo + (hi - lo) * (static_cast<double>(gen() >> 11) / 9007199254740992.0));
}

// The adapted model's parameters in double: W + scale * B A for each pair.
Vec merged_reference(const TrainModel& base, const LoraAdapter& a, const Vec& adapter_params) {
  Vec p(base.params().begin(), base.params().end());
  for (const ParamTensor& ta : a.tensors()) {
    if (!ta.name.ends_with(".lora_a")) continue;
    const std::string w_name = ta.name.substr(0, ta.name.size() - 7);
    const ParamTensor& tb = a.tensors()[static_cast<size_t>(&ta - a.tensors().data()) + 1];
    const ParamTensor& w = base.tensor(w_name);
    const int64_t rows = w.dims[1], cols = w.dims[0], r = a.rank();
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t k = 0; k < r; ++k)
          p[w.offset + i * cols + j] +=
              a.scale() * adapter_params[tb.offset + i * r + k] * adapter_params[ta.offset + k * cols + j];
  }
  return p;
}

void check_adapter_gradients(const ModelConfig& config) {
  TrainModel base(config);
  fill_uniform(base.data(), base.size(), -0.6, 0.6, 1);
  LoraOptions o;
  o.rank = 2;
  o.alpha = 3.0f;
  LoraAdapter a = LoraAdapter::init(base, o, 2);
  fill_uniform(a.params().data(), a.params().size(), -0.5, 0.5, 3);  // B != 0, so dA is not zero
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6};
  std::vector<float> grads(a.params().size(), 0.0f);
  const double loss = lora_forward_backward(base, a, tokens.data(), 7, grads.data(), 1.0f, nullptr);

  Vec ap(a.params().begin(), a.params().end());
  EXPECT_NEAR(loss, test::reference_loss(base, merged_reference(base, a, ap), tokens), 1e-5 * loss);
  const double h = 1e-5;
  for (const ParamTensor& t : a.tensors()) {
    double err2 = 0, norm2 = 0;
    for (size_t i = t.offset; i < t.offset + t.size; ++i) {
      const double saved = ap[i];
      ap[i] = saved + h;
      const double up = test::reference_loss(base, merged_reference(base, a, ap), tokens);
      ap[i] = saved - h;
      const double down = test::reference_loss(base, merged_reference(base, a, ap), tokens);
      ap[i] = saved;
      const double numeric = (up - down) / (2 * h);
      err2 += (grads[i] - numeric) * (grads[i] - numeric);
      norm2 += numeric * numeric;
    }
    SCOPED_TRACE(t.name);
    EXPECT_GT(norm2, 1e-8);
    EXPECT_LT(std::sqrt(err2 / norm2), 1e-4);
  }
}

TEST(TrainLora, AdapterGradientsMatchFiniteDifferences) { check_adapter_gradients(tiny_config()); }

// qwen2's biases and qwen3's head norms lie between the adapted q/k and the
// attention: their backward must carry the gradient through to the adapter.
TEST(TrainLora, QwenAdapterGradientsMatchFiniteDifferences) {
  ModelConfig q2 = tiny_config();
  q2.arch = "qwen2";
  q2.qkv_bias = true;
  check_adapter_gradients(q2);
  ModelConfig q3 = tiny_config();
  q3.arch = "qwen3";
  q3.qk_norm = true;
  q3.head_dim = 6;
  check_adapter_gradients(q3);
}

// Token i of a stream where most steps add `stride` (mod 11) to the token.
std::vector<int32_t> stride_corpus(size_t n, size_t stride) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<int32_t>((i * stride + i / 7) % 11));
  return out;
}

TEST(TrainLora, FineTuningLearnsANewTaskWithTheBaseFrozen) {
  ModelConfig c = tiny_config();
  c.n_embd = 32;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_ff = 48;
  const std::vector<int32_t> task_a = stride_corpus(4000, 3), task_b = stride_corpus(4000, 5);
  TrainOptions o;
  o.seq_len = 32;
  o.batch_size = 4;
  o.adam.lr = 1e-2f;
  o.adam.warmup_steps = 5;
  o.adam.total_steps = 40;
  o.adam.weight_decay = 0.0f;
  Trainer pretrain(TrainModel::init(c, 8), task_a, o);
  pretrain.run({});
  const TrainModel base = pretrain.model();

  LoraOptions lo;
  lo.rank = 4;
  LoraAdapter adapter = LoraAdapter::init(base, lo, 9);
  EXPECT_EQ(adapter.tensors().size(), 2u * 7u * 2u) << "A and B for 7 matrices in 2 layers";
  o.adam.lr = 2e-2f;
  o.adam.total_steps = 60;
  LoraTrainer trainer(base, adapter, task_b, o);
  const double before = trainer.evaluate(task_b);
  EXPECT_NEAR(before, mean_loss(base, task_b, 32, nullptr), 1e-9) << "B = 0: the adapter starts as a no-op";
  EXPECT_GT(before, 2.0) << "the base should not already know task B";
  trainer.run({});
  EXPECT_LT(trainer.evaluate(task_b), 0.25 * before);
  EXPECT_EQ(trainer.base().params(), base.params()) << "the base must not change";
}

// A real Qwen2 GGUF (the shared tiny-qwen2, Q8_0, its 50 304-token
// vocabulary): an adapter learns a repeated sentence of its golden prompt's
// tokens while the base stays as loaded, dequantized or (as `finetune`
// loads it) mapped in its Q8_0 blocks.
void fine_tune_shared_qwen2(const TrainModel& base) {
  const std::vector<int32_t> sentence = {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13};
  std::vector<int32_t> corpus;
  for (int i = 0; i < 60; ++i) corpus.insert(corpus.end(), sentence.begin(), sentence.end());
  TrainOptions o;
  o.seq_len = 30;
  o.batch_size = 2;
  o.adam.lr = 1e-2f;
  o.adam.warmup_steps = 3;
  o.adam.total_steps = 25;
  o.n_threads = 2;
  LoraOptions lo;
  lo.rank = 8;
  lo.alpha = 16.0f;
  LoraTrainer trainer(base, LoraAdapter::init(base, lo, 4), corpus, o);
  const double before = trainer.evaluate(corpus);
  trainer.run({});
  EXPECT_LT(trainer.evaluate(corpus), 0.25 * before) << "from " << before;
  EXPECT_EQ(trainer.base().params(), base.params()) << "the base must not change";
}

TEST(TrainLora, FineTunesTheSharedQwen2Model) {
  ONELLM_REQUIRE_SHARED();
  std::shared_ptr<GgufFile> file = GgufFile::open(test::shared_dir() + "/models/tiny-qwen2-Q8_0.gguf");
  {
    SCOPED_TRACE("dequantized");
    fine_tune_shared_qwen2(TrainModel::from_gguf(*file));
  }
  SCOPED_TRACE("mapped");
  fine_tune_shared_qwen2(TrainModel::map_gguf(file));
}

TEST(TrainLora, AdapterGgufRoundTripAndMergedExport) {
  TempDir dir;
  TinyModelSpec spec;
  spec.type = TensorType::Q8_0;  // a quantized base
  spec.n_embd = 64;
  spec.n_layer = 1;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_ff = 96;
  spec.n_ctx = 64;
  write_tiny_model(spec, dir.file("base.gguf"));
  auto file = GgufFile::open(dir.file("base.gguf"));
  const TrainModel base = TrainModel::from_gguf(*file);
  LoraOptions lo;
  lo.rank = 3;
  lo.alpha = 6.0f;
  lo.targets = {"attn_q", "ffn_down"};
  LoraAdapter a = LoraAdapter::init(base, lo, 1);
  fill_uniform(a.params().data(), a.params().size(), -0.1, 0.1, 5);
  a.save(dir.file("adapter.gguf"));

  auto g = GgufFile::open(dir.file("adapter.gguf"));
  EXPECT_EQ(g->get_string("general.type"), "adapter");
  EXPECT_EQ(g->get_string("adapter.type"), "lora");
  EXPECT_FLOAT_EQ(static_cast<float>(g->get_float("adapter.lora.alpha")), 6.0f);
  const GgufTensor& qa = g->tensor("blk.0.attn_q.weight.lora_a");
  EXPECT_EQ(qa.dims, (std::vector<int64_t>{64, 3}));
  EXPECT_EQ(g->tensor("blk.0.ffn_down.weight.lora_b").dims, (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(g->find_tensor("blk.0.attn_k.weight.lora_a"), nullptr);

  LoraAdapter loaded = LoraAdapter::load(dir.file("adapter.gguf"), base);
  EXPECT_EQ(loaded.params(), a.params());
  EXPECT_EQ(loaded.rank(), 3);
  EXPECT_FLOAT_EQ(loaded.scale(), 2.0f);

  // The merged model exported as a plain GGUF runs with the adapted logits.
  TrainModel merged = base;
  loaded.merge(base, merged);
  export_gguf(merged, tokenizer_metadata_from_gguf(*file), dir.file("merged.gguf"));
  const std::vector<int32_t> tokens = {1, 50, 7, 300, 9};
  std::vector<float> expected(tokens.size() * static_cast<size_t>(merged.config().n_vocab));
  forward_logits(merged, tokens.data(), 5, expected.data(), nullptr);
  auto model = Model::load(dir.file("merged.gguf"));
  KvCache cache(model->config(), 8);
  std::vector<float> got(expected.size());
  model->forward(tokens.data(), 5, cache, got.data(), true, nullptr, MathMode::kExact);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(got[i] - expected[i])));
  EXPECT_LT(worst, 1e-5);

  // An adapter for another shape is refused by name.
  TinyModelSpec other = spec;
  other.n_embd = 32;
  write_tiny_model(other, dir.file("other.gguf"));
  const TrainModel other_base = TrainModel::from_gguf(*GgufFile::open(dir.file("other.gguf")));
  try {
    LoraAdapter::load(dir.file("adapter.gguf"), other_base);
    FAIL() << "mismatched adapter accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LoraAdapter::load(dir.file("base.gguf"), base), Error) << "a model is not an adapter";
  lo.targets = {"attn_qq"};
  EXPECT_THROW(LoraAdapter::init(base, lo, 1), Error);
}

}  // namespace
}  // namespace onellm
