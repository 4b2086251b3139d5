// LoRA adapters on a frozen base: the training pass runs each adapted matrix
// as W x + s B (A x) and computes gradients for A and B only (the base's own
// are never formed). The base may be mapped (TrainModel::map_gguf): its
// matrices are then read from the file in their stored type, so a quantized
// base costs its file size, not 4 bytes a weight (docs/training.md).
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "train/normal_rng.h"
#include "train/train.h"
#include "train/train_ops.h"

namespace onellm {
namespace {

std::string kind_of(const std::string& weight_name) {
  // "blk.3.attn_q.weight" -> "attn_q"
  const size_t dot = weight_name.find('.', 4);
  const size_t end = weight_name.rfind(".weight");
  if (!weight_name.starts_with("blk.") || dot == std::string::npos || end == std::string::npos || end <= dot)
    return "";
  return weight_name.substr(dot + 1, end - dot - 1);
}

}  // namespace

void LoraAdapter::add_target(const ParamTensor& w, size_t index) {
  Target t;
  t.weight = w.name;
  t.w_index = index;
  t.cols = w.dims[0];
  t.rows = w.dims[1];
  const size_t a_size = static_cast<size_t>(rank_ * t.cols), b_size = static_cast<size_t>(t.rows * rank_);
  t.a_offset = params_.size();
  tensors_.push_back({w.name + ".lora_a", {t.cols, rank_}, t.a_offset, a_size});
  t.b_offset = t.a_offset + a_size;
  tensors_.push_back({w.name + ".lora_b", {rank_, t.rows}, t.b_offset, b_size});
  params_.resize(params_.size() + a_size + b_size, 0.0f);
  targets_.push_back(t);
}

LoraAdapter LoraAdapter::init(const TrainModel& base, const LoraOptions& options, uint64_t seed) {
  if (options.rank <= 0) throw Error("lora: rank must be positive, got " + std::to_string(options.rank));
  if (!(options.alpha > 0.0f)) throw Error("lora: alpha must be positive");
  for (const std::string& kind : options.targets) {
    bool known = false;
    for (const ParamTensor& t : base.tensors()) known |= kind_of(t.name) == kind && t.is_matrix();
    if (!known) throw Error("lora: the model has no matrix kind '" + kind + "' to adapt");
  }
  LoraAdapter a;
  a.rank_ = options.rank;
  a.alpha_ = options.alpha;
  a.arch_ = base.config().arch;
  for (size_t i = 0; i < base.tensors().size(); ++i) {
    const ParamTensor& t = base.tensors()[i];
    const std::string kind = kind_of(t.name);
    for (const std::string& wanted : options.targets)
      if (t.is_matrix() && kind == wanted) a.add_target(t, i);
  }
  NormalRng rng(seed);
  for (const Target& t : a.targets_) {
    const float std_dev = 1.0f / std::sqrt(static_cast<float>(t.cols));
    for (int64_t i = 0; i < a.rank_ * t.cols; ++i) a.params_[t.a_offset + static_cast<size_t>(i)] = rng.normal() * std_dev;
  }
  return a;
}

LoraAdapter LoraAdapter::load(const std::string& path, const TrainModel& base) {
  std::unique_ptr<GgufFile> f = GgufFile::open(path);
  if (f->get_string_or("general.type", "") != "adapter" || f->get_string_or("adapter.type", "") != "lora")
    throw Error(path + ": not a LoRA adapter (general.type must be 'adapter', adapter.type 'lora')");
  if (f->get_string_or("general.architecture", base.config().arch) != base.config().arch)
    throw Error(path + ": adapter for architecture '" + f->get_string("general.architecture") + "', the model is '" +
                base.config().arch + "'");
  LoraAdapter a;
  a.alpha_ = static_cast<float>(f->get_float("adapter.lora.alpha"));
  a.arch_ = base.config().arch;
  a.rank_ = 0;
  size_t used = 0;
  for (size_t i = 0; i < base.tensors().size(); ++i) {
    const ParamTensor& w = base.tensors()[i];
    const GgufTensor* ta = f->find_tensor(w.name + ".lora_a");
    const GgufTensor* tb = f->find_tensor(w.name + ".lora_b");
    if (ta == nullptr && tb == nullptr) continue;
    if (ta == nullptr || tb == nullptr || !w.is_matrix())
      throw Error(path + ": tensor '" + w.name + "' needs both .lora_a and .lora_b (and must be a matrix)");
    if (ta->dims.size() != 2 || tb->dims.size() != 2)
      throw Error(path + ": tensors of '" + w.name + "' must be 2-D");
    if (a.rank_ == 0) a.rank_ = ta->dims[1];
    if (ta->dims[0] != w.dims[0] || ta->dims[1] != a.rank_ || tb->dims[0] != a.rank_ || tb->dims[1] != w.dims[1])
      throw Error(path + ": tensors of '" + w.name + "' do not fit its shape at rank " + std::to_string(a.rank_));
    a.add_target(w, i);
    const Target& t = a.targets_.back();
    for (auto [g, offset] : {std::pair{ta, t.a_offset}, std::pair{tb, t.b_offset}})
      dequantize_tensor(*f, *g, a.params_.data() + offset);
    used += 2;
  }
  if (a.targets_.empty()) throw Error(path + ": the adapter adapts no tensor of this model");
  if (used != f->tensors().size()) {
    for (const GgufTensor& g : f->tensors()) {
      bool known = g.name.starts_with(kTrainingStatePrefix);  // a checkpoint's optimizer state
      for (const ParamTensor& t : a.tensors_) known |= t.name == g.name;
      if (!known) throw Error(path + ": tensor '" + g.name + "' does not belong to any matrix of the model");
    }
  }
  if (a.rank_ <= 0 || !(a.alpha_ > 0.0f)) throw Error(path + ": rank and adapter.lora.alpha must be positive");
  return a;
}

void LoraAdapter::save(const std::string& path) const { gguf_writer().write(path); }

GgufWriter LoraAdapter::gguf_writer() const {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string(arch_));
  w.set("general.type", GgufValue::of_string("adapter"));
  w.set("general.name", GgufValue::of_string("onellm-lora"));
  w.set("adapter.type", GgufValue::of_string("lora"));
  w.set("adapter.lora.alpha", GgufValue::of_f32(alpha_));
  w.set("adapter.lora.rank", GgufValue::of_u32(static_cast<uint32_t>(rank_)));
  for (const ParamTensor& t : tensors_) w.add_tensor_f32(t.name, TensorType::F32, t.dims, params_.data() + t.offset);
  return w;
}

void LoraAdapter::merge(const TrainModel& base, TrainModel& merged) const {
  if (base.has_mapped_matrices() || merged.size() != base.size())
    throw Error("lora: merged model does not have the base's layout (merge into a dequantized base)");
  merged.params() = base.params();
  add_to(merged);
}

void LoraAdapter::add_to(TrainModel& model) const {
  if (model.has_mapped_matrices()) throw Error("lora: cannot add an adapter to mapped matrices (dequantize first)");
  for (const Target& t : targets_) add_to_matrix(t.w_index, model.data() + model.tensors().at(t.w_index).offset);
}

bool LoraAdapter::adapts(size_t index) const {
  for (const Target& t : targets_)
    if (t.w_index == index) return true;
  return false;
}

void LoraAdapter::add_to_matrix(size_t index, float* W, int64_t row_begin, int64_t row_end) const {
  for (const Target& t : targets_)
    if (t.w_index == index) add_to_rows(index, W + row_begin * t.cols, row_begin, row_end < 0 ? t.rows : row_end);
}

void LoraAdapter::add_to_rows(size_t index, float* rows, int64_t row_begin, int64_t row_end) const {
  const float s = scale();
  for (const Target& t : targets_) {
    if (t.w_index != index) continue;
    const float* A = params_.data() + t.a_offset;
    const float* B = params_.data() + t.b_offset;
    for (int64_t r = row_begin; r < row_end; ++r) {
      float* wr = rows + (r - row_begin) * t.cols;
      for (int64_t k = 0; k < rank_; ++k) {
        const float b = s * B[r * rank_ + k];
        const float* ak = A + k * t.cols;
        for (int64_t c = 0; c < t.cols; ++c) wr[c] += b * ak[c];
      }
    }
  }
}

namespace {

// The adapter's matrices as the training pass's sites, gradients into grads
// (laid out as the adapter's params(); null for a forward only).
train_ops::AdapterSites adapter_sites(const LoraAdapter& adapter, float* grads) {
  train_ops::AdapterSites sites;
  const float* p = adapter.params().data();
  adapter.for_each_target([&](size_t w, size_t a, size_t b) {
    sites[w] = {p + a, p + b, grads != nullptr ? grads + a : nullptr, grads != nullptr ? grads + b : nullptr,
                adapter.rank(), adapter.scale()};
  });
  return sites;
}

}  // namespace

double lora_forward_backward(const TrainModel& base, const LoraAdapter& adapter, const int32_t* tokens, int64_t n,
                             float* adapter_grads, float grad_scale, ThreadPool* pool) {
  return train_ops::adapter_forward_backward(base, adapter_sites(adapter, adapter_grads), tokens, n, grad_scale, pool,
                                             nullptr, -1);
}

LoraTrainer::LoraTrainer(TrainModel base, LoraAdapter adapter, std::vector<int32_t> corpus, TrainOptions options)
    : base_(std::move(base)), adapter_(std::move(adapter)), corpus_(std::move(corpus)), options_(options) {
  if (options_.seq_len <= 0 || options_.batch_size <= 0)
    throw Error("lora: sequence length and batch size must be positive");
  if (options_.seq_len > base_.config().n_ctx_train)
    throw Error("lora: sequence length " + std::to_string(options_.seq_len) + " exceeds the model context of " +
                std::to_string(base_.config().n_ctx_train));
  batch_windows(corpus_.size(), options_, 0);  // throws if the corpus is too short
  grads_.assign(adapter_.params().size(), 0.0f);
  m_.assign(grads_.size(), 0.0f);
  v_.assign(grads_.size(), 0.0f);
  if (options_.n_threads > 1) pool_ = std::make_unique<ThreadPool>(options_.n_threads);
}

int64_t LoraTrainer::set_reply_markers(const ReplyMarkers& markers) {
  return train_ops::index_replies(corpus_, markers, options_.seq_len, replies_);
}

StepStats LoraTrainer::step() {
  const bool replies = options_.targets == LossTargets::kReplies;
  const train_ops::StepWindows plan = train_ops::step_windows(corpus_.size(), options_, step_, &replies_);
  std::fill(grads_.begin(), grads_.end(), 0.0f);
  const train_ops::AdapterSites sites = adapter_sites(adapter_, grads_.data());
  // Gradient of the mean loss over every target of the batch, as Trainer.
  const int64_t targets = std::max<int64_t>(plan.total_targets, 1);
  const float scale = 1.0f / static_cast<float>(targets);
  double loss = 0.0;
  for (size_t b = 0; b < plan.starts.size(); ++b)
    if (plan.targets[b] > 0)
      loss += train_ops::adapter_forward_backward(base_, sites, corpus_.data() + plan.starts[b], plan.rows[b], scale,
                                                  pool_.get(), replies ? plan.masks[b].data() : nullptr,
                                                  options_.document_end);
  StepStats s;
  s.step = step_;
  s.loss = loss / static_cast<double>(targets);
  s.grad_norm = clip_grad_norm(grads_.data(), grads_.size(), options_.adam.grad_clip);
  s.lr = learning_rate(options_.adam, step_);
  adamw_update(options_.adam, step_, s.lr, adapter_.params().data(), grads_.data(), m_.data(), v_.data(),
               adapter_.tensors());
  ++step_;
  return s;
}

void LoraTrainer::run(const std::function<void(const StepStats&)>& on_step) {
  while (step_ < options_.adam.total_steps) {
    StepStats s = step();
    if (on_step) on_step(s);
  }
}

TrainModel LoraTrainer::merged() const {
  TrainModel m = base_.dequantized();
  adapter_.add_to(m);
  return m;
}

double LoraTrainer::evaluate(const std::vector<int32_t>& tokens) const {
  const train_ops::AdapterSites sites = adapter_sites(adapter_, nullptr);
  return train_ops::heldout_loss(base_, tokens, options_, replies_.markers, pool_.get(), &sites);
}

}  // namespace onellm
