#!/usr/bin/env python3
"""C concurrent embedding clients against a llama-server --embedding on
127.0.0.1 (bench/embed/run.sh; docs/bench.md, "Embeddings").

    server_client.py --port P --inputs FILE -C C [-k 1] [-r 3]

FILE is the JSON array of inputs bench_embed --inputs-out wrote. A round
releases C threads from a barrier; each takes the inputs K at a time from a
shared counter and POSTs them to /v1/embeddings ({"input": text} for K = 1,
{"input": [texts]} otherwise) on its own connection, until all are
embedded. embeddings/s = inputs / the round's wall time, exactly as
bench_embed measures ours. One untimed warm-up round comes first.

Prints one JSON line per round and a summary line, like bench_embed.
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time

TIMEOUT_S = 600


def post(conn, body):
    conn.request("POST", "/v1/embeddings", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
    return json.loads(data)


def one_round(port, inputs, clients, k):
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    state = {"next": 0, "tokens": 0}
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        try:
            barrier.wait(timeout=60)
            while True:
                with lock:
                    start = state["next"]
                    state["next"] += k
                if start >= len(inputs):
                    break
                batch = inputs[start:start + k]
                res = post(conn, {"input": batch[0] if k == 1 else batch})
                if len(res["data"]) != len(batch) or not res["data"][0]["embedding"]:
                    raise RuntimeError("short response")
                with lock:
                    state["tokens"] += res.get("usage", {}).get("prompt_tokens", 0)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(str(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    t0 = time.monotonic()
    for t in threads:
        t.join(TIMEOUT_S + 60)
    wall = (time.monotonic() - t0) * 1000
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return wall, state["tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("-C", type=int, default=1, help="concurrent clients")
    ap.add_argument("-k", type=int, default=1, help="inputs per request")
    ap.add_argument("-r", type=int, default=3, help="measured rounds")
    a = ap.parse_args()
    inputs = json.load(open(a.inputs))
    one_round(a.port, inputs, a.C, a.k)
    rates = []
    for r in range(1, a.r + 1):
        wall, tokens = one_round(a.port, inputs, a.C, a.k)
        rates.append(len(inputs) * 1000 / wall)
        print(json.dumps({"kind": "round", "round": r, "callers": a.C, "per_call": a.k, "inputs": len(inputs),
                          "tokens": tokens, "wall_ms": round(wall, 3), "emb_per_s": round(rates[-1], 3),
                          "tokens_per_s": round(tokens * 1000 / wall, 3)}), flush=True)
    print(json.dumps({"kind": "summary", "callers": a.C, "per_call": a.k, "inputs": len(inputs),
                      "emb_per_s_median": round(statistics.median(rates), 3)}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"server_client: {e}", file=sys.stderr)
        sys.exit(1)
