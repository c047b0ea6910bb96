#!/usr/bin/env bash
# Checks a library's dynamic symbol table: every ABI symbol is exported, and
# nothing else is (no llama_, ggml_, gguf_ or common_ symbol, no C++ name).
#   tests/check_symbols.sh LIB EXPORTS_MAP
set -u
lib=$1
map=$2
fail=0
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)
expected=$(sed -n 's/^ *\([a-z_][a-z_0-9]*\);$/\1/p' "$map" | sort -u)

for s in $expected; do
  if ! grep -qx "$s" <<<"$exported"; then
    echo "not ok - $lib does not export $s"
    fail=$((fail + 1))
  fi
done
leaked=$(grep -Ev "^($(echo $expected | tr ' ' '|'))$" <<<"$exported" | grep -v '^$' || true)
if [ -n "$leaked" ]; then
  echo "not ok - $lib exports symbols outside its ABI:"
  echo "$leaked" | head -20 | sed 's/^/    /'
  fail=$((fail + 1))
fi
forbidden=$(grep -E '^(llama_|ggml_|gguf_|common_)' <<<"$exported" || true)
if [ -n "$forbidden" ]; then
  echo "not ok - llama.cpp symbols are visible: $(echo $forbidden | head -c 300)"
  fail=$((fail + 1))
fi
n=$(wc -w <<<"$expected")
if [ $fail -eq 0 ]; then
  echo "ok - $lib exports exactly its $n ABI symbols"
  echo "1 passed, 0 failed"
  exit 0
fi
echo "0 passed, $fail failed"
exit 1
