#!/usr/bin/env bash
# Installs onellm's build and test dependencies (Debian 12 packages) and builds
# the release preset. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config libpcre2-dev nlohmann-json3-dev libtomlplusplus-dev libsqlite3-dev libgtest-dev
          python3 python3-numpy python3-torch python3-jsonschema python3-jinja2)
scripts/apt-install-missing.sh "${PACKAGES[@]}"

cmake --preset release >/dev/null
cmake --build --preset release

# Ollama's JavaScript client library, for tests/py/ollama_js_client_test.py
# (tests only; the test skips without node and npm or when the registry is
# out of reach).
if command -v npm >/dev/null && [ ! -d build/js/node_modules/ollama ]; then
  mkdir -p build/js
  (cd build/js && npm install --no-audit --no-fund --silent ollama@0.6.4 >/dev/null) ||
    echo "setup: 'npm install ollama' failed; its client test will be skipped" >&2
fi
