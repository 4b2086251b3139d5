// Varied training phrasings (src/train/device_corpus_phrasing.cpp): one word
// changed, slots kept, never a held-out phrasing, held-out ones untouched.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "train/device_corpus_draw.h"
#include "train/train.h"

namespace onellm {
namespace {

using device_corpus::Draw;
using device_corpus::Pool;

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t end = s.find(' ', at);
    if (end == std::string::npos) end = s.size();
    if (end > at) out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// Whether b is a with one word replaced, one word dropped, or up to three
// words added at one end.
bool one_edit(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() == b.size()) {
    int diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff += a[i] != b[i];
    return diff == 1;
  }
  if (b.size() + 1 == a.size()) {
    for (size_t skip = 0; skip < a.size(); ++skip) {
      std::vector<std::string> c = a;
      c.erase(c.begin() + static_cast<std::ptrdiff_t>(skip));
      if (c == b) return true;
    }
    return false;
  }
  if (b.size() > a.size() && b.size() <= a.size() + 3) {
    const size_t extra = b.size() - a.size();
    return std::vector<std::string>(b.begin() + static_cast<std::ptrdiff_t>(extra), b.end()) == a ||
           std::vector<std::string>(b.begin(), b.end() - static_cast<std::ptrdiff_t>(extra)) == a;
  }
  return false;
}

// Index 3 and 7 are held out; "set alarm for {time}" is one dropped word
// away from entry 0 and "take a pic" one synonym away from entry 4.
const Pool kPool = {"set the alarm for {time}", "wake me up at {time}", "show my alarms", "set alarm for {time}",
                    "take a photo", "turn on {setting}", "delete the {name} file", "take a pic"};

TEST(DevicePhrasing, TrainingPhrasingsChangeOneWordAndKeepTheirSlots) {
  Draw d(7, false);
  d.vary_phrasings(1.0);
  int varied = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string p = d.phrasing(kPool);
    ASSERT_NE(p, kPool[3]);
    ASSERT_NE(p, kPool[7]);
    bool entry = false, edited = false;
    for (size_t e = 0; e < kPool.size(); ++e) {
      if (e % 4 == 3) continue;
      entry |= p == kPool[e];
      const bool edit = one_edit(words(kPool[e]), words(p));
      if (edit) {
        // The slots of the entry it came from are all still there.
        for (const std::string& w : words(kPool[e]))
          if (w.front() == '{') {
            EXPECT_NE(p.find(w), std::string::npos) << p << " from " << kPool[e];
          }
      }
      edited |= edit;
    }
    EXPECT_TRUE(entry || edited) << p;
    varied += !entry;
  }
  EXPECT_GT(varied, 2000);
}

TEST(DevicePhrasing, HeldOutPhrasingsAndZeroProbabilityAreUntouched) {
  Draw held(7, true);
  held.vary_phrasings(1.0);
  for (int i = 0; i < 200; ++i) {
    const std::string p = held.phrasing(kPool);
    EXPECT_TRUE(p == kPool[3] || p == kPool[7]) << p;
  }
  // Without variation the draws are those of from(): the corpus stays the
  // same bytes as before variation existed.
  Draw a(11, false), b(11, false);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.from(kPool), b.phrasing(kPool));
}

// Texts around the slots: "a {x} b {y}" -> texts {"a ", " b ", ""}, slots {"x", "y"}.
void cut(const std::string& p, std::vector<std::string>& texts, std::vector<std::string>& slots) {
  texts.assign(1, "");
  slots.clear();
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '{') {
      texts.back() += p[i];
      continue;
    }
    const size_t close = p.find('}', i);
    slots.push_back(p.substr(i + 1, close - i - 1));
    texts.emplace_back();
    i = close;
  }
}

// Index 3 and 7 are held out and share the slots {to} {body} of entries 0, 1,
// 4 and 8; their texts (" that ", "tell ") must never appear.
const Pool kMixPool = {"text {to} saying {body}", "send a message to {to}: {body}", "ring {to}",
                       "tell {to} that {body}", "write to {to}: {body}", "call {to} now", "{body} for {to}",
                       "tell {to} {body}", "shoot {to} a note, {body} thanks"};

TEST(DevicePhrasing, RecombinedPhrasingsJoinTrainingTextsAroundTheSameSlots) {
  Draw d(5, false);
  d.mix_phrasings(1.0);
  std::set<std::string> seen;
  for (int i = 0; i < 3000; ++i) {
    const std::string p = d.phrasing(kMixPool);
    ASSERT_NE(p, kMixPool[3]);
    ASSERT_NE(p, kMixPool[7]);
    std::vector<std::string> texts, slots;
    cut(p, texts, slots);
    // Each text is the text at that place of a training entry with the same slots.
    for (size_t t = 0; t < texts.size(); ++t) {
      bool found = false;
      for (size_t e = 0; e < kMixPool.size(); ++e) {
        if (e % 4 == 3) continue;
        std::vector<std::string> et, es;
        cut(kMixPool[e], et, es);
        found |= es == slots && et[t] == texts[t];
      }
      EXPECT_TRUE(found) << "text '" << texts[t] << "' of " << p;
    }
    seen.insert(p);
  }
  // Every frame is drawn: {to} {body}: 4 distinct texts before, 3 between,
  // 2 after; {to}: 2 x 2; {body} {to}: 1.
  EXPECT_EQ(seen.size(), 4u * 3 * 2 + 2 * 2 + 1);
  EXPECT_TRUE(seen.count("shoot {to}: {body}")) << "a frame made of two entries";
  EXPECT_TRUE(seen.count("ring {to} now"));
  Draw held(5, true);
  held.mix_phrasings(1.0);
  for (int i = 0; i < 200; ++i) {
    const std::string p = held.phrasing(kMixPool);
    EXPECT_TRUE(p == kMixPool[3] || p == kMixPool[7]) << p;
  }
}

TEST(DevicePhrasing, UnknownWordsReplaceOneWordOutsideTheSlots) {
  Draw d(9, false);
  d.unknown_words(1.0);
  int changed = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string p = d.phrasing(kPool);
    ASSERT_NE(p, kPool[3]);
    ASSERT_NE(p, kPool[7]);
    int from = 0;  // training entries it is one word away from, that word being a 3+ letter non-slot one
    for (size_t e = 0; e < kPool.size(); ++e) {
      if (e % 4 == 3) continue;
      const std::vector<std::string> a = words(kPool[e]), b = words(p);
      if (a == b) {
        ++from;
        continue;
      }
      if (a.size() != b.size()) continue;
      int diff = 0;
      size_t at = 0;
      for (size_t w = 0; w < a.size(); ++w)
        if (a[w] != b[w]) ++diff, at = w;
      if (diff != 1 || a[at].size() < 3 || a[at].find('{') != std::string::npos) continue;
      EXPECT_FALSE(device_corpus::is_heldout_word(b[at])) << p;
      ++from;
    }
    EXPECT_GE(from, 1) << p;
    changed += p != kPool[0] && p != kPool[1] && p != kPool[2] && p != kPool[4] && p != kPool[5] && p != kPool[6];
  }
  EXPECT_GT(changed, 1900);  // every training entry has a word to change
  Draw held(9, true);
  held.unknown_words(1.0);
  for (int i = 0; i < 200; ++i) {
    const std::string p = held.phrasing(kPool);
    EXPECT_TRUE(p == kPool[3] || p == kPool[7]) << p;
  }
}

TEST(DevicePhrasing, VariedCorpusKeepsHeldOutRequestsUnseen) {
  DeviceCorpusOptions o;
  o.p_vary_phrasing = 0.5;
  o.p_mix_phrasing = 0.5;
  o.p_unknown_word = 0.5;
  std::set<std::string> train;
  for (const DeviceExample& ex : make_device_examples(o, false, 4000))
    for (const ChatMessage& m : ex.messages)
      if (m.role == "user") train.insert(m.content);
  for (const DeviceExample& ex : make_device_examples(o, true, 2000))
    for (const ChatMessage& m : ex.messages)
      if (m.role == "user") {
        EXPECT_FALSE(train.count(m.content)) << m.content;
      }
}

}  // namespace
}  // namespace onellm
