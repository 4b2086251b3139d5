// GGUF v3 writer. Used by tests (tiny random models of every type), by the
// model tools (make-tiny-model, quantize) and later by training.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.h"
#include "gguf/gguf.h"

namespace onellm {
namespace {

class ByteSink {
 public:
  std::vector<uint8_t> bytes;
  template <typename T>
  void put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
  }
};

void put_value(ByteSink& out, const GgufValue& v, const std::string& key) {
  switch (v.type) {
    case GgufType::UINT8: out.put<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case GgufType::INT8: out.put<int8_t>(static_cast<int8_t>(v.i)); break;
    case GgufType::UINT16: out.put<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case GgufType::INT16: out.put<int16_t>(static_cast<int16_t>(v.i)); break;
    case GgufType::UINT32: out.put<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case GgufType::INT32: out.put<int32_t>(static_cast<int32_t>(v.i)); break;
    case GgufType::UINT64: out.put<uint64_t>(v.u); break;
    case GgufType::INT64: out.put<int64_t>(v.i); break;
    case GgufType::FLOAT32: out.put<float>(static_cast<float>(v.f)); break;
    case GgufType::FLOAT64: out.put<double>(v.f); break;
    case GgufType::BOOL: out.put<uint8_t>(v.u != 0 ? 1 : 0); break;
    case GgufType::STRING: out.put_string(v.str); break;
    case GgufType::ARRAY:
      out.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      out.put<uint64_t>(v.size());
      if (v.elem_type == GgufType::STRING) {
        for (size_t k = 0; k < v.size(); ++k) out.put_string(v.string_at(k));
      } else if (v.elem_type == GgufType::ARRAY) {
        for (const GgufValue& item : v.items) {
          if (item.type != GgufType::ARRAY)
            throw Error("GGUF writer: key '" + key + "' array of arrays holds a " + gguf_type_name(item.type));
          put_value(out, item, key);
        }
      } else {
        if (v.elems.size() % GgufValue::scalar_bytes(v.elem_type) != 0)
          throw Error("GGUF writer: key '" + key + "' holds a partial " + gguf_type_name(v.elem_type) + " element");
        out.bytes.insert(out.bytes.end(), v.elems.begin(), v.elems.end());
      }
      break;
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

size_t GgufWriter::PendingTensor::n_bytes() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return tensor_row_bytes(type, dims[0]) * static_cast<size_t>(n / dims[0]);
}

void GgufWriter::check_new_tensor(const std::string& name, const std::vector<int64_t>& dims) const {
  if (dims.empty() || dims.size() > 4) throw Error("GGUF writer: tensor '" + name + "' needs 1 to 4 dimensions");
  for (int64_t d : dims)
    if (d <= 0) throw Error("GGUF writer: tensor '" + name + "' has a dimension of " + std::to_string(d));
  for (const PendingTensor& t : tensors_)
    if (t.name == name) throw Error("GGUF writer: duplicate tensor '" + name + "'");
}

void GgufWriter::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> dims,
                            std::vector<uint8_t> bytes) {
  check_new_tensor(name, dims);
  PendingTensor t{name, type, std::move(dims), std::move(bytes), nullptr};
  const size_t expected = t.n_bytes();
  if (t.bytes.size() != expected)
    throw Error("GGUF writer: tensor '" + name + "' has " + std::to_string(t.bytes.size()) +
                " bytes, its shape needs " + std::to_string(expected));
  tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor_rows(const std::string& name, TensorType type, std::vector<int64_t> dims,
                                 RowProducer produce) {
  check_new_tensor(name, dims);
  if (!produce) throw Error("GGUF writer: tensor '" + name + "' has no producer");
  PendingTensor t{name, type, std::move(dims), {}, std::move(produce)};
  t.n_bytes();  // throws for columns that are not whole blocks
  tensors_.push_back(std::move(t));
}

void GgufWriter::emit(const PendingTensor& t, const std::function<void(const uint8_t*, size_t)>& sink) const {
  if (!t.produce) {
    sink(t.bytes.data(), t.bytes.size());
    return;
  }
  const size_t row_bytes = tensor_row_bytes(t.type, t.dims[0]);
  const int64_t rows = static_cast<int64_t>(t.n_bytes() / row_bytes);
  const int64_t block = std::max<int64_t>(1, static_cast<int64_t>(produced_block_bytes / row_bytes));
  std::vector<uint8_t> buffer(static_cast<size_t>(std::min(rows, block)) * row_bytes);
  for (int64_t r = 0; r < rows; r += block) {
    const int64_t n = std::min(block, rows - r);
    t.produce(r, n, buffer.data());
    sink(buffer.data(), static_cast<size_t>(n) * row_bytes);
  }
}

void GgufWriter::add_tensor_f32(const std::string& name, TensorType type, std::vector<int64_t> dims,
                                const float* values) {
  if (dims.empty()) throw Error("GGUF writer: tensor '" + name + "' needs dimensions");
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  const int64_t cols = dims[0];
  const size_t row_bytes = tensor_row_bytes(type, cols);
  std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(n / cols));
  for (int64_t r = 0; r < n / cols; ++r)
    quantize_row(type, values + r * cols, bytes.data() + r * row_bytes, cols);
  add_tensor(name, type, std::move(dims), std::move(bytes));
}

// Everything before the tensor data: header, metadata, tensor infos, padding.
std::vector<uint8_t> GgufWriter::header_bytes() const {
  ByteSink out;
  out.put<uint32_t>(0x46554747);
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors_.size());
  bool has_alignment_key = false;
  for (const auto& kv : kv_) has_alignment_key |= kv.first == "general.alignment";
  out.put<uint64_t>(kv_.size() + (alignment != 32 && !has_alignment_key ? 1 : 0));
  for (const auto& [key, value] : kv_) {
    out.put_string(key);
    out.put<uint32_t>(static_cast<uint32_t>(value.type));
    put_value(out, value, key);
  }
  if (alignment != 32 && !has_alignment_key) {
    out.put_string("general.alignment");
    out.put<uint32_t>(static_cast<uint32_t>(GgufType::UINT32));
    out.put<uint32_t>(static_cast<uint32_t>(alignment));
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    out.put_string(t.name);
    out.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) out.put<uint64_t>(static_cast<uint64_t>(d));
    out.put<uint32_t>(static_cast<uint32_t>(t.type));
    out.put<uint64_t>(offset);
    offset += (t.n_bytes() + alignment - 1) / alignment * alignment;
  }
  out.pad_to(alignment);
  return out.bytes;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  ByteSink out;
  out.bytes = header_bytes();
  for (const PendingTensor& t : tensors_) {
    emit(t, [&](const uint8_t* p, size_t n) { out.bytes.insert(out.bytes.end(), p, p + n); });
    out.pad_to(alignment);
  }
  return out.bytes;
}

void GgufWriter::write(const std::string& path) const {
  // Streamed tensor by tensor: a multi-GB model is not copied once more.
  const std::vector<uint8_t> header = header_bytes();
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw Error(path + ": cannot create: " + std::strerror(errno));
  // A failed write (a full disk) stops at once, and no partial file is left.
  const auto put = [&](const uint8_t* p, size_t n) {
    if (std::fwrite(p, 1, n, f) != n) throw Error(path + ": write failed: " + std::strerror(errno));
  };
  try {
    put(header.data(), header.size());
    static const uint8_t zeros[256] = {};
    for (const PendingTensor& t : tensors_) {
      emit(t, put);
      for (size_t pad = (alignment - t.n_bytes() % alignment) % alignment; pad > 0;) {
        const size_t n = std::min(pad, sizeof zeros);
        put(zeros, n);
        pad -= n;
      }
    }
    if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) throw Error(path + ": write failed: " + std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": write failed: " + std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename into place: " + std::strerror(e));
  }
}

}  // namespace onellm
