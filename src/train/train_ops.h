// Private to train/: the forward and backward of each building block. Every
// backward *adds* into its gradient outputs, and every element of an output
// is summed in one fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "kernels/kernels.h"
#include "model/model.h"
#include "train/train.h"

namespace onellm::train_ops {

// fn over [0, n): split across pool's threads, or in one call without a pool.
void run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn);

// y (n x rows) = x (n x cols) times W^T, W row-major rows x cols.
void linear_forward(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
                    ThreadPool* pool);
// dx (n x cols) += dy (n x rows) times W.
void linear_backward_input(const float* w, int64_t rows, int64_t cols, const float* dy, int64_t n, float* dx,
                           ThreadPool* pool);
// The same two for a matrix in any stored type (a mapped LoRA base): the
// forward is matmul_fast, as `run` computes it; the backward dequantizes W a
// tile of rows at a time, never the whole matrix. Neither depends on the
// thread count.
void linear_forward(const MatrixView& w, const float* x, int64_t n, float* y, ThreadPool* pool);
void linear_backward_input(const MatrixView& w, const float* dy, int64_t n, float* dx, ThreadPool* pool);
// dw (rows x cols) += dy^T (rows x n) times x (n x cols).
void linear_backward_weight(const float* x, int64_t cols, const float* dy, int64_t rows, int64_t n, float* dw,
                            ThreadPool* pool);

// RMSNorm of n rows of d, as kernels' rms_norm; saves 1/rms per row.
void rms_norm_forward(const float* x, const float* w, int64_t n, int64_t d, float eps, float* y, float* rstd);
// dx += d(y)/d(x) dy;  dw += d(y)/d(w) dy (dw null: a frozen weight).
void rms_norm_backward(const float* x, const float* w, const float* rstd, const float* dy, int64_t n, int64_t d,
                       float* dx, float* dw);

// A LoRA adapter on one matrix W (rows x cols): y = W x + scale B (A x),
// A rank x cols, B rows x rank; da / db receive the adapter's gradients
// (null in a forward only).
struct LoraSite {
  const float *a, *b;
  float *da, *db;
  int64_t rank;
  float scale;
};
// y (n x rows) += scale (x A^T) B^T; scratch is resized as needed.
void lora_forward(const LoraSite& s, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
                  std::vector<float>& scratch, ThreadPool* pool);
// Given dy (n x rows): da, db += the adapter's gradients, dx += the adapter's
// part of d(loss)/dx (scale A^T B^T dy). W's own part is the caller's.
void lora_backward(const LoraSite& s, int64_t rows, int64_t cols, const float* x, const float* dy, int64_t n,
                   float* dx, std::vector<float>& scratch, ThreadPool* pool);

// The adapters of a training pass, keyed by the adapted matrix's index in
// the model's tensors().
using AdapterSites = std::unordered_map<size_t, LoraSite>;
// forward_backward (train.h) with the model frozen: gradients go only to the
// adapters of sites (the base's own are not computed); returns the summed loss.
double adapter_forward_backward(const TrainModel& base, const AdapterSites& sites, const int32_t* tokens, int64_t n,
                                float grad_scale, ThreadPool* pool, const uint8_t* target_mask, int32_t document_end);
// sequence_loss (train.h) of the model with the adapters of sites (may be
// null: none).
double adapted_sequence_loss(const TrainModel& model, const AdapterSites* sites, const int32_t* tokens, int64_t n,
                             ThreadPool* pool, const uint8_t* target_mask, int32_t document_end);

// What Trainer and LoraTrainer share about their data: where replies are
// (ReplyIndex, train.h), which windows a step reads and which of their
// targets count.
// Throws if the corpus has no reply (or no document fits a window); returns
// the number of reply tokens.
int64_t index_replies(const std::vector<int32_t>& corpus, const ReplyMarkers& markers, int64_t seq_len,
                      ReplyIndex& out);
struct StepWindows {
  std::vector<int64_t> starts;
  std::vector<std::vector<uint8_t>> masks;  // kReplies: the targets that count
  std::vector<int64_t> targets, rows;       // per window: targets, rows up to the last one
  int64_t total_targets = 0;
};
// The windows of `step` (replies: null unless options.targets is kReplies).
StepWindows step_windows(size_t corpus_size, const TrainOptions& options, int64_t step, const ReplyIndex* replies);
// Held-out loss as training counts it (Trainer::evaluate), of the model with
// the adapters of sites if not null (LoraTrainer::evaluate).
double heldout_loss(const TrainModel& model, const std::vector<int32_t>& tokens, const TrainOptions& options,
                    const ReplyMarkers& markers, ThreadPool* pool, const AdapterSites* sites = nullptr);

// cos/sin per position and rotary pair, by rope_cos_sin as Model::forward
// builds them (YaRN and attn_factor included).
struct RopeTable {
  RopeTable(const ModelConfig& c, const std::vector<float>& freq_factors, int64_t n_pos);
  int64_t half = 0;
  std::vector<float> cos_sin;  // [pos][pair][cos, sin]
};
// Rotates each head of each row (n rows of n_heads x head_dim) at
// positions[t] (every position < the table's n_pos); inverse = true applies
// the transpose (the backward of a rotation).
void rope_apply(const ModelConfig& c, const RopeTable& table, float* x, int64_t n, int64_t n_heads, bool inverse,
                const int64_t* positions);

// The documents of a window: sorted start offsets, the first 0. Tokens attend
// only within their document and count positions from its start, which is
// what inference sees for every prompt.
using DocumentStarts = std::vector<int64_t>;

// Causal GQA attention of n tokens. q: n x (n_head*hd), k, v: n x (n_head_kv*hd).
// probs (n_head x n x n; only the documents' diagonal blocks are written,
// zero where j > t) is saved for the backward.
void attention_forward(const ModelConfig& c, const float* q, const float* k, const float* v, int64_t n,
                       const DocumentStarts& docs, float* probs, float* out, ThreadPool* pool);
// dq, dk, dv += gradients given d(out).
void attention_backward(const ModelConfig& c, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, int64_t n, const DocumentStarts& docs, float* dq, float* dk, float* dv,
                        ThreadPool* pool);

// d(gate), d(up) of h = silu(gate) * up, given dh (overwrites both).
void swiglu_backward(const float* gate, const float* up, const float* dh, int64_t n, float* dgate, float* dup);

// Softmax cross-entropy of n rows of logits against targets: writes each
// row's loss and, if dlogits is not null, scale * d(loss)/d(logits). Rows
// whose mask entry is 0 (mask may be null: all count) get loss and
// gradient 0.
void cross_entropy(const float* logits, const int32_t* targets, int64_t n, int64_t vocab, float scale,
                   double* row_loss, float* dlogits, ThreadPool* pool, const uint8_t* mask = nullptr);

}  // namespace onellm::train_ops
