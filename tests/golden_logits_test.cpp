// The C++ reference path against llama.cpp's golden outputs (../shared/golden):
// exact-F32 references (kv_f32 for F32 models, dequant_f32 for quantized ones)
// to 1e-3 on the top-20 logits of every position, and greedy tokens identical
// while the golden margin is > 1e-2, as golden/README.md requires.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

struct Case {
  std::string model;
  std::string golden;  // relative to golden/logits
};

void check_case(const Case& c) {
  const std::string shared = test::shared_dir();
  json g = read_json(shared + "/golden/logits/" + c.golden);
  auto model = Model::load(shared + "/models/" + c.model);
  ThreadPool pool(2);
  KvCache cache(model->config(), 128);
  std::vector<int32_t> tokens = g["tokens"].get<std::vector<int32_t>>();
  const int64_t V = model->config().n_vocab;
  ASSERT_EQ(V, g["n_vocab"].get<int64_t>());
  std::vector<float> logits(tokens.size() * V);
  model->forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits.data(), true, &pool,
                 MathMode::kExact);

  double max_diff = 0;
  for (const json& row : g["top"]) {
    int64_t pos = row["pos"].get<int64_t>();
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    const auto vals = row["logits"].get<std::vector<float>>();
    for (size_t i = 0; i < ids.size(); ++i)
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(logits[pos * V + ids[i]]) - vals[i]));
  }
  EXPECT_LE(max_diff, 1e-3) << c.golden << ": max abs diff of top-20 logits over the prompt";

  // Greedy continuation: compare while the golden margin is > 1e-2.
  const auto want = g["greedy"]["tokens"].get<std::vector<int32_t>>();
  const auto margins = g["greedy"]["margins"].get<std::vector<double>>();
  std::vector<float> row(logits.end() - V, logits.end());
  size_t checked = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (margins[i] <= 1e-2) break;
    int32_t best = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    ASSERT_EQ(best, want[i]) << c.golden << ": greedy token " << i;
    ++checked;
    model->forward(&best, 1, cache, row.data(), false, &pool, MathMode::kExact);
  }
  EXPECT_GT(checked, 0u);
  std::printf("%s: max |diff| %.2e, %zu greedy tokens identical\n", c.golden.c_str(), max_diff, checked);
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.golden; }

class GoldenLogits : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenLogits, MatchesExactReference) {
  ONELLM_REQUIRE_SHARED();
  check_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shared, GoldenLogits,
    ::testing::Values(Case{"stories260K.gguf", "kv_f32/stories260K.p1.json"},
                      Case{"stories260K.gguf", "kv_f32/stories260K.p2.json"},
                      Case{"stories260K.gguf", "kv_f32/stories260K.p3.json"},
                      Case{"tiny-qwen2-F32.gguf", "kv_f32/tiny-qwen2-F32.p1.json"},
                      Case{"tiny-qwen2-F32.gguf", "kv_f32/tiny-qwen2-F32.p2.json"},
                      Case{"tiny-qwen2-F16.gguf", "dequant_f32/tiny-qwen2-F16.p1.json"},
                      Case{"tiny-qwen2-F16.gguf", "dequant_f32/tiny-qwen2-F16.p2.json"},
                      Case{"tiny-qwen2-Q8_0.gguf", "dequant_f32/tiny-qwen2-Q8_0.p1.json"},
                      Case{"tiny-qwen2-Q8_0.gguf", "dequant_f32/tiny-qwen2-Q8_0.p2.json"},
                      Case{"tiny-qwen2-Q4_0.gguf", "dequant_f32/tiny-qwen2-Q4_0.p1.json"},
                      Case{"tiny-qwen2-Q4_0.gguf", "dequant_f32/tiny-qwen2-Q4_0.p2.json"}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.golden;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

}  // namespace
}  // namespace onellm
