// Value pools and phrasings of the device-assistant corpus (private to
// src/train). Every pool is split: entries at index % 4 == 3 are held out,
// so held-out examples use phrasings and values never seen in training.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace onellm::device_corpus {

using Pool = std::vector<std::string>;

extern const Pool kContactNames, kMessageBodies, kEmailSubjects, kEmailBodies, kSearchQueries, kPlaces,
    kDestinations, kEventTitles, kEventLocations, kAlarmLabels, kTimerLabels, kDocumentNames, kDates, kEmailAddresses;

// Phrasings per intent; "{slot}" marks a value.
extern const Pool kAlarmPhrasings, kTimerPhrasings, kShowAlarmsPhrasings, kEventPhrasings, kEventAtPlacePhrasings,
    kAddContactPhrasings, kGetContactPhrasings, kCallPhrasings, kMessagePhrasings, kEmailPhrasings,
    kSearchPhrasings, kFindPlacePhrasings, kNavigatePhrasings, kSettingOnPhrasings, kSettingOffPhrasings,
    kTwoSettingsPhrasings, kOpenSettingsPhrasings, kPhotoPhrasings, kSelfiePhrasings, kVideoPhrasings,
    kCreateDocumentPhrasings, kOpenDocumentPhrasings, kRepeatPhrasings;

// Requests without a tool: (phrasings, answers).
struct ChitChat {
  Pool requests;
  Pool answers;
};
extern const std::vector<ChitChat> kChitChat;

extern const Pool kSystemPrompts;

}  // namespace onellm::device_corpus
