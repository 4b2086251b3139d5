// Renders the published chat templates of Llama 3.1/3.2, Qwen2.5, Qwen3,
// SmolLM2, TinyLlama/Zephyr, Phi-3 and Gemma and compares with the prompt
// formats those models document, written out by hand; plus Jinja semantics
// (as Python's jinja2 renders them) and error handling.
#include <ctime>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "chat_template_templates.h"
#include "tokenizer/chat_template.h"

namespace onellm {
namespace {

using test_templates::kLlama31;
using test_templates::kLlama32;
using test_templates::kQwen25;
using test_templates::kQwen3;
using test_templates::kSmolLM2;

std::vector<ChatMessage> conversation(bool with_system = true) {
  std::vector<ChatMessage> m;
  if (with_system) m.push_back({"system", "You are a helpful assistant."});
  m.push_back({"user", "Hello"});
  m.push_back({"assistant", "Hi there!"});
  m.push_back({"user", "How are you?"});
  return m;
}

ChatJson weather_tool() {
  return ChatJson::parse(R"({"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");
}

ChatMessage tool_call_message() {
  ChatMessage m{"assistant", ""};
  m.extra["tool_calls"] = ChatJson::parse(
      R"([{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}])");
  return m;
}

std::string render(const std::string& source, const std::vector<ChatMessage>& messages,
                   ChatTemplateOptions opts = {}) {
  return ChatTemplate(source).render(messages, opts);
}

// ---- real templates ----

TEST(ChatTemplate, Llama31Conversation) {
  ChatTemplateOptions opts;
  opts.bos_token = "<|begin_of_text|>";
  EXPECT_EQ(render(kLlama31, conversation(), opts),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            "You are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama31ToolsAndToolCalls) {
  ChatTemplateOptions opts;
  opts.bos_token = "<|begin_of_text|>";
  opts.tools = ChatJson::array({weather_tool()});
  opts.extra_context = {{"date_string", "23 Jul 2024"}};
  std::vector<ChatMessage> m = {{"system", "You are a helpful assistant."},
                                {"user", "What's the weather in Paris?"},
                                tool_call_message(),
                                {"tool", ""}};
  m[3].extra["content"] = {{"temperature", 22}};  // a structured tool result
  std::string tool_json =
      "{\n"
      "    \"type\": \"function\",\n"
      "    \"function\": {\n"
      "        \"name\": \"get_weather\",\n"
      "        \"description\": \"Get the weather\",\n"
      "        \"parameters\": {\n"
      "            \"type\": \"object\",\n"
      "            \"properties\": {\n"
      "                \"city\": {\n"
      "                    \"type\": \"string\"\n"
      "                }\n"
      "            },\n"
      "            \"required\": [\n"
      "                \"city\"\n"
      "            ]\n"
      "        }\n"
      "    }\n"
      "}";
  EXPECT_EQ(render(kLlama31, m, opts),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 23 Jul 2024\n\n"
            "You are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n"
            "Given the following functions, please respond with a JSON for a function call with its proper "
            "arguments that best answers the given prompt.\n\n"
            "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its "
            "value}.Do not use variables.\n\n" +
                tool_json +
                "\n\nWhat's the weather in Paris?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
                "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
                "<|start_header_id|>ipython<|end_header_id|>\n\n{\"temperature\": 22}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama31BuiltinToolCall) {
  ChatTemplateOptions opts;
  opts.extra_context = {{"builtin_tools", {"brave_search", "code_interpreter"}}};
  std::vector<ChatMessage> m = {{"user", "Search"}, {"assistant", ""}};
  m[1].extra["tool_calls"] = ChatJson::parse(
      R"([{"function": {"name": "brave_search", "arguments": {"query": "weather", "lang": "en"}}}])");
  opts.add_generation_prompt = false;
  EXPECT_EQ(render(kLlama31, m, opts),
            "<|start_header_id|>system<|end_header_id|>\n\n"
            "Environment: ipython\nTools: brave_search\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nSearch<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
            "<|python_tag|>brave_search.call(query=\"weather\", lang=\"en\")<|eom_id|>");
}

TEST(ChatTemplate, Llama31SingleToolCallOnly) {
  std::vector<ChatMessage> m = {{"user", "x"}, tool_call_message()};
  m[1].extra["tool_calls"].push_back(m[1].extra["tool_calls"][0]);
  try {
    render(kLlama31, m);
    FAIL() << "expected raise_exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("This model only supports single tool-calls at once!"), std::string::npos);
  }
}

TEST(ChatTemplate, Llama32DateFromStrftimeNow) {
  char buf[64];
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(buf, sizeof(buf), "%d %b %Y", &local);
  std::string out = render(kLlama32, {{"user", "  Hi  "}});
  EXPECT_EQ(out,
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: " + std::string(buf) + "\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Qwen25Conversation) {
  EXPECT_EQ(render(kQwen25, conversation()),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there!<|im_end|>\n"
            "<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render(kQwen25, {{"user", "Hello"}}),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen25ToolsAndToolCalls) {
  ChatTemplateOptions opts;
  opts.tools = ChatJson::array({weather_tool()});
  std::vector<ChatMessage> m = {{"system", "You are a helpful assistant."},
                                {"user", "What's the weather in Paris?"},
                                tool_call_message(),
                                {"tool", "{\"temperature\": 22}"},
                                {"tool", "sunny"}};
  EXPECT_EQ(render(kQwen25, m, opts),
            "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\n"
            "You may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", "
            "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, "
            "\"required\": [\"city\"]}}}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n"
            "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
            "</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n{\"temperature\": 22}\n</tool_response>\n"
            "<tool_response>\nsunny\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3ThinkingDisabled) {
  ChatTemplateOptions opts;
  opts.extra_context = {{"enable_thinking", false}};
  EXPECT_EQ(render(kQwen3, conversation(), opts),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there!<|im_end|>\n"
            "<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, Qwen3ReasoningKeptOnlyAfterLastQuery) {
  std::vector<ChatMessage> m = {{"user", "Hi"},
                                {"assistant", "<think>\nOld thought.\n</think>\n\nHello!"},
                                {"user", "2+2?"},
                                {"assistant", "<think>\nAdd them.\n</think>\n\n4"}};
  ChatTemplateOptions opts;
  opts.add_generation_prompt = false;
  EXPECT_EQ(render(kQwen3, m, opts),
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nAdd them.\n</think>\n\n4<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3ToolCallWithStringArguments) {
  ChatTemplateOptions opts;
  opts.tools = ChatJson::array({weather_tool()});
  ChatMessage call{"assistant", "Let me check."};
  call.extra["tool_calls"] = ChatJson::parse(
      R"([{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}])");
  std::vector<ChatMessage> m = {{"user", "Weather?"}, call, {"tool", "22C"}};
  std::string out = render(kQwen3, m, opts);
  EXPECT_NE(out.find("<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                     "{\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
                     "<|im_start|>user\n<tool_response>\n22C\n</tool_response><|im_end|>\n<|im_start|>assistant\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.rfind("<|im_start|>system\n# Tools\n\n", 0), 0u) << out;
}

TEST(ChatTemplate, SmolLM2DefaultSystem) {
  EXPECT_EQ(render(kSmolLM2, conversation(false)),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there!<|im_end|>\n"
            "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, BuiltinZephyrTinyLlama) {
  ChatTemplateOptions opts;
  opts.eos_token = "</s>";
  EXPECT_EQ(render(builtin_chat_template("zephyr"), conversation(), opts),
            "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there!</s>\n"
            "<|user|>\nHow are you?</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, BuiltinPhi3) {
  EXPECT_EQ(render(builtin_chat_template("phi3"), conversation()),
            "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello<|end|>\n"
            "<|assistant|>\nHi there!<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, BuiltinGemma) {
  ChatTemplateOptions opts;
  opts.bos_token = "<bos>";
  EXPECT_EQ(render(builtin_chat_template("gemma"), conversation(false), opts),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there!<end_of_turn>\n"
            "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n");
  try {
    render(builtin_chat_template("gemma"), conversation(true), opts);
    FAIL() << "expected raise_exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("System role not supported"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, BuiltinChatmlLlama2Llama3) {
  EXPECT_EQ(render(builtin_chat_template("chatml"), {{"user", "Hi"}}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ChatTemplateOptions opts;
  opts.bos_token = "<s>";
  opts.eos_token = "</s>";
  EXPECT_EQ(render(builtin_chat_template("llama2"), conversation(), opts),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello [/INST] Hi there! </s>"
            "<s>[INST] How are you? [/INST]");
  opts.bos_token = "<|begin_of_text|>";
  EXPECT_EQ(render(builtin_chat_template("llama3"), {{"user", "Hi"}}, opts),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_THROW(builtin_chat_template("nope"), Error);
  for (const std::string& name : builtin_chat_template_names())
    EXPECT_NO_THROW(ChatTemplate{builtin_chat_template(name)});
}

// ---- null content and text arguments (how transformers hands them over) ----

// An assistant turn of only tool calls, content null as OpenAI clients send it.
ChatMessage null_content_call(const char* arguments_json) {
  ChatMessage m{"assistant", ""};
  m.null_content = true;
  const ChatJson function = {{"name", "f"}, {"arguments", ChatJson::parse(arguments_json)}};
  m.extra["tool_calls"] = ChatJson::array({{{"id", "c1"}, {"type", "function"}, {"function", function}}});
  return m;
}

TEST(ChatTemplate, NullContentIsNoneUnlessTextWasAdded) {
  const char* tpl = "{% for m in messages %}{{ m.role }}={{ m.content is none }};{% endfor %}";
  ChatMessage appended{"system", "tools: f"};
  appended.null_content = true;  // content added after reading (tool descriptions): a string now
  EXPECT_EQ(render(tpl, {appended, {"user", ""}, null_content_call("{}")}),
            "system=False;user=False;assistant=True;");
}

// DeepSeek-R1's template writes calls only when content is none and adds the
// arguments to a string: object arguments are handed over as JSON text.
TEST(ChatTemplate, ArgumentsAsTextWhenTheTemplateConcatenatesThem) {
  const char* tpl =
      "{% for m in messages %}{% if m.content is none %}{% for tc in m.tool_calls %}"
      "{{ 'call ' + tc.function.name + ' ' + tc.function.arguments }}{% endfor %}"
      "{% else %}{{ m.role + ': ' + m.content + '\\n' }}{% endif %}{% endfor %}";
  EXPECT_EQ(render(tpl, {{"user", "go"}, null_content_call(R"({"city": "Zürich", "n": [1, 2]})")}),
            "user: go\ncall f {\"city\": \"Zürich\", \"n\": [1, 2]}");
  // A template that takes objects gets objects (the first render succeeds).
  EXPECT_EQ(render("{{ messages[0].tool_calls[0].function.arguments.n[1] }}",
                   {null_content_call(R"({"n": [1, 2]})")}),
            "2");
}

// Phi-3.5's template adds every content to a string: null becomes "".
TEST(ChatTemplate, NullContentAsEmptyWhenTheTemplateNeedsAString) {
  const char* tpl = "{% for m in messages %}{{ m.role + ': ' + m.content + ';' }}{% endfor %}";
  EXPECT_EQ(render(tpl, {{"user", "go"}, null_content_call("{}")}), "user: go;assistant: ;");
  // Both at once: calls concatenated and content added to a string.
  const char* both = "{% for m in messages %}{{ m.role + ': ' + m.content }}{% for tc in m.tool_calls or [] %}"
                     "{{ ' ' + tc.function.arguments }}{% endfor %};{% endfor %}";
  EXPECT_EQ(render(both, {null_content_call(R"({"a": 1})")}), "assistant:  {\"a\": 1};");
  // An error no adaptation cures is the first render's.
  try {
    render("{{ raise_exception('roles must alternate') }}", {null_content_call(R"({"a": 1})")});
    FAIL() << "expected raise_exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("roles must alternate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace onellm
