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
