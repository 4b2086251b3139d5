#include <gtest/gtest.h>

#include <random>

#include "engine/stop_strings.h"

namespace onellm {
namespace {

// Feeds the pieces in order and returns everything emitted, flush included.
std::string run(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += m.feed(piece);
  return out + m.flush();
}

// Every emitted chunk must be whole UTF-8 characters (streamed to JSON clients).
bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(StopStrings, NoStopPassesEverythingThrough) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.feed("Hello"), "Hello");
  EXPECT_EQ(m.feed(", world"), ", world");
  EXPECT_EQ(m.flush(), "");
  EXPECT_FALSE(m.stopped());

  StopStringMatcher none({});
  EXPECT_EQ(none.feed("a</s>"), "a</s>");
  StopStringMatcher empty_stop({""});
  EXPECT_EQ(empty_stop.feed("abc"), "abc");
  EXPECT_FALSE(empty_stop.stopped());
}

TEST(StopStrings, StopSplitAcrossFeeds) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.feed("Hello <"), "Hello ");
  EXPECT_EQ(m.feed("/"), "");
  EXPECT_EQ(m.feed("s"), "");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("> and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.feed("ignored"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, FalseAlarmIsReleased) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.feed("a </"), "a ");
  EXPECT_EQ(m.feed("b>"), "</b>");
  EXPECT_EQ(m.feed("<"), "");
  EXPECT_EQ(m.flush(), "<");  // end of generation: the held-back prefix is real text
}

TEST(StopStrings, OverlappingPrefixes) {
  StopStringMatcher m({"ab"});
  EXPECT_EQ(m.feed("a"), "");
  EXPECT_EQ(m.feed("a"), "a");  // the first 'a' can no longer start "ab"
  EXPECT_EQ(m.feed("b"), "");
  EXPECT_TRUE(m.stopped());

  StopStringMatcher whole({"ab"});
  EXPECT_EQ(whole.feed("aab"), "a");

  StopStringMatcher longer({"aab"});
  EXPECT_EQ(run(longer, {"a", "a", "a", "b", "c"}), "a");
}

TEST(StopStrings, MultipleStopsEarliestWins) {
  StopStringMatcher m({"STOP", "\n\n"});
  EXPECT_EQ(m.feed("line\n\nSTOP"), "line");

  StopStringMatcher later_listed_first({"xyz", "b"});
  EXPECT_EQ(later_listed_first.feed("abxyz"), "a");

  StopStringMatcher nested({"abc", "ab"});
  EXPECT_EQ(nested.feed("xabc"), "x");

  // The first stop to complete wins, however the text is split: "c" is
  // complete before "bcbc" is.
  StopStringMatcher whole({"bcbc", "c"});
  EXPECT_EQ(whole.feed("bcbc"), "b");
  StopStringMatcher split({"bcbc", "c"});
  EXPECT_EQ(run(split, {"b", "c", "b", "c"}), "b");

  // The longest possible start is held back, whichever stop it belongs to.
  StopStringMatcher two({"abc", "bcd"});
  EXPECT_EQ(two.feed("xab"), "x");
  EXPECT_EQ(two.feed("c"), "");
  EXPECT_TRUE(two.stopped());
  StopStringMatcher three({"abc", "bcd"});
  EXPECT_EQ(three.feed("xbc"), "x");
  EXPECT_EQ(three.feed("e"), "bce");
}

TEST(StopStrings, MultiByteUtf8) {
  StopStringMatcher m({"。"});
  EXPECT_EQ(m.feed("你好。再见"), "你好");

  // Byte by byte: chunks never split a character, and the stop still matches.
  std::string text = "héllo 世界 终止 after";
  StopStringMatcher bytes({"终止"});
  std::string out;
  for (char c : text) {
    std::string chunk = bytes.feed(std::string(1, c));
    EXPECT_TRUE(is_valid_utf8(chunk));
    out += chunk;
  }
  EXPECT_EQ(out, "héllo 世界 ");
  EXPECT_TRUE(bytes.stopped());

  StopStringMatcher no_stop({});
  EXPECT_EQ(no_stop.feed("\xE4\xBD"), "");  // first two bytes of 你
  EXPECT_EQ(no_stop.feed("\xA0!"), "你!");
}

// Any split of any text gives the same output as feeding it byte by byte.
TEST(StopStrings, RandomSplitsMatchWholeTextCut) {
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", "c", "é"};  // pieces may split é
  auto random_string = [&](size_t max_chars) {
    std::string s;
    for (size_t i = 0, n = 1 + rng() % max_chars; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<std::string> stops;
    for (int i = 0, n = 1 + rng() % 3; i < n; ++i) stops.push_back(random_string(4));
    std::string text = random_string(30);
    // Reference: the shortest prefix of the text that contains a stop string,
    // cut at the earliest stop string inside it.
    size_t cut = std::string::npos;
    for (size_t end = 1; end <= text.size() && cut == std::string::npos; ++end) {
      for (const std::string& s : stops) cut = std::min(cut, text.substr(0, end).find(s));
    }
    std::string expected = text.substr(0, cut);

    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      size_t len = 1 + rng() % 5;
      pieces.push_back(text.substr(i, len));
      i += len;
    }
    StopStringMatcher m(stops);
    ASSERT_EQ(run(m, pieces), expected) << "text " << text << " first stop " << stops[0];
    EXPECT_EQ(m.stopped(), cut != std::string::npos);
  }
}

}  // namespace
}  // namespace onellm
