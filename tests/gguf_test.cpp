#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <utility>

#include "base/error.h"
#include "gguf/gguf.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using test::TempDir;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

GgufWriter small_writer() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("answer", GgufValue::of_u32(42));
  w.set("ratio", GgufValue::of_f32(0.5f));
  w.set("flag", GgufValue::of_bool(true));
  w.set("names", GgufValue::of_strings({"a", "bc", ""}));
  GgufValue nested;
  nested.type = GgufType::ARRAY;
  nested.elem_type = GgufType::ARRAY;
  nested.items = {GgufValue::of_i32s({1, 2}), GgufValue::of_i32s({-3})};
  w.set("nested", nested);
  std::vector<uint8_t> t1(4 * 6);
  for (size_t i = 0; i < 6; ++i) {
    float v = static_cast<float>(i) * 1.5f;
    std::memcpy(t1.data() + 4 * i, &v, 4);
  }
  w.add_tensor("a.weight", TensorType::F32, {3, 2}, t1);
  w.add_tensor("b.bias", TensorType::F32, {1}, std::vector<uint8_t>(4, 0));
  return w;
}

TEST(Gguf, WriterReaderRoundTrip) {
  std::vector<uint8_t> bytes = small_writer().to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("answer"), 42);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("ratio")), 0.5f);
  EXPECT_TRUE(f->get_bool_or("flag", false));
  EXPECT_EQ(f->get_array("names").items.at(1).str, "bc");
  const GgufValue& nested = f->get_array("nested");
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[1].items.at(0).as_int(), -3);
  const GgufTensor& t = f->tensor("a.weight");
  EXPECT_EQ(t.dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(t.n_bytes, 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, reinterpret_cast<uintptr_t>(bytes.data()) % 32);
  float v5;
  std::memcpy(&v5, t.data + 20, 4);
  EXPECT_FLOAT_EQ(v5, 7.5f);
  EXPECT_EQ(f->keys().front(), "general.architecture");
}

TEST(Gguf, MissingAndMistypedKeysNameTheKey) {
  std::vector<uint8_t> bytes = small_writer().to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
  try {
    f->get_int("llama.block_count");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llama.block_count"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f->get_string("answer"), Error);
  EXPECT_EQ(f->get_int_or("nope", 7), 7);
  EXPECT_THROW(f->tensor("c.weight"), Error);
}

TEST(Gguf, FileTypeNamesTheQuantizationRecipe) {
  // general.file_type as llama-bench names it; a removed value (4), one
  // past the table, a string (-1 here) and no key at all give "".
  const std::pair<int64_t, const char*> cases[] = {
      {0, "all F32"}, {2, "Q4_0"}, {4, ""}, {7, "Q8_0"}, {9, "Q5_1"}, {10, "Q2_K - Medium"}, {15, "Q4_K - Medium"},
      {17, "Q5_K - Medium"}, {18, "Q6_K"}, {25, "IQ4_NL - 4.5 bpw"}, {30, "IQ4_XS - 4.25 bpw"}, {32, "BF16"},
      {1000, ""}, {-1, ""}};
  for (const auto& [value, name] : cases) {
    GgufWriter w = small_writer();
    w.set("general.file_type", value < 0 ? GgufValue::of_string("Q4_K_M") : GgufValue::of_u32(uint32_t(value)));
    std::vector<uint8_t> bytes = w.to_bytes();
    auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
    EXPECT_EQ(f->file_type_name(), name) << value;
  }
  std::vector<uint8_t> bytes = small_writer().to_bytes();
  EXPECT_EQ(GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf")->file_type_name(), "");
}

TEST(Gguf, EveryTruncationIsACleanError) {
  std::vector<uint8_t> bytes = small_writer().to_bytes();
  // Only the padding after the last tensor may be cut without harm.
  auto full = GgufFile::parse(bytes.data(), bytes.size(), "full.gguf");
  const GgufTensor& last = full->tensors().back();
  const size_t needed = static_cast<size_t>(last.data - bytes.data()) + last.n_bytes;
  ASSERT_LT(needed, bytes.size());
  for (size_t n = 0; n < needed; ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    try {
      GgufFile::parse(cut.data(), cut.size(), "cut.gguf");
      ADD_FAILURE() << "prefix of " << n << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(Gguf, CorruptHeadersAreRejected) {
  std::vector<uint8_t> good = small_writer().to_bytes();
  auto expect_error = [](std::vector<uint8_t> b, const std::string& needle) {
    try {
      GgufFile::parse(b.data(), b.size(), "bad.gguf");
      ADD_FAILURE() << "parsed; expected error with '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto b = good;
  b[0] = 'X';
  expect_error(b, "magic");
  b = good;
  b[4] = 9;
  expect_error(b, "version 9");
  b = good;
  b[8] = 0xff;  // tensor count huge
  b[14] = 0x7f;
  expect_error(b, "tensor count");
  // Tensor type id: find the type field of a.weight (after name, n_dims, dims).
  GgufWriter w;
  w.add_tensor("t", TensorType::F32, {1}, std::vector<uint8_t>(4, 0));
  b = w.to_bytes();
  size_t type_pos = 4 + 4 + 8 + 8 + (8 + 1) + 4 + 8;
  b[type_pos] = 99;
  expect_error(b, "unknown tensor type id 99");
}

TEST(Gguf, ReadsRealModelFiles) {
  ONELLM_REQUIRE_SHARED();
  auto f = GgufFile::open(test::shared_dir() + "/models/stories260K.gguf");
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  EXPECT_EQ(f->tensors().size(), 48u);
  EXPECT_EQ(f->tensor("token_embd.weight").dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens").items.size(), 512u);
  // Large arrays can be released once copied; reading them later is an error.
  f->release_large_arrays(500);
  EXPECT_THROW(f->get_array("tokenizer.ggml.tokens"), Error);
  EXPECT_THROW(f->find("tokenizer.ggml.scores"), Error);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->find("no.such.key"), nullptr);

  auto q = GgufFile::open(test::shared_dir() + "/models/tiny-qwen2-Q4_0.gguf");
  EXPECT_EQ(q->tensor("blk.0.attn_q.weight").type, TensorType::Q4_0);
  EXPECT_EQ(q->get_int("qwen2.context_length"), 4096);
}

TEST(Gguf, WriteIsAtomicAndReadable) {
  TempDir dir;
  std::string path = dir.file("m.gguf");
  small_writer().write(path);
  auto f = GgufFile::open(path);
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(read_all(path), small_writer().to_bytes());
  EXPECT_THROW(GgufFile::open(dir.file("missing.gguf")), Error);
  EXPECT_THROW(small_writer().write(dir.file("no/such/dir/m.gguf")), Error);
}

}  // namespace
}  // namespace onellm
