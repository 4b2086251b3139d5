// The AArch64 int8 kernels, built twice from fast_neon_int8.inc: once for
// any ARMv8.0 core and once under an "armv8.2-a+dotprod" target pragma
// (SDOT; dotprod is an optional ARMv8.2 feature, so every core that has it
// is v8.2), so the build needs no -march flag and fast_neon.cpp picks the
// dotprod table only after cpu_features() has seen HWCAP_ASIMDDP.
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
#include "kernels/fast_neon_int8.inc"
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
#include "kernels/fast_neon_int8.inc"
#undef ONELLM_NEON_DOTPROD
}  // namespace dotprod
}  // namespace
}  // namespace onellm::fast::neon
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace onellm::fast::neon {
void fill_int8_tiles(bool with_dotprod, TileFn* tile) {
  if (with_dotprod)
    dotprod::fill_tiles(tile);
  else
    plain::fill_tiles(tile);
}
}  // namespace onellm::fast::neon
#endif
