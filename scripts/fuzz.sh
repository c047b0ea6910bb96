#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, clang, ASan+UBSan, into
# build-fuzz/) and runs each for a bounded time or number of executions.
# A crash, leak, timeout, out-of-memory or sanitizer report fails the run
# and prints the reproducer (its path, base64 and a hexdump) and the command
# that replays it. docs/security.md, "Fuzzing", says what each covers.
#
#   scripts/fuzz.sh                          # every harness, 60 s each
#   FUZZ_TIME=3600 scripts/fuzz.sh fuzz_config          # one, for an hour
#   FUZZ_RUNS=1000000 scripts/fuzz.sh fuzz_config       # a number of executions
#   FUZZ_LEAKS=input scripts/fuzz.sh         # a leak check after every input
#   scripts/fuzz.sh --build-only
#
# Environment: FUZZ_TIME (seconds per harness, default 60), FUZZ_RUNS (stop
# after this many executions instead), FUZZ_TIMEOUT (seconds one input may
# take, default 120), FUZZ_OUT (corpora and findings, default
# build-fuzz/fuzz-out; the corpus grown there is reused by the next run),
# FUZZ_LEAKS (exit: LeakSanitizer checks once, when the run ends, the
# default; input: after every input that allocated more than it freed, which
# makes the ABI harnesses several times slower; off), FUZZ_FLAGS (more
# libFuzzer flags), BUILD_DIR (default build-fuzz).
#
# LeakSanitizer stops the world with ptrace. scripts/test.sh keeps it off in
# the ASan suite because this sandbox refused that intermittently across its
# hundreds of test processes; one check per harness at exit passed 30 runs
# in 30 here under full load. If a run ends in "LeakSanitizer has
# encountered a fatal error", that is the sandbox, not a leak: FUZZ_LEAKS=off.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR="${BUILD_DIR:-build-fuzz}"
HARNESSES=(fuzz_config fuzz_stop fuzz_prompt fuzz_abi_wamr fuzz_abi_legacy)

build_only=0
selected=()
for a in "$@"; do
  case "$a" in
    --build-only) build_only=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) selected+=("$a") ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${HARNESSES[@]}")

# Debian's clang and its libFuzzer runtime (scripts/install-deps.sh).
BUILD_DIR="$BUILD_DIR" scripts/build.sh -DWASI_NN_LLAMA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ || { echo "fuzz: build failed" >&2; exit 1; }
[ "$build_only" = 1 ] && exit 0

OUT="${FUZZ_OUT:-$BUILD_DIR/fuzz-out}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TIME="${FUZZ_TIME:-60}"
TIMEOUT="${FUZZ_TIMEOUT:-120}"
case "${FUZZ_LEAKS:-exit}" in
  exit) LEAKS=1; PER_INPUT=0 ;;
  input|1) LEAKS=1; PER_INPUT=1 ;;
  off|0) LEAKS=0; PER_INPUT=0 ;;
  *) echo "fuzz: FUZZ_LEAKS is exit, input or off" >&2; exit 2 ;;
esac
export ASAN_OPTIONS="detect_leaks=$LEAKS:abort_on_error=0:allocator_may_return_null=1:detect_odr_violation=0:handle_abort=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
export WNL_FUZZ_STATS=1  # each harness prints what it skipped (known_holes.h)

dict_of() {
  case "$1" in
    fuzz_config|fuzz_abi_*) echo "$ROOT/tests/fuzz/config.dict" ;;
    fuzz_stop) echo "$ROOT/tests/fuzz/stop.dict" ;;
    fuzz_prompt) echo "$ROOT/tests/fuzz/prompt.dict" ;;
  esac
}

passed=0
failed=0
summary=()
for h in "${selected[@]}"; do
  bin="$ROOT/$BUILD_DIR/tests/fuzz/$h"
  if [ ! -x "$bin" ]; then
    echo "fuzz: no harness $h (one of: ${HARNESSES[*]})" >&2
    failed=$((failed + 1)); continue
  fi
  corpus="$OUT/corpus/$h"
  artifacts="$OUT/artifacts/$h"
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  limit=(-max_total_time="$TIME")
  [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
  log="$OUT/$h.log"
  echo "=== $h (${FUZZ_RUNS:+$FUZZ_RUNS runs}${FUZZ_RUNS:-$TIME s}, log $log)" >&2
  start=$(date +%s)
  # The first corpus folder gets the new inputs; the committed seeds are read only.
  # shellcheck disable=SC2086
  "$bin" "${limit[@]}" -timeout="$TIMEOUT" -rss_limit_mb=4096 -detect_leaks="$PER_INPUT" -dict="$(dict_of "$h")" -close_fd_mask=1 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_FLAGS:-} \
    "$corpus" "$ROOT/tests/fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, features \2, corpus \3/p' <<<"$last")
  skipped=$(grep -E '^(known hole|skipped past bounds)' "$log" | tr '\n' ';')
  # libFuzzer's findings; slow-unit-* only says an input took over 10 s.
  found=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | head -1)
  if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
    passed=$((passed + 1))
    summary+=("ok     $h: ${execs:-?} executions in ${secs} s; ${cov:-no coverage line}")
    echo "$h: ${execs:-?} executions in ${secs} s; ${cov}; ${skipped}" >&2
    continue
  fi
  failed=$((failed + 1))
  summary+=("FAILED $h: exit $rc after ${secs} s")
  echo "---- $h FAILED (exit $rc); the end of its log:" >&2
  grep -vE '^#[0-9]+|^\s+NEW_FUNC|^INFO:' "$log" | tail -250 >&2
  for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
    [ -f "$f" ] || continue
    echo "---- reproducer $f ($(wc -c <"$f") bytes)" >&2
    echo "base64: $(base64 -w0 "$f")" >&2
    od -A x -t x1z -v "$f" | head -64 >&2
    echo "replay: ASAN_OPTIONS=detect_leaks=0 WNL_FUZZ_TRACE=1 WNL_FUZZ_LOG=info $bin $f" >&2
  done
done

echo >&2
printf '%s\n' "${summary[@]}" >&2
total=$((passed + failed))
echo "fuzz: $((total > 0 ? passed * 100 / total : 0))% tests passed, $failed tests failed out of $total"
[ "$failed" -eq 0 ]
