#!/usr/bin/env bash
# Fetches llama.cpp from the node-llama-cpp npm package, checks the pinned
# commit and builds it as position-independent static libraries plus the
# reference tools (llama-completion, llama-embedding, llama-bench, llama-batched-bench,
# llama-server, ggml-rpc-server) that tests and benchmarks compare against.
#
# The build lives outside the work tree, keyed by commit and variant, so a
# second run on the same machine only checks that it is there.
#
#   scripts/llama-cpp.sh            # CPU build (default)
#   LLAMA_VARIANT=cuda scripts/llama-cpp.sh   # with the CUDA backend
#   LLAMA_VARIANT=tsan scripts/llama-cpp.sh   # instrumented for ThreadSanitizer
#
# Prints the build prefix on its last line.
set -euo pipefail

NPM_PACKAGE="node-llama-cpp@3.21.1"
LLAMA_COMMIT="80fb11ac73e66d89eae2c6a91d8a77428fa733ed"
VARIANT="${LLAMA_VARIANT:-cpu}"
CACHE_ROOT="${WASI_NN_LLAMA_CACHE:-$HOME/.cache/wasi-nn-llama}"
PREFIX="$CACHE_ROOT/llama.cpp-$LLAMA_COMMIT-$VARIANT"
SRC="$CACHE_ROOT/llama.cpp-$LLAMA_COMMIT-src"
BUILD="$PREFIX/build"
JOBS="${JOBS:-$(nproc)}"

# What the reference tools and our libraries need; a tool is only built when
# a caller asks for it, since llama-server alone takes minutes on two cores.
TARGETS_CORE=(llama llama-common ggml ggml-rpc llama-completion llama-simple llama-embedding ggml-rpc-server)
TARGETS_BENCH=(llama-bench llama-batched-bench llama-server)

log() { printf '[llama.cpp] %s\n' "$*" >&2; }

fetch_source() {
  if [ -f "$SRC/.wasi-nn-llama-ok" ]; then return; fi
  local tmp
  tmp=$(mktemp -d)
  log "fetching $NPM_PACKAGE from the npm registry"
  (cd "$tmp" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
  tar -xzf "$tmp"/node-llama-cpp-*.tgz -C "$tmp" package/llama/gitRelease.bundle
  local head
  head=$(git bundle list-heads "$tmp/package/llama/gitRelease.bundle" | awk '$2=="HEAD"{print $1}')
  if [ "$head" != "$LLAMA_COMMIT" ]; then
    log "bundle HEAD is $head, expected $LLAMA_COMMIT: refusing to build"
    exit 1
  fi
  rm -rf "$SRC"
  git clone --quiet "$tmp/package/llama/gitRelease.bundle" "$SRC"
  git -C "$SRC" -c advice.detachedHead=false checkout --quiet "$LLAMA_COMMIT"
  local got
  got=$(git -C "$SRC" rev-parse HEAD)
  [ "$got" = "$LLAMA_COMMIT" ] || { log "checked-out commit $got != $LLAMA_COMMIT"; exit 1; }
  touch "$SRC/.wasi-nn-llama-ok"
  rm -rf "$tmp"
  log "source at $SRC (commit $LLAMA_COMMIT)"
}

# ggml's AMX kernels (compiled in by GGML_NATIVE on a CPU that reports AMX)
# crash at this commit: SIGSEGV in ggml_backend_amx_mul_mat on the first
# q8_0 matmul, in llama.cpp's own tools as in our library. They are left out
# on such CPUs; elsewhere the flags would change nothing and are not passed,
# so a cache built on a machine without AMX stays valid.
arch_flags() {
  if [ "$(uname -m)" = x86_64 ] && grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
    echo "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  fi
}

configure() {
  local flags; flags=$(arch_flags)
  # A build configured with other compiler flags is configured again (and
  # so rebuilt); one without a record was made with none.
  local have=""; [ -f "$PREFIX/arch-flags" ] && have=$(cat "$PREFIX/arch-flags")
  if [ -f "$BUILD/build.ninja" ] && [ "$have" = "$flags" ]; then return; fi
  local extra=()
  if [ -n "$flags" ]; then
    extra+=("-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags")
    log "CPU reports AMX: building without ggml's AMX kernels ($flags)"
  fi
  case "$VARIANT" in
    cpu) ;;
    cuda) extra+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}") ;;
    # Instrumented throughout, so that ThreadSanitizer sees ggml's own
    # synchronisation and reports only real races.
    tsan) extra+=(-DLLAMA_SANITIZE_THREAD=ON -DGGML_SANITIZE_THREAD=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    *) log "unknown LLAMA_VARIANT '$VARIANT' (cpu, cuda or tsan)"; exit 1 ;;
  esac
  log "configuring $VARIANT build in $BUILD"
  cmake -S "$SRC" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DGGML_RPC=ON \
    -DGGML_OPENMP=OFF \
    -DGGML_NATIVE=ON \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    "${extra[@]}" >"$PREFIX/configure.log" 2>&1 || { cat "$PREFIX/configure.log" >&2; exit 1; }
  echo "$flags" >"$PREFIX/arch-flags"
}

build() {
  local targets=("${TARGETS_CORE[@]}")
  if [ "${1:-}" = "--with-bench-tools" ]; then targets+=("${TARGETS_BENCH[@]}"); fi
  log "building ${targets[*]} with $JOBS jobs (first time: several minutes)"
  cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" >"$PREFIX/build.log" 2>&1 \
    || { tail -50 "$PREFIX/build.log" >&2; exit 1; }
}

# Facts that our CMake reads instead of asking git again.
record_facts() {
  ln -sfn "$SRC" "$PREFIX/src"
  echo "$LLAMA_COMMIT" >"$PREFIX/commit"
  git -C "$SRC" rev-list --count HEAD >"$PREFIX/build-number"
}

mkdir -p "$CACHE_ROOT" "$PREFIX"
fetch_source
configure
build "${1:-}"
record_facts
echo "$PREFIX"
