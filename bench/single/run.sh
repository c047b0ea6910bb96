#!/usr/bin/env bash
# Single-stream benchmark, end to end (docs/bench.md, "Single-stream"):
# prefill and decode tokens/s of one request through libwasi_nn_llamacpp.so
# against llama-bench, same llama.cpp build, same generated 135M q8_0 model,
# same thread count, interleaved in the same run.
#
#   bench/single/run.sh [-p 512] [-n 128] [-t 2] [-r 5] [--build DIR] [--model GGUF]
#
# Each round runs, in alternating order, one process of each:
#   ours        bench_single LIB MODEL -p P -n N -t T -r 1   (warm-up + 1 request:
#               pp P, then tg N after the P-token prompt)
#   ours        bench_single LIB MODEL -p 2 -n N -t T -r 1   (tg N from a near-empty cache)
#   llama-bench -m MODEL -p P -n N -t T -r 1 -o json          (pp P, tg N at depth 0)
#   llama-bench -m MODEL -p 0 -n N -d P -t T -r 1 -o json     (tg N after a P-token
#               context: what our decode does, since it follows the prompt)
# and prints the medians over R rounds with the ratio ours/llama-bench.
# A round during which other processes used more than MAX_FOREIGN (default
# 0.05) of the machine's CPU is dropped and rerun (at most 4R attempts); each
# round first waits for 3 quiet seconds (QUIET_WAIT, default 600 s in all).
# Exits 0 whether or not the target (ratio >= 0.97) is met; 1 if something
# could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
P=${P:-512}
N=${N:-128}
T=${T:-2}
R=${R:-5}
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""
TARGET=0.97
# llama-bench's defaults, passed to both sides explicitly.
NB=2048
NUB=512
FA=auto

while [ $# -gt 0 ]; do
  case "$1" in
    -p) P=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
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

log() { printf '[bench/single] %s\n' "$*" >&2; }

. "$ROOT/bench/common.sh"

# 1. llama.cpp's reference tools, same commit and flags as our library links.
bench_llama_tools llama-bench
LLAMA_BENCH="$LLAMA_BIN/llama-bench"

# 2. Our library, the model maker and the bench program; 3. the model.
bench_build bench_single
bench_model "$MODEL"

# 4. Interleaved rounds, on a snapshot of the library (a rebuild in the tree
# during the run must not swap binaries between rounds).
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cp "$(readlink -f "$LIB")" "$OUT/libwasi_nn_llamacpp.so"
LIB="$OUT/libwasi_nn_llamacpp.so"
MAX_FOREIGN=${MAX_FOREIGN:-0.05}
QUIET_WAIT=${QUIET_WAIT:-600}
run_ours() {
  measure "$OUT/ours-$1.jsonl" "$BENCH" "$LIB" "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA || return 1
  # Decode from an (almost) empty cache, like llama-bench's plain tg: a
  # 2-token prompt (BOS and one word), so tokens are decoded at positions 2..N.
  measure "$OUT/ours0-$1.jsonl" "$BENCH" "$LIB" "$MODEL" -p 2 -n "$N" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA || return 1
}
run_theirs() {
  measure "$OUT/lb-$1.json" "$LLAMA_BENCH" -m "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA \
    -ctk f16 -ctv f16 -o json || return 1
  measure "$OUT/lbd-$1.json" "$LLAMA_BENCH" -m "$MODEL" -p 0 -n "$N" -d "$P" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA \
    -ctk f16 -ctv f16 -o json || return 1
}
log "model $MODEL, P=$P N=$N threads=$T, $R rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))"
clean=0
attempts=0
dropped=0
max_attempts=$((R * 4))
while ((clean < R && attempts < max_attempts)); do
  attempts=$((attempts + 1))
  i=$((clean + 1))
  wait_quiet
  if ((attempts % 2)); then
    run_ours "$i" && run_theirs "$i" && ok=1 || ok=0
  else
    run_theirs "$i" && run_ours "$i" && ok=1 || ok=0
  fi
  if ((ok)); then
    clean=$i
    log "round $i/$R done"
  else
    dropped=$((dropped + 1))
    rm -f "$OUT"/*-"$i".json*
  fi
done
if ((clean == 0)); then
  echo "run.sh: no undisturbed round in $attempts attempts; rerun on a quieter machine (or MAX_FOREIGN=1 to keep disturbed runs)" >&2
  exit 1
fi
((clean == R)) || log "warning: only $clean undisturbed rounds of $R in $attempts attempts"

# 5. The table.
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
python3 - "$OUT" "$clean" "$P" "$N" "$T" "$MODEL" "$TARGET" "$(cut -d' ' -f1-3 /proc/loadavg)" "$REV" "$(nproc)" \
  "$dropped" "$MAX_FOREIGN" <<'EOF'
import json, statistics, sys, os
out, R, P, N, T, model, target, load, rev, ncpu, dropped, max_foreign = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], float(sys.argv[7]), sys.argv[8], sys.argv[9], sys.argv[10], sys.argv[11], float(sys.argv[12])
ours_pp, ours_tg, ours_tg0, lb_pp, lb_tg, lb_tgd = [], [], [], [], [], []
for i in range(1, R + 1):
    for line in open(os.path.join(out, f"ours-{i}.jsonl")):
        j = json.loads(line)
        if j.get("kind") == "repeat":
            ours_pp.append(j["pp_ts"]); ours_tg.append(j["tg_ts"])
    for line in open(os.path.join(out, f"ours0-{i}.jsonl")):
        j = json.loads(line)
        if j.get("kind") == "repeat":
            ours_tg0.append(j["tg_ts"])
    for t in json.load(open(os.path.join(out, f"lb-{i}.json"))):
        if t["n_prompt"] > 0 and t["n_gen"] == 0: lb_pp.append(t["avg_ts"])
        if t["n_prompt"] == 0 and t["n_gen"] > 0: lb_tg.append(t["avg_ts"])
    for t in json.load(open(os.path.join(out, f"lbd-{i}.json"))):
        if t["n_prompt"] == 0 and t["n_gen"] > 0: lb_tgd.append(t["avg_ts"])
med = statistics.median
rows = [
    (f"prefill pp{P}", ours_pp, lb_pp, "llama-bench pp%s" % P),
    (f"decode tg{N}", ours_tg0, lb_tg, "llama-bench tg%s (depth 0)" % N),
    (f"decode tg{N} @ d{P}", ours_tg, lb_tgd, "llama-bench tg%s -d %s" % (N, P)),
]
print(f"single-stream: model {os.path.basename(model)}, threads {T}, repeats {R} (interleaved), P={P} N={N}, "
      f"n_batch 2048, n_ubatch 512, flash_attn auto, KV f16")
print(f"tree {rev}, {ncpu} CPUs, load average at the end {load}; "
      f"{dropped} disturbed rounds dropped (others above {100 * max_foreign:.0f}% of the CPU)")
print()
print("| metric | ours median t/s | llama-bench median t/s | ratio ours/llama-bench | target >= %.2f |" % target)
print("|---|---|---|---|---|")
for name, a, b, _ in rows:
    ma, mb = med(a), med(b)
    r = ma / mb if mb else 0.0
    print(f"| {name} | {ma:.2f} | {mb:.2f} | {r:.3f} | {'met' if r >= target else 'MISSED'} |")
print()
print("per round (t/s):")
print("  ours pp:   " + " ".join(f"{x:.1f}" for x in ours_pp))
print("  lb   pp:   " + " ".join(f"{x:.1f}" for x in lb_pp))
print("  ours tg:   " + " ".join(f"{x:.2f}" for x in ours_tg0))
print("  lb   tg:   " + " ".join(f"{x:.2f}" for x in lb_tg))
print("  ours tg@d: " + " ".join(f"{x:.2f}" for x in ours_tg))
print("  lb   tg@d: " + " ".join(f"{x:.2f}" for x in lb_tgd))
print()
print(f"tg{N}: ours after a 2-token prompt vs llama-bench tg{N} (empty cache); "
      f"tg{N} @ d{P}: ours after the {P}-token prompt vs llama-bench -p 0 -n {N} -d {P}.")
EOF
