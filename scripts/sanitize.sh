#!/usr/bin/env bash
# ASan + UBSan build and a subset of the tests that exercise parsers and
# memory-heavy paths (GGUF, tokenizers, templates, model loading, kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset asan >/dev/null
cmake --build --preset asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --preset asan -R "${1:-Gguf|Model|Tokeniz|ChatTemplate|Kernel|Quant|Sampler|StopString|Engine|Grammar|Context|Http|ServiceConfig|SessionStore}"
