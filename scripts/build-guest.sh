#!/usr/bin/env bash
# Build the wasm32-wasi guest example (examples/guest/chat.c) and check its
# import section against WAMR 2.4's wasi_ephemeral_nn ABI.
#
#   scripts/build-guest.sh            -> build/guest/chat.wasm
#   OUT_DIR=/tmp/g scripts/build-guest.sh
#
# Environment:
#   OUT_DIR        output directory (default: build/guest)
#   CLANG          compiler (default: clang-16)
#   WASI_SYSROOT   sysroot holding include/wasm32-wasi and lib/wasm32-wasi
#                  (default: /usr, where Debian's wasi-libc installs)
#   GUEST_NO_APT=1 never run apt-get; fail if the toolchain is missing
#
# Toolchain (Debian bookworm packages, installed with apt-get only if
# missing): clang-16, lld-16 (wasm-ld), wasi-libc, libclang-rt-16-dev-wasm32.
# The import check is scripts/wasm_imports.py (python3, standard library).
# iwasm is built by scripts/wamr.sh; scripts/test.sh then runs this guest on
# it (tests/wamr, docs/wamr.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$ROOT/build/guest}"
CLANG="${CLANG:-clang-16}"
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
SRC="$ROOT/examples/guest/chat.c"
OUT="$OUT_DIR/chat.wasm"
PACKAGES=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)

log() { printf 'build-guest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- toolchain ---------------------------------------------------------------
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_packages() {
    local missing=() p
    command -v dpkg-query >/dev/null 2>&1 || return 0   # not Debian: trust env
    for p in "${PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "${GUEST_NO_APT:-0}" = 1 ] && die "missing packages: ${missing[*]} (GUEST_NO_APT=1)"

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing packages ${missing[*]}; run as root or install them"
        sudo=(sudo)
    fi
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
               -o DPkg::Lock::Timeout=300 -y --no-install-recommends)
    log "installing: ${missing[*]}"
    if ! "${apt[@]}" install "${missing[@]}"; then
        log "apt-get install failed; running apt-get update and retrying"
        "${apt[@]}" update
        "${apt[@]}" install "${missing[@]}" || die "cannot install ${missing[*]}"
    fi
}

ensure_packages
command -v "$CLANG" >/dev/null 2>&1 || die "$CLANG not found"
command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for the import check)"
[ -f "$WASI_SYSROOT/include/wasm32-wasi/stdio.h" ] \
    || die "wasi-libc headers not found under $WASI_SYSROOT/include/wasm32-wasi"
[ -f "$WASI_SYSROOT/lib/wasm32-wasi/libc.a" ] \
    || die "wasi-libc not found under $WASI_SYSROOT/lib/wasm32-wasi"

# ---- build -------------------------------------------------------------------
mkdir -p "$OUT_DIR"
# Debian's wasi-libc is a multiarch sysroot: clang's WebAssembly driver looks
# in <sysroot>/include/wasm32-wasi and <sysroot>/lib/wasm32-wasi when the
# target is wasm32-wasi, and finds libclang_rt.builtins-wasm32.a (from
# libclang-rt-16-dev-wasm32) in its resource directory. wasm-ld comes from
# lld-16, next to clang-16.
CFLAGS=(--target=wasm32-wasi --sysroot="$WASI_SYSROOT"
        -std=c11 -O2 -Wall -Wextra -Werror)
LDFLAGS=("-Wl,--strip-debug")
log "$CLANG ${CFLAGS[*]} ${LDFLAGS[*]} -o $OUT $SRC"
"$CLANG" "${CFLAGS[@]}" "${LDFLAGS[@]}" -o "$OUT.tmp" "$SRC"
mv -f "$OUT.tmp" "$OUT"
log "wrote $OUT ($(wc -c < "$OUT") bytes)"

# ---- import check ------------------------------------------------------------
# Expected wasm-level signatures: WAMR 2.4, native_symbols_wasi_nn[] in
# bytecodealliance/wasm-micro-runtime core/iwasm/libraries/wasi-nn/src/wasi_nn.c
# (WASM_ENABLE_WASI_EPHEMERAL_NN branch). Written in WAMR's signature
# notation; '*' is an i32 address, so every one is (i32 x N) -> i32.
python3 "$ROOT/scripts/wasm_imports.py" "$OUT" \
    --allow-module wasi_ephemeral_nn \
    --allow-module wasi_snapshot_preview1 \
    --strict-module wasi_ephemeral_nn \
    --expect 'wasi_ephemeral_nn.load_by_name_with_config=(*i*i*)i' \
    --expect 'wasi_ephemeral_nn.init_execution_context=(i*)i' \
    --expect 'wasi_ephemeral_nn.set_input=(ii*)i' \
    --expect 'wasi_ephemeral_nn.compute=(i)i' \
    --expect 'wasi_ephemeral_nn.get_output=(ii*i*)i' \
    || die "import check failed for $OUT"
