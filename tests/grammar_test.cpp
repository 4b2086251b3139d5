// The grammar engine: GBNF syntax and errors, the matcher on text, token
// masks (whole-vocabulary walk == token-by-token check), JSON Schema
// translation on hand-written valid/invalid documents, and exhaustive
// integer ranges.
#include <gtest/gtest.h>

#include <optional>

#include "base/error.h"
#include "engine/engine.h"
#include "engine/json_schema.h"
#include "support/test_paths.h"
#include "support/tiny_qwen.h"

namespace onellm {
namespace {

class GrammarTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tiny_ = new test::TinyQwen;
    tok_ = tiny_->tokenizer.get();
    vocab_ = new std::shared_ptr<const GrammarVocab>(GrammarVocab::of(*tok_));
  }
  static void TearDownTestSuite() {
    delete vocab_;
    delete tiny_;
  }

  static bool matches(const std::string& gbnf, const std::string& text) {
    GrammarMatcher m(Grammar::parse(gbnf), *vocab_);
    try {
      m.accept_text(text);
    } catch (const Error&) {
      return false;
    }
    return m.can_end();
  }
  static bool schema_matches(const std::string& schema, const std::string& text) {
    return matches(json_schema_text_to_gbnf(schema), text);
  }

  static inline test::TinyQwen* tiny_;
  static inline Tokenizer* tok_;
  static inline std::shared_ptr<const GrammarVocab>* vocab_;
};

TEST_F(GrammarTest, LiteralsClassesAndRepetition) {
  EXPECT_TRUE(matches(R"(root ::= "ab" [0-9]+ "c"?)", "ab12"));
  EXPECT_TRUE(matches(R"(root ::= "ab" [0-9]+ "c"?)", "ab1c"));
  EXPECT_FALSE(matches(R"(root ::= "ab" [0-9]+ "c"?)", "ab"));
  EXPECT_FALSE(matches(R"(root ::= "ab" [0-9]+ "c"?)", "abc"));
  const std::string counted = R"(root ::= "x"{2,3} "y"{2} "z"{1,})";
  EXPECT_TRUE(matches(counted, "xxyyz"));
  EXPECT_TRUE(matches(counted, "xxxyyzzz"));
  EXPECT_FALSE(matches(counted, "xyyz"));
  EXPECT_FALSE(matches(counted, "xxxxyyz"));
  EXPECT_FALSE(matches(counted, "xxyyyz"));
  EXPECT_TRUE(matches(R"(root ::= [^a-c]*)", "xyz\xce\xb1"));
  EXPECT_FALSE(matches(R"(root ::= [^a-c]*)", "xbz"));
  // Multi-line rules, comments, groups, alternatives, references.
  const std::string g = "# a comment\nroot ::= greeting\n  ( \" \" name )*\ngreeting ::= \"hi\" | \"hello\"\n"
                        "name ::= [A-Z] [a-z]{0,5}  # trailing\n";
  EXPECT_TRUE(matches(g, "hello Ann Bob"));
  EXPECT_TRUE(matches(g, "hi"));
  EXPECT_FALSE(matches(g, "hi ann"));
}

TEST_F(GrammarTest, Utf8ClassesMatchWholeCharactersOnly) {
  const std::string g = R"(root ::= [α-ω]+ "\u00e9" .)";
  EXPECT_TRUE(matches(g, "αβω\xc3\xa9\xf0\x9f\x98\x80"));  // "αβωé😀"
  EXPECT_FALSE(matches(g, "αβA\xc3\xa9x"));
  EXPECT_FALSE(matches(g, "\xce"));  // half a character is not a sentence
  EXPECT_TRUE(matches(R"(root ::= [\u0800-\U0010FFFF])", "\xe0\xa0\x80"));
  EXPECT_TRUE(matches(R"(root ::= [\u0800-\U0010FFFF])", "\xf4\x8f\xbf\xbf"));
  EXPECT_FALSE(matches(R"(root ::= [\u0800-\U0010FFFF])", "\xdf\xbf"));
  EXPECT_FALSE(matches(R"(root ::= .)", "\xed\xa0\x80"));  // a surrogate is not a character
}

TEST_F(GrammarTest, SyntaxErrorsNameTheProblem) {
  auto error_of = [](const std::string& g) -> std::string {
    try {
      Grammar::parse(g);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("root ::= foo").find("'foo' is used but never defined"), std::string::npos);
  EXPECT_NE(error_of("start ::= \"a\"").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("root ::= root \"a\" | \"b\"").find("left-recursive"), std::string::npos);
  EXPECT_NE(error_of("root ::= x \"a\"\nx ::= \"\" | root").find("left-recursive"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{3,1}").find("n < m"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"\\q\"").find("unknown escape"), std::string::npos);
  EXPECT_NE(error_of("root ::= ( \"a\"").find("missing ')'"), std::string::npos);
  EXPECT_NE(error_of("root ::= [z-a]").find("end before start"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"").find("defined twice"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\" @").find("line 1, column 14"), std::string::npos);
}

TEST_F(GrammarTest, VocabularyMaskEqualsTokenByTokenCheck) {
  const std::string g = json_schema_text_to_gbnf(R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},
      "tags":{"type":"array","items":{"enum":["a","bc",3]},"maxItems":3},"n":{"type":"integer","minimum":-5,"maximum":120}},
      "required":["name","n"]})");
  GrammarMatcher m(Grammar::parse(g), *vocab_);
  const std::string text = R"({"name": "x\"y", "tags": ["bc", 3], "n": -4})";
  std::vector<uint8_t> mask(size_t(tok_->n_vocab()) + 7);  // longer than the vocabulary: the rest stays 0
  size_t n_states = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    m.fill_allowed(mask);
    size_t n_allowed = 0;
    for (int32_t id = 0; id < int32_t(mask.size()); ++id) {
      ASSERT_EQ(mask[id] != 0, m.allows(id)) << "token " << id << " after '" << text.substr(0, i) << "'";
      n_allowed += mask[id];
    }
    EXPECT_GT(n_allowed, 0u);
    ++n_states;
    if (i < text.size()) m.accept_text(text.substr(i, 1));
  }
  EXPECT_TRUE(m.must_end());
  for (int32_t id = 0; id < tok_->n_vocab(); ++id) EXPECT_EQ(m.allows(id), tok_->is_eog(id)) << id;
}

// The vocabulary cache is keyed by tokenizer instance, not address: a
// tokenizer created after another was destroyed (often at the same address)
// gets its own vocabulary. Keyed by address, the second model here got the
// first one's pieces and grammar decoding produced invalid output.
TEST(GrammarVocabCache, ANewTokenizerAtAFreedAddressGetsItsOwnVocabulary) {
  test::TempDir dir;
  std::vector<uint64_t> ids;
  for (int32_t n_vocab : {400, 520, 400, 610}) {
    TinyModelSpec spec;
    spec.n_embd = 32, spec.n_ff = 64, spec.n_layer = 1, spec.n_vocab = n_vocab;
    const std::string path = dir.file("v" + std::to_string(n_vocab) + ".gguf");
    write_tiny_model(spec, path);
    auto model = Model::load(path);
    auto tok = Tokenizer::from_gguf(model->gguf());
    EXPECT_EQ(GrammarVocab::of(*tok)->n_vocab(), tok->n_vocab());
    EXPECT_EQ(GrammarVocab::of(*tok), GrammarVocab::of(*tok));  // built once
    ids.push_back(tok->instance_id());
  }
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_NE(ids[i], ids[i - 1]);
}

// A real 50k vocabulary (GPT-2's): big walks are split over a thread pool
// (slices with their own node tables), small allowed sets come as id lists.
// Every state must give the same set on every path.
TEST_F(GrammarTest, ParallelWalkAndIdListsEqualTheSerialMask) {
  ONELLM_REQUIRE_SHARED();
  auto big_model = Model::load(test::shared_dir() + "/models/tiny-qwen2-Q8_0.gguf");
  auto big_tok = Tokenizer::from_gguf(big_model->gguf());
  auto big_vocab = GrammarVocab::of(*big_tok);
  auto grammar = Grammar::parse(json_schema_text_to_gbnf(
      R"({"type":"object","properties":{"note":{"type":"string","maxLength":12},"text":{"type":"string"},
          "n":{"type":"integer","minimum":-5,"maximum":120}},"required":["note","text","n"]})"));
  const std::string text = R"({"note": "caf\u00e9 \"ok\"", "text": "any length at all", "n": 42})";
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    GrammarMatcher serial(grammar, big_vocab), parallel(grammar, big_vocab);
    parallel.set_thread_pool(&pool);
    std::vector<uint8_t> want(size_t(big_tok->n_vocab())), got(want.size());
    size_t most_allowed = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
      serial.fill_allowed(want);
      const std::vector<int32_t>* few = parallel.few_allowed();
      parallel.fill_allowed(got);
      ASSERT_EQ(want, got) << threads << " threads, after '" << text.substr(0, i) << "'";
      std::vector<int32_t> ids;
      for (int32_t id = 0; id < int32_t(want.size()); ++id)
        if (want[size_t(id)]) ids.push_back(id);
      if (few) {
        EXPECT_EQ(*few, ids) << "after '" << text.substr(0, i) << "'";
      }
      most_allowed = std::max(most_allowed, ids.size());
      if (i % 9 == 0) {
        for (int32_t id = 0; id < int32_t(want.size()); ++id)
          ASSERT_EQ(want[size_t(id)] != 0, serial.allows(id)) << "token " << id << " after '" << text.substr(0, i) << "'";
      }
      if (i < text.size()) {
        ASSERT_NO_THROW(serial.accept_text(text.substr(i, 1))) << "at " << i;
        ASSERT_NO_THROW(parallel.accept_text(text.substr(i, 1))) << "at " << i;
      }
    }
    EXPECT_GT(most_allowed, 30000u);  // inside the free string: a walk big enough to be split
    EXPECT_TRUE(parallel.must_end());
  }
}

TEST_F(GrammarTest, SchemaObjectsRequiredOptionalAndOrder) {
  const std::string s = R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},
                            "c":{"type":"boolean"}},"required":["b"]})";
  EXPECT_TRUE(schema_matches(s, R"({"b":"x"})"));
  EXPECT_TRUE(schema_matches(s, R"({"a":1,"b":"x","c":true})"));
  EXPECT_TRUE(schema_matches(s, R"({ "a": -12, "b": "" })"));
  EXPECT_FALSE(schema_matches(s, R"({"a":1})"));        // b missing
  EXPECT_FALSE(schema_matches(s, R"({"b":"x","d":1})"));  // unknown property
  EXPECT_FALSE(schema_matches(s, R"({"b":"x",})"));
  EXPECT_FALSE(schema_matches(s, R"({"a":1.5,"b":"x"})"));
  const std::string none = R"({"type":"object","properties":{"p":{"type":"null"},"q":{"const":"k"}}})";
  EXPECT_TRUE(schema_matches(none, "{}"));
  EXPECT_TRUE(schema_matches(none, R"({"q":"k"})"));
  EXPECT_TRUE(schema_matches(none, R"({"p":null,"q":"k"})"));
  EXPECT_FALSE(schema_matches(none, R"({"q":"z"})"));
  EXPECT_FALSE(schema_matches(none, R"({,"q":"k"})"));
}

TEST_F(GrammarTest, SchemaArraysStringsEnumsRefs) {
  const std::string arr = R"({"type":"array","items":{"type":"string","minLength":1,"maxLength":3},"minItems":1,"maxItems":2})";
  EXPECT_TRUE(schema_matches(arr, R"(["a"])"));
  EXPECT_TRUE(schema_matches(arr, R"(["abc", "\u00e9\n"])"));
  EXPECT_FALSE(schema_matches(arr, "[]"));
  EXPECT_FALSE(schema_matches(arr, R"(["a","b","c"])"));
  EXPECT_FALSE(schema_matches(arr, R"(["abcd"])"));
  EXPECT_FALSE(schema_matches(arr, R"([""])"));
  const std::string tuple = R"({"type":"array","prefixItems":[{"type":"integer"},{"enum":["x","y"]}],"items":false})";
  EXPECT_TRUE(schema_matches(tuple, "[]"));
  EXPECT_TRUE(schema_matches(tuple, "[1]"));
  EXPECT_TRUE(schema_matches(tuple, R"([1,"y"])"));
  EXPECT_FALSE(schema_matches(tuple, R"([1,"y",2])"));
  EXPECT_FALSE(schema_matches(tuple, R"(["y"])"));
  const std::string rec = R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
      "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"})";
  EXPECT_TRUE(schema_matches(rec, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]})"));
  EXPECT_FALSE(schema_matches(rec, R"({"v":1,"kids":[{"w":2}]})"));
  const std::string any = R"({"anyOf":[{"type":"integer"},{"type":"string","format":"date"},{"type":"null"}]})";
  EXPECT_TRUE(schema_matches(any, "42"));
  EXPECT_TRUE(schema_matches(any, R"("2024-02-29")"));
  EXPECT_TRUE(schema_matches(any, "null"));
  EXPECT_FALSE(schema_matches(any, R"("2024-13-01")"));
  EXPECT_FALSE(schema_matches(any, R"("2023-02-29")"));
  EXPECT_TRUE(schema_matches(any, R"("2000-02-29")"));
  EXPECT_FALSE(schema_matches(any, R"("1900-02-29")"));
  EXPECT_FALSE(schema_matches(any, R"("2023-04-31")"));
  EXPECT_FALSE(schema_matches(any, R"("0000-01-01")"));
  EXPECT_TRUE(schema_matches(R"({"type":["string","integer"]})", "7"));
  EXPECT_TRUE(schema_matches(R"({"type":"object"})", R"({"k":[1,{"z":null}],"j":"s"})"));
  EXPECT_TRUE(schema_matches(R"({"type":"object","additionalProperties":{"type":"integer"}})", R"({"k":1,"j":2})"));
  EXPECT_FALSE(schema_matches(R"({"type":"object","additionalProperties":{"type":"integer"}})", R"({"k":"1"})"));
}

TEST_F(GrammarTest, IntegerAndNumberBoundsAreExact) {
  for (auto [lo, hi] : std::vector<std::pair<int, int>>{{-123, 456}, {0, 9}, {7, 7}, {-50, -3}, {95, 1005}}) {
    std::string schema = R"({"type":"integer","minimum":)" + std::to_string(lo) + R"(,"maximum":)" + std::to_string(hi) + "}";
    GrammarMatcher probe(Grammar::parse(json_schema_text_to_gbnf(schema)), *vocab_);
    auto g = Grammar::parse(json_schema_text_to_gbnf(schema));
    for (int v = lo - 30; v <= hi + 30; ++v) {
      GrammarMatcher m(g, *vocab_);
      bool ok = true;
      try {
        m.accept_text(std::to_string(v));
      } catch (const Error&) {
        ok = false;
      }
      EXPECT_EQ(ok && m.can_end(), v >= lo && v <= hi) << schema << " value " << v;
    }
    EXPECT_FALSE(matches(json_schema_text_to_gbnf(schema), "-0" + std::to_string(std::abs(lo))));
  }
  const std::string excl = R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10})";
  EXPECT_FALSE(schema_matches(excl, "0"));
  EXPECT_TRUE(schema_matches(excl, "1"));
  EXPECT_FALSE(schema_matches(excl, "10"));
  const std::string num = R"({"type":"number","minimum":-2,"maximum":3})";
  for (std::string ok : {"-2", "-2.0", "-1.99", "0", "0.5", "-0.25", "2.999", "3", "3.00"}) EXPECT_TRUE(schema_matches(num, ok)) << ok;
  for (std::string bad : {"-2.01", "3.5", "3.01", "4", "-3", "1e2", "03"}) EXPECT_FALSE(schema_matches(num, bad)) << bad;
  const std::string neg = R"({"type":"number","minimum":-10,"maximum":-4})";
  for (std::string ok : {"-4", "-4.5", "-10", "-9.99"}) EXPECT_TRUE(schema_matches(neg, ok)) << ok;
  for (std::string bad : {"-3.9", "-10.1", "0", "-0.5", "4"}) EXPECT_FALSE(schema_matches(neg, bad)) << bad;
}

// Decimal bounds (inclusive, exclusive, negative, one-sided, within one
// integer): every number k/1000 in and around the range, written with and
// without trailing zeros, is accepted exactly when it lies within the bounds.
TEST_F(GrammarTest, DecimalNumberBoundsAreExact) {
  struct Case {
    std::string schema;
    std::optional<int64_t> lo, hi;  // thousandths
    bool lo_strict, hi_strict;
  };
  const std::vector<Case> cases = {
      {R"({"type":"number","minimum":-2.5,"maximum":37.25})", -2500, 37250, false, false},
      {R"({"type":"number","exclusiveMinimum":0.125,"maximum":1})", 125, 1000, true, false},
      {R"({"type":"number","minimum":-10.75,"exclusiveMaximum":-0.5})", -10750, -500, false, true},
      {R"({"type":"number","exclusiveMinimum":-1,"exclusiveMaximum":0})", -1000, 0, true, true},
      {R"({"type":"number","minimum":0.001})", 1, std::nullopt, false, false},
      {R"({"type":"number","maximum":-3.999})", std::nullopt, -3999, false, false},
      {R"({"type":"number","minimum":1.5,"exclusiveMinimum":1.5,"maximum":2})", 1500, 2000, true, false},
      {R"({"type":"number","minimum":5.25,"maximum":5.75})", 5250, 5750, false, false},
      {R"({"type":"number","minimum":5.2,"maximum":5.2})", 5200, 5200, false, false},
      {R"({"type":"number","minimum":-0.75,"exclusiveMaximum":0.75})", -750, 750, false, true},
  };
  auto spellings = [](int64_t k) {
    const std::string sign = k < 0 ? "-" : "";
    const int64_t a = std::abs(k);
    std::string frac = std::to_string(1000 + a % 1000).substr(1);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    const std::string whole = sign + std::to_string(a / 1000);
    if (frac.empty()) return std::vector<std::string>{whole, whole + ".0", whole + ".000"};
    return std::vector<std::string>{whole + "." + frac, whole + "." + frac + "0"};
  };
  for (const Case& c : cases) {
    auto g = Grammar::parse(json_schema_text_to_gbnf(c.schema));
    std::vector<int64_t> ks;
    for (int64_t k = -12000; k <= 40000; k += 13) ks.push_back(k);
    for (std::optional<int64_t> b : {c.lo, c.hi})
      for (int64_t d = -3; b && d <= 3; ++d) ks.push_back(*b + d);
    for (int64_t k : ks) {
      const bool inside = (!c.lo || (c.lo_strict ? k > *c.lo : k >= *c.lo)) &&
                          (!c.hi || (c.hi_strict ? k < *c.hi : k <= *c.hi));
      for (const std::string& text : spellings(k)) {
        if (text == "-0" || (text.rfind("-0.0", 0) == 0 && k == 0)) continue;
        GrammarMatcher m(g, *vocab_);
        bool ok = true;
        try {
          m.accept_text(text);
        } catch (const Error&) {
          ok = false;
        }
        EXPECT_EQ(ok && m.can_end(), inside) << c.schema << " value " << text;
      }
    }
  }
}

TEST_F(GrammarTest, StringPatternsMatchLikeTheRegex) {
  auto ok = [](const std::string& pattern, const std::string& encoded) {
    return schema_matches(R"({"type":"string","pattern":)" + ChatJson(pattern).dump() + "}", encoded);
  };
  EXPECT_TRUE(ok(R"(^[A-Z]{2}-\d{3,4}$)", R"("AB-123")"));
  EXPECT_TRUE(ok(R"(^[A-Z]{2}-\d{3,4}$)", R"("XY-9999")"));
  for (std::string bad : {R"("ab-123")", R"("AB-12")", R"("AB-12345")", R"(" AB-123")"})
    EXPECT_FALSE(ok(R"(^[A-Z]{2}-\d{3,4}$)", bad)) << bad;
  EXPECT_TRUE(ok("cat", R"("concatenate")"));  // unanchored: anywhere
  EXPECT_FALSE(ok("cat", R"("dog")"));
  EXPECT_TRUE(ok("^cat", R"("catalog")"));
  EXPECT_FALSE(ok("^cat", R"("bobcat")"));
  EXPECT_TRUE(ok("^(foo|ba[rz])+$", R"("foobazbar")"));
  EXPECT_FALSE(ok("^(foo|ba[rz])+$", R"("fooba")"));
  EXPECT_TRUE(ok(R"(^a\.b$)", R"("a.b")"));
  EXPECT_FALSE(ok(R"(^a\.b$)", R"("axb")"));
  EXPECT_TRUE(ok(R"(^say "hi"\\$)", R"("say \"hi\"\\")"));  // quote and backslash as JSON escapes
  EXPECT_TRUE(ok("^.{3}$", R"("aéc")"));  // one character, two bytes
  EXPECT_FALSE(ok("^.{3}$", R"("ab")"));
  EXPECT_TRUE(ok(R"(^[^0-9]+$)", R"("no digits")"));
  EXPECT_FALSE(ok(R"(^[^0-9]+$)", R"("r2d2")"));
  EXPECT_TRUE(ok(R"(^\w+@\w+\.(com|org)$)", R"("me@example.org")"));
  EXPECT_TRUE(ok("^(?:ab){2}c?$", R"("abab")"));
  EXPECT_FALSE(ok("^(?:ab){2}c?$", R"("ababcc")"));
  auto error_of = [](const std::string& pattern) -> std::string {
    try {
      json_schema_text_to_gbnf(R"({"type":"string","pattern":)" + ChatJson(pattern).dump() + "}");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("(?=x)y").find("lookaround"), std::string::npos);
  EXPECT_NE(error_of(R"((a)\1)").find("backreferences"), std::string::npos);
  EXPECT_NE(error_of("a^b").find("anchors"), std::string::npos);
  EXPECT_NE(error_of("[z-a]").find("out of order"), std::string::npos);
  EXPECT_NE(error_of("a**").find("quantifier after a quantifier"), std::string::npos);
  EXPECT_NE(error_of("(ab").find("unbalanced"), std::string::npos);
  EXPECT_NE(error_of("[\"]").find("no character"), std::string::npos);
}

TEST_F(GrammarTest, UnsupportedSchemasAreClearErrors) {
  auto error_of = [](const std::string& s) -> std::string {
    try {
      json_schema_text_to_gbnf(s);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of(R"({"type":"integer","multipleOf":3})").find("'multipleOf' is not supported"), std::string::npos);
  EXPECT_NE(error_of(R"({"properties":{"a":{"type":"string","pattern":"x+","maxLength":3}}})")
                .find("#/properties/a: 'pattern' with 'maxLength'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"strin"})").find("unknown type 'strin'"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref":"#/$defs/missing"})").find("points to nothing"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref":"http://x/y.json"})").find("only local $ref"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"object","required":["z"],"properties":{}})").find("'z' has no schema"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"string","maxLength":2,"minLength":3})").find("below minLength"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"number","minimum":3.5,"maximum":3.25})").find("no number satisfies"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"number","exclusiveMinimum":2,"maximum":2})").find("no number satisfies"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"number","minimum":1e-20})").find("more than 15 decimals"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"number","maximum":1e30})").find("beyond 16 integer digits"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": )").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"enum":[]})").find("non-empty"), std::string::npos);
}

TEST_F(GrammarTest, GreedyAndSampledGenerationFollowTheGrammar) {
  const std::string g = R"(root ::= "[" item ( ", " item ){2} "]"
item ::= [a-z]{1,4} | "<t" [0-9]+ ">")";
  ThreadPool pool(1);
  for (float temperature : {0.0f, 1.0f}) {
    for (int top_k : {0, 40}) {
      Sequence seq(*tiny_->model, *tok_, &pool);
      GenerationRequest r;
      r.prompt = tok_->encode("hello", true, true);
      r.max_tokens = 200;
      r.sampling.temperature = temperature;
      r.sampling.top_k = top_k;
      r.sampling.seed = 7;
      r.grammar = Grammar::parse(g);
      GenerationResult out = seq.generate(r);
      EXPECT_EQ(out.finish, FinishReason::kEndOfGeneration) << out.text;
      EXPECT_TRUE(matches(g, out.text)) << out.text;
    }
  }
}

TEST_F(GrammarTest, LazyGrammarStartsAtItsTrigger) {
  ThreadPool pool(1);
  Sequence seq(*tiny_->model, *tok_, &pool);
  GenerationRequest r;
  r.prompt = tok_->encode("hello", true, true);
  r.max_tokens = 60;
  r.sampling.temperature = 0;
  r.ignore_eos = true;
  // Free text first; once "e" appears the rest must be "e" then digits.
  r.grammar = Grammar::parse(R"(root ::= "e" [0-9]{3})");
  r.grammar_triggers = {"e"};
  GenerationResult out = seq.generate(r);
  size_t at = out.text.find('e');
  if (at != std::string::npos) {
    EXPECT_EQ(out.text.size(), at + 4) << out.text;
    EXPECT_EQ(out.finish, FinishReason::kEndOfGeneration);
  } else {
    EXPECT_EQ(out.finish, FinishReason::kMaxTokens);
  }
}

}  // namespace
}  // namespace onellm
