#include "engine/infill.h"

#include <algorithm>

#include "base/error.h"

namespace onellm {

std::vector<int32_t> infill_tokens(const Tokenizer& tok, const InfillInput& in, int64_t budget) {
  const FimTokens& f = tok.fim();
  if (!f.usable())
    throw Error("this model has no fill-in-the-middle tokens (tokenizer.ggml.fim_pre/suf/mid_token_id, or texts "
                "such as <|fim_prefix|>): it is not a code model trained for infilling");
  auto text = [&](const std::string& s) { return tok.encode(s, false, false); };
  std::vector<int32_t> prefix = text(in.prefix), suffix = text(in.suffix), prompt = text(in.prompt);
  const bool bos = tok.add_bos() && tok.bos_id() >= 0;
  const int64_t fixed = 3 + static_cast<int64_t>(prompt.size()) + (bos ? 1 : 0);
  if (fixed > budget)
    throw Error("the infill prompt needs " + std::to_string(fixed) + " tokens before any code; the context leaves " +
                std::to_string(budget));

  // Prefix and suffix: the code nearest the cursor is kept (3:1 when cut).
  const int64_t room = budget - fixed;
  int64_t n_pre = static_cast<int64_t>(prefix.size()), n_suf = static_cast<int64_t>(suffix.size());
  if (n_pre + n_suf > room) {
    const int64_t suf_share = std::min(n_suf, std::max(room / 4, room - n_pre));
    n_suf = suf_share;
    n_pre = std::min(n_pre, room - n_suf);
  }
  prefix.erase(prefix.begin(), prefix.end() - n_pre);
  suffix.resize(static_cast<size_t>(n_suf));

  std::vector<int32_t> core;
  core.push_back(f.pre);
  core.insert(core.end(), prefix.begin(), prefix.end());
  core.push_back(f.suf);
  core.insert(core.end(), suffix.begin(), suffix.end());
  core.push_back(f.mid);
  core.insert(core.end(), prompt.begin(), prompt.end());

  // Other files: the repository pattern when the vocabulary has it, else a
  // plain separator; what does not fit is dropped from the front.
  std::vector<int32_t> extra;
  if (!in.extra.empty()) {
    if (f.rep >= 0) {
      extra.push_back(f.rep);
      const auto name = text(in.project + "\n");
      extra.insert(extra.end(), name.begin(), name.end());
    }
    for (const InfillFile& file : in.extra) {
      std::vector<int32_t> head;
      if (f.sep >= 0) {
        head.push_back(f.sep);
        const auto name = text(file.name + "\n");
        head.insert(head.end(), name.begin(), name.end());
      } else {
        head = text("\n\n--- " + file.name + " ---\n\n");
      }
      extra.insert(extra.end(), head.begin(), head.end());
      const auto body = text(f.sep >= 0 ? file.text + "\n" : file.text);
      extra.insert(extra.end(), body.begin(), body.end());
    }
    if (f.sep >= 0) {
      extra.push_back(f.sep);
      const auto name = text(in.file + "\n");
      extra.insert(extra.end(), name.begin(), name.end());
    }
    const int64_t left = budget - static_cast<int64_t>(core.size()) - (bos ? 1 : 0);
    if (static_cast<int64_t>(extra.size()) > left) extra.erase(extra.begin(), extra.end() - std::max<int64_t>(0, left));
  }
  std::vector<int32_t> out;
  if (bos) out.push_back(tok.bos_id());
  out.insert(out.end(), extra.begin(), extra.end());
  out.insert(out.end(), core.begin(), core.end());
  return out;
}

}  // namespace onellm
