#!/usr/bin/env bash
# ASan + UBSan build (clang) and a subset of the tests that exercise parsers
# and memory-heavy paths (GGUF, tokenizers, templates, model loading, kernels,
# grammar, context store, HTTP). The same build holds the libFuzzer targets
# (scripts/fuzz.sh), so CI compiles the sanitized library once.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ >/dev/null || [ ! -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libfuzzer-14-dev >/dev/null
fi
cmake --preset asan >/dev/null
cmake --build --preset asan
[ "${1:-}" = "--build-only" ] && exit 0
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --preset asan -R "${1:-Gguf|Model|PackedWeights|FastMatmul.Groups|FastMatmul.FloatWeights|FastAccumulate|Attention|Tokeniz|ChatTemplate|Kernel|Quant|Sampler|StopString|Engine|Grammar|Context|Http|ServiceConfig|SessionStore}"
