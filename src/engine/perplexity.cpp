#include "engine/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

// The base file: "ONELLMKL", then u32 version, n_vocab, n_ctx, n_chunks, the
// n_chunks * n_ctx tokens evaluated (int32, little-endian as written), then
// per chunk its scored rows' log-probabilities as fp16, n_vocab per row.
constexpr char kMagic[8] = {'O', 'N', 'E', 'L', 'L', 'M', 'K', 'L'};
constexpr uint32_t kVersion = 1;

struct BaseHeader {
  uint32_t version = kVersion, n_vocab = 0, n_ctx = 0, n_chunks = 0;
};

class BaseWriter {
 public:
  BaseWriter(const std::string& path, const BaseHeader& h, const int32_t* tokens) : path_(path) {
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(path + ": cannot create the base file");
    out_.write(kMagic, sizeof kMagic);
    out_.write(reinterpret_cast<const char*>(&h), sizeof h);
    out_.write(reinterpret_cast<const char*>(tokens),
               static_cast<std::streamsize>(sizeof(int32_t)) * h.n_chunks * h.n_ctx);
    check();
  }
  void row(const std::vector<uint16_t>& lp) {
    out_.write(reinterpret_cast<const char*>(lp.data()), static_cast<std::streamsize>(lp.size() * 2));
    check();
  }
  void close() {
    out_.close();
    if (out_.fail()) throw Error(path_ + ": writing the base file failed (disk full?)");
  }

 private:
  void check() {
    if (!out_) throw Error(path_ + ": writing the base file failed (disk full?)");
  }
  std::string path_;
  std::ofstream out_;
};

class BaseReader {
 public:
  explicit BaseReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw Error(path + ": cannot read the base file");
    char magic[8];
    in_.read(magic, sizeof magic);
    in_.read(reinterpret_cast<char*>(&h_), sizeof h_);
    if (!in_ || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
      throw Error(path + ": not a base file of `onellm perplexity --kl-divergence-base`");
    if (h_.version != kVersion)
      throw Error(path + ": base file version " + std::to_string(h_.version) + ", this onellm reads " +
                  std::to_string(kVersion));
    if (h_.n_ctx < 4 || h_.n_chunks == 0 || h_.n_vocab == 0 || h_.n_ctx > (1u << 24) || h_.n_chunks > (1u << 24))
      throw Error(path + ": the base file's header is damaged");
    // Its size follows from the header: check it before allocating by it.
    // Rows x vocabulary can pass 2^64 and wrap to the size of a small file.
    const uint64_t rows = uint64_t{h_.n_chunks} * (h_.n_ctx - h_.n_ctx / 2 - 1);
    uint64_t row_bytes = 0, want = 0;
    if (__builtin_mul_overflow(rows, uint64_t{h_.n_vocab} * 2, &row_bytes) ||
        __builtin_add_overflow(sizeof kMagic + sizeof h_ + 4ull * h_.n_chunks * h_.n_ctx, row_bytes, &want))
      throw Error(path + ": the base file's header is damaged (its sizes overflow)");
    in_.seekg(0, std::ios::end);
    const uint64_t size = static_cast<uint64_t>(in_.tellg());
    in_.seekg(sizeof kMagic + sizeof h_);
    if (size != want)
      throw Error(path + ": the base file is " + (size < want ? "truncated" : "longer than its header says") + " (" +
                  std::to_string(size) + " bytes, " + std::to_string(want) + " expected)");
    tokens_.resize(static_cast<size_t>(h_.n_chunks) * h_.n_ctx);
    in_.read(reinterpret_cast<char*>(tokens_.data()), static_cast<std::streamsize>(tokens_.size() * 4));
    if (!in_) throw Error(path + ": the base file is truncated (in its tokens)");
  }
  const BaseHeader& header() const { return h_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  void row(std::vector<uint16_t>& lp) {
    in_.read(reinterpret_cast<char*>(lp.data()), static_cast<std::streamsize>(lp.size() * 2));
    if (!in_) throw Error(path_ + ": the base file is truncated (in its log-probabilities)");
  }

 private:
  std::string path_;
  std::ifstream in_;
  BaseHeader h_;
  std::vector<int32_t> tokens_;
};

double percentile(std::vector<double>& sorted, double q) {
  const size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int64_t perplexity_base_context(const std::string& path) { return BaseReader(path).header().n_ctx; }

PerplexityStats perplexity(Sequence& seq, const std::vector<int32_t>& tokens, const PerplexityOptions& o,
                           const std::function<void(const PerplexityStats&)>& on_chunk) {
  std::unique_ptr<BaseReader> base;
  if (!o.compare_base.empty()) base = std::make_unique<BaseReader>(o.compare_base);
  const int64_t n_ctx = base ? base->header().n_ctx : o.n_ctx;
  if (base && o.n_ctx != n_ctx && o.n_ctx > 0)
    throw Error("perplexity: the base file was computed with chunks of " + std::to_string(n_ctx) + " tokens, not " +
                std::to_string(o.n_ctx));
  if (n_ctx < 4) throw Error("perplexity: the context must be at least 4 tokens, not " + std::to_string(n_ctx));
  if (n_ctx > seq.n_ctx())
    throw Error("perplexity: chunks of " + std::to_string(n_ctx) + " tokens do not fit the context of " +
                std::to_string(seq.n_ctx()) + " (the model's training context caps it)");
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2 * n_ctx)
    throw Error("perplexity: the text has " + std::to_string(n_tokens) + " tokens; chunks of " +
                std::to_string(n_ctx) + " need at least " + std::to_string(2 * n_ctx) + " (use a smaller -c)");
  int64_t n_chunks = n_tokens / n_ctx;
  if (o.max_chunks >= 0) n_chunks = std::min(n_chunks, o.max_chunks);

  const Tokenizer& tok = seq.tokenizer();
  const bool add_bos = tok.add_bos() && tok.bos_id() >= 0;
  const int64_t V = seq.model().config().n_vocab;
  if (base) {
    if (base->header().n_vocab != V)
      throw Error(o.compare_base + ": the base model has " + std::to_string(base->header().n_vocab) +
                  " tokens in its vocabulary, this one " + std::to_string(V));
    n_chunks = std::min<int64_t>(n_chunks, base->header().n_chunks);
    if (!std::equal(tokens.begin(), tokens.begin() + n_chunks * n_ctx, base->tokens().begin()))
      throw Error(o.compare_base + ": the base was computed on other tokens (another text or tokenizer)");
  }
  std::unique_ptr<BaseWriter> writer;
  if (!o.save_base.empty())
    writer = std::make_unique<BaseWriter>(o.save_base, BaseHeader{kVersion, static_cast<uint32_t>(V),
                                                                  static_cast<uint32_t>(n_ctx),
                                                                  static_cast<uint32_t>(n_chunks)},
                                          tokens.data());

  const int64_t first = n_ctx / 2;  // rows [first, n_ctx - 1) predict the token after them
  std::vector<float> logits(static_cast<size_t>(n_ctx * V));
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  std::vector<uint16_t> half_row(static_cast<size_t>(V));
  std::vector<double> klds;
  PerplexityStats s;
  double sum = 0, sum_sq = 0, base_sum = 0, same_top = 0, dp_sq = 0;
  int64_t hits = 0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, chunk.begin());
    if (add_bos) chunk[0] = tok.bos_id();
    seq.clear();
    seq.eval_logits(chunk.data(), n_ctx, logits.data());
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const float* row = logits.data() + j * V;
      const int32_t next = tokens[static_cast<size_t>(c * n_ctx + j + 1)];
      const float* top = std::max_element(row, row + V);
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(row[v]) - *top);
      const double log_z = std::log(z) + *top;  // log-probability of v: row[v] - log_z
      const double nll = log_z - row[next];
      sum += nll;
      sum_sq += nll * nll;
      hits += row[next] == *top;
      ++s.scored;
      if (writer) {
        for (int64_t v = 0; v < V; ++v)
          half_row[static_cast<size_t>(v)] = f32_to_fp16(static_cast<float>(std::max(row[v] - log_z, -60000.0)));
        writer->row(half_row);
      }
      if (base) {
        base->row(half_row);
        // The stored fp16 values sum to 1 only up to their rounding; summed
        // again, the KL divergence keeps only second-order rounding error.
        int64_t base_top = 0;
        float base_best = -std::numeric_limits<float>::infinity();
        double base_z = 0;
        for (int64_t v = 0; v < V; ++v) {
          const float lb = fp16_to_f32(half_row[static_cast<size_t>(v)]);
          base_z += std::exp(static_cast<double>(lb));
          if (lb > base_best) base_best = lb, base_top = v;
        }
        const double base_log_z = std::log(base_z);
        double kld = 0;
        for (int64_t v = 0; v < V; ++v) {
          const double lb = fp16_to_f32(half_row[static_cast<size_t>(v)]) - base_log_z;
          kld += std::exp(lb) * (lb - (row[v] - log_z));
        }
        klds.push_back(std::max(kld, 0.0));  // rounding can take a tiny one below 0
        const double lb_next = fp16_to_f32(half_row[static_cast<size_t>(next)]) - base_log_z;
        base_sum -= lb_next;
        same_top += base_top == top - row;
        const double dp = std::exp(row[next] - log_z) - std::exp(lb_next);
        dp_sq += dp * dp;
      }
    }
    s.chunks = c + 1;
    s.nll = sum / static_cast<double>(s.scored);
    s.ppl = std::exp(s.nll);
    const double var = sum_sq / static_cast<double>(s.scored) - s.nll * s.nll;
    s.ppl_error = var > 0 && s.scored > 1 ? std::sqrt(var / static_cast<double>(s.scored - 1)) * s.ppl : 0;
    s.top1 = static_cast<double>(hits) / static_cast<double>(s.scored);
    if (on_chunk) on_chunk(s);
  }
  if (writer) writer->close();
  if (base && !klds.empty()) {
    const double n = static_cast<double>(klds.size());
    KlStats& k = s.kl;
    double kl_sum = 0, kl_sq = 0;
    for (double x : klds) kl_sum += x, kl_sq += x * x;
    k.mean = kl_sum / n;
    k.error = klds.size() > 1 ? std::sqrt(std::max(0.0, kl_sq / n - k.mean * k.mean) / (n - 1)) : 0;
    std::sort(klds.begin(), klds.end());
    k.max = klds.back();
    k.p99 = percentile(klds, 0.99);
    k.p90 = percentile(klds, 0.90);
    k.median = percentile(klds, 0.5);
    k.same_top = same_top / n;
    k.base_ppl = std::exp(base_sum / n);
    k.rms_dp = std::sqrt(dp_sq / n);
    s.compared = true;
  }
  seq.clear();
  return s;
}

}  // namespace onellm
