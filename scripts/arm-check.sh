#!/usr/bin/env bash
# The AArch64 kernel level, checked on x86 machines: cross-compiles the
# kernel layer (src/kernels, which needs only header-only parts of src/base)
# and tests/arm/kernels_check.cpp with aarch64-linux-gnu-g++, and runs the
# check under qemu-user twice: on a Cortex-A53 model (ARMv8.0, no dotprod:
# the plain NEON table) and on qemu's "max" model (dotprod and i8mm: all
# three tables).
# No arm64 libraries are needed, so no GoogleTest: the check is standalone.
# Usage: scripts/arm-check.sh [-j N]   (build parallelism, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=2
[ "${1:-}" = "-j" ] && JOBS="$2"

scripts/apt-install-missing.sh g++-aarch64-linux-gnu qemu-user

CXX=aarch64-linux-gnu-g++
command -v ccache >/dev/null && CXX="ccache $CXX"
OUT=build-arm
rm -rf "$OUT/obj"  # no stale objects of renamed sources; ccache keeps rebuilds cheap
mkdir -p "$OUT/obj"
export CXX OUT
# One object per source; ccache makes unchanged ones free.
# The quantizers' scale searches take -ffp-contract=off, as in CMakeLists.txt.
compile() {
  local extra=""
  case "$1" in *quant_k_search.cpp | *quant_k_lanes.cpp | *quant_iq4.cpp) extra=-ffp-contract=off ;; esac
  $CXX -std=c++20 -O2 -Wall -Wextra -Werror $extra -Isrc -Itests -c "$1" -o "$OUT/obj/$(basename "$1" .cpp).o"
}
export -f compile
start=$(date +%s)
printf '%s\n' src/kernels/*.cpp tests/arm/kernels_check.cpp | xargs -P "$JOBS" -I{} bash -c 'compile {}'
$CXX -o "$OUT/kernels_check" "$OUT"/obj/*.o -pthread
echo "arm-check: built $OUT/kernels_check in $(($(date +%s) - start)) s"

run() {
  local cpu=$1 expect=$2 t0
  t0=$(date +%s)
  echo "arm-check: qemu-aarch64 -cpu $cpu"
  qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$OUT/kernels_check" "$expect"
  echo "arm-check: -cpu $cpu passed in $(($(date +%s) - t0)) s"
}
run cortex-a53 --expect-no-dotprod --expect-no-i8mm
run max --expect-dotprod --expect-i8mm
