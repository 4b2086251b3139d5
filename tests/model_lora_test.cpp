// LoRA at run time (LoraWeights + Model::set_lora): a quantized base with an
// adapter gives the logits of the merged model (W + scale B A, merged by the
// training layer and exported as a plain GGUF), in exact and fast math; the
// base is unchanged without the adapter; bad adapters are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/error.h"
#include "engine/engine.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "support/test_paths.h"
#include "train/train.h"

namespace onellm {
namespace {

using test::TempDir;

std::vector<float> logits_of(const Model& model, const std::vector<int32_t>& tokens, MathMode mode, ThreadPool* pool) {
  KvCache cache(model.config(), 16);
  std::vector<float> out(tokens.size() * static_cast<size_t>(model.config().n_vocab));
  model.forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, out.data(), true, pool, mode);
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
  return worst;
}

double rms_diff_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    n += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(d / n);
}

// A quantized 2-layer base of width n_embd.
void write_base(int64_t n_embd, const std::string& path, int64_t n_ctx = 64, const std::string& arch = "llama") {
  TinyModelSpec spec;
  spec.arch = arch;
  spec.type = TensorType::Q8_0;
  spec.n_embd = n_embd;
  spec.n_layer = 2;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_ff = 96;
  spec.n_ctx = n_ctx;
  write_tiny_model(spec, path);
}

struct AdaptedModel {
  TempDir dir;
  std::unique_ptr<GgufFile> base_file;

  explicit AdaptedModel(const std::string& arch = "llama") {
    write_base(64, dir.file("base.gguf"), 64, arch);
    base_file = GgufFile::open(dir.file("base.gguf"));
    const TrainModel base = TrainModel::from_gguf(*base_file);
    LoraOptions lo;
    lo.rank = 4;
    lo.alpha = 8.0f;  // every kind, so each add_lora site is exercised
    LoraAdapter a = LoraAdapter::init(base, lo, 3);
    std::mt19937_64 gen(11);
    std::uniform_real_distribution<float> u(-0.15f, 0.15f);
    for (float& p : a.params()) p = u(gen);
    a.save(dir.file("adapter.gguf"));
    TrainModel merged = base;
    a.merge(base, merged);
    export_gguf(merged, tokenizer_metadata_from_gguf(*base_file), dir.file("merged.gguf"));
  }
};

TEST(ModelLora, RunTimeAdapterEqualsTheMergedModel) {
  AdaptedModel m;
  auto model = Model::load(m.dir.file("base.gguf"));
  auto merged = Model::load(m.dir.file("merged.gguf"));
  const std::vector<int32_t> tokens = {1, 50, 7, 300, 9, 42, 3};
  const std::vector<float> base_exact = logits_of(*model, tokens, MathMode::kExact, nullptr);

  auto lora = LoraWeights::load(m.dir.file("adapter.gguf"), *model);
  EXPECT_EQ(lora->rank(), 4);
  EXPECT_FLOAT_EQ(lora->scale(), 2.0f);
  model->set_lora(lora);
  ThreadPool pool(2);
  const std::vector<float> want = logits_of(*merged, tokens, MathMode::kExact, nullptr);
  const std::vector<float> got = logits_of(*model, tokens, MathMode::kExact, &pool);
  EXPECT_LT(max_abs_diff(got, want), 1e-4);
  ASSERT_GT(max_abs_diff(base_exact, want), 1e-2) << "the adapter must change the logits for the test to mean anything";
  // Fast math (int8 activations) stays as close to the exact adapted model
  // as the fast path is to the exact one without an adapter.
  const std::vector<float> fast = logits_of(*model, tokens, MathMode::kFast, &pool);
  EXPECT_LT(rms_diff_relative(fast, want), 0.08);
  // Without it again, the base's own logits: the weights were never touched.
  model->set_lora(nullptr);
  EXPECT_EQ(logits_of(*model, tokens, MathMode::kExact, nullptr), base_exact);
}

// Adapters trained on qwen2 (q/k/v biases) and qwen3 (per-head q/k norms)
// bases apply at run time like llama's.
TEST(ModelLora, QwenAdaptersAtRunTimeEqualTheMergedModel) {
  for (const char* arch : {"qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    AdaptedModel m(arch);
    auto model = Model::load(m.dir.file("base.gguf"));
    auto merged = Model::load(m.dir.file("merged.gguf"));
    const std::vector<int32_t> tokens = {1, 50, 7, 300, 9, 42, 3};
    const std::vector<float> base_exact = logits_of(*model, tokens, MathMode::kExact, nullptr);
    model->set_lora(LoraWeights::load(m.dir.file("adapter.gguf"), *model));
    const std::vector<float> want = logits_of(*merged, tokens, MathMode::kExact, nullptr);
    EXPECT_LT(max_abs_diff(logits_of(*model, tokens, MathMode::kExact, nullptr), want), 1e-4);
    EXPECT_GT(max_abs_diff(base_exact, want), 1e-2);
  }
}

// Per-sequence adapters (what the service gives each session): segments with
// adapter A, none, adapter B and A again in one pass get exactly the logits
// each gets alone (exact math), and close to them in fast math.
TEST(ModelLora, SequencesWithDifferentAdaptersShareAPass) {
  AdaptedModel m;
  {
    const TrainModel base = TrainModel::from_gguf(*m.base_file);
    LoraOptions lo;
    lo.rank = 2;
    lo.alpha = 4.0f;
    lo.targets = {"attn_v", "ffn_down"};
    LoraAdapter b = LoraAdapter::init(base, lo, 5);
    std::mt19937_64 gen(12);
    std::uniform_real_distribution<float> u(-0.2f, 0.2f);
    for (float& p : b.params()) p = u(gen);
    b.save(m.dir.file("adapter_b.gguf"));
  }
  auto model = Model::load(m.dir.file("base.gguf"));
  auto a = LoraWeights::load(m.dir.file("adapter.gguf"), *model);
  auto b = LoraWeights::load(m.dir.file("adapter_b.gguf"), *model);
  const std::vector<std::vector<int32_t>> prompts = {{1, 50, 7}, {300, 9}, {42, 3, 17, 8}, {5}};
  const std::vector<const LoraWeights*> adapters = {a.get(), nullptr, b.get(), a.get()};
  const int64_t V = model->config().n_vocab;
  ThreadPool pool(2);
  for (MathMode mode : {MathMode::kExact, MathMode::kFast}) {
    std::vector<std::vector<float>> alone(prompts.size()), together(prompts.size());
    std::vector<KvCache> caches;
    for (size_t i = 0; i < prompts.size(); ++i) caches.emplace_back(model->config(), 16);
    std::vector<Model::ForwardSegment> segments;
    for (size_t i = 0; i < prompts.size(); ++i) {
      KvCache cache(model->config(), 16);
      alone[i].resize(static_cast<size_t>(V));
      const Model::ForwardSegment one{prompts[i].data(), static_cast<int64_t>(prompts[i].size()), &cache,
                                      alone[i].data(), false, adapters[i]};
      model->forward_batch(&one, 1, &pool, mode);
      together[i].resize(static_cast<size_t>(V));
      segments.push_back({prompts[i].data(), static_cast<int64_t>(prompts[i].size()), &caches[i], together[i].data(),
                          false, adapters[i]});
    }
    model->forward_batch(segments.data(), static_cast<int64_t>(segments.size()), &pool, mode);
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (mode == MathMode::kExact) EXPECT_EQ(together[i], alone[i]) << "sequence " << i;
      else EXPECT_LT(rms_diff_relative(together[i], alone[i]), 1e-3) << "sequence " << i;
    }
    // The adapters matter, so the comparison above could fail.
    EXPECT_GT(max_abs_diff(alone[0], logits_of(*model, prompts[0], mode, &pool)), 1e-2);
    EXPECT_GT(max_abs_diff(alone[2], logits_of(*model, prompts[2], mode, &pool)), 1e-3);
  }
  // Through the engine: Sequences carry their adapter for life.
  auto tokenizer = Tokenizer::from_gguf(model->gguf());
  SequenceOptions with_a;
  with_a.math = MathMode::kExact;
  with_a.lora = a;
  SequenceOptions plain;
  plain.math = MathMode::kExact;
  Sequence s1(*model, *tokenizer, &pool, with_a), s2(*model, *tokenizer, &pool, plain);
  Sequence r1(*model, *tokenizer, &pool, with_a), r2(*model, *tokenizer, &pool, plain);
  r1.eval(prompts[0].data(), 3);
  r2.eval(prompts[0].data(), 3);
  Sequence* both[] = {&s1, &s2};
  const int32_t* toks[] = {prompts[0].data(), prompts[0].data()};
  const int64_t counts[] = {3, 3};
  Sequence::eval_batch(both, toks, counts, 2);
  EXPECT_EQ(s1.logits(), r1.logits());
  EXPECT_EQ(s2.logits(), r2.logits());
  EXPECT_NE(s1.logits(), s2.logits());
  // An adapter loaded for another model (even of the same file) is refused.
  auto other = Model::load(m.dir.file("base.gguf"));
  auto foreign = LoraWeights::load(m.dir.file("adapter.gguf"), *other);
  KvCache cache(model->config(), 16);
  std::vector<float> out(static_cast<size_t>(V));
  const Model::ForwardSegment bad{prompts[0].data(), 3, &cache, out.data(), false, foreign.get()};
  EXPECT_THROW(model->forward_batch(&bad, 1, &pool, MathMode::kFast), Error);
}

// A pass longer than the FFN's row chunk (matmul_rows_to_amortize: 128 at
// the scalar level) runs the FFN in pieces, and segments that straddle a
// piece keep their own adapter's FFN deltas: each segment's logits equal its
// logits alone (a pass shorter than one chunk), exact math.
TEST(ModelLora, SegmentsAcrossTheFfnRowChunksKeepTheirAdapters) {
  AdaptedModel m;
  write_base(64, m.dir.file("long.gguf"), 512);  // the same shapes, a longer context
  auto model = Model::load(m.dir.file("long.gguf"));
  auto a = LoraWeights::load(m.dir.file("adapter.gguf"), *model);
  const CpuLevel saved = cpu_level();
  set_cpu_level(CpuLevel::kScalar);
  ASSERT_EQ(matmul_rows_to_amortize(), 128);
  const int64_t V = model->config().n_vocab;
  const int64_t lengths[] = {100, 90, 80};  // rows 0-99, 100-189, 190-269: chunks end at 128 and 256
  const LoraWeights* adapters[] = {a.get(), nullptr, a.get()};
  std::vector<std::vector<int32_t>> prompts(3);
  for (size_t i = 0; i < 3; ++i)
    for (int64_t t = 0; t < lengths[i]; ++t) prompts[i].push_back(static_cast<int32_t>((37 * t + 11 * i + 1) % V));
  ThreadPool pool(2);
  std::vector<KvCache> caches;
  std::vector<std::vector<float>> together(3, std::vector<float>(static_cast<size_t>(V)));
  std::vector<Model::ForwardSegment> segments;
  for (size_t i = 0; i < 3; ++i) caches.emplace_back(model->config(), 128);
  for (size_t i = 0; i < 3; ++i)
    segments.push_back({prompts[i].data(), lengths[i], &caches[i], together[i].data(), false, adapters[i]});
  model->forward_batch(segments.data(), 3, &pool, MathMode::kExact);
  for (size_t i = 0; i < 3; ++i) {
    KvCache cache(model->config(), 128);
    std::vector<float> alone(static_cast<size_t>(V));
    const Model::ForwardSegment one{prompts[i].data(), lengths[i], &cache, alone.data(), false, adapters[i]};
    model->forward_batch(&one, 1, &pool, MathMode::kExact);
    EXPECT_EQ(together[i], alone) << "sequence " << i;
  }
  set_cpu_level(saved);
}

TEST(ModelLora, BadAdaptersAreRefusedByName) {
  AdaptedModel m;
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "accepted; expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // An adapter for another shape.
  write_base(32, m.dir.file("other.gguf"));
  auto other_model = Model::load(m.dir.file("other.gguf"));
  expect_error([&] { LoraWeights::load(m.dir.file("adapter.gguf"), *other_model); }, "blk.0.attn_q.weight.lora_a");
  // A model is not an adapter.
  auto model = Model::load(m.dir.file("base.gguf"));
  expect_error([&] { LoraWeights::load(m.dir.file("base.gguf"), *model); }, "not a LoRA adapter");
  // A tensor for a layer the model does not have, and a lone half of a pair.
  auto write_adapter = [&](const std::string& name, const std::vector<std::pair<std::string, std::vector<int64_t>>>& ts) {
    GgufWriter w;
    w.set("general.architecture", GgufValue::of_string("llama"));
    w.set("general.type", GgufValue::of_string("adapter"));
    w.set("adapter.type", GgufValue::of_string("lora"));
    w.set("adapter.lora.alpha", GgufValue::of_f32(4.0f));
    std::vector<float> zeros(64 * 96);
    for (const auto& [tensor, dims] : ts) w.add_tensor_f32(tensor, TensorType::F32, dims, zeros.data());
    w.write(m.dir.file(name));
    return m.dir.file(name);
  };
  const std::string stray = write_adapter("stray.gguf", {{"blk.7.attn_q.weight.lora_a", {64, 2}}});
  expect_error([&] { LoraWeights::load(stray, *model); }, "blk.7.attn_q.weight.lora_a");
  const std::string lone = write_adapter("lone.gguf", {{"blk.1.ffn_up.weight.lora_a", {64, 2}}});
  expect_error([&] { LoraWeights::load(lone, *model); }, "blk.1.ffn_up.weight");
  const std::string empty = write_adapter("empty.gguf", {});
  expect_error([&] { LoraWeights::load(empty, *model); }, "adapts no tensor");
  // A type onellm does not compute with: the error names the tensor and the type.
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("general.type", GgufValue::of_string("adapter"));
  w.set("adapter.type", GgufValue::of_string("lora"));
  w.set("adapter.lora.alpha", GgufValue::of_f32(4.0f));
  w.add_tensor("blk.0.attn_q.weight.lora_a", TensorType::I8, {64, 2}, std::vector<uint8_t>(64 * 2));
  w.write(m.dir.file("i8.gguf"));
  expect_error([&] { LoraWeights::load(m.dir.file("i8.gguf"), *model); }, "'blk.0.attn_q.weight.lora_a' has type I8");
}

}  // namespace
}  // namespace onellm
