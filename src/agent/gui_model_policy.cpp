// A model as the GUI agent's policy. Every action it returns is valid on the
// current screen, by one of two decodings: generation under the grammar of
// the screen's action schema (the default), or a choice among the schema's
// concrete actions (each index, direction and app filled in; typed text from
// the task's quoted strings) by their likelihood after the prompt.
#include <cmath>
#include <map>

#include "agent/gui_agent.h"
#include "base/error.h"
#include "engine/engine.h"
#include "engine/json_schema.h"

namespace onellm {

using nlohmann::json;

namespace {

std::vector<int32_t> prompt_tokens(Sequence& seq, const std::string& prompt) {
  const Tokenizer& tok = seq.tokenizer();
  const std::string source = seq.model().gguf().get_string_or("tokenizer.chat_template", "");
  if (source.empty()) return tok.encode(prompt, true, false);
  ChatTemplate tmpl(source);
  return chat_prompt_tokens(tok, tmpl, {{"user", prompt, {}}});
}

// Quoted parts of the task ("..." or '...'), what input_text would type.
std::vector<std::string> quoted_strings(const std::string& goal) {
  std::vector<std::string> out;
  for (char q : {'"', '\''}) {
    size_t start = 0;
    while ((start = goal.find(q, start)) != std::string::npos) {
      size_t end = goal.find(q, start + 1);
      if (end == std::string::npos) break;
      if (end > start + 1) out.push_back(goal.substr(start + 1, end - start - 1));
      start = end + 1;
    }
  }
  return out;
}

std::vector<json> candidate_actions(const GuiPolicyInput& in) {
  std::vector<json> c;
  const auto texts = quoted_strings(in.goal);
  for (size_t i = 0; i < in.screen.elements.size(); ++i) {
    const ScreenElement& e = in.screen.elements[i];
    if (e.tag == "input") {
      for (const std::string& t : texts) c.push_back({{"action_type", "input_text"}, {"index", i}, {"text", t}});
      c.push_back({{"action_type", "click"}, {"index", i}});
    } else if (e.tag == "scroller") {
      for (const char* d : {"down", "up"}) c.push_back({{"action_type", "scroll"}, {"index", i}, {"direction", d}});
    } else {
      c.push_back({{"action_type", "click"}, {"index", i}});
    }
  }
  for (const char* a : {"navigate_back", "navigate_home", "keyboard_enter", "wait"}) c.push_back({{"action_type", a}});
  for (const std::string& app : in.apps) c.push_back({{"action_type", "open_app"}, {"app_name", app}});
  for (const char* s : {"complete", "infeasible"}) c.push_back({{"action_type", "status"}, {"goal_status", s}});
  return c;
}

float log_softmax_at(const std::vector<float>& logits, int32_t id) {
  float mx = logits[0];
  for (float l : logits) mx = std::max(mx, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l - mx));
  return static_cast<float>(logits[static_cast<size_t>(id)] - mx - std::log(sum));
}

GuiPolicy ranked_policy(Sequence& seq);

}  // namespace

GuiPolicy model_gui_policy(Sequence& seq, const SamplingParams& sampling, GuiDecoding decoding) {
  if (decoding == GuiDecoding::kRanked) return ranked_policy(seq);
  // Schemas repeat (same element count and apps), so compiled grammars are kept.
  auto grammars = std::make_shared<std::map<std::string, std::shared_ptr<const Grammar>>>();
  return [&seq, sampling, grammars](const GuiPolicyInput& in) -> std::string {
    const std::string key = in.schema.dump();
    auto it = grammars->find(key);
    if (it == grammars->end())
      it = grammars->emplace(key, Grammar::parse(json_schema_to_gbnf(nlohmann::ordered_json::parse(key)))).first;
    GenerationRequest req;
    req.prompt = prompt_tokens(seq, in.prompt);
    // Enough for the longest action the schema allows (text of 200 escaped characters).
    req.max_tokens = 1536;
    req.sampling = sampling;
    req.grammar = it->second;
    if (req.prompt.size() + 64 > static_cast<size_t>(seq.n_ctx()))
      throw Error("gui-agent: the prompt does not fit the model's context (" + std::to_string(req.prompt.size()) +
                  " tokens, context " + std::to_string(seq.n_ctx()) + ")");
    return seq.generate(req).text;
  };
}

namespace {

GuiPolicy ranked_policy(Sequence& seq) {
  return [&seq](const GuiPolicyInput& in) -> std::string {
    const std::vector<int32_t> prompt = prompt_tokens(seq, in.prompt);
    std::string best;
    double best_score = -INFINITY;
    for (const json& cand : candidate_actions(in)) {
      const std::string text = cand.dump();
      std::vector<int32_t> tokens = prompt;
      const std::vector<int32_t> ct = seq.tokenizer().encode(text, false, false);
      if (prompt.size() + ct.size() >= static_cast<size_t>(seq.n_ctx())) continue;
      double score = 0;
      for (int32_t id : ct) {
        // The cached prefix is reused, so each step evaluates one new token.
        score += log_softmax_at(seq.prefill(tokens), id);
        tokens.push_back(id);
      }
      if (score > best_score) {
        best_score = score;
        best = text;
      }
    }
    if (best.empty()) throw Error("gui-agent: the prompt does not fit the model's context (" + std::to_string(prompt.size()) +
                                  " tokens, context " + std::to_string(seq.n_ctx()) + ")");
    return best;
  };
}

}  // namespace

GuiReflector model_gui_reflector(Sequence& seq, const SamplingParams& sampling) {
  return [&seq, sampling](const GuiPolicyInput& in) -> std::string {
    GenerationRequest req;
    req.prompt = prompt_tokens(seq, in.prompt);
    req.max_tokens = 40;
    req.sampling = sampling;
    req.stop = {"\n"};
    if (req.prompt.size() + 40 >= static_cast<size_t>(seq.n_ctx())) return "";
    return seq.generate(req).text;
  };
}

}  // namespace onellm
