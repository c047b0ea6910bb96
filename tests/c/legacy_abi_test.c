/*
 * libwasi_nn_backend.so driven the way the original wasi_nn_backend
 * project's test suite drives it: dlopen() by file name, every entry point
 * through dlsym(), the legacy types (wasi_nn_backend.h is included for the
 * types only; nothing here links against the library).
 *
 * Legacy rules checked here: u8 is 4; a text tensor's length is the product
 * of its dimensions, or the data is NUL-terminated when the dimensions are
 * absent or empty; output gets a terminating NUL that *out_size counts;
 * get_output's *out_size is the capacity on entry; too_large is 6 and
 * not_found 7. Plus bad input at every entry point, with the exact code.
 *
 * Prints one "ok - ..." / "not ok - ..." line per check and ends with
 * "N passed, M failed"; exits non-zero when anything failed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasi_nn_backend.h"

#define MODEL WNL_MODELS_DIR "/stories260K.gguf"
#define MODEL_V1 WNL_MODELS_DIR "/tinyllamas-stories-260k-f32.gguf"
#define MISSING_MODEL WNL_MODELS_DIR "/no-such-model.gguf"
#define LIBRARY WNL_LIB_DIR "/libwasi_nn_backend.so"

static const char *const PROMPT = "Once upon a time";
/* stories260K, greedy, 32 tokens, the prompt not echoed (models/README.md). */
static const char *const GOLDEN =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";
/* The original project's configs nest settings by section. */
static const char *const BACKEND_CONFIG =
    "{\"model\":{\"n_gpu_layers\":98,\"ctx_size\":2048,\"n_predict\":32,\"batch_size\":512,\"threads\":2},"
    "\"sampling\":{\"temp\":0}}";

/* ---------------------------------------------------------------- checks */

static int g_passed, g_failed;

static int check(int cond, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", cond ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (cond) g_passed++;
    else g_failed++;
    return cond;
}

static int expect_code(wasi_nn_error got, wasi_nn_error want, const char *what) {
    if (got == want) return check(1, "%s -> %d", what, (int)want);
    return check(0, "%s -> got %d, want %d", what, (int)got, (int)want);
}

static int expect_text(const char *got, const char *want, const char *what) {
    if (strcmp(got, want) == 0) return check(1, "%s", what);
    return check(0, "%s: got \"%s\", want \"%s\"", what, got, want);
}

/* --------------------------------------------------------- the library */

/* The original project's function-pointer types. */
typedef wasi_nn_error (*init_backend_func_t)(void **);
typedef wasi_nn_error (*init_backend_with_config_func_t)(void **, const char *, uint32_t);
typedef wasi_nn_error (*deinit_backend_func_t)(void *);
typedef wasi_nn_error (*load_func_t)(void *, graph_builder_array *, graph_encoding, execution_target, graph *);
typedef wasi_nn_error (*load_by_name_func_t)(void *, const char *, uint32_t, graph *);
typedef wasi_nn_error (*load_by_name_with_config_func_t)(void *, const char *, uint32_t, const char *, uint32_t,
                                                        graph *);
typedef wasi_nn_error (*init_execution_context_func_t)(void *, graph, graph_execution_context *);
typedef wasi_nn_error (*init_execution_context_with_session_id_func_t)(void *, const char *,
                                                                      graph_execution_context *);
typedef wasi_nn_error (*close_execution_context_func_t)(void *, graph_execution_context);
typedef wasi_nn_error (*set_input_func_t)(void *, graph_execution_context, uint32_t, tensor *);
typedef wasi_nn_error (*compute_func_t)(void *, graph_execution_context);
typedef wasi_nn_error (*get_output_func_t)(void *, graph_execution_context, uint32_t, uint8_t *, uint32_t *);
typedef wasi_nn_error (*run_inference_func_t)(void *, graph_execution_context, uint32_t, tensor *, uint8_t *,
                                              uint32_t *, const char *, uint32_t);
typedef wasi_nn_error (*get_backend_status_func_t)(void *, backend_status_type, char *, uint32_t);
typedef wasi_nn_error (*compute_single_func_t)(void *, graph_execution_context);
typedef wasi_nn_error (*get_output_single_func_t)(void *, graph_execution_context, uint32_t, uint8_t *,
                                                  uint32_t *);
typedef wasi_nn_error (*fini_single_func_t)(void *, graph_execution_context);
typedef wasi_nn_error (*unload_func_t)(void *, graph);
typedef wasi_nn_error (*reload_aliases_func_t)(void *);
typedef wasi_nn_error (*swap_graph_func_t)(void *, graph, const char *, uint32_t, const char *, uint32_t);
typedef const char *(*version_func_t)(void);

static struct {
    void *handle;
    init_backend_func_t init_backend;
    deinit_backend_func_t deinit_backend;
    load_func_t load;
    load_by_name_func_t load_by_name;
    load_by_name_with_config_func_t load_by_name_with_config;
    init_execution_context_func_t init_execution_context;
    set_input_func_t set_input;
    compute_func_t compute;
    get_output_func_t get_output;
    init_backend_with_config_func_t init_backend_with_config;
    init_execution_context_with_session_id_func_t init_execution_context_with_session_id;
    close_execution_context_func_t close_execution_context;
    run_inference_func_t run_inference;
    get_backend_status_func_t get_backend_status;
    compute_single_func_t compute_single;
    get_output_single_func_t get_output_single;
    fini_single_func_t fini_single;
    unload_func_t unload;
    swap_graph_func_t swap_graph;
    reload_aliases_func_t reload_aliases;
    version_func_t wasi_nn_llama_version;
} api;

static void *resolve(const char *name) {
    void *p = dlsym(api.handle, name);
    check(p != NULL, "symbol %s resolves", name);
    return p;
}

static int open_library(void) {
    api.handle = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!check(api.handle != NULL, "dlopen(%s)", LIBRARY)) {
        printf("# %s\n", dlerror());
        return 0;
    }
    int before = g_failed;
#define RESOLVE(name) *(void **)&api.name = resolve(#name)
    RESOLVE(init_backend);
    RESOLVE(deinit_backend);
    RESOLVE(load);
    RESOLVE(load_by_name);
    RESOLVE(load_by_name_with_config);
    RESOLVE(init_execution_context);
    RESOLVE(set_input);
    RESOLVE(compute);
    RESOLVE(get_output);
    RESOLVE(init_backend_with_config);
    RESOLVE(init_execution_context_with_session_id);
    RESOLVE(close_execution_context);
    RESOLVE(run_inference);
    RESOLVE(get_backend_status);
    RESOLVE(compute_single);
    RESOLVE(get_output_single);
    RESOLVE(fini_single);
    RESOLVE(unload);
    RESOLVE(swap_graph);
    RESOLVE(reload_aliases);
    RESOLVE(wasi_nn_llama_version);
#undef RESOLVE
    static const char *const hidden[] = {"llama_decode", "ggml_init", "gguf_init_empty", "common_tokenize",
                                         "llama_backend_init", "llama_model_load_from_file"};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
        check(dlsym(api.handle, hidden[i]) == NULL, "symbol %s is not exported", hidden[i]);
    }
    const char *v = api.wasi_nn_llama_version ? api.wasi_nn_llama_version() : NULL;
    check(v != NULL && v[0] != '\0', "wasi_nn_llama_version() is \"%s\"", v ? v : "(null)");
    return g_failed == before;
}

/* --------------------------------------------------------------- helpers */

/* The original suite's text tensor: u8, data a NUL-terminated string, the
 * dimensions given but empty ({NULL, 0}). */
static tensor_dimensions no_dims = {NULL, 0};

static tensor *cstring_tensor(tensor *t, const char *text) {
    t->dimensions = &no_dims;
    t->type = u8;
    t->data = (uint8_t *)text;
    return t;
}

/* A text tensor whose length is its dimensions, {len}: no NUL needed. */
typedef struct {
    tensor t;
    tensor_dimensions dims;
    uint32_t dim[2];
} sized_tensor;

static tensor *sized_text(sized_tensor *st, const char *text, uint32_t len) {
    memset(st, 0, sizeof *st);
    st->dim[0] = len;
    st->dims.buf = st->dim;
    st->dims.size = 1;
    st->t.dimensions = &st->dims;
    st->t.type = u8;
    st->t.data = (uint8_t *)text;
    return &st->t;
}

static wasi_nn_error set_cstring(void *ctx, graph_execution_context exec, uint32_t index, const char *text) {
    tensor t;
    return api.set_input(ctx, exec, index, cstring_tensor(&t, text));
}

/* run_inference with a NUL-terminated prompt into out[capacity]. */
static wasi_nn_error infer(void *ctx, graph_execution_context exec, uint32_t index, const char *prompt,
                           const char *runtime_config, char *out, uint32_t capacity, uint32_t *size) {
    tensor t;
    *size = capacity;
    out[0] = '\0';
    return api.run_inference(ctx, exec, index, cstring_tensor(&t, prompt), (uint8_t *)out, size, runtime_config,
                             runtime_config ? (uint32_t)strlen(runtime_config) : 0);
}

/* The output is a NUL-terminated string and *out_size counts that NUL. */
static int nul_counted(const char *out, uint32_t size, uint32_t capacity) {
    return size >= 1 && size <= capacity && out[size - 1] == '\0' && strlen(out) == size - 1;
}

static unsigned char *read_file(const char *path, uint32_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (uint32_t)n;
    return buf;
}

static wasi_nn_error load_bytes(void *ctx, const unsigned char *bytes, uint32_t size, graph_encoding enc,
                                graph *g) {
    graph_builder b = {(uint8_t *)bytes, size};
    graph_builder_array arr = {&b, 1};
    return api.load(ctx, &arr, enc, cpu, g);
}

static wasi_nn_error load_name(void *ctx, const char *path, const char *config, graph *g) {
    return api.load_by_name_with_config(ctx, path, (uint32_t)strlen(path), config,
                                        config ? (uint32_t)strlen(config) : 0, g);
}

static int all_bytes(const char *buf, size_t n, char value) {
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != value) return 0;
    }
    return 1;
}

/* ------------------------------------------------------- the main path */

static void test_run_inference(void *ctx) {
    char out[4096];
    uint32_t size = 0;
    graph_execution_context exec = 0;
    const uint32_t len = (uint32_t)strlen(GOLDEN);

    if (!expect_code(api.init_execution_context_with_session_id(ctx, "session-a", &exec), success,
                     "init_execution_context_with_session_id(\"session-a\")"))
        return;
    /* NULL runtime config: the backend's config (temp 0, n_predict 32). */
    memset(out, 0x5a, sizeof out);
    wasi_nn_error err = infer(ctx, exec, 0, PROMPT, NULL, out, sizeof out, &size);
    if (expect_code(err, success, "run_inference, NUL-terminated prompt, NULL runtime config")) {
        expect_text(out, GOLDEN, "run_inference output equals the golden text");
        check(size == len + 1 && nul_counted(out, size, sizeof out), "the NUL is written and counted (%u)", size);
        check(all_bytes(out + size, sizeof out - size, 0x5a), "nothing written past the NUL");
    }
    /* A runtime config: 8 tokens. The session continues its transcript. */
    err = infer(ctx, exec, 0, PROMPT, "{\"max_tokens\":8}", out, sizeof out, &size);
    if (expect_code(err, success, "run_inference, runtime config {\"max_tokens\":8}")) {
        check(nul_counted(out, size, sizeof out), "the NUL is written and counted (%u)", size);
        check(size - 1 < len && size > 1, "the output is shorter (%u bytes)", size - 1);
    }
    char meta[4096];
    uint32_t meta_size = 0;
    err = infer(ctx, exec, 1, " The end.", "{\"max_tokens\":8}", meta, sizeof meta, &meta_size);
    if (expect_code(err, success, "run_inference index 1 (metadata)")) {
        check(strstr(meta, "\"output_tokens\":8") != NULL, "metadata: output_tokens is 8");
        check(strstr(meta, "\"session_id\":\"session-a\"") != NULL, "metadata: session_id is session-a");
        check(nul_counted(meta, meta_size, sizeof meta), "metadata: NUL written and counted");
    }
    expect_code(api.close_execution_context(ctx, exec), success, "close_execution_context");

    /* On a fresh session, 8 tokens are the start of the 32. */
    if (expect_code(api.init_execution_context_with_session_id(ctx, "session-b", &exec), success,
                    "init_execution_context_with_session_id(\"session-b\")")) {
        err = infer(ctx, exec, 0, PROMPT, "{\"max_tokens\":8}", out, sizeof out, &size);
        if (expect_code(err, success, "run_inference, max_tokens 8, fresh session")) {
            check(size > 1 && size - 1 < len && strncmp(out, GOLDEN, size - 1) == 0,
                  "8 greedy tokens are a prefix of the 32 (\"%s\")", out);
        }
        /* Too small: too_large (6), the size needed, nothing written. */
        char small[16];
        tensor t;
        const char *cfg = "{\"max_tokens\":8}";
        memset(small, 0x5a, sizeof small);
        size = sizeof small;
        err = api.run_inference(ctx, exec, 0, cstring_tensor(&t, PROMPT), (uint8_t *)small, &size, cfg,
                                (uint32_t)strlen(cfg));
        expect_code(err, too_large, "run_inference into a 16-byte buffer");
        check(size > sizeof small, "... *out_size is the size needed (%u)", size);
        check(all_bytes(small, sizeof small, 0x5a), "... the buffer is untouched");
        api.close_execution_context(ctx, exec);
    }
}

static void test_set_input_compute_get_output(void *ctx, graph g) {
    char out[4096];
    uint32_t size = 0;
    graph_execution_context exec = 0;
    const uint32_t need = (uint32_t)strlen(GOLDEN) + 1;
    sized_tensor st;

    if (!expect_code(api.init_execution_context(ctx, g, &exec), success, "init_execution_context")) return;
    /* Length from the dimensions: the bytes after it must not be read. */
    const char *padded = "Once upon a timeJUNK AFTER THE PROMPT";
    expect_code(api.set_input(ctx, exec, 0, sized_text(&st, padded, (uint32_t)strlen(PROMPT))), success,
                "set_input, dims {len}, text without a NUL");
    expect_code(api.compute(ctx, exec), success, "compute");

    memset(out, 0x5a, sizeof out);
    size = sizeof out;
    wasi_nn_error err = api.get_output(ctx, exec, 0, (uint8_t *)out, &size);
    if (expect_code(err, success, "get_output index 0, capacity 4096")) {
        expect_text(out, GOLDEN, "get_output text equals the golden text");
        check(size == need, "*out_size counts the NUL (%u, want %u)", size, need);
        check(all_bytes(out + need, sizeof out - need, 0x5a), "nothing written past the NUL");
    }
    /* Capacity exactly text + NUL. */
    memset(out, 0x5a, sizeof out);
    size = need;
    err = api.get_output(ctx, exec, 0, (uint8_t *)out, &size);
    expect_code(err, success, "get_output, capacity == text + NUL");
    check(size == need && out[need - 1] == '\0' && out[need] == 0x5a, "... fills it exactly");
    /* Room for the text but not its NUL: too_large, the size needed, nothing written. */
    memset(out, 0x5a, sizeof out);
    size = need - 1;
    err = api.get_output(ctx, exec, 0, (uint8_t *)out, &size);
    expect_code(err, too_large, "get_output, capacity == text length (no room for the NUL)");
    check(size == need, "... *out_size is the size needed (%u, want %u)", size, need);
    check(all_bytes(out, sizeof out, 0x5a), "... the buffer is untouched");
    /* Capacity 0. */
    size = 0;
    err = api.get_output(ctx, exec, 0, (uint8_t *)out, &size);
    expect_code(err, too_large, "get_output, capacity 0");
    check(size == need, "... *out_size is the size needed (%u)", size);
    check(all_bytes(out, sizeof out, 0x5a), "... the buffer is untouched");

    /* Index 1: metadata JSON. */
    size = sizeof out;
    err = api.get_output(ctx, exec, 1, (uint8_t *)out, &size);
    if (expect_code(err, success, "get_output index 1 (metadata)")) {
        static const char *const keys[] = {"\"input_tokens\"", "\"output_tokens\"", "\"cached_tokens\"",
                                           "\"stop_reason\"",  "\"prefill_ms\"",    "\"decode_ms\"",
                                           "\"session_id\"",   "\"llama_build_number\"", "\"llama_commit\""};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            check(strstr(out, keys[i]) != NULL, "metadata has %s", keys[i]);
        }
        check(strstr(out, "\"output_tokens\":32") != NULL, "metadata: output_tokens is 32 (n_predict)");
        check(nul_counted(out, size, sizeof out) && out[0] == '{' && out[size - 2] == '}',
              "metadata is one JSON object, NUL written and counted");
    }
    expect_code(api.close_execution_context(ctx, exec), success, "close_execution_context");

    /* The other tensor forms on a fresh context each: all give the golden text. */
    struct {
        const char *what;
        int form;
    } forms[] = {{"dimensions NULL, NUL-terminated text", 0},
                 {"dimensions {NULL, 0}, NUL-terminated text", 1},
                 {"dims {len + 1} counting the NUL", 2},
                 {"dims {1, len}", 3}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        tensor t;
        tensor *in = NULL;
        const uint32_t plen = (uint32_t)strlen(PROMPT);
        switch (forms[i].form) {
            case 0: in = cstring_tensor(&t, PROMPT), t.dimensions = NULL; break;
            case 1: in = cstring_tensor(&t, PROMPT); break;
            case 2: in = sized_text(&st, PROMPT, plen + 1); break;
            case 3:
                in = sized_text(&st, PROMPT, 1);
                st.dim[1] = plen;
                st.dims.size = 2;
                break;
        }
        char what[128];
        api.init_execution_context(ctx, g, &exec);
        snprintf(what, sizeof what, "set_input, %s", forms[i].what);
        expect_code(api.set_input(ctx, exec, 0, in), success, what);
        expect_code(api.compute(ctx, exec), success, "compute");
        size = sizeof out;
        out[0] = '\0';
        api.get_output(ctx, exec, 0, (uint8_t *)out, &size);
        snprintf(what, sizeof what, "output for %s equals the golden text", forms[i].what);
        expect_text(out, GOLDEN, what);
        api.close_execution_context(ctx, exec);
    }
}

static void test_load_from_bytes(void *ctx) {
    uint32_t size = 0;
    unsigned char *bytes = read_file(MODEL, &size);
    graph g = 0;
    graph_execution_context exec = 0;
    char out[4096];
    uint32_t out_size = 0;
    if (!check(bytes != NULL, "read the model into memory")) return;
    if (expect_code(load_bytes(ctx, bytes, size, ggml, &g), success, "load from bytes, encoding ggml")) {
        /* load() takes no config of its own: the backend's (temp 0, 32 tokens) applies. */
        api.init_execution_context(ctx, g, &exec);
        if (expect_code(infer(ctx, exec, 0, PROMPT, NULL, out, sizeof out, &out_size), success, "run_inference")) {
            expect_text(out, GOLDEN, "output of the graph loaded from bytes equals the golden text");
        }
        api.close_execution_context(ctx, exec);
        expect_code(api.unload(ctx, g), success, "unload");
        expect_code(api.unload(ctx, g), not_found, "unload again");
    }
    free(bytes);
}

/* ------------------------------------------------------------ bad input */

static void test_null_context(void) {
    void *bogus[] = {NULL, (void *)(uintptr_t)0x1234};
    for (int i = 0; i < 2; i++) {
        void *ctx = bogus[i];
        const char *who = i == 0 ? "NULL ctx" : "bogus ctx";
        char buf[64];
        uint32_t size = sizeof buf;
        graph g = 0;
        graph_execution_context exec = 0;
        tensor t;
        char what[128];
#define EXPECT(call, want, name) \
    snprintf(what, sizeof what, "%s: %s", who, name), expect_code(call, want, what)
        EXPECT(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g), invalid_argument, "load_by_name");
        EXPECT(load_name(ctx, MODEL, "{}", &g), invalid_argument, "load_by_name_with_config");
        EXPECT(load_bytes(ctx, (const unsigned char *)"GGUF", 4, ggml, &g), invalid_argument, "load");
        EXPECT(api.init_execution_context(ctx, 0, &exec), invalid_argument, "init_execution_context");
        EXPECT(api.init_execution_context_with_session_id(ctx, "s", &exec), invalid_argument,
               "init_execution_context_with_session_id");
        EXPECT(api.set_input(ctx, 0, 0, cstring_tensor(&t, PROMPT)), invalid_argument, "set_input");
        EXPECT(api.compute(ctx, 0), invalid_argument, "compute");
        EXPECT(api.get_output(ctx, 0, 0, (uint8_t *)buf, &size), invalid_argument, "get_output");
        EXPECT(api.run_inference(ctx, 0, 0, cstring_tensor(&t, PROMPT), (uint8_t *)buf, &size, NULL, 0),
               invalid_argument, "run_inference");
        EXPECT(api.close_execution_context(ctx, 0), invalid_argument, "close_execution_context");
        EXPECT(api.unload(ctx, 0), invalid_argument, "unload");
        EXPECT(api.swap_graph(ctx, 0, MODEL, (uint32_t)strlen(MODEL), NULL, 0), invalid_argument, "swap_graph");
        EXPECT(api.reload_aliases(ctx), invalid_argument, "reload_aliases");
        EXPECT(api.get_backend_status(ctx, BACKEND_STATUS_QUEUE, buf, sizeof buf), invalid_argument,
               "get_backend_status");
        EXPECT(api.compute_single(ctx, 0), invalid_argument, "compute_single");
        EXPECT(api.get_output_single(ctx, 0, 0, (uint8_t *)buf, &size), invalid_argument, "get_output_single");
        EXPECT(api.fini_single(ctx, 0), invalid_argument, "fini_single");
        EXPECT(api.deinit_backend(ctx), not_found, "deinit_backend");
#undef EXPECT
    }
}

static void test_bad_init(void) {
    void *ctx = NULL;
    expect_code(api.init_backend(NULL), invalid_argument, "init_backend(NULL)");
    expect_code(api.init_backend_with_config(NULL, "{}", 2), invalid_argument, "init_backend_with_config(NULL ctx)");
    expect_code(api.init_backend_with_config(&ctx, "{\"model\":{", 10), invalid_argument,
                "init_backend_with_config, invalid JSON");
    /* A NULL string is absent whatever its length (docs/abi.md §4). */
    if (expect_code(api.init_backend_with_config(&ctx, NULL, 3), success,
                    "init_backend_with_config, config NULL with length 3 (absent)"))
        expect_code(api.deinit_backend(ctx), success, "deinit_backend");
    expect_code(api.init_backend_with_config(&ctx, "{\"max_sessions\":0}", 18), invalid_argument,
                "init_backend_with_config, max_sessions 0");
    if (expect_code(api.init_backend(&ctx), success, "init_backend")) {
        expect_code(api.deinit_backend(ctx), success, "deinit_backend");
        expect_code(api.deinit_backend(ctx), not_found, "deinit_backend twice");
    }
}

/* The host's policy (docs/security.md): a native host's model_dirs; paths
 * outside get security whether or not they exist; a guest's host-only key
 * is invalid_argument. */
static void test_host_policy(void) {
    char root[] = "/tmp/wnl-c-legacy-policy-XXXXXX";
    if (!check(mkdtemp(root) != NULL, "policy: scratch directory")) return;
    char cfg[512], path[600];
    snprintf(cfg, sizeof cfg, "{\"backend\":{\"model_dirs\":[\"%s\"]}}", root);
    void *ctx = NULL;
    graph g = 0;
    if (expect_code(api.init_backend_with_config(&ctx, cfg, (uint32_t)strlen(cfg)), success,
                    "policy: init_backend_with_config with model_dirs")) {
        expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g), security,
                    "policy: an existing model outside model_dirs is security");
        expect_code(api.load_by_name(ctx, MISSING_MODEL, (uint32_t)strlen(MISSING_MODEL), &g), security,
                    "policy: a missing model outside model_dirs is security too");
        snprintf(path, sizeof path, "%s/../..%s", root, MODEL);
        expect_code(api.load_by_name(ctx, path, (uint32_t)strlen(path), &g), security,
                    "policy: .. out of model_dirs is security");
        snprintf(path, sizeof path, "%s/missing.gguf", root);
        expect_code(api.load_by_name(ctx, path, (uint32_t)strlen(path), &g), model_not_found,
                    "policy: a missing model inside model_dirs is model_not_found");
        expect_code(load_name(ctx, path, "{\"model\":{\"rpc_servers\":\"127.0.0.1:1\"}}", &g), invalid_argument,
                    "policy: a guest's rpc_servers is invalid_argument");
        api.deinit_backend(ctx);
    }
    rmdir(root);
}

static void test_bad_load(void *ctx) {
    graph g = 77;
    expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), NULL), invalid_argument,
                "load_by_name, graph out-pointer NULL");
    expect_code(api.load_by_name(ctx, NULL, 5, &g), invalid_argument, "load_by_name, name NULL");
    expect_code(api.load_by_name(ctx, MODEL, 0, &g), invalid_argument, "load_by_name, name length 0");
    expect_code(load_name(ctx, MODEL, "{\"model\":{\"ctx_size\":", &g), invalid_argument,
                "load_by_name_with_config, invalid JSON");
    expect_code(load_name(ctx, MODEL, "{\"sampling\":{\"temp\":-1}}", &g), invalid_argument,
                "load_by_name_with_config, temp -1");
    expect_code(api.load_by_name(ctx, MISSING_MODEL, (uint32_t)strlen(MISSING_MODEL), &g), model_not_found,
                "load_by_name, missing file");
    expect_code(api.load_by_name(ctx, MODEL_V1, (uint32_t)strlen(MODEL_V1), &g), invalid_encoding,
                "load_by_name, GGUF v1 file");
    check(g == 77, "failed loads leave *g alone");

    uint32_t size = 0;
    unsigned char *bytes = read_file(MODEL, &size);
    graph_builder b = {bytes, size};
    graph_builder_array arr = {&b, 1};
    expect_code(api.load(ctx, &arr, onnx, cpu, &g), invalid_encoding, "load, encoding onnx");
    expect_code(api.load(ctx, &arr, tensorflowlite, cpu, &g), invalid_encoding, "load, encoding tensorflowlite");
    expect_code(api.load(ctx, NULL, ggml, cpu, &g), invalid_argument, "load, builder array NULL");
    expect_code(api.load(ctx, &arr, ggml, cpu, NULL), invalid_argument, "load, graph out-pointer NULL");
    graph_builder_array empty = {&b, 0};
    expect_code(api.load(ctx, &empty, ggml, cpu, &g), invalid_argument, "load, builder array of size 0");
    graph_builder zero = {bytes, 0};
    graph_builder_array zero_arr = {&zero, 1};
    expect_code(api.load(ctx, &zero_arr, ggml, cpu, &g), invalid_argument, "load, builder of size 0");
    expect_code(load_bytes(ctx, (const unsigned char *)"GGUF\x03\0\0\0", 8, ggml, &g), invalid_encoding,
                "load, an 8-byte GGUF header only");
    check(g == 77, "failed loads leave *g alone");
    free(bytes);
    expect_code(api.unload(ctx, 4242), not_found, "unload, unknown graph");
    expect_code(api.swap_graph(ctx, 4242, MODEL, (uint32_t)strlen(MODEL), NULL, 0), not_found,
                "swap_graph, unknown graph");
}

static void test_bad_exec(void *ctx, graph g) {
    graph_execution_context exec = 0;
    char buf[256];
    uint32_t size = sizeof buf;
    tensor t;
    sized_tensor st;

    expect_code(api.init_execution_context(ctx, g, NULL), invalid_argument, "init_execution_context, exec NULL");
    expect_code(api.init_execution_context(ctx, 999, &exec), not_found, "init_execution_context, unknown graph");
    expect_code(api.init_execution_context_with_session_id(ctx, NULL, &exec), invalid_argument,
                "init_execution_context_with_session_id, session NULL");
    expect_code(api.init_execution_context_with_session_id(ctx, "", &exec), invalid_argument,
                "init_execution_context_with_session_id, empty id");
    expect_code(api.init_execution_context_with_session_id(ctx, "x", NULL), invalid_argument,
                "init_execution_context_with_session_id, exec NULL");

    expect_code(set_cstring(ctx, 999, 0, PROMPT), not_found, "set_input, unknown exec");
    expect_code(api.compute(ctx, 999), not_found, "compute, unknown exec");
    expect_code(api.get_output(ctx, 999, 0, (uint8_t *)buf, &size), not_found, "get_output, unknown exec");
    size = sizeof buf;
    expect_code(api.run_inference(ctx, 999, 0, cstring_tensor(&t, PROMPT), (uint8_t *)buf, &size, NULL, 0),
                not_found, "run_inference, unknown exec");
    expect_code(api.close_execution_context(ctx, 999), not_found, "close_execution_context, unknown exec");

    if (!expect_code(api.init_execution_context(ctx, g, &exec), success, "init_execution_context")) return;
    size = sizeof buf;
    expect_code(api.compute(ctx, exec), invalid_argument, "compute before set_input");
    expect_code(api.get_output(ctx, exec, 0, (uint8_t *)buf, &size), not_found, "get_output before compute");

    /* Tensors. */
    expect_code(api.set_input(ctx, exec, 0, NULL), invalid_argument, "set_input, tensor NULL");
    /* With real dimensions a tensor must be a byte type: u8 (4), or up8 (2)
     * in the original header's numbering (fp64's number here). */
    static const tensor_type wrong_types[] = {fp16, fp32, bf16, i32, i64, (tensor_type)42, (tensor_type)-1};
    for (size_t i = 0; i < sizeof wrong_types / sizeof wrong_types[0]; i++) {
        sized_text(&st, PROMPT, (uint32_t)strlen(PROMPT))->type = wrong_types[i];
        char what[96];
        snprintf(what, sizeof what, "set_input, tensor type %d with dimensions%s", (int)wrong_types[i],
                 wrong_types[i] == bf16 ? " (WAMR 2.4's u8 number)" : "");
        expect_code(api.set_input(ctx, exec, 0, &st.t), invalid_argument, what);
    }
    cstring_tensor(&t, PROMPT)->data = NULL;
    expect_code(api.set_input(ctx, exec, 0, &t), invalid_argument, "set_input, data NULL");
    sized_text(&st, PROMPT, (uint32_t)strlen(PROMPT));
    st.dims.buf = NULL;
    expect_code(api.set_input(ctx, exec, 0, &st.t), invalid_argument, "set_input, dimensions buf NULL with size 1");
    sized_text(&st, PROMPT, 65536);
    st.dim[1] = 65536;
    st.dims.size = 2;
    expect_code(api.set_input(ctx, exec, 0, &st.t), invalid_argument, "set_input, dims product overflowing 32 bits");
    sized_text(&st, PROMPT, 16u * 1024u * 1024u + 1);
    expect_code(api.set_input(ctx, exec, 0, &st.t), too_large, "set_input, dims over the 16 MiB limit");
    expect_code(set_cstring(ctx, exec, 0, ""), invalid_argument, "set_input, empty prompt");
    expect_code(api.set_input(ctx, exec, 0, sized_text(&st, PROMPT, 0)), invalid_argument, "set_input, dims {0}");
    expect_code(set_cstring(ctx, exec, 2, PROMPT), invalid_argument, "set_input, index 2");
    expect_code(set_cstring(ctx, exec, 1, "{\"temp\":"), invalid_argument, "set_input index 1, invalid JSON");
    expect_code(set_cstring(ctx, exec, 1, "{\"max_tokens\":-7}"), invalid_argument,
                "set_input index 1, max_tokens -7");
    size = sizeof buf;
    expect_code(api.compute(ctx, exec), invalid_argument, "compute after only refused set_input calls");

    /* Accepted as text: type 2 (the original header's up8) with dimensions,
     * and any type without dimensions, as the original read it. */
    sized_text(&st, PROMPT, (uint32_t)strlen(PROMPT))->type = fp64;
    expect_code(api.set_input(ctx, exec, 0, &st.t), success, "set_input, type 2 (the original header's up8) with dimensions");
    for (size_t i = 0; i < sizeof wrong_types / sizeof wrong_types[0]; i++) {
        cstring_tensor(&t, PROMPT)->type = wrong_types[i];
        char what[96];
        snprintf(what, sizeof what, "set_input, tensor type %d, dimensions {NULL, 0}: text", (int)wrong_types[i]);
        expect_code(api.set_input(ctx, exec, 0, &t), success, what);
    }

    /* run_inference arguments. */
    size = sizeof buf;
    expect_code(api.run_inference(ctx, exec, 0, NULL, (uint8_t *)buf, &size, NULL, 0), invalid_argument,
                "run_inference, input NULL");
    expect_code(api.run_inference(ctx, exec, 0, cstring_tensor(&t, PROMPT), NULL, &size, NULL, 0), invalid_argument,
                "run_inference, out NULL");
    expect_code(api.run_inference(ctx, exec, 0, cstring_tensor(&t, PROMPT), (uint8_t *)buf, NULL, NULL, 0),
                invalid_argument, "run_inference, out_size NULL");
    /* The legacy run_inference's exception: a runtime config that is not
     * JSON at all runs with the graph's settings (as the original did); one
     * that parses with a bad value is refused. */
    expect_code(infer(ctx, exec, 0, PROMPT, "{\"max_tokens\":", buf, sizeof buf, &size), success,
                "run_inference, runtime config that does not parse: runs with the graph's settings");
    expect_code(infer(ctx, exec, 0, PROMPT, "{\"max_tokens\":-7}", buf, sizeof buf, &size), invalid_argument,
                "run_inference, runtime config max_tokens -7");
    size = sizeof buf;
    expect_code(api.run_inference(ctx, exec, 0, cstring_tensor(&t, PROMPT), (uint8_t *)buf, &size, NULL, 9), success,
                "run_inference, runtime config NULL with length 9 (absent)");
    /* Read up to its first NUL, never its length: what follows is not read. */
    size = sizeof buf;
    expect_code(api.run_inference(ctx, exec, 0, cstring_tensor(&t, PROMPT), (uint8_t *)buf, &size,
                                  "{\"max_tokens\":4}\0{garbage", 0xE6A5F00Du),
                success, "run_inference, runtime config with a NUL before a garbage length");
    expect_code(infer(ctx, exec, 5, PROMPT, NULL, buf, sizeof buf, &size), invalid_argument,
                "run_inference, index 5");
    sized_text(&st, PROMPT, (uint32_t)strlen(PROMPT))->type = fp32;
    size = sizeof buf;
    expect_code(api.run_inference(ctx, exec, 0, &st.t, (uint8_t *)buf, &size, NULL, 0), invalid_argument,
                "run_inference, tensor type fp32 with dimensions");

    /* A real turn, then bad get_output calls. */
    expect_code(set_cstring(ctx, exec, 0, PROMPT), success, "set_input");
    expect_code(set_cstring(ctx, exec, 1, "{\"max_tokens\":4}"), success, "set_input index 1");
    expect_code(api.compute(ctx, exec), success, "compute");
    size = sizeof buf;
    expect_code(api.get_output(ctx, exec, 0, NULL, &size), invalid_argument, "get_output, out NULL");
    expect_code(api.get_output(ctx, exec, 0, (uint8_t *)buf, NULL), invalid_argument, "get_output, out_size NULL");
    size = sizeof buf;
    expect_code(api.get_output(ctx, exec, 5, (uint8_t *)buf, &size), invalid_argument, "get_output, index 5");
    size = sizeof buf;
    expect_code(api.get_output(ctx, exec, 0, (uint8_t *)buf, &size), success, "get_output still works");

    {
        char tiny[8];
        expect_code(api.get_backend_status(ctx, BACKEND_STATUS_MEMORY, tiny, sizeof tiny), too_large,
                    "get_backend_status, 8-byte buffer");
    }
    /* Streaming: each piece comes with its NUL, counted in the size; the
     * pieces join into the reply get_output gives after fini_single. */
    {
        char joined[4096] = "", piece[256];
        int pieces = 0;
        wasi_nn_error err = success;
        expect_code(set_cstring(ctx, exec, 1, "{\"max_tokens\":16}"), success, "set_input index 1 (streaming)");
        while ((err = api.compute_single(ctx, exec)) == success && pieces < 1000) {
            size = sizeof piece;
            if (!expect_code(api.get_output_single(ctx, exec, 0, (uint8_t *)piece, &size), success,
                             "get_output_single"))
                break;
            check(size >= 1 && piece[size - 1] == '\0' && strlen(piece) == size - 1,
                  "get_output_single counts the NUL it writes (%u)", size);
            strncat(joined, piece, sizeof joined - strlen(joined) - 1);
            pieces++;
        }
        expect_code(err, end_of_sequence, "compute_single ends with end_of_sequence");
        check(pieces > 1, "the reply came in %d pieces", pieces);
        size = 1;
        expect_code(api.get_output_single(ctx, exec, 1, (uint8_t *)piece, &size), too_large,
                    "get_output_single, metadata into 1 byte");
        expect_code(api.fini_single(ctx, exec), success, "fini_single");
        size = sizeof buf;
        if (expect_code(api.get_output(ctx, exec, 0, (uint8_t *)buf, &size), success, "get_output after the stream"))
            expect_text(joined, buf, "the pieces join into the whole reply");
    }

    /* A closed handle. */
    expect_code(api.close_execution_context(ctx, exec), success, "close_execution_context");
    size = sizeof buf;
    expect_code(set_cstring(ctx, exec, 0, PROMPT), not_found, "set_input, closed exec");
    expect_code(api.compute(ctx, exec), not_found, "compute, closed exec");
    expect_code(api.get_output(ctx, exec, 0, (uint8_t *)buf, &size), not_found, "get_output, closed exec");
    expect_code(infer(ctx, exec, 0, PROMPT, NULL, buf, sizeof buf, &size), not_found, "run_inference, closed exec");
    expect_code(api.close_execution_context(ctx, exec), not_found, "close_execution_context twice");
}

static void test_prompt_too_long(void *ctx) {
    graph g = 0;
    graph_execution_context exec = 0;
    char prompt[2048];
    char out[256];
    uint32_t size = 0;
    size_t n = 0;
    while (n + 17 < sizeof prompt) n += (size_t)snprintf(prompt + n, sizeof prompt - n, "%s. ", PROMPT);
    if (!expect_code(load_name(ctx, MODEL, "{\"model\":{\"ctx_size\":64}}", &g), success,
                     "load_by_name_with_config, ctx_size 64"))
        return;
    api.init_execution_context(ctx, g, &exec);
    expect_code(infer(ctx, exec, 0, prompt, NULL, out, sizeof out, &size), prompt_tool_long,
                "run_inference, a ~2000-byte prompt in a 64-token context");
    expect_code(infer(ctx, exec, 0, PROMPT, NULL, out, sizeof out, &size), success, "run_inference, a short prompt");
    expect_code(set_cstring(ctx, exec, 0, prompt), success, "set_input, the long prompt");
    expect_code(api.compute(ctx, exec), prompt_tool_long, "compute, the long prompt");
    size = sizeof out;
    expect_code(api.get_output(ctx, exec, 0, (uint8_t *)out, &size), not_found,
                "get_output after the refused compute (no stale output)");
    expect_code(infer(ctx, exec, 0, PROMPT, NULL, out, sizeof out, &size), success,
                "run_inference, a short prompt, the same context");
    api.close_execution_context(ctx, exec);
    api.unload(ctx, g);
}

/* Two threads on one execution context. The legacy ABI has no busy code:
 * the second call gets runtime_error (4) at once, while the first runs. */
typedef struct {
    void *ctx;
    graph_execution_context exec;
    wasi_nn_error result;
    atomic_int started, done;
} job;

static void *compute_job(void *arg) {
    job *j = arg;
    j->started = 1;
    j->result = api.compute(j->ctx, j->exec);
    j->done = 1;
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_busy(void *ctx, graph g) {
    job a = {ctx, 0, success, 0, 0};
    pthread_t ta;
    if (!expect_code(api.init_execution_context(ctx, g, &a.exec), success, "init_execution_context")) return;
    set_cstring(ctx, a.exec, 0, PROMPT);
    expect_code(set_cstring(ctx, a.exec, 1, "{\"max_tokens\":1000,\"ignore_eos\":true}"), success,
                "set_input index 1, 1000 tokens ignoring EOS");
    pthread_create(&ta, NULL, compute_job, &a);
    while (!a.started) sleep_ms(1);
    sleep_ms(100);  /* A is inside compute by now, even on a loaded machine */
    wasi_nn_error b = api.compute(ctx, a.exec);
    int a_running = !a.done;
    expect_code(b, runtime_error, "thread B: compute on the same exec while A computes (busy)");
    check(a_running, "... returned at once, while A was still computing");
    /* Closing the handle cancels A's generation. */
    expect_code(api.close_execution_context(ctx, a.exec), success, "close_execution_context while A computes");
    pthread_join(ta, NULL);
    expect_code(a.result, runtime_error, "thread A: cancelled by the close");
}

static void test_after_deinit(void *ctx, graph g, graph_execution_context exec) {
    char buf[64];
    uint32_t size = sizeof buf;
    tensor t;
    graph g2 = 0;
    expect_code(api.deinit_backend(ctx), success, "deinit_backend");
    expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g2), invalid_argument,
                "after deinit: load_by_name");
    expect_code(api.init_execution_context(ctx, g, &exec), invalid_argument, "after deinit: init_execution_context");
    expect_code(api.init_execution_context_with_session_id(ctx, "session-a", &exec), invalid_argument,
                "after deinit: init_execution_context_with_session_id");
    expect_code(set_cstring(ctx, exec, 0, PROMPT), invalid_argument, "after deinit: set_input");
    expect_code(api.compute(ctx, exec), invalid_argument, "after deinit: compute");
    expect_code(api.get_output(ctx, exec, 0, (uint8_t *)buf, &size), invalid_argument, "after deinit: get_output");
    expect_code(api.run_inference(ctx, exec, 0, cstring_tensor(&t, PROMPT), (uint8_t *)buf, &size, NULL, 0),
                invalid_argument, "after deinit: run_inference");
    expect_code(api.close_execution_context(ctx, exec), invalid_argument, "after deinit: close_execution_context");
    expect_code(api.unload(ctx, g), invalid_argument, "after deinit: unload");
    expect_code(api.deinit_backend(ctx), not_found, "after deinit: deinit_backend again");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!open_library()) {
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return 1;
    }
    test_null_context();
    test_bad_init();
    test_host_policy();

    void *ctx = NULL;
    wasi_nn_error err = api.init_backend_with_config(&ctx, BACKEND_CONFIG, (uint32_t)strlen(BACKEND_CONFIG));
    if (expect_code(err, success, "init_backend_with_config, nested sections")) {
        graph g = 0;
        /* As the original suite does: the same nested config again at load. */
        err = load_name(ctx, MODEL, BACKEND_CONFIG, &g);
        if (expect_code(err, success, "load_by_name_with_config")) {
            test_run_inference(ctx);
            test_set_input_compute_get_output(ctx, g);
            test_load_from_bytes(ctx);
            test_bad_load(ctx);
            test_bad_exec(ctx, g);
            test_prompt_too_long(ctx);
            test_busy(ctx, g);
            /* The graph must be the latest again for the session-id call below. */
            load_name(ctx, MODEL, BACKEND_CONFIG, &g);
            graph_execution_context exec = 0;
            expect_code(api.init_execution_context_with_session_id(ctx, "session-a", &exec), success,
                        "reattach session-a");
            test_after_deinit(ctx, g, exec);
        }
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
