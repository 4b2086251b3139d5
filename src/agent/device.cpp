// The simulated device's state and what each tool does to it.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "agent/device.h"
#include "base/error.h"

namespace onellm::agent {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool same_text(const Json& a, const std::string& b) { return a.is_string() && lower(a.get<std::string>()) == lower(b); }

struct Failure {
  std::string message;
};

// Every list of the state and what kind of value it holds, for from_json.
const char* const kLists[] = {"alarms", "timers", "events", "contacts", "calls", "messages", "emails",
                              "web_searches", "map_searches", "media", "documents"};

Json::iterator find_by(Json& list, const char* key, const std::string& value) {
  return std::find_if(list.begin(), list.end(), [&](const Json& e) { return e.contains(key) && same_text(e[key], value); });
}

bool looks_like_number(const std::string& s) {
  int digits = 0;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) ++digits;
    else if (!std::strchr("+-() .", c)) return false;
  }
  return digits >= 3;
}

// "10 minutes", "1 hour 30 minutes", "90 seconds", "2h", "1 hr 5 min".
long long parse_duration(const std::string& text) {
  std::istringstream in(lower(text));
  long long total = 0;
  bool any = false;
  while (true) {
    double amount;
    if (!(in >> amount)) break;
    std::string unit;
    while (in.peek() == ' ') in.get();
    while (std::isalpha(in.peek())) unit += static_cast<char>(in.get());
    long long scale = 0;
    if (unit == "h" || unit.rfind("hour", 0) == 0 || unit.rfind("hr", 0) == 0) scale = 3600;
    else if (unit == "m" || unit.rfind("min", 0) == 0) scale = 60;
    else if (unit == "s" || unit.rfind("sec", 0) == 0) scale = 1;
    if (scale == 0 || amount < 0) throw Failure{"cannot read duration '" + text + "' (e.g. \"10 minutes\", \"1 hour 30 minutes\")"};
    total += static_cast<long long>(amount * static_cast<double>(scale));
    any = true;
    while (in.peek() == ' ' || in.peek() == ',') in.get();
    std::string word;
    std::streampos at = in.tellg();
    if (in >> word && word != "and") in.seekg(at);
  }
  if (!any || !in.eof()) throw Failure{"cannot read duration '" + text + "' (e.g. \"10 minutes\", \"1 hour 30 minutes\")"};
  if (total <= 0 || total > 24 * 3600) throw Failure{"duration '" + text + "' must be between 1 second and 24 hours"};
  return total;
}

bool is_hh_mm(const std::string& s) {
  int h, m;
  char tail;
  return s.size() == 5 && s[2] == ':' && std::sscanf(s.c_str(), "%2d:%2d%c", &h, &m, &tail) == 2 && h >= 0 &&
         h < 24 && m >= 0 && m < 60;
}

std::string str(const Json& args, const char* key, const std::string& fallback = "") {
  return args.contains(key) ? args[key].get<std::string>() : fallback;
}

class ToolRunner {
 public:
  explicit ToolRunner(Json& s) : s_(s) {}

  Json run(const std::string& name, const Json& a) {
    static const std::map<std::string, Json (ToolRunner::*)(const Json&)> tools = {
        {"set_alarm", &ToolRunner::set_alarm},       {"set_timer", &ToolRunner::set_timer},
        {"show_alarms", &ToolRunner::show_alarms},   {"create_event", &ToolRunner::create_event},
        {"add_contact", &ToolRunner::add_contact},   {"get_contact", &ToolRunner::get_contact},
        {"call", &ToolRunner::call},                 {"send_message", &ToolRunner::send_message},
        {"send_email", &ToolRunner::send_email},     {"web_search", &ToolRunner::web_search},
        {"find_place", &ToolRunner::find_place},     {"navigate", &ToolRunner::navigate},
        {"toggle_setting", &ToolRunner::toggle},     {"open_settings", &ToolRunner::open_settings},
        {"take_photo", &ToolRunner::take_photo},     {"record_video", &ToolRunner::record_video},
        {"create_document", &ToolRunner::create_doc}, {"open_document", &ToolRunner::open_doc},
        {"delete_alarm", &ToolRunner::delete_alarm}, {"cancel_timer", &ToolRunner::cancel_timer},
        {"list_events", &ToolRunner::list_events},   {"delete_event", &ToolRunner::delete_event},
        {"delete_contact", &ToolRunner::delete_contact}, {"delete_document", &ToolRunner::delete_doc},
        {"set_brightness", &ToolRunner::set_brightness}, {"set_volume", &ToolRunner::set_volume}};
    return (this->*tools.at(name))(a);
  }

 private:
  long long next_id() {
    long long id = s_.value("next_id", 1LL);
    s_["next_id"] = id + 1;
    return id;
  }
  const Json& contact(const std::string& name) {
    auto it = find_by(s_["contacts"], "name", name);
    if (it == s_["contacts"].end()) throw Failure{"no contact named '" + name + "'"};
    return *it;
  }
  // A contact's field, or the text itself when it already is a number/address.
  std::string resolve(const std::string& who, const char* field) {
    if (std::string(field) == "phone" && looks_like_number(who)) return who;
    if (std::string(field) == "email" && who.find('@') != std::string::npos) return who;
    const Json& c = contact(who);
    if (!c.contains(field) || c[field].get<std::string>().empty())
      throw Failure{"contact '" + c["name"].get<std::string>() + "' has no " + field};
    return c[field].get<std::string>();
  }

  Json set_alarm(const Json& a) {
    Json alarm = {{"id", next_id()}, {"hour", a["hour"]}, {"minute", a["minute"]}, {"label", str(a, "label")},
                  {"enabled", true}};
    s_["alarms"].push_back(alarm);
    return {{"alarm", alarm}};
  }
  Json set_timer(const Json& a) {
    Json timer = {{"id", next_id()}, {"duration", a["duration"]}, {"seconds", parse_duration(str(a, "duration"))},
                  {"label", str(a, "label")}};
    s_["timers"].push_back(timer);
    return {{"timer", timer}};
  }
  Json show_alarms(const Json&) {
    s_["screen"] = {{"app", "clock"}, {"view", "alarms"}};
    return {{"alarms", s_["alarms"]}};
  }
  Json create_event(const Json& a) {
    if (a.contains("time") && !is_hh_mm(str(a, "time")))
      throw Failure{"argument 'time' must be HH:MM (24-hour), not '" + str(a, "time") + "'"};
    Json event = {{"id", next_id()}, {"title", a["title"]}, {"date", a["date"]}, {"time", str(a, "time")},
                  {"location", str(a, "location")}};
    s_["events"].push_back(event);
    return {{"event", event}};
  }
  Json add_contact(const Json& a) {
    Json& list = s_["contacts"];
    auto it = find_by(list, "name", str(a, "name"));
    bool updated = it != list.end();
    if (!updated) {
      list.push_back({{"name", a["name"]}, {"phone", ""}, {"email", ""}, {"address", ""}, {"birthday", ""}});
      it = list.end() - 1;
    }
    for (const char* f : {"phone", "email"})
      if (a.contains(f)) (*it)[f] = a[f];
    return {{updated ? "updated" : "added", *it}};
  }
  Json get_contact(const Json& a) {
    std::string field = str(a, "field");
    s_["screen"] = {{"app", "contacts"}, {"contact", contact(str(a, "name"))["name"]}, {"field", field}};
    return {{"name", contact(str(a, "name"))["name"]}, {field, resolve(str(a, "name"), field.c_str())}};
  }
  Json call(const Json& a) {
    Json record = {{"contact", a["contact"]}, {"number", resolve(str(a, "contact"), "phone")}};
    s_["calls"].push_back(record);
    return {{"calling", record}};
  }
  Json send_message(const Json& a) {
    Json record = {{"to", a["to"]}, {"number", resolve(str(a, "to"), "phone")}, {"body", a["body"]}};
    s_["messages"].push_back(record);
    return {{"sent", record}};
  }
  Json send_email(const Json& a) {
    Json record = {{"to", a["to"]}, {"address", resolve(str(a, "to"), "email")}, {"subject", a["subject"]},
                   {"body", a["body"]}};
    s_["emails"].push_back(record);
    return {{"sent", record}};
  }
  Json web_search(const Json& a) {
    s_["web_searches"].push_back({{"query", a["query"]}});
    s_["screen"] = {{"app", "browser"}, {"query", a["query"]}};
    const std::string q = str(a, "query");
    return {{"results", {{{"title", "About " + q}, {"url", "https://example.org/search?q=1"}},
                         {{"title", q + " - news"}, {"url", "https://example.org/news"}}}}};
  }
  Json find_place(const Json& a) {
    s_["map_searches"].push_back({{"query", a["query"]}});
    s_["screen"] = {{"app", "maps"}, {"query", a["query"]}};
    return {{"places", {{{"name", str(a, "query")}, {"distance_km", 1.2}}}}};
  }
  Json navigate(const Json& a) {
    s_["navigation"] = {{"destination", a["destination"]}, {"mode", str(a, "mode", "driving")}};
    return {{"navigating", s_["navigation"]}};
  }
  Json toggle(const Json& a) {
    s_["settings"][str(a, "setting")] = a["on"];
    return {{"setting", a["setting"]}, {"on", a["on"]}};
  }
  Json open_settings(const Json& a) {
    s_["settings_page"] = a["page"];
    s_["screen"] = {{"app", "settings"}, {"page", a["page"]}};
    return {{"opened", a["page"]}};
  }
  Json capture(const char* kind, const Json& a) {
    Json& media = s_["media"];
    char file[32];
    std::snprintf(file, sizeof file, "%s_%04zu.%s", kind[0] == 'p' ? "IMG" : "VID", media.size() + 1,
                  kind[0] == 'p' ? "jpg" : "mp4");
    Json item = {{"kind", kind}, {"camera", str(a, "camera", "back")}, {"file", file}};
    media.push_back(item);
    return {{"captured", item}};
  }
  Json take_photo(const Json& a) { return capture("photo", a); }
  Json record_video(const Json& a) { return capture("video", a); }
  Json create_doc(const Json& a) {
    if (find_by(s_["documents"], "name", str(a, "name")) != s_["documents"].end())
      throw Failure{"a document named '" + str(a, "name") + "' already exists"};
    Json doc = {{"name", a["name"]}, {"type", a["type"]}};
    s_["documents"].push_back(doc);
    s_["open_document"] = a["name"];
    return {{"created", doc}};
  }
  Json open_doc(const Json& a) {
    auto it = find_by(s_["documents"], "name", str(a, "name"));
    if (it == s_["documents"].end()) throw Failure{"no document named '" + str(a, "name") + "'"};
    s_["open_document"] = (*it)["name"];
    return {{"opened", *it}};
  }
  Json delete_alarm(const Json& a) {
    Json& list = s_["alarms"];
    auto it = std::find_if(list.begin(), list.end(), [&](const Json& e) { return e["hour"] == a["hour"] && e["minute"] == a["minute"]; });
    if (it == list.end()) {
      char when[16];
      std::snprintf(when, sizeof when, "%d:%02d", a["hour"].get<int>(), a["minute"].get<int>());
      throw Failure{std::string("no alarm at ") + when};
    }
    Json gone = *it;
    list.erase(it);
    return {{"deleted", gone}};
  }
  Json cancel_timer(const Json& a) {
    Json& list = s_["timers"];
    if (list.empty()) throw Failure{"no timer is running"};
    if (!a.contains("label")) {
      Json gone = list;
      list = Json::array();
      return {{"cancelled", gone}};
    }
    auto it = find_by(list, "label", str(a, "label"));
    if (it == list.end()) throw Failure{"no timer labelled '" + str(a, "label") + "'"};
    Json gone = *it;
    list.erase(it);
    return {{"cancelled", Json::array({gone})}};
  }
  Json list_events(const Json& a) {
    Json out = Json::array();
    s_["screen"] = {{"app", "calendar"}, {"date", a.contains("date") ? a["date"] : Json()}};
    for (const Json& e : s_["events"])
      if (!a.contains("date") || same_text(e["date"], str(a, "date"))) out.push_back(e);
    return {{"events", out}};
  }
  Json erase_named(const char* list_name, const char* key, const std::string& value, const char* what) {
    Json& list = s_[list_name];
    auto it = find_by(list, key, value);
    if (it == list.end()) throw Failure{std::string("no ") + what + " named '" + value + "'"};
    Json gone = *it;
    list.erase(it);
    return {{"deleted", gone}};
  }
  Json delete_event(const Json& a) { return erase_named("events", "title", str(a, "title"), "event"); }
  Json delete_contact(const Json& a) { return erase_named("contacts", "name", str(a, "name"), "contact"); }
  Json delete_doc(const Json& a) {
    if (same_text(s_["open_document"], str(a, "name"))) s_["open_document"] = nullptr;
    return erase_named("documents", "name", str(a, "name"), "document");
  }
  Json set_brightness(const Json& a) {
    s_["settings"]["brightness"] = a["level"];
    return {{"brightness", a["level"]}};
  }
  Json set_volume(const Json& a) {
    std::string stream = str(a, "stream", "media");
    s_["settings"]["volume_" + stream] = a["level"];
    return {{"stream", stream}, {"level", a["level"]}};
  }

  Json& s_;
};

const Json* find_tool(const std::string& name) {
  for (const Json& t : device_tool_definitions())
    if (t["function"]["name"] == name) return &t["function"];
  return nullptr;
}

}  // namespace

Json default_device_state() {
  auto contact = [](const char* name, const char* phone, const char* email, const char* address, const char* birthday) {
    return Json{{"name", name}, {"phone", phone}, {"email", email}, {"address", address}, {"birthday", birthday}};
  };
  Json s;
  s["next_id"] = 3;
  s["alarms"] = Json::array({{{"id", 1}, {"hour", 7}, {"minute", 0}, {"label", "work"}, {"enabled", true}}});
  s["timers"] = Json::array();
  s["events"] = Json::array({{{"id", 2}, {"title", "dentist"}, {"date", "friday"}, {"time", "15:00"},
                              {"location", "Main Street Clinic"}}});
  s["contacts"] = Json::array({contact("Mom", "+1 555 0100", "mom@example.com", "12 Oak Lane", "march 4"),
                               contact("Alex", "+1 555 0101", "alex@example.com", "3 Pine Road", "july 19"),
                               contact("Sam", "+1 555 0102", "sam@example.com", "", ""),
                               contact("Priya", "+1 555 0103", "priya@example.com", "40 Elm Street", "may 2"),
                               contact("Dr. Lee", "+1 555 0104", "", "Main Street Clinic", ""),
                               contact("Jordan", "", "jordan@example.com", "", "")});
  for (const char* list : {"calls", "messages", "emails", "web_searches", "map_searches", "media"}) s[list] = Json::array();
  s["documents"] = Json::array({{{"name", "budget"}, {"type", "spreadsheet"}},
                                {{"name", "meeting notes"}, {"type", "text"}},
                                {{"name", "resume"}, {"type", "pdf"}}});
  s["open_document"] = nullptr;
  s["navigation"] = nullptr;
  s["settings_page"] = nullptr;
  s["screen"] = nullptr;  // what read-only tools showed last, so tasks can check them
  s["settings"] = {{"wifi", true}, {"bluetooth", false}, {"airplane_mode", false}, {"do_not_disturb", false},
                   {"flashlight", false}, {"dark_mode", false}, {"location", true}, {"mobile_data", true},
                   {"battery_saver", false}, {"brightness", 60}, {"volume_media", 50}, {"volume_ring", 70},
                   {"volume_alarm", 80}};
  return s;
}

Device::Device() : state_(default_device_state()) {}

Device Device::from_json(const Json& state) {
  if (!state.is_object()) throw Error("device state must be a JSON object");
  Device d;
  // Fields absent from the file keep their defaults, so a task can give only
  // what it changes; present fields must have the right shape.
  for (const auto& [key, value] : state.items()) {
    if (!d.state_.contains(key)) throw Error("device state: unknown field '" + key + "'");
    const std::string& name = key;  // structured bindings cannot be captured before C++20 in clang 14
    bool is_list = std::any_of(std::begin(kLists), std::end(kLists), [&](const char* l) { return name == l; });
    if (is_list && !value.is_array()) throw Error("device state: '" + key + "' must be an array");
    if (is_list)
      for (const Json& e : value)
        if (!e.is_object()) throw Error("device state: every entry of '" + key + "' must be an object");
    if (key == "settings") {
      if (!value.is_object()) throw Error("device state: 'settings' must be an object");
      for (const auto& [k, v] : value.items()) d.state_["settings"][k] = v;
      continue;
    }
    if (key == "next_id" && !value.is_number_integer()) throw Error("device state: 'next_id' must be an integer");
    d.state_[key] = value;
  }
  return d;
}

Device Device::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Device();
  Json j = Json::parse(in, nullptr, false);
  if (j.is_discarded()) throw Error("device state file " + path + " is not valid JSON");
  try {
    return from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

void Device::save(const std::string& path) const {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << state_.dump(1) << "\n";
    out.flush();
    if (!out) throw Error("cannot write device state to " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot replace " + path + ": " + ec.message());
}

ToolResult Device::call(const std::string& name, const Json& args_in) {
  const Json* tool = find_tool(name);
  if (tool == nullptr) return {true, {{"error", "unknown tool '" + name + "'"}}};
  const Json args = args_in.is_null() ? Json::object() : args_in;
  std::string bad = schema_violation((*tool)["parameters"], args);
  if (!bad.empty()) return {true, {{"error", name + ": " + bad}}};
  // Work on a copy: a tool that fails leaves the device as it was.
  Json next = state_;
  try {
    Json out = ToolRunner(next).run(name, args);
    state_ = std::move(next);
    return {false, out};
  } catch (const Failure& f) {
    return {true, {{"error", name + ": " + f.message}}};
  }
}

}  // namespace onellm::agent
