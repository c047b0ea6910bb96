#!/usr/bin/env python3
"""N concurrent /completion clients against a llama-server on 127.0.0.1
(bench/concurrent/run.sh; docs/bench.md, "Concurrent").

    server_client.py --port P --prompts FILE -n G [-p P] [-r R] [--warmup]

FILE is the JSON array of prompts bench_concurrent --prompts-out wrote (one
per client, all of P tokens). Each round releases len(prompts) threads from a
barrier; each sends one POST /completion (n_predict G, temperature 0,
ignore_eos, cache_prompt false, stream false) on its own connection.

Per request: latency = send to full response; from the response's `timings`:
predicted_n (tokens generated, the first one from the prompt's logits) and
predicted_ms (llama-server's time from the first token to the last, i.e. the
predicted_n - 1 decode steps; the same span as our decode_ms).

Aggregate decode t/s of a round, defined exactly as for ours (see
bench_concurrent.cpp): only the decode steps in which all N sequences
generate count, as in llama-batched-bench's S_TG.
    first_i = end_i - predicted_ms_i   (end_i: when the response arrived)
    W       = min_i end_i - max_i first_i
    k       = 2G - 1 - D   (D: llama_decode calls in the round, the growth of
                            n_decode_total in GET /metrics)
    tg_ts   = N * k / W
`lockstep`: D == G (one call prefilled all prompts, then G-1 steps of N).
tg_ts_span = sum_i (predicted_n_i - 1) / (max_i end_i - min_i first_i) and
tg_ts_sum = sum_i predicted_per_second_i are reported for reference.
With --tries K a round that is not lockstep is run again, up to K runs.

Prints one JSON line per round and a summary line, like bench_concurrent.
"""
import argparse
import http.client
import json
import math
import statistics
import sys
import threading
import time

TIMEOUT_S = 600


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return data
    finally:
        conn.close()


def n_decode_total(port):
    for line in request(port, "GET", "/metrics").decode().splitlines():
        if line.startswith("llamacpp:n_decode_total"):
            return float(line.split()[-1])
    raise RuntimeError("/metrics has no llamacpp:n_decode_total (start llama-server with --metrics)")


def one_round(port, prompts, n_gen):
    n = len(prompts)
    barrier = threading.Barrier(n)
    out = [None] * n
    errors = []

    def client(i):
        body = {"prompt": prompts[i], "n_predict": n_gen, "temperature": 0, "ignore_eos": True,
                "cache_prompt": False, "stream": False}
        try:
            barrier.wait(timeout=60)
            t0 = time.monotonic()
            data = request(port, "POST", "/completion", body)
            t1 = time.monotonic()
            out[i] = (t0, t1, json.loads(data))
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(f"client {i}: {e}")

    before = n_decode_total(port)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S + 60)
    if errors or any(o is None for o in out):
        raise RuntimeError("; ".join(errors) or "a client did not finish")
    after = n_decode_total(port)
    return out, after - before


def percentile(v, q):
    v = sorted(v)
    rank = math.ceil(q / 100 * len(v))
    return v[min(len(v) - 1, max(rank, 1) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("-n", type=int, required=True, help="tokens to generate per request")
    ap.add_argument("-p", type=int, default=0, help="expected prompt tokens (checked when > 0)")
    ap.add_argument("-r", type=int, default=1, help="measured rounds")
    ap.add_argument("--tries", type=int, default=1, help="runs of a round until it is lockstep")
    ap.add_argument("--warmup", action="store_true", help="one untimed round of 8 tokens first")
    a = ap.parse_args()
    prompts = json.load(open(a.prompts))
    n = len(prompts)

    if a.warmup:
        one_round(a.port, prompts, 8)

    tgs, spans, sums, lats = [], [], [], []
    lockstep_rounds = 0
    for rep in range(a.r):
        for attempt in range(1, a.tries + 1):
            out, calls = one_round(a.port, prompts, a.n)
            lockstep = int(calls) == a.n
            if lockstep:
                break
        lockstep_rounds += lockstep
        tokens, rate_sum = 0, 0.0
        firsts, ends, calls_t, lat = [], [], [], []
        for t0, t1, j in out:
            tm = j["timings"]
            if tm["predicted_n"] != a.n or (a.p and tm["prompt_n"] != a.p) or tm.get("cache_n", 0) != 0:
                raise RuntimeError(f"not a clean measure: predicted_n {tm['predicted_n']} (want {a.n}), "
                                   f"prompt_n {tm['prompt_n']} (want {a.p}), cache_n {tm.get('cache_n')}")
            tokens += tm["predicted_n"] - 1
            rate_sum += tm["predicted_per_second"]
            ends.append(t1)
            firsts.append(t1 - tm["predicted_ms"] / 1000)
            calls_t.append(t0)
            lat.append((t1 - t0) * 1000)
        span = (max(ends) - min(firsts)) * 1000
        steps = 2 * a.n - 1 - calls
        window = (min(ends) - max(firsts)) * 1000
        if steps < 1 or window <= 0:
            raise RuntimeError(f"no decode step with all {n} requests ({calls:.0f} calls for {a.n} tokens each)")
        tg = n * steps * 1000 / window
        tgs.append(tg)
        spans.append(tokens * 1000 / span)
        sums.append(rate_sum)
        lats += lat
        print(json.dumps({"kind": "repeat", "rep": rep, "parallel": n, "n_gen": a.n, "tg_ts": round(tg, 3),
                          "steady_steps": steps, "steady_window_ms": round(window, 3),
                          "tg_ts_span": round(spans[-1], 3), "tg_ts_sum": round(rate_sum, 3),
                          "decode_span_ms": round(span, 3),
                          "first_token_spread_ms": round((max(firsts) - min(firsts)) * 1000, 3),
                          "round_ms": round((max(ends) - min(calls_t)) * 1000, 3), "decode_calls": calls,
                          "lockstep": lockstep, "tries": attempt,
                          "latency_ms": [round(x, 3) for x in lat]}), flush=True)
    print(json.dumps({"kind": "summary", "parallel": n, "n_gen": a.n, "repeats": a.r,
                      "lockstep_repeats": lockstep_rounds, "tg_ts_median": round(statistics.median(tgs), 3),
                      "tg_ts_span_median": round(statistics.median(spans), 3),
                      "tg_ts_sum_median": round(statistics.median(sums), 3),
                      "latency_p50_ms": round(percentile(lats, 50), 3),
                      "latency_p99_ms": round(percentile(lats, 99), 3)}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"server_client: {e}", file=sys.stderr)
        sys.exit(1)
