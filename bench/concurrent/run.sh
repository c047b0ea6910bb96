#!/usr/bin/env bash
# Concurrent-request benchmark, end to end (docs/bench.md, "Concurrent"):
# aggregate decode tokens/s and request latency of N requests served at once
# (continuous batching) by libwasi_nn_llamacpp.so, against
# llama-batched-bench and llama-server from the same llama.cpp build, same
# generated 135M q8_0 model, same threads, interleaved in the same run.
#
#   bench/concurrent/run.sh [-p 128] [-n 128] [-t 2] [-r 3] [--npl "1 2 4 8"]
#                           [--port 18431] [--tries 1] [--build DIR] [--model GGUF]
#
# For each N in --npl, llama-server is started once (127.0.0.1 only) and
# stopped after N's rounds; each of R rounds then runs, in rotating order:
#   ours           bench_concurrent LIB MODEL -N N -p P -n G -t T -r 1
#                  (N threads, one execution context each, ONE graph with
#                  max_concurrent N, ctx_size P+G, cache_prompt false)
#   batched-bench  llama-batched-bench -m MODEL -c N*(P+G) -b 2048 -ub 512
#                  -npp P -ntg G -npl N -t T -no-kvu --output-format jsonl
#                  (-no-kvu: one KV stream of P+G cells per sequence, as ours)
#   llama-server   -m MODEL --parallel N -c N*(P+G) -t T -b 2048 -ub 512 -no-kvu
#                  --cache-ram 0 --metrics --no-webui --host 127.0.0.1 --port PORT,
#                  N concurrent /completion clients (server_client.py): the
#                  same N prompts as ours, n_predict G, temperature 0,
#                  ignore_eos, cache_prompt false
# and prints the medians over R rounds, the ratios, and whether the targets
# at N=8 (ours >= 0.95x batched-bench, >= 1.0x llama-server) are met.
# tg t/s is batched-bench's S_TG (N*G / time of G steps of N tokens); for ours
# and llama-server the same thing: N tokens per step over the steps in which
# all N requests generate (none prefilling, none finished), timed from the
# last first token to the first finish (bench_concurrent.cpp explains how the
# steps are counted). --tries K reruns a round (ours and server alike) until
# its N requests were admitted in one decode call, up to K runs.
# Exits 0 whether or not they are met; 1 if something could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
P=128
G=128
T=2
R=3
NPL="1 2 4 8"
PORT=18431
TRIES=1
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""
NB=2048
NUB=512

while [ $# -gt 0 ]; do
  case "$1" in
    -p) P=$2; shift 2 ;;
    -n) G=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --npl) NPL=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --tries) TRIES=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$R" -ge 1 ] || { echo "run.sh: -r must be >= 1" >&2; exit 2; }
for n in $NPL; do
  # The step count assumes every prompt is prefilled within one batch.
  [ $((n * P + n)) -le $NB ] || { echo "run.sh: N=$n prompts of $P tokens do not fit one batch of $NB" >&2; exit 2; }
done
MODEL=${MODEL:-$BUILD/models/bench-135m-q8_0.gguf}
command -v python3 >/dev/null || { echo "run.sh: python3 is needed" >&2; exit 1; }
command -v curl >/dev/null || { echo "run.sh: curl is needed" >&2; exit 1; }

log() { printf '[bench/concurrent] %s\n' "$*" >&2; }

. "$ROOT/bench/common.sh"

# 1. llama.cpp's reference tools, same commit and flags as our library links.
bench_llama_tools llama-batched-bench llama-server
BB="$LLAMA_BIN/llama-batched-bench"
SERVER="$LLAMA_BIN/llama-server"

# 2. Our library, the model maker and the bench program.
bench_build bench_concurrent

# 3. The model.
bench_model "$MODEL"

# 4. Rounds, on a snapshot of the library (a rebuild in the tree during the
# run must not swap binaries between rounds).
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
CLIENT="$ROOT/bench/concurrent/server_client.py"

fail() { cat "$1" >&2; exit 1; }
run_ours() {  # N round
  timeout 900 "$BENCH" "$LIB" "$MODEL" -N "$1" -p "$P" -n "$G" -t "$T" -r 1 --tries "$TRIES" -b $NB -ub $NUB \
    >"$OUT/ours-$1-$2.jsonl" 2>"$OUT/ours-$1-$2.err" || fail "$OUT/ours-$1-$2.err"
}
run_bb() {
  timeout 900 "$BB" -m "$MODEL" -c $(($1 * (P + G))) -b $NB -ub $NUB -npp "$P" -ntg "$G" -npl "$1" -t "$T" \
    -no-kvu --output-format jsonl >"$OUT/bb-$1-$2.out" 2>"$OUT/bb-$1-$2.err" || fail "$OUT/bb-$1-$2.err"
}
run_server() {
  local warm=()
  [ "$2" = 1 ] && warm=(--warmup)
  timeout 900 python3 "$CLIENT" --port "$PORT" --prompts "$OUT/prompts-$1.json" -n "$G" -p "$P" -r 1 \
    --tries "$TRIES" "${warm[@]}" >"$OUT/srv-$1-$2.jsonl" 2>"$OUT/srv-$1-$2.err" || {
    tail -20 "$OUT/server-$1.log" >&2; fail "$OUT/srv-$1-$2.err"; }
}
start_server() {  # N
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health"; then
    echo "run.sh: something already listens on 127.0.0.1:$PORT (use --port)" >&2; exit 1
  fi
  "$SERVER" -m "$MODEL" --parallel "$1" -c $(($1 * (P + G))) -t "$T" -b $NB -ub $NUB -no-kvu --cache-ram 0 \
    --metrics --no-webui --host 127.0.0.1 --port "$PORT" >"$OUT/server-$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then tail -20 "$OUT/server-$1.log" >&2; exit 1; fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/health")" = 200 ] && return
    sleep 0.2
  done
  echo "run.sh: llama-server did not become ready in 120 s" >&2; tail -20 "$OUT/server-$1.log" >&2; exit 1
}

log "model $MODEL, P=$P G=$G threads=$T, N in {$NPL}, $R rounds each (load: $(cut -d' ' -f1-3 /proc/loadavg))"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" -v t="$T" 'BEGIN { exit !(l + t > n + 0.5) }'; then
  log "warning: the machine is busy; ggml's threads spin on barriers, so a core taken by another"
  log "         process slows every side unevenly and the ratios are unreliable"
fi
for N in $NPL; do
  # The N prompts (each exactly P tokens, distinct from the second token on).
  timeout 600 "$BENCH" "$LIB" "$MODEL" -N "$N" -p "$P" -n "$G" -t "$T" --calibrate-only \
    --prompts-out "$OUT/prompts-$N.json" >/dev/null 2>"$OUT/cal-$N.err" || fail "$OUT/cal-$N.err"
  start_server "$N"
  for ((i = 1; i <= R; i++)); do
    case $((i % 3)) in
      1) run_ours "$N" "$i"; run_bb "$N" "$i"; run_server "$N" "$i" ;;
      2) run_bb "$N" "$i"; run_server "$N" "$i"; run_ours "$N" "$i" ;;
      0) run_server "$N" "$i"; run_ours "$N" "$i"; run_bb "$N" "$i" ;;
    esac
    log "N=$N round $i/$R done (load: $(cut -d' ' -f1 /proc/loadavg))"
  done
  stop_server
done

# 5. The table.
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 - "$OUT" "$R" "$P" "$G" "$T" "$MODEL" "$NPL" "$(cut -d' ' -f1-3 /proc/loadavg)" "$REV" "$(nproc)" "$CPU" <<'EOF'
import json, math, os, statistics, sys
out, R, P, G, T, model, npl, load, rev, ncpu, cpu = sys.argv[1:12]
R = int(R)
med = statistics.median

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(math.ceil(q / 100 * len(v)), 1) - 1)]

def lines(path):
    res = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            res.append(json.loads(line))
    return res

print(f"concurrent: model {os.path.basename(model)}, prompt {P} tokens, generate {G}, threads {T}, "
      f"{R} rounds per N (interleaved), n_batch 2048, n_ubatch 512, KV f16 non-unified (one stream per sequence)")
print(f"tree {rev}, {ncpu} CPUs ({cpu}), load average at the end {load}")
print()
print("| N | ours tg t/s | batched-bench tg t/s | server tg t/s | ours/batched | ours/server "
      "| ours p50/p99 latency ms | server p50/p99 latency ms |")
print("|---|---|---|---|---|---|---|---|")
per_round, verdict = [], []
for n in npl.split():
    ours, bb, srv, ol, sl, ohost, olock, slock, ospan, sspan = [], [], [], [], [], [], 0, 0, [], []
    for i in range(1, R + 1):
        for j in lines(os.path.join(out, f"ours-{n}-{i}.jsonl")):
            if j["kind"] == "repeat":
                ours.append(j["tg_ts"]); ol += j["latency_ms"]; ohost.append(j["host_ms_per_call"])
                ospan.append(j["tg_ts_span"])
                olock += j["lockstep"]
        for j in lines(os.path.join(out, f"bb-{n}-{i}.out")):
            bb.append(j["speed_tg"])
        for j in lines(os.path.join(out, f"srv-{n}-{i}.jsonl")):
            if j["kind"] == "repeat":
                srv.append(j["tg_ts"]); sl += j["latency_ms"]; slock += j["lockstep"]
                sspan.append(j["tg_ts_span"])
    mo, mb, ms = med(ours), med(bb), med(srv)
    rb, rs = mo / mb if mb else 0, mo / ms if ms else 0
    print(f"| {n} | {mo:.2f} | {mb:.2f} | {ms:.2f} | {rb:.3f} | {rs:.3f} | "
          f"{pct(ol, 50):.0f} / {pct(ol, 99):.0f} | {pct(sl, 50):.0f} / {pct(sl, 99):.0f} |")
    per_round.append((n, ours, bb, srv, ohost, olock, slock, ospan, sspan))
    if n == "8":
        verdict.append(f"N=8: ours/batched-bench {rb:.3f} (target >= 0.95: {'met' if rb >= 0.95 else 'MISSED'}), "
                       f"ours/llama-server {rs:.3f} (target >= 1.00: {'met' if rs >= 1.0 else 'MISSED'})")
print()
for v in verdict:
    print(v)
if not verdict:
    print("N=8 not run: targets not evaluated")
print()
print("per round (tg t/s); lockstep = all N prompts prefilled in one decode call, then G-1 steps of N:")
f2 = lambda v: " ".join(f"{x:.2f}" for x in v)
for n, ours, bb, srv, ohost, olock, slock, ospan, sspan in per_round:
    print(f"  N={n}: ours {f2(ours)} (lockstep {olock}/{len(ours)}; host ms/step {f2(ohost)}; span {f2(ospan)})")
    print(f"        batched-bench {f2(bb)}")
    print(f"        server {f2(srv)} (lockstep {slock}/{len(srv)}; span {f2(sspan)})")
print()
print("tg t/s: batched-bench = its S_TG (N*G / time of G steps of N tokens); ours and server = N tokens per step "
      "over the steps where all N requests generate, from the last first token to the first finish; "
      "span = all generated tokens / (last finish - first first token), which also charges staggered "
      "admission's prefill (docs/bench.md).")
EOF
