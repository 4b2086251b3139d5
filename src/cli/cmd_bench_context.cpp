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
#include <tuple>

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
  double bits_per_value = 0;                 // of the history as stored
  int64_t chunks_by_format[kKvFormatCount] = {};
};

// The history of a parked session: the first three quarters of the text,
// in whole chunks (at least one).
int64_t history_tokens(int64_t n, int64_t C) { return std::max<int64_t>(C, (n * 3 / 4) / C * C); }

// The chunk at [pos, pos + C) through `format` and back, as parking and
// restoring it would.
void round_trip_chunk(KvCache& cache, const std::vector<int32_t>& text, int64_t pos, int64_t C, KvFormat format) {
  ChunkIdentity id;
  id.pos0 = pos;
  id.tokens.assign(text.begin() + pos, text.begin() + pos + C);
  id.n_layer = cache.n_layer();
  id.kv_dim = cache.kv_dim();
  decode_kv_chunk(encode_kv_chunk(id, cache, format), id, cache);
}

// Largest and mean absolute difference between two logit arrays.
std::pair<double, double> logit_deviation(const std::vector<float>& got, const std::vector<float>& want) {
  double max = 0, total = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i] - want[i]));
    max = std::max(max, d);
    total += d;
  }
  return {max, total / static_cast<double>(got.size())};
}

// How a parked history is kept: the live cache type, and then every full
// chunk either as it is, in one format, or in the format its attention allows.
struct Policy {
  std::string name;
  TensorType cache = TensorType::F16;
  bool compress = false, by_attention = false;
  KvFormat format = KvFormat::kInt8;
  // The control: the same formats as by_attention, given to the most
  // attended chunks instead of the least (shows what the choice is worth).
  bool inverted = false;
};

// A session parked and resumed: the first three quarters of the text are the
// history (computed with attention tracking); its full chunks then go
// through the policy's format (encode + decode, what parking and restoring
// do); the rest is the next turn. Perplexity and logit deviation are over
// the next turn's tokens, against an F32 cache that was never compressed.
Accuracy evaluate(LoadedModel& m, const std::vector<int32_t>& text, const Policy& policy, int64_t C,
                  const std::vector<float>* reference, std::vector<float>* logits_out) {
  const int64_t n = static_cast<int64_t>(text.size()), V = m.model->config().n_vocab;
  const int64_t history = history_tokens(n, C);
  if (history + 2 > n) throw Error("bench-context: --accuracy-tokens too small for the chunk size");
  KvCache cache(m.model->config(), n, policy.cache);
  cache.track_attention(true);
  std::vector<float> last(static_cast<size_t>(V));
  m.model->forward(text.data(), history, cache, last.data(), false, m.pool.get());
  Accuracy a;
  double bits = 0;
  const int64_t n_chunks = history / C;
  std::vector<KvFormat> formats(static_cast<size_t>(n_chunks), kv_format_for_cache(policy.cache));
  std::vector<double> scores(formats.size());
  for (int64_t i = 0; i < n_chunks; ++i) {
    scores[static_cast<size_t>(i)] = cache.attention_score(i * C, C);
    if (policy.compress)
      formats[static_cast<size_t>(i)] =
          policy.by_attention ? kv_format_for_attention(scores[static_cast<size_t>(i)]) : policy.format;
  }
  if (policy.inverted) {  // deepest formats to the highest scores
    std::vector<size_t> order(formats.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return scores[x] < scores[y]; });
    std::vector<KvFormat> sorted = formats;
    std::sort(sorted.begin(), sorted.end(), [](KvFormat x, KvFormat y) { return x > y; });  // deepest first
    for (size_t r = 0; r < order.size(); ++r) formats[order[r]] = sorted[order.size() - 1 - r];
  }
  for (int64_t i = 0; i < n_chunks; ++i) {
    const int64_t pos = i * C;
    const KvFormat f = formats[static_cast<size_t>(i)];
    if (policy.compress) round_trip_chunk(cache, text, pos, C, f);
    a.chunks_by_format[static_cast<int>(f)]++;
    bits += 8 * kv_format_bytes_per_value(f);
  }
  a.bits_per_value = bits / static_cast<double>(n_chunks);
  const int64_t rest = n - history;
  std::vector<float> logits(static_cast<size_t>(rest * V));
  m.model->forward(text.data() + history, rest, cache, logits.data(), true, m.pool.get());
  double nll = 0;
  for (int64_t t = 0; t + 1 < rest; ++t) {
    const float* row = logits.data() + t * V;
    const float mx = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    nll += std::log(sum) + mx - row[text[static_cast<size_t>(history + t + 1)]];
  }
  a.ppl = std::exp(nll / static_cast<double>(rest - 1));
  if (reference) std::tie(a.max_logit_dev, a.mean_logit_dev) = logit_deviation(logits, *reference);
  if (logits_out) *logits_out = std::move(logits);
  return a;
}

// Does the attention a chunk received predict how much compressing it
// hurts? Each history chunk alone goes to int2 (from one shared prefill) and
// the next turn's mean logit deviation is its damage; the Spearman rank
// correlation of score and damage over the chunks says how well the score
// orders them (1 = perfectly).
struct Sensitivity {
  std::vector<double> scores, damage;
  double spearman = 0;
};

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return v[x] < v[y]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size(); ++i) r[order[i]] = static_cast<double>(i);
  return r;
}

Sensitivity chunk_sensitivity(LoadedModel& m, const std::vector<int32_t>& text, int64_t C,
                              const std::vector<float>& reference) {
  const int64_t n = static_cast<int64_t>(text.size()), V = m.model->config().n_vocab;
  const int64_t history = history_tokens(n, C), rest = n - history;
  KvCache prefilled(m.model->config(), n, TensorType::F16);
  prefilled.track_attention(true);
  std::vector<float> logits(static_cast<size_t>(rest * V));
  m.model->forward(text.data(), history, prefilled, logits.data(), false, m.pool.get());
  Sensitivity s;
  for (int64_t pos = 0; pos + C <= history; pos += C) {
    KvCache cache = prefilled;
    round_trip_chunk(cache, text, pos, C, KvFormat::kInt2);
    m.model->forward(text.data() + history, rest, cache, logits.data(), true, m.pool.get());
    s.scores.push_back(prefilled.attention_score(pos, C));
    s.damage.push_back(logit_deviation(logits, reference).second);
  }
  const std::vector<double> rs = ranks(s.scores), rd = ranks(s.damage);
  const double k = static_cast<double>(rs.size());
  double d2 = 0;
  for (size_t i = 0; i < rs.size(); ++i) d2 += (rs[i] - rd[i]) * (rs[i] - rd[i]);
  s.spearman = k > 1 ? 1.0 - 6.0 * d2 / (k * (k * k - 1.0)) : 0.0;
  return s;
}

}  // namespace

int bench_context_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"-m", "--model", "--sessions", "--tokens", "--budget", "--rounds", "--chunk", "--disk-format", "-t",
          "--threads", "--state-dir", "--accuracy-tokens", "--compress", "--kv-type", "-ctk"},
         {"--json", "--warm", "-h", "--help"});
  if (a.flag({"-h", "--help"})) {
    std::puts("onellm bench-context -m MODEL [--sessions 4] [--tokens 2048] [--budget BYTES] [--rounds 2]\n"
              "                     [--chunk 32] [--kv-type f16|q8_0|f32] [--disk-format f32|f16|int8|int4]\n"
              "                     [--compress int8|int4|int2]\n"
              "                     [--state-dir DIR] [--warm]\n"
              "                     [--accuracy-tokens 512] [-t N] [--json]");
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
  const TensorType kv_type = kv_type_from_args(a);
  const uint64_t per_token = KvCache(m.model->config(), 1, kv_type).bytes_per_token();
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
    o.kv_type = kv_type;
    o.disk_format = a.has("--disk-format") ? parse_kv_format(*a.get({"--disk-format"})) : kv_format_for_cache(kv_type);
    o.deepest_memory_format = parse_kv_format(a.get_or({"--compress"}, "int4"));
    o.restore_pool = m.pool.get();
    o.cold_reads = !a.flag({"--warm"});
    ContextStore store(*m.model, *m.tokenizer, m.pool.get(), *model_path, o);

    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_sessions));
    std::mt19937 rng(11);
    std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(m.model->config().n_vocab - 1));
    std::vector<double> prefill_ms, resume_ms, restore_ms;
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
    int64_t from_memory = 0, from_disk = 0, recomputed = 0;
    for (int64_t r = 0; r < rounds; ++r)
      for (int64_t s = 0; s < n_sessions; ++s) {
        auto& p = prompts[static_cast<size_t>(s)];
        p.push_back(token(rng));  // the app's next message
        const std::string name = std::string("s").append(std::to_string(s));
        RestoreReport rep;
        auto t0 = Clock::now();
        store.checkout("bench", name, 10, n_ctx, p, static_cast<int64_t>(p.size()) + 8, &rep).prefill(p);
        resume_ms.push_back(ms_since(t0));
        restore_ms.push_back(rep.ms);
        store.checkin("bench", name);
        store.flush();
        from_memory += rep.chunks_from_memory;
        from_disk += rep.chunks_from_disk;
        recomputed += rep.chunks_recomputed;
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
    out["kv_type"] = tensor_type_info(kv_type).name;
    out["kv_bytes_per_token"] = per_token;
    out["budget_bytes"] = budget;
    out["peak_bytes"] = st.peak_bytes;
    out["all_sessions_hot_bytes"] = per_token * static_cast<uint64_t>(n_sessions * n_tokens);
    out["reprefill_ms_p50"] = p50_prefill;
    out["resume_ms_p50"] = percentile(resume_ms, 50);
    out["resume_ms_p99"] = percentile(resume_ms, 99);
    out["restore_ms_p50"] = percentile(restore_ms, 50);  // checkout alone: chunks back in the cache
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

  const int64_t acc_tokens = a.get_int({"--accuracy-tokens"}, 512);
  if (acc_tokens > 0) {
    std::vector<int32_t> text = sampled_text(m, std::min<int64_t>(acc_tokens, m.model->config().n_ctx_train - 8));
    std::vector<float> reference;
    Accuracy base = evaluate(m, text, {"f32 cache", TensorType::F32}, C, nullptr, &reference);
    const Sensitivity sens = chunk_sensitivity(m, text, C, reference);
    std::vector<Policy> policies = {{"f32 cache", TensorType::F32},
                                    {"f16 cache", TensorType::F16},
                                    {"int8", TensorType::F16, true, false, KvFormat::kInt8},
                                    {"int4", TensorType::F16, true, false, KvFormat::kInt4},
                                    {"int2", TensorType::F16, true, false, KvFormat::kInt2},
                                    {"by attention", TensorType::F16, true, true},
                                    {"inverted", TensorType::F16, true, true, KvFormat::kInt8, true}};
    if (m.model->config().head_dim % 32 == 0) policies.insert(policies.begin() + 2, {"q8_0 cache", TensorType::Q8_0});
    nlohmann::ordered_json acc = nlohmann::ordered_json::array();
    for (const Policy& p : policies) {
      Accuracy r = p.cache == TensorType::F32 && !p.compress ? base : evaluate(m, text, p, C, &reference, nullptr);
      nlohmann::ordered_json chunks;
      for (int f = 0; f < kKvFormatCount; ++f)
        if (r.chunks_by_format[f] > 0) chunks[kv_format_name(static_cast<KvFormat>(f))] = r.chunks_by_format[f];
      acc.push_back({{"policy", p.name}, {"bits_per_value", r.bits_per_value}, {"chunks", chunks}, {"ppl", r.ppl},
                     {"ppl_change_pct", 100.0 * (r.ppl / base.ppl - 1)}, {"max_logit_dev", r.max_logit_dev},
                     {"mean_logit_dev", r.mean_logit_dev}});
    }
    out["accuracy_tokens"] = text.size();
    out["accuracy"] = acc;
    out["chunk_sensitivity"] = {{"spearman_score_vs_damage", sens.spearman}, {"scores", sens.scores},
                                {"int2_mean_logit_dev", sens.damage}};
  }
  if (a.flag({"--json"})) {
    std::puts(out.dump(2).c_str());
    return 0;
  }
  std::printf("%lld sessions x %lld tokens, KV %.1f KB/token (%s), budget %.1f MB, all hot %.1f MB, peak %.1f MB\n",
              static_cast<long long>(n_sessions), static_cast<long long>(n_tokens),
              out["kv_bytes_per_token"].get<double>() / 1024, tensor_type_info(kv_type).name, budget / 1048576.0,
              out["all_sessions_hot_bytes"].get<double>() / 1048576.0, out["peak_bytes"].get<double>() / 1048576.0);
  std::printf("re-prefill p50 %.1f ms | resume p50 %.2f ms p99 %.2f ms (%s page cache) | speed-up %.0fx\n",
              out["reprefill_ms_p50"].get<double>(), out["resume_ms_p50"].get<double>(),
              out["resume_ms_p99"].get<double>(), a.flag({"--warm"}) ? "warm" : "cold", out["speedup_p50"].get<double>());
  std::printf("restore alone (checkout: chunks back in the cache) p50 %.2f ms; the rest is the new tokens' forward pass\n",
              out["restore_ms_p50"].get<double>());
  std::printf("chunks: %lld from memory, %lld from disk, %lld recomputed | disk written %.1f MB, read %.1f MB\n",
              static_cast<long long>(out["chunks_from_memory"].get<int64_t>()),
              static_cast<long long>(out["chunks_from_disk"].get<int64_t>()),
              static_cast<long long>(out["chunks_recomputed"].get<int64_t>()),
              out["disk_bytes_written"].get<double>() / 1048576.0, out["disk_bytes_read"].get<double>() / 1048576.0);
  if (out.contains("chunk_sensitivity"))
    std::printf("attention score vs damage of one chunk in int2: Spearman %.2f over %zu chunks\n",
                out["chunk_sensitivity"]["spearman_score_vs_damage"].get<double>(),
                out["chunk_sensitivity"]["scores"].size());
  if (out.contains("accuracy"))
    for (const auto& r : out["accuracy"])
      std::printf("%-12s %5.2f bits  ppl %.4f (%+.3f%%)  logit deviation max %.4f mean %.5f  chunks %s\n",
                  r["policy"].get<std::string>().c_str(), r["bits_per_value"].get<double>(), r["ppl"].get<double>(),
                  r["ppl_change_pct"].get<double>(), r["max_logit_dev"].get<double>(), r["mean_logit_dev"].get<double>(),
                  r["chunks"].dump().c_str());
  return 0;
}

}  // namespace onellm::cli
