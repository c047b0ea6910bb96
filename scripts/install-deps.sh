#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing.
#   g++, cmake, ninja: the build; git, nodejs, npm: fetching llama.cpp from
#   the npm package; googletest: the tests; python3: the wasm import check;
#   binutils (nm): the symbol-table test; pkg-config: the install test;
#   clang, libclang-rt-dev (libFuzzer and clang's sanitizer runtimes): the
#   fuzz harnesses (scripts/fuzz.sh).
#   erlang-dev (erl_nif.h), erlang-nox (erl): the Erlang NIF test.
#   libsqlite3-dev, zlib1g-dev: the session store (histories, KV checksums).
set -euo pipefail
PACKAGES=(g++ cmake ninja-build git nodejs npm libgtest-dev googletest python3 binutils pkg-config clang libclang-rt-dev erlang-dev erlang-nox libsqlite3-dev zlib1g-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# A machine may have node and npm from elsewhere than Debian.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
