#!/usr/bin/env bash
# Builds tests/erlang's NIF against erl_nif.h (Debian's erlang-dev), then
# runs wasi_nn_nif_test on an Erlang node (erlang-nox) against the legacy
# library. Passes when the node halts with 0 after printing "0 failed".
#   run_test.sh LIBWASI_NN_BACKEND.so MODEL.gguf [CC]
set -euo pipefail
lib=$1
model=$2
cc=${3:-cc}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root=$(erl -noshell -eval 'io:format("~s", [code:root_dir()]), halt().')
include="$root/usr/include"
[ -f "$include/erl_nif.h" ] || { echo "erl_nif.h not found under $include (erlang-dev)" >&2; exit 1; }
"$cc" -O2 -g -Wall -Wextra -fPIC -shared -I"$include" -o "$work/wasi_nn_nif.so" "$here/wasi_nn_nif.c" -ldl -lpthread
erlc -o "$work" "$here/wasi_nn_nif.erl" "$here/wasi_nn_nif_test.erl"

set +e
WNL_NIF="$work/wasi_nn_nif" WNL_BACKEND_LIB="$lib" WNL_MODEL="$model" \
  erl -noshell -pa "$work" -s wasi_nn_nif_test main | tee "$work/out.txt"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "the Erlang node exited with $rc" >&2
  exit 1
fi
grep -q " passed, 0 failed$" "$work/out.txt"
