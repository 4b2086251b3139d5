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

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default:
      return false;
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

GgufValue GgufValue::of_string(std::string s) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.str = std::move(s);
  return v;
}
GgufValue GgufValue::of_u32(uint32_t x) {
  GgufValue v;
  v.type = GgufType::UINT32;
  v.u = x;
  return v;
}
GgufValue GgufValue::of_i32(int32_t x) {
  GgufValue v;
  v.type = GgufType::INT32;
  v.i = x;
  return v;
}
GgufValue GgufValue::of_u64(uint64_t x) {
  GgufValue v;
  v.type = GgufType::UINT64;
  v.u = x;
  return v;
}
GgufValue GgufValue::of_f32(float x) {
  GgufValue v;
  v.type = GgufType::FLOAT32;
  v.f = x;
  return v;
}
GgufValue GgufValue::of_bool(bool x) {
  GgufValue v;
  v.type = GgufType::BOOL;
  v.u = x ? 1 : 0;
  return v;
}
GgufValue GgufValue::of_strings(const std::vector<std::string>& xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::STRING;
  for (const std::string& s : xs) v.items.push_back(of_string(s));
  return v;
}
GgufValue GgufValue::of_f32s(const std::vector<float>& xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::FLOAT32;
  for (float x : xs) v.items.push_back(of_f32(x));
  return v;
}
GgufValue GgufValue::of_i32s(const std::vector<int32_t>& xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::INT32;
  for (int32_t x : xs) v.items.push_back(of_i32(x));
  return v;
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace onellm
