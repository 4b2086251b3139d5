// Writes what tests/py/train_torch_test.py checks against PyTorch: tiny
// models' initial weights (llama tied and untied, qwen2 with q/k/v biases,
// qwen3 with per-head q/k norms and wide heads), the batches, losses,
// gradients and the weights after a few AdamW steps. Runs only when ONELLM_TRAIN_DUMP names the output
// JSON file (the Python test sets it); skipped otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train/train.h"

namespace onellm {
namespace {

nlohmann::json tensors_json(const TrainModel& m, const float* values) {
  nlohmann::json out = nlohmann::json::object();
  for (const ParamTensor& t : m.tensors()) {
    out[t.name] = {{"dims", t.dims},
                   {"values", std::vector<float>(values + t.offset, values + t.offset + t.size)}};
  }
  return out;
}

nlohmann::json dump_case(bool tied, const std::string& arch) {
  ModelConfig c;
  c.arch = arch;
  c.qkv_bias = arch == "qwen2";
  c.qk_norm = arch == "qwen3";
  if (arch == "qwen3") c.head_dim = 8;  // 4 heads of 8 on n_embd 16
  c.n_vocab = 13;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_ff = 24;
  c.n_ctx_train = 32;
  c.tied_output = tied;
  c.rope_base = 500.0f;
  TrainModel init = TrainModel::init(c, 21);
  // Weights 3x what init() draws: every path matters, yet the run is not so
  // chaotic that float32 vs float64 rounding changes the trajectory.
  for (size_t i = 0; i < init.size(); ++i) init.data()[i] *= 3.0f;
  // Except qwen3's head norms: at 3 every head's q and k have length 3 sqrt(8),
  // the scores reach ~25 and a few steps diverge between float32 and float64.
  for (const ParamTensor& t : init.tensors())
    if (t.name.ends_with("attn_q_norm.weight") || t.name.ends_with("attn_k_norm.weight"))
      std::fill_n(init.data() + t.offset, t.size, 1.0f);

  std::vector<int32_t> corpus;
  for (int i = 0; i < 200; ++i) corpus.push_back(static_cast<int32_t>((i * i + 3 * i) % 13));
  TrainOptions o;
  o.seq_len = 10;
  o.batch_size = 3;
  o.data_seed = 5;
  o.adam.lr = 2e-2f;
  o.adam.min_lr = 2e-3f;
  o.adam.warmup_steps = 2;
  o.adam.total_steps = 5;
  o.adam.weight_decay = 0.1f;
  o.adam.grad_clip = 0.5f;  // small enough that clipping happens

  nlohmann::json j;
  j["config"] = {{"n_vocab", c.n_vocab}, {"n_embd", c.n_embd},   {"n_layer", c.n_layer},
                 {"n_head", c.n_head},   {"n_head_kv", c.n_head_kv}, {"head_dim", init.config().head_dim},
                 {"n_ff", c.n_ff},       {"rms_eps", c.rms_eps}, {"rope_base", c.rope_base},
                 {"tied_output", tied},  {"arch", arch},         {"qkv_bias", c.qkv_bias},
                 {"qk_norm", c.qk_norm}};
  j["options"] = {{"seq_len", o.seq_len},     {"lr", o.adam.lr},       {"beta1", o.adam.beta1},
                  {"beta2", o.adam.beta2},    {"eps", o.adam.eps},     {"weight_decay", o.adam.weight_decay},
                  {"grad_clip", o.adam.grad_clip}};
  j["corpus"] = corpus;
  j["initial"] = tensors_json(init, init.data());

  // Gradients of the first batch, before any update (unclipped).
  {
    Trainer probe(init, corpus, o);
    std::vector<float> grads(init.size(), 0.0f);
    double loss = 0;
    const std::vector<int64_t> starts = probe.batch_windows(0);
    const float scale = 1.0f / static_cast<float>(o.seq_len * static_cast<int64_t>(starts.size()));
    for (int64_t s : starts) loss += forward_backward(init, corpus.data() + s, o.seq_len, grads.data(), scale, nullptr);
    j["first_loss"] = loss / static_cast<double>(o.seq_len * static_cast<int64_t>(starts.size()));
    j["first_grads"] = tensors_json(init, grads.data());
  }

  Trainer trainer(init, corpus, o);
  nlohmann::json steps = nlohmann::json::array();
  while (trainer.next_step() < o.adam.total_steps) {
    const std::vector<int64_t> starts = trainer.batch_windows(trainer.next_step());
    StepStats s = trainer.step();
    steps.push_back({{"windows", starts}, {"loss", s.loss}, {"grad_norm", s.grad_norm}, {"lr", s.lr}});
  }
  j["steps"] = steps;
  j["final"] = tensors_json(trainer.model(), trainer.model().data());
  return j;
}

TEST(TrainTorchDump, WritesModelBatchesGradientsAndUpdates) {
  const char* path = std::getenv("ONELLM_TRAIN_DUMP");
  if (path == nullptr) GTEST_SKIP() << "set ONELLM_TRAIN_DUMP (tests/py/train_torch_test.py does)";
  nlohmann::json out = nlohmann::json::array(
      {dump_case(false, "llama"), dump_case(true, "llama"), dump_case(true, "qwen2"), dump_case(false, "qwen3")});
  std::ofstream f(path);
  f << out.dump();
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

}  // namespace
}  // namespace onellm
