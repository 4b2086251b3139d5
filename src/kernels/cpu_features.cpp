// Runtime CPU-feature detection and the active instruction-set level.
// x86: cpuid for what the CPU implements, xgetbv for what the OS saves on a
// context switch (a feature is usable only with both), and on Linux the AMX
// tile-data permission, which must be requested per process. AArch64/Linux:
// the kernel's HWCAP bits.
#include <atomic>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace onellm {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux >= 5.16 keeps AMX tile data off until a process asks for it.
bool request_amx_permission() {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM0-15 upper, ZMM16-31
  if (!os_ymm) return f;
  f.fma = fma;
  f.f16c = f16c;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = (b >> 5) & 1;
  if (os_zmm) {
    f.avx512f = (b >> 16) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
  }
  f.amx_bf16 = (d >> 22) & 1;
  f.amx_tile = (d >> 24) & 1;
  f.amx_int8 = (d >> 25) & 1;
  unsigned a1, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) {
    f.avx_vnni = (a1 >> 4) & 1;
    f.avx512bf16 = os_zmm && ((a1 >> 5) & 1);
  }
  if (f.amx_tile) f.amx_permitted = request_amx_permission();  // refused: the vector paths run
  return f;
}
#elif defined(__aarch64__) && defined(__linux__)
CpuFeatures detect() {
  CpuFeatures f;
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon = (hw & HWCAP_ASIMD) != 0;
  f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
#ifdef HWCAP2_I8MM
  f.i8mm = (hw2 & HWCAP2_I8MM) != 0;
#endif
  (void)hw2;
  return f;
}
#elif defined(__aarch64__)
CpuFeatures detect() {  // AArch64 always has ASIMD
  CpuFeatures f;
  f.neon = true;
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

// -1: not chosen yet (read ONELLM_CPU on first use).
std::atomic<int> g_level{-1};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string cpu_features_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.avx_vnni, "avxvnni");
  add(f.amx_tile, "amx-tile");
  add(f.amx_int8, "amx-int8");
  add(f.amx_bf16, "amx-bf16");
  if (f.amx_tile) s += f.amx_permitted ? " (amx permitted)" : " (amx refused by the OS)";
  add(f.neon, "neon");
  add(f.dotprod, "dotprod");
  add(f.i8mm, "i8mm");
  return s.empty() ? "none" : s;
}

const char* cpu_level_name(CpuLevel level) {
  switch (level) {
    case CpuLevel::kScalar: return "scalar";
    case CpuLevel::kAvx2: return "avx2";
    case CpuLevel::kAvx2Vnni: return "avx2-vnni";
    case CpuLevel::kAvx512: return "avx512";
    case CpuLevel::kAmx: return "amx";
    case CpuLevel::kNeon: return "neon";
  }
  return "unknown";
}

CpuLevel cpu_level_from_name(const std::string& name) {
  for (CpuLevel l : kCpuLevels)
    if (name == cpu_level_name(l)) return l;
  throw Error("unknown CPU level '" + name + "' (expected scalar, avx2, avx2-vnni, avx512, amx or neon)");
}

bool cpu_level_supported(CpuLevel level) {
  const CpuFeatures& f = cpu_features();
  switch (level) {
    case CpuLevel::kScalar: return true;
    case CpuLevel::kAvx2: return f.avx2 && f.fma && f.f16c;
    case CpuLevel::kAvx2Vnni: return cpu_level_supported(CpuLevel::kAvx2) && f.avx_vnni;
    case CpuLevel::kAvx512:
      return cpu_level_supported(CpuLevel::kAvx2) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
    case CpuLevel::kAmx:
      return cpu_level_supported(CpuLevel::kAvx512) && f.avx512bf16 && f.amx_tile && f.amx_bf16 && f.amx_permitted;
    case CpuLevel::kNeon: return f.neon;
  }
  return false;
}

CpuLevel best_cpu_level() {
  for (CpuLevel l : {CpuLevel::kAmx, CpuLevel::kAvx512, CpuLevel::kAvx2Vnni, CpuLevel::kAvx2, CpuLevel::kNeon})
    if (cpu_level_supported(l)) return l;
  return CpuLevel::kScalar;
}

void set_cpu_level(CpuLevel level) {
  if (!cpu_level_supported(level))
    throw Error(std::string("CPU level ") + cpu_level_name(level) + " is not supported by this machine (features: " +
                cpu_features_string() + ")");
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

CpuLevel cpu_level() {
  const int level = g_level.load(std::memory_order_relaxed);
  if (level >= 0) return static_cast<CpuLevel>(level);
  const char* env = std::getenv("ONELLM_CPU");
  if (env != nullptr && *env != '\0') {
    const CpuLevel wanted = cpu_level_from_name(env);
    if (!cpu_level_supported(wanted))
      throw Error(std::string("ONELLM_CPU=") + env + ": this machine cannot run it (features: " +
                  cpu_features_string() + ")");
    set_cpu_level(wanted);
    return wanted;
  }
  const CpuLevel best = best_cpu_level();
  g_level.store(static_cast<int>(best), std::memory_order_relaxed);
  return best;
}

}  // namespace onellm
