// LoRA adapters at run time: reads an adapter GGUF (as `onellm finetune
// --lora` writes it) for one model. The forward pass (transformer.cpp) adds
// scale * B (A x) after each adapted matrix, so the base stays shared.
#include <cstdlib>

#include "base/error.h"
#include "model/model.h"

namespace onellm {
namespace {

// "blk.<layer>.<kind>.weight.lora_<a|b>" -> layer, kind index, a or b.
bool parse_adapter_name(const std::string& name, int64_t* layer, size_t* kind, bool* is_a) {
  constexpr std::string_view kPrefix = "blk.", kA = ".weight.lora_a", kB = ".weight.lora_b";
  if (name.rfind(kPrefix, 0) != 0 || name.size() <= kPrefix.size() + kA.size()) return false;
  const std::string_view tail = std::string_view(name).substr(name.size() - kA.size());
  if (tail != kA && tail != kB) return false;
  *is_a = tail == kA;
  const std::string middle = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kA.size());
  const size_t dot = middle.find('.');
  if (dot == 0 || dot == std::string::npos) return false;
  char* end = nullptr;
  *layer = std::strtoll(middle.c_str(), &end, 10);
  if (end != middle.c_str() + dot) return false;
  const std::string kind_name = middle.substr(dot + 1);
  for (size_t k = 0; k < kLayerMatrixKinds.size(); ++k)
    if (kind_name == kLayerMatrixKinds[k]) {
      *kind = k;
      return true;
    }
  return false;
}

}  // namespace

std::shared_ptr<const LoraWeights> LoraWeights::load(const std::string& path, const Model& model) {
  std::unique_ptr<GgufFile> f = GgufFile::open(path);
  if (f->get_string_or("general.type", "") != "adapter" || f->get_string_or("adapter.type", "") != "lora")
    throw Error(path + ": not a LoRA adapter (general.type must be 'adapter', adapter.type 'lora')");
  const std::string& arch = model.config().arch;
  if (f->get_string_or("general.architecture", arch) != arch)
    throw Error(path + ": adapter for architecture '" + f->get_string("general.architecture") + "', the model is '" +
                arch + "'");
  auto lora = std::make_shared<LoraWeights>();
  lora->base_ = &model;
  const float alpha = static_cast<float>(f->get_float("adapter.lora.alpha"));
  lora->layers_.resize(static_cast<size_t>(model.config().n_layer));

  for (const GgufTensor& t : f->tensors()) {
    if (t.name.starts_with(kTrainingStatePrefix)) continue;
    int64_t layer = -1;
    size_t kind = 0;
    bool is_a = false;
    if (!parse_adapter_name(t.name, &layer, &kind, &is_a) || layer < 0 || layer >= model.config().n_layer)
      throw Error(path + ": tensor '" + t.name + "' does not belong to any matrix of the model");
    const MatrixView& w = model.layer(layer).matrix(kind);
    // ggml dims: A is {cols, rank}, B is {rank, rows}.
    if (t.dims.size() != 2) throw Error(path + ": tensor '" + t.name + "' must be 2-D");
    const int64_t rank = is_a ? t.dims[1] : t.dims[0];
    if (lora->rank_ == 0) lora->rank_ = rank;
    const int64_t want_rows = is_a ? lora->rank_ : w.rows, want_cols = is_a ? w.cols : lora->rank_;
    if (rank <= 0 || t.dims[1] != want_rows || t.dims[0] != want_cols)
      throw Error(path + ": tensor '" + t.name + "' is " + std::to_string(t.dims[1]) + " x " +
                  std::to_string(t.dims[0]) + ", the model's matrix needs " + std::to_string(want_rows) + " x " +
                  std::to_string(want_cols) + " (rank " + std::to_string(lora->rank_) + ")");
    MatrixView& view = is_a ? lora->layers_[static_cast<size_t>(layer)][kind].a
                            : lora->layers_[static_cast<size_t>(layer)][kind].b;
    if (view.data != nullptr) throw Error(path + ": tensor '" + t.name + "' appears twice");
    std::vector<float>& values = lora->storage_.emplace_back(static_cast<size_t>(t.dims[0] * t.dims[1]));
    dequantize_tensor(*f, t, values.data());
    view = MatrixView{TensorType::F32, values.data(), t.dims[1], t.dims[0]};
  }
  bool any = false;
  for (size_t l = 0; l < lora->layers_.size(); ++l)
    for (size_t k = 0; k < kLayerMatrixKinds.size(); ++k) {
      const Pair& p = lora->layers_[l][k];
      if ((p.a.data == nullptr) != (p.b.data == nullptr))
        throw Error(path + ": tensor 'blk." + std::to_string(l) + "." + kLayerMatrixKinds[k] +
                    ".weight' needs both .lora_a and .lora_b");
      any |= p.a.data != nullptr;
    }
  if (!any) throw Error(path + ": the adapter adapts no tensor of this model");
  if (!(alpha > 0.0f)) throw Error(path + ": adapter.lora.alpha must be positive");
  lora->scale_ = alpha / static_cast<float>(lora->rank_);
  return lora;
}

const LoraWeights::Pair* LoraWeights::find(int64_t layer, size_t kind) const {
  const Pair& p = layers_[static_cast<size_t>(layer)][kind];
  return p.a.data != nullptr ? &p : nullptr;
}

}  // namespace onellm
