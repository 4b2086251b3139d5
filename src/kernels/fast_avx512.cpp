// The AVX-512 level (F/BW/VL/VNNI): the shared x86 kernels with every u8 x s8
// dot product as one vpdpbusd. Compiled under a file-wide target pragma (the
// same as a per-function target attribute); called only after
// cpu_features() has confirmed the instructions and the OS's ZMM state.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/fast_kernels.h"
#include "kernels/quant_blocks.h"

#if defined(__x86_64__)
#include <immintrin.h>

// GCC takes a target pragma; clang (fuzz builds) a target attribute pushed
// onto every function.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12's avx512fintrin.h passes _mm512_undefined_*() as the unused source
// of unmasked intrinsics, and -Wmaybe-uninitialized flags every inlined use
// (GCC bug 105593, fixed in 13): hundreds of false warnings.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace onellm::fast {
namespace {
#define ONELLM_X86_VNNI 1
#define ONELLM_X86_LEVEL_NAME "avx512"
#define ONELLM_X86_ACCUMULATE accumulate_f32_avx512
#define ONELLM_X86_ATTEND_HEADS attend_heads_avx512
#define ONELLM_X86_SUM_WORDS sum_words_avx512
void attend_heads_avx512(const float* q, int64_t n_q, KvRows k, KvRows v, int64_t n_keys, const int64_t* key_limits,
                         int64_t dim, float scale, float* out, float* max_out, float* sum_out);
#include "kernels/fast_avx512_accumulate.inc"
#include "kernels/fast_x86_kernels.inc"
#include "kernels/fast_avx512_attention.inc"
#include "kernels/fast_avx512_panel.inc"
#include "kernels/fast_avx512_packed.inc"
#undef ONELLM_X86_VNNI
#undef ONELLM_X86_LEVEL_NAME
#undef ONELLM_X86_ACCUMULATE
#undef ONELLM_X86_ATTEND_HEADS
#undef ONELLM_X86_SUM_WORDS
}  // namespace
}  // namespace onellm::fast
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace onellm::fast {
const Kernels* kernels_avx512() { return &kTable; }
const PanelKernels* panel_kernels_avx512() { return &kPanelTable; }
const PackedKernels* packed_kernels_avx512() { return &kPackedTable; }
}  // namespace onellm::fast
#else
namespace onellm::fast {
const Kernels* kernels_avx512() { return nullptr; }
const PanelKernels* panel_kernels_avx512() { return nullptr; }
const PackedKernels* packed_kernels_avx512() { return nullptr; }
}  // namespace onellm::fast
#endif
