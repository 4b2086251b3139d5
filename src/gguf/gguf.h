// GGUF v2/v3 files: a bounds-checked reader over a memory mapping and a
// writer. Every malformed input becomes an onellm::Error naming the file and
// the key or tensor at fault.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "kernels/kernels.h"

namespace onellm {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType type);

// One metadata value. Scalars keep their exact type. An array keeps its
// element type; arrays of scalars or strings hold their elements packed (a
// 150k vocabulary costs its text plus 8 bytes a token, not a GgufValue a
// token), arrays of arrays hold GgufValues in `items`. Read elements through
// size() and the *_at accessors, which check the element type.
struct GgufValue {
  GgufType type = GgufType::UINT32;
  uint64_t u = 0;       // unsigned integers and bool
  int64_t i = 0;        // signed integers
  double f = 0;         // floats
  std::string str;      // STRING
  GgufType elem_type = GgufType::UINT32;  // ARRAY
  std::string elems;                      // ARRAY of scalars: their bytes; of strings: their texts back to back
  std::vector<uint64_t> string_ends;      // ARRAY of strings: where each text ends in `elems`
  std::vector<GgufValue> items;           // ARRAY of arrays

  bool is_integer() const { return is_integer_type(type); }
  bool is_float() const { return type == GgufType::FLOAT32 || type == GgufType::FLOAT64; }
  bool is_numeric() const { return is_integer() || is_float() || type == GgufType::BOOL; }
  int64_t as_int() const;    // any integer or bool
  double as_double() const;  // any numeric

  // ARRAY elements; the accessors throw Error for another element type or an
  // index out of range.
  size_t size() const;
  std::string_view string_at(size_t k) const;
  int64_t int_at(size_t k) const;     // integer or bool elements
  double number_at(size_t k) const;   // any numeric elements
  const GgufValue& array_at(size_t k) const;
  void push_string(std::string_view s);  // appends to an ARRAY of strings

  static bool is_integer_type(GgufType t);
  static size_t scalar_bytes(GgufType t);  // 0 for STRING and ARRAY
  static GgufValue of_string(std::string s);
  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_u64(uint64_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_strings(const std::vector<std::string>& v);
  static GgufValue of_f32s(const std::vector<float>& v);
  static GgufValue of_i32s(const std::vector<int32_t>& v);
  static GgufValue of_arrays(std::vector<GgufValue> v);
};

struct GgufTensor {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> dims;  // ggml ne: dims[0] is the contiguous one
  uint64_t offset = 0;        // relative to the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // inside the mapping
  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and parses `path`. Throws Error on any inconsistency. A file that is
  // one part of a split model (split.count > 1, named as llama.cpp's
  // gguf-split names them: PREFIX-00001-of-00003.gguf) brings in all parts,
  // whichever was named: metadata from the first, tensors from each.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses a buffer that outlives the object (fuzzing, tests).
  static std::unique_ptr<GgufFile> parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  size_t file_size() const;  // all parts of a split model

  const std::vector<std::string>& keys() const { return key_order_; }
  // Null if absent. Throws Error for a key whose array was released.
  const GgufValue* find(const std::string& key) const;
  // Frees metadata arrays of at least min_items items (a 150k vocabulary and
  // its merges take ~5 MB) once their users have copied what they need, e.g.
  // the tokenizer. Later reads of those keys throw Error saying so.
  void release_large_arrays(size_t min_items);
  // Typed getters: the *_or forms return the fallback when the key is absent;
  // the others throw Error naming the key. A present key of the wrong type
  // always throws.
  std::string get_string(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;
  const GgufValue& get_array(const std::string& key) const;  // throws if absent
  // The quantization recipe named by general.file_type as llama-bench prints
  // it ("Q4_K - Medium", "IQ4_XS - 4.25 bpw"); "" if absent or unknown.
  std::string file_type_name() const;

  // Reads the mapped file into memory ahead of use (see MappedFile::prefetch).
  void prefetch(const std::function<void(double)>& progress) const;
  void prefetch_range(const void* p, size_t n) const;
  // Drops the pages of [p, p + n) from memory (see MappedFile::release).
  void release(const void* p, size_t n) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;
  const GgufTensor& tensor(const std::string& name) const;  // throws if absent

 private:
  GgufFile() = default;
  void parse_all();
  static std::unique_ptr<GgufFile> open_one(const std::string& path);
  void add_split_parts(const std::string& prefix, int64_t count);  // gguf_split.cpp
  std::string name_;
  MappedFile mapping_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::string> key_order_;
  std::vector<std::string> released_keys_;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
  std::vector<std::unique_ptr<GgufFile>> parts_;  // a split model's other parts (their tensors are in tensors_)
};

// Builds a GGUF v3 file in memory order: metadata in insertion order, then
// tensors, each aligned.
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  // Adds raw tensor bytes already in `type`'s layout. dims as ggml ne.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> dims,
                  std::vector<uint8_t> bytes);
  // Adds F32 values, quantized to `type` row by row (dims[0] is the row).
  void add_tensor_f32(const std::string& name, TensorType type, std::vector<int64_t> dims,
                      const float* values);
  // Fills out with rows [first, first + n) of a tensor in its type's layout.
  using RowProducer = std::function<void(int64_t first, int64_t n, uint8_t* out)>;
  // Adds a tensor whose bytes are made while write() runs, a block of rows
  // (about produced_block_bytes) at a time, so that converting a multi-GB
  // model holds one block in memory, not the output.
  void add_tensor_rows(const std::string& name, TensorType type, std::vector<int64_t> dims, RowProducer produce);
  // Writes atomically (temp file + rename). Throws Error on I/O failure.
  void write(const std::string& path) const;
  std::vector<uint8_t> to_bytes() const;
  uint64_t alignment = 32;
  size_t produced_block_bytes = size_t{16} << 20;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> bytes;  // empty when `produce` makes them
    RowProducer produce;
    size_t n_bytes() const;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<PendingTensor> tensors_;
  std::vector<uint8_t> header_bytes() const;
  void check_new_tensor(const std::string& name, const std::vector<int64_t>& dims) const;
  // Calls sink(bytes, n) for the tensor's bytes in order.
  void emit(const PendingTensor& t, const std::function<void(const uint8_t*, size_t)>& sink) const;
};

}  // namespace onellm
