// The model layer: transformer architectures over GGUF weights. A Model is
// immutable after load and shared by every sequence; per-sequence state lives
// in KvCache. Weights stay in the file mapping (no copy), except the small 1-D
// tensors (norms, biases), which are converted to F32 once.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

namespace onellm {

enum class RopeStyle { kNormal, kNeox };  // pairs (2i, 2i+1) vs (i, i + n_rot/2)

struct ModelConfig {
  std::string arch;  // "llama", "qwen2", "qwen3"
  std::string name;
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
  int64_t head_dim = 0, n_ff = 0, n_ctx_train = 0, n_rot = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // linear rope scaling: positions are multiplied by this
  // YaRN (rope.scaling.type "yarn", as llama.cpp): rotated pairs below
  // yarn_low keep their trained angles, pairs above yarn_high are scaled by
  // rope_freq_scale, with a linear ramp between.
  bool yarn = false;
  float yarn_low = 0.0f, yarn_high = 0.0f;
  float yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;  // the ramp's ends in turns over yarn_orig_ctx
  int64_t yarn_orig_ctx = 0;  // the context the model was trained with before the extension
  float rope_attn_factor = 1.0f;  // rope.scaling.attn_factor
  // cos and sin are multiplied by this (so attention scores by its square):
  // rope_attn_factor, times YaRN's 1 + 0.1 ln(factor).
  float rope_mscale = 1.0f;
  RopeStyle rope_style = RopeStyle::kNormal;
  bool has_rope_freqs = false;  // Llama 3.x: per-dimension frequency divisors
  bool qkv_bias = false, qk_norm = false, tied_output = false;
  // <arch>.pooling_type as llama.cpp numbers it (0 none, 1 mean, 2 cls,
  // 3 last, 4 rank); -1 when absent. Embedding models (Qwen3-Embedding) set it.
  int64_t pooling_type = -1;

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};

// Reads hyper-parameters from metadata; throws Error naming the key.
ModelConfig read_model_config(const GgufFile& file);

// cos and sin of every rotated pair's angle at position `pos` (n_rot floats,
// pairs interleaved), with Llama 3's frequency divisors (empty: none) and
// linear or YaRN scaling. The one definition inference and training share.
void rope_cos_sin(const ModelConfig& c, const std::vector<float>& freq_factors, int64_t pos, float* cos_sin);

// Throws Error naming the file, tensor and type unless onellm computes with
// the tensor's type.
void check_computable(const GgufFile& file, const GgufTensor& t);
// Every element of `t` as F32 into `out` (n_elements floats), rows in order;
// checks the type first. Shape and size were checked by the GGUF parser.
void dequantize_tensor(const GgufFile& file, const GgufTensor& t, float* out);

// A layer's matrices by GGUF kind (blk.N.<kind>.weight), in the order of
// LayerWeights::matrix.
inline constexpr std::array<const char*, 7> kLayerMatrixKinds = {"attn_q",   "attn_k", "attn_v", "attn_output",
                                                                 "ffn_gate", "ffn_up", "ffn_down"};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> bq, bk, bv;          // qwen2 (empty otherwise)
  std::vector<float> q_norm, k_norm;      // qwen3 (empty otherwise)
  MatrixView wq, wk, wv, wo, w_gate, w_up, w_down;
  const MatrixView& matrix(size_t kind) const {
    const MatrixView* all[] = {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down};
    return *all[kind];
  }
};

class Model;

// Tensors named so in an adapter GGUF are a fine-tuning checkpoint's
// optimizer state (LoraTrainer::save_checkpoint), not adapter matrices:
// adapter loaders skip them, so a checkpoint runs as the adapter it holds.
inline constexpr std::string_view kTrainingStatePrefix = "train.";

// A LoRA adapter applied at run time: for each adapted matrix W (rows x
// cols), A (rank x cols) and B (rows x rank) in F32, and the forward pass
// adds scale * B (A x) to W x. The base weights stay as loaded (and shared:
// one model can serve with and without the adapter); the adapter costs
// rank * (rows + cols) floats per matrix. File format: docs/training.md.
class LoraWeights {
 public:
  // Throws Error naming the file and the tensor at fault: not an adapter,
  // another architecture, a matrix with only one of its pair, shapes that do
  // not fit the model, tensors for no matrix of the model.
  static std::shared_ptr<const LoraWeights> load(const std::string& path, const Model& model);
  struct Pair {
    MatrixView a, b;  // F32 views of the adapter's tensors
  };
  // The adapter of layer l's matrix kind (kLayerMatrixKinds), nullptr if none.
  const Pair* find(int64_t layer, size_t kind) const;
  float scale() const { return scale_; }
  int64_t rank() const { return rank_; }
  const Model* base() const { return base_; }  // the model it was loaded for

 private:
  const Model* base_ = nullptr;
  float scale_ = 0;
  int64_t rank_ = 0;
  std::vector<std::array<Pair, kLayerMatrixKinds.size()>> layers_;  // a.data == nullptr: not adapted
  std::vector<std::vector<float>> storage_;
};

// Key/value cache of one sequence, [layer][kv head][position][head_dim] in
// F32, F16 or Q8_0 (llama.cpp's --cache-type-k/v). A KV head's positions
// are contiguous, so decode's attention reads each head's keys as one
// stream (with positions outermost, a head's rows were 1 / n_head_kv of
// every row, at ~2/3 of the speed, docs/benchmarks.md, session 31). Memory grows with use (reserve), up
// to the capacity, so an idle or short session does not hold a whole context
// (the context layer budgets the real bytes). With attention tracking on,
// the forward pass adds up, per position, how much attention it receives
// (the context layer compresses rarely attended chunks harder).
class KvCache {
 public:
  // Throws Error for a type other than F32/F16/Q8_0, or Q8_0 with a head
  // size that is not a multiple of 32.
  KvCache(const ModelConfig& config, int64_t n_ctx, TensorType type = TensorType::F32);
  int64_t capacity() const { return n_ctx_; }
  int64_t size() const { return n_past_; }  // positions filled
  int64_t n_layer() const { return n_layer_; }
  int64_t kv_dim() const { return kv_dim_; }
  TensorType type() const { return type_; }
  void clear() { n_past_ = 0; }
  // Drops positions >= n (to rewind a sequence).
  void truncate(int64_t n) { if (n < n_past_) n_past_ = n; }
  // Makes positions [0, n) addressable (n <= capacity); keeps their contents.
  void reserve(int64_t n);
  void shrink_to_fit() { if (n_alloc_ > n_past_) relayout(n_past_); }  // frees positions >= size()
  int64_t reserved() const { return n_alloc_; }
  size_t row_bytes() const { return row_bytes_; }  // one position of one layer, K or V
  size_t head_bytes() const { return head_bytes_; }  // one position of one KV head
  // Position pos of KV head `head` in `layer`: head_bytes() bytes.
  uint8_t* k_at(int64_t layer, int64_t head, int64_t pos) { return k_.data() + offset(layer, head, pos); }
  uint8_t* v_at(int64_t layer, int64_t head, int64_t pos) { return v_.data() + offset(layer, head, pos); }
  const uint8_t* k_at(int64_t layer, int64_t head, int64_t pos) const { return k_.data() + offset(layer, head, pos); }
  const uint8_t* v_at(int64_t layer, int64_t head, int64_t pos) const { return v_.data() + offset(layer, head, pos); }
  // A KV head's keys / values from position 0 on, as attention reads them.
  KvRows k_rows(int64_t layer, int64_t head) const { return {type_, k_at(layer, head, 0), head_bytes_}; }
  KvRows v_rows(int64_t layer, int64_t head) const { return {type_, v_at(layer, head, 0), head_bytes_}; }
  // Rows [pos, pos + n) as F32 (n * kv_dim values, position by position),
  // converted from / to the cache type.
  void read_k(int64_t layer, int64_t pos, int64_t n, float* out) const;
  void read_v(int64_t layer, int64_t pos, int64_t n, float* out) const;
  void write_k(int64_t layer, int64_t pos, int64_t n, const float* in);
  void write_v(int64_t layer, int64_t pos, int64_t n, const float* in);
  // The cache's own bytes of rows [pos, pos + n), position by position
  // (n * row_bytes()): K (kv 0) or V (kv 1). Saved chunks keep this order.
  void copy_rows_out(int kv, int64_t layer, int64_t pos, int64_t n, uint8_t* out) const;
  void copy_rows_in(int kv, int64_t layer, int64_t pos, int64_t n, const uint8_t* in);
  void set_size(int64_t n) { n_past_ = n; }
  size_t bytes() const { return k_.size() + v_.size(); }  // allocated
  size_t bytes_per_token() const { return 2 * static_cast<size_t>(n_layer_) * row_bytes_; }

  // Attention received: off by default (costs one pass over the scores).
  void track_attention(bool on);
  bool tracking_attention() const { return track_; }
  // Recent queries predict what the next ones attend to (SnapKV's
  // observation window), so older queries' weight decays: each new query
  // multiplies the weight of all before it by attention_decay().
  static double attention_decay();
  // Called by the forward pass before n_queries new queries add theirs.
  void age_attention(int64_t n_queries);
  // Adds, for positions [0, n), weighted sums of p * (keys the query saw)
  // and the weights of the (query, layer, head) that saw them: the forward
  // pass's partial sums.
  void add_attention(const double* received, const double* weights, int64_t n);
  // Mean attention positions [pos, pos + n) received relative to a uniform
  // share (1 = as much as an average position, 0 = none); -1 if unknown.
  double attention_score(int64_t pos, int64_t n) const;

 private:
  void relayout(int64_t n);
  size_t offset(int64_t layer, int64_t head, int64_t pos) const {
    return static_cast<size_t>((layer * n_head_kv_ + head) * n_alloc_ + pos) * head_bytes_;
  }
  int64_t n_ctx_, n_layer_, kv_dim_, n_head_kv_, head_dim_, n_past_ = 0, n_alloc_ = 0;
  TensorType type_;
  size_t row_bytes_, head_bytes_;
  std::vector<uint8_t> k_, v_;
  bool track_ = false;
  std::vector<double> received_;  // per position: weighted sum of p * (number of keys the query saw)
  std::vector<double> queries_;   // per position: summed weights of the (query, layer, head) that saw it
};

class Model {
 public:
  // Opens and validates a GGUF model. Throws Error naming the file and the
  // tensor/key at fault (unsupported architecture or tensor type, wrong shape).
  // Weight matrices the CPU's kernels can read faster re-laid (kernels.h,
  // "packed weights") are copied into anonymous memory and their file pages
  // released, so resident memory stays about the file size. ONELLM_PACK=0
  // in the environment turns this off (comparisons, diagnosis).
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_gguf(std::unique_ptr<GgufFile> file);

  // Reads the matrices still read from the file into memory ahead of the
  // first token (packed ones are in memory already, and a tied embedding
  // packed as the output matrix is looked up in the packed copy).
  // progress(fraction) after each matrix.
  void prefetch(const std::function<void(double)>& progress) const;
  // Bytes of re-laid weights held in memory (0: none packed).
  uint64_t packed_bytes() const { return packed_.size(); }
  // Frees the file's large metadata arrays (vocabulary, merges; ~45 MB for
  // a 150k vocabulary) once the tokenizer has been built from them.
  void release_tokenizer_metadata() { file_->release_large_arrays(4096); }

  const ModelConfig& config() const { return config_; }
  const GgufFile& gguf() const { return *file_; }

  // Runs tokens[0..n) at positions cache.size() .. cache.size()+n-1, appends
  // their keys/values to the cache and writes logits: for every token
  // (n x n_vocab) when all_logits, else only for the last one (n_vocab).
  // Throws Error if the cache has no room or a token id is out of range.
  // Uses the fast kernels (MathMode::kFast, llama.cpp's default arithmetic).
  void forward(const int32_t* tokens, int64_t n, KvCache& cache, float* logits, bool all_logits,
               ThreadPool* pool) const;
  // As above; kExact runs the scalar reference math (golden comparisons).
  void forward(const int32_t* tokens, int64_t n, KvCache& cache, float* logits, bool all_logits, ThreadPool* pool,
               MathMode mode) const;

  // Several sequences in one pass (batched decode, or prefill chunks next to
  // decode steps): segment i runs its n tokens at the end of its own cache
  // (caches must be distinct) and writes logits like forward() does. Every
  // weight matrix is read once for all rows.
  struct ForwardSegment {
    const int32_t* tokens;
    int64_t n;
    KvCache* cache;
    float* logits;  // nullptr: none (hidden only)
    bool all_logits;  // every row's logits / hidden state, else the last row's
    // This sequence's LoRA adapter (loaded for this model); nullptr: the
    // model's own (set_lora), if any. Sequences with different adapters
    // share one pass: the base matmuls run once over all rows, each adapter
    // on its own rows.
    const LoraWeights* lora = nullptr;
    // The final hidden states (after the output norm; n_embd floats a row)
    // of the rows all_logits selects: what embeddings are pooled from.
    float* hidden = nullptr;
  };
  void forward_batch(const ForwardSegment* segments, int64_t n_segments, ThreadPool* pool,
                     MathMode mode = MathMode::kFast) const;

  // The same pass, one step at a time (a step is one layer; the last step is
  // the output head), so that a long prompt chunk can stop between layers
  // and resume later: the service's scheduler lets more urgent work run in
  // between instead of waiting for the whole chunk. Until the pass is done
  // or dropped nothing else may use its caches; a dropped pass leaves them
  // at their old size (the rows it wrote lie beyond it). Arguments are
  // checked, and tokens embedded, when the pass begins; the logits buffers
  // must stay valid until the last step.
  class Pass {
   public:
    Pass(Pass&&) noexcept;
    Pass& operator=(Pass&&) noexcept;
    ~Pass();
    int64_t steps() const;
    int64_t steps_done() const;
    bool done() const { return steps_done() == steps(); }
    void step();

   private:
    friend class Model;
    struct State;
    explicit Pass(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };
  Pass begin_pass(const ForwardSegment* segments, int64_t n_segments, ThreadPool* pool,
                  MathMode mode = MathMode::kFast) const;

  // Bytes of weights (as stored) and of a KV cache of n_ctx positions.
  uint64_t weight_bytes() const;
  uint64_t kv_cache_bytes(int64_t n_ctx) const;
  uint64_t parameter_count() const;

  // Applies a LoRA adapter in every later pass (nullptr: none). Set it before
  // passes run; it must have been loaded for this model.
  void set_lora(std::shared_ptr<const LoraWeights> lora) { lora_ = std::move(lora); }
  const LayerWeights& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }

 private:
  Model() = default;
  void pack_weights();
  std::unique_ptr<GgufFile> file_;
  AnonymousMemory packed_;
  ModelConfig config_;
  MatrixView token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<float> rope_freqs_;
  std::vector<LayerWeights> layers_;
  std::shared_ptr<const LoraWeights> lora_;
};

// Writes a random-weight model of the given architecture and weight type with
// a small built-in tokenizer (tests, benchmarks of real shapes).
struct TinyModelSpec {
  std::string arch = "llama";
  TensorType type = TensorType::F32;
  uint64_t seed = 1;
  int64_t n_embd = 256, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 512, n_ctx = 512;
  int64_t head_dim = 0;  // 0: n_embd / n_head
  int64_t n_vocab = 0;   // 0: just the built-in tokenizer's size
  bool tied_output = false;
  bool llama3_rope_freqs = false;
};
void write_tiny_model(const TinyModelSpec& spec, const std::string& path);

}  // namespace onellm
