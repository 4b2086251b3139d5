// <think>...</think> split off as reasoning_content: whole replies, and the
// same split while the reply streams in pieces of any size.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "service/reasoning.h"

namespace onellm {
namespace {

const ReasoningFormat kActive{true, false}, kInside{true, true}, kOff{false, false};

TEST(Reasoning, WholeReplies) {
  ReasoningSplit s = split_reasoning("<think>\nplan a\n</think>\n\nThe answer.", kActive);
  EXPECT_EQ(s.reasoning, "plan a");
  EXPECT_EQ(s.content, "The answer.");
  s = split_reasoning("plan b</think>\n\nDone", kInside);  // the prompt opened <think>
  EXPECT_EQ(s.reasoning, "plan b");
  EXPECT_EQ(s.content, "Done");
  s = split_reasoning("\n<think>still thinking when cut", kActive);
  EXPECT_EQ(s.reasoning, "still thinking when cut");
  EXPECT_EQ(s.content, "");
  s = split_reasoning("  No thinking <think> here", kActive);  // a tag later is content
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.content, "No thinking <think> here");
  s = split_reasoning("<think>a</think>b", kOff);
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.content, "<think>a</think>b");
  s = split_reasoning("<think></think>\n\n<tool_call>{}</tool_call>", kActive);
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.content, "<tool_call>{}</tool_call>");
}

TEST(Reasoning, StreamedInPiecesOfAnySizeGivesTheSameSplit) {
  const std::vector<std::pair<std::string, ReasoningFormat>> replies = {
      {"<think>\nI should say hi.\n</think>\n\nHi there </thin", kActive},
      {"plan</think>x</think>y", kInside},
      {"<thi", kActive},
      {"<thinking>not a tag</thinking>", kActive},
      {"  <think>a</th", kActive},
      {"text</think>", kOff}};
  for (const auto& [text, format] : replies) {
    const ReasoningSplit whole = split_reasoning(text, format);
    for (size_t piece = 1; piece <= 4; ++piece) {
      ReasoningStream stream(format);
      std::string reasoning, content;
      for (size_t at = 0; at < text.size(); at += piece) {
        ReasoningSplit part = stream.feed(std::string_view(text).substr(at, piece));
        reasoning += part.reasoning;
        content += part.content;
      }
      ReasoningSplit tail = stream.finish();
      reasoning += tail.reasoning;
      content += tail.content;
      while (!reasoning.empty() && (reasoning.back() == '\n' || reasoning.back() == ' ')) reasoning.pop_back();
      while (!reasoning.empty() && (reasoning.front() == '\n' || reasoning.front() == ' ')) reasoning.erase(0, 1);
      EXPECT_EQ(reasoning, whole.reasoning) << text << " in pieces of " << piece;
      EXPECT_EQ(content, whole.content) << text << " in pieces of " << piece;
    }
  }
  EXPECT_EQ(split_reasoning("<thinking>not a tag</thinking>", kActive).content, "<thinking>not a tag</thinking>");
  EXPECT_EQ(split_reasoning("plan</think>x</think>y", kInside).content, "x</think>y");
}

}  // namespace
}  // namespace onellm
