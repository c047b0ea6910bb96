#!/usr/bin/env bash
# Many wasm instances, one batch (docs/bench.md, "WAMR instances"): the
# aggregate decode throughput of N instances of the chat guest
# (examples/guest/chat.c) running at once in N threads of one WAMR host
# (examples/host/many_instances.c, WAMR 2.4.5's embedding API and wasi-nn
# host, our libwasi_nn_llamacpp.so), against the same N instances run one
# after another in the same process. Same generated 135M q8_0 model, same
# prompts (checked: every guest turn served, the same tokens counted by the
# loop and the guests, one served model), interleaved in the same run. The
# replies' text is compared and reported, not required equal: on random
# weights the logits are nearly flat, and a decode of N sequences sums the
# same products in another order than a decode of one, so greedy text can
# part after some tokens (on stories260K it does not: CI's wamr.many_instances
# holds the text equal with --check).
#
#   bench/wamr/run.sh [-N 8] [-n 64] [-t 2] [-r 5] [--build DIR] [--model GGUF]
#
# Each round is one many_instances process (-n N -r 1 --check-counts): instance i
# chats 3 turns (its own opening line, then two follow-ups), at most G
# tokens per reply, greedy, chatml template, one graph config for all with
# max_concurrent N and T threads; the process runs the N instances together
# and one after another (which goes first alternates from round to round) and
# reports, for each way, generated tokens / wall time from the first
# instance's start to the last one's end. A round in which other processes
# used more than MAX_FOREIGN (default 0.05) of the CPU is dropped and rerun
# (at most 4R attempts). Prints the medians and their ratio.
# Exits 0 whatever the ratio; 1 if something could not run or a check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=8
G=64
T=2
R=5
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""

while [ $# -gt 0 ]; do
  case "$1" in
    -N) N=$2; shift 2 ;;
    -n) G=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$R" -ge 1 ] || { echo "run.sh: -r must be >= 1" >&2; exit 2; }
MODEL=${MODEL:-$BUILD/models/bench-135m-q8_0.gguf}
command -v python3 >/dev/null || { echo "run.sh: python3 is needed to read the results" >&2; exit 1; }

log() { printf '[bench/wamr] %s\n' "$*" >&2; }

. "$ROOT/bench/common.sh"

# 1. WAMR (cached outside the tree) and the guest.
WAMR=$("$ROOT/scripts/wamr.sh" | tail -n 1)
OUT_DIR="$BUILD/guest" "$ROOT/scripts/build-guest.sh" >/dev/null 2>"$BUILD/guest-build.log" ||
  { cat "$BUILD/guest-build.log" >&2; exit 1; }
GUEST="$BUILD/guest/chat.wasm"

# 2. Our library, the model maker and the host, against that WAMR.
[ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] || {
  echo "run.sh: no configured build in $BUILD (run scripts/build.sh first)" >&2; exit 1; }
cmake "$BUILD" -DWASI_NN_LLAMA_WAMR_DIR="$WAMR" >/dev/null
bench_build many_instances
HOST="$BUILD/examples/host/many_instances"
[ -x "$HOST" ] || { echo "run.sh: $HOST was not built" >&2; exit 1; }

# 3. The model.
bench_model "$MODEL"

# 4. Rounds, on a snapshot of the library (a rebuild in the tree during the
# run must not swap binaries between rounds). WAMR's host opens it by its
# bare name, so its folder goes on LD_LIBRARY_PATH.
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mkdir "$OUT/lib"
cp "$(readlink -f "$LIB")" "$OUT/lib/libwasi_nn_llamacpp.so"
export LD_LIBRARY_PATH="$OUT/lib:$WAMR/build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
MAX_FOREIGN=${MAX_FOREIGN:-0.05}
QUIET_WAIT=${QUIET_WAIT:-600}
CONFIG="{\"chat_template\":\"chatml\",\"temp\":0,\"max_tokens\":$G,\"ctx_size\":1024,\"max_concurrent\":$N,\"threads\":$T,\"threads_batch\":$T}"

log "model $MODEL, N=$N instances, 3 turns of at most $G tokens each, threads=$T, $R rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))"
clean=0 attempts=0 dropped=0
while ((clean < R && attempts < R * 4)); do
  attempts=$((attempts + 1))
  i=$((clean + 1))
  wait_quiet
  order=()
  ((i % 2)) || order=(--sequential-first)
  if measure "$OUT/round-$i.jsonl" "$HOST" --check-counts -n "$N" -r 1 "${order[@]}" --config "$CONFIG" \
      "$GUEST" "$MODEL"; then
    clean=$i
    log "round $i/$R done"
  else
    dropped=$((dropped + 1))
    rm -f "$OUT/round-$i".*
  fi
done
((clean > 0)) || { echo "run.sh: no undisturbed round in $attempts attempts" >&2; exit 1; }
((clean == R)) || log "warning: only $clean undisturbed rounds of $R in $attempts attempts"

# 5. The table.
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 - "$OUT" "$clean" "$N" "$G" "$T" "$MODEL" "$REV" "$(nproc)" "$CPU" "$dropped" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, statistics, sys
out, R, N, G, T, model, rev, ncpu, cpu, dropped, load = sys.argv[1:12]
R = int(R)
runs = {"concurrent": [], "sequential": []}
for i in range(1, R + 1):
    last = {}
    for line in open(os.path.join(out, f"round-{i}.jsonl")):
        j = json.loads(line)
        if "run" in j:
            last[j["run"]] = j
    for k in runs:
        runs[k].append(last[k])
med = lambda k, f: statistics.median(r[f] for r in runs[k])
together, alone = med("concurrent", "tokens_per_s"), med("sequential", "tokens_per_s")
print(f"WAMR instances: {N} instances of the chat guest on WAMR 2.4.5 (fast interpreter), one process, "
      f"model {os.path.basename(model)}, 3 turns each of at most {G} tokens, greedy, threads {T}, "
      f"{R} rounds (interleaved); tree {rev}, {ncpu} CPUs ({cpu}), load at the end {load}; "
      f"{dropped} disturbed rounds dropped")
print()
print("| way | generated tokens/s, all instances (median) | wall ms (median) | tokens per run | avg busy slots per llama_decode |")
print("|---|---|---|---|---|")
for k, name in (("concurrent", f"{N} instances at once"), ("sequential", f"{N} instances one after another")):
    print(f"| {name} | {med(k, 'tokens_per_s'):.2f} | {med(k, 'wall_ms'):.0f} | "
          f"{med(k, 'generated_tokens'):.0f} | {med(k, 'avg_busy_slots'):.2f} |")
print()
# A round's first run is its own reference; its second says whether they matched.
same = sum(1 for i in range(R) if runs["concurrent"][i]["replies_equal"] and runs["sequential"][i]["replies_equal"])
print(f"at once / one after another: {together / alone if alone else 0:.3f}x "
      f"(graphs_sharing {runs['concurrent'][0]['graphs_sharing']:.0f}: one model and one decode loop for all {N} "
      f"instances; every guest turn served, generated tokens = the guests' output_tokens; replies the same both "
      f"ways in {same} of {R} rounds: greedy text on random weights can part between a batch "
      f"of {N} and a batch of 1, bench/wamr/run.sh says why)")
print("per round t/s, at once:", " ".join(f"{r['tokens_per_s']:.2f}" for r in runs["concurrent"]))
print("per round t/s, one after another:", " ".join(f"{r['tokens_per_s']:.2f}" for r in runs["sequential"]))
EOF
