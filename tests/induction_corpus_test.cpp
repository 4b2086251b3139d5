// The copy-task documents of the first training phase: every document is
// "A ; A ." with A of the requested length, made only of the training
// requests' words and numbers (never a held-out request's word that training
// lacks), half of them spans of real requests, and a function of the seed;
// with p_quoted, that share copies quoted spans of A instead ("A ; \"s\" .");
// with p_clock, that share holds a clock time copied in 24-hour form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "train/train.h"

namespace onellm {
namespace {

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    const size_t end = text.find(sep, at);
    out.push_back(text.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) return out;
    at = end + sep.size();
  }
}

// The documents of an induction corpus as (line, copy): each one is
// "line ; copy ." and ends with the separator.
std::vector<std::pair<std::string, std::string>> documents(const std::string& text) {
  std::vector<std::string> docs = split(text, "<|endoftext|>");
  EXPECT_EQ(docs.back(), "") << "every document ends with the separator";
  docs.pop_back();
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& doc : docs) {
    const std::vector<std::string> halves =
        doc.size() >= 2 && doc.substr(doc.size() - 2) == " ." ? split(doc.substr(0, doc.size() - 2), " ; ")
                                                               : std::vector<std::string>{};
    if (halves.size() == 2)
      out.emplace_back(halves[0], halves[1]);
    else
      ADD_FAILURE() << "not a 'line ; copy .' document: " << doc;
  }
  return out;
}

bool is_number(const std::string& w) {
  return !w.empty() && w.find_first_not_of("0123456789:") == std::string::npos;
}

TEST(InductionCorpus, DocumentsRepeatRequestWordsAndSpans) {
  const std::vector<DeviceExample> train = make_device_examples(DeviceCorpusOptions{}, false, 2000);
  std::set<std::string> words;
  std::string requests;
  for (const DeviceExample& ex : train)
    for (const ChatMessage& m : ex.messages)
      if (m.role == "user") {
        for (const std::string& w : split(m.content, " ")) words.insert(w);
        requests += m.content + " ";
      }
  InductionCorpusOptions o;
  o.n_documents = 400;
  o.min_words = 3;
  o.max_words = 9;
  const std::string text = make_induction_corpus(train, o);
  const auto docs = documents(text);
  ASSERT_EQ(docs.size(), 400u);
  int spans = 0, numbers = 0, n_words = 0;
  std::set<size_t> lengths;
  for (const auto& [line, copy] : docs) {
    EXPECT_EQ(line, copy);
    const std::vector<std::string> a = split(line, " ");
    lengths.insert(a.size());
    EXPECT_GE(a.size(), 3u);
    EXPECT_LE(a.size(), 9u);
    for (const std::string& w : a) {
      ++n_words;
      if (words.count(w)) continue;
      EXPECT_TRUE(is_number(w)) << "'" << w << "' is no request word: " << line;
      ++numbers;
    }
    spans += requests.find(line) != std::string::npos;
  }
  EXPECT_EQ(lengths.size(), 7u);  // every length from 3 to 9
  EXPECT_GT(spans, 150);          // about half, plus a few drawn ones that read like text
  EXPECT_LT(spans, 300);
  EXPECT_GT(numbers, n_words / 30);  // ~7 % of all words (15 % of the drawn half)

  EXPECT_EQ(make_induction_corpus(train, o), text);
  InductionCorpusOptions other = o;
  other.seed = 2;
  EXPECT_NE(make_induction_corpus(train, other), text);
}

// Made-up words stand for the values a held-out request brings; none may be
// a word of a held-out request that training lacks.
TEST(InductionCorpus, MadeUpWordsReplaceTheRequestedShareAndNeverHeldOutWords) {
  const std::vector<DeviceExample> train = make_device_examples(DeviceCorpusOptions{}, false, 2000);
  const std::vector<DeviceExample> heldout = make_device_examples(DeviceCorpusOptions{}, true, 3000);
  std::set<std::string> training_words, heldout_only;
  for (const DeviceExample& ex : train)
    for (const ChatMessage& m : ex.messages)
      if (m.role == "user")
        for (const std::string& line : split(m.content, "\n"))
          for (const std::string& w : split(line, " ")) training_words.insert(w);
  auto lower = [](std::string w) {
    for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return w;
  };
  for (const DeviceExample& ex : heldout)
    for (const ChatMessage& m : ex.messages)
      if (m.role == "user")
        for (std::string w : split(m.content, " ")) {
          if (w.find('\n') != std::string::npos) continue;  // not a word of the stream
          while (!w.empty() && std::string(".,!?:'").find(w.back()) != std::string::npos) w.pop_back();
          if (!training_words.count(w)) heldout_only.insert(lower(w));
        }
  ASSERT_GT(heldout_only.size(), 20u) << "the held-out split brings its own words";
  InductionCorpusOptions o;
  o.n_documents = 3000;
  o.p_made_up = 0.3;
  const std::string text = make_induction_corpus(train, o);
  int n_words = 0, made_up = 0, capitalized = 0;
  for (const auto& [line, copy] : documents(text)) {
    EXPECT_EQ(line, copy);
    for (const std::string& w : split(line, " ")) {
      ++n_words;
      if (training_words.count(w) || is_number(w)) continue;
      ++made_up;
      capitalized += w[0] >= 'A' && w[0] <= 'Z';
      EXPECT_EQ(w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), std::string::npos) << w;
      EXPECT_FALSE(heldout_only.count(lower(w))) << "'" << w << "' is a held-out word: " << line;
    }
  }
  // ~30 % are replaced (a few made-up words happen to be request words).
  EXPECT_GT(made_up, n_words / 4);
  EXPECT_LT(made_up, n_words * 35 / 100);
  EXPECT_GT(capitalized, made_up / 4);
  EXPECT_LT(capitalized, made_up * 4 / 10);
  o.p_made_up = 1.5;
  EXPECT_THROW(make_induction_corpus(train, o), Error);
}

// Quoted documents copy one or two spans of the line, in order, inside
// quotes: the step from " word" in a request to "word" in a tool call.
TEST(InductionCorpus, QuotedDocumentsCopySpansOfTheLineInOrder) {
  const std::vector<DeviceExample> train = make_device_examples(DeviceCorpusOptions{}, false, 2000);
  InductionCorpusOptions o;
  o.n_documents = 2000;
  o.p_quoted = 0.4;
  const std::string text = make_induction_corpus(train, o);
  int n_docs = 0, quoted = 0, two_spans = 0;
  for (const auto& [line, copy] : documents(text)) {
    const std::string doc = line + " ; " + copy;  // for messages
    ++n_docs;
    if (copy.empty() || copy[0] != '"') {
      EXPECT_EQ(line, copy);
      continue;
    }
    ++quoted;
    const std::vector<std::string> spans = split(copy, "\", \"");
    ASSERT_LE(spans.size(), 2u) << doc;
    two_spans += spans.size() == 2;
    const std::vector<std::string> words = split(line, " ");
    size_t next = 0;  // the word a later span may start at
    for (size_t s = 0; s < spans.size(); ++s) {
      std::string span = spans[s];
      if (s == 0) span.erase(0, 1);
      if (s + 1 == spans.size()) {
        ASSERT_FALSE(span.empty()) << doc;
        ASSERT_EQ(span.back(), '"') << doc;
        span.pop_back();
      }
      const std::vector<std::string> sw = split(span, " ");
      EXPECT_LE(sw.size(), 6u) << doc;
      bool found = false;
      for (size_t at = next; !found && at + sw.size() <= words.size(); ++at)
        if (std::equal(sw.begin(), sw.end(), words.begin() + static_cast<std::ptrdiff_t>(at))) {
          found = true;
          next = at + sw.size();
        }
      EXPECT_TRUE(found) << "span '" << span << "' is not a span of the line after the previous one: " << doc;
    }
  }
  EXPECT_GT(quoted, n_docs * 35 / 100);
  EXPECT_LT(quoted, n_docs * 45 / 100);
  EXPECT_GT(two_spans, quoted / 5);
  EXPECT_LT(two_spans, quoted / 2);
  o.p_quoted = -0.1;
  EXPECT_THROW(make_induction_corpus(train, o), Error);
}

// "6:30 pm" -> "18:30", "12 AM" -> "00:00", "9:05" -> "09:05"; "" when `text`
// is no clock time. Written apart from the generator's spoken_time.
std::string clock_24(const std::string& text) {
  size_t i = 0, hour = 0, minute = 0;
  const size_t digits = std::min<size_t>(2, std::min(text.size(), text.find_first_not_of("0123456789")));
  if (digits == 0) return "";
  hour = std::stoul(text.substr(0, digits));
  i = digits;
  if (i < text.size() && text[i] == ':') {
    if (i + 3 > text.size() || !isdigit(text[i + 1]) || !isdigit(text[i + 2])) return "";
    minute = std::stoul(text.substr(i + 1, 2));
    i += 3;
  }
  std::string suffix = text.substr(i);
  if (!suffix.empty() && suffix[0] == ' ') suffix.erase(0, 1);
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (minute > 59) return "";
  const bool twelve_hour = suffix == "pm" || suffix == "p.m." || suffix == "am" || suffix == "a.m.";
  if (twelve_hour && (hour < 1 || hour > 12)) return "";  // "25 PM" is no time
  if (suffix == "pm" || suffix == "p.m.") hour = hour % 12 + 12;
  else if (twelve_hour) hour = hour % 12;
  else if (!suffix.empty() || i == digits) return "";  // a bare number is no time
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02zu:%02zu", hour, minute);
  return buf;
}

// The hour of "6:30 pm" as written, in two digits ("06").
std::string two_digit_hour(const std::string& spoken) {
  const std::string digits = spoken.substr(0, spoken.find_first_not_of("0123456789"));
  return digits.size() == 1 ? "0" + digits : digits;
}

// With p_clock, that share of documents is "A => A' ." with a clock time
// among A's words, and A' is A with every 12-hour time in 24-hour form: the
// hour of a p.m. time is not a copy. The other documents stay "A ; A .".
TEST(InductionCorpus, ClockDocumentsCopyTimesIn24HourForm) {
  EXPECT_EQ(clock_24("6:30 pm"), "18:30");
  EXPECT_EQ(clock_24("12AM"), "00:00");
  EXPECT_EQ(clock_24("12:15 p.m."), "12:15");
  EXPECT_EQ(clock_24("9:05"), "09:05");
  EXPECT_EQ(clock_24("42"), "");
  const std::vector<DeviceExample> train = make_device_examples(DeviceCorpusOptions{}, false, 2000);
  InductionCorpusOptions o;
  o.n_documents = 3000;
  o.p_clock = 0.3;
  const std::string text = make_induction_corpus(train, o);
  std::vector<std::string> docs = split(text, "<|endoftext|>");
  docs.pop_back();
  int clock_docs = 0, pm = 0;
  for (const std::string& doc : docs) {
    const std::vector<std::string> halves = split(doc.substr(0, doc.size() - 2), " => ");
    if (halves.size() != 2) continue;  // a plain "A ; A ." (checked by documents())
    ++clock_docs;
    // Each 12-hour time of the line ("6:30 pm", "6:30pm", "6 PM.") as "HH:MM",
    // found by this file's own reading of times.
    const std::vector<std::string> words = split(halves[0], " ");
    std::string expected;
    int times = 0;
    for (size_t i = 0; i < words.size(); ++i) {
      std::string w = words[i], punct;
      bool two = false;
      std::string t;
      for (int k = 0; k < 2 && t.empty(); ++k) {  // with the next word, or alone
        std::string candidate = k == 0 && i + 1 < words.size() ? words[i] + " " + words[i + 1] : words[i];
        if (k == 0 && i + 1 >= words.size()) continue;
        punct.clear();
        while (!candidate.empty() && std::string(",!?").find(candidate.back()) != std::string::npos)
          punct.insert(punct.begin(), candidate.back()), candidate.pop_back();
        for (int dots = 0; dots < 2 && t.empty(); ++dots) {  // "p.m.." ends with a full stop
          t = clock_24(candidate);
          if (t.empty() && candidate.size() > 1 && candidate.back() == '.') candidate.pop_back(), punct.insert(0, ".");
        }
        const bool has_suffix = candidate.find_first_of("apAP") != std::string::npos;
        if (!has_suffix) t.clear();  // "9:05" alone stays as written
        two = k == 0;
      }
      if (!t.empty()) {
        ++times;
        pm += t.substr(0, 2) != two_digit_hour(w);
        w = t + punct;
        if (two) ++i;
      }
      expected += (expected.empty() ? "" : " ") + w;
    }
    EXPECT_EQ(halves[1], expected) << doc;
    EXPECT_GE(times + (halves[0] == halves[1]), 1) << "a clock document without a 12-hour time: " << doc;
  }
  EXPECT_GT(clock_docs, static_cast<int>(docs.size()) * 25 / 100);
  EXPECT_LT(clock_docs, static_cast<int>(docs.size()) * 35 / 100);
  EXPECT_GT(pm, clock_docs / 4);  // hours that are not the written digits
  o.p_clock = 1.5;
  EXPECT_THROW(make_induction_corpus(train, o), Error);
  o.p_clock = 0;
  InductionCorpusOptions plain;
  plain.n_documents = 3000;
  EXPECT_EQ(make_induction_corpus(train, o), make_induction_corpus(train, plain));  // 0 draws nothing
}

TEST(InductionCorpus, RejectsLengthsTheRequestsCannotFill) {
  const std::vector<DeviceExample> train = make_device_examples(DeviceCorpusOptions{}, false, 1);
  InductionCorpusOptions o;
  o.max_words = 100000;
  EXPECT_THROW(make_induction_corpus(train, o), Error);
  o.max_words = 2;
  o.min_words = 3;
  EXPECT_THROW(make_induction_corpus(train, o), Error);
}

}  // namespace
}  // namespace onellm
