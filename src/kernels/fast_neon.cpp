// The AArch64 level. Not written yet: the scalar kernels stand in, so the
// dispatch, the ONELLM_CPU override and the tests work the same on ARM.
#include "kernels/fast_kernels.h"

namespace onellm::fast {
#if defined(__aarch64__)
const Kernels* kernels_neon() { return kernels_scalar(); }
#else
const Kernels* kernels_neon() { return nullptr; }
#endif
}  // namespace onellm::fast
