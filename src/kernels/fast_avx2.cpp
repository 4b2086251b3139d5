// The AVX2 + FMA + F16C level: the shared x86 kernels with vpmaddubsw +
// vpmaddwd dot products. Everything between push/pop_options is compiled as
// if each function carried __attribute__((target("avx2,fma,f16c"))); the
// build needs no -march flag and fast_matmul.cpp calls in only after
// cpu_features() has confirmed the instructions exist.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

#if defined(__x86_64__)
#include <immintrin.h>

// GCC takes a target pragma; clang (fuzz builds) a target attribute pushed
// onto every function.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
namespace onellm::fast {
namespace {
#define ONELLM_X86_VNNI 0
#define ONELLM_X86_LEVEL_NAME "avx2"
#include "kernels/fast_x86_kernels.inc"
#include "kernels/fast_avx2_packed.inc"
#include "kernels/fast_avx2_panel.inc"
#undef ONELLM_X86_VNNI
#undef ONELLM_X86_LEVEL_NAME
#undef ONELLM_X86_ACCUMULATE
}  // namespace
}  // namespace onellm::fast
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace onellm::fast {
const Kernels* kernels_avx2() { return &kTable; }
const PanelKernels* panel_kernels_avx2() { return &kPanelTable; }
const PackedKernels* packed_kernels_avx2() { return &kPackedTable; }
}  // namespace onellm::fast
#else
namespace onellm::fast {
const Kernels* kernels_avx2() { return nullptr; }
const PanelKernels* panel_kernels_avx2() { return nullptr; }
const PackedKernels* packed_kernels_avx2() { return nullptr; }
}  // namespace onellm::fast
#endif
