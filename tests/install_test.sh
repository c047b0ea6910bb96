#!/usr/bin/env bash
# Installs a build into a temporary prefix and uses it as a consumer would
# (docs/install.md):
#   - the install tree holds the headers, both libraries (reachable by the
#     exact name WAMR dlopen()s), the programs, the CMake package and the
#     pkg-config files, and its text files name no build, source or install
#     directory (the tree is moved after installing to prove it);
#   - tests/install/consumer.c, built with find_package(wasi_nn_llama) and
#     with pkg-config, for each ABI, runs and prints the version;
#   - the installed CLI runs a model with the installed library.
#   tests/install_test.sh BUILD_DIR SOURCE_DIR
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
model="$src/../shared/models/stories260K.gguf"

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() {  # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
show() {  # show FILE: a command's output, indented, on failure
  sed 's/^/    /' "$1" | tail -n 30
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wnl-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A sanitized build's libraries need the sanitizer runtime loaded first, so
# its consumers are built with the same -fsanitize flags.
san=$(sed -n 's/^WASI_NN_LLAMA_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null | tr ';' ',')
san_flags=""
[ -n "$san" ] && san_flags="-fsanitize=$san"

# ---- install -----------------------------------------------------------------
stage="$tmp/stage"
if cmake --install "$build" --prefix "$stage" >"$tmp/install.log" 2>&1; then
  ok "cmake --install $build --prefix TMP"
else
  not_ok "cmake --install $build --prefix TMP"
  show "$tmp/install.log"
  finish
fi

# The layout (GNUInstallDirs: lib may be lib64 or lib/<multiarch>).
pc=$(find "$stage" -name wasi_nn_llamacpp.pc -path '*/pkgconfig/*' | head -n 1)
if [ -z "$pc" ]; then
  not_ok "wasi_nn_llamacpp.pc is installed"
  finish
fi
libdir_rel=$(dirname "$(dirname "${pc#"$stage"/}")")
missing=""
for f in include/wasi_nn_llamacpp.h include/wasi_nn_backend.h \
         "$libdir_rel/libwasi_nn_llamacpp.so" "$libdir_rel/libwasi_nn_backend.so" \
         "$libdir_rel/cmake/wasi_nn_llama/wasi_nn_llamaConfig.cmake" \
         "$libdir_rel/cmake/wasi_nn_llama/wasi_nn_llamaConfigVersion.cmake" \
         "$libdir_rel/cmake/wasi_nn_llama/wasi_nn_llamaTargets.cmake" \
         "$libdir_rel/pkgconfig/wasi_nn_llamacpp.pc" "$libdir_rel/pkgconfig/wasi_nn_backend.pc" \
         bin/wasi-nn-llama; do
  [ -e "$stage/$f" ] || missing="$missing $f"
done
check "headers, libraries, programs, CMake package and .pc files installed${missing:+ (missing:$missing)}" \
  test -z "$missing"
if [ -f "$build/tools/mkmodel/wasi-nn-llama-mkmodel" ]; then
  check "wasi-nn-llama-mkmodel installed" test -x "$stage/bin/wasi-nn-llama-mkmodel"
fi

# WAMR dlopen()s the bare name "libwasi_nn_llamacpp.so": it must resolve, via
# its links, to the library file whose SONAME the linker records.
soname_ok() {
  local lib=$1 real soname
  real=$(readlink -f "$stage/$libdir_rel/$lib.so") || return 1
  [ -f "$real" ] || return 1
  case "$real" in "$stage"/*) ;; *) return 1 ;; esac
  soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
  [ -z "$soname" ] || [ -e "$stage/$libdir_rel/$soname" ]
}
check "lib/libwasi_nn_llamacpp.so and lib/libwasi_nn_backend.so resolve inside the prefix" \
  eval 'soname_ok libwasi_nn_llamacpp && soname_ok libwasi_nn_backend'

# Relocatable: the package and .pc files name no build, source or install
# directory; the installed programs' RUNPATHs name no build directory.
leaks=$(grep -rlF -e "$build" -e "$src" -e "$stage" "$stage/$libdir_rel/cmake" "$stage/$libdir_rel/pkgconfig" 2>/dev/null)
check "CMake package and .pc files contain no absolute build, source or install path${leaks:+ ($leaks)}" \
  test -z "$leaks"
bad_rpath=""
for f in "$stage"/bin/* "$stage/$libdir_rel"/lib*.so; do
  rp=$(readelf -d "$f" 2>/dev/null | sed -n 's/.*(R[UN]*PATH).*\[\(.*\)\].*/\1/p')
  case "$rp" in *"$build"*|*"$src"*) bad_rpath="$bad_rpath $(basename "$f")=$rp" ;; esac
done
check "installed binaries' RUNPATH names no build or source directory${bad_rpath:+ ($bad_rpath)}" \
  test -z "$bad_rpath"

# Move the tree: everything below uses it where no configure step put it.
prefix="$tmp/prefix"
mv "$stage" "$prefix"
libdir="$prefix/$libdir_rel"

export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
version=$(pkg-config --modversion wasi_nn_llamacpp 2>/dev/null)
check "pkg-config --modversion wasi_nn_llamacpp (${version:-none})" test -n "$version"
[ -n "$version" ] || finish

# ---- CMake find_package consumer ----------------------------------------------
cb="$tmp/cmake-consumer"
if cmake -S "$src/tests/install" -B "$cb" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
     ${san_flags:+"-DCMAKE_C_FLAGS=$san_flags" "-DCMAKE_EXE_LINKER_FLAGS=$san_flags"} \
     >"$tmp/cmake-consumer.log" 2>&1 \
   && cmake --build "$cb" >>"$tmp/cmake-consumer.log" 2>&1; then
  ok "find_package(wasi_nn_llama) consumer configures and builds"
else
  not_ok "find_package(wasi_nn_llama) consumer configures and builds"
  show "$tmp/cmake-consumer.log"
fi
check "find_package found the installed package, version $version" \
  grep -qF "wasi_nn_llama $version from $libdir/cmake/wasi_nn_llama" "$tmp/cmake-consumer.log"
for abi in llamacpp backend; do
  exe="$cb/consumer_$abi"
  # No LD_LIBRARY_PATH: CMake's build RPATH points at the imported library.
  out=$(env -u LD_LIBRARY_PATH "$exe" 2>"$tmp/err")
  rc=$?
  if [ $rc -eq 0 ] && [ "$out" = "wasi-nn-llama $version" ]; then
    ok "find_package consumer_$abi prints '$out'"
  else
    not_ok "find_package consumer_$abi prints 'wasi-nn-llama $version' (rc $rc, got '$out')"
    show "$tmp/err"
  fi
  check "find_package consumer_$abi loads libwasi_nn_$abi from the prefix" \
    eval "env -u LD_LIBRARY_PATH ldd '$exe' | grep -q 'libwasi_nn_$abi[^ ]* => $libdir/'"
done

# ---- pkg-config consumer ------------------------------------------------------
for pkg in wasi_nn_llamacpp wasi_nn_backend; do
  exe="$tmp/pc_$pkg"
  defs=(-DEXPECTED_VERSION="\"$version\"")
  [ "$pkg" = wasi_nn_backend ] && defs+=(-DCONSUMER_LEGACY)
  # shellcheck disable=SC2046
  if ${CC:-cc} $san_flags "${defs[@]}" -o "$exe" "$src/tests/install/consumer.c" \
       $(pkg-config --cflags --libs "$pkg") >"$tmp/cc.log" 2>&1; then
    ok "cc consumer.c \$(pkg-config --cflags --libs $pkg)"
  else
    not_ok "cc consumer.c \$(pkg-config --cflags --libs $pkg)"
    show "$tmp/cc.log"
    continue
  fi
  out=$(LD_LIBRARY_PATH="$libdir" "$exe" 2>"$tmp/err")
  rc=$?
  if [ $rc -eq 0 ] && [ "$out" = "wasi-nn-llama $version" ]; then
    ok "pkg-config consumer ($pkg) prints '$out'"
  else
    not_ok "pkg-config consumer ($pkg) prints 'wasi-nn-llama $version' (rc $rc, got '$out')"
    show "$tmp/err"
  fi
done

# ---- the installed CLI ----------------------------------------------------------
# LD_DEBUG=files logs each object the loader opens: the library must be the
# installed one, never the build tree's (the CLI's fallback).
cli_args=(run -m "$model" -p "Once upon a time" --config '{"temp":0,"max_tokens":8}')
env -u WASI_NN_LLAMA_LIB -u LD_LIBRARY_PATH LD_DEBUG=files LD_DEBUG_OUTPUT="$tmp/ld" \
  "$prefix/bin/wasi-nn-llama" "${cli_args[@]}" >"$tmp/cli.out" 2>"$tmp/cli.err"
rc=$?
if [ $rc -eq 0 ] && grep -q '[[:alpha:]]' "$tmp/cli.out"; then
  ok "installed wasi-nn-llama run exits 0 and prints text: $(tr '\n' ' ' <"$tmp/cli.out" | head -c 80)"
else
  not_ok "installed wasi-nn-llama run exits 0 and prints text (rc $rc)"
  show "$tmp/cli.out"; show "$tmp/cli.err"
fi
loaded=$(cat "$tmp"/ld.* 2>/dev/null | sed -n 's/.*file=\([^ ]*libwasi_nn_llamacpp\.so[^ ]*\).*/\1/p' | sort -u)
installed_lib=$(readlink -f "$libdir/libwasi_nn_llamacpp.so")
from_prefix=1
[ -n "$loaded" ] || from_prefix=0
for f in $loaded; do
  [ "$(readlink -f "$f")" = "$installed_lib" ] || from_prefix=0
done
check "installed CLI loads the installed library (${loaded:-nothing logged})" test $from_prefix -eq 1

# As WAMR does: dlopen("libwasi_nn_llamacpp.so"), found through LD_LIBRARY_PATH.
env -u WASI_NN_LLAMA_LIB LD_LIBRARY_PATH="$libdir" \
  "$prefix/bin/wasi-nn-llama" "${cli_args[@]}" --lib libwasi_nn_llamacpp.so >"$tmp/cli2.out" 2>"$tmp/cli2.err"
rc=$?
if [ $rc -eq 0 ] && grep -q '[[:alpha:]]' "$tmp/cli2.out"; then
  ok "dlopen(\"libwasi_nn_llamacpp.so\") with LD_LIBRARY_PATH=<prefix>/lib works, as in WAMR"
else
  not_ok "dlopen(\"libwasi_nn_llamacpp.so\") with LD_LIBRARY_PATH=<prefix>/lib works, as in WAMR (rc $rc)"
  show "$tmp/cli2.err"
fi

finish
