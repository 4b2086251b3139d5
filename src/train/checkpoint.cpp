// Checkpoints of Trainer and LoraTrainer: one GGUF with what is trained (a
// model Model::load runs, or an adapter `--lora` loads), the Adam moments as
// tensors and the options and step as train.* keys, with a checksum over the
// parameters, moments and step. Resuming continues with the bits an
// uninterrupted run would have written: the data of a step is a pure
// function of the seed and the step number (Trainer).
#include <cstring>

#include "base/error.h"
#include "train/train.h"
#include "train/train_ops.h"

namespace onellm {
namespace {

constexpr const char* kMomentM = "train.adam_m";
constexpr const char* kMomentV = "train.adam_v";

// FNV-1a over raw bytes: detects a torn or edited checkpoint.
uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}
constexpr uint64_t kFnvBasis = 0xCBF29CE484222325ull;

uint64_t corpus_hash(const std::vector<int32_t>& corpus) {
  return fnv1a(kFnvBasis, corpus.data(), corpus.size() * sizeof(int32_t));
}

uint64_t state_checksum(const std::vector<float>& params, const std::vector<float>& m, const std::vector<float>& v,
                        int64_t step) {
  uint64_t sum = fnv1a(kFnvBasis, params.data(), params.size() * sizeof(float));
  sum = fnv1a(sum, m.data(), m.size() * sizeof(float));
  sum = fnv1a(sum, v.data(), v.size() * sizeof(float));
  return fnv1a(sum, &step, sizeof step);
}

// A LoRA base's identity as far as an adapter can tell: tensor names and
// shapes, and the values of its norms and biases (a fine-tune of the same
// architecture differs there). The stored type of the matrices is not part
// of it: an adapter trained on a Q8_0 base may go on on its Q4_K sibling.
uint64_t base_fingerprint(const TrainModel& base) {
  uint64_t h = kFnvBasis;
  for (const ParamTensor& t : base.tensors()) {
    h = fnv1a(h, t.name.data(), t.name.size());
    h = fnv1a(h, t.dims.data(), t.dims.size() * sizeof(int64_t));
    if (!t.is_matrix()) h = fnv1a(h, base.data() + t.offset, t.size * sizeof(float));
  }
  return h;
}

GgufMetadata checkpoint_keys(const TrainOptions& o, int64_t step, const std::vector<int32_t>& corpus,
                             uint64_t checksum) {
  const AdamWOptions& a = o.adam;
  return {
      {"train.step", GgufValue::of_u64(static_cast<uint64_t>(step))},
      {"train.seq_len", GgufValue::of_u64(static_cast<uint64_t>(o.seq_len))},
      {"train.batch_size", GgufValue::of_u64(static_cast<uint64_t>(o.batch_size))},
      {"train.data_seed", GgufValue::of_u64(o.data_seed)},
      {"train.loss_targets", GgufValue::of_string(o.targets == LossTargets::kReplies ? "replies" : "all")},
      {"train.corpus_hash", GgufValue::of_u64(corpus_hash(corpus))},
      {"train.document_end", GgufValue::of_i32(o.document_end)},
      {"train.batch_parallel", GgufValue::of_u64(o.batch_parallel ? 1 : 0)},
      {"train.adam.lr", GgufValue::of_f32(a.lr)},
      {"train.adam.min_lr", GgufValue::of_f32(a.min_lr)},
      {"train.adam.warmup_steps", GgufValue::of_u64(static_cast<uint64_t>(a.warmup_steps))},
      {"train.adam.total_steps", GgufValue::of_u64(static_cast<uint64_t>(a.total_steps))},
      {"train.adam.beta1", GgufValue::of_f32(a.beta1)},
      {"train.adam.beta2", GgufValue::of_f32(a.beta2)},
      {"train.adam.eps", GgufValue::of_f32(a.eps)},
      {"train.adam.weight_decay", GgufValue::of_f32(a.weight_decay)},
      {"train.adam.grad_clip", GgufValue::of_f32(a.grad_clip)},
      {"train.checksum", GgufValue::of_u64(checksum)},
  };
}

void add_moments(GgufWriter& w, const std::vector<float>& m, const std::vector<float>& v) {
  const auto n = static_cast<int64_t>(m.size());
  w.add_tensor_f32(kMomentM, TensorType::F32, {n}, m.data());
  w.add_tensor_f32(kMomentV, TensorType::F32, {n}, v.data());
}

bool has_training_state(const GgufFile& f) {
  return f.find("train.step") != nullptr && f.find_tensor(kMomentM) != nullptr && f.find_tensor(kMomentV) != nullptr;
}

// The options a checkpoint was trained with; throws if `corpus` is not its.
TrainOptions checkpoint_options(const GgufFile& f, const std::vector<int32_t>& corpus, int n_threads) {
  TrainOptions o;
  o.n_threads = n_threads;
  o.seq_len = f.get_int("train.seq_len");
  o.batch_size = f.get_int("train.batch_size");
  o.data_seed = static_cast<uint64_t>(f.get_int("train.data_seed"));
  if (f.find("train.loss_targets") != nullptr && f.get_string("train.loss_targets") == "replies")
    o.targets = LossTargets::kReplies;
  if (f.find("train.document_end") != nullptr) o.document_end = static_cast<int32_t>(f.get_int("train.document_end"));
  if (f.find("train.batch_parallel") != nullptr) o.batch_parallel = f.get_int("train.batch_parallel") != 0;
  AdamWOptions& a = o.adam;
  a.lr = static_cast<float>(f.get_float("train.adam.lr"));
  a.min_lr = static_cast<float>(f.get_float("train.adam.min_lr"));
  a.warmup_steps = f.get_int("train.adam.warmup_steps");
  a.total_steps = f.get_int("train.adam.total_steps");
  a.beta1 = static_cast<float>(f.get_float("train.adam.beta1"));
  a.beta2 = static_cast<float>(f.get_float("train.adam.beta2"));
  a.eps = static_cast<float>(f.get_float("train.adam.eps"));
  a.weight_decay = static_cast<float>(f.get_float("train.adam.weight_decay"));
  a.grad_clip = static_cast<float>(f.get_float("train.adam.grad_clip"));
  if (corpus_hash(corpus) != static_cast<uint64_t>(f.get_int("train.corpus_hash")))
    throw Error(f.path() + ": the corpus differs from the one this checkpoint was trained on");
  return o;
}

// Restores the moments and step and checks the checksum over them and params.
void restore_state(const GgufFile& f, const std::vector<float>& params, std::vector<float>& m, std::vector<float>& v,
                   int64_t& step) {
  step = f.get_int("train.step");
  for (auto [name, dst] : {std::pair{kMomentM, &m}, std::pair{kMomentV, &v}}) {
    const GgufTensor& g = f.tensor(name);
    if (g.type != TensorType::F32 || g.n_elements() != static_cast<int64_t>(dst->size()))
      throw Error(f.path() + ": tensor '" + std::string(name) + "' does not match the parameter count");
    std::memcpy(dst->data(), g.data, dst->size() * sizeof(float));
  }
  if (state_checksum(params, m, v, step) != static_cast<uint64_t>(f.get_int("train.checksum")))
    throw Error(f.path() + ": checksum mismatch (the checkpoint is corrupt)");
}

}  // namespace

void Trainer::save_checkpoint(const std::string& path) const {
  const uint64_t sum = state_checksum(model_.params(), m_, v_, step_);
  GgufWriter w = model_gguf_writer(model_, tokenizer_, TensorType::F32, checkpoint_keys(options_, step_, corpus_, sum));
  add_moments(w, m_, v_);
  w.write(path);
}

Trainer Trainer::resume(const std::string& checkpoint, std::vector<int32_t> corpus, int n_threads) {
  std::unique_ptr<GgufFile> f = GgufFile::open(checkpoint);
  if (!has_training_state(*f))
    throw Error(checkpoint + ": not a training checkpoint (no train.step or Adam moments)");
  const TrainOptions o = checkpoint_options(*f, corpus, n_threads);
  Trainer t(TrainModel::from_gguf(*f), std::move(corpus), o, tokenizer_metadata_from_gguf(*f));
  restore_state(*f, t.model_.params(), t.m_, t.v_, t.step_);
  return t;
}

void LoraTrainer::save_checkpoint(const std::string& path) const {
  const uint64_t sum = state_checksum(adapter_.params(), m_, v_, step_);
  GgufWriter w = adapter_.gguf_writer();
  for (const auto& [key, value] : checkpoint_keys(options_, step_, corpus_, sum)) w.set(key, value);
  w.set("train.base_fingerprint", GgufValue::of_u64(base_fingerprint(base_)));
  add_moments(w, m_, v_);
  w.write(path);
}

LoraTrainer LoraTrainer::resume(const std::string& checkpoint, TrainModel base, std::vector<int32_t> corpus,
                                int n_threads) {
  std::unique_ptr<GgufFile> f = GgufFile::open(checkpoint);
  if (f->get_string_or("general.type", "") != "adapter" || !has_training_state(*f) ||
      f->find("train.base_fingerprint") == nullptr)
    throw Error(checkpoint + ": not a LoRA fine-tuning checkpoint (an adapter with train.step and Adam moments)");
  const TrainOptions o = checkpoint_options(*f, corpus, n_threads);
  if (static_cast<uint64_t>(f->get_int("train.base_fingerprint")) != base_fingerprint(base))
    throw Error(checkpoint + ": the adapter was trained on another base model (tensor shapes or norms differ)");
  LoraAdapter adapter = LoraAdapter::load(checkpoint, base);
  LoraTrainer t(std::move(base), std::move(adapter), std::move(corpus), o);
  restore_state(*f, t.adapter_.params(), t.m_, t.v_, t.step_);
  return t;
}

}  // namespace onellm
