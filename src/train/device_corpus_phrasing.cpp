// Varied training phrasings. A small model learns the intent of each training
// phrasing by heart (97 % right tool on phrasings it has seen, 78 % on new
// ones: docs/training.md); changing a word of a phrasing the way people do —
// a synonym, a filler, a dropped small word — asks it to read the content
// words instead of recognizing the whole sentence.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "train/device_corpus_draw.h"

namespace onellm::device_corpus {
namespace {

// Words that can stand for one another in every phrasing they occur in.
const std::vector<std::vector<std::string>> kSynonyms = {
    {"delete", "remove", "erase"}, {"show", "display"},          {"photo", "picture", "pic"},
    {"enable", "activate"},        {"disable", "deactivate"},    {"text", "message"},
    {"email", "mail"},             {"make", "create"},           {"start", "begin"},
    {"turn", "switch"},            {"calendar", "agenda"},       {"need", "want"},
    {"can", "could"},              {"timer", "countdown"},       {"volume", "sound"},
    {"document", "file"},          {"directions", "route"},      {"video", "clip"},
    {"find", "locate"},            {"get", "fetch"},             {"tell", "inform"}};

const std::vector<std::string> kLeadingFillers = {"quickly", "now", "just", "um,", "so", "alright,", "oh and",
                                                   "hey"};
const std::vector<std::string> kTrailingFillers = {"now", "for me", "quickly", "right now", "real quick",
                                                    "thanks", "asap", "if you can", "right away"};
// Words whose absence leaves the request as clear (terse typing).
const std::vector<std::string> kDroppable = {"the", "my", "a", "an", "please", "me", "to", "for", "up"};

const std::vector<std::string>* synonyms_of(const std::string& word) {
  for (const auto& group : kSynonyms)
    for (const std::string& w : group)
      if (w == word) return &group;
  return nullptr;
}

bool droppable(const std::string& word) {
  for (const std::string& w : kDroppable)
    if (w == word) return true;
  return false;
}

// A phrasing cut at its slots: texts[0] {slots[0]} texts[1] ... {slots[k-1]} texts[k].
struct SlotCut {
  std::vector<std::string> texts, slots;
};

SlotCut cut_at_slots(const std::string& phrasing) {
  SlotCut cut;
  size_t at = 0;
  for (;;) {
    const size_t open = phrasing.find('{', at), close = phrasing.find('}', open);
    if (open == std::string::npos || close == std::string::npos) break;
    cut.texts.push_back(phrasing.substr(at, open - at));
    cut.slots.push_back(phrasing.substr(open + 1, close - open - 1));
    at = close + 1;
  }
  cut.texts.push_back(phrasing.substr(at));
  return cut;
}

// Whether `text` is a held-out entry of `pool`: a changed training phrasing
// must not become one.
bool is_heldout_entry(const Pool& pool, const std::string& text) {
  for (size_t i = 0; i < pool.size(); ++i)
    if (is_heldout_index(i) && pool[i] == text) return true;
  return false;
}

}  // namespace

std::string Draw::recombined(const Pool& pool, const std::string& base) {
  const SlotCut cut = cut_at_slots(base);
  if (cut.slots.empty()) return base;
  std::vector<SlotCut> same_slots;
  for (size_t i = 0; i < pool.size(); ++i)
    if (!is_heldout_index(i)) {
      SlotCut other = cut_at_slots(pool[i]);
      if (other.slots == cut.slots) same_slots.push_back(std::move(other));
    }
  std::string out;
  for (size_t t = 0; t < cut.texts.size(); ++t) {
    out += any(same_slots).texts[t];
    if (t < cut.slots.size()) out += "{" + cut.slots[t] + "}";
  }
  return is_heldout_entry(pool, out) ? base : out;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find(' ', at), text.size());
    if (end > at) words.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  if (words.empty()) words.push_back(text);
  return words;
}

std::string Draw::with_unknown_word(const Pool& pool, const std::string& base) {
  std::vector<std::string> words = split_words(base);
  std::vector<size_t> plain;
  for (size_t i = 0; i < words.size(); ++i) {
    size_t letters = 0;
    for (char c : words[i]) letters += std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (words[i].find('{') == std::string::npos && letters >= 3) plain.push_back(i);
  }
  if (plain.empty()) return base;
  std::string& word = words[any(plain)];
  std::string made_up;
  do made_up = pseudo_word();
  while (is_heldout_word(made_up));
  // Keep what follows the letters ("alarm," -> "drask,").
  size_t end = word.size();
  while (end > 0 && !std::isalpha(static_cast<unsigned char>(word[end - 1]))) --end;
  word = made_up + word.substr(end);
  const std::string out = join_words(words);
  return is_heldout_entry(pool, out) ? base : out;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + words[i];
  return out;
}

std::string Draw::phrasing(const Pool& pool) {
  std::string base = varied(pool);
  if (!heldout_ && p_unknown_ > 0 && chance(p_unknown_)) base = with_unknown_word(pool, base);
  return base;
}

std::string Draw::varied(const Pool& pool) {
  std::string base = from(pool);
  if (!heldout_ && p_mix_ > 0 && chance(p_mix_)) base = recombined(pool, base);
  if (heldout_ || p_vary_ <= 0 || !chance(p_vary_)) return base;
  std::vector<std::string> words = split_words(base);
  std::vector<size_t> swappable, drops;
  for (size_t i = 0; i < words.size(); ++i) {
    if (synonyms_of(words[i])) swappable.push_back(i);
    if (droppable(words[i]) && words.size() > 2) drops.push_back(i);
  }
  const size_t kind = below(3);
  if (kind == 0 && !swappable.empty()) {
    const size_t i = any(swappable);
    const std::vector<std::string>& group = *synonyms_of(words[i]);
    std::string other;
    do other = any(group);
    while (other == words[i]);
    words[i] = other;
  } else if (kind == 1 && !drops.empty()) {
    words.erase(words.begin() + static_cast<std::ptrdiff_t>(any(drops)));
  } else if (chance(0.5)) {
    words.insert(words.begin(), any(kLeadingFillers));
  } else {
    words.push_back(any(kTrailingFillers));
  }
  const std::string out = join_words(words);
  return is_heldout_entry(pool, out) ? base : out;
}

}  // namespace onellm::device_corpus
