// The random draws of the device-assistant corpus (private to src/train):
// one stream per split builds requests, calls and the device's results.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "train/device_corpus_data.h"

namespace onellm::device_corpus {

// Draws from the training or held-out part of pools. Uses only raw
// mt19937_64 output (not <random> distributions) so that the corpus is the
// same with every standard library.
class Draw {
 public:
  Draw(uint64_t seed, bool heldout) : rng_(seed), heldout_(heldout) {}
  size_t below(size_t n) { return static_cast<size_t>(rng_() % n); }
  bool chance(double p) { return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p; }
  int range(int lo, int hi) { return lo + static_cast<int>(below(static_cast<size_t>(hi - lo + 1))); }
  // An entry of the split this generator draws from.
  const std::string& from(const Pool& pool) {
    for (;;) {
      size_t i = below(pool.size());
      if (is_heldout_index(i) == heldout_) return pool[i];
    }
  }
  template <typename T>
  const T& any(const std::vector<T>& v) { return v[below(v.size())]; }
  // A phrasing of the split; training ones varied with probability
  // vary_phrasings() (a synonym, a filler, a dropped small word), never into
  // a held-out phrasing. Held-out phrasings are returned as written.
  std::string phrasing(const Pool& pool);
  void vary_phrasings(double p) { p_vary_ = p; }
  // With probability p (before any variation) a training phrasing is
  // recombined: the text before, between and after its slots each comes from
  // a training phrasing of the pool with the same slots in the same order
  // ("text {to} saying {body}" + "send a message to {to}: {body}" ->
  // "text {to}: {body}"). Many more sentence frames, made only of training
  // words, so that where a value starts and ends is learnt from the words
  // around it rather than from whole memorized sentences.
  void mix_phrasings(double p) { p_mix_ = p; }
  std::string recombined(const Pool& pool, const std::string& base);
  // With probability p (after any variation) one word of a training phrasing
  // outside its slots, of 3+ letters, becomes a made-up word ("set an alarm
  // for {time}" -> "set an drask for {time}"). Held-out phrasings are mostly
  // sentences with a word training never shows ("buzz {contact}"); this
  // teaches the model that such a word is no value to copy and that the
  // rest of the sentence still says what is wanted.
  void unknown_words(double p) { p_unknown_ = p; }
  // An argument value. Held-out examples take a held-out entry. Training
  // ones take, a third of the time each, an entry, a new value made of the
  // pool's training words, or a new value of as many words drawn from every
  // pool's training words and made-up words (pseudo_word). A small model
  // otherwise learns each pool's values by heart instead of copying them from
  // the request, and fails on every value it has not seen; made-up words are
  // the ones it can only get right by copying.
  std::string value(const Pool& pool);
  // A pronounceable made-up word of 1-3 syllables ("dravel", "kimo").
  std::string pseudo_word();
  bool heldout() const { return heldout_; }
  // The values drawn for the current example (value(), dates, addresses),
  // which the tokenizer text leaves out; recording draws no random numbers.
  std::string record(const std::string& v) {
    recorded_.push_back(v);
    return v;
  }
  std::vector<std::string> take_recorded() { return std::exchange(recorded_, {}); }

 private:
  std::mt19937_64 rng_;
  bool heldout_;
  double p_vary_ = 0;
  double p_mix_ = 0;
  double p_unknown_ = 0;
  std::string varied(const Pool& pool);  // phrasing() before unknown_words()
  std::string with_unknown_word(const Pool& pool, const std::string& base);
  std::vector<std::string> recorded_;
};

// A system prompt of the split: one of kSystemPrompts, or composed of a role,
// a task, a style and a fact about the moment (device_corpus_system.cpp).
std::string system_prompt(Draw& d);

// The words of `text` between spaces (the text itself if it has none).
std::vector<std::string> split_words(const std::string& text);
// The words joined by single spaces.
std::string join_words(const std::vector<std::string>& words);

// "555 123 4567".
std::string phone_number(Draw& d);

// "07", "42".
std::string two_digits(int v);

// A time as people type it ("6:30 pm", "7AM", "18:05"), of hour 0-23.
std::string spoken_time(int hour, int minute, Draw& d);

// An hour and a minute (a quarter hour 60 % of the time).
void draw_time(Draw& d, int& hour, int& minute);

// Whether `word` (any case) occurs in a held-out entry of any pool (values,
// dates, phrasings, chit-chat): made-up words outside the corpus proper must
// not be one.
bool is_heldout_word(const std::string& word);

}  // namespace onellm::device_corpus
