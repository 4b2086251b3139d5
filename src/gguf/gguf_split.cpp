// Split models, as llama.cpp's gguf-split writes them: one model in N files
// named PREFIX-00001-of-0000N.gguf, each a complete GGUF. The first holds the
// model's metadata; every part holds some of the tensors and split.no
// (0-based), split.count and, in the first, split.tensors.count.
#include <cstdio>

#include "base/error.h"
#include "gguf/gguf.h"

namespace onellm {
namespace {

std::string part_tail(int64_t no, int64_t count) {
  char tail[64];
  std::snprintf(tail, sizeof tail, "-%05lld-of-%05lld.gguf", static_cast<long long>(no + 1),
                static_cast<long long>(count));
  return tail;
}

std::string part_name(int64_t no, int64_t count) {
  return "part " + std::to_string(no + 1) + " of " + std::to_string(count);
}

}  // namespace

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f = open_one(path);
  const int64_t count = f->get_int_or("split.count", 1);
  if (count <= 1) return f;
  const int64_t no = f->get_int_or("split.no", 0);
  if (count > 99999 || no < 0 || no >= count)
    throw Error(path + ": split.no = " + std::to_string(no) + " and split.count = " + std::to_string(count) +
                " do not name a part of a split model");
  const std::string tail = part_tail(no, count);
  if (path.size() <= tail.size() || path.compare(path.size() - tail.size(), tail.size(), tail) != 0)
    throw Error(path + ": " + part_name(no, count) + " of a split model, but not named PREFIX" + tail +
                ", so its other parts cannot be found");
  const std::string prefix = path.substr(0, path.size() - tail.size());
  if (no != 0) f = open_one(prefix + part_tail(0, count));
  f->add_split_parts(prefix, count);
  return f;
}

void GgufFile::add_split_parts(const std::string& prefix, int64_t count) {
  auto check_part = [&](const GgufFile& part, int64_t no) {
    if (part.get_int_or("split.no", -1) != no || part.get_int_or("split.count", -1) != count)
      throw Error(part.path() + ": expected " + part_name(no, count) + " of a split model, its split.no / split.count say "
                  "otherwise");
  };
  check_part(*this, 0);
  for (int64_t no = 1; no < count; ++no) {
    const std::string path = prefix + part_tail(no, count);
    std::unique_ptr<GgufFile> part;
    try {
      part = open_one(path);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (" + part_name(no, count) + " of the split model " + name_ + ")");
    }
    check_part(*part, no);
    for (const GgufTensor& t : part->tensors_) {
      if (tensor_index_.count(t.name) != 0)
        throw Error(path + ": tensor '" + t.name + "' is also in an earlier part of the split model");
      tensor_index_[t.name] = tensors_.size();
      tensors_.push_back(t);  // its data points into the part's mapping, kept in parts_
    }
    parts_.push_back(std::move(part));
  }
  const int64_t expected = get_int_or("split.tensors.count", static_cast<int64_t>(tensors_.size()));
  if (expected != static_cast<int64_t>(tensors_.size()))
    throw Error(name_ + ": split.tensors.count = " + std::to_string(expected) + " but the " + std::to_string(count) +
                " parts hold " + std::to_string(tensors_.size()) + " tensors");
}

size_t GgufFile::file_size() const {
  size_t n = size_;
  for (const auto& part : parts_) n += part->size_;
  return n;
}

void GgufFile::prefetch(const std::function<void(double)>& progress) const {
  const double total = static_cast<double>(file_size());
  double before = 0;
  auto one = [&](const GgufFile& f) {
    const double size = static_cast<double>(f.size_);
    f.mapping_.prefetch([&](double done) {
      if (progress) progress(total > 0 ? (before + done * size) / total : 1.0);
    });
    before += size;
  };
  one(*this);
  for (const auto& part : parts_) one(*part);
}

// Each mapping ignores ranges outside itself, so a range goes to all of them.
void GgufFile::prefetch_range(const void* p, size_t n) const {
  mapping_.prefetch_range(p, n);
  for (const auto& part : parts_) part->mapping_.prefetch_range(p, n);
}

void GgufFile::release(const void* p, size_t n) const {
  mapping_.release(p, n);
  for (const auto& part : parts_) part->mapping_.release(p, n);
}

}  // namespace onellm
