// Tool results for the device-assistant corpus: what the simulated device
// (src/agent/device.cpp) answers each call — the same keys, sorted and
// compact, as the agent loop hands them to the model — and the assistant's
// short reply to it. A model trained on "{"result": "ok"}" answered a real
// device's result by calling the tool again; this teaches it to read one.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "train/device_corpus_draw.h"

namespace onellm::device_corpus {
namespace {

using DeviceJson = nlohmann::json;  // sorted keys, like the device's replies

std::string clock(int hour, int minute) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%d:%02d", hour, minute);
  return buf;
}

// The device's rule: a phone number is dialled as is, anything else is a contact.
bool looks_like_number(const std::string& s) {
  int digits = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') ++digits;
    else if (std::string("+-() .").find(c) == std::string::npos) return false;
  }
  return digits >= 3;
}

// "1 hour 30 minutes" -> 5400, as the device computes it.
long long seconds_of(const std::string& duration) {
  long long total = 0, n = 0;
  char unit[16];
  int used = 0;
  for (const char* p = duration.c_str(); std::sscanf(p, "%lld %15s%n", &n, unit, &used) == 2; p += used) {
    const char u = unit[0];
    total += n * (u == 'h' ? 3600 : u == 'm' ? 60 : 1);
  }
  return total;
}

DeviceJson alarm_record(int id, int hour, int minute, const std::string& label) {
  return {{"id", id}, {"hour", hour}, {"minute", minute}, {"label", label}, {"enabled", true}};
}

std::string plural(size_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

std::string str(const ChatJson& args, const char* key) { return args.value(key, std::string()); }

}  // namespace

ToolOutcome device_outcome(const ChatJson& call, const std::string& confirmation, bool may_fail, Draw& r) {
  const std::string name = call["name"];
  const ChatJson& a = call["arguments"];
  const int id = r.range(1, 40);
  // The failures the device reports for this call, if any.
  std::string failure;
  auto fail_sometimes = [&](const std::string& message) {
    if (may_fail && failure.empty() && r.chance(0.12)) failure = message;
  };
  DeviceJson out;
  std::string reply = confirmation;
  if (name == "set_alarm") {
    out = {{"alarm", alarm_record(id, a["hour"], a["minute"], str(a, "label"))}};
  } else if (name == "set_timer") {
    out = {{"timer", {{"id", id}, {"duration", str(a, "duration")}, {"seconds", seconds_of(str(a, "duration"))},
                      {"label", str(a, "label")}}}};
  } else if (name == "show_alarms") {
    DeviceJson list = DeviceJson::array();
    std::string times;
    for (int i = r.range(0, 3); i > 0; --i) {
      const int h = r.range(5, 22), m = 15 * r.range(0, 3);
      list.push_back(alarm_record(id + i, h, m, ""));
      times += (times.empty() ? "" : ", ") + clock(h, m);
    }
    out = {{"alarms", list}};
    reply = list.empty() ? "You have no alarms." : "You have " + plural(list.size(), "alarm") + ": " + times + ".";
  } else if (name == "create_event") {
    out = {{"event", {{"id", id}, {"title", a["title"]}, {"date", a["date"]}, {"time", str(a, "time")},
                      {"location", str(a, "location")}}}};
  } else if (name == "add_contact") {
    out = {{"added", {{"name", a["name"]}, {"phone", str(a, "phone")}, {"email", str(a, "email")}, {"address", ""},
                      {"birthday", ""}}}};
  } else if (name == "get_contact") {
    const std::string who = str(a, "name"), field = str(a, "field");
    fail_sometimes("no contact named '" + who + "'");
    std::string value = field == "phone"     ? phone_number(r)
                        : field == "email"   ? "someone" + std::to_string(id) + "@example.com"
                        : field == "address" ? std::to_string(r.range(1, 99)) + " Park Lane"
                                             : r.record(r.from(kDates));
    out = {{"name", who}, {field, value}};
    reply = who + "'s " + field + " is " + value + ".";
  } else if (name == "call") {
    const std::string who = str(a, "contact");
    if (!looks_like_number(who)) fail_sometimes("no contact named '" + who + "'");
    out = {{"calling", {{"contact", who}, {"number", looks_like_number(who) ? who : phone_number(r)}}}};
  } else if (name == "send_message") {
    const std::string to = str(a, "to");
    if (!looks_like_number(to)) fail_sometimes("no contact named '" + to + "'");
    out = {{"sent", {{"to", to}, {"number", looks_like_number(to) ? to : phone_number(r)}, {"body", a["body"]}}}};
  } else if (name == "send_email") {
    const std::string to = str(a, "to");
    const bool address = to.find('@') != std::string::npos;
    if (!address) fail_sometimes("no contact named '" + to + "'");
    out = {{"sent", {{"to", to}, {"address", address ? to : "contact" + std::to_string(id) + "@example.com"},
                     {"subject", a["subject"]}, {"body", a["body"]}}}};
  } else if (name == "web_search") {
    const std::string q = str(a, "query");
    out = {{"results", {{{"title", "About " + q}, {"url", "https://example.org/search?q=1"}},
                        {{"title", q + " - news"}, {"url", "https://example.org/news"}}}}};
  } else if (name == "find_place") {
    out = {{"places", {{{"name", str(a, "query")}, {"distance_km", 1.2}}}}};
  } else if (name == "navigate") {
    out = {{"navigating", {{"destination", a["destination"]}, {"mode", a.value("mode", std::string("driving"))}}}};
  } else if (name == "toggle_setting") {
    out = {{"setting", a["setting"]}, {"on", a["on"]}};
  } else if (name == "open_settings") {
    out = {{"opened", a["page"]}};
  } else if (name == "take_photo" || name == "record_video") {
    const bool photo = name == "take_photo";
    char file[32];
    std::snprintf(file, sizeof file, "%s_%04d.%s", photo ? "IMG" : "VID", id, photo ? "jpg" : "mp4");
    out = {{"captured", {{"kind", photo ? "photo" : "video"}, {"camera", a.value("camera", std::string("back"))},
                         {"file", file}}}};
    reply = std::string(photo ? "Photo" : "Video") + " saved as " + file + ".";
  } else if (name == "create_document") {
    fail_sometimes("a document named '" + str(a, "name") + "' already exists");
    out = {{"created", {{"name", a["name"]}, {"type", a["type"]}}}};
  } else if (name == "open_document" || name == "delete_document") {
    fail_sometimes("no document named '" + str(a, "name") + "'");
    static const char* const kTypes[] = {"text", "pdf", "spreadsheet", "presentation"};
    out = {{name == "open_document" ? "opened" : "deleted", {{"name", a["name"]}, {"type", kTypes[r.range(0, 3)]}}}};
  } else if (name == "delete_alarm") {
    const int h = a["hour"], m = a["minute"];
    fail_sometimes("no alarm at " + clock(h, m));
    out = {{"deleted", alarm_record(id, h, m, "")}};
  } else if (name == "cancel_timer") {
    const std::string label = str(a, "label");
    fail_sometimes(label.empty() ? "no timer is running" : "no timer labelled '" + label + "'");
    DeviceJson list = DeviceJson::array();
    for (int i = label.empty() ? r.range(1, 2) : 1; i > 0; --i) {
      const int minutes = 5 * r.range(1, 12);
      list.push_back({{"id", id + i}, {"duration", plural(minutes, "minute")}, {"seconds", 60 * minutes},
                      {"label", label}});
    }
    out = {{"cancelled", list}};
    reply = list.size() == 1 ? "Timer cancelled." : "Cancelled " + plural(list.size(), "timer") + ".";
  } else if (name == "list_events") {
    DeviceJson list = DeviceJson::array();
    std::string said;
    for (int i = r.range(0, 3); i > 0; --i) {
      const std::string title = r.record(r.from(kEventTitles));
      const int h = r.range(7, 20), m = 15 * r.range(0, 3);
      char time[8];
      std::snprintf(time, sizeof time, "%02d:%02d", h, m);
      list.push_back({{"id", id + i}, {"title", title}, {"date", a.contains("date") ? str(a, "date")
                                                                                     : r.record(r.from(kDates))},
                      {"time", time}, {"location", ""}});
      said += (said.empty() ? "" : ", ") + title + " at " + clock(h, m);
    }
    out = {{"events", list}};
    reply = list.empty() ? "Nothing on your calendar." : "You have " + plural(list.size(), "event") + ": " + said + ".";
  } else if (name == "delete_event") {
    fail_sometimes("no event named '" + str(a, "title") + "'");
    out = {{"deleted", {{"id", id}, {"title", a["title"]}, {"date", r.record(r.from(kDates))},
                        {"time", clock(r.range(10, 20), 0)}, {"location", ""}}}};
  } else if (name == "delete_contact") {
    fail_sometimes("no contact named '" + str(a, "name") + "'");
    out = {{"deleted", {{"name", a["name"]}, {"phone", phone_number(r)}, {"email", ""}, {"address", ""},
                        {"birthday", ""}}}};
  } else if (name == "set_brightness") {
    out = {{"brightness", a["level"]}};
  } else if (name == "set_volume") {
    out = {{"stream", a.value("stream", std::string("media"))}, {"level", a["level"]}};
  } else {
    out = {{"result", "ok"}};
  }
  if (!failure.empty()) return {DeviceJson{{"error", name + ": " + failure}}.dump(), "I couldn't: " + failure + "."};
  return {out.dump(), reply};
}

}  // namespace onellm::device_corpus
