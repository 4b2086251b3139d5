// The AArch64 int8 kernels, built three times from fast_neon_int8.inc: once
// for any ARMv8.0 core, once under an "armv8.2-a+dotprod" target pragma
// (SDOT; dotprod is an optional ARMv8.2 feature, so every core that has it
// is v8.2) and once under "armv8.2-a+dotprod+i8mm" (SMMLA, optional from
// v8.2, mandatory in v8.6), so the build needs no -march flag and
// fast_neon.cpp picks a table only after cpu_features() has seen
// HWCAP_ASIMDDP / HWCAP2_I8MM.
#include <cstdint>
#include <cstring>

#include "kernels/fast_kernels.h"
#include "kernels/fast_neon.h"
#include "kernels/quant_blocks.h"

#if defined(__aarch64__)
namespace onellm::fast::neon {
namespace {
namespace plain {
#define ONELLM_NEON_DOTPROD 0
#define ONELLM_NEON_I8MM 0
#include "kernels/fast_neon_int8.inc"
#undef ONELLM_NEON_I8MM
#undef ONELLM_NEON_DOTPROD
}  // namespace plain
}  // namespace
}  // namespace onellm::fast::neon

// GCC takes a target pragma; clang (the Android NDK) a target attribute
// pushed onto every function.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
// arm_neon.h defines vdotq_s32 for arch=armv8.2-a+dotprod; a plain
// "+dotprod" on v8.0 is not a superset of that, and GCC refuses to inline it.
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
namespace onellm::fast::neon {
namespace {
namespace dotprod {
#define ONELLM_NEON_DOTPROD 1
#define ONELLM_NEON_I8MM 0
#include "kernels/fast_neon_int8.inc"
#undef ONELLM_NEON_I8MM
#undef ONELLM_NEON_DOTPROD
}  // namespace dotprod
}  // namespace
}  // namespace onellm::fast::neon
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod,i8mm"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod+i8mm")
#endif
namespace onellm::fast::neon {
namespace {
namespace i8mm {
#define ONELLM_NEON_DOTPROD 1
#define ONELLM_NEON_I8MM 1
#include "kernels/fast_neon_int8.inc"
#undef ONELLM_NEON_I8MM
#undef ONELLM_NEON_DOTPROD
}  // namespace i8mm
}  // namespace
}  // namespace onellm::fast::neon
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace onellm::fast::neon {
void fill_int8_tiles(Int8Level level, TileFn* tile) {
  if (level == Int8Level::kI8mm)
    i8mm::fill_tiles(tile);
  else if (level == Int8Level::kDotprod)
    dotprod::fill_tiles(tile);
  else
    plain::fill_tiles(tile);
}
}  // namespace onellm::fast::neon
#endif
