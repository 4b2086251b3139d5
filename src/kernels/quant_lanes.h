// Eight float / int32 lanes as GCC/Clang vector types for the quantizers'
// searches (quant_k_lanes.cpp, quant_iq4.cpp), which run independent
// searches side by side: each lane does the scalar code's IEEE operations in
// its order, so it gets the scalar code's bits. Internal to kernels/.
#pragma once

#include <cstdint>
#include <cstring>

// The helpers pass 32-byte vectors by value; they are all inlined here, so the
// ABI note GCC gives for builds without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace onellm::quant::lanes {

// One AVX2 register, two SSE or NEON ones.
typedef float V __attribute__((vector_size(32)));
typedef int32_t VI __attribute__((vector_size(32)));

// Every lane set to f (not x - x + f, which is NaN where x is not finite).
inline V splat(float f) { return V{} + f; }
inline VI splat(int32_t i) { return VI{} + i; }
inline V as_float(VI bits) { return (V)bits; }  // vector casts reinterpret the bits
inline VI as_bits(V v) { return (VI)v; }
// mask lanes are 0 or -1 (what a vector comparison gives).
inline V select(VI mask, V a, V b) { return as_float((as_bits(a) & mask) | (as_bits(b) & ~mask)); }
inline VI select(VI mask, VI a, VI b) { return (a & mask) | (b & ~mask); }
inline VI clamp(VI v, int lo, int hi) {
  const VI l = splat(lo), h = splat(hi);
  const VI above = select(v < l, l, v);
  return select(above > h, h, above);
}
inline V to_float(VI v) { return __builtin_convertvector(v, V); }
inline V fabs(V v) { return as_float(as_bits(v) & 0x7fffffff); }

// nearest_int for |v| < 2^22 (levels of a few dozen here), branch-free:
// adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits,
// rounding half to even as nearbyint does. For NaN and infinities (lanes of
// all-equal sub-blocks, whose results are replaced) it gives some level.
inline VI round_small(V v) { return (as_bits(v + 12582912.0f) & 0x007fffff) - 0x00400000; }

inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace onellm::quant::lanes

// On x86 the loader picks an AVX2 build of a function marked with this where
// the CPU has it (one vector register for the 8 lanes). The files using it
// build with -ffp-contract=off (CMakeLists.txt, scripts/arm-check.sh), so no
// build fuses a multiply-add the scalar code does not.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ONELLM_LANE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ONELLM_LANE_CLONES
#endif
