#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a while
# (default 20 s; scripts/fuzz.sh 600 for a longer session).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
if ! command -v clang++ >/dev/null || [ ! -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libfuzzer-14-dev >/dev/null
fi
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build-fuzz/corpus
for fuzzer in build-fuzz/fuzz/*_fuzz; do
  name=$(basename "$fuzzer")
  mkdir -p "build-fuzz/corpus/$name"
  echo "fuzz: $name for ${seconds}s" >&2
  "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 "build-fuzz/corpus/$name" 2>&1 | tail -3
done
