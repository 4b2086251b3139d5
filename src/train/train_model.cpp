// The trainable model's parameter layout, its initialization (random or from
// a GGUF, dequantized) and its export as a GGUF that Model::load runs: llama,
// and qwen2 / qwen3 (q/k/v biases, per-head q/k norms, NeoX rotary pairs).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "train/normal_rng.h"
#include "train/train.h"
#include "train/train_ops.h"

namespace onellm {
namespace {

void check_config(const ModelConfig& c) {
  if (!is_trainable_arch(c.arch))
    throw Error("train: architecture '" + c.arch + "' is not supported (llama, qwen2, qwen3)");
  auto positive = [](int64_t v, const char* what) {
    if (v <= 0) throw Error(std::string("train: ") + what + " must be positive, got " + std::to_string(v));
  };
  positive(c.n_vocab, "n_vocab");
  positive(c.n_embd, "n_embd");
  positive(c.n_layer, "n_layer");
  positive(c.n_head, "n_head");
  positive(c.n_head_kv, "n_head_kv");
  positive(c.head_dim, "head_dim");
  positive(c.n_ff, "n_ff");
  positive(c.n_ctx_train, "n_ctx_train");
  if (c.n_head % c.n_head_kv != 0)
    throw Error("train: n_head " + std::to_string(c.n_head) + " is not a multiple of n_head_kv " +
                std::to_string(c.n_head_kv));
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    throw Error("train: n_rot " + std::to_string(c.n_rot) + " is invalid for head size " + std::to_string(c.head_dim));
}

std::string layer_prefix(int64_t l) { return "blk." + std::to_string(l) + "."; }

}  // namespace

bool is_trainable_arch(const std::string& arch) { return arch == "llama" || arch == "qwen2" || arch == "qwen3"; }

TrainModel::TrainModel(ModelConfig config) : TrainModel(std::move(config), true) {}

TrainModel::TrainModel(ModelConfig config, bool matrices_in_buffer) : config_(std::move(config)) {
  ModelConfig& c = config_;
  if (c.head_dim == 0 && c.n_head > 0) c.head_dim = c.n_embd / c.n_head;
  if (c.n_rot == 0) c.n_rot = c.head_dim;
  if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
  // As read_model_config: llama pairs adjacent rotary dims, the others
  // (i, i + n_rot / 2).
  c.rope_style = c.arch == "llama" ? RopeStyle::kNormal : RopeStyle::kNeox;
  check_config(c);
  size_t offset = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    size_t n = 1;
    for (int64_t d : dims) n *= static_cast<size_t>(d);
    if (dims.size() == 2 && !matrices_in_buffer) n = 0;
    tensors_.push_back({name, std::move(dims), offset, n});
    offset += n;
  };
  // The order is the GGUF order write_tiny_model uses.
  add("token_embd.weight", {c.n_embd, c.n_vocab});
  add("output_norm.weight", {c.n_embd});
  if (!c.tied_output) add("output.weight", {c.n_embd, c.n_vocab});
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = layer_prefix(l);
    add(p + "attn_norm.weight", {c.n_embd});
    add(p + "attn_q.weight", {c.n_embd, c.q_dim()});
    add(p + "attn_k.weight", {c.n_embd, c.kv_dim()});
    add(p + "attn_v.weight", {c.n_embd, c.kv_dim()});
    if (c.qkv_bias) {
      add(p + "attn_q.bias", {c.q_dim()});
      add(p + "attn_k.bias", {c.kv_dim()});
      add(p + "attn_v.bias", {c.kv_dim()});
    }
    if (c.qk_norm) {
      add(p + "attn_q_norm.weight", {c.head_dim});
      add(p + "attn_k_norm.weight", {c.head_dim});
    }
    add(p + "attn_output.weight", {c.q_dim(), c.n_embd});
    add(p + "ffn_norm.weight", {c.n_embd});
    add(p + "ffn_gate.weight", {c.n_embd, c.n_ff});
    add(p + "ffn_up.weight", {c.n_embd, c.n_ff});
    add(p + "ffn_down.weight", {c.n_ff, c.n_embd});
  }
  params_.assign(offset, 0.0f);
}

const ParamTensor& TrainModel::tensor(const std::string& name) const {
  for (const ParamTensor& t : tensors_)
    if (t.name == name) return t;
  throw Error("train: the model has no tensor '" + name + "'");
}

TrainModel TrainModel::init(ModelConfig config, uint64_t seed) {
  TrainModel m(std::move(config));
  NormalRng rng(seed);
  const float residual_scale = 1.0f / std::sqrt(2.0f * static_cast<float>(m.config_.n_layer));
  for (const ParamTensor& t : m.tensors_) {
    float* p = m.params_.data() + t.offset;
    if (!t.is_matrix()) {  // norm weights 1, biases 0
      std::fill_n(p, t.size, t.name.ends_with(".bias") ? 0.0f : 1.0f);
      continue;
    }
    const bool residual = t.name.ends_with("attn_output.weight") || t.name.ends_with("ffn_down.weight");
    const float std_dev = 0.02f * (residual ? residual_scale : 1.0f);
    for (size_t i = 0; i < t.size; ++i) p[i] = rng.normal() * std_dev;
  }
  return m;
}

TrainModel TrainModel::from_gguf(const GgufFile& file) { return read_gguf(nullptr, file); }

TrainModel TrainModel::map_gguf(std::shared_ptr<const GgufFile> file) {
  if (file == nullptr) throw Error("train: no file to map");
  const GgufFile& f = *file;
  return read_gguf(std::move(file), f);
}

// from_gguf (mapped null) or map_gguf (f is *mapped).
TrainModel TrainModel::read_gguf(std::shared_ptr<const GgufFile> mapped, const GgufFile& file) {
  ModelConfig c = read_model_config(file);
  if (!is_trainable_arch(c.arch))
    throw Error(file.path() + ": architecture '" + c.arch + "' cannot be trained (llama, qwen2, qwen3)");
  TrainModel m(c, mapped == nullptr);
  for (ParamTensor& t : m.tensors_) {
    const GgufTensor& g = file.tensor(t.name);
    std::vector<int64_t> dims = g.dims;
    while (dims.size() > t.dims.size() && dims.back() == 1) dims.pop_back();
    if (dims != t.dims) throw Error(file.path() + ": tensor '" + t.name + "' does not have the shape the config implies");
    if (mapped == nullptr || !t.is_matrix()) {
      dequantize_tensor(file, g, m.params_.data() + t.offset);
      continue;
    }
    if (!tensor_type_info(g.type).computable)
      throw Error(file.path() + ": tensor '" + t.name + "' has type " +
                  tensor_type_name(static_cast<uint32_t>(g.type)) + ", which onellm cannot compute with");
    t.mapped = g.data;
    t.type = g.type;
  }
  m.file_ = std::move(mapped);
  if (c.has_rope_freqs) {
    const GgufTensor& g = file.tensor("rope_freqs.weight");
    if (g.n_elements() != c.n_rot / 2) throw Error(file.path() + ": tensor 'rope_freqs.weight' has the wrong size");
    std::vector<float> f(static_cast<size_t>(c.n_rot / 2));
    dequantize_tensor(file, g, f.data());
    m.rope_freqs_ = std::move(f);
  }
  return m;
}

TrainModel TrainModel::dequantized() const {
  if (file_ == nullptr) return *this;
  TrainModel m(config_);
  m.rope_freqs_ = rope_freqs_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const ParamTensor& from = tensors_[i];
    float* to = m.params_.data() + m.tensors_[i].offset;
    if (from.mapped == nullptr) {
      std::copy_n(params_.data() + from.offset, from.size, to);
      continue;
    }
    const MatrixView w = matrix(from);
    for (int64_t r = 0; r < w.rows; ++r) matrix_row(w, r, to + r * w.cols);
  }
  return m;
}

MatrixView TrainModel::matrix(const ParamTensor& t) const {
  if (!t.is_matrix()) throw Error("train: tensor '" + t.name + "' is not a matrix");
  const void* data = t.mapped != nullptr ? t.mapped : params_.data() + t.offset;
  return MatrixView{t.type, data, t.dims[1], t.dims[0]};
}

GgufMetadata tokenizer_metadata_from_gguf(const GgufFile& file) {
  GgufMetadata out;
  for (const std::string& key : file.keys())
    if (key.starts_with("tokenizer.")) out.emplace_back(key, *file.find(key));
  return out;
}

GgufMetadata tokenizer_metadata_from_tokens(const std::vector<std::string>& tokens,
                                            const std::vector<int32_t>& token_types,
                                            const std::vector<std::string>& merges, int32_t bos_id, int32_t eos_id,
                                            const std::string& pre) {
  if (tokens.empty()) throw Error("tokenizer metadata: the token list is empty");
  if (token_types.size() != tokens.size())
    throw Error("tokenizer metadata: " + std::to_string(token_types.size()) + " token types for " +
                std::to_string(tokens.size()) + " tokens");
  const auto n = static_cast<int32_t>(tokens.size());
  if (bos_id < 0 || bos_id >= n) throw Error("tokenizer metadata: bos id " + std::to_string(bos_id) + " is out of range");
  if (eos_id < 0 || eos_id >= n) throw Error("tokenizer metadata: eos id " + std::to_string(eos_id) + " is out of range");
  GgufMetadata out;
  out.emplace_back("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  out.emplace_back("tokenizer.ggml.pre", GgufValue::of_string(pre));
  out.emplace_back("tokenizer.ggml.tokens", GgufValue::of_strings(tokens));
  out.emplace_back("tokenizer.ggml.token_type", GgufValue::of_i32s(token_types));
  out.emplace_back("tokenizer.ggml.merges", GgufValue::of_strings(merges));
  out.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<uint32_t>(bos_id)));
  out.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::of_u32(static_cast<uint32_t>(eos_id)));
  out.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::of_bool(false));
  return out;
}

namespace {

// model_gguf_writer's keys: the architecture's, then the tokenizer's and
// `extra`; no tensors yet.
GgufWriter metadata_writer(const ModelConfig& c, const GgufMetadata& tokenizer, const GgufMetadata& extra) {
  if (!tokenizer.empty()) {
    for (const auto& [key, value] : tokenizer)
      if (key == "tokenizer.ggml.tokens" && static_cast<int64_t>(value.size()) != c.n_vocab)
        throw Error("export: the tokenizer has " + std::to_string(value.size()) + " tokens, the model " +
                    std::to_string(c.n_vocab));
  }
  GgufWriter w;
  const std::string a = c.arch + ".";
  auto u32 = [](int64_t v) { return GgufValue::of_u32(static_cast<uint32_t>(v)); };
  w.set("general.architecture", GgufValue::of_string(c.arch));
  w.set("general.name", GgufValue::of_string(c.name.empty() ? "onellm-trained" : c.name));
  w.set(a + "context_length", u32(c.n_ctx_train));
  w.set(a + "embedding_length", u32(c.n_embd));
  w.set(a + "block_count", u32(c.n_layer));
  w.set(a + "feed_forward_length", u32(c.n_ff));
  w.set(a + "attention.head_count", u32(c.n_head));
  w.set(a + "attention.head_count_kv", u32(c.n_head_kv));
  w.set(a + "attention.key_length", u32(c.head_dim));
  w.set(a + "attention.value_length", u32(c.head_dim));
  w.set(a + "rope.dimension_count", u32(c.n_rot));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(c.rms_eps));
  w.set(a + "rope.freq_base", GgufValue::of_f32(c.rope_base));
  if (c.rope_freq_scale != 1.0f || c.yarn) {
    w.set(a + "rope.scaling.type", GgufValue::of_string(c.yarn ? "yarn" : "linear"));
    w.set(a + "rope.scaling.factor", GgufValue::of_f32(1.0f / c.rope_freq_scale));
  }
  if (c.yarn) {
    w.set(a + "rope.scaling.original_context_length", u32(c.yarn_orig_ctx));
    if (c.yarn_beta_fast != 32.0f) w.set(a + "rope.scaling.yarn_beta_fast", GgufValue::of_f32(c.yarn_beta_fast));
    if (c.yarn_beta_slow != 1.0f) w.set(a + "rope.scaling.yarn_beta_slow", GgufValue::of_f32(c.yarn_beta_slow));
  }
  if (c.rope_attn_factor != 1.0f) w.set(a + "rope.scaling.attn_factor", GgufValue::of_f32(c.rope_attn_factor));
  for (const auto& [key, value] : tokenizer) w.set(key, value);
  for (const auto& [key, value] : extra) w.set(key, value);
  return w;
}

void check_fits(const ParamTensor& t, TensorType type) {
  if (t.dims[0] % tensor_type_info(type).block_elems != 0)
    throw Error("export: tensor '" + t.name + "' has " + std::to_string(t.dims[0]) + " columns, not a multiple of " +
                tensor_type_name(static_cast<uint32_t>(type)) + "'s block size");
}

void add_rope_freqs(GgufWriter& w, const TrainModel& model) {
  if (!model.rope_freqs().empty())
    w.add_tensor_f32("rope_freqs.weight", TensorType::F32, {static_cast<int64_t>(model.rope_freqs().size())},
                     model.rope_freqs().data());
}

}  // namespace

GgufWriter model_gguf_writer(const TrainModel& model, const GgufMetadata& tokenizer, TensorType matrix_type,
                             const GgufMetadata& extra) {
  if (model.has_mapped_matrices())
    throw Error("export: the model's matrices are mapped from its file; export its dequantized() copy");
  GgufWriter w = metadata_writer(model.config(), tokenizer, extra);
  for (const ParamTensor& t : model.tensors()) {
    const TensorType type = t.is_matrix() ? matrix_type : TensorType::F32;
    check_fits(t, type);
    w.add_tensor_f32(t.name, type, t.dims, model.data() + t.offset);
  }
  add_rope_freqs(w, model);
  return w;
}

void export_merged_gguf(const TrainModel& base, const LoraAdapter& adapter, const GgufMetadata& tokenizer,
                        const std::string& path, std::optional<TensorType> matrix_type, ThreadPool* pool) {
  GgufWriter w = metadata_writer(base.config(), tokenizer, {});
  for (size_t i = 0; i < base.tensors().size(); ++i) {
    const ParamTensor& t = base.tensors()[i];
    if (!t.is_matrix()) {
      w.add_tensor_f32(t.name, TensorType::F32, t.dims, base.data() + t.offset);
      continue;
    }
    const MatrixView m = base.matrix(t);
    const TensorType type = matrix_type.value_or(m.type);
    check_fits(t, type);
    const size_t in_row = m.row_bytes(), out_row = tensor_row_bytes(type, m.cols);
    const auto* stored = static_cast<const uint8_t*>(m.data);
    // Matrices are made a block of rows at a time while the file is written,
    // so the merged model is never held in memory.
    if (type == m.type && !adapter.adapts(i)) {  // as stored: no rounding at all
      w.add_tensor_rows(t.name, type, t.dims, [stored, in_row](int64_t first, int64_t n, uint8_t* out) {
        std::memcpy(out, stored + static_cast<size_t>(first) * in_row, static_cast<size_t>(n) * in_row);
      });
      continue;
    }
    // Rows are independent in each step (dequantize, add B A, quantize), so
    // they are split over the threads; the bytes do not depend on how.
    const auto merge_rows = [&adapter, m, i, type, out_row, pool](int64_t first, int64_t n, uint8_t* out) {
      train_ops::run(pool, n, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(m.cols));
        for (int64_t r = first + r0; r < first + r1; ++r) {
          matrix_row(m, r, row.data());
          adapter.add_to_rows(i, row.data(), r, r + 1);
          quantize_row(type, row.data(), out + static_cast<size_t>(r - first) * out_row, m.cols);
        }
      });
    };
    w.add_tensor_rows(t.name, type, t.dims, merge_rows);
  }
  add_rope_freqs(w, base);
  w.write(path);
}

void export_gguf(const TrainModel& model, const GgufMetadata& tokenizer, const std::string& path,
                 TensorType matrix_type, const GgufMetadata& extra) {
  model_gguf_writer(model, tokenizer, matrix_type, extra).write(path);
}

}  // namespace onellm
