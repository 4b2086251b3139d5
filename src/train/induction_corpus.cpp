// Copy-task documents for the first phase of training the own model. A small
// model trained only on the device corpus never forms induction heads (it
// learns argument values by heart and cannot copy a new one from the request);
// trained first on "A ; A ." it forms them within ~1 000 steps, and they stay
// when the device corpus follows (docs/training.md, "Session 13").
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "train/device_corpus_draw.h"
#include "train/train.h"

namespace onellm {
namespace {

using device_corpus::Draw;

void append_words(const std::string& text, std::vector<std::string>& words) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find_first_of(" \n", at);
    if (end == std::string::npos) end = text.size();
    if (end > at) words.push_back(text.substr(at, end - at));
    at = end + 1;
  }
}

// A number as requests write them: a count, a year, a clock time or digits.
std::string number_word(Draw& d) {
  switch (d.below(4)) {
    case 0: return std::to_string(d.range(0, 99));
    case 1: return std::to_string(d.range(1000, 2099));
    case 2: return std::to_string(d.range(1, 12)) + ":" + (d.chance(0.5) ? "00" : std::to_string(d.range(10, 59)));
    default: {
      std::string s;
      for (int i = d.range(3, 7); i > 0; --i) s += static_cast<char>('0' + d.below(10));
      return s;
    }
  }
}

// A pronounceable made-up word, a third of them capitalized like a name; never
// a word of a held-out request.
std::string made_up_word(Draw& d) {
  for (;;) {
    std::string w = d.pseudo_word();
    if (d.chance(1.0 / 3)) w[0] = static_cast<char>(w[0] - 'a' + 'A');
    if (!device_corpus::is_heldout_word(w)) return w;
  }
}

// One or two quoted spans of `words`, in order, each 1..6 words long.
std::string quoted_spans(const std::vector<std::string>& words, Draw& d) {
  auto span = [&](size_t from, size_t to) {  // words[from, to) as "w w w"
    std::string out = "\"";
    for (size_t i = from; i < to; ++i) out += (i > from ? " " : "") + words[i];
    return out + "\"";
  };
  const size_t n = words.size();
  const size_t start = d.below(n), len = 1 + d.below(std::min<size_t>(6, n - start));
  std::string out = span(start, start + len);
  const size_t rest = n - (start + len);
  if (rest > 0 && d.chance(0.5)) {
    const size_t start2 = start + len + d.below(rest), len2 = 1 + d.below(std::min<size_t>(6, n - start2));
    out += ", " + span(start2, start2 + len2);
  }
  return out;
}

// "6:30", "7" (hour 1-12, minutes 00-59) of a 12-hour time; false otherwise.
bool clock_digits(std::string_view w, int& hour, int& minute) {
  const size_t colon = w.find(':');
  const std::string_view h = w.substr(0, colon);
  if (h.empty() || h.size() > 2 || h.find_first_not_of("0123456789") != std::string_view::npos) return false;
  hour = std::stoi(std::string(h));
  minute = 0;
  if (colon != std::string_view::npos) {
    const std::string_view m = w.substr(colon + 1);
    if (m.size() != 2 || m.find_first_not_of("0123456789") != std::string_view::npos) return false;
    minute = std::stoi(std::string(m));
  }
  return hour >= 1 && hour <= 12 && minute <= 59;
}

// The length of the am/pm suffix that `w` starts with (0 if none); `pm` says which.
size_t suffix_length(std::string_view w, bool& pm) {
  for (std::string_view s : {"a.m.", "p.m.", "am", "AM", "pm", "PM"})
    if (w.substr(0, s.size()) == s) {
      pm = s[0] == 'p' || s[0] == 'P';
      return s.size();
    }
  return 0;
}

// `line` with each 12-hour time ("6:30 pm", "7AM", "11 p.m.,") as "HH:MM"
// (punctuation after the suffix kept).
std::string with_24_hour_times(const std::string& line) {
  std::vector<std::string> words;
  append_words(line, words);
  std::vector<std::string> out;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string word = words[i];
    const std::string& w = words[i];
    const size_t digits_end = std::min(w.size(), w.find_first_not_of("0123456789:"));
    int hour, minute;
    bool pm = false;
    if (clock_digits(std::string_view(w).substr(0, digits_end), hour, minute)) {
      // The suffix in the same word, or the next word's.
      const bool joined = digits_end < w.size();
      const std::string_view rest = joined ? std::string_view(w).substr(digits_end)
                                   : i + 1 < words.size() ? std::string_view(words[i + 1]) : std::string_view();
      const size_t n = suffix_length(rest, pm);
      if (n > 0 && rest.substr(n).find_first_not_of(".,!?") == std::string_view::npos) {
        word = device_corpus::two_digits(hour % 12 + (pm ? 12 : 0)) + ":" + device_corpus::two_digits(minute) +
               std::string(rest.substr(n));
        if (!joined) ++i;
      }
    }
    out.push_back(std::move(word));
  }
  return device_corpus::join_words(out);
}

}  // namespace

std::string make_induction_corpus(const std::vector<DeviceExample>& examples, const InductionCorpusOptions& options) {
  if (options.min_words < 1 || options.max_words < options.min_words)
    throw Error("induction corpus: need 1 <= min_words <= max_words");
  if (!(options.p_made_up >= 0 && options.p_made_up <= 1)) throw Error("induction corpus: p_made_up must be in [0, 1]");
  if (!(options.p_quoted >= 0 && options.p_quoted <= 1)) throw Error("induction corpus: p_quoted must be in [0, 1]");
  if (!(options.p_clock >= 0 && options.p_clock <= 1)) throw Error("induction corpus: p_clock must be in [0, 1]");
  // The requests in order, as one stream of words: spans of it are text the
  // model will read, words drawn from it cover the vocabulary by frequency.
  std::vector<std::string> stream;
  for (const DeviceExample& ex : examples)
    for (const ChatMessage& m : ex.messages)
      if (m.role == "user") append_words(m.content, stream);
  if (stream.size() < static_cast<size_t>(options.max_words))
    throw Error("induction corpus: the requests hold " + std::to_string(stream.size()) + " words, fewer than " +
                std::to_string(options.max_words));

  // Its own stream, so that adding documents never changes the device corpus.
  Draw d(options.seed ^ 0x1d0c7105eedULL, false);
  std::string text;
  std::vector<std::string> a;
  for (int64_t doc = 0; doc < options.n_documents; ++doc) {
    const size_t n = static_cast<size_t>(d.range(options.min_words, options.max_words));
    a.clear();
    if (d.chance(0.5)) {
      // A span of real requests: the copy must work on text as it comes.
      const size_t start = d.below(stream.size() - n + 1);
      a.assign(stream.begin() + static_cast<std::ptrdiff_t>(start),
               stream.begin() + static_cast<std::ptrdiff_t>(start + n));
    } else {
      // Words in no order: only copying predicts them, not the language.
      for (size_t i = 0; i < n; ++i) a.push_back(d.chance(options.p_number) ? number_word(d) : d.any(stream));
    }
    if (options.p_made_up > 0)
      for (std::string& w : a)
        if (d.chance(options.p_made_up)) w = made_up_word(d);
    std::string line = device_corpus::join_words(a);
    const bool quoted = options.p_quoted > 0 && d.chance(options.p_quoted);
    std::string copy = quoted ? quoted_spans(a, d) : line;
    std::string separator = " ; ";
    if (!quoted && options.p_clock > 0 && d.chance(options.p_clock)) {
      // A clock time among the words; the copy, after its own separator,
      // writes every 12-hour time of the line in 24-hour form.
      int hour, minute;
      device_corpus::draw_time(d, hour, minute);
      // Half of them with a two-digit 12-hour form (10-12 am/pm): "11 pm"
      // -> "23" is two digits to map, which uniform hours rarely show.
      static const std::vector<int> kTwoDigitHours = {0, 10, 11, 12, 22, 23};
      if (d.chance(0.5)) hour = d.any(kTwoDigitHours);
      const size_t at = d.below(a.size() + 1);
      a.insert(a.begin() + static_cast<std::ptrdiff_t>(at), device_corpus::spoken_time(hour, minute, d));
      line = device_corpus::join_words(a);
      copy = with_24_hour_times(line);
      separator = " => ";
    }
    text += line + separator + copy + " .<|endoftext|>";
  }
  return text;
}

}  // namespace onellm
