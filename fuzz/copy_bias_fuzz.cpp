// Arbitrary model output followed by ArgumentCopyBias (engine/copy_bias.h),
// which lexes it as tool-call JSON: the first byte splits the input into the
// request (the copy source) and the output, fed in pieces of 1-4 bytes; after
// each piece the adjustment must name each token once, in order, inside the
// vocabulary, with one of the rule's amounts. The second bit of the first
// byte makes the argument one that is held to a span of the request.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/copy_bias.h"
#include "engine/grammar.h"
#include "fuzz_tokenizer.h"

namespace {

const std::shared_ptr<const onellm::GrammarVocab>& vocab() {
  static std::shared_ptr<const onellm::GrammarVocab> v =
      onellm::GrammarVocab::of(fuzz_tokenizer("/tmp/onellm-copy-bias-fuzz.gguf"));
  return v;
}

void check(const onellm::ArgumentCopyBias& c, float bias) {
  const onellm::CopyAdjustment adj = c.adjustment();
  int32_t last = -1;
  for (const auto& [id, amount] : adj.tokens) {
    if (id <= last || id >= vocab()->n_vocab()) std::abort();
    if (amount != bias && amount != bias / 4 && amount != 0.0f) std::abort();
    last = id;
  }
  if (adj.others != 0.0f && adj.others != -bias / 3 && adj.others != -onellm::CopyBiasOptions::kHeldToSpan)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = std::min(size_t(data[0]) % size, body.size());
  onellm::CopyBiasOptions o;
  o.bias = 10;
  o.source = body.substr(0, split);
  o.triggers = {"<tool_call>", "{\"name\""};
  if (data[0] & 2) o.copy_arguments = {"f.a"};
  onellm::ArgumentCopyBias c(o, vocab());
  // Half the inputs start inside an argument value, where the search runs.
  std::string output = data[0] & 1 ? "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"" : "";
  output += body.substr(split);
  std::vector<float> logits(size_t(vocab()->n_vocab()));
  for (size_t at = 0, n = 1; at < output.size(); at += n, n = n % 4 + 1) {
    c.feed(std::string_view(output).substr(at, n));
    check(c, o.bias);
    c.apply(logits.data(), logits.size());
  }
  return 0;
}
