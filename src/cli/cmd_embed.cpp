// onellm embed: the embedding of each input line, pooled and normalized as
// /v1/embeddings computes it (the same engine path: a Generation with
// GenerationRequest::embed).
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"

namespace onellm::cli {

int embed_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-m", "--model", "-p", "--prompt", "-f", "--file", "-t", "--threads", "-c", "--ctx-size",
                         "--pooling", "--tokens", "-b", "--batch-size"},
         {"--exact", "--no-normalize"});
  const std::string model_path = model_path_or_default(a);
  LoadedModel m = load_model(model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)));
  std::vector<std::vector<int32_t>> inputs;
  if (auto t = a.get({"--tokens"})) inputs.push_back(parse_token_list(*t));
  if (auto p = a.get({"-p", "--prompt"})) inputs.push_back(m.tokenizer->encode(*p, true, false));
  if (auto f = a.get({"-f", "--file"})) {
    std::ifstream in(*f);
    if (!in) throw Error(*f + ": cannot read");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) inputs.push_back(m.tokenizer->encode(line, true, false));
  }
  if (inputs.empty()) throw Error("usage: onellm embed [-m MODEL] (-p TEXT | -f FILE | --tokens 1,2,3) "
                                  "[--pooling mean|cls|last] [--no-normalize] [--exact] [-b N]");
  Pooling pooling = Pooling::kNone;
  if (auto p = a.get({"--pooling"})) {
    std::optional<Pooling> named = pooling_named(*p);
    if (!named) throw Error("--pooling " + *p + ": expected mean, cls or last");
    pooling = *named;
  } else {
    pooling = default_pooling(m.model->config());
  }
  SequenceOptions so;
  so.n_ctx = a.get_int({"-c", "--ctx-size"}, 0);
  for (const auto& tokens : inputs) so.n_ctx = std::max<int64_t>(so.n_ctx, static_cast<int64_t>(tokens.size()));
  so.math = a.flag({"--exact"}) ? MathMode::kExact : MathMode::kFast;
  so.n_batch = a.get_int({"-b", "--batch-size"}, so.n_batch);
  if (so.n_batch <= 0) throw Error("-b must be positive");
  Sequence seq(*m.model, *m.tokenizer, m.pool.get(), so);
  nlohmann::json out = {{"pooling", pooling_name(pooling)}, {"data", nlohmann::json::array()}};
  for (const auto& tokens : inputs) {
    GenerationRequest r;
    r.prompt = tokens;
    r.embed = pooling;
    r.embed_normalize = !a.flag({"--no-normalize"});
    out["data"].push_back({{"tokens", tokens.size()}, {"embedding", seq.generate(r).embedding}});
  }
  std::puts(out.dump().c_str());
  return 0;
}

}  // namespace onellm::cli
