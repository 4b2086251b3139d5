// GGUF reader. Every read goes through Cursor, which checks bounds first, so a
// truncated or hostile file yields an Error naming the file and what was being
// read, never an out-of-bounds access.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"

namespace onellm {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;  // ggml's GGML_MAX_DIMS

class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& file) : data_(data), size_(size), file_(file) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  void need(size_t n, const std::string& what) const {
    if (n > remaining())
      throw Error(file_ + ": truncated at byte " + std::to_string(pos_) + " while reading " + what + " (need " +
                  std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left)");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view read_bytes(uint64_t n, const std::string& what) {
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  // `what` names the string in a truncation error (built once by callers
  // reading many strings).
  std::string_view read_string_view(const std::string& what) {
    need(sizeof(uint64_t), what);
    uint64_t len;
    std::memcpy(&len, data_ + pos_, sizeof len);
    pos_ += sizeof len;
    return read_bytes(len, what);
  }
  std::string read_string(const std::string& what) { return std::string(read_string_view(what)); }
  [[noreturn]] void fail(const std::string& msg) const { throw Error(file_ + ": " + msg); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

// The fewest bytes an element of type t takes in the file.
size_t min_elem_bytes(GgufType t) {
  if (t == GgufType::STRING) return 8;  // the length field
  if (t == GgufType::ARRAY) return 12;  // type + count
  return GgufValue::scalar_bytes(t);
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::UINT8: v.u = c.read<uint8_t>(key); break;
    case GgufType::INT8: v.i = c.read<int8_t>(key); break;
    case GgufType::UINT16: v.u = c.read<uint16_t>(key); break;
    case GgufType::INT16: v.i = c.read<int16_t>(key); break;
    case GgufType::UINT32: v.u = c.read<uint32_t>(key); break;
    case GgufType::INT32: v.i = c.read<int32_t>(key); break;
    case GgufType::UINT64: v.u = c.read<uint64_t>(key); break;
    case GgufType::INT64: v.i = c.read<int64_t>(key); break;
    case GgufType::FLOAT32: v.f = c.read<float>(key); break;
    case GgufType::FLOAT64: v.f = c.read<double>(key); break;
    case GgufType::BOOL: {
      uint8_t b = c.read<uint8_t>(key);
      if (b > 1) c.fail("key '" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.u = b;
      break;
    }
    case GgufType::STRING: v.str = c.read_string("key '" + key + "' string value"); break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) c.fail("key '" + key + "': arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      uint32_t et = c.read<uint32_t>("key '" + key + "' array element type");
      if (et > static_cast<uint32_t>(GgufType::FLOAT64))
        c.fail("key '" + key + "': unknown array element type " + std::to_string(et));
      v.elem_type = static_cast<GgufType>(et);
      uint64_t count = c.read<uint64_t>("key '" + key + "' array length");
      // Each element takes at least min_elem_bytes, so a count larger than
      // the rest of the file is a lie; checking first avoids a huge reserve.
      if (count > c.remaining() / min_elem_bytes(v.elem_type))
        c.fail("key '" + key + "': array of " + std::to_string(count) + " elements does not fit in the " +
               std::to_string(c.remaining()) + " bytes left");
      if (v.elem_type == GgufType::ARRAY) {
        v.items.reserve(static_cast<size_t>(count));
        for (uint64_t k = 0; k < count; ++k) v.items.push_back(read_value(c, v.elem_type, key, depth + 1));
      } else if (v.elem_type == GgufType::STRING) {
        const std::string what = "key '" + key + "' string element";
        v.string_ends.reserve(static_cast<size_t>(count));
        for (uint64_t k = 0; k < count; ++k) v.push_string(c.read_string_view(what));
      } else {
        const size_t n = static_cast<size_t>(count) * GgufValue::scalar_bytes(v.elem_type);
        v.elems = c.read_bytes(n, "key '" + key + "' array elements");
        if (v.elem_type == GgufType::BOOL)
          for (size_t k = 0; k < n; ++k)
            if (static_cast<uint8_t>(v.elems[k]) > 1)
              c.fail("key '" + key + "': bool element " + std::to_string(k) + " is neither 0 nor 1");
      }
      break;
    }
    default:
      c.fail("key '" + key + "': unknown value type " + std::to_string(static_cast<uint32_t>(type)));
  }
  return v;
}

}  // namespace

std::unique_ptr<GgufFile> GgufFile::open_one(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path;
  f->mapping_ = MappedFile(path);
  f->base_ = f->mapping_.data();
  f->size_ = f->mapping_.size();
  f->parse_all();
  return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = name;
  f->base_ = data;
  f->size_ = size;
  f->parse_all();
  return f;
}

void GgufFile::parse_all() {
  Cursor c(base_, size_, name_);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) c.fail("not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    c.fail("GGUF version " + std::to_string(version_) + " is not supported (expected 2 or 3)");
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > c.remaining() / 12) c.fail("metadata count " + std::to_string(n_kv) + " is larger than the file");
  if (n_tensors > c.remaining() / 24) c.fail("tensor count " + std::to_string(n_tensors) + " is larger than the file");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("metadata key #" + std::to_string(k));
    uint32_t t = c.read<uint32_t>("type of key '" + key + "'");
    if (t > static_cast<uint32_t>(GgufType::FLOAT64)) c.fail("key '" + key + "': unknown value type " + std::to_string(t));
    GgufValue v = read_value(c, static_cast<GgufType>(t), key, 0);
    if (kv_.count(key) != 0) c.fail("duplicate metadata key '" + key + "'");
    key_order_.push_back(key);
    kv_.emplace(key, std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer()) c.fail("key 'general.alignment' must be an integer, is " + std::string(gguf_type_name(a->type)));
    int64_t al = a->as_int();
    if (al <= 0 || (al & (al - 1)) != 0 || al > (1 << 20))
      c.fail("key 'general.alignment' = " + std::to_string(al) + " is not a power of two up to 1 MiB");
    alignment_ = static_cast<uint64_t>(al);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.read_string("tensor name #" + std::to_string(k));
    const std::string what = "tensor '" + t.name + "'";
    uint32_t n_dims = c.read<uint32_t>(what + " dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail(what + " has " + std::to_string(n_dims) + " dimensions (expected 1 to " + std::to_string(kMaxDims) + ")");
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>(what + " dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / n_el))
        c.fail(what + " has an invalid dimension " + std::to_string(ne));
      n_el *= static_cast<int64_t>(ne);
      t.dims.push_back(static_cast<int64_t>(ne));
    }
    uint32_t type_id = c.read<uint32_t>(what + " type");
    const TensorTypeInfo* info = tensor_type_info(type_id);
    if (info == nullptr) c.fail(what + " has unknown tensor type id " + std::to_string(type_id));
    t.type = static_cast<TensorType>(type_id);
    if (t.dims[0] % info->block_elems != 0)
      c.fail(what + ": first dimension " + std::to_string(t.dims[0]) + " is not a multiple of the " + info->name +
             " block size " + std::to_string(info->block_elems));
    t.n_bytes = static_cast<uint64_t>(n_el / info->block_elems) * info->block_bytes;
    t.offset = c.read<uint64_t>(what + " offset");
    if (t.offset % alignment_ != 0)
      c.fail(what + " offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    if (tensor_index_.count(t.name) != 0) c.fail("duplicate tensor name '" + t.name + "'");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_start > size_) c.fail("truncated before the tensor data section");
  for (GgufTensor& t : tensors_) {
    uint64_t end = data_start + t.offset + t.n_bytes;
    if (t.offset > size_ || t.n_bytes > size_ || end > size_)
      c.fail("tensor '" + t.name + "' (" + tensor_type_name(static_cast<uint32_t>(t.type)) + ", " +
             std::to_string(t.n_bytes) + " bytes at offset " + std::to_string(t.offset) +
             ") extends past the end of the file: the file is truncated (" + std::to_string(size_) + " bytes)");
    t.data = base_ + data_start + t.offset;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return nullptr;
  if (!released_keys_.empty() && std::find(released_keys_.begin(), released_keys_.end(), key) != released_keys_.end())
    throw Error(name_ + ": metadata '" + key + "' was released from memory after loading");
  return &it->second;
}

void GgufFile::release_large_arrays(size_t min_items) {
  for (auto& [key, value] : kv_)
    if (value.type == GgufType::ARRAY && value.size() >= min_items) {
      GgufValue emptied;
      emptied.type = GgufType::ARRAY;
      emptied.elem_type = value.elem_type;
      value = std::move(emptied);
      released_keys_.push_back(key);
    }
}

namespace {
[[noreturn]] void wrong_type(const std::string& file, const std::string& key, const char* expected, GgufType got) {
  throw Error(file + ": key '" + key + "' should be " + expected + " but is " + gguf_type_name(got));
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw Error(name_ + ": missing required key '" + key + "'");
  if (v->type != GgufType::STRING) wrong_type(name_, key, "a string", v->type);
  return v->str;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return find(key) == nullptr ? fallback : get_string(key);
}

std::string GgufFile::file_type_name() const {
  // general.file_type values (llama.cpp's llama_ftype); gaps were removed types.
  static const char* const kNames[] = {
      "all F32", "F16", "Q4_0", "Q4_1", nullptr, nullptr, nullptr, "Q8_0", "Q5_0", "Q5_1",
      "Q2_K - Medium", "Q3_K - Small", "Q3_K - Medium", "Q3_K - Large", "Q4_K - Small", "Q4_K - Medium",
      "Q5_K - Small", "Q5_K - Medium", "Q6_K", "IQ2_XXS - 2.0625 bpw", "IQ2_XS - 2.3125 bpw", "Q2_K - Small",
      "IQ3_XS - 3.3 bpw", "IQ3_XXS - 3.0625 bpw", "IQ1_S - 1.5625 bpw", "IQ4_NL - 4.5 bpw", "IQ3_S - 3.4375 bpw",
      "IQ3_S mix - 3.66 bpw", "IQ2_S - 2.5 bpw", "IQ2_M - 2.7 bpw", "IQ4_XS - 4.25 bpw", "IQ1_M - 1.75 bpw", "BF16"};
  const GgufValue* v = find("general.file_type");
  if (v == nullptr || !v->is_integer()) return "";
  const int64_t t = v->as_int();
  if (t < 0 || t >= static_cast<int64_t>(std::size(kNames)) || kNames[t] == nullptr) return "";
  return kNames[t];
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw Error(name_ + ": missing required key '" + key + "'");
  if (!v->is_integer()) wrong_type(name_, key, "an integer", v->type);
  return v->as_int();
}

int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return find(key) == nullptr ? fallback : get_int(key);
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw Error(name_ + ": missing required key '" + key + "'");
  if (!v->is_float() && !v->is_integer()) wrong_type(name_, key, "a number", v->type);
  return v->as_double();
}

double GgufFile::get_float_or(const std::string& key, double fallback) const {
  return find(key) == nullptr ? fallback : get_float(key);
}

bool GgufFile::get_bool_or(const std::string& key, bool fallback) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return fallback;
  if (v->type != GgufType::BOOL && !v->is_integer()) wrong_type(name_, key, "a bool", v->type);
  return v->as_int() != 0;
}

const GgufValue& GgufFile::get_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw Error(name_ + ": missing required key '" + key + "'");
  if (v->type != GgufType::ARRAY) wrong_type(name_, key, "an array", v->type);
  return *v;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  const GgufTensor* t = find_tensor(name);
  if (t == nullptr) throw Error(name_ + ": missing required tensor '" + name + "'");
  return *t;
}

}  // namespace onellm
