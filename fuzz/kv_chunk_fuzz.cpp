// Feeds arbitrary bytes to the KV chunk parser: peek, decode into a cache of
// the shape the header claims (when small), transcode. Every input must end
// in success or onellm::Error. Inputs that pass the checksum are rare, so a
// valid CRC is also appended to the input and tried.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "context/context.h"

namespace {

void try_image(const std::string& image) {
  try {
    onellm::KvFormat format;
    onellm::ChunkIdentity id = onellm::peek_kv_chunk(image, &format);
    const int64_t n = static_cast<int64_t>(id.tokens.size());
    if (id.n_layer * id.kv_dim * (id.pos0 + n) <= (1 << 20)) {
      onellm::ModelConfig c;
      c.n_layer = id.n_layer;
      c.n_head_kv = 1;
      c.head_dim = id.kv_dim;
      onellm::KvCache cache(c, id.pos0 + n);
      cache.reserve(id.pos0 + n);
      onellm::decode_kv_chunk(image, id, cache);
    }
    (void)onellm::transcode_kv_chunk(image, onellm::KvFormat::kInt4);
  } catch (const onellm::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string image(reinterpret_cast<const char*>(data), size);
  try_image(image);
  const uint32_t crc = onellm::crc32(image.data(), image.size());
  image.append(reinterpret_cast<const char*>(&crc), 4);
  try_image(image);
  return 0;
}
