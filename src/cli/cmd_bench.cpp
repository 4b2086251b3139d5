// onellm bench: llama-bench style prompt-processing (pp) and generation (tg)
// throughput, peak RSS, and the decode bound from measured memory bandwidth.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/error.h"
#include "base/mapped_file.h"
#include "cli/commands.h"
#include "engine/json_schema.h"

namespace onellm::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int64_t> parse_list(const std::string& s, const char* option) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != 0 || v < 0) throw Error(std::string(option) + ": '" + item + "' is not a count");
    out.push_back(v);
  }
  return out;
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

// Read bandwidth with the same threads the model uses: sums a buffer of
// `bytes` with the vector loads of the active CPU level (a scalar loop read
// ~35 % less, and decode passed its "bound"). Best of a few passes. The
// buffer is mapped like packed weights (AnonymousMemory: 2 MiB pages where
// the kernel allows), so the probe and the model see the same TLB costs.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes) {
  const size_t n = bytes / sizeof(uint64_t) / 4096 * 4096;
  AnonymousMemory memory(n * sizeof(uint64_t));
  uint64_t* buf = reinterpret_cast<uint64_t*>(memory.data());
  std::fill_n(buf, n, uint64_t{1});
  const CpuLevel level = cpu_level();
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    std::atomic<uint64_t> total{0};
    auto t0 = Clock::now();
    pool.parallel_for(static_cast<int64_t>(n / 4096), [&](int64_t b, int64_t e) {
      total.fetch_add(sum_words_at(level, buf + b * 4096, (e - b) * 4096), std::memory_order_relaxed);
    });
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (total.load() == 0) std::fputs("", stderr);  // keeps the loop from being optimized out
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  return best;
}

// In a child process, so that the probe's buffer does not count in this
// process's peak RSS. 0 when the child cannot be run.
double measure_read_bandwidth_in_child(int n_threads, size_t bytes) {
  double bandwidth = 0;
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ThreadPool pool(n_threads);
    double bw = measure_read_bandwidth(pool, bytes);
    (void)!::write(fds[1], &bw, sizeof bw);
    ::_exit(0);
  }
  ::close(fds[1]);
  if (pid > 0) {
    if (::read(fds[0], &bandwidth, sizeof bandwidth) != sizeof bandwidth) bandwidth = 0;
    ::waitpid(pid, nullptr, 0);
  }
  ::close(fds[0]);
  return bandwidth;
}

// The last-level cache in bytes (0 if unknown). Weights that fit there are
// read from cache, not memory, in a decode step, so the bound does not hold.
uint64_t last_level_cache_bytes() {
  uint64_t best = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::FILE* f = std::fopen((dir + "size").c_str(), "r");
    if (f == nullptr) break;
    char unit = 0;
    unsigned long long size = 0;
    if (std::fscanf(f, "%llu%c", &size, &unit) >= 1)
      best = std::max<uint64_t>(best, size << (unit == 'K' ? 10 : unit == 'M' ? 20 : unit == 'G' ? 30 : 0));
    std::fclose(f);
  }
  return best;
}

struct Stats {
  double mean = 0, stddev = 0;
};
Stats stats(const std::vector<double>& xs) {
  Stats s;
  for (double x : xs) s.mean += x;
  s.mean /= static_cast<double>(xs.size());
  for (double x : xs) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = xs.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(xs.size() - 1)) : 0;
  return s;
}

}  // namespace

int bench_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"-m", "--model", "-p", "--n-prompt", "-n", "--n-gen", "-d", "--n-depth", "-t", "--threads", "-r",
          "--repetitions", "-b", "--batch-size", "--json-schema", "--grammar", "--kv-type", "-ctk", "--parallel", "-np"},
         {"--json", "-h", "--help"});
  if (a.flag({"-h", "--help"})) {
    std::puts(
        "onellm bench -m MODEL [-p 128,512] [-n 64] [-d 0,4096] [-t THREADS] [-r 3] [-b 512] [--kv-type f16|q8_0|f32]\n"
        "             [--json]\n"
        "             -d: every test also with the context already holding that many tokens (untimed)\n"
        "             [--parallel 1,4,8]   also decode n tokens for B sequences at once (batched passes)\n"
        "             [--json-schema FILE | --grammar FILE]   also time decoding with sampling, without and\n"
        "                                                    with the grammar (its cost in tokens/s)");
    return 0;
  }
  const std::string model_path = model_path_or_default(a);
  const std::vector<int64_t> prompts = parse_list(a.get_or({"-p", "--n-prompt"}, "512"), "-p");
  const std::vector<int64_t> gens = parse_list(a.get_or({"-n", "--n-gen"}, "128"), "-n");
  const std::vector<int64_t> depths = parse_list(a.get_or({"-d", "--n-depth"}, "0"), "-d");
  const std::vector<int64_t> parallel = parse_list(a.get_or({"--parallel", "-np"}, "1"), "--parallel");
  const int reps = static_cast<int>(std::max<long long>(1, a.get_int({"-r", "--repetitions"}, 5)));
  const int64_t n_batch = a.get_int({"-b", "--batch-size"}, 512);
  const bool json = a.flag({"--json"});
  std::shared_ptr<const Grammar> grammar;
  if (auto g = a.get({"--grammar"})) grammar = Grammar::parse(read_text_file(*g));
  if (auto js = a.get({"--json-schema"})) grammar = Grammar::parse(json_schema_text_to_gbnf(read_text_file(*js)));

  LoadedModel m = load_model(model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)));
  const Model& model = *m.model;
  const ModelConfig& c = model.config();
  int64_t max_tokens = 1, max_depth = 0;
  for (int64_t p : prompts) max_tokens = std::max(max_tokens, p);
  for (int64_t g : gens) max_tokens = std::max(max_tokens, g + 1);
  for (int64_t d : depths) max_depth = std::max(max_depth, d);
  max_tokens += max_depth;
  const TensorType kv_type = kv_type_from_args(a);
  KvCache cache(c, max_tokens, kv_type);
  // Allocated once: growing the cache mid-test would re-lay it inside the timing.
  cache.reserve(max_tokens);
  std::mt19937 rng(42);
  std::vector<int32_t> tokens(static_cast<size_t>(max_tokens));
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.n_vocab));
  std::vector<float> logits(static_cast<size_t>(c.n_vocab));

  // Bytes one decode step reads: every weight except the embedding table
  // (one row of it), plus the output head when it is tied.
  uint64_t step_bytes = model.weight_bytes();
  if (const GgufTensor* e = model.gguf().find_tensor("token_embd.weight")) {
    step_bytes -= e->n_bytes;
    if (c.tied_output) step_bytes += e->n_bytes;
  }
  // The probe streams as many bytes as a decode step (at least 512 MiB, at
  // most what 4 x the last-level cache needs): a big last-level cache serves
  // part of a cyclic read a little larger than itself, so on a 300 MiB L3 a
  // 512 MiB probe read 36-42 GB/s and 1-2 GiB 33-35, and a model of 829 MiB
  // meets the latter. Bandwidth is measured before and after the timed runs
  // (the bound is the better of the two: on a shared machine bandwidth drifts
  // by +-15 % over seconds, and one probe taken in a slow moment put decode
  // above 100 % of its "bound").
  const uint64_t llc = last_level_cache_bytes();
  const size_t probe_bytes = static_cast<size_t>(
      std::clamp<uint64_t>(step_bytes, uint64_t{512} << 20, std::max<uint64_t>(uint64_t{512} << 20, 4 * llc)));
  double bandwidth = measure_read_bandwidth_in_child(m.pool->size(), probe_bytes);

  struct Row {
    int64_t n_prompt, n_gen, n_depth;
    std::vector<double> ns, ts;
    std::string label;  // "": plain forward passes
    int64_t n_seq = 1;  // sequences decoded together
  };
  std::vector<Row> rows;
  // Fills kc with the first `depth` tokens (untimed, in batches of n_batch):
  // llama-bench's -d. Each repetition then truncates back to it.
  auto fill_to_depth = [&](KvCache& kc, int64_t depth, const int32_t* toks) {
    kc.clear();
    for (int64_t done = 0; done < depth; done += n_batch)
      model.forward(toks + done, std::min(n_batch, depth - done), kc, logits.data(), false, m.pool.get());
  };
  auto run_test = [&](int64_t n_prompt, int64_t n_gen, int64_t depth) {
    Row row{n_prompt, n_gen, depth, {}, {}, ""};
    fill_to_depth(cache, depth, tokens.data());
    const int32_t* test_tokens = tokens.data() + depth;
    for (int r = -1; r < reps; ++r) {  // r == -1: warm-up, not recorded
      cache.truncate(depth);
      auto t0 = Clock::now();
      for (int64_t done = 0; done < n_prompt; done += n_batch)
        model.forward(test_tokens + done, std::min(n_batch, n_prompt - done), cache, logits.data(), false,
                      m.pool.get());
      for (int64_t i = 0; i < n_gen; ++i) model.forward(&test_tokens[i], 1, cache, logits.data(), false, m.pool.get());
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r < 0) continue;
      row.ns.push_back(s * 1e9);
      row.ts.push_back(static_cast<double>(n_prompt + n_gen) / s);
    }
    rows.push_back(row);
  };
  for (int64_t d : depths) {
    for (int64_t p : prompts)
      if (p > 0) run_test(p, 0, d);
    for (int64_t g : gens)
      if (g > 0) run_test(0, g, d);
  }
  // Decoding with the sampler in the loop, without and with the grammar: the
  // difference is what constrained decoding costs. A finished sentence starts
  // a new one, so every run generates n_gen tokens.
  auto run_sampled = [&](int64_t n_gen, int64_t depth, bool constrained) {
    Row row{0, n_gen, depth, {}, {}, constrained ? "constrained" : "sampled"};
    SamplingParams sp;
    sp.seed = 7;
    std::shared_ptr<const GrammarVocab> vocab = GrammarVocab::of(*m.tokenizer);
    fill_to_depth(cache, depth, tokens.data());
    for (int r = -1; r < reps; ++r) {
      cache.truncate(depth);
      Sampler sampler(sp, static_cast<int32_t>(c.n_vocab));
      std::unique_ptr<GrammarMatcher> matcher;
      std::vector<int32_t> history;
      int32_t tok = tokens[0];
      auto t0 = Clock::now();
      for (int64_t i = 0; i < n_gen; ++i) {
        model.forward(&tok, 1, cache, logits.data(), false, m.pool.get());
        if (constrained && (!matcher || matcher->must_end())) {
          matcher = std::make_unique<GrammarMatcher>(grammar, vocab);
          matcher->set_thread_pool(m.pool.get());
        }
        sampler.set_constraint(matcher.get());
        tok = sampler.sample(logits.data(), history);
        if (matcher) {
          if (vocab->is_eog(tok) || tok >= vocab->n_vocab()) matcher.reset();
          else matcher->accept_token(tok);
        }
        if (tok >= vocab->n_vocab() || m.tokenizer->is_eog(tok)) tok = tokens[0];
        history.push_back(tok);
      }
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r < 0) continue;
      row.ns.push_back(s * 1e9);
      row.ts.push_back(static_cast<double>(n_gen) / s);
    }
    rows.push_back(row);
  };
  // Batched decode: B sequences, each generating n_gen tokens, one forward
  // pass per step for all of them (what the service's scheduler does with
  // concurrent streams). t/s counts the tokens of all sequences.
  auto run_parallel = [&](int64_t n_gen, int64_t depth, int64_t n_seq) {
    Row row{0, n_gen, depth, {}, {}, "", n_seq};
    row.label.append("x").append(std::to_string(n_seq)).append(" sequences");  // (GCC 12 warned falsely on "x" + ...)
    // Every sequence starts from the same context: filled once, copied.
    std::vector<KvCache> caches;
    caches.emplace_back(c, depth + n_gen + 1, kv_type);
    caches.back().reserve(depth + n_gen + 1);
    fill_to_depth(caches.back(), depth, tokens.data());
    for (int64_t s = 1; s < n_seq; ++s) caches.push_back(caches.front());
    std::vector<float> batch_logits(static_cast<size_t>(n_seq * c.n_vocab));
    std::vector<Model::ForwardSegment> segments(static_cast<size_t>(n_seq));
    for (int r = -1; r < reps; ++r) {
      for (KvCache& kc : caches) kc.truncate(depth);
      auto t0 = Clock::now();
      for (int64_t i = 0; i < n_gen; ++i) {
        for (int64_t s = 0; s < n_seq; ++s)
          segments[static_cast<size_t>(s)] = {&tokens[static_cast<size_t>((i + s) % max_tokens)], 1,
                                              &caches[static_cast<size_t>(s)],
                                              batch_logits.data() + s * c.n_vocab, false};
        model.forward_batch(segments.data(), n_seq, m.pool.get());
      }
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r < 0) continue;
      row.ns.push_back(s * 1e9);
      row.ts.push_back(static_cast<double>(n_gen * n_seq) / s);
    }
    rows.push_back(row);
  };
  for (int64_t d : depths)
    for (int64_t b : parallel)
      for (int64_t g : gens)
        if (b > 1 && g > 0) run_parallel(g, d, b);
  if (grammar) {
    for (int64_t d : depths)
      for (int64_t g : gens) {
        if (g <= 0) continue;
        run_sampled(g, d, false);
        run_sampled(g, d, true);
      }
  }

  const uint64_t rss = peak_rss_bytes();
  bandwidth = std::max(bandwidth, measure_read_bandwidth_in_child(m.pool->size(), probe_bytes));
  // A decode step reads the weights and the KV cache up to its position: on
  // average depth + (n_gen + 1) / 2 positions of K and V in every layer.
  const double kv_bytes_per_position = 2.0 * static_cast<double>(c.n_layer * cache.row_bytes());
  auto bound_ts = [&](const Row& r) {
    const double positions = static_cast<double>(r.n_depth) + static_cast<double>(r.n_gen + 1) / 2.0;
    return bandwidth / (static_cast<double>(step_bytes) + kv_bytes_per_position * positions);
  };
  // As llama-bench: the file's quantization recipe, else the first FFN matrix's type.
  std::string recipe = model.gguf().file_type_name();
  if (recipe.empty()) recipe = tensor_type_name(static_cast<uint32_t>(model.gguf().tensor("blk.0.ffn_up.weight").type));
  const std::string model_type = c.arch + " " + recipe;
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      Stats ns = stats(r.ns), ts = stats(r.ts);
      out.push_back({{"model_filename", model_path}, {"model_type", model_type},
                     {"model_size", model.weight_bytes()}, {"model_n_params", model.parameter_count()},
                     {"n_batch", n_batch}, {"n_threads", m.pool->size()}, {"n_prompt", r.n_prompt},
                     {"n_gen", r.n_gen}, {"n_depth", r.n_depth}, {"sampling", r.n_seq > 1 ? "" : r.label}, {"n_parallel", r.n_seq}, {"avg_ns", static_cast<uint64_t>(ns.mean)},
                     {"stddev_ns", static_cast<uint64_t>(ns.stddev)}, {"avg_ts", ts.mean}, {"stddev_ts", ts.stddev},
                     {"samples_ns", r.ns}, {"samples_ts", r.ts}, {"peak_rss_bytes", rss},
                     {"mem_bandwidth_bytes_per_s", bandwidth}, {"mem_probe_bytes", probe_bytes},
                     {"decode_bound_ts", bound_ts(r)},
                     {"cpu_level", cpu_level_name(cpu_level())}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("| model | size | params | threads | test | t/s | decode bound |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    Stats ts = stats(r.ts);
    std::string test = r.n_prompt > 0 ? "pp" + std::to_string(r.n_prompt) : "tg" + std::to_string(r.n_gen);
    if (r.n_depth > 0) test += " @ d" + std::to_string(r.n_depth);
    if (!r.label.empty()) test += " " + r.label;
    char bound[64] = "";
    if (r.n_gen > 0 && r.n_seq == 1)
      std::snprintf(bound, sizeof bound, "%.1f (%d%%)", bound_ts(r), static_cast<int>(100 * ts.mean / bound_ts(r)));
    std::printf("| %s | %.2f MiB | %.2f M | %d | %s | %.2f ± %.2f | %s |\n", model_type.c_str(),
                model.weight_bytes() / 1048576.0, model.parameter_count() / 1e6, m.pool->size(), test.c_str(),
                ts.mean, ts.stddev, bound);
  }
  std::printf("\npeak RSS %.1f MiB (file %.1f MiB); read bandwidth %.2f GB/s over %.0f MiB; %.2f MiB of weights read\n"
              "per decode step, plus %.3f MiB of KV cache per position it attends to; kernels: CPU level %s\n",
              rss / 1048576.0, model.gguf().file_size() / 1048576.0, bandwidth / 1e9, probe_bytes / 1048576.0,
              step_bytes / 1048576.0, kv_bytes_per_position / 1048576.0, cpu_level_name(cpu_level()));
  if (llc > 0 && step_bytes <= llc)
    std::printf("the weights fit in the %.0f MiB last-level cache: decode can read them from there and pass the bound\n",
                llc / 1048576.0);
  return 0;
}

}  // namespace onellm::cli
