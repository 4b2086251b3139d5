// Loading: metadata -> ModelConfig, tensors -> views into the mapping, with
// every shape and type checked up front so forward() never meets a surprise.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "model/model.h"

namespace onellm {
namespace {

bool is_supported_arch(const std::string& arch) { return arch == "llama" || arch == "qwen2" || arch == "qwen3"; }

std::string shape_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

class TensorBinder {
 public:
  explicit TensorBinder(const GgufFile& f) : f_(f) {}

  const GgufTensor* find(const std::string& name) const { return f_.find_tensor(name); }

  MatrixView matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const GgufTensor& t = f_.tensor(name);
    check_shape(t, {cols, rows});
    check_computable(f_, t);
    return MatrixView{t.type, t.data, rows, cols};
  }

  std::vector<float> vector(const std::string& name, int64_t n) const {
    const GgufTensor& t = f_.tensor(name);
    check_shape(t, {n});
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_tensor(f_, t, out.data());
    return out;
  }

  std::vector<float> optional_vector(const std::string& name, int64_t n) const {
    return find(name) != nullptr ? vector(name, n) : std::vector<float>{};
  }

 private:
  void check_shape(const GgufTensor& t, const std::vector<int64_t>& expected) const {
    std::vector<int64_t> dims = t.dims;
    while (dims.size() > expected.size() && dims.back() == 1) dims.pop_back();
    if (dims != expected)
      throw Error(f_.path() + ": tensor '" + t.name + "' has shape " + shape_string(t.dims) + ", expected " +
                  shape_string(expected));
  }
  const GgufFile& f_;
};

}  // namespace

void check_computable(const GgufFile& file, const GgufTensor& t) {
  const TensorTypeInfo* info = tensor_type_info(static_cast<uint32_t>(t.type));
  if (info == nullptr || !info->computable) {
    std::string supported;  // from the type table, so the message cannot fall behind it
    for (uint32_t id = 0; id < 64; ++id)
      if (const TensorTypeInfo* s = tensor_type_info(id); s != nullptr && s->computable)
        supported += (supported.empty() ? "" : ", ") + std::string(s->name);
    throw Error(file.path() + ": tensor '" + t.name + "' has type " + tensor_type_name(static_cast<uint32_t>(t.type)) +
                ", which onellm does not support (supported: " + supported + ")");
  }
}

void dequantize_tensor(const GgufFile& file, const GgufTensor& t, float* out) {
  check_computable(file, t);
  const int64_t cols = t.dims.empty() ? 1 : t.dims[0], rows = t.n_elements() / std::max<int64_t>(cols, 1);
  const size_t row_bytes = tensor_row_bytes(t.type, cols);
  for (int64_t r = 0; r < rows; ++r) dequantize_row(t.type, t.data + static_cast<size_t>(r) * row_bytes, out + r * cols, cols);
}

namespace {

// llama.cpp's YaRN (after the paper's reference code): the pair whose
// wavelength makes `rotations` turns over the original context marks each end
// of the ramp, beta_fast (32 turns) the start and beta_slow (1 turn) the end.
void read_yarn(const GgufFile& f, const std::string& a, ModelConfig& c) {
  c.yarn = true;
  c.yarn_orig_ctx = f.get_int_or(a + "rope.scaling.original_context_length", c.n_ctx_train);
  c.yarn_beta_fast = static_cast<float>(f.get_float_or(a + "rope.scaling.yarn_beta_fast", 32.0));
  c.yarn_beta_slow = static_cast<float>(f.get_float_or(a + "rope.scaling.yarn_beta_slow", 1.0));
  if (c.yarn_orig_ctx <= 0)
    throw Error(f.path() + ": key '" + a + "rope.scaling.original_context_length' must be positive");
  if (!(c.rope_freq_scale > 0.0f && c.rope_freq_scale <= 1.0f))
    throw Error(f.path() + ": key '" + a + "rope.scaling.factor' must be at least 1 for yarn");
  if (!(c.yarn_beta_fast > 0.0f && c.yarn_beta_slow > 0.0f))
    throw Error(f.path() + ": yarn_beta_fast and yarn_beta_slow must be positive");
  const float n_dims = static_cast<float>(c.n_rot);
  auto pair_of = [&](float rotations) {
    return n_dims * std::log(static_cast<float>(c.yarn_orig_ctx) / (rotations * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(c.rope_base));
  };
  c.yarn_low = std::max(0.0f, std::floor(pair_of(c.yarn_beta_fast)));
  c.yarn_high = std::min(n_dims - 1.0f, std::ceil(pair_of(c.yarn_beta_slow)));
  c.rope_mscale = c.rope_attn_factor * (1.0f + 0.1f * std::log(1.0f / c.rope_freq_scale));
}

}  // namespace

void rope_cos_sin(const ModelConfig& c, const std::vector<float>& freq_factors, int64_t pos, float* cos_sin) {
  // The angles are built the way ggml builds them (a running product of
  // theta_scale in float) so that results agree with llama.cpp to float
  // precision.
  const int64_t half = c.n_rot / 2;
  const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const float ff = freq_factors.empty() ? 1.0f : freq_factors[static_cast<size_t>(i)];
    const float extrapolated = theta / ff;
    float angle = c.rope_freq_scale * extrapolated;
    if (c.yarn) {
      const float y = (static_cast<float>(i) - c.yarn_low) / std::max(0.001f, c.yarn_high - c.yarn_low);
      const float keep = 1.0f - std::min(1.0f, std::max(0.0f, y));  // 1: the trained angle
      angle = angle * (1.0f - keep) + extrapolated * keep;
    }
    cos_sin[2 * i] = std::cos(angle) * c.rope_mscale;
    cos_sin[2 * i + 1] = std::sin(angle) * c.rope_mscale;
    theta *= theta_scale;
  }
}

ModelConfig read_model_config(const GgufFile& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  if (!is_supported_arch(c.arch))
    throw Error(f.path() + ": architecture '" + c.arch + "' is not supported (supported: llama, qwen2, qwen3)");
  const std::string a = c.arch + ".";
  c.name = f.get_string_or("general.name", "");
  // Mixtral-style files keep arch "llama" with experts in place of the FFN.
  if (const int64_t experts = f.get_int_or(a + "expert_count", 0); experts > 0)
    throw Error(f.path() + ": key '" + a + "expert_count' = " + std::to_string(experts) +
                ": mixture-of-experts models are not supported");
  c.n_embd = f.get_int(a + "embedding_length");
  c.n_layer = f.get_int(a + "block_count");
  c.n_ff = f.get_int(a + "feed_forward_length");
  c.n_head = f.get_int(a + "attention.head_count");
  c.n_head_kv = f.get_int_or(a + "attention.head_count_kv", c.n_head);
  c.head_dim = f.get_int_or(a + "attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  int64_t v_len = f.get_int_or(a + "attention.value_length", c.head_dim);
  c.n_ctx_train = f.get_int_or(a + "context_length", 2048);
  c.n_rot = f.get_int_or(a + "rope.dimension_count", c.head_dim);
  c.rms_eps = static_cast<float>(f.get_float_or(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = static_cast<float>(f.get_float_or(a + "rope.freq_base", 10000.0));
  c.rope_style = c.arch == "llama" ? RopeStyle::kNormal : RopeStyle::kNeox;
  c.pooling_type = f.get_int_or(a + "pooling_type", -1);

  // As llama.cpp: the scaling type defaults to linear, and the factor comes
  // from rope.scaling.factor or the older rope.scale_linear.
  const std::string scaling = f.get_string_or(a + "rope.scaling.type", "linear");
  double factor = f.get_float_or(a + "rope.scaling.factor", 0.0);
  if (factor == 0.0) factor = f.get_float_or(a + "rope.scale_linear", 0.0);
  if (scaling != "linear" && scaling != "yarn" && scaling != "none")
    throw Error(f.path() + ": key '" + a + "rope.scaling.type' = '" + scaling +
                "' is not supported (supported: none, linear, yarn)");
  if ((scaling == "linear" || scaling == "yarn") && factor > 0) c.rope_freq_scale = static_cast<float>(1.0 / factor);
  c.rope_attn_factor = static_cast<float>(f.get_float_or(a + "rope.scaling.attn_factor", 1.0));
  c.rope_mscale = c.rope_attn_factor;
  if (scaling == "yarn") read_yarn(f, a, c);

  const GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) throw Error(f.path() + ": missing required tensor 'token_embd.weight'");
  if (embd->dims.size() < 2) throw Error(f.path() + ": tensor 'token_embd.weight' must be 2-D");
  c.n_vocab = embd->dims[1];
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  c.has_rope_freqs = f.find_tensor("rope_freqs.weight") != nullptr;
  c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;

  auto positive = [&](int64_t v, const std::string& key) {
    if (v <= 0 || v > (int64_t{1} << 24)) throw Error(f.path() + ": key '" + a + key + "' = " + std::to_string(v) + " is out of range");
  };
  positive(c.n_embd, "embedding_length");
  positive(c.n_layer, "block_count");
  positive(c.n_ff, "feed_forward_length");
  positive(c.n_head, "attention.head_count");
  positive(c.n_head_kv, "attention.head_count_kv");
  positive(c.head_dim, "attention.key_length");
  positive(c.n_ctx_train, "context_length");
  if (c.n_head % c.n_head_kv != 0)
    throw Error(f.path() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                std::to_string(c.n_head_kv));
  if (v_len != c.head_dim) throw Error(f.path() + ": key_length != value_length is not supported");
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    throw Error(f.path() + ": key '" + a + "rope.dimension_count' = " + std::to_string(c.n_rot) + " is invalid for head size " +
                std::to_string(c.head_dim));
  if (!(c.rms_eps > 0.0f)) throw Error(f.path() + ": key '" + a + "attention.layer_norm_rms_epsilon' must be positive");
  if (!(c.rope_base > 0.0f)) throw Error(f.path() + ": key '" + a + "rope.freq_base' must be positive");
  return c;
}

std::unique_ptr<Model> Model::load(const std::string& path) { return from_gguf(GgufFile::open(path)); }

std::unique_ptr<Model> Model::from_gguf(std::unique_ptr<GgufFile> file) {
  std::unique_ptr<Model> m(new Model());
  m->config_ = read_model_config(*file);
  const ModelConfig& c = m->config_;
  TensorBinder b(*file);
  m->token_embd_ = b.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  m->output_norm_ = b.vector("output_norm.weight", c.n_embd);
  m->output_ = c.tied_output ? m->token_embd_ : b.matrix("output.weight", c.n_embd, c.n_vocab);
  if (c.has_rope_freqs) m->rope_freqs_ = b.vector("rope_freqs.weight", c.n_rot / 2);

  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights L;
    L.attn_norm = b.vector(p + "attn_norm.weight", c.n_embd);
    L.ffn_norm = b.vector(p + "ffn_norm.weight", c.n_embd);
    L.wq = b.matrix(p + "attn_q.weight", c.n_embd, c.q_dim());
    L.wk = b.matrix(p + "attn_k.weight", c.n_embd, c.kv_dim());
    L.wv = b.matrix(p + "attn_v.weight", c.n_embd, c.kv_dim());
    L.wo = b.matrix(p + "attn_output.weight", c.q_dim(), c.n_embd);
    L.w_gate = b.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
    L.w_up = b.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
    L.w_down = b.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    if (c.qkv_bias) {
      L.bq = b.vector(p + "attn_q.bias", c.q_dim());
      L.bk = b.vector(p + "attn_k.bias", c.kv_dim());
      L.bv = b.vector(p + "attn_v.bias", c.kv_dim());
    }
    if (c.qk_norm) {
      L.q_norm = b.vector(p + "attn_q_norm.weight", c.head_dim);
      L.k_norm = b.vector(p + "attn_k_norm.weight", c.head_dim);
    }
    m->layers_.push_back(std::move(L));
  }
  m->file_ = std::move(file);
  const char* pack = std::getenv("ONELLM_PACK");
  if (pack == nullptr || std::string(pack) != "0") m->pack_weights();
  return m;
}

namespace {
// A layer's weight matrices (const or not, as the layer).
template <class Layer>
auto layer_matrices(Layer& L) {
  return std::array{&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
}
}  // namespace

// One anonymous region for every packed matrix (each 4 KiB aligned). The
// matrices are packed in slices of whole panels, and each slice's file pages
// are released as soon as it is copied, so the peak is the file plus a few
// slices, not twice the file, nor the file plus the largest matrix (a tied
// 151936 x 896 Q5_1 embedding is 102 MiB).
void Model::pack_weights() {
  std::vector<MatrixView*> views;
  auto consider = [&](MatrixView& v) {
    if (packed_matrix_bytes(v.type, v.rows, v.cols) > 0 && packed_kernels_available(v.type)) views.push_back(&v);
  };
  consider(output_);
  for (LayerWeights& L : layers_)
    for (MatrixView* v : layer_matrices(L)) consider(*v);
  if (views.empty()) return;
  constexpr size_t kAlign = 4096;
  constexpr size_t kSliceBytes = size_t{4} << 20;  // of file bytes per slice
  struct Slice {
    MatrixView* view;
    int64_t first_row, rows;
    size_t out;  // offset of the slice's first panel in packed_
  };
  std::vector<Slice> slices;
  std::vector<size_t> offsets;
  size_t total = 0;
  for (MatrixView* v : views) {
    offsets.push_back(total);
    constexpr int64_t kPanel = kPackedPanelRows;  // slices start on panels
    const int64_t rows_per_slice =
        std::max<int64_t>(kPanel, static_cast<int64_t>(kSliceBytes / v->row_bytes()) / kPanel * kPanel);
    for (int64_t r = 0; r < v->rows; r += rows_per_slice)
      slices.push_back({v, r, std::min(rows_per_slice, v->rows - r), total + packed_matrix_bytes(v->type, r, v->cols)});
    total += (packed_matrix_bytes(v->type, v->rows, v->cols) + kAlign - 1) / kAlign * kAlign;
  }
  packed_ = AnonymousMemory(total);
  // Slices are packed by a few threads (page faults of the new memory and
  // of the file dominate; ~1 s for 0.8 GB on one thread).
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < slices.size();) {
      try {
        const Slice& s = slices[i];
        MatrixView part = *s.view;
        part.data = static_cast<const uint8_t*>(s.view->data) + static_cast<size_t>(s.first_row) * s.view->row_bytes();
        part.rows = s.rows;
        pack_matrix(part, packed_.data() + s.out);
        file_->release(part.data, part.bytes());
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  for (size_t i = 0; i < views.size(); ++i) {
    views[i]->packed = packed_.data() + offsets[i];
    // The pages a slice shares with its neighbour were kept by both.
    file_->release(views[i]->data, views[i]->bytes());
  }
  // A tied embedding is the output matrix: its lookups read the packed copy
  // (file pages would come back 64 KiB of fault-around at a time).
  if (config_.tied_output) token_embd_.packed = output_.packed;
}

// Only the matrices read from the mapping at run time. The 1-D tensors were
// converted to F32 at load, and touching their pages mapped neighbouring
// pages of packed (released) matrices back in: a file that a reader with
// huge-page advice left in the page cache in 2 MiB folios is mapped a folio
// per fault (~90 MiB of a Qwen2.5-0.5B Q8_0 came back after llama.cpp runs).
void Model::prefetch(const std::function<void(double)>& progress) const {
  std::vector<const MatrixView*> read;
  auto consider = [&](const MatrixView& v) {
    if (v.data == nullptr || v.packed != nullptr) return;
    for (const MatrixView* r : read)
      if (r->data == v.data) return;
    read.push_back(&v);
  };
  consider(token_embd_);
  consider(output_);
  for (const LayerWeights& L : layers_)
    for (const MatrixView* v : layer_matrices(L)) consider(*v);
  uint64_t total = 0, done = 0;
  for (const MatrixView* v : read) total += v->bytes();
  for (const MatrixView* v : read) {
    file_->prefetch_range(v->data, v->bytes());
    done += v->bytes();
    if (progress) progress(total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total));
  }
  if (progress && total == 0) progress(1.0);
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const GgufTensor& t : file_->tensors()) n += t.n_bytes;
  return n;
}

uint64_t Model::parameter_count() const {
  uint64_t n = 0;
  for (const GgufTensor& t : file_->tensors()) n += static_cast<uint64_t>(t.n_elements());
  return n;
}

uint64_t Model::kv_cache_bytes(int64_t n_ctx) const {
  return static_cast<uint64_t>(2 * config_.n_layer * n_ctx * config_.kv_dim()) * sizeof(float);
}

KvCache::KvCache(const ModelConfig& config, int64_t n_ctx, TensorType type)
    : n_ctx_(n_ctx),
      n_layer_(config.n_layer),
      kv_dim_(config.kv_dim()),
      n_head_kv_(config.n_head_kv),
      head_dim_(config.head_dim),
      type_(type) {
  if (n_ctx <= 0) throw Error("KV cache size must be positive, got " + std::to_string(n_ctx));
  if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::Q8_0)
    throw Error(std::string("KV cache type ") + tensor_type_info(type).name + " is not supported (f32, f16, q8_0)");
  if (type == TensorType::Q8_0 && config.head_dim % 32 != 0)
    throw Error("KV cache type q8_0 needs a head size that is a multiple of 32; this model's is " +
                std::to_string(config.head_dim) + " (use f16)");
  row_bytes_ = tensor_row_bytes(type, kv_dim_);
  head_bytes_ = tensor_row_bytes(type, head_dim_);
}

void KvCache::reserve(int64_t n) {
  if (n <= n_alloc_) return;
  if (n > n_ctx_)
    throw Error("KV cache: " + std::to_string(n) + " positions exceed the context of " + std::to_string(n_ctx_));
  relayout(n);
}

// Re-lays [layer][head][position] with stride n; positions below min(n,
// old) keep their values.
void KvCache::relayout(int64_t n) {
  const size_t per_head = static_cast<size_t>(n) * head_bytes_, old_per_head = static_cast<size_t>(n_alloc_) * head_bytes_;
  const size_t keep = std::min(per_head, old_per_head);
  const int64_t n_heads = n_layer_ * n_head_kv_;
  std::vector<uint8_t> k(static_cast<size_t>(n_heads) * per_head), v(k.size());
  for (int64_t h = 0; h < n_heads; ++h) {
    std::copy_n(k_.data() + h * old_per_head, keep, k.data() + h * per_head);
    std::copy_n(v_.data() + h * old_per_head, keep, v.data() + h * per_head);
  }
  k_.swap(k);
  v_.swap(v);
  n_alloc_ = n;
  if (track_) {
    received_.resize(static_cast<size_t>(n), 0.0);
    queries_.resize(static_cast<size_t>(n), 0.0);
  }
}

// Position-major rows to and from the per-head layout, a head slice at a
// time (whole Q8_0 blocks: the head size is a multiple of 32).
void KvCache::read_k(int64_t layer, int64_t pos, int64_t n, float* out) const {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < n_head_kv_; ++h)
      dequantize_row(type_, k_at(layer, h, pos + t), out + t * kv_dim_ + h * head_dim_, head_dim_);
}
void KvCache::read_v(int64_t layer, int64_t pos, int64_t n, float* out) const {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < n_head_kv_; ++h)
      dequantize_row(type_, v_at(layer, h, pos + t), out + t * kv_dim_ + h * head_dim_, head_dim_);
}
void KvCache::write_k(int64_t layer, int64_t pos, int64_t n, const float* in) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < n_head_kv_; ++h)
      quantize_row_fast(type_, in + t * kv_dim_ + h * head_dim_, k_at(layer, h, pos + t), head_dim_);
}
void KvCache::write_v(int64_t layer, int64_t pos, int64_t n, const float* in) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < n_head_kv_; ++h)
      quantize_row_fast(type_, in + t * kv_dim_ + h * head_dim_, v_at(layer, h, pos + t), head_dim_);
}

void KvCache::copy_rows_out(int kv, int64_t layer, int64_t pos, int64_t n, uint8_t* out) const {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < n_head_kv_; ++h)
      std::memcpy(out + t * row_bytes_ + h * head_bytes_, kv == 0 ? k_at(layer, h, pos + t) : v_at(layer, h, pos + t),
                  head_bytes_);
}
void KvCache::copy_rows_in(int kv, int64_t layer, int64_t pos, int64_t n, const uint8_t* in) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < n_head_kv_; ++h)
      std::memcpy(kv == 0 ? k_at(layer, h, pos + t) : v_at(layer, h, pos + t), in + t * row_bytes_ + h * head_bytes_,
                  head_bytes_);
}

void KvCache::track_attention(bool on) {
  track_ = on;
  received_.assign(on ? static_cast<size_t>(n_alloc_) : 0, 0.0);
  queries_.assign(received_.size(), 0.0);
}

double KvCache::attention_decay() { return 0.9; }  // half-life of about 7 queries

void KvCache::age_attention(int64_t n_queries) {
  if (!track_ || n_queries <= 0) return;
  const double f = std::pow(attention_decay(), static_cast<double>(n_queries));
  for (size_t j = 0; j < received_.size(); ++j) {
    received_[j] *= f;
    queries_[j] *= f;
  }
}

void KvCache::add_attention(const double* received, const double* queries, int64_t n) {
  if (!track_) return;
  n = std::min<int64_t>(n, static_cast<int64_t>(received_.size()));
  for (int64_t j = 0; j < n; ++j) {
    received_[static_cast<size_t>(j)] += received[j];
    queries_[static_cast<size_t>(j)] += queries[j];
  }
}

double KvCache::attention_score(int64_t pos, int64_t n) const {
  double sum = 0, count = 0;
  for (int64_t j = std::max<int64_t>(pos, 0); j < pos + n && j < static_cast<int64_t>(received_.size()); ++j) {
    sum += received_[static_cast<size_t>(j)];
    count += queries_[static_cast<size_t>(j)];
  }
  return count <= 0 ? -1.0 : sum / count;
}

}  // namespace onellm
