// TriggerWatch (engine/trigger_watch.h): where a call's start string appears
// in generated text that arrives token by token.
#include <gtest/gtest.h>

#include "engine/trigger_watch.h"

namespace onellm {
namespace {

TEST(TriggerWatch, FindsATriggerSplitAcrossPiecesAndReturnsTheTextFromIt) {
  TriggerWatch w({"<tool_call>"});
  EXPECT_FALSE(w.feed("Sure, "));
  EXPECT_FALSE(w.feed("here <to"));
  EXPECT_FALSE(w.feed("ol_c"));
  const auto from = w.feed("all>{\"na");
  ASSERT_TRUE(from);
  EXPECT_EQ(*from, "<tool_call>{\"na");
  EXPECT_EQ(w.recent(), "") << "starts over after a trigger";
  EXPECT_FALSE(w.feed("me\": 1}"));
  EXPECT_EQ(*w.feed("<tool_call>"), "<tool_call>") << "a second call";
}

TEST(TriggerWatch, KeepsOnlyTheBytesALongestTriggerNeeds) {
  TriggerWatch w({"ab", "{\"name\""});
  EXPECT_FALSE(w.feed(std::string(100, 'x') + "{\"nam"));
  EXPECT_EQ(w.recent(), "xx{\"nam");
  EXPECT_EQ(*w.feed("e\": "), "{\"name\": ");
}

TEST(TriggerWatch, TheEarliestTriggerWinsAndEmptyOnesAreDropped) {
  TriggerWatch w({"", "<b>", "<a>"});
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(w.find_in("x<a> <b>"), 1u);
  EXPECT_EQ(w.find_in("none"), std::string::npos);
  EXPECT_EQ(*w.feed("text <b> then <a>"), "<b> then <a>");
  TriggerWatch none({""});
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.feed("anything"));
}

}  // namespace
}  // namespace onellm
