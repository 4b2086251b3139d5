// The AVX2 + FMA + F16C level: the shared x86 kernels with vpmaddubsw +
// vpmaddwd dot products (fast_avx2_level.inc).
#define ONELLM_AVX2_TARGET "avx2,fma,f16c"
#define ONELLM_AVX2_VNNI 0
#define ONELLM_AVX2_LEVEL_NAME "avx2"
#define ONELLM_AVX2_KERNELS kernels_avx2
#define ONELLM_AVX2_PANEL_KERNELS panel_kernels_avx2
#define ONELLM_AVX2_PACKED_KERNELS packed_kernels_avx2
#include "kernels/fast_avx2_level.inc"
