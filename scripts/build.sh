#!/usr/bin/env bash
# Installs what is missing, builds llama.cpp (cached outside the tree) and
# this project into build/ (or $BUILD_DIR). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
scripts/install-deps.sh
prefix=$(scripts/llama-cpp.sh | tail -n 1)
cmake -S . -B "$BUILD_DIR" -G Ninja -DLLAMA_CPP_PREFIX="$prefix" "$@" >/dev/null
cmake --build "$BUILD_DIR"
