// GGUF in and out of training: weights loaded from (quantized) llama, qwen2
// and qwen3 GGUFs, and exported models that Model::load runs with the logits
// the training forward computes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "support/test_paths.h"
#include "train/train.h"

namespace onellm {
namespace {

using test::TempDir;

TinyModelSpec small_spec(TensorType type, bool tied, bool rope_freqs) {
  TinyModelSpec s;
  s.arch = "llama";
  s.type = type;
  s.n_embd = 64;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 96;
  s.n_ctx = 64;
  s.tied_output = tied;
  s.llama3_rope_freqs = rope_freqs;
  return s;
}

// Model::forward (the inference path) over tokens, all logits.
std::vector<float> inference_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  auto model = Model::load(path);
  KvCache cache(model->config(), static_cast<int64_t>(tokens.size()));
  std::vector<float> logits(tokens.size() * static_cast<size_t>(model->config().n_vocab));
  model->forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits.data(), true, nullptr,
                 MathMode::kExact);
  return logits;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(b[i])));
  }
  EXPECT_GT(scale, 0.1) << "logits are suspiciously flat";
  EXPECT_LT(worst, tol) << "largest logit " << scale;
}

const std::vector<int32_t> kTokens = {1, 300, 42, 7, 99, 260, 261, 5, 18, 77, 3, 140};

TEST(TrainExport, LoadedWeightsReproduceInferenceLogits) {
  TempDir dir;
  for (TensorType type : {TensorType::F32, TensorType::Q8_0, TensorType::Q4_0}) {
    for (bool tied : {false, true}) {
      SCOPED_TRACE(tensor_type_name(static_cast<uint32_t>(type)) + (tied ? " tied" : " untied"));
      const std::string path = dir.file("m.gguf");
      write_tiny_model(small_spec(type, tied, !tied), path);
      auto file = GgufFile::open(path);
      TrainModel m = TrainModel::from_gguf(*file);
      EXPECT_EQ(m.config().tied_output, tied);
      std::vector<float> train_logits(kTokens.size() * static_cast<size_t>(m.config().n_vocab));
      forward_logits(m, kTokens.data(), static_cast<int64_t>(kTokens.size()), train_logits.data(), nullptr);
      expect_close(train_logits, inference_logits(path, kTokens), 1e-5);
    }
  }
}

// A few training steps on a model written from spec, exported: Model::load
// runs the export with the logits the training forward computes, and the
// file keeps the base's architecture keys and tokenizer.
void check_trained_export(const TinyModelSpec& spec) {
  TempDir dir;
  write_tiny_model(spec, dir.file("base.gguf"));
  auto base = GgufFile::open(dir.file("base.gguf"));
  TrainModel m = TrainModel::from_gguf(*base);
  // Move the weights away from the base so the export cannot pass by
  // accident (a few steps on a repeated sentence).
  std::vector<int32_t> corpus;
  for (int i = 0; i < 40; ++i) corpus.insert(corpus.end(), kTokens.begin(), kTokens.end());
  TrainOptions o;
  o.seq_len = 16;
  o.batch_size = 2;
  o.adam.total_steps = 3;
  o.adam.warmup_steps = 1;
  Trainer trainer(std::move(m), corpus, o, tokenizer_metadata_from_gguf(*base));
  trainer.run({});
  const std::string out = dir.file("trained.gguf");
  export_gguf(trainer.model(), trainer.tokenizer(), out);

  std::vector<float> train_logits(kTokens.size() * static_cast<size_t>(trainer.model().config().n_vocab));
  forward_logits(trainer.model(), kTokens.data(), static_cast<int64_t>(kTokens.size()), train_logits.data(), nullptr);
  expect_close(train_logits, inference_logits(out, kTokens), 1e-5);
  EXPECT_GT(std::abs(train_logits[5] - inference_logits(dir.file("base.gguf"), kTokens)[5]), 1e-4)
      << "training did not change the model";

  auto exported = GgufFile::open(out);
  for (const std::string& key : base->keys()) {
    if (!key.starts_with("tokenizer.") && !key.starts_with(spec.arch + ".")) continue;
    ASSERT_NE(exported->find(key), nullptr) << key;
    EXPECT_EQ(exported->find(key)->type, base->find(key)->type) << key;
    if (base->find(key)->type == GgufType::ARRAY) {
      EXPECT_EQ(exported->find(key)->size(), base->find(key)->size()) << key;
    }
  }
  for (const GgufTensor& t : base->tensors()) EXPECT_NE(exported->find_tensor(t.name), nullptr) << t.name;
  EXPECT_EQ(exported->get_array("tokenizer.ggml.tokens").string_at(300),
            base->get_array("tokenizer.ggml.tokens").string_at(300));
}

TEST(TrainExport, ExportedModelLoadsAndMatchesTrainingForward) {
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    check_trained_export(small_spec(TensorType::F32, tied, !tied));
  }
}

// qwen2's q/k/v biases and qwen3's per-head q/k norms train with the rest,
// from quantized files too, and load back with the logits training saw.
TEST(TrainExport, QwenModelsLoadTrainAndExport) {
  TempDir dir;
  for (const char* arch : {"qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    TinyModelSpec s = small_spec(TensorType::Q8_0, true, false);
    s.arch = arch;
    if (s.arch == "qwen3") s.head_dim = 32;  // 4 heads of 32 on n_embd 64, as Qwen3 widens its heads
    const std::string path = dir.file(s.arch + ".gguf");
    write_tiny_model(s, path);
    auto file = GgufFile::open(path);
    TrainModel m = TrainModel::from_gguf(*file);
    EXPECT_EQ(m.config().qkv_bias, s.arch == "qwen2");
    EXPECT_EQ(m.config().qk_norm, s.arch == "qwen3");
    std::vector<float> train_logits(kTokens.size() * static_cast<size_t>(m.config().n_vocab));
    forward_logits(m, kTokens.data(), static_cast<int64_t>(kTokens.size()), train_logits.data(), nullptr);
    expect_close(train_logits, inference_logits(path, kTokens), 1e-5);

    s.type = TensorType::F32;
    check_trained_export(s);
  }
}

TEST(TrainExport, QuantizedExportEqualsTheSameModelWrittenQuantized) {
  TempDir dir;
  write_tiny_model(small_spec(TensorType::F32, false, false), dir.file("base.gguf"));
  write_tiny_model(small_spec(TensorType::Q8_0, false, false), dir.file("base_q8.gguf"));
  auto base = GgufFile::open(dir.file("base.gguf"));
  TrainModel m = TrainModel::from_gguf(*base);
  export_gguf(m, tokenizer_metadata_from_gguf(*base), dir.file("q8.gguf"), TensorType::Q8_0);
  auto q = GgufFile::open(dir.file("q8.gguf"));
  auto expected = GgufFile::open(dir.file("base_q8.gguf"));
  for (const GgufTensor& t : expected->tensors()) {
    SCOPED_TRACE(t.name);
    const GgufTensor& got = q->tensor(t.name);
    ASSERT_EQ(got.type, t.type);
    ASSERT_EQ(got.n_bytes, t.n_bytes);
    EXPECT_EQ(std::memcmp(got.data, t.data, t.n_bytes), 0);
  }
  EXPECT_EQ(inference_logits(dir.file("q8.gguf"), kTokens), inference_logits(dir.file("base_q8.gguf"), kTokens));
  // 96 columns (ffn_down) are not a whole number of 256-element K-quant blocks.
  EXPECT_THROW(export_gguf(m, {}, dir.file("q4k.gguf"), TensorType::Q4_K), Error);
}

TEST(TrainExport, TokenListBecomesABpeTokenizerSection) {
  TempDir dir;
  ModelConfig c;
  c.arch = "llama";
  c.n_vocab = 260;
  c.n_embd = 32;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_ff = 64;
  c.n_ctx_train = 128;
  c.tied_output = true;
  TrainModel m = TrainModel::init(c, 4);
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int i = 0; i < 256; ++i) {
    tokens.push_back("b" + std::to_string(i));
    types.push_back(1);
  }
  for (const char* s : {"he", "llo", "<|endoftext|>", "<|im_end|>"}) {
    tokens.push_back(s);
    types.push_back(std::string(s)[0] == '<' ? 3 : 1);
  }
  GgufMetadata tok = tokenizer_metadata_from_tokens(tokens, types, {"h e", "l lo"}, 258, 259);
  export_gguf(m, tok, dir.file("m.gguf"));
  auto f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens").size(), 260u);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 259);
  EXPECT_EQ(f->get_array("tokenizer.ggml.merges").string_at(1), "l lo");
  EXPECT_EQ(Model::load(dir.file("m.gguf"))->config().n_vocab, 260);

  tokens.pop_back();
  types.pop_back();
  GgufMetadata short_tok = tokenizer_metadata_from_tokens(tokens, types, {}, 1, 2);
  EXPECT_THROW(export_gguf(m, short_tok, dir.file("bad.gguf")), Error) << "vocabulary size mismatch";
  EXPECT_THROW(tokenizer_metadata_from_tokens(tokens, {1, 2}, {}, 1, 2), Error);
  EXPECT_THROW(tokenizer_metadata_from_tokens(tokens, types, {}, 1, 9999), Error);
}

// The training forward of the shared tiny Qwen2 files against llama.cpp's
// logits (../shared/golden): F32 weights against its F32 run, Q8_0 against
// its F32 math on the dequantized weights; the top 20 of every position
// within the golden README's 1e-3.
TEST(TrainExport, Qwen2TrainingForwardMatchesTheGoldenLogits) {
  ONELLM_REQUIRE_SHARED();
  for (auto [model, golden] : {std::pair{"tiny-qwen2-F32.gguf", "kv_f32/tiny-qwen2-F32.p1.json"},
                               std::pair{"tiny-qwen2-Q8_0.gguf", "dequant_f32/tiny-qwen2-Q8_0.p2.json"}}) {
    SCOPED_TRACE(model);
    std::ifstream in(test::shared_dir() + "/golden/logits/" + golden);
    ASSERT_TRUE(in.good()) << golden;
    const nlohmann::json g = nlohmann::json::parse(in);
    auto file = GgufFile::open(test::shared_dir() + "/models/" + model);
    const TrainModel m = TrainModel::from_gguf(*file);
    EXPECT_TRUE(m.config().qkv_bias);
    const std::vector<int32_t> tokens = g["tokens"].get<std::vector<int32_t>>();
    const int64_t V = m.config().n_vocab;
    std::vector<float> logits(tokens.size() * static_cast<size_t>(V));
    forward_logits(m, tokens.data(), static_cast<int64_t>(tokens.size()), logits.data(), nullptr);
    double worst = 0;
    for (const nlohmann::json& top : g["top"]) {
      const int64_t pos = top["pos"].get<int64_t>();
      for (size_t i = 0; i < top["ids"].size(); ++i) {
        const double want = top["logits"][i].get<double>();
        worst = std::max(worst, std::abs(logits[static_cast<size_t>(pos * V + top["ids"][i].get<int64_t>())] - want));
      }
    }
    EXPECT_LT(worst, 1e-3) << "largest top-20 logit difference against llama.cpp";
  }
}

TEST(TrainExport, UnknownArchitecturesAreRefusedByName) {
  ModelConfig c;
  c.arch = "gemma";
  c.n_vocab = 16;
  c.n_embd = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_ff = 8;
  c.n_ctx_train = 16;
  try {
    TrainModel m(c);
    FAIL() << "gemma accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemma"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace onellm
