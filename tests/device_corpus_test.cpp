// The device-assistant corpus: every expected call is valid for the tool
// definitions (checked here against the JSON schemas, independently of the
// generator), every tool is exercised, held-out requests and free-text
// argument values never occur in training, and the corpus is a function of
// the seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>

#include "agent/device.h"
#include "train/device_corpus_data.h"
#include "train/train.h"

namespace onellm {
namespace {

const ChatJson* find_tool(const std::string& name) {
  for (const ChatJson& t : device_tools())
    if (t["function"]["name"] == name) return &t["function"];
  return nullptr;
}

// Schema check of one call: known tool, required keys, no unknown keys,
// JSON types and enums as declared.
std::string call_error(const ChatJson& call) {
  const ChatJson* f = find_tool(call.value("name", ""));
  if (f == nullptr) return "unknown tool " + call.dump();
  const ChatJson& props = (*f)["parameters"]["properties"];
  const ChatJson& args = call["arguments"];
  if (!args.is_object()) return "arguments are not an object: " + call.dump();
  for (const ChatJson& r : (*f)["parameters"]["required"])
    if (!args.contains(r.get<std::string>())) return "missing " + r.get<std::string>() + " in " + call.dump();
  for (const auto& [k, v] : args.items()) {
    if (!props.contains(k)) return "unknown argument " + k + " in " + call.dump();
    const ChatJson& p = props[k];
    const std::string type = p["type"];
    if (type == "string" && !v.is_string()) return k + " is not a string";
    if (type == "integer" && !v.is_number_integer()) return k + " is not an integer";
    if (type == "boolean" && !v.is_boolean()) return k + " is not a boolean";
    if (p.contains("enum") && std::find(p["enum"].begin(), p["enum"].end(), v) == p["enum"].end())
      return k + " = " + v.dump() + " is not in its enum";
    if (p.contains("minimum") && v < p["minimum"]) return k + " below minimum";
    if (p.contains("maximum") && v > p["maximum"]) return k + " above maximum";
  }
  return "";
}

TEST(DeviceCorpus, CallsMatchToolSchemasAndCoverEveryTool) {
  std::set<std::string> used;
  for (bool heldout : {false, true}) {
    auto examples = make_device_examples(DeviceCorpusOptions{}, heldout, 3000);
    ASSERT_EQ(examples.size(), 3000u);
    int with_calls = 0;
    for (const DeviceExample& ex : examples) {
      for (const ChatJson& c : ex.expected_calls) {
        EXPECT_EQ(call_error(c), "");
        used.insert(c["name"]);
      }
      with_calls += !ex.expected_calls.empty();
      // The assistant message carries the same calls in OpenAI form.
      for (size_t i = 0; i < ex.messages.size(); ++i) {
        if (ex.messages[i].role != "user") continue;
        const ChatMessage& reply = ex.messages.at(i + 1);
        EXPECT_EQ(reply.role, "assistant");
        if (ex.expected_calls.empty()) {
          EXPECT_FALSE(reply.content.empty());
        } else {
          ASSERT_TRUE(reply.extra.contains("tool_calls"));
          ASSERT_EQ(reply.extra["tool_calls"].size(), ex.expected_calls.size());
          for (size_t k = 0; k < ex.expected_calls.size(); ++k)
            EXPECT_EQ(reply.extra["tool_calls"][k]["function"], ex.expected_calls[k]);
        }
        break;
      }
    }
    EXPECT_GT(with_calls, 2400) << "mostly tool calls";
    EXPECT_LT(with_calls, 2900) << "some chit-chat";
  }
  EXPECT_EQ(used.size(), device_tools().size()) << "every tool is used";
}

// What a value looks like, without its contents: objects by their keys,
// arrays and scalars by type.
std::string shape_of(const nlohmann::json& v) {
  if (v.is_object()) {
    std::string s = "{";
    for (const auto& [k, x] : v.items()) s += k + ":" + shape_of(x) + ",";
    return s + "}";
  }
  if (v.is_array()) return "[" + (v.empty() ? std::string() : shape_of(v[0])) + "]";
  return v.is_number() ? "number" : v.type_name();
}

// The setup a call needs to succeed on the simulated device (the contact,
// document, alarm, timer or event it refers to).
void prepare(agent::Device& d, const std::string& name, const nlohmann::json& a) {
  auto need = [&](const char* tool, nlohmann::json args) {
    const agent::ToolResult r = d.call(tool, args);
    ASSERT_FALSE(r.is_error) << tool << " " << args.dump() << " " << r.content.dump();
  };
  const std::string who = a.value("name", a.value("contact", a.value("to", std::string())));
  const bool number = std::regex_match(who, std::regex(R"([0-9+() .-]*)")) &&
                      std::count_if(who.begin(), who.end(), [](char c) { return c >= '0' && c <= '9'; }) >= 3;
  if (name == "delete_contact" || ((name == "call" || name == "send_message") && !number) ||
      (name == "send_email" && who.find('@') == std::string::npos))
    need("add_contact", {{"name", who}, {"phone", "555 100 2000"}, {"email", "x@example.com"}});
  if (name == "open_document" || name == "delete_document") {
    d.call("delete_document", {{"name", a["name"]}});  // the default device may hold it already
    need("create_document", {{"name", a["name"]}, {"type", "pdf"}});
  }
  if (name == "create_document") d.call("delete_document", {{"name", a["name"]}});
  if (name == "add_contact") d.call("delete_contact", {{"name", a["name"]}});  // new to the device: "added"
  if (name == "delete_alarm") need("set_alarm", {{"hour", a["hour"]}, {"minute", a["minute"]}});
  if (name == "delete_event") need("create_event", {{"title", a["title"]}, {"date", "friday"}});
  if (name == "cancel_timer")
    need("set_timer", a.contains("label") ? nlohmann::json{{"duration", "5 minutes"}, {"label", a["label"]}}
                                          : nlohmann::json{{"duration", "5 minutes"}});
}

// Tool results in the corpus are what the simulated device answers (same keys,
// nested the same way, compact JSON), failures are the device's own messages,
// and the assistant replies to every result.
TEST(DeviceCorpus, ToolResultsHaveTheDevicesShape) {
  std::set<std::string> matched;
  int results = 0, failures = 0;
  for (const DeviceExample& ex : make_device_examples(DeviceCorpusOptions{}, false, 6000)) {
    size_t at = 0;
    while (at < ex.messages.size() && ex.messages[at].role != "tool") ++at;
    if (at == ex.messages.size()) continue;
    ASSERT_EQ(ex.messages.back().role, "assistant");
    ASSERT_FALSE(ex.messages.back().content.empty());
    for (size_t k = 0; k < ex.expected_calls.size(); ++k) {
      const ChatMessage& tool = ex.messages.at(at + k);
      ASSERT_EQ(tool.role, "tool");
      const nlohmann::json got = nlohmann::json::parse(tool.content);
      EXPECT_EQ(got.dump(), tool.content) << "compact, sorted keys";
      const nlohmann::json call = nlohmann::json::parse(ex.expected_calls[k].dump());
      const std::string name = call["name"];
      ++results;
      if (got.contains("error")) {
        ++failures;
        EXPECT_EQ(got["error"].get<std::string>().rfind(name + ": ", 0), 0u) << tool.content;
        EXPECT_NE(ex.messages.back().content.find(got["error"].get<std::string>().substr(name.size() + 2)),
                  std::string::npos) << "the reply names the failure";
        continue;
      }
      // get_contact answers with the asked field's name as a key; the device
      // holds no addresses or birthdays to answer with.
      if (name == "get_contact") {
        EXPECT_TRUE(got.contains(call["arguments"]["field"].get<std::string>())) << tool.content;
        continue;
      }
      agent::Device device;
      prepare(device, name, call["arguments"]);
      const agent::ToolResult real = device.call(name, call["arguments"]);
      ASSERT_FALSE(real.is_error) << name << " " << real.content.dump();
      if (name == "show_alarms" || name == "list_events") {
        EXPECT_EQ(got.begin().key(), real.content.begin().key());
        if (!got.begin()->empty() && !real.content.begin()->empty()) {
          EXPECT_EQ(shape_of(got), shape_of(real.content));
        }
      } else {
        EXPECT_EQ(shape_of(got), shape_of(real.content)) << name << "\n" << tool.content << "\n" << real.content.dump();
      }
      matched.insert(name);
    }
  }
  EXPECT_EQ(matched.size(), device_tools().size() - 1) << "every tool but get_contact checked";
  EXPECT_GT(failures, results / 50) << failures << " of " << results;
  EXPECT_LT(failures, results / 8) << failures << " of " << results;
}

// Free-text argument values (not enums, not numbers, not generated phone
// numbers) and whole requests of the two splits are disjoint.
TEST(DeviceCorpus, HeldOutPhrasingsAndValuesAreUnseen) {
  const std::regex phone(R"(555 \d{3} \d{4})");
  auto values = [&](bool heldout, std::set<std::string>& args, std::set<std::string>& requests) {
    for (const DeviceExample& ex : make_device_examples(DeviceCorpusOptions{}, heldout, 4000)) {
      for (const ChatMessage& m : ex.messages)
        if (m.role == "user") requests.insert(m.content);
      for (const ChatJson& c : ex.expected_calls)
        for (const auto& [k, v] : c["arguments"].items()) {
          const ChatJson& p = (*find_tool(c["name"]))["parameters"]["properties"][k];
          if (v.is_string() && !p.contains("enum") && !std::regex_match(v.get<std::string>(), phone) &&
              k != "time" && k != "duration")
            args.insert(c["name"].get<std::string>() + "." + k + "=" + v.get<std::string>());
        }
    }
  };
  std::set<std::string> train_args, train_requests, held_args, held_requests;
  values(false, train_args, train_requests);
  values(true, held_args, held_requests);
  ASSERT_GT(held_args.size(), 100u);
  ASSERT_GT(held_requests.size(), 1000u);
  for (const std::string& a : held_args) {
    const std::string value = a.substr(a.find('=') + 1);
    for (const std::string& t : train_args) EXPECT_NE(t.substr(t.find('=') + 1), value) << a << " vs " << t;
  }
  for (const std::string& r : held_requests) EXPECT_FALSE(train_requests.count(r)) << r;
}

// Apps write their own system prompts: training sees many, composed from
// fragments, and held-out examples only prompts made of held-out fragments.
TEST(DeviceCorpus, HeldOutSystemPromptsAreMadeOfUnseenFragments) {
  auto prompts = [](bool heldout) {
    std::set<std::string> out;
    for (const DeviceExample& ex : make_device_examples(DeviceCorpusOptions{}, heldout, 4000))
      if (ex.messages.front().role == "system") out.insert(ex.messages.front().content);
    return out;
  };
  const std::set<std::string> train = prompts(false), held = prompts(true);
  EXPECT_GT(train.size(), 800u);
  EXPECT_GT(held.size(), 200u);
  using namespace device_corpus;
  for (const std::string& h : held) {
    EXPECT_FALSE(train.count(h)) << h;
    for (const Pool* pool : {&kSystemPrompts, &kPromptRoles, &kPromptTasks, &kPromptStyles})
      for (size_t i = 0; i < pool->size(); ++i) {
        const std::string& fragment = (*pool)[i];
        if (!is_heldout_index(i) && fragment.find("{name}") == std::string::npos) {
          EXPECT_EQ(h.find(fragment), std::string::npos) << h << " has the training fragment " << fragment;
        }
      }
  }
}

// Two requests in one sentence: both calls, in the order asked, joined by a
// word of the split's own part of kJoinWords.
TEST(DeviceCorpus, TwoRequestsInOneSentenceCallBothInOrder) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  auto first_string_value = [](const ChatJson& call) {
    for (const auto& [k, v] : call["arguments"].items())
      if (v.is_string() && k != "setting" && k != "page" && k != "type" && k != "camera" && k != "mode" &&
          k != "stream")
        return v.get<std::string>();
    return std::string();
  };
  for (bool heldout : {false, true}) {
    int compound = 0, ordered = 0;
    for (const DeviceExample& ex : make_device_examples(DeviceCorpusOptions{}, heldout, 4000)) {
      if (ex.expected_calls.size() < 2) continue;
      const ChatJson& a = ex.expected_calls.front();
      const ChatJson& b = ex.expected_calls.back();
      if (a["name"] == "toggle_setting" && b["name"] == "toggle_setting" && ex.expected_calls.size() == 2 &&
          a["arguments"]["on"] == b["arguments"]["on"])
        continue;  // "turn on wifi and bluetooth" is one request with two calls
      ++compound;
      std::string user;
      for (const ChatMessage& m : ex.messages)
        if (m.role == "user") user = lower(m.content);
      // The longest join word found is the one used (" and " is inside ", and also ").
      size_t join = std::string::npos, used = 0;
      for (size_t i = 0; i < device_corpus::kJoinWords.size(); ++i) {
        const std::string& w = device_corpus::kJoinWords[i];
        const size_t at = user.find(w);
        if (at == std::string::npos || (join != std::string::npos && w.size() <= device_corpus::kJoinWords[used].size()))
          continue;
        join = at;
        used = i;
      }
      ASSERT_NE(join, std::string::npos) << "no join word in " << user;
      EXPECT_EQ(device_corpus::is_heldout_index(used), heldout) << user;
      const std::string va = lower(first_string_value(a)), vb = lower(first_string_value(b));
      if (va.empty() || vb.empty() || user.find(va) == std::string::npos || user.rfind(vb) == std::string::npos)
        continue;
      ++ordered;
      EXPECT_LT(user.find(va), user.rfind(vb)) << user << "\n" << a.dump() << " before " << b.dump();
    }
    EXPECT_GT(compound, 4000 / 40) << "a few percent of the examples";
    EXPECT_GT(ordered, 30);
  }
}

// Copy examples ("repeat after me: ..."): the reply is a span of the request,
// word for word; in training, many spans are values the pools do not hold.
TEST(DeviceCorpus, RepeatRepliesCopyTheRequest) {
  int copies = 0, total = 0;
  for (const DeviceExample& ex : make_device_examples(DeviceCorpusOptions{}, false, 3000)) {
    ++total;
    std::string user, reply;
    for (const ChatMessage& m : ex.messages) {
      if (m.role == "user") user = m.content;
      if (m.role == "assistant" && reply.empty()) reply = m.content;
    }
    if (!ex.expected_calls.empty() || reply.empty() || reply.find(' ') == std::string::npos) continue;
    const std::string lower = user.empty() ? "" : std::string(1, static_cast<char>(std::tolower(user[0]))) + user.substr(1);
    copies += user.find(reply) != std::string::npos || lower.find(reply) != std::string::npos;
  }
  EXPECT_GT(copies, total / 25) << copies << " of " << total;
}

// The tokenizer's text (make-corpus tokenizer.txt) leaves out every free-text
// argument value, so its merges never make a value one token.
TEST(DeviceCorpus, ExamplesRecordTheirValuesForTheTokenizerText) {
  const std::regex phone(R"(555 \d{3} \d{4})");
  int checked = 0;
  for (bool heldout : {false, true})
    for (const DeviceExample& ex : make_device_examples(DeviceCorpusOptions{}, heldout, 1500)) {
      std::string text;
      for (const ChatMessage& m : ex.messages) text += m.content + "\n" + m.extra.dump() + "\n";
      std::string folded = without_values(text, ex.values);
      for (char& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (const ChatJson& c : ex.expected_calls)
        for (const auto& [k, v] : c["arguments"].items()) {
          const ChatJson& p = (*find_tool(c["name"]))["parameters"]["properties"][k];
          if (!v.is_string() || p.contains("enum") || std::regex_match(v.get<std::string>(), phone) || k == "time" ||
              k == "duration")
            continue;
          std::string value = v;
          for (char& ch : value) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          ++checked;
          EXPECT_EQ(folded.find("\"" + value + "\""), std::string::npos) << c.dump() << " left in\n" << folded;
        }
    }
  EXPECT_GT(checked, 1000);
}

TEST(DeviceCorpus, WithoutValuesRemovesLongestFirstInAnyCase) {
  EXPECT_EQ(without_values("Mail uncle Tom: hi Tom, UNCLE TOM.", {"Tom", "Uncle Tom"}), "Mail : hi , .");
  EXPECT_EQ(without_values("no values here", {}), "no values here");
  EXPECT_EQ(without_values("aaa", {"a", ""}), "");
}

// onellm.copy_arguments comes from here: the arguments training fills with a
// span of the request, and not those it converts ("half an hour" -> "30
// minutes", "4:30 pm" -> "16:30") or names from a list ("selfie" -> "front").
TEST(DeviceCorpus, VerbatimArgumentsAreTheOnesTrainingCopies) {
  const std::vector<std::string> names = verbatim_arguments(make_device_examples({}, false, 6000));
  for (const char* copied : {"send_message.to", "send_message.body", "send_email.subject", "web_search.query",
                             "create_event.title", "navigate.destination", "call.contact"})
    EXPECT_TRUE(std::count(names.begin(), names.end(), copied)) << copied;
  for (const char* converted : {"set_timer.duration", "create_event.time", "take_photo.camera", "navigate.mode",
                                "toggle_setting.setting"})
    EXPECT_FALSE(std::count(names.begin(), names.end(), converted)) << converted;
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

  // The share and the count, on examples made by hand: a span must start and
  // end at word boundaries ("Ben" is no span of "Benjamin").
  auto example = [](const std::string& request, const std::string& to) {
    DeviceExample ex;
    ex.messages = {{"user", request, {}}, {"assistant", "", {}}};
    ex.expected_calls = ChatJson::array({{{"name", "send_message"}, {"arguments", {{"to", to}, {"body", "hi"}}}}});
    return ex;
  };
  std::vector<DeviceExample> made(19, example("tell Ben hi", "Ben"));
  EXPECT_TRUE(verbatim_arguments(made).empty()) << "19 values are fewer than 20";
  made.push_back(example("tell Ben hi", "Ben"));
  EXPECT_EQ(verbatim_arguments(made), (std::vector<std::string>{"send_message.body", "send_message.to"}));
  made.push_back(example("tell Benjamin hi", "Ben"));
  EXPECT_EQ(verbatim_arguments(made), std::vector<std::string>{"send_message.body"}) << "20 of 21 is below 99 %";
  EXPECT_EQ(verbatim_arguments(made, 0.95).size(), 2u);
}

TEST(DeviceCorpus, DeterministicPerSeed) {
  DeviceCorpusOptions a, b;
  b.seed = 2;
  auto x = make_device_examples(a, false, 200), y = make_device_examples(a, false, 200);
  auto z = make_device_examples(b, false, 200);
  int differ = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].messages.back().content, y[i].messages.back().content);
    EXPECT_EQ(x[i].expected_calls, y[i].expected_calls);
    differ += x[i].messages[x[i].messages.size() > 1 && x[i].messages[0].role == "system"].content !=
              z[i].messages[z[i].messages.size() > 1 && z[i].messages[0].role == "system"].content;
  }
  EXPECT_GT(differ, 150);
}

}  // namespace
}  // namespace onellm
