// Model loading: tiny random models of every architecture and type load and
// run; malformed models are rejected with errors naming what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "model/model.h"
#include "support/error_of.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using test::error_of;
using test::TempDir;

TEST(Model, EveryArchitectureAndTypeLoadsAndRuns) {
  TempDir dir;
  for (const char* arch : {"llama", "qwen2", "qwen3"}) {
    for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                            TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q4_K, TensorType::Q5_K,
                            TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS}) {
      SCOPED_TRACE(std::string(arch) + " " + tensor_type_name(static_cast<uint32_t>(type)));
      TinyModelSpec spec;
      spec.arch = arch;
      spec.type = type;
      spec.n_layer = 1;
      std::string path = dir.file("m.gguf");
      write_tiny_model(spec, path);
      auto model = Model::load(path);
      EXPECT_EQ(model->config().arch, arch);
      EXPECT_EQ(model->config().qkv_bias, std::string(arch) == "qwen2");
      EXPECT_EQ(model->config().qk_norm, std::string(arch) == "qwen3");
      KvCache cache(model->config(), 16);
      std::vector<int32_t> tokens = {1, 5, 9, 3};
      std::vector<float> logits(tokens.size() * model->config().n_vocab);
      model->forward(tokens.data(), 4, cache, logits.data(), true, nullptr);
      for (float v : logits) ASSERT_TRUE(std::isfinite(v));
      EXPECT_EQ(cache.size(), 4);
    }
  }
}

// Q4_0 / Q4_K / Q6_K weights are re-laid at load where the CPU has kernels
// for it (kernels.h, packed weights). Each packed matmul equals the file
// layout's to float rounding (kernel tests), but through a model a rounding
// difference can flip an 8-bit activation, and on these random-weight models
// the fast path is itself ~4 % (RMS) from the exact math. So: the packed
// model's logits (a prompt through the prefill kernels, then decode steps,
// tied embedding lookups included) must be as close to the exact logits as
// the file layout's are.
TEST(Model, PackedWeightsAreAsAccurateAsTheFileLayout) {
  TempDir dir;
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K}) {
    SCOPED_TRACE(tensor_type_name(static_cast<uint32_t>(type)));
    TinyModelSpec spec;
    spec.arch = "qwen2";
    spec.type = type;
    spec.tied_output = true;
    spec.n_vocab = 1000;  // not a multiple of the 16-row panels
    write_tiny_model(spec, dir.file("m.gguf"));
    ::setenv("ONELLM_PACK", "0", 1);
    auto plain = Model::load(dir.file("m.gguf"));
    ::unsetenv("ONELLM_PACK");
    auto packed = Model::load(dir.file("m.gguf"));
    EXPECT_EQ(plain->packed_bytes(), 0u);
    if (!packed_kernels_available(type)) continue;  // this CPU level reads the file layout
    EXPECT_GT(packed->packed_bytes(), 0u);
    const int64_t V = plain->config().n_vocab;
    std::vector<int32_t> tokens(24);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37 + 5) % V);
    ThreadPool pool(2);
    auto run = [&](const Model& m, MathMode mode) {
      KvCache cache(m.config(), 32);
      std::vector<float> logits(tokens.size() * V);
      m.forward(tokens.data(), 20, cache, logits.data(), true, &pool, mode);
      for (int i = 20; i < 24; ++i) m.forward(&tokens[i], 1, cache, logits.data() + i * V, false, &pool, mode);
      return logits;
    };
    const std::vector<float> exact = run(*plain, MathMode::kExact), file = run(*plain, MathMode::kFast),
                             repacked = run(*packed, MathMode::kFast);
    auto rms_error = [&](const std::vector<float>& got, size_t t) {
      double err = 0, norm = 0;
      for (int64_t j = 0; j < V; ++j) {
        const double x = exact[t * V + j], y = got[t * V + j];
        err += (x - y) * (x - y);
        norm += x * x;
      }
      return std::sqrt(err / norm);
    };
    for (size_t t = 0; t < tokens.size(); ++t)
      ASSERT_LE(rms_error(repacked, t), 1.25 * rms_error(file, t) + 0.01) << "position " << t;
  }
}

TEST(Model, MatricesLargerThanOnePackingSliceUnpackToTheFileBytes) {
  // The loader packs in slices of 4 MiB of file bytes and releases each
  // slice's file pages: the 8960 x 512 Q8_0 up projection (4.9 MB) is
  // slices of 7696 and 1264 rows, the 512 x 8960 down projection of 432 and
  // 80. Every row read back from the panels equals the file's row (released
  // pages fault in again from the file).
  TempDir dir;
  TinyModelSpec spec;
  spec.type = TensorType::Q8_0;
  spec.n_embd = 512;
  spec.n_ff = 8960;
  spec.n_layer = 1;
  write_tiny_model(spec, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  if (!packed_kernels_available(TensorType::Q8_0)) GTEST_SKIP() << "this CPU level reads the file layout";
  for (const MatrixView* w : {&model->layer(0).w_up, &model->layer(0).w_down}) {
    ASSERT_NE(w->packed, nullptr);
    std::vector<uint8_t> row(w->row_bytes());
    for (int64_t r = 0; r < w->rows; ++r) {
      unpack_matrix_row(*w, r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), static_cast<const uint8_t*>(w->data) + r * row.size(), row.size()))
          << "row " << r << " of " << w->rows;
    }
  }
}

// Pages of [p, p + n) that this process has mapped (/proc/self/pagemap's
// present bit; readable without privileges). -1 where pagemap is missing.
int64_t mapped_pages(const void* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t first = (begin + page - 1) / page, last = (begin + n) / page;
  FILE* f = std::fopen("/proc/self/pagemap", "rb");
  if (f == nullptr) return -1;
  int64_t mapped = 0;
  for (uintptr_t i = first; i < last; ++i) {
    uint64_t entry = 0;
    if (std::fseek(f, static_cast<long>(i * sizeof entry), SEEK_SET) != 0 ||
        std::fread(&entry, sizeof entry, 1, f) != 1) {
      std::fclose(f);
      return -1;
    }
    mapped += static_cast<int64_t>(entry >> 63);
  }
  std::fclose(f);
  return mapped;
}

TEST(Model, PrefetchLeavesThePackedMatricesFilePagesUnmapped) {
  // Packing releases each matrix's file pages; prefetch (run/chat/serve call
  // it after load) must not map them back. It used to touch the norms' and
  // biases' pages too, and with the file in the page cache in 2 MiB folios
  // each fault mapped a folio: ~90 MiB of a Qwen2.5-0.5B Q8_0 came back.
  TempDir dir;
  TinyModelSpec spec;
  spec.type = TensorType::Q8_0;
  spec.n_embd = 512;
  spec.n_ff = 1536;
  spec.n_layer = 4;
  spec.tied_output = true;
  write_tiny_model(spec, dir.file("m.gguf"));
  // Into the page cache the way a reader with huge-page advice leaves it
  // (2 MiB folios where the kernel supports them; llama.cpp's runs left the
  // benchmark files so): then a fault maps a whole folio, not one page.
  const int fd = open(dir.file("m.gguf").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const size_t file_bytes = std::filesystem::file_size(dir.file("m.gguf"));
  void* map = mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  madvise(map, file_bytes, MADV_HUGEPAGE);  // advice: refused or ignored is fine
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < file_bytes; i += 4096) sink = sink + static_cast<const uint8_t*>(map)[i];
  munmap(map, file_bytes);
  close(fd);
  auto model = Model::load(dir.file("m.gguf"));
  if (!packed_kernels_available(TensorType::Q8_0)) GTEST_SKIP() << "this CPU level reads the file layout";
  model->prefetch(nullptr);
  for (int64_t l = 0; l < spec.n_layer; ++l) {
    const auto& L = model->layer(l);
    for (const MatrixView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      ASSERT_NE(w->packed, nullptr);
      const int64_t mapped = mapped_pages(w->data, w->bytes());
      if (mapped < 0) GTEST_SKIP() << "no /proc/self/pagemap";
      EXPECT_EQ(mapped, 0) << "layer " << l << ", a matrix of " << w->rows << " rows";
    }
  }
}

TEST(Model, IncrementalDecodeEqualsBatchedPrefill) {
  TempDir dir;
  TinyModelSpec spec;
  spec.arch = "qwen3";
  write_tiny_model(spec, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  const int64_t V = model->config().n_vocab;
  std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6};
  ThreadPool pool(2);
  KvCache batch_cache(model->config(), 16), step_cache(model->config(), 16);
  std::vector<float> batch(tokens.size() * V), step(V);
  model->forward(tokens.data(), 8, batch_cache, batch.data(), true, &pool);
  for (size_t i = 0; i < tokens.size(); ++i) {
    model->forward(&tokens[i], 1, step_cache, step.data(), false, nullptr);
    for (int64_t j = 0; j < V; ++j) ASSERT_NEAR(step[j], batch[i * V + j], 1e-4) << "pos " << i;
  }
}

// A long context: decode splits each KV head's keys into chunks and merges
// them (flash-decoding); its logits must equal the batched prefill's row at
// the same position. 3 KV heads, so the heads do not divide among 2 threads.
TEST(Model, DecodeOverALongContextEqualsBatchedPrefill) {
  TempDir dir;
  TinyModelSpec spec;
  spec.n_head = 6;
  spec.n_head_kv = 3;
  spec.n_ctx = 4096;
  write_tiny_model(spec, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  const int64_t V = model->config().n_vocab, n = 2200;
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % V);
  ThreadPool pool(2);
  for (TensorType kv : {TensorType::F32, TensorType::F16}) {
    KvCache batch_cache(model->config(), n, kv), step_cache(model->config(), n, kv);
    std::vector<float> batch(static_cast<size_t>(n * V)), step(static_cast<size_t>(V));
    model->forward(tokens.data(), n, batch_cache, batch.data(), true, &pool);
    model->forward(tokens.data(), n - 2, step_cache, step.data(), false, &pool);
    for (int64_t t = n - 2; t < n; ++t) {  // keys 2199 and 2200: 3 chunks of 1024, the last partial
      model->forward(&tokens[static_cast<size_t>(t)], 1, step_cache, step.data(), false, &pool);
      for (int64_t j = 0; j < V; ++j)
        ASSERT_NEAR(step[static_cast<size_t>(j)], batch[static_cast<size_t>(t * V + j)], 2e-4)
            << tensor_type_info(kv).name << " pos " << t << " logit " << j;
    }
  }
}

// The cache keeps each KV head's positions contiguous; the position-major
// views (read/write as F32, the raw bytes saved chunks carry) and the
// attention rows must all name the same values, also after the cache grows.
TEST(Model, KvCacheHeadsKeepTheirRowsAcrossGrowthAndCopies) {
  ModelConfig config;
  config.n_layer = 2, config.n_head = 6, config.n_head_kv = 3, config.head_dim = 64;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0}) {
    KvCache cache(config, 64, type);
    cache.reserve(5);
    const int64_t n = 5, kvd = cache.kv_dim();
    std::vector<float> k(static_cast<size_t>(n * kvd)), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = static_cast<float>(static_cast<int>(i % 255) - 127) / 16.0f;
      v[i] = static_cast<float>(static_cast<int>((i * 7) % 255) - 127) / 16.0f;
    }
    // What the cache can hold: the values through its type (head slices are
    // whole Q8_0 blocks, so position-major rows encode the same).
    std::vector<uint8_t> encoded(tensor_row_bytes(type, n * kvd));
    for (std::vector<float>* x : {&k, &v}) {
      quantize_row(type, x->data(), encoded.data(), n * kvd);
      dequantize_row(type, encoded.data(), x->data(), n * kvd);
    }
    cache.write_k(1, 0, n, k.data());
    cache.write_v(1, 0, n, v.data());
    cache.reserve(40);  // grows: every head's rows move
    std::vector<float> back(k.size()), row(64);
    cache.read_k(1, 0, n, back.data());
    EXPECT_EQ(back, k) << tensor_type_info(type).name;
    cache.read_v(1, 0, n, back.data());
    EXPECT_EQ(back, v) << tensor_type_info(type).name;
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t t = 0; t < n; ++t) {
        const KvRows rows = cache.k_rows(1, h);
        dequantize_row(type, rows.data + t * rows.stride, row.data(), 64);
        for (int64_t d = 0; d < 64; ++d)
          ASSERT_EQ(row[static_cast<size_t>(d)], k[static_cast<size_t>(t * kvd + h * 64 + d)])
              << tensor_type_info(type).name << " head " << h << " position " << t;
      }
    // Raw rows out of positions 1-3 and into positions 20-22 of another layer.
    std::vector<uint8_t> bytes(3 * cache.row_bytes());
    cache.copy_rows_out(0 + 1, 1, 1, 3, bytes.data());  // V
    cache.copy_rows_in(0, 0, 20, 3, bytes.data());      // as K of layer 0
    std::vector<float> moved(static_cast<size_t>(3 * kvd));
    cache.read_k(0, 20, 3, moved.data());
    EXPECT_TRUE(std::equal(moved.begin(), moved.end(), v.begin() + kvd)) << tensor_type_info(type).name;
    std::vector<uint8_t> q8(tensor_row_bytes(type, kvd));  // the bytes are the rows' own encoding
    quantize_row(type, v.data() + kvd, q8.data(), kvd);
    EXPECT_TRUE(std::equal(q8.begin(), q8.end(), bytes.begin())) << tensor_type_info(type).name;
  }
}

// F16 and Q8_0 caches (head size 64 here) give logits close to the F32
// cache's; attention tracking sees every query's probabilities sum to one,
// so the count-weighted mean score over all positions is exactly 1.
TEST(Model, QuantizedKvCachesStayCloseAndAttentionIsAccounted) {
  TempDir dir;
  TinyModelSpec spec;
  spec.arch = "llama";
  write_tiny_model(spec, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  const int64_t V = model->config().n_vocab, n = 40;
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 13 + 5) % V);
  ThreadPool pool(2);
  std::vector<float> want(static_cast<size_t>(n * V)), got(want.size());
  KvCache f32(model->config(), n);
  model->forward(tokens.data(), n, f32, want.data(), true, &pool);
  double scale = 0;
  for (float x : want) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  for (auto [type, tolerance] : {std::pair{TensorType::F16, 2e-3}, std::pair{TensorType::Q8_0, 2e-2}}) {
    KvCache cache(model->config(), n, type);
    cache.track_attention(true);
    // A prompt chunk, then single-token steps (the decode path).
    model->forward(tokens.data(), n - 4, cache, got.data(), true, &pool);
    for (int64_t i = n - 4; i < n; ++i) model->forward(&tokens[i], 1, cache, got.data() + i * V, false, &pool);
    double dev = 0;
    for (size_t i = 0; i < want.size(); ++i) dev = std::max(dev, static_cast<double>(std::fabs(got[i] - want[i])));
    EXPECT_LT(dev, tolerance * scale) << tensor_type_info(type).name;
    EXPECT_NEAR(cache.attention_score(0, n), 1.0, 1e-5);
    EXPECT_GT(cache.attention_score(0, 1), 0.0);
    EXPECT_EQ(cache.attention_score(n, 5), -1.0);  // never seen
  }
  EXPECT_THROW(KvCache(model->config(), 8, TensorType::Q4_0), Error);
}

// A long chunk records only its last rows' attention (the earlier ones
// weigh next to nothing after the decay): the scores match those of the same
// tokens fed one at a time, where every query is recorded.
TEST(Model, LongChunksRecordAttentionLikeSingleSteps) {
  TempDir dir;
  write_tiny_model(TinyModelSpec{}, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  const int64_t V = model->config().n_vocab, n = 300;
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % V);
  ThreadPool pool(2);
  std::vector<float> logits(static_cast<size_t>(V));
  KvCache chunked(model->config(), n), stepped(model->config(), n);
  chunked.track_attention(true);
  stepped.track_attention(true);
  model->forward(tokens.data(), n, chunked, logits.data(), false, &pool);
  for (int64_t i = 0; i < n; ++i) model->forward(&tokens[static_cast<size_t>(i)], 1, stepped, logits.data(), false, &pool);
  for (int64_t pos = 0; pos < n; pos += 20) {
    const double want = stepped.attention_score(pos, 20);
    ASSERT_GE(want, 0.0);
    EXPECT_NEAR(chunked.attention_score(pos, 20), want, 0.01 * std::max(1.0, want)) << "positions " << pos;
  }
}

// One batched pass over several sequences (each at its own position, one a
// prompt chunk, the others single decode tokens) gives each the logits and
// KV it gets alone.
TEST(Model, BatchedForwardEqualsSeparateForwards) {
  TempDir dir;
  TinyModelSpec spec;
  spec.arch = "qwen2";
  write_tiny_model(spec, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  const int64_t V = model->config().n_vocab;
  ThreadPool pool(2);
  const std::vector<std::vector<int32_t>> history = {{5, 6, 7}, {9}, {3, 1, 4, 1, 5, 9, 2}};
  const std::vector<std::vector<int32_t>> next = {{11}, {12, 13, 14, 15}, {16}};
  std::vector<KvCache> alone, batched;
  std::vector<float> scratch(static_cast<size_t>(8 * V));
  for (const auto& h : history) {
    alone.emplace_back(model->config(), 32, TensorType::F16);
    batched.emplace_back(model->config(), 32, TensorType::F16);
    model->forward(h.data(), static_cast<int64_t>(h.size()), alone.back(), scratch.data(), false, &pool);
    model->forward(h.data(), static_cast<int64_t>(h.size()), batched.back(), scratch.data(), false, &pool);
  }
  std::vector<std::vector<float>> want(3), got(3);
  std::vector<Model::ForwardSegment> segments;
  for (size_t i = 0; i < 3; ++i) {
    const int64_t n = static_cast<int64_t>(next[i].size());
    want[i].resize(static_cast<size_t>(n * V));
    got[i].resize(want[i].size());
    model->forward(next[i].data(), n, alone[i], want[i].data(), true, &pool);
    segments.push_back({next[i].data(), n, &batched[i], got[i].data(), true});
  }
  model->forward_batch(segments.data(), 3, &pool);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(batched[i].size(), alone[i].size());
    for (size_t j = 0; j < want[i].size(); ++j) ASSERT_NEAR(got[i][j], want[i][j], 1e-3) << "sequence " << i;
    std::vector<float> ka(static_cast<size_t>(alone[i].size() * alone[i].kv_dim())), kb(ka.size());
    alone[i].read_k(1, 0, alone[i].size(), ka.data());
    batched[i].read_k(1, 0, batched[i].size(), kb.data());
    for (size_t j = 0; j < ka.size(); ++j) ASSERT_NEAR(ka[j], kb[j], 2e-3) << "sequence " << i;
  }
  Model::ForwardSegment twice[2] = {segments[0], segments[0]};
  EXPECT_THROW(model->forward_batch(twice, 2, &pool), Error);
}

// A pass run a layer at a time, with other sequences' passes in between
// (what the scheduler does when a prompt chunk yields), gives the logits and
// cache of the pass run at once; a pass dropped half-way leaves its cache as
// it was, and the chunk can then run again.
TEST(Model, SteppedPassWithWorkInBetweenEqualsTheWholePass) {
  TempDir dir;
  TinyModelSpec spec;
  spec.n_layer = 3;
  write_tiny_model(spec, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  const int64_t V = model->config().n_vocab;
  ThreadPool pool(2);
  const std::vector<int32_t> prefix = {1, 5, 9}, chunk = {4, 8, 15, 16, 23, 42}, other = {7, 3};
  KvCache whole(model->config(), 64), stepped(model->config(), 64), interloper(model->config(), 64);
  std::vector<float> want(static_cast<size_t>(V)), got(want.size()), scratch(want.size());
  model->forward(prefix.data(), 3, whole, want.data(), false, &pool);
  model->forward(prefix.data(), 3, stepped, got.data(), false, &pool);
  model->forward(chunk.data(), 6, whole, want.data(), false, &pool);

  const Model::ForwardSegment dropped_segment{chunk.data(), 4, &stepped, got.data(), false};
  {
    Model::Pass dropped = model->begin_pass(&dropped_segment, 1, &pool);
    dropped.step();
    dropped.step();
  }
  EXPECT_EQ(stepped.size(), 3);

  const Model::ForwardSegment segment{chunk.data(), 6, &stepped, got.data(), false};
  Model::Pass pass = model->begin_pass(&segment, 1, &pool);
  EXPECT_EQ(pass.steps(), spec.n_layer + 1);
  while (!pass.done()) {
    pass.step();
    model->forward(other.data(), 1, interloper, scratch.data(), false, &pool);  // another sequence in between
  }
  EXPECT_THROW(pass.step(), Error);
  ASSERT_EQ(stepped.size(), whole.size());
  for (int64_t i = 0; i < V; ++i) ASSERT_EQ(got[size_t(i)], want[size_t(i)]) << "logit " << i;
  std::vector<float> kw(static_cast<size_t>(whole.size() * whole.kv_dim())), ks(kw.size());
  for (int64_t l = 0; l < spec.n_layer; ++l) {
    whole.read_k(l, 0, whole.size(), kw.data());
    stepped.read_k(l, 0, stepped.size(), ks.data());
    ASSERT_EQ(kw, ks) << "layer " << l;
  }
}

TEST(Model, ContextOverflowAndBadTokensAreErrors) {
  TempDir dir;
  write_tiny_model(TinyModelSpec{}, dir.file("m.gguf"));
  auto model = Model::load(dir.file("m.gguf"));
  KvCache cache(model->config(), 2);
  std::vector<int32_t> tokens = {1, 2, 3};
  std::vector<float> logits(model->config().n_vocab);
  EXPECT_NE(error_of([&] { model->forward(tokens.data(), 3, cache, logits.data(), false, nullptr); }).find("context"),
            std::string::npos);
  int32_t bad = 1 << 30;
  EXPECT_NE(error_of([&] { model->forward(&bad, 1, cache, logits.data(), false, nullptr); }).find("out of range"),
            std::string::npos);
}

// Rewrites a tiny model with one change made by `edit`.
std::string variant(const TempDir& dir, const std::function<void(GgufWriter&, const GgufFile&)>& edit) {
  write_tiny_model(TinyModelSpec{}, dir.file("base.gguf"));
  auto base = GgufFile::open(dir.file("base.gguf"));
  GgufWriter w;
  for (const std::string& k : base->keys()) w.set(k, *base->find(k));
  edit(w, *base);
  std::string out = dir.file("variant.gguf");
  w.write(out);
  return out;
}

void copy_tensors(GgufWriter& w, const GgufFile& f, const std::string& skip = "") {
  for (const GgufTensor& t : f.tensors())
    if (t.name != skip) w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
}

TEST(Model, BadModelsNameWhatIsWrong) {
  TempDir dir;
  std::string p = variant(dir, [](GgufWriter& w, const GgufFile& f) {
    w.set("general.architecture", GgufValue::of_string("mamba"));
    copy_tensors(w, f);
  });
  EXPECT_NE(error_of([&] { Model::load(p); }).find("architecture 'mamba'"), std::string::npos);

  p = variant(dir, [](GgufWriter& w, const GgufFile& f) { copy_tensors(w, f, "blk.1.ffn_up.weight"); });
  EXPECT_NE(error_of([&] { Model::load(p); }).find("blk.1.ffn_up.weight"), std::string::npos);

  p = variant(dir, [](GgufWriter& w, const GgufFile& f) {
    w.set("llama.feed_forward_length", GgufValue::of_u32(100));
    copy_tensors(w, f);
  });
  std::string e = error_of([&] { Model::load(p); });
  EXPECT_NE(e.find("has shape"), std::string::npos) << e;

  p = variant(dir, [](GgufWriter& w, const GgufFile& f) {
    for (const GgufTensor& t : f.tensors()) {
      if (t.name == "blk.0.attn_q.weight") {
        // A type ggml defines but onellm does not compute with: I8 (one byte per element).
        size_t rows = static_cast<size_t>(t.dims[1]);
        w.add_tensor(t.name, TensorType::I8, t.dims, std::vector<uint8_t>(rows * t.dims[0]));
      } else {
        w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
      }
    }
  });
  e = error_of([&] { Model::load(p); });
  EXPECT_NE(e.find("blk.0.attn_q.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("has type I8"), std::string::npos) << e;
  EXPECT_NE(e.find("IQ4_XS"), std::string::npos) << e;  // the list of supported types
}

TEST(Model, TruncatedModelFileIsAnError) {
  TempDir dir;
  write_tiny_model(TinyModelSpec{}, dir.file("m.gguf"));
  std::filesystem::resize_file(dir.file("m.gguf"), std::filesystem::file_size(dir.file("m.gguf")) - 100);
  std::string e = error_of([&] { Model::load(dir.file("m.gguf")); });
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

}  // namespace
}  // namespace onellm
