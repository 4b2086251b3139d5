// dequantize_row / quantize_row: validate the request, then dispatch to the
// per-type converters of quant_legacy.cpp and quant_k.cpp.
#include <bit>
#include <cstring>

#include "base/error.h"
#include "kernels/quant_blocks.h"

namespace onellm {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF rows are read in place: little-endian hosts only");

// Throws unless `type` is computable and n is a whole number of its blocks;
// returns the number of blocks.
int64_t checked_blocks(TensorType type, int64_t n, const char* what) {
  const TensorTypeInfo& info = tensor_type_info(type);
  if (!info.computable) throw Error(std::string(what) + ": tensor type " + info.name + " is not supported");
  if (n < 0 || n % info.block_elems != 0)
    throw Error(std::string(what) + ": a row of " + std::to_string(n) + " elements is not a whole number of " +
                info.name + " blocks of " + std::to_string(info.block_elems));
  return n / info.block_elems;
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  using namespace quant;
  const int64_t nb = checked_blocks(type, n, "dequantize_row");
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16: {
      const auto* bytes = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;  // GGUF is little-endian, as is every host we build for
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = half_bits_to_float(h);
      }
      return;
    }
    case TensorType::BF16: {
      const auto* bytes = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
        std::memcpy(&dst[i], &bits, 4);
      }
      return;
    }
#define ONELLM_DEQUANTIZE(T) \
  case TensorType::T:        \
    return dequantize_##T(static_cast<const Block##T*>(src), dst, nb);
    ONELLM_DEQUANTIZE(Q4_0)
    ONELLM_DEQUANTIZE(Q4_1)
    ONELLM_DEQUANTIZE(Q5_0)
    ONELLM_DEQUANTIZE(Q5_1)
    ONELLM_DEQUANTIZE(Q8_0)
    ONELLM_DEQUANTIZE(Q2_K)
    ONELLM_DEQUANTIZE(Q3_K)
    ONELLM_DEQUANTIZE(Q4_K)
    ONELLM_DEQUANTIZE(Q5_K)
    ONELLM_DEQUANTIZE(Q6_K)
    ONELLM_DEQUANTIZE(IQ4_NL)
    ONELLM_DEQUANTIZE(IQ4_XS)
#undef ONELLM_DEQUANTIZE
    default:
      break;
  }
  throw Error("dequantize_row: no converter for tensor type " + tensor_type_name(static_cast<uint32_t>(type)));
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  using namespace quant;
  const int64_t nb = checked_blocks(type, n, "quantize_row");
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16:
    case TensorType::BF16: {
      auto* bytes = static_cast<uint8_t*>(dst);
      const bool is_f16 = type == TensorType::F16;
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = is_f16 ? f32_to_fp16(src[i]) : f32_to_bf16(src[i]);
        bytes[2 * i] = static_cast<uint8_t>(h & 0xFF);
        bytes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
      }
      return;
    }
#define ONELLM_QUANTIZE(T) \
  case TensorType::T:      \
    return quantize_##T(src, static_cast<Block##T*>(dst), nb);
    ONELLM_QUANTIZE(Q4_0)
    ONELLM_QUANTIZE(Q4_1)
    ONELLM_QUANTIZE(Q5_0)
    ONELLM_QUANTIZE(Q5_1)
    ONELLM_QUANTIZE(Q8_0)
    ONELLM_QUANTIZE(Q2_K)
    ONELLM_QUANTIZE(Q3_K)
    ONELLM_QUANTIZE(Q4_K)
    ONELLM_QUANTIZE(Q5_K)
    ONELLM_QUANTIZE(Q6_K)
    ONELLM_QUANTIZE(IQ4_NL)
    ONELLM_QUANTIZE(IQ4_XS)
#undef ONELLM_QUANTIZE
    default:
      break;
  }
  throw Error("quantize_row: no converter for tensor type " + tensor_type_name(static_cast<uint32_t>(type)));
}

}  // namespace onellm
