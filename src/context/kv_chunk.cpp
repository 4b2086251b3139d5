// The chunk image: header, payload (F32 or block-quantized), CRC32. The same
// bytes are kept in memory (compressed chunks) and written to disk.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "base/error.h"
#include "context/context.h"

namespace onellm {
namespace {

constexpr char kMagic[8] = {'O', 'N', 'E', 'L', 'L', 'M', 'K', 'V'};
constexpr uint32_t kVersion = 2;  // 2: f16 format, formats renumbered
constexpr int64_t kBlock = 32;
// Attention-score thresholds (1 = an average position) below which a chunk
// may be stored in 2 or 4 bits; chosen with bench-context's accuracy table.
constexpr double kInt2Below = 0.05, kInt4Below = 0.5;
constexpr int64_t kMaxTokens = 1 << 16, kMaxRowValues = 1 << 24, kMaxName = 256, kMaxPosition = 1 << 24;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t mix(uint64_t h) {  // final avalanche (splitmix64's)
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

// Bits per quantized value and the largest magnitude of the integer grid.
int bits_of(KvFormat f) { return f == KvFormat::kInt8 ? 8 : f == KvFormat::kInt4 ? 4 : 2; }

uint64_t payload_bytes(KvFormat f, int64_t n_layer, int64_t values_per_tensor) {
  if (f == KvFormat::kF32) return static_cast<uint64_t>(2 * n_layer * values_per_tensor) * 4;
  if (f == KvFormat::kF16) return static_cast<uint64_t>(2 * n_layer * values_per_tensor) * 2;
  const int64_t blocks = (values_per_tensor + kBlock - 1) / kBlock;
  const int64_t q_bytes = (values_per_tensor * bits_of(f) + 7) / 8;
  return static_cast<uint64_t>(2 * n_layer) * static_cast<uint64_t>(blocks * 4 + q_bytes);
}

template <typename T>
void put(std::string& out, T v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

// Quantizes n values (one K or V tensor of the chunk): all scales, then the
// packed integers (little-endian within a byte).
void quantize(const float* x, int64_t n, KvFormat f, std::string& out) {
  const int bits = bits_of(f);
  const float levels = f == KvFormat::kInt8 ? 127.0f : f == KvFormat::kInt4 ? 7.0f : 1.5f;
  std::vector<float> scales;
  for (int64_t b = 0; b < n; b += kBlock) {
    float amax = 0;
    for (int64_t i = b; i < std::min(n, b + kBlock); ++i) amax = std::max(amax, std::fabs(x[i]));
    scales.push_back(amax / levels);
  }
  out.append(reinterpret_cast<const char*>(scales.data()), scales.size() * 4);
  std::string packed(static_cast<size_t>((n * bits + 7) / 8), '\0');
  for (int64_t i = 0; i < n; ++i) {
    const float s = scales[static_cast<size_t>(i / kBlock)];
    const float r = s > 0 ? x[i] / s : 0.0f;
    uint32_t q;
    if (f == KvFormat::kInt2) q = static_cast<uint32_t>(std::clamp(std::nearbyint(r + 1.5f), 0.0f, 3.0f));
    else q = static_cast<uint32_t>(static_cast<int32_t>(std::clamp(std::nearbyint(r), -levels, levels)) + (1 << (bits - 1)));
    const int64_t bit = i * bits;
    packed[static_cast<size_t>(bit / 8)] |= static_cast<char>((q & ((1u << bits) - 1)) << (bit % 8));
  }
  out += packed;
}

void dequantize(const unsigned char* p, int64_t n, KvFormat f, float* x, const std::string& what) {
  const int bits = bits_of(f);
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<float> scales(static_cast<size_t>(blocks));
  std::memcpy(scales.data(), p, scales.size() * 4);
  for (float s : scales)
    if (!std::isfinite(s) || s < 0) throw Error(what + ": a block scale is not a finite non-negative number");
  const unsigned char* q = p + blocks * 4;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bit = i * bits;
    const uint32_t v = (q[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    const float s = scales[static_cast<size_t>(i / kBlock)];
    x[i] = f == KvFormat::kInt2 ? (static_cast<float>(v) - 1.5f) * s
                                : static_cast<float>(static_cast<int32_t>(v) - (1 << (bits - 1))) * s;
  }
}

// One K or V tensor of n values in format f, appended to out.
void append_values(const float* x, int64_t n, KvFormat f, std::string& out) {
  if (f == KvFormat::kF32) {
    out.append(reinterpret_cast<const char*>(x), static_cast<size_t>(n) * 4);
  } else if (f == KvFormat::kF16) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(n) * 2);
    quantize_row(TensorType::F16, x, out.data() + at, n);
  } else {
    quantize(x, n, f, out);
  }
}

// Throws unless all n raw f32/f16 values are finite (an exponent of all ones
// is Inf or NaN), without converting them.
void check_finite(const unsigned char* p, int64_t n, KvFormat f, const std::string& what) {
  bool bad = false;
  if (f == KvFormat::kF16) {
    for (int64_t i = 0; i < n; ++i) bad |= (p[2 * i + 1] & 0x7C) == 0x7C;
  } else {
    for (int64_t i = 0; i < n; ++i) bad |= (p[4 * i + 3] & 0x7F) == 0x7F && (p[4 * i + 2] & 0x80) != 0;
  }
  if (bad) throw Error(what + ": a value is not finite");
}

// The inverse; every value must be finite (a chunk is never trusted).
void read_values(const unsigned char* p, int64_t n, KvFormat f, float* x, const std::string& what) {
  if (f == KvFormat::kF32) std::memcpy(x, p, static_cast<size_t>(n) * 4);
  else if (f == KvFormat::kF16) dequantize_row(TensorType::F16, p, x, n);
  else dequantize(p, n, f, x, what);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) throw Error(what + ": a value is not finite");
}

// Bounds-checked reader over an image.
struct Reader {
  const std::string& data;
  size_t at = 0;
  const std::string& what;
  const unsigned char* take(size_t n) {
    if (n > data.size() - at) throw Error(what + ": truncated (need " + std::to_string(n) + " bytes at offset " +
                                          std::to_string(at) + ", file has " + std::to_string(data.size()) + ")");
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data()) + at;
    at += n;
    return p;
  }
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    return v;
  }
};

struct ParsedChunk {
  ChunkIdentity id;
  KvFormat format = KvFormat::kF32;
  size_t payload_at = 0;
};

ParsedChunk parse(const std::string& image, const std::string& what) {
  if (image.size() < sizeof kMagic + 4) throw Error(what + ": too short to be a KV chunk");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, image.data() + image.size() - 4, 4);
  if (std::memcmp(image.data(), kMagic, sizeof kMagic) != 0) throw Error(what + ": not a KV chunk (bad magic)");
  if (crc32(image.data(), image.size() - 4) != stored_crc) throw Error(what + ": checksum mismatch (corrupt chunk)");
  Reader r{image, sizeof kMagic, what};
  ParsedChunk p;
  if (uint32_t v = r.get<uint32_t>(); v != kVersion)
    throw Error(what + ": chunk format version " + std::to_string(v) + ", expected " + std::to_string(kVersion));
  const uint32_t format = r.get<uint32_t>();
  if (format >= kKvFormatCount) throw Error(what + ": unknown KV format " + std::to_string(format));
  p.format = static_cast<KvFormat>(format);
  p.id.model_hash = r.get<uint64_t>();
  p.id.chain_hash = r.get<uint64_t>();
  p.id.n_layer = r.get<uint32_t>();
  p.id.kv_dim = r.get<uint32_t>();
  const uint64_t pos0 = r.get<uint64_t>();
  p.id.pos0 = static_cast<int64_t>(std::min<uint64_t>(pos0, kMaxPosition + 1));
  const int64_t n = r.get<uint32_t>();
  const uint32_t adapter_len = r.get<uint32_t>(), app_len = r.get<uint32_t>();
  if (n <= 0 || n > kMaxTokens || p.id.pos0 > kMaxPosition || adapter_len > kMaxName || app_len > kMaxName || p.id.n_layer <= 0 ||
      p.id.kv_dim <= 0 || p.id.n_layer > kMaxRowValues || p.id.kv_dim > kMaxRowValues ||
      p.id.n_layer * p.id.kv_dim > kMaxRowValues)  // each bounded first: the product must not overflow
    throw Error(what + ": implausible header (tokens, position, shape or name lengths)");
  p.id.adapter.assign(reinterpret_cast<const char*>(r.take(adapter_len)), adapter_len);
  p.id.app.assign(reinterpret_cast<const char*>(r.take(app_len)), app_len);
  p.id.tokens.resize(static_cast<size_t>(n));
  std::memcpy(p.id.tokens.data(), r.take(static_cast<size_t>(n) * 4), static_cast<size_t>(n) * 4);
  const uint64_t bytes = r.get<uint64_t>();
  if (bytes != payload_bytes(p.format, p.id.n_layer, n * p.id.kv_dim))
    throw Error(what + ": payload size does not match its shape and format");
  p.payload_at = r.at;
  r.take(static_cast<size_t>(bytes));
  if (r.at != image.size() - 4) throw Error(what + ": trailing bytes after the payload");
  return p;
}

}  // namespace

const char* kv_format_name(KvFormat f) {
  switch (f) {
    case KvFormat::kF32: return "f32";
    case KvFormat::kF16: return "f16";
    case KvFormat::kInt8: return "int8";
    case KvFormat::kInt4: return "int4";
    case KvFormat::kInt2: return "int2";
  }
  return "unknown";
}

KvFormat parse_kv_format(const std::string& name) {
  for (KvFormat f : {KvFormat::kF32, KvFormat::kF16, KvFormat::kInt8, KvFormat::kInt4, KvFormat::kInt2})
    if (name == kv_format_name(f)) return f;
  throw Error("unknown KV format '" + name + "' (expected f32, f16, int8, int4 or int2)");
}

KvFormat kv_format_for_cache(TensorType cache_type) {
  switch (cache_type) {
    case TensorType::F32: return KvFormat::kF32;
    case TensorType::F16: return KvFormat::kF16;
    default: return KvFormat::kInt8;
  }
}

double kv_format_bytes_per_value(KvFormat f) {
  if (f == KvFormat::kF32) return 4;
  if (f == KvFormat::kF16) return 2;
  return bits_of(f) / 8.0 + 4.0 / kBlock;
}

KvFormat kv_format_for_attention(double score) {
  if (score < 0) return KvFormat::kInt8;
  if (score < kInt2Below) return KvFormat::kInt2;
  if (score < kInt4Below) return KvFormat::kInt4;
  return KvFormat::kInt8;
}

uint64_t hash_bytes(const void* data, size_t n, uint64_t seed) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (n + 1));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = rotl(h ^ (w * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
  }
  uint64_t tail = 0;
  for (size_t k = 0; i + k < n; ++k) tail |= static_cast<uint64_t>(p[i + k]) << (8 * k);
  return mix(h ^ tail);
}

uint64_t hash_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open to hash: " + std::strerror(errno));
  std::vector<unsigned char> buf(1 << 20);
  uint64_t h = 0;
  while (true) {
    ssize_t got = ::read(fd, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      throw Error(path + ": read error while hashing: " + std::strerror(errno));
    }
    if (got == 0) break;
    h = hash_bytes(buf.data(), static_cast<size_t>(got), h);
  }
  ::close(fd);
  return h;
}

// Slicing-by-8 (eight tables, eight bytes per step): a restore checks tens of
// megabytes, which byte-at-a-time CRC made a visible part of resume latency.
uint32_t crc32(const void* data, size_t n, uint32_t crc) {
  static const auto tables = [] {
    std::vector<std::array<uint32_t, 256>> t(8);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    return t;
  }();
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = tables[7][lo & 0xff] ^ tables[6][(lo >> 8) & 0xff] ^ tables[5][(lo >> 16) & 0xff] ^ tables[4][lo >> 24] ^
          tables[3][hi & 0xff] ^ tables[2][(hi >> 8) & 0xff] ^ tables[1][(hi >> 16) & 0xff] ^ tables[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) crc = tables[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint64_t chunk_chain_hash(uint64_t previous, const int32_t* tokens, int64_t n) {
  return hash_bytes(tokens, static_cast<size_t>(n) * sizeof(int32_t), previous ^ 0x6a09e667f3bcc909ull);
}

uint64_t chunk_chain_seed(const std::string& adapter_id) {
  return adapter_id.empty() ? 0 : hash_bytes(adapter_id.data(), adapter_id.size(), 0x4c6f5241ull);
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t encode_kv_chunk(const ChunkIdentity& id, const KvCache& cache, KvFormat format, const ChunkSink& sink) {
  const int64_t n = static_cast<int64_t>(id.tokens.size());
  if (n <= 0 || id.pos0 < 0 || id.pos0 + n > cache.reserved())
    throw Error("encode KV chunk: positions " + std::to_string(id.pos0) + ".." + std::to_string(id.pos0 + n) +
                " are not in the cache");
  if (id.n_layer != cache.n_layer() || id.kv_dim != cache.kv_dim()) throw Error("encode KV chunk: shape mismatch");
  if (id.adapter.size() > kMaxName || id.app.size() > kMaxName) throw Error("encode KV chunk: name too long");
  const int64_t values = n * id.kv_dim;
  uint32_t crc = 0;
  uint64_t size = 0;
  auto emit = [&](const void* data, size_t bytes) {
    crc = crc32(data, bytes, crc);
    size += bytes;
    sink(data, bytes);
  };
  std::string head;
  head.append(kMagic, sizeof kMagic);
  put<uint32_t>(head, kVersion);
  put<uint32_t>(head, static_cast<uint32_t>(format));
  put<uint64_t>(head, id.model_hash);
  put<uint64_t>(head, id.chain_hash);
  put<uint32_t>(head, static_cast<uint32_t>(id.n_layer));
  put<uint32_t>(head, static_cast<uint32_t>(id.kv_dim));
  put<uint64_t>(head, static_cast<uint64_t>(id.pos0));
  put<uint32_t>(head, static_cast<uint32_t>(n));
  put<uint32_t>(head, static_cast<uint32_t>(id.adapter.size()));
  put<uint32_t>(head, static_cast<uint32_t>(id.app.size()));
  head += id.adapter;
  head += id.app;
  head.append(reinterpret_cast<const char*>(id.tokens.data()), id.tokens.size() * 4);
  put<uint64_t>(head, payload_bytes(format, id.n_layer, values));
  emit(head.data(), head.size());
  std::string tensor;  // one K or V tensor at a time
  std::vector<float> x(static_cast<size_t>(values));
  const bool raw = format == kv_format_for_cache(cache.type()) && format != KvFormat::kInt8;
  std::vector<uint8_t> bytes(raw ? static_cast<size_t>(n) * cache.row_bytes() : 0);
  for (int64_t l = 0; l < id.n_layer; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      if (raw) {  // the cache's own bytes
        cache.copy_rows_out(kv, l, id.pos0, n, bytes.data());
        emit(bytes.data(), bytes.size());
        continue;
      }
      if (kv == 0) cache.read_k(l, id.pos0, n, x.data());
      else cache.read_v(l, id.pos0, n, x.data());
      tensor.clear();
      append_values(x.data(), values, format, tensor);
      emit(tensor.data(), tensor.size());
    }
  sink(&crc, 4);
  return size + 4;
}

std::string encode_kv_chunk(const ChunkIdentity& id, const KvCache& cache, KvFormat format) {
  std::string out;
  encode_kv_chunk(id, cache, format, [&](const void* data, size_t n) { out.append(static_cast<const char*>(data), n); });
  return out;
}

std::string transcode_kv_chunk(const std::string& image, KvFormat format) {
  ParsedChunk p = parse(image, "KV chunk");
  const int64_t values = static_cast<int64_t>(p.id.tokens.size()) * p.id.kv_dim;
  const size_t tensor_bytes = payload_bytes(p.format, 1, values) / 2;
  std::string out = image.substr(0, p.payload_at - 8);
  std::memcpy(out.data() + sizeof kMagic + 4, &format, 4);
  put<uint64_t>(out, payload_bytes(format, p.id.n_layer, values));
  std::vector<float> x(static_cast<size_t>(values));
  const unsigned char* at = reinterpret_cast<const unsigned char*>(image.data()) + p.payload_at;
  for (int64_t t = 0; t < 2 * p.id.n_layer; ++t, at += tensor_bytes) {
    read_values(at, values, p.format, x.data(), "KV chunk");
    append_values(x.data(), values, format, out);
  }
  put<uint32_t>(out, crc32(out.data(), out.size()));
  return out;
}

ChunkIdentity peek_kv_chunk(const std::string& image, KvFormat* format) {
  ParsedChunk p = parse(image, "KV chunk");
  if (format != nullptr) *format = p.format;
  return p.id;
}

void decode_kv_chunk(const std::string& image, const ChunkIdentity& expected, KvCache& cache) {
  const std::string what = "KV chunk " + hex64(expected.chain_hash);
  ParsedChunk p = parse(image, what);
  auto mismatch = [&](const std::string& field) { throw Error(what + ": " + field + " does not match (stale chunk)"); };
  if (p.id.model_hash != expected.model_hash) mismatch("model file hash " + hex64(p.id.model_hash));
  if (p.id.adapter != expected.adapter) mismatch("adapter '" + p.id.adapter + "'");
  if (p.id.app != expected.app) mismatch("app");
  if (p.id.chain_hash != expected.chain_hash) mismatch("chain hash");
  if (p.id.pos0 != expected.pos0) mismatch("start position");
  if (p.id.tokens != expected.tokens) mismatch("token ids");
  if (p.id.n_layer != cache.n_layer() || p.id.kv_dim != cache.kv_dim()) mismatch("model shape");
  const int64_t n = static_cast<int64_t>(p.id.tokens.size()), values = n * p.id.kv_dim;
  if (p.id.pos0 + n > cache.reserved()) throw Error(what + ": the cache has no room for its positions");
  const unsigned char* at = reinterpret_cast<const unsigned char*>(image.data()) + p.payload_at;
  const size_t tensor_bytes = payload_bytes(p.format, 1, values) / 2;
  // The cache's own format (f16 into an F16 cache, f32 into F32): the bytes
  // are copied as they are, after checking that every value is finite.
  const bool raw = p.format == kv_format_for_cache(cache.type()) && p.format != KvFormat::kInt8;
  std::vector<float> x(raw ? 0 : static_cast<size_t>(values));
  for (int64_t l = 0; l < p.id.n_layer; ++l)
    for (int kv = 0; kv < 2; ++kv, at += tensor_bytes) {
      if (raw) {
        check_finite(at, values, p.format, what);
        cache.copy_rows_in(kv, l, p.id.pos0, n, at);
        continue;
      }
      read_values(at, values, p.format, x.data(), what);
      if (kv == 0) cache.write_k(l, p.id.pos0, n, x.data());
      else cache.write_v(l, p.id.pos0, n, x.data());
    }
}

}  // namespace onellm
