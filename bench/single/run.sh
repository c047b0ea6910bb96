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
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$R" -ge 1 ] || { echo "run.sh: -r must be >= 1" >&2; exit 2; }
MODEL=${MODEL:-$BUILD/models/bench-135m-q8_0.gguf}
command -v python3 >/dev/null || { echo "run.sh: python3 is needed to read the results" >&2; exit 1; }

log() { printf '[bench/single] %s\n' "$*" >&2; }

# 1. llama.cpp's reference tools, same commit and flags as our library links.
LLAMA_PREFIX=$("$ROOT/scripts/llama-cpp.sh" --with-bench-tools | tail -1)
LLAMA_BENCH="$LLAMA_PREFIX/build/bin/llama-bench"
[ -x "$LLAMA_BENCH" ] || { echo "run.sh: $LLAMA_BENCH missing" >&2; exit 1; }

# 2. Our library, the model maker and the bench program.
LIB="$BUILD/src/libwasi_nn_llamacpp.so"
MKMODEL="$BUILD/tools/mkmodel/wasi-nn-llama-mkmodel"
[ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] || {
  echo "run.sh: no configured build in $BUILD (run scripts/build.sh first)" >&2; exit 1; }
targets=(wasi_nn_llamacpp wasi-nn-llama-mkmodel)
BENCH="$BUILD/bench/bench_single"
have_target=0
build_targets=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
if grep -q '^bench_single:' <<<"$build_targets"; then
  have_target=1
  targets+=(bench_single)
fi
if ! cmake --build "$BUILD" --target "${targets[@]}" >"$BUILD/bench-single-build.log" 2>&1; then
  if [ -f "$LIB" ] && [ -x "$MKMODEL" ] && { [ $have_target = 0 ] || [ -x "$BENCH" ]; }; then
    log "build failed (see $BUILD/bench-single-build.log); using the binaries already built"
  else
    tail -30 "$BUILD/bench-single-build.log" >&2; exit 1
  fi
fi
if [ $have_target = 0 ]; then
  # bench/ is not in the CMake tree yet: compile the one file directly.
  BENCH="$BUILD/bench-single/bench_single"
  mkdir -p "$(dirname "$BENCH")"
  if [ ! -x "$BENCH" ] || [ "$ROOT/bench/single/bench_single.cpp" -nt "$BENCH" ] ||
     [ "$ROOT/include/wasi_nn_llamacpp.h" -nt "$BENCH" ]; then
    "${CXX:-c++}" -std=c++17 -O2 -I"$ROOT/include" "$ROOT/bench/single/bench_single.cpp" -ldl -o "$BENCH"
  fi
fi

# 3. The model: SmolLM-135M-shaped llama, q8_0, random weights (docs/mkmodel.md).
if [ ! -f "$MODEL" ]; then
  log "generating $MODEL"
  mkdir -p "$(dirname "$MODEL")"
  "$MKMODEL" --preset 135m -q -o "$MODEL" >/dev/null
fi

# 4. Interleaved rounds, on a snapshot of the library (a rebuild in the tree
# during the run must not swap binaries between rounds).
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cp "$(readlink -f "$LIB")" "$OUT/libwasi_nn_llamacpp.so"
LIB="$OUT/libwasi_nn_llamacpp.so"
run_ours() {
  "$BENCH" "$LIB" "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA \
    >"$OUT/ours-$1.jsonl" 2>"$OUT/ours-$1.err" || { cat "$OUT/ours-$1.err" >&2; exit 1; }
  # Decode from an (almost) empty cache, like llama-bench's plain tg: a
  # 2-token prompt (BOS and one word), so tokens are decoded at positions 2..N.
  "$BENCH" "$LIB" "$MODEL" -p 2 -n "$N" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA \
    >"$OUT/ours0-$1.jsonl" 2>"$OUT/ours0-$1.err" || { cat "$OUT/ours0-$1.err" >&2; exit 1; }
}
run_theirs() {
  "$LLAMA_BENCH" -m "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA -ctk f16 -ctv f16 -o json \
    >"$OUT/lb-$1.json" 2>"$OUT/lb-$1.err" || { cat "$OUT/lb-$1.err" >&2; exit 1; }
  "$LLAMA_BENCH" -m "$MODEL" -p 0 -n "$N" -d "$P" -t "$T" -r 1 -b $NB -ub $NUB -fa $FA -ctk f16 -ctv f16 -o json \
    >"$OUT/lbd-$1.json" 2>"$OUT/lbd-$1.err" || { cat "$OUT/lbd-$1.err" >&2; exit 1; }
}
log "model $MODEL, P=$P N=$N threads=$T, $R rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" -v t="$T" 'BEGIN { exit !(l + t > n + 0.5) }'; then
  log "warning: the machine is busy; ggml's threads spin on barriers, so a core taken by another"
  log "         process slows both sides unevenly and the ratios are unreliable"
fi
for ((i = 1; i <= R; i++)); do
  if ((i % 2)); then run_ours "$i"; run_theirs "$i"; else run_theirs "$i"; run_ours "$i"; fi
  log "round $i/$R done"
done

# 5. The table.
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
python3 - "$OUT" "$R" "$P" "$N" "$T" "$MODEL" "$TARGET" "$(cut -d' ' -f1-3 /proc/loadavg)" "$REV" "$(nproc)" <<'EOF'
import json, statistics, sys, os
out, R, P, N, T, model, target, load, rev, ncpu = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], float(sys.argv[7]), sys.argv[8], sys.argv[9], sys.argv[10]
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
print(f"tree {rev}, {ncpu} CPUs, load average at the end {load}")
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
