// The device-assistant corpus generator: draws an intent, a phrasing and
// argument values, and builds the chat the model should learn (the call in
// Qwen/Hermes style, optionally its result and a short confirmation).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>

#include "base/error.h"
#include "train/device_corpus_data.h"
#include "train/device_corpus_draw.h"
#include "train/train.h"

namespace onellm {
namespace {

using namespace device_corpus;

const char* const kToolsJson =
#include "train/device_tools.json.inc"
    ;

// The free-text value pools (names, messages, queries, titles...).
const std::vector<const Pool*>& value_pools() {
  static const std::vector<const Pool*> pools = {&kContactNames,  &kMessageBodies, &kEmailSubjects, &kEmailBodies,
                                                 &kSearchQueries, &kPlaces,        &kDestinations,  &kEventTitles,
                                                 &kEventLocations, &kAlarmLabels,  &kTimerLabels,   &kDocumentNames,
                                                 &kEmailAddresses};
  return pools;
}

// Every word of the training entries of the value pools (but addresses).
const std::vector<std::string>& training_words() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> out;
    for (const Pool* pool : value_pools()) {
      if (pool == &kEmailAddresses) continue;
      for (size_t i = 0; i < pool->size(); ++i)
        if (!is_heldout_index(i))
          for (std::string w : split_words((*pool)[i])) {
            while (w.size() > 1 && std::string(".,!?:").find(w.back()) != std::string::npos) w.pop_back();
            out.push_back(w);
          }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }();
  return words;
}

// The held-out entries of every value pool: a made-up training value must
// not be one of them.
const std::set<std::string>& heldout_values() {
  static const std::set<std::string> values = [] {
    std::set<std::string> out;
    for (const Pool* pool : value_pools())
      for (size_t i = 0; i < pool->size(); ++i)
        if (is_heldout_index(i)) out.insert((*pool)[i]);
    return out;
  }();
  return values;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Upper-cases an ASCII first letter.
void capitalize(std::string& s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
}

}  // namespace

namespace device_corpus {

std::string Draw::value(const Pool& pool) {
  if (heldout_) return record(from(pool));
  for (;;) {
    const size_t kind = below(3);
    if (kind == 0) return record(from(pool));
    const std::vector<std::string> shape = split_words(from(pool));
    std::string out;
    for (size_t w = 0; w < shape.size(); ++w) {
      std::string word;
      if (kind == 1) {
        const std::vector<std::string> words = split_words(from(pool));
        word = words[below(words.size())];
      } else {
        word = chance(0.5) ? pseudo_word() : any(training_words());
        if (shape[w][0] >= 'A' && shape[w][0] <= 'Z') capitalize(word);  // as the entry it imitates
      }
      out += (w == 0 ? "" : " ") + word;
    }
    if (!heldout_values().count(out)) return record(out);
  }
}

std::string Draw::pseudo_word() {
  static const std::vector<std::string> kOnsets = {"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p",
                                                   "r", "s", "t", "v", "w", "z", "br", "ch", "dr", "gr", "kl",
                                                   "pl", "sh", "st", "tr", "th"};
  static const std::vector<std::string> kVowels = {"a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "y"};
  static const std::vector<std::string> kCodas = {"", "", "", "n", "r", "s", "l", "m", "t", "x", "nd", "ck"};
  std::string w;
  const int syllables = range(1, 3);
  for (int i = 0; i < syllables; ++i) w += any(kOnsets) + any(kVowels) + (i + 1 == syllables ? any(kCodas) : "");
  return w;
}

bool is_heldout_word(const std::string& word) {
  static const std::set<std::string> words = [] {
    // Every pool a request is made from (a new one belongs here too).
    std::vector<const Pool*> pools = value_pools();
    for (const Pool* p :
         {&kDates, &kAlarmPhrasings, &kTimerPhrasings, &kShowAlarmsPhrasings, &kEventPhrasings,
          &kEventAtPlacePhrasings, &kAddContactPhrasings, &kGetContactPhrasings, &kCallPhrasings, &kMessagePhrasings,
          &kEmailPhrasings, &kSearchPhrasings, &kFindPlacePhrasings, &kNavigatePhrasings, &kSettingOnPhrasings,
          &kSettingOffPhrasings, &kTwoSettingsPhrasings, &kOpenSettingsPhrasings, &kPhotoPhrasings, &kSelfiePhrasings,
          &kVideoPhrasings, &kCreateDocumentPhrasings, &kOpenDocumentPhrasings, &kRepeatPhrasings,
          &kDeleteAlarmPhrasings, &kCancelTimerPhrasings, &kCancelLabelledTimerPhrasings, &kListEventsPhrasings,
          &kListEventsOnDatePhrasings, &kDeleteEventPhrasings, &kDeleteContactPhrasings, &kDeleteDocumentPhrasings,
          &kBrightnessPhrasings, &kVolumePhrasings, &kStreamVolumePhrasings, &kJoinWords, &kSystemPrompts,
          &kAssistantNames, &kPromptRoles, &kPromptTasks, &kPromptStyles})
      pools.push_back(p);
    for (const ChitChat& c : kChitChat) pools.push_back(&c.requests);
    std::set<std::string> out;
    for (const Pool* pool : pools)
      for (size_t i = 0; i < pool->size(); ++i)
        if (is_heldout_index(i))
          for (std::string w : split_words((*pool)[i])) {
            while (!w.empty() && std::string(".,!?:;'\"").find(w.back()) != std::string::npos) w.pop_back();
            out.insert(lower(w));
          }
    return out;
  }();
  return words.count(lower(word)) > 0;
}

std::string phone_number(Draw& d) {
  return "555 " + std::to_string(d.range(100, 999)) + " " + std::to_string(d.range(1000, 9999));
}

std::string two_digits(int v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", v);
  return buf;
}

// A time as people type it: 24-hour a quarter of the time, else 12-hour with
// a suffix ("6:30 pm", "7AM", "11:05 a.m.").
std::string spoken_time(int hour, int minute, Draw& d) {
  if (d.chance(0.25)) return std::to_string(hour) + ":" + two_digits(minute);
  const int h12 = hour % 12 == 0 ? 12 : hour % 12;
  const char* suffix = hour < 12 ? d.any(std::vector<const char*>{"am", "AM", "a.m."})
                                 : d.any(std::vector<const char*>{"pm", "PM", "p.m."});
  std::string t = std::to_string(h12) + (minute == 0 && d.chance(0.7) ? "" : ":" + two_digits(minute));
  return t + (d.chance(0.7) ? " " : "") + suffix;
}

void draw_time(Draw& d, int& hour, int& minute) {
  hour = d.range(0, 23);
  minute = d.chance(0.6) ? 15 * d.range(0, 3) : d.range(0, 59);
}

}  // namespace device_corpus

namespace {

using Slots = std::vector<std::pair<std::string, std::string>>;

std::string fill(const std::string& phrasing, const Slots& slots) {
  std::string out = phrasing;
  for (const auto& [name, value] : slots) {
    const std::string key = "{" + name + "}";
    for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + value.size()))
      out.replace(at, key.size(), value);
  }
  if (out.find('{') != std::string::npos) throw Error("device corpus: unfilled slot in '" + phrasing + "'");
  return out;
}

// Surface variation a user's typing has: a greeting, capitals, punctuation,
// "please".
std::string vary(std::string s, Draw& d) {
  if (d.chance(0.1)) s = d.any(std::vector<std::string>{"hey, ", "ok, ", "hey onellm, ", "onellm, "}) + s;
  if (d.chance(0.5)) capitalize(s);
  if (d.chance(0.08) && s.find("please") == std::string::npos) s += " please";
  const size_t p = d.below(10);
  if (p < 3) s += ".";
  else if (p == 3) s += "!";
  else if (p == 4 && s.back() != '?') s += "?";
  return s;
}

struct Reply {
  std::string user;
  ChatJson calls = ChatJson::array();  // {"name", "arguments"}
  std::string answer;                  // text reply when there is no call
  std::string confirmation;            // after the tool result
};

ChatJson call(const std::string& name, ChatJson arguments) {
  return ChatJson{{"name", name}, {"arguments", std::move(arguments)}};
}

Reply alarm(Draw& d) {
  int h, m;
  draw_time(d, h, m);
  const std::string phrasing = d.phrasing(kAlarmPhrasings);
  ChatJson args{{"hour", h}, {"minute", m}};
  Slots slots{{"time", spoken_time(h, m, d)}};
  if (phrasing.find("{label}") != std::string::npos) {
    const std::string& label = d.value(kAlarmLabels);
    args["label"] = label;
    slots.emplace_back("label", label);
  }
  return {fill(phrasing, slots), ChatJson::array({call("set_alarm", args)}), "",
          "Alarm set for " + std::to_string(h) + ":" + two_digits(m) + "."};
}

Reply timer(Draw& d) {
  std::string spoken, value;
  const size_t kind = d.below(10);
  if (kind < 6) {
    int n = d.chance(0.5) ? d.range(1, 15) : 5 * d.range(1, 18);
    value = std::to_string(n) + (n == 1 ? " minute" : " minutes");
    spoken = d.chance(0.8) ? value : std::to_string(n) + (d.chance(0.5) ? " min" : " mins");
  } else if (kind < 8) {
    int n = 5 * d.range(2, 11);
    value = spoken = std::to_string(n) + " seconds";
  } else if (kind == 8) {
    int n = d.range(1, 3), extra = d.chance(0.5) ? 30 : 0;
    value = std::to_string(n) + (n == 1 ? " hour" : " hours") + (extra ? " 30 minutes" : "");
    spoken = value;
  } else {
    value = d.chance(0.5) ? "30 minutes" : "1 hour";
    spoken = value == "1 hour" ? "an hour" : "half an hour";
  }
  const std::string phrasing = d.phrasing(kTimerPhrasings);
  ChatJson args{{"duration", value}};
  Slots slots{{"duration", spoken}};
  if (phrasing.find("{label}") != std::string::npos) {
    const std::string& label = d.value(kTimerLabels);
    args["label"] = label;
    slots.emplace_back("label", label);
  }
  return {fill(phrasing, slots), ChatJson::array({call("set_timer", args)}), "", "Timer started: " + value + "."};
}

Reply event(Draw& d) {
  int h, m;
  draw_time(d, h, m);
  const std::string &title = d.value(kEventTitles), &date = d.record(d.from(kDates));
  const bool at_place = d.chance(0.3);
  ChatJson args{{"title", title}, {"date", date}, {"time", two_digits(h) + ":" + two_digits(m)}};
  Slots slots{{"title", title}, {"date", date}, {"time", spoken_time(h, m, d)}};
  if (at_place) {
    const std::string& location = d.value(kEventLocations);
    args["location"] = location;
    slots.emplace_back("location", location);
  }
  return {fill(d.phrasing(at_place ? kEventAtPlacePhrasings : kEventPhrasings), slots),
          ChatJson::array({call("create_event", args)}), "", "Added " + title + " on " + date + "."};
}

// An email address: a pool entry, or (in training, half the time) a made-up
// one, so that addresses are copied rather than remembered.
std::string email_address(Draw& d) {
  if (d.heldout() || d.chance(0.5)) return d.record(d.from(kEmailAddresses));
  static const std::vector<std::string> kDomains = {"example.com", "mail.com", "work.org", "example.net", "uni.edu"};
  std::string address = d.pseudo_word() + (d.chance(0.4) ? "." + d.pseudo_word() : "") + "@" + d.any(kDomains);
  return d.record(heldout_values().count(address) ? d.from(kEmailAddresses) : address);
}

Reply contact(Draw& d) {
  const std::string& name = d.value(kContactNames);
  if (d.chance(0.4)) {
    const std::string field = d.any(std::vector<std::string>{"phone", "email", "address", "birthday"});
    const std::string spoken = field == "phone" ? d.any(std::vector<std::string>{"phone", "number", "phone number"})
                             : field == "email" ? d.any(std::vector<std::string>{"email", "email address"})
                                                : field;
    return {fill(d.phrasing(kGetContactPhrasings), {{"name", name}, {"field", spoken}}),
            ChatJson::array({call("get_contact", {{"name", name}, {"field", field}})}), "", ""};
  }
  const std::string phrasing = d.phrasing(kAddContactPhrasings);
  ChatJson args{{"name", name}};
  Slots slots{{"name", name}};
  if (phrasing.find("{phone}") != std::string::npos) {
    std::string phone = phone_number(d);
    args["phone"] = phone;
    slots.emplace_back("phone", phone);
  } else {
    const std::string email = email_address(d);
    args["email"] = email;
    slots.emplace_back("email", email);
  }
  return {fill(phrasing, slots), ChatJson::array({call("add_contact", args)}), "",
          "Saved " + name + " to your contacts."};
}

std::string person_or_number(Draw& d) { return d.chance(0.8) ? d.value(kContactNames) : phone_number(d); }

Reply phone_call(Draw& d) {
  std::string who = person_or_number(d);
  return {fill(d.phrasing(kCallPhrasings), {{"contact", who}}), ChatJson::array({call("call", {{"contact", who}})}), "",
          "Calling " + who + "."};
}

Reply message(Draw& d) {
  std::string to = person_or_number(d);
  const std::string& body = d.value(kMessageBodies);
  return {fill(d.phrasing(kMessagePhrasings), {{"to", to}, {"body", body}}),
          ChatJson::array({call("send_message", {{"to", to}, {"body", body}})}), "", "Message sent to " + to + "."};
}

Reply email(Draw& d) {
  std::string to = d.chance(0.6) ? d.value(kContactNames) : email_address(d);
  const std::string &subject = d.value(kEmailSubjects), &body = d.value(kEmailBodies);
  return {fill(d.phrasing(kEmailPhrasings), {{"to", to}, {"subject", subject}, {"body", body}}),
          ChatJson::array({call("send_email", {{"to", to}, {"subject", subject}, {"body", body}})}), "",
          "Email sent to " + to + "."};
}

Reply search(Draw& d) {
  const std::string& q = d.value(kSearchQueries);
  return {fill(d.phrasing(kSearchPhrasings), {{"query", q}}), ChatJson::array({call("web_search", {{"query", q}})}), "",
          "Here is what I found."};
}

Reply place(Draw& d) {
  const std::string& q = d.value(kPlaces);
  return {fill(d.phrasing(kFindPlacePhrasings), {{"query", q}}), ChatJson::array({call("find_place", {{"query", q}})}),
          "", "Here it is on the map."};
}

Reply navigate(Draw& d) {
  const std::string& dest = d.value(kDestinations);
  const std::string phrasing = d.phrasing(kNavigatePhrasings);
  ChatJson args{{"destination", dest}};
  Slots slots{{"destination", dest}};
  if (phrasing.find("{mode") != std::string::npos) {
    static const std::vector<std::pair<std::string, std::string>> kModes = {
        {"driving", "car"}, {"walking", "foot"}, {"transit", "bus"}, {"cycling", "bike"}};
    static const std::vector<std::string> kVerbs = {"drive", "walk", "take transit", "cycle"};
    size_t k = d.below(kModes.size());
    args["mode"] = kModes[k].first;
    slots.emplace_back("mode_verb", kVerbs[k]);
    slots.emplace_back("mode", kModes[k].second);
  } else if (phrasing.find("drive to") != std::string::npos) {
    args["mode"] = "driving";
  }
  return {fill(phrasing, slots), ChatJson::array({call("navigate", args)}), "", "Starting directions to " + dest + "."};
}

// Setting enum values and how people name them.
const std::vector<std::pair<std::string, std::vector<std::string>>> kSettings = {
    {"wifi", {"wifi", "wi-fi", "the wifi"}},
    {"bluetooth", {"bluetooth", "the bluetooth"}},
    {"airplane_mode", {"airplane mode", "flight mode"}},
    {"do_not_disturb", {"do not disturb", "dnd"}},
    {"flashlight", {"the flashlight", "the torch", "flashlight"}},
    {"dark_mode", {"dark mode", "night theme"}},
    {"location", {"location", "gps", "location services"}},
    {"mobile_data", {"mobile data", "cellular data"}},
    {"battery_saver", {"battery saver", "power saving mode"}}};

Reply setting(Draw& d) {
  const bool on = d.chance(0.5);
  const auto& [value, names] = d.any(kSettings);
  if (d.chance(0.2)) {
    const auto& second = d.any(kSettings);
    if (second.first != value) {
      ChatJson calls = ChatJson::array({call("toggle_setting", {{"setting", value}, {"on", on}}),
                                        call("toggle_setting", {{"setting", second.first}, {"on", on}})});
      return {fill(d.phrasing(kTwoSettingsPhrasings),
                   {{"setting", d.any(names)}, {"setting2", d.any(second.second)}, {"state", on ? "on" : "off"}}),
              calls, "", "Done."};
    }
  }
  return {fill(d.phrasing(on ? kSettingOnPhrasings : kSettingOffPhrasings), {{"setting", d.any(names)}}),
          ChatJson::array({call("toggle_setting", {{"setting", value}, {"on", on}})}), "",
          "Turned " + std::string(on ? "on " : "off ") + names[0] + "."};
}

Reply settings_page(Draw& d) {
  static const std::vector<std::pair<std::string, std::string>> kPages = {
      {"wifi", "wifi"}, {"bluetooth", "bluetooth"}, {"display", "display"}, {"sound", "sound"},
      {"battery", "battery"}, {"storage", "storage"}, {"apps", "app"}, {"notifications", "notification"},
      {"privacy", "privacy"}, {"date_time", "date and time"}, {"accessibility", "accessibility"}};
  const auto& [value, spoken] = d.any(kPages);
  return {fill(d.phrasing(kOpenSettingsPhrasings), {{"page", spoken}}),
          ChatJson::array({call("open_settings", {{"page", value}})}), "", "Opened " + spoken + " settings."};
}

Reply camera(Draw& d) {
  const size_t kind = d.below(3);
  if (kind == 0) return {d.phrasing(kPhotoPhrasings), ChatJson::array({call("take_photo", ChatJson::object())}), "", ""};
  if (kind == 1)
    return {d.phrasing(kSelfiePhrasings), ChatJson::array({call("take_photo", {{"camera", "front"}})}), "", ""};
  const std::string p = d.phrasing(kVideoPhrasings);
  const bool front = p.find("selfie") != std::string::npos || p.find("front") != std::string::npos;
  return {p, ChatJson::array({call("record_video", front ? ChatJson{{"camera", "front"}} : ChatJson::object())}), "",
          ""};
}

Reply document(Draw& d) {
  const std::string& name = d.value(kDocumentNames);
  if (d.chance(0.5))
    return {fill(d.phrasing(kOpenDocumentPhrasings), {{"name", name}}),
            ChatJson::array({call("open_document", {{"name", name}})}), "", "Opened " + name + "."};
  static const std::vector<std::pair<std::string, std::string>> kTypes = {
      {"text", "text document"}, {"pdf", "pdf"}, {"spreadsheet", "spreadsheet"}, {"presentation", "presentation"}};
  const auto& [type, spoken] = d.any(kTypes);
  return {fill(d.phrasing(kCreateDocumentPhrasings), {{"name", name}, {"type", spoken}}),
          ChatJson::array({call("create_document", {{"name", name}, {"type", type}})}), "", "Created " + name + "."};
}

Reply show_alarms(Draw& d) {
  return {d.phrasing(kShowAlarmsPhrasings), ChatJson::array({call("show_alarms", ChatJson::object())}), "", ""};
}

Reply remove_alarm(Draw& d) {
  int h, m;
  draw_time(d, h, m);
  return {fill(d.phrasing(kDeleteAlarmPhrasings), {{"time", spoken_time(h, m, d)}}),
          ChatJson::array({call("delete_alarm", {{"hour", h}, {"minute", m}})}), "",
          "Deleted the " + std::to_string(h) + ":" + two_digits(m) + " alarm."};
}

Reply stop_timer(Draw& d) {
  if (d.chance(0.5))
    return {d.phrasing(kCancelTimerPhrasings), ChatJson::array({call("cancel_timer", ChatJson::object())}), "",
            "Timer cancelled."};
  const std::string& label = d.value(kTimerLabels);
  return {fill(d.phrasing(kCancelLabelledTimerPhrasings), {{"label", label}}),
          ChatJson::array({call("cancel_timer", {{"label", label}})}), "", "Timer cancelled."};
}

Reply calendar(Draw& d) {
  if (d.chance(0.5))
    return {d.phrasing(kListEventsPhrasings), ChatJson::array({call("list_events", ChatJson::object())}), "", ""};
  const std::string& date = d.record(d.from(kDates));
  return {fill(d.phrasing(kListEventsOnDatePhrasings), {{"date", date}}),
          ChatJson::array({call("list_events", {{"date", date}})}), "", ""};
}

Reply remove_event(Draw& d) {
  const std::string& title = d.value(kEventTitles);
  return {fill(d.phrasing(kDeleteEventPhrasings), {{"title", title}}),
          ChatJson::array({call("delete_event", {{"title", title}})}), "", "Deleted " + title + "."};
}

Reply remove_contact(Draw& d) {
  const std::string& name = d.value(kContactNames);
  return {fill(d.phrasing(kDeleteContactPhrasings), {{"name", name}}),
          ChatJson::array({call("delete_contact", {{"name", name}})}), "", "Deleted " + name + " from your contacts."};
}

Reply remove_document(Draw& d) {
  const std::string& name = d.value(kDocumentNames);
  return {fill(d.phrasing(kDeleteDocumentPhrasings), {{"name", name}}),
          ChatJson::array({call("delete_document", {{"name", name}})}), "", "Deleted " + name + "."};
}

int percent(Draw& d) { return d.chance(0.5) ? 10 * d.range(0, 10) : d.range(0, 100); }

Reply brightness(Draw& d) {
  const int level = percent(d);
  return {fill(d.phrasing(kBrightnessPhrasings), {{"level", std::to_string(level)}}),
          ChatJson::array({call("set_brightness", {{"level", level}})}), "",
          "Brightness set to " + std::to_string(level) + "%."};
}

Reply volume(Draw& d) {
  const int level = percent(d);
  if (d.chance(0.6))
    return {fill(d.phrasing(kVolumePhrasings), {{"level", std::to_string(level)}}),
            ChatJson::array({call("set_volume", {{"level", level}})}), "",
            "Volume set to " + std::to_string(level) + "%."};
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kStreams = {
      {"media", {"media", "music"}}, {"ring", {"ringer", "ring", "ringtone"}}, {"alarm", {"alarm"}}};
  const auto& [stream, names] = d.any(kStreams);
  return {fill(d.phrasing(kStreamVolumePhrasings), {{"stream", d.any(names)}, {"level", std::to_string(level)}}),
          ChatJson::array({call("set_volume", {{"level", level}, {"stream", stream}})}), "",
          "Volume set to " + std::to_string(level) + "%."};
}

// "Repeat after me": the reply is a span of the request, word for word. The
// dense copying signal teaches what every tool argument needs: taking a value
// from the request rather than from memory.
Reply repeat(Draw& d) {
  static const std::vector<const Pool*> kTexts = {&kMessageBodies, &kSearchQueries, &kEventTitles, &kEmailSubjects,
                                                  &kEmailBodies,   &kPlaces,        &kDocumentNames, &kContactNames};
  const std::string text = d.value(*d.any(kTexts));
  return {fill(d.from(kRepeatPhrasings), {{"text", text}}), ChatJson::array(), text, ""};
}

Reply chit_chat(Draw& d) {
  const ChitChat& c = d.any(kChitChat);
  return {d.from(c.requests), ChatJson::array(), d.any(c.answers), ""};
}

// Two requests in one sentence ("turn on wifi and set a timer for 5 minutes"):
// every call of both, in the order asked. Users chain requests; a model that
// has only seen one per turn answers the first and drops the second.
Reply two_requests(Draw& d) {
  static const std::vector<Reply (*)(Draw&)> kParts = {alarm,    timer,   event,      phone_call,   message,
                                                       search,   place,   navigate,   setting,      camera,
                                                       document, brightness, volume, remove_alarm, stop_timer};
  Reply first = d.any(kParts)(d);
  Reply second = d.any(kParts)(d);
  Reply both{first.user + d.from(kJoinWords) + second.user, first.calls, "", ""};
  for (const ChatJson& c : second.calls) both.calls.push_back(c);
  const bool confirmed = !first.confirmation.empty() && !second.confirmation.empty();
  both.confirmation = confirmed ? first.confirmation + " " + second.confirmation : "Done.";
  return both;
}

// Intents and their weights (how often each appears).
const std::vector<std::pair<Reply (*)(Draw&), int>> kIntents = {
    {alarm, 10}, {timer, 8},  {event, 10},   {contact, 8}, {phone_call, 8}, {message, 10},
    {email, 7},  {search, 8}, {place, 6},    {navigate, 7}, {setting, 10},  {settings_page, 4},
    {camera, 5}, {document, 6}, {show_alarms, 2}, {chit_chat, 10}, {repeat, 14}, {remove_alarm, 3},
    {stop_timer, 3}, {calendar, 3}, {remove_event, 3}, {remove_contact, 3}, {remove_document, 3},
    {brightness, 4}, {volume, 4}, {two_requests, 16}};

}  // namespace

const ChatJson& device_tools() {
  static const ChatJson tools = ChatJson::parse(kToolsJson);
  return tools;
}

std::vector<DeviceExample> make_device_examples(const DeviceCorpusOptions& o, bool heldout, int64_t n) {
  Draw d(o.seed * 2 + (heldout ? 1 : 0), heldout);
  d.vary_phrasings(heldout ? 0 : o.p_vary_phrasing);
  d.mix_phrasings(heldout ? 0 : o.p_mix_phrasing);
  d.unknown_words(heldout ? 0 : o.p_unknown_word);
  int total_weight = 0;
  for (const auto& intent : kIntents) total_weight += intent.second;
  std::vector<DeviceExample> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) {
    int pick = static_cast<int>(d.below(static_cast<size_t>(total_weight)));
    size_t k = 0;
    while (pick >= kIntents[k].second) pick -= kIntents[k++].second;
    Reply r = kIntents[k].first(d);
    DeviceExample ex;
    if (d.chance(o.p_system)) ex.messages.push_back({"system", system_prompt(d)});  // held-out ones unseen
    if (d.chance(o.p_tools_listed)) ex.tools = device_tools();
    ex.messages.push_back({"user", vary(r.user, d)});
    if (r.calls.empty()) {
      ex.messages.push_back({"assistant", r.answer});
    } else {
      ChatJson tool_calls = ChatJson::array();
      for (const ChatJson& c : r.calls) tool_calls.push_back({{"type", "function"}, {"function", c}});
      ex.messages.push_back({"assistant", "", ChatJson{{"tool_calls", tool_calls}}});
      ex.expected_calls = r.calls;
      if (d.chance(o.p_tool_result)) {
        // One call may fail as the device's do; parallel calls keep the
        // example's own confirmation.
        const bool one_call = r.calls.size() == 1;
        std::string reply = r.confirmation;
        for (const ChatJson& c : r.calls) {
          const ToolOutcome result = device_outcome(c, r.confirmation, one_call, d);
          ex.messages.push_back({"tool", result.content});
          if (one_call) reply = result.confirmation;
        }
        ex.messages.push_back({"assistant", reply});
      }
    }
    ex.values = d.take_recorded();
    out.push_back(std::move(ex));
  }
  return out;
}

std::string without_values(std::string text, std::vector<std::string> values) {
  std::stable_sort(values.begin(), values.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string folded = lower(text);
  for (const std::string& v : values) {
    if (v.empty()) continue;
    const std::string key = lower(v);
    for (size_t at = folded.find(key); at != std::string::npos; at = folded.find(key, at)) {
      text.erase(at, key.size());
      folded.erase(at, key.size());
    }
  }
  return text;
}

}  // namespace onellm
