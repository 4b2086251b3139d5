// Value pools and phrasings of the device-assistant corpus (private to
// src/train). Every pool is split: entries at index % 4 == 3 are held out,
// so held-out examples use phrasings and values never seen in training.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template.h"

namespace onellm::device_corpus {

using Pool = std::vector<std::string>;

// Whether entry i of a pool or phrasing list belongs to the held-out split.
inline bool is_heldout_index(size_t i) { return i % 4 == 3; }

extern const Pool kContactNames, kMessageBodies, kEmailSubjects, kEmailBodies, kSearchQueries, kPlaces,
    kDestinations, kEventTitles, kEventLocations, kAlarmLabels, kTimerLabels, kDocumentNames, kDates, kEmailAddresses;

// Phrasings per intent; "{slot}" marks a value.
extern const Pool kAlarmPhrasings, kTimerPhrasings, kShowAlarmsPhrasings, kEventPhrasings, kEventAtPlacePhrasings,
    kAddContactPhrasings, kGetContactPhrasings, kCallPhrasings, kMessagePhrasings, kEmailPhrasings,
    kSearchPhrasings, kFindPlacePhrasings, kNavigatePhrasings, kSettingOnPhrasings, kSettingOffPhrasings,
    kTwoSettingsPhrasings, kOpenSettingsPhrasings, kPhotoPhrasings, kSelfiePhrasings, kVideoPhrasings,
    kCreateDocumentPhrasings, kOpenDocumentPhrasings, kRepeatPhrasings, kDeleteAlarmPhrasings,
    kCancelTimerPhrasings, kCancelLabelledTimerPhrasings, kListEventsPhrasings, kListEventsOnDatePhrasings,
    kDeleteEventPhrasings, kDeleteContactPhrasings, kDeleteDocumentPhrasings, kBrightnessPhrasings,
    kVolumePhrasings, kStreamVolumePhrasings;

// What joins two requests in one sentence.
extern const Pool kJoinWords;

// Requests without a tool: (phrasings, answers).
struct ChitChat {
  Pool requests;
  Pool answers;
};
extern const std::vector<ChitChat> kChitChat;

extern const Pool kSystemPrompts;
// Fragments composed into system prompts (device_corpus_system.cpp).
extern const Pool kAssistantNames, kPromptRoles, kPromptTasks, kPromptStyles;

// A tool's result as the simulated device gives it (compact JSON) and the
// assistant's reply to it: `confirmation`, or one built from the result
// (lists, files), or an apology naming the failure. `may_fail` lets the
// device fail now and then (unknown contact, missing document...) as it does;
// `draw` (the example's own) picks ids, numbers and failures.
struct ToolOutcome {
  std::string content;
  std::string confirmation;
};
class Draw;
ToolOutcome device_outcome(const ChatJson& call, const std::string& confirmation, bool may_fail, Draw& draw);

}  // namespace onellm::device_corpus
