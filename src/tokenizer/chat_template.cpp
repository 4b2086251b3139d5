#include "tokenizer/chat_template.h"

#include <exception>
#include <utility>

#include "base/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_value.h"

namespace onellm {

struct ChatTemplate::Parsed {
  jinja::Template tmpl;
};

ChatTemplate::ChatTemplate(std::string source) : source_(std::move(source)) {
  parsed_ = std::make_unique<Parsed>();
  parsed_->tmpl = jinja::parse_template(source_, jinja::Limits{});
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

namespace {

// The ways a conversation can be handed to a template, tried in this order
// when the previous one fails: as given (null content as None, arguments as
// the service parsed them), arguments as JSON text (DeepSeek-R1's template adds
// them to a string), null content as "" (Phi-3.5's adds it to a string), both.
constexpr int kArgumentsAsText = 1, kNullAsEmpty = 2;

bool has_object_arguments(const ChatMessage& m) {
  if (!m.extra.is_object() || !m.extra.contains("tool_calls") || !m.extra["tool_calls"].is_array()) return false;
  for (const ChatJson& call : m.extra["tool_calls"]) {
    const ChatJson* f = call.is_object() && call.contains("function") ? &call["function"] : &call;
    if (f->is_object() && f->contains("arguments") && !(*f)["arguments"].is_string()) return true;
  }
  return false;
}

jinja::Value tool_calls_with_text_arguments(const ChatJson& calls) {
  ChatJson out = calls;
  for (ChatJson& call : out) {
    ChatJson* f = call.is_object() && call.contains("function") ? &call["function"] : &call;
    if (f->is_object() && f->contains("arguments") && !(*f)["arguments"].is_string())
      (*f)["arguments"] = jinja::to_json(jinja::from_json((*f)["arguments"]), jinja::JsonFormat{});
  }
  return jinja::from_json(out);
}

}  // namespace

void add_template_kwargs(ChatTemplateOptions& options, const ChatJson& kwargs) {
  if (!kwargs.is_object()) throw Error("chat_template_kwargs must be a JSON object, e.g. {\"enable_thinking\": false}");
  for (const auto& [key, value] : kwargs.items()) {
    if (key == "messages" || key == "tools" || key == "documents")
      throw Error("chat_template_kwargs cannot set '" + key + "' (it comes from the request itself)");
    if (!options.extra_context.is_object()) options.extra_context = ChatJson::object();
    options.extra_context[key] = value;
  }
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const {
  int possible = 0;
  for (const ChatMessage& m : messages) {
    if (m.null_content && m.content.empty()) possible |= kNullAsEmpty;
    if (has_object_arguments(m)) possible |= kArgumentsAsText;
  }
  try {
    return render_once(messages, opts, 0);
  } catch (const Error&) {
    if (possible == 0) throw;
    std::exception_ptr first = std::current_exception();
    for (int adapt : {kArgumentsAsText, kNullAsEmpty, kArgumentsAsText | kNullAsEmpty}) {
      if ((adapt & possible) != adapt) continue;
      try {
        return render_once(messages, opts, adapt);
      } catch (const Error&) {
      }
    }
    std::rethrow_exception(first);
  }
}

std::string ChatTemplate::render_once(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts,
                                      int adapt) const {
  using jinja::Value;
  jinja::List message_values;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!m.extra.is_null() && !m.extra.is_object()) {
      throw Error("chat message " + std::to_string(i) + ": extra must be a JSON object");
    }
    jinja::Dict d;
    d.set("role", Value::string(m.role));
    const bool none = m.null_content && m.content.empty() && !(adapt & kNullAsEmpty);
    d.set("content", none ? Value::none() : Value::string(m.content));
    if (m.extra.is_object()) {
      for (const auto& [k, v] : m.extra.items()) {
        const bool as_text = (adapt & kArgumentsAsText) && k == "tool_calls" && v.is_array();
        d.set(k, as_text ? tool_calls_with_text_arguments(v) : jinja::from_json(v));
      }
    }
    message_values.push_back(Value::dict(std::move(d)));
  }
  if (!opts.tools.is_null() && !opts.tools.is_array()) throw Error("chat template tools must be null or an array");
  if (!opts.extra_context.is_null() && !opts.extra_context.is_object()) {
    throw Error("chat template extra_context must be a JSON object");
  }

  // The variables transformers passes: messages, tools, documents,
  // add_generation_prompt, the special tokens, then caller kwargs.
  jinja::Dict context;
  context.set("messages", Value::list(std::move(message_values)));
  context.set("tools", opts.tools.is_null() ? Value::none() : jinja::from_json(opts.tools));
  context.set("documents", Value::none());
  context.set("add_generation_prompt", Value::boolean(opts.add_generation_prompt));
  context.set("bos_token", Value::string(opts.bos_token));
  context.set("eos_token", Value::string(opts.eos_token));
  if (opts.extra_context.is_object()) {
    for (const auto& [k, v] : opts.extra_context.items()) context.set(k, jinja::from_json(v));
  }

  jinja::Limits limits;
  limits.max_output_bytes = opts.limits.max_output_bytes;
  limits.max_steps = opts.limits.max_steps;
  jinja::Renderer renderer(limits);
  return renderer.render(parsed_->tmpl, context);
}

namespace {

struct Builtin {
  const char* name;
  const char* source;
};

// The templates these model families publish in tokenizer_config.json.
const Builtin kBuiltins[] = {
    {"chatml",
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
     "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
    {"llama2",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
     "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
     "%}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
     "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
     "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
     "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
     "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] "
     "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"},
    {"llama3",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
     "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
     "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"},
    {"zephyr",
     "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
     "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% "
     "elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
     "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"},
    {"phi3",
     "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
     "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif "
     "message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% "
     "endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"},
    {"gemma",
     "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% "
     "endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
     "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
     "(message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif "
     "%}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if "
     "add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"},
};

}  // namespace

std::string builtin_chat_template(const std::string& name) {
  for (const Builtin& b : kBuiltins) {
    if (name == b.name) return b.source;
  }
  std::string known;
  for (const Builtin& b : kBuiltins) known += std::string(known.empty() ? "" : ", ") + b.name;
  throw Error("unknown chat template name '" + name + "' (built-in: " + known + ")");
}

std::vector<std::string> builtin_chat_template_names() {
  std::vector<std::string> names;
  for (const Builtin& b : kBuiltins) names.push_back(b.name);
  return names;
}

}  // namespace onellm
