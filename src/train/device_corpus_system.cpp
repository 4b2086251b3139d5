// System prompts of the device-assistant corpus. Apps write their own system
// prompts, so the model must read past any of them to the request. With a
// handful of fixed prompts it learned them as part of the input, and an
// unseen one changed its tool choice (docs/training.md, "Session 21" and
// "Session 22": 38 % exact calls under unseen prompts against 58 % without
// one). Prompts are therefore composed from split fragment lists — a role, a
// task, a style and facts about the moment — so training sees hundreds of
// combinations and held-out examples only fragments it never saw.
#include <cctype>
#include <string>

#include "train/device_corpus_draw.h"

namespace onellm::device_corpus {

const Pool kAssistantNames = {"Nova", "Sage",  "Echo", "Iris", "Atlas", "Pixel", "Juno", "Orbit",
                              "Mira", "Zed",   "Luma", "Kai",  "Onyx",  "Aria",  "Milo", "Vega"};

const Pool kPromptRoles = {
    "You are a helpful assistant.", "You are {name}, an assistant on this phone.",
    "You are the assistant built into this phone.", "You are {name}.",
    "You are an AI assistant running locally on the user's device.", "You are a smart assistant for a mobile phone.",
    "This is {name}, the user's phone assistant.", "You are a personal assistant.",
    "You are an on-device language model.", "You are a voice assistant.", "You are a phone assistant named {name}.",
    "You are a capable assistant that helps people use their phone.",
    "You are the system assistant of an Android phone.", "You help the user operate their smartphone.",
    "You are {name}, a small model that runs offline.", "Your name is {name} and you live in this handset.",
    "You are the assistant of a phone.", "Role: phone assistant.", "You are a digital helper on a mobile device.",
    "You are {name}, the assistant of a car's infotainment system."};

const Pool kPromptTasks = {
    "Use the tools to do what the user asks.", "Call a function when the request needs the device.",
    "When an action is needed, call the right tool.", "Act on the device through the available tools.",
    "Answer questions directly and use tools for actions.", "Carry out requests with function calls.",
    "Pick the tool that matches the request and fill in its arguments from the user's words.",
    "If a tool can do it, call it.", "Only call tools that exist.", "Use the device's functions to help.",
    "Do what the user asks on the phone.", "Take actions with the tools provided.",
    "For alarms, messages, calls and settings, use the matching tool.",
    "You can set alarms, send messages, search the web and change settings.",
    "Prefer calling a tool over explaining how.", "Complete the user's request using the phone's tools.",
    "Help with anything the phone can do.", "Handle the user's requests.", "Use function calls for device actions.",
    "You have access to the phone's apps through tools."};

const Pool kPromptStyles = {
    "Keep answers short.", "Be brief.", "Reply in one sentence.", "Be concise.", "Be friendly and brief.",
    "Do not ask follow-up questions unless needed.", "Confirm what you did in a few words.", "Keep it short.",
    "Answer in plain language.", "Avoid long explanations.", "Be polite.",
    "Then say briefly what you did.", "Never make up facts.", "Respond clearly.", "Use a calm tone.",
    "Be direct.", "Don't use emojis.", "Speak naturally.", "No small talk.", "Be warm but short."};

namespace {

std::string with_name(std::string text, Draw& d) {
  const size_t at = text.find("{name}");
  if (at == std::string::npos) return text;
  // Training also names the assistant with made-up words, so no name is part
  // of what a request means.
  std::string name = !d.heldout() && d.chance(0.5) ? d.pseudo_word() : d.from(kAssistantNames);
  name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return text.replace(at, 6, name);
}

// A fact an app might put in its prompt; numbers and dates here are not the
// request's, which the model must not take them for.
std::string prompt_fact(Draw& d) {
  switch (d.below(4)) {
    case 0: return "Today is " + d.record(d.from(kDates)) + ".";
    case 1: return "The user's name is " + d.record(d.from(kContactNames)) + ".";
    case 2: return "The time is " + std::to_string(d.range(1, 12)) + ":" + std::to_string(d.range(10, 59)) + ".";
    default: return "The battery is at " + std::to_string(d.range(5, 100)) + "%.";
  }
}

}  // namespace

std::string system_prompt(Draw& d) {
  if (d.chance(0.25)) return d.from(kSystemPrompts);
  std::string prompt = with_name(d.from(kPromptRoles), d);
  if (d.chance(0.75)) prompt += " " + d.from(kPromptTasks);
  if (d.chance(0.5)) prompt += " " + d.from(kPromptStyles);
  if (d.chance(0.3)) prompt = d.chance(0.5) ? prompt_fact(d) + " " + prompt : prompt + " " + prompt_fact(d);
  return prompt;
}

}  // namespace onellm::device_corpus
