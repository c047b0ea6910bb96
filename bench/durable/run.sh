#!/usr/bin/env bash
# Durable-sessions benchmark, end to end (docs/bench.md, "Durable sessions"),
# through libwasi_nn_llamacpp.so on the generated 135M q8_0 model with a
# ChatML template, threads T, temp 0, ignore_eos, 8-token replies.
#
#   bench/durable/run.sh [-r 5] [-t 2] [--tokens 2000] [--turns 20] [--build DIR] [--model GGUF]
#                        [--store-dir DIR]
#
# Each round runs, each in its own process, in alternating order:
#   restore   a named session built to --tokens tokens in a session store,
#             deinit_backend (its KV goes to disk), a new backend context on
#             the store, and the session's next turn (8 words) timed: the KV
#             read back from its file;
#   reprefill the same with the KV file deleted before the restart: the next
#             turn prefills the history from the stored text;
#   ttft none|normal|full
#             two sessions of --tokens tokens each on one slot, --turns turns
#             round-robin (16-word messages), so every turn parks the other
#             session's KV (to the host cache, and with a store to its KV file
#             too) and restores its own: time to first token and the whole
#             turn without a store, with session_sync normal and with full.
# The store lives in --store-dir (default: under the build directory, on a
# real disk: on tmpfs fsync costs nothing and "full" would mean nothing).
# A round during which other processes used more than MAX_FOREIGN (default
# 0.05) of the machine's CPU is dropped and rerun (at most 4R attempts).
# Prints one table (metric | ours | baseline | ratio | target | met?) of
# medians over the rounds. Exits 0 whether or not the targets are met; 1 if
# something could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
R=${R:-5}
T=${T:-2}
TOKENS=2000
TURNS=20
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""
STORE=""

while [ $# -gt 0 ]; do
  case "$1" in
    -r) R=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    --tokens) TOKENS=$2; shift 2 ;;
    --turns) TURNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --store-dir) STORE=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$R" -ge 1 ] || { echo "run.sh: -r must be >= 1" >&2; exit 2; }
MODEL=${MODEL:-$BUILD/models/bench-135m-q8_0-chatml.gguf}
STORE=${STORE:-$BUILD/bench-durable-store}
command -v python3 >/dev/null || { echo "run.sh: python3 is needed to read the results" >&2; exit 1; }
log() { printf '[bench/durable] %s\n' "$*" >&2; }

. "$ROOT/bench/common.sh"
bench_build bench_durable
bench_model "$MODEL" --chat-template chatml
[ "$(stat -f -c %T "$(dirname "$STORE")")" != tmpfs ] || log "warning: $STORE is on tmpfs: fsync costs nothing there"

OUT=$(mktemp -d)
trap 'rm -rf "$OUT" "$STORE"' EXIT
cp "$(readlink -f "$LIB")" "$OUT/libwasi_nn_llamacpp.so"
cp "$BENCH" "$OUT/bench_durable"
LIB="$OUT/libwasi_nn_llamacpp.so"
BENCH="$OUT/bench_durable"
MAX_FOREIGN=${MAX_FOREIGN:-0.05}
QUIET_WAIT=${QUIET_WAIT:-600}
bd() {  # bd NAME ARGS...: one bench process, JSON lines to $OUT/NAME.jsonl
  local name=$1; shift
  measure "$OUT/$name.jsonl" "$BENCH" "$LIB" "$MODEL" "$STORE" "$@" -t "$T" --ctx 4096
}
round() {
  local i=$1
  bd "restore-$i" restore --tokens "$TOKENS" --seed "$i" &&
    bd "reprefill-$i" restore --tokens "$TOKENS" --seed "$i" --drop-kv &&
    bd "ttft-none-$i" ttft --no-store --turns "$TURNS" --history-tokens "$TOKENS" --seed "$i" &&
    bd "ttft-normal-$i" ttft --sync normal --turns "$TURNS" --history-tokens "$TOKENS" --seed "$i" &&
    bd "ttft-full-$i" ttft --sync full --turns "$TURNS" --history-tokens "$TOKENS" --seed "$i"
}
log "model $MODEL, threads=$T, $TOKENS-token sessions, $R rounds, store $STORE (load: $(cut -d' ' -f1-3 /proc/loadavg))"
clean=0
attempts=0
dropped=0
while ((clean < R && attempts < R * 4)); do
  attempts=$((attempts + 1))
  i=$((clean + 1))
  wait_quiet
  if round "$i"; then
    clean=$i
    log "round $i/$R done"
  else
    dropped=$((dropped + 1))
    rm -f "$OUT"/*-"$i".jsonl*
  fi
done
((clean > 0)) || { echo "run.sh: no undisturbed round in $attempts attempts (MAX_FOREIGN=1 keeps disturbed runs)" >&2; exit 1; }
((clean == R)) || log "warning: only $clean undisturbed rounds of $R in $attempts attempts"

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
python3 - "$OUT" "$clean" "$TOKENS" "$T" "$MODEL" "$REV" "$dropped" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, statistics, sys
out, R, tokens, T, model, rev, dropped, load = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
med = statistics.median

def kind(name, k):
    return [json.loads(l) for l in open(os.path.join(out, name + ".jsonl")) if json.loads(l)["kind"] == k]

rest = [kind(f"restore-{i}", "restore")[0] for i in range(1, R + 1)]
repr_ = [kind(f"reprefill-{i}", "restore")[0] for i in range(1, R + 1)]
summ = {s: [kind(f"ttft-{s}-{i}", "summary")[0] for i in range(1, R + 1)] for s in ("none", "normal", "full")}
rows = []
a, b = med([x["ttft_wall_ms"] for x in rest]), med([x["ttft_wall_ms"] for x in repr_])
rows.append((f"next turn after a restart, {med([x['input_tokens'] for x in rest]):.0f}-token session: "
             "restore from disk vs re-prefill (TTFT)", f"{a:.0f} ms", f"{b:.0f} ms", f"{b / a:.2f}x faster",
             ">= 5x faster", b / a >= 5))
none_t = med([x["ttft_wall_ms"] for x in summ["none"]])
none_c = med([x["compute_ms"] for x in summ["none"]])
for s, target in (("normal", 1.1), ("full", None)):
    t = med([x["ttft_wall_ms"] for x in summ[s]])
    c = med([x["compute_ms"] for x in summ[s]])
    rows.append((f"TTFT per turn, store session_sync {s} vs no store", f"{t:.0f} ms", f"{none_t:.0f} ms",
                 f"{t / none_t:.2f}x", f"<= {target}x" if target else "info", t / none_t <= target if target else None))
    rows.append((f"whole turn (compute), store session_sync {s} vs no store", f"{c:.0f} ms", f"{none_c:.0f} ms",
                 f"{c / none_c:.2f}x", "info", None))
w = [max(len(r[k]) for r in rows + [("metric", "ours", "baseline", "ratio", "target")]) for k in range(5)]
print(f"model {os.path.basename(model)}, threads {T}, {tokens}-token sessions, {R} rounds ({dropped} dropped), "
      f"rev {rev}, load {load}")
hdr = ("metric", "ours", "baseline", "ratio", "target")
print(" | ".join(h.ljust(w[k]) for k, h in enumerate(hdr)) + " | met?")
print("-|-".join("-" * w[k] for k in range(5)) + "-|-----")
for r in rows:
    met = "-" if r[5] is None else ("met" if r[5] else "MISSED")
    print(" | ".join(str(r[k]).ljust(w[k]) for k in range(5)) + " | " + met)
print()
print("per round (ms):")
print("  restore TTFT:    " + " ".join(f"{x['ttft_wall_ms']:.0f}" for x in rest))
print("  re-prefill TTFT: " + " ".join(f"{x['ttft_wall_ms']:.0f}" for x in repr_))
for s in ("none", "normal", "full"):
    print(f"  ttft {s:6}:     " + " ".join(f"{x['ttft_wall_ms']:.1f}" for x in summ[s]) + "   compute: " +
          " ".join(f"{x['compute_ms']:.1f}" for x in summ[s]))
EOF
