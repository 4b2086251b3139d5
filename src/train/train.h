// The training layer: backpropagation for the llama architecture as onellm
// runs it, AdamW with warm-up and cosine decay, checkpoints that resume
// bit-identically, and export to a GGUF that Model::load runs.
//
// Parameters live in one contiguous F32 buffer (gradients and Adam moments
// use the same layout), so the optimizer, clipping and checkpoints are plain
// loops over one array. Every reduction has a fixed order, so results do not
// depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"

namespace onellm {

// One named tensor inside a parameter buffer. dims as ggml ne (dims[0] is
// the contiguous one), so a matrix is dims = {cols, rows}.
struct ParamTensor {
  std::string name;  // GGUF name, "blk.0.attn_q.weight"
  std::vector<int64_t> dims;
  size_t offset = 0;  // in floats
  size_t size = 0;    // in floats; 0 for a mapped matrix
  // Non-null: a matrix of a mapped model (TrainModel::map_gguf), read in
  // place from the file in its stored type and not in the parameter buffer.
  const void* mapped = nullptr;
  TensorType type = TensorType::F32;  // as stored (F32 unless mapped)
  bool is_matrix() const { return dims.size() == 2; }
};

// GGUF metadata entries in order (a tokenizer section, usually).
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// The architectures onellm trains and fine-tunes: today the runtime's three
// (llama; qwen2 with q/k/v biases, qwen3 with per-head q/k norms). Kept apart
// from the loader's list on purpose: an architecture the runtime learns to
// run needs its backward here before it may be trained.
bool is_trainable_arch(const std::string& arch);

// A model's weights in F32 (llama, qwen2 or qwen3), in onellm's own buffer
// (not the mapping).
class TrainModel {
 public:
  // Random weights from `seed`: matrices N(0, 0.02), the residual output
  // projections (attn_output, ffn_down) scaled by 1/sqrt(2 n_layer), norms 1.
  // config.arch must be "llama", "qwen2" or "qwen3" (with config.qkv_bias /
  // qk_norm: the biases start at 0, the head norms at 1; the architecture sets
  // the rotary layout); head_dim and n_rot default from n_embd/n_head.
  static TrainModel init(ModelConfig config, uint64_t seed);
  // Dequantized copy of a llama, qwen2 or qwen3 GGUF's weights (to train it
  // further or under a LoRA adapter). Throws Error naming the file for other
  // architectures.
  static TrainModel from_gguf(const GgufFile& file);
  // The frozen base of a LoRA adapter at about the file's size in memory:
  // matrices stay in the file (mapped, in their stored type, and the training
  // forward runs them on the runtime's kernels), norms and biases are
  // dequantized. Such a model can be run forward and backward (for adapter
  // gradients) but not trained or exported itself: Trainer and export throw;
  // dequantized() makes the F32 copy they need.
  static TrainModel map_gguf(std::shared_ptr<const GgufFile> file);
  bool has_mapped_matrices() const { return file_ != nullptr; }
  TrainModel dequantized() const;
  // A matrix (in the buffer or mapped) as the kernels read it.
  MatrixView matrix(const ParamTensor& t) const;

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  const ParamTensor& tensor(const std::string& name) const;  // throws if absent
  float* data() { return params_.data(); }
  const float* data() const { return params_.data(); }
  size_t size() const { return params_.size(); }
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }
  // Llama 3 per-dimension rope divisors (constant, not trained); may be empty.
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }

  // Builds the tensor layout for `config` with zeroed parameters.
  explicit TrainModel(ModelConfig config);
  void set_rope_freqs(std::vector<float> f) { rope_freqs_ = std::move(f); }

 private:
  // The layout; with matrices_in_buffer false the matrices take no room in
  // params_ (map_gguf points them into the file).
  TrainModel(ModelConfig config, bool matrices_in_buffer);
  static TrainModel read_gguf(std::shared_ptr<const GgufFile> file, const GgufFile& f);

  std::shared_ptr<const GgufFile> file_;  // of mapped matrices
  ModelConfig config_;
  std::vector<ParamTensor> tensors_;
  std::vector<float> params_;
  std::vector<float> rope_freqs_;
};

// ---- forward and backward
// tokens has n + 1 entries: positions 0..n-1 are the input, tokens 1..n the
// targets. Adds grad_scale * d(sum of the n token losses)/d(param) into
// grads (model.size() floats) and returns the summed loss (natural log).
// With target_mask (n entries), only targets whose mask is non-zero count.
// With document_end >= 0, a new document starts after each such token: it
// attends only to itself and its positions start at 0, exactly as if it were
// a sequence of its own (as every prompt is at inference).
double forward_backward(const TrainModel& model, const int32_t* tokens, int64_t n, float* grads, float grad_scale,
                        ThreadPool* pool, const uint8_t* target_mask = nullptr, int32_t document_end = -1);
// Logits (n x n_vocab) of tokens[0..n) as the training forward computes them.
void forward_logits(const TrainModel& model, const int32_t* tokens, int64_t n, float* logits, ThreadPool* pool,
                    int32_t document_end = -1);
// Summed next-token loss of tokens[0..n] (n + 1 tokens), no gradients; with
// target_mask (n entries), only targets whose mask is non-zero count.
double sequence_loss(const TrainModel& model, const int32_t* tokens, int64_t n, ThreadPool* pool,
                     const uint8_t* target_mask = nullptr, int32_t document_end = -1);
// Mean next-token loss over all of `tokens`, in windows of seq_len
// (documents as in forward_backward).
double mean_loss(const TrainModel& model, const std::vector<int32_t>& tokens, int64_t seq_len, ThreadPool* pool,
                 int32_t document_end = -1);

// ---- optimizer
struct AdamWOptions {
  float lr = 1e-3f;       // peak learning rate
  float min_lr = 1e-4f;   // reached at the last step by the cosine decay
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;  // decoupled; applied to matrices only
  float grad_clip = 1.0f;     // global L2 norm; 0 disables
};
// Learning rate at optimizer step `step` (0-based): linear warm-up to lr over
// warmup_steps, then cosine decay to min_lr at total_steps - 1.
float learning_rate(const AdamWOptions& o, int64_t step);
// Scales grads so that their global L2 norm is at most max_norm; returns the
// norm before clipping.
double clip_grad_norm(float* grads, size_t n, float max_norm);
// One AdamW update of params from grads (moments m, v; all n floats).
// step is 0-based (bias correction uses step + 1); matrices get weight decay,
// norm gains do not.
void adamw_update(const AdamWOptions& o, int64_t step, float lr, float* params, const float* grads, float* m,
                  float* v, const std::vector<ParamTensor>& tensors);

// ---- training loop
struct TrainOptions;
// Window start offsets (into a corpus of corpus_size tokens) of the
// sequences of optimizer step `step` (see Trainer). With `starts`, windows
// begin only at those offsets (each must leave room for a window).
std::vector<int64_t> batch_windows(size_t corpus_size, const TrainOptions& options, int64_t step,
                                   const std::vector<int64_t>* starts = nullptr);

// Which next tokens the loss counts.
//   kAll: every one (language-model pre-training).
//   kReplies: only the assistant replies of chat documents (supervised
//     fine-tuning): a window starts at a document, and a reply token counts
//     only when its whole document up to it is inside the window, so a reply
//     is never learned without the request it answers.
enum class LossTargets { kAll, kReplies };

struct TrainOptions {
  AdamWOptions adam;
  int64_t seq_len = 128;    // tokens per training sequence
  int64_t batch_size = 8;   // sequences per optimizer step
  uint64_t data_seed = 1;   // order of the training windows
  int n_threads = 1;
  LossTargets targets = LossTargets::kAll;
  // >= 0: documents end with this token and attend only within themselves
  // (see forward_backward); -1: a window is one sequence.
  int32_t document_end = -1;
  // The batch's windows run at the same time, one per thread, each into its
  // own gradient buffer, summed in window order (a window's ops run on one
  // thread; memory: batch_size - 1 more gradient buffers). The sum order
  // differs from the default (windows one after another, each op over all
  // threads), so results differ in the last bits between the two modes but
  // never with the thread count. Faster for small models, whose per-op work
  // is too small to split well (docs/training.md, "Speed").
  bool batch_parallel = false;
};

// How replies are marked in a chat corpus, as token ids: documents end with
// `document_end`; a reply starts after the `reply_open` sequence (e.g. the
// tokens of "<|im_start|>assistant\n") and ends with `reply_close` (included).
struct ReplyMarkers {
  int32_t document_end = -1;
  std::vector<int32_t> reply_open;
  int32_t reply_close = -1;
};
// For each corpus token: the offset of its document's first token if the
// token is part of a reply, else -1.
std::vector<int32_t> reply_token_documents(const std::vector<int32_t>& corpus, const ReplyMarkers& markers);

// A corpus's replies, for loss on replies (Trainer, LoraTrainer).
struct ReplyIndex {
  ReplyMarkers markers;
  std::vector<int32_t> reply_document;   // reply_token_documents(corpus)
  std::vector<int64_t> document_starts;  // where windows may start
};

struct StepStats {
  int64_t step = 0;      // the step just taken (0-based)
  double loss = 0;       // mean next-token loss of the batch (nats)
  double grad_norm = 0;  // before clipping
  float lr = 0;
};

// Trains on one token stream (documents joined by the caller). The stream is
// cut into windows of seq_len + 1 tokens (stride seq_len); every epoch visits
// them in a fresh order drawn from (data_seed, epoch), so the data of a step
// is a pure function of the seed and the step number and a resumed run sees
// exactly the batches an uninterrupted run would.
class Trainer {
 public:
  Trainer(TrainModel model, std::vector<int32_t> corpus, TrainOptions options, GgufMetadata tokenizer = {});
  // Restores model, Adam moments, step and options from a checkpoint.
  // Throws Error naming the file if it is not a training checkpoint or is
  // corrupt (checksum).
  static Trainer resume(const std::string& checkpoint, std::vector<int32_t> corpus, int n_threads);

  StepStats step();
  // Runs until total_steps, calling on_step after every step (may be empty).
  void run(const std::function<void(const StepStats&)>& on_step);
  // Writes model + moments + step + options atomically (temp file + rename).
  // The checkpoint is itself a GGUF Model::load can run.
  void save_checkpoint(const std::string& path) const;
  // Mean next-token loss of held-out `tokens`, counting what training
  // counts: every token (windows of seq_len), or with kReplies the reply
  // tokens, each document read from its start.
  double evaluate(const std::vector<int32_t>& tokens) const;

  int64_t next_step() const { return step_; }
  const TrainModel& model() const { return model_; }
  const TrainOptions& options() const { return options_; }
  const GgufMetadata& tokenizer() const { return tokenizer_; }
  // Window start offsets (into the corpus) of the sequences of `step`.
  std::vector<int64_t> batch_windows(int64_t step) const;
  // Required before step() when options().targets is kReplies; returns the
  // number of reply tokens found (throws if there are none).
  int64_t set_reply_markers(const ReplyMarkers& markers);

 private:
  TrainModel model_;
  std::vector<int32_t> corpus_;
  ReplyIndex replies_;  // kReplies: set_reply_markers
  TrainOptions options_;
  GgufMetadata tokenizer_;
  std::vector<float> grads_, m_, v_;
  std::vector<std::vector<float>> window_grads_;  // batch_parallel: windows 1..B-1
  int64_t step_ = 0;
  std::unique_ptr<ThreadPool> pool_;
};

// ---- GGUF in and out
class LoraAdapter;
// Every "tokenizer.*" key of a GGUF file, in file order.
GgufMetadata tokenizer_metadata_from_gguf(const GgufFile& file);
// A byte-level BPE ("gpt2") tokenizer section from a token list.
GgufMetadata tokenizer_metadata_from_tokens(const std::vector<std::string>& tokens,
                                            const std::vector<int32_t>& token_types,
                                            const std::vector<std::string>& merges, int32_t bos_id, int32_t eos_id,
                                            const std::string& pre = "default");
// Writes the model as a GGUF of its architecture (same keys as
// write_tiny_model): matrices in `matrix_type` (F32, F16, Q8_0, ...; columns
// must fit its block size), norms and biases in F32, then the tokenizer entries and `extra` metadata.
void export_gguf(const TrainModel& model, const GgufMetadata& tokenizer, const std::string& path,
                 TensorType matrix_type = TensorType::F32, const GgufMetadata& extra = {});
// Writes base with adapter merged (W + scale B A) as a plain GGUF of its
// architecture, one matrix at a time: memory is the output plus one matrix
// in F32, whether base is mapped or not. Matrices keep their stored type
// unless matrix_type is given; those the adapter leaves alone and that keep
// their type are copied byte for byte, the adapted ones are quantized again
// (norms and biases stay F32).
void export_merged_gguf(const TrainModel& base, const LoraAdapter& adapter, const GgufMetadata& tokenizer,
                        const std::string& path, std::optional<TensorType> matrix_type = std::nullopt,
                        ThreadPool* pool = nullptr);
// The same file as a writer, for callers that add tensors (checkpoints).
GgufWriter model_gguf_writer(const TrainModel& model, const GgufMetadata& tokenizer, TensorType matrix_type,
                             const GgufMetadata& extra);

// ---- LoRA: low-rank adapters trained on a frozen base
struct LoraOptions {
  int64_t rank = 8;
  float alpha = 16.0f;  // the adapter's update is scaled by alpha / rank
  // Matrices adapted in every layer ("attn_q" adapts blk.N.attn_q.weight).
  std::vector<std::string> targets = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
};

// For each adapted matrix W (rows x cols): A (rank x cols) and B (rows x
// rank); the adapted model runs W + (alpha / rank) B A. Stored as an adapter
// GGUF: tensors "<W name>.lora_a" (ggml dims {cols, rank}) and
// "<W name>.lora_b" ({rank, rows}), F32; keys general.type = "adapter",
// adapter.type = "lora", adapter.lora.alpha, adapter.lora.rank (see
// docs/training.md).
class LoraAdapter {
 public:
  // A ~ N(0, 1/cols), B = 0: the adapted model starts equal to the base.
  static LoraAdapter init(const TrainModel& base, const LoraOptions& options, uint64_t seed);
  // Throws Error naming the file and tensor if it does not fit the base.
  static LoraAdapter load(const std::string& path, const TrainModel& base);
  void save(const std::string& path) const;  // atomic
  GgufWriter gguf_writer() const;             // what save writes (checkpoints add to it)

  float scale() const { return alpha_ / static_cast<float>(rank_); }
  int64_t rank() const { return rank_; }
  float alpha() const { return alpha_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }

  // merged = base with W + scale B A for every adapted W (merged is
  // overwritten; it must have base's layout, and neither may be mapped).
  void merge(const TrainModel& base, TrainModel& merged) const;
  // W += scale B A for every adapted W of model (base's layout, not mapped).
  void add_to(TrainModel& model) const;
  // Whether tensor `index` of the base is adapted; if so, add_to_matrix adds
  // scale B A to rows [row_begin, row_end) (default: all) of w (that
  // tensor's rows x cols, F32).
  bool adapts(size_t index) const;
  void add_to_matrix(size_t index, float* w, int64_t row_begin = 0, int64_t row_end = -1) const;
  // The same for rows [row_begin, row_end) held alone: `rows` is row row_begin.
  void add_to_rows(size_t index, float* rows, int64_t row_begin, int64_t row_end) const;
  // Calls f(W's index in the base's tensors(), A's offset, B's offset in
  // params()) for each adapted matrix (the training pass finds its adapters
  // this way).
  template <class F>
  void for_each_target(F f) const {
    for (const Target& t : targets_) f(t.w_index, t.a_offset, t.b_offset);
  }

 private:
  struct Target {
    std::string weight;  // base tensor name
    size_t w_index = 0, a_offset = 0, b_offset = 0;
    int64_t rows = 0, cols = 0;
  };
  void add_target(const ParamTensor& w, size_t index);
  int64_t rank_ = 0;
  float alpha_ = 0;
  std::string arch_;
  std::vector<Target> targets_;
  std::vector<ParamTensor> tensors_;
  std::vector<float> params_;
};

// Adapter gradients of one sequence (tokens as forward_backward), added to
// adapter_grads scaled by grad_scale; returns the summed loss.
double lora_forward_backward(const TrainModel& base, const LoraAdapter& adapter, const int32_t* tokens, int64_t n,
                             float* adapter_grads, float grad_scale, ThreadPool* pool);

// Trains only the adapter; the base stays as loaded (dequantized by
// TrainModel::from_gguf, or mapped by map_gguf: then its matrices run on the
// kernels `run` uses for their type). Same batches, schedule, clipping and
// AdamW as Trainer (weight decay applies to A and B).
class LoraTrainer {
 public:
  LoraTrainer(TrainModel base, LoraAdapter adapter, std::vector<int32_t> corpus, TrainOptions options);
  // Restores adapter, Adam moments, step and options from a checkpoint
  // (save_checkpoint) for `base`. Throws Error naming the file if it is not
  // a LoRA checkpoint, is corrupt, or was trained on another corpus or base.
  static LoraTrainer resume(const std::string& checkpoint, TrainModel base, std::vector<int32_t> corpus,
                            int n_threads);
  // Required before step() when options.targets is kReplies (supervised
  // fine-tuning on chat data: only the replies count), as Trainer's.
  int64_t set_reply_markers(const ReplyMarkers& markers);
  StepStats step();
  // The adapter file (atomic), plus the Adam moments (tensors train.adam_m,
  // train.adam_v), the options, step and the base's fingerprint (train.*
  // keys): it loads as an adapter wherever one is expected.
  void save_checkpoint(const std::string& path) const;
  void run(const std::function<void(const StepStats&)>& on_step);
  double evaluate(const std::vector<int32_t>& tokens) const;  // mean loss of base + adapter
  int64_t next_step() const { return step_; }
  const LoraAdapter& adapter() const { return adapter_; }
  const TrainModel& base() const { return base_; }
  const TrainOptions& options() const { return options_; }
  // The base with the adapter merged in (to export as a plain model).
  TrainModel merged() const;

 private:
  TrainModel base_;
  LoraAdapter adapter_;
  std::vector<int32_t> corpus_;
  ReplyIndex replies_;  // kReplies: set_reply_markers
  TrainOptions options_;
  std::vector<float> grads_, m_, v_;
  int64_t step_ = 0;
  std::unique_ptr<ThreadPool> pool_;
};

// ---- tokenizer training: byte-level BPE ("gpt2" vocabularies)
struct BpeTrainOptions {
  int32_t vocab_size = 2048;  // bytes + merges + special tokens
  std::string pre = "qwen2";  // tokenizer.ggml.pre: the runtime pre-tokenizer that splits words
  int64_t min_pair_count = 2;  // stop merging when the best pair is rarer
  // No merge joins a space (or tab) to the word after it, so " Uncle" is
  // "Ġ" + the tokens of "Uncle". A word then has the same tokens after a
  // space as after a quote: a tool-call argument ("to": "Uncle Tom") copies
  // the request's tokens instead of spelling a different token sequence.
  // The file stays a plain `pre` vocabulary; only the merges differ.
  bool space_apart = false;
  // Control tokens (never produced by merges); the first is EOS and BOS.
  std::vector<std::string> control_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  // User-defined tokens: matched in text like control tokens, but their text
  // is part of the model's visible output (tool-call markers).
  std::vector<std::string> user_tokens = {"<tool_call>", "</tool_call>"};
};

struct BpeVocabulary {
  std::vector<std::string> tokens;  // GPT-2 byte alphabet texts
  std::vector<int32_t> token_types;  // TokenKind values
  std::vector<std::string> merges;   // "left right", by rank
  int32_t eos_id = -1;
  std::string pre;
};

// Learns merges from `text`: special tokens are cut out, the rest split into
// words by the runtime pre-tokenizer `options.pre`, then the most frequent
// adjacent pair (ties: the pair whose merged text sorts first) is merged
// until vocab_size. Deterministic: same text and options, same vocabulary.
BpeVocabulary train_bpe(std::string_view text, const BpeTrainOptions& options);
// The ChatML template (tools listed compactly, calls as <tool_call>{json}
// </tool_call>) that onellm's own tokenizers carry.
std::string onellm_chat_template();
// tokenizer.* metadata of a trained vocabulary (with the chat template).
GgufMetadata bpe_tokenizer_metadata(const BpeVocabulary& vocab, const std::string& chat_template);
// Writes a vocabulary-only GGUF (no tensors) that Tokenizer::from_gguf loads.
void write_tokenizer_gguf(const GgufMetadata& tokenizer, const std::string& path);

// ---- the device-assistant corpus (requests -> tool calls on the simulated
// device, short answers, chit-chat)
struct DeviceExample {
  std::vector<ChatMessage> messages;  // [system], user, assistant, [tool result, assistant]
  ChatJson tools;                     // null, or the tools listed in the prompt
  ChatJson expected_calls = ChatJson::array();  // {"name", "arguments"} of the first reply
  std::vector<std::string> values;  // argument values drawn from the pools (names, titles, dates, ...)
};
struct DeviceCorpusOptions {
  uint64_t seed = 1;
  double p_tools_listed = 0.2;  // prompt lists the tools (as the API would)
  double p_system = 0.5;        // a system prompt
  double p_tool_result = 0.25;  // the call's result and a short confirmation follow
  double p_vary_phrasing = 0;   // a training phrasing gets a synonym, a filler or loses a small word
  double p_mix_phrasing = 0;    // a training phrasing is recombined from others with the same slots
  double p_unknown_word = 0;    // a word of a training phrasing outside its slots becomes a made-up word
};
// The simulated device's tools (OpenAI function definitions, onellm's own).
const ChatJson& device_tools();
// n examples, a pure function of (options, heldout, n). Held-out examples use
// only the held-out quarter of every phrasing list and string-value pool
// (numbers and enum values are shared), training ones only the rest.
std::vector<DeviceExample> make_device_examples(const DeviceCorpusOptions& options, bool heldout, int64_t n);
// The arguments ("tool.argument") that the examples' first calls fill with a
// span of the request, starting and ending at word boundaries, in at least
// `min_share` of at least `min_count` string values: the ones a model trained
// on them copies verbatim (onellm.copy_arguments, engine/copy_bias.h). Sorted.
std::vector<std::string> verbatim_arguments(const std::vector<DeviceExample>& examples, double min_share = 0.99,
                                            int64_t min_count = 20);
// `text` with every occurrence of the values (any case; longest first)
// removed: the text a tokenizer is trained on when its merges should come
// from the phrasings, not from the values. Values then split into the same
// short pieces in training as the unseen ones do at inference, so what the
// model learns to copy is what it will have to copy.
std::string without_values(std::string text, std::vector<std::string> values);

// Copy-task documents "A ; A ." (joined by <|endoftext|>) for the first
// training phase, which forms the induction heads that copy argument values
// from a request. A is min-max words: half the time a span of the examples'
// user requests, else words drawn from them (by frequency) in no order, with
// numbers among them. A pure function of (examples, options).
struct InductionCorpusOptions {
  uint64_t seed = 1;
  int64_t n_documents = 60000;
  int min_words = 6, max_words = 24;
  double p_number = 0.15;  // share of the drawn words that are numbers
  // Share of all words then replaced by made-up ones ("dravel", "Kimo"): the
  // values a held-out request brings are words training never showed, which
  // a copy learned on known words alone reproduces badly. 0 draws nothing.
  double p_made_up = 0;
  // Share of documents whose copy is one or two quoted spans of the line
  // ("A ; \"span\", \"span\" ."), the way a tool call's argument values quote
  // part of the request. A word that opens a quote has no space before it, so
  // its first token differs from the request's (" Uncle" vs "Uncle"): the
  // plain copy never practises that step. 0 draws nothing. (Measured at 0.5:
  // no fewer copy misses; docs/training.md, "Session 18".)
  double p_quoted = 0;
  // Share of documents "A => A' ." with a clock time among A's words ("6:30
  // pm", "7AM", "18:05") and A' = A with every 12-hour time of it written as
  // 24-hour "HH:MM" ("18:30", "07:00"). A tool call's hour is a copy of the
  // request's only for a.m. and 24-hour times; for p.m. ones it is the copy
  // plus 12, and the copy learned here alone wins (docs/training.md, "Session
  // 23"). Their own separator keeps the plain copy a copy. 0 draws nothing.
  double p_clock = 0;
};
std::string make_induction_corpus(const std::vector<DeviceExample>& examples, const InductionCorpusOptions& options);

}  // namespace onellm
