#!/usr/bin/env bash
# Runs each libFuzzer target of the sanitizer build (scripts/sanitize.sh
# builds it) for a while: default 20 s; scripts/fuzz.sh 600 for a longer
# session. Corpora grow under build-asan/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
scripts/sanitize.sh --build-only
mkdir -p build-asan/corpus
for fuzzer in build-asan/fuzz/*_fuzz; do
  name=$(basename "$fuzzer")
  mkdir -p "build-asan/corpus/$name"
  echo "fuzz: $name for ${seconds}s" >&2
  "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 "build-asan/corpus/$name" 2>&1 | tail -3
done
