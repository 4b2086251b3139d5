#!/usr/bin/env bash
# The whole test suite: set up, build, run every test (GoogleTest + Python
# reference checks) with CTest. This is what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --preset release "$@"
