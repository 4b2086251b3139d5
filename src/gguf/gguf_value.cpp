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

namespace {

GgufValue scalar(GgufType type, uint64_t u, int64_t i, double f) {
  GgufValue v;
  v.type = type;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

template <typename T, typename Make>
GgufValue array_of(GgufType elem_type, const std::vector<T>& xs, Make make) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem_type;
  v.items.reserve(xs.size());
  for (const T& x : xs) v.items.push_back(make(x));
  return v;
}

}  // namespace

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
  return array_of(GgufType::STRING, xs, [](const std::string& s) { return of_string(s); });
}
GgufValue GgufValue::of_f32s(const std::vector<float>& xs) {
  return array_of(GgufType::FLOAT32, xs, [](float x) { return of_f32(x); });
}
GgufValue GgufValue::of_i32s(const std::vector<int32_t>& xs) {
  return array_of(GgufType::INT32, xs, [](int32_t x) { return of_i32(x); });
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace onellm
