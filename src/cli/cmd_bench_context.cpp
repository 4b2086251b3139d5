// onellm bench-context: N sessions of T tokens whose KV exceeds the budget,
// switched round-robin through a ContextStore. Reports resume latency
// (restore + the rest of the prompt to the first logits) against a full
// re-prefill, memory used vs budget, disk traffic, and the accuracy cost of
// each KV compression level (logit deviation and perplexity).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "cli/commands.h"
#include "context/context.h"

namespace onellm::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// Text the model itself finds likely (sampled at temperature 0.8), so that
// perplexity is measured on in-distribution tokens for any model.
std::vector<int32_t> sampled_text(LoadedModel& m, int64_t n) {
  Sequence seq(*m.model, *m.tokenizer, m.pool.get());
  GenerationRequest r;
  r.prompt = m.tokenizer->encode("Once upon a time", true, false);
  r.max_tokens = n;
  r.sampling.temperature = 0.8f;
  r.sampling.seed = 7;
  r.ignore_eos = true;
  GenerationResult g = seq.generate(r);
  std::vector<int32_t> out = r.prompt;
  out.insert(out.end(), g.tokens.begin(), g.tokens.end());
  return out;
}

struct Accuracy {
  double ppl = 0, max_logit_dev = 0, mean_logit_dev = 0;
};

// Runs the text chunk by chunk; after each chunk its KV goes through the
// format (encode + decode), as if parked compressed and restored.
Accuracy evaluate(LoadedModel& m, const std::vector<int32_t>& text, KvFormat format, int64_t C,
                  const std::vector<float>* reference, std::vector<float>* logits_out) {
  const int64_t n = static_cast<int64_t>(text.size()), V = m.model->config().n_vocab;
  KvCache cache(m.model->config(), n);
  std::vector<float> logits(static_cast<size_t>(n * V));
  for (int64_t pos = 0; pos < n; pos += C) {
    const int64_t k = std::min(C, n - pos);
    m.model->forward(text.data() + pos, k, cache, logits.data() + pos * V, true, m.pool.get());
    if (format != KvFormat::kF32) {
      ChunkIdentity id;
      id.pos0 = pos;
      id.tokens.assign(text.begin() + pos, text.begin() + pos + k);
      id.n_layer = cache.n_layer();
      id.kv_dim = cache.kv_dim();
      decode_kv_chunk(encode_kv_chunk(id, cache, format), id, cache);
    }
  }
  Accuracy a;
  double nll = 0;
  for (int64_t t = 0; t + 1 < n; ++t) {
    const float* row = logits.data() + t * V;
    const float mx = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    nll += std::log(sum) + mx - row[text[static_cast<size_t>(t + 1)]];
  }
  a.ppl = std::exp(nll / static_cast<double>(n - 1));
  if (reference) {
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const double d = std::fabs(static_cast<double>(logits[i] - (*reference)[i]));
      a.max_logit_dev = std::max(a.max_logit_dev, d);
      total += d;
    }
    a.mean_logit_dev = total / static_cast<double>(logits.size());
  }
  if (logits_out) *logits_out = std::move(logits);
  return a;
}

}  // namespace

int bench_context_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"-m", "--model", "--sessions", "--tokens", "--budget", "--rounds", "--chunk", "--disk-format", "-t",
          "--threads", "--state-dir", "--accuracy-tokens", "--compress"},
         {"--json", "--warm", "-h", "--help"});
  if (a.flag({"-h", "--help"})) {
    std::puts("onellm bench-context -m MODEL [--sessions 4] [--tokens 2048] [--budget BYTES] [--rounds 2]\n"
              "                     [--chunk 32] [--disk-format f32|int8|int4] [--compress int8|int4|int2]\n"
              "                     [--state-dir DIR] [--warm]\n"
              "                     [--accuracy-tokens 256] [-t N] [--json]");
    return 0;
  }
  auto model_path = a.get({"-m", "--model"});
  if (!model_path) throw Error("no model given (-m MODEL)");
  LoadedModel m = load_model(*model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)));
  const int64_t n_sessions = a.get_int({"--sessions"}, 4), n_tokens = a.get_int({"--tokens"}, 2048);
  const int64_t rounds = a.get_int({"--rounds"}, 2), C = a.get_int({"--chunk"}, 32);
  const int64_t n_ctx = std::min<int64_t>(n_tokens + 64, m.model->config().n_ctx_train);
  if (n_sessions < 1 || n_tokens < 2 * C || n_tokens + 8 > n_ctx)
    throw Error("--tokens must be at least two chunks and fit the model's context (" +
                std::to_string(m.model->config().n_ctx_train) + ")");
  const uint64_t per_token = KvCache(m.model->config(), 1).bytes_per_token();
  // Default budget: room for half the sessions hot, so switching must park and restore.
  const uint64_t budget = a.has("--budget") ? parse_byte_size(*a.get({"--budget"}), "--budget")
                                            : per_token * static_cast<uint64_t>(n_ctx) * std::max<int64_t>(1, n_sessions / 2);
  std::string state = a.get_or({"--state-dir"}, "");
  const bool own_state = state.empty();
  if (own_state) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "onellm-bench-context-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw Error("cannot create a temporary directory");
    state = tmpl;
  }

  nlohmann::ordered_json out;
  {
    ContextOptions o;
    o.dir = state + "/kv";
    o.budget_bytes = budget;
    o.chunk_tokens = C;
    o.disk_format = parse_kv_format(a.get_or({"--disk-format"}, "f32"));
    o.deepest_memory_format = parse_kv_format(a.get_or({"--compress"}, "int8"));
    o.restore_pool = m.pool.get();
    o.cold_reads = !a.flag({"--warm"});
    ContextStore store(*m.model, *m.tokenizer, m.pool.get(), *model_path, o);

    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_sessions));
    std::mt19937 rng(11);
    std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(m.model->config().n_vocab - 1));
    std::vector<double> prefill_ms, resume_ms;
    for (int64_t s = 0; s < n_sessions; ++s) {
      auto& p = prompts[static_cast<size_t>(s)];
      for (int64_t i = 0; i < n_tokens; ++i) p.push_back(token(rng));
      const std::string name = std::string("s").append(std::to_string(s));
      auto t0 = Clock::now();
      store.checkout("bench", name, 10, n_ctx, p, n_tokens + 8).prefill(p);
      prefill_ms.push_back(ms_since(t0));
      store.checkin("bench", name);
      std::fprintf(stderr, "session %lld: re-prefill of %lld tokens %.0f ms\n", static_cast<long long>(s),
                   static_cast<long long>(n_tokens), prefill_ms.back());
    }
    store.flush();
    int64_t from_memory = 0, from_disk = 0, recomputed = 0, restored_tokens = 0;
    for (int64_t r = 0; r < rounds; ++r)
      for (int64_t s = 0; s < n_sessions; ++s) {
        auto& p = prompts[static_cast<size_t>(s)];
        p.push_back(token(rng));  // the app's next message
        const std::string name = std::string("s").append(std::to_string(s));
        RestoreReport rep;
        auto t0 = Clock::now();
        store.checkout("bench", name, 10, n_ctx, p, static_cast<int64_t>(p.size()) + 8, &rep).prefill(p);
        resume_ms.push_back(ms_since(t0));
        store.checkin("bench", name);
        store.flush();
        from_memory += rep.chunks_from_memory;
        from_disk += rep.chunks_from_disk;
        recomputed += rep.chunks_recomputed;
        restored_tokens += rep.tokens_restored;
      }
    ContextStats st = store.stats();
    const double p50_prefill = percentile(prefill_ms, 50);
    out["model"] = std::filesystem::path(*model_path).filename().string();
    out["sessions"] = n_sessions;
    out["tokens"] = n_tokens;
    out["chunk_tokens"] = C;
    out["disk_format"] = kv_format_name(o.disk_format);
    out["deepest_memory_format"] = kv_format_name(o.deepest_memory_format);
    out["waits_for_writes"] = st.waits_for_writes;
    out["over_budget"] = st.over_budget;
    out["cold_page_cache"] = o.cold_reads;
    out["kv_bytes_per_token_f32"] = per_token;
    out["budget_bytes"] = budget;
    out["peak_bytes"] = st.peak_bytes;
    out["all_sessions_hot_bytes"] = per_token * static_cast<uint64_t>(n_sessions * n_tokens);
    out["reprefill_ms_p50"] = p50_prefill;
    out["resume_ms_p50"] = percentile(resume_ms, 50);
    out["resume_ms_p99"] = percentile(resume_ms, 99);
    out["speedup_p50"] = p50_prefill / std::max(1e-6, percentile(resume_ms, 50));
    out["chunks_from_memory"] = from_memory;
    out["chunks_from_disk"] = from_disk;
    out["chunks_recomputed"] = recomputed;
    out["disk_bytes_written"] = st.disk_bytes_written;
    out["disk_bytes_read"] = st.disk_bytes_read;
    out["load_ms_per_mb"] = st.costs.load_ms_per_mb;
    out["recompute_ms_per_token"] = st.costs.recompute_ms_per_token;
  }
  if (own_state) std::filesystem::remove_all(state);

  const int64_t acc_tokens = a.get_int({"--accuracy-tokens"}, 256);
  if (acc_tokens > 0) {
    std::vector<int32_t> text = sampled_text(m, std::min<int64_t>(acc_tokens, m.model->config().n_ctx_train - 8));
    std::vector<float> reference;
    Accuracy base = evaluate(m, text, KvFormat::kF32, C, nullptr, &reference);
    nlohmann::ordered_json acc = nlohmann::ordered_json::array();
    for (KvFormat f : {KvFormat::kF32, KvFormat::kInt8, KvFormat::kInt4, KvFormat::kInt2}) {
      Accuracy r = f == KvFormat::kF32 ? base : evaluate(m, text, f, C, &reference, nullptr);
      acc.push_back({{"format", kv_format_name(f)}, {"ppl", r.ppl}, {"ppl_change_pct", 100.0 * (r.ppl / base.ppl - 1)},
                     {"max_logit_dev", r.max_logit_dev}, {"mean_logit_dev", r.mean_logit_dev}});
    }
    out["accuracy_tokens"] = text.size();
    out["accuracy"] = acc;
  }
  if (a.flag({"--json"})) {
    std::puts(out.dump(2).c_str());
    return 0;
  }
  std::printf("%lld sessions x %lld tokens, KV %.1f KB/token (F32), budget %.1f MB, all hot %.1f MB, peak %.1f MB\n",
              static_cast<long long>(n_sessions), static_cast<long long>(n_tokens),
              out["kv_bytes_per_token_f32"].get<double>() / 1024, budget / 1048576.0,
              out["all_sessions_hot_bytes"].get<double>() / 1048576.0, out["peak_bytes"].get<double>() / 1048576.0);
  std::printf("re-prefill p50 %.1f ms | resume p50 %.2f ms p99 %.2f ms (%s page cache) | speed-up %.0fx\n",
              out["reprefill_ms_p50"].get<double>(), out["resume_ms_p50"].get<double>(),
              out["resume_ms_p99"].get<double>(), a.flag({"--warm"}) ? "warm" : "cold", out["speedup_p50"].get<double>());
  std::printf("chunks: %lld from memory, %lld from disk, %lld recomputed | disk written %.1f MB, read %.1f MB\n",
              static_cast<long long>(out["chunks_from_memory"].get<int64_t>()),
              static_cast<long long>(out["chunks_from_disk"].get<int64_t>()),
              static_cast<long long>(out["chunks_recomputed"].get<int64_t>()),
              out["disk_bytes_written"].get<double>() / 1048576.0, out["disk_bytes_read"].get<double>() / 1048576.0);
  if (out.contains("accuracy"))
    for (const auto& r : out["accuracy"])
      std::printf("%-5s ppl %.4f (%+.3f%%)  logit deviation max %.4f mean %.5f\n", r["format"].get<std::string>().c_str(),
                  r["ppl"].get<double>(), r["ppl_change_pct"].get<double>(), r["max_logit_dev"].get<double>(),
                  r["mean_logit_dev"].get<double>());
  return 0;
}

}  // namespace onellm::cli
