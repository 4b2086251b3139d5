// train and finetune --lora: the training layer (src/train) on the command
// line. Progress goes to stderr, one line per logged step.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "cli/commands.h"
#include "engine/call_gate.h"
#include "engine/copy_bias.h"
#include "engine/tool_calls.h"
#include "train/train.h"

namespace onellm::cli {
namespace {

// Options every training command accepts, with a value.
const std::set<std::string> kTrainValueOptions = {
    "--corpus", "--eval", "--eval-every", "--seq-len", "--batch", "--steps", "--warmup", "--lr", "--min-lr",
    "--weight-decay", "--grad-clip", "--seed", "--data-seed", "-t", "--threads", "--log-every", "--out", "-o",
    "--out-type", "--loss", "--resume", "--checkpoint", "--checkpoint-every", "--stop-at"};

// The corpus is UTF-8 text tokenized with special tokens parsed, so that
// "<|endoftext|>" (the EOS of our tokenizers) separates documents and chat
// markers become their control tokens. A final EOS closes the last document.
std::vector<int32_t> corpus_tokens(const std::string& path, const Tokenizer& tok) {
  std::string text = read_text_file(path);
  if (text.empty()) throw Error(path + ": the corpus is empty");
  std::vector<int32_t> ids = tok.encode(text, false, true);
  if (tok.eos_id() >= 0 && (ids.empty() || ids.back() != tok.eos_id())) ids.push_back(tok.eos_id());
  return ids;
}

TrainOptions train_options_from_args(const Args& a, int64_t default_steps) {
  TrainOptions o;
  o.seq_len = a.get_int({"--seq-len"}, 128);
  o.batch_size = a.get_int({"--batch"}, 8);
  o.adam.total_steps = a.get_int({"--steps"}, default_steps);
  o.adam.warmup_steps = a.get_int({"--warmup"}, std::min<int64_t>(100, o.adam.total_steps / 10));
  o.adam.lr = static_cast<float>(a.get_double({"--lr"}, 1e-3));
  o.adam.min_lr = static_cast<float>(a.get_double({"--min-lr"}, o.adam.lr / 10));
  o.adam.weight_decay = static_cast<float>(a.get_double({"--weight-decay"}, 0.1));
  o.adam.grad_clip = static_cast<float>(a.get_double({"--grad-clip"}, 1.0));
  o.data_seed = static_cast<uint64_t>(a.get_int({"--data-seed"}, a.get_int({"--seed"}, 1)));
  o.n_threads = static_cast<int>(a.get_int({"-t", "--threads"}, default_threads()));
  if (o.adam.total_steps <= 0) throw Error("--steps must be positive");
  if (o.seq_len <= 0 || o.batch_size <= 0) throw Error("--seq-len and --batch must be positive");
  if (o.adam.warmup_steps < 0) throw Error("--warmup must not be negative");
  if (o.n_threads <= 0) o.n_threads = default_threads();
  const std::string loss = a.get_or({"--loss"}, "all");
  if (loss == "replies") o.targets = LossTargets::kReplies;
  else if (loss != "all") throw Error("--loss must be 'all' or 'replies', not '" + loss + "'");
  return o;
}

// Logs steps to stderr and evaluates held-out text now and then.
class ProgressLog {
 public:
  ProgressLog(const Args& a, const TrainOptions& o)
      : log_every_(a.get_int({"--log-every"}, o.adam.total_steps <= 200 ? 1 : 10)),
        eval_every_(a.get_int({"--eval-every"}, 0)),
        tokens_per_step_(o.seq_len * o.batch_size),
        total_(o.adam.total_steps),
        last_(std::chrono::steady_clock::now()) {}

  // Returns true when held-out loss should be computed after this step.
  bool on_step(const StepStats& s) {
    ++steps_since_;
    const bool last = s.step + 1 == total_;
    if (log_every_ > 0 && ((s.step + 1) % log_every_ == 0 || last)) {
      auto now = std::chrono::steady_clock::now();
      double secs = std::chrono::duration<double>(now - last_).count();
      double tps = secs > 0 ? static_cast<double>(steps_since_ * tokens_per_step_) / secs : 0;
      std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.3g grad-norm %.3f tokens/s %.0f\n",
                   static_cast<long long>(s.step + 1), static_cast<long long>(total_), s.loss, s.lr, s.grad_norm, tps);
      last_ = now;
      steps_since_ = 0;
    }
    return eval_every_ > 0 && ((s.step + 1) % eval_every_ == 0 || last);
  }
  void eval(int64_t step, double loss) {
    std::fprintf(stderr, "eval step %lld loss %.4f perplexity %.2f\n", static_cast<long long>(step + 1), loss,
                 std::exp(loss));
    last_ = std::chrono::steady_clock::now();  // evaluation time is not training speed
  }

 private:
  int64_t log_every_, eval_every_, tokens_per_step_, total_;
  int64_t steps_since_ = 0;
  std::chrono::steady_clock::time_point last_;
};

// Steps a Trainer or LoraTrainer until --stop-at N (default: its last step;
// a later --resume goes on, so a long run can be cut into sessions), logging,
// evaluating held-out text and writing --checkpoint every --checkpoint-every
// steps and at the end.
template <class T>
void run_training(T& trainer, const Args& a, const std::vector<int32_t>& eval_tokens,
                  const std::optional<std::string>& checkpoint) {
  ProgressLog log(a, trainer.options());
  const int64_t checkpoint_every = a.get_int({"--checkpoint-every"}, 0);
  const int64_t total = trainer.options().adam.total_steps;
  const int64_t stop_at = std::min<int64_t>(a.get_int({"--stop-at"}, total), total);
  const int64_t first_step = trainer.next_step();
  while (trainer.next_step() < stop_at) {
    const StepStats s = trainer.step();
    if (log.on_step(s) && !eval_tokens.empty()) log.eval(s.step, trainer.evaluate(eval_tokens));
    if (checkpoint && checkpoint_every > 0 && (s.step + 1) % checkpoint_every == 0)
      trainer.save_checkpoint(*checkpoint);
  }
  // Resuming a finished run with --eval just evaluates it.
  if (trainer.next_step() == first_step && !eval_tokens.empty())
    log.eval(first_step - 1, trainer.evaluate(eval_tokens));
  if (checkpoint) {
    trainer.save_checkpoint(*checkpoint);
    std::fprintf(stderr, "wrote checkpoint %s\n", checkpoint->c_str());
  }
}

// A resumed run takes its options from the checkpoint; says so for those
// given anyway (beyond the common training ones, `more`).
void note_ignored_with_resume(const Args& a, std::initializer_list<const char*> more) {
  auto note = [&](const char* o) {
    if (a.has(o)) std::fprintf(stderr, "note: %s is ignored with --resume (the checkpoint's value holds)\n", o);
  };
  for (const char* o : {"--seq-len", "--batch", "--steps", "--lr", "--min-lr", "--warmup", "--weight-decay",
                        "--grad-clip", "--loss", "--attention", "--data-seed"})
    note(o);
  for (const char* o : more) note(o);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// A fresh model's shape from --arch, --n-embd ... options; vocabulary from the
// tokenizer. qwen2 has q/k/v biases, qwen3 per-head q/k norms (and may widen
// its heads with --head-dim).
ModelConfig shape_from_args(const Args& a, int64_t n_vocab, int64_t seq_len) {
  ModelConfig c;
  c.arch = a.get_or({"--arch"}, "llama");
  if (!is_trainable_arch(c.arch))
    throw Error("model shape: --arch must be llama, qwen2 or qwen3, not '" + c.arch + "'");
  c.qkv_bias = c.arch == "qwen2";
  c.qk_norm = c.arch == "qwen3";
  c.name = a.get_or({"--name"}, "onellm-trained");
  c.n_vocab = n_vocab;
  c.n_embd = a.get_int({"--n-embd"}, 256);
  c.n_layer = a.get_int({"--n-layer"}, 4);
  c.n_head = a.get_int({"--n-head"}, 8);
  c.n_head_kv = a.get_int({"--n-head-kv"}, c.n_head);
  c.head_dim = a.get_int({"--head-dim"}, 0);  // 0: n_embd / n_head
  // SwiGLU's usual 8/3 d, rounded up to a multiple of 64.
  c.n_ff = a.get_int({"--n-ff"}, (c.n_embd * 8 / 3 + 63) / 64 * 64);
  c.n_ctx_train = a.get_int({"--n-ctx"}, std::max<int64_t>(seq_len, 512));
  c.rope_base = static_cast<float>(a.get_double({"--rope-base"}, 10000.0));
  c.rms_eps = 1e-5f;
  c.tied_output = !a.flag({"--untied"});
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.n_ff <= 0 || c.head_dim < 0)
    throw Error("model shape: --n-embd, --n-layer, --n-head, --n-head-kv, --n-ff and --head-dim must be positive");
  if ((c.head_dim == 0 && c.n_embd % c.n_head != 0) || c.n_head % c.n_head_kv != 0)
    throw Error("model shape: --n-embd must be a multiple of --n-head (or give --head-dim), and --n-head of "
                "--n-head-kv");
  return c;
}

// Documents (split at the end-of-text token) attend only within themselves
// unless --attention window: each then trains as the separate prompt it is at
// inference, and no reply learns to copy from the example before it. Returns
// TrainOptions::document_end.
int32_t document_end_from_args(const Args& a, const Tokenizer& tok) {
  const std::string attention = a.get_or({"--attention"}, tok.eos_id() >= 0 ? "documents" : "window");
  if (attention == "documents") {
    if (tok.eos_id() < 0) throw Error("--attention documents needs a tokenizer with an end-of-text token");
    return tok.eos_id();
  }
  if (attention != "window") throw Error("--attention must be 'documents' or 'window', not '" + attention + "'");
  return -1;
}

// ChatML replies, as onellm's chat template (and Qwen's) writes them: what
// --loss replies trains on.
ReplyMarkers chatml_reply_markers(const Tokenizer& tok) {
  ReplyMarkers markers;
  markers.document_end = tok.eos_id();
  markers.reply_open = tok.encode("<|im_start|>assistant\n", false, true);
  const std::vector<int32_t> close = tok.encode("<|im_end|>", false, true);
  if (close.size() != 1 || markers.document_end < 0)
    throw Error("--loss replies needs a tokenizer with <|im_end|> and an end-of-text token");
  markers.reply_close = close[0];
  return markers;
}

void write_model(const TrainModel& model, const GgufMetadata& tokenizer, const std::string& path,
                 const std::string& type_name, const GgufMetadata& extra = {}) {
  export_gguf(model, tokenizer, path, tensor_type_from_name(type_name), extra);
  std::fprintf(stderr, "wrote %s (%s)\n", path.c_str(), type_name.c_str());
}

// --builtin-tools FILE: the OpenAI tools array the model learns to call
// without being shown it (engine/tool_calls.h), checked and stored compact.
GgufValue builtin_tools_value(const std::string& path) {
  const std::string text = read_text_file(path);
  parse_builtin_tools(text, "--builtin-tools " + path);
  return GgufValue::of_string(nlohmann::ordered_json::parse(text).dump());  // stored compact
}

// --copy-arguments FILE: a JSON array of the "tool.argument" names whose
// values the model copies verbatim (engine/copy_bias.h; make-corpus writes
// copy_arguments.json).
GgufValue copy_arguments_value(const std::string& path) {
  const std::string what = "--copy-arguments " + path;
  std::vector<std::string> names;
  try {
    const nlohmann::json list = nlohmann::json::parse(read_text_file(path));
    if (!list.is_array()) throw Error("not a JSON array");
    for (const auto& n : list) {
      if (!n.is_string()) throw Error("not an array of strings");
      names.push_back(n.get<std::string>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": not JSON: " + e.what());
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  return GgufValue::of_strings(checked_copy_arguments(std::move(names), what));
}

}  // namespace

int train_command(int argc, char** argv) {
  std::set<std::string> values = kTrainValueOptions;
  for (const char* o : {"--tokenizer", "--init", "--attention", "--arch", "--head-dim", "--n-embd", "--n-layer",
                        "--n-head", "--n-head-kv", "--n-ff", "--n-ctx", "--rope-base", "--name", "--copy-bias",
                        "--min-call-prob", "--builtin-tools", "--copy-arguments"})
    values.insert(o);
  Args a(argc, argv, 2, values, {"--untied", "--batch-parallel"});
  auto corpus_path = a.get({"--corpus"});
  if (!corpus_path) throw Error("no corpus given (--corpus TEXT)");
  auto out = a.get({"--out", "-o"});
  auto checkpoint = a.get({"--checkpoint"});
  if (!out && !checkpoint) throw Error("nothing would be saved: give --out GGUF and/or --checkpoint FILE");

  // The tokenizer: the checkpoint's, the initial model's, or --tokenizer's.
  std::string tok_path = a.get_or({"--resume"}, a.get_or({"--init"}, a.get_or({"--tokenizer"}, "")));
  if (tok_path.empty()) throw Error("no tokenizer: give --tokenizer GGUF, --init GGUF or --resume CHECKPOINT");
  auto tok_file = GgufFile::open(tok_path);
  auto tok = Tokenizer::from_gguf(*tok_file);
  std::vector<int32_t> corpus = corpus_tokens(*corpus_path, *tok);
  std::vector<int32_t> eval_tokens;
  if (auto e = a.get({"--eval"})) eval_tokens = corpus_tokens(*e, *tok);
  // The decoding settings the model is meant to be used with, stored beside it.
  GgufMetadata decoding;
  if (a.get({"--copy-bias"}))
    decoding.emplace_back(kCopyBiasKey,
                          GgufValue::of_f32(checked_copy_bias(a.get_double({"--copy-bias"}, 0.0), "--copy-bias")));
  if (a.get({"--min-call-prob"}))
    decoding.emplace_back(kMinCallProbabilityKey, GgufValue::of_f32(checked_min_call_probability(
                                                      a.get_double({"--min-call-prob"}, 0.0), "--min-call-prob")));
  if (auto tools = a.get({"--builtin-tools"})) decoding.emplace_back(kBuiltinToolsKey, builtin_tools_value(*tools));
  if (auto names = a.get({"--copy-arguments"})) decoding.emplace_back(kCopyArgumentsKey, copy_arguments_value(*names));
  std::fprintf(stderr, "corpus: %zu tokens%s\n", corpus.size(),
               eval_tokens.empty() ? "" : (", held-out: " + std::to_string(eval_tokens.size()) + " tokens").c_str());

  TrainOptions options = train_options_from_args(a, 1000);
  options.batch_parallel = a.flag({"--batch-parallel"});  // a resumed run keeps its checkpoint's mode
  options.document_end = document_end_from_args(a, *tok);
  std::unique_ptr<Trainer> trainer;
  if (auto resume = a.get({"--resume"})) {
    note_ignored_with_resume(a, {"--init", "--tokenizer", "--arch", "--n-embd", "--n-layer", "--n-head", "--n-head-kv",
                                 "--n-ff", "--head-dim"});
    trainer = std::make_unique<Trainer>(Trainer::resume(*resume, std::move(corpus), options.n_threads));
    std::fprintf(stderr, "resumed %s at step %lld of %lld\n", resume->c_str(),
                 static_cast<long long>(trainer->next_step()),
                 static_cast<long long>(trainer->options().adam.total_steps));
  } else {
    TrainModel model = a.has("--init") ? TrainModel::from_gguf(*tok_file)
                                       : TrainModel::init(shape_from_args(a, tok->n_vocab(), options.seq_len),
                                                          static_cast<uint64_t>(a.get_int({"--seed"}, 1)));
    const ModelConfig& c = model.config();
    std::fprintf(stderr, "model: %lld parameters (d %lld, %lld layers, %lld heads / %lld kv, ff %lld, vocab %lld)\n",
                 static_cast<long long>(model.size()), static_cast<long long>(c.n_embd),
                 static_cast<long long>(c.n_layer), static_cast<long long>(c.n_head),
                 static_cast<long long>(c.n_head_kv), static_cast<long long>(c.n_ff),
                 static_cast<long long>(c.n_vocab));
    trainer = std::make_unique<Trainer>(std::move(model), std::move(corpus), options,
                                        tokenizer_metadata_from_gguf(*tok_file));
  }

  if (trainer->options().targets == LossTargets::kReplies) {
    const int64_t n = trainer->set_reply_markers(chatml_reply_markers(*tok));
    std::fprintf(stderr, "loss on assistant replies: %lld target tokens\n", static_cast<long long>(n));
  }

  run_training(*trainer, a, eval_tokens, checkpoint);
  if (out) write_model(trainer->model(), trainer->tokenizer(), *out, a.get_or({"--out-type"}, "F32"), decoding);
  return 0;
}

int finetune_command(int argc, char** argv) {
  std::set<std::string> values = kTrainValueOptions;
  for (const char* o : {"--base", "-m", "--model", "--rank", "--alpha", "--targets", "--merged-out", "--attention"})
    values.insert(o);
  Args a(argc, argv, 2, values, {"--lora"});
  if (!a.flag({"--lora"})) throw Error("only LoRA fine-tuning is implemented: pass --lora");
  // The base: --base, else the model `run` would use (-m, $ONELLM_MODEL, the bundled one).
  const std::optional<std::string> base_path = a.get({"--base"}) ? a.get({"--base"}) : model_path_or_default(a);
  auto corpus_path = a.get({"--corpus"});
  if (!corpus_path) throw Error("no corpus given (--corpus TEXT)");
  auto out = a.get({"--out", "-o"});
  auto checkpoint = a.get({"--checkpoint"});
  if (!out && !checkpoint) throw Error("nothing would be saved: give --out ADAPTER.gguf and/or --checkpoint FILE");

  std::shared_ptr<GgufFile> base_file = GgufFile::open(*base_path);
  auto tok = Tokenizer::from_gguf(*base_file);
  std::vector<int32_t> corpus = corpus_tokens(*corpus_path, *tok);
  std::vector<int32_t> eval_tokens;
  if (auto e = a.get({"--eval"})) eval_tokens = corpus_tokens(*e, *tok);
  std::fprintf(stderr, "corpus: %zu tokens\n", corpus.size());

  // The base's matrices stay in the file, in its type: memory is about the
  // file's size, and the forward is the one `run --lora` computes.
  TrainModel base = TrainModel::map_gguf(base_file);
  const std::string recipe = base_file->file_type_name();
  std::fprintf(stderr, "base: %s (%s%s%s), %.0f MB mapped\n", base_path->c_str(), base.config().arch.c_str(),
               recipe.empty() ? "" : ", ", recipe.c_str(), static_cast<double>(base_file->file_size()) / 1e6);
  TrainOptions options = train_options_from_args(a, 200);
  std::unique_ptr<LoraTrainer> trainer;
  if (auto resume = a.get({"--resume"})) {  // rank, targets and options are the checkpoint's
    note_ignored_with_resume(a, {"--rank", "--alpha", "--targets"});
    trainer = std::make_unique<LoraTrainer>(
        LoraTrainer::resume(*resume, std::move(base), std::move(corpus), options.n_threads));
    std::fprintf(stderr, "resumed %s at step %lld of %lld\n", resume->c_str(),
                 static_cast<long long>(trainer->next_step()),
                 static_cast<long long>(trainer->options().adam.total_steps));
  } else {
    LoraOptions lo;
    lo.rank = a.get_int({"--rank"}, lo.rank);
    lo.alpha = static_cast<float>(a.get_double({"--alpha"}, 2.0 * static_cast<double>(lo.rank)));
    if (auto t = a.get({"--targets"})) lo.targets = split_commas(*t);
    if (lo.rank <= 0) throw Error("--rank must be positive");
    if (lo.targets.empty()) throw Error("--targets names no matrix kind");
    LoraAdapter adapter = LoraAdapter::init(base, lo, static_cast<uint64_t>(a.get_int({"--seed"}, 1)));
    std::fprintf(stderr, "adapter: rank %lld, alpha %g, %zu parameters on %zu tensors\n",
                 static_cast<long long>(lo.rank), lo.alpha, adapter.params().size(), adapter.tensors().size());
    options.document_end = document_end_from_args(a, *tok);
    trainer = std::make_unique<LoraTrainer>(std::move(base), std::move(adapter), std::move(corpus), options);
  }
  if (trainer->options().targets == LossTargets::kReplies) {
    const int64_t n = trainer->set_reply_markers(chatml_reply_markers(*tok));
    std::fprintf(stderr, "loss on assistant replies: %lld target tokens\n", static_cast<long long>(n));
  }
  if (!eval_tokens.empty() && trainer->next_step() == 0)
    ProgressLog(a, trainer->options()).eval(-1, trainer->evaluate(eval_tokens));
  run_training(*trainer, a, eval_tokens, checkpoint);
  if (out) {
    trainer->adapter().save(*out);
    std::fprintf(stderr, "wrote adapter %s\n", out->c_str());
  }
  if (auto merged = a.get({"--merged-out"})) {  // matrices in the base's types unless --out-type
    std::optional<TensorType> type;
    if (auto t = a.get({"--out-type"})) type = tensor_type_from_name(*t);
    ThreadPool pool(trainer->options().n_threads);
    export_merged_gguf(trainer->base(), trainer->adapter(), tokenizer_metadata_from_gguf(*base_file), *merged, type,
                       &pool);
    std::fprintf(stderr, "wrote %s (%s)\n", merged->c_str(), a.get_or({"--out-type"}, "the base's types").c_str());
  }
  return 0;
}

int train_tokenizer_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--corpus", "--vocab-size", "-o", "--out", "--pre", "--min-count"}, {"--space-apart"});
  auto corpus_path = a.get({"--corpus"});
  if (!corpus_path) throw Error("no corpus given (--corpus TEXT)");
  auto out = a.get({"-o", "--out"});
  if (!out) throw Error("no output file given (-o tokenizer.gguf)");
  BpeTrainOptions o;
  o.vocab_size = static_cast<int32_t>(a.get_int({"--vocab-size"}, o.vocab_size));
  o.pre = a.get_or({"--pre"}, o.pre);
  o.min_pair_count = a.get_int({"--min-count"}, o.min_pair_count);
  o.space_apart = a.flag({"--space-apart"});
  const std::string text = read_text_file(*corpus_path);
  BpeVocabulary v = train_bpe(text, o);
  write_tokenizer_gguf(bpe_tokenizer_metadata(v, onellm_chat_template()), *out);

  // Check what the runtime makes of the file: it must give back the text.
  auto file = GgufFile::open(*out);
  auto tok = Tokenizer::from_gguf(*file);
  const std::string sample = text.substr(0, utf8_complete_prefix(std::string_view(text).substr(0, 200000)));
  std::vector<int32_t> ids = tok->encode(sample, false, true);
  if (tok->decode(ids, false, true) != sample) throw Error(*out + ": the trained tokenizer does not round-trip its corpus");
  std::fprintf(stderr, "wrote %s: %zu tokens (%zu merges), %.2f bytes per token on the corpus sample\n", out->c_str(),
               v.tokens.size(), v.merges.size(), ids.empty() ? 0.0 : static_cast<double>(sample.size()) / ids.size());
  return 0;
}

}  // namespace onellm::cli
