// Tool calls in and out of the model (engine/tool_calls.h): which style a
// chat template uses, the OpenAI tool definitions and their errors, the call
// grammar (valid calls only, arguments held to each tool's schema) and
// parsing replies back into calls, including calls cut short.
#include <gtest/gtest.h>

#include "base/error.h"
#include "engine/engine.h"
#include "engine/tool_calls.h"
#include "gguf/gguf.h"
#include "support/tiny_qwen.h"

namespace onellm {
namespace {

using Json = nlohmann::ordered_json;

class ToolCallsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tiny_ = new test::TinyQwen; }
  static void TearDownTestSuite() { delete tiny_; }

  static std::vector<ToolSpec> tools() {
    return parse_tool_specs(Json::parse(R"([
      {"type": "function", "function": {"name": "set_alarm", "description": "Sets an alarm",
        "parameters": {"type": "object", "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23},
                                                        "label": {"type": "string", "maxLength": 10}},
                       "required": ["hour"]}}},
      {"type": "function", "function": {"name": "get-time"}}])"));
  }
  // Whether the whole text is a sentence of the grammar.
  static bool accepts(const std::string& gbnf, const std::string& text) {
    return accepts(Grammar::parse(gbnf), text);
  }
  static bool accepts(std::shared_ptr<const Grammar> grammar, const std::string& text) {
    GrammarMatcher m(std::move(grammar), GrammarVocab::of(*tiny_->tokenizer));
    return m.would_accept_text(text) && (m.accept_text(text), m.can_end());
  }

  static inline test::TinyQwen* tiny_;
};

TEST_F(ToolCallsTest, StyleFollowsTheChatTemplate) {
  EXPECT_EQ(tool_call_style("{% for tool in tools %}<tool_call>{{ tool }}</tool_call>{% endfor %}"),
            ToolCallStyle::kHermes);
  EXPECT_EQ(tool_call_style("{%- if message.role == 'ipython' %}<|python_tag|>{% endif %}"), ToolCallStyle::kLlama3);
  EXPECT_EQ(tool_call_style("{{ messages }}"), ToolCallStyle::kHermes);  // no tool syntax: the default
  EXPECT_TRUE(template_renders_tools("{% if tools %}...{% endif %}"));
  EXPECT_FALSE(template_renders_tools("{{ messages }}"));
}

TEST_F(ToolCallsTest, BadDefinitionsNameTheField) {
  auto error_of = [](const std::string& json) {
    try {
      parse_tool_specs(Json::parse(json));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(R"({"name": "x"})"), "tools: must be an array");
  EXPECT_NE(error_of(R"([{"type": "function", "function": {"name": "files.read"}}])").find("tools[0].function.name"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"function": {"name": ""}}])").find("tools[0].function.name"), std::string::npos);
  EXPECT_NE(error_of(R"([{"function": {"name": "a"}}, {"function": {"name": "a"}}])").find("defined twice"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"function": {"name": "a", "parameters": {"type": "array"}}}])").find("tools[0].function.parameters"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"function": {"name": "a", "parameters": {"type": "object",
              "properties": {"p": {"type": "string", "contentEncoding": "base64"}}}}}])").find("tools[0].function.parameters"),
            std::string::npos);
  EXPECT_THROW(parse_tool_choice(Json::parse(R"({"type": "function", "function": {"name": "nope"}})"), tools()), Error);
  EXPECT_THROW(parse_tool_choice(Json("sometimes"), tools()), Error);
  EXPECT_EQ(parse_tool_choice(Json("required"), tools()).mode, ToolChoice::kRequired);
  EXPECT_EQ(parse_tool_choice(Json(), tools()).mode, ToolChoice::kAuto);
}

TEST_F(ToolCallsTest, HermesGrammarAcceptsValidCallsOnly) {
  const std::string one = tool_calls_gbnf(ToolCallStyle::kHermes, tools(), {ToolChoice::kRequired, ""}, false);
  const std::string many = tool_calls_gbnf(ToolCallStyle::kHermes, tools(), {ToolChoice::kRequired, ""}, true);
  const std::string alarm = R"(<tool_call>{"name": "set_alarm", "arguments": {"hour": 7, "label": "gym"}}</tool_call>)";
  const std::string time = "<tool_call>\n{\"name\": \"get-time\", \"arguments\": {}}\n</tool_call>";
  EXPECT_TRUE(accepts(one, alarm));
  EXPECT_TRUE(accepts(one, time));
  EXPECT_FALSE(accepts(one, alarm + "\n" + time));  // parallel calls only when asked for
  EXPECT_TRUE(accepts(many, alarm + "\n" + time));
  EXPECT_FALSE(accepts(one, R"(<tool_call>{"name": "set_alarm", "arguments": {"hour": 24}}</tool_call>)"));
  EXPECT_FALSE(accepts(one, R"(<tool_call>{"name": "set_alarm", "arguments": {"label": "x"}}</tool_call>)"));
  EXPECT_FALSE(accepts(one, R"(<tool_call>{"name": "set_alarm", "arguments": {"hour": 1, "label": "much too long"}}</tool_call>)"));
  EXPECT_FALSE(accepts(one, R"(<tool_call>{"name": "reboot", "arguments": {}}</tool_call>)"));
  const std::string named = tool_calls_gbnf(ToolCallStyle::kHermes, tools(), {ToolChoice::kFunction, "get-time"}, false);
  EXPECT_TRUE(accepts(named, time));
  EXPECT_FALSE(accepts(named, alarm));
  EXPECT_THROW(tool_calls_gbnf(ToolCallStyle::kHermes, tools(), {ToolChoice::kNone, ""}, false), Error);
}

// The one constraint run, chat and serve build from tools and tool_choice.
TEST_F(ToolCallsTest, ConstraintIsLazyOnlyForAutoWithoutAFormattedAnswer) {
  const std::string alarm = R"(<tool_call>{"name": "set_alarm", "arguments": {"hour": 7}}</tool_call>)";
  const ToolCallConstraint lazy = tool_call_constraint(ToolCallStyle::kHermes, tools(), {}, true);
  EXPECT_EQ(lazy.triggers, std::vector<std::string>{"<tool_call>"});
  EXPECT_TRUE(accepts(lazy.grammar, alarm + "\n" + alarm));
  EXPECT_FALSE(accepts(lazy.grammar, R"(<tool_call>{"name": "reboot", "arguments": {}}</tool_call>)"));

  const ToolCallConstraint required =
      tool_call_constraint(ToolCallStyle::kHermes, tools(), {ToolChoice::kRequired, ""}, false);
  EXPECT_TRUE(required.triggers.empty());
  EXPECT_TRUE(accepts(required.grammar, alarm));
  EXPECT_FALSE(accepts(required.grammar, alarm + "\n" + alarm));

  // auto with a response_format: a call or the formatted answer, not free text.
  const ToolCallConstraint answer = tool_call_constraint(ToolCallStyle::kLlama3, tools(), {}, true, "answer",
                                                         R"(answer ::= "{" ws "\"ok\"" ws ":" ws json-boolean ws "}")" "\n");
  EXPECT_TRUE(answer.triggers.empty());
  EXPECT_TRUE(accepts(answer.grammar, R"({"ok": true})"));
  EXPECT_TRUE(accepts(answer.grammar, R"({"name": "get-time", "parameters": {}})"));
  EXPECT_FALSE(accepts(answer.grammar, "just text"));
  EXPECT_THROW(tool_call_constraint(ToolCallStyle::kHermes, tools(), {}, true, "answer", "answer ::= undefined-rule\n"),
               Error);
}

// onellm.builtin_tools: the tools a model calls without being shown them.
TEST_F(ToolCallsTest, BuiltinToolsComeFromTheModelFileAndHoldCallsLazily) {
  auto file_with = [](const std::string* tools) {
    GgufWriter w;
    w.set("general.architecture", GgufValue::of_string("llama"));
    if (tools) w.set(kBuiltinToolsKey, GgufValue::of_string(*tools));
    std::vector<uint8_t> bytes = w.to_bytes();
    return GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
  };
  auto error_of = [&](const std::string& tools) {
    try {
      builtin_tool_constraint(*file_with(&tools), ToolCallStyle::kHermes);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(builtin_tools(*file_with(nullptr)).empty());
  const ToolCallConstraint none = builtin_tool_constraint(*file_with(nullptr), ToolCallStyle::kHermes);
  EXPECT_EQ(none.grammar, nullptr);
  EXPECT_TRUE(none.triggers.empty());

  const std::string json = Json::parse(R"([
      {"type": "function", "function": {"name": "set_alarm", "parameters": {"type": "object",
        "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23}}, "required": ["hour"]}}},
      {"type": "function", "function": {"name": "get-time"}}])").dump();
  auto file = file_with(&json);
  ASSERT_EQ(builtin_tools(*file).size(), 2u);
  EXPECT_EQ(builtin_tools(*file)[1].name, "get-time");
  const ToolCallConstraint c = builtin_tool_constraint(*file, ToolCallStyle::kHermes);
  EXPECT_EQ(c.triggers, std::vector<std::string>{"<tool_call>"});  // lazy: plain answers stay free
  const std::string alarm = R"(<tool_call>{"name": "set_alarm", "arguments": {"hour": 7}}</tool_call>)";
  EXPECT_TRUE(accepts(c.grammar, alarm + "\n" + alarm));
  EXPECT_FALSE(accepts(c.grammar, R"(<tool_call>{"name": "set_alarm", "arguments": {"hour": 24}}</tool_call>)"));
  EXPECT_FALSE(accepts(c.grammar, R"(<tool_call>{"name": "reboot", "arguments": {}}</tool_call>)"));

  for (const std::string bad : {"not json", "[]", R"({"name": "x"})", R"([{"function": {"name": "a b"}}])"}) {
    const std::string error = error_of(bad);
    EXPECT_EQ(error.rfind(kBuiltinToolsKey, 0), 0u) << bad << " -> " << error;
  }
}

TEST_F(ToolCallsTest, Llama3GrammarUsesParametersAndTheOptionalTag) {
  const std::string g = tool_calls_gbnf(ToolCallStyle::kLlama3, tools(), {ToolChoice::kRequired, ""}, false);
  EXPECT_TRUE(accepts(g, R"({"name": "set_alarm", "parameters": {"hour": 23}})"));
  EXPECT_TRUE(accepts(g, R"(<|python_tag|>{"name": "get-time", "parameters": {}})"));
  EXPECT_FALSE(accepts(g, R"({"name": "set_alarm", "arguments": {"hour": 23}})"));
  EXPECT_FALSE(accepts(g, R"(<tool_call>{"name": "get-time", "parameters": {}}</tool_call>)"));
  EXPECT_EQ(tool_call_triggers(ToolCallStyle::kLlama3), (std::vector<std::string>{"<|python_tag|>", "{\"name\""}));
  EXPECT_EQ(tool_call_triggers(ToolCallStyle::kHermes), std::vector<std::string>{"<tool_call>"});
}

TEST_F(ToolCallsTest, RepliesParseBackIntoCallsAndContent) {
  AssistantReply r = parse_assistant_reply(
      ToolCallStyle::kHermes,
      "Setting it now.\n<tool_call>{\"name\": \"set_alarm\", \"arguments\": {\"hour\": 7}}</tool_call>\n"
      "<tool_call>{\"name\": \"get-time\", \"arguments\": \"{}\"}</tool_call>");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "set_alarm");
  EXPECT_EQ(Json::parse(r.calls[0].arguments), Json::parse(R"({"hour": 7})"));
  EXPECT_EQ(r.calls[1].name, "get-time");
  EXPECT_EQ(r.calls[1].arguments, "{}");  // arguments written as a JSON string are taken as they are
  EXPECT_EQ(r.content, "Setting it now.");
  EXPECT_FALSE(r.cut_call);

  // No call: plain text, or a call cut by max_tokens (then the fragment is
  // not content either, as a stream would not have shown it).
  struct NoCall {
    ToolCallStyle style;
    const char* text;
    const char* content;
    bool cut;
  };
  for (const NoCall& c : {NoCall{ToolCallStyle::kHermes, "Plain answer, no calls.  ", "Plain answer, no calls.", false},
                          NoCall{ToolCallStyle::kHermes, "On it. <tool_call>{\"name\": \"set_alarm\", \"argu", "On it.", true},
                          NoCall{ToolCallStyle::kLlama3, "Sure: {\"name\": \"set_al", "Sure:", true},
                          NoCall{ToolCallStyle::kLlama3, "It is 7 o'clock.", "It is 7 o'clock.", false}}) {
    r = parse_assistant_reply(c.style, c.text);
    EXPECT_TRUE(r.calls.empty()) << c.text;
    EXPECT_EQ(r.content, c.content) << c.text;
    EXPECT_EQ(r.cut_call, c.cut) << c.text;
  }

  // A closing tag inside a string argument is part of the value: the call
  // ends with its JSON.
  r = parse_assistant_reply(ToolCallStyle::kHermes,
                            "<tool_call>{\"name\": \"note\", \"arguments\": {\"text\": \"a}</tool_call>\\\"{b\"}}</tool_call>"
                            " done <tool_call>{\"name\": \"get-time\"}</tool_call>");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(Json::parse(r.calls[0].arguments)["text"], "a}</tool_call>\"{b");
  EXPECT_EQ(r.calls[1].name, "get-time");
  EXPECT_EQ(r.content, "done");

  r = parse_assistant_reply(ToolCallStyle::kLlama3, "<|python_tag|>{\"name\": \"set_alarm\", \"parameters\": {\"hour\": 5}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(Json::parse(r.calls[0].arguments), Json::parse(R"({"hour": 5})"));
  r = parse_assistant_reply(ToolCallStyle::kLlama3, "{\"name\": \"get-time\", \"parameters\": {}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get-time");
}

}  // namespace
}  // namespace onellm
