#include <cstring>

#include "base/error.h"
#include "gguf/gguf.h"

namespace onellm {

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UINT8: return "uint8";
    case GgufType::INT8: return "int8";
    case GgufType::UINT16: return "uint16";
    case GgufType::INT16: return "int16";
    case GgufType::UINT32: return "uint32";
    case GgufType::INT32: return "int32";
    case GgufType::FLOAT32: return "float32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "uint64";
    case GgufType::INT64: return "int64";
    case GgufType::FLOAT64: return "float64";
  }
  return "unknown";
}

bool GgufValue::is_integer_type(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

size_t GgufValue::scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

int64_t GgufValue::as_int() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::UINT16: case GgufType::UINT32: case GgufType::UINT64: case GgufType::BOOL:
      return static_cast<int64_t>(u);
    case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64:
      return i;
    default:
      throw Error(std::string("GGUF value of type ") + gguf_type_name(type) + " is not an integer");
  }
}

double GgufValue::as_double() const {
  if (is_float()) return f;
  return static_cast<double>(as_int());
}

namespace {

[[noreturn]] void bad_element(const GgufValue& v, size_t k, const char* wanted) {
  if (v.type != GgufType::ARRAY)
    throw Error(std::string("GGUF value of type ") + gguf_type_name(v.type) + " is not an array");
  if (k >= v.size())
    throw Error("GGUF array element " + std::to_string(k) + " is out of range (" + std::to_string(v.size()) +
                " elements)");
  throw Error(std::string("GGUF array of ") + gguf_type_name(v.elem_type) + " has no " + wanted + " elements");
}

// The element's bytes, little-endian as in the file, widened to T.
template <typename T, typename Stored>
T load_elem(const std::string& elems, size_t k) {
  Stored x;
  std::memcpy(&x, elems.data() + k * sizeof(Stored), sizeof(Stored));
  return static_cast<T>(x);
}

GgufValue scalar(GgufType type, uint64_t u, int64_t i, double f) {
  GgufValue v;
  v.type = type;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

template <typename T>
GgufValue packed_array(GgufType elem_type, const std::vector<T>& xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem_type;
  v.elems.assign(reinterpret_cast<const char*>(xs.data()), xs.size() * sizeof(T));
  return v;
}

}  // namespace

size_t GgufValue::size() const {
  if (type != GgufType::ARRAY) throw Error(std::string("GGUF value of type ") + gguf_type_name(type) + " is not an array");
  if (elem_type == GgufType::ARRAY) return items.size();
  if (elem_type == GgufType::STRING) return string_ends.size();
  return elems.size() / scalar_bytes(elem_type);
}

std::string_view GgufValue::string_at(size_t k) const {
  if (type != GgufType::ARRAY || elem_type != GgufType::STRING || k >= string_ends.size())
    bad_element(*this, k, "string");
  const uint64_t begin = k == 0 ? 0 : string_ends[k - 1];
  return std::string_view(elems).substr(begin, string_ends[k] - begin);
}

int64_t GgufValue::int_at(size_t k) const {
  if (type != GgufType::ARRAY || k >= size()) bad_element(*this, k, "integer");
  switch (elem_type) {
    case GgufType::UINT8: case GgufType::BOOL: return load_elem<int64_t, uint8_t>(elems, k);
    case GgufType::INT8: return load_elem<int64_t, int8_t>(elems, k);
    case GgufType::UINT16: return load_elem<int64_t, uint16_t>(elems, k);
    case GgufType::INT16: return load_elem<int64_t, int16_t>(elems, k);
    case GgufType::UINT32: return load_elem<int64_t, uint32_t>(elems, k);
    case GgufType::INT32: return load_elem<int64_t, int32_t>(elems, k);
    case GgufType::UINT64: return load_elem<int64_t, uint64_t>(elems, k);
    case GgufType::INT64: return load_elem<int64_t, int64_t>(elems, k);
    default: bad_element(*this, k, "integer");
  }
}

double GgufValue::number_at(size_t k) const {
  if (type == GgufType::ARRAY && k < size()) {
    if (elem_type == GgufType::FLOAT32) return load_elem<double, float>(elems, k);
    if (elem_type == GgufType::FLOAT64) return load_elem<double, double>(elems, k);
  }
  return static_cast<double>(int_at(k));
}

const GgufValue& GgufValue::array_at(size_t k) const {
  if (type != GgufType::ARRAY || elem_type != GgufType::ARRAY || k >= items.size()) bad_element(*this, k, "array");
  return items[k];
}

void GgufValue::push_string(std::string_view s) {
  if (type != GgufType::ARRAY || elem_type != GgufType::STRING)
    throw Error("GGUF value: push_string on a value that is not an array of strings");
  elems.append(s);
  string_ends.push_back(elems.size());
}

GgufValue GgufValue::of_string(std::string s) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.str = std::move(s);
  return v;
}
GgufValue GgufValue::of_u32(uint32_t x) { return scalar(GgufType::UINT32, x, 0, 0); }
GgufValue GgufValue::of_i32(int32_t x) { return scalar(GgufType::INT32, 0, x, 0); }
GgufValue GgufValue::of_u64(uint64_t x) { return scalar(GgufType::UINT64, x, 0, 0); }
GgufValue GgufValue::of_f32(float x) { return scalar(GgufType::FLOAT32, 0, 0, x); }
GgufValue GgufValue::of_bool(bool x) { return scalar(GgufType::BOOL, x ? 1 : 0, 0, 0); }
GgufValue GgufValue::of_strings(const std::vector<std::string>& xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::STRING;
  v.string_ends.reserve(xs.size());
  for (const std::string& x : xs) v.push_string(x);
  return v;
}
GgufValue GgufValue::of_f32s(const std::vector<float>& xs) { return packed_array(GgufType::FLOAT32, xs); }
GgufValue GgufValue::of_i32s(const std::vector<int32_t>& xs) { return packed_array(GgufType::INT32, xs); }
GgufValue GgufValue::of_arrays(std::vector<GgufValue> xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::ARRAY;
  v.items = std::move(xs);
  return v;
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace onellm
