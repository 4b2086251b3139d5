// Split models (llama.cpp's gguf-split layout): any part opens the whole
// model, its tensors are the unsplit file's bytes and it computes the same
// logits; a missing, misnamed or inconsistent part is an error naming it.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "support/error_of.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using test::error_of;
using test::TempDir;

std::string part_path(const std::string& prefix, int no, int count) {
  char tail[64];
  std::snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", no + 1, count);
  return prefix + tail;
}

// Writes `src` as `count` parts at PREFIX-0000k-of-0000N.gguf: the metadata
// in the first, the tensors dealt out in order. `edit(no, writer)` may spoil
// a part's split keys.
void split(const GgufFile& src, const std::string& prefix, int count,
           const std::function<void(int, GgufWriter&)>& edit = nullptr) {
  const std::vector<GgufTensor>& tensors = src.tensors();
  for (int no = 0; no < count; ++no) {
    GgufWriter w;
    if (no == 0)
      for (const std::string& key : src.keys()) w.set(key, *src.find(key));
    w.set("split.no", GgufValue::of_u32(static_cast<uint32_t>(no)));
    w.set("split.count", GgufValue::of_u32(static_cast<uint32_t>(count)));
    if (no == 0) w.set("split.tensors.count", GgufValue::of_u32(static_cast<uint32_t>(tensors.size())));
    const size_t begin = tensors.size() * static_cast<size_t>(no) / static_cast<size_t>(count);
    const size_t end = tensors.size() * static_cast<size_t>(no + 1) / static_cast<size_t>(count);
    for (size_t i = begin; i < end; ++i) {
      const GgufTensor& t = tensors[i];
      w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
    }
    if (edit) edit(no, w);
    w.write(part_path(prefix, no, count));
  }
}

std::vector<float> logits_of(const std::string& path) {
  auto model = Model::load(path);
  KvCache cache(model->config(), 16);
  const std::vector<int32_t> tokens = {1, 5, 9, 3, 7};
  std::vector<float> logits(tokens.size() * static_cast<size_t>(model->config().n_vocab));
  model->forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits.data(), true, nullptr);
  return logits;
}

TEST(GgufSplit, AnyPartOpensTheWholeModelWithTheSameBytesAndLogits) {
  TempDir dir;
  TinyModelSpec spec;
  spec.arch = "qwen2";
  spec.type = TensorType::Q4_K;
  const std::string whole = dir.file("whole.gguf");
  write_tiny_model(spec, whole);
  auto src = GgufFile::open(whole);
  const std::string prefix = dir.file("model");
  split(*src, prefix, 3);

  for (int no : {0, 2}) {
    SCOPED_TRACE("opened part " + std::to_string(no + 1));
    auto f = GgufFile::open(part_path(prefix, no, 3));
    EXPECT_EQ(f->path(), part_path(prefix, 0, 3));
    EXPECT_EQ(f->get_string("general.architecture"), "qwen2");
    ASSERT_EQ(f->tensors().size(), src->tensors().size());
    for (const GgufTensor& t : src->tensors()) {
      const GgufTensor* got = f->find_tensor(t.name);
      ASSERT_NE(got, nullptr) << t.name;
      ASSERT_EQ(got->n_bytes, t.n_bytes);
      EXPECT_EQ(std::memcmp(got->data, t.data, t.n_bytes), 0) << t.name;
    }
    size_t on_disk = 0;
    for (int k = 0; k < 3; ++k) on_disk += std::filesystem::file_size(part_path(prefix, k, 3));
    EXPECT_EQ(f->file_size(), on_disk);
  }
  EXPECT_EQ(logits_of(part_path(prefix, 1, 3)), logits_of(whole));
}

TEST(GgufSplit, MissingMisnamedOrInconsistentPartsAreErrorsNamingThem) {
  TempDir dir;
  TinyModelSpec spec;
  spec.n_layer = 1;
  const std::string whole = dir.file("whole.gguf");
  write_tiny_model(spec, whole);
  auto src = GgufFile::open(whole);

  const std::string a = dir.file("a");
  split(*src, a, 3);
  std::filesystem::remove(part_path(a, 1, 3));
  std::string e = error_of([&] { GgufFile::open(part_path(a, 0, 3)); });
  EXPECT_NE(e.find(part_path(a, 1, 3)), std::string::npos) << e;
  EXPECT_NE(e.find("part 2 of 3"), std::string::npos) << e;

  const std::string b = dir.file("b");
  split(*src, b, 2);
  std::filesystem::rename(part_path(b, 0, 2), dir.file("renamed.gguf"));
  e = error_of([&] { GgufFile::open(dir.file("renamed.gguf")); });
  EXPECT_NE(e.find("not named PREFIX-00001-of-00002.gguf"), std::string::npos) << e;

  const std::string c = dir.file("c");
  split(*src, c, 2, [](int no, GgufWriter& w) {
    if (no == 1) w.set("split.no", GgufValue::of_u32(0));
  });
  e = error_of([&] { GgufFile::open(part_path(c, 0, 2)); });
  EXPECT_NE(e.find(part_path(c, 1, 2) + ": expected part 2 of 2"), std::string::npos) << e;

  const std::string d = dir.file("d");
  split(*src, d, 2, [](int no, GgufWriter& w) {
    if (no == 0) w.set("split.tensors.count", GgufValue::of_u32(3));
  });
  e = error_of([&] { GgufFile::open(part_path(d, 0, 2)); });
  EXPECT_NE(e.find("split.tensors.count = 3"), std::string::npos) << e;

  // A tensor in two parts: the first part's copy of the metadata with all tensors, then again.
  const std::string g = dir.file("g");
  split(*src, g, 2, [&](int no, GgufWriter& w) {
    if (no == 1) {
      const GgufTensor& t = src->tensors().front();
      w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
    }
  });
  e = error_of([&] { GgufFile::open(part_path(g, 0, 2)); });
  EXPECT_NE(e.find("is also in an earlier part"), std::string::npos) << e;
}

}  // namespace
}  // namespace onellm
