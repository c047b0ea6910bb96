#!/usr/bin/env bash
# Sets everything up and runs the CLI once on the default model:
# ../shared/models/stories260K.gguf when it exists, otherwise a small random
# llama model made by wasi-nn-llama-mkmodel.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
model=../shared/models/stories260K.gguf
if [ -f "$model" ]; then
  echo "[setup] default model: $model (the bundled stories260K)" >&2
else
  model=build/models/default-tiny.gguf
  mkdir -p build/models
  [ -f "$model" ] || build/tools/mkmodel/wasi-nn-llama-mkmodel --preset tiny -o "$model" -q
  echo "[setup] ../shared/models is absent; default model: $model (random weights, made by wasi-nn-llama-mkmodel)" >&2
fi
prompt="${1:-Once upon a time}"
build/tools/wasi-nn-llama run -m "$model" -p "$prompt" --config '{"max_tokens":64,"temp":0}'
