// The training loop: deterministic batches, AdamW steps and evaluation
// (checkpoints: checkpoint.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "base/error.h"
#include "train/train.h"
#include "train/train_ops.h"

namespace onellm {

using namespace train_ops;
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Targets start+1 .. start+n of a window that count under kReplies: reply
// tokens whose document starts inside the window. Returns how many.
int64_t reply_mask(const std::vector<int32_t>& reply_documents, int64_t start, int64_t n, std::vector<uint8_t>& mask) {
  mask.assign(static_cast<size_t>(n), 0);
  int64_t count = 0;
  for (int64_t r = 0; r < n; ++r) {
    mask[static_cast<size_t>(r)] = reply_documents[static_cast<size_t>(start + 1 + r)] >= start;
    count += mask[static_cast<size_t>(r)];
  }
  return count;
}

int64_t window_count(size_t corpus_size, int64_t seq_len) {
  return corpus_size < 2 ? 0 : static_cast<int64_t>(corpus_size - 1) / seq_len;
}

}  // namespace

Trainer::Trainer(TrainModel model, std::vector<int32_t> corpus, TrainOptions options, GgufMetadata tokenizer)
    : model_(std::move(model)), corpus_(std::move(corpus)), options_(options), tokenizer_(std::move(tokenizer)) {
  const ModelConfig& c = model_.config();
  if (model_.has_mapped_matrices())
    throw Error("train: the model's matrices are mapped from its file (a LoRA base); train its dequantized() copy");
  if (options_.seq_len <= 0 || options_.batch_size <= 0)
    throw Error("train: sequence length and batch size must be positive");
  if (options_.seq_len > c.n_ctx_train)
    throw Error("train: sequence length " + std::to_string(options_.seq_len) + " exceeds the model context of " +
                std::to_string(c.n_ctx_train));
  if (window_count(corpus_.size(), options_.seq_len) == 0)
    throw Error("train: the corpus has " + std::to_string(corpus_.size()) + " tokens, fewer than one window of " +
                std::to_string(options_.seq_len + 1));
  for (size_t i = 0; i < corpus_.size(); ++i)
    if (corpus_[i] < 0 || corpus_[i] >= c.n_vocab)
      throw Error("train: corpus token " + std::to_string(corpus_[i]) + " at offset " + std::to_string(i) +
                  " is out of range (vocabulary has " + std::to_string(c.n_vocab) + " tokens)");
  grads_.assign(model_.size(), 0.0f);
  m_.assign(model_.size(), 0.0f);
  v_.assign(model_.size(), 0.0f);
  if (options_.n_threads > 1) pool_ = std::make_unique<ThreadPool>(options_.n_threads);
}

std::vector<int32_t> reply_token_documents(const std::vector<int32_t>& corpus, const ReplyMarkers& markers) {
  if (markers.reply_open.empty()) throw Error("train: no reply-opening tokens given");
  std::vector<int32_t> out(corpus.size(), -1);
  const size_t open_len = markers.reply_open.size();
  int64_t document = 0;
  bool in_reply = false;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (in_reply) {
      out[i] = static_cast<int32_t>(document);
      if (corpus[i] == markers.reply_close) in_reply = false;
    } else if (i + 1 >= open_len &&
               std::equal(markers.reply_open.begin(), markers.reply_open.end(), corpus.begin() + (i + 1 - open_len))) {
      in_reply = true;  // the reply starts with the next token
    }
    if (corpus[i] == markers.document_end) {
      document = static_cast<int64_t>(i) + 1;
      in_reply = false;
    }
  }
  return out;
}

std::vector<int64_t> batch_windows(size_t corpus_size, const TrainOptions& options, int64_t step,
                                   const std::vector<int64_t>* starts) {
  const int64_t n_windows =
      starts != nullptr ? static_cast<int64_t>(starts->size()) : window_count(corpus_size, options.seq_len);
  if (n_windows == 0) throw Error("train: the corpus is shorter than one window");
  const int64_t B = options.batch_size;
  std::vector<int64_t> out;
  int64_t cached_epoch = -1;
  std::vector<int64_t> order;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t g = step * B + b;
    const int64_t epoch = g / n_windows;
    if (epoch != cached_epoch) {
      // Fisher-Yates with a generator seeded from (seed, epoch) alone.
      order.resize(static_cast<size_t>(n_windows));
      for (int64_t i = 0; i < n_windows; ++i) order[static_cast<size_t>(i)] = i;
      std::mt19937_64 gen(splitmix64(options.data_seed ^ splitmix64(static_cast<uint64_t>(epoch))));
      for (int64_t i = n_windows - 1; i > 0; --i)
        std::swap(order[static_cast<size_t>(i)], order[gen() % static_cast<uint64_t>(i + 1)]);
      cached_epoch = epoch;
    }
    const int64_t w = order[static_cast<size_t>(g % n_windows)];
    out.push_back(starts != nullptr ? (*starts)[static_cast<size_t>(w)] : w * options.seq_len);
  }
  return out;
}

std::vector<int64_t> Trainer::batch_windows(int64_t step) const {
  return onellm::batch_windows(corpus_.size(), options_, step,
                               options_.targets == LossTargets::kReplies ? &replies_.document_starts : nullptr);
}

int64_t train_ops::index_replies(const std::vector<int32_t>& corpus, const ReplyMarkers& markers, int64_t seq_len,
                                 ReplyIndex& out) {
  out.markers = markers;
  out.reply_document = reply_token_documents(corpus, markers);
  out.document_starts.clear();
  const auto last_start = static_cast<int64_t>(corpus.size()) - seq_len - 1;
  for (int64_t i = 0; i <= last_start; ++i)
    if (i == 0 || corpus[static_cast<size_t>(i - 1)] == markers.document_end) out.document_starts.push_back(i);
  int64_t replies = 0;
  for (int32_t d : out.reply_document) replies += d >= 0;
  if (replies == 0 || out.document_starts.empty())
    throw Error("train: the corpus has no assistant replies (or no document fits a window) to train on");
  return replies;
}

int64_t Trainer::set_reply_markers(const ReplyMarkers& markers) {
  return index_replies(corpus_, markers, options_.seq_len, replies_);
}

StepWindows train_ops::step_windows(size_t corpus_size, const TrainOptions& options, int64_t step,
                                    const ReplyIndex* replies) {
  const int64_t T = options.seq_len;
  if (options.targets == LossTargets::kReplies && (replies == nullptr || replies->reply_document.size() != corpus_size))
    throw Error("train: loss on replies needs the reply markers (set_reply_markers)");
  if (options.targets != LossTargets::kReplies) replies = nullptr;
  StepWindows w;
  w.starts = batch_windows(corpus_size, options, step, replies != nullptr ? &replies->document_starts : nullptr);
  // Targets of each window: all, or the replies whose document starts in it.
  w.masks.resize(w.starts.size());
  w.targets.assign(w.starts.size(), T);
  // Rows after a window's last target carry no loss and nothing before them
  // attends to them, so they are left out: their products would only add
  // exact zeros to every sum (~8% of phase 2's rows, a conversation cut off
  // by the window's end). The kept rows' arithmetic is unchanged, so the
  // result is the same bit for bit.
  w.rows.assign(w.starts.size(), T);
  for (size_t b = 0; b < w.starts.size() && replies != nullptr; ++b) {
    w.targets[b] = reply_mask(replies->reply_document, w.starts[b], T, w.masks[b]);
    while (w.rows[b] > 0 && w.masks[b][static_cast<size_t>(w.rows[b] - 1)] == 0) --w.rows[b];
  }
  for (int64_t n : w.targets) w.total_targets += n;
  return w;
}

StepStats Trainer::step() {
  const bool replies = options_.targets == LossTargets::kReplies;
  const StepWindows plan = step_windows(corpus_.size(), options_, step_, &replies_);
  std::fill(grads_.begin(), grads_.end(), 0.0f);
  const std::vector<int64_t>& starts = plan.starts;
  const std::vector<std::vector<uint8_t>>& masks = plan.masks;
  const std::vector<int64_t>&window_targets = plan.targets, &window_rows = plan.rows;
  const int64_t targets = plan.total_targets;
  // Gradient of the mean loss over every target of the batch.
  const float scale = 1.0f / static_cast<float>(std::max<int64_t>(targets, 1));
  double loss = 0.0;
  if (!options_.batch_parallel) {
    for (size_t b = 0; b < starts.size(); ++b)
      if (window_targets[b] > 0)
        loss += forward_backward(model_, corpus_.data() + starts[b], window_rows[b], grads_.data(), scale, pool_.get(),
                                 replies ? masks[b].data() : nullptr, options_.document_end);
  } else {
    // Window 0 writes straight into grads_ (0 + g = g exactly), the others
    // into their own buffers, added below in window order.
    const auto B = static_cast<int64_t>(starts.size());
    window_grads_.resize(static_cast<size_t>(B - 1));
    std::vector<double> losses(static_cast<size_t>(B), 0.0);
    auto run_windows = [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const auto i = static_cast<size_t>(b);
        std::vector<float>* own = b == 0 ? &grads_ : &window_grads_[i - 1];
        if (b > 0) own->assign(grads_.size(), 0.0f);  // grads_ was zeroed above
        if (window_targets[i] > 0)
          losses[i] = forward_backward(model_, corpus_.data() + starts[i], window_rows[i], own->data(), scale, nullptr,
                                       replies ? masks[i].data() : nullptr, options_.document_end);
      }
    };
    auto add_windows = [&](int64_t begin, int64_t end) {
      for (const std::vector<float>& g : window_grads_)
        for (int64_t i = begin; i < end; ++i) grads_[static_cast<size_t>(i)] += g[static_cast<size_t>(i)];
    };
    const auto n_params = static_cast<int64_t>(grads_.size());
    if (pool_) {
      pool_->parallel_for(B, run_windows);
      pool_->parallel_for(n_params, add_windows);
    } else {
      run_windows(0, B);
      add_windows(0, n_params);
    }
    for (double l : losses) loss += l;
  }
  StepStats s;
  s.step = step_;
  s.loss = loss / static_cast<double>(std::max<int64_t>(targets, 1));
  s.grad_norm = clip_grad_norm(grads_.data(), grads_.size(), options_.adam.grad_clip);
  s.lr = learning_rate(options_.adam, step_);
  adamw_update(options_.adam, step_, s.lr, model_.data(), grads_.data(), m_.data(), v_.data(), model_.tensors());
  ++step_;
  return s;
}

void Trainer::run(const std::function<void(const StepStats&)>& on_step) {
  while (step_ < options_.adam.total_steps) {
    StepStats s = step();
    if (on_step) on_step(s);
  }
}

namespace {

double mean_loss_with(const TrainModel& model, const train_ops::AdapterSites* sites, const std::vector<int32_t>& tokens,
                      int64_t seq_len, ThreadPool* pool, int32_t document_end) {
  if (tokens.size() < 2) throw Error("evaluate: need at least two tokens");
  double loss = 0.0;
  int64_t count = 0;
  for (int64_t start = 0; start + 1 < static_cast<int64_t>(tokens.size()); start += seq_len) {
    const int64_t n = std::min<int64_t>(seq_len, static_cast<int64_t>(tokens.size()) - 1 - start);
    loss += train_ops::adapted_sequence_loss(model, sites, tokens.data() + start, n, pool, nullptr, document_end);
    count += n;
  }
  return loss / static_cast<double>(count);
}

}  // namespace

double mean_loss(const TrainModel& model, const std::vector<int32_t>& tokens, int64_t seq_len, ThreadPool* pool,
                 int32_t document_end) {
  return mean_loss_with(model, nullptr, tokens, seq_len, pool, document_end);
}

double Trainer::evaluate(const std::vector<int32_t>& tokens) const {
  return heldout_loss(model_, tokens, options_, replies_.markers, pool_.get());
}

double train_ops::heldout_loss(const TrainModel& model, const std::vector<int32_t>& tokens,
                               const TrainOptions& options, const ReplyMarkers& markers, ThreadPool* pool,
                               const AdapterSites* sites) {
  if (options.targets != LossTargets::kReplies)
    return mean_loss_with(model, sites, tokens, options.seq_len, pool, options.document_end);
  if (markers.reply_open.empty()) throw Error("evaluate: loss on replies needs the reply markers");
  // Windows end after their last whole document, so the next one starts at
  // a document; a reply counts if its document starts inside the window.
  const std::vector<int32_t> docs = reply_token_documents(tokens, markers);
  const auto size = static_cast<int64_t>(tokens.size());
  std::vector<uint8_t> mask;
  double loss = 0.0;
  int64_t count = 0;
  for (int64_t start = 0; start + 1 < size;) {
    int64_t n = std::min(options.seq_len, size - 1 - start);
    for (int64_t k = n; k >= 1; --k)  // end the window after its last whole document
      if (tokens[static_cast<size_t>(start + k)] == markers.document_end) {
        n = k;
        break;
      }
    count += reply_mask(docs, start, n, mask);
    loss += adapted_sequence_loss(model, sites, tokens.data() + start, n, pool, mask.data(), options.document_end);
    start += n;
  }
  if (count == 0) throw Error("evaluate: the held-out text has no assistant replies");
  return loss / static_cast<double>(count);
}

}  // namespace onellm
