#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <utility>

#include "base/error.h"
#include "gguf/gguf.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using test::read_all;
using test::TempDir;

GgufWriter small_writer() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("answer", GgufValue::of_u32(42));
  w.set("ratio", GgufValue::of_f32(0.5f));
  w.set("flag", GgufValue::of_bool(true));
  w.set("names", GgufValue::of_strings({"a", "bc", ""}));
  w.set("nested", GgufValue::of_arrays({GgufValue::of_i32s({1, 2}), GgufValue::of_i32s({-3})}));
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
  EXPECT_EQ(f->get_array("names").string_at(1), "bc");
  const GgufValue& nested = f->get_array("nested");
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested.array_at(1).int_at(0), -3);
  const GgufTensor& t = f->tensor("a.weight");
  EXPECT_EQ(t.dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(t.n_bytes, 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, reinterpret_cast<uintptr_t>(bytes.data()) % 32);
  float v5;
  std::memcpy(&v5, t.data + 20, 4);
  EXPECT_FLOAT_EQ(v5, 7.5f);
  EXPECT_EQ(f->keys().front(), "general.architecture");
}

// A packed array of `type` holding the little-endian bytes of xs.
template <typename T>
GgufValue packed(GgufType type, std::vector<T> xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = type;
  v.elems.assign(reinterpret_cast<const char*>(xs.data()), xs.size() * sizeof(T));
  return v;
}

TEST(Gguf, ArraysOfEveryElementTypeRoundTrip) {
  GgufWriter w;
  w.set("u8", packed<uint8_t>(GgufType::UINT8, {0, 250}));
  w.set("i8", packed<int8_t>(GgufType::INT8, {-3, 127}));
  w.set("u16", packed<uint16_t>(GgufType::UINT16, {65535, 1}));
  w.set("i16", packed<int16_t>(GgufType::INT16, {-32768, 5}));
  w.set("u32", packed<uint32_t>(GgufType::UINT32, {4000000000u, 7}));
  w.set("i32", GgufValue::of_i32s({-2000000000, 9}));
  w.set("u64", packed<uint64_t>(GgufType::UINT64, {1ull << 40, 2}));
  w.set("i64", packed<int64_t>(GgufType::INT64, {-(1ll << 40), 3}));
  w.set("f32", GgufValue::of_f32s({-1.5f, 0.25f}));
  w.set("f64", packed<double>(GgufType::FLOAT64, {1e300, -2.0}));
  w.set("bool", packed<uint8_t>(GgufType::BOOL, {1, 0}));
  w.set("empty", GgufValue::of_strings({}));
  w.set("texts", GgufValue::of_strings({"", "a b", std::string("z\0z", 3)}));
  std::vector<uint8_t> bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(f->get_array("u8").int_at(1), 250);
  EXPECT_EQ(f->get_array("i8").int_at(0), -3);
  EXPECT_EQ(f->get_array("u16").int_at(0), 65535);
  EXPECT_EQ(f->get_array("i16").int_at(0), -32768);
  EXPECT_EQ(f->get_array("u32").int_at(0), 4000000000ll);
  EXPECT_EQ(f->get_array("i32").int_at(0), -2000000000);
  EXPECT_EQ(f->get_array("u64").int_at(0), 1ll << 40);
  EXPECT_EQ(f->get_array("i64").int_at(0), -(1ll << 40));
  EXPECT_EQ(f->get_array("i64").int_at(1), 3);
  EXPECT_EQ(f->get_array("f32").number_at(0), -1.5);
  EXPECT_EQ(f->get_array("f32").number_at(1), 0.25);
  EXPECT_EQ(f->get_array("f64").number_at(0), 1e300);
  EXPECT_EQ(f->get_array("i16").number_at(1), 5.0);
  EXPECT_EQ(f->get_array("bool").int_at(0), 1);
  EXPECT_EQ(f->get_array("empty").size(), 0u);
  const GgufValue& texts = f->get_array("texts");
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(texts.string_at(0), "");
  EXPECT_EQ(texts.string_at(1), "a b");
  EXPECT_EQ(texts.string_at(2), std::string_view("z\0z", 3));
  for (const char* key : {"u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "bool"})
    EXPECT_EQ(f->get_array(key).size(), 2u) << key;
  // Each accessor refuses the other element types and indexes past the end.
  EXPECT_THROW(f->get_array("f32").int_at(0), Error);
  EXPECT_THROW(f->get_array("i32").string_at(0), Error);
  EXPECT_THROW(texts.int_at(0), Error);
  EXPECT_THROW(texts.string_at(3), Error);
  EXPECT_THROW(f->get_array("u8").int_at(2), Error);
  EXPECT_THROW(f->get_array("u8").array_at(0), Error);
  // A file's array copied into a writer writes the same bytes.
  GgufWriter copy;
  for (const std::string& key : f->keys()) copy.set(key, *f->find(key));
  EXPECT_EQ(copy.to_bytes(), bytes);
}

TEST(Gguf, BadArrayElementsNameTheKey) {
  GgufWriter w;
  w.set("flags", packed<uint8_t>(GgufType::BOOL, {1, 2}));
  std::vector<uint8_t> bytes = w.to_bytes();
  try {
    GgufFile::parse(bytes.data(), bytes.size(), "bad.gguf");
    ADD_FAILURE() << "a bool element of 2 parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'flags': bool element 1"), std::string::npos) << e.what();
  }
  GgufWriter partial;
  partial.set("half", packed<uint8_t>(GgufType::UINT16, {1, 2, 3}));
  EXPECT_THROW(partial.to_bytes(), Error);
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
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens").string_at(1), "<s>");
  EXPECT_EQ(f->get_array("tokenizer.ggml.token_type").int_at(1), 3);  // control
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
