#!/usr/bin/env bash
# Hostile-neighbour benchmark (docs/bench.md, "Hostile neighbour"; issue #9
# §3): one backend context sends, in a loop, the worst per-request options
# the default caps allow; another context's decode rate on the same model
# and decode loop must stay >= 0.8x its rate alone.
#
#   bench/neighbour/run.sh [-n 64] [-r 5] [-t 2] [-H 1] [--hostile-tokens 32]
#                          [--no-grammar] [--build DIR] [--model GGUF]
#
# Runs bench_neighbour LIB MODEL -n N -r R -t T -H H (bench_neighbour.cpp
# says what each round does): per round the victim's N-token request alone,
# then the same request while H hostile threads run; prints the per-round
# rates, the medians and median(with) / median(alone). The model is the
# generated 135M q8_0 model of the other benchmarks (SmolLM-shaped, 49,152
# tokens, so that the hostile grammar is checked against a real-sized
# vocabulary at every token). A run during which other processes used more
# than MAX_FOREIGN (default 0.10) of the machine's CPU is dropped and run
# again, up to 3 times. Exits 0 whether or not the target is met; 1 if
# something could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=64
R=5
T=2
H=1
HT=32
GRAMMAR=()
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""
TARGET=0.8

while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -H) H=$2; shift 2 ;;
    --hostile-tokens) HT=$2; shift 2 ;;
    --no-grammar) GRAMMAR=(--no-grammar); shift ;;
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
MODEL=${MODEL:-$BUILD/models/bench-135m-q8_0.gguf}
command -v python3 >/dev/null || { echo "run.sh: python3 is needed to read the results" >&2; exit 1; }

log() { printf '[bench/neighbour] %s\n' "$*" >&2; }

. "$ROOT/bench/common.sh"

bench_build bench_neighbour
bench_model "$MODEL"

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cp "$(readlink -f "$LIB")" "$OUT/libwasi_nn_llamacpp.so"
LIB="$OUT/libwasi_nn_llamacpp.so"
MAX_FOREIGN=${MAX_FOREIGN:-0.10}
QUIET_WAIT=${QUIET_WAIT:-600}
log "model $MODEL, N=$N rounds=$R threads=$T hostile threads=$H (load: $(cut -d' ' -f1-3 /proc/loadavg))"
done_ok=0
for attempt in 1 2 3; do
  wait_quiet
  if measure "$OUT/run.jsonl" "$BENCH" "$LIB" "$MODEL" -n "$N" -r "$R" -t "$T" -H "$H" --hostile-tokens "$HT" \
       "${GRAMMAR[@]}"; then
    done_ok=1
    break
  fi
done
((done_ok)) || log "warning: every run was disturbed; the last one is reported"
cat "$OUT/run.jsonl.err" >&2 || true

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
python3 - "$OUT/run.jsonl" "$TARGET" "$REV" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
path, target, rev, ncpu, load = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rounds, summary = [], None
for line in open(path):
    line = line.strip()
    if not line.startswith("{"):
        continue
    j = json.loads(line)
    if j["kind"] == "round":
        rounds.append(j)
    elif j["kind"] == "summary":
        summary = j
if summary is None:
    sys.exit("run.sh: bench_neighbour printed no summary")
print(f"hostile neighbour: model {summary['model']}, victim {summary['n']} tokens greedy, {summary['rounds']} rounds, "
      f"threads {summary['threads']}, {summary['hostile_threads']} hostile thread(s), grammar {summary['grammar']}")
print(f"tree {rev}, {ncpu} CPUs, load average at the end {load}")
print()
print("| round | victim alone t/s | victim with hostile t/s | ratio | hostile requests | hostile tokens |")
print("|---|---|---|---|---|---|")
for r in rounds:
    print(f"| {r['round']} | {r['alone_tg_ts']:.2f} | {r['with_tg_ts']:.2f} | {r['ratio']:.3f} | "
          f"{r['hostile_requests']} | {r['hostile_tokens']} |")
ratio = summary["ratio"]
print()
print(f"median alone {summary['alone_tg_ts']:.2f} t/s, median with the hostile neighbour {summary['with_tg_ts']:.2f} t/s: "
      f"ratio {ratio:.3f} (target >= {target:.2f}: {'met' if ratio >= target else 'MISSED'}); "
      f"hostile errors {summary['hostile_errors']}")
PY
