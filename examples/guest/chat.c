/*
 * chat.c: a wasm32-wasi guest that chats with a GGUF model through WAMR's
 * wasi-nn host ("wasi_ephemeral_nn" import module) and our
 * libwasi_nn_llamacpp.so backend.
 *
 *   iwasm [--dir=...] [--env=CHAT_OPTIONS=JSON] chat.wasm \
 *         MODEL_PATH [CONFIG_JSON] MESSAGE...
 *
 * MODEL_PATH is handed to load_by_name_with_config unchanged; WAMR passes it
 * straight to the backend, which opens it on the HOST (it is not resolved
 * through the guest's preopened directories). CONFIG_JSON is the optional
 * load-time config; it is recognised by a leading '{'. Use "--" before the
 * first MESSAGE if a message itself starts with '{'. For each MESSAGE the
 * guest does set_input(0) -> compute -> get_output(0) (reply text) ->
 * get_output(1) (metadata JSON). If the environment variable CHAT_OPTIONS is
 * set, it is sent before each message as per-request JSON options with
 * set_input(1). CHAT_OUTPUT_CAP=N makes the first get_output of each index
 * offer only N bytes (default 4096): a reply that does not fit comes back as
 * too_large with the size needed, which the guest reports on stderr and
 * retries with (the pattern every guest should follow).
 *
 * Build: scripts/build-guest.sh (clang-16 --target=wasm32-wasi). See
 * docs/wamr.md.
 *
 * ---------------------------------------------------------------------------
 * Wasm-level ABI (WAMR 2.4, built with WAMR_BUILD_WASI_EPHEMERAL_NN=1), from
 * bytecodealliance/wasm-micro-runtime:
 *   core/iwasm/libraries/wasi-nn/src/wasi_nn.c, native_symbols_wasi_nn[]
 *   (REG_NATIVE_FUNC; in WAMR signature strings '*' is an i32 address into
 *   linear memory and 'i' an i32):
 *     load_by_name_with_config "(*i*i*)i"  (name, name_len, config,
 *                                           config_len, graph *out) -> error
 *     init_execution_context   "(i*)i"     (graph, ctx *out) -> error
 *     set_input                "(ii*)i"    (ctx, index, tensor *) -> error
 *     compute                  "(i)i"      (ctx) -> error
 *     get_output               "(ii*i*)i"  (ctx, index, buf, buf_max_size,
 *                                           uint32_t *out_size) -> error
 *   so every parameter and the result are i32 in the wasm function type.
 * Tensor layout: core/iwasm/libraries/wasi-nn/src/utils/wasi_nn_app_native.h
 *   (tensor_wasm, ephemeral variant) and the guest view in
 *   core/iwasm/libraries/wasi-nn/include/wasi_nn_types.h:
 *     offset  0  u32 dimensions.buf    (address of u32[rank])
 *     offset  4  u32 dimensions.size   (rank)
 *     offset  8  u8  type + 3 pad      (host reads a 4-byte enum: pad = 0)
 *     offset 12  u32 data.buf
 *     offset 16  u32 data.size         (bytes)
 *   tensor types (ephemeral): fp16 0, fp32 1, fp64 2, u8 3, i32 4, i64 5.
 * Error codes: core/iwasm/libraries/wasi-nn/include/wasi_nn_types.h.
 *
 * String rules: lengths are passed WITHOUT the trailing NUL. WAMR 2.4.x
 * (2.4.0 to 2.4.5, read in its source) additionally insists that the byte
 * just past name_len / config_len is a NUL (name[name_len] == '\0') and that
 * config_len != 0, else the host answers invalid_argument without calling
 * the backend. So this guest always passes NUL-terminated C strings with
 * strlen() as the length, and sends "{}" when no CONFIG_JSON is given.
 *
 * What WAMR 2.4.5 forwards to the backend: init_backend (once per instance,
 * at its first load; never init_backend_with_config), load, load_by_name,
 * load_by_name_with_config, init_execution_context, set_input (any index),
 * compute, get_output (any index; buf_max_size arrives as the capacity) and
 * deinit_backend (when the instance is destroyed). Nothing else of the
 * backend's ABI is reachable from a guest: no named sessions, no
 * close_execution_context, no streaming, no get_backend_status.
 * ---------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__wasm32__)
#error "chat.c is a wasm32-wasi guest; build it with scripts/build-guest.sh"
#endif

/* ---- wasi_ephemeral_nn types (wasm32 layout) ---------------------------- */

typedef uint32_t nn_error; /* wasi_nn_error, returned as i32 */
typedef uint32_t nn_graph;
typedef uint32_t nn_exec_ctx;

enum {
    NN_SUCCESS = 0,
    NN_INVALID_ARGUMENT = 1,
    NN_INVALID_ENCODING = 2,
    NN_MISSING_MEMORY = 3,
    NN_BUSY = 4,
    NN_RUNTIME_ERROR = 5,
    NN_UNSUPPORTED_OPERATION = 6,
    NN_TOO_LARGE = 7,
    NN_NOT_FOUND = 8,
    NN_END_OF_SEQUENCE = 100,
    NN_CONTEXT_FULL = 101,
    NN_PROMPT_TOO_LONG = 102,
    NN_MODEL_NOT_FOUND = 103,
};

enum { NN_TYPE_U8 = 3 }; /* ephemeral tensor_type: fp16 fp32 fp64 u8 i32 i64 */

typedef struct {
    uint32_t *buf;
    uint32_t size;
} nn_tensor_dimensions;

typedef struct {
    uint8_t *buf;
    uint32_t size;
} nn_tensor_data;

typedef struct {
    nn_tensor_dimensions dimensions; /* by value in wasi_ephemeral_nn */
    uint8_t type;
    uint8_t _pad[3];
    nn_tensor_data data;
} nn_tensor;

_Static_assert(sizeof(void *) == 4, "wasm32 only");
_Static_assert(offsetof(nn_tensor, dimensions.buf) == 0, "tensor layout");
_Static_assert(offsetof(nn_tensor, dimensions.size) == 4, "tensor layout");
_Static_assert(offsetof(nn_tensor, type) == 8, "tensor layout");
_Static_assert(offsetof(nn_tensor, data.buf) == 12, "tensor layout");
_Static_assert(offsetof(nn_tensor, data.size) == 16, "tensor layout");
_Static_assert(sizeof(nn_tensor) == 20, "tensor layout");

/* ---- imports ------------------------------------------------------------ */

#define NN_IMPORT(name) \
    __attribute__((import_module("wasi_ephemeral_nn"), import_name(name)))

NN_IMPORT("load_by_name_with_config")
nn_error nn_load_by_name_with_config(const char *name, uint32_t name_len,
                                     const char *config, uint32_t config_len,
                                     nn_graph *graph_out);

NN_IMPORT("init_execution_context")
nn_error nn_init_execution_context(nn_graph graph, nn_exec_ctx *ctx_out);

NN_IMPORT("set_input")
nn_error nn_set_input(nn_exec_ctx ctx, uint32_t index, nn_tensor *tensor);

NN_IMPORT("compute")
nn_error nn_compute(nn_exec_ctx ctx);

NN_IMPORT("get_output")
nn_error nn_get_output(nn_exec_ctx ctx, uint32_t index, uint8_t *out_buf,
                       uint32_t out_buf_max_size, uint32_t *out_size);

/* ---- helpers ------------------------------------------------------------ */

static const char *
nn_error_name(nn_error e)
{
    switch (e) {
        case NN_SUCCESS: return "success";
        case NN_INVALID_ARGUMENT: return "invalid_argument";
        case NN_INVALID_ENCODING: return "invalid_encoding";
        case NN_MISSING_MEMORY: return "missing_memory";
        case NN_BUSY: return "busy";
        case NN_RUNTIME_ERROR: return "runtime_error";
        case NN_UNSUPPORTED_OPERATION: return "unsupported_operation";
        case NN_TOO_LARGE: return "too_large";
        case NN_NOT_FOUND: return "not_found";
        case NN_END_OF_SEQUENCE: return "end_of_sequence";
        case NN_CONTEXT_FULL: return "context_full";
        case NN_PROMPT_TOO_LONG: return "prompt_tool_long";
        case NN_MODEL_NOT_FOUND: return "model_not_found";
        default: return "unknown_error";
    }
}

static int
report(const char *what, nn_error e)
{
    fprintf(stderr, "chat: %s failed: error %u (%s)\n", what, (unsigned)e,
            nn_error_name(e));
    return 1;
}

static int
starts_with_brace(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '{';
}

/* Sends a text (u8) tensor with dimensions {len}. `text` must be
 * NUL-terminated; the NUL is not counted. The dimensions array is 4 words
 * long because WAMR's host validates sizeof(its native tensor_dimensions)
 * bytes at the dimensions address, which is more than one u32. */
static nn_error
set_text_input(nn_exec_ctx ctx, uint32_t index, const char *text)
{
    static uint32_t dims[4];
    nn_tensor t;
    size_t len = strlen(text);

    if (len > UINT32_MAX)
        return NN_TOO_LARGE;
    memset(&t, 0, sizeof(t)); /* zero the pad: host reads type as 4 bytes */
    memset(dims, 0, sizeof(dims));
    dims[0] = (uint32_t)len;
    t.dimensions.buf = dims;
    t.dimensions.size = 1;
    t.type = NN_TYPE_U8;
    t.data.buf = (uint8_t *)text;
    t.data.size = (uint32_t)len;
    return nn_set_input(ctx, index, &t);
}

/* Reads output `index` into a growing buffer, offering `cap` bytes first.
 * On too_large the backend sets *out_size to the size needed and writes
 * nothing; retry with that size. */
#define OUTPUT_DEFAULT_CAP 4096u
#define OUTPUT_MAX_CAP (64u * 1024u * 1024u)

static nn_error
get_text_output(nn_exec_ctx ctx, uint32_t index, uint32_t cap,
                char **text_out, uint32_t *len_out)
{
    uint8_t *buf = NULL;

    for (int attempt = 0; attempt < 8; attempt++) {
        uint8_t *nbuf = realloc(buf, (size_t)cap + 1);
        uint32_t size = 0;
        nn_error e;

        if (nbuf == NULL) {
            free(buf);
            return NN_MISSING_MEMORY;
        }
        buf = nbuf;
        e = nn_get_output(ctx, index, buf, cap, &size);
        if (e == NN_SUCCESS) {
            if (size > cap) { /* a conforming backend never does this */
                free(buf);
                return NN_RUNTIME_ERROR;
            }
            buf[size] = '\0';
            *text_out = (char *)buf;
            *len_out = size;
            return NN_SUCCESS;
        }
        if (e != NN_TOO_LARGE || size <= cap || size > OUTPUT_MAX_CAP) {
            free(buf);
            return e;
        }
        fprintf(stderr,
                "chat: get_output(index %u): too_large, %u bytes needed "
                "(offered %u); retrying\n",
                (unsigned)index, (unsigned)size, (unsigned)cap);
        cap = size;
    }
    free(buf);
    return NN_TOO_LARGE;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: chat.wasm MODEL_PATH [CONFIG_JSON] [--] MESSAGE...\n"
            "  MODEL_PATH   GGUF path, opened by the host (not via --dir)\n"
            "  CONFIG_JSON  load-time config, e.g. '{\"n_predict\":32}'\n"
            "  MESSAGE      one chat turn per argument\n"
            "  env CHAT_OPTIONS=JSON  per-request options (set_input 1)\n"
            "  env CHAT_OUTPUT_CAP=N  first output buffer size (default 4096)\n");
}

int
main(int argc, char **argv)
{
    const char *model;
    const char *config = "{}"; /* WAMR 2.4.x rejects config_len == 0 */
    const char *request_options;
    const char *cap_text;
    uint32_t output_cap = OUTPUT_DEFAULT_CAP;
    nn_graph graph = 0;
    nn_exec_ctx ctx = 0;
    nn_error e;
    int argi = 2;

    if (argc < 3) {
        usage();
        return 2;
    }
    model = argv[1];
    if (model[0] == '\0') {
        fprintf(stderr, "chat: MODEL_PATH is empty\n");
        return 2;
    }
    if (argi < argc && strcmp(argv[argi], "--") != 0
        && starts_with_brace(argv[argi])) {
        config = argv[argi++];
    }
    if (argi < argc && strcmp(argv[argi], "--") == 0)
        argi++;
    if (argi >= argc) {
        fprintf(stderr, "chat: no MESSAGE given\n");
        usage();
        return 2;
    }
    request_options = getenv("CHAT_OPTIONS");
    if (request_options != NULL && request_options[0] == '\0')
        request_options = NULL;
    cap_text = getenv("CHAT_OUTPUT_CAP");
    if (cap_text != NULL && cap_text[0] != '\0') {
        char *end = NULL;
        unsigned long v = strtoul(cap_text, &end, 10);
        if (*end != '\0' || v > OUTPUT_MAX_CAP) {
            fprintf(stderr, "chat: CHAT_OUTPUT_CAP must be 0..%u\n",
                    OUTPUT_MAX_CAP);
            return 2;
        }
        output_cap = (uint32_t)v;
    }

    e = nn_load_by_name_with_config(model, (uint32_t)strlen(model), config,
                                    (uint32_t)strlen(config), &graph);
    if (e != NN_SUCCESS) {
        fprintf(stderr, "chat: cannot load model '%s' with config %s\n",
                model, config);
        return report("load_by_name_with_config", e);
    }

    e = nn_init_execution_context(graph, &ctx);
    if (e != NN_SUCCESS)
        return report("init_execution_context", e);

    for (; argi < argc; argi++) {
        const char *message = argv[argi];
        char *reply = NULL, *meta = NULL;
        uint32_t reply_len = 0, meta_len = 0;

        if (request_options != NULL) {
            e = set_text_input(ctx, 1, request_options);
            if (e != NN_SUCCESS)
                return report("set_input(index 1, CHAT_OPTIONS)", e);
        }
        e = set_text_input(ctx, 0, message);
        if (e != NN_SUCCESS)
            return report("set_input(index 0)", e);

        e = nn_compute(ctx);
        if (e != NN_SUCCESS)
            return report("compute", e);

        e = get_text_output(ctx, 0, output_cap, &reply, &reply_len);
        if (e != NN_SUCCESS)
            return report("get_output(index 0)", e);
        printf("user: %s\nassistant: ", message);
        fwrite(reply, 1, reply_len, stdout);
        printf("\n");
        free(reply);

        e = get_text_output(ctx, 1, output_cap, &meta, &meta_len);
        if (e != NN_SUCCESS)
            return report("get_output(index 1)", e);
        printf("metadata: ");
        fwrite(meta, 1, meta_len, stdout);
        printf("\n");
        free(meta);
        fflush(stdout);
    }
    return 0;
}
