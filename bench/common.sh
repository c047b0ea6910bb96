# Shared by the bench/*/run.sh scripts (sourced, with ROOT, BUILD and a
# log function set): the llama.cpp reference tools, our binaries, the model.

# Prints the prefix of the llama.cpp build that has llama-bench,
# llama-batched-bench and llama-server: same commit and flags as our library.
bench_llama_prefix() {
  "$ROOT/scripts/llama-cpp.sh" --with-bench-tools | tail -1
}

# bench_build TARGET: builds our library, the model maker and bench program
# TARGET in $BUILD; sets LIB, MKMODEL and BENCH. When the build fails but
# all three exist from before, it says so and goes on with them.
bench_build() {
  local target=$1 blog="$BUILD/$1-build.log"
  LIB="$BUILD/src/libwasi_nn_llamacpp.so"
  MKMODEL="$BUILD/tools/mkmodel/wasi-nn-llama-mkmodel"
  BENCH="$BUILD/bench/$target"
  [ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] || {
    echo "run.sh: no configured build in $BUILD (run scripts/build.sh first)" >&2; exit 1; }
  if ! cmake --build "$BUILD" --target wasi_nn_llamacpp wasi-nn-llama-mkmodel "$target" >"$blog" 2>&1; then
    if [ -f "$LIB" ] && [ -x "$MKMODEL" ] && [ -x "$BENCH" ]; then
      log "build failed (see $blog); using the binaries already built"
    else
      tail -30 "$blog" >&2; exit 1
    fi
  fi
}

# bench_model PATH [MKMODEL ARGS...]: the SmolLM-135M-shaped q8_0 model with
# random weights (docs/mkmodel.md), generated into PATH if it is missing.
bench_model() {
  local path=$1; shift
  [ -f "$path" ] && return 0
  log "generating $path"
  mkdir -p "$(dirname "$path")"
  "$MKMODEL" --preset 135m "$@" -q -o "$path" >/dev/null
}
