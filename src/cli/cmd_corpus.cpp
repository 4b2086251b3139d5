// make-corpus: writes the device-assistant corpus rendered with onellm's
// chat template, as training text, the tokenizer's text (training text
// without argument values), held-out text and held-out prompts, and
// (--induction N) the copy-task documents of the first training phase.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "cli/commands.h"
#include "train/train.h"

namespace onellm::cli {
namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path.string() + ": cannot create");
  out << text;
  if (!out.flush()) throw Error(path.string() + ": write failed");
}

ChatJson messages_json(const std::vector<ChatMessage>& messages) {
  ChatJson out = ChatJson::array();
  for (const ChatMessage& m : messages) {
    ChatJson j{{"role", m.role}, {"content", m.content}};
    for (const auto& [k, v] : m.extra.items()) j[k] = v;
    out.push_back(std::move(j));
  }
  return out;
}

// Documents joined by EOS, which the corpus reader turns into its token;
// `drop_values`: each without its argument values (the tokenizer's text).
std::string render_corpus(const ChatTemplate& tpl, const std::vector<DeviceExample>& examples,
                          bool drop_values = false) {
  std::string text;
  for (const DeviceExample& ex : examples) {
    ChatTemplateOptions o;
    o.add_generation_prompt = false;
    o.tools = ex.tools;
    std::string doc = tpl.render(ex.messages, o);
    text += drop_values ? without_values(std::move(doc), ex.values) : doc;
    text += "<|endoftext|>";
  }
  return text;
}

// One JSON line per held-out example: the prompt up to the assistant's first
// turn, the completion the model should produce, and the expected calls.
std::string render_eval_lines(const ChatTemplate& tpl, const std::vector<DeviceExample>& examples) {
  std::string lines;
  for (const DeviceExample& ex : examples) {
    size_t user = 0;
    while (ex.messages[user].role != "user") ++user;
    std::vector<ChatMessage> prompt_messages(ex.messages.begin(), ex.messages.begin() + user + 1);
    ChatTemplateOptions o;
    o.tools = ex.tools;
    std::string prompt = tpl.render(prompt_messages, o);
    std::vector<ChatMessage> with_reply(ex.messages.begin(), ex.messages.begin() + user + 2);
    o.add_generation_prompt = false;
    std::string full = tpl.render(with_reply, o);
    if (full.compare(0, prompt.size(), prompt) != 0)
      throw Error("make-corpus: the chat template does not render the prompt as a prefix of the conversation");
    ChatJson line{{"messages", messages_json(prompt_messages)},
                  {"tools_listed", !ex.tools.is_null()},
                  {"prompt", prompt},
                  {"completion", full.substr(prompt.size())},
                  {"expected_calls", ex.expected_calls}};
    lines += line.dump() + "\n";
  }
  return lines;
}

}  // namespace

int make_corpus_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"--seed", "--out", "-o", "--train", "--heldout", "--p-tools", "--p-result", "--p-vary", "--p-mix", "--p-unknown", "--induction",
          "--induction-made-up", "--induction-quoted", "--induction-clock"},
         {});
  auto out = a.get({"--out", "-o"});
  if (!out) throw Error("no output directory given (--out DIR)");
  DeviceCorpusOptions o;
  o.seed = static_cast<uint64_t>(a.get_int({"--seed"}, 1));
  o.p_tools_listed = a.get_double({"--p-tools"}, o.p_tools_listed);
  o.p_tool_result = a.get_double({"--p-result"}, o.p_tool_result);
  o.p_vary_phrasing = a.get_double({"--p-vary"}, o.p_vary_phrasing);
  o.p_mix_phrasing = a.get_double({"--p-mix"}, o.p_mix_phrasing);
  o.p_unknown_word = a.get_double({"--p-unknown"}, o.p_unknown_word);
  const int64_t n_train = a.get_int({"--train"}, 20000), n_heldout = a.get_int({"--heldout"}, 1000);
  const int64_t n_induction = a.get_int({"--induction"}, 0);
  if (n_train < 0 || n_heldout < 0 || n_induction < 0)
    throw Error("--train, --heldout and --induction must not be negative");
  if (!(o.p_vary_phrasing >= 0 && o.p_vary_phrasing <= 1)) throw Error("--p-vary must be in [0, 1]");
  if (!(o.p_mix_phrasing >= 0 && o.p_mix_phrasing <= 1)) throw Error("--p-mix must be in [0, 1]");
  if (!(o.p_unknown_word >= 0 && o.p_unknown_word <= 1)) throw Error("--p-unknown must be in [0, 1]");
  const double p_made_up = a.get_double({"--induction-made-up"}, 0);
  if (!(p_made_up >= 0 && p_made_up <= 1)) throw Error("--induction-made-up must be in [0, 1]");
  const double p_quoted = a.get_double({"--induction-quoted"}, 0);
  if (!(p_quoted >= 0 && p_quoted <= 1)) throw Error("--induction-quoted must be in [0, 1]");
  const double p_clock = a.get_double({"--induction-clock"}, 0);
  if (!(p_clock >= 0 && p_clock <= 1)) throw Error("--induction-clock must be in [0, 1]");

  std::filesystem::path dir(*out);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create directory: " + ec.message());
  ChatTemplate tpl(onellm_chat_template());
  auto train = make_device_examples(o, false, n_train);
  auto heldout = make_device_examples(o, true, n_heldout);
  write_file(dir / "train.txt", render_corpus(tpl, train));
  write_file(dir / "tokenizer.txt", render_corpus(tpl, train, true));
  write_file(dir / "heldout.txt", render_corpus(tpl, heldout));
  write_file(dir / "heldout.jsonl", render_eval_lines(tpl, heldout));
  write_file(dir / "tools.json", device_tools().dump(1) + "\n");
  write_file(dir / "copy_arguments.json", ChatJson(verbatim_arguments(train)).dump(1) + "\n");
  if (n_induction > 0) {
    InductionCorpusOptions io;
    io.seed = o.seed;
    io.n_documents = n_induction;
    io.p_made_up = p_made_up;
    io.p_quoted = p_quoted;
    io.p_clock = p_clock;
    write_file(dir / "induction.txt", make_induction_corpus(train, io));
    std::fprintf(stderr, "wrote %s: induction.txt (%lld copy documents from the training requests)\n",
                 dir.string().c_str(), static_cast<long long>(n_induction));
  }
  std::fprintf(stderr, "wrote %s: train.txt (%lld examples), tokenizer.txt (the same without argument values), heldout.txt and heldout.jsonl (%lld), tools.json, copy_arguments.json\n",
               dir.string().c_str(), static_cast<long long>(n_train), static_cast<long long>(n_heldout));
  return 0;
}

}  // namespace onellm::cli
