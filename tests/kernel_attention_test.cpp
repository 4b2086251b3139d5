// Attention over KV rows (F32, F16, Q8_0) at every CPU level against a
// double-precision softmax on the same dequantized rows: the online softmax
// must give the same output and probabilities as the two-pass reference,
// for key counts around the 32-key block edges and head sizes that are not
// a multiple of the vector width (F16/F32), with rows at unaligned strides.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "base/error.h"
#include "kernels/fast_kernels.h"
#include "kernels/kernels.h"
#include "support/kernel_reference.h"

namespace onellm {
namespace {

// Whether query i of a group of n_queries runs on the AMX level's BF16
// tiles (fast_amx_attention.cpp): groups go to the kernels 16 queries at a
// time, and the tiles take F32 rows of enough queries and keys.
bool on_amx_tiles(CpuLevel level, TensorType type, int64_t i, int64_t n_queries, int64_t n_keys, int64_t dim) {
  const int64_t in_call = std::min<int64_t>(16, n_queries - i / 16 * 16);
  return level == CpuLevel::kAmx && type == TensorType::F32 && in_call >= fast::kAmxMinQueries &&
         n_keys >= fast::kAmxMinKeys && dim % 32 == 0 && dim <= fast::kAmxMaxHeadDim;
}

// How far the AMX tiles may be from the reference: their products are
// split in BF16 parts (16 significant bits), 5x the F32 levels' 2e-5.
double tolerance_at(CpuLevel level, TensorType type, int64_t i, int64_t n_queries, int64_t n_keys, int64_t dim) {
  return on_amx_tiles(level, type, i, n_queries, n_keys, dim) ? 1e-4 : 2e-5;
}

TEST(Attention, OnlineSoftmaxMatchesTwoPassAtEveryLevelAndType) {
  const CpuLevel saved = cpu_level();
  test::for_each_attention_case([](const test::AttentionCase& c) {
    const int64_t dim = c.dim, n = c.n;
    std::vector<float> q(static_cast<size_t>(dim));
    std::mt19937 rng(5);
    std::normal_distribution<float> dist;
    for (float& x : q) x = dist(rng);
    std::vector<double> want, want_p;
    test::attention_reference(q.data(), c.k.values.data(), c.v.values.data(), n, dim, c.scale, want, want_p);
    std::vector<float> out(static_cast<size_t>(dim)), probs(static_cast<size_t>(n));
    auto check = [&](const char* what) {
      for (int64_t d = 0; d < dim; ++d) ASSERT_NEAR(out[d], want[d], 2e-5) << what << " d=" << d;
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        ASSERT_NEAR(probs[j], want_p[j], 2e-6) << what << " j=" << j;
        sum += probs[j];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << what;
    };
    for (CpuLevel level : kCpuLevels) {
      if (!cpu_level_supported(level)) continue;
      attend_at(level, q.data(), c.k.view, c.v.view, n, dim, c.scale, out.data(), probs.data());
      check(cpu_level_name(level));
    }
    attend_exact(q.data(), c.k.view, c.v.view, n, dim, c.scale, out.data(), probs.data());
    check("exact");
  });
  set_cpu_level(saved);
}

TEST(Attention, GroupedQueriesMatchOneAtATime) {
  // attend_group (GQA heads sharing a KV head: decode, and prefill row by
  // row) against attend per query and the double-precision softmax: every
  // group size of the levels' kernels (1-16, one per template instance)
  // and 18 (the split beyond 16); head sizes 36 and 80 leave tails after
  // the 8- and 16-wide row chunks (Q8_0 rows need whole blocks).
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (int64_t dim : {64, 36, 80, 128})
      for (int64_t n : test::kAttentionKeyCounts)
        for (int64_t n_queries : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18}) {
          if (type == TensorType::Q8_0 && dim % 32 != 0) continue;
          const test::KvTestRows k(type, n, dim, 3 + static_cast<uint32_t>(n), 3.0f);
          const test::KvTestRows v(type, n, dim, 7 + static_cast<uint32_t>(n), 1.0f);
          std::vector<float> q(static_cast<size_t>(n_queries * dim));
          std::mt19937 rng(9 + static_cast<uint32_t>(n_queries));
          std::normal_distribution<float> dist;
          for (float& x : q) x = dist(rng);
          const float scale = 0.125f;
          std::vector<double> reference(q.size()), one, probs;
          for (int64_t i = 0; i < n_queries; ++i) {
            test::attention_reference(q.data() + i * dim, k.values.data(), v.values.data(), n, dim, scale, one, probs);
            std::copy(one.begin(), one.end(), reference.begin() + i * dim);
          }
          for (CpuLevel level : kCpuLevels) {
            if (!cpu_level_supported(level)) continue;
            std::vector<float> got(q.size()), want(q.size());
            attend_group_at(level, q.data(), n_queries, k.view, v.view, n, dim, scale, got.data());
            for (int64_t i = 0; i < n_queries; ++i)
              attend_at(level, q.data() + i * dim, k.view, v.view, n, dim, scale, want.data() + i * dim, nullptr);
            for (size_t i = 0; i < q.size(); ++i) {
              const double tolerance = tolerance_at(level, type, static_cast<int64_t>(i) / dim, n_queries, n, dim);
              ASSERT_NEAR(got[i], want[i], tolerance) << cpu_level_name(level) << " " << tensor_type_info(type).name
                                                 << " dim=" << dim << " n=" << n << " queries=" << n_queries
                                                 << " i=" << i;
              ASSERT_NEAR(got[i], reference[i], tolerance) << cpu_level_name(level) << " against the reference";
            }
          }
        }
}

TEST(Attention, AmxTileLayoutPreparedOnceGivesTheSameResults) {
  // Prefill at the amx level converts a KV head once per layer
  // (prepare_kv_tiles) instead of per call: the same products, so the same
  // bits as the tiles on F32 rows, and within the tiles' 1e-4 of the
  // reference also where F32 rows would have gone to AVX-512 (few queries
  // or keys). Prepared in two ranges, as threads split them.
  if (!cpu_level_supported(CpuLevel::kAmx)) GTEST_SKIP() << "no AMX level here";
  const CpuLevel before = cpu_level();
  set_cpu_level(CpuLevel::kAmx);
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (int64_t dim : {32, 64, 128})
      for (int64_t n : {1, 31, 33, 100}) {
        ASSERT_TRUE(kv_tiles_supported(dim));
        const test::KvTestRows k(type, n, dim, 41 + static_cast<uint32_t>(n), 3.0f);
        const test::KvTestRows v(type, n, dim, 43 + static_cast<uint32_t>(n), 1.0f);
        std::vector<uint8_t> kt(kv_tile_bytes(n, dim), 0xCD), vt(kt.size(), 0xCD);
        const int64_t split = std::min<int64_t>(32, n);
        prepare_kv_tiles(k.view, v.view, 0, split, dim, kt.data(), vt.data());
        prepare_kv_tiles(k.view, v.view, split, n, dim, kt.data(), vt.data());
        KvRows k_tiles, v_tiles, k_f32{TensorType::F32, reinterpret_cast<const uint8_t*>(k.values.data()),
                                        static_cast<size_t>(dim) * sizeof(float)};
        KvRows v_f32 = k_f32;
        v_f32.data = reinterpret_cast<const uint8_t*>(v.values.data());
        k_tiles.data = kt.data(), v_tiles.data = vt.data();
        k_tiles.bf16_tiles = v_tiles.bf16_tiles = true;
        for (int64_t n_queries : {1, 3, 7, 16, 20}) {
          std::mt19937 rng(5 + static_cast<uint32_t>(n_queries));
          std::normal_distribution<float> dist;
          std::vector<float> q(static_cast<size_t>(n_queries * dim));
          for (float& x : q) x = dist(rng);
          std::vector<int64_t> limits(static_cast<size_t>(n_queries));
          for (int64_t i = 0; i < n_queries; ++i)
            limits[static_cast<size_t>(i)] = i == 0 ? n : 1 + static_cast<int64_t>(rng() % n);
          std::vector<float> got(q.size()), rows(q.size());
          attend_group_causal_at(CpuLevel::kAmx, q.data(), n_queries, limits.data(), k_tiles, v_tiles, dim, 0.125f,
                                 got.data());
          attend_group_causal_at(CpuLevel::kAmx, q.data(), n_queries, limits.data(), k_f32, v_f32, dim, 0.125f,
                                 rows.data());
          std::vector<double> want, probs;
          for (size_t i = 0; i < q.size(); ++i) {
            const int64_t query = static_cast<int64_t>(i) / dim;
            if (i % static_cast<size_t>(dim) == 0)
              test::attention_reference(q.data() + query * dim, k.values.data(), v.values.data(),
                                        limits[static_cast<size_t>(query)], dim, 0.125f, want, probs);
            ASSERT_NEAR(got[i], want[i % static_cast<size_t>(dim)], 1e-4)
                << tensor_type_info(type).name << " dim=" << dim << " n=" << n << " queries=" << n_queries
                << " query " << query;
            if (on_amx_tiles(CpuLevel::kAmx, TensorType::F32, query, n_queries, n, dim)) {
              ASSERT_EQ(got[i], rows[i]) << "prepared and per-call tiles differ: dim=" << dim << " n=" << n;
            }
          }
        }
        // Only the grouped attention of the amx level reads the layout.
        std::vector<float> q(static_cast<size_t>(dim), 1.0f), out(q.size());
        EXPECT_THROW(attend_group_at(CpuLevel::kAvx512, q.data(), 1, k_tiles, v_tiles, n, dim, 0.125f, out.data()),
                     Error);
        EXPECT_THROW(attend_at(CpuLevel::kAmx, q.data(), k_tiles, v_tiles, n, dim, 0.125f, out.data(), nullptr), Error);
        if (HasFatalFailure()) break;
      }
  EXPECT_THROW(prepare_kv_tiles(KvRows{}, KvRows{}, 5, 40, 64, nullptr, nullptr), Error);
  set_cpu_level(before);
}

TEST(Attention, PartsOverKeyRangesMergeToTheWhole) {
  // attend_group_partial over ranges of the keys (unequal, one empty),
  // combined by merge_attention, against attend_group over all of them.
  const int64_t n = 100, dim = 64;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (int64_t n_queries : {1, 6, 7, 16, 18}) {
      const test::KvTestRows k(type, n, dim, 21, 3.0f), v(type, n, dim, 22, 1.0f);
      std::vector<float> q(static_cast<size_t>(n_queries * dim));
      std::mt19937 rng(4);
      std::normal_distribution<float> dist;
      for (float& x : q) x = dist(rng);
      const int64_t bounds[] = {0, 37, 37, 80, 100};  // parts of 37, 0, 43 and 20 keys
      const int64_t n_parts = 4;
      for (CpuLevel level : kCpuLevels) {
        if (!cpu_level_supported(level)) continue;
        std::vector<float> parts(static_cast<size_t>(n_parts * n_queries * dim)), maxes(n_parts * n_queries),
            sums(maxes.size()), merged(q.size()), whole(q.size());
        for (int64_t p = 0; p < n_parts; ++p) {
          const int64_t j0 = bounds[p], count = bounds[p + 1] - j0;
          KvRows kp = k.view, vp = v.view;
          kp.data += j0 * kp.stride;
          vp.data += j0 * vp.stride;
          attend_group_partial_at(level, q.data(), n_queries, kp, vp, count, dim, 0.125f,
                                  parts.data() + p * n_queries * dim, maxes.data() + p * n_queries,
                                  sums.data() + p * n_queries);
        }
        for (int64_t i = 0; i < n_queries; ++i)
          EXPECT_EQ(maxes[static_cast<size_t>(n_queries + i)], -std::numeric_limits<float>::infinity())
              << "the empty part's max";
        merge_attention(parts.data(), maxes.data(), sums.data(), n_parts, n_queries, dim, merged.data());
        attend_group_at(level, q.data(), n_queries, k.view, v.view, n, dim, 0.125f, whole.data());
        // The parts (under 64 keys each) run on the vector unit at every
        // level; the whole, at the amx level, on the tiles.
        for (size_t i = 0; i < q.size(); ++i)
          ASSERT_NEAR(merged[i], whole[i], tolerance_at(level, type, static_cast<int64_t>(i) / dim, n_queries, n, dim))
              << cpu_level_name(level) << " " << tensor_type_info(type).name << " queries=" << n_queries << " i=" << i;
      }
    }
}

TEST(Attention, CausalGroupsMaskEachQueryAtItsOwnKeyCount) {
  // attend_group_causal (prefill: rows of one sequence in one call) against
  // the double-precision softmax over each query's own keys: consecutive
  // positions as prefill gives them, and scattered counts down to one key,
  // so that later key blocks are masked whole for some queries; every group
  // size of the kernels and 20 (the split beyond 16).
  const int64_t n = 100;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (int64_t dim : {64, 36, 128})
      for (int64_t n_queries = 1; n_queries <= 20; n_queries += n_queries < 16 ? 1 : 4) {
        if (type == TensorType::Q8_0 && dim % 32 != 0) continue;
        const test::KvTestRows k(type, n, dim, 31 + static_cast<uint32_t>(dim), 3.0f);
        const test::KvTestRows v(type, n, dim, 37 + static_cast<uint32_t>(dim), 1.0f);
        std::mt19937 rng(11 + static_cast<uint32_t>(n_queries));
        std::normal_distribution<float> dist;
        std::vector<float> q(static_cast<size_t>(n_queries * dim));
        for (float& x : q) x = dist(rng);
        std::vector<int64_t> consecutive(static_cast<size_t>(n_queries)), scattered(consecutive.size());
        for (int64_t i = 0; i < n_queries; ++i) {
          consecutive[static_cast<size_t>(i)] = n - n_queries / 3 + i / 3;  // rows of 3 heads, the last at n
          scattered[static_cast<size_t>(i)] = i == 0 ? 1 : 1 + static_cast<int64_t>(rng() % n);
        }
        for (const std::vector<int64_t>* limits : {&consecutive, &scattered}) {
          std::vector<double> reference(q.size()), one, probs;
          for (int64_t i = 0; i < n_queries; ++i) {
            test::attention_reference(q.data() + i * dim, k.values.data(), v.values.data(), (*limits)[i], dim, 0.125f,
                                      one, probs);
            std::copy(one.begin(), one.end(), reference.begin() + i * dim);
          }
          for (CpuLevel level : kCpuLevels) {
            if (!cpu_level_supported(level)) continue;
            std::vector<float> got(q.size());
            attend_group_causal_at(level, q.data(), n_queries, limits->data(), k.view, v.view, dim, 0.125f, got.data());
            const int64_t most = *std::max_element(limits->begin(), limits->end());
            for (size_t i = 0; i < q.size(); ++i) {
              ASSERT_NEAR(got[i], reference[i],
                          tolerance_at(level, type, static_cast<int64_t>(i) / dim, n_queries, most, dim))
                  << cpu_level_name(level) << " " << tensor_type_info(type).name << " dim=" << dim
                  << " queries=" << n_queries << (limits == &consecutive ? " consecutive" : " scattered")
                  << " query " << i / static_cast<size_t>(dim) << " of "
                  << (*limits)[i / static_cast<size_t>(dim)] << " keys";
            }
          }
        }
      }
  std::vector<float> q(64), out(64), rows(64);
  const KvRows f32{TensorType::F32, reinterpret_cast<const uint8_t*>(rows.data()), 64 * sizeof(float)};
  const int64_t none = 0;
  EXPECT_THROW(attend_group_causal(q.data(), 1, &none, f32, f32, 64, 1.0f, out.data()), Error);
}

TEST(Attention, UnsupportedRowsAreErrors) {
  std::vector<float> q(20), out(20);
  std::vector<uint8_t> bytes(1024);
  KvRows q8{TensorType::Q8_0, bytes.data(), 34};
  EXPECT_THROW(attend(q.data(), q8, q8, 1, 20, 1.0f, out.data(), nullptr), Error);  // 20 is not a block multiple
  KvRows q4{TensorType::Q4_0, bytes.data(), 18};
  EXPECT_THROW(attend(q.data(), q4, q4, 1, 32, 1.0f, out.data(), nullptr), Error);
}

}  // namespace
}  // namespace onellm
