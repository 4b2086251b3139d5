// The fast matmul at every CPU level this machine runs, against
// (a) the scalar level (same integer algorithm: only float summation order
//     may differ), and
// (b) the exact reference matmul, within the error bound that quantizing
//     the activations to 8 bits allows: |x - q*d| <= d/2 per element.
// Shapes include odd row counts, odd block counts, 1..9 tokens and weights
// and activations at unaligned addresses.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <random>
#include <vector>

#include "base/error.h"
#include "kernels/fast_kernels.h"
#include "kernels/kernels.h"
#include "support/kernel_reference.h"

namespace onellm {
namespace {

std::vector<CpuLevel> runnable_levels() {
  std::vector<CpuLevel> levels;
  for (CpuLevel l : kCpuLevels)
    if (cpu_level_supported(l)) levels.push_back(l);
  return levels;
}

struct Problem {
  TensorType type;
  int64_t rows, cols, n_tokens;
  std::vector<uint8_t> weight_storage;  // weights start at offset 1: unaligned
  std::vector<float> x_storage;         // activations start at offset 1
  MatrixView w;
  const float* x;
  std::vector<float> w_deq;  // dequantized weights (for the error bound)
  std::vector<uint8_t> packed_storage;  // the packed layout, if the type has one (64-byte aligned inside)
  MatrixView w_packed;                  // w with .packed set, or rows == 0

  Problem(TensorType t, int64_t r, int64_t c, int64_t n, uint32_t seed) : type(t), rows(r), cols(c), n_tokens(n) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(r * c));
    for (float& v : wf) v = normal(rng);
    const size_t row_bytes = tensor_row_bytes(t, c);
    weight_storage.assign(1 + row_bytes * r, 0);
    w_deq.resize(wf.size());
    for (int64_t i = 0; i < r; ++i) {
      uint8_t* dst = weight_storage.data() + 1 + i * row_bytes;
      quantize_row(t, wf.data() + i * c, dst, c);
      dequantize_row(t, dst, w_deq.data() + i * c, c);
    }
    w = MatrixView{t, weight_storage.data() + 1, r, c};
    if (const size_t n_packed = packed_matrix_bytes(t, r, c); n_packed > 0) {
      packed_storage.assign(n_packed + 64, 0xAB);
      auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(packed_storage.data()) + 63) / 64 * 64);
      pack_matrix(w, aligned);
      w_packed = w;
      w_packed.packed = aligned;
    }
    x_storage.resize(static_cast<size_t>(1 + n * c));
    for (size_t i = 1; i < x_storage.size(); ++i) x_storage[i] = normal(rng) * (i % 7 == 0 ? 4.0f : 1.0f);
    x = x_storage.data() + 1;
  }
};

void check_problem(const Problem& p, ThreadPool* pool) {
  const int64_t R = p.rows, C = p.cols, N = p.n_tokens;
  std::vector<float> exact(static_cast<size_t>(N * R)), scalar(exact.size()), fast(exact.size());
  matmul(p.w, p.x, N, exact.data(), pool);
  matmul_fast_at(CpuLevel::kScalar, p.w, p.x, N, scalar.data(), pool);
  const bool quantized = test::quantized_activations(p.type);
  const int64_t blk = test::activation_block(p.type);

  for (int64_t t = 0; t < N; ++t) {
    const float* xt = p.x + t * C;
    for (int64_t r = 0; r < R; ++r) {
      const float* wr = p.w_deq.data() + r * C;
      double magnitude;
      double bound = test::activation_quantization_bound(wr, xt, C, blk, quantized, &magnitude);
      bound += 2e-5 * magnitude + 1e-5;
      const size_t i = static_cast<size_t>(t * R + r);
      ASSERT_NEAR(scalar[i], exact[i], bound)
          << tensor_type_name(uint32_t(p.type)) << " scalar level, row " << r << " token " << t << " of " << N;
    }
  }

  for (CpuLevel level : runnable_levels())
    for (bool packed : {false, true}) {
      if (packed && p.w_packed.rows == 0) continue;
      std::fill(fast.begin(), fast.end(), NAN);
      matmul_fast_at(level, packed ? p.w_packed : p.w, p.x, N, fast.data(), pool);
      if (level == CpuLevel::kAmx && N >= fast::kAmxMinTokens && quantized) {
        // BF16 tiles instead of int8 activations: against the exact product.
        for (int64_t t = 0; t < N; ++t)
          for (int64_t r = 0; r < R; ++r) {
            const size_t i = static_cast<size_t>(t * R + r);
            ASSERT_NEAR(fast[i], exact[i], test::bf16_product_bound(p.w_deq.data() + r * C, p.x + t * C, C))
                << tensor_type_name(uint32_t(p.type)) << (packed ? " packed" : "") << " AMX prefill, row " << r
                << " token " << t << " of " << N << ", cols " << C;
          }
        continue;
      }
      for (int64_t t = 0; t < N; ++t)
        for (int64_t r = 0; r < R; ++r) {
          double magnitude = 0;
          for (int64_t c = 0; c < C; ++c) magnitude += std::fabs(double(p.w_deq[r * C + c]) * p.x[t * C + c]);
          const size_t i = static_cast<size_t>(t * R + r);
          ASSERT_NEAR(fast[i], scalar[i], 1e-5 * magnitude + 1e-6)
              << tensor_type_name(uint32_t(p.type)) << " level " << cpu_level_name(level)
              << (packed ? " packed" : "") << ", row " << r << " token " << t << " of " << N << ", cols " << C;
        }
    }
}

class FastMatmul : public ::testing::TestWithParam<TensorType> {};

TEST_P(FastMatmul, EveryLevelMatchesScalarAndExactWithinQuantizationError) {
  const TensorType type = GetParam();
  const int64_t block = tensor_type_info(type).block_elems;
  // Block counts: 1, odd, and a long row; row counts around the 16-row tile.
  const std::vector<int64_t> col_counts = test::matmul_test_col_counts(block);
  ThreadPool pool(3);
  uint32_t seed = 1;
  for (int64_t cols : col_counts)
    for (int64_t n_tokens = 1; n_tokens <= 9; ++n_tokens) {
      const int64_t rows = n_tokens % 2 ? 37 : 16;
      Problem p(type, rows, cols, n_tokens, seed++);
      check_problem(p, n_tokens % 3 == 0 ? nullptr : &pool);
      if (HasFatalFailure()) return;
    }
}

INSTANTIATE_TEST_SUITE_P(Types, FastMatmul,
                         ::testing::Values(TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0,
                                           TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                           TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q2_K,
                                           TensorType::Q3_K, TensorType::IQ4_NL, TensorType::IQ4_XS),
                         [](const ::testing::TestParamInfo<TensorType>& info) {
                           return tensor_type_name(uint32_t(info.param));
                         });

TEST(FastMatmul, PrefillSizedTokenBlocks) {
  // More tokens than one token block of the cache blocking (512 KiB of
  // activations), so the blocking loop runs more than once.
  ThreadPool pool(2);
  for (TensorType type : {TensorType::Q4_0, TensorType::Q6_K}) {
    Problem p(type, 19, 4096, 140, 77);
    check_problem(p, &pool);
  }
}

// Every type x row count x token count at one column count; the smaller
// token count runs on a pool, the larger on the calling thread.
void check_prefill_grid(std::initializer_list<TensorType> types, std::initializer_list<int64_t> row_counts,
                        int64_t cols, std::initializer_list<int64_t> token_counts, uint32_t seed) {
  ThreadPool pool(2);
  for (TensorType type : types)
    for (int64_t rows : row_counts)
      for (int64_t n_tokens : token_counts) {
        Problem p(type, rows, cols, n_tokens, seed++);
        check_problem(p, n_tokens == *token_counts.begin() ? &pool : nullptr);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(FastMatmul, PanelKernelsForPrefill) {
  // From 16 tokens the AVX-512 level (and AVX2 for Q8_0) packs 16-row
  // panels: 37 and 45 rows leave a partial panel (5 rows: half of the
  // first 8-row half; 13: a whole half and part of the second); 29 tokens
  // run the 8-, 4- and 1-token kernels.
  check_prefill_grid({TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                      TensorType::Q4_K, TensorType::Q5_K},
                     {37, 45}, 768, {16, 29}, 200);
}

TEST(FastMatmul, FloatWeightsGemmForPrefill) {
  // From 16 tokens F32/F16/BF16 weights run a blocked GEMM: 70 rows leave a
  // partial 64-row block and a partial 32-row panel, 300 columns a partial
  // 256-column chunk, 53 tokens a partial 48-token group.
  check_prefill_grid({TensorType::F32, TensorType::F16, TensorType::BF16}, {37, 70}, 300, {16, 53}, 300);
  // The AMX level splits float products in BF16 parts: 600 tokens take 900
  // columns in blocks of 256 and a last one of 160 (padded from 132).
  check_prefill_grid({TensorType::F32, TensorType::F16, TensorType::BF16}, {37}, 900, {600}, 310);
}

TEST(FastMatmul, AmxPrefillOfEveryQuantizedType) {
  // From kAmxMinTokens the AMX level multiplies quantized weights on BF16
  // tiles (check_problem holds it to BF16 rounding of the exact product).
  // 37 rows: a unit of two panels and one of a partial panel; 64: two whole
  // units; 47 and 100 tokens: a partial token tile, alone and in a pair.
  if (!cpu_level_supported(CpuLevel::kAmx)) GTEST_SKIP() << "no AMX level here: " << cpu_features_string();
  check_prefill_grid({TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                      TensorType::IQ4_NL, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q2_K,
                      TensorType::Q3_K, TensorType::IQ4_XS},
                     {37, 64}, 256, {fast::kAmxMinTokens, 47, 100}, 400);
  // 600 tokens take columns in blocks of 768 (their A tiles in 1 MiB): C
  // goes back to y between blocks, partial tiles through a buffer.
  check_prefill_grid({TensorType::Q4_0, TensorType::Q6_K}, {45}, 1024, {600}, 500);
}

TEST(FastMatmul, AmxPrefillDoesNotDependOnThreadsOrLayout) {
  if (!cpu_level_supported(CpuLevel::kAmx)) GTEST_SKIP() << "no AMX level here: " << cpu_features_string();
  ThreadPool pool(3);
  for (TensorType type : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q6_K}) {
    Problem p(type, 150, 512, 70, 9);
    std::vector<float> alone(static_cast<size_t>(70 * 150)), pooled(alone.size());
    matmul_fast_at(CpuLevel::kAmx, p.w_packed, p.x, 70, alone.data(), nullptr);
    matmul_fast_at(CpuLevel::kAmx, p.w_packed, p.x, 70, pooled.data(), &pool);
    EXPECT_EQ(0, std::memcmp(alone.data(), pooled.data(), alone.size() * sizeof(float)))
        << tensor_type_name(uint32_t(type)) << ": the thread count changed the result";
  }
}

TEST(PackedWeights, LayoutSizesAndErrors) {
  // Same bytes as GGUF per 16 rows (Q4_0, Q5_0, Q8_0, rounded to 64), +3 % for Q4_K.
  EXPECT_EQ(packed_panel_bytes(TensorType::Q4_0, 896), 16 * tensor_row_bytes(TensorType::Q4_0, 896));
  EXPECT_EQ(packed_panel_bytes(TensorType::Q4_0, 32), 320u);
  EXPECT_EQ(packed_matrix_bytes(TensorType::Q4_0, 17, 64), 2 * packed_panel_bytes(TensorType::Q4_0, 64));
  EXPECT_EQ(packed_panel_bytes(TensorType::Q4_K, 512), 2u * 2368);
  EXPECT_EQ(packed_panel_bytes(TensorType::Q6_K, 512), 2u * 3360);  // 16 x 210 bytes per super-block
  EXPECT_EQ(packed_panel_bytes(TensorType::Q6_K, 256), 3392u);      // rounded up to 64
  EXPECT_EQ(packed_panel_bytes(TensorType::Q8_0, 512), 16 * tensor_row_bytes(TensorType::Q8_0, 512));
  EXPECT_EQ(packed_panel_bytes(TensorType::Q8_0, 32), 576u);  // 544, rounded up to 64
  EXPECT_EQ(packed_panel_bytes(TensorType::Q5_0, 512), 16 * tensor_row_bytes(TensorType::Q5_0, 512));
  // Q5_K: Q4_K's panel plus 512 bytes of fifth bits (16 x 176 = 2816 in the file).
  EXPECT_EQ(packed_panel_bytes(TensorType::Q5_K, 512), 2u * 2880);
  // IQ4_NL: Q4_0's layout; IQ4_XS: the file's 16 x 136 bytes per super-block.
  EXPECT_EQ(packed_panel_bytes(TensorType::IQ4_NL, 896), 16 * tensor_row_bytes(TensorType::IQ4_NL, 896));
  EXPECT_EQ(packed_panel_bytes(TensorType::IQ4_XS, 768), 16 * tensor_row_bytes(TensorType::IQ4_XS, 768));
  EXPECT_EQ(packed_panel_bytes(TensorType::Q3_K, 512), 2u * 1792);  // 16 x 110 = 1760, padded to whole lines
  EXPECT_EQ(packed_panel_bytes(TensorType::Q2_K, 512), 2u * 1344);  // 16 x 84: the file's bytes
  // Q4_1 / Q5_1: the file's bytes (d and m beside the quants); an odd block count pads to 64.
  EXPECT_EQ(packed_panel_bytes(TensorType::Q4_1, 512), 16 * tensor_row_bytes(TensorType::Q4_1, 512));
  EXPECT_EQ(packed_panel_bytes(TensorType::Q5_1, 512), 16 * tensor_row_bytes(TensorType::Q5_1, 512));
  EXPECT_EQ(packed_panel_bytes(TensorType::Q5_1, 96), 1152u);
  EXPECT_EQ(packed_panel_bytes(TensorType::BF16, 512), 0u);
  EXPECT_EQ(packed_matrix_bytes(TensorType::F16, 16, 512), 0u);
  std::vector<uint8_t> row(tensor_row_bytes(TensorType::BF16, 256)), out(4096);
  try {
    pack_matrix(MatrixView{TensorType::BF16, row.data(), 1, 256}, out.data());
    FAIL() << "packing BF16 should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos) << e.what();
  }
}

TEST(PackedWeights, RowsUnpackToTheirGgufBytes) {
  // Embedding lookups of a tied, packed matrix read rows back from the panels.
  for (TensorType type :
       {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q4_K,
        TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::Q2_K, TensorType::Q3_K}) {
    Problem p(type, 1000, 256, 1, 400);
    std::vector<uint8_t> row(p.w.row_bytes());
    for (int64_t r = 0; r < p.rows; ++r) {
      unpack_matrix_row(p.w_packed, r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), static_cast<const uint8_t*>(p.w.data) + r * row.size(), row.size()))
          << tensor_type_name(uint32_t(type)) << " row " << r;
      std::vector<float> a(static_cast<size_t>(p.cols)), b(a.size());
      matrix_row(p.w_packed, r, a.data());
      matrix_row(p.w, r, b.data());
      ASSERT_EQ(a, b);
    }
    EXPECT_THROW(unpack_matrix_row(p.w_packed, p.rows, row.data()), Error);
    EXPECT_THROW(unpack_matrix_row(p.w, 0, row.data()), Error);  // not packed
  }
}

TEST(PackedWeights, EveryTokenCountAndPartialPanels) {
  // Every token count runs the packed kernels: 8 (AVX-512) or 4 (AVX2, and
  // Q2_K/Q3_K at AVX-512) tokens per call, then one call for the rest, each
  // count its own kernel (7, 15 = 8 + 7 and 21 = 16 + 5 reach the AVX-512
  // widths 5 and 7; 16 and more is prefill); 1, 15, 16, 33 rows make partial
  // and whole panels.
  ThreadPool pool(2);
  uint32_t seed = 300;
  for (TensorType type :
       {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q4_K,
        TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::Q2_K, TensorType::Q3_K})
    for (int64_t rows : {1, 15, 16, 33})
      for (int64_t n_tokens : {1, 2, 3, 4, 6, 7, 15, 16, 21}) {
        // One block (a padded panel), an odd count (Q4_0/Q5_0/Q8_0/Q6_K
        // pair blocks: a lone last one) or an even count.
        const int64_t blocks = n_tokens % 3 == 0 ? 6 : n_tokens % 3 == 1 ? 1 : 5;
        const int64_t cols = tensor_type_info(type).block_elems * blocks;
        Problem p(type, rows, cols, n_tokens, seed++);
        check_problem(p, n_tokens % 2 ? &pool : nullptr);
        if (HasFatalFailure()) return;
      }
}

TEST(PackedWeights, LongRowsDecodeFourPanelsAtATime) {
  // One to four tokens on rows longer than 24 KiB a panel run 4 panels per
  // call where the level has such a kernel: 149 rows are two groups of 4, one
  // lone whole panel and a partial one; on a pool a thread's pieces also
  // end off the groups of 4.
  ThreadPool pool(2);
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                          TensorType::IQ4_NL, TensorType::Q4_K, TensorType::Q5_K})
    for (int64_t cols : {int64_t{4096}, 4864 + tensor_type_info(type).block_elems})
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool})
        for (int64_t n_tokens : {1, 2, 3, 4}) {  // 2-4: PackedKernels::few4 where the level has it
          Problem problem(type, 149, cols, n_tokens, static_cast<uint32_t>(cols + n_tokens));
          check_problem(problem, p);
          if (HasFatalFailure()) return;
        }
}

TEST(FastMatmul, GroupsEqualSeparateCallsBitForBit) {
  // Q/K/V-like groups: mixed types of one activation format, packed and
  // file-layout matrices, row counts off the 16-row unit; decode-sized
  // inputs run fused, 20 tokens fall back to one call per matrix; a group
  // whose formats differ (Q4_0 with Q4_K) also falls back.
  ThreadPool pool(2);
  Problem a(TensorType::Q4_K, 37, 512, 1, 500), b(TensorType::Q6_K, 16, 512, 1, 501), c(TensorType::Q4_K, 9, 512, 1, 502),
      d(TensorType::Q4_0, 20, 512, 1, 503);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (CpuLevel level : runnable_levels())
    for (int64_t n_tokens : {1, 3, 20}) {
      std::vector<float> x(static_cast<size_t>(n_tokens * 512));
      for (float& v : x) v = normal(rng);
      const std::vector<MatrixView> groups[2] = {
          {a.w_packed, b.w_packed, c.w, b.w}, {d.w_packed, a.w_packed}};
      for (const std::vector<MatrixView>& ws : groups) {
        std::vector<std::vector<float>> fused(ws.size()), single(ws.size());
        std::vector<float*> ys;
        for (size_t i = 0; i < ws.size(); ++i) {
          fused[i].assign(static_cast<size_t>(n_tokens * ws[i].rows), NAN);
          single[i].assign(fused[i].size(), NAN);
          ys.push_back(fused[i].data());
          matmul_fast_at(level, ws[i], x.data(), n_tokens, single[i].data(), &pool);
        }
        matmul_fast_group_at(level, ws.data(), ys.data(), static_cast<int>(ws.size()), x.data(), n_tokens, &pool);
        for (size_t i = 0; i < ws.size(); ++i)
          ASSERT_EQ(0, std::memcmp(fused[i].data(), single[i].data(), fused[i].size() * sizeof(float)))
              << cpu_level_name(level) << " matrix " << i << ", " << n_tokens << " tokens";
      }
    }
}

TEST(FastActivations, QuantizedBitsAreIdenticalAtEveryLevel) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(1024);
  for (float& v : x) v = normal(rng);
  for (int i = 0; i < 32; ++i) x[64 + i] = 0.0f;          // an all-zero block

  const fast::Kernels& ref = fast::kernels_for(CpuLevel::kScalar);
  std::vector<fast::ActQ8> q8_ref(32), q8(32);
  std::vector<fast::ActQ8K> q8k_ref(4), q8k(4);
  ref.quantize_q8(x.data(), q8_ref.data(), 32);
  ref.quantize_q8k(x.data(), q8k_ref.data(), 4);
  for (CpuLevel level : runnable_levels()) {
    const fast::Kernels& k = fast::kernels_for(level);
    k.quantize_q8(x.data(), q8.data(), 32);
    k.quantize_q8k(x.data(), q8k.data(), 4);
    EXPECT_EQ(0, std::memcmp(q8.data(), q8_ref.data(), q8.size() * sizeof(fast::ActQ8))) << cpu_level_name(level);
    EXPECT_EQ(0, std::memcmp(q8k.data(), q8k_ref.data(), q8k.size() * sizeof(fast::ActQ8K))) << cpu_level_name(level);
  }
  // Independent of the code: each block's largest value maps to +-127.
  for (int b = 0; b < 32; ++b) {
    int qmax = 0;
    for (int8_t q : q8_ref[b].qs) qmax = std::max(qmax, std::abs(int(q)));
    EXPECT_EQ(qmax, b == 2 ? 0 : 127) << "block " << b;
  }
}

TEST(FastVectorOps, DotAndAxpyMatchDoublePrecision) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(1 + 203), b(203), y(203);
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  const CpuLevel saved = cpu_level();
  for (CpuLevel level : runnable_levels()) {
    set_cpu_level(level);
    for (int64_t n : {0, 1, 7, 8, 16, 17, 203}) {
      double want = 0;
      for (int64_t i = 0; i < n; ++i) want += double(a[1 + i]) * b[i];
      EXPECT_NEAR(dot_f32(a.data() + 1, b.data(), n), want, 1e-4) << cpu_level_name(level) << " n=" << n;
      std::fill(y.begin(), y.end(), 1.0f);
      axpy_f32(0.5f, a.data() + 1, y.data(), n);
      for (int64_t i = 0; i < 203; ++i)
        ASSERT_FLOAT_EQ(y[i], i < n ? 1.0f + 0.5f * a[1 + i] : 1.0f) << cpu_level_name(level);
    }
  }
  set_cpu_level(saved);
}

TEST(FastVectorOps, ExpAndSwigluMatchLibmAtEveryLevel) {
  std::mt19937 rng(11);
  for (CpuLevel level : runnable_levels()) {
    const fast::Kernels& k = fast::kernels_for(level);
    for (int64_t n : test::kExpLengths) {
      const test::ExpSwigluCase c(n, rng);
      std::vector<float> e(c.x), out(c.x.size());
      k.exp_f32(e.data() + 1, n);  // unaligned
      k.swiglu_f32(c.gate.data() + 1, c.up.data() + 1, out.data() + 1, n);
      for (size_t i = 1; i <= static_cast<size_t>(n); ++i) {
        ASSERT_NEAR(e[i], c.exp_x[i], c.exp_tolerance(i)) << cpu_level_name(level) << " exp(" << c.x[i] << ")";
        ASSERT_NEAR(out[i], c.swiglu[i], c.swiglu_tolerance(i))
            << cpu_level_name(level) << " swiglu(" << c.gate[i] << ")";
      }
    }
  }
}

TEST(FastVectorOps, DequantizedRowsHaveTheScalarValuesAtEveryLevel) {
  // Kernels::dequantize (through dequantize_row_with) against dequantize_row,
  // bit for bit: every computable type, rows of 1 to 7 blocks from an
  // address off the alignment, values over several magnitudes so the block
  // scales differ.
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-1, 1);
  for (TensorType type : test::kNonF32Types)
    for (int64_t blocks : {1, 2, 7}) {
      const int64_t n = std::max<int64_t>(tensor_type_info(type).block_elems, 16) * blocks;
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        x[static_cast<size_t>(i)] = u(rng) * std::ldexp(1.0f, static_cast<int>(i / 64 % 5) - 2);
      std::vector<uint8_t> stored(1 + tensor_row_bytes(type, n));
      quantize_row(type, x.data(), stored.data() + 1, n);
      std::vector<float> want(x.size()), got(x.size());
      dequantize_row(type, stored.data() + 1, want.data(), n);
      for (CpuLevel level : runnable_levels()) {
        std::fill(got.begin(), got.end(), -7.0f);
        fast::dequantize_row_with(fast::kernels_for(level), type, stored.data() + 1, got.data(), n);
        ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << cpu_level_name(level) << " " << tensor_type_name(static_cast<uint32_t>(type)) << " n=" << n;
      }
    }
}

// The tile unit's BF16 accumulate: C += A B within BF16's rounding of A and
// B (2^-9 relative each) on odd sizes with partial tiles everywhere, C's
// own values kept; and no AMX level, no product.
TEST(FastVectorOps, Bf16AccumulateOnTheTileUnit) {
  const int64_t m = 37, n = 45, k = 133, lda = 140, ldb = 50, ldc = 47;
  std::mt19937 rng(29);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(static_cast<size_t>(m * lda)), b(static_cast<size_t>(k * ldb)), c(static_cast<size_t>(m * ldc));
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  for (float& v : c) v = u(rng);
  const CpuLevel saved = cpu_level();
  for (CpuLevel level : runnable_levels()) {
    set_cpu_level(level);
    std::vector<float> got = c;
    const bool ran = matmul_accumulate_bf16(m, n, k, a.data(), lda, b.data(), ldb, got.data(), ldc);
    EXPECT_EQ(ran, level == CpuLevel::kAmx) << cpu_level_name(level);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        double want = c[static_cast<size_t>(i * ldc + j)], magnitude = 0;
        if (ran && j < n)
          for (int64_t p = 0; p < k; ++p) {
            want += double(a[static_cast<size_t>(i * lda + p)]) * b[static_cast<size_t>(p * ldb + j)];
            magnitude += std::fabs(double(a[static_cast<size_t>(i * lda + p)]) * b[static_cast<size_t>(p * ldb + j)]);
          }
        ASSERT_NEAR(got[static_cast<size_t>(i * ldc + j)], want, 1e-5 + magnitude * 2.0 / 256)
            << cpu_level_name(level) << " (" << i << ", " << j << ")";
      }
  }
  set_cpu_level(saved);
}

TEST(FastVectorOps, SumWordsIsTheWrappingSumAtEveryLevel) {
  // The bandwidth probe's read (Kernels::sum_words): full 64-bit words, so
  // the sum wraps, from an address off the vector alignment, every tail.
  std::mt19937_64 rng(17);
  std::vector<uint64_t> w(1 + 4099);
  for (uint64_t& v : w) v = rng();
  for (CpuLevel level : runnable_levels())
    for (int64_t n : {0, 1, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 1000, 4099}) {
      uint64_t want = 0;
      for (int64_t i = 0; i < n; ++i) want += w[static_cast<size_t>(1 + i)];
      EXPECT_EQ(sum_words_at(level, w.data() + 1, n), want) << cpu_level_name(level) << " n=" << n;
    }
}

TEST(FastVectorOps, F16ConversionHasTheScalarBitsAtEveryLevel) {
  // Every level's f32 -> f16 row converter against f32_to_fp16: halfway
  // cases both ways, the subnormal range and its underflow, the largest
  // half and the first value that rounds to infinity, infinities, NaNs with
  // payloads, signed zeros, random values; odd lengths (vector tails).
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.99f, 65520.0f, -1e9f, INFINITY, -INFINITY,
                          std::bit_cast<float>(0x7FC00000u), std::bit_cast<float>(0xFFA12345u),
                          std::bit_cast<float>(0x7F800001u), 5.9604645e-8f, 2.9802322e-8f, 2.98023259e-8f,
                          1e-10f, -6.097555e-5f, 6.1035156e-5f, 1.00048828125f, 1.00146484375f, 2049.0f, 2051.0f};
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f), small(-1e-4f, 1e-4f);
  while (x.size() < 203) x.push_back(x.size() % 2 ? u(rng) : small(rng));
  std::vector<uint8_t> want(2 * x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = f32_to_fp16(x[i]);
    std::memcpy(&want[2 * i], &h, 2);
  }
  for (CpuLevel level : runnable_levels())
    for (int64_t n : {1, 7, 8, 9, 203}) {
      std::vector<uint8_t> got(want.size() + 2, 0xEE);
      fast::kernels_for(level).f32_to_f16(x.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(0, std::memcmp(&got[2 * i], &want[2 * i], 2))
            << cpu_level_name(level) << " x[" << i << "] = " << x[static_cast<size_t>(i)];
      EXPECT_EQ(got[2 * n], 0xEE) << cpu_level_name(level) << ": wrote past n";
    }
}

// C += A B with A read in place as itself or as a transpose (training's
// backward products): against double precision at every level, for shapes
// that exercise every column path and the 6-row blocks and their
// remainders; and bit-identical with and without threads.
TEST(FastAccumulate, MatchesDoublePrecisionAndIsThreadIndependent) {
  std::mt19937 rng(11);
  ThreadPool pool(3);
  for (test::AccumulateShape sh : test::kAccumulateShapes) {
    for (bool transposed : {false, true}) {
      const test::AccumulateProblem p(sh.m, sh.n, sh.k, transposed, rng);
      for (CpuLevel level : runnable_levels()) {
        std::vector<float> c1 = p.c0, c2 = p.c0;
        matmul_accumulate_at(level, p.m, p.n, p.k, p.a.data(), p.a_si, p.a_sk, p.b.data(), p.ldb, c1.data(), p.ldc,
                             nullptr);
        matmul_accumulate_at(level, p.m, p.n, p.k, p.a.data(), p.a_si, p.a_sk, p.b.data(), p.ldb, c2.data(), p.ldc,
                             &pool);
        for (int64_t i = 0; i < p.m; ++i)
          for (int64_t j = 0; j < p.ldc; ++j) {
            const size_t at = static_cast<size_t>(i * p.ldc + j);
            ASSERT_EQ(c1[at], c2[at]) << cpu_level_name(level) << " threads change element " << i << "," << j;
            if (j >= p.n) {
              ASSERT_EQ(c1[at], p.c0[at]) << "padding column written";
              continue;
            }
            ASSERT_NEAR(c1[at], p.want(i, j), 1e-5 * (p.k + 1))
                << cpu_level_name(level) << " m" << p.m << " n" << p.n << " k" << p.k;
          }
      }
    }
  }
  std::vector<float> c(4, 0.0f);
  EXPECT_THROW(matmul_accumulate(-1, 2, 2, c.data(), 2, 1, c.data(), 2, c.data(), 2, nullptr), Error);
}

TEST(CpuLevels, NamesAndUnsupportedLevelsAreErrors) {
  for (CpuLevel l : kCpuLevels) EXPECT_EQ(cpu_level_from_name(cpu_level_name(l)), l);
  EXPECT_EQ(cpu_level_from_name("avx2-vnni"), CpuLevel::kAvx2Vnni);
  EXPECT_THROW(cpu_level_from_name("sse9"), Error);
  EXPECT_TRUE(cpu_level_supported(CpuLevel::kScalar));
  EXPECT_TRUE(cpu_level_supported(best_cpu_level()));
  // AVX-VNNI is a separate feature bit: a level of its own, never implied.
  EXPECT_EQ(cpu_level_supported(CpuLevel::kAvx2Vnni),
            cpu_level_supported(CpuLevel::kAvx2) && cpu_features().avx_vnni);
  // AMX needs the tile data the OS grants on request, not only the bits.
  EXPECT_EQ(cpu_level_from_name("amx"), CpuLevel::kAmx);
  const CpuFeatures& f = cpu_features();
  EXPECT_EQ(cpu_level_supported(CpuLevel::kAmx), cpu_level_supported(CpuLevel::kAvx512) && f.avx512bf16 &&
                                                     f.amx_tile && f.amx_bf16 && f.amx_permitted);
  for (CpuLevel l : kCpuLevels)
    if (!cpu_level_supported(l)) {
      EXPECT_THROW(set_cpu_level(l), Error) << cpu_level_name(l);
    }
  std::printf("CPU features: %s; best level %s\n", cpu_features_string().c_str(), cpu_level_name(best_cpu_level()));
}

}  // namespace
}  // namespace onellm
