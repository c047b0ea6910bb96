# Shared by the bench/*/run.sh scripts (sourced, with ROOT, BUILD and a
# log function set): the llama.cpp reference tools, our binaries, the model.

# Prints the prefix of the llama.cpp build that has llama-bench,
# llama-batched-bench and llama-server: same commit and flags as our library.
bench_llama_prefix() {
  "$ROOT/scripts/llama-cpp.sh" --with-bench-tools | tail -1
}

# bench_llama_tools TOOL...: sets LLAMA_BIN to that build's bin folder and
# stops the script if any TOOL is missing there.
bench_llama_tools() {
  LLAMA_BIN="$(bench_llama_prefix)/build/bin"
  local t
  for t in "$@"; do
    [ -x "$LLAMA_BIN/$t" ] || { echo "run.sh: $LLAMA_BIN/$t missing" >&2; exit 1; }
  done
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

# Measuring on a shared machine. A measured command counts only if, while it
# ran, other processes used less than MAX_FOREIGN (a fraction; the caller
# sets it) of the machine's CPU time: ggml's threads spin on barriers, so a
# core taken by anyone else slows a run several times over. A round with a
# disturbed command is dropped and run again by the caller. Processes whose
# ids are in MEASURE_OWN_PIDS (a bench's own competitors) do not count as
# others.
CLK=$(getconf CLK_TCK)
NCPU=$(nproc)
busy_ticks() {
  local b p t
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat)
  for p in ${MEASURE_OWN_PIDS:-}; do
    # utime and stime: fields 14 and 15, counted after the ")" that ends
    # the command name (which may hold spaces).
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    b=$((b - ${t:-0}))
  done
  echo "$b"
}
# measure OUTFILE CMD...: runs CMD (stdout to OUTFILE); fails the script if
# CMD fails; returns 1 if the run was disturbed.
measure() {
  local out=$1; shift
  local b0 b1 wall user sys verdict
  b0=$(busy_ticks)
  { TIMEFORMAT='%3R %3U %3S'; time "$@" >"$out" 2>"$out.err"; } 2>"$out.time" ||
    { cat "$out.err" >&2; echo "run.sh: failed: $*" >&2; exit 1; }
  b1=$(busy_ticks)
  read -r wall user sys <"$out.time"
  verdict=$(awk -v b=$((b1 - b0)) -v clk="$CLK" -v u="$user" -v s="$sys" -v w="$wall" -v n="$NCPU" -v max="$MAX_FOREIGN" \
      -v what="$(basename "$1") ${*:2:8}" \
    'BEGIN { f = (b / clk - u - s) / (w * n); if (f < 0) f = 0
             if (f > max) { printf "disturbed (others used %.0f%% of the CPU): %s", 100 * f, what; exit 1 } }') ||
    { log "$verdict"; return 1; }
}
# Waits (up to QUIET_WAIT seconds in all) for 3 quiet seconds.
waited=0
wait_quiet() {
  local b0 b1 f
  while :; do
    b0=$(busy_ticks); sleep 3; b1=$(busy_ticks)
    f=$(awk -v b=$((b1 - b0)) -v clk="$CLK" -v n="$NCPU" 'BEGIN { printf "%d", 100 * b / clk / (3 * n) }')
    if awk -v f="$f" -v max="$MAX_FOREIGN" 'BEGIN { exit !(f / 100 <= max) }'; then return 0; fi
    if ((waited >= QUIET_WAIT)); then return 0; fi
    if ((waited % 60 == 0)); then log "waiting for a quiet machine (${f}% busy)"; fi
    waited=$((waited + 3))
  done
}
