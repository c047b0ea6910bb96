#!/usr/bin/env bash
# rpc_servers: a model offloaded to a llama.cpp RPC server (ggml-rpc-server
# from the same build, on loopback) gives the same greedy text as on the CPU.
#   tests/rpc_test.sh CLI LLAMA_BIN_DIR MODELS_DIR
set -u
cli=$1; bin=$2; models=$3
port=$((20000 + RANDOM % 20000))
"$bin/ggml-rpc-server" -H 127.0.0.1 -p "$port" -t 1 >/tmp/wnl-rpc-$port.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f /tmp/wnl-rpc-$port.log' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done
pass=0; fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; pass=$((pass+1)); else echo "not ok - $1"; echo "    got:      $2"; echo "    expected: $3"; fail=$((fail+1)); fi; }
base='"temp":0,"max_tokens":32,"threads":1,"logging":{"level":"info"}'
local_out=$("$cli" run -q -m "$models/stories260K.gguf" -p "Once upon a time" --config "{$base}" 2>/dev/null)
rpc_out=$("$cli" run -q -m "$models/stories260K.gguf" -p "Once upon a time" \
  --config "{$base,\"n_gpu_layers\":99,\"rpc_servers\":[\"127.0.0.1:$port\"]}" 2>/tmp/wnl-rpc-cli-$port.log)
check "greedy text through the RPC server equals the local run" "$rpc_out" "$local_out"
grep -q "offloading to llama.cpp RPC servers" /tmp/wnl-rpc-cli-$port.log
check "the model was offloaded to the RPC server" "$?" "0"
rm -f /tmp/wnl-rpc-cli-$port.log
"$cli" run -q -m "$models/stories260K.gguf" -p "x" --config "{$base,\"rpc_servers\":[\"127.0.0.1:1\"]}" >/dev/null 2>&1
check "an unreachable RPC server fails the load" "$?" "1"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
