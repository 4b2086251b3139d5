// onellm perplexity: llama-perplexity's measure (chunks of -c tokens, the
// second half of each scored) on a text file, and the KL divergence of a
// model (a quantization) from a base model's saved log-probabilities.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "engine/perplexity.h"

namespace onellm::cli {

int perplexity_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-m", "--model", "-f", "--file", "-c", "--ctx-size", "-b", "--batch-size", "-t",
                         "--threads", "--chunks", "--kl-divergence-base", "--lora"},
         {"--exact", "--kl-divergence", "--json"});
  const std::string model_path = model_path_or_default(a);
  const auto file = a.get({"-f", "--file"});
  if (!file)
    throw Error("usage: onellm perplexity [-m MODEL] -f TEXT [-c 512] [-b N] [--chunks N] [--exact] [--json]\n"
                "       [--kl-divergence-base BASE [--kl-divergence]]  (without --kl-divergence: write BASE)");
  LoadedModel m = load_model(model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)),
                             a.get_or({"--lora"}, ""));
  const std::string text = read_text_file(*file);
  const std::vector<int32_t> tokens = m.tokenizer->encode(text, true, false);  // as llama-perplexity tokenizes

  PerplexityOptions o;
  o.n_ctx = a.get_int({"-c", "--ctx-size"}, 512);
  o.max_chunks = a.get_int({"--chunks"}, -1);
  if (auto base = a.get({"--kl-divergence-base"})) (a.flag({"--kl-divergence"}) ? o.compare_base : o.save_base) = *base;
  else if (a.flag({"--kl-divergence"})) throw Error("--kl-divergence needs --kl-divergence-base FILE");
  if (!o.compare_base.empty() && !a.get({"-c", "--ctx-size"})) o.n_ctx = perplexity_base_context(o.compare_base);
  SequenceOptions so;
  so.n_ctx = std::max<int64_t>(o.n_ctx, 4);
  so.math = a.flag({"--exact"}) ? MathMode::kExact : MathMode::kFast;
  so.n_batch = a.get_int({"-b", "--batch-size"}, so.n_batch);
  if (so.n_batch <= 0) throw Error("-b must be positive");
  Sequence seq(*m.model, *m.tokenizer, m.pool.get(), so);
  const bool json = a.flag({"--json"});
  std::fprintf(stderr, "perplexity: %zu tokens, chunks of %lld\n", tokens.size(),
               static_cast<long long>(o.n_ctx));
  PerplexityStats s = perplexity(seq, tokens, o, [&](const PerplexityStats& p) {
    if (json) return;
    std::printf("[%lld]%.4f,", static_cast<long long>(p.chunks), p.ppl);
    std::fflush(stdout);
  });
  if (json) {
    nlohmann::ordered_json out = {{"chunks", s.chunks}, {"scored_tokens", s.scored}, {"nll", s.nll},
                                  {"ppl", s.ppl}, {"ppl_error", s.ppl_error}, {"top1", s.top1}};
    if (s.compared)
      out["kl_divergence"] = {{"mean", s.kl.mean}, {"error", s.kl.error}, {"max", s.kl.max}, {"p99", s.kl.p99},
                              {"p90", s.kl.p90}, {"median", s.kl.median}, {"same_top", s.kl.same_top},
                              {"base_ppl", s.kl.base_ppl}, {"rms_dp", s.kl.rms_dp}};
    std::puts(out.dump().c_str());
    return 0;
  }
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f (%lld tokens scored in %lld chunks; top-1 %.2f %%)\n", s.ppl,
              s.ppl_error, static_cast<long long>(s.scored), static_cast<long long>(s.chunks), 100 * s.top1);
  if (!o.save_base.empty()) std::printf("base log-probabilities written to %s\n", o.save_base.c_str());
  if (s.compared) {
    std::printf("PPL(base) = %.4f, PPL/PPL(base) = %.4f\n", s.kl.base_ppl, s.ppl / s.kl.base_ppl);
    std::printf("KL divergence: mean %.6f +/- %.6f, median %.6f, 90%% %.6f, 99%% %.6f, max %.6f\n", s.kl.mean,
                s.kl.error, s.kl.median, s.kl.p90, s.kl.p99, s.kl.max);
    std::printf("same top token: %.3f %%, RMS change in p(right token): %.3f %%\n", 100 * s.kl.same_top,
                100 * s.kl.rms_dp);
  }
  return 0;
}

}  // namespace onellm::cli
