// run and chat: text generation from the command line.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "cli/commands.h"
#include "engine/infill.h"
#include "engine/json_schema.h"
#include "engine/prompt_lookup.h"
#include "service/reasoning.h"
#include "engine/copy_bias.h"
#include "engine/tool_calls.h"
#include "tokenizer/chat_template.h"

namespace onellm::cli {
namespace {

const std::set<std::string> kGenerateValueOptions = {
    "-m", "--model", "-p", "--prompt", "-f", "--file", "-n", "--n-predict", "--max-tokens", "-t", "--threads",
    "-c", "--ctx-size", "-b", "--batch-size", "--temp", "--temperature", "--top-k", "--top-p", "--min-p",
    "--repeat-penalty", "--repeat-last-n", "--presence-penalty", "--frequency-penalty", "-s", "--seed", "--stop",
    "--chat-template", "--system", "-sys", "--grammar", "--grammar-file", "--json-schema", "--kv-type", "-ctk",
    "--lora", "--copy-bias", "--min-call-prob", "--tools", "--tool-choice", "--chat-template-kwargs",
    "--suffix", "--typical", "--xtc-probability", "--xtc-threshold", "--mirostat", "--mirostat-ent", "--mirostat-lr",
    "--dry-multiplier", "--dry-base", "--dry-allowed-length", "--dry-penalty-last-n", "--dry-sequence-breaker",
    "--top-nsigma", "--top-n-sigma", "--lookup-draft", "--prediction", "--prediction-file"};
const std::set<std::string> kGenerateFlags = {"--json", "--chat", "--ignore-eos", "--exact", "--no-escape", "-e", "--escape",
                                               "--verbose-prompt", "--no-display-prompt", "--no-builtin-tools", "-h", "--help"};

std::string json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void print_timings(const GenerationResult& r) {
  double pp = r.prompt_seconds > 0 ? r.n_prompt_evaluated / r.prompt_seconds : 0;
  double tg = r.generate_seconds > 0 ? r.tokens.size() / r.generate_seconds : 0;
  std::fprintf(stderr, "\nprompt: %lld tokens in %.3f s (%.1f tok/s) | generated: %zu tokens in %.3f s (%.1f tok/s) | %s\n",
               static_cast<long long>(r.n_prompt_evaluated), r.prompt_seconds, pp, r.tokens.size(),
               r.generate_seconds, tg, finish_reason_name(r.finish));
  if (r.draft_tokens > 0)
    std::fprintf(stderr, "prompt lookup: %lld of %lld guessed tokens were right\n",
                 static_cast<long long>(r.draft_accepted), static_cast<long long>(r.draft_tokens));
}

// A JSON option given inline (it starts with `opener` and names no file) or
// as a file; `where` names it in errors (the flag, or the file's path).
struct OptionText {
  std::string text, where;
};
OptionText option_text(const std::string& value, char opener, const std::string& flag) {
  if (!value.empty() && value[0] == opener && !std::ifstream(value)) return {value, flag};
  return {read_text_file(value), value};
}

// --grammar FILE (GBNF) or --json-schema FILE|JSON: the output must match.
std::shared_ptr<const Grammar> grammar_from_args(const Args& a) {
  auto grammar = a.get({"--grammar", "--grammar-file"});
  auto schema = a.get({"--json-schema"});
  if (grammar && schema) throw Error("--grammar and --json-schema cannot be combined");
  if (grammar) return Grammar::parse(read_text_file(*grammar));
  if (!schema) return nullptr;
  const OptionText given = option_text(*schema, '{', "--json-schema");
  try {
    return Grammar::parse(json_schema_text_to_gbnf(given.text));
  } catch (const Error& e) {
    throw Error(given.where + ": " + e.what());
  }
}

// --tools FILE|JSON: OpenAI tool definitions (an array) for a chat. The model
// is shown them as `serve` shows them, and a call it starts is held to their
// names and parameter schemas by a lazy grammar, as serve does for
// tool_choice "auto": plain answers stay free. --tool-choice required or a
// tool's name makes the whole reply a call.
struct ChatTools {
  std::vector<ToolSpec> specs;
  nlohmann::ordered_json json;
  ToolCallStyle style = ToolCallStyle::kHermes;
  bool template_renders = false;
  ToolCallConstraint constraint;

  void show(std::vector<ChatMessage>& messages, ChatTemplateOptions& options) const {
    add_tools_to_messages(specs, json, style, template_renders, messages, options);
  }
};

// A request held to `c` (no grammar when c has none).
void hold_to(const ToolCallConstraint& c, GenerationRequest& req) {
  req.grammar = c.grammar;
  req.grammar_triggers = c.triggers;
}

// Without --tools, a call the model starts keeps to its built-in tools
// (onellm.builtin_tools; not shown to it), as serve does; --no-builtin-tools
// leaves it free (an empty constraint).
ToolCallConstraint builtin_tools_from_args(const Args& a, const LoadedModel& m, const std::string& template_source) {
  if (a.flag({"--no-builtin-tools"})) return {};
  return builtin_tool_constraint(m.model->gguf(), tool_call_style(template_source));
}

std::optional<ChatTools> tools_from_args(const Args& a, const std::string& template_source) {
  auto arg = a.get({"--tools"});
  const auto choice_arg = a.get({"--tool-choice"});
  if (!arg) {
    if (choice_arg) throw Error("--tool-choice needs --tools");
    return std::nullopt;
  }
  if (a.get({"--grammar", "--grammar-file"}) || a.get({"--json-schema"}))
    throw Error("--tools cannot be combined with --grammar or --json-schema");
  const OptionText given = option_text(*arg, '[', "--tools");
  const std::string& where = given.where;
  ChatTools t;
  try {
    t.json = nlohmann::ordered_json::parse(given.text);
    t.specs = parse_tool_specs(t.json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": not JSON: " + e.what());
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  if (t.specs.empty()) throw Error(where + ": no tools in the array");
  // --tool-choice: OpenAI's tool_choice, a function given by its name.
  ToolChoice choice;
  if (choice_arg) {
    try {
      choice = parse_tool_choice(tool_choice_json(*choice_arg), t.specs);
    } catch (const Error& e) {
      throw Error("--tool-choice " + *choice_arg + ": " + e.what());
    }
  }
  if (choice.mode == ToolChoice::kNone) return std::nullopt;  // as serve: tools neither shown nor called
  t.style = tool_call_style(template_source);
  t.template_renders = template_renders_tools(template_source);
  t.constraint = tool_call_constraint(t.style, t.specs, choice, /*parallel=*/true);
  return t;
}

}  // namespace

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 8u));
}

LoadedModel load_model(const std::string& path, int n_threads, const std::string& lora_path) {
  LoadedModel m;
  m.model = Model::load(path);
  if (!lora_path.empty()) m.model->set_lora(LoraWeights::load(lora_path, *m.model));
  // The tokenizer first: the metadata arrays it copies are freed before the
  // weights are read in, so the two never add up in the peak.
  m.tokenizer = Tokenizer::from_gguf(m.model->gguf());
  m.model->release_tokenizer_metadata();
  // Large files: read them in now, with a bar on a terminal, rather than
  // stalling the first token on page faults.
  const GgufFile& file = m.model->gguf();
  if (file.file_size() >= (size_t{64} << 20)) {
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    m.model->prefetch([&](double f) {
      if (!tty) return;
      int filled = static_cast<int>(f * 40);
      std::fprintf(stderr, "\rloading %s [%.*s%*s] %3d%%", path.c_str(), filled,
                   "========================================", 40 - filled, "", static_cast<int>(f * 100));
      if (f >= 1.0) std::fputc('\n', stderr);
    });
  }
  m.pool = std::make_unique<ThreadPool>(n_threads > 0 ? n_threads : default_threads());
  return m;
}

TensorType kv_type_from_args(const Args& a) {
  const std::string name = a.get_or({"--kv-type", "-ctk"}, "f16");
  const TensorType t = tensor_type_from_name(name);  // throws for a name that is no type at all
  if (t != TensorType::F16 && t != TensorType::Q8_0 && t != TensorType::F32)
    throw Error("--kv-type must be f16, q8_0 or f32, not '" + name + "'");
  return t;
}

SamplingParams sampling_from_args(const Args& a) {
  SamplingParams p;
  p.temperature = static_cast<float>(a.get_double({"--temp", "--temperature"}, p.temperature));
  p.top_k = static_cast<int32_t>(a.get_int({"--top-k"}, p.top_k));
  p.top_p = static_cast<float>(a.get_double({"--top-p"}, p.top_p));
  p.min_p = static_cast<float>(a.get_double({"--min-p"}, p.min_p));
  p.repeat_penalty = static_cast<float>(a.get_double({"--repeat-penalty"}, p.repeat_penalty));
  p.repeat_last_n = static_cast<int32_t>(a.get_int({"--repeat-last-n"}, p.repeat_last_n));
  p.presence_penalty = static_cast<float>(a.get_double({"--presence-penalty"}, p.presence_penalty));
  p.frequency_penalty = static_cast<float>(a.get_double({"--frequency-penalty"}, p.frequency_penalty));
  p.seed = static_cast<uint64_t>(a.get_int({"-s", "--seed"}, static_cast<long long>(p.seed)));
  p.typical_p = static_cast<float>(a.get_double({"--typical"}, p.typical_p));
  p.xtc_probability = static_cast<float>(a.get_double({"--xtc-probability"}, p.xtc_probability));
  p.xtc_threshold = static_cast<float>(a.get_double({"--xtc-threshold"}, p.xtc_threshold));
  p.mirostat = static_cast<int32_t>(a.get_int({"--mirostat"}, p.mirostat));
  p.mirostat_tau = static_cast<float>(a.get_double({"--mirostat-ent"}, p.mirostat_tau));
  p.mirostat_eta = static_cast<float>(a.get_double({"--mirostat-lr"}, p.mirostat_eta));
  p.top_n_sigma = static_cast<float>(a.get_double({"--top-nsigma", "--top-n-sigma"}, p.top_n_sigma));
  p.dry_multiplier = static_cast<float>(a.get_double({"--dry-multiplier"}, p.dry_multiplier));
  p.dry_base = static_cast<float>(a.get_double({"--dry-base"}, p.dry_base));
  p.dry_allowed_length = static_cast<int32_t>(a.get_int({"--dry-allowed-length"}, p.dry_allowed_length));
  p.dry_penalty_last_n = static_cast<int32_t>(a.get_int({"--dry-penalty-last-n"}, p.dry_penalty_last_n));
  // As llama-cli: given breakers replace the defaults; "none" leaves none.
  if (const std::vector<std::string> breakers = a.get_all("--dry-sequence-breaker"); !breakers.empty()) {
    p.dry_sequence_breakers.clear();
    for (const std::string& b : breakers)
      if (b != "none") p.dry_sequence_breakers.push_back(process_escapes(b));
  }
  return p;
}

// --copy-bias B: copy-aware decoding of tool-call arguments from the chat's
// last user message (engine/copy_bias.h); default: the model's own.
CopyBiasOptions copy_bias_from_args(const Args& a, const LoadedModel& m, const std::string& template_source,
                                    const std::vector<ChatMessage>& messages) {
  CopyBiasOptions copy;
  copy.bias = a.get({"--copy-bias"}) ? checked_copy_bias(a.get_double({"--copy-bias"}, 0.0), "--copy-bias")
                                     : recommended_copy_bias(m.model->gguf());
  copy.source = tool_call_copy_source(messages);
  copy.triggers = tool_call_triggers(tool_call_style(template_source));
  copy.copy_arguments = recommended_copy_arguments(m.model->gguf());
  return copy;
}

// --min-call-prob P: a tool call starts only where the model gives it at
// least P (engine/call_gate.h); default: the model's own.
CallGateOptions call_gate_from_args(const Args& a, const LoadedModel& m, const std::string& template_source) {
  CallGateOptions gate;
  gate.min_probability = a.get({"--min-call-prob"})
                             ? checked_min_call_probability(a.get_double({"--min-call-prob"}, 0.0), "--min-call-prob")
                             : recommended_min_call_probability(m.model->gguf());
  gate.triggers = tool_call_triggers(tool_call_style(template_source));
  return gate;
}

std::string chat_template_source(const Args& a, const GgufFile& model_file) {
  if (auto name = a.get({"--chat-template"}))
    return std::ifstream(*name) ? read_text_file(*name) : builtin_chat_template(*name);
  std::string source = model_file.get_string_or("tokenizer.chat_template", "");
  if (source.empty()) {
    source = builtin_chat_template("chatml");
    std::fprintf(stderr, "note: the model has no chat template; using chatml (override with --chat-template)\n");
  }
  return source;
}

// --chat-template-kwargs JSON: template variables, e.g. '{"enable_thinking": false}' for Qwen3.
void template_kwargs_from_args(const Args& a, ChatTemplateOptions& options) {
  auto text = a.get({"--chat-template-kwargs"});
  if (!text) return;
  ChatJson kwargs = ChatJson::parse(*text, nullptr, false);
  if (kwargs.is_discarded()) throw Error("--chat-template-kwargs is not valid JSON: " + *text);
  add_template_kwargs(options, kwargs);
}

int run_command(int argc, char** argv) {
  Args a(argc, argv, 2, kGenerateValueOptions, kGenerateFlags);
  if (a.flag({"-h", "--help"})) {
    std::puts(
        "onellm run [-m MODEL] (-p PROMPT | -f FILE) [options]   (default model: the bundled one)\n"
        "  -n N             tokens to generate (-1: until end of generation or full context)\n"
        "  --temp T --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N\n"
        "  --presence-penalty X --frequency-penalty X -s SEED --stop STR (repeatable)\n"
        "  --typical P --xtc-probability P --xtc-threshold T --mirostat 1|2 --mirostat-ent TAU --mirostat-lr ETA\n"
        "  --top-nsigma N   keep the tokens within N standard deviations of the best logit\n"
        "  --dry-multiplier M --dry-base B --dry-allowed-length N --dry-penalty-last-n N (-1: all)\n"
        "                   DRY: penalize tokens that extend a repeat of more than N tokens\n"
        "  --dry-sequence-breaker S  (repeatable, escapes expanded; none: no breakers; default \\n : \" *)\n"
        "  --lookup-draft N prompt-lookup decoding: check up to N tokens guessed from the context (the\n"
        "                   tokens after the latest earlier match of the last 2-4) in each pass; same output\n"
        "  --prediction TEXT  (or --prediction-file F) text the output is expected to repeat (an edited\n"
        "                   file): guesses come from it first; --lookup-draft defaults to 8 then\n"
        "  -c N             context size (default: the model's, at most 4096)\n"
        "  -t N             threads    -b N  prompt batch size\n"
        "  --kv-type T      KV cache element type: f16 (default), q8_0, f32\n"
        "  --chat           the prompt is one user message, formatted by the model's chat template\n"
        "                   (--system TEXT adds a system message, --chat-template NAME|FILE overrides,\n"
        "                   --chat-template-kwargs JSON sets template variables: '{\"enable_thinking\": false}')\n"
        "  --copy-bias B    with --chat: add B to the logits of tokens that continue a span of the\n"
        "                   request inside a tool call's argument string (copy-aware decoding;\n"
        "                   default: the model's onellm.copy_bias, else 0)\n"
        "  --min-call-prob P  with --chat: a tool call starts only where the model gives the tokens\n"
        "                   that begin one at least probability P, else it answers in words\n"
        "                   (default: the model's onellm.min_call_probability, else 0: off)\n"
        "  --tools FILE     with --chat: OpenAI tool definitions (a JSON array, or the array inline);\n"
        "                   the model sees them and a call it writes keeps to their names and schemas\n"
        "  --tool-choice C  with --tools: auto (default: a call or a plain answer), required (a call),\n"
        "                   none (no tools), or a tool's name (a call of that tool)\n"
        "  --no-builtin-tools  with --chat and no --tools: a call the model writes is not held to its\n"
        "                   built-in tools (onellm.builtin_tools, not shown to it)\n"
        "  --json           print {\"prompt_tokens\",\"tokens\",\"text\"} instead of streaming text\n"
        "  --ignore-eos     keep generating after an end-of-generation token\n"
        "  --suffix TEXT    fill in the middle (code models): the prompt is the text before, TEXT after\n"
        "  --exact          F32 math on dequantized weights (reference) instead of the fast kernels\n"
        "  --no-escape      take the prompt literally (default: \\n, \\t ... are expanded like llama-cli)\n"
        "  --grammar FILE   constrain the output to a GBNF grammar (docs/grammar.md)\n"
        "  --json-schema F  constrain the output to JSON valid under the schema in file F (or inline JSON);\n"
        "                   stdout is then exactly the JSON document");
    return 0;
  }
  const std::string model_path = model_path_or_default(a);
  std::string prompt;
  if (auto p = a.get({"-p", "--prompt"})) prompt = *p;
  else if (auto f = a.get({"-f", "--file"})) prompt = read_text_file(*f);
  if (!a.flag({"--no-escape"})) prompt = process_escapes(prompt);

  LoadedModel m = load_model(model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)), a.get_or({"--lora"}, ""));
  GenerationRequest req;
  if (a.flag({"--chat"})) {
    // One user turn (after --system) through the model's chat template.
    std::vector<ChatMessage> messages;
    if (auto sys = a.get({"--system", "-sys"})) messages.push_back({"system", *sys, {}});
    messages.push_back({"user", prompt, {}});
    ChatTemplateOptions topts;
    topts.add_generation_prompt = true;
    template_kwargs_from_args(a, topts);
    const std::string template_source = chat_template_source(a, m.model->gguf());
    const std::optional<ChatTools> tools = tools_from_args(a, template_source);
    if (tools) tools->show(messages, topts);
    req.prompt = chat_prompt_tokens(*m.tokenizer, ChatTemplate(template_source), messages, topts);
    req.copy = copy_bias_from_args(a, m, template_source, messages);
    req.call_gate = call_gate_from_args(a, m, template_source);
    if (tools) hold_to(tools->constraint, req);
    else if (!a.get({"--tools"}) && !a.get({"--grammar", "--grammar-file"}) && !a.get({"--json-schema"}))
      hold_to(builtin_tools_from_args(a, m, template_source), req);
  } else if (auto suffix = a.get({"--suffix"})) {
    // Fill-in-the-middle: the prompt is the code before the cursor.
    InfillInput in;
    in.prefix = prompt;
    in.suffix = a.flag({"--no-escape"}) ? *suffix : process_escapes(*suffix);
    req.prompt = infill_tokens(*m.tokenizer, in, INT64_MAX);  // the context's check below names both lengths
  } else {
    if (a.get({"--tools"})) throw Error("--tools needs --chat (the tools go into the chat template)");
    req.prompt = m.tokenizer->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  if (req.prompt.empty())
    throw Error("the prompt is empty and the model adds no BOS token, so there is nothing to continue from");
  req.max_tokens = a.get_int({"-n", "--n-predict", "--max-tokens"}, -1);
  req.sampling = sampling_from_args(a);
  if (a.get({"--prediction"}) && a.get({"--prediction-file"}))
    throw Error("--prediction and --prediction-file both give the prediction; use one");
  std::optional<std::string> prediction = a.get({"--prediction"});
  if (prediction && !a.flag({"--no-escape"})) prediction = process_escapes(*prediction);
  if (auto f = a.get({"--prediction-file"})) prediction = read_text_file(*f);
  if (prediction) req.predicted = m.tokenizer->encode(*prediction, /*add_special=*/false, /*parse_special=*/false);
  req.lookup_draft = static_cast<int32_t>(a.get_int({"--lookup-draft"}, prediction ? kPredictionDraft : 0));
  req.stop = a.get_all("--stop");
  req.ignore_eos = a.flag({"--ignore-eos"});
  if (!req.grammar) req.grammar = grammar_from_args(a);

  SequenceOptions so;
  so.n_ctx = a.get_int({"-c", "--ctx-size"}, 0);
  so.n_batch = a.get_int({"-b", "--batch-size"}, 512);
  so.math = a.flag({"--exact"}) ? MathMode::kExact : MathMode::kFast;
  so.kv_type = kv_type_from_args(a);
  Sequence seq(*m.model, *m.tokenizer, m.pool.get(), so);

  const bool json = a.flag({"--json"});
  GenerationResult r = seq.generate(req, [&](std::string_view text) {
    if (!json) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (json) {
    nlohmann::json out;
    out["prompt_tokens"] = req.prompt;
    out["tokens"] = r.tokens;
    const std::string lookup = req.lookup_draft > 0 ? ",\"draft_tokens\":" + std::to_string(r.draft_tokens) +
                                                          ",\"draft_accepted\":" + std::to_string(r.draft_accepted)
                                                    : "";
    std::printf("{\"prompt_tokens\":%s,\"tokens\":%s,\"text\":%s%s}\n", out["prompt_tokens"].dump().c_str(),
                out["tokens"].dump().c_str(), json_string(r.text).c_str(), lookup.c_str());
  }
  print_timings(r);
  // A lazy grammar (--tools) binds only once a call starts, and a plain
  // answer cut by -n is no error; only a whole-output grammar is checked.
  if (req.grammar && req.grammar_triggers.empty() && r.finish != FinishReason::kEndOfGeneration &&
      r.finish != FinishReason::kStopString) {
    std::fprintf(stderr, "error: generation ended (%s) before the grammar was complete; raise -n\n",
                 finish_reason_name(r.finish));
    return 1;
  }
  return 0;
}

int chat_command(int argc, char** argv) {
  Args a(argc, argv, 2, kGenerateValueOptions, kGenerateFlags);
  if (a.flag({"-h", "--help"})) {
    std::puts(
        "onellm chat [-m MODEL] [options]   (default model: the bundled one)\n"
        "  Reads one user message per line from stdin and answers it through the model's chat template,\n"
        "  keeping the conversation. /reset forgets it (a --system message stays), /exit or /quit ends.\n"
        "  --system TEXT    a system message first     --chat-template NAME|FILE  override the template\n"
        "  --chat-template-kwargs JSON  template variables, e.g. '{\"enable_thinking\": false}' (Qwen3)\n"
        "  --tools FILE     OpenAI tool definitions (a JSON array, or inline): shown to the model, and a\n"
        "                   call it writes keeps to their names and schemas\n"
        "  --tool-choice C  auto (default), required, none, or a tool's name: as OpenAI's tool_choice\n"
        "  --copy-bias B    copy-aware decoding of tool-call arguments (default: the model's)\n"
        "  --min-call-prob P  a tool call only where the model is this sure of one (default: the model's)\n"
        "  --no-builtin-tools  without --tools, calls are not held to the model's built-in tools\n"
        "  -n N --temp T --top-k K --top-p P --min-p P --repeat-penalty R -s SEED --stop STR\n"
        "  -c N -t N --kv-type T --lora FILE   as for onellm run (onellm run --help)");
    return 0;
  }
  const std::string model_path = model_path_or_default(a);
  LoadedModel m = load_model(model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)), a.get_or({"--lora"}, ""));

  ChatTemplate tmpl(chat_template_source(a, m.model->gguf()));
  ChatTemplateOptions topts;
  topts.add_generation_prompt = true;
  template_kwargs_from_args(a, topts);

  SequenceOptions so;
  so.n_ctx = a.get_int({"-c", "--ctx-size"}, 0);
  so.kv_type = kv_type_from_args(a);
  Sequence seq(*m.model, *m.tokenizer, m.pool.get(), so);
  std::vector<ChatMessage> messages;
  if (auto sys = a.get({"--system", "-sys"})) messages.push_back({"system", *sys, {}});
  const std::optional<ChatTools> tools = tools_from_args(a, tmpl.source());
  if (tools) tools->show(messages, topts);  // once: a system message /reset keeps
  // Compiled once; used when no --tools is given.
  const ToolCallConstraint builtin = tools ? ToolCallConstraint{} : builtin_tools_from_args(a, m, tmpl.source());
  const bool tty = ::isatty(STDIN_FILENO) != 0, out_tty = ::isatty(STDOUT_FILENO) != 0;
  std::string line;
  while (true) {
    if (tty) std::fputs("\n> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages.erase(messages.begin() + (messages.empty() || messages[0].role != "system" ? 0 : 1), messages.end());
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({"user", line, {}});
    GenerationRequest req;
    req.prompt = chat_prompt_tokens(*m.tokenizer, tmpl, messages, topts);
    req.max_tokens = a.get_int({"-n", "--n-predict", "--max-tokens"}, -1);
    req.sampling = sampling_from_args(a);
    req.lookup_draft = static_cast<int32_t>(a.get_int({"--lookup-draft"}, 0));
    req.stop = a.get_all("--stop");
    req.ignore_eos = a.flag({"--ignore-eos"});
    req.copy = copy_bias_from_args(a, m, tmpl.source(), messages);
    req.call_gate = call_gate_from_args(a, m, tmpl.source());
    if (tools) hold_to(tools->constraint, req);
    else hold_to(builtin, req);
    // A thinking model's <think> part is shown dimmed on a terminal (piped
    // output stays as generated), and goes back into the history as
    // reasoning_content, as an OpenAI client sends it.
    const ReasoningFormat thinking = reasoning_format(tmpl.source(), *m.tokenizer, req.prompt);
    ReasoningStream stream(thinking);
    bool dim = false;
    auto show = [&](const ReasoningSplit& part) {
      for (const auto& [text, in_thought] : {std::pair{&part.reasoning, true}, std::pair{&part.content, false}}) {
        if (text->empty()) continue;
        if (out_tty && in_thought != dim) std::fputs(in_thought ? "\x1b[2m" : "\x1b[0m", stdout);
        dim = in_thought;
        std::fwrite(text->data(), 1, text->size(), stdout);
      }
      std::fflush(stdout);
    };
    GenerationResult r = seq.generate(req, [&](std::string_view text) {
      if (!thinking.active || !out_tty) {  // piped: the text as generated
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      } else {
        show(stream.feed(text));
      }
      return true;
    });
    if (thinking.active && out_tty) show(stream.finish());
    if (dim) std::fputs("\x1b[0m", stdout);
    std::fputs("\n", stdout);
    const ReasoningSplit split = split_reasoning(r.text, thinking);
    ChatMessage reply{"assistant", thinking.active ? split.content : r.text, {}};
    if (thinking.active && !split.reasoning.empty()) reply.extra["reasoning_content"] = split.reasoning;
    messages.push_back(std::move(reply));
  }
  return 0;
}

}  // namespace onellm::cli
