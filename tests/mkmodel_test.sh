#!/usr/bin/env bash
# Acceptance test for wasi-nn-llama-mkmodel (docs/mkmodel.md).
#
# usage: tests/mkmodel_test.sh BUILD_DIR LLAMA_BIN_DIR [LLAMA_SRC_DIR]
#
#   BUILD_DIR      this project's CMake build dir (holds wasi-nn-llama-mkmodel)
#   LLAMA_BIN_DIR  llama.cpp's build/bin (llama-completion and/or llama-simple)
#   LLAMA_SRC_DIR  llama.cpp sources, for models/ggml-vocab-*.gguf
#                  (default: LLAMA_BIN_DIR/../../src, the layout of scripts/llama-cpp.sh)
#
# Environment: LLAMA_THREADS (default 1) threads for llama-completion;
# MKMODEL_KEEP=1 keeps the temp dir.
#
# Prints one PASS/FAIL/SKIP line per check; exits 1 if any check failed.
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR LLAMA_BIN_DIR [LLAMA_SRC_DIR]" >&2
    exit 2
fi
BUILD_DIR=$1
LLAMA_BIN_DIR=$2
LLAMA_SRC_DIR=${3:-$LLAMA_BIN_DIR/../../src}
THREADS=${LLAMA_THREADS:-1}

MK=
for c in "$BUILD_DIR/tools/mkmodel/wasi-nn-llama-mkmodel" "$BUILD_DIR/bin/wasi-nn-llama-mkmodel" \
         "$BUILD_DIR/wasi-nn-llama-mkmodel"; do
    if [ -x "$c" ]; then MK=$c; break; fi
done
if [ -z "$MK" ]; then
    MK=$(find "$BUILD_DIR" -type f -name wasi-nn-llama-mkmodel -perm -u+x 2>/dev/null | head -n 1)
fi
if [ -z "$MK" ]; then
    echo "FAIL: wasi-nn-llama-mkmodel not found under $BUILD_DIR"
    exit 1
fi

COMPLETION=$LLAMA_BIN_DIR/llama-completion
SIMPLE=$LLAMA_BIN_DIR/llama-simple
if [ ! -x "$COMPLETION" ] && [ ! -x "$SIMPLE" ]; then
    echo "FAIL: neither llama-completion nor llama-simple in $LLAMA_BIN_DIR"
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mkmodel-test.XXXXXX")
if [ "${MKMODEL_KEEP:-0}" = 1 ]; then
    echo "keeping $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
skip() { echo "SKIP: $*"; }

# mk NAME ARGS... -> writes $TMP/NAME.gguf, log in $TMP/NAME.mk.log
mk() {
    local name=$1; shift
    if "$MK" -q -o "$TMP/$name.gguf" "$@" >"$TMP/$name.mk.log" 2>&1; then
        return 0
    fi
    echo "--- mkmodel $* failed:"; cat "$TMP/$name.mk.log"
    return 1
}

# llama-completion logs through an asynchronous logger that can drop its last
# lines when the process exits right after a tiny model's millisecond run
# (llama.cpp issue 22142), so a run that exits 0 without visible output is
# retried. llama-simple logs synchronously but always runs 4 threads, which
# on a small, busy machine makes even a tiny model take seconds to minutes,
# so it is only the fallback, after four silent llama-completion runs.

# generate NAME -> loads $TMP/NAME.gguf and generates 8 tokens with llama.cpp
generate() {
    local name=$1 m=$TMP/$1.gguf out=$TMP/$1.gen.out err=$TMP/$1.gen.err rc n text try
    for try in 1 2 3 4 5; do
        if [ -x "$COMPLETION" ] && [ "$try" -le 4 ]; then
            timeout 600 "$COMPLETION" -m "$m" -no-cnv --temp 0 -n 8 -p Hello -t "$THREADS" --ignore-eos \
                </dev/null >"$out" 2>"$err"
            rc=$?
            n=$(sed -n 's/.* eval time = .* \/ *\([0-9][0-9]*\) runs.*/\1/p' "$err" | tail -n 1)
            text=$(tr -d '\n' <"$out")
            # the output echoes the prompt, then the generated pieces
            if [ -z "$n" ] && [ "${#text}" -gt 6 ]; then n=text; fi
        else
            timeout 600 "$SIMPLE" -m "$m" -n 8 Hello >"$out" 2>"$err"
            rc=$?
            n=$(sed -n 's/.*decoded \([0-9][0-9]*\) tokens.*/\1/p' "$err" | tail -n 1)
        fi
        if [ "$rc" -ne 0 ] || [ -n "$n" ]; then break; fi
    done
    if [ "$rc" -ne 0 ] || [ -z "$n" ] || [ "$n" = 0 ]; then
        echo "--- llama.cpp on $name: rc=$rc tokens=${n:-none}"; tail -n 15 "$err"
        return 1
    fi
    echo "    $name: $(stat -c %s "$m") bytes, generated:$(tr '\n' ' ' <"$out" | cut -c1-80)"
    return 0
}

# chat_check NAME PATTERN -> llama-completion applies the model's chat template
# (it logs an example conversation rendered with it, and the prompt's tokens)
chat_check() {
    local name=$1 pat=$2 err=$TMP/$1.chat.err try
    for try in 1 2 3 4 5; do
        timeout 600 "$COMPLETION" -m "$TMP/$name.gguf" -cnv -st -p Hello -n 4 --temp 0 -t "$THREADS" \
            </dev/null >"$TMP/$name.chat.out" 2>"$err" || return 1
        if grep -aq "chat template example" "$err" && grep -aqF -- "$pat" "$err"; then
            return 0
        fi
    done
    echo "--- chat template check on $name: no '$pat' in the example"; tail -n 15 "$err"
    return 1
}

echo "mkmodel: $MK"

# --- usage errors ----------------------------------------------------------
if "$MK" --help >/dev/null 2>&1; then pass "--help"; else fail "--help"; fi
"$MK" -q -o "$TMP/bad.gguf" --n-embd 40 --n-head 4 --n-head-kv 2 --type q8_0 >"$TMP/bad.log" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "multiple of 32" "$TMP/bad.log" && [ ! -e "$TMP/bad.gguf" ]; then
    pass "row length not a multiple of 32 for q8_0 is rejected"
else
    fail "bad shape: rc=$rc, $(cat "$TMP/bad.log")"
fi

# --- 1. reproducibility -----------------------------------------------------
start=$(date +%s%N)
if mk m135 --preset 135m; then
    end=$(date +%s%N)
    sha1=$(sha256sum "$TMP/m135.gguf" | cut -d' ' -f1)
    size=$(stat -c %s "$TMP/m135.gguf")
    echo "    135m q8_0: $size bytes, sha256 $sha1, written in $(( (end - start) / 1000000 )) ms"
    cp "$TMP/m135.gguf" "$TMP/m135.first"
    if mk m135 --preset 135m; then
        sha2=$(sha256sum "$TMP/m135.gguf" | cut -d' ' -f1)
        if [ "$sha1" = "$sha2" ]; then pass "135m: same args -> identical sha256"; else fail "135m: sha256 differs ($sha1 vs $sha2)"; fi
    else
        fail "135m: second write"
    fi
    rm -f "$TMP/m135.first"
else
    fail "135m: write"
fi
if mk seed7 --preset tiny --seed 7 && mk seed42 --preset tiny; then
    if cmp -s "$TMP/seed7.gguf" "$TMP/seed42.gguf"; then fail "different seeds gave identical files"; else pass "different seed -> different file"; fi
else
    fail "tiny seed files"
fi

# --- 2. llama.cpp loads and generates -----------------------------------
if [ -e "$TMP/m135.gguf" ]; then
    if generate m135; then pass "135m q8_0 loads and generates"; else fail "135m q8_0 load/generate"; fi
fi
for t in f32 f16 q8_0 q4_0; do
    if mk "tiny-$t" --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 --n-vocab 1000 --type "$t" \
        && generate "tiny-$t"; then
        pass "tiny $t loads and generates"
    else
        fail "tiny $t"
    fi
done
if mk tiny-tied --preset tiny --tie-embeddings --type q4_0 && generate tiny-tied; then
    pass "tiny q4_0 with tied embeddings loads and generates"
else
    fail "tiny tied embeddings"
fi

# --- 3. real tokenizers -----------------------------------------------------
VOCABS=$LLAMA_SRC_DIR/models
if [ ! -d "$VOCABS" ]; then
    skip "vocab checks: $VOCABS not found (pass LLAMA_SRC_DIR)"
else
    # Phi-3's SentencePiece vocabulary carries a chat template; Llama 2's does not,
    # so it gets --chat-template chatml; Llama 3's exercises BPE merges.
    if [ -f "$VOCABS/ggml-vocab-phi-3.gguf" ]; then
        if mk v-phi3 --preset tiny --vocab-from "$VOCABS/ggml-vocab-phi-3.gguf" && generate v-phi3; then
            pass "--vocab-from ggml-vocab-phi-3.gguf loads and generates"
        else
            fail "--vocab-from ggml-vocab-phi-3.gguf"
        fi
        if [ -x "$COMPLETION" ] && [ -e "$TMP/v-phi3.gguf" ]; then
            if chat_check v-phi3 "<|user|>"; then pass "phi-3 chat template copied and applied"; else fail "phi-3 chat template"; fi
        fi
    else
        skip "ggml-vocab-phi-3.gguf missing"
    fi
    if [ -f "$VOCABS/ggml-vocab-llama-spm.gguf" ]; then
        if mk v-spm --preset 135m --vocab-from "$VOCABS/ggml-vocab-llama-spm.gguf" --chat-template chatml \
            && generate v-spm; then
            pass "135m --vocab-from ggml-vocab-llama-spm.gguf --chat-template chatml loads and generates"
        else
            fail "--vocab-from ggml-vocab-llama-spm.gguf"
        fi
        if [ -x "$COMPLETION" ] && [ -e "$TMP/v-spm.gguf" ]; then
            if chat_check v-spm "<|im_start|>"; then pass "chatml template written and applied"; else fail "chatml template"; fi
        fi
    else
        skip "ggml-vocab-llama-spm.gguf missing"
    fi
    if [ -f "$VOCABS/ggml-vocab-llama-bpe.gguf" ]; then
        if mk v-bpe --preset tiny --vocab-from "$VOCABS/ggml-vocab-llama-bpe.gguf" && generate v-bpe; then
            pass "--vocab-from ggml-vocab-llama-bpe.gguf (BPE) loads and generates"
        else
            fail "--vocab-from ggml-vocab-llama-bpe.gguf"
        fi
    else
        skip "ggml-vocab-llama-bpe.gguf missing"
    fi
fi
if [ -x "$COMPLETION" ]; then
    if mk chatml --preset tiny --chat-template chatml && chat_check chatml "<|im_start|>"; then
        pass "synthetic vocab with --chat-template chatml"
    else
        fail "synthetic vocab with --chat-template chatml"
    fi
fi

# --- 4. BERT embedding models and rerankers ----------------------------------
# embed NAME ARGS... -> llama-embedding loads $TMP/NAME.gguf and prints a
# finite vector per prompt line (JSON), or with --pooling rank a finite score
# per line ("rerank score i: x"; its JSON output holds one score and then
# memory it never wrote). -lv 4 makes llama.cpp's own lines (the pooling
# type) show. Its logger can drop the last lines at exit: tried 3 times.
EMBEDDING=$LLAMA_BIN_DIR/llama-embedding
embed() {
    local name=$1 want=$2; shift 2
    local out=$TMP/$name.emb.out err=$TMP/$name.emb.err try got
    for try in 1 2 3; do
        timeout 600 "$EMBEDDING" -m "$TMP/$name.gguf" -t "$THREADS" -lv 4 "$@" \
            >"$out" 2>"$err" || { echo "--- llama-embedding on $name failed"; tail -n 15 "$err"; return 1; }
        got=$(grep -c '"embedding": \[\|^rerank score [0-9]*: *-\?[0-9]' "$out")
        if [ "$got" = "$want" ] && ! grep -qi 'nan\|inf' <(grep '"embedding": \[\|^rerank score' "$out"); then
            return 0
        fi
    done
    echo "--- llama-embedding on $name: $got finite outputs, $want expected"; tail -n 15 "$out"
    return 1
}
if [ ! -x "$EMBEDDING" ]; then
    skip "BERT checks: $EMBEDDING not found"
else
    if mk bert-synth --preset bert-tiny &&
        embed bert-synth 2 --embd-output-format json -p "$(printf 'hello world\nthe cat sat')"; then
        pass "bert-tiny (synthetic WordPiece vocab) embeds two inputs with llama-embedding"
    else
        fail "bert-tiny synthetic vocab"
    fi
    if mk bert-s1 --preset bert-tiny && mk bert-s2 --preset bert-tiny && cmp -s "$TMP/bert-s1.gguf" "$TMP/bert-s2.gguf"; then
        pass "bert: same args -> identical file"
    else
        fail "bert files differ between runs"
    fi
    if [ -f "$VOCABS/ggml-vocab-bert-bge.gguf" ]; then
        if mk bert-bge --preset bert-tiny --pooling cls --vocab-from "$VOCABS/ggml-vocab-bert-bge.gguf" &&
            embed bert-bge 1 --embd-output-format json -p "what is a panda?" &&
            grep -aq "pooling type *= 2" "$TMP/bert-bge.emb.err"; then
            pass "bert --pooling cls --vocab-from ggml-vocab-bert-bge.gguf embeds (pooling type 2 in the file)"
        else
            fail "bert with the bge vocabulary"
        fi
        if mk bert-rr --preset bert-tiny --reranker --vocab-from "$VOCABS/ggml-vocab-bert-bge.gguf" &&
            embed bert-rr 2 --pooling rank --embd-normalize -1 -p "$(printf 'q\tdoc one\nq\tdoc two')"; then
            pass "bert --reranker scores query/document pairs with llama-embedding"
        else
            fail "bert reranker"
        fi
    else
        skip "ggml-vocab-bert-bge.gguf missing"
    fi
fi
if "$MK" -q -o "$TMP/bad-rr.gguf" --reranker >"$TMP/bad-rr.log" 2>&1; then
    fail "--reranker without --arch bert was accepted"
else
    pass "--reranker needs --arch bert"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "mkmodel_test: $FAILS check(s) FAILED"
    exit 1
fi
echo "mkmodel_test: all checks passed"
