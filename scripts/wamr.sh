#!/usr/bin/env bash
# Builds WAMR's iwasm with the wasi-nn host module, offline, from the WAMR
# 2.4.5 source archive in ../shared/third_party/wamr (unmodified; see its
# README), plus the shared runtime library libiwasm.so that iwasm links and
# that our multi-instance host (tests/wamr/multi_host.c) embeds.
#
# The build lives outside the work tree, keyed by the archive's commit like
# llama.cpp's, so a second run only checks that it is there:
#   ${WASI_NN_LLAMA_CACHE:-~/.cache/wasi-nn-llama}/wamr-<commit>/
#     src/       the extracted archive (read it: core/iwasm/libraries/wasi-nn/src)
#     stubs/     empty cJSON and llama.cpp projects for WAMR's FetchContent
#     build/     iwasm, libiwasm.so
#     include/   -> src/core/iwasm/include (wasm_export.h)
#
#   scripts/wamr.sh                 # prints the prefix on its last line
#   WAMR_ARCHIVE=/path/wamr-2.4.5.tar.gz scripts/wamr.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAMR_VERSION="2.4.5"
WAMR_COMMIT="25bd7eb63e828e4bd242cc9b38d260b4b31c6605"
ARCHIVE="${WAMR_ARCHIVE:-$ROOT/../shared/third_party/wamr/wamr-$WAMR_VERSION.tar.gz}"
CACHE_ROOT="${WASI_NN_LLAMA_CACHE:-$HOME/.cache/wasi-nn-llama}"
PREFIX="$CACHE_ROOT/wamr-$WAMR_COMMIT"
JOBS="${JOBS:-$(nproc)}"

log() { printf '[wamr] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$ARCHIVE" ] || die "WAMR source archive not found: $ARCHIVE"
mkdir -p "$PREFIX"
# One build at a time per cache (a test and a benchmark may start together).
exec 9>"$PREFIX.lock"
flock 9

if [ -f "$PREFIX/ok" ] && [ -x "$PREFIX/build/iwasm" ] && [ -f "$PREFIX/build/libiwasm.so" ]; then
  echo "$PREFIX"
  exit 0
fi

# ---- source ------------------------------------------------------------------
# The archive names its commit in the file COMMIT; refuse anything else, as
# scripts/llama-cpp.sh does for llama.cpp.
got=$(tar -xzOf "$ARCHIVE" "wamr-$WAMR_VERSION/COMMIT" 2>/dev/null | tr -d '[:space:]') \
  || die "$ARCHIVE has no wamr-$WAMR_VERSION/COMMIT"
[ "$got" = "$WAMR_COMMIT" ] || die "$ARCHIVE is commit $got, expected $WAMR_COMMIT: refusing to build"
rm -rf "$PREFIX/src" "$PREFIX/build" "$PREFIX/stubs"
mkdir -p "$PREFIX/src"
tar -xzf "$ARCHIVE" -C "$PREFIX/src" --strip-components=1
ln -sfn src/core/iwasm/include "$PREFIX/include"
log "source at $PREFIX/src (WAMR $WAMR_VERSION, commit $WAMR_COMMIT)"

# ---- FetchContent stubs ---------------------------------------------------------
# WAMR's cmake refuses WAMR_BUILD_WASI_NN=1 unless a backend is selected, and
# selecting the llama.cpp one makes it FetchContent cJSON and llama.cpp to
# build its own libwasi_nn_llamacpp.so, which we replace and never build (we
# build only iwasm and its runtime library). Empty INTERFACE targets satisfy
# the configure step without any download.
mkdir -p "$PREFIX/stubs/cjson" "$PREFIX/stubs/llamacpp"
cat >"$PREFIX/stubs/cjson/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.14)
project(cjson_stub C)
add_library(cjson INTERFACE)
EOF
cat >"$PREFIX/stubs/llamacpp/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.14)
project(llamacpp_stub C)
add_library(common INTERFACE)
add_library(ggml INTERFACE)
add_library(llama INTERFACE)
EOF

# ---- build -------------------------------------------------------------------
# WAMR_BUILD_SIMD=0: with SIMD the interpreter needs SIMDe, another download.
# $ORIGIN keeps iwasm and libiwasm.so movable together.
log "configuring iwasm with the wasi-nn host (wasi_ephemeral_nn)"
cmake -S "$PREFIX/src/product-mini/platforms/linux" -B "$PREFIX/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DWAMR_BUILD_WASI_NN=1 \
  -DWAMR_BUILD_WASI_EPHEMERAL_NN=1 \
  -DWAMR_BUILD_WASI_NN_LLAMACPP=1 \
  -DWAMR_BUILD_SIMD=0 \
  -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
  -DFETCHCONTENT_SOURCE_DIR_CJSON="$PREFIX/stubs/cjson" \
  -DFETCHCONTENT_SOURCE_DIR_LLAMACPP="$PREFIX/stubs/llamacpp" \
  -DCMAKE_BUILD_RPATH='$ORIGIN' \
  >"$PREFIX/configure.log" 2>&1 || { cat "$PREFIX/configure.log" >&2; die "configure failed"; }
log "building iwasm and libiwasm.so with $JOBS jobs (about a minute)"
cmake --build "$PREFIX/build" -j "$JOBS" --target iwasm vmlib >"$PREFIX/build.log" 2>&1 \
  || { tail -50 "$PREFIX/build.log" >&2; die "build failed"; }
[ -x "$PREFIX/build/iwasm" ] && [ -f "$PREFIX/build/libiwasm.so" ] || die "build made no iwasm / libiwasm.so"
# Our libwasi_nn_llamacpp.so must be the one iwasm opens: WAMR's own must not exist.
[ ! -e "$PREFIX/build/libwasi_nn_llamacpp.so" ] || die "WAMR built its own libwasi_nn_llamacpp.so"
echo "$WAMR_COMMIT" >"$PREFIX/commit"
touch "$PREFIX/ok"
log "built $PREFIX/build/iwasm"
echo "$PREFIX"
