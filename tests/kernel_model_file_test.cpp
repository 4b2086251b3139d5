// The kernels against files llama-quantize made: tiny-qwen2-{Q8_0,Q4_0}.gguf
// were quantized from tiny-qwen2-F32.gguf. Every quantized matrix must
// dequantize to within its block's quantization step of the F32 original,
// and our quantizer must reproduce llama-quantize's bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

std::unique_ptr<GgufFile> open_model(const std::string& name) {
  const std::string path = test::shared_dir() + "/models/" + name;
  if (!std::filesystem::exists(path)) return nullptr;
  return GgufFile::open(path);
}

struct FileCheck {
  const char* file;
  TensorType type;
  // Worst error of one element, in units of its block's |d|: Q8_0 rounds to
  // nearest (0.5) plus the half-precision rounding of d over up to 127
  // steps; Q4_0 maps the extreme to -8 so the opposite extreme clamps at +7
  // (up to 1 step).
  double max_error_in_steps;
  double max_relative_rmse;
};

void check_against_f32(const FileCheck& check) {
  ONELLM_REQUIRE_SHARED();
  const auto f32 = open_model("tiny-qwen2-F32.gguf");
  const auto quantized = open_model(check.file);
  if (!f32 || !quantized) GTEST_SKIP() << "tiny-qwen2 models not found under " << test::shared_dir();

  int n_matrices = 0;
  size_t n_blocks = 0, n_blocks_differing = 0;
  for (const GgufTensor& qt : quantized->tensors()) {
    if (qt.type != check.type) continue;
    SCOPED_TRACE(qt.name);
    const GgufTensor& ft = f32->tensor(qt.name);
    ASSERT_EQ(ft.type, TensorType::F32);
    ASSERT_EQ(ft.dims, qt.dims);
    ASSERT_EQ(qt.dims.size(), 2u);
    const int64_t cols = qt.dims[0], rows = qt.dims[1];
    const MatrixView w{qt.type, qt.data, rows, cols};
    const size_t row_bytes = w.row_bytes();
    ASSERT_EQ(row_bytes * static_cast<size_t>(rows), qt.n_bytes);
    const size_t block_bytes = tensor_type_info(qt.type).block_bytes;

    std::vector<float> original(static_cast<size_t>(cols)), decoded(static_cast<size_t>(cols));
    std::vector<uint8_t> requantized(row_bytes);
    double err2 = 0, ref2 = 0, worst_steps = 0;
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(original.data(), ft.data + static_cast<size_t>(r) * cols * sizeof(float), cols * sizeof(float));
      matrix_row(w, r, decoded.data());
      const uint8_t* row = qt.data + static_cast<size_t>(r) * row_bytes;
      for (int64_t c = 0; c < cols; ++c) {
        // The block's d is its first two bytes in both Q8_0 and Q4_0.
        const uint8_t* block = row + static_cast<size_t>(c / 32) * block_bytes;
        const double step = std::fabs(fp16_to_f32(static_cast<uint16_t>(block[0] | (block[1] << 8))));
        const double err = std::fabs(static_cast<double>(decoded[c]) - original[c]);
        if (step > 0) worst_steps = std::max(worst_steps, err / step);
        else ASSERT_EQ(err, 0.0);
        err2 += err * err;
        ref2 += static_cast<double>(original[c]) * original[c];
      }
      quantize_row(qt.type, original.data(), requantized.data(), cols);
      for (size_t b = 0; b < row_bytes; b += block_bytes) {
        ++n_blocks;
        if (std::memcmp(requantized.data() + b, row + b, block_bytes) != 0) ++n_blocks_differing;
      }
    }
    EXPECT_LE(worst_steps, check.max_error_in_steps);
    EXPECT_LT(std::sqrt(err2 / ref2), check.max_relative_rmse);
    ++n_matrices;
  }
  EXPECT_EQ(n_matrices, 15);  // 2 layers x 7 matrices + token_embd
  std::printf("  %s: %zu blocks, %zu differ from our quantize_row\n", check.file, n_blocks, n_blocks_differing);
  EXPECT_EQ(n_blocks_differing, 0u);
}

TEST(ModelFiles, Q8_0MatchesF32AndLlamaQuantize) {
  check_against_f32({"tiny-qwen2-Q8_0.gguf", TensorType::Q8_0, 0.5 + 127.0 / 2048, 0.0075});
}

TEST(ModelFiles, Q4_0MatchesF32AndLlamaQuantize) {
  check_against_f32({"tiny-qwen2-Q4_0.gguf", TensorType::Q4_0, 1.0 + 8.0 / 2048, 0.11});
}

// The F16 file was converted from the same F32 weights with round-to-nearest-
// even: our f32_to_fp16 must give every one of its bytes.
TEST(ModelFiles, F16MatchesF32Conversion) {
  ONELLM_REQUIRE_SHARED();
  const auto f32 = open_model("tiny-qwen2-F32.gguf");
  const auto f16 = open_model("tiny-qwen2-F16.gguf");
  if (!f32 || !f16) GTEST_SKIP() << "tiny-qwen2 models not found under " << test::shared_dir();
  int n_matrices = 0;
  for (const GgufTensor& ht : f16->tensors()) {
    if (ht.type != TensorType::F16) continue;
    SCOPED_TRACE(ht.name);
    const GgufTensor& ft = f32->tensor(ht.name);
    ASSERT_EQ(ft.dims, ht.dims);
    const int64_t n = ht.n_elements();
    std::vector<float> original(static_cast<size_t>(n));
    std::memcpy(original.data(), ft.data, original.size() * sizeof(float));
    std::vector<uint8_t> converted(static_cast<size_t>(n) * 2);
    quantize_row(TensorType::F16, original.data(), converted.data(), n);
    ASSERT_EQ(0, std::memcmp(converted.data(), ht.data, converted.size()));
    ++n_matrices;
  }
  EXPECT_EQ(n_matrices, 15);
}

}  // namespace
}  // namespace onellm
