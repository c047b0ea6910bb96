/*
 * libwasi_nn_llamacpp.so driven the way WAMR 2.4's wasi-nn host drives it:
 * dlopen() by file name, every entry point through dlsym(), WAMR's own
 * types (wasi_nn_llamacpp.h is included for the types only; nothing here
 * links against the library).
 *
 * Covers the normal path (load by name and from bytes, set_input, compute,
 * get_output with WAMR's output rules), bad input at every entry point with
 * the exact wasi_nn_error expected, calls after close and deinit, and
 * concurrency (busy on one execution context, parallel ones on two).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasi_nn_llamacpp.h"

#define MODEL WNL_MODELS_DIR "/stories260K.gguf"
#define MODEL_V1 WNL_MODELS_DIR "/tinyllamas-stories-260k-f32.gguf"
#define MISSING_MODEL WNL_MODELS_DIR "/no-such-model.gguf"
#define LIBRARY WNL_LIB_DIR "/libwasi_nn_llamacpp.so"

static const char *const PROMPT = "Once upon a time";
/* stories260K, greedy, 32 tokens, the prompt not echoed (models/README.md). */
static const char *const GOLDEN =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";
static const char *const GREEDY_32 = "{\"temp\":0,\"max_tokens\":32}";

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

/* The call returned exactly `want`. */
static int expect_code(wasi_nn_error got, wasi_nn_error want, const char *what) {
    if (got == want) return check(1, "%s -> %d", what, (int)want);
    return check(0, "%s -> got %d, want %d", what, (int)got, (int)want);
}

static int expect_text(const char *got, const char *want, const char *what) {
    if (strcmp(got, want) == 0) return check(1, "%s", what);
    return check(0, "%s: got \"%s\", want \"%s\"", what, got, want);
}

/* --------------------------------------------------------- the library */

/* WAMR 2.4's own function-pointer types (wasi_nn_private.h). */
typedef wasi_nn_error (*BACKEND_INITIALIZE)(void **);
typedef wasi_nn_error (*BACKEND_DEINITIALIZE)(void *);
typedef wasi_nn_error (*LOAD)(void *, graph_builder_array *, graph_encoding, execution_target, graph *);
typedef wasi_nn_error (*LOAD_BY_NAME)(void *, const char *, uint32_t, graph *);
typedef wasi_nn_error (*LOAD_BY_NAME_WITH_CONFIG)(void *, const char *, uint32_t, void *, uint32_t, graph *);
typedef wasi_nn_error (*INIT_EXECUTION_CONTEXT)(void *, graph, graph_execution_context *);
typedef wasi_nn_error (*SET_INPUT)(void *, graph_execution_context, uint32_t, tensor *);
typedef wasi_nn_error (*COMPUTE)(void *, graph_execution_context);
typedef wasi_nn_error (*GET_OUTPUT)(void *, graph_execution_context, uint32_t, tensor_data *, uint32_t *);
/* Extensions (wasi_nn_llamacpp.h). */
typedef wasi_nn_error (*INIT_BACKEND_WITH_CONFIG)(void **, const char *, uint32_t);
typedef wasi_nn_error (*INIT_EXEC_WITH_SESSION_ID)(void *, const char *, graph_execution_context *);
typedef wasi_nn_error (*CLOSE_EXECUTION_CONTEXT)(void *, graph_execution_context);
typedef wasi_nn_error (*RUN_INFERENCE)(void *, graph_execution_context, uint32_t, tensor *, uint8_t *, uint32_t *,
                                       const char *, uint32_t);
typedef wasi_nn_error (*GET_BACKEND_STATUS)(void *, backend_status_type, char *, uint32_t);
typedef wasi_nn_error (*COMPUTE_SINGLE)(void *, graph_execution_context);
typedef wasi_nn_error (*GET_OUTPUT_SINGLE)(void *, graph_execution_context, uint32_t, uint8_t *, uint32_t *);
typedef wasi_nn_error (*FINI_SINGLE)(void *, graph_execution_context);
typedef wasi_nn_error (*UNLOAD)(void *, graph);
typedef wasi_nn_error (*RELOAD_ALIASES)(void *);
typedef wasi_nn_error (*SWAP_GRAPH)(void *, graph, const char *, uint32_t, const char *, uint32_t);
typedef const char *(*VERSION)(void);

static struct {
    void *handle;
    BACKEND_INITIALIZE init_backend;
    BACKEND_DEINITIALIZE deinit_backend;
    LOAD load;
    LOAD_BY_NAME load_by_name;
    LOAD_BY_NAME_WITH_CONFIG load_by_name_with_config;
    INIT_EXECUTION_CONTEXT init_execution_context;
    SET_INPUT set_input;
    COMPUTE compute;
    GET_OUTPUT get_output;
    INIT_BACKEND_WITH_CONFIG init_backend_with_config;
    INIT_EXEC_WITH_SESSION_ID init_execution_context_with_session_id;
    CLOSE_EXECUTION_CONTEXT close_execution_context;
    RUN_INFERENCE run_inference;
    GET_BACKEND_STATUS get_backend_status;
    COMPUTE_SINGLE compute_single;
    GET_OUTPUT_SINGLE get_output_single;
    FINI_SINGLE fini_single;
    UNLOAD unload;
    SWAP_GRAPH swap_graph;
    RELOAD_ALIASES reload_aliases;
    VERSION wasi_nn_llama_version;
} api;

static void *resolve(const char *name) {
    void *p = dlsym(api.handle, name);
    check(p != NULL, "symbol %s resolves", name);
    return p;
}

/* Returns 0 when the library or any symbol is missing. */
static int open_library(void) {
    api.handle = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!check(api.handle != NULL, "dlopen(%s)", LIBRARY)) {
        printf("# %s\n", dlerror());
        return 0;
    }
    int before = g_failed;
#define RESOLVE(name) *(void **)&api.name = resolve(#name)
    /* The nine that WAMR 2.4's prepare_backend() looks up. */
    RESOLVE(init_backend);
    RESOLVE(deinit_backend);
    RESOLVE(load);
    RESOLVE(load_by_name);
    RESOLVE(load_by_name_with_config);
    RESOLVE(init_execution_context);
    RESOLVE(set_input);
    RESOLVE(compute);
    RESOLVE(get_output);
    /* Extensions. */
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
    /* llama.cpp and ggml are linked in privately: none of theirs may leak. */
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

/* A u8 text tensor over `text` (not copied), with dimensions {len}. */
typedef struct {
    tensor t;
    tensor_dimensions dims;
    uint32_t dim[2];
} text_tensor;

static tensor *make_text(text_tensor *tt, const char *text) {
    uint32_t len = (uint32_t)strlen(text);
    memset(tt, 0, sizeof *tt);
    tt->dim[0] = len;
    tt->dims.buf = tt->dim;
    tt->dims.size = 1;
    tt->t.dimensions = &tt->dims;
    tt->t.type = u8;
    tt->t.data.buf = (uint8_t *)text;
    tt->t.data.size = len;
    return &tt->t;
}

static wasi_nn_error set_text(void *ctx, graph_execution_context exec, uint32_t index, const char *text) {
    text_tensor tt;
    return api.set_input(ctx, exec, index, make_text(&tt, text));
}

/* get_output into a char buffer of `capacity` bytes; NUL-terminates it on
 * success (the ABI does not), so the buffer needs one spare byte. */
static wasi_nn_error read_output(void *ctx, graph_execution_context exec, uint32_t index, char *buf,
                                 uint32_t capacity, uint32_t *size) {
    tensor_data out = {(uint8_t *)buf, capacity};
    *size = 0;
    wasi_nn_error err = api.get_output(ctx, exec, index, &out, size);
    if (err == success) buf[*size < capacity ? *size : capacity] = '\0';
    return err;
}

/* set_input(0, prompt) [+ set_input(1, options)] + compute + get_output(0). */
static wasi_nn_error generate(void *ctx, graph_execution_context exec, const char *prompt, const char *options,
                              char *out, uint32_t capacity) {
    wasi_nn_error err = set_text(ctx, exec, 0, prompt);
    if (err == success && options) err = set_text(ctx, exec, 1, options);
    if (err == success) err = api.compute(ctx, exec);
    uint32_t size = 0;
    out[0] = '\0';
    if (err == success) err = read_output(ctx, exec, 0, out, capacity - 1, &size);
    return err;
}

/* A fresh execution context on g, and the golden greedy run on it. */
static void expect_golden(void *ctx, graph g, const char *options, const char *what) {
    graph_execution_context exec = 0;
    char out[4096];
    wasi_nn_error err = api.init_execution_context(ctx, g, &exec);
    if (!expect_code(err, success, "init_execution_context for a golden run")) return;
    err = generate(ctx, exec, PROMPT, options, out, sizeof out);
    if (expect_code(err, success, what)) expect_text(out, GOLDEN, what);
    api.close_execution_context(ctx, exec);
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
    return api.load_by_name_with_config(ctx, path, (uint32_t)strlen(path), (void *)config,
                                        config ? (uint32_t)strlen(config) : 0, g);
}

static int all_bytes(const char *buf, size_t n, char value) {
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != value) return 0;
    }
    return 1;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------ the host policy */

/* What the host's policy decides (docs/security.md): guests cannot name
 * host-only keys or go over a ceiling; paths outside model_dirs get
 * not_found whether or not they exist; a policy file's alias loads. */
static void test_host_policy(void) {
    graph g = 0;
    void *ctx = NULL;
    if (!expect_code(api.init_backend(&ctx), success, "policy: init_backend")) return;
    expect_code(load_name(ctx, MODEL, "{\"rpc_servers\":\"127.0.0.1:1\"}", &g), invalid_argument,
                "policy: a guest's rpc_servers is refused");
    expect_code(load_name(ctx, MODEL, "{\"logging\":{\"file\":\"/tmp/wnl-c-guest.log\"}}", &g), invalid_argument,
                "policy: a guest's log file is refused");
    expect_code(load_name(ctx, MODEL, "{\"ctx_size\":65536}", &g), invalid_argument,
                "policy: ctx_size above the default ceiling is refused");
    api.deinit_backend(ctx);

    char root[] = "/tmp/wnl-c-policy-XXXXXX";
    if (!check(mkdtemp(root) != NULL, "policy: scratch directory")) return;
    char cfg[512], path[600], file[600];
    snprintf(cfg, sizeof cfg, "{\"model_dirs\":[\"%s\"]}", root);
    if (expect_code(api.init_backend_with_config(&ctx, cfg, (uint32_t)strlen(cfg)), success,
                    "policy: init_backend_with_config with model_dirs")) {
        expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g), not_found,
                    "policy: an existing model outside model_dirs is not_found");
        expect_code(api.load_by_name(ctx, MISSING_MODEL, (uint32_t)strlen(MISSING_MODEL), &g), not_found,
                    "policy: a missing model outside model_dirs is not_found too");
        snprintf(path, sizeof path, "%s/../..%s", root, MODEL); /* the model itself, through .. */
        expect_code(api.load_by_name(ctx, path, (uint32_t)strlen(path), &g), not_found,
                    "policy: .. out of model_dirs is not_found");
        snprintf(path, sizeof path, "%s/link.gguf", root);
        if (symlink(MODEL, path) == 0) {
            expect_code(api.load_by_name(ctx, path, (uint32_t)strlen(path), &g), not_found,
                        "policy: a symlink out of model_dirs is not_found");
            unlink(path);
        }
        snprintf(path, sizeof path, "%s/missing.gguf", root);
        expect_code(api.load_by_name(ctx, path, (uint32_t)strlen(path), &g), model_not_found,
                    "policy: a missing model inside model_dirs is model_not_found");
        api.deinit_backend(ctx);
    }

    snprintf(file, sizeof file, "%s/policy.json", root);
    FILE *f = fopen(file, "w");
    if (f) {
        fprintf(f, "{\"models\":{\"tiny\":{\"path\":\"%s\",\"config\":{\"temp\":0,\"max_tokens\":32}}}}", MODEL);
        fclose(f);
    }
    setenv("WASI_NN_LLAMA_POLICY", file, 1);
    if (expect_code(api.init_backend(&ctx), success, "policy: init_backend with a policy file")) {
        if (expect_code(api.load_by_name(ctx, "tiny", 4, &g), success, "policy: load_by_name(alias)")) {
            expect_golden(ctx, g, NULL, "policy: the alias's model with the alias's config");
        }
        expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g), not_found,
                    "policy: aliases and no model_dirs: a guest path is not_found");
        api.deinit_backend(ctx);
    }
    f = fopen(file, "w");
    if (f) {
        fputs("{\"models\":", f);
        fclose(f);
    }
    ctx = NULL;
    expect_code(api.init_backend(&ctx), invalid_argument, "policy: a malformed policy file fails init_backend");
    unlink(file);
    expect_code(api.init_backend(&ctx), not_found, "policy: a missing policy file fails init_backend");
    unsetenv("WASI_NN_LLAMA_POLICY");
    rmdir(root);
}

/* ------------------------------------------------------- the main path */

static void test_load_by_name(void *ctx, graph *g_out) {
    graph g1 = 99, g2 = 99;
    /* Config length without the NUL, as a Rust or AssemblyScript guest sends it. */
    wasi_nn_error err = api.load_by_name_with_config(ctx, MODEL, (uint32_t)strlen(MODEL), (void *)GREEDY_32,
                                                     (uint32_t)strlen(GREEDY_32), &g1);
    expect_code(err, success, "load_by_name_with_config, config length without the NUL");
    /* ... and counting it, as a C guest using sizeof does. */
    err = api.load_by_name_with_config(ctx, MODEL, (uint32_t)strlen(MODEL) + 1, (void *)GREEDY_32,
                                       (uint32_t)strlen(GREEDY_32) + 1, &g2);
    expect_code(err, success, "load_by_name_with_config, name and config lengths counting the NUL");
    /* The same file and config (the NUL is not part of it): the same graph. */
    check(g1 == g2, "both loads give the same graph handle (%u, %u)", g1, g2);
    /* The golden text only comes out if the config (temp 0, 32 tokens) was applied. */
    expect_golden(ctx, g1, NULL, "greedy output, config without NUL, equals the golden text");
    expect_golden(ctx, g2, NULL, "greedy output, config with NUL, equals the golden text");

    /* A name that is not NUL-terminated at name_len: what follows must not be read. */
    char name[4096];
    snprintf(name, sizeof name, "%sJUNK-AFTER-THE-NAME", MODEL);
    graph g3 = 99;
    err = api.load_by_name_with_config(ctx, name, (uint32_t)strlen(MODEL), (void *)GREEDY_32,
                                       (uint32_t)strlen(GREEDY_32), &g3);
    if (expect_code(err, success, "load_by_name_with_config reads only name_len bytes of the name")) {
        expect_code(api.unload(ctx, g3), success, "unload that graph");
    }
    /* Plain load_by_name: the default config. */
    err = api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g3);
    if (expect_code(err, success, "load_by_name")) expect_code(api.unload(ctx, g3), success, "unload it");
    *g_out = g1;
}

static void test_output_rules(void *ctx, graph g) {
    graph_execution_context exec = 0;
    char buf[4096];
    uint32_t size = 0;
    const uint32_t need = (uint32_t)strlen(GOLDEN);
    expect_code(api.init_execution_context(ctx, g, &exec), success, "init_execution_context");
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input index 0, u8 tensor, dims {len}");
    expect_code(api.compute(ctx, exec), success, "compute");

    /* Capacity 4096: the text, no NUL written or counted. */
    memset(buf, 0x5a, sizeof buf);
    tensor_data out = {(uint8_t *)buf, 4096};
    wasi_nn_error err = api.get_output(ctx, exec, 0, &out, &size);
    expect_code(err, success, "get_output index 0, capacity 4096");
    check(size == need, "*out_size is the text length without a NUL (%u, want %u)", size, need);
    check(size < sizeof buf && buf[size] == 0x5a, "no NUL written after the text");
    check(size <= sizeof buf && memcmp(buf, GOLDEN, need) == 0, "get_output text equals the golden text");

    /* Exactly the size of the text. */
    memset(buf, 0x5a, sizeof buf);
    out.size = need;
    err = api.get_output(ctx, exec, 0, &out, &size);
    expect_code(err, success, "get_output with capacity == text length");
    check(size == need && memcmp(buf, GOLDEN, need) == 0 && buf[need] == 0x5a,
          "... writes exactly the text (%u bytes)", size);

    /* One byte short: too_large, the size needed, the buffer untouched. */
    memset(buf, 0x5a, sizeof buf);
    out.size = need - 1;
    size = 12345;
    err = api.get_output(ctx, exec, 0, &out, &size);
    expect_code(err, too_large, "get_output with capacity one byte short");
    check(size == need, "... *out_size is the size needed (%u, want %u)", size, need);
    check(all_bytes(buf, sizeof buf, 0x5a), "... the buffer is untouched");

    /* Capacity 0, as a size query: with a buffer and with none. */
    out.size = 0;
    size = 0;
    err = api.get_output(ctx, exec, 0, &out, &size);
    expect_code(err, too_large, "get_output with capacity 0");
    check(size == need, "... *out_size is the size needed (%u)", size);
    check(all_bytes(buf, sizeof buf, 0x5a), "... the buffer is untouched");
    tensor_data none = {NULL, 0};
    size = 0;
    expect_code(api.get_output(ctx, exec, 0, &none, &size), too_large, "get_output with a NULL buffer of capacity 0");
    check(size == need, "... *out_size is the size needed (%u)", size);

    /* Index 1: metadata JSON. */
    err = read_output(ctx, exec, 1, buf, sizeof buf - 1, &size);
    if (expect_code(err, success, "get_output index 1 (metadata)")) {
        int before = g_failed;
        static const char *const keys[] = {"\"input_tokens\"", "\"output_tokens\"", "\"cached_tokens\"",
                                           "\"stop_reason\"",  "\"prefill_ms\"",    "\"decode_ms\"",
                                           "\"session_id\"",   "\"llama_build_number\"", "\"llama_commit\""};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            check(strstr(buf, keys[i]) != NULL, "metadata has %s", keys[i]);
        }
        check(buf[0] == '{' && size > 0 && buf[size - 1] == '}', "metadata is one JSON object");
        check(strstr(buf, "\"output_tokens\":32") != NULL, "metadata: output_tokens is 32");
        check(strstr(buf, "\"input_tokens\":5") != NULL, "metadata: input_tokens is 5 (BOS + 4)");
        check(strstr(buf, "\"stop_reason\":\"max_tokens\"") != NULL, "metadata: stop_reason is max_tokens");
        check(strlen(buf) == size, "metadata: no NUL inside, none counted");
        if (g_failed != before) printf("# metadata: %s\n", buf);
    }

    /* Other shapes of the same prompt, each on a fresh context: same text. */
    static const struct {
        const char *what;
        int form;
    } forms[] = {{"dims {1, len}", 0},
                 {"dims {1}", 1},
                 {"no dimensions (length from data.size)", 2},
                 {"dimensions {NULL, 0}", 3},
                 {"data.size and dims {len + 1} counting a NUL", 4}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        text_tensor tt;
        tensor *t = make_text(&tt, PROMPT);
        const uint32_t len = (uint32_t)strlen(PROMPT);
        switch (forms[i].form) {
            case 0: tt.dim[0] = 1, tt.dim[1] = len, tt.dims.size = 2; break;
            case 1: tt.dim[0] = 1; break;
            case 2: t->dimensions = NULL; break;
            case 3: tt.dims.buf = NULL, tt.dims.size = 0; break;
            case 4: tt.dim[0] = t->data.size = len + 1; break; /* PROMPT's own NUL */
        }
        char what[128];
        graph_execution_context e = 0;
        api.init_execution_context(ctx, g, &e);
        snprintf(what, sizeof what, "set_input, %s", forms[i].what);
        expect_code(api.set_input(ctx, e, 0, t), success, what);
        expect_code(api.compute(ctx, e), success, "compute");
        buf[0] = '\0';
        read_output(ctx, e, 0, buf, sizeof buf - 1, &size);
        snprintf(what, sizeof what, "output for %s equals the golden text", forms[i].what);
        expect_text(buf, GOLDEN, what);
        api.close_execution_context(ctx, e);
    }

    /* run_inference (extension): legacy-style output, NUL written and counted. */
    text_tensor tt;
    graph_execution_context e2 = 0;
    api.init_execution_context(ctx, g, &e2);
    memset(buf, 0x5a, sizeof buf);
    size = sizeof buf;
    err = api.run_inference(ctx, e2, 0, make_text(&tt, PROMPT), (uint8_t *)buf, &size, GREEDY_32,
                            (uint32_t)strlen(GREEDY_32));
    expect_code(err, success, "run_inference");
    check(size == need + 1 && buf[need] == '\0' && memcmp(buf, GOLDEN, need) == 0,
          "run_inference writes the golden text and a NUL, and counts the NUL (%u)", size);
    api.close_execution_context(ctx, e2);

    expect_code(api.close_execution_context(ctx, exec), success, "close_execution_context");
}

static void test_load_from_bytes(void *ctx) {
    uint32_t size = 0;
    unsigned char *bytes = read_file(MODEL, &size);
    if (!check(bytes != NULL && size == 1185376, "read %s into memory (%u bytes)", MODEL, size)) {
        free(bytes);
        return;
    }
    graph g = 99;
    /* WAMR: graph_builder_array with one builder, encoding ggml. */
    wasi_nn_error err = load_bytes(ctx, bytes, size, ggml, &g);
    if (expect_code(err, success, "load from bytes, encoding ggml")) {
        /* load() takes no config: the request options set greedy decoding. */
        expect_golden(ctx, g, GREEDY_32, "greedy output of the graph loaded from bytes equals the golden text");
        expect_code(api.unload(ctx, g), success, "unload the graph loaded from bytes");
        graph_execution_context exec = 0;
        expect_code(api.init_execution_context(ctx, g, &exec), not_found, "init_execution_context on an unloaded graph");
        expect_code(api.unload(ctx, g), not_found, "unload the same graph again");
    }
    graph g2 = 99;
    err = load_bytes(ctx, bytes, size, autodetect, &g2);
    if (expect_code(err, success, "load from bytes, encoding autodetect")) api.unload(ctx, g2);
    free(bytes);
}

/* ------------------------------------------------------------ bad input */

static void test_null_context(void) {
    /* NULL and a made-up number: handles are looked up, never dereferenced. */
    void *bogus[] = {NULL, (void *)(uintptr_t)0x1234};
    for (int i = 0; i < 2; i++) {
        void *ctx = bogus[i];
        const char *who = i == 0 ? "NULL ctx" : "bogus ctx";
        char buf[64];
        uint32_t size = sizeof buf;
        graph g = 0;
        graph_execution_context exec = 0;
        text_tensor tt;
        tensor_data out = {(uint8_t *)buf, sizeof buf};
        char what[128];
#define EXPECT(call, want, name) \
    snprintf(what, sizeof what, "%s: %s", who, name), expect_code(call, want, what)
        EXPECT(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g), invalid_argument, "load_by_name");
        EXPECT(load_name(ctx, MODEL, GREEDY_32, &g), invalid_argument, "load_by_name_with_config");
        EXPECT(load_bytes(ctx, (const unsigned char *)"GGUF", 4, ggml, &g), invalid_argument, "load");
        EXPECT(api.init_execution_context(ctx, 0, &exec), invalid_argument, "init_execution_context");
        EXPECT(api.init_execution_context_with_session_id(ctx, "s", &exec), invalid_argument,
               "init_execution_context_with_session_id");
        EXPECT(api.set_input(ctx, 0, 0, make_text(&tt, PROMPT)), invalid_argument, "set_input");
        EXPECT(api.compute(ctx, 0), invalid_argument, "compute");
        EXPECT(api.get_output(ctx, 0, 0, &out, &size), invalid_argument, "get_output");
        EXPECT(api.run_inference(ctx, 0, 0, make_text(&tt, PROMPT), (uint8_t *)buf, &size, NULL, 0),
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
    expect_code(api.init_backend_with_config(&ctx, "{\"temp\":", 8), invalid_argument,
                "init_backend_with_config, invalid JSON");
    /* A NULL string is absent whatever its length (docs/abi.md §4). */
    if (expect_code(api.init_backend_with_config(&ctx, NULL, 5), success,
                    "init_backend_with_config, config NULL with length 5 (absent)"))
        expect_code(api.deinit_backend(ctx), success, "deinit_backend");
    expect_code(api.init_backend_with_config(&ctx, "{\"temp\":\"hot\"}", 14), invalid_argument,
                "init_backend_with_config, wrong value type");
    /* Empty and whitespace-only configs mean "no settings". */
    if (expect_code(api.init_backend_with_config(&ctx, "  \n", 3), success,
                    "init_backend_with_config, whitespace-only config")) {
        expect_code(api.deinit_backend(ctx), success, "deinit_backend");
        expect_code(api.deinit_backend(ctx), not_found, "deinit_backend twice");
    }
}

static void test_bad_load(void *ctx) {
    graph g = 77;
    expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), NULL), invalid_argument,
                "load_by_name, graph out-pointer NULL");
    expect_code(api.load_by_name(ctx, NULL, 10, &g), invalid_argument, "load_by_name, name NULL");
    expect_code(api.load_by_name(ctx, MODEL, 0, &g), invalid_argument, "load_by_name, name length 0");
    expect_code(api.load_by_name(ctx, "\0\0\0", 3, &g), invalid_argument, "load_by_name, name of NULs only");
    expect_code(load_name(ctx, MODEL, "{not json", &g), invalid_argument, "load_by_name_with_config, invalid JSON");
    expect_code(load_name(ctx, MODEL, "[1,2]", &g), invalid_argument, "load_by_name_with_config, JSON not an object");
    expect_code(load_name(ctx, MODEL, "{\"ctx_size\":-5}", &g), invalid_argument,
                "load_by_name_with_config, ctx_size out of range");
    {
        graph g4 = 0;
        if (expect_code(api.load_by_name_with_config(ctx, MODEL, (uint32_t)strlen(MODEL), NULL, 4, &g4), success,
                        "load_by_name_with_config, config NULL with length 4 (absent)"))
            api.unload(ctx, g4);
    }
    expect_code(api.load_by_name(ctx, MISSING_MODEL, (uint32_t)strlen(MISSING_MODEL), &g), model_not_found,
                "load_by_name, missing file");
    expect_code(api.load_by_name(ctx, MODEL_V1, (uint32_t)strlen(MODEL_V1), &g), invalid_encoding,
                "load_by_name, GGUF v1 file");
    /* With no policy a guest may name *.gguf files only (docs/security.md):
     * a file that is not GGUF, and a directory, under such names. */
    char not_gguf[] = "/tmp/wnl-c-not-gguf-XXXXXX.gguf";
    int fd = mkstemps(not_gguf, 5);
    if (fd >= 0) {
        if (write(fd, "not a model\n", 12) != 12) printf("# short write to %s\n", not_gguf);
        close(fd);
    }
    expect_code(api.load_by_name(ctx, not_gguf, (uint32_t)strlen(not_gguf), &g), invalid_encoding,
                "load_by_name, a *.gguf file that is not GGUF");
    unlink(not_gguf);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/wnl-c-dir-%d.gguf", (int)getpid());
    mkdir(dir, 0700);
    expect_code(api.load_by_name(ctx, dir, (uint32_t)strlen(dir), &g), invalid_argument,
                "load_by_name, a directory named *.gguf");
    rmdir(dir);
    /* Other names are refused, with one code whether the file exists or not. */
    const char *source = WNL_SOURCE_DIR "/tests/c/wamr_abi_test.c";
    const char *missing = WNL_SOURCE_DIR "/tests/c/no-such-file.c";
    expect_code(api.load_by_name(ctx, source, (uint32_t)strlen(source), &g), not_found,
                "load_by_name, an existing file not named *.gguf is refused");
    expect_code(api.load_by_name(ctx, missing, (uint32_t)strlen(missing), &g), not_found,
                "load_by_name, a missing file not named *.gguf gets the same code");
    expect_code(api.load_by_name(ctx, WNL_MODELS_DIR, (uint32_t)strlen(WNL_MODELS_DIR), &g), not_found,
                "load_by_name, a directory is refused");
    check(g == 77, "failed loads leave *g alone");

    /* load() */
    uint32_t size = 0;
    unsigned char *bytes = read_file(MODEL, &size);
    uint32_t v1_size = 0;
    unsigned char *v1 = read_file(MODEL_V1, &v1_size);
    graph_builder b = {bytes, size};
    graph_builder_array arr = {&b, 1};
    expect_code(api.load(ctx, NULL, ggml, cpu, &g), invalid_argument, "load, builder array NULL");
    expect_code(api.load(ctx, &arr, ggml, cpu, NULL), invalid_argument, "load, graph out-pointer NULL");
    expect_code(api.load(ctx, &arr, onnx, cpu, &g), invalid_encoding, "load, encoding onnx");
    expect_code(api.load(ctx, &arr, openvino, cpu, &g), invalid_encoding, "load, encoding openvino");
    expect_code(api.load(ctx, &arr, (graph_encoding)99, cpu, &g), invalid_encoding, "load, encoding 99");
    expect_code(api.load(ctx, &arr, ggml, (execution_target)9, &g), invalid_argument, "load, target 9");
    graph_builder_array empty = {&b, 0};
    expect_code(api.load(ctx, &empty, ggml, cpu, &g), invalid_argument, "load, builder array of size 0");
    graph_builder_array null_buf = {NULL, 1};
    expect_code(api.load(ctx, &null_buf, ggml, cpu, &g), invalid_argument, "load, builder array buf NULL");
    graph_builder zero = {bytes, 0};
    graph_builder_array zero_arr = {&zero, 1};
    expect_code(api.load(ctx, &zero_arr, ggml, cpu, &g), invalid_argument, "load, builder of size 0");
    graph_builder nullb = {NULL, size};
    graph_builder_array nullb_arr = {&nullb, 1};
    expect_code(api.load(ctx, &nullb_arr, ggml, cpu, &g), invalid_argument, "load, builder buf NULL with a size");
    expect_code(load_bytes(ctx, (const unsigned char *)"hello, world", 12, ggml, &g), invalid_encoding,
                "load, bytes that are not GGUF");
    if (v1) expect_code(load_bytes(ctx, v1, v1_size, ggml, &g), invalid_encoding, "load, GGUF v1 bytes");
    if (bytes) {
        expect_code(load_bytes(ctx, bytes, 4096, ggml, &g), invalid_encoding, "load, GGUF truncated to 4096 bytes");
        expect_code(load_bytes(ctx, bytes, size - 1000, ggml, &g), invalid_encoding,
                    "load, GGUF missing its last 1000 bytes");
    }
    check(g == 77, "failed loads leave *g alone");
    free(bytes);
    free(v1);

    expect_code(api.unload(ctx, 4242), not_found, "unload, unknown graph");
}

static void test_bad_exec(void *ctx, graph g) {
    graph_execution_context exec = 0;
    char buf[256];
    uint32_t size = 0;
    tensor_data out = {(uint8_t *)buf, sizeof buf};
    text_tensor tt;

    expect_code(api.init_execution_context(ctx, g, NULL), invalid_argument, "init_execution_context, exec NULL");
    expect_code(api.init_execution_context(ctx, 4242, &exec), not_found, "init_execution_context, unknown graph");
    expect_code(api.init_execution_context_with_session_id(ctx, NULL, &exec), invalid_argument,
                "init_execution_context_with_session_id, session NULL");
    expect_code(api.init_execution_context_with_session_id(ctx, "s", NULL), invalid_argument,
                "init_execution_context_with_session_id, exec NULL");
    expect_code(api.init_execution_context_with_session_id(ctx, "", &exec), invalid_argument,
                "init_execution_context_with_session_id, empty id");
    char long_id[400];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    expect_code(api.init_execution_context_with_session_id(ctx, long_id, &exec), invalid_argument,
                "init_execution_context_with_session_id, 399-byte id");

    /* Unknown execution contexts. */
    expect_code(set_text(ctx, 4242, 0, PROMPT), not_found, "set_input, unknown exec");
    expect_code(api.compute(ctx, 4242), not_found, "compute, unknown exec");
    expect_code(api.get_output(ctx, 4242, 0, &out, &size), not_found, "get_output, unknown exec");
    expect_code(api.close_execution_context(ctx, 4242), not_found, "close_execution_context, unknown exec");

    if (!expect_code(api.init_execution_context(ctx, g, &exec), success, "init_execution_context")) return;

    /* Order of calls. */
    expect_code(api.compute(ctx, exec), invalid_argument, "compute before set_input");
    expect_code(api.get_output(ctx, exec, 0, &out, &size), not_found, "get_output before compute");

    /* Tensors. */
    expect_code(api.set_input(ctx, exec, 0, NULL), invalid_argument, "set_input, tensor NULL");
    tensor *t = make_text(&tt, PROMPT);
    static const uint8_t wrong_types[] = {fp16, fp32, fp64, i32, i64, 42};
    for (size_t i = 0; i < sizeof wrong_types; i++) {
        t->type = wrong_types[i];
        char what[64];
        snprintf(what, sizeof what, "set_input, tensor type %u", wrong_types[i]);
        expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, what);
    }
    t = make_text(&tt, PROMPT);
    t->data.buf = NULL;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, data.buf NULL with data.size > 0");
    t = make_text(&tt, PROMPT);
    tt.dims.buf = NULL;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, dimensions buf NULL with size 1");
    t = make_text(&tt, PROMPT);
    tt.dim[0] = (uint32_t)strlen(PROMPT) + 5;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, dims product != data.size");
    t = make_text(&tt, PROMPT);
    tt.dim[0] = 2;
    tt.dim[1] = (uint32_t)strlen(PROMPT);
    tt.dims.size = 2;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, dims {2, len} != data.size");
    t = make_text(&tt, PROMPT);
    tt.dim[0] = 65536;
    tt.dim[1] = 65536;
    tt.dims.size = 2;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, dims product overflowing 32 bits");
    t = make_text(&tt, PROMPT);
    tt.dims.size = 1000;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, 1000 dimensions");
    t = make_text(&tt, "");
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, empty prompt");
    t = make_text(&tt, PROMPT);
    t->dimensions = NULL;
    t->data.size = 0;
    expect_code(api.set_input(ctx, exec, 0, t), invalid_argument, "set_input, data.size 0 and no dimensions");
    {
        uint32_t big = 16u * 1024u * 1024u + 1;
        char *huge = malloc(big);
        if (huge) {
            memset(huge, 'a', big);
            t = make_text(&tt, PROMPT);
            t->data.buf = (uint8_t *)huge;
            t->data.size = big;
            tt.dim[0] = big;
            expect_code(api.set_input(ctx, exec, 0, t), too_large, "set_input, 16 MiB + 1 byte");
            free(huge);
        }
    }
    expect_code(set_text(ctx, exec, 2, PROMPT), invalid_argument, "set_input, index 2");
    expect_code(set_text(ctx, exec, 7, PROMPT), invalid_argument, "set_input, index 7");
    expect_code(set_text(ctx, exec, 1, "{\"max_tokens\":"), invalid_argument, "set_input index 1, invalid JSON");
    expect_code(set_text(ctx, exec, 1, "{\"temp\":\"hot\"}"), invalid_argument, "set_input index 1, wrong type");
    expect_code(set_text(ctx, exec, 1, "{\"top_p\":7}"), invalid_argument, "set_input index 1, out of range");
    expect_code(set_text(ctx, exec, 1, "   "), success, "set_input index 1, blank options");
    {
        static const char opts[] = "{\"max_tokens\":4}";
        t = make_text(&tt, opts);
        t->data.size = sizeof opts; /* counting the NUL */
        tt.dim[0] = sizeof opts;
        expect_code(api.set_input(ctx, exec, 1, t), success, "set_input index 1, length counting the NUL");
    }
    /* Everything above was refused: still nothing to compute. */
    expect_code(api.compute(ctx, exec), invalid_argument, "compute after only refused set_input calls");

    /* A real turn, then bad get_output calls. */
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input");
    expect_code(set_text(ctx, exec, 1, "{\"max_tokens\":4}"), success, "set_input index 1, options");
    expect_code(api.compute(ctx, exec), success, "compute");
    expect_code(api.get_output(ctx, exec, 0, NULL, &size), invalid_argument, "get_output, tensor_data NULL");
    expect_code(api.get_output(ctx, exec, 0, &out, NULL), invalid_argument, "get_output, out_size NULL");
    tensor_data null_buf = {NULL, 64};
    expect_code(api.get_output(ctx, exec, 0, &null_buf, &size), invalid_argument,
                "get_output, buf NULL with capacity 64");
    expect_code(api.get_output(ctx, exec, 2, &out, &size), invalid_argument, "get_output, index 2");
    expect_code(api.get_output(ctx, exec, 5, &out, &size), invalid_argument, "get_output, index 5");
    expect_code(api.get_output(ctx, exec, 0, &out, &size), success, "get_output still works");

    /* Backend status: a buffer too small for the document; streaming calls
     * with nothing streamed. */
    {
        char tiny[8];
        expect_code(api.get_backend_status(ctx, BACKEND_STATUS_QUEUE, tiny, sizeof tiny), too_large,
                    "get_backend_status, 8-byte buffer");
    }
    expect_code(api.get_backend_status(ctx, (backend_status_type)99, buf, sizeof buf), invalid_argument,
                "get_backend_status, type 99");
    expect_code(api.get_backend_status(ctx, BACKEND_STATUS_QUEUE, NULL, 10), invalid_argument,
                "get_backend_status, buffer NULL");
    size = sizeof buf;
    expect_code(api.get_output_single(ctx, exec, 0, (uint8_t *)buf, &size), not_found,
                "get_output_single, no stream open");
    expect_code(api.get_output_single(ctx, exec, 0, (uint8_t *)buf, NULL), invalid_argument,
                "get_output_single, out_size NULL");
    size = 16;
    expect_code(api.get_output_single(ctx, exec, 0, NULL, &size), invalid_argument,
                "get_output_single, buffer NULL with capacity 16");

    /* A closed handle. */
    expect_code(api.close_execution_context(ctx, exec), success, "close_execution_context");
    expect_code(set_text(ctx, exec, 0, PROMPT), not_found, "set_input, closed exec");
    expect_code(api.compute(ctx, exec), not_found, "compute, closed exec");
    expect_code(api.get_output(ctx, exec, 0, &out, &size), not_found, "get_output, closed exec");
    expect_code(api.run_inference(ctx, exec, 0, make_text(&tt, PROMPT), (uint8_t *)buf, &size, NULL, 0), not_found,
                "run_inference, closed exec");
    expect_code(api.close_execution_context(ctx, exec), not_found, "close_execution_context twice");
}

/* Streaming, WasmEdge's way: compute_single until end_of_sequence, each
 * piece from get_output_single; the pieces join into the golden reply. */
static void test_streaming(void *ctx, graph g) {
    graph_execution_context exec = 0;
    char piece[256], whole[4096], joined[4096] = "";
    uint32_t size = 0;
    int pieces = 0;
    wasi_nn_error err = success;
    if (!expect_code(api.init_execution_context(ctx, g, &exec), success, "init_execution_context (streaming)")) return;
    expect_code(api.fini_single(ctx, exec), success, "fini_single with no stream open");
    expect_code(api.compute_single(ctx, exec), invalid_argument, "compute_single before set_input");
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input (streaming)");
    while ((err = api.compute_single(ctx, exec)) == success && pieces < 1000) {
        size = sizeof piece - 1;
        if (!expect_code(api.get_output_single(ctx, exec, 0, (uint8_t *)piece, &size), success, "get_output_single"))
            break;
        piece[size] = '\0';
        strncat(joined, piece, sizeof joined - strlen(joined) - 1);
        pieces++;
    }
    expect_code(err, end_of_sequence, "compute_single ends with end_of_sequence");
    check(pieces > 1, "the reply came in %d pieces", pieces);
    expect_text(joined, GOLDEN, "the pieces join into the golden text");
    expect_code(api.compute_single(ctx, exec), end_of_sequence, "compute_single again before fini_single");
    size = 0;
    expect_code(api.get_output_single(ctx, exec, 0, (uint8_t *)piece, &size), success,
                "get_output_single at the end: an empty piece, capacity 0");
    size = sizeof whole - 1;
    if (expect_code(api.get_output_single(ctx, exec, 1, (uint8_t *)whole, &size), success,
                    "get_output_single index 1 at the end: metadata")) {
        whole[size] = '\0';
        check(strstr(whole, "\"stop_reason\":\"max_tokens\"") != NULL, "the metadata says max_tokens: %s", whole);
    }
    size = 4;
    expect_code(api.get_output_single(ctx, exec, 1, (uint8_t *)whole, &size), too_large,
                "get_output_single, metadata into 4 bytes");
    check(size > 4, "too_large reports the size needed (%u)", size);
    size = sizeof whole;
    expect_code(api.get_output_single(ctx, exec, 2, (uint8_t *)whole, &size), invalid_argument,
                "get_output_single, index 2");
    expect_code(api.compute(ctx, exec), busy, "compute while a stream is open");
    expect_code(api.fini_single(ctx, exec), success, "fini_single");
    if (expect_code(read_output(ctx, exec, 0, whole, sizeof whole - 1, &size), success, "get_output after the stream"))
        expect_text(whole, GOLDEN, "get_output after the stream gives the whole reply");
    size = sizeof piece;
    expect_code(api.get_output_single(ctx, exec, 0, (uint8_t *)piece, &size), not_found,
                "get_output_single after fini_single");

    /* A second stream on the same handle, ended early by fini_single. */
    pieces = 0;
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input (second stream)");
    while (pieces < 2 && api.compute_single(ctx, exec) == success) pieces++;
    check(pieces == 2, "two pieces of the second stream");
    expect_code(api.fini_single(ctx, exec), success, "fini_single mid-stream");
    if (expect_code(read_output(ctx, exec, 1, whole, sizeof whole - 1, &size), success, "metadata after an early fini"))
        check(strstr(whole, "\"stop_reason\":\"cancelled\"") != NULL, "stop_reason cancelled: %s", whole);
    expect_golden(ctx, g, NULL, "compute after a stream still gives the golden text");

    /* A stream left open when its handle is closed. */
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input (third stream)");
    expect_code(api.compute_single(ctx, exec), success, "compute_single (third stream)");
    expect_code(api.close_execution_context(ctx, exec), success, "close_execution_context mid-stream");
    expect_code(api.compute_single(ctx, exec), not_found, "compute_single on the closed handle");
    expect_code(api.fini_single(ctx, exec), not_found, "fini_single on the closed handle");
}

static void test_prompt_too_long(void *ctx) {
    graph g = 0;
    graph_execution_context exec = 0;
    char prompt[2048];
    char out[256];
    uint32_t size = 0;
    tensor_data td = {(uint8_t *)out, sizeof out};
    size_t n = 0;
    while (n + 17 < sizeof prompt) n += (size_t)snprintf(prompt + n, sizeof prompt - n, "%s. ", PROMPT);
    if (!expect_code(load_name(ctx, MODEL, "{\"ctx_size\":64,\"temp\":0,\"max_tokens\":8}", &g), success,
                     "load_by_name_with_config, ctx_size 64"))
        return;
    expect_code(api.init_execution_context(ctx, g, &exec), success, "init_execution_context");
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input, a short prompt");
    expect_code(api.compute(ctx, exec), success, "compute, a short prompt");
    expect_code(set_text(ctx, exec, 0, prompt), success, "set_input, a ~2000-byte prompt");
    expect_code(api.compute(ctx, exec), prompt_tool_long, "compute, prompt longer than the context");
    expect_code(api.get_output(ctx, exec, 0, &td, &size), not_found,
                "get_output after the refused compute (no stale output)");
    expect_code(api.get_output(ctx, exec, 1, &td, &size), not_found, "get_output index 1 after the refused compute");
    /* The context is still usable. */
    expect_code(set_text(ctx, exec, 0, PROMPT), success, "set_input, a short prompt");
    expect_code(api.compute(ctx, exec), success, "compute, the same context, a short prompt");
    expect_code(api.get_output(ctx, exec, 0, &td, &size), success, "get_output");
    api.close_execution_context(ctx, exec);
    api.unload(ctx, g);
}

/* ---------------------------------------------------------- concurrency */

typedef struct {
    void *ctx;
    graph_execution_context exec;
    const char *options;
    wasi_nn_error result;
    char out[4096];
    atomic_int started;
} job;

static void *compute_job(void *arg) {
    job *j = arg;
    j->started = 1;
    j->result = api.compute(j->ctx, j->exec);
    return NULL;
}

static void *generate_job(void *arg) {
    job *j = arg;
    j->started = 1;
    j->result = generate(j->ctx, j->exec, PROMPT, j->options, j->out, sizeof j->out);
    return NULL;
}

/* Long enough that a call made 20 ms after it starts finds it running,
 * even on a fast machine (about 300 ms here on two idle cores). */
static const char *const LONG_OPTIONS = "{\"max_tokens\":1000,\"ignore_eos\":true}";

/* Starts compute on j->exec in a new thread and returns once that thread
 * is about to call it, plus 20 ms. */
static pthread_t start_compute(job *j) {
    pthread_t t;
    pthread_create(&t, NULL, compute_job, j);
    while (!j->started) sleep_ms(1);
    sleep_ms(20);
    return t;
}

/* Of two overlapping calls, exactly one must get busy; normally the later
 * one (B). If B won the race anyway, A is the one that must be busy. */
static void expect_one_busy(wasi_nn_error a, wasi_nn_error b, const char *what) {
    int one = (a == busy) != (b == busy);
    check(one, "%s: exactly one of two overlapping computes gets busy (A -> %d, B -> %d)", what, (int)a, (int)b);
    if (one && b != busy) printf("# %s: B started first; its call was the long one\n", what);
}

static void test_concurrency(void *ctx, graph g) {
    char buf[64];
    uint32_t size = 0;
    tensor_data out = {(uint8_t *)buf, sizeof buf};

    /* One execution context, two threads: the second call gets busy. */
    job a = {ctx, 0, NULL, success, "", 0};
    expect_code(api.init_execution_context(ctx, g, &a.exec), success, "init_execution_context for thread A");
    set_text(ctx, a.exec, 0, PROMPT);
    expect_code(set_text(ctx, a.exec, 1, LONG_OPTIONS), success, "set_input index 1, 1000 tokens ignoring EOS");
    pthread_t ta = start_compute(&a);
    wasi_nn_error b_compute = api.compute(ctx, a.exec);
    if (b_compute == busy) {
        expect_code(set_text(ctx, a.exec, 0, PROMPT), busy, "thread B: set_input on the same exec while A computes");
        expect_code(api.get_output(ctx, a.exec, 0, &out, &size), busy,
                    "thread B: get_output on the same exec while A computes");
        expect_code(api.compute(ctx, a.exec), busy, "thread B: compute again, still busy");
    }
    /* Closing the handle cancels A's generation rather than waiting for it. */
    expect_code(api.close_execution_context(ctx, a.exec), success, "close_execution_context while A computes");
    pthread_join(ta, NULL);
    expect_one_busy(a.result, b_compute, "one exec");
    check(a.result == runtime_error || a.result == success, "thread A: cancelled by the close (%d)", (int)a.result);

    /* Two execution contexts at once: both succeed, both greedy-exact. */
    job c[2];
    pthread_t tc[2];
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].ctx = ctx;
        c[i].options = GREEDY_32;
        expect_code(api.init_execution_context(ctx, g, &c[i].exec), success, "init_execution_context");
    }
    for (int i = 0; i < 2; i++) pthread_create(&tc[i], NULL, generate_job, &c[i]);
    for (int i = 0; i < 2; i++) pthread_join(tc[i], NULL);
    for (int i = 0; i < 2; i++) {
        char what[96];
        snprintf(what, sizeof what, "concurrent exec %d: set_input + compute + get_output", i);
        if (expect_code(c[i].result, success, what)) {
            snprintf(what, sizeof what, "concurrent exec %d: output equals the golden text", i);
            expect_text(c[i].out, GOLDEN, what);
        }
        api.close_execution_context(ctx, c[i].exec);
    }

    /* Two inits of one named session share its handle (docs/abi.md §9): a
     * compute through the second while the first runs is busy. Named
     * sessions attach to the most recently loaded graph. */
    job s = {ctx, 0, NULL, success, "", 0};
    graph_execution_context other = 0;
    graph latest = 0;
    expect_code(load_name(ctx, MODEL, GREEDY_32, &latest), success, "load_by_name_with_config");
    expect_code(api.init_execution_context_with_session_id(ctx, "shared-session", &s.exec), success,
                "init_execution_context_with_session_id");
    expect_code(api.init_execution_context_with_session_id(ctx, "shared-session", &other), success,
                "the same session id again");
    check(other == s.exec, "... gives the same handle (%u, %u)", s.exec, other);
    set_text(ctx, s.exec, 0, PROMPT);
    set_text(ctx, s.exec, 1, LONG_OPTIONS);
    set_text(ctx, other, 0, PROMPT);
    pthread_t ts = start_compute(&s);
    wasi_nn_error second = api.compute(ctx, other);
    /* The handle closes, and its request is cancelled, when both holders
     * have closed it. */
    expect_code(api.close_execution_context(ctx, s.exec), success, "close: one holder left");
    expect_code(api.close_execution_context(ctx, other), success, "close: the last holder");
    pthread_join(ts, NULL);
    expect_one_busy(s.result, second, "one session, two holders");
    expect_code(api.close_execution_context(ctx, other), not_found, "a third close");
    api.unload(ctx, latest);
}

/* A long generation is cancelled by closing its execution context, or by
 * deinit_backend of its backend context, from another thread. */
static void test_cancellation(void) {
    static const char *const LONG_RUN = "{\"temp\":0,\"max_tokens\":2000,\"ignore_eos\":true}";
    for (int by_deinit = 0; by_deinit < 2; by_deinit++) {
        const char *how = by_deinit ? "deinit_backend" : "close_execution_context";
        void *ctx = NULL;
        graph g = 0;
        job a;
        memset(&a, 0, sizeof a);
        if (!expect_code(api.init_backend(&ctx), success, "init_backend")) return;
        expect_code(load_name(ctx, MODEL, LONG_RUN, &g), success, "load_by_name_with_config, 2000 tokens");
        a.ctx = ctx;
        api.init_execution_context(ctx, g, &a.exec);
        set_text(ctx, a.exec, 0, PROMPT);
        pthread_t ta;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pthread_create(&ta, NULL, compute_job, &a);
        while (!a.started) sleep_ms(1);
        sleep_ms(50);
        wasi_nn_error err = by_deinit ? api.deinit_backend(ctx) : api.close_execution_context(ctx, a.exec);
        char what[128];
        snprintf(what, sizeof what, "%s while a compute runs in another thread", how);
        expect_code(err, success, what);
        pthread_join(ta, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
        snprintf(what, sizeof what, "the running compute is cancelled by %s (after %ld ms)", how, ms);
        expect_code(a.result, runtime_error, what);
        expect_code(api.compute(ctx, a.exec), by_deinit ? invalid_argument : not_found,
                    "compute on the cancelled exec afterwards");
        if (!by_deinit) expect_code(api.deinit_backend(ctx), success, "deinit_backend");
    }
}

/* -------------------------------------------------------- after deinit */

static void test_after_deinit(void *ctx, graph g, graph_execution_context exec) {
    char buf[64];
    uint32_t size = sizeof buf;
    tensor_data out = {(uint8_t *)buf, sizeof buf};
    text_tensor tt;
    graph g2 = 0;
    graph_execution_context e2 = 0;
    expect_code(api.deinit_backend(ctx), success, "deinit_backend");
    expect_code(api.load_by_name(ctx, MODEL, (uint32_t)strlen(MODEL), &g2), invalid_argument,
                "after deinit: load_by_name");
    expect_code(load_bytes(ctx, (const unsigned char *)"GGUF", 4, ggml, &g2), invalid_argument, "after deinit: load");
    expect_code(api.init_execution_context(ctx, g, &e2), invalid_argument, "after deinit: init_execution_context");
    expect_code(set_text(ctx, exec, 0, PROMPT), invalid_argument, "after deinit: set_input");
    expect_code(api.compute(ctx, exec), invalid_argument, "after deinit: compute");
    expect_code(api.get_output(ctx, exec, 0, &out, &size), invalid_argument, "after deinit: get_output");
    expect_code(api.run_inference(ctx, exec, 0, make_text(&tt, PROMPT), (uint8_t *)buf, &size, NULL, 0),
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
    if (expect_code(api.init_backend(&ctx), success, "init_backend")) {
        graph g = 0;
        test_load_by_name(ctx, &g);
        test_output_rules(ctx, g);
        test_load_from_bytes(ctx);
        test_bad_load(ctx);
        test_bad_exec(ctx, g);
        test_streaming(ctx, g);
        test_prompt_too_long(ctx);
        test_concurrency(ctx, g);
        test_cancellation();

        /* Leave an execution context open across deinit_backend. */
        graph_execution_context exec = 0;
        api.init_execution_context(ctx, g, &exec);
        set_text(ctx, exec, 0, PROMPT);
        expect_code(api.compute(ctx, exec), success, "compute on an exec left open until deinit");
        test_after_deinit(ctx, g, exec);
    }

    /* A new backend context works after the old one is gone. */
    void *ctx2 = NULL;
    if (expect_code(api.init_backend(&ctx2), success, "init_backend after a deinit")) {
        check(ctx2 != ctx, "the new context is a new handle");
        graph g = 0;
        if (expect_code(load_name(ctx2, MODEL, GREEDY_32, &g), success, "load_by_name_with_config")) {
            expect_golden(ctx2, g, NULL, "greedy output in a second backend context equals the golden text");
        }
        expect_code(api.deinit_backend(ctx2), success, "deinit_backend");
    }

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
