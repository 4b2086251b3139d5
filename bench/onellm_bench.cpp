// Kernel-layer benchmarks, measured the way llama-bench measures:
//   onellm_bench model -m FILE [-p 512] [-n 64] [-t 2] [-r 3] [--exact]
//     pp: one forward pass of p tokens on an empty cache (logits of the last
//     token only); tg: n single-token passes from an empty cache. One warm-up
//     run each, then r timed runs; prints tokens/s mean +- stddev, peak RSS.
//   onellm_bench matmul -type Q4_0 -rows R -cols C [-tokens 1,512] [-t 2] [-stream-mib M]
//     one matmul at every CPU level, GFLOP/s and GB/s of weights; best of
//     20 calls on one matrix, so a matrix that fits the caches reports cache
//     rates. -stream-mib M: each timed pass runs one call on each of enough
//     distinct copies to make M MiB, so every call reads from memory (decode),
//     and a plain read loop over the same packed bytes with the same jobs
//     (one per copy) prints the rate the kernel is measured against; then
//     20 back-to-back pairs (kernel pass, read-loop pass) give the median
//     ratio of the two, which a change in memory phase moves much less.
//   onellm_bench accumulate -m M -n N -k K [-transposed] [-t 2]
//     training's C += A B (matmul_accumulate) at every CPU level, GFLOP/s,
//     best of 10; -transposed reads A as a transpose (the weight gradient).
//   onellm_bench pool [-t 2]: cost of an empty parallel_for.
//   onellm_bench copy-bias -m FILE [-source-bytes 100]
//     cost per token of copy-aware decoding (engine/copy_bias.h) on the
//     model's vocabulary: a value's first token (every word of the request
//     looked up), a token in mid-copy, and one in a value that is no copy.
// ONELLM_CPU=scalar|avx2|avx512 forces the level.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/copy_bias.h"
#include "engine/grammar.h"
#include "tokenizer/tokenizer.h"
#include "model/model.h"

using namespace onellm;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Stats {
  double mean = 0, stddev = 0;
};
Stats stats_of(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}
bool flag(int argc, char** argv, const char* name) {
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

long peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

int bench_model(int argc, char** argv) {
  const std::string path = arg(argc, argv, "-m", "");
  const int n_prompt = std::atoi(arg(argc, argv, "-p", "512"));
  const int n_gen = std::atoi(arg(argc, argv, "-n", "64"));
  const int n_threads = std::atoi(arg(argc, argv, "-t", "2"));
  const int reps = std::atoi(arg(argc, argv, "-r", "3"));
  const MathMode mode = flag(argc, argv, "--exact") ? MathMode::kExact : MathMode::kFast;
  auto model = Model::load(path);
  ThreadPool pool(n_threads);
  const int64_t V = model->config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(V));
  std::mt19937 rng(1);
  std::vector<int32_t> tokens(static_cast<size_t>(std::max(n_prompt, 1)));
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
  KvCache cache(model->config(), std::max(n_prompt, n_gen) + 1);

  std::printf("model %s, %s, level %s, %d threads\n", path.c_str(), mode == MathMode::kExact ? "exact" : "fast",
              cpu_level_name(cpu_level()), n_threads);
  if (n_prompt > 0) {
    std::vector<double> rates;
    for (int r = -1; r < reps; ++r) {
      cache.clear();
      const double t0 = now_seconds();
      model->forward(tokens.data(), n_prompt, cache, logits.data(), false, &pool, mode);
      const double dt = now_seconds() - t0;
      if (r >= 0) rates.push_back(n_prompt / dt);
    }
    const Stats s = stats_of(rates);
    std::printf("pp%-5d %10.2f +- %.2f t/s\n", n_prompt, s.mean, s.stddev);
  }
  if (n_gen > 0) {
    std::vector<double> rates;
    for (int r = -1; r < reps; ++r) {
      cache.clear();
      int32_t token = tokens[0];
      const double t0 = now_seconds();
      for (int i = 0; i < n_gen; ++i) {
        model->forward(&token, 1, cache, logits.data(), false, &pool, mode);
        token = static_cast<int32_t>((token + 7) % V);
      }
      const double dt = now_seconds() - t0;
      if (r >= 0) rates.push_back(n_gen / dt);
    }
    const Stats s = stats_of(rates);
    std::printf("tg%-5d %10.2f +- %.2f t/s\n", n_gen, s.mean, s.stddev);
  }
  std::printf("peak RSS %ld MiB (weights %.1f MiB)\n", peak_rss_mib(), model->weight_bytes() / 1048576.0);
  return 0;
}

int bench_matmul(int argc, char** argv) {
  const TensorType type = tensor_type_from_name(arg(argc, argv, "-type", "Q4_0"));
  const int64_t rows = std::atoll(arg(argc, argv, "-rows", "4864"));
  const int64_t cols = std::atoll(arg(argc, argv, "-cols", "896"));
  const int n_threads = std::atoi(arg(argc, argv, "-t", "2"));
  const int64_t n_tok = std::atoll(arg(argc, argv, "-tokens", "1"));
  const size_t stream_bytes = static_cast<size_t>(std::atoll(arg(argc, argv, "-stream-mib", "0"))) << 20;
  std::vector<float> wf(static_cast<size_t>(rows * cols));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 1);
  for (float& v : wf) v = normal(rng);
  const size_t row_bytes = tensor_row_bytes(type, cols);
  std::vector<uint8_t> wq(row_bytes * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) quantize_row(type, wf.data() + r * cols, wq.data() + r * row_bytes, cols);
  std::vector<float> x(static_cast<size_t>(n_tok * cols)), y(static_cast<size_t>(n_tok * rows));
  for (float& v : x) v = normal(rng);
  // n_copies distinct copies of the weights (one unless -stream-mib), in the
  // file layout and, where the type has one, the packed layout.
  const size_t packed_bytes = packed_matrix_bytes(type, rows, cols);
  const size_t n_copies = stream_bytes == 0 ? 1 : stream_bytes / wq.size() + 1;
  std::vector<uint8_t> copies(wq.size() * n_copies);
  AnonymousMemory packed(packed_bytes * n_copies);
  std::vector<MatrixView> ws, ws_packed;
  for (size_t i = 0; i < n_copies; ++i) {
    std::memcpy(copies.data() + i * wq.size(), wq.data(), wq.size());
    ws.push_back(MatrixView{type, copies.data() + i * wq.size(), rows, cols});
    ws_packed.push_back(ws.back());
    if (packed_bytes > 0) {
      pack_matrix(ws.back(), packed.data() + i * packed_bytes);
      ws_packed.back().packed = packed.data() + i * packed_bytes;
    }
  }
  ThreadPool pool(n_threads);
  for (CpuLevel level : kCpuLevels)
    for (bool use_packed : {false, true}) {
      if (!cpu_level_supported(level) || (use_packed && packed_bytes == 0)) continue;
      if (level == CpuLevel::kScalar && (n_tok > 16 || use_packed)) continue;
      double best = 1e30;
      for (int r = 0; r < 20; ++r) {
        const double t0 = now_seconds();
        for (const MatrixView& w : use_packed ? ws_packed : ws) matmul_fast_at(level, w, x.data(), n_tok, y.data(), &pool);
        best = std::min(best, (now_seconds() - t0) / static_cast<double>(n_copies));
      }
      std::printf("%-5s %6lld x %-6lld tokens %-4lld %-7s %-6s %8.1f us  %7.1f GFLOP/s  %6.1f GB/s weights\n",
                  tensor_type_name(uint32_t(type)).c_str(), (long long)rows, (long long)cols, (long long)n_tok,
                  cpu_level_name(level), use_packed ? "packed" : "gguf", best * 1e6,
                  2.0 * rows * cols * n_tok / best * 1e-9, wq.size() / best * 1e-9);
    }
  if (stream_bytes > 0 && packed_bytes > 0) {
    // The memory's rate for this access pattern: each copy's packed bytes
    // summed by one parallel_for over its 16-row panels (the kernel's jobs
    // and split), then all copies in one job (no job boundaries).
    const size_t panel_bytes = packed_panel_bytes(type, cols);
    const int64_t n_panels = static_cast<int64_t>(packed_bytes / panel_bytes);
    std::atomic<uint64_t> sum{0};
    auto sum_panels = [&](const uint8_t* base, int64_t p0, int64_t p1) {
      const auto* w = reinterpret_cast<const uint64_t*>(base + static_cast<size_t>(p0) * panel_bytes);
      const size_t n_words = static_cast<size_t>(p1 - p0) * panel_bytes / 8;
      sum.fetch_add(sum_words_at(cpu_level(), w, static_cast<int64_t>(n_words)), std::memory_order_relaxed);
    };
    auto read_all = [&](bool one_job) {
      if (one_job)
        pool.parallel_for(n_panels * static_cast<int64_t>(n_copies), [&](int64_t b, int64_t e) {
          for (int64_t u = b; u < e;) {  // runs of panels within one copy
            const int64_t c = u / n_panels, stop = std::min(e, (c + 1) * n_panels);
            sum_panels(packed.data() + c * packed_bytes, u - c * n_panels, stop - c * n_panels);
            u = stop;
          }
        });
      else
        for (size_t c = 0; c < n_copies; ++c)
          pool.parallel_for(n_panels, [&](int64_t b, int64_t e) { sum_panels(packed.data() + c * packed_bytes, b, e); });
    };
    for (bool one_job : {false, true}) {
      double best = 1e30;
      for (int r = 0; r < 20; ++r) {
        const double t0 = now_seconds();
        read_all(one_job);
        best = std::min(best, (now_seconds() - t0) / static_cast<double>(n_copies));
      }
      std::printf("read loop over the packed copies, %-15s %8.1f us  %6.1f GB/s\n",
                  one_job ? "all in one job:" : "a job per copy:", best * 1e6, wq.size() / best * 1e-9);
    }
    // This machine's memory rate moves by 2x within minutes, so best-of-20
    // rates taken a few seconds apart can compare different phases. Each
    // pair here times the kernel (at cpu_level(): ONELLM_CPU applies) and
    // the read loop (one job) back to back; their ratio is what a change
    // should move.
    const CpuLevel level = cpu_level();
    std::vector<double> ratios;
    for (int r = 0; r < 20; ++r) {
      double t0 = now_seconds();
      for (const MatrixView& w : ws_packed) matmul_fast_at(level, w, x.data(), n_tok, y.data(), &pool);
      const double kernel = now_seconds() - t0;
      t0 = now_seconds();
      read_all(true);
      ratios.push_back((now_seconds() - t0) / kernel);
    }
    std::sort(ratios.begin(), ratios.end());
    std::printf("kernel (%s) against the read loop, 20 back-to-back pairs: median %.0f %%, quartiles %.0f-%.0f %%\n",
                cpu_level_name(level), 100 * ratios[10], 100 * ratios[5], 100 * ratios[15]);
    if (sum.load() == 42) std::puts("");  // keeps the sums alive
  }
  return 0;
}

int bench_accumulate(int argc, char** argv) {
  const int64_t m = std::atoll(arg(argc, argv, "-m", "1920")), n = std::atoll(arg(argc, argv, "-n", "256")),
                k = std::atoll(arg(argc, argv, "-k", "768"));
  const bool transposed = flag(argc, argv, "-transposed");
  const int n_threads = std::atoi(arg(argc, argv, "-t", "2"));
  if (m <= 0 || n <= 0 || k <= 0) throw Error("accumulate: -m, -n and -k must be positive");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)), c(static_cast<size_t>(m * n));
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  // A is m x k row-major, or (transposed) stored k x m and read as its transpose.
  const int64_t a_si = transposed ? 1 : k, a_sk = transposed ? m : 1;
  ThreadPool pool(n_threads);
  for (CpuLevel level : kCpuLevels) {
    if (!cpu_level_supported(level)) continue;
    double best = 1e30;
    for (int r = 0; r < 10; ++r) {
      const double t0 = now_seconds();
      matmul_accumulate_at(level, m, n, k, a.data(), a_si, a_sk, b.data(), n, c.data(), n, &pool);
      best = std::min(best, now_seconds() - t0);
    }
    std::printf("accumulate m %-5lld n %-5lld k %-5lld %-10s %-7s %8.1f us  %7.1f GFLOP/s\n", (long long)m,
                (long long)n, (long long)k, transposed ? "transposed" : "plain", cpu_level_name(level), best * 1e6,
                2.0 * m * n * k / best * 1e-9);
  }
  return 0;
}

int bench_pool(int argc, char** argv) {
  const int n_threads = std::atoi(arg(argc, argv, "-t", "2"));
  ThreadPool pool(n_threads);
  std::vector<int64_t> sink(64);
  const int calls = 20000;
  const double t0 = now_seconds();
  for (int i = 0; i < calls; ++i) pool.parallel_for(n_threads, [&](int64_t b, int64_t e) { sink[b * 8] += e; });
  std::printf("parallel_for on %d threads: %.2f us per call\n", n_threads, (now_seconds() - t0) / calls * 1e6);
  return 0;
}

}  // namespace

int bench_copy_bias(int argc, char** argv) {
  const std::string path = arg(argc, argv, "-m", "");
  if (path.empty()) throw Error("copy-bias needs -m MODEL");
  const size_t source_bytes = static_cast<size_t>(std::atoll(arg(argc, argv, "-source-bytes", "100")));
  auto model = Model::load(path);
  auto tokenizer = Tokenizer::from_gguf(model->gguf());
  auto vocab = GrammarVocab::of(*tokenizer);
  const std::string request = "Mail Uncle Tom subject Job application body Please confirm by tonight. ";
  CopyBiasOptions o;
  o.bias = 10;
  while (o.source.size() < source_bytes) o.source += request;
  o.source.resize(std::max<size_t>(source_bytes, 1));
  o.triggers = {"<tool_call>"};
  std::vector<float> logits(size_t(vocab->n_vocab()), 0.0f);
  const std::string call = "<tool_call>{\"name\": \"send_email\", \"arguments\": {\"body\": \"";
  for (const char* value : {"", "Please confi", "qqq"}) {
    ArgumentCopyBias c(o, vocab);
    c.feed(call + value);
    const int reps = 200;
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const double t0 = now_seconds();
      for (int i = 0; i < reps; ++i) c.apply(logits.data(), logits.size());
      best = std::min(best, (now_seconds() - t0) / reps);
    }
    std::printf("copy-bias vocab %-7d source %-7zu value %-14s %9.1f us/token\n", vocab->n_vocab(), o.source.size(),
                (std::string("'") + value + "'").c_str(), best * 1e6);
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "model") return bench_model(argc, argv);
    if (cmd == "matmul") return bench_matmul(argc, argv);
    if (cmd == "pool") return bench_pool(argc, argv);
    if (cmd == "accumulate") return bench_accumulate(argc, argv);
    if (cmd == "copy-bias") return bench_copy_bias(argc, argv);
    if (cmd == "make-model") {  // random weights of a real shape
      TinyModelSpec s;
      s.arch = arg(argc, argv, "--arch", "qwen2");
      s.type = tensor_type_from_name(arg(argc, argv, "--type", "Q4_0"));
      s.n_embd = std::atoll(arg(argc, argv, "--n-embd", "896"));
      s.n_layer = std::atoll(arg(argc, argv, "--n-layer", "24"));
      s.n_head = std::atoll(arg(argc, argv, "--n-head", "14"));
      s.n_head_kv = std::atoll(arg(argc, argv, "--n-head-kv", "2"));
      s.n_ff = std::atoll(arg(argc, argv, "--n-ff", "4864"));
      s.n_vocab = std::atoll(arg(argc, argv, "--n-vocab", "151936"));
      s.n_ctx = 4096;
      s.tied_output = flag(argc, argv, "--tied");
      // No default path: a stray ./model.gguf of several hundred MB once
      // ended up committed.
      const std::string out = arg(argc, argv, "-o", "");
      if (out.empty()) throw Error("make-model needs -o FILE (where to write the model)");
      write_tiny_model(s, out);
      return 0;
    }
    std::fprintf(stderr, "usage: onellm_bench model|matmul|accumulate|pool|copy-bias|make-model ...\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onellm_bench: %s\n", e.what());
    return 1;
  }
}
