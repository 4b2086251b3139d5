#include <gtest/gtest.h>

#include <string>

#include "tokenizer/text_table.h"

namespace onellm {
namespace {

TEST(TextTable, FindsEveryTextThroughRegrowth) {
  TextTable t;
  EXPECT_EQ(t.find("x"), -1);  // empty table
  for (int k = 0; k < 5000; ++k) t.add("t" + std::to_string(k), false);
  ASSERT_EQ(t.size(), 5000);
  for (int k = 0; k < 5000; k += 7) {
    EXPECT_EQ(t.find("t" + std::to_string(k)), k);
    EXPECT_EQ(t.at(k), "t" + std::to_string(k));
  }
  EXPECT_EQ(t.find("t5000"), -1);
  EXPECT_EQ(t.find(""), -1);
  EXPECT_EQ(t.find("t1"), 1);
}

TEST(TextTable, RepeatedTextsKeepTheChosenEntry) {
  TextTable first, last;
  for (TextTable* t : {&first, &last}) t->reserve(4, 8);
  const std::string with_nul("a\0b", 3);
  for (const std::string& s : {std::string("x"), with_nul, std::string(""), std::string("x"), with_nul}) {
    first.add(s, false);
    last.add(s, true);
  }
  EXPECT_EQ(first.find("x"), 0);
  EXPECT_EQ(last.find("x"), 3);
  EXPECT_EQ(first.find(with_nul), 1);
  EXPECT_EQ(last.find(with_nul), 4);
  EXPECT_EQ(first.find("a"), -1);  // a prefix of "a\0b" is another text
  EXPECT_EQ(first.find(""), 2);
  EXPECT_EQ(first.at(4), with_nul);
  // Regrowing the index (reserve past its size, then many adds) keeps the
  // winners it had.
  first.reserve(100, 100);
  last.reserve(100, 100);
  for (int k = 0; k < 300; ++k) {
    first.add("y" + std::to_string(k), false);
    last.add("y" + std::to_string(k), true);
  }
  EXPECT_EQ(first.find("x"), 0);
  EXPECT_EQ(last.find("x"), 3);
  EXPECT_EQ(last.find(with_nul), 4);
  EXPECT_EQ(last.find("y299"), 304);
}

}  // namespace
}  // namespace onellm
