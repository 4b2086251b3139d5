// onellm template: the prompt a chat request renders to, as serve builds it
// (messages and tools read by the service's own code, tools described in the
// system message for templates without them). For debugging a model's
// template, like transformers' apply_chat_template or llama-server's
// /apply-template.
#include <cstdio>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "service/api_util.h"
#include "service/output_constraint.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace onellm::cli {

int template_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-m", "--model", "--chat-template", "--request", "-r"}, {"--tokens", "-h", "--help"});
  if (a.flag({"-h", "--help"})) {
    std::puts(
        "onellm template [-m MODEL] [--chat-template NAME|FILE] [--request FILE] [--tokens]\n"
        "  Reads an OpenAI chat request (JSON: messages, tools, tool_choice, chat_template_kwargs,\n"
        "  add_generation_prompt) from FILE or stdin and prints the prompt the model's chat template\n"
        "  renders for it, as onellm serve builds it. --tokens prints the token ids instead.\n"
        "  (default model: the bundled one; --chat-template overrides its template)");
    return 0;
  }
  const std::string model_path = model_path_or_default(a);
  auto file = GgufFile::open(model_path);
  auto tokenizer = Tokenizer::from_gguf(*file);
  const std::string source = chat_template_source(a, *file);
  std::string text;
  if (auto path = a.get({"--request", "-r"}); path && *path != "-") text = read_text_file(*path);
  else text.assign(std::istreambuf_iterator<char>(std::cin), {});
  api::Json body = api::Json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) throw Error("the request is not a JSON object");

  ChatTemplate tmpl(source);
  ChatTemplateOptions options;
  options.add_generation_prompt = api::bool_field(body, "add_generation_prompt", true);
  const ChatPrompt chat = prepare_chat_prompt(body, api::read_messages(body), tmpl, {}, std::move(options));
  if (a.flag({"--tokens"})) {
    const std::vector<int32_t> ids = chat_prompt_tokens(*tokenizer, tmpl, chat.messages, chat.options);
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    return 0;
  }
  std::fputs(chat_prompt_text(*tokenizer, tmpl, chat.messages, chat.options).c_str(), stdout);
  return 0;
}

}  // namespace onellm::cli
