// The default (fast) forward pass against llama.cpp's default arithmetic
// (../shared/golden/logits/kv_f16: F16 KV cache, 8-bit activations for
// quantized weights), with golden/README.md's tolerances: F32/F16 weights
// <= 0.03 max abs on the top-20 logits of every position, quantized weights
// <= 0.5 max abs and <= 0.1 rms; greedy tokens identical while the golden
// margin exceeds 0.05 (float) / 0.5 (quantized). Run at every CPU level this
// machine supports, since each level is a different kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using nlohmann::json;

struct Case {
  std::string model;
  std::string golden;  // file under golden/logits/kv_f16
  bool quantized;
};

void check_case(const Case& c, CpuLevel level) {
  const std::string shared = test::shared_dir();
  std::ifstream in(shared + "/golden/logits/kv_f16/" + c.golden);
  const json g = json::parse(in);
  auto model = Model::load(shared + "/models/" + c.model);
  ThreadPool pool(2);
  KvCache cache(model->config(), 128);
  const auto tokens = g["tokens"].get<std::vector<int32_t>>();
  const int64_t V = model->config().n_vocab;
  ASSERT_EQ(V, g["n_vocab"].get<int64_t>());
  std::vector<float> logits(tokens.size() * V);
  model->forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits.data(), true, &pool);

  double max_diff = 0, sum_sq = 0;
  size_t count = 0;
  for (const json& row : g["top"]) {
    const int64_t pos = row["pos"].get<int64_t>();
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    const auto vals = row["logits"].get<std::vector<float>>();
    for (size_t i = 0; i < ids.size(); ++i) {
      const double diff = std::fabs(static_cast<double>(logits[pos * V + ids[i]]) - vals[i]);
      max_diff = std::max(max_diff, diff);
      sum_sq += diff * diff;
      ++count;
    }
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(count));
  const char* lv = cpu_level_name(level);
  EXPECT_LE(max_diff, c.quantized ? 0.5 : 0.03) << c.golden << " at " << lv << ": max abs diff of top-20 logits";
  if (c.quantized) {
    EXPECT_LE(rms, 0.1) << c.golden << " at " << lv << ": rms diff of top-20 logits";
  }

  const double margin = c.quantized ? 0.5 : 0.05;
  const auto want = g["greedy"]["tokens"].get<std::vector<int32_t>>();
  const auto margins = g["greedy"]["margins"].get<std::vector<double>>();
  std::vector<float> row(logits.end() - V, logits.end());
  size_t checked = 0;
  for (size_t i = 0; i < want.size() && margins[i] > margin; ++i) {
    const int32_t best = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    ASSERT_EQ(best, want[i]) << c.golden << " at " << lv << ": greedy token " << i;
    ++checked;
    int32_t next = best;
    model->forward(&next, 1, cache, row.data(), false, &pool);
  }
  std::printf("%s [%s]: max |diff| %.3g, rms %.3g, %zu greedy tokens identical\n", c.golden.c_str(), lv, max_diff,
              rms, checked);
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.golden; }

class GoldenFastPath : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenFastPath, WithinDefaultPathTolerances) {
  ONELLM_REQUIRE_SHARED();
  const CpuLevel saved = cpu_level();
  for (CpuLevel level : kCpuLevels) {
    if (!cpu_level_supported(level)) continue;
    set_cpu_level(level);
    check_case(GetParam(), level);
    if (HasFatalFailure()) break;
  }
  set_cpu_level(saved);
}

INSTANTIATE_TEST_SUITE_P(
    Shared, GoldenFastPath,
    ::testing::Values(Case{"stories260K.gguf", "stories260K.p1.json", false},
                      Case{"stories260K.gguf", "stories260K.p2.json", false},
                      Case{"stories260K.gguf", "stories260K.p3.json", false},
                      Case{"tiny-qwen2-F32.gguf", "tiny-qwen2-F32.p1.json", false},
                      Case{"tiny-qwen2-F32.gguf", "tiny-qwen2-F32.p2.json", false},
                      Case{"tiny-qwen2-F16.gguf", "tiny-qwen2-F16.p1.json", false},
                      Case{"tiny-qwen2-F16.gguf", "tiny-qwen2-F16.p2.json", false},
                      Case{"tiny-qwen2-Q8_0.gguf", "tiny-qwen2-Q8_0.p1.json", true},
                      Case{"tiny-qwen2-Q8_0.gguf", "tiny-qwen2-Q8_0.p2.json", true},
                      Case{"tiny-qwen2-Q4_0.gguf", "tiny-qwen2-Q4_0.p1.json", true},
                      Case{"tiny-qwen2-Q4_0.gguf", "tiny-qwen2-Q4_0.p2.json", true}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.golden;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

}  // namespace
}  // namespace onellm
