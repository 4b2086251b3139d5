// The context layer: chunk images (round trip, quantization error, every
// header check, corruption), chunk files (atomic write, stale and orphan
// removal, unwritable store), and the store (restart restores from disk with
// the same greedy reply, corrupt chunks are recomputed, the budget holds).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "base/error.h"
#include "context/context.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModelSpec spec;
    spec.arch = "qwen2";
    spec.n_ctx = 1024;
    write_tiny_model(spec, dir_.file("m.gguf"));
    model_ = Model::load(dir_.file("m.gguf"));
    tok_ = Tokenizer::from_gguf(model_->gguf());
  }
  // A cache holding n positions of random keys/values.
  KvCache random_cache(int64_t n, uint32_t seed = 1, TensorType type = TensorType::F32) {
    KvCache cache(model_->config(), n, type);
    cache.reserve(n);
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0, 2);
    std::vector<float> k(static_cast<size_t>(n * cache.kv_dim())), v(k.size());
    for (int64_t l = 0; l < cache.n_layer(); ++l) {
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = normal(rng);
        v[i] = normal(rng);
      }
      cache.write_k(l, 0, n, k.data());
      cache.write_v(l, 0, n, v.data());
    }
    cache.set_size(n);
    return cache;
  }
  ChunkIdentity ident(int64_t pos0, int64_t n) {
    ChunkIdentity id;
    id.model_hash = 42;
    id.app = "mail";
    id.pos0 = pos0;
    for (int64_t i = 0; i < n; ++i) id.tokens.push_back(static_cast<int32_t>(3 + i));
    id.chain_hash = chunk_chain_hash(7, id.tokens.data(), n);
    id.n_layer = model_->config().n_layer;
    id.kv_dim = model_->config().kv_dim();
    return id;
  }
  static double max_error(KvCache& a, KvCache& b, int64_t pos0, int64_t n, double* amax) {
    double err = 0;
    *amax = 0;
    std::vector<float> x(static_cast<size_t>(n * a.kv_dim())), y(x.size());
    for (int64_t l = 0; l < a.n_layer(); ++l)
      for (int kv = 0; kv < 2; ++kv) {
        if (kv == 0) {
          a.read_k(l, pos0, n, x.data());
          b.read_k(l, pos0, n, y.data());
        } else {
          a.read_v(l, pos0, n, x.data());
          b.read_v(l, pos0, n, y.data());
        }
        for (size_t i = 0; i < x.size(); ++i) {
          err = std::max(err, static_cast<double>(std::fabs(x[i] - y[i])));
          *amax = std::max(*amax, static_cast<double>(std::fabs(x[i])));
        }
      }
    return err;
  }
  GenerationRequest greedy(const std::vector<int32_t>& prompt, int64_t n) {
    GenerationRequest r;
    r.prompt = prompt;
    r.max_tokens = n;
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    return r;
  }
  std::vector<int32_t> long_prompt(int repeats) {
    std::string text;
    for (int i = 0; i < repeats; ++i) text += "the little dog ran to the park and saw a cat " + std::to_string(i) + ". ";
    return tok_->encode(text, true, true);
  }
  test::TempDir dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  ThreadPool pool_{2};
};

TEST_F(ContextTest, ChunkRoundTripIsExactInF32AndBoundedWhenQuantized) {
  KvCache src = random_cache(96);
  ChunkIdentity id = ident(32, 32);
  KvCache dst(model_->config(), 96);
  dst.reserve(96);
  decode_kv_chunk(encode_kv_chunk(id, src, KvFormat::kF32), id, dst);
  double amax = 0;
  EXPECT_EQ(max_error(src, dst, 32, 32, &amax), 0.0);
  // Relative error bound per format: half a quantization step of the block's largest value.
  const std::pair<KvFormat, double> bounds[] = {{KvFormat::kInt8, 0.5 / 127}, {KvFormat::kInt4, 0.5 / 7},
                                               {KvFormat::kInt2, 0.5 / 1.5 + 1e-6}};
  size_t previous_size = SIZE_MAX;
  for (auto [format, bound] : bounds) {
    std::string image = encode_kv_chunk(id, src, format);
    EXPECT_LT(image.size(), previous_size) << kv_format_name(format);
    previous_size = image.size();
    decode_kv_chunk(image, id, dst);
    const double err = max_error(src, dst, 32, 32, &amax);
    EXPECT_GT(err, 0.0) << kv_format_name(format);
    EXPECT_LE(err, bound * amax * 1.0001) << kv_format_name(format);
    // Transcoding from F32 gives the same bytes as encoding directly.
    EXPECT_EQ(transcode_kv_chunk(encode_kv_chunk(id, src, KvFormat::kF32), format), image);
  }
  // An F16 cache stored as f16 is its own bytes: exact, half the F32 size.
  KvCache half = random_cache(96, 3, TensorType::F16);
  KvCache half_dst(model_->config(), 96, TensorType::F16);
  half_dst.reserve(96);
  const std::string half_image = encode_kv_chunk(id, half, KvFormat::kF16);
  decode_kv_chunk(half_image, id, half_dst);
  EXPECT_EQ(max_error(half, half_dst, 32, 32, &amax), 0.0);
  EXPECT_LT(half_image.size(), encode_kv_chunk(id, half, KvFormat::kF32).size() * 0.52);
  half.k_at(1, 0, 40)[7] = 0x7E;  // an F16 NaN in the cache is copied raw, and refused on the way back
  EXPECT_THROW(decode_kv_chunk(encode_kv_chunk(id, half, KvFormat::kF16), id, half_dst), Error);
  KvFormat f;
  ChunkIdentity peeked = peek_kv_chunk(encode_kv_chunk(id, src, KvFormat::kInt4), &f);
  EXPECT_EQ(f, KvFormat::kInt4);
  EXPECT_EQ(peeked.tokens, id.tokens);
  EXPECT_EQ(peeked.app, "mail");
}

TEST(ContextFormats, AttentionChoosesTheDepthAndCachesTheirLosslessFormat) {
  EXPECT_EQ(kv_format_for_attention(-1), KvFormat::kInt8);  // never measured
  EXPECT_EQ(kv_format_for_attention(1.0), KvFormat::kInt8);
  EXPECT_EQ(kv_format_for_attention(0.3), KvFormat::kInt4);
  EXPECT_EQ(kv_format_for_attention(0.01), KvFormat::kInt2);
  EXPECT_EQ(kv_format_for_cache(TensorType::F16), KvFormat::kF16);
  EXPECT_EQ(kv_format_for_cache(TensorType::F32), KvFormat::kF32);
  EXPECT_EQ(parse_kv_format("f16"), KvFormat::kF16);
  EXPECT_THROW(parse_kv_format("int3"), Error);
  // CRC-32 (IEEE) check value, and chaining over pieces of any length equals one pass.
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
  std::string text(1000, '\0');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>(i * 7 + 3);
  EXPECT_EQ(crc32(text.data() + 13, text.size() - 13, crc32(text.data(), 13)), crc32(text.data(), text.size()));
}

TEST_F(ContextTest, ChunkRejectsEveryMismatchAndCorruption) {
  KvCache src = random_cache(64);
  ChunkIdentity id = ident(0, 32);
  const std::string image = encode_kv_chunk(id, src, KvFormat::kInt8);
  KvCache dst(model_->config(), 64);
  dst.reserve(64);
  auto rejects = [&](const std::string& img, ChunkIdentity want, const std::string& words) {
    try {
      decode_kv_chunk(img, want, dst);
      ADD_FAILURE() << "accepted; expected an error about " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  ChunkIdentity other = id;
  other.model_hash = 43;
  rejects(image, other, "model file hash");
  other = id;
  other.app = "launcher";
  rejects(image, other, "app");
  other = id;
  other.tokens[5] += 1;
  rejects(image, other, "token ids");
  other = id;
  other.pos0 = 32;
  rejects(image, other, "start position");
  other = id;
  other.adapter = "lora-1";
  rejects(image, other, "adapter");
  for (size_t at : {size_t{3}, size_t{20}, image.size() / 2, image.size() - 1}) {
    std::string bad = image;
    bad[at] ^= 0x10;
    rejects(bad, id, at < 8 ? "magic" : "checksum");
  }
  rejects(image.substr(0, image.size() - 9), id, "checksum");
  rejects("", id, "too short");
}

TEST_F(ContextTest, ChunkFilesAreAtomicAndStaleOnesAreDiscarded) {
  KvCache src = random_cache(32);
  ChunkIdentity id = ident(0, 32);
  const std::string image = encode_kv_chunk(id, src, KvFormat::kF32);
  const std::string dir = dir_.file("kv");
  {
    KvChunkStore store(dir, 42);
    store.write("mail", id.chain_hash, 32, KvFormat::kF32, image);
    EXPECT_TRUE(store.contains("mail", id.chain_hash));
    EXPECT_FALSE(store.contains("launcher", id.chain_hash));  // per app
    EXPECT_EQ(store.read("mail", id.chain_hash, true), image);
    EXPECT_EQ(store.count(), 1);
    int files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".kvc") ++files;
    EXPECT_EQ(files, 1);  // no temporary file left
    struct stat st {};
    ASSERT_EQ(::stat(std::filesystem::path(store.path_of("mail", id.chain_hash)).parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    // An orphan (crash between rename and insert) and a leftover temporary file.
    std::ofstream(std::filesystem::path(store.path_of("mail", 99)).string()) << "x";
    std::ofstream(store.path_of("mail", 98) + ".tmp1_0") << "x";
    EXPECT_EQ(store.discard_stale(), 2);
    EXPECT_TRUE(store.contains("mail", id.chain_hash));
  }
  KvChunkStore other_model(dir, 43);
  EXPECT_FALSE(other_model.contains("mail", id.chain_hash));
  EXPECT_EQ(other_model.discard_stale(), 1);
  EXPECT_FALSE(std::filesystem::exists(other_model.path_of("mail", id.chain_hash)));
  EXPECT_EQ(other_model.count(), 0);
}

TEST_F(ContextTest, UnwritableStoreIsAClearError) {
  KvChunkStore store(dir_.file("kv"), 42);
  // A file where the app's directory should be: writes fail whoever we run as.
  std::ofstream(dir_.file("kv") + "/6d61696c") << "not a directory";
  KvCache src = random_cache(32);
  ChunkIdentity id = ident(0, 32);
  try {
    store.write("mail", id.chain_hash, 32, KvFormat::kF32, encode_kv_chunk(id, src, KvFormat::kF32));
    FAIL() << "write into a non-directory succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("6d61696c"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(store.contains("mail", id.chain_hash));
}

TEST_F(ContextTest, RestartRestoresFromDiskWithTheSameReply) {
  const std::vector<int32_t> prompt = long_prompt(12);
  ASSERT_GT(prompt.size(), 100u);
  ContextOptions o;
  o.always_load = true;  // the disk path, whatever the timing under load
  o.dir = dir_.file("kv");
  std::vector<int32_t> turn2;
  GenerationResult without_restart;
  {
    ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
    Sequence& seq = store.checkout("mail", "s1", 10, 512, prompt, 600);
    GenerationResult first = seq.generate(greedy(prompt, 8));
    turn2 = seq.tokens();
    for (int32_t t : tok_->encode(" and then", false, false)) turn2.push_back(t);
    store.checkin("mail", "s1");
    store.flush();
    EXPECT_GE(store.stats().chunks_written, static_cast<int64_t>(prompt.size() / 32));
    RestoreReport live;
    Sequence& again = store.checkout("mail", "s1", 10, 512, turn2, 600, &live);
    EXPECT_EQ(live.chunks_from_disk + live.chunks_from_memory + live.chunks_recomputed, 0);
    without_restart = again.generate(greedy(turn2, 8));
    store.checkin("mail", "s1");
  }
  ContextStore restarted(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
  RestoreReport report;
  Sequence& seq = restarted.checkout("mail", "s1", 10, 512, turn2, 600, &report);
  EXPECT_EQ(report.chunks_from_disk, static_cast<int64_t>((turn2.size() - 1) / 32));
  EXPECT_EQ(report.chunks_recomputed, 0);
  EXPECT_EQ(report.tokens_restored, report.chunks_from_disk * 32);
  GenerationResult after = seq.generate(greedy(turn2, 8));
  EXPECT_EQ(after.tokens, without_restart.tokens);
  EXPECT_EQ(after.n_prompt_evaluated, static_cast<int64_t>(turn2.size()) - report.tokens_restored);
  restarted.checkin("mail", "s1");
  // Another app never gets these chunks.
  RestoreReport other;
  restarted.checkout("launcher", "s1", 10, 512, turn2, 600, &other);
  EXPECT_EQ(other.tokens_restored, 0);
  restarted.checkin("launcher", "s1");
}

// A random LoRA adapter for the tiny model on attn_k, attn_v and ffn_down:
// it changes every layer's keys and values.
std::string write_random_adapter(const ModelConfig& c, const std::string& path, uint32_t seed) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string(c.arch));
  w.set("general.type", GgufValue::of_string("adapter"));
  w.set("adapter.type", GgufValue::of_string("lora"));
  w.set("adapter.lora.alpha", GgufValue::of_f32(8.0f));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  const int64_t rank = 4;
  auto pair = [&](const std::string& name, int64_t cols, int64_t rows) {
    std::vector<float> a(static_cast<size_t>(rank * cols)), b(static_cast<size_t>(rows * rank));
    for (float& x : a) x = u(rng);
    for (float& x : b) x = u(rng);
    w.add_tensor_f32(name + ".lora_a", TensorType::F32, {cols, rank}, a.data());
    w.add_tensor_f32(name + ".lora_b", TensorType::F32, {rank, rows}, b.data());
  };
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string blk = "blk." + std::to_string(l) + ".";
    pair(blk + "attn_k.weight", c.n_embd, c.kv_dim());
    pair(blk + "attn_v.weight", c.n_embd, c.kv_dim());
    pair(blk + "ffn_down.weight", c.n_ff, c.n_embd);
  }
  w.write(path);
  return path;
}

// A session's adapter is part of its KV's identity: its chunks are restored
// for it (after a restart too) and never for the base model, even in the
// same app with the same tokens; replies equal a plain sequence's with the
// same adapter.
TEST_F(ContextTest, AdapterSessionsKeepTheirOwnChunks) {
  const SessionAdapter lora{"style@1", LoraWeights::load(write_random_adapter(model_->config(), dir_.file("a.gguf"), 5),
                                                         *model_)};
  const std::vector<int32_t> prompt = long_prompt(8);
  auto reference = [&](const SessionAdapter& a, const std::vector<int32_t>& p) {
    SequenceOptions so;
    so.n_ctx = 512;
    so.lora = a.weights;
    Sequence seq(*model_, *tok_, &pool_, so);
    return seq.generate(greedy(p, 8)).tokens;
  };
  const std::vector<int32_t> with_adapter = reference(lora, prompt), base = reference({}, prompt);
  ASSERT_NE(with_adapter, base) << "the adapter must change the reply for this test to mean anything";
  ContextOptions o;
  o.always_load = true;
  o.dir = dir_.file("kv");
  std::vector<int32_t> turn2;
  {
    ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
    Sequence& seq = store.checkout("mail", "s1", 10, 512, prompt, 600, nullptr, 0, false, lora);
    EXPECT_EQ(seq.generate(greedy(prompt, 8)).tokens, with_adapter);
    turn2 = seq.tokens();
    store.checkin("mail", "s1");
    store.flush();
    RestoreReport r;
    Sequence& plain = store.checkout("mail", "s2", 10, 512, prompt, 600, &r);
    EXPECT_EQ(r.tokens_restored, 0) << "the adapter's chunks are not the base model's";
    EXPECT_EQ(plain.generate(greedy(prompt, 8)).tokens, base);
    store.checkin("mail", "s2");
    store.flush();
    RestoreReport shared;
    Sequence& same = store.checkout("mail", "s3", 10, 512, prompt, 600, &shared, 0, false, lora);
    EXPECT_GE(shared.tokens_restored, 64);
    EXPECT_EQ(same.generate(greedy(prompt, 8)).tokens, with_adapter);
    store.checkin("mail", "s3");
    // A live session asked for with another adapter is parked under its own;
    // what it restores now are the base model's chunks (written by s2).
    RestoreReport switched_report;
    Sequence& switched = store.checkout("mail", "s3", 10, 512, prompt, 600, &switched_report);
    EXPECT_EQ(switched_report.chunks_corrupt, 0);
    EXPECT_EQ(switched.generate(greedy(prompt, 8)).tokens, base);
    store.checkin("mail", "s3");
    RestoreReport back;
    Sequence& back_again = store.checkout("mail", "s3", 10, 512, prompt, 600, &back, 0, false, lora);
    EXPECT_GE(back.chunks_from_memory + back.chunks_from_disk, 2);
    EXPECT_EQ(back_again.generate(greedy(prompt, 8)).tokens, with_adapter);
    store.checkin("mail", "s3");
  }
  for (int32_t t : tok_->encode(" and then", false, false)) turn2.push_back(t);
  ContextStore restarted(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
  RestoreReport report;
  Sequence& seq = restarted.checkout("mail", "s1", 10, 512, turn2, 600, &report, 0, false, lora);
  EXPECT_EQ(report.chunks_from_disk, static_cast<int64_t>((turn2.size() - 1) / 32));
  EXPECT_EQ(seq.generate(greedy(turn2, 8)).tokens, reference(lora, turn2));
  restarted.checkin("mail", "s1");
}

// The write-back is asynchronous; a session asking for chunks another one
// has only just queued waits for those writes instead of recomputing them.
TEST_F(ContextTest, ChunksQueuedForWriteBackAreRestoredNotRecomputed) {
  const std::vector<int32_t> prompt = long_prompt(16);
  ContextOptions o;
  o.always_load = true;
  o.dir = dir_.file("kv");
  ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
  for (int round = 0; round < 5; ++round) {
    const std::string first = "a" + std::to_string(round), second = "b" + std::to_string(round);
    std::vector<int32_t> p = prompt;
    p.push_back(static_cast<int32_t>(10 + round));  // each round's chunks are new (the chain starts here)
    std::rotate(p.begin(), p.end() - 1, p.end());
    store.checkout("mail", first, 10, 1024, p, 1024).generate(greedy(p, 1));
    store.checkin("mail", first);  // queues the chunks; no flush
    RestoreReport r;
    store.checkout("mail", second, 10, 1024, p, 1024, &r);
    EXPECT_EQ(r.chunks_from_disk, static_cast<int64_t>((p.size() - 1) / 32)) << "round " << round;
    store.checkin("mail", second);
  }
  store.flush();
}

TEST_F(ContextTest, CorruptChunkIsRecomputedAndTheReplyIsUnchanged) {
  const std::vector<int32_t> prompt = long_prompt(10);
  ContextOptions o;
  o.always_load = true;  // the disk path, whatever the timing under load
  o.dir = dir_.file("kv");
  GenerationResult reference;
  std::string victim;
  {
    ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
    store.checkout("app", "s", 0, 512, prompt, 600).prefill(prompt);
    store.checkin("app", "s");
    store.flush();
    uint64_t chain = chunk_chain_hash(0, prompt.data(), 32);
    chain = chunk_chain_hash(chain, prompt.data() + 32, 32);
    victim = KvChunkStore(o.dir, store.model_hash()).path_of("app", chain);
  }
  {
    Sequence plain(*model_, *tok_, &pool_);
    reference = plain.generate(greedy(prompt, 8));
  }
  std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << victim;
  f.seekp(200);
  f.put('\x5a');
  f.close();
  {
    // The service's mode (no restore pool): the restore stops before the
    // corrupt chunk and the request's own prefill computes the rest.
    ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
    RestoreReport report;
    Sequence& seq = store.checkout("app", "s", 0, 512, prompt, 600, &report);
    EXPECT_EQ(report.chunks_corrupt, 1);
    EXPECT_EQ(report.chunks_recomputed, 0);
    EXPECT_EQ(report.tokens_restored, 32);
    EXPECT_EQ(seq.generate(greedy(prompt, 8)).tokens, reference.tokens);
    store.checkin("app", "s");
    store.flush();
  }
  f.open(victim, std::ios::in | std::ios::out | std::ios::binary);  // rewritten at checkin: corrupt it again
  ASSERT_TRUE(f.good()) << victim;
  f.seekp(200);
  f.put('\x5a');
  f.close();
  o.restore_pool = &pool_;  // recomputed inside the restore, next to the loads
  ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
  RestoreReport report;
  Sequence& seq = store.checkout("app", "s", 0, 512, prompt, 600, &report);
  EXPECT_EQ(report.chunks_corrupt, 1);
  EXPECT_EQ(report.chunks_recomputed, 1);
  EXPECT_GT(report.chunks_from_disk, 0);
  EXPECT_EQ(seq.generate(greedy(prompt, 8)).tokens, reference.tokens);
  store.checkin("app", "s");
  store.flush();
  EXPECT_TRUE(std::filesystem::exists(victim));  // rewritten from the recomputed KV
  EXPECT_EQ(store.stats().chunks_corrupt, 1);
}

TEST_F(ContextTest, BudgetIsNeverExceededAndParkedSessionsResume) {
  ContextOptions o;  // memory only: parked chunks compress, then drop
  const uint64_t per_token = KvCache(model_->config(), 1, o.kv_type).bytes_per_token();
  o.budget_bytes = per_token * 700;
  ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
  std::vector<std::vector<int32_t>> prompts;
  for (int s = 0; s < 6; ++s) {
    std::vector<int32_t> p = long_prompt(6 + s);
    prompts.push_back(p);
    Sequence& seq = store.checkout("app", "s" + std::to_string(s), s % 2 ? 0 : 40, 512, p, 300);
    seq.generate(greedy(p, 4));
    store.checkin("app", "s" + std::to_string(s));
    EXPECT_LE(store.stats().used_bytes, o.budget_bytes);
  }
  ContextStats st = store.stats();
  EXPECT_LE(st.peak_bytes, o.budget_bytes);
  EXPECT_GT(st.chunks_by_format[static_cast<int>(KvFormat::kInt8)] + st.chunks_by_format[static_cast<int>(KvFormat::kInt4)] +
                st.chunks_by_format[static_cast<int>(KvFormat::kInt2)],
            0);
  EXPECT_LT(st.live_sessions, 6);
  // The first session was parked (compressed or dropped) and still answers.
  RestoreReport r;
  Sequence& seq = store.checkout("app", "s0", 40, 512, prompts[0], 300, &r);
  EXPECT_EQ(seq.generate(greedy(prompts[0], 4)).tokens.size(), 4u);
  store.checkin("app", "s0");
  EXPECT_LE(store.stats().peak_bytes, o.budget_bytes);
}

}  // namespace
}  // namespace onellm

namespace onellm {
namespace {

// Two requests whose KV together exceeds the budget: the second checkout
// waits until the first is checked in (its KV parked) instead of going over.
TEST_F(ContextTest, CheckoutWaitsForRunningRequestsInsteadOfExceedingTheBudget) {
  ContextOptions o;
  const uint64_t per_token = KvCache(model_->config(), 1, o.kv_type).bytes_per_token();
  o.budget_bytes = per_token * 450;
  ContextStore store(*model_, *tok_, &pool_, dir_.file("m.gguf"), o);
  const std::vector<int32_t> p1 = long_prompt(8), p2 = long_prompt(9);
  Sequence& first = store.checkout("app", "a", 0, 512, p1, 300);
  first.prefill(p1);
  std::atomic<bool> second_done{false};
  std::thread other([&] {
    Sequence& second = store.checkout("app", "b", 0, 512, p2, 300);
    second_done = true;
    second.prefill(p2);
    store.checkin("app", "b");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(second_done.load()) << "the second request must wait: both do not fit";
  store.checkin("app", "a");
  other.join();
  const ContextStats st = store.stats();
  EXPECT_TRUE(second_done.load());
  EXPECT_GE(st.waits_for_checkin, 1);
  EXPECT_EQ(st.over_budget, 0);
  EXPECT_LE(st.peak_bytes, o.budget_bytes);
}

}  // namespace
}  // namespace onellm
