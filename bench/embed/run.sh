#!/usr/bin/env bash
# Embedding benchmark (docs/bench.md, "Embeddings"): embeddings per second of
# libwasi_nn_llamacpp.so for M inputs of about W+2 tokens at 1 and 8
# concurrent callers, against llama-embedding on the same inputs and
# llama-server --embedding fed by as many concurrent HTTP clients, same
# llama.cpp build, same generated BERT model (bge-small's shape and
# WordPiece vocabulary, random f16 weights), interleaved in the same run.
#
#   bench/embed/run.sh [-m 256] [-w 98] [-t 2] [-b 2048] [-r 3] [--callers "1 8"]
#                      [--port 18441] [--build DIR] [--model GGUF]
#
# Each of R rounds runs, in rotating order:
#   ours C        bench_embed LIB MODEL -C C -k 1 -t T -b B -r 1, for each C in
#                 --callers: C backend contexts (as C wasm instances), one
#                 input per call, all sharing the model's decode loop
#   ours batch    bench_embed ... -C 1 -k M: all M inputs in one call
#   llama-embedding -m MODEL -f INPUTS -t T -c B -b B -ub B -lv 4: one process,
#                 all M lines; its rate is M / its "prompt eval time" (model
#                 load left out; -lv 4 makes it print its timings)
#   llama-server  --embedding -t T --parallel max(C) -c max(C)*512 -b B -ub B,
#                 for each C: C concurrent /v1/embeddings clients, one input per
#                 request (server_client.py)
# and prints the medians, the ratios, and whether ours >= 1.0x llama-server
# at 8 callers. Exits 0 whether or not the target is met; 1 if something
# could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
M=256
W=98
T=2
B=2048
R=3
CALLERS="1 8"
PORT=18441
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""

while [ $# -gt 0 ]; do
  case "$1" in
    -m) M=$2; shift 2 ;;
    -w) W=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -b) B=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --callers) CALLERS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$R" -ge 1 ] || { echo "run.sh: -r must be >= 1" >&2; exit 2; }
command -v python3 >/dev/null || { echo "run.sh: python3 is needed" >&2; exit 1; }
command -v curl >/dev/null || { echo "run.sh: curl is needed" >&2; exit 1; }
MODEL=${MODEL:-$BUILD/models/bench-bge-small-f16.gguf}
NP=1
for c in $CALLERS; do [ "$c" -gt "$NP" ] && NP=$c; done

log() { printf '[bench/embed] %s\n' "$*" >&2; }

. "$ROOT/bench/common.sh"

# 1. llama.cpp's reference tools, same commit and flags as our library links.
bench_llama_tools llama-embedding llama-server
EMBEDDING="$LLAMA_BIN/llama-embedding"
SERVER="$LLAMA_BIN/llama-server"
VOCAB="$(bench_llama_prefix)/src/models/ggml-vocab-bert-bge.gguf"

# 2. Our library, the model maker and the bench program.
bench_build bench_embed

# 3. The model: bge-small's shape (384 wide, 12 layers) with its vocabulary.
if [ ! -f "$MODEL" ]; then
  log "generating $MODEL"
  mkdir -p "$(dirname "$MODEL")"
  "$MKMODEL" --preset bge-small --vocab-from "$VOCAB" -q -o "$MODEL" >/dev/null
fi

OUT=$(mktemp -d)
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap 'stop_server; rm -rf "$OUT"' EXIT
cp "$(readlink -f "$LIB")" "$OUT/libwasi_nn_llamacpp.so"
LIB="$OUT/libwasi_nn_llamacpp.so"
CLIENT="$ROOT/bench/embed/server_client.py"
fail() { cat "$1" >&2; exit 1; }

"$BENCH" "$LIB" "$MODEL" -m "$M" -w "$W" --inputs-out "$OUT/inputs.json" || { echo "run.sh: no inputs" >&2; exit 1; }

run_ours() {  # C K name round
  timeout 900 "$BENCH" "$LIB" "$MODEL" -C "$1" -k "$2" -m "$M" -w "$W" -t "$T" -b "$B" -r 1 \
    >"$OUT/ours-$3-$4.jsonl" 2>"$OUT/ours-$3-$4.err" || fail "$OUT/ours-$3-$4.err"
}
run_embedding() {  # round
  timeout 900 "$EMBEDDING" -m "$MODEL" -f "$OUT/inputs.json.txt" -t "$T" -c "$B" -b "$B" -ub "$B" \
    --embd-output-format array -lv 4 >"$OUT/emb-$1.out" 2>"$OUT/emb-$1.err" || fail "$OUT/emb-$1.err"
}
run_server() {  # C round
  timeout 900 python3 "$CLIENT" --port "$PORT" --inputs "$OUT/inputs.json" -C "$1" -k 1 -r 1 \
    >"$OUT/srv-$1-$2.jsonl" 2>"$OUT/srv-$1-$2.err" || { tail -20 "$OUT/server.log" >&2; fail "$OUT/srv-$1-$2.err"; }
}
start_server() {
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health"; then
    echo "run.sh: something already listens on 127.0.0.1:$PORT (use --port)" >&2; exit 1
  fi
  "$SERVER" -m "$MODEL" --embedding -t "$T" --parallel "$NP" -c $((NP * 512)) -b "$B" -ub "$B" \
    --no-webui --host 127.0.0.1 --port "$PORT" >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then tail -20 "$OUT/server.log" >&2; exit 1; fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/health")" = 200 ] && return
    sleep 0.2
  done
  echo "run.sh: llama-server did not become ready in 120 s" >&2; tail -20 "$OUT/server.log" >&2; exit 1
}

log "model $MODEL, $M inputs of $W words, threads $T, batch $B, callers {$CALLERS}, $R rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" -v t="$T" 'BEGIN { exit !(l + t > n + 0.5) }'; then
  log "warning: the machine is busy; ggml's threads spin on barriers, so the ratios are unreliable"
fi
start_server
for ((i = 1; i <= R; i++)); do
  ours_all() { for c in $CALLERS; do run_ours "$c" 1 "c$c" "$i"; done; run_ours 1 "$M" batch "$i"; }
  srv_all() { for c in $CALLERS; do run_server "$c" "$i"; done; }
  case $((i % 3)) in
    1) ours_all; run_embedding "$i"; srv_all ;;
    2) run_embedding "$i"; srv_all; ours_all ;;
    0) srv_all; ours_all; run_embedding "$i" ;;
  esac
  log "round $i/$R done (load: $(cut -d' ' -f1 /proc/loadavg))"
done
stop_server

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 - "$OUT" "$R" "$M" "$W" "$T" "$B" "$MODEL" "$CALLERS" "$(cut -d' ' -f1-3 /proc/loadavg)" "$REV" "$(nproc)" "$CPU" <<'EOF'
import json, os, re, statistics, sys
out, R, M, W, T, B, model, callers, load, rev, ncpu, cpu = sys.argv[1:13]
R, M = int(R), int(M)
med = statistics.median

def rounds(name):
    v = []
    for i in range(1, R + 1):
        for line in open(os.path.join(out, name.format(i=i))):
            if line.startswith("{"):
                j = json.loads(line)
                if j["kind"] == "round":
                    v.append(j["emb_per_s"])
    return v

emb = []
for i in range(1, R + 1):
    text = open(os.path.join(out, f"emb-{i}.err")).read()
    m = re.search(r"prompt eval time =\s*([0-9.]+) ms", text)
    if not m:
        sys.exit(f"run.sh: no prompt eval time in llama-embedding's output (round {i})")
    emb.append(M * 1000 / float(m.group(1)))

print(f"embeddings: model {os.path.basename(model)}, {M} inputs of {W} words (~{int(W) + 2} tokens), threads {T}, "
      f"batch {B}, {R} rounds (interleaved)")
print(f"tree {rev}, {ncpu} CPUs ({cpu}), load average at the end {load}")
print()
print("| callers | ours emb/s | llama-server emb/s | ours/server |")
print("|---|---|---|---|")
verdict = "8 callers not run: target not evaluated"
for c in callers.split():
    o, s = med(rounds(f"ours-c{c}-{{i}}.jsonl")), med(rounds(f"srv-{c}-{{i}}.jsonl"))
    ratio = o / s if s else 0
    print(f"| {c} | {o:.1f} | {s:.1f} | {ratio:.3f} |")
    if c == "8":
        verdict = f"8 callers: ours/llama-server {ratio:.3f} (target >= 1.00: {'met' if ratio >= 1.0 else 'MISSED'})"
print()
ob = med(rounds("ours-batch-{i}.jsonl"))
print(f"all {M} inputs in one call: ours {ob:.1f} emb/s; llama-embedding (one process, all lines, "
      f"load excluded) {med(emb):.1f} emb/s; ours/llama-embedding {ob / med(emb):.3f}")
print(verdict)
print()
f1 = lambda v: " ".join(f"{x:.1f}" for x in v)
print("per round (emb/s):")
for c in callers.split():
    print(f"  ours {c}: {f1(rounds(f'ours-c{c}-{{i}}.jsonl'))}; server {c}: {f1(rounds(f'srv-{c}-{{i}}.jsonl'))}")
print(f"  ours batch: {f1(rounds('ours-batch-{i}.jsonl'))}; llama-embedding: {f1(emb)}")
EOF
