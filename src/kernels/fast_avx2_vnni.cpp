// The AVX2 + AVX-VNNI level: the AVX2 kernels (fast_avx2_level.inc) with
// each u8 x s8 dot one VEX-encoded vpdpbusd, for x86 cores that have
// AVX-VNNI but no AVX-512 (Intel Alder Lake and later client and Atom
// cores; AMD Zen 4 and 5 have both).
#define ONELLM_AVX2_TARGET "avx2,fma,f16c,avxvnni"
#define ONELLM_AVX2_VNNI 2
#define ONELLM_AVX2_LEVEL_NAME "avx2-vnni"
#define ONELLM_AVX2_KERNELS kernels_avx2_vnni
#define ONELLM_AVX2_PANEL_KERNELS panel_kernels_avx2_vnni
#define ONELLM_AVX2_PACKED_KERNELS packed_kernels_avx2_vnni
#include "kernels/fast_avx2_level.inc"
