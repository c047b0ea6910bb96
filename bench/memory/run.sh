#!/usr/bin/env bash
# Session-memory benchmark, end to end (docs/bench.md, "Memory"): what KV
# reuse and the host-RAM state cache buy, and whether RSS stays flat, through
# libwasi_nn_llamacpp.so on the generated 135M q8_0 model with a ChatML
# template, threads T, temp 0, ignore_eos.
#
#   bench/memory/run.sh [-r 3] [-t 2] [--build DIR] [--model GGUF] [--out DIR]
#                       [--only chat,resume,rss] [--rss-turns 1000] [--rss-sessions 200]
#   bench/memory/run.sh --report DIR     # only print the table of a kept --out DIR
#   (--first-round N numbers the rounds, and seeds them, from N: more rounds
#   can be added to a kept --out DIR; the table uses every round there)
#
#   chat    20 turns of ~300-token user messages (32-token replies, ctx 8192, one
#           slot) in one named session: TTFT (prefill_ms) of turn 20 against
#           turn 1, and against turn 20 prefilled from scratch (the rendered
#           conversation as one prompt to a fresh context with cache_prompt
#           off; same tokens, checked). After each round, llama-bench prefills
#           as many tokens as turn 20 did at depth 0 and at turn 20's cached
#           depth: llama.cpp's own slowdown, the floor.        R rounds
#   resume  max_concurrent 1: session A runs 5 turns of ~300 tokens, session B
#           takes the slot, A's 7th turn (~300 tokens) is timed; host cache
#           256 MiB (A's KV parked and restored) against host_cache_bytes 0
#           (A prefills its history again); then B again and A with an
#           8-word message (a turn that is mostly the restore).  R rounds, interleaved
#   rss     1000 turns (16-word messages, 8-token replies) spread at random over
#           200 named sessions by 8 client threads, max_concurrent 8, ctx 1024
#           per session, host cache 64 MiB; process_rss_bytes sampled every
#           10 turns; after the first 20% of turns: min/max/median and the
#           largest deviation from the median.                     once
#
# Prints one table (metric | ours | baseline | ratio | target | met?) with
# medians over the rounds. Exits 0 whether or not the targets are met; 1 if
# something could not run. Raw JSON lines stay in --out (default: a temp dir,
# removed at exit).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
R=${R:-3}
T=${T:-2}
BUILD=${BUILD_DIR:-$ROOT/build}
MODEL=""
OUT_KEEP=""
ONLY="chat,resume,rss"
RSS_TURNS=1000
RSS_SESSIONS=200
REPORT=""
FIRST=1

while [ $# -gt 0 ]; do
  case "$1" in
    -r) R=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --out) OUT_KEEP=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --rss-turns) RSS_TURNS=$2; shift 2 ;;
    --rss-sessions) RSS_SESSIONS=$2; shift 2 ;;
    --report) REPORT=$2; shift 2 ;;
    --first-round) FIRST=$2; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$R" -ge 1 ] || { echo "run.sh: -r must be >= 1" >&2; exit 2; }
MODEL=${MODEL:-$BUILD/models/bench-135m-q8_0-chatml.gguf}
command -v python3 >/dev/null || { echo "run.sh: python3 is needed to read the results" >&2; exit 1; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

log() { printf '[bench/memory] %s\n' "$*" >&2; }

if [ -n "$REPORT" ]; then
  [ -f "$REPORT/env" ] || { echo "run.sh: $REPORT/env missing: not a kept --out directory" >&2; exit 1; }
  OUT=$REPORT
else
. "$ROOT/bench/common.sh"
# 1. Our library, the model maker and the bench program, and llama.cpp's
# llama-bench, same commit: the reference for prefill at depth.
bench_build bench_memory
bench_llama_tools llama-bench
LLAMA_BENCH="$LLAMA_BIN/llama-bench"

# 2. The model, with a synthetic vocabulary with ChatML markers and the
# ChatML template.
bench_model "$MODEL" --chat-template chatml

# 3. The runs, on a snapshot of the library and the bench (a rebuild in the
# tree during the run must not swap binaries between rounds).
if [ -n "$OUT_KEEP" ]; then
  OUT=$OUT_KEEP
  mkdir -p "$OUT"
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
cp "$(readlink -f "$LIB")" "$OUT/libwasi_nn_llamacpp.so"
cp "$BENCH" "$OUT/bench_memory"
LIB="$OUT/libwasi_nn_llamacpp.so"
BENCH="$OUT/bench_memory"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
START0=$(date -u '+%Y-%m-%d %H:%M')
log "model $MODEL, threads=$T, $R rounds, parts: $ONLY (load: $LOAD0)"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" -v t="$T" 'BEGIN { exit !(l + t > n + 0.5) }'; then
  log "warning: the machine is busy; ggml's threads spin on barriers, so a core taken by another"
  log "         process slows the runs unevenly: read the per-round values, not only the medians"
fi
bm() {  # bm NAME ARGS...: one bench process, JSON lines to $OUT/NAME.jsonl
  local name=$1; shift
  "$BENCH" "$LIB" "$MODEL" "$@" -t "$T" >"$OUT/$name.jsonl" 2>"$OUT/$name.err" ||
    { tail -20 "$OUT/$name.err" >&2; echo "run.sh: bench_memory $* failed" >&2; exit 1; }
}
for ((i = FIRST; i < FIRST + R; i++)); do
  if want chat; then
    bm "chat-$i" chat --seed "$i"
    # llama.cpp's own cost of the same prefill at the same depth, right after.
    read -r PN DEPTH < <(python3 - "$OUT/chat-$i.jsonl" <<'PY'
import json, sys
xs = [json.loads(l) for l in open(sys.argv[1])]
s = [x for x in xs if x["kind"] == "summary"][0]
t = [x for x in xs if x["kind"] == "turn" and x["phase"] == "ours" and x["turn"] == s["turns"]][0]
print(t["prefilled_tokens"], s["turnN_input"] - t["prefilled_tokens"])
PY
)
    "$LLAMA_BENCH" -m "$MODEL" -p "$PN" -n 0 -d "0,$DEPTH" -t "$T" -r 1 -b 2048 -ub 512 -fa auto \
      -ctk f16 -ctv f16 -o json >"$OUT/lb-chat-$i.json" 2>"$OUT/lb-chat-$i.err" ||
      { tail -20 "$OUT/lb-chat-$i.err" >&2; echo "run.sh: llama-bench failed" >&2; exit 1; }
    log "round $i: chat done (llama-bench pp$PN at depth 0 and $DEPTH)"
  fi
  if want resume; then
    if ((i % 2)); then
      bm "resume-on-$i" resume --seed "$i"; bm "resume-off-$i" resume --seed "$i" --host-cache 0
    else
      bm "resume-off-$i" resume --seed "$i" --host-cache 0; bm "resume-on-$i" resume --seed "$i"
    fi
    log "round $i: resume done"
  fi
done
if want rss; then
  bm rss rss --seed 1 --turns "$RSS_TURNS" --sessions "$RSS_SESSIONS"
  log "rss done"
fi
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi
{
  echo "model=$(basename "$MODEL")"
  echo "threads=$T"
  echo "rev=$REV"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
} >"$OUT/env"
echo "$START0 to $(date -u '+%H:%M UTC'): parts $ONLY, rounds $FIRST..$((FIRST + R - 1)), load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end" >>"$OUT/runs"
fi

# 4. The table, from the JSON lines in $OUT (every round found there).
python3 - "$OUT" <<'EOF'
import glob, json, os, re, statistics, sys
out = sys.argv[1]
env = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(out, "env")) if "=" in l)
med = statistics.median

def lines(name):
    p = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

rows, notes, per_round = [], [], []
def row(metric, ours, base, ratio, target, met):
    rows.append((metric, ours, base, ratio, target, "met" if met else "MISSED"))

def rounds(prefix):
    names = [os.path.basename(p)[:-6] for p in glob.glob(os.path.join(out, prefix + "-*.jsonl"))]
    names = [n for n in names if re.fullmatch(re.escape(prefix) + r"-\d+", n)]
    return sorted(names, key=lambda n: int(n.rsplit("-", 1)[1]))

chat = [lines(n) for n in rounds("chat")]
chat = [c for c in chat if any(x["kind"] == "summary" for x in c)]
if chat:
    t1, tn, rp, tnp, t1p, rpp, w1, wn, wr = [], [], [], [], [], [], [], [], []
    n = None
    for c in chat:
        s = [x for x in c if x["kind"] == "summary"][0]
        turns = {x["turn"]: x for x in c if x["kind"] == "turn" and x["phase"] == "ours"}
        rpx = [x for x in c if x["kind"] == "turn" and x["phase"] == "reprefill"][0]
        n = s["turns"]
        t1.append(s["turn1_prefill_ms"]); tn.append(s["turnN_prefill_ms"]); rp.append(s["reprefill_prefill_ms"])
        t1p.append(turns[1]["prefilled_tokens"]); tnp.append(turns[n]["prefilled_tokens"])
        rpp.append(rpx["prefilled_tokens"])
        w1.append(turns[1]["ttft_wall_ms"]); wn.append(turns[n]["ttft_wall_ms"]); wr.append(rpx["ttft_wall_ms"])
    r1 = med(tn) / med(t1)
    row(f"TTFT turn {n} / turn 1 (prefill_ms)", f"{med(tn):.0f} ms", f"{med(t1):.0f} ms (turn 1)",
        f"{r1:.2f}x", "<= 3x", r1 <= 3.0)
    lb = []
    for name in rounds("chat"):
        p_ = os.path.join(out, "lb-" + name + ".json")
        if os.path.exists(p_):
            tests = {t["n_depth"]: t["avg_ns"] / 1e6 for t in json.load(open(p_))}
            if len(tests) == 2:
                lb.append((tests[min(tests)], tests[max(tests)], max(tests), [t["n_prompt"] for t in json.load(open(p_))][0]))
    if lb:
        r_lb = med([b / a for a, b, _, _ in lb])
        row(f"llama-bench, same prefill at turn {n}'s depth / at depth 0", f"{med([b for _, b, _, _ in lb]):.0f} ms",
            f"{med([a for a, _, _, _ in lb]):.0f} ms (depth 0)", f"{r_lb:.2f}x", "reference", True)
        rows[-1] = rows[-1][:5] + ("(llama.cpp)",)
        notes.append(f"llama-bench reference: pp{med([x[3] for x in lb]):.0f} at depth {med([x[2] for x in lb]):.0f} "
                     f"against depth 0, same model, threads and flash_attn auto, one run after each chat round: "
                     f"attention over the held context is what turn {n} pays, in llama.cpp as in ours; "
                     f"ours turn {n}/turn 1 is {r1 / r_lb:.2f}x llama.cpp's own slowdown")
        per_round.append("llama-bench depth/0:     " + " ".join(f"{b/a:.2f}" for a, b, _, _ in lb))
    r2 = med(rp) / med(tn)
    row(f"TTFT turn {n} vs re-prefill of the history", f"{med(tn):.0f} ms", f"{med(rp):.0f} ms (re-prefill)",
        f"{r2:.2f}x faster", ">= 5x faster", r2 >= 5.0)
    notes.append(f"chat: tokens decoded before the first token: turn 1 {med(t1p):.0f}, turn {n} {med(tnp):.0f} "
                 f"(of {med([x['turnN_input'] for x in [[y for y in c if y['kind']=='summary'][0] for c in chat]]):.0f} in the prompt), "
                 f"re-prefill {med(rpp):.0f}; wall TTFT (compute() entry to first token) turn 1 {med(w1):.0f} ms, "
                 f"turn {n} {med(wn):.0f} ms, re-prefill {med(wr):.0f} ms")
    per_round.append(f"chat turn 1 prefill_ms:  " + " ".join(f"{x:.0f}" for x in t1))
    per_round.append(f"chat turn {n} prefill_ms: " + " ".join(f"{x:.0f}" for x in tn))
    per_round.append(f"chat re-prefill ms:      " + " ".join(f"{x:.0f}" for x in rp))
    per_round.append(f"chat turn {n}/turn 1:     " + " ".join(f"{b/a:.2f}" for a, b in zip(t1, tn)))
    per_round.append(f"chat re-prefill/turn {n}: " + " ".join(f"{b/a:.2f}" for a, b in zip(tn, rp)))

def resume(name):
    v = []
    for n_ in rounds(name):
        r = [x for x in lines(n_) if x["kind"] == "resume"]
        if r: v.append(r[0])
    return v
on, off = resume("resume-on"), resume("resume-off")
if on and off:
    a, b = [x["prefill_ms"] for x in on], [x["prefill_ms"] for x in off]
    res = [x["resident_prefill_ms"] for x in on] + [x["resident_prefill_ms"] for x in off]
    r3 = med(b) / med(a)
    h = on[0]["history_turns"]
    resume_row = (f"next turn after eviction, ~{on[0].get('resume_words', 300)}-word message: host cache vs "
                  f"re-prefill", f"{med(a):.0f} ms", f"{med(b):.0f} ms (host_cache_bytes 0)", f"{r3:.2f}x faster",
                  "info: both pay the new message", "-")
    notes.append(f"resume: tokens decoded: restored {med([x['input_tokens']-x['cached_tokens'] for x in on]):.0f} of "
                 f"{med([x['input_tokens'] for x in on]):.0f}, no cache {med([x['input_tokens']-x['cached_tokens'] for x in off]):.0f}; "
                 f"the same kind of turn while A still held its slot (no eviction): {med(res):.0f} ms; "
                 f"restored every round: {all(x['restored'] for x in on)}")
    if all("short_prefill_ms" in x for x in on + off):
        sa, sb = [x["short_prefill_ms"] for x in on], [x["short_prefill_ms"] for x in off]
        r4 = med(sb) / med(sa)
        row(f"resume after eviction ({h}-turn history; restore vs re-prefill, then an "
            f"{on[0]['short_words']}-word message)", f"{med(sa):.0f} ms",
            f"{med(sb):.0f} ms (host_cache_bytes 0)", f"{r4:.2f}x faster", ">= 5x faster", r4 >= 5.0)
        notes.append(f"resume, short message: tokens decoded: restored "
                     f"{med([x['short_input_tokens']-x['short_cached_tokens'] for x in on]):.0f} of "
                     f"{med([x['short_input_tokens'] for x in on]):.0f}, no cache "
                     f"{med([x['short_input_tokens']-x['short_cached_tokens'] for x in off]):.0f}")
        per_round.append("resume short, cache ms:  " + " ".join(f"{x:.0f}" for x in sa))
        per_round.append("resume short, none ms:   " + " ".join(f"{x:.0f}" for x in sb))
    rows.append(resume_row)
    per_round.append("resume host cache ms:    " + " ".join(f"{x:.0f}" for x in a))
    per_round.append("resume no cache ms:      " + " ".join(f"{x:.0f}" for x in b))
    per_round.append("resume ratio:            " + " ".join(f"{y/x:.2f}" for x, y in zip(a, b)))

rs = [x for x in lines("rss") if x["kind"] == "summary"]
if rs:
    s = rs[0]
    MiB = 1 << 20
    dev = s["rss_max_dev"] * 100
    row(f"RSS over {s['turns']} turns / {s['sessions']} sessions (after {s['turns']//5} warm-up turns)",
        f"max dev {dev:.1f}% of median", f"median {s['rss_median']/MiB:.0f} MiB",
        f"min {s['rss_min']/MiB:.0f} / max {s['rss_max']/MiB:.0f} MiB", "flat within +-10%", dev <= 10.0)
    notes.append(f"rss: RSS after load {s['rss_start']/MiB:.0f} MiB; trend after warm-up "
                 f"{s['rss_slope_per_100_turns']/MiB:+.2f} MiB per 100 turns; host cache at the end "
                 f"{s['host_cache_bytes']/MiB:.1f} of {s['host_cache_limit']/MiB:.0f} MiB, {s['host_cache_entries']:.0f} states; "
                 f"saved {s['states_saved']:.0f}, restored {s['states_restored']:.0f}, evicted {s['evictions']:.0f}; "
                 f"median prefill {s['prefill_ms_median']:.0f} ms; {s['wall_s']:.0f} s")
    samples = [x for x in lines("rss") if x["kind"] == "sample"]
    per_round.append("rss MiB every 100 turns: " + " ".join(
        f"{x['rss']/MiB:.0f}" for x in samples if x["turn"] % 100 == 0))

print(f"memory: model {env.get('model')}, threads {env.get('threads')}, medians over {len(chat)} chat and "
      f"{min(len(on), len(off))} resume rounds, temp 0, ignore_eos")
print(f"tree {env.get('rev')}, {env.get('nproc')} CPUs ({env.get('cpu')})")
for l in open(os.path.join(out, "runs")) if os.path.exists(os.path.join(out, "runs")) else []:
    print("run " + l.rstrip())
print()
print("| metric | ours | baseline | ratio | target | met? |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
print()
for n_ in notes:
    print(n_)
print()
print("per round:")
for p in per_round:
    print("  " + p)
print()
print("TTFT = prefill_ms of the output metadata: from admission to a slot (after any queue wait) to the first")
print("sampled token; it includes parking the slot's previous owner and restoring from the host cache.")
EOF
