// IEEE binary16 and bfloat16 <-> binary32, in portable integer code:
// subnormals, infinities and NaN are handled, narrowing rounds to nearest
// even. NaN payloads keep their top bits and become quiet, as F16C and ggml do.
#include <bit>
#include <cstdint>

#include "kernels/kernels.h"

namespace onellm {

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13);  // inf or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: normalize. Its value is mant * 2^-24.
    int e = 127 - 15 + 1;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3FF) << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t exp = (bits >> 23) & 0xFF;
  const uint32_t mant = bits & 0x7FFFFF;
  if (exp == 0xFF) {
    if (mant == 0) return sign | 0x7C00;
    return static_cast<uint16_t>(sign | 0x7E00 | (mant >> 13));  // quiet NaN
  }
  const int e = static_cast<int>(exp) - 127 + 15;  // biased half exponent
  if (e >= 0x1F) return sign | 0x7C00;             // overflow to inf
  if (e <= 0) {
    // Subnormal or zero half: shift the full significand (with its implicit
    // bit) right, rounding to nearest even on the dropped bits.
    if (e < -10) return sign;  // below half the smallest subnormal
    const uint32_t sig = mant | 0x800000;
    const int shift = 14 - e;  // 13 for the normal drop, plus 1 - e
    uint32_t half_mant = sig >> shift;
    const uint32_t rem = sig & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);  // a carry makes it the smallest normal: correct
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // a carry may reach inf: correct
  return static_cast<uint16_t>(sign | half);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  const uint32_t rounded = bits + 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(rounded >> 16);
}

}  // namespace onellm
