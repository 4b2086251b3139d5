// tokenize, logits, info, make-tiny-model: looking inside models.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <utility>

#include "base/error.h"
#include "cli/commands.h"
#include "engine/call_gate.h"
#include "engine/copy_bias.h"
#include "engine/tool_calls.h"

namespace onellm::cli {

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != 0) throw Error("--tokens: '" + item + "' is not a token id");
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

namespace {

std::string format_float(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", f);
  return buf;
}

}  // namespace

int tokenize_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-m", "--model", "--file", "-f"}, {"--add-special", "--parse-special"});
  const std::string model_path = model_path_or_default(a);
  auto file = GgufFile::open(model_path);
  auto tok = Tokenizer::from_gguf(*file);
  std::string input;
  if (auto f = a.get({"--file", "-f"})) {
    std::ifstream in(*f, std::ios::binary);
    if (!in) throw Error(*f + ": cannot open");
    input.assign(std::istreambuf_iterator<char>(in), {});
  } else {
    input.assign(std::istreambuf_iterator<char>(std::cin), {});
  }
  const bool add_special = a.flag({"--add-special"}), parse_special = a.flag({"--parse-special"});
  size_t start = 0;
  while (start < input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    std::vector<int32_t> ids = tok->encode(std::string_view(input).substr(start, end - start), add_special, parse_special);
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    start = end + 1;
  }
  return 0;
}

int logits_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"-m", "--model", "-p", "--prompt", "--tokens", "--top", "-t", "--threads", "-c", "--ctx-size", "--decode-from"},
         {"--no-escape", "--exact", "--fast"});
  const std::string model_path = model_path_or_default(a);
  // Exact F32 math on dequantized weights by default: this command is for
  // checking numbers. --fast shows what run/serve compute.
  LoadedModel m = load_model(model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)));
  std::vector<int32_t> tokens;
  if (auto t = a.get({"--tokens"})) {
    tokens = parse_token_list(*t);
  } else {
    std::string prompt = a.get_or({"-p", "--prompt"}, "");
    if (!a.flag({"--no-escape"})) prompt = process_escapes(prompt);
    tokens = m.tokenizer->encode(prompt, true, true);
  }
  const int64_t V = m.model->config().n_vocab;
  int64_t top = a.get_int({"--top"}, 20);
  if (top <= 0 || top > V) top = V;
  SequenceOptions so;
  so.n_ctx = std::max<int64_t>(a.get_int({"-c", "--ctx-size"}, 0), static_cast<int64_t>(tokens.size()));
  so.math = a.flag({"--fast"}) ? MathMode::kFast : MathMode::kExact;
  Sequence seq(*m.model, *m.tokenizer, m.pool.get(), so);
  // --decode-from N: one prompt pass over the first N tokens, then each later
  // token alone, as generation feeds them (the decode kernels and a growing
  // KV cache instead of the prompt path).
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t decode_from = a.get_int({"--decode-from"}, n_tokens);
  if (decode_from < 1 || decode_from > n_tokens)
    throw Error("--decode-from " + std::to_string(decode_from) + " is outside 1.." + std::to_string(n_tokens) +
                " (the number of tokens)");
  std::vector<float> logits =
      seq.all_logits(std::vector<int32_t>(tokens.begin(), tokens.begin() + decode_from));
  for (int64_t i = decode_from; i < n_tokens; ++i) {
    seq.eval(&tokens[static_cast<size_t>(i)], 1);
    logits.insert(logits.end(), seq.logits().begin(), seq.logits().end());
  }

  std::string out = "{\"tokens\":" + nlohmann::json(tokens).dump() + ",\"n_vocab\":" + std::to_string(V) +
                    ",\"positions\":[";
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    const float* row = logits.data() + pos * V;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int32_t x, int32_t y) { return row[x] > row[y] || (row[x] == row[y] && x < y); });
    out += (pos ? ",{" : "{") + std::string("\"pos\":") + std::to_string(pos) + ",\"top\":[";
    for (int64_t i = 0; i < top; ++i)
      out += (i ? ",[" : "[") + std::to_string(order[i]) + "," + format_float(row[order[i]]) + "]";
    out += "]}";
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

int info_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-m", "--model", "-c", "--ctx-size"}, {});
  std::string path = a.get_or({"-m", "--model"}, a.positional().empty() ? "" : a.positional()[0]);
  if (path.empty()) throw Error("usage: onellm info MODEL");
  auto model = Model::load(path);
  const ModelConfig& c = model->config();
  const GgufFile& f = model->gguf();
  std::map<std::string, int> type_counts;
  for (const GgufTensor& t : f.tensors()) type_counts[tensor_type_name(static_cast<uint32_t>(t.type))]++;
  const int64_t n_ctx = a.get_int({"-c", "--ctx-size"}, std::min<int64_t>(c.n_ctx_train, 4096));
  std::printf("file:            %s (GGUF v%u, %.2f MiB)\n", path.c_str(), f.version(), f.file_size() / 1048576.0);
  std::printf("name:            %s\n", c.name.c_str());
  std::printf("architecture:    %s\n", c.arch.c_str());
  std::printf("vocabulary:      %lld tokens (%s)\n", static_cast<long long>(c.n_vocab),
              f.get_string_or("tokenizer.ggml.model", "?").c_str());
  std::printf("embedding:       %lld\n", static_cast<long long>(c.n_embd));
  std::printf("layers:          %lld\n", static_cast<long long>(c.n_layer));
  std::printf("heads:           %lld (kv %lld, head size %lld)\n", static_cast<long long>(c.n_head),
              static_cast<long long>(c.n_head_kv), static_cast<long long>(c.head_dim));
  std::printf("feed-forward:    %lld\n", static_cast<long long>(c.n_ff));
  std::printf("context (train): %lld\n", static_cast<long long>(c.n_ctx_train));
  std::printf("rope:            %s, base %g, %lld dims, scale %g%s\n", c.rope_style == RopeStyle::kNeox ? "neox" : "normal",
              c.rope_base, static_cast<long long>(c.n_rot), c.rope_freq_scale, c.has_rope_freqs ? ", rope_freqs" : "");
  if (c.yarn)
    std::printf("rope scaling:    yarn from %lld tokens, pairs %g-%g ramped, magnitude %g\n",
                static_cast<long long>(c.yarn_orig_ctx), c.yarn_low, c.yarn_high, c.rope_mscale);
  else if (c.rope_mscale != 1.0f)
    std::printf("rope scaling:    magnitude %g\n", c.rope_mscale);
  std::printf("rms norm eps:    %g\n", c.rms_eps);
  std::printf("output:          %s\n", c.tied_output ? "tied to token embedding" : "separate");
  std::printf("parameters:      %llu (%.2f M)\n", static_cast<unsigned long long>(model->parameter_count()),
              model->parameter_count() / 1e6);
  if (const std::string recipe = f.file_type_name(); !recipe.empty()) std::printf("file type:       %s\n", recipe.c_str());
  std::printf("tensors:         %zu:", f.tensors().size());
  for (const auto& [name, count] : type_counts) std::printf(" %s x%d", name.c_str(), count);
  std::printf("\nmemory:          weights %.2f MiB (mapped) + KV cache %.2f MiB at context %lld\n",
              model->weight_bytes() / 1048576.0, model->kv_cache_bytes(n_ctx) / 1048576.0,
              static_cast<long long>(n_ctx));
  if (f.find(kCopyBiasKey))
    std::printf("copy bias:       %g (%s: run/chat/serve's default, engine/copy_bias.h)\n",
                recommended_copy_bias(f), kCopyBiasKey);
  if (f.find(kCopyArgumentsKey)) {
    std::printf("copied verbatim: ");
    const char* sep = "";
    for (const std::string& n : recommended_copy_arguments(f)) std::printf("%s%s", std::exchange(sep, ", "), n.c_str());
    std::printf(" (%s: values held to a span of the request, engine/copy_bias.h)\n", kCopyArgumentsKey);
  }
  if (f.find(kMinCallProbabilityKey))
    std::printf("min call prob:   %g (%s: run/chat/serve's default, engine/call_gate.h)\n",
                recommended_min_call_probability(f), kMinCallProbabilityKey);
  if (f.find(kBuiltinToolsKey)) {
    std::printf("built-in tools: ");
    const char* sep = "";
    for (const ToolSpec& t : builtin_tools(f)) std::printf("%s%s", std::exchange(sep, ", "), t.name.c_str());
    std::printf(" (%s: calls of chats without tools keep to them, engine/tool_calls.h)\n", kBuiltinToolsKey);
  }
  return 0;
}

int make_tiny_model_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"--arch", "--type", "--seed", "-o", "--output", "--n-embd", "--n-layer", "--n-head", "--n-head-kv", "--n-ff",
          "--n-vocab", "--n-ctx", "--head-dim"},
         {"--tied", "--rope-freqs"});
  TinyModelSpec s;
  s.arch = a.get_or({"--arch"}, s.arch);
  s.type = tensor_type_from_name(a.get_or({"--type"}, "F32"));
  s.seed = static_cast<uint64_t>(a.get_int({"--seed"}, 1));
  s.n_embd = a.get_int({"--n-embd"}, s.n_embd);
  s.n_layer = a.get_int({"--n-layer"}, s.n_layer);
  s.n_head = a.get_int({"--n-head"}, s.n_head);
  s.n_head_kv = a.get_int({"--n-head-kv"}, s.n_head_kv);
  s.n_ff = a.get_int({"--n-ff"}, s.n_ff);
  s.n_vocab = a.get_int({"--n-vocab"}, 0);
  s.n_ctx = a.get_int({"--n-ctx"}, s.n_ctx);
  s.head_dim = a.get_int({"--head-dim"}, 0);
  s.tied_output = a.flag({"--tied"});
  s.llama3_rope_freqs = a.flag({"--rope-freqs"});
  auto out = a.get({"-o", "--output"});
  if (!out) throw Error("no output file given (-o FILE)");
  write_tiny_model(s, *out);
  std::fprintf(stderr, "wrote %s\n", out->c_str());
  return 0;
}

}  // namespace onellm::cli
