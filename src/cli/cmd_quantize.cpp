// onellm quantize IN.gguf OUT.gguf TYPE: a model in another type or mix
// (model/quantize.h), like llama-quantize.
#include <chrono>
#include <cstdio>
#include <map>

#include <unistd.h>

#include "base/error.h"
#include "cli/commands.h"
#include "model/quantize.h"

namespace onellm::cli {
namespace {

const char kQuantizeUsage[] =
    "usage: onellm quantize IN.gguf OUT.gguf TYPE [-t N] [--output-type T] [--token-embedding-type T]\n"
    "                       [--pure] [--allow-requantize] [--dry-run]\n"
    "  TYPE: %s\n"
    "  (Q4_K means Q4_K_M, Q5_K Q5_K_M, Q3_K Q3_K_M.) Mixes give the output and some attn_v/ffn_down\n"
    "  layers more bits, as llama-quantize does; --pure gives every matrix TYPE's base type.\n"
    "  --output-type / --token-embedding-type: the type of output.weight (or the tied embedding) and\n"
    "  of token_embd.weight. --dry-run prints the plan without writing.\n";

std::string type_name(TensorType t) { return tensor_type_name(static_cast<uint32_t>(t)); }

// "F32 x121 Q4_K x12 ..." for a list of types.
std::string type_counts(const std::vector<TensorPlan>& plan, bool target) {
  std::map<std::string, int> counts;
  for (const TensorPlan& p : plan) counts[type_name(target ? p.to : p.from)]++;
  std::string out;
  for (const auto& [name, n] : counts) out += (out.empty() ? "" : " ") + name + " x" + std::to_string(n);
  return out;
}

}  // namespace

int quantize_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-t", "--threads", "--output-type", "--token-embedding-type"},
         {"--pure", "--allow-requantize", "--dry-run", "-h", "--help"});
  if (a.flag({"-h", "--help"}) || a.positional().size() != 3) {
    std::fprintf(a.flag({"-h", "--help"}) ? stdout : stderr, kQuantizeUsage, quantize_recipe_names().c_str());
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  const std::string& in_path = a.positional()[0];
  const std::string& out_path = a.positional()[1];
  QuantizeOptions o;
  o.recipe = quantize_recipe(a.positional()[2]).name;
  if (auto t = a.get({"--output-type"})) o.output_type = tensor_type_from_name(*t);
  if (auto t = a.get({"--token-embedding-type"})) o.token_embedding_type = tensor_type_from_name(*t);
  o.pure = a.flag({"--pure"});
  o.allow_requantize = a.flag({"--allow-requantize"});

  auto in = GgufFile::open(in_path);
  if (a.flag({"--dry-run"})) {
    for (const TensorPlan& p : plan_quantization(*in, o))
      std::printf("%-40s %-6s -> %-6s%s\n", p.name.c_str(), type_name(p.from).c_str(), type_name(p.to).c_str(),
                  p.fallback ? "  (fallback: rows not whole blocks)" : p.converted ? "" : "  (copied)");
    return 0;
  }
  const int n_threads = static_cast<int>(a.get_int({"-t", "--threads"}, default_threads()));
  if (n_threads < 1) throw Error("-t must be at least 1");
  ThreadPool pool(n_threads);
  const auto start = std::chrono::steady_clock::now();
  // The progress line redraws itself with \r: only on a terminal (a log file would keep every redraw).
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  int last_percent = -1;
  const QuantizeReport r = quantize_gguf(*in, out_path, o, &pool, [&](uint64_t done, uint64_t total) {
    const int percent = total == 0 ? 100 : static_cast<int>(100 * done / total);
    if (tty && percent / 10 != last_percent / 10) std::fprintf(stderr, "\rquantizing: %3d %%", percent);
    last_percent = percent;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int fallbacks = 0;
  for (const TensorPlan& p : r.plan) fallbacks += p.fallback;
  std::fprintf(stderr, "%swrote %s (%s): %.2f MiB -> %.2f MiB of tensors in %.1f s on %d threads\n",
               tty ? "\r" : "", out_path.c_str(), o.recipe.c_str(), r.in_bytes / 1048576.0, r.out_bytes / 1048576.0,
               seconds, n_threads);
  std::fprintf(stderr, "  tensors: %s -> %s", type_counts(r.plan, false).c_str(), type_counts(r.plan, true).c_str());
  if (fallbacks > 0) std::fprintf(stderr, " (%d with a fallback type: rows not whole 256-blocks)", fallbacks);
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace onellm::cli
