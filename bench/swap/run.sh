#!/usr/bin/env bash
# Hot-swap benchmark (docs/bench.md, "Hot swap"): during continuous C-way
# greedy streaming traffic on one graph, the 135M-shaped q8_0 model (seed
# 42) is swapped for a second one (seed 7, same vocabulary) with swap_graph.
# Rounds alternate a run with the swap and one without (the reference).
#
#   bench/swap/run.sh [-c 8] [-n 64] [-t 2] [-w 60] [-r 3] [--preset 135m] [--build DIR] [--config KEYS]
#
# -w is the window (seconds) centred on the swap whose throughput is
# compared; traffic runs w/2 + 15 s before and after it. --preset tiny
# makes two small models instead (a smoke run). --config adds host-config
# keys ('"prefill_chunk":0': a whole batch of prompt per step). Prints the medians: the
# stall (the longest gap between served tokens from the swap's start to 5 s
# after its end) against one decode step plus the new model's first
# prefill, and the window's tokens/s with and without the swap.
# Exits 0 whether or not the target is met; 1 if something could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
C=8 N=64 T=2 W=60 R=3 PRESET=135m EXTRA=""
BUILD=${BUILD_DIR:-$ROOT/build}
while [ $# -gt 0 ]; do
  case "$1" in
    -c) C=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -w) W=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --config) EXTRA=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || { echo "run.sh: python3 is needed to read the results" >&2; exit 1; }
log() { printf '[bench/swap] %s\n' "$*" >&2; }
. "$ROOT/bench/common.sh"

bench_build bench_swap
if [ "$PRESET" = 135m ]; then
  A=$BUILD/models/bench-135m-q8_0.gguf
  B=$BUILD/models/bench-135m-q8_0-seed7.gguf
  bench_model "$A"
  bench_model "$B" --seed 7
else
  A=$BUILD/models/bench-$PRESET-swap-a.gguf
  B=$BUILD/models/bench-$PRESET-swap-b.gguf
  mkdir -p "$BUILD/models"
  [ -f "$A" ] || "$MKMODEL" --preset "$PRESET" --chat-template chatml --seed 42 -q -o "$A" >/dev/null
  [ -f "$B" ] || "$MKMODEL" --preset "$PRESET" --chat-template chatml --seed 7 -q -o "$B" >/dev/null
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
SIDE=$(python3 -c "print($W / 2 + 15)")
log "models $(basename "$A") -> $(basename "$B"), $C streams, n=$N, threads=$T, window ${W}s, $R rounds"
for i in $(seq 1 "$R"); do
  if ((i % 2)); then order="swap no-swap"; else order="no-swap swap"; fi
  for kind in $order; do
    flag=""; [ "$kind" = no-swap ] && flag=--no-swap
    "$BENCH" "$LIB" "$A" "$B" -c "$C" -n "$N" -t "$T" --before "$SIDE" --after "$SIDE" --window "$W" $flag ${EXTRA:+--config "$EXTRA"} \
      >"$OUT/$kind-$i.json" || { cat "$OUT/$kind-$i.json" >&2; echo "run.sh: $kind round $i failed" >&2; exit 1; }
    log "round $i $kind: $(cat "$OUT/$kind-$i.json")"
  done
done
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$OUT" "$R" "$C" "$N" "$T" "$W" "$PRESET" "$REV" "$(nproc)" <<'PY'
import json, os, statistics, sys
out, R, C, N, T, W, preset, rev, ncpu = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
def rows(kind):
    return [json.load(open(os.path.join(out, f"{kind}-{i}.json"))) for i in range(1, R + 1)]
s, n = rows("swap"), rows("no-swap")
med = lambda rs, k: statistics.median(r[k] for r in rs)
stall, step, prefill = med(s, "stall_ms"), med(s, "decode_step_ms"), med(s, "first_prefill_ms")
print(f"hot swap: {preset} preset (135m: q8_0), seed 42 -> seed 7, {C} greedy streams, max_tokens {N}, {T} threads, "
      f"{R} rounds; tree {rev}, {ncpu} CPUs")
print()
print("| figure (median over rounds) | with the swap | without |")
print("|---|---|---|")
print(f"| longest gap between served tokens, swap start to 5 s after its end (ms) | {stall:.1f} | |")
print(f"| longest gap over the steady traffic before (ms) | {med(s, 'steady_max_gap_ms'):.1f} | {med(n, 'steady_max_gap_ms'):.1f} |")
print(f"| decode step, one batched step (ms) | {step:.2f} | {med(n, 'decode_step_ms'):.2f} |")
print(f"| the new model's first prefill (ms) | {prefill:.1f} | |")
print(f"| swap_graph call (load + switch, ms) | {med(s, 'swap_ms'):.1f} | |")
print(f"| tokens/s over the {W} s window around the swap | {med(s, 'window_tps'):.2f} | {med(n, 'window_tps'):.2f} |")
ratio = med(s, "window_tps") / med(n, "window_tps") if med(n, "window_tps") else 0
print()
print(f"target: stall < decode step + first prefill = {step + prefill:.1f} ms: "
      f"{'met' if stall < step + prefill else 'MISSED'}; throughput with ÷ without the swap: {ratio:.3f}")
PY
