// onellm quantize (model/quantize.h) and the GGUF writer's row-produced
// tensors it streams through. The independent check of the written values
// (a NumPy de-quantizer) is tests/py/quantize_cli_test.py.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/error.h"
#include "model/model.h"
#include "model/quantize.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using test::read_all;
using test::TempDir;

// A writer with one 7 x 64 Q8_0 tensor whose rows hold their index, given
// either as bytes or by a producer that serves blocks of rows.
GgufWriter rows_writer(bool produced, size_t block_bytes, std::vector<std::pair<int64_t, int64_t>>* calls) {
  const int64_t rows = 7, cols = 64;
  const size_t row_bytes = tensor_row_bytes(TensorType::Q8_0, cols);
  std::vector<uint8_t> bytes(row_bytes * rows);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[c] = static_cast<float>(r + 1) * (c % 5 - 2);
    quantize_row(TensorType::Q8_0, row.data(), bytes.data() + r * row_bytes, cols);
  }
  GgufWriter w;
  w.produced_block_bytes = block_bytes;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.add_tensor("first.bias", TensorType::F32, {3}, std::vector<uint8_t>(12, 1));
  if (!produced) {
    w.add_tensor("m.weight", TensorType::Q8_0, {cols, rows}, bytes);
  } else {
    w.add_tensor_rows("m.weight", TensorType::Q8_0, {cols, rows}, [=](int64_t first, int64_t n, uint8_t* out) {
      if (calls != nullptr) calls->push_back({first, n});
      std::memcpy(out, bytes.data() + first * row_bytes, n * row_bytes);
    });
  }
  w.add_tensor("last.bias", TensorType::F32, {5}, std::vector<uint8_t>(20, 2));
  return w;
}

TEST(GgufWriterRows, ProducedTensorsGiveTheBytesOfStoredOnes) {
  const std::vector<uint8_t> expected = rows_writer(false, 0, nullptr).to_bytes();
  const size_t row_bytes = tensor_row_bytes(TensorType::Q8_0, 64);
  for (size_t block : {size_t{1}, row_bytes, 3 * row_bytes, 3 * row_bytes + 1, size_t{1} << 20}) {
    std::vector<std::pair<int64_t, int64_t>> calls;
    EXPECT_EQ(rows_writer(true, block, &calls).to_bytes(), expected) << "block " << block;
    // Blocks of whole rows, at least one, in order, covering the 7 rows once.
    const int64_t per_block = std::max<int64_t>(1, static_cast<int64_t>(block / row_bytes));
    int64_t next = 0;
    for (const auto& [first, n] : calls) {
      EXPECT_EQ(first, next);
      EXPECT_EQ(n, std::min<int64_t>(per_block, 7 - first));
      next = first + n;
    }
    EXPECT_EQ(next, 7);
  }
  TempDir dir;
  rows_writer(true, 2 * row_bytes, nullptr).write(dir.file("m.gguf"));
  EXPECT_EQ(read_all(dir.file("m.gguf")), expected);
  auto f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(f->tensor("m.weight").n_bytes, 7 * row_bytes);
}

TEST(GgufWriterRows, AFailingProducerLeavesNoFile) {
  TempDir dir;
  GgufWriter w;
  w.produced_block_bytes = 1;
  w.add_tensor_rows("m.weight", TensorType::F32, {4, 3}, [](int64_t first, int64_t, uint8_t*) {
    if (first == 2) throw Error("row 2 cannot be made");
  });
  try {
    w.write(dir.file("m.gguf"));
    FAIL() << "write did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 2 cannot be made"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a partial or temporary file was left";
  // Shapes are checked when the tensor is added, not when it is written.
  EXPECT_THROW(w.add_tensor_rows("q.weight", TensorType::Q4_0, {48, 2}, [](int64_t, int64_t, uint8_t*) {}), Error);
  EXPECT_THROW(w.add_tensor_rows("z.weight", TensorType::F32, {0, 2}, [](int64_t, int64_t, uint8_t*) {}), Error);
  EXPECT_THROW(w.add_tensor_rows("m.weight", TensorType::F32, {4, 3}, [](int64_t, int64_t, uint8_t*) {}), Error);
}

// An F32 llama with 8 layers: 256 columns take K-quants, ff 512.
std::string write_f32_model(const TempDir& dir, const std::string& name, int64_t n_embd, bool tied) {
  TinyModelSpec s;
  s.arch = "llama";
  s.type = TensorType::F32;
  s.n_embd = n_embd;
  s.n_layer = 8;
  s.n_head = 4;
  s.n_head_kv = 1;  // 4 query heads per KV head
  s.n_ff = 512;
  s.tied_output = tied;
  s.seed = 5;
  const std::string path = dir.file(name);
  write_tiny_model(s, path);
  return path;
}

QuantizeOptions recipe(const char* name) {
  QuantizeOptions o;
  o.recipe = name;
  return o;
}

std::map<std::string, TensorType> plan_types(const GgufFile& f, const QuantizeOptions& o) {
  std::map<std::string, TensorType> out;
  for (const TensorPlan& p : plan_quantization(f, o)) out[p.name] = p.to;
  return out;
}

TEST(QuantizeModel, Q4KMGivesTheSensitiveMatricesMoreBits) {
  TempDir dir;
  auto f = GgufFile::open(write_f32_model(dir, "m.gguf", 256, false));
  QuantizeOptions o;
  o.recipe = "q4_k_m";
  const auto types = plan_types(*f, o);
  // llama.cpp's rule for 8 layers: the first and last eighth (layers 0 and
  // 7) and every third layer after the first eighth (3 and 6).
  const std::set<int> more = {0, 3, 6, 7};
  for (int l = 0; l < 8; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const TensorType sensitive = more.count(l) ? TensorType::Q6_K : TensorType::Q4_K;
    EXPECT_EQ(types.at(b + "attn_v.weight"), sensitive) << l;
    EXPECT_EQ(types.at(b + "ffn_down.weight"), sensitive) << l;
    for (const char* m : {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight"})
      EXPECT_EQ(types.at(b + m), TensorType::Q4_K) << b << m;
    EXPECT_EQ(types.at(b + "attn_norm.weight"), TensorType::F32);
  }
  EXPECT_EQ(types.at("output.weight"), TensorType::Q6_K);
  EXPECT_EQ(types.at("token_embd.weight"), TensorType::Q4_K);
  EXPECT_EQ(types.at("output_norm.weight"), TensorType::F32);

  // --pure: no mix; the overrides still apply.
  o.pure = true;
  o.output_type = TensorType::Q8_0;
  o.token_embedding_type = TensorType::F16;
  const auto pure = plan_types(*f, o);
  EXPECT_EQ(pure.at("blk.0.attn_v.weight"), TensorType::Q4_K);
  EXPECT_EQ(pure.at("output.weight"), TensorType::Q8_0);
  EXPECT_EQ(pure.at("token_embd.weight"), TensorType::F16);

  // Other recipes' rules, spot checks: Q3_K_M's first two attn_v Q5_K, Q2_K's
  // attn_v Q4_K with 4 query heads per KV head, a float recipe takes no mix.
  EXPECT_EQ(plan_types(*f, recipe("Q3_K_M")).at("blk.1.attn_v.weight"), TensorType::Q5_K);
  EXPECT_EQ(plan_types(*f, recipe("Q3_K_M")).at("blk.2.attn_v.weight"), TensorType::Q4_K);
  EXPECT_EQ(plan_types(*f, recipe("Q2_K")).at("blk.5.attn_v.weight"), TensorType::Q4_K);
  EXPECT_EQ(plan_types(*f, recipe("Q2_K")).at("blk.5.ffn_down.weight"), TensorType::Q3_K);
  EXPECT_EQ(plan_types(*f, recipe("F16")).at("output.weight"), TensorType::F16);
  EXPECT_EQ(plan_types(*f, recipe("F16")).at("output_norm.weight"), TensorType::F32);
  EXPECT_EQ(plan_types(*f, recipe("Q8_0")).at("output.weight"), TensorType::Q8_0);
}

TEST(QuantizeModel, RowsThatAreNotWholeBlocksFallBackToALegacyType) {
  TempDir dir;
  // 96 columns: no 256-block fits. A tied output takes the output's rule.
  auto f = GgufFile::open(write_f32_model(dir, "m.gguf", 96, true));
  const auto types = plan_types(*f, recipe("Q4_K_M"));
  EXPECT_EQ(types.at("token_embd.weight"), TensorType::Q8_0);       // Q6_K -> Q8_0
  EXPECT_EQ(types.at("blk.0.attn_v.weight"), TensorType::Q8_0);     // Q6_K -> Q8_0
  EXPECT_EQ(types.at("blk.1.attn_q.weight"), TensorType::Q5_0);     // Q4_K -> Q5_0
  EXPECT_EQ(types.at("blk.1.ffn_down.weight"), TensorType::Q4_K);   // 512 columns
  EXPECT_EQ(plan_types(*f, recipe("Q5_K_S")).at("blk.1.attn_q.weight"), TensorType::Q5_1);
  EXPECT_EQ(plan_types(*f, recipe("Q3_K_S")).at("blk.1.attn_q.weight"), TensorType::IQ4_NL);
  EXPECT_EQ(plan_types(*f, recipe("IQ4_XS")).at("blk.1.attn_q.weight"), TensorType::IQ4_NL);
}

TEST(QuantizeModel, WritesEachRowAsTheRowQuantizerDoesOnAnyThreadCount) {
  TempDir dir;
  const std::string src = write_f32_model(dir, "m.gguf", 256, false);
  auto in = GgufFile::open(src);
  QuantizeOptions o;
  o.recipe = "Q4_K_M";
  o.block_bytes = 1000;  // many blocks per tensor: rows are found at their offsets
  ThreadPool one(1), three(3);
  const QuantizeReport r = quantize_gguf(*in, dir.file("a.gguf"), o, &one);
  quantize_gguf(*in, dir.file("b.gguf"), o, &three);
  EXPECT_EQ(read_all(dir.file("a.gguf")), read_all(dir.file("b.gguf")));

  auto out = GgufFile::open(dir.file("a.gguf"));
  ASSERT_EQ(out->tensors().size(), in->tensors().size());
  uint64_t out_bytes = 0;
  for (size_t i = 0; i < in->tensors().size(); ++i) {
    const GgufTensor& a = in->tensors()[i];
    const GgufTensor& b = out->tensors()[i];
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.dims, a.dims);
    EXPECT_EQ(b.type, r.plan[i].to) << a.name;
    out_bytes += b.n_bytes;
    const int64_t cols = a.dims[0], rows = a.n_elements() / cols;
    std::vector<uint8_t> expected(tensor_row_bytes(b.type, cols) * rows);
    for (int64_t row = 0; row < rows; ++row)
      quantize_row(b.type, reinterpret_cast<const float*>(a.data) + row * cols,
                   expected.data() + row * tensor_row_bytes(b.type, cols), cols);
    ASSERT_EQ(b.n_bytes, expected.size()) << a.name;
    EXPECT_EQ(std::memcmp(b.data, expected.data(), expected.size()), 0) << a.name;
  }
  EXPECT_EQ(r.out_bytes, out_bytes);
  // Metadata: every key of the input, the recipe's file type.
  for (const std::string& key : in->keys()) {
    if (key == "general.file_type") continue;
    ASSERT_NE(out->find(key), nullptr) << key;
  }
  EXPECT_EQ(out->get_string("tokenizer.ggml.model"), in->get_string("tokenizer.ggml.model"));
  EXPECT_EQ(out->get_array("tokenizer.ggml.tokens").size(), in->get_array("tokenizer.ggml.tokens").size());
  EXPECT_EQ(out->file_type_name(), "Q4_K - Medium");
  EXPECT_EQ(out->get_int("general.quantization_version"), 2);
  // The result runs.
  auto model = Model::load(dir.file("a.gguf"));
  EXPECT_EQ(model->config().n_layer, 8);
}

TEST(QuantizeModel, RefusesWhatWouldLoseDataOrCannotBeDone) {
  TempDir dir;
  const std::string src = write_f32_model(dir, "m.gguf", 256, false);
  auto in = GgufFile::open(src);
  ThreadPool pool(2);
  const auto message = [&](const QuantizeOptions& o, const std::string& out) {
    try {
      quantize_gguf(*in, out, o, &pool);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(recipe("Q4_K_M"), src).find("overwrite"), std::string::npos);
  EXPECT_NE(message(recipe("Q7_K"), dir.file("x.gguf")).find("Q4_K_M"), std::string::npos);  // lists names
  QuantizeOptions unwritable = recipe("Q4_0");
  unwritable.output_type = TensorType::IQ2_XXS;
  EXPECT_NE(message(unwritable, dir.file("x.gguf")).find("IQ2_XXS"), std::string::npos);
  EXPECT_NE(message(recipe("Q4_K_M"), dir.file("no/such/dir/x.gguf")).find("cannot create"), std::string::npos);

  // An already quantized input converts only when asked to; the same type is copied.
  quantize_gguf(*in, dir.file("q8.gguf"), recipe("Q8_0"), &pool);
  auto q8 = GgufFile::open(dir.file("q8.gguf"));
  try {
    quantize_gguf(*q8, dir.file("q4.gguf"), recipe("Q4_K_M"), &pool);
    FAIL() << "requantized without --allow-requantize";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--allow-requantize"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Q8_0"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("q4.gguf")));
  QuantizeOptions again = recipe("Q4_K_M");
  again.allow_requantize = true;
  quantize_gguf(*q8, dir.file("q4.gguf"), again, &pool);
  quantize_gguf(*q8, dir.file("q8b.gguf"), recipe("Q8_0"), &pool);
  auto q8b = GgufFile::open(dir.file("q8b.gguf"));
  for (size_t i = 0; i < q8->tensors().size(); ++i)
    EXPECT_EQ(std::memcmp(q8->tensors()[i].data, q8b->tensors()[i].data, q8->tensors()[i].n_bytes), 0);
}

}  // namespace
}  // namespace onellm
